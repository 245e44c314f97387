"""GaussianMixture EM on Dask vs in memory: n=2,000,000, d=8, k=16, full covariance.

The dask fit runs on a 2-worker ``LocalCluster`` (processes, one thread each) with the
data persisted on the workers (chunks of 125,000 rows); the in-memory fit uses 2
threads. Both start from the same parameters and run ``N_ITER`` iterations with
``tol=0``; time per iteration = mean / N_ITER. Floor: dask <= 1.5x in memory.
"""

import warnings

import numpy as np
import pytest

from fastml.mixture import GaussianMixture

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")

N, D, K, N_ITER, CHUNK = 2_000_000, 8, 16, 5, 125_000


def _chunk(block_info=None):
    i = block_info[None]["chunk-location"][0]
    rng = np.random.default_rng(100 + i)
    centers = np.random.default_rng(0).normal(size=(K, D)) * 5
    return centers[rng.integers(K, size=CHUNK)] + rng.standard_normal((CHUNK, D))


@pytest.fixture(scope="module")
def problem():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        )
    client = distributed.Client(cluster)
    dX = da.map_blocks(
        _chunk, dtype=np.float64, chunks=((CHUNK,) * (N // CHUNK), (D,))
    ).persist()
    distributed.wait(dX)
    X = dX.compute()
    rng = np.random.default_rng(1)
    init = dict(
        weights_init=np.full(K, 1.0 / K),
        means_init=X[rng.choice(N, size=K, replace=False)],
        precisions_init=np.stack([np.eye(D)] * K),
    )
    yield X, dX, init
    client.close()
    cluster.close()


def _fit(X, init):
    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return GaussianMixture(K, max_iter=N_ITER, tol=0.0, n_jobs=2, **init).fit(X)

    return run


@pytest.mark.parametrize("impl", ["in-memory-2-threads", "dask-2-workers"])
def bench_gmm_em_dask(benchmark, impl, problem, all_cores):
    X, dX, init = problem
    benchmark.group = "gmm-em-full-n2M-d8-k16-dask-vs-memory"
    benchmark.extra_info.update(n=N, d=D, k=K, em_iterations=N_ITER, chunk_rows=CHUNK)
    data = X if impl.startswith("in-memory") else dX
    gm = benchmark.pedantic(_fit(data, init), rounds=3, iterations=1)
    benchmark.extra_info["seconds_per_iteration"] = benchmark.stats.stats.mean / N_ITER
    assert gm.n_iter_ == N_ITER and np.isfinite(gm.lower_bound_)
