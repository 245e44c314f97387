"""Fits on Dask arrays, on a real 2-process ``LocalCluster``: the in-memory fit from the
same initial parameters is the oracle (1e-10 relative), the chunk-streaming
single-process fit (dask's synchronous scheduler, same chunks) the oracle for data
larger than the cluster's memory; a killed worker and a vanished client end in a
correct result or a clear error within a timeout. Skipped without dask.distributed.
"""

import os
import signal
import threading
import time
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")
import dask  # noqa: E402

from fastml.mixture import (  # noqa: E402
    BayesianGaussianMixture,
    ConvergenceWarning,
    GaussianMixture,
)
from fastml.stats import RunningMoments, mean_variance, variance  # noqa: E402

COV_TYPES = ["full", "tied", "diag", "spherical"]
MEMORY_LIMIT = 350e6  # bytes per worker (a worker with fastml imported: ~90-150 MB)
TIMEOUT = 90  # s: a fit that takes longer is a hang


# The 2-process cluster fixtures (``cluster``, ``client``, ``restore_environ``,
# ``local_cluster``) live in conftest.py, shared with test_hmm_dask.py.
pytestmark = pytest.mark.usefixtures("restore_environ")


@pytest.fixture
def own_client(request, local_cluster):
    """A fresh cluster for a test that stresses it (memory limit, killed worker), so
    no other test inherits its state."""
    cl = local_cluster(**getattr(request, "param", {}))
    try:
        with distributed.Client(cl) as c:
            yield c
    finally:
        cl.close()


def _blobs(n, d, k, seed):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * 4
    return centers[rng.integers(k, size=n)] + rng.normal(size=(n, d))


def _init(X, k, ct, seed=0):
    """Initial parameters shared by the dask and the in-memory fit."""
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    prec = {
        "full": np.stack([np.eye(d)] * k),
        "tied": np.eye(d),
        "diag": np.ones((k, d)),
        "spherical": np.ones(k),
    }[ct]
    return dict(
        weights_init=np.full(k, 1.0 / k),
        means_init=X[rng.choice(len(X), k, replace=False)],
        precisions_init=prec,
    )


def _quiet_fit(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X)


X_MEM = _blobs(30_000, 3, 3, seed=1)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_dask_fit_equals_in_memory_fit(client, ct):
    kw = dict(covariance_type=ct, max_iter=6, tol=0.0, **_init(X_MEM, 3, ct))
    ref = _quiet_fit(GaussianMixture(3, **kw), X_MEM)
    dX = da.from_array(X_MEM, chunks=(7000, 3))
    got = _quiet_fit(GaussianMixture(3, **kw), dX)
    # oracle: the in-memory fit from the same initial parameters
    assert got.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-10, abs=0)
    np.testing.assert_allclose(got.lower_bounds_, ref.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(got.means_, ref.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.covariances_, ref.covariances_, rtol=1e-10)
    np.testing.assert_allclose(got.weights_, ref.weights_, rtol=1e-10)
    assert got.n_features_in_ == 3


def test_dask_predict_is_lazy_and_matches(client):
    gm = _quiet_fit(GaussianMixture(3, max_iter=5, random_state=0), X_MEM)
    dX = da.from_array(X_MEM, chunks=(7000, 3))
    lazy = {
        "score_samples": gm.score_samples(dX),
        "predict_proba": gm.predict_proba(dX),
        "predict": gm.predict(dX),
    }
    for name, arr in lazy.items():
        assert isinstance(arr, da.Array), name  # lazy: nothing computed yet
        assert arr.chunks[0] == dX.chunks[0]
        ref = getattr(gm, name)(X_MEM)  # oracle: in-memory inference
        got = arr.compute()
        assert got.shape == ref.shape and got.dtype == ref.dtype
        if name == "predict":
            assert (got == ref).mean() > 0.9999
        else:
            np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)
    for name in ("score", "bic", "aic"):  # reduced on the workers
        got, ref = getattr(gm, name)(dX), getattr(gm, name)(X_MEM)
        assert got == pytest.approx(ref, rel=1e-12), name


def test_dask_float32_and_feature_chunks(client):
    X32 = X_MEM.astype(np.float32)
    kw = dict(covariance_type="diag", max_iter=4, tol=0.0, **_init(X_MEM, 3, "diag"))
    ref = _quiet_fit(GaussianMixture(3, **kw), X32)
    # chunked along features too: rechunked so every row is whole on one worker
    got = _quiet_fit(GaussianMixture(3, **kw), da.from_array(X32, chunks=(5000, 2)))
    assert got.means_.dtype == np.float32
    np.testing.assert_allclose(got.means_, ref.means_, rtol=1e-5)
    assert got.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-6)


def test_dask_bayesian_fit_equals_in_memory_fit(client):
    """Warm start from the same state: the dask fit continues exactly as in memory
    (default priors computed on the workers)."""
    X = X_MEM
    start = _quiet_fit(BayesianGaussianMixture(4, max_iter=2, random_state=0), X)
    a = start.set_params(warm_start=True, max_iter=5, tol=0.0)
    import copy

    b = copy.deepcopy(a)
    _quiet_fit(a, X)
    _quiet_fit(b, da.from_array(X, chunks=(6000, 3)))
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(b.elbo_, a.elbo_, rtol=1e-10)
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=1e-9)


def test_dask_init_is_deterministic(client):
    dX = da.from_array(X_MEM, chunks=(7000, 3))
    a = _quiet_fit(GaussianMixture(3, max_iter=3, random_state=5), dX)
    b = _quiet_fit(GaussianMixture(3, max_iter=3, random_state=5), dX)
    assert np.array_equal(a.means_, b.means_) and a.lower_bound_ == b.lower_bound_
    # the sample covers all rows here (n < 20000 would be all of them; 30000 > it):
    # the fit still finds the three well-separated blobs
    ref = _quiet_fit(GaussianMixture(3, max_iter=50, random_state=5), X_MEM)
    assert a.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-2)


def test_dask_stats_equal_in_memory(client):
    rng = np.random.default_rng(2)
    x = 1e9 + rng.standard_normal((40_000, 5))
    dx = da.from_array(x, chunks=(6000, 2))
    for axis in (None, 0, 1, (0, 1)):
        m, v = mean_variance(dx, ddof=1, axis=axis)
        m_ref, v_ref = mean_variance(x, ddof=1, axis=axis)  # oracle: in memory
        np.testing.assert_allclose(v, v_ref, rtol=1e-11)
        np.testing.assert_allclose(m, m_ref, rtol=1e-15)
    assert variance(dx) == pytest.approx(np.var(x), rel=1e-11)  # oracle: numpy
    rm = RunningMoments().update(dx[:10_000]).update(x[10_000:])
    m_ref, v_ref = mean_variance(x, ddof=1, axis=0)  # oracle: in memory (fsum-tested)
    np.testing.assert_allclose(rm.variance(ddof=1), v_ref, rtol=1e-11)
    np.testing.assert_allclose(rm.mean, m_ref, rtol=1e-15)


def test_dask_bad_input(client):
    X = X_MEM.copy()
    X[20_001, 1] = np.nan
    dX = da.from_array(X, chunks=(7000, 3))
    init = _init(X_MEM, 3, "full")
    with pytest.raises(ValueError, match=r"X chunk \(2, 0\) \(\[14000:21000, 0:3\]\)"):
        GaussianMixture(3, max_iter=2, **init).fit(dX)
    with pytest.raises(ValueError, match=r"x chunk .*14000:21000.*NaN"):
        variance(dX)
    unknown = da.from_array(X_MEM, chunks=(7000, 3))
    unknown = unknown[unknown[:, 0] > -1e9]
    with pytest.raises(ValueError, match=r"unknown chunk sizes.*compute_chunk_sizes"):
        GaussianMixture(3).fit(unknown)
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        variance(unknown)
    with pytest.raises(ValueError, match="X must be 2-dimensional"):
        GaussianMixture(3).fit(da.ones(10, chunks=5))
    with pytest.raises(TypeError, match="X must have a real numeric dtype"):
        GaussianMixture(3).fit(da.ones((10, 2), dtype=complex, chunks=5))
    with pytest.raises(ValueError, match="n_jobs"):
        GaussianMixture(3, n_jobs=0).fit(da.ones((10, 2), chunks=5))
    gm = _quiet_fit(GaussianMixture(2, max_iter=2, random_state=0), X_MEM)
    with pytest.raises(ValueError, match="X has 2 features"):
        gm.predict(da.ones((10, 2), chunks=5))


# ------------------------------------------------ larger than the cluster's memory
ROWS_PER_CHUNK, D_BIG, K_BIG = 100_000, 6, 3
N_CHUNKS = 370  # 370 x 100,000 x 6 float64 = 1.78 GB (the cluster has 2 x 350 MB)
BIG_CENTERS = np.random.default_rng(9).normal(size=(K_BIG, D_BIG)) * 4


def _make_chunk(block_info=None):
    """Chunk i of the lazily generated data, made on the worker from seed i (a tenth
    drawn, tiled ten times: the test is about memory, so generation is kept cheap)."""
    i = block_info[None]["chunk-location"][0]
    rng = np.random.default_rng(1000 + i)
    m = ROWS_PER_CHUNK // 10
    z = rng.integers(K_BIG, size=m)
    return np.tile(BIG_CENTERS[z] + rng.standard_normal((m, D_BIG)), (10, 1))


def _big_array():
    return da.map_blocks(
        _make_chunk,
        dtype=np.float64,
        chunks=((ROWS_PER_CHUNK,) * N_CHUNKS, (D_BIG,)),
    )


def _big_kw():
    return dict(
        covariance_type="diag",
        max_iter=2,
        tol=0.0,
        weights_init=np.full(K_BIG, 1.0 / K_BIG),
        means_init=BIG_CENTERS + 0.5,
        precisions_init=np.ones((K_BIG, D_BIG)),
    )


def _worker_pids(client):
    return client.run(os.getpid)


@pytest.mark.parametrize("own_client", [dict(memory_limit=MEMORY_LIMIT)], indirect=True)
def test_data_larger_than_cluster_memory(own_client):
    client = own_client
    X = _big_array()
    assert X.nbytes > 2.5 * 2 * MEMORY_LIMIT  # > 2.5x the whole cluster's memory
    pids = _worker_pids(client)
    got = _quiet_fit(GaussianMixture(K_BIG, **_big_kw()), X)
    assert _worker_pids(client) == pids  # no worker was restarted
    with dask.config.set(scheduler="synchronous"):  # one process, chunk by chunk
        ref = _quiet_fit(GaussianMixture(K_BIG, **_big_kw()), _big_array())
    # oracle: the chunk-streaming single-process fit (same chunks, same merge tree)
    assert got.lower_bounds_ == ref.lower_bounds_
    assert np.array_equal(got.means_, ref.means_)
    assert np.array_equal(got.covariances_, ref.covariances_)
    np.testing.assert_allclose(
        np.sort(got.means_, 0), np.sort(BIG_CENTERS, 0), atol=0.01
    )


# ----------------------------------------------------------------- failures
def _fit_in_thread(est, X):
    out = {}

    def run():
        try:
            out["est"] = _quiet_fit(est, X)
        except BaseException as exc:  # reported to the test
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def test_worker_killed_mid_fit(own_client):
    client = own_client
    X = da.from_array(_blobs(400_000, 4, 3, seed=3), chunks=(20_000, 4))
    kw = dict(
        covariance_type="full", max_iter=12, tol=0.0, **_init(X.compute(), 3, "full")
    )
    ref = _quiet_fit(GaussianMixture(3, **kw), X)
    victim = next(iter(_worker_pids(client).values()))
    t, out = _fit_in_thread(GaussianMixture(3, **kw), X)
    time.sleep(1.0)
    os.kill(victim, signal.SIGKILL)
    t.join(TIMEOUT)
    assert not t.is_alive(), "the fit hung after a worker was killed"
    if "error" in out:  # a clear error is acceptable, a silently wrong result is not
        assert "worker" in str(out["error"]).lower(), out["error"]
    else:  # Dask recomputed the lost chunks: the same result
        got = out["est"]
        assert got.lower_bounds_ == ref.lower_bounds_
        assert np.array_equal(got.means_, ref.means_)


def test_client_closed_mid_fit(close_client_mid_fit):
    X = da.from_array(_blobs(400_000, 4, 3, seed=4), chunks=(20_000, 4))
    kw = dict(max_iter=200, tol=0.0, **_init(X.compute(), 3, "full"))
    close_client_mid_fit(lambda: GaussianMixture(3, **kw).fit(X), 1.5)


def _sum_rows_times(block, scale, offset):
    return block.sum() * scale + offset


def test_dask_reduce_chunk_args_reach_their_chunk():
    """``chunk_args[i]`` reaches chunk ``i`` only (C order of the chunk grid), after the
    shared ``args``; a wrong count is refused."""
    from fastml._parallel import dask_reduce

    x = np.arange(20.0)
    dx = da.from_array(x, chunks=(5, 7, 8))
    offsets = [(1000.0,), (20000.0,), (300000.0,)]
    got = dask_reduce(
        dx,
        _sum_rows_times,
        lambda a, b: a + b,
        args=(2.0,),
        chunk_args=offsets,
        name="x",
    )
    want = sum(
        x[a:b].sum() * 2.0 + o[0]
        for (a, b), o in zip([(0, 5), (5, 12), (12, 20)], offsets, strict=True)
    )
    assert got == want
    with pytest.raises(ValueError, match="3 chunks"):
        dask_reduce(
            dx, _sum_rows_times, lambda a, b: a + b, args=(2.0,), chunk_args=offsets[:2]
        )
