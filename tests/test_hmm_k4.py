"""The K = 4 recursions kept in AVX2 registers (``_hmm4.h``, in the ``_hmm_avx2`` build).

Oracles: the generic loops of the baseline build on the same inputs (Viterbi: the same
bits; the scaled recursions: rounding only), the log-space implementation on sequences
whose per-step likelihoods are tiny (the scale factors of the K = 4 path are chosen
three steps ahead), and the closed-form likelihood of a chain whose observations are
i.i.d. Brute force over all 4^T paths, with a missing symbol, and the Viterbi tie rule
at K = 4 are in tests/test_hmm.py (``test_categorical_brute_force``) and
tests/test_hmm_threads.py (``test_viterbi_ties_go_to_the_lowest_index``), which run
through the same estimators and so through this path.
"""

import numpy as np
import pytest

from fastml._kernels import builds
from fastml.hmm import CategoricalHMM, GaussianHMM

K = 4
GO = np.zeros(1, np.uint8)


def _avx2():
    mods = builds("_hmm")
    if len(mods) < 2:
        pytest.skip(
            "no AVX2 + FMA build of _hmm on this CPU: the K = 4 path is not used"
        )
    return mods


def _set(model, **params):
    for name, value in params.items():
        setattr(model, name, np.array(value, copy=True))
    return model


def _kernels(mod, sp, tm, table, rows, spans, n):
    """Every kernel of ``mod`` on one problem: Viterbi (path, max log-joint), forward
    log p(X), forward-backward (log p(X), posteriors, xi, counts)."""
    with np.errstate(divide="ignore"):  # a zero transition: log 0 = -inf
        la, lt = np.log(tm), np.log(table)
    longest = int((spans[:, 1] - spans[:, 0]).max())
    s = len(spans)
    path, lv = np.empty(n, np.intp), np.empty(s)
    mod.viterbi_log(
        np.log(sp), la, np.ascontiguousarray(la.T), lt, rows, spans, np.empty((longest, K)),
        path, lv, GO,
    )  # fmt: skip
    lf = np.empty(s)
    mod.forward_scaled(sp, tm, table, rows, spans, lf, GO)
    gamma, xi, lp = np.empty((n, K)), np.zeros((K, K)), np.empty(s)
    counts = np.zeros((len(table), K) if len(rows) else (1, K))
    mod.forward_backward_scaled(
        sp, tm, np.ascontiguousarray(tm.T), table, rows, spans, np.empty((0, K)),
        np.empty(longest), gamma, xi, counts, lp, GO,
    )  # fmt: skip
    return path, lv, lf, lp, gamma, xi, counts


def _problems(rng):
    """(name, startprob, transmat, table, rows) for categorical frames (a table and
    symbols) and continuous ones (a T x K table, no rows), with a zero transition and
    a pair of twin states (exact Viterbi ties)."""
    n, m = 9_500, 6  # more than two chunks of the K = 4 loops (4096 steps)
    sp = rng.dirichlet(np.ones(K))
    tm = rng.dirichlet(np.ones(K), size=K)
    ep = rng.dirichlet(np.ones(m), size=K)
    rows = rng.integers(0, m, n).astype(np.intp)
    zero = tm.copy()
    zero[1, 2] = 0.0
    zero[1] /= zero[1].sum()
    twins_sp, twins_tm, twins_ep = sp.copy(), tm.copy(), ep.copy()
    twins_sp[[1, 3]] = twins_sp[[1, 3]].mean()
    twins_tm[[1, 3]] = twins_tm[[1, 3]].mean(axis=0)
    twins_tm[:, [1, 3]] = twins_tm[:, [1, 3]].mean(axis=1, keepdims=True)
    twins_ep[3] = twins_ep[1]
    frames = rng.uniform(0.01, 1.0, size=(n, K))
    frames /= frames.max(axis=1, keepdims=True)
    none = np.empty(0, np.intp)
    return [
        ("categorical", sp, tm, np.ascontiguousarray(ep.T), rows),
        ("zero-transition", sp, zero, np.ascontiguousarray(ep.T), rows),
        ("twins", twins_sp, twins_tm, np.ascontiguousarray(twins_ep.T), rows),
        ("continuous", sp, tm, frames, none),
    ]


def test_k4_path_agrees_with_generic_loops():
    base, *fast = _avx2()
    rng = np.random.default_rng(4)
    spans = np.array([[0, 1], [1, 3], [3, 4100], [4100, 9_500]], dtype=np.intp)
    for name, sp, tm, table, rows in _problems(rng):
        ref = _kernels(base, sp, tm, table, rows, spans, 9_500)
        for mod in fast:
            path, lv, lf, lp, gamma, xi, counts = _kernels(
                mod, sp, tm, table, rows, spans, 9_500
            )
            # Viterbi: additions and maxima only, the same bits; ties alike
            assert np.array_equal(path, ref[0]), name
            assert np.array_equal(lv, ref[1]), name
            np.testing.assert_allclose(lf, ref[2], rtol=1e-12, err_msg=name)
            np.testing.assert_allclose(lp, ref[3], rtol=1e-12, err_msg=name)
            np.testing.assert_allclose(gamma, ref[4], rtol=0, atol=1e-12, err_msg=name)
            np.testing.assert_allclose(xi, ref[5], rtol=1e-11, err_msg=name)
            np.testing.assert_allclose(counts, ref[6], rtol=1e-11, err_msg=name)
            assert np.allclose(gamma.sum(axis=1), 1.0, rtol=0, atol=1e-13)
        if name == "twins":  # the case has real ties: states 1 and 3 are copies
            assert (ref[0] == 1).any() and not (ref[0] == 3).any()


def _tiny_emissions(scale):
    """A K = 4 chain emitting symbol 0 with probability ~``scale`` in every state."""
    rng = np.random.default_rng(5)
    sp = rng.dirichlet(np.ones(K))
    tm = rng.dirichlet(np.ones(K), size=K)
    p0 = scale * np.array([1.0, 0.5, 2.0, 0.25])
    ep = np.stack([p0, 1 - p0], axis=1)
    return sp, tm, ep


@pytest.mark.parametrize("scale", [1e-60, 1e-100, 1e-150])
def test_k4_tiny_likelihoods_match_log_space(scale):
    # p(x_n) ~ scale per step: the forward vector shrinks by ~scale a step, and the
    # K = 4 path rescales with factors chosen three steps ahead, so three steps of 1e-100
    # (1e-300) stay above DBL_MIN while 1e-150 underflows: the kernel then reports NaN and
    # the estimator redoes the sequence in log space. Either way the public results
    # equal the log-space implementation's.
    sp, tm, ep = _tiny_emissions(scale)
    rng = np.random.default_rng(6)
    x = (rng.random((6_000, 1)) < 0.7).astype(int)  # mostly symbol 1, runs of 0s
    x[1000:1040] = 0  # 40 tiny steps in a row
    fast = _set(CategoricalHMM(K), startprob_=sp, transmat_=tm, emissionprob_=ep)
    slow = _set(
        CategoricalHMM(K, implementation="log"),
        startprob_=sp, transmat_=tm, emissionprob_=ep,
    )  # fmt: skip
    lp = fast.score(x)
    assert np.isfinite(lp) and lp < 40 * np.log(2 * scale)  # the run of 40 alone
    assert lp == pytest.approx(slow.score(x), rel=1e-11)
    np.testing.assert_allclose(
        fast.predict_proba(x), slow.predict_proba(x), rtol=0, atol=1e-10
    )
    for mod in _avx2()[1:]:  # the kernel's own contract: finite, or NaN on underflow
        table = np.ones((3, K))
        table[:2] = ep.T
        lk = np.empty(1)
        mod.forward_scaled(
            sp, tm, table, x[:, 0].astype(np.intp), np.array([[0, len(x)]], np.intp),
            lk, GO,
        )  # fmt: skip
        if scale**3 > 2.3e-308:
            assert lk[0] == pytest.approx(lp, rel=1e-11)
        else:
            assert np.isnan(lk[0])


def test_k4_long_iid_chain_closed_form():
    # Identical transition rows make the observations i.i.d.: log p(X) = sum_n log
    # (pi B)[x_n], for 300,000 steps (p(X) far below DBL_MIN) of symbols up to 1e-30.
    rng = np.random.default_rng(8)
    m = 5
    sp = rng.dirichlet(np.ones(K))
    ep = rng.dirichlet(np.ones(m), size=K)
    ep[:, 4] = 1e-30 * np.arange(1, K + 1)
    ep /= ep.sum(axis=1, keepdims=True)
    x = rng.integers(0, m, size=(300_000, 1))
    model = _set(
        CategoricalHMM(K), startprob_=sp, transmat_=np.tile(sp, (K, 1)),
        emissionprob_=ep,
    )  # fmt: skip
    marg = sp @ ep
    assert model.score(x) == pytest.approx(np.log(marg[x[:, 0]]).sum(), rel=1e-11)
    post = model.predict_proba(x[:1000])  # i.i.d.: posterior of z_n given x_n alone
    joint = sp[None, :] * ep[:, x[:1000, 0]].T
    np.testing.assert_allclose(
        post, joint / joint.sum(axis=1, keepdims=True), atol=1e-12
    )


def test_k4_gaussian_matches_generic(monkeypatch):
    # Continuous frames (no rows) through the public API: the AVX2 build against the
    # baseline one, several sequences.
    from fastml.hmm import _base

    base, *fast = _avx2()
    rng = np.random.default_rng(11)
    model = _set(
        GaussianHMM(K), startprob_=rng.dirichlet(np.ones(K)),
        transmat_=rng.dirichlet(np.ones(K), size=K), means_=rng.normal(size=(K, 2)) * 2,
        covars_=rng.uniform(0.5, 2.0, size=(K, 2)),
    )  # fmt: skip
    X, _ = model.sample(7_000, random_state=2)
    lengths = [5_000, 1, 1_999]
    out = []
    for mod in [base, *fast]:
        monkeypatch.setattr(_base, "_hmm", mod)
        out.append(
            (model.score(X, lengths), *model.score_samples(X, lengths),
             *model.decode(X, lengths))
        )  # fmt: skip
    for lp, lp2, post, lv, path in out[1:]:
        assert lp == pytest.approx(out[0][0], rel=1e-12)
        assert lp2 == pytest.approx(out[0][1], rel=1e-12)
        np.testing.assert_allclose(post, out[0][2], rtol=0, atol=1e-12)
        assert lv == out[0][3] and np.array_equal(path, out[0][4])


def test_k4_kernels_stop_when_cancelled():
    rng = np.random.default_rng(1)
    t = 400_000  # more than one poll budget of work in the K = 4 loops
    sp = rng.dirichlet(np.ones(K))
    tm = rng.dirichlet(np.ones(K), size=K)
    table = rng.dirichlet(np.ones(K), size=5)
    rows = rng.integers(0, 5, t).astype(np.intp)
    spans = np.array([[0, t]], dtype=np.intp)
    stop = np.ones(1, np.uint8)
    la = np.log(tm)
    for mod in _avx2()[1:]:
        lp = np.empty(1)
        with pytest.raises(KeyboardInterrupt, match="cancelled"):
            mod.forward_scaled(sp, tm, table, rows, spans, lp, stop)
        with pytest.raises(KeyboardInterrupt, match="cancelled"):
            mod.viterbi_log(
                np.log(sp), la, np.ascontiguousarray(la.T), np.log(table), rows, spans,
                np.empty((t, K)), np.empty(t, np.intp), lp, stop,
            )  # fmt: skip
        with pytest.raises(KeyboardInterrupt, match="cancelled"):
            mod.forward_backward_scaled(
                sp, tm, np.ascontiguousarray(tm.T), table, rows, spans,
                np.empty((0, K)), np.empty(t), np.empty((t, K)), np.zeros((0, 0)),
                np.zeros((0, 0)), lp, stop,
            )  # fmt: skip


def test_kernels_refuse_spans_outside_their_buffers():
    # O(S) checks before the GIL is released: no recursion runs past a buffer.
    rng = np.random.default_rng(2)
    sp = rng.dirichlet(np.ones(K))
    tm = rng.dirichlet(np.ones(K), size=K)
    table = rng.dirichlet(np.ones(K), size=3)
    rows = rng.integers(0, 3, 10).astype(np.intp)
    la = np.log(tm)
    for mod in builds("_hmm"):
        lp = np.empty(1)
        for bad in ([[0, 11]], [[3, 3]], [[-1, 4]]):
            with pytest.raises(ValueError, match="span 0"):
                mod.forward_scaled(sp, tm, table, rows, np.array(bad, np.intp), lp, GO)
        ok = np.array([[0, 10]], np.intp)
        with pytest.raises(ValueError, match="viterbi_log: shape mismatch"):
            mod.viterbi_log(
                np.log(sp), la, np.ascontiguousarray(la.T), np.log(table), rows, ok,
                np.empty((9, K)), np.empty(10, np.intp), lp, GO,
            )  # fmt: skip
        with pytest.raises(ValueError, match="forward_backward_scaled: shape mismatch"):
            mod.forward_backward_scaled(
                sp, tm, np.ascontiguousarray(tm.T), table, rows, ok, np.empty((0, K)),
                np.empty(9), np.empty((10, K)), np.zeros((0, 0)), np.zeros((0, 0)),
                lp, GO,
            )  # fmt: skip
