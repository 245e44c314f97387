"""Collapsed Gibbs for LDA at scale: the SparseLDA sampler against the dense conditional
(exact bucket masses, a chi-square test on draws, the exact posterior of a tiny corpus
by enumeration), partitioned sweeps (identical for every n_jobs, log-likelihood within
0.5% of serial on Reuters), topic recovery, bad input.
"""

import itertools

import numpy as np
import pytest
from scipy import sparse, stats
from scipy.special import gammaln

from fastml._kernels import _lda
from fastml.lda import LatentDirichletAllocation, check_counts
from fastml.lda._counts import _tokens
from fastml.lda._gibbs import (
    SPARSE_MIN_K,
    GibbsSampler,
    default_partitions,
    use_sparse,
)


def _joint_loglik(z, words, doc_of, D, V, K, alpha, eta):
    """log p(w, z) by G&S eqs. 2-3 in numpy (independent of the kernels)."""
    ndk = np.zeros((D, K))
    nkw = np.zeros((K, V))
    np.add.at(ndk, (doc_of, z), 1)
    np.add.at(nkw, (z, words), 1)
    return (
        K * (gammaln(V * eta) - V * gammaln(eta))
        + np.sum(gammaln(nkw + eta))
        - np.sum(gammaln(nkw.sum(1) + V * eta))
        + D * (gammaln(K * alpha) - K * gammaln(alpha))
        + np.sum(gammaln(ndk + alpha))
        - np.sum(gammaln(ndk.sum(1) + K * alpha))
    )


def _fit(X, K, **kw):
    kw.setdefault("random_state", 0)
    return LatentDirichletAllocation(
        K, method="gibbs", doc_topic_prior=0.1, topic_word_prior=0.01, **kw
    ).fit(X)


# ---------------------------------------------------------- the sparse conditional
@pytest.mark.parametrize("use_tree", [False, True])
@pytest.mark.parametrize(
    "K, doc_topics, word_topics",
    [(6, 3, 2), (40, 5, 7), (300, 12, 30), (8, 0, 3), (8, 3, 0), (5, 0, 0)],
)
def test_sparse_conditional_equals_dense(K, doc_topics, word_topics, use_tree):
    rng = np.random.default_rng(K + doc_topics)
    D, V, d, w = 3, 50, 1, 7
    alpha, eta = 0.3, 0.02
    ndk = rng.integers(0, 4, size=(D, K)).astype(np.intc)
    nwk = rng.integers(0, 3, size=(V, K)).astype(np.intc)
    ndk[d] = 0
    nwk[w] = 0
    ndk[d, rng.choice(K, doc_topics, replace=False)] = rng.integers(1, 9, doc_topics)
    nwk[w, rng.choice(K, word_topics, replace=False)] = rng.integers(1, 6, word_topics)
    nk = (nwk.sum(0) + 5).astype(np.intc)
    dl = np.flatnonzero(ndk[d]).astype(np.intc)[::-1].copy()  # any order
    wl = np.flatnonzero(nwk[w]).astype(np.intc)
    n_draws = 200_000
    counts = np.zeros(K, dtype=np.intp)
    masses = np.empty(3)
    _lda.sparse_topic_draws(
        np.random.PCG64(1), w, d, ndk, nwk, nk, alpha, eta, wl, dl, use_tree,
        n_draws, counts, masses,
    )  # fmt: skip
    den = nk + V * eta
    dense = (nwk[w] + eta) * (ndk[d] + alpha) / den  # G&S eq. 5, unnormalised
    if use_tree:  # F+LDA split (Yu et al. 2015): n_dk F_k + alpha F_k
        F = (nwk[w] + eta) / den
        expect = [0.0, np.sum(ndk[d] * F), alpha * F.sum()]
    else:  # SparseLDA buckets (Yao et al. 2009 eq. 2): s + r + q
        expect = [
            np.sum(alpha * eta / den),
            np.sum(ndk[d] * eta / den),
            np.sum(nwk[w] * (ndk[d] + alpha) / den),
        ]
    np.testing.assert_allclose(masses, expect, rtol=1e-12, atol=0)
    assert masses.sum() == pytest.approx(dense.sum(), rel=1e-12)
    # the draws follow the dense conditional: chi-square, false-alarm rate 1e-3
    expected = n_draws * dense / dense.sum()
    big = expected >= 5  # pool the rare topics into one cell
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    assert counts.sum() == n_draws
    assert stats.chisquare(obs, exp).pvalue > 1e-3


def _tiny_chain(sparse_, n_partitions, tree_work=None, seed=0):
    words = np.array([0, 1, 1, 2, 0, 2], dtype=np.intc)
    nd = np.array([2, 1, 3])
    doc_ptr = np.concatenate([[0], np.cumsum(nd)]).astype(np.intp)
    chain = GibbsSampler(
        words, doc_ptr, nd, 3, 2, 0.5, 0.3, np.random.default_rng(seed),
        sparse=sparse_, n_partitions=n_partitions, tree_work=tree_work,
    )  # fmt: skip
    return chain, words, np.repeat(np.arange(3), nd)


# sparse: F+tree for every word (tree_work 0) or never (inf)
@pytest.mark.parametrize(
    "sparse_, tree_work", [(False, None), (True, 0.0), (True, np.inf)]
)
def test_serial_chain_samples_the_exact_posterior(sparse_, tree_work):
    """All 2^6 topic assignments of a 6-token corpus enumerated: the chain's state
    frequencies over 30,000 sweeps match p(z | w) (TV distance; the Monte Carlo
    standard error of the TV estimate here is about 0.006, the bound is 0.03)."""
    chain, words, doc_of = _tiny_chain(sparse_, 1, tree_work)
    states = np.array(list(itertools.product([0, 1], repeat=6)))
    ll = np.array([_joint_loglik(s, words, doc_of, 3, 3, 2, 0.5, 0.3) for s in states])
    exact = np.exp(ll - ll.max())
    exact /= exact.sum()
    n = 30_000
    seen = np.zeros(64)
    code = 2 ** np.arange(5, -1, -1)
    for _ in range(n):
        chain.sweep(1)
        seen[chain.topics() @ code] += 1
    assert 0.5 * np.abs(seen / n - exact).sum() < 0.03
    # the chain's bookkeeping stays exact
    z = chain.topics()
    assert chain.loglik() == pytest.approx(
        _joint_loglik(z, words, doc_of, 3, 3, 2, 0.5, 0.3), rel=1e-12
    )


def _check_state(chain, csr):
    words, _, nd = _tokens(csr)
    z = chain.topics()
    D, V = csr.shape
    K = chain.K
    doc_of = np.repeat(np.arange(D), nd)
    np.testing.assert_array_equal(
        chain.ndk, np.bincount(doc_of * K + z, minlength=D * K).reshape(D, K)
    )
    np.testing.assert_array_equal(
        chain.topic_word_counts(),
        np.bincount(words * K + z, minlength=V * K).reshape(V, K),
    )
    # internal word ids: each word part's words are consecutive rows
    assert sorted(chain.word_id) == list(range(V))
    np.testing.assert_array_equal(chain.nk, np.bincount(z, minlength=K))
    if chain.sparse:  # the topic lists are the nonzero counts
        for rows, topics, ptr, nnz in (
            (chain.nwk, chain.word_topics, chain.word_ptr, chain.word_nnz),
            (chain.ndk, chain.doc_topics, chain.doc_lptr, chain.doc_nnz),
        ):
            for i in range(rows.shape[0]):
                got = np.sort(topics[ptr[i] : ptr[i] + nnz[i]])
                np.testing.assert_array_equal(got, np.flatnonzero(rows[i]))
                assert nnz[i] <= ptr[i + 1] - ptr[i]


@pytest.mark.parametrize(
    "sparse_, P, tree_work",
    [
        (True, 1, None),
        (True, 3, None),
        (True, 3, 0.0),
        (True, 2, np.inf),
        (False, 3, None),
    ],
)
def test_counts_and_topic_lists_stay_consistent(sparse_, P, tree_work, zipf_lda_corpus):
    X, _ = zipf_lda_corpus(60, 8, 300, 40, seed=1)
    csr = check_counts(X, integer=True)
    words, doc_ptr, nd = _tokens(csr)
    chain = GibbsSampler(
        words,
        doc_ptr,
        nd,
        300,
        80,
        0.1,
        0.01,
        np.random.default_rng(0),
        sparse=sparse_,
        n_partitions=P,
    )
    for _ in range(5):
        chain.sweep(2)
    _check_state(chain, csr)
    assert chain.loglik() == pytest.approx(
        _joint_loglik(
            chain.topics(), words, np.repeat(np.arange(60), nd), 60, 300, 80, 0.1, 0.01
        ),
        rel=1e-12,
    )


def _lane_major_inverse_cdf(counts, a, eta, u):
    """The topic whose interval holds ``u * sum(p)`` for ``p = (counts + eta) a``
    (G&S eq. 5, float32), laid out as the kernel's draw (``_lda_draw.h``) lays it out:
    rows of 4 lanes (the last row holding topics ``K - 4 .. K - 1``, its repeats
    masked), each lane a chain of running sums down the rows; then the lane from the
    lanes' offsets, then the row inside the lane. ``u`` may be an array."""
    f = np.float32
    K = counts.size
    R = (K + 3) // 4
    topic = np.concatenate([np.arange(4 * (R - 1)), np.arange(4) + max(K - 4, 0)])
    keep = topic < K
    if K >= 4:
        keep[4 * (R - 1) : 4 * R - (K - 4 * (R - 1))] = False
    topic = np.minimum(topic, K - 1)
    p = np.where(keep, (counts[topic].astype(f) + f(eta)) * a[topic], f(0))
    cum = np.empty((R, 4), dtype=f)
    s = np.zeros(4, dtype=f)
    for r in range(R):
        s = s + p.reshape(R, 4)[r]
        cum[r] = s
    T = cum[-1]
    o = np.array([f(0), T[0], T[0] + T[1], T[0] + T[1] + T[2]], dtype=f)
    x = np.asarray(u).astype(f) * (o[2] + (T[2] + T[3]))
    lane = np.sum(o[1:, None] <= x.ravel(), axis=0)
    row = np.sum(cum[:-1, lane] <= x.ravel() - o[lane], axis=0)
    k = np.minimum(topic[4 * row + lane], K - 1)
    return k.reshape(x.shape) if x.ndim else int(k[0])


@pytest.mark.parametrize("K", [1, 2, 3, 4, 5, 7, 12, 20, 21, 64, 127])
def test_dense_draw_layout_gives_each_topic_its_probability(K):
    """The float32 lane-major inverse CDF of the dense draw (the numpy transcription
    that ``test_serial_dense_chain_is_the_reference_sweep`` holds the kernel to, bit
    for bit): on a grid of 10^5 uniforms each topic's share of the draws is
    ``p_k / sum(p)`` up to the grid step and float32 round-off."""
    rng = np.random.default_rng(K)
    counts = rng.integers(0, 50, size=K)
    counts[rng.random(K) < 0.3] = 0
    nd = rng.integers(0, 20, size=K)
    inv = 1.0 / (rng.integers(100, 5000, size=K) + 200.0)
    a = ((nd + 0.1) * inv).astype(np.float32)
    n = 100_000
    k = _lane_major_inverse_cdf(counts, a, 0.01, (np.arange(n) + 0.5) / n)
    p = (counts + 0.01) * a.astype(np.float64)
    np.testing.assert_allclose(np.bincount(k, minlength=K) / n, p / p.sum(), atol=2e-5)


def _reference_dense_chain(words, nd, V, K, alpha, eta, seed, n_sweeps):
    """Griffiths & Steyvers eq. 5 sweeps transcribed in numpy, token by token in corpus
    order: the topics drawn by inverse CDF (topics in lane-major order) from one
    uniform per token of the stream the serial sampler spawns (initial topics drawn
    first from the same Generator)."""
    rng = np.random.default_rng(seed)
    z = rng.integers(K, size=words.shape[0])
    stream = rng.spawn(1)[0]
    doc_of = np.repeat(np.arange(nd.shape[0]), nd)
    ndk = np.zeros((nd.shape[0], K), dtype=np.int64)
    nwk = np.zeros((V, K), dtype=np.int64)
    np.add.at(ndk, (doc_of, z), 1)
    np.add.at(nwk, (words, z), 1)
    nk = nwk.sum(0)
    for _ in range(n_sweeps):
        for i, (d, w) in enumerate(zip(doc_of, words, strict=True)):
            ndk[d, z[i]] -= 1
            nwk[w, z[i]] -= 1
            nk[z[i]] -= 1
            a = ((ndk[d] + alpha) * (1.0 / (nk + V * eta))).astype(np.float32)
            k = _lane_major_inverse_cdf(nwk[w], a, eta, stream.random())
            z[i] = k
            ndk[d, k] += 1
            nwk[w, k] += 1
            nk[k] += 1
    return z, ndk, nwk


@pytest.mark.parametrize("K", [3, 4, 7, 12, 21])
def test_serial_dense_chain_is_the_reference_sweep(K, zipf_lda_corpus):
    """One partition, dense draw: the bits of a numpy transcription of G&S eq. 5 on the
    same random stream (topics and counts after three sweeps; an empty document
    included; K below the draw's 4 lanes, one row, and several rows with the last one
    full or partial)."""
    X, _ = zipf_lda_corpus(30, 5, 200, 50, seed=2)
    X[4] = 0
    csr = check_counts(X, integer=True)
    words, doc_ptr, nd = _tokens(csr)
    V, alpha, eta = 200, 0.1, 0.01
    chain = GibbsSampler(
        words, doc_ptr, nd, V, K, alpha, eta, np.random.default_rng(5),
        sparse=False, n_partitions=1,
    )  # fmt: skip
    for _ in range(3):
        chain.sweep(1)
    z, ndk, nwk = _reference_dense_chain(words, nd, V, K, alpha, eta, 5, 3)
    np.testing.assert_array_equal(chain.topics(), z)
    np.testing.assert_array_equal(chain.ndk, ndk)
    np.testing.assert_array_equal(chain.topic_word_counts(), nwk)


def test_sparse_loglik_per_token_matches_dense(zipf_lda_corpus):
    """Same model, different draws: after 150 sweeps the mean log p(w, z) per token
    over the last 50 (two seeds each) agrees within 0.5% (the seed-to-seed spread here
    is about 0.1%)."""
    X, _ = zipf_lda_corpus(300, 10, 2000, 60, seed=3)
    n = X.sum()
    per_token = {}
    for sampler in ("dense", "sparse"):
        lls = [
            np.mean(
                _fit(
                    X,
                    30,
                    sampler=sampler,
                    max_iter=150,
                    evaluate_every=1,
                    random_state=seed,
                ).loglikelihoods_[-50:]
            )
            for seed in (0, 1)
        ]
        per_token[sampler] = np.mean(lls) / n
    assert per_token["sparse"] == pytest.approx(per_token["dense"], rel=5e-3)


def test_sampler_auto_picks_by_K():
    assert use_sparse("auto", SPARSE_MIN_K) and not use_sparse("auto", SPARSE_MIN_K - 1)
    assert use_sparse("sparse", 2) and not use_sparse("dense", 1000)


def test_default_partitions_depend_on_the_corpus_only(zipf_lda_corpus):
    assert default_partitions(2**18 - 1) == 1 and default_partitions(2**18) == 4
    assert default_partitions(2**20 - 1) == 4 and default_partitions(2**20) == 8
    X, _ = zipf_lda_corpus(60, 4, 300, 30, seed=8)  # 1,800 tokens: one partition
    a = _fit(X, 50, max_iter=3, n_jobs=2)
    b = _fit(X, 50, max_iter=3, n_partitions=1, n_jobs=1)
    np.testing.assert_array_equal(a.z_, b.z_)


@pytest.mark.parametrize("sampler", ["dense", "sparse"])
def test_gibbs_reproducible_for_a_seed(sampler, zipf_lda_corpus):
    X, _ = zipf_lda_corpus(80, 5, 300, 30, seed=4)
    a, b, c = (
        _fit(X, 70, sampler=sampler, max_iter=4, random_state=s) for s in (7, 7, 8)
    )
    np.testing.assert_array_equal(a.z_, b.z_)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert not np.array_equal(a.z_, c.z_)


def test_partitioned_gibbs_with_numpys_global_state(zipf_lda_corpus):
    # random_state=None after np.random.seed: the legacy MT19937 cannot spawn the
    # partitions' streams; they are seeded from its stream instead, reproducibly
    X, _ = zipf_lda_corpus(80, 5, 300, 30, seed=4)
    fits = []
    for _ in range(2):
        np.random.seed(3)  # noqa: NPY002 (the legacy global state)
        fits.append(_fit(X, 5, n_partitions=2, max_iter=3, random_state=None))
    np.testing.assert_array_equal(fits[0].z_, fits[1].z_)


# --------------------------------------------------------------- parallel sweeps
@pytest.mark.parametrize("sampler", ["dense", "sparse"])
def test_partitioned_result_identical_for_every_n_jobs(sampler, zipf_lda_corpus):
    X, _ = zipf_lda_corpus(80, 6, 500, 40, seed=5)
    fits = [
        _fit(X, 40, sampler=sampler, n_partitions=3, n_jobs=j, max_iter=5)
        for j in (1, 2, 3, 4)
    ]
    for f in fits[1:]:
        np.testing.assert_array_equal(f.z_, fits[0].z_)
        assert f.loglikelihoods_ == fits[0].loglikelihoods_
    # and the partition count is part of the result
    other = _fit(X, 40, sampler=sampler, n_partitions=2, n_jobs=2, max_iter=5)
    assert not np.array_equal(other.z_, fits[0].z_)


def test_interleaved_dense_blocks_equal_one_at_a_time(zipf_lda_corpus):
    """The dense kernel sweeps a sub-step's blocks two at a time, tokens interleaved;
    sweeping every block alone (same sub-steps, streams and totals) gives the same
    bits. P = 5: two pairs and one block alone per sub-step."""
    X, _ = zipf_lda_corpus(120, 6, 400, 40, seed=11)
    csr = check_counts(X, integer=True)
    words, doc_ptr, nd = _tokens(csr)
    args = (words, doc_ptr, nd, 400, 9, 0.1, 0.01)
    chains = [
        GibbsSampler(*args, np.random.default_rng(4), sparse=False, n_partitions=5)
        for _ in range(2)
    ]
    cancel = np.zeros(1, np.uint8)
    for _ in range(3):
        chains[0].sweep(1)
        one = chains[1]
        for j in range(one.P):
            nk0 = one.nk.copy()
            parts = [p for p in range(one.P) if one._blocks[p * one.P + (p + j) % 5]]
            assert len(parts) == 5
            for p in parts:
                one._sweep_blocks(j, [p], cancel)
            for p in parts:
                one.nk += one._nk_part[p] - nk0
    np.testing.assert_array_equal(chains[0].z, chains[1].z)
    np.testing.assert_array_equal(chains[0].nwk, chains[1].nwk)
    np.testing.assert_array_equal(chains[0].nk, chains[1].nk)
    _check_state(chains[0], csr)


@pytest.mark.parametrize("sampler", ["dense", "sparse"])
def test_more_partitions_than_documents_or_words(sampler):
    """Empty partitions (and empty documents) are skipped; the chain stays exact."""
    X = np.array([[3, 0, 1], [0, 0, 0], [1, 4, 0]])
    m = _fit(X, 2, sampler=sampler, n_partitions=5, n_jobs=2, max_iter=20)
    csr = check_counts(X, integer=True)
    words, _, nd = _tokens(csr)
    doc_of = np.repeat(np.arange(3), nd)
    np.testing.assert_array_equal(m.ndk_.sum(1), X.sum(1))
    np.testing.assert_array_equal(m.nwk_.sum(1), X.sum(0))
    assert m.loglikelihoods_[-1] == pytest.approx(
        _joint_loglik(m.z_, words, doc_of, 3, 3, 2, 0.1, 0.01), rel=1e-12
    )


@pytest.mark.parametrize("sparse_", [False, True])
def test_cancelled_block_stops_with_consistent_counts(sparse_, zipf_lda_corpus):
    """A set cancel byte (another thread interrupted) stops a long block at its next
    poll with KeyboardInterrupt; the counts and topic lists still match ``z``."""
    X, _ = zipf_lda_corpus(500, 5, 2000, 200, seed=7)
    csr = check_counts(X, integer=True)
    words, doc_ptr, nd = _tokens(csr)
    chains = [
        GibbsSampler(
            words,
            doc_ptr,
            nd,
            2000,
            50,
            0.1,
            0.01,
            np.random.default_rng(0),
            sparse=sparse_,
            n_partitions=1,
        )
        for _ in range(2)
    ]
    z0 = chains[0].topics()
    chains[1]._sweep_blocks(0, [0], np.zeros(1, np.uint8))
    with pytest.raises(KeyboardInterrupt, match="cancelled"):
        chains[0]._sweep_blocks(0, [0], np.ones(1, np.uint8))
    chains[0].nk = chains[0]._nk_part[0]  # the block's own totals, as it left them
    _check_state(chains[0], csr)
    # stopped part-way: fewer tokens moved than in the whole block (same stream)
    changed, full = (np.mean(c.topics() != z0) for c in chains)
    assert 0 < changed < full - 0.1


@pytest.fixture(scope="module")
def reuters():
    return pytest.importorskip("lda.datasets").load_reuters()


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["dense", "sparse"])
def test_partitioned_loglik_within_half_percent_of_serial_on_reuters(reuters, sampler):
    """200 sweeps, K = 20: log p(w, z) per token (mean of sweeps 181-200) of the
    partitioned sampler (P = 4 and P = 8, the defaults for large corpora; 2 threads)
    vs the serial one, each averaged over seeds 0-3. One chain's value varies by about
    0.3% from seed to seed (both are still climbing at 200 sweeps), so the standard
    error of the difference of two 4-seed means is about 0.2% against the 0.5% bound
    (two comparisons: a false alarm needs a 2.5-sigma difference in either)."""
    X = reuters
    n = X.sum()
    ll = {}
    for P in (1, 4, 8):
        ll[P] = (
            np.mean(
                [
                    _fit(
                        X,
                        20,
                        sampler=sampler,
                        n_partitions=P,
                        n_jobs=2,
                        max_iter=200,
                        evaluate_every=1,
                        random_state=seed,
                    ).loglikelihoods_[-20:]
                    for seed in range(4)
                ]
            )
            / n
        )
    assert abs(ll[4] - ll[1]) <= 5e-3 * abs(ll[1])
    assert abs(ll[8] - ll[1]) <= 5e-3 * abs(ll[1])


def test_topic_recovery_on_synthetic_corpus(zipf_lda_corpus, matched_cosine):
    """Hungarian matching of learned to true topics on cosine similarity: mean >= 0.9."""
    K = 8
    X, beta = zipf_lda_corpus(400, K, 1000, 150, seed=6)
    m = _fit(X, K, sampler="sparse", n_partitions=2, n_jobs=2, max_iter=150)
    assert matched_cosine(m.topic_word_, beta) >= 0.9


# ------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kw, err, match",
    [
        (dict(sampler="fast"), ValueError, "sampler must be one of"),
        (dict(sampler=None), ValueError, "sampler must be one of"),
        (dict(n_partitions=0), ValueError, "n_partitions"),
        (dict(n_partitions=1.5), TypeError, "n_partitions"),
        (dict(n_jobs=0), ValueError, "n_jobs"),
        (dict(n_jobs="2"), TypeError, "n_jobs"),
    ],
)
def test_bad_gibbs_parameters(kw, err, match):
    X = np.array([[1, 2, 0], [0, 1, 3]])
    with pytest.raises(err, match=match):
        LatentDirichletAllocation(2, method="gibbs", **kw).fit(X)


def test_token_total_beyond_the_32_bit_counters():
    X = sparse.csr_matrix(np.array([[2**31 - 5, 0], [3, 4]], dtype=np.int64))
    with pytest.raises(ValueError, match=r"below 2\*\*31"):
        LatentDirichletAllocation(2, method="gibbs").fit(X)
