"""Mean-field variational inference (PRML ch. 10).

:class:`UnivariateGaussianVI` is the factorised approximation ``q(mu) q(tau)`` to the
posterior of a Gaussian's mean and precision under a Normal-Gamma prior (PRML sec.
10.1.3). The data enter only through ``N``, the mean and the sum of squared deviations
(one pass, :func:`fastml.stats.mean_variance`), so each coordinate-ascent step is O(1).
The Bayesian Gaussian mixture (PRML sec. 10.2) is
:class:`fastml.mixture.BayesianGaussianMixture`.
"""

from __future__ import annotations

import warnings
from typing import TypeVar

import numpy as np
from scipy.special import gammaln, psi

from fastml import exceptions
from fastml._base import BaseEstimator, check_is_fitted
from fastml._typing import ArrayLike
from fastml._validation import check_array, check_diverged, check_int, check_real
from fastml.stats import mean_variance

__all__ = ["UnivariateGaussianVI"]

_LOG_2PI = float(np.log(2.0 * np.pi))


_VI = TypeVar("_VI", bound="UnivariateGaussianVI")


class UnivariateGaussianVI(BaseEstimator):
    """Factorised variational posterior of a Gaussian's mean and precision.

    Model (PRML eqs. 10.21-10.23): ``x_n ~ N(mu, 1/tau)``,
    ``mu | tau ~ N(mu0, 1/(lambda0 tau))``, ``tau ~ Gam(a0, b0)``. The approximation
    ``q(mu) q(tau) = N(mu | mu_N, 1/lambda_N) Gam(tau | a_N, b_N)`` is found by
    coordinate ascent on the evidence lower bound.

    Parameters
    ----------
    mu0 : float, default 0
    lambda0 : float, default 1
        Prior precision scale of the mean (> 0).
    a0, b0 : float, default 1
        Gamma prior shape and rate of tau (> 0).
    max_iter : int, default 100
    tol : float, default 1e-12
        Stop when a sweep changes ``b_N`` by less than ``tol`` relative to its value
        (``lambda_N`` then changes by the same relative amount, ``mu_N`` and ``a_N``
        are fixed). The update of ``b_N`` contracts by ``1 / (2 a_N)`` per sweep, so
        the parameters are then within about ``tol`` (relative) of the fixed point.
        A criterion on the ELBO would stop ~sqrt(tol) away: the bound is flat at its
        maximum. A :class:`~fastml.exceptions.ConvergenceWarning` if ``max_iter``
        comes first.
    init_tau : float, optional
        Starting ``E[tau]`` (default ``a0 / b0``).

    Attributes
    ----------
    mu_N_, lambda_N_ : float
        q(mu) mean and precision (PRML eqs. 10.26-10.27).
    a_N_, b_N_ : float
        q(tau) shape and rate (PRML eqs. 10.29-10.30).
    elbo_ : list of float
        The exact ELBO after each full coordinate-ascent sweep (non-decreasing, up
        to rounding once the parameters reach the fixed point, where it is flat).
    n_iter_ : int
    converged_ : bool

    Raises
    ------
    ValueError
        Empty or non-finite data, priors <= 0; parameters that became non-finite
        (data of extreme scale).

    Notes
    -----
    ``E[tau] = a_N / b_N``, ``E[log tau] = psi(a_N) - log b_N``; the ELBO is
    ``E[log p(x | mu, tau)] + E[log p(mu | tau)] + E[log p(tau)] + H[q(mu)] + H[q(tau)]``
    evaluated in closed form. Unlike the exact Normal-Gamma posterior, ``a_N`` has
    ``(N + 1) / 2`` (PRML eq. 10.29), and q(mu) q(tau) neglects their correlation.
    The fixed point has a closed form: with ``S = sum_n (x_n - mu_N)^2 +
    lambda0 (mu_N - mu0)^2``, eq. 10.30 reads ``b_N = b0 + S / 2 + b_N / (2 a_N)``, so
    ``b_N = (b0 + S / 2) / (1 - 1 / (2 a_N))`` and ``lambda_N = (lambda0 + N) a_N / b_N``.

    References
    ----------
    C. M. Bishop, *Pattern Recognition and Machine Learning*, sec. 10.1.3.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.variational import UnivariateGaussianVI
    >>> x = np.random.default_rng(0).normal(2.0, 0.5, size=1000)
    >>> vi = UnivariateGaussianVI().fit(x)
    >>> round(vi.mu_N_, 1), round(vi.a_N_ / vi.b_N_, 0)
    (2.0, 4.0)
    >>> e = np.array(vi.elbo_)  # non-decreasing up to rounding at the fixed point
    >>> bool(np.all(np.diff(e) >= -1e-12 * np.abs(e[1:])))
    True
    """

    def __init__(
        self,
        mu0: float = 0.0,
        lambda0: float = 1.0,
        a0: float = 1.0,
        b0: float = 1.0,
        *,
        max_iter: int = 100,
        tol: float = 1e-12,
        init_tau: float | None = None,
    ) -> None:
        self.mu0 = mu0
        self.lambda0 = lambda0
        self.a0 = a0
        self.b0 = b0
        self.max_iter = max_iter
        self.tol = tol
        self.init_tau = init_tau

    def _elbo(self, n, xbar, ss):
        mu0, l0, a0, b0 = self._prior
        mN, lN, aN, bN = self.mu_N_, self.lambda_N_, self.a_N_, self.b_N_
        e_tau = aN / bN
        e_log_tau = psi(aN) - np.log(bN)
        # sum_n E[(x_n - mu)^2] and E[(mu - mu0)^2] under q(mu)
        e_sq = ss + n * (xbar - mN) ** 2 + n / lN
        e_mu0 = (mN - mu0) ** 2 + 1.0 / lN
        lik = 0.5 * n * (e_log_tau - _LOG_2PI) - 0.5 * e_tau * e_sq
        prior_mu = 0.5 * (np.log(l0) + e_log_tau - _LOG_2PI) - 0.5 * l0 * e_tau * e_mu0
        prior_tau = a0 * np.log(b0) - gammaln(a0) + (a0 - 1) * e_log_tau - b0 * e_tau
        h_mu = 0.5 * (1.0 + _LOG_2PI - np.log(lN))
        h_tau = aN - np.log(bN) + gammaln(aN) + (1.0 - aN) * psi(aN)
        return float(lik + prior_mu + prior_tau + h_mu + h_tau)

    def fit(self: _VI, x: ArrayLike, y: object = None) -> _VI:
        """Run coordinate ascent on the 1-d data ``x``; returns ``self``."""
        x = check_array(x, "x", ndim=1, dtype=np.float64)
        mu0 = check_real(self.mu0, "mu0")
        l0, a0, b0 = (
            check_real(getattr(self, name), name, low=0.0, low_open=True)
            for name in ("lambda0", "a0", "b0")
        )
        self._prior = (mu0, l0, a0, b0)
        check_int(self.max_iter, "max_iter", low=1)
        check_real(self.tol, "tol", low=0.0)
        n = x.shape[0]
        xbar, var = mean_variance(x)
        ss = var * n  # sum of squared deviations
        e_tau = (
            a0 / b0
            if self.init_tau is None
            else check_real(self.init_tau, "init_tau", low=0.0, low_open=True)
        )
        # q(mu): its mean never changes (PRML eq. 10.26)
        self.mu_N_ = (l0 * mu0 + n * xbar) / (l0 + n)
        self.a_N_ = a0 + 0.5 * (n + 1)  # PRML eq. 10.29
        self.elbo_ = []
        self.converged_ = False
        b_prev = np.inf
        for it in range(1, self.max_iter + 1):
            self.lambda_N_ = (l0 + n) * e_tau  # PRML eq. 10.27
            e_sq = ss + n * (xbar - self.mu_N_) ** 2 + n / self.lambda_N_
            e_mu0 = (self.mu_N_ - mu0) ** 2 + 1.0 / self.lambda_N_
            self.b_N_ = b0 + 0.5 * (e_sq + l0 * e_mu0)  # PRML eq. 10.30
            e_tau = self.a_N_ / self.b_N_
            check_diverged(
                self, it, "rescale x", lambda_N_=self.lambda_N_, b_N_=self.b_N_
            )
            self.elbo_.append(self._elbo(n, xbar, ss))
            self.n_iter_ = it
            if abs(self.b_N_ - b_prev) <= self.tol * self.b_N_:
                self.converged_ = True
                break
            b_prev = self.b_N_
        else:
            warnings.warn(
                f"UnivariateGaussianVI stopped at max_iter={self.max_iter} before "
                f"b_N changed by less than tol={self.tol} (relative); increase "
                "max_iter or tol.",
                exceptions.ConvergenceWarning,
                stacklevel=2,
            )
        return self

    @property
    def expected_tau_(self) -> float:
        """``E_q[tau] = a_N / b_N``."""
        check_is_fitted(self, "b_N_")
        return self.a_N_ / self.b_N_
