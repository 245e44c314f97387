"""GaussianMixture EM vs scikit-learn, one thread: n=200,000, d=8, k=16, full covariance.

Both start from the same parameters (``weights_init``/``means_init``/``precisions_init``)
and run ``N_ITER`` EM iterations with ``tol=0``; time per iteration = mean / N_ITER.
"""

import warnings

import numpy as np
import pytest

from fastml.mixture import GaussianMixture

N, D, K, N_ITER = 200_000, 8, 16, 5


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(K, D)) * 5
    X = centers[rng.integers(K, size=N)] + rng.normal(size=(N, D))
    idx = rng.choice(N, size=K, replace=False)
    init = dict(
        weights_init=np.full(K, 1.0 / K),
        means_init=X[idx],
        precisions_init=np.stack([np.eye(D)] * K),
    )
    return X, init


def _fit(cls, X, init, dtype):
    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cls(K, max_iter=N_ITER, tol=0.0, **init).fit(
                X.astype(dtype, copy=False)
            )

    return run


@pytest.mark.parametrize("impl", ["fastml", "sklearn"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def bench_gmm_em_full(benchmark, impl, dtype, problem):
    X, init = problem
    if impl == "sklearn":
        cls = pytest.importorskip("sklearn.mixture").GaussianMixture
    else:
        cls = GaussianMixture
    benchmark.group = f"gmm-em-full-n200k-d8-k16-{dtype}"
    benchmark.extra_info.update(n=N, d=D, k=K, em_iterations=N_ITER, dtype=dtype)
    Xc = X.astype(dtype)
    gm = benchmark.pedantic(_fit(cls, Xc, init, dtype), rounds=3, iterations=1)
    benchmark.extra_info["lower_bound"] = float(gm.lower_bound_)
    assert gm.n_iter_ == N_ITER and np.isfinite(gm.lower_bound_)


# ---------------------------------------------------------------- threads
def _fit_fastml(X, init, n_jobs):
    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return GaussianMixture(
                K, max_iter=N_ITER, tol=0.0, n_jobs=n_jobs, **init
            ).fit(X)

    return run


@pytest.mark.parametrize("n_jobs", [1, 2])
def bench_gmm_em_full_threads(benchmark, n_jobs, problem):
    """fastml with 1 and 2 threads (floor: 2 threads >= 1.8x 1 thread); same bits."""
    X, init = problem
    benchmark.group = "gmm-em-full-n200k-d8-k16-float64-fastml-threads"
    benchmark.extra_info.update(n=N, d=D, k=K, em_iterations=N_ITER, n_jobs=n_jobs)
    gm = benchmark.pedantic(_fit_fastml(X, init, n_jobs), rounds=3, iterations=1)
    assert gm.n_iter_ == N_ITER and np.isfinite(gm.lower_bound_)


@pytest.mark.parametrize("impl", ["fastml", "sklearn"])
def bench_gmm_em_full_all_cores(benchmark, impl, problem, all_cores):
    """All cores: fastml n_jobs=2 vs scikit-learn at its default threading (floor:
    >= 10x); ``cpu_per_wall`` shows whether the second core really worked."""
    X, init = problem
    if impl == "sklearn":
        fn = _fit(
            pytest.importorskip("sklearn.mixture").GaussianMixture, X, init, "float64"
        )
    else:
        fn = _fit_fastml(X, init, 2)
    benchmark.group = "gmm-em-full-n200k-d8-k16-float64-all-cores"
    benchmark.extra_info.update(n=N, d=D, k=K, em_iterations=N_ITER)
    gm = benchmark.pedantic(fn, rounds=3, iterations=1)
    assert gm.n_iter_ == N_ITER and np.isfinite(gm.lower_bound_)
