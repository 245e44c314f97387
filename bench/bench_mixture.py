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
