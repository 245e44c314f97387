"""fastml.mixture.GaussianMixture: scikit-learn from the same initial parameters,
monotone log-likelihood, recovery of synthetic components, closed-form densities, bad input.

Tolerances: float64 results agree with scikit-learn to ~1e-12 (same EM, different
summation order); we assert 1e-9 relative. float32 agrees with float64 to 1e-4.
"""

import warnings

import numpy as np
import pytest
from scipy import stats

from fastml.mixture import ConvergenceWarning, GaussianMixture, kmeans_plusplus

COV_TYPES = ["full", "tied", "diag", "spherical"]


def _blobs(n=1500, d=3, k=4, seed=0, spread=6.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * spread
    labels = rng.integers(k, size=n)
    A = rng.normal(size=(k, d, d)) * 0.4 + np.eye(d)
    X = centers[labels] + np.einsum("nij,nj->ni", A[labels], rng.normal(size=(n, d)))
    return X, centers, labels


def _sk_init(X, k, ct):
    sk = pytest.importorskip("sklearn.mixture")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = sk.GaussianMixture(
            k,
            covariance_type=ct,
            max_iter=1,
            init_params="random_from_data",
            random_state=1,
        ).fit(X)
    return dict(
        weights_init=g.weights_, means_init=g.means_, precisions_init=g.precisions_
    )


@pytest.mark.parametrize("ct", COV_TYPES)
def test_matches_sklearn_from_same_init(ct):
    sk = pytest.importorskip("sklearn.mixture")
    X, _, _ = _blobs()
    init = _sk_init(X, 4, ct)
    kw = dict(covariance_type=ct, max_iter=15, tol=0.0, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sk.GaussianMixture(4, **kw).fit(X)
        got = GaussianMixture(4, **kw).fit(X)
    assert got.n_iter_ == ref.n_iter_ == 15
    assert got.lower_bound_ == pytest.approx(
        ref.lower_bound_, rel=1e-9
    )  # oracle: sklearn
    np.testing.assert_allclose(got.lower_bounds_, ref.lower_bounds_, rtol=1e-9)
    np.testing.assert_allclose(got.weights_, ref.weights_, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(got.means_, ref.means_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(
        got.covariances_, ref.covariances_, rtol=1e-8, atol=1e-10
    )
    np.testing.assert_allclose(got.precisions_, ref.precisions_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(
        got.precisions_cholesky_, ref.precisions_cholesky_, rtol=1e-7, atol=1e-9
    )
    np.testing.assert_allclose(got.score_samples(X), ref.score_samples(X), rtol=1e-9)
    np.testing.assert_allclose(got.predict_proba(X), ref.predict_proba(X), atol=1e-9)
    assert got.bic(X) == pytest.approx(ref.bic(X), rel=1e-9)
    assert got.aic(X) == pytest.approx(ref.aic(X), rel=1e-9)
    assert got.score(X) == pytest.approx(ref.score(X), rel=1e-9)
    assert (got.predict(X) == ref.predict(X)).mean() > 0.999


@pytest.mark.parametrize("ct", COV_TYPES)
def test_float32_close_to_float64(ct):
    X, _, _ = _blobs(seed=3)
    kw = dict(covariance_type=ct, max_iter=10, tol=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = GaussianMixture(4, **kw).fit(X)
        b = GaussianMixture(4, **kw).fit(X.astype(np.float32))
    assert b.lower_bound_ == pytest.approx(a.lower_bound_, rel=1e-4)  # float32 tol
    np.testing.assert_allclose(b.means_, a.means_, atol=1e-3)
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=1e-3, atol=1e-4)
    assert b.means_.dtype == b.covariances_.dtype == np.float32  # as scikit-learn
    assert b.predict_proba(X.astype(np.float32)).dtype == np.float64


@pytest.mark.parametrize("ct", COV_TYPES)
def test_log_likelihood_non_decreasing(ct):
    X, _, _ = _blobs(n=800, seed=5)
    gm = GaussianMixture(5, covariance_type=ct, tol=1e-10, max_iter=200, random_state=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    lb = np.array(gm.lower_bounds_)
    assert np.all(np.diff(lb) >= -1e-10 * np.abs(lb[1:]))  # EM monotone (PRML sec. 9.4)


def test_recovers_synthetic_components():
    rng = np.random.default_rng(7)
    means = np.array([[-6.0, 0.0], [0.0, 6.0], [6.0, 0.0]])
    covs = np.array(
        [[[1.0, 0.5], [0.5, 1.0]], np.eye(2) * 0.5, [[2.0, -0.3], [-0.3, 0.5]]]
    )
    w = np.array([0.2, 0.3, 0.5])
    n = 6000
    z = rng.choice(3, size=n, p=w)
    X = np.array([rng.multivariate_normal(means[k], covs[k]) for k in z])
    gm = GaussianMixture(3, random_state=0, tol=1e-8, max_iter=500).fit(X)
    order = np.argsort(gm.means_[:, 0] + 0.01 * gm.means_[:, 1])
    np.testing.assert_allclose(gm.means_[order], means, atol=0.1)
    np.testing.assert_allclose(gm.weights_[order], w, atol=0.02)
    np.testing.assert_allclose(gm.covariances_[order], covs, atol=0.15)
    assert gm.converged_
    assert (gm.predict(X) == order[z]).mean() > 0.98
    # closed-form density oracle: scipy's multivariate normal mixture
    dens = sum(
        gm.weights_[k]
        * stats.multivariate_normal(gm.means_[k], gm.covariances_[k]).pdf(X)
        for k in range(3)
    )
    np.testing.assert_allclose(gm.score_samples(X), np.log(dens), rtol=1e-10)


def test_n_init_keeps_best_and_seed_reproducible():
    X, _, _ = _blobs(n=600, seed=11, spread=3.0)
    a = GaussianMixture(4, n_init=3, random_state=4).fit(X)
    b = GaussianMixture(4, n_init=3, random_state=4).fit(X)
    singles = [GaussianMixture(4, random_state=s).fit(X).lower_bound_ for s in range(3)]
    np.testing.assert_array_equal(a.means_, b.means_)
    assert a.lower_bound_ >= min(singles) - 1e-9


@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random", "random_from_data"])
def test_init_params(init):
    X, _, _ = _blobs(n=600, seed=1)
    gm = GaussianMixture(4, init_params=init, random_state=0, max_iter=300).fit(X)
    assert np.isfinite(gm.lower_bound_)
    assert gm.means_.shape == (4, 3)


def test_kmeans_plusplus_picks_separated_points():
    X = np.concatenate([np.zeros((50, 2)), np.full((50, 2), 100.0)])
    centers, idx = kmeans_plusplus(X, 2, random_state=0)
    assert {tuple(c) for c in centers} == {(0.0, 0.0), (100.0, 100.0)}
    assert X[idx].tolist() == centers.tolist()


def test_sample_and_warm_start():
    X, _, _ = _blobs(n=500, seed=2)
    gm = GaussianMixture(3, random_state=0, covariance_type="diag").fit(X)
    S, y = gm.sample(1000)
    assert S.shape == (1000, 3) and y.shape == (1000,)
    assert set(np.unique(y)) <= {0, 1, 2}
    gm.set_params(warm_start=True, max_iter=5)
    lb0 = gm.lower_bound_
    gm.fit(X)
    assert gm.lower_bound_ >= lb0 - 1e-9


def test_verbose_prints_iterations(capsys):
    X, _, _ = _blobs(n=300)
    with pytest.warns(ConvergenceWarning):
        GaussianMixture(2, verbose=2, random_state=0, max_iter=3, tol=0).fit(X)
    out = capsys.readouterr().out
    assert "Iteration    1" in out and "lower bound" in out
    # scikit-learn's "verbose" takes a bool too: True is 1, False prints nothing
    with pytest.warns(ConvergenceWarning):
        GaussianMixture(2, verbose=True, random_state=0, max_iter=3, tol=0).fit(X)
    assert "Initialization 0" in capsys.readouterr().out
    with pytest.warns(ConvergenceWarning):
        GaussianMixture(2, verbose=False, random_state=0, max_iter=3, tol=0).fit(X)
    assert capsys.readouterr().out == ""


def test_sklearn_clone_and_params():
    base = pytest.importorskip("sklearn.base")
    gm = GaussianMixture(3, covariance_type="tied")
    assert base.clone(gm).get_params() == gm.get_params()


# ------------------------------------------------------------------ bad input
X_OK = _blobs(n=100)[0]


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(n_components=0), ValueError, "n_components"),
        (dict(n_components=101), ValueError, "n_components"),
        (dict(n_components=2.5), TypeError, "n_components"),
        (dict(covariance_type="banana"), ValueError, "covariance_type"),
        (dict(init_params="nope"), ValueError, "init_params"),
        (dict(tol=-1.0), ValueError, "tol"),
        (dict(reg_covar=-1e-3), ValueError, "reg_covar"),
        (dict(max_iter=-1), ValueError, "max_iter"),
        (dict(n_init=0), ValueError, "n_init"),
        (dict(n_components=2, weights_init=[0.3, 0.3]), ValueError, "weights_init"),
        (
            dict(n_components=2, weights_init=[0.5, 0.5, 0.0]),
            ValueError,
            "weights_init",
        ),
        (dict(n_components=2, means_init=np.zeros((2, 5))), ValueError, "means_init"),
        (
            dict(n_components=2, precisions_init=-np.stack([np.eye(3)] * 2)),
            ValueError,
            "precisions_init",
        ),
        (
            dict(
                n_components=2, covariance_type="diag", precisions_init=-np.ones((2, 3))
            ),
            ValueError,
            "precisions_init",
        ),
        (dict(random_state=1.5), TypeError, "random_state"),
    ],
)
def test_bad_parameters(kwargs, err, match):
    with pytest.raises(err, match=match):
        GaussianMixture(**kwargs).fit(X_OK)


def test_bad_data():
    X = X_OK.copy()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="X must be finite"):
        GaussianMixture(2).fit(X)
    X[3, 1] = np.inf
    with pytest.raises(ValueError, match="X must be finite"):
        GaussianMixture(2).fit(X)
    with pytest.raises(ValueError, match="X must be 2-dimensional"):
        GaussianMixture(2).fit(X_OK[:, 0])
    with pytest.raises(ValueError, match="X must have a real numeric dtype"):
        GaussianMixture(2).fit(X_OK.astype(complex))
    gm = GaussianMixture(2, random_state=0).fit(X_OK)
    with pytest.raises(ValueError, match="X has 2 features"):
        gm.predict(X_OK[:, :2])
    from fastml._base import NotFittedError

    with pytest.raises(NotFittedError):
        GaussianMixture(2).predict(X_OK)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_collapsed_component_says_reg_covar(ct):
    X = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0], [9.0, 1.0]]), 10, axis=0)
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianMixture(3, covariance_type=ct, reg_covar=0.0, random_state=0).fit(X)
    # the advice works: with the default reg_covar the fit succeeds
    GaussianMixture(3, covariance_type=ct, random_state=0).fit(X)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 2e-4)])
@pytest.mark.parametrize(
    "n, d, K, tied",
    [(1, 1, 1, False), (7, 3, 2, False), (1300, 4, 5, True), (600, 2, 9, False)],
)
def test_em_pass_full_kernel_vs_numpy(dtype, rtol, n, d, K, tied):
    """The fused kernel against a direct numpy E-step and statistics (block remainders,
    tied factor, float32 with double accumulators)."""
    from scipy.special import logsumexp

    from fastml._kernels import _gmm

    rng = np.random.default_rng(n + d + K)
    X = rng.normal(size=(n, d)).astype(dtype)
    means = rng.normal(size=(K, d)).astype(dtype)
    Kp = 1 if tied else K
    P = np.triu(rng.normal(size=(Kp, d, d)) * 0.3) + np.eye(d) * 1.5
    P = P.astype(dtype)
    lc = rng.normal(size=K)
    log_resp = np.empty((n, K), dtype=dtype)
    log_norm = np.empty(n)
    nk, s1, s2 = np.empty(K), np.empty((K, d)), np.empty((K, d, d))
    total = _gmm.em_pass_full(X, means, P, lc, log_resp, log_norm, nk, s1, s2)
    Xd, Md, Pd = X.astype(float), means.astype(float), P.astype(float)
    lp = np.stack(
        [
            lc[k] - 0.5 * np.sum(((Xd - Md[k]) @ Pd[0 if tied else k]) ** 2, 1)
            for k in range(K)
        ],
        axis=1,
    )
    ln = logsumexp(lp, axis=1)
    r = np.exp(lp - ln[:, None])
    np.testing.assert_allclose(log_norm, ln, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(log_resp, lp - ln[:, None], rtol=rtol, atol=10 * rtol)
    assert total == pytest.approx(ln.sum(), rel=rtol)
    np.testing.assert_allclose(nk, r.sum(0), rtol=rtol, atol=rtol)
    D = Xd[None] - Md[:, None]
    np.testing.assert_allclose(
        s1, np.einsum("nk,knj->kj", r, D), rtol=rtol, atol=10 * rtol
    )
    np.testing.assert_allclose(
        s2, np.einsum("nk,kni,knj->kij", r, D, D), rtol=rtol, atol=100 * rtol
    )


# ------------------------------------------------------------------ threads
# More rows than one block (8192), and a last block of a different size, so the
# per-block statistics are merged; the results must be bit-identical for every n_jobs.
X_BIG = _blobs(n=20_000, d=3, k=3, seed=21)[0]


def _fits_per_n_jobs(cls, k, ct, X):
    """Four-iteration fits of ``cls`` with n_jobs = 1, 2, 3, 4 (same seed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return [
            cls(
                k, covariance_type=ct, max_iter=4, tol=0.0, random_state=0, n_jobs=j
            ).fit(X)
            for j in (1, 2, 3, 4)
        ]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ct", COV_TYPES)
def test_n_jobs_bit_identical(ct, dtype):
    X = X_BIG.astype(dtype)
    ref, *fits = _fits_per_n_jobs(GaussianMixture, 3, ct, X)
    for gm in fits:  # equality, not a tolerance (fixed blocks, block-order merge)
        assert gm.lower_bound_ == ref.lower_bound_
        assert gm.lower_bounds_ == ref.lower_bounds_
        assert np.array_equal(gm.means_, ref.means_)
        assert np.array_equal(gm.covariances_, ref.covariances_)
        assert np.array_equal(gm.weights_, ref.weights_)
        assert np.array_equal(gm.score_samples(X), ref.score_samples(X))
        assert np.array_equal(gm.predict_proba(X), ref.predict_proba(X))
        assert np.array_equal(gm.predict(X), ref.predict(X))
        assert gm.score(X) == ref.score(X)


@pytest.mark.parametrize("ct", ["full", "diag"])
def test_n_jobs_matches_sklearn_on_many_blocks(ct):
    """Threads over blocks keep the sklearn oracle (same initial parameters)."""
    sk = pytest.importorskip("sklearn.mixture")
    X = X_BIG
    init = _sk_init(X, 3, ct)
    kw = dict(covariance_type=ct, max_iter=8, tol=0.0, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sk.GaussianMixture(3, **kw).fit(X)
        got = GaussianMixture(3, n_jobs=2, **kw).fit(X)
    assert got.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-9)  # sklearn
    np.testing.assert_allclose(got.means_, ref.means_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(
        got.covariances_, ref.covariances_, rtol=1e-8, atol=1e-10
    )
    np.testing.assert_allclose(got.score_samples(X), ref.score_samples(X), rtol=1e-9)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_bayesian_n_jobs_bit_identical(ct):
    from fastml.mixture import BayesianGaussianMixture

    ref, *fits = _fits_per_n_jobs(BayesianGaussianMixture, 4, ct, X_BIG)
    for bgm in fits:
        assert bgm.lower_bounds_ == ref.lower_bounds_
        assert bgm.elbo_ == ref.elbo_
        assert np.array_equal(bgm.means_, ref.means_)
        assert np.array_equal(bgm.covariances_, ref.covariances_)
        assert np.array_equal(bgm.weights_, ref.weights_)


@pytest.mark.parametrize(
    "n_jobs, err",
    [(0, ValueError), (-2, ValueError), (1.5, TypeError), ("2", TypeError)],
)
def test_bad_n_jobs(n_jobs, err):
    with pytest.raises(err, match="n_jobs"):
        GaussianMixture(2, n_jobs=n_jobs).fit(X_OK)


def test_n_jobs_2_uses_at_most_2_busy_threads(monkeypatch):
    """No oversubscription: the kernel runs on at most n_jobs threads at once, and BLAS
    is pinned to one thread inside (threadpoolctl)."""
    import threading

    from fastml.mixture import _gaussian_mixture as gmm_mod

    tpc = pytest.importorskip("threadpoolctl")
    lock = threading.Lock()
    busy, peak, blas = [0], [0], set()
    kernel = gmm_mod._gmm.em_pass_full

    def counting(*args):
        with lock:
            busy[0] += 1
            peak[0] = max(peak[0], busy[0])
            blas.update(
                p["num_threads"]
                for p in tpc.threadpool_info()
                if p["user_api"] == "blas"
            )
        try:
            return kernel(*args)
        finally:
            with lock:
                busy[0] -= 1

    class Stub:
        em_pass_full = staticmethod(counting)
        em_pass_diag = staticmethod(gmm_mod._gmm.em_pass_diag)

    monkeypatch.setattr(gmm_mod, "_gmm", Stub)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        GaussianMixture(3, max_iter=3, random_state=0, n_jobs=2).fit(X_BIG)
    assert 1 <= peak[0] <= 2
    assert blas <= {1}
    # and the BLAS pin leaves fastml's own default thread count alone afterwards
    from fastml import _parallel

    assert _parallel._threadpool_limit is None
