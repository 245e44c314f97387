"""LatentDirichletAllocation on Dask arrays, on a real 2-process ``LocalCluster``.

Oracles: the in-memory variational fit from the same ``random_state`` (1e-10 relative;
dense and sparse chunks); for AD-LDA Gibbs, the counts recomputed from the returned
document-topic counts (consistency), the same bits on another scheduler (determinism)
and the serial sampler's log-likelihood per token (quality, within 0.5%); for
:func:`fastml._parallel.dask_chunk_states`, numpy on the same data. Skipped without
dask.distributed.
"""

import numpy as np
import pytest
from scipy import sparse

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")
import dask  # noqa: E402

from fastml._kernels import _lda  # noqa: E402
from fastml._parallel import dask_chunk_states  # noqa: E402
from fastml.lda import LatentDirichletAllocation as LDA  # noqa: E402
from fastml.lda import _dask  # noqa: E402

# ``cluster`` and ``client``: the module-scoped 2-process LocalCluster of conftest.py


@pytest.fixture(scope="module")
def x_mem(zipf_lda_corpus):
    return zipf_lda_corpus(400, 6, 300, 50, seed=3)[0]


def _csr_chunk(block):
    return sparse.csr_matrix(block)


def _dask_inputs(X):
    """The same counts as a dask array with dense chunks (the vocabulary chunked too:
    rechunked on fit), with CSR chunks from ``from_array`` and from ``map_blocks``."""
    csr = sparse.csr_matrix(X)
    return {
        "dense": da.from_array(X, chunks=(90, 100)),
        "sparse": da.from_array(csr, chunks=(90, -1), asarray=False),
        "map_blocks": da.from_array(X, chunks=(130, -1)).map_blocks(
            _csr_chunk, dtype=X.dtype
        ),
    }


# ---------------------------------------------------------------- variational
@pytest.fixture(scope="module")
def ref_fit(x_mem):
    return LDA(6, max_iter=3, random_state=0).fit(x_mem)


@pytest.mark.parametrize("kind", ["dense", "sparse", "map_blocks"])
def test_variational_dask_equals_in_memory(client, kind, x_mem, ref_fit):
    ref = ref_fit
    dX = _dask_inputs(x_mem)[kind].persist()  # the chunks live on the workers
    got = LDA(6, max_iter=3, random_state=0).fit(dX)
    # oracle: the in-memory fit from the same random_state
    np.testing.assert_allclose(got.components_, ref.components_, rtol=1e-10)
    np.testing.assert_allclose(got.bounds_, ref.bounds_, rtol=1e-10)
    assert got.bound_ == pytest.approx(ref.bound_, rel=1e-10)
    assert got.n_features_in_ == x_mem.shape[1] and got.n_iter_ == ref.n_iter_
    if kind == "map_blocks":
        return  # inference below: once per chunk type
    theta = got.transform(dX)
    assert isinstance(theta, da.Array) and theta.chunks[0] == dX.chunks[0]  # lazy
    np.testing.assert_allclose(theta.compute(), ref.transform(x_mem), rtol=1e-10)
    np.testing.assert_allclose(got.doc_topic_.compute(), ref.doc_topic_, rtol=1e-10)
    raw = got.transform(dX, normalize=False).compute()
    np.testing.assert_allclose(raw, ref.transform(x_mem, normalize=False), rtol=1e-10)
    assert got.perplexity(dX) == pytest.approx(ref.perplexity(x_mem), rel=1e-10)
    assert got.perplexity(dX, sub_sampling=True) == pytest.approx(
        ref.perplexity(x_mem, sub_sampling=True), rel=1e-10
    )
    assert got.score(dX) == pytest.approx(ref.score(x_mem), rel=1e-10)


def test_variational_dask_priors_float32_and_fit_transform(client, x_mem):
    """optimize_priors (its E[log theta] sum reduced on the workers) and float32 counts
    (float32 fitted attributes, as in memory); fit_transform gives transform's lazy
    result."""
    X32 = x_mem.astype(np.float32)
    kw = dict(max_iter=3, random_state=1, optimize_priors=True)
    ref = LDA(6, **kw).fit(X32)
    m = LDA(6, **kw)
    theta = m.fit_transform(da.from_array(X32, chunks=(150, -1)))
    assert m.components_.dtype == np.float32 and theta.dtype == np.float32
    np.testing.assert_allclose(m.components_, ref.components_, rtol=1e-6)
    assert m.doc_topic_prior_ == pytest.approx(ref.doc_topic_prior_, rel=1e-10)
    assert m.topic_word_prior_ == pytest.approx(ref.topic_word_prior_, rel=1e-10)
    np.testing.assert_allclose(theta.compute(), ref.transform(X32), rtol=1e-5)


# ---------------------------------------------------------------- AD-LDA Gibbs
def _gibbs(K=6, **kw):
    kw.setdefault("random_state", 0)
    return LDA(K, method="gibbs", doc_topic_prior=0.1, topic_word_prior=0.01, **kw)


@pytest.mark.parametrize("sampler", ["dense", "sparse"])
def test_gibbs_dask_consistent_and_deterministic(client, sampler, x_mem):
    dX = da.from_array(x_mem, chunks=(100, -1))
    a = _gibbs(sampler=sampler, max_iter=6, evaluate_every=3).fit(dX)
    ndk = a.ndk_.compute()
    # the global counts are the sums of the partitions' own (integer, exact)
    np.testing.assert_array_equal(ndk.sum(axis=1), x_mem.sum(axis=1))
    np.testing.assert_array_equal(a.nwk_.sum(axis=1), x_mem.sum(axis=0))
    np.testing.assert_array_equal(a.nk_, ndk.sum(axis=0))
    np.testing.assert_array_equal(a.nk_, a.nwk_.sum(axis=0))
    # oracle: log p(w, z) of the final counts by the in-memory kernel (G&S eqs. 2-3)
    nd = x_mem.sum(axis=1).astype(np.intp)
    ll = _lda.gibbs_loglik(ndk, nd, a.nwk_, a.nk_, 0.1, 0.01)
    assert a.loglikelihoods_[-1] == pytest.approx(ll, rel=1e-12)
    assert len(a.loglikelihoods_) == 2
    # same seed and chunking: the same bits, twice on the 2-worker cluster and on
    # dask's local scheduler with 4 threads
    b = _gibbs(sampler=sampler, max_iter=6, evaluate_every=3).fit(dX)
    np.testing.assert_array_equal(b.nwk_, a.nwk_)
    np.testing.assert_array_equal(b.ndk_.compute(), ndk)
    assert b.loglikelihoods_ == a.loglikelihoods_
    with dask.config.set(scheduler="threads", num_workers=4):
        c = _gibbs(sampler=sampler, max_iter=6, evaluate_every=3).fit(dX)
        np.testing.assert_array_equal(c.nwk_, a.nwk_)
        assert c.loglikelihoods_ == a.loglikelihoods_
        # the seed and the chunking are part of the result
        other_seed = _gibbs(sampler=sampler, max_iter=6, random_state=1).fit(dX)
        other_chunks = _gibbs(sampler=sampler, max_iter=6).fit(dX.rechunk((200, -1)))
    assert not np.array_equal(other_seed.nwk_, a.nwk_)
    assert not np.array_equal(other_chunks.nwk_, a.nwk_)


@pytest.mark.parametrize("sampler", ["dense", "sparse"])
def test_gibbs_dask_steps_of_one_partition_are_one_sweep(sampler, x_mem):
    """With one chunk the partition's copy of the counts is the global counts, so
    sweeping it in ``syncs_per_sweep`` steps must give the bits of one sweep: every
    token resampled once per sweep, in order, from the same stream. 500 steps is
    more than the segments (documents for the dense draw, words for the sparse one),
    so some steps have none."""
    x = x_mem.copy()
    x[-3:] = 0  # empty documents at the end (segments that start at the last token)
    dX = da.from_array(x, chunks=(-1, -1))
    with dask.config.set(scheduler="synchronous"):
        fits = [
            _gibbs(sampler=sampler, max_iter=4, evaluate_every=2, syncs_per_sweep=n)
            .fit(dX)
            for n in (1, 7, 500)
        ]  # fmt: skip
    for f in fits[1:]:
        np.testing.assert_array_equal(f.nwk_, fits[0].nwk_)
        np.testing.assert_array_equal(f.ndk_.compute(), fits[0].ndk_.compute())
        assert f.loglikelihoods_ == fits[0].loglikelihoods_


def test_gibbs_dask_global_random_state(x_mem):
    """random_state=None draws from numpy's global RandomState (MT19937 seeded the
    legacy way, which cannot spawn): the partitions' streams are seeded from four words
    of it, so np.random.seed makes the fit reproducible."""
    dX = da.from_array(x_mem, chunks=(100, -1))
    fits = []
    with dask.config.set(scheduler="synchronous"):
        for seed in (0, 0, 1):
            np.random.seed(seed)  # noqa: NPY002 (the legacy global state)
            fits.append(_gibbs(random_state=None, max_iter=2).fit(dX).nwk_)
    assert np.array_equal(fits[0], fits[1]) and not np.array_equal(fits[0], fits[2])


def test_gibbs_state_stays_on_the_workers(client, monkeypatch, x_mem):
    """Every step of a sweep, each partition's state is a future held by a worker
    (not this process), and what reaches the client is only the V x K and K count changes and
    one number."""
    seen = []

    def spy(x, fn, combine, **kw):
        states, stats = dask_chunk_states(x, fn, combine, **kw)
        futures = [next(iter(s.__dask_graph__().values())) for s in states]
        holders = client.who_has(futures)
        seen.append((fn.__name__, stats, [f.type for f in futures], holders))
        return states, stats

    monkeypatch.setattr(_dask, "dask_chunk_states", spy)
    dX = da.from_array(x_mem, chunks=(100, -1))
    m = _gibbs(max_iter=3).fit(dX)
    # 3 sweeps of 2 steps (syncs_per_sweep=2, the default)
    assert [s[0] for s in seen] == ["_gibbs_init"] + ["_gibbs_sweep"] * 6 + [
        "_take_ndk"
    ]
    workers = set(client.scheduler_info()["workers"])
    V, K = x_mem.shape[1], 6
    for name, stats, types, holders in seen:
        assert all(len(h) >= 1 and set(h) <= workers for h in holders.values())
        if name == "_gibbs_sweep":
            assert all(t is _dask._Partition for t in types), types
            dnwk, dnk, ll = stats
            assert dnwk.shape == (V, K) and dnwk.dtype == np.intc
            assert dnk.shape == (K,) and isinstance(ll, float)
            assert int(dnwk.sum()) == 0 and int(dnk.sum()) == 0  # tokens only move
    assert m.ndk_.shape == (x_mem.shape[0], K)


def test_gibbs_dask_loglik_within_half_percent_of_serial(zipf_lda_corpus):
    """AD-LDA (4 partitions) vs the serial sampler, 60 sweeps, K = 3: log p(w, z) per
    token, mean of the last 10 sweeps, median over seeds 0-2 (in one process: the
    result does not depend on the scheduler, see above). The corpus's topics are well
    identified, so every chain reaches the same mode (seed-to-seed spread ~0.03%);
    with more topics on a small corpus single chains stick in merged-topic modes,
    1-5% lower, for either sampler."""
    X, _ = zipf_lda_corpus(400, 3, 300, 60, seed=5)
    dX = da.from_array(X, chunks=(100, -1))
    kw = dict(max_iter=60, evaluate_every=1)
    with dask.config.set(scheduler="synchronous"):
        dist = np.median(
            [
                np.mean(_gibbs(3, random_state=s, **kw).fit(dX).loglikelihoods_[-10:])
                for s in (0, 1, 2)
            ]
        )
    serial = np.median(
        [
            np.mean(
                _gibbs(3, random_state=s, n_partitions=1, **kw)
                .fit(X)
                .loglikelihoods_[-20:]
            )
            for s in (0, 1, 2)
        ]
    )
    assert abs(dist - serial) <= 5e-3 * abs(serial)


@pytest.mark.slow
def test_gibbs_dask_within_half_percent_of_serial_on_reuters():
    """The issue's floor: Reuters, K = 20, 200 sweeps; AD-LDA over 4 row chunks
    (default ``syncs_per_sweep=2``) vs the serial sampler, log p(w, z) per token (mean
    of sweeps 181-200), averaged over seeds 0-7. Run in one process (the same bits as
    on the cluster, see above) to keep the file fast.

    Per seed the gap ranges from +0.2% to -0.65%: in some chains the serial sampler
    reaches a better mode (its log-likelihood varies by 0.8% between seeds). Averaged
    over seeds 0-7 AD-LDA is 0.26% below serial with 2 merges per sweep, and 0.52%
    with one (the staleness of the other partitions' counts costs that much), with a
    standard error of about 0.1%; a mean over two seeds passes or fails by the luck
    of the random stream."""
    X = pytest.importorskip("lda.datasets").load_reuters()
    dX = da.from_array(X, chunks=(-(-X.shape[0] // 4), -1))
    kw = dict(max_iter=200, evaluate_every=1)
    ll = {}
    with dask.config.set(scheduler="synchronous"):
        for name, data, extra in (("dask", dX, {}), ("serial", X, {"n_partitions": 1})):
            ll[name] = np.mean(
                [
                    LDA(20, method="gibbs", random_state=s, **kw, **extra)
                    .fit(data)
                    .loglikelihoods_[-20:]
                    for s in range(8)
                ]
            )
    assert abs(ll["dask"] - ll["serial"]) <= 5e-3 * abs(ll["serial"])


# ------------------------------------------------------------- dask_chunk_states
def _init_state(chunk, scale):
    state = {"x": np.asarray(chunk, dtype=float) * scale}
    return state, (state["x"].sum(), state["x"].shape[0])


def _add_to_state(state, inc, own):
    state["x"] += inc + own
    return state, (state["x"].sum(), state["x"].shape[0])


def _pairs(a, b):
    return a[0] + b[0], a[1] + b[1]


def test_dask_chunk_states_keeps_states_on_workers(client):
    x = np.arange(30.0)
    dx = da.from_array(x, chunks=(4, 10, 16))
    states, (total, n) = dask_chunk_states(dx, _init_state, _pairs, args=(2.0,))
    assert total == 2 * x.sum() and n == 30  # oracle: numpy
    own = [(100.0,), (200.0,), (300.0,)]
    for _ in range(2):
        states, (total, n) = dask_chunk_states(
            dx, _add_to_state, _pairs, states=states, args=(1.0,), chunk_args=own
        )
    want = 2 * x.sum() + 2 * (30 * 1.0 + 4 * 100.0 + 10 * 200.0 + 16 * 300.0)
    assert total == want and n == 30
    futures = [next(iter(s.__dask_graph__().values())) for s in states]
    assert all(isinstance(f, distributed.Future) for f in futures)
    workers = set(client.scheduler_info()["workers"])
    assert all(set(h) <= workers and h for h in client.who_has(futures).values())
    # the same steps on the local scheduler: the same numbers
    with dask.config.set(scheduler="synchronous"):
        s2, _ = dask_chunk_states(dx, _init_state, _pairs, args=(2.0,))
        for _ in range(2):
            s2, got = dask_chunk_states(
                dx, _add_to_state, _pairs, states=s2, args=(1.0,), chunk_args=own
            )
    assert got == (total, n)
    with pytest.raises(ValueError, match="states has 2 entries for 3 chunks"):
        dask_chunk_states(dx, _add_to_state, _pairs, states=states[:2], args=(1.0, 0))
    with pytest.raises(ValueError, match="chunk_args has 1 entries for 3 chunks"):
        dask_chunk_states(dx, _init_state, _pairs, chunk_args=[(1.0,)])


# ------------------------------------------------------------------- bad input
def test_bad_dask_input(client, x_mem):
    bad = x_mem.astype(float)
    bad[250, 7] = np.nan
    with pytest.raises(
        ValueError, match=r"X chunk \(2, 0\) \(\[200:300, 0:300\]\).*NaN"
    ):
        LDA(6, max_iter=2).fit(da.from_array(bad, chunks=(100, -1)))
    bad[250, 7] = -1
    with pytest.raises(ValueError, match=r"X chunk \(2, 0\) .*Negative values"):
        LDA(6, method="gibbs", max_iter=2).fit(da.from_array(bad, chunks=(100, -1)))
    bad[250, 7] = 0.5
    with pytest.raises(ValueError, match=r"X chunk \(2, 0\) .*integer counts"):
        LDA(6, method="gibbs", max_iter=2).fit(da.from_array(bad, chunks=(100, -1)))
    LDA(6, max_iter=1).fit(da.from_array(bad, chunks=(100, -1)))  # variational: fine
    dX = da.from_array(x_mem, chunks=(100, -1))
    unknown = dX[dX[:, 0] >= 0]
    with pytest.raises(ValueError, match=r"unknown chunk sizes.*compute_chunk_sizes"):
        LDA(6).fit(unknown)
    with pytest.raises(ValueError, match="X must be 2-dimensional"):
        LDA(6).fit(da.ones(10, chunks=5))
    with pytest.raises(ValueError, match="X has no words"):
        LDA(6, method="gibbs").fit(da.zeros((10, 4), chunks=5))
    with pytest.raises(ValueError, match="X has no words"):
        LDA(6).fit(da.zeros((10, 4), chunks=5))
    with pytest.raises(ValueError, match="vocabulary has 3 entries but X has 300"):
        LDA(6).fit(dX, vocabulary=["a", "b", "c"])
    with pytest.raises(ValueError, match="learning_method='online' is not available"):
        LDA(6, learning_method="online").fit(dX)
    for kw in (dict(split_merge=True), dict(init="documents")):
        with pytest.raises(ValueError, match="not available for a dask array X"):
            LDA(6, **kw).fit(dX)
    with pytest.raises(ValueError, match="n_partitions must be None for a dask"):
        LDA(6, method="gibbs", n_partitions=2).fit(dX)
    for bad_syncs, err in ((0, ValueError), (1.5, TypeError), ("2", TypeError)):
        with pytest.raises(err, match="syncs_per_sweep"):
            LDA(6, method="gibbs", syncs_per_sweep=bad_syncs).fit(dX)
    m = LDA(6, max_iter=1, random_state=0).fit(x_mem)
    with pytest.raises(TypeError, match="partial_fit takes in-memory mini-batches"):
        m.partial_fit(dX)
    wrong = da.from_array(np.ones((20, 301)), chunks=(10, -1))
    for method in (m.transform, m.perplexity, m.score):
        with pytest.raises(ValueError, match="X has 301 word columns but the model"):
            method(wrong)
    g = _gibbs(max_iter=2).fit(x_mem)
    with pytest.raises(ValueError, match="transform of a dask array X needs method"):
        g.transform(dX)


def test_client_closed_mid_fit(close_client_mid_fit, zipf_lda_corpus):
    X, _ = zipf_lda_corpus(600, 6, 300, 40, seed=8)
    dX = da.from_array(X, chunks=(100, -1))
    for est in (_gibbs(max_iter=100_000), LDA(6, max_iter=100_000, random_state=0)):
        close_client_mid_fit(lambda est=est: est.fit(dX), 1.5)
