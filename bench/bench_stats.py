"""fastml.stats.variance vs numpy.var, side by side (one thread)."""

import numpy as np
import pytest

from fastml.stats import variance

N = 10_000_000


@pytest.fixture(scope="module")
def data():
    x = np.random.default_rng(0).standard_normal(N)
    return {"float64": x, "float32": x.astype(np.float32), "offset": 1e9 + x}


IMPLS = {"fastml": variance, "numpy": np.var}


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("kind", ["float64", "float32", "offset"])
def bench_variance_1e7(benchmark, impl, kind, data):
    benchmark.group = f"variance-1e7-{kind}"
    benchmark.extra_info.update(n=N, dtype=str(data[kind].dtype))
    v = benchmark(IMPLS[impl], data[kind])
    assert abs(v - np.var(data[kind] - (1e9 if kind == "offset" else 0))) < 1e-4


@pytest.mark.parametrize("impl", list(IMPLS))
def bench_variance_axis0(benchmark, impl, data):
    benchmark.group = "variance-axis0-1e5x100"
    x = data["float64"].reshape(-1, 100)
    out = benchmark(IMPLS[impl], x, axis=0)
    assert out.shape == (100,)


@pytest.fixture(scope="module")
def x1e8():
    return np.random.default_rng(1).standard_normal(100_000_000)


@pytest.mark.parametrize("n_jobs", [1, 2])
def bench_variance_1e8_threads(benchmark, n_jobs, x1e8):
    """fastml.stats.variance on 1e8 float64 with 1 and 2 threads (floor: >= 1.6x)."""
    benchmark.group = "variance-1e8-float64-threads"
    benchmark.extra_info.update(n=x1e8.size, dtype="float64", n_jobs=n_jobs)
    v = benchmark.pedantic(
        lambda: variance(x1e8, n_jobs=n_jobs), rounds=3, iterations=1
    )
    assert abs(v - 1.0) < 1e-3
