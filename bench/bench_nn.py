"""fastml.nn Conv2d forward+backward vs torch CPU, and im2col vs a plain memory copy.

One thread (bench/conftest.py pins BLAS; torch.set_num_threads(1) here; fastml with
``n_jobs=1``). Shape: batch 32, 16 -> 32 channels, 32x32 images, 3x3 kernel, padding 1,
stride 1 and 2.

All cores (``all_cores`` fixture, cpu_per_wall recorded), float32, batch 64, stride 1:
``conv2d-fwd+bwd-64x16x32x32-to-32-k3-p1-s1-float32-threads``: fastml ``n_jobs=1`` vs
``n_jobs=2`` (blocks of images on threads; the same bits); ``...-all-cores``: fastml
``n_jobs=2`` vs torch with ``torch.set_num_threads(2)`` (set back to 1 afterwards).
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


def _fwd_bwd(impl, layer, x, g, stride):
    """One forward + backward pass of ``layer`` (padding 1) on ``x`` with the output
    gradient ``g``, by fastml or by torch on the same weights; returns the input
    gradient."""
    if impl == "fastml":

        def run():
            layer.forward(x)
            return layer.backward(g)

        return run
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

    return run


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
    layer = nn.Conv2d(C, F, K, stride, 1, random_state=0, dtype=dtype, n_jobs=1)
    oh = (H + 2 - K) // stride + 1
    g = np.random.default_rng(1).standard_normal((N, F, oh, oh)).astype(dtype)
    benchmark.extra_info.update(dtype=np.dtype(dtype).name, stride=stride)
    run = _fwd_bwd(impl, layer, x, g, stride)
    dx = np.asarray(benchmark(run))
    layer.forward(x)
    ref = layer.backward(g)
    tol = 1e-3 if dtype == np.float32 else 1e-10
    assert np.abs(dx - ref).max() <= tol * np.abs(ref).max()


N_BIG = 64


def _conv_threads_case(impl, n_jobs):
    """fwd+bwd of the batch-64 float32 problem, fastml with ``n_jobs`` threads or torch
    with as many; returns (run, reference input gradient)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((N_BIG, C, H, W)).astype(np.float32)
    layer = nn.Conv2d(C, F, K, 1, 1, random_state=0, dtype=np.float32, n_jobs=n_jobs)
    g = rng.standard_normal((N_BIG, F, H, W)).astype(np.float32)
    ref_layer = nn.Conv2d(C, F, K, 1, 1, random_state=0, dtype=np.float32, n_jobs=1)
    ref_layer.forward(x)
    ref = ref_layer.backward(g)
    return _fwd_bwd(impl, layer, x, g, 1), ref


GROUP_BIG = f"conv2d-fwd+bwd-{N_BIG}x{C}x{H}x{W}-to-{F}-k3-p1-s1-float32"


@pytest.mark.parametrize("n_jobs", [1, 2])
def bench_conv2d_threads(benchmark, all_cores, n_jobs):
    benchmark.group = GROUP_BIG + "-threads"
    benchmark.extra_info.update(dtype="float32", n_jobs=n_jobs)
    run, ref = _conv_threads_case("fastml", n_jobs)
    dx = benchmark(run)
    assert (dx == ref).all()  # the same bits as one thread


@pytest.mark.parametrize("impl", ["fastml", "torch"])
def bench_conv2d_all_cores(benchmark, all_cores, impl):
    benchmark.group = GROUP_BIG + "-all-cores"
    benchmark.extra_info.update(dtype="float32", threads_used=2)
    run, ref = _conv_threads_case(impl, 2)
    if impl == "torch":
        torch = _torch()
        torch.set_num_threads(2)
        try:
            dx = np.asarray(benchmark(run))
        finally:
            torch.set_num_threads(1)
    else:
        dx = benchmark(run)
    assert np.abs(dx - ref).max() <= 1e-3 * np.abs(ref).max()


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
