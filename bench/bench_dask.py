"""Fits on Dask vs in memory, on a 2-worker ``LocalCluster`` (processes, one thread
each) with the data persisted on the workers; the in-memory fits use 2 threads. Both
start from the same parameters and run a fixed number of iterations; time per
iteration = mean / iterations (``cpu_per_wall`` counts this process only, not the
workers).

- GaussianMixture EM: n=2,000,000, d=8, k=16, full covariance, chunks of 125,000 rows,
  ``N_ITER`` iterations with ``tol=0``. Floor: dask <= 1.5x in memory.
- GaussianHMM (diag): 64 sequences x 5,000 steps, d=4, K=16, chunks of 8 whole
  sequences (no rechunking), from given parameters (``init_params=""``). The dask
  time includes the fit's one validation pass over the chunks and the fetch of the
  initialisation rows (about one more iteration). No floor.
- LatentDirichletAllocation: the first ``LDA_DOCS`` documents of the synthetic corpus
  (``bench/make_synthetic_corpus.py``), K = ``LDA_K``, CSR chunks of ``LDA_CHUNK``
  documents. Variational batch EM, ``LDA_ITER`` iterations: the fit also runs a last
  E-step for ``bound_`` (and on dask a pass counting the words), so time per iteration
  = mean / (LDA_ITER + 1). Gibbs: ``LDA_SWEEPS`` sweeps of AD-LDA (the chunks are the
  partitions) vs the in-memory partitioned sampler (2 threads); time per sweep
  (``seconds_per_iteration``) = mean / LDA_SWEEPS (including the initialisation).
"""

import warnings

import numpy as np
import pytest

from fastml.hmm import GaussianHMM
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


# ---- GaussianHMM (diag) ------------------------------------------------------------
S_HMM, T_HMM, D_HMM, K_HMM, N_ITER_HMM, SEQ_PER_CHUNK = 64, 5000, 4, 16, 3, 8


def _hmm_chunk(block_info=None):
    """Chunk i: SEQ_PER_CHUNK sequences of a sticky 16-state chain, from seed i."""
    i = block_info[None]["chunk-location"][0]
    rng = np.random.default_rng(200 + i)
    means = np.random.default_rng(0).normal(size=(K_HMM, D_HMM)) * 3
    n = SEQ_PER_CHUNK * T_HMM
    states = np.repeat(rng.integers(K_HMM, size=n // 50 + 1), 50)[:n]
    return means[states] + rng.standard_normal((n, D_HMM))


@pytest.fixture(scope="module")
def hmm_problem(client):
    rows = SEQ_PER_CHUNK * T_HMM
    dX = da.map_blocks(
        _hmm_chunk, dtype=np.float64,
        chunks=((rows,) * (S_HMM // SEQ_PER_CHUNK), (D_HMM,)),
    ).persist()  # fmt: skip
    distributed.wait(dX)
    X = dX.compute()
    rng = np.random.default_rng(1)
    start = dict(
        startprob_=np.full(K_HMM, 1.0 / K_HMM),
        transmat_=rng.dirichlet(np.ones(K_HMM) * 5, size=K_HMM),
        means_=X[rng.choice(len(X), size=K_HMM, replace=False)],
        covars_=np.ones((K_HMM, D_HMM)),
    )
    return X, dX, np.full(S_HMM, T_HMM), start


def _hmm_fit(X, lengths, start):
    def run():
        m = GaussianHMM(K_HMM, "diag", n_iter=N_ITER_HMM, tol=-1e300, init_params="",
                        n_jobs=2)  # fmt: skip
        for name, value in start.items():
            setattr(m, name, value.copy())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return m.fit(X, lengths)

    return run


@pytest.mark.parametrize("impl", ["in-memory-2-threads", "dask-2-workers"])
def bench_hmm_em_dask(benchmark, impl, hmm_problem, all_cores):
    X, dX, lengths, start = hmm_problem
    benchmark.group = "hmm-gaussian-diag-em-64x5000-d4-K16-dask-vs-memory"
    benchmark.extra_info.update(
        sequences=S_HMM, steps=T_HMM, d=D_HMM, k=K_HMM, em_iterations=N_ITER_HMM,
        sequences_per_chunk=SEQ_PER_CHUNK,
    )  # fmt: skip
    data = X if impl.startswith("in-memory") else dX
    m = benchmark.pedantic(_hmm_fit(data, lengths, start), rounds=3, iterations=1)
    benchmark.extra_info["seconds_per_iteration"] = (
        benchmark.stats.stats.mean / N_ITER_HMM
    )
    assert len(m.monitor_.history) == N_ITER_HMM
    assert np.isfinite(m.monitor_.history).all()


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


@pytest.mark.parametrize(
    "impl", ["in-memory-2-threads", "dask-2-workers", "dask-2-workers-1-sync"]
)
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
    if impl.endswith("1-sync") and method != "gibbs":
        pytest.skip("syncs_per_sweep is a Gibbs parameter")
    # AD-LDA merges the counts syncs_per_sweep times per sweep (default 2)
    syncs = 1 if impl.endswith("1-sync") else 2

    def run():
        return LatentDirichletAllocation(
            LDA_K, method=method, max_iter=n_iter, random_state=0, n_jobs=2,
            syncs_per_sweep=syncs,
        ).fit(data)  # fmt: skip

    m = benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["seconds_per_iteration"] = benchmark.stats.stats.mean / steps
    assert m.n_iter_ == n_iter and np.isfinite(m.components_).all()
