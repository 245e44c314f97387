"""Fits on Dask vs in memory, on a 2-worker ``LocalCluster`` (processes, one thread
each) with the data persisted on the workers; the in-memory fits use 2 threads.

GaussianMixture EM: n=2,000,000, d=8, k=16, full covariance (chunks of 125,000 rows).
Both start from the same parameters and run ``N_ITER`` iterations with ``tol=0``; time
per iteration = mean / N_ITER. Floor: dask <= 1.5x in memory.

LatentDirichletAllocation: the first ``LDA_DOCS`` documents of the synthetic corpus
(``bench/make_synthetic_corpus.py``), K = ``LDA_K``, CSR chunks of ``LDA_CHUNK``
documents. Variational batch EM, ``LDA_ITER`` iterations: the fit also runs a last
E-step for ``bound_`` (and on dask a pass counting the words), so time per iteration =
mean / (LDA_ITER + 1). Gibbs: ``LDA_SWEEPS`` sweeps of AD-LDA (the chunks are the
partitions) vs the in-memory partitioned sampler (4 partitions, 2 threads); time per
sweep (``seconds_per_iteration``) = mean / LDA_SWEEPS (including the initialisation).
"""

import warnings

import numpy as np
import pytest

from fastml.mixture import GaussianMixture

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")

N, D, K, N_ITER, CHUNK = 2_000_000, 8, 16, 5, 125_000
LDA_DOCS, LDA_K, LDA_CHUNK, LDA_ITER, LDA_SWEEPS = 4000, 20, 1000, 2, 5


def _chunk(block_info=None):
    i = block_info[None]["chunk-location"][0]
    rng = np.random.default_rng(100 + i)
    centers = np.random.default_rng(0).normal(size=(K, D)) * 5
    return centers[rng.integers(K, size=CHUNK)] + rng.standard_normal((CHUNK, D))


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def problem(client):
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
    return X, dX, init


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


# ------------------------------------------------------------------------------ LDA
@pytest.fixture(scope="module")
def lda_problem(client):
    import importlib.util
    import pathlib

    from scipy import sparse

    path = pathlib.Path(__file__).with_name("make_synthetic_corpus.py")
    spec = importlib.util.spec_from_file_location("make_synthetic_corpus", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    X = sparse.csr_matrix(module.load_corpus()[0][:LDA_DOCS], dtype=np.float64)
    dX = da.from_array(X, chunks=(LDA_CHUNK, -1), asarray=False).persist()
    distributed.wait(dX)
    return X, dX


@pytest.mark.parametrize("impl", ["in-memory-2-threads", "dask-2-workers"])
@pytest.mark.parametrize("method", ["variational", "gibbs"])
def bench_lda_dask(benchmark, method, impl, lda_problem, all_cores):
    from fastml.lda import LatentDirichletAllocation

    X, dX = lda_problem
    n_iter, steps = (
        (LDA_ITER, LDA_ITER + 1) if method == "variational" else (LDA_SWEEPS,) * 2
    )
    benchmark.group = f"lda-{method}-synthetic4k-K{LDA_K}-dask-vs-memory"
    benchmark.extra_info.update(
        docs=LDA_DOCS, K=LDA_K, tokens=int(X.sum()), iterations=n_iter
    )
    data = X if impl.startswith("in-memory") else dX

    def run():
        return LatentDirichletAllocation(
            LDA_K, method=method, max_iter=n_iter, random_state=0, n_jobs=2
        ).fit(data)

    m = benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["seconds_per_iteration"] = benchmark.stats.stats.mean / steps
    assert m.n_iter_ == n_iter and np.isfinite(m.components_).all()
