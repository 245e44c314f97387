"""Tests for fastml.hmm: hmmlearn as a peer oracle, brute-force enumeration of all K^T
state paths as an independent one, and bad-input handling.

Tolerances (float64): log-likelihood 1e-8 relative, posteriors and parameters after one
Baum-Welch step 1e-8 absolute. float32 input: 1e-4 relative on the log-likelihood.
"""

import itertools
import logging
import warnings

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multinomial, multivariate_normal, poisson

from fastml.hmm import CategoricalHMM, GaussianHMM, MultinomialHMM, PoissonHMM

IMPLS = ["scaling", "log"]


# ---------------------------------------------------------------- model factories
def _random_chain(rng, k):
    startprob = rng.dirichlet(np.ones(k))
    transmat = rng.dirichlet(np.ones(k), size=k)
    return startprob, transmat


def _covars(rng, ct, k, d):
    if ct == "diag":
        return rng.uniform(0.5, 2.0, size=(k, d))
    if ct == "spherical":
        return rng.uniform(0.5, 2.0, size=k)
    if ct == "full":
        a = rng.normal(size=(k, d, d))
        return a @ a.transpose(0, 2, 1) + np.eye(d)
    a = rng.normal(size=(d, d))
    return a @ a.T + np.eye(d)


def _set(model, **params):
    for name, value in params.items():
        setattr(model, name, np.array(value, copy=True))
    return model


def _categorical_pair(rng, k, m, impl, peer_impl="scaling", n_iter=1):
    hmm = pytest.importorskip("hmmlearn.hmm")
    sp, tm = _random_chain(rng, k)
    ep = rng.dirichlet(np.ones(m), size=k)
    ours = CategoricalHMM(
        k, n_features=m, init_params="", implementation=impl, n_iter=n_iter
    )
    peer = hmm.CategoricalHMM(
        k, n_features=m, init_params="", implementation=peer_impl, n_iter=n_iter
    )
    for model in (ours, peer):
        _set(model, startprob_=sp, transmat_=tm, emissionprob_=ep)
    return ours, peer


def _gaussian_pair(rng, k, d, ct, impl, peer_impl="scaling", n_iter=1):
    hmm = pytest.importorskip("hmmlearn.hmm")
    sp, tm = _random_chain(rng, k)
    mu = rng.normal(size=(k, d)) * 2
    cv = _covars(rng, ct, k, d)
    ours = GaussianHMM(
        k, covariance_type=ct, init_params="", implementation=impl, n_iter=n_iter
    )
    peer = hmm.GaussianHMM(
        k, covariance_type=ct, init_params="", implementation=peer_impl, n_iter=n_iter
    )
    for model in (ours, peer):
        _set(model, startprob_=sp, transmat_=tm, means_=mu, covars_=cv)
    return ours, peer


LENGTHS = [1, 2, 37, 120, 5, 300]  # many sequences, including length 1 and 2


def _path_logprob(model, x, path, lengths):
    """log p(X, Z) of a categorical model for a given state path."""
    total, start = 0.0, 0
    lsp, ltm, lep = (
        np.log(a) for a in (model.startprob_, model.transmat_, model.emissionprob_)
    )
    for n in lengths:
        z, o = path[start : start + n], x[start : start + n]
        total += lsp[z[0]] + ltm[z[:-1], z[1:]].sum() + lep[z, o].sum()
        start += n
    return total


# --------------------------------------------------------------- vs hmmlearn
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("k", "m"), [(2, 3), (4, 7), (7, 16)])
def test_categorical_matches_hmmlearn(impl, k, m):
    rng = np.random.default_rng(k * 100 + m)
    ours, peer = _categorical_pair(rng, k, m, impl)
    X = rng.integers(0, m, size=(sum(LENGTHS), 1))
    lp = ours.score(X, LENGTHS)
    assert lp == pytest.approx(peer.score(X, LENGTHS), rel=1e-8)  # oracle: hmmlearn
    lp2, post = ours.score_samples(X, LENGTHS)
    assert lp2 == pytest.approx(lp, rel=1e-12)
    np.testing.assert_allclose(post, peer.predict_proba(X, LENGTHS), atol=1e-8)
    lv, path = ours.decode(X, LENGTHS)
    lv_peer, path_peer = peer.decode(X, LENGTHS)
    assert lv == pytest.approx(lv_peer, rel=1e-8)
    # Categorical paths can tie exactly (same transition and emission counts), and
    # tie-breaking is implementation-defined: both paths must reach the optimum.
    ours_lj = _path_logprob(ours, X[:, 0], path, LENGTHS)
    assert ours_lj == pytest.approx(_path_logprob(ours, X[:, 0], path_peer, LENGTHS))
    assert ours_lj == pytest.approx(lv, rel=1e-12)
    ours.fit(X, LENGTHS)
    peer.fit(X, LENGTHS)
    for name in ("startprob_", "transmat_", "emissionprob_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(peer, name), atol=1e-8)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("ct", ["diag", "full", "spherical", "tied"])
@pytest.mark.parametrize(("k", "d"), [(2, 1), (3, 4)])
def test_gaussian_matches_hmmlearn(impl, ct, k, d):
    rng = np.random.default_rng(k * 10 + d)
    ours, peer = _gaussian_pair(rng, k, d, ct, impl)
    X = rng.normal(size=(sum(LENGTHS), d)) * 2
    assert ours.score(X, LENGTHS) == pytest.approx(
        peer.score(X, LENGTHS), rel=1e-8
    )  # oracle: hmmlearn
    np.testing.assert_allclose(
        ours.predict_proba(X, LENGTHS), peer.predict_proba(X, LENGTHS), atol=1e-8
    )
    np.testing.assert_array_equal(ours.predict(X, LENGTHS), peer.predict(X, LENGTHS))
    ours.fit(X, LENGTHS)
    peer.fit(X, LENGTHS)
    np.testing.assert_allclose(ours.startprob_, peer.startprob_, atol=1e-8)
    np.testing.assert_allclose(ours.transmat_, peer.transmat_, atol=1e-8)
    np.testing.assert_allclose(ours.means_, peer.means_, atol=1e-8)
    peer_cov = peer._covars_[:, 0] if ct == "spherical" else peer._covars_
    np.testing.assert_allclose(ours._covars_, peer_cov, atol=1e-8)


def test_poisson_matches_hmmlearn():
    hmm = pytest.importorskip("hmmlearn.hmm")
    rng = np.random.default_rng(5)
    k, d = 3, 2
    sp, tm = _random_chain(rng, k)
    lam = rng.uniform(0.5, 8.0, size=(k, d))
    ours = PoissonHMM(k, init_params="", n_iter=1)
    peer = hmm.PoissonHMM(k, init_params="", n_iter=1, implementation="scaling")
    for model in (ours, peer):
        _set(model, startprob_=sp, transmat_=tm, lambdas_=lam)
    X = rng.poisson(4.0, size=(sum(LENGTHS), d))
    assert ours.score(X, LENGTHS) == pytest.approx(peer.score(X, LENGTHS), rel=1e-8)
    np.testing.assert_allclose(
        ours.predict_proba(X, LENGTHS), peer.predict_proba(X, LENGTHS), atol=1e-8
    )
    ours.fit(X, LENGTHS)
    peer.fit(X, LENGTHS)
    np.testing.assert_allclose(ours.lambdas_, peer.lambdas_, atol=1e-8)
    np.testing.assert_allclose(ours.transmat_, peer.transmat_, atol=1e-8)


# ------------------------------------------------------ brute force (no peer)
def _brute(log_pi, log_a, log_b):
    """log p(X), posteriors and the best path by enumerating all K^T paths."""
    t, k = log_b.shape
    paths = np.array(list(itertools.product(range(k), repeat=t)))
    lj = log_pi[paths[:, 0]] + log_b[0, paths[:, 0]]
    for i in range(1, t):
        lj = lj + log_a[paths[:, i - 1], paths[:, i]] + log_b[i, paths[:, i]]
    lp = logsumexp(lj)
    w = np.exp(lj - lp)
    post = np.stack([np.bincount(paths[:, i], w, minlength=k) for i in range(t)])
    best = int(np.argmax(lj))
    return lp, post, paths[best], lj[best]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("k", "t"), [(2, 7), (3, 6), (4, 4)])
def test_categorical_brute_force(impl, k, t):
    rng = np.random.default_rng(k + 10 * t)
    m = 4
    sp, tm = _random_chain(rng, k)
    ep = rng.dirichlet(np.ones(m), size=k)
    model = _set(
        CategoricalHMM(k, implementation=impl),
        startprob_=sp,
        transmat_=tm,
        emissionprob_=ep,
    )
    x = rng.integers(0, m, size=t)
    x[1] = -1  # a missing observation: likelihood 1 in every state
    log_b = np.where(x[:, None] < 0, 0.0, np.log(ep[:, np.maximum(x, 0)].T))
    lp, post, path, lbest = _brute(np.log(sp), np.log(tm), log_b)
    assert model.score(x[:, None]) == pytest.approx(lp, rel=1e-10)  # oracle: K^T sum
    np.testing.assert_allclose(model.predict_proba(x[:, None]), post, atol=1e-10)
    lv, vpath = model.decode(x[:, None])
    np.testing.assert_array_equal(vpath, path)
    assert lv == pytest.approx(lbest, rel=1e-10)
    masked = np.ma.masked_equal(x[:, None], -1)
    assert model.score(masked) == pytest.approx(lp, rel=1e-10)


@pytest.mark.parametrize("ct", ["diag", "full"])
def test_gaussian_brute_force_with_missing_rows(ct):
    rng = np.random.default_rng(3)
    k, d, t = 3, 2, 6
    sp, tm = _random_chain(rng, k)
    mu = rng.normal(size=(k, d)) * 2
    cv = _covars(rng, ct, k, d)
    model = _set(
        GaussianHMM(k, covariance_type=ct),
        startprob_=sp,
        transmat_=tm,
        means_=mu,
        covars_=cv,
    )
    x = rng.normal(size=(t, d)) * 2
    x[2] = np.nan
    full = model.covars_
    log_b = np.stack(
        [multivariate_normal(mu[i], full[i]).logpdf(x) for i in range(k)], axis=1
    )
    log_b[2] = 0.0
    if ct == "diag":
        x[4, 1] = np.nan  # partially observed: marginal over feature 0
        log_b[4] = [
            multivariate_normal(mu[i, 0], full[i, 0, 0]).logpdf(x[4, 0])
            for i in range(k)
        ]
    lp, post, path, _ = _brute(np.log(sp), np.log(tm), log_b)
    assert model.score(x) == pytest.approx(lp, rel=1e-10)  # oracle: K^T sum
    np.testing.assert_allclose(model.predict_proba(x), post, atol=1e-10)
    np.testing.assert_array_equal(model.predict(x), path)


def test_poisson_brute_force():
    rng = np.random.default_rng(4)
    k, t = 2, 6
    sp, tm = _random_chain(rng, k)
    lam = np.array([[1.0, 3.0], [6.0, 0.5]])
    model = _set(PoissonHMM(k), startprob_=sp, transmat_=tm, lambdas_=lam)
    x = rng.poisson(3.0, size=(t, 2))
    log_b = np.stack([poisson(lam[i]).logpmf(x).sum(1) for i in range(k)], axis=1)
    lp, post, path, _ = _brute(np.log(sp), np.log(tm), log_b)
    assert model.score(x) == pytest.approx(lp, rel=1e-10)
    np.testing.assert_allclose(model.predict_proba(x), post, atol=1e-10)
    np.testing.assert_array_equal(model.predict(x), path)


# -------------------------------------------------------------- EM behaviour
@pytest.mark.parametrize("impl", IMPLS)
def test_baum_welch_loglik_non_decreasing(impl):
    rng = np.random.default_rng(0)
    gen = _set(
        CategoricalHMM(3),
        startprob_=[0.6, 0.3, 0.1],
        transmat_=[[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]],
        emissionprob_=rng.dirichlet(np.ones(5), size=3),
    )
    X, _ = gen.sample(3000, random_state=1)
    model = CategoricalHMM(3, n_iter=30, tol=0.0, random_state=2, implementation=impl)
    model.fit(X, [1000, 1500, 500])
    h = np.array(model.monitor_.history)
    assert len(h) == 30
    assert (np.diff(h) >= -1e-8 * np.abs(h[1:])).all()


def test_gaussian_fit_recovers_means_and_handles_missing():
    rng = np.random.default_rng(1)
    gen = _set(
        GaussianHMM(2),
        startprob_=[0.5, 0.5],
        transmat_=[[0.95, 0.05], [0.05, 0.95]],
        means_=[[0.0, 0.0], [5.0, 5.0]],
        covars_=[[1.0, 1.0], [1.0, 1.0]],
    )
    X, z = gen.sample(4000, random_state=3)
    X[rng.random(len(X)) < 0.05] = np.nan
    X[rng.random(len(X)) < 0.05, 1] = np.nan
    model = GaussianHMM(2, n_iter=50, random_state=0).fit(X)
    h = np.array(model.monitor_.history)
    assert (np.diff(h) >= -1e-8 * np.abs(h[1:])).all()
    order = np.argsort(model.means_[:, 0])
    np.testing.assert_allclose(model.means_[order], gen.means_, atol=0.15)
    acc = (order[model.predict(X)] == z).mean() if order[0] == 0 else None
    assert acc is None or acc > 0.97
    assert model.monitor_.converged


def test_fit_initialises_and_clone():
    sklearn_base = pytest.importorskip("sklearn.base")
    X = np.random.default_rng(0).integers(0, 4, size=(200, 1))
    model = CategoricalHMM(2, n_iter=5, random_state=0).fit(X)
    assert model.emissionprob_.shape == (2, 4)
    c = sklearn_base.clone(model)
    assert c.get_params() == model.get_params()
    assert not hasattr(c, "startprob_")


# ------------------------------------------------------------------ numerics
def test_long_sequence_underflow_finite_and_correct():
    rng = np.random.default_rng(7)
    k, m, t = 3, 4, 1_000_000
    sp, tm = _random_chain(rng, k)
    ep = rng.dirichlet(np.ones(m), size=k)
    x = rng.integers(0, m, size=(t, 1))
    scaled = _set(CategoricalHMM(k), startprob_=sp, transmat_=tm, emissionprob_=ep)
    lp = scaled.score(x)
    assert np.isfinite(lp) and lp < -1e5  # p(X) itself is far below 1e-308
    logspace = _set(
        CategoricalHMM(k, implementation="log"),
        startprob_=sp,
        transmat_=tm,
        emissionprob_=ep,
    )
    assert lp == pytest.approx(logspace.score(x), rel=1e-10)  # two algorithms agree
    # Independent check: a chain with identical rows makes observations i.i.d.
    iid = _set(
        CategoricalHMM(k),
        startprob_=sp,
        transmat_=np.tile(sp, (k, 1)),
        emissionprob_=ep,
    )
    marg = sp @ ep
    assert iid.score(x) == pytest.approx(np.log(marg[x[:, 0]]).sum(), rel=1e-10)


def test_scaling_falls_back_to_log_space():
    # Symbol 2 has probability 1e-310 (subnormal) in every state: c_n underflows.
    ep = np.array([[0.5, 0.5 - 1e-310, 1e-310], [0.3, 0.7 - 1e-310, 1e-310]])
    params = dict(startprob_=[0.5, 0.5], transmat_=[[0.9, 0.1], [0.2, 0.8]])
    x = np.array([[0], [1], [2], [2], [0]])
    fast = _set(CategoricalHMM(2), emissionprob_=ep, **params)
    slow = _set(CategoricalHMM(2, implementation="log"), emissionprob_=ep, **params)
    lp = fast.score(x)
    assert np.isfinite(lp) and lp < -1400
    assert lp == pytest.approx(slow.score(x), rel=1e-12)
    np.testing.assert_allclose(fast.predict_proba(x), slow.predict_proba(x), atol=1e-12)


def test_gaussian_far_outliers_do_not_underflow():
    model = _set(
        GaussianHMM(2),
        startprob_=[0.5, 0.5],
        transmat_=[[0.9, 0.1], [0.1, 0.9]],
        means_=[[0.0], [1.0]],
        covars_=[[1e-4], [1e-4]],
    )
    x = np.array([[0.0], [1e3], [1.0]])  # log-likelihood ~ -5e9 at t = 1
    lp = model.score(x)
    model.implementation = "log"
    assert np.isfinite(lp) and lp == pytest.approx(model.score(x), rel=1e-12)


def test_float32_gaussian():
    rng = np.random.default_rng(2)
    ours, _ = _gaussian_pair(rng, 3, 2, "diag", "scaling")
    X = rng.normal(size=(500, 2))
    lp64, post64 = ours.score_samples(X)
    lp32, post32 = ours.score_samples(X.astype(np.float32))
    assert post32.dtype == np.float32
    assert lp32 == pytest.approx(lp64, rel=1e-4)
    np.testing.assert_allclose(post32, post64, atol=1e-3)


def test_sample_reproducible_and_shapes():
    model = _set(
        GaussianHMM(2, covariance_type="full"),
        startprob_=[1.0, 0.0],
        transmat_=[[0.0, 1.0], [1.0, 0.0]],
        means_=[[0.0, 0.0], [10.0, 10.0]],
        covars_=[np.eye(2), np.eye(2)],
    )
    X, z = model.sample(50, random_state=0)
    X2, z2 = model.sample(50, random_state=0)
    np.testing.assert_array_equal(z2, z)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(z, np.arange(50) % 2)
    assert X.shape == (50, 2) and (np.abs(X[1::2] - 10) < 6).all()
    assert not np.array_equal(X, model.sample(50, random_state=1)[0])
    _, z3 = model.sample(4, random_state=0, currstate=1)
    np.testing.assert_array_equal(z3, [1, 0, 1, 0])
    cat = _set(
        CategoricalHMM(1),
        startprob_=[1.0],
        transmat_=[[1.0]],
        emissionprob_=[[0.2, 0.3, 0.5]],
    )
    x, _ = cat.sample(20000, random_state=0)
    freq = np.bincount(x[:, 0], minlength=3) / 20000
    np.testing.assert_allclose(freq, [0.2, 0.3, 0.5], atol=0.02)  # ~6 sigma


def test_decode_map_and_predict():
    rng = np.random.default_rng(9)
    ours, _ = _categorical_pair(rng, 3, 4, "scaling")
    X = rng.integers(0, 4, size=(50, 1))
    lp, path = ours.decode(X, algorithm="map")
    post = ours.predict_proba(X)
    np.testing.assert_array_equal(path, post.argmax(1))
    assert lp == pytest.approx(np.log(post.max(1)).sum())
    ours.algorithm = "map"
    np.testing.assert_array_equal(ours.predict(X), path)


# ------------------------------------------------------------------ bad input
def _cat():
    return _set(
        CategoricalHMM(2),
        startprob_=[0.5, 0.5],
        transmat_=[[0.9, 0.1], [0.2, 0.8]],
        emissionprob_=[[0.5, 0.5], [0.1, 0.9]],
    )


X_OK = np.array([[0], [1], [1]])


@pytest.mark.parametrize(
    ("attr", "value", "match"),
    [
        ("startprob_", [0.5, 0.6], "startprob_ must sum to 1"),
        ("startprob_", [1.5, -0.5], "startprob_ must be non-negative"),
        ("startprob_", [1.0], r"startprob_ must have shape \(2,\)"),
        ("transmat_", [[0.9, 0.2], [0.2, 0.8]], "transmat_ rows must sum to 1"),
        ("transmat_", [[1.1, -0.1], [0.2, 0.8]], "transmat_ must be non-negative"),
        ("transmat_", np.eye(3), r"transmat_ must have shape \(2, 2\)"),
        ("emissionprob_", [[0.5, 0.4], [0.1, 0.9]], "emissionprob_ rows must sum"),
        ("emissionprob_", [[np.nan, 0.5], [0.1, 0.9]], "emissionprob_ must be finite"),
    ],
)
def test_bad_parameters(attr, value, match):
    model = _set(_cat(), **{attr: value})
    with pytest.raises(ValueError, match=match):
        model.score(X_OK)


@pytest.mark.parametrize(
    ("X", "lengths", "exc", "match"),
    [
        ([[0], [2], [1]], None, ValueError, r"symbol 2 .* outside \[0, n_features=2\)"),
        ([[0], [-3]], None, ValueError, "X symbols must be >= 0"),
        ([[0.5], [1.0]], None, TypeError, "integer symbols"),
        ([[0.0], [np.nan]], None, TypeError, "integer symbols"),
        (np.zeros((0, 1), dtype=int), None, ValueError, "X must not be empty"),
        (
            X_OK,
            [1, 1],
            ValueError,
            r"lengths must sum to the number of samples in X \(3\)",
        ),
        (X_OK, [3, 0], ValueError, "zero-length"),
        (X_OK, [2.5, 0.5], TypeError, "lengths must contain integers"),
        (X_OK, [[3]], ValueError, "lengths must be 1-dimensional"),
    ],
)
def test_bad_categorical_input(X, lengths, exc, match):
    with pytest.raises(exc, match=match):
        _cat().score(X, lengths)


def test_bad_gaussian_input():
    model = _set(
        GaussianHMM(2, covariance_type="full"),
        startprob_=[0.5, 0.5],
        transmat_=[[0.9, 0.1], [0.2, 0.8]],
        means_=[[0.0, 0.0], [1.0, 1.0]],
        covars_=[np.eye(2), [[1.0, 2.0], [2.0, 1.0]]],
    )
    with pytest.raises(ValueError, match=r"covars_\[1\] must be symmetric positive"):
        model.score(np.zeros((3, 2)))
    model.covars_ = [np.eye(2), np.eye(2)]
    with pytest.raises(ValueError, match="X has 3 features, but the model has 2"):
        model.score(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="partially NaN"):
        model.score(np.array([[0.0, np.nan], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="X must not contain infinity"):
        model.score(np.array([[0.0, np.inf]]))
    with pytest.raises(ValueError, match="X must be 2-dimensional"):
        model.score(np.zeros(3))
    model.covars_ = np.eye(2)
    with pytest.raises(ValueError, match=r"covars_ must have shape \(2, 2, 2\)"):
        model.score(np.zeros((3, 2)))
    diag = GaussianHMM(2, covariance_type="diag")
    _set(
        diag,
        startprob_=[0.5, 0.5],
        transmat_=[[0.9, 0.1], [0.2, 0.8]],
        means_=[[0.0], [1.0]],
        covars_=[[1.0], [-1.0]],
    )
    with pytest.raises(ValueError, match="covars_ must be positive"):
        diag.score(np.zeros((3, 1)))
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        GaussianHMM(2, covariance_type="banana").fit(np.zeros((5, 1)))


def test_bad_hyperparameters_and_not_fitted():
    from fastml._base import NotFittedError

    with pytest.raises(NotFittedError):
        CategoricalHMM(2).score(X_OK)
    with pytest.raises(ValueError, match="implementation must be 'scaling' or 'log'"):
        CategoricalHMM(2, implementation="fast").fit(X_OK)
    with pytest.raises(ValueError, match="n_components must be >= 1"):
        CategoricalHMM(0).fit(X_OK)
    with pytest.raises(TypeError, match="random_state must be None"):
        CategoricalHMM(2, random_state="x").fit(X_OK)
    with pytest.raises(ValueError, match="algorithm must be"):
        _cat().decode(X_OK, algorithm="greedy")
    with pytest.raises(ValueError, match="X must contain non-negative integer counts"):
        _set(
            PoissonHMM(1), startprob_=[1.0], transmat_=[[1.0]], lambdas_=[[1.0]]
        ).score([[1.5]])
    impossible = _set(_cat(), emissionprob_=[[1.0, 0.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="has probability 0 under the model"):
        impossible.predict_proba(X_OK)


def test_unvisited_state_keeps_valid_parameters():
    # State 1 can never be entered: its rows get no expected counts.
    model = _set(
        CategoricalHMM(2, init_params="", n_iter=3, tol=0.0),
        startprob_=[1.0, 0.0],
        transmat_=[[1.0, 0.0], [0.5, 0.5]],
        emissionprob_=[[0.5, 0.5], [0.2, 0.8]],
    )
    X = np.array([[0], [1], [1], [0]])
    model.fit(X)
    np.testing.assert_allclose(model.transmat_[1], [0.5, 0.5])
    np.testing.assert_allclose(model.emissionprob_[1], [0.2, 0.8])
    assert np.isfinite(model.score(X))
    g = _set(
        GaussianHMM(2, init_params="", n_iter=2, tol=0.0),
        startprob_=[1.0, 0.0],
        transmat_=[[1.0, 0.0], [0.5, 0.5]],
        means_=[[0.0], [3.0]],
        covars_=[[1.0], [1.0]],
    )
    g.fit(np.array([[0.1], [-0.3], [0.2]]))
    assert g.means_[1, 0] == 3.0 and np.isfinite(g.score(np.zeros((2, 1))))


def test_stationary_distribution_aic_bic_match_hmmlearn():
    rng = np.random.default_rng(11)
    for ours, peer in (
        _categorical_pair(rng, 3, 5, "scaling"),
        _gaussian_pair(rng, 3, 2, "full", "scaling"),
    ):
        X = (
            rng.integers(0, 5, size=(200, 1))
            if isinstance(ours, CategoricalHMM)
            else rng.normal(size=(200, 2))
        )
        if isinstance(ours, GaussianHMM):
            peer.n_features = 2  # hmmlearn sets it only in fit
        np.testing.assert_allclose(
            ours.get_stationary_distribution(),
            peer.get_stationary_distribution(),
            atol=1e-10,
        )
        assert ours.aic(X) == pytest.approx(peer.aic(X), rel=1e-10)
        assert ours.bic(X) == pytest.approx(peer.bic(X), rel=1e-10)


# ------------------------------------------------------------- MultinomialHMM
# hmmlearn on the same parameters (1e-8), brute force over all K^T paths with scipy's
# multinomial pmf (1e-10), the CategoricalHMM special case (n_trials = 1), bad input.
def _counts(rng, n, m, n_trials):
    return rng.multinomial(n_trials, rng.dirichlet(np.ones(m), size=n))


def _multinomial_pair(rng, k, m, n_trials, impl="scaling", n_iter=1):
    hmm = pytest.importorskip("hmmlearn.hmm")
    sp, tm = _random_chain(rng, k)
    ep = rng.dirichlet(np.ones(m), size=k)
    ours = MultinomialHMM(
        k, n_trials=n_trials, init_params="", n_iter=n_iter, tol=-1e300,
        implementation=impl,
    )  # fmt: skip
    logging.getLogger("hmmlearn").setLevel(logging.ERROR)  # its "major changes" note
    peer = hmm.MultinomialHMM(
        k, n_trials=n_trials, init_params="", n_iter=n_iter, tol=-1e300,
        implementation="scaling",
    )  # fmt: skip
    for model in (ours, peer):
        _set(model, startprob_=sp, transmat_=tm, emissionprob_=ep)
    return ours, peer


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("k", "m", "n_trials"), [(2, 3, 1), (3, 5, 10), (4, 2, 7)])
def test_multinomial_matches_hmmlearn(impl, k, m, n_trials):
    rng = np.random.default_rng(k * 100 + m)
    ours, peer = _multinomial_pair(rng, k, m, n_trials, impl)
    X = _counts(rng, sum(LENGTHS), m, n_trials)
    assert ours.score(X, LENGTHS) == pytest.approx(
        peer.score(X, LENGTHS), rel=1e-8
    )  # oracle: hmmlearn
    np.testing.assert_allclose(
        ours.predict_proba(X, LENGTHS), peer.predict_proba(X, LENGTHS), atol=1e-8
    )
    lv, path = ours.decode(X, LENGTHS)
    plv, _ = peer.decode(X, LENGTHS)
    assert lv == pytest.approx(plv, rel=1e-8)
    # paths may differ where two are equally likely (a run of one symbol); ours must
    # reach hmmlearn's maximum, with log p(X, Z) computed from scipy's pmf
    log_b = np.stack(
        [multinomial.logpmf(X, X.sum(1), ours.emissionprob_[j]) for j in range(k)], 1
    )
    joint, start = 0.0, 0
    for n in LENGTHS:
        z = path[start : start + n]
        joint += (
            np.log(ours.startprob_[z[0]]) + np.log(ours.transmat_[z[:-1], z[1:]]).sum()
        )
        joint += log_b[np.arange(start, start + n), z].sum()
        start += n
    assert joint == pytest.approx(plv, rel=1e-10)
    ours.fit(X, LENGTHS)  # one Baum-Welch step from the same parameters
    peer.fit(X, LENGTHS)
    for name in ("startprob_", "transmat_", "emissionprob_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(peer, name), atol=1e-8)


def test_multinomial_em_matches_hmmlearn_and_never_decreases():
    rng = np.random.default_rng(3)
    ours, peer = _multinomial_pair(rng, 3, 4, 6, n_iter=15)
    X = _counts(rng, sum(LENGTHS), 4, 6)
    ours.fit(X, LENGTHS)
    peer.fit(X, LENGTHS)
    np.testing.assert_allclose(ours.emissionprob_, peer.emissionprob_, atol=1e-8)
    np.testing.assert_allclose(ours.transmat_, peer.transmat_, atol=1e-8)
    h = np.array(ours.monitor_.history)
    assert len(h) == 15 and (np.diff(h) >= -1e-8 * np.abs(h[1:])).all()  # EM: monotone


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("k", "t"), [(2, 6), (3, 5)])
def test_multinomial_brute_force(impl, k, t):
    rng = np.random.default_rng(7 * k + t)
    m, n_trials = 3, 4
    sp, tm = _random_chain(rng, k)
    ep = rng.dirichlet(np.ones(m), size=k)
    model = _set(
        MultinomialHMM(k, n_trials=n_trials, implementation=impl),
        startprob_=sp, transmat_=tm, emissionprob_=ep,
    )  # fmt: skip
    x = _counts(rng, t, m, n_trials)
    log_b = np.stack(
        [multinomial.logpmf(x, n_trials, ep[j]) for j in range(k)], axis=1
    )  # scipy's pmf, independent of the model's own likelihood
    lp, post, path, lbest = _brute(np.log(sp), np.log(tm), log_b)
    assert model.score(x) == pytest.approx(lp, rel=1e-10)  # oracle: all K^T paths
    np.testing.assert_allclose(model.predict_proba(x), post, atol=1e-10)
    lv, vpath = model.decode(x)
    np.testing.assert_array_equal(vpath, path)
    assert lv == pytest.approx(lbest, rel=1e-10)


def test_multinomial_one_trial_is_categorical():
    rng = np.random.default_rng(11)
    k, m = 3, 4
    sp, tm = _random_chain(rng, k)
    ep = rng.dirichlet(np.ones(m), size=k)
    sym = rng.integers(0, m, size=sum(LENGTHS))
    params = dict(startprob_=sp, transmat_=tm, emissionprob_=ep)
    multi = _set(MultinomialHMM(k, n_trials=1, init_params="", n_iter=3), **params)
    cat = _set(CategoricalHMM(k, n_features=m, init_params="", n_iter=3), **params)
    onehot = np.eye(m, dtype=np.int64)[sym]
    assert multi.score(onehot, LENGTHS) == pytest.approx(
        cat.score(sym[:, None], LENGTHS), rel=1e-12
    )
    multi.fit(onehot, LENGTHS)
    cat.fit(sym[:, None], LENGTHS)
    np.testing.assert_allclose(multi.emissionprob_, cat.emissionprob_, atol=1e-12)


def test_multinomial_fit_sets_n_trials_and_samples():
    rng = np.random.default_rng(2)
    X = _counts(rng, 400, 3, 8)
    model = MultinomialHMM(2, n_iter=5, random_state=0).fit(X)
    assert model.n_features == 3
    np.testing.assert_array_equal(model.n_trials, X.sum(axis=1))
    model.n_trials = 8
    Xs, states = model.sample(1000, random_state=1)
    assert Xs.shape == (1000, 3) and (Xs.sum(axis=1) == 8).all()
    # each state's mean counts are n_trials * emissionprob_ (loose: 6 sigma)
    for s in range(2):
        sel = Xs[states == s]
        if len(sel) > 50:
            p = model.emissionprob_[s]
            se = np.sqrt(8 * p * (1 - p) / len(sel))
            assert (np.abs(sel.mean(axis=0) - 8 * p) < 6 * se + 1e-12).all()


def test_multinomial_bad_input():
    good = np.array([[2, 1], [0, 3], [3, 0]])
    model = MultinomialHMM(2, n_trials=3)
    with pytest.raises(ValueError, match="non-negative integer counts"):
        model.fit(np.array([[2.5, 0.5], [1, 2]]))
    with pytest.raises(ValueError, match="non-negative integer counts"):
        model.fit(np.array([[4, -1], [1, 2]]))
    with pytest.raises(ValueError, match="sum to n_trials: row 1 sums to 4"):
        model.fit(np.array([[2, 1], [2, 2]]))
    with pytest.raises(ValueError, match="n_trials has 2 entries but X has 3 rows"):
        MultinomialHMM(2, n_trials=[3, 3]).fit(good)
    with pytest.raises(TypeError, match="n_trials must hold integers"):
        MultinomialHMM(2, n_trials=2.5).fit(good)
    with pytest.raises(ValueError, match="n_trials must be >= 0"):
        MultinomialHMM(2, n_trials=-3).fit(good)
    fitted = MultinomialHMM(2, random_state=0, n_iter=2).fit(good)
    with pytest.raises(ValueError, match="X has 3 features, but the model has 2"):
        fitted.score(np.array([[1, 1, 1]]))
    with pytest.raises(ValueError, match="sampling needs a single n_trials"):
        MultinomialHMM(2, random_state=0, n_iter=2).fit(
            np.array([[2, 1], [1, 1], [0, 3]])
        ).sample(5)
    bad = _set(
        MultinomialHMM(2, n_trials=3),
        startprob_=[0.5, 0.5], transmat_=[[0.5, 0.5], [0.5, 0.5]],
        emissionprob_=[[0.7, 0.2], [0.5, 0.5]],
    )  # fmt: skip
    with pytest.raises(ValueError, match="emissionprob_ rows must sum to 1"):
        bad.score(good)


# ------------------------------------------------------------------ GMMHMM
# hmmlearn on the same parameters: score, posteriors, Viterbi and one Baum-Welch step
# (1e-8; the covariance step with params without "m", where both centre the statistics
# at the same means); brute force over all K^T paths with scipy densities (1e-10); the
# full M-step against a transcription of PRML eqs. 13.17 / 9.24-9.27 (1e-10); EM never
# decreases the log-likelihood.
def _gmm_params(rng, ct, k, m, d):
    sp, tm = _random_chain(rng, k)
    w = rng.dirichlet(np.ones(m), size=k)
    mu = rng.normal(size=(k, m, d)) * 2
    if ct == "diag":
        cv = rng.uniform(0.5, 2.0, size=(k, m, d))
    elif ct == "spherical":
        cv = rng.uniform(0.5, 2.0, size=(k, m))
    elif ct == "full":
        a = rng.normal(size=(k, m, d, d))
        cv = a @ np.swapaxes(a, -1, -2) + np.eye(d)
    else:
        a = rng.normal(size=(k, d, d))
        cv = a @ np.swapaxes(a, -1, -2) + np.eye(d)
    return dict(startprob_=sp, transmat_=tm, weights_=w, means_=mu, covars_=cv)


def _full_cov(cv, ct, s, j, d):
    if ct == "spherical":
        return cv[s, j] * np.eye(d)
    if ct == "diag":
        return np.diag(cv[s, j])
    return cv[s] if ct == "tied" else cv[s, j]


def _gmm_log_b(X, p, ct):
    k, m, d = p["means_"].shape
    dens = np.zeros((len(X), k))
    for s in range(k):
        for j in range(m):
            cov = _full_cov(p["covars_"], ct, s, j, d)
            dens[:, s] += p["weights_"][s, j] * multivariate_normal.pdf(
                X, p["means_"][s, j], cov
            )
    return np.log(dens)


GMM_CTS = ["diag", "spherical", "full", "tied"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("ct", GMM_CTS)
def test_gmmhmm_matches_hmmlearn(impl, ct):
    from fastml.hmm import GMMHMM

    hmm = pytest.importorskip("hmmlearn.hmm")
    from threadpoolctl import threadpool_limits  # installed with hmmlearn's sklearn

    rng = np.random.default_rng(GMM_CTS.index(ct))
    k, m, d = 3, 2, 3
    p = _gmm_params(rng, ct, k, m, d)
    X = rng.normal(size=(sum(LENGTHS), d)) * 2
    for params in ("stcw", "stmw"):  # every update; covariances with the means fixed
        kw = dict(covariance_type=ct, init_params="", params=params, n_iter=1)
        ours = _set(GMMHMM(k, m, implementation=impl, **kw), **p)
        peer = _set(hmm.GMMHMM(k, m, implementation="scaling", **kw), **p)
        assert ours.score(X, LENGTHS) == pytest.approx(
            peer.score(X, LENGTHS), rel=1e-8
        )  # oracle: hmmlearn
        np.testing.assert_allclose(
            ours.predict_proba(X, LENGTHS), peer.predict_proba(X, LENGTHS), atol=1e-8
        )
        assert ours.decode(X, LENGTHS)[0] == pytest.approx(
            peer.decode(X, LENGTHS)[0], rel=1e-8
        )
        if impl == "log":  # the M-step does not depend on it (and hmmlearn's fit
            continue  # runs k-means even with init_params="": slow)
        ours.fit(X, LENGTHS)
        with threadpool_limits(1):  # its k-means: OpenMP threads on tiny data
            peer.fit(X, LENGTHS)
        for name in ("startprob_", "transmat_", "weights_", "means_", "covars_"):
            np.testing.assert_allclose(
                getattr(ours, name), getattr(peer, name), atol=1e-8, err_msg=name
            )


@pytest.mark.parametrize("ct", GMM_CTS)
def test_gmmhmm_brute_force(ct):
    from fastml.hmm import GMMHMM

    rng = np.random.default_rng(20 + GMM_CTS.index(ct))
    k, m, d, t = 3, 2, 2, 5
    p = _gmm_params(rng, ct, k, m, d)
    model = _set(GMMHMM(k, m, covariance_type=ct), **p)
    x = rng.normal(size=(t, d)) * 2
    lp, post, path, lbest = _brute(
        np.log(p["startprob_"]), np.log(p["transmat_"]), _gmm_log_b(x, p, ct)
    )
    assert model.score(x) == pytest.approx(lp, rel=1e-10)  # oracle: all K^T paths
    np.testing.assert_allclose(model.predict_proba(x), post, atol=1e-10)
    lv, vpath = model.decode(x)
    np.testing.assert_array_equal(vpath, path)
    assert lv == pytest.approx(lbest, rel=1e-10)


@pytest.mark.parametrize("ct", GMM_CTS)
def test_gmmhmm_mstep_is_textbook_em(ct):
    from fastml.hmm import GMMHMM

    rng = np.random.default_rng(40 + GMM_CTS.index(ct))
    k, m, d = 2, 3, 2
    p = _gmm_params(rng, ct, k, m, d)
    X = rng.normal(size=(400, d)) * 2
    model = _set(GMMHMM(k, m, covariance_type=ct, init_params="", n_iter=1), **p)
    gamma = model.predict_proba(X)
    # PRML eq. 13.17 inside each state: weights gamma_tk r_tkm, r from scipy densities
    comp = np.stack(
        [
            [
                p["weights_"][s, j]
                * multivariate_normal.pdf(X, p["means_"][s, j], _full_cov(
                    p["covars_"], ct, s, j, d))
                for j in range(m)
            ]
            for s in range(k)
        ]
    ).transpose(2, 0, 1)  # fmt: skip
    W = gamma[:, :, None] * comp / comp.sum(axis=2, keepdims=True)
    nk = W.sum(axis=0)
    mu = np.einsum("tkm,ti->kmi", W, X) / nk[:, :, None]
    diff = X[:, None, None, :] - mu
    S = np.einsum("tkm,tkmi,tkmj->kmij", W, diff, diff)
    model.fit(X)
    np.testing.assert_allclose(model.weights_, nk / gamma.sum(0)[:, None], atol=1e-10)
    np.testing.assert_allclose(model.means_, mu, atol=1e-10)
    if ct == "full":
        want = S / nk[:, :, None, None]
    elif ct == "tied":
        want = S.sum(axis=1) / gamma.sum(0)[:, None, None]
    elif ct == "diag":
        want = np.diagonal(S, axis1=2, axis2=3) / nk[:, :, None]
    else:  # hmmlearn's default spherical prior: denominator d (N_km + 1) - M
        want = np.trace(S, axis1=2, axis2=3) / (d * (nk + 1) - m)
    np.testing.assert_allclose(model.covars_, want, atol=1e-10)


@pytest.mark.parametrize("ct", GMM_CTS)
def test_gmmhmm_fit_from_data_increases_likelihood_and_samples(ct):
    from fastml.hmm import GMMHMM

    rng = np.random.default_rng(60 + GMM_CTS.index(ct))
    p = _gmm_params(rng, ct, 2, 2, 2)
    truth = _set(GMMHMM(2, 2, covariance_type=ct), **p)
    X, states = truth.sample(3000, random_state=0)
    for s in range(2):  # each state's sample mean is its mixture mean (6 sigma)
        sel = X[states == s]
        mean = p["weights_"][s] @ p["means_"][s]
        se = sel.std(axis=0) / np.sqrt(len(sel))
        assert (np.abs(sel.mean(axis=0) - mean) < 6 * se).all()
    model = GMMHMM(2, 2, covariance_type=ct, n_iter=20, tol=1e-6, random_state=0)
    model.fit(X)  # from fastml's k-means initialisation
    h = np.array(model.monitor_.history)
    assert (np.diff(h) >= -1e-8 * np.abs(h[1:])).all()  # EM never decreases
    warm = _set(GMMHMM(2, 2, covariance_type=ct, init_params="", n_iter=5), **p)
    assert warm.fit(X).score(X) >= truth.score(X)  # EM from the truth only climbs


def test_gmmhmm_bad_input():
    from fastml.hmm import GMMHMM

    rng = np.random.default_rng(0)
    p = _gmm_params(rng, "full", 2, 2, 2)
    with pytest.raises(ValueError, match="n_mix must be >= 1"):
        GMMHMM(2, 0).fit(rng.normal(size=(50, 2)))
    bad_w = dict(p, weights_=np.array([[0.6, 0.6], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="weights_ rows must sum to 1"):
        _set(GMMHMM(2, 2, covariance_type="full"), **bad_w).score(np.zeros((3, 2)))
    bad_c = dict(p, covars_=p["covars_"].copy())
    bad_c["covars_"][1, 0] = np.diag([1.0, -1.0])
    with pytest.raises(ValueError, match=r"covars_\[1, 0\] must be positive definite"):
        _set(GMMHMM(2, 2, covariance_type="full"), **bad_c).score(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="covars_ must have shape"):
        _set(GMMHMM(2, 2, covariance_type="diag"), **p).score(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="X has 3 features, but the model has 2"):
        _set(GMMHMM(2, 2, covariance_type="full"), **p).score(np.zeros((3, 3)))
    three = dict(p, weights_=np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="means_ must have shape"):
        _set(GMMHMM(2, 3, covariance_type="full"), **three).score(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="finite"):
        GMMHMM(2, 2).fit(np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 4.0]]))


# ------------------------------------------------------------ hmmlearn parity
def test_n_features_assignable_and_set_by_fit():
    hmm = pytest.importorskip("hmmlearn.hmm")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    for cls, peer_cls in [
        (GaussianHMM, hmm.GaussianHMM),
        (PoissonHMM, hmm.PoissonHMM),
    ]:
        data = rng.poisson(3.0, size=(200, 3)) if cls is PoissonHMM else X
        model, peer = cls(2, n_iter=2, random_state=0), peer_cls(2, n_iter=2)
        model.n_features = peer.n_features = 3  # assignable before fit (hmmlearn)
        assert model.n_features == 3
        model.fit(data)
        peer.fit(data)
        assert model.n_features == peer.n_features == 3
        wrong = cls(2)
        wrong.n_features = 2
        with pytest.raises(ValueError, match="X has 3 features, but n_features=2"):
            wrong.fit(data)
        with pytest.raises(ValueError, match="n_features must be >= 1"):
            cls(2).n_features = 0
    with pytest.raises(AttributeError, match="n_features is not set"):
        GaussianHMM(2).n_features  # noqa: B018
    sym = rng.integers(0, 5, size=(300, 1))
    ours = CategoricalHMM(2, n_iter=2, random_state=0).fit(sym)
    peer = hmm.CategoricalHMM(2, n_iter=2, random_state=0).fit(sym)
    assert ours.n_features == peer.n_features == 5  # set by fit, as hmmlearn


def test_spherical_covars_accept_k_and_k1():
    rng = np.random.default_rng(1)
    sp, tm = _random_chain(rng, 3)
    mu = rng.normal(size=(3, 2))
    var = rng.uniform(0.5, 2.0, size=3)
    X = rng.normal(size=(50, 2))
    scores = []
    for cv in (var, var[:, None]):  # hmmlearn accepts both shapes
        m = _set(GaussianHMM(3, covariance_type="spherical"), startprob_=sp,
                 transmat_=tm, means_=mu, covars_=cv)  # fmt: skip
        scores.append(m.score(X))
        np.testing.assert_array_equal(m.covars_[:, 0, 0], var)
    assert scores[0] == scores[1]


def test_one_dimensional_X_is_refused_consistently():
    # as hmmlearn: every model takes 2-D X (n_samples, n_features)
    cat = _set(CategoricalHMM(2, n_features=2), startprob_=[0.5, 0.5],
               transmat_=[[0.9, 0.1], [0.1, 0.9]],
               emissionprob_=[[0.9, 0.1], [0.2, 0.8]])  # fmt: skip
    with pytest.raises(ValueError, match=r"got \(4,\) \(use X.reshape\(-1, 1\)\)"):
        cat.score(np.array([0, 1, 1, 0]))
    assert np.isfinite(cat.score(np.array([[0], [1], [1], [0]])))
    with pytest.raises(ValueError, match="2"):
        GaussianHMM(2).fit(np.arange(10.0))
    with pytest.raises(ValueError, match="2"):
        PoissonHMM(2).fit(np.arange(10.0))


@pytest.mark.parametrize(
    "kind, ct",
    [("gaussian", "full"), ("gaussian", "tied")]
    + [("gmm", ct) for ct in ("diag", "spherical", "full", "tied")],
)
def test_several_em_iterations_match_hmmlearn(kind, ct):
    """Every E-step uses the parameters of the M-step before it (the Cholesky factors
    and precisions derived from covars_ / weights_ are refreshed): the log-likelihood
    history of 4 iterations equals hmmlearn's. GMMHMM without re-estimating the
    means, where hmmlearn's centring of the covariances equals ours."""
    hmm = pytest.importorskip("hmmlearn.hmm")
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 2))
    X[200:] += 3
    p = dict(
        startprob_=np.array([0.5, 0.5]), transmat_=np.array([[0.9, 0.1], [0.2, 0.8]])
    )
    if kind == "gaussian":
        p["means_"] = np.array([[0.0, 0.5], [2.0, 2.5]])
        p["covars_"] = np.eye(2) if ct == "tied" else np.stack([np.eye(2)] * 2)
        make = {"ours": GaussianHMM, "peer": hmm.GaussianHMM}
        kw = dict(covariance_type=ct)
    else:
        p["weights_"] = np.array([[0.3, 0.7], [0.6, 0.4]])
        p["means_"] = rng.normal(size=(2, 2, 2)) + 1.5
        p["covars_"] = {
            "diag": np.ones((2, 2, 2)),
            "spherical": np.ones((2, 2)),
            "full": np.tile(np.eye(2), (2, 2, 1, 1)),
            "tied": np.tile(np.eye(2), (2, 1, 1)),
        }[ct]
        from fastml.hmm import GMMHMM

        make = {"ours": lambda *a, **k: GMMHMM(*a, 2, **k),
                "peer": lambda *a, **k: hmm.GMMHMM(*a, 2, **k)}  # fmt: skip
        kw = dict(covariance_type=ct, params="stcw")
    hist = {}
    for who, cls in make.items():
        model = _set(cls(2, n_iter=4, tol=-1e300, init_params="", **kw), **p)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X)
        hist[who] = list(model.monitor_.history)[-2:]  # hmmlearn keeps the last 2
    # oracle: hmmlearn from the same start, every iteration
    np.testing.assert_allclose(hist["ours"], hist["peer"], rtol=1e-8)


@pytest.mark.parametrize("ct", ["diag", "spherical", "full", "tied"])
def test_gmmhmm_em_is_translation_invariant(ct):
    """The covariance statistics are centred (about the current means), so data a
    million away from the origin give the covariances of the centred data: the
    expanded form sum w x^2 - N mu^2 lost ~1e-2 there."""
    from fastml.hmm import GMMHMM

    rng = np.random.default_rng(0)
    gen = GMMHMM(3, 2, covariance_type="diag")
    gen.startprob_ = np.full(3, 1 / 3)
    gen.transmat_ = rng.dirichlet(np.ones(3) * 5, size=3)
    gen.weights_ = rng.dirichlet(np.ones(2), size=3)
    gen.means_ = rng.normal(size=(3, 2, 2)) * 3
    gen.covars_ = rng.uniform(0.5, 2, size=(3, 2, 2))
    X, _ = gen.sample(3000, random_state=1)
    fits = []
    for off in (0.0, 1e6):
        m = GMMHMM(3, 2, covariance_type=ct, init_params="", n_iter=3, tol=-1e300)
        m.startprob_, m.transmat_ = gen.startprob_, gen.transmat_
        m.weights_, m.means_ = gen.weights_, gen.means_ + off
        m.covars_ = {
            "diag": gen.covars_,
            "spherical": gen.covars_.mean(axis=2),
            "full": np.stack([[np.diag(c) for c in cs] for cs in gen.covars_]),
            "tied": np.tile(np.eye(2), (3, 1, 1)),
        }[ct]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(m.fit(X + off))
    np.testing.assert_allclose(fits[1].covars_, fits[0].covars_, rtol=1e-6)
    np.testing.assert_allclose(fits[1].means_ - 1e6, fits[0].means_, atol=1e-6)
