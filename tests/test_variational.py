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


def test_docstring_examples():
    import doctest

    import fastml.variational

    result = doctest.testmod(fastml.variational, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
