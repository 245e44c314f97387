"""Expectation propagation (Minka 2001; PRML sec. 10.7).

- :class:`ClutterProblem`: Minka's clutter problem, a D-dimensional mean observed through
  a Gaussian mixed with broad clutter, fitted with EP (:meth:`~ClutterProblem.fit_ep`) or
  one pass of assumed density filtering (:meth:`~ClutterProblem.fit_adf`).
- :class:`GaussianEP`: EP with a full Gaussian approximation for a Gaussian prior and
  likelihood terms of 1-D projections ``t_n(w) = f_n(a_n . w)`` (:class:`ProbitSite` in
  closed form, :class:`Site` for any log-likelihood by Gauss-Hermite quadrature).
- :func:`discrete_ep`: EP over a discrete factor graph with a fully factorised
  approximation, which is loopy belief propagation (Minka 2001, sec. 3.2).

Sites are stored by their natural parameters (precision ``tau`` and shift ``nu``) and a
log scale ``log_c``; the approximation's natural parameters (the sum of the prior's and the
sites') are kept apart from its moment parameters (mean, covariance), and the normalisers
are exact Gaussian integrals, so the evidence includes the prior's normaliser.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
from scipy.special import log_ndtr, roots_hermite

from fastml._typing import ArrayLike, FloatArray, RandomStateLike
from fastml._validation import check_array, check_int, check_real

if TYPE_CHECKING:  # annotations only: discrete_ep imports fastml.graphical lazily
    from fastml.graphical import FactorGraph

__all__ = [
    "ClutterProblem",
    "EPResult",
    "GaussianEP",
    "ProbitSite",
    "Site",
    "discrete_ep",
]

_LOG_2PI = math.log(2.0 * math.pi)


def _log_gauss_integral(tau, nu, dim=1):
    """ln ∫ exp(-tau/2 |x|^2 + nu . x) dx for isotropic tau > 0 (vector nu, or scalar)."""
    nu2 = np.sum(np.square(nu), axis=-1) if np.ndim(nu) > np.ndim(tau) else nu * nu
    return 0.5 * dim * (_LOG_2PI - np.log(tau)) + 0.5 * nu2 / tau


def _log_gauss_integral_full(prec: np.ndarray, shift: np.ndarray) -> float:
    """ln ∫ exp(-w'Λw/2 + h'w) dw = D/2 ln 2π - 1/2 ln|Λ| + h'Λ^{-1}h/2."""
    L = np.linalg.cholesky(prec)
    z = np.linalg.solve(L, shift)
    return float(0.5 * len(shift) * _LOG_2PI - np.log(np.diag(L)).sum() + 0.5 * z @ z)


class EPResult:
    """A Gaussian approximation fitted by EP or ADF.

    Attributes
    ----------
    mean, variance : numpy.ndarray or float
        Moment parameters of q (``variance`` a scalar for the isotropic clutter problem,
        ``covariance`` a matrix for :class:`GaussianEP`).
    log_evidence : float
        EP's approximation of ln p(D), prior normaliser included.
    site_tau, site_nu, site_log_c : numpy.ndarray
        Natural parameters and log scales of the sites.
    n_skipped : int
        Site updates skipped because the cavity variance was not positive.
    n_iter : int
    converged : bool
    history : list of dict
        Per pass: ``mean``, ``variance`` (or ``covariance``), ``log_evidence``.
    """

    # Declared for type checkers; each producer sets its own subset (see above).
    mean: FloatArray
    variance: float
    covariance: FloatArray
    precision: float | FloatArray
    shift: FloatArray
    log_evidence: float
    site_tau: FloatArray
    site_nu: FloatArray
    site_log_c: FloatArray
    n_skipped: int
    n_iter: int
    converged: bool
    history: list[dict[str, Any]]

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)

    def __repr__(self) -> str:
        return (
            f"EPResult(log_evidence={self.log_evidence:.6g}, n_iter={self.n_iter}, "
            f"converged={self.converged}, n_skipped={self.n_skipped})"
        )


class ClutterProblem:
    """Minka's clutter problem (Minka 2001, sec. 3.3; PRML sec. 10.7.1).

    x_n ~ (1 - w) N(theta, I) + w N(0, clutter_var I), theta ~ N(0, prior_var I), in D
    dimensions, approximated by q(theta) = N(m, v I).

    Parameters
    ----------
    w : float in [0, 1)
        Clutter weight.
    prior_var : float > 0
    clutter_var : float > 0

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.ep import ClutterProblem
    >>> prob = ClutterProblem(w=0.5, prior_var=100.0, clutter_var=10.0)
    >>> x = prob.sample(2.0, 50, random_state=0)
    >>> r = prob.fit_ep(x)
    >>> r.converged, round(float(r.mean[0]), 1)  # theta = 2, 50 noisy points
    (True, 2.2)
    """

    def __init__(
        self, w: float = 0.5, prior_var: float = 100.0, clutter_var: float = 10.0
    ) -> None:
        self.w = check_real(w, "w", low=0.0, high=1.0, high_open=True)
        self.prior_var = check_real(prior_var, "prior_var", low=0.0, low_open=True)
        self.clutter_var = check_real(
            clutter_var, "clutter_var", low=0.0, low_open=True
        )

    def sample(
        self, theta: ArrayLike, n: int, random_state: RandomStateLike = None
    ) -> FloatArray:
        """``n`` points from the model with mean ``theta`` (scalar or (D,)); (n, D)."""
        from fastml._validation import check_random_state

        rng = check_random_state(random_state)
        theta = np.atleast_1d(
            check_array(theta, "theta", ndim=(0, 1), dtype=np.float64)
        )
        n = check_int(n, "n", low=1)
        clutter = rng.random(n) < self.w
        x = theta + rng.standard_normal((n, theta.size))
        x[clutter] = math.sqrt(self.clutter_var) * rng.standard_normal(
            (int(clutter.sum()), theta.size)
        )
        return x

    def _check_x(self, x) -> np.ndarray:
        x = check_array(x, "x", ndim=(1, 2), dtype=np.float64)
        return x[:, None] if x.ndim == 1 else x

    def log_likelihood(self, theta: ArrayLike, x: ArrayLike) -> FloatArray:
        """ln p(x_n | theta) per point (theta of shape (D,) or (G, D) -> (G, N))."""
        x = self._check_x(x)
        theta = np.atleast_2d(theta)
        D = x.shape[1]
        d2 = ((x[None, :, :] - theta[:, None, :]) ** 2).sum(-1)
        lin = -0.5 * D * _LOG_2PI - 0.5 * d2
        lclut = (
            -0.5 * D * (_LOG_2PI + math.log(self.clutter_var))
            - 0.5 * (x**2).sum(-1) / self.clutter_var
        )
        with np.errstate(divide="ignore"):
            return np.logaddexp(math.log1p(-self.w) + lin, math.log(self.w) + lclut)

    def _tilted(self, xn, tau_c, nu_c, D):
        """Z_n, mean and variance of the tilted distribution (PRML eqs. 10.216-10.217)."""
        v_c = 1.0 / tau_c
        m_c = nu_c * v_c
        d2 = float(((xn - m_c) ** 2).sum())
        log_in = (
            math.log1p(-self.w)
            - 0.5 * D * (_LOG_2PI + math.log(v_c + 1.0))
            - (0.5 * d2 / (v_c + 1.0))
        )
        log_cl = (
            (math.log(self.w) if self.w > 0 else -math.inf)
            - 0.5 * D * (_LOG_2PI + math.log(self.clutter_var))
            - 0.5 * float((xn**2).sum()) / self.clutter_var
        )
        log_z = float(np.logaddexp(log_in, log_cl))
        rho = math.exp(log_in - log_z)  # PRML eq. 10.218: 1 - w N(x|0,a)/Z_n
        mean = m_c + rho * v_c / (v_c + 1.0) * (xn - m_c)
        var = (
            v_c
            - rho * v_c * v_c / (v_c + 1.0)
            + rho * (1.0 - rho) * v_c * v_c * d2 / (D * (v_c + 1.0) ** 2)
        )
        return log_z, mean, var

    def _log_evidence(self, tau, nu, site_log_c, D):
        """ln Z_EP = sum_n ln C_n + ln ∫ exp(q's natural form) - ln ∫ exp(prior's)."""
        return float(
            site_log_c.sum()
            + _log_gauss_integral(tau, nu, D)
            - _log_gauss_integral(1.0 / self.prior_var, np.zeros(D), D)
        )

    def fit_ep(
        self,
        x: ArrayLike,
        max_iter: int = 100,
        damping: float = 0.0,
        tol: float = 1e-10,
    ) -> EPResult:
        """Fit q(theta) = N(m, v I) by EP (PRML eqs. 10.212-10.224, natural form).

        Each pass visits the points in order: cavity (eqs. 10.205-10.206, by subtracting
        natural parameters), tilted moments (eqs. 10.216-10.217), the new site by
        dividing back (eq. 10.207), mixed with the old site's natural parameters by
        ``damping``. A site whose cavity precision is not positive is left unchanged and
        counted in ``n_skipped``. Stops when the mean and variance change by less than
        ``tol`` over a pass.

        Parameters
        ----------
        x : array_like, shape (N,) or (N, D)
        max_iter : int, default 100
            Maximum number of passes.
        damping : float in [0, 1), default 0
        tol : float, default 1e-10

        Returns
        -------
        EPResult
            ``mean`` (D,), ``variance`` (scalar v), ``log_evidence``, site parameters
            (``site_tau``, ``site_nu`` (N, D), ``site_log_c``), ``history``.

        References
        ----------
        T. P. Minka, "Expectation propagation for approximate Bayesian inference",
        UAI 2001.
        """
        x = self._check_x(x)
        max_iter = check_int(max_iter, "max_iter", low=1)
        damping = check_real(damping, "damping", low=0.0, high=1.0, high_open=True)
        tol = check_real(tol, "tol", low=0.0)
        N, D = x.shape
        site_tau = np.zeros(N)
        site_nu = np.zeros((N, D))
        site_log_c = np.zeros(N)
        tau = 1.0 / self.prior_var
        nu = np.zeros(D)
        history, skipped, converged, it = [], 0, False, 0
        for it in range(1, max_iter + 1):  # noqa: B007
            m_old, v_old = nu / tau, 1.0 / tau
            for n in range(N):
                tau_c = tau - site_tau[n]
                nu_c = nu - site_nu[n]
                if tau_c <= 0:
                    skipped += 1
                    continue
                _, mean, var = self._tilted(x[n], tau_c, nu_c, D)
                new_tau = (1.0 - damping) * (1.0 / var - tau_c) + damping * site_tau[n]
                new_nu = (1.0 - damping) * (mean / var - nu_c) + damping * site_nu[n]
                site_tau[n], site_nu[n] = new_tau, new_nu
                tau, nu = tau_c + new_tau, nu_c + new_nu
            self._site_scales(x, tau, nu, site_tau, site_nu, site_log_c, D)
            history.append(
                {
                    "mean": nu / tau,
                    "variance": 1.0 / tau,
                    "log_evidence": self._log_evidence(tau, nu, site_log_c, D),
                }
            )
            change = max(np.abs(nu / tau - m_old).max(), abs(1.0 / tau - v_old))
            if change < tol:
                converged = True
                break
        return EPResult(
            mean=nu / tau,
            variance=1.0 / tau,
            precision=tau,
            shift=nu,
            log_evidence=history[-1]["log_evidence"],
            site_tau=site_tau,
            site_nu=site_nu,
            site_log_c=site_log_c,
            n_skipped=skipped,
            n_iter=it,
            converged=converged,
            history=history,
        )

    def _site_scales(self, x, tau, nu, site_tau, site_nu, site_log_c, D):
        """ln C_n such that ∫ t~_n q^{\\n} = Z_n, from the current q's cavities."""
        for n in range(x.shape[0]):
            tau_c, nu_c = tau - site_tau[n], nu - site_nu[n]
            if tau_c <= 0:
                continue
            log_z, _, _ = self._tilted(x[n], tau_c, nu_c, D)
            site_log_c[n] = (
                log_z
                + _log_gauss_integral(tau_c, nu_c, D)
                - _log_gauss_integral(tau, nu, D)
            )

    def fit_adf(self, x: ArrayLike) -> EPResult:
        """One pass of assumed density filtering (Minka 2001, sec. 3.1).

        Each point's exact update is projected onto N(m, v I) once, in order; the
        evidence estimate is the product of the per-step normalisers Z_n.
        """
        x = self._check_x(x)
        N, D = x.shape
        tau, nu = 1.0 / self.prior_var, np.zeros(D)
        site_tau, site_nu = np.zeros(N), np.zeros((N, D))
        site_log_c = np.zeros(N)
        for n in range(N):
            log_z, mean, var = self._tilted(x[n], tau, nu, D)
            site_log_c[n] = log_z
            site_tau[n], site_nu[n] = 1.0 / var - tau, mean / var - nu
            tau, nu = 1.0 / var, mean / var
        return EPResult(
            mean=nu / tau,
            variance=1.0 / tau,
            precision=tau,
            shift=nu,
            log_evidence=float(site_log_c.sum()),
            site_tau=site_tau,
            site_nu=site_nu,
            site_log_c=site_log_c,
            n_skipped=0,
            n_iter=1,
            converged=True,
            history=[],
        )


class Site:
    """A likelihood term t(w) = exp(log_likelihood(a . w)) of a 1-D projection.

    Tilted moments by Gauss-Hermite quadrature (``n_quad`` nodes) unless a subclass
    gives them in closed form.

    Parameters
    ----------
    projection : array_like, shape (D,)
        The vector a.
    log_likelihood : callable
        Vectorised ln f(s) of the projection s = a . w.
    """

    def __init__(
        self,
        projection: ArrayLike,
        log_likelihood: Callable[[FloatArray], ArrayLike] | None = None,
    ) -> None:
        self.projection = check_array(
            projection, "projection", ndim=1, dtype=np.float64
        )
        if log_likelihood is not None and not callable(log_likelihood):
            raise TypeError("log_likelihood must be callable")
        self.log_likelihood = log_likelihood

    def tilted_moments(
        self, mu: float, var: float, n_quad: int = 96
    ) -> tuple[float, float, float]:
        """ln Z, mean and variance of f(s) N(s | mu, var) / Z (Gauss-Hermite)."""
        t, wq = roots_hermite(n_quad)
        s = mu + math.sqrt(2.0 * var) * t
        logw = np.log(wq) - 0.5 * math.log(math.pi) + self.log_likelihood(s)
        mx = logw.max()
        p = np.exp(logw - mx)
        z = p.sum()
        mean = float(p @ s / z)
        v = float(p @ (s - mean) ** 2 / z)
        return float(mx + math.log(z)), mean, v


class ProbitSite(Site):
    """t(w) = Phi(y a . w), y in {-1, +1}, with closed-form tilted moments
    (Rasmussen & Williams 2006, eqs. 3.58-3.59)."""

    def __init__(self, projection: ArrayLike, y: int) -> None:
        if y not in (-1, 1):
            raise ValueError(f"y must be -1 or +1, got {y!r}")
        super().__init__(projection, lambda s: log_ndtr(y * s))
        self.y = int(y)

    def tilted_moments(
        self, mu: float, var: float, n_quad: int = 96
    ) -> tuple[float, float, float]:
        """ln Z, mean and variance of Phi(y s) N(s | mu, var) / Z in closed form
        (Rasmussen & Williams 2006, eqs. 3.58-3.59); ``n_quad`` is unused."""
        sq = math.sqrt(1.0 + var)
        z = self.y * mu / sq
        log_z = float(log_ndtr(z))
        ratio = math.exp(-0.5 * z * z - 0.5 * _LOG_2PI - log_z)  # N(z) / Phi(z)
        mean = mu + self.y * var * ratio / sq
        v = var - var * var * ratio * (z + ratio) / (1.0 + var)
        return log_z, mean, v


class GaussianEP:
    """EP with a full Gaussian approximation (Minka 2001; PRML sec. 10.7).

    p(w) ∝ N(w | prior_mean, prior_cov) prod_n t_n(a_n . w), approximated by
    q(w) = N(mean, covariance) with rank-one Gaussian sites
    t~_n(w) = C_n exp(-tau_n (a_n.w)^2 / 2 + nu_n a_n.w).

    Parameters
    ----------
    prior_mean : array_like, shape (D,)
    prior_cov : array_like, shape (D, D)
        Symmetric positive definite.
    sites : sequence of Site
    n_quad : int, default 96
        Gauss-Hermite nodes for sites without closed-form moments.

    Notes
    -----
    Natural parameters of q are the prior's plus the sites' (PRML eq. 10.203 in natural
    form): Lambda = Sigma_0^{-1} + sum_n tau_n a_n a_n', h = Sigma_0^{-1} m_0 +
    sum_n nu_n a_n. The evidence is ln Z_EP = sum_n ln C_n + ln ∫ exp(-w'Λw/2 + h'w)
    - ln ∫ exp(prior's natural form), with ln C_n making each site integrate against
    its cavity to the tilted normaliser Z_n (Minka 2001, sec. 3.3).

    References
    ----------
    T. P. Minka, "Expectation propagation for approximate Bayesian inference", UAI 2001.
    C. E. Rasmussen, C. K. I. Williams, *Gaussian Processes for Machine Learning*,
    sec. 3.6, 2006.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.ep import GaussianEP, ProbitSite
    >>> X = np.array([[1.0, 0.5], [-0.3, 1.0], [0.8, -1.0]])
    >>> sites = [ProbitSite(x, y) for x, y in zip(X, [1, -1, 1])]
    >>> r = GaussianEP(np.zeros(2), np.eye(2), sites).fit()
    >>> r.converged, r.covariance.shape
    (True, (2, 2))
    """

    def __init__(
        self,
        prior_mean: ArrayLike,
        prior_cov: ArrayLike,
        sites: Sequence[Site],
        n_quad: int = 96,
    ) -> None:
        m0 = check_array(prior_mean, "prior_mean", ndim=1, dtype=np.float64)
        S0 = check_array(prior_cov, "prior_cov", ndim=2, dtype=np.float64)
        D = m0.shape[0]
        if S0.shape != (D, D):
            raise ValueError(f"prior_cov must have shape ({D}, {D}), got {S0.shape}")
        if not np.allclose(S0, S0.T):
            raise ValueError("prior_cov must be symmetric")
        try:
            np.linalg.cholesky(S0)
        except np.linalg.LinAlgError:
            raise ValueError("prior_cov must be positive definite") from None
        sites = list(sites)
        if not sites:
            raise ValueError("sites must not be empty")
        for i, s in enumerate(sites):
            if not isinstance(s, Site):
                raise TypeError(f"sites[{i}] must be a Site, got {type(s).__name__}")
            if s.projection.shape != (D,):
                raise ValueError(
                    f"sites[{i}].projection must have shape ({D},), got "
                    f"{s.projection.shape}"
                )
        self.prior_mean, self.prior_cov, self.sites = m0, S0, sites
        self.n_quad = check_int(n_quad, "n_quad", low=2)
        self._A = np.array([s.projection for s in sites])
        self._prior_prec = np.linalg.inv(S0)
        self._prior_shift = self._prior_prec @ m0

    def _moments(self, tau, nu):
        prec = self._prior_prec + (self._A.T * tau) @ self._A
        shift = self._prior_shift + self._A.T @ nu
        cov = np.linalg.inv(prec)
        cov = 0.5 * (cov + cov.T)
        return prec, shift, cov, cov @ shift

    def fit(
        self, max_iter: int = 100, tol: float = 1e-10, damping: float = 0.0
    ) -> EPResult:
        """Run EP passes over the sites until the moments stop changing.

        Per site: the cavity of the projection s = a.w by subtracting natural
        parameters (Minka 2001 eq. 3.3), the tilted moments of f(s) N(s | cavity),
        the new site = tilted / cavity in natural form, damped, then a rank-one update
        of q (Sherman-Morrison); q is recomputed from the natural parameters after each
        pass. Sites with non-positive cavity variance are skipped and counted.

        Returns
        -------
        EPResult
            ``mean`` (D,), ``covariance`` (D, D), ``precision``, ``shift`` (natural),
            ``log_evidence``, ``site_tau``, ``site_nu``, ``site_log_c``, ``history``.
        """
        max_iter = check_int(max_iter, "max_iter", low=1)
        tol = check_real(tol, "tol", low=0.0)
        damping = check_real(damping, "damping", low=0.0, high=1.0, high_open=True)
        N = len(self.sites)
        A = self._A
        tau, nu = np.zeros(N), np.zeros(N)
        prec, shift, cov, mean = self._moments(tau, nu)
        history, skipped, converged, it = [], 0, False, 0
        for it in range(1, max_iter + 1):  # noqa: B007
            mean_old, cov_old = mean, cov
            for n, site in enumerate(self.sites):
                a = A[n]
                ca = cov @ a
                s_var, s_mean = float(a @ ca), float(a @ mean)
                tau_c = 1.0 / s_var - tau[n]
                nu_c = s_mean / s_var - nu[n]
                if tau_c <= 0:
                    skipped += 1
                    continue
                _, m_hat, v_hat = site.tilted_moments(
                    nu_c / tau_c, 1.0 / tau_c, self.n_quad
                )
                new_tau = (1 - damping) * (1.0 / v_hat - tau_c) + damping * tau[n]
                new_nu = (1 - damping) * (m_hat / v_hat - nu_c) + damping * nu[n]
                d_tau, d_nu = new_tau - tau[n], new_nu - nu[n]
                tau[n], nu[n] = new_tau, new_nu
                # rank-one update of Sigma and of the natural shift h (mean = Sigma h)
                cov = cov - (d_tau / (1.0 + d_tau * s_var)) * np.outer(ca, ca)
                shift = shift + d_nu * a
                mean = cov @ shift
            prec, shift, cov, mean = self._moments(tau, nu)
            log_c = self._site_scales(tau, nu, cov, mean)
            log_ev = float(
                log_c.sum()
                + _log_gauss_integral_full(prec, shift)
                - _log_gauss_integral_full(self._prior_prec, self._prior_shift)
            )
            history.append({"mean": mean, "covariance": cov, "log_evidence": log_ev})
            change = max(np.abs(mean - mean_old).max(), np.abs(cov - cov_old).max())
            if change < tol:
                converged = True
                break
        return EPResult(
            mean=mean,
            covariance=cov,
            precision=prec,
            shift=shift,
            log_evidence=log_ev,
            site_tau=tau,
            site_nu=nu,
            site_log_c=log_c,
            n_skipped=skipped,
            n_iter=it,
            converged=converged,
            history=history,
        )

    def _site_scales(self, tau, nu, cov, mean):
        """ln C_n = ln Z_n + ln ∫ cavity form - ln ∫ (cavity x site) form (1-D)."""
        A = self._A
        s_var = np.einsum("nd,de,ne->n", A, cov, A)
        s_mean = A @ mean
        out = np.zeros(len(self.sites))
        for n, site in enumerate(self.sites):
            tau_c = 1.0 / s_var[n] - tau[n]
            nu_c = s_mean[n] / s_var[n] - nu[n]
            if tau_c <= 0:
                continue
            log_z, _, _ = site.tilted_moments(nu_c / tau_c, 1.0 / tau_c, self.n_quad)
            out[n] = (
                log_z
                + _log_gauss_integral(tau_c, nu_c)
                - _log_gauss_integral(tau_c + tau[n], nu_c + nu[n])
            )
        return out


class DiscreteEPResult(TypedDict):
    """What :func:`discrete_ep` returns (a plain dict at run time)."""

    beliefs: dict[Hashable, FloatArray]
    n_iter: int
    converged: bool


def discrete_ep(
    factor_graph: FactorGraph, max_iter: int = 200, tol: float = 1e-10
) -> DiscreteEPResult:
    """EP on a discrete factor graph with a fully factorised approximation.

    q(x) = prod_i q_i(x_i), each factor f approximated by prod_{i in f} m_{f,i}(x_i).
    Visiting the factors in order: the cavity q^{\\f}_i = q_i / m_{f,i}, the tilted
    distribution p^(x_f) ∝ f(x_f) prod_i q^{\\f}_i(x_i), its marginals (the projection
    onto the fully factorised family) give q_i, and m_{f,i} = q_i / q^{\\f}_i. These are
    exactly the sum-product messages (PRML eqs. 8.66, 8.69): loopy BP is EP with a fully
    factorised approximation (Minka 2001, sec. 3.2). Pure NumPy; the reference for
    :meth:`fastml.graphical.FactorGraph.loopy_belief_propagation`.

    Returns
    -------
    dict
        ``{variable: q_i}``, ``n_iter`` and ``converged`` under keys ``"beliefs"``,
        ``"n_iter"``, ``"converged"``.
    """
    from fastml.graphical import FactorGraph

    if not isinstance(factor_graph, FactorGraph):
        raise TypeError(
            f"factor_graph must be a FactorGraph, got {type(factor_graph).__name__}"
        )
    max_iter = check_int(max_iter, "max_iter", low=1)
    tol = check_real(tol, "tol", low=0.0)
    names = factor_graph.variables
    ev = factor_graph.evidence
    prior = {}
    for v in names:
        p = np.ones(factor_graph.cardinality(v))
        if v in ev:
            p[:] = 0.0
            p[ev[v]] = 1.0
        prior[v] = p / p.sum()
    factors = [factor_graph.factor(i) for i in range(factor_graph.n_factors)]
    msg = [{v: np.ones_like(prior[v]) for v in vs} for vs, _ in factors]
    q = dict(prior)
    converged, it = False, 0
    for it in range(1, max_iter + 1):  # noqa: B007
        delta = 0.0
        for f, (vs, table) in enumerate(factors):
            cav = {}
            for v in vs:  # q / m_f, computed without dividing (no zero states lost)
                c = prior[v].copy()
                for g, (ws, _) in enumerate(factors):
                    if g != f and v in ws:
                        c = c * msg[g][v]
                cav[v] = c / c.sum()
            tilted = table.copy()
            for k, v in enumerate(vs):
                shape = [1] * len(vs)
                shape[k] = -1
                tilted = tilted * cav[v].reshape(shape)
            tilted = tilted / tilted.sum()
            for k, v in enumerate(vs):
                qv = tilted.sum(axis=tuple(j for j in range(len(vs)) if j != k))
                with np.errstate(invalid="ignore", divide="ignore"):
                    m = np.where(cav[v] > 0, qv / cav[v], 0.0)
                m = m / m.sum()
                delta = max(delta, float(np.abs(m - msg[f][v]).max()))
                msg[f][v] = m
                q[v] = qv
        if delta < tol:
            converged = True
            break
    beliefs = {}
    for v in names:
        b = prior[v].copy()
        for f, (vs, _) in enumerate(factors):
            if v in vs:
                b = b * msg[f][v]
        beliefs[v] = b / b.sum()
    return {"beliefs": beliefs, "n_iter": it, "converged": converged}
