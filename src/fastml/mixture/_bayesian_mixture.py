"""Variational Bayesian Gaussian mixtures (PRML sec. 10.2): Dirichlet-distribution or
truncated Dirichlet-process (stick-breaking) weights and Gaussian-Wishart components,
exact ELBO, pruned components.
"""

from __future__ import annotations

import sys
import time
import warnings
from typing import TypeVar

import numpy as np
from scipy.special import betaln, gammaln, psi

from fastml import exceptions
from fastml._parallel import effective_n_jobs, is_dask_array
from fastml._typing import ArrayLike, CovarianceType, MixtureInit, RandomStateLike
from fastml._validation import (
    check_array,
    check_random_state,
    check_real,
)
from fastml.mixture._gaussian_mixture import (
    _LOG_2PI,
    GaussianMixture,
    _chol_from_precisions,
    _estimate_from_resp,
    _log_det_chol,
    _precision_cholesky,
    _precisions_from_chol,
    _stats_to_params,
)

__all__ = ["BayesianGaussianMixture"]

_PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")


def _log_dirichlet_norm(alpha):
    """``ln C(alpha)`` (PRML eq. B.23)."""
    return gammaln(np.sum(alpha)) - np.sum(gammaln(alpha))


def _log_wishart_norm(dof, half_log_det_w, d):
    """``ln B(W, nu)`` (PRML eq. B.79) without its ``d(d-1)/4 ln pi`` constant, from
    ``0.5 ln|W|``; as scikit-learn's ``_log_wishart_norm``."""
    dof = np.asarray(dof, dtype=np.float64)
    return -(
        dof * half_log_det_w
        + dof * d * 0.5 * np.log(2.0)
        + np.sum(gammaln(0.5 * (dof - np.arange(d)[:, None])), axis=0)
    )


_BGM = TypeVar("_BGM", bound="BayesianGaussianMixture")


class BayesianGaussianMixture(GaussianMixture):
    """Variational Bayesian Gaussian mixture (PRML sec. 10.2), as scikit-learn's
    ``BayesianGaussianMixture``.

    A truncated Dirichlet-process (stick-breaking, the default) or a Dirichlet(alpha0)
    prior on the weights and a Gaussian-Wishart prior on each component (mean prior
    ``m0``, precision scale ``beta0``, ``nu0`` degrees of freedom, ``W0^{-1}`` =
    ``covariance_prior``); q(Z) q(pi) q(mu, Lambda) by coordinate ascent. The E-step is
    the same compiled pass as :class:`GaussianMixture`'s, with ``E[ln pi_k]``,
    ``E[ln |Lambda_k|]`` and ``D / beta_k`` folded into the per-component constant
    (PRML eqs. 10.64-10.66).

    Parameters
    ----------
    n_components : int, default 1
        Upper bound on the number of components; unneeded ones get negligible weight.
    covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
    tol, reg_covar, max_iter, n_init, init_params, random_state, warm_start, verbose,
    verbose_interval, n_jobs
        As :class:`GaussianMixture` (``n_jobs``: threads over fixed row blocks, the
        same bits for every thread count).
    weight_concentration_prior_type : {"dirichlet_process", "dirichlet_distribution"}
        "dirichlet_process" (default, as scikit-learn): stick-breaking weights
        ``pi_k = v_k prod_{j<k} (1 - v_j)`` with ``v_k ~ Beta(1, alpha0)``, truncated at
        ``n_components`` sticks (Blei & Jordan 2006); q(v_k) = Beta(gamma_k1, gamma_k2).
        "dirichlet_distribution": the finite Dirichlet(alpha0) prior of PRML sec. 10.2.
    weight_concentration_prior : float > 0, optional
        alpha0 (default ``1 / n_components``); small values prune components.
    mean_precision_prior : float, optional
        beta0 (default 1).
    mean_prior : array_like (d,), optional
        m0 (default the data mean).
    degrees_of_freedom_prior : float, optional
        nu0 > d - 1 (default d).
    covariance_prior : float or array_like, optional
        W0^{-1} (default the empirical covariance; (d, d) full/tied, (d,) diag,
        float spherical).
    weight_threshold : float, default 1e-3
        Components with ``weights_`` below this are reported as pruned
        (``active_components_``); they stay in the model, as in scikit-learn.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_
        As scikit-learn's (``covariances_ = W_k^{-1} / nu_k``).
    weight_concentration_ : ndarray or tuple of two ndarrays
        Dirichlet: alpha_k (PRML eq. 10.58). Dirichlet process: the Beta parameters
        ``(gamma_k1, gamma_k2) = (1 + N_k, alpha0 + sum_{j>k} N_j)`` (Blei & Jordan
        2006, eqs. 18-19).
    mean_precision_, degrees_of_freedom_ : ndarray
        beta_k, nu_k (PRML eqs. 10.60, 10.63).
    lower_bound_, lower_bounds_ : float, list
        scikit-learn's lower bound (the ELBO up to a constant).
    elbo_ : list of float
        ``covariance_type="full"``: the exact ELBO of PRML eq. 10.70 per iteration
        (exact when ``reg_covar=0``; the jitter perturbs the M-step slightly); with the
        Dirichlet process, the weights' terms are those of the Beta sticks.
    active_components_ : ndarray of bool
        ``weights_ > weight_threshold``.
    n_active_components_ : int

    Raises
    ------
    ValueError
        Bad parameters (naming them) or a collapsed component (suggesting reg_covar).

    Notes
    -----
    Stick-breaking expectations (Blei & Jordan 2006, sec. 5):
    ``E[ln v_k] = psi(gamma_k1) - psi(gamma_k1 + gamma_k2)``,
    ``E[ln(1 - v_k)] = psi(gamma_k2) - psi(gamma_k1 + gamma_k2)`` and
    ``E[ln pi_k] = E[ln v_k] + sum_{j<k} E[ln(1 - v_j)]``; ``weights_`` is
    ``E[v_k] prod_{j<k} E[1 - v_j]`` normalised, as scikit-learn.

    References
    ----------
    Bishop, C. M., *Pattern Recognition and Machine Learning*, sec. 10.2.
    Blei, D. M. and Jordan, M. I., "Variational inference for Dirichlet process
    mixtures", Bayesian Analysis 1(1), 2006.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.mixture import BayesianGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(m, 0.5, (300, 2)) for m in (-4.0, 0.0, 4.0)])
    >>> bgm = BayesianGaussianMixture(
    ...     n_components=8,
    ...     weight_concentration_prior_type="dirichlet_distribution",
    ...     weight_concentration_prior=1e-3,
    ...     max_iter=500,
    ...     random_state=0,
    ... ).fit(X)
    >>> bgm.n_active_components_
    3
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: CovarianceType = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: MixtureInit = "kmeans",
        weight_concentration_prior_type: str = "dirichlet_process",
        weight_concentration_prior: float | None = None,
        mean_precision_prior: float | None = None,
        mean_prior: ArrayLike | None = None,
        degrees_of_freedom_prior: float | None = None,
        covariance_prior: ArrayLike | None = None,
        weight_threshold: float = 1e-3,
        random_state: RandomStateLike = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
        n_jobs: int | None = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.weight_threshold = weight_threshold
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_jobs = n_jobs

    # parameters GaussianMixture reads in _check_parameters
    weights_init = means_init = precisions_init = None

    def _check_priors(self, X):
        d = X.shape[1]
        K = self.n_components
        if self.weight_concentration_prior_type not in _PRIOR_TYPES:
            raise ValueError(
                f"weight_concentration_prior_type must be one of {_PRIOR_TYPES}, got "
                f"{self.weight_concentration_prior_type!r}"
            )
        a0 = self.weight_concentration_prior
        self.weight_concentration_prior_ = (
            1.0 / K
            if a0 is None
            else check_real(a0, "weight_concentration_prior", low=0.0, low_open=True)
        )
        b0 = self.mean_precision_prior
        self.mean_precision_prior_ = (
            1.0
            if b0 is None
            else check_real(b0, "mean_precision_prior", low=0.0, low_open=True)
        )
        if is_dask_array(X):
            from fastml.mixture._dask import mean_cov

            data_mean, data_cov = mean_cov(X)
        else:
            Xd = X.astype(np.float64, copy=False)
            data_mean, data_cov = Xd.mean(axis=0), np.atleast_2d(np.cov(Xd.T))
        if self.mean_prior is None:
            self.mean_prior_ = data_mean
        else:
            m0 = check_array(self.mean_prior, "mean_prior", ndim=1, dtype=np.float64)
            if m0.shape != (d,):
                raise ValueError(f"mean_prior must have shape ({d},), got {m0.shape}")
            self.mean_prior_ = m0
        nu0 = self.degrees_of_freedom_prior
        if nu0 is None:
            self.degrees_of_freedom_prior_ = float(d)
        else:
            nu0 = check_real(nu0, "degrees_of_freedom_prior")
            if nu0 <= d - 1:
                raise ValueError(
                    f"degrees_of_freedom_prior must be > n_features - 1 = {d - 1}, "
                    f"got {nu0}"
                )
            self.degrees_of_freedom_prior_ = nu0
        ct = self.covariance_type
        cp = self.covariance_prior
        if cp is None:
            cp = {
                "full": data_cov,
                "tied": data_cov,
                "diag": np.diag(data_cov).copy(),
                "spherical": np.diag(data_cov).mean(),
            }[ct]
        elif ct in ("full", "tied"):
            cp = check_array(cp, "covariance_prior", ndim=2, dtype=np.float64)
            if cp.shape != (d, d):
                raise ValueError(
                    f"covariance_prior must have shape ({d}, {d}), got {cp.shape}"
                )
            _chol_from_precisions(cp[None], "full", name="covariance_prior")
        elif ct == "diag":
            cp = check_array(cp, "covariance_prior", ndim=1, dtype=np.float64)
            if cp.shape != (d,) or np.any(cp <= 0):
                raise ValueError(f"covariance_prior must be positive with shape ({d},)")
        else:
            cp = check_real(cp, "covariance_prior", low=0.0, low_open=True)
        self.covariance_prior_ = cp
        check_real(self.weight_threshold, "weight_threshold", low=0.0, high=1.0)

    # ------------------------------------------------------------ VB updates
    def _vb_m_step(self, nk, xk, sk):
        """PRML eqs. 10.58-10.63 (scikit-learn's ``_estimate_*``)."""
        K = xk.shape[0]
        a0 = self.weight_concentration_prior_
        b0 = self.mean_precision_prior_
        m0 = self.mean_prior_
        nu0 = self.degrees_of_freedom_prior_
        cp = self.covariance_prior_
        ct = self.covariance_type
        if self.weight_concentration_prior_type == "dirichlet_process":
            # Beta(1 + N_k, alpha0 + sum_{j>k} N_j) (Blei & Jordan 2006, eqs. 18-19)
            tail = np.concatenate([np.cumsum(nk[::-1])[-2::-1], [0.0]])
            self.weight_concentration_ = (1.0 + nk, a0 + tail)
        else:
            self.weight_concentration_ = a0 + nk
        self.mean_precision_ = b0 + nk
        self.means_ = (b0 * m0 + nk[:, None] * xk) / self.mean_precision_[:, None]
        diff = xk - m0
        if ct == "full":
            self.degrees_of_freedom_ = nu0 + nk
            cov = (
                cp
                + nk[:, None, None] * sk
                + (nk * b0 / self.mean_precision_)[:, None, None]
                * np.einsum("ki,kj->kij", diff, diff)
            )
            cov /= self.degrees_of_freedom_[:, None, None]
        elif ct == "tied":
            self.degrees_of_freedom_ = nu0 + nk.sum() / K
            cov = (
                cp
                + sk * nk.sum() / K
                + b0 / K * ((nk / self.mean_precision_) * diff.T) @ diff
            )
            cov /= self.degrees_of_freedom_
        elif ct == "diag":
            self.degrees_of_freedom_ = nu0 + nk
            cov = cp + nk[:, None] * (
                sk + (b0 / self.mean_precision_)[:, None] * diff**2
            )
            cov /= self.degrees_of_freedom_[:, None]
        else:
            self.degrees_of_freedom_ = nu0 + nk
            cov = cp + nk * (sk + b0 / self.mean_precision_ * np.mean(diff**2, axis=1))
            cov /= self.degrees_of_freedom_
        self.covariances_ = cov
        self.precisions_cholesky_ = _precision_cholesky(cov, ct, self.reg_covar)
        self.weights_ = self._expected_weights()

    def _expected_weights(self):
        """E[pi_k] (Dirichlet); ``E[v_k] prod_{j<k} E[1 - v_j]`` normalised (sticks)."""
        wc = self.weight_concentration_
        if self.weight_concentration_prior_type == "dirichlet_process":
            a, b = wc
            w = a / (a + b) * np.concatenate([[1.0], np.cumprod(b / (a + b))[:-1]])
            return w / w.sum()
        return wc / wc.sum()

    def _expected_log_weights(self):
        """E[ln pi_k]: PRML eq. 10.66, or the stick-breaking sum (class Notes)."""
        wc = self.weight_concentration_
        if self.weight_concentration_prior_type == "dirichlet_process":
            a, b = wc
            psi_ab = psi(a + b)
            e_ln_1mv = psi(b) - psi_ab
            return psi(a) - psi_ab + np.concatenate([[0.0], np.cumsum(e_ln_1mv)[:-1]])
        return psi(wc) - psi(wc.sum())

    def _log_const(self, d):
        """E[ln pi_k] + 0.5 E[ln|Lambda_k|] - d/2 ln(2 pi) - d / (2 beta_k), with the
        Mahalanobis term ``nu_k (x - m_k)^T W_k (x - m_k)`` left to the kernel
        (PRML eqs. 10.64-10.66; precisions_cholesky_ factors nu_k W_k)."""
        ld = _log_det_chol(self.precisions_cholesky_, self.covariance_type, d)
        dof = self.degrees_of_freedom_
        log_lambda = d * np.log(2.0) + np.sum(
            psi(0.5 * (dof - np.arange(d)[:, None])), axis=0
        )
        ew = self._expected_log_weights()
        c = (
            ew
            + ld
            - 0.5 * d * _LOG_2PI
            - 0.5 * d * np.log(dof)
            + 0.5 * (log_lambda - d / self.mean_precision_)
        )
        return np.ascontiguousarray(np.broadcast_to(c, ew.shape), dtype=np.float64)

    def _bound(self, ent, n):
        """scikit-learn's lower bound, and the exact ELBO (full covariances), from the
        entropy ``-sum r log r`` of the responsibilities."""
        d = self.means_.shape[1]
        K = self.n_components
        ct = self.covariance_type
        half_logdet_w = _log_det_chol(
            self.precisions_cholesky_, ct, d
        ) - 0.5 * d * np.log(self.degrees_of_freedom_)
        log_wishart = _log_wishart_norm(self.degrees_of_freedom_, half_logdet_w, d)
        log_wishart = (
            K * float(np.sum(log_wishart))
            if ct == "tied"
            else float(np.sum(log_wishart))
        )
        a0 = self.weight_concentration_prior_
        if self.weight_concentration_prior_type == "dirichlet_process":
            # ln B(gamma_k1, gamma_k2) of q; the prior's is ln B(1, alpha0) = -ln alpha0
            log_weight_norm = -float(np.sum(betaln(*self.weight_concentration_)))
            prior_weight_norm = K * np.log(a0)
        else:
            log_weight_norm = _log_dirichlet_norm(self.weight_concentration_)
            prior_weight_norm = _log_dirichlet_norm(np.full(K, a0))
        lb = (
            ent
            - log_wishart
            - log_weight_norm
            - 0.5 * d * float(np.sum(np.log(self.mean_precision_)))
        )
        elbo = None
        if ct == "full":
            _, logdet_cp = np.linalg.slogdet(self.covariance_prior_)
            prior = (
                prior_weight_norm
                + K
                * float(
                    _log_wishart_norm(
                        self.degrees_of_freedom_prior_, -0.5 * logdet_cp, d
                    )[0]
                )
                + 0.5 * d * K * np.log(self.mean_precision_prior_)
                - 0.5 * n * d * _LOG_2PI
            )
            elbo = lb + prior
        return lb, elbo

    # ------------------------------------------------------------ fit
    def fit(self: _BGM, X: ArrayLike, y: object = None) -> _BGM:
        """Coordinate-ascent variational inference (best of ``n_init`` runs)."""
        n_jobs = effective_n_jobs(self.n_jobs)
        X, init_rows, stats_pass = self._prepare_fit(X, n_jobs)
        n = X.shape[0]
        self._check_parameters(X)
        self._check_priors(X)
        rng = check_random_state(self.random_state)
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        max_lb = -np.inf
        best = None
        self.converged_ = False
        Xd = init_rows().astype(np.float64, copy=False) if do_init else None
        for init in range(n_init):
            if self.verbose:
                print(f"Initialization {init}", file=sys.stdout)
            if do_init:
                resp = self._initial_resp(Xd, rng)
                nk, xk, sk = _estimate_from_resp(
                    Xd, resp, self.reg_covar, self.covariance_type
                )
                self._vb_m_step(nk, xk, sk)
            lb = -np.inf if do_init else self.lower_bound_
            lbs, elbos = [], []
            converged = False
            n_iter = 0
            for n_iter in range(1, self.max_iter + 1):
                t0 = time.perf_counter()
                prev = lb
                _, stats, ent = stats_pass(True)
                nk, xk, sk = _stats_to_params(
                    self.means_, stats, self.reg_covar, self.covariance_type
                )
                self._vb_m_step(nk, xk, sk)
                self._check_diverged(n_iter)
                lb, elbo = self._bound(ent, n)
                lbs.append(lb)
                if elbo is not None:
                    elbos.append(elbo)
                change = lb - prev
                if self.verbose and (
                    self.verbose >= 2 or n_iter % self.verbose_interval == 0
                ):
                    print(
                        f"  Iteration {n_iter:4d}  lower bound {lb:.8f}  "
                        f"change {change:.3e}  {1e3 * (time.perf_counter() - t0):.1f} ms",
                        file=sys.stdout,
                    )
                if abs(change) < self.tol:
                    converged = True
                    break
            if lb > max_lb or max_lb == -np.inf:
                max_lb = lb
                best = (
                    self.weight_concentration_,
                    self.mean_precision_,
                    self.means_,
                    self.degrees_of_freedom_,
                    self.covariances_,
                    self.precisions_cholesky_,
                    self.weights_,
                )
                best_iter, best_lbs, best_elbos = n_iter, lbs, elbos
                self.converged_ = converged
        if not self.converged_ and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                exceptions.ConvergenceWarning,
                stacklevel=2,
            )
        (
            self.weight_concentration_,
            self.mean_precision_,
            self.means_,
            self.degrees_of_freedom_,
            self.covariances_,
            self.precisions_cholesky_,
            self.weights_,
        ) = best
        self.precisions_ = _precisions_from_chol(
            self.precisions_cholesky_, self.covariance_type
        )
        self.n_iter_ = best_iter
        self.lower_bound_ = max_lb
        self.lower_bounds_ = best_lbs
        self.elbo_ = best_elbos
        self.active_components_ = self.weights_ > self.weight_threshold
        self.n_active_components_ = int(self.active_components_.sum())
        return self
