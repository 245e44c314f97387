"""fastml.hmm over many sequences on threads (``n_jobs``), and the vectorised Viterbi.

Threads: the sequences given by ``lengths`` are cut into blocks of whole sequences fixed
by ``lengths`` alone, and the Baum-Welch statistics of the blocks are added in block
order, so every ``n_jobs`` must give the same bits (asserted with ``==``). The block size
is lowered here so that small problems make many blocks; a single block (the whole
data) is the oracle the blocked results must match to rounding (1e-10).

Viterbi: brute force over all K^T paths on tiny models (K chosen to run every branch of
the max-plus loop: K < 4, K = 4 and 8 (constant-size copies), K with a remainder), and
exact ties, whose rule is documented: the lowest final state, then for each state the
lowest-index predecessor, i.e. among the optimal paths the smallest in reverse
lexicographic order (last state first).
"""

import itertools

import numpy as np
import pytest

from fastml.hmm import (
    GMMHMM,
    CategoricalHMM,
    GaussianHMM,
    MultinomialHMM,
    PoissonHMM,
    _base,
)

N_JOBS = [1, 2, 3, 4]


def _chain(rng, k):
    return rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k), size=k)


def _set(model, **params):
    for name, value in params.items():
        setattr(model, name, np.array(value, copy=True))
    return model


def _lengths(rng, n_seq=23):
    return rng.integers(1, 60, size=n_seq)


def _problem(kind, rng, k=3):
    """(model factory taking n_jobs, X, lengths) with parameters set (no init)."""
    sp, tm = _chain(rng, k)
    lengths = _lengths(rng)
    n = int(lengths.sum())
    if kind == "categorical":
        m = 5
        ep = rng.dirichlet(np.ones(m), size=k)
        X = rng.integers(0, m, size=(n, 1))

        def make(n_jobs, **kw):
            return _set(
                CategoricalHMM(k, n_features=m, init_params="", n_jobs=n_jobs, **kw),
                startprob_=sp, transmat_=tm, emissionprob_=ep,
            )  # fmt: skip
    elif kind.startswith("gaussian"):
        ct = kind.split("-")[1]
        d = 2
        mu = rng.normal(size=(k, d)) * 2
        cv = {
            "diag": rng.uniform(0.5, 2.0, size=(k, d)),
            "full": np.stack([np.eye(d) * s for s in rng.uniform(0.5, 2.0, k)]),
        }[ct]
        X = rng.normal(size=(n, d)) * 2
        X[5] = np.nan  # a missing row inside some block

        def make(n_jobs, **kw):
            return _set(
                GaussianHMM(
                    k, covariance_type=ct, init_params="", n_jobs=n_jobs, **kw
                ),
                startprob_=sp, transmat_=tm, means_=mu, covars_=cv,
            )  # fmt: skip
    elif kind == "poisson":
        lam = rng.uniform(0.5, 6.0, size=(k, 2))
        X = rng.poisson(3.0, size=(n, 2))

        def make(n_jobs, **kw):
            return _set(
                PoissonHMM(k, init_params="", n_jobs=n_jobs, **kw),
                startprob_=sp, transmat_=tm, lambdas_=lam,
            )  # fmt: skip
    elif kind == "multinomial":
        ep = rng.dirichlet(np.ones(3), size=k)
        X = rng.multinomial(4, [0.2, 0.3, 0.5], size=n)

        def make(n_jobs, **kw):
            return _set(
                MultinomialHMM(k, n_trials=4, init_params="", n_jobs=n_jobs, **kw),
                startprob_=sp, transmat_=tm, emissionprob_=ep,
            )  # fmt: skip
    else:  # gmm
        nm, d = 2, 2
        w = rng.dirichlet(np.ones(nm), size=k)
        mu = rng.normal(size=(k, nm, d)) * 2
        cv = rng.uniform(0.5, 2.0, size=(k, nm, d))
        X = rng.normal(size=(n, d)) * 2

        def make(n_jobs, **kw):
            return _set(
                GMMHMM(k, nm, init_params="", n_jobs=n_jobs, **kw),
                startprob_=sp, transmat_=tm, weights_=w, means_=mu, covars_=cv,
            )  # fmt: skip

    return make, X, lengths


KINDS = [
    "categorical",
    "gaussian-diag",
    "gaussian-full",
    "poisson",
    "multinomial",
    "gmm",
]


def _everything(model, X, lengths):
    """Every threaded public result, as arrays."""
    lp, post = model.score_samples(X, lengths)
    lv, path = model.decode(X, lengths)
    _, map_path = model.decode(X, lengths, algorithm="map")
    return {
        "score": np.array(model.score(X, lengths)),
        "score_samples": np.array(lp),
        "posteriors": post,
        "predict_proba": model.predict_proba(X, lengths),
        "viterbi_logprob": np.array(lv),
        "viterbi_path": path,
        "predict": model.predict(X, lengths),
        "map_path": map_path,
    }


def _fitted(model, X, lengths):
    model.fit(X, lengths)
    out = {
        name: np.asarray(getattr(model, name))
        for name in model._fitted_attrs
        if not name.startswith("_") or name == "_covars_"
    }
    out["history"] = np.array(model.monitor_.history)
    return out


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(_base, "_BLOCK_ROWS", 64)  # ~ 10 blocks of whole sequences


@pytest.mark.parametrize("impl", ["scaling", "log"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.filterwarnings("ignore::fastml.exceptions.ConvergenceWarning")
def test_same_bits_for_every_n_jobs(kind, impl, small_blocks):
    rng = np.random.default_rng(KINDS.index(kind))
    make, X, lengths = _problem(kind, rng)
    assert len(_base._sequence_blocks(_base._spans(lengths, len(X)))) >= 8
    ref = _everything(make(1, implementation=impl), X, lengths)
    ref_fit = _fitted(make(1, implementation=impl, n_iter=3), X, lengths)
    for n_jobs in N_JOBS[1:]:
        got = _everything(make(n_jobs, implementation=impl), X, lengths)
        for name, value in ref.items():
            assert np.array_equal(got[name], value), (n_jobs, name)  # bit-identical
        got_fit = _fitted(make(n_jobs, implementation=impl, n_iter=3), X, lengths)
        for name, value in ref_fit.items():
            assert np.array_equal(got_fit[name], value), (n_jobs, name)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.filterwarnings("ignore::fastml.exceptions.ConvergenceWarning")
def test_blocks_agree_with_one_block(kind, monkeypatch):
    rng = np.random.default_rng(10 + KINDS.index(kind))
    make, X, lengths = _problem(kind, rng)
    one = _everything(make(1), X, lengths)  # one block: all sequences in one call
    one_fit = _fitted(make(1, n_iter=3), X, lengths)
    monkeypatch.setattr(_base, "_BLOCK_ROWS", 50)
    many = _everything(make(2), X, lengths)
    many_fit = _fitted(make(2, n_iter=3), X, lengths)
    for name, value in one.items():
        np.testing.assert_allclose(many[name], value, rtol=1e-10, atol=1e-10)
    for name, value in one_fit.items():
        np.testing.assert_allclose(many_fit[name], value, rtol=1e-10, atol=1e-10)


def test_sequence_blocks_are_whole_sequences_fixed_by_lengths(monkeypatch):
    monkeypatch.setattr(_base, "_BLOCK_ROWS", 100)
    lengths = np.array([30, 30, 30, 250, 10, 60, 40, 1])
    spans = _base._spans(lengths, int(lengths.sum()))
    blocks = _base._sequence_blocks(spans)
    # first rows 0, 30, 60, 90 | 340 | 350 | 410 | 450: keys 0,0,0,0,3,3,4,4
    assert blocks == [(0, 4), (4, 6), (6, 8)]
    covered = [i for f, e in blocks for i in range(f, e)]
    assert covered == list(range(len(lengths)))


def test_bad_n_jobs():
    rng = np.random.default_rng(0)
    make, X, lengths = _problem("categorical", rng)
    for bad, exc in [(0, ValueError), (-2, ValueError), ("2", TypeError),
                     (1.5, TypeError)]:  # fmt: skip
        with pytest.raises(exc, match="n_jobs"):
            make(bad).score(X, lengths)
        with pytest.raises(exc, match="n_jobs"):
            make(bad).fit(X, lengths)
    assert make(-1).score(X, lengths) == make(1).score(X, lengths)


def test_kernels_stop_when_cancelled():
    from fastml._kernels import _hmm

    rng = np.random.default_rng(1)
    k, t = 16, 40_000  # > 1 poll budget of work
    sp, tm = _chain(rng, k)
    table = rng.dirichlet(np.ones(k), size=5)
    rows = rng.integers(0, 5, t).astype(np.intp)
    spans = np.array([[0, t]], dtype=np.intp)
    lp = np.empty(1)
    stop = np.ones(1, np.uint8)
    with pytest.raises(KeyboardInterrupt, match="cancelled"):
        _hmm.forward_scaled(sp, tm, table, rows, spans, lp, stop)
    la = np.log(tm)
    with pytest.raises(KeyboardInterrupt, match="cancelled"):
        _hmm.viterbi_log(
            np.log(sp), la, np.ascontiguousarray(la.T), np.log(table), rows, spans,
            np.empty((t, k)), np.empty(t, np.intp), lp, stop,
        )  # fmt: skip
    go = np.zeros(1, np.uint8)
    _hmm.forward_scaled(sp, tm, table, rows, spans, lp, go)
    assert np.isfinite(lp[0])
    with pytest.raises(ValueError, match="cancel"):
        _hmm.forward_scaled(sp, tm, table, rows, spans, lp, np.zeros(2, np.uint8))


def test_error_in_one_block_propagates(small_blocks):
    rng = np.random.default_rng(2)
    make, X, lengths = _problem("categorical", rng)
    model = make(3)
    model.emissionprob_[:, 4] = 0.0  # symbol 4 becomes impossible
    model.emissionprob_[:, 0] += model.emissionprob_.sum(axis=1) * 0 + (
        1 - model.emissionprob_.sum(axis=1)
    )
    X[-1] = 4
    with pytest.raises(ValueError, match=r"sequence \d+ .* has probability 0"):
        model.score_samples(X, lengths)


# ---------------------------------------------------------------- Viterbi
def _brute_best(log_pi, log_a, log_b):
    """The optimal paths' log p(X, Z) and, among all optimal paths, the one the
    documented tie rule picks: smallest in reverse lexicographic order."""
    t, k = log_b.shape
    paths = np.array(list(itertools.product(range(k), repeat=t)))
    lj = log_pi[paths[:, 0]] + log_b[0, paths[:, 0]]
    for i in range(1, t):
        lj = lj + log_a[paths[:, i - 1], paths[:, i]] + log_b[i, paths[:, i]]
    best = lj.max()
    tied = paths[lj == best]
    return best, min(tied.tolist(), key=lambda p: p[::-1]), len(tied)


@pytest.mark.parametrize(("k", "t"), [(1, 5), (2, 8), (3, 6), (5, 5), (8, 4), (9, 3)])
@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_viterbi_brute_force(k, t, kind):
    rng = np.random.default_rng(100 * k + t)
    sp, tm = _chain(rng, k)
    if kind == "categorical":
        m = 6
        ep = rng.dirichlet(np.ones(m), size=k)
        model = _set(CategoricalHMM(k), startprob_=sp, transmat_=tm, emissionprob_=ep)
        x = rng.integers(0, m, size=(t, 1))
        log_b = np.log(ep[:, x[:, 0]].T)
    else:
        mu = rng.normal(size=(k, 2)) * 2
        cv = rng.uniform(0.5, 2.0, size=(k, 2))
        model = _set(GaussianHMM(k), startprob_=sp, transmat_=tm, means_=mu, covars_=cv)
        x = rng.normal(size=(t, 2)) * 2
        log_b = -0.5 * (
            np.log(2 * np.pi * cv).sum(1) + (((x[:, None] - mu) ** 2) / cv).sum(2)
        )
    best, path, _ = _brute_best(np.log(sp), np.log(tm), log_b)
    lv, vpath = model.decode(x)
    assert vpath.tolist() == path  # oracle: all K^T paths
    assert lv == pytest.approx(best, rel=1e-12)


@pytest.mark.parametrize("k", [2, 3, 4, 5, 8])
def test_viterbi_ties_go_to_the_lowest_index(k):
    # States 1 and k-1 are copies of each other (same start, transition, emission
    # probabilities; every path through one has an exact twin through the other),
    # and so are the other states pairwise in the all-equal case below.
    rng = np.random.default_rng(k)
    t, m = 5, 3
    sp = rng.dirichlet(np.ones(k))
    tm = rng.dirichlet(np.ones(k), size=k)
    ep = rng.dirichlet(np.ones(m), size=k)
    j = k - 1
    if k > 2:
        sp[[1, j]] = sp[[1, j]].mean()
        tm[[1, j]] = tm[[1, j]].mean(axis=0)
        tm[:, [1, j]] = tm[:, [1, j]].mean(axis=1, keepdims=True)
        ep[:] = [0.05, 0.45, 0.5]
        ep[1] = ep[j] = [0.98, 0.01, 0.01]  # the twins explain symbol 0 best
    x = np.zeros((t, 1), dtype=int)
    cases = [(np.full(k, 1 / k), np.full((k, k), 1 / k), np.full((k, m), 1 / m))]
    if k > 2:
        cases.insert(0, (sp, tm, ep))
    for params in cases:
        model = _set(
            CategoricalHMM(k), startprob_=params[0], transmat_=params[1],
            emissionprob_=params[2],
        )  # fmt: skip
        log_b = np.log(params[2][:, x[:, 0]].T)
        best, path, n_tied = _brute_best(np.log(params[0]), np.log(params[1]), log_b)
        lv, vpath = model.decode(x)
        assert n_tied > 1  # the case is a real tie
        assert vpath.tolist() == path  # oracle: the documented rule on all K^T paths
        assert lv == pytest.approx(best, rel=1e-12)
    assert vpath.tolist() == [0] * t  # all paths tie: all zeros


@pytest.mark.parametrize("k", [16, 33, 64])
def test_viterbi_large_k_matches_hmmlearn(k):
    hmm = pytest.importorskip("hmmlearn.hmm")
    rng = np.random.default_rng(k)
    sp, tm = _chain(rng, k)
    mu = rng.normal(size=(k, 3)) * 3
    cv = rng.uniform(0.5, 2.0, size=(k, 3))
    ours = _set(GaussianHMM(k), startprob_=sp, transmat_=tm, means_=mu, covars_=cv)
    peer = _set(
        hmm.GaussianHMM(k, implementation="scaling"),
        startprob_=sp, transmat_=tm, means_=mu, covars_=cv,
    )  # fmt: skip
    X, _ = ours.sample(400, random_state=0)
    lv, path = ours.decode(X, [150, 250])
    lv_peer, path_peer = peer.decode(X, [150, 250])
    assert lv == pytest.approx(lv_peer, rel=1e-10)  # oracle: hmmlearn
    np.testing.assert_array_equal(path, path_peer)
    np.testing.assert_allclose(
        ours.predict_proba(X, [150, 250]), peer.predict_proba(X, [150, 250]),
        atol=1e-8,
    )  # fmt: skip
    assert ours.score(X, [150, 250]) == pytest.approx(
        peer.score(X, [150, 250]), rel=1e-10
    )


def test_simd_build_agrees_with_baseline():
    # Every build of the kernels this CPU runs (baseline, and AVX2 + FMA when built):
    # Viterbi uses only additions and maxima, so its paths and scores are the same
    # bits; the forward-backward sums may contract into FMAs (rounding only).
    from fastml._kernels import builds

    rng = np.random.default_rng(9)
    k, t = 13, 500
    sp, tm = _chain(rng, k)
    table = rng.dirichlet(np.ones(k), size=7)
    rows = rng.integers(0, 7, t).astype(np.intp)
    spans = np.array([[0, 200], [200, t]], dtype=np.intp)
    la = np.log(tm)
    go = np.zeros(1, np.uint8)
    out = []
    for mod in builds("_hmm"):
        path, lv, lp = np.empty(t, np.intp), np.empty(2), np.empty(2)
        mod.viterbi_log(
            np.log(sp), la, np.ascontiguousarray(la.T), np.log(table), rows, spans,
            np.empty((300, k)), path, lv, go,
        )  # fmt: skip
        gamma, xi = np.empty((t, k)), np.zeros((k, k))
        mod.forward_backward_scaled(
            sp, tm, np.ascontiguousarray(tm.T), table, rows, spans, np.empty((0, k)),
            np.empty(300), gamma, xi, np.zeros((0, 0)), lp, go,
        )  # fmt: skip
        out.append((path, lv, lp, gamma, xi))
    for path, lv, lp, gamma, xi in out[1:]:
        assert np.array_equal(path, out[0][0]) and np.array_equal(lv, out[0][1])
        np.testing.assert_allclose(lp, out[0][2], rtol=1e-12)
        np.testing.assert_allclose(gamma, out[0][3], rtol=0, atol=1e-12)
        np.testing.assert_allclose(xi, out[0][4], rtol=1e-12)
    assert np.isfinite(out[0][2]).all() and np.allclose(gamma.sum(axis=1), 1.0)
