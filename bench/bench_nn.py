"""fastml.nn Conv2d forward+backward vs torch CPU, and im2col vs a plain memory copy.

One thread (bench/conftest.py pins BLAS; torch.set_num_threads(1) here). Shape: batch
32, 16 -> 32 channels, 32x32 images, 3x3 kernel, padding 1, stride 1 and 2.
"""

import numpy as np
import pytest

from fastml import nn
from fastml.nn._functional import _conv  # the build fastml.nn uses (AVX2 + FMA if any)

N, C, F, H, W, K = 32, 16, 32, 32, 32, 3
DTYPES = [np.float32, np.float64]
IDS = ["float32", "float64"]


def _torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    return rng.standard_normal((N, C, H, W)), rng.standard_normal((F, C, K, K))


@pytest.mark.parametrize("impl", ["fastml", "torch"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def bench_conv2d_forward_backward(benchmark, impl, stride, dtype, problem):
    benchmark.group = f"conv2d-fwd+bwd-{N}x{C}x{H}x{W}-to-{F}-k3-p1-s{stride}-"
    benchmark.group += np.dtype(dtype).name
    x = problem[0].astype(dtype)
    layer = nn.Conv2d(C, F, K, stride, 1, random_state=0, dtype=dtype)
    oh = (H + 2 - K) // stride + 1
    g = np.random.default_rng(1).standard_normal((N, F, oh, oh)).astype(dtype)
    benchmark.extra_info.update(dtype=np.dtype(dtype).name, stride=stride)
    if impl == "fastml":

        def run():
            layer.forward(x)
            return layer.backward(g)

    else:
        torch = _torch()
        xt = torch.tensor(x, requires_grad=True)
        wt = torch.tensor(layer.params["weight"], requires_grad=True)
        bt = torch.tensor(layer.params["bias"], requires_grad=True)
        gt = torch.tensor(g)

        def run():
            xt.grad = wt.grad = bt.grad = None
            y = torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=1)
            y.backward(gt)
            return xt.grad

    dx = np.asarray(benchmark(run))
    layer.forward(x)
    ref = layer.backward(g)
    tol = 1e-3 if dtype == np.float32 else 1e-10
    assert np.abs(dx - ref).max() <= tol * np.abs(ref).max()


@pytest.mark.parametrize("impl", ["im2col", "np.copyto"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("batch", [N, 256], ids=["cache", "memory"])
def bench_im2col_vs_copy(benchmark, impl, stride, dtype, batch, problem):
    """im2col into a preallocated output vs np.copyto of an array of the output's size
    (the memory-bandwidth yardstick: both write the same number of bytes).

    Two sizes: the Conv2d benchmark's batch of 32, whose output (2-9 MB) stays in cache
    where a copy runs far above memory bandwidth, and a batch of 256 (38-302 MB), where
    the copy is bound by memory bandwidth.
    """
    benchmark.group = (
        f"im2col-{batch}x{C}x{H}x{W}-k3-p1-s{stride}-{np.dtype(dtype).name}"
    )
    x = np.resize(problem[0], (batch, C, H, W)).astype(dtype)
    oh = (H + 2 - K) // stride + 1
    cols = np.empty((batch, C * K * K, oh * oh), dtype=dtype)
    benchmark.extra_info.update(out_bytes=cols.nbytes)
    if impl == "im2col":
        benchmark(_conv.im2col, x, K, K, stride, 1, cols)
        np.testing.assert_array_equal(cols, nn.im2col(x, K, stride, 1))
    else:
        src = np.ones_like(cols)
        benchmark(np.copyto, cols, src)
