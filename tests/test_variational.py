"""Mean-field VI: UnivariateGaussianVI (PRML sec. 10.1.3) against the conjugate
Normal-Gamma posterior, its evidence and a Monte Carlo ELBO."""

import numpy as np
import pytest
from scipy import stats
from scipy.special import gammaln

from fastml.variational import UnivariateGaussianVI


def _exact_posterior(x, mu0, l0, a0, b0):
    """Conjugate Normal-Gamma posterior and log evidence (closed form)."""
    n = x.size
    xbar = x.mean()
    ss = ((x - xbar) ** 2).sum()
    kn = l0 + n
    mn = (l0 * mu0 + n * xbar) / kn
    an = a0 + n / 2
    bn = b0 + 0.5 * ss + l0 * n * (xbar - mu0) ** 2 / (2 * kn)
    log_ev = (
        gammaln(an)
        - gammaln(a0)
        + a0 * np.log(b0)
        - an * np.log(bn)
        + 0.5 * np.log(l0 / kn)
        - 0.5 * n * np.log(2 * np.pi)
    )
    return mn, kn, an, bn, log_ev


@pytest.mark.parametrize("n", [5, 50, 5000])
def test_elbo_monotone_and_below_evidence(n):
    x = np.random.default_rng(n).normal(1.5, 2.0, size=n)
    prior = dict(mu0=0.3, lambda0=2.0, a0=1.5, b0=0.7)
    vi = UnivariateGaussianVI(**prior, init_tau=50.0).fit(x)
    e = np.array(vi.elbo_)
    assert len(e) > 2 and np.all(np.diff(e) >= -1e-12 * np.abs(e[1:]))
    mn, _, an, _, log_ev = _exact_posterior(x, *prior.values())
    assert vi.elbo_[-1] <= log_ev + 1e-9  # ELBO = log p(X) - KL(q || p)
    assert vi.mu_N_ == pytest.approx(
        mn, rel=1e-12
    )  # PRML eq. 10.26 = exact posterior mean
    assert vi.a_N_ == an + 0.5  # PRML eq. 10.29
    assert vi.converged_


def test_fixed_point_equations_at_convergence():
    x = np.random.default_rng(1).normal(-1.0, 0.3, size=200)
    vi = UnivariateGaussianVI(mu0=0.0, lambda0=0.5, a0=2.0, b0=1.0, tol=0).fit(x)
    n = x.size
    e_tau = vi.a_N_ / vi.b_N_
    assert vi.lambda_N_ == pytest.approx((0.5 + n) * e_tau, rel=1e-10)  # eq. 10.27
    e_sq = np.sum((x - vi.mu_N_) ** 2) + n / vi.lambda_N_
    b = 1.0 + 0.5 * (e_sq + 0.5 * ((vi.mu_N_) ** 2 + 1 / vi.lambda_N_))  # eq. 10.30
    assert vi.b_N_ == pytest.approx(b, rel=1e-9)


def test_large_n_limits_match_ml_and_posterior():
    x = np.random.default_rng(2).normal(3.0, 0.5, size=200_000)
    vi = UnivariateGaussianVI().fit(x)
    _, _, an, bn, log_ev = _exact_posterior(x, 0.0, 1.0, 1.0, 1.0)
    # the prior's pull on tau is O(1/N) relative (b0 and lambda0 (xbar - mu0)^2 / 2)
    assert vi.expected_tau_ == pytest.approx(1 / x.var(), rel=1e-3)
    assert vi.expected_tau_ == pytest.approx(an / bn, rel=1e-4)  # conjugate posterior
    assert 1 / vi.lambda_N_ == pytest.approx(x.var() / x.size, rel=1e-3)
    assert log_ev - vi.elbo_[-1] < 1.0  # the KL gap stays O(1)


def test_elbo_matches_monte_carlo():
    x = np.random.default_rng(3).normal(0.5, 1.5, size=30)
    vi = UnivariateGaussianVI(mu0=0.0, lambda0=1.0, a0=2.0, b0=2.0).fit(x)
    rng = np.random.default_rng(4)
    S = 400_000
    mu = rng.normal(vi.mu_N_, 1 / np.sqrt(vi.lambda_N_), size=S)
    tau = rng.gamma(vi.a_N_, 1 / vi.b_N_, size=S)
    sd = 1 / np.sqrt(tau)
    logp = (
        stats.norm.logpdf(x[:, None], mu, sd).sum(axis=0)
        + stats.norm.logpdf(mu, 0.0, 1 / np.sqrt(tau))
        + stats.gamma.logpdf(tau, 2.0, scale=1 / 2.0)
    )
    logq = stats.norm.logpdf(
        mu, vi.mu_N_, 1 / np.sqrt(vi.lambda_N_)
    ) + stats.gamma.logpdf(tau, vi.a_N_, scale=1 / vi.b_N_)
    w = logp - logq
    se = w.std() / np.sqrt(S)
    assert abs(w.mean() - vi.elbo_[-1]) < 5 * se  # z-test, false-alarm rate ~6e-7


@pytest.mark.parametrize(
    "kwargs, x, err, match",
    [
        (dict(lambda0=0.0), [1.0, 2.0], ValueError, "lambda0"),
        (dict(a0=-1.0), [1.0, 2.0], ValueError, "a0"),
        (dict(b0=np.inf), [1.0, 2.0], ValueError, "b0"),
        (dict(), [], ValueError, "x must not be empty"),
        (dict(), [1.0, np.nan], ValueError, "x must be finite"),
        (dict(), [[1.0, 2.0]], ValueError, "x must be 1-dimensional"),
        (dict(max_iter=0), [1.0], ValueError, "max_iter"),
    ],
)
def test_bad_input(kwargs, x, err, match):
    with pytest.raises(err, match=match):
        UnivariateGaussianVI(**kwargs).fit(x)


# ------------------------------------------------- BayesianGaussianMixture (PRML 10.2)
import warnings  # noqa: E402

from scipy.special import betaln, psi  # noqa: E402

from fastml.mixture import BayesianGaussianMixture  # noqa: E402


def _three_blobs(seed=0, n=300, d=3):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(m, 0.7, (n, d)) for m in (-4.0, 0.0, 4.0)])


def _same_init(monkeypatch, n, K, seed):
    """Give fastml the responsibilities scikit-learn's "random_from_data" draws."""
    idx = np.random.RandomState(seed).choice(n, K, replace=False)

    def initial_resp(self, Xd, rng):
        r = np.zeros((Xd.shape[0], K))
        r[idx, np.arange(K)] = 1.0
        return r

    monkeypatch.setattr(BayesianGaussianMixture, "_initial_resp", initial_resp)


@pytest.mark.parametrize("prior", ["dirichlet_process", "dirichlet_distribution"])
@pytest.mark.parametrize("ct", ["full", "tied", "diag", "spherical"])
def test_bgmm_matches_sklearn_from_same_init(monkeypatch, ct, prior):
    skm = pytest.importorskip("sklearn.mixture")
    X = _three_blobs()
    kw = dict(
        covariance_type=ct,
        max_iter=30,
        tol=0,
        init_params="random_from_data",
        random_state=5,
        weight_concentration_prior=0.01,
        weight_concentration_prior_type=prior,
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = skm.BayesianGaussianMixture(n_components=6, **kw).fit(X)
        _same_init(monkeypatch, X.shape[0], 6, 5)
        got = BayesianGaussianMixture(6, **kw).fit(X)
    # oracle: scikit-learn's VB updates and lower bound
    assert got.lower_bound_ == pytest.approx(
        float(np.ravel(ref.lower_bound_)[0]), rel=1e-10
    )
    np.testing.assert_allclose(got.weights_, ref.weights_, atol=1e-10)
    np.testing.assert_allclose(got.means_, ref.means_, atol=1e-9)
    np.testing.assert_allclose(
        got.covariances_, ref.covariances_, rtol=1e-8, atol=1e-10
    )
    np.testing.assert_allclose(
        got.degrees_of_freedom_, ref.degrees_of_freedom_, rtol=1e-10
    )
    np.testing.assert_allclose(got.mean_precision_, ref.mean_precision_, rtol=1e-10)
    np.testing.assert_allclose(
        got.weight_concentration_, ref.weight_concentration_, rtol=1e-10
    )
    np.testing.assert_allclose(got.predict_proba(X), ref.predict_proba(X), atol=1e-9)


def _prml_elbo(X, resp, m):
    """Independent PRML eqs. 10.70-10.77 (full covariances)."""
    D = X.shape[1]
    K = resp.shape[1]
    a0, b0 = m.weight_concentration_prior_, m.mean_precision_prior_
    m0, nu0 = m.mean_prior_, m.degrees_of_freedom_prior_
    W0inv = m.covariance_prior_
    alpha, beta, mk, nu = (
        m.weight_concentration_,
        m.mean_precision_,
        m.means_,
        m.degrees_of_freedom_,
    )
    W = np.array(
        [np.linalg.inv(c * v) for c, v in zip(m.covariances_, nu, strict=True)]
    )
    Nk = resp.sum(0)
    xbar = resp.T @ X / Nk[:, None]
    S = np.array(
        [(resp[:, k] * (X - xbar[k]).T) @ (X - xbar[k]) / Nk[k] for k in range(K)]
    )

    def ln_b(Wm, v):
        return -0.5 * v * np.linalg.slogdet(Wm)[1] - (
            0.5 * v * D * np.log(2)
            + D * (D - 1) / 4 * np.log(np.pi)
            + sum(gammaln((v + 1 - i) / 2) for i in range(1, D + 1))
        )

    def ln_c(a):
        return gammaln(a.sum()) - gammaln(a).sum()

    ln_lam = np.array(
        [
            sum(psi((nu[k] + 1 - i) / 2) for i in range(1, D + 1))
            + D * np.log(2)
            + np.linalg.slogdet(W[k])[1]
            for k in range(K)
        ]
    )
    if isinstance(
        alpha, tuple
    ):  # stick-breaking: Beta(g1, g2) sticks, Beta(1, a0) prior
        g1, g2 = alpha
        e_lnv, e_ln1mv = psi(g1) - psi(g1 + g2), psi(g2) - psi(g1 + g2)
        ln_pi = e_lnv + np.concatenate([[0.0], np.cumsum(e_ln1mv)[:-1]])
        e_ppi = K * np.log(a0) + (a0 - 1) * e_ln1mv.sum()  # ln B(1, a0) = -ln a0
        e_qpi = float(np.sum((g1 - 1) * e_lnv + (g2 - 1) * e_ln1mv - betaln(g1, g2)))
    else:
        ln_pi = psi(alpha) - psi(alpha.sum())
        e_ppi = ln_c(np.full(K, a0)) + (a0 - 1) * ln_pi.sum()
        e_qpi = float(np.sum((alpha - 1) * ln_pi)) + ln_c(alpha)
    e_px = 0.5 * sum(
        Nk[k]
        * (
            ln_lam[k]
            - D / beta[k]
            - nu[k] * np.trace(S[k] @ W[k])
            - nu[k] * (xbar[k] - mk[k]) @ W[k] @ (xbar[k] - mk[k])
            - D * np.log(2 * np.pi)
        )
        for k in range(K)
    )
    e_pz = float(np.sum(resp * ln_pi))
    W0 = np.linalg.inv(W0inv)
    e_pml = (
        0.5
        * sum(
            D * np.log(b0 / (2 * np.pi))
            + ln_lam[k]
            - D * b0 / beta[k]
            - b0 * nu[k] * (mk[k] - m0) @ W[k] @ (mk[k] - m0)
            for k in range(K)
        )
        + K * ln_b(W0, nu0)
        + (nu0 - D - 1) / 2 * ln_lam.sum()
        - 0.5 * sum(nu[k] * np.trace(W0inv @ W[k]) for k in range(K))
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        e_qz = float(np.sum(np.where(resp > 0, resp * np.log(resp), 0.0)))
    ent_lam = [
        -ln_b(W[k], nu[k]) - (nu[k] - D - 1) / 2 * ln_lam[k] + nu[k] * D / 2
        for k in range(K)
    ]
    e_qml = sum(
        0.5 * ln_lam[k] + D / 2 * np.log(beta[k] / (2 * np.pi)) - D / 2 - ent_lam[k]
        for k in range(K)
    )
    return e_px + e_pz + e_ppi + e_pml - e_qz - e_qpi - e_qml


def _beta_log_moments(a, b):
    """E[ln v] and E[ln(1 - v)] for v ~ Beta(a, b), by quadrature (not digammas)."""
    from scipy import integrate

    def moment(f, ai, bi):
        pdf = stats.beta(ai, bi).pdf
        return integrate.quad(lambda v: f(v) * pdf(v), 0, 1, limit=200)[0]

    pairs = list(zip(a, b, strict=True))
    e_lnv = np.array([moment(np.log, ai, bi) for ai, bi in pairs])
    e_ln1mv = np.array([moment(lambda v: np.log1p(-v), ai, bi) for ai, bi in pairs])
    return e_lnv, e_ln1mv


@pytest.mark.parametrize("prior", ["dirichlet_distribution", "dirichlet_process"])
def test_bgmm_exact_elbo_matches_prml_and_is_monotone(prior):
    X = _three_blobs(seed=1, n=100)
    kw = dict(
        max_iter=8,
        tol=0,
        reg_covar=0.0,
        random_state=0,
        init_params="k-means++",
        weight_concentration_prior_type=prior,
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before = BayesianGaussianMixture(4, **{**kw, "max_iter": 7}).fit(X)
        after = BayesianGaussianMixture(4, **kw).fit(X)
    resp = before.predict_proba(X)  # the E-step that fed the last M-step
    ref = _prml_elbo(X, resp, after)  # oracle: PRML eqs. 10.70-10.77
    assert after.elbo_[-1] == pytest.approx(ref, rel=1e-9)
    e = np.array(after.elbo_)
    assert np.all(np.diff(e) >= -1e-9 * np.abs(e[1:]))  # coordinate ascent


def test_stick_breaking_expectations_closed_form():
    # oracle: quadrature of E[ln v], E[ln(1 - v)] under each Beta stick, and a Monte
    # Carlo estimate of E[pi_k] = E[v_k prod_{j<k} (1 - v_j)] (independent sticks)
    X = _three_blobs(seed=3, n=60)
    m = BayesianGaussianMixture(
        5, weight_concentration_prior=0.5, max_iter=5, tol=0, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(X)
    g1, g2 = m.weight_concentration_
    e_lnv, e_ln1mv = _beta_log_moments(g1, g2)
    ln_pi = e_lnv + np.concatenate([[0.0], np.cumsum(e_ln1mv)[:-1]])
    np.testing.assert_allclose(m._expected_log_weights(), ln_pi, rtol=1e-9)
    v = np.random.default_rng(0).beta(g1, g2, size=(200_000, 5))
    pi = v * np.concatenate([np.ones((v.shape[0], 1)), np.cumprod(1 - v, 1)[:, :-1]], 1)
    mean, se = pi.mean(0), pi.std(0) / np.sqrt(v.shape[0])
    closed = m.weights_ * (1 - np.prod(g2 / (g1 + g2)))  # undo the normalisation
    assert np.all(np.abs(mean - closed) < 5 * se)  # z-test per stick, alpha ~ 6e-7


def test_bgmm_prunes_components():
    X = _three_blobs(seed=2)
    m = BayesianGaussianMixture(
        8,
        weight_concentration_prior_type="dirichlet_distribution",
        weight_concentration_prior=1e-3,
        max_iter=500,
        random_state=0,
    ).fit(X)
    assert m.n_active_components_ == 3
    kept = np.sort(m.means_[m.active_components_, 0])
    np.testing.assert_allclose(kept, [-4.0, 0.0, 4.0], atol=0.15)
    np.testing.assert_allclose(m.weights_[m.active_components_].sum(), 1.0, atol=1e-2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(weight_concentration_prior=0.0), "weight_concentration_prior"),
        (dict(mean_precision_prior=-1.0), "mean_precision_prior"),
        (dict(degrees_of_freedom_prior=1.5), "degrees_of_freedom_prior"),
        (dict(weight_concentration_prior_type="stick_breaking"), "prior_type"),
        (
            dict(
                weight_concentration_prior_type="dirichlet_process",
                weight_concentration_prior=0.0,
            ),
            "weight_concentration_prior must be > 0",
        ),
        (
            dict(
                weight_concentration_prior_type="dirichlet_process",
                weight_concentration_prior=-1.0,
            ),
            "weight_concentration_prior must be > 0",
        ),
        (dict(mean_prior=[0.0, 0.0]), "mean_prior"),
        (dict(covariance_prior=np.eye(2)), "covariance_prior"),
        (dict(covariance_prior=-np.eye(3)), "covariance_prior"),
        (dict(n_components=0), "n_components"),
    ],
)
def test_bgmm_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BayesianGaussianMixture(**{"n_components": 2, **kwargs}).fit(_three_blobs(n=20))
