"""fastml.losses vs torch.nn.functional and a vectorised NumPy version (one thread)."""

import numpy as np
import pytest
import scipy.special

from fastml.losses import binary_cross_entropy, softmax_cross_entropy

N, C = 100_000, 10


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return {
        "logits": rng.standard_normal((N, C)),
        "labels": rng.integers(0, C, N),
        "z": rng.standard_normal(N * C),
        "y": rng.integers(0, 2, N * C).astype(np.float64),
    }


def numpy_softmax_ce(z, labels):
    lse = scipy.special.logsumexp(z, axis=1)
    loss = np.mean(lse - z[np.arange(len(z)), labels])
    g = np.exp(z - lse[:, None])
    g[np.arange(len(z)), labels] -= 1.0
    return loss, g / len(z)


def numpy_bce(z, y):
    loss = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
    return loss, (scipy.special.expit(z) - y) / len(z)


def torch_call(kind, d, dtype):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    F = torch.nn.functional
    tdt = torch.float32 if dtype == np.float32 else torch.float64
    if kind == "softmax":
        z = torch.tensor(d["logits"], dtype=tdt, requires_grad=True)
        t = torch.tensor(d["labels"])

        def run():
            z.grad = None
            loss = F.cross_entropy(z, t)
            loss.backward()
            return loss.item(), z.grad

    else:
        z = torch.tensor(d["z"], dtype=tdt, requires_grad=True)
        t = torch.tensor(d["y"], dtype=tdt)

        def run():
            z.grad = None
            loss = F.binary_cross_entropy_with_logits(z, t)
            loss.backward()
            return loss.item(), z.grad

    return run


@pytest.mark.parametrize("impl", ["fastml", "torch", "numpy"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def bench_softmax_cross_entropy(benchmark, impl, dtype, data):
    benchmark.group = f"softmax-ce-loss+grad-{N}x{C}-{np.dtype(dtype).name}"
    z = data["logits"].astype(dtype)
    if impl == "fastml":
        fn = lambda: softmax_cross_entropy(z, data["labels"])  # noqa: E731
    elif impl == "numpy":
        fn = lambda: numpy_softmax_ce(z, data["labels"])  # noqa: E731
    else:
        fn = torch_call("softmax", data, dtype)
    loss, _ = benchmark(fn)
    assert abs(loss - numpy_softmax_ce(data["logits"], data["labels"])[0]) < 1e-4


@pytest.mark.parametrize("impl", ["fastml", "torch", "numpy"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def bench_binary_cross_entropy(benchmark, impl, dtype, data):
    benchmark.group = f"bce-loss+grad-{N * C}-{np.dtype(dtype).name}"
    z, y = data["z"].astype(dtype), data["y"].astype(dtype)
    if impl == "fastml":
        fn = lambda: binary_cross_entropy(z, y)  # noqa: E731
    elif impl == "numpy":
        fn = lambda: numpy_bce(z, y)  # noqa: E731
    else:
        fn = torch_call("bce", data, dtype)
    loss, _ = benchmark(fn)
    assert abs(loss - numpy_bce(data["z"], data["y"])[0]) < 1e-4
