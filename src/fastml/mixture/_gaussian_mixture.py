"""Gaussian mixtures fitted by EM (PRML sec. 9.2), full / tied / diag / spherical
covariances, with one fused compiled pass per iteration (:mod:`fastml._kernels._gmm`).
"""

from __future__ import annotations

import sys
import time
import warnings
from typing import TypeVar

import numpy as np
from scipy import linalg
from scipy.linalg import lapack

from fastml import exceptions
from fastml._base import BaseEstimator, check_is_fitted, validate_data
from fastml._kernels import _gmm
from fastml._parallel import (
    blas_single_threaded,
    block_bounds,
    effective_n_jobs,
    is_dask_array,
    run_blocks,
)
from fastml._typing import (
    ArrayLike,
    CovarianceType,
    FloatArray,
    IntArray,
    MixtureInit,
    RandomStateLike,
    RealArray,
)
from fastml._validation import (
    check_array,
    check_diverged,
    check_int,
    check_random_state,
    check_real,
    check_verbose,
)
from fastml.mixture._kmeans import _lloyd, _nearest, kmeans_plusplus

__all__ = ["GaussianMixture"]


_COV_TYPES = ("full", "tied", "diag", "spherical")


_INITS = ("kmeans", "k-means++", "random", "random_from_data")


_LOG_2PI = np.log(2.0 * np.pi)


# Rows per parallel block. Fixed (never the thread count): every ``n_jobs`` sums the
# same per-block statistics in the same order, so the results are bit-identical. 8192
# rows of d=8, K=16 are ~5 ms of work, far above the per-block dispatch cost.
_ROW_BLOCK = 8192


_COLLAPSE_MSG = (
    "Fitting the mixture model failed because some components have ill-defined "
    "empirical covariance (for instance caused by singleton or collapsed samples): "
    "{detail}. Increase reg_covar (now {reg:g}), decrease n_components, or scale "
    "the input data."
)


def _estimate_from_resp(X, resp, reg_covar, covariance_type):
    """Weights (unnormalised), means and covariances from responsibilities
    (PRML eqs. 9.24-9.27), as scikit-learn's ``_estimate_gaussian_parameters``."""
    Xd = X.astype(np.float64, copy=False)
    nk = resp.sum(axis=0) + 10 * np.finfo(np.float64).eps
    means = (resp.T @ Xd) / nk[:, None]
    K, d = means.shape
    if covariance_type == "full":
        cov = np.empty((K, d, d))
        for k in range(K):
            diff = Xd - means[k]
            cov[k] = (resp[:, k] * diff.T) @ diff / nk[k]
        cov[:, np.arange(d), np.arange(d)] += reg_covar
    elif covariance_type == "tied":
        # scikit-learn's form (rows of resp that do not sum to one, as in
        # "random_from_data", count every sample in X^T X)
        cov = (Xd.T @ Xd - (nk * means.T) @ means) / nk.sum()
        cov.flat[:: d + 1] += reg_covar
    else:
        avg_x2 = (resp.T @ (Xd * Xd)) / nk[:, None]
        cov = avg_x2 - means**2 + reg_covar
        if covariance_type == "spherical":
            cov = cov.mean(axis=1)
    return nk, means, cov


def _entropy(log_resp):
    """``-sum r log r`` of a block of log-responsibilities (double accumulation)."""
    lr = log_resp.astype(np.float64, copy=False)
    return -float(np.sum(np.exp(lr) * lr))


def _em_pass(
    X, params, *, resp=False, norm=False, stats=False, entropy=False, n_jobs=1
):
    """One E-step (+ M-step statistics) pass over fixed row blocks on ``n_jobs`` threads.

    ``params = (means, prec_chol, log_const, full)`` as the kernels take them. Returns
    ``(total log-lik, log_resp, log_norm, stats, entropy)``: the per-block totals and
    statistics (about the current means; zero-size arrays unless ``stats``) summed in
    block order, so every ``n_jobs`` gives the same bits; ``log_resp`` (n, K) and
    ``log_norm`` (n,) have 0 rows unless asked; ``entropy`` is ``-sum r log r`` when
    asked (else 0).
    """
    means, prec, lc, full = params
    n, d = X.shape
    K = means.shape[0]
    log_resp = np.empty((n if resp else 0, K), dtype=X.dtype)
    log_norm = np.empty(n if norm else 0)
    fn = _gmm.em_pass_full if full else _gmm.em_pass_diag
    bounds = block_bounds(n, _ROW_BLOCK)
    m = K if stats else 0
    stat_shapes = ((m,), (m, d), (m, d, d) if full else (m, d))

    def block(b, cancel):
        start, stop = bounds[b]
        st = tuple(np.empty(shape) for shape in stat_shapes)
        if resp:
            lr = log_resp[start:stop]
        else:
            lr = np.empty((stop - start if entropy else 0, K), dtype=X.dtype)
        ln = log_norm[start:stop] if norm else log_norm
        total = fn(X[start:stop], means, prec, lc, lr, ln, *st, cancel)
        return total, st, _entropy(lr) if entropy else 0.0

    with blas_single_threaded(n_jobs > 1 and len(bounds) > 1):
        parts = run_blocks(block, len(bounds), n_jobs)
    total, ent = 0.0, 0.0
    acc = tuple(np.zeros(shape) for shape in stat_shapes)
    for t, st, e in parts:  # block order: the same sums for every n_jobs
        total += t
        ent += e
        for a, s in zip(acc, st, strict=True):
            a += s
    return total, log_resp, log_norm, acc, ent


def _precision_cholesky(cov, covariance_type, reg_covar):
    """Precision Cholesky factors P (P P^T = inverse covariance), as scikit-learn's:
    upper-triangular ``inv(L)^T`` for ``cov = L L^T``."""
    if covariance_type in ("full", "tied"):
        covs = cov[None] if covariance_type == "tied" else cov
        out = np.empty_like(covs)
        for k, c in enumerate(covs):
            chol, info = lapack.dpotrf(c, lower=1, clean=1)
            if info != 0:
                detail = (
                    "the tied covariance is not positive definite"
                    if covariance_type == "tied"
                    else f"the covariance of component {k} is not positive definite"
                )
                raise ValueError(_COLLAPSE_MSG.format(detail=detail, reg=reg_covar))
            inv, info = lapack.dtrtri(chol, lower=1)
            if info != 0 or not np.all(np.isfinite(inv)):
                raise ValueError(
                    _COLLAPSE_MSG.format(
                        detail=f"the covariance of component {k} is singular",
                        reg=reg_covar,
                    )
                )
            out[k] = inv.T
        return out[0] if covariance_type == "tied" else out
    if np.any(cov <= 0.0) or not np.all(np.isfinite(cov)):
        k = int(np.argwhere(~(cov > 0.0))[0][0]) if np.any(cov <= 0.0) else 0
        raise ValueError(
            _COLLAPSE_MSG.format(
                detail=f"component {k} has a non-positive variance", reg=reg_covar
            )
        )
    return 1.0 / np.sqrt(cov)


def _log_det_chol(prec_chol, covariance_type, d):
    if covariance_type == "full":
        return np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)
    if covariance_type == "tied":
        return np.log(np.diag(prec_chol)).sum()
    if covariance_type == "diag":
        return np.log(prec_chol).sum(axis=1)
    return d * np.log(prec_chol)


def _precisions_from_chol(prec_chol, covariance_type):
    if covariance_type == "full":
        return np.einsum("kij,klj->kil", prec_chol, prec_chol)
    if covariance_type == "tied":
        return prec_chol @ prec_chol.T
    return prec_chol**2


def _chol_from_precisions(precisions, covariance_type, name="precisions_init"):
    if covariance_type in ("full", "tied"):
        ps = precisions[None] if covariance_type == "tied" else precisions
        out = np.empty_like(ps)
        for k, p in enumerate(ps):
            if not np.allclose(p, p.T):
                raise ValueError(f"{name}[{k}] must be symmetric")
            try:
                out[k] = linalg.cholesky(p, lower=True)
            except linalg.LinAlgError:
                raise ValueError(f"{name}[{k}] must be positive definite") from None
        return out[0] if covariance_type == "tied" else out
    if np.any(precisions <= 0):
        raise ValueError(f"{name} must be positive")
    return np.sqrt(precisions)


def _cov_from_chol(prec_chol, covariance_type):
    if covariance_type in ("full", "tied"):
        ps = prec_chol[None] if covariance_type == "tied" else prec_chol
        out = np.empty_like(ps)
        for k, p in enumerate(ps):
            out[k] = np.linalg.inv(p @ p.T)
            out[k] = 0.5 * (out[k] + out[k].T)
        return out[0] if covariance_type == "tied" else out
    return 1.0 / prec_chol**2


def _stats_to_params(means_old, stats, reg_covar, covariance_type):
    """``N_k``, weighted means and covariances (+ reg_covar) from the kernel's statistics
    about ``means_old`` (PRML eqs. 9.24-9.27; scikit-learn's
    ``_estimate_gaussian_parameters``)."""
    nk_raw, s1, s2 = stats
    nk = nk_raw + 10 * np.finfo(np.float64).eps
    delta = s1 / nk[:, None]
    means = means_old + delta
    d = means.shape[1]
    reg = reg_covar
    ct = covariance_type
    if ct == "full":
        cov = s2 / nk[:, None, None] - np.einsum("ki,kj->kij", delta, delta)
        cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
        cov[:, np.arange(d), np.arange(d)] += reg
    elif ct == "tied":
        cov = (s2.sum(axis=0) - np.einsum("k,ki,kj->ij", nk, delta, delta)) / nk.sum()
        cov = 0.5 * (cov + cov.T)
        cov.flat[:: d + 1] += reg
    else:
        cov = s2 / nk[:, None] - delta**2 + reg
        if ct == "spherical":
            cov = cov.mean(axis=1)
    if not np.all(np.isfinite(cov)) or not np.all(np.isfinite(means)):
        raise ValueError(
            _COLLAPSE_MSG.format(
                detail="the parameters became non-finite", reg=reg_covar
            )
        )
    return nk, means, cov


_GM = TypeVar("_GM", bound="GaussianMixture")


class GaussianMixture(BaseEstimator):
    """Gaussian mixture fitted by expectation-maximisation (PRML sec. 9.2.2).

    Mirrors :class:`sklearn.mixture.GaussianMixture`: same parameters, fitted
    attributes (``weights_``, ``means_``, ``covariances_``, ``precisions_``,
    ``precisions_cholesky_``, ``converged_``, ``n_iter_``, ``lower_bound_``,
    ``lower_bounds_``) and methods. float32 input is computed in float32 (with double
    accumulators), and the fitted parameters are float32, as scikit-learn's.

    Parameters
    ----------
    n_components : int, default 1
        Number of mixture components K (``1 <= K <= n_samples``).
    covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
    tol : float, default 1e-3
        EM stops when the mean log-likelihood (the lower bound) changes by less.
    reg_covar : float, default 1e-6
        Added to the covariance diagonals; raise it if a component collapses.
    max_iter : int, default 100
    n_init : int, default 1
        Number of initialisations; the one with the best lower bound is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default "kmeans"
        "kmeans": Lloyd's algorithm from a k-means++ seeding; "k-means++": points
        assigned to their nearest k-means++ seed; "random": random responsibilities;
        "random_from_data": K random points as singleton components. All seeded by
        ``random_state``.
    weights_init, means_init, precisions_init : array_like, optional
        Initial parameters (override the ``init_params`` estimate). Precisions have the
        shape of ``covariances_`` for the covariance type.
    random_state : None, int or numpy.random.Generator
    warm_start : bool, default False
        Start from the previous fit's parameters (one initialisation).
    verbose : int or bool, default 0
        1 or more (True is 1): one line per EM iteration (iteration, lower bound,
        change, time).
    verbose_interval : int, default 10
        Print every this many iterations when ``verbose == 1`` (every one if 2+).
    n_jobs : int or None, default None
        Threads for the E-step, the M-step statistics and ``predict``/``score*``:
        ``None`` all usable CPUs (capped by ``OMP_NUM_THREADS`` and threadpoolctl),
        ``-1`` all CPUs, ``k`` k threads. Rows are cut into blocks of 8192 whatever
        the thread count and the per-block statistics are added in block order, so
        every ``n_jobs`` gives the same bits.

    Attributes
    ----------
    weights_ : ndarray (K,)
    means_ : ndarray (K, d)
    covariances_, precisions_, precisions_cholesky_ : ndarray
        Shapes (K, d, d) full, (d, d) tied, (K, d) diag, (K,) spherical.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Mean log-likelihood per sample at the last E-step of the best initialisation.
    lower_bounds_ : list of float
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names of a DataFrame ``X`` (when they are all strings).

    Raises
    ------
    ValueError
        Bad parameters or data (naming the argument), or a collapsed component
        (saying to increase ``reg_covar``).

    Notes
    -----
    E-step: ``log r_nk = log w_k + log N(x_n | mu_k, Sigma_k) - log p(x_n)`` (PRML
    eqs. 9.13 and 9.23) in log space, with ``log N`` through the precision Cholesky
    factor P_k (``||(x - mu_k) P_k||^2``, ``log|Lambda_k|^{1/2} = sum log diag P_k``).
    M-step: PRML eqs. 9.24-9.27 from sufficient statistics accumulated in the same
    pass. The lower bound is the mean log-likelihood (PRML eq. 9.14) before the M-step,
    as in scikit-learn.

    References
    ----------
    C. M. Bishop, *Pattern Recognition and Machine Learning*, Springer 2006, sec. 9.2.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.mixture import GaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-5, 1, (200, 2)), rng.normal(5, 1, (200, 2))])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> np.sort(np.round(gm.means_[:, 0])).tolist()
    [-5.0, 5.0]
    >>> bool(gm.predict([[-4.0, -4.0]])[0] == gm.predict([[-6.0, -5.0]])[0])
    True
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
        weights_init: ArrayLike | None = None,
        means_init: ArrayLike | None = None,
        precisions_init: ArrayLike | None = None,
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
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_jobs = n_jobs

    # ---------------------------------------------------------------- checks
    def _check_parameters(self, X):
        n, d = X.shape
        K = check_int(self.n_components, "n_components", low=1)
        if K > n:
            raise ValueError(f"n_components must be <= n_samples ({n}), got {K}")
        if self.covariance_type not in _COV_TYPES:
            raise ValueError(
                f"covariance_type must be one of {_COV_TYPES}, "
                f"got {self.covariance_type!r}"
            )
        if self.init_params not in _INITS:
            raise ValueError(
                f"init_params must be one of {_INITS}, got {self.init_params!r}"
            )
        check_real(self.tol, "tol", low=0.0)
        check_real(self.reg_covar, "reg_covar", low=0.0)
        check_int(self.max_iter, "max_iter", low=0)
        check_int(self.n_init, "n_init", low=1)
        check_verbose(self.verbose)
        check_int(self.verbose_interval, "verbose_interval", low=1)
        self._w_init = self._m_init = self._p_init = None
        if self.weights_init is not None:
            w = check_array(self.weights_init, "weights_init", ndim=1, dtype=np.float64)
            if w.shape != (K,):
                raise ValueError(f"weights_init must have shape ({K},), got {w.shape}")
            if np.any(w < 0) or np.any(w > 1):
                raise ValueError("weights_init must lie in [0, 1]")
            if not np.isclose(w.sum(), 1.0, rtol=0, atol=1e-6):
                raise ValueError(
                    f"weights_init must sum to 1 (sums to {w.sum():.8f}, tol=1e-6)"
                )
            self._w_init = w
        if self.means_init is not None:
            m = check_array(self.means_init, "means_init", ndim=2, dtype=np.float64)
            if m.shape != (K, d):
                raise ValueError(
                    f"means_init must have shape ({K}, {d}), got {m.shape}"
                )
            self._m_init = m
        if self.precisions_init is not None:
            shape = {
                "full": (K, d, d),
                "tied": (d, d),
                "diag": (K, d),
                "spherical": (K,),
            }[self.covariance_type]
            p = check_array(
                self.precisions_init,
                "precisions_init",
                ndim=len(shape),
                dtype=np.float64,
            )
            if p.shape != shape:
                raise ValueError(
                    f"precisions_init must have shape {shape} for covariance_type="
                    f"{self.covariance_type!r}, got {p.shape}"
                )
            self._p_init = _chol_from_precisions(p, self.covariance_type)
        return K

    def _validate_X(self, X, reset):
        X = validate_data(self, X, reset=reset, min_samples=2 if reset else 1)
        if max(X.shape) >= 2**31:
            raise ValueError("X dimensions must be < 2**31 (32-bit BLAS)")
        return X

    # ------------------------------------------------------------- the pass
    def _log_const(self, d):
        ld = _log_det_chol(self.precisions_cholesky_, self.covariance_type, d)
        with np.errstate(divide="ignore"):
            lw = np.log(self.weights_)
        return np.ascontiguousarray(lw + ld - 0.5 * d * _LOG_2PI, dtype=np.float64)

    def _kernel_params(self, X):
        """``(means, prec_chol, log_const, full)`` for the kernels, in X's dtype."""
        dt = X.dtype
        means = np.ascontiguousarray(self.means_, dtype=dt)
        pc = self.precisions_cholesky_
        ct = self.covariance_type
        if ct == "full":
            prec = np.ascontiguousarray(pc, dtype=dt)
        elif ct == "tied":
            prec = np.ascontiguousarray(pc[None], dtype=dt)
        elif ct == "diag":
            prec = np.ascontiguousarray(pc, dtype=dt)
        else:
            prec = np.ascontiguousarray(
                np.repeat(pc[:, None], X.shape[1], axis=1), dtype=dt
            )
        full = ct in ("full", "tied")
        return means, prec, self._log_const(X.shape[1]), full

    def _pass(
        self, X, *, resp=False, norm=False, stats=False, entropy=False, n_jobs=None
    ):
        """One kernel pass at the current parameters (:func:`_em_pass`) on ``n_jobs``
        threads (default ``self.n_jobs``)."""
        threads = effective_n_jobs(self.n_jobs if n_jobs is None else n_jobs)
        return _em_pass(
            X,
            self._kernel_params(X),
            resp=resp,
            norm=norm,
            stats=stats,
            entropy=entropy,
            n_jobs=threads,
        )

    def _m_step_from_stats(self, n, stats):
        """PRML eqs. 9.24-9.27 from statistics about the previous means."""
        nk, means, cov = _stats_to_params(
            self.means_, stats, self.reg_covar, self.covariance_type
        )
        self.weights_ = nk / nk.sum()
        self.means_ = means
        self.covariances_ = cov
        self.precisions_cholesky_ = _precision_cholesky(
            cov, self.covariance_type, self.reg_covar
        )

    # ------------------------------------------------------------- init
    def _initial_resp(self, Xd, rng):
        """Initial responsibilities (n, K) from ``init_params``."""
        n = Xd.shape[0]
        K = self.n_components
        if self.init_params in ("kmeans", "k-means++"):
            centers, _ = kmeans_plusplus(Xd, K, random_state=rng)
            if self.init_params == "kmeans":
                _, labels = _lloyd(Xd, centers)
            else:
                labels = _nearest(Xd, np.einsum("ij,ij->i", Xd, Xd), centers)
            resp = np.zeros((n, K))
            resp[np.arange(n), labels] = 1.0
        elif self.init_params == "random":
            resp = rng.uniform(size=(n, K))
            resp /= resp.sum(axis=1, keepdims=True)
        else:
            resp = np.zeros((n, K))
            resp[rng.choice(n, size=K, replace=False), np.arange(K)] = 1.0
        return resp

    def _initialize(self, init_rows, rng):
        """Initial parameters; ``init_rows()`` gives the rows ``init_params`` runs on
        (called only when ``weights_init``, ``means_init`` or ``precisions_init`` is
        missing)."""
        ct = self.covariance_type
        need_estimate = (
            self._w_init is None or self._m_init is None or (self._p_init is None)
        )
        if need_estimate:
            Xd = init_rows().astype(np.float64, copy=False)
            n = Xd.shape[0]
            resp = self._initial_resp(Xd, rng)
            nk, means, cov = _estimate_from_resp(Xd, resp, self.reg_covar, ct)
            weights = nk / n
        self.weights_ = self._w_init if self._w_init is not None else weights
        self.means_ = self._m_init if self._m_init is not None else means
        if self._p_init is not None:
            self.precisions_cholesky_ = self._p_init
            self.covariances_ = _cov_from_chol(self._p_init, ct)
        else:
            self.covariances_ = cov
            self.precisions_cholesky_ = _precision_cholesky(cov, ct, self.reg_covar)

    def _get_parameters(self):
        return (
            self.weights_,
            self.means_,
            self.covariances_,
            self.precisions_cholesky_,
        )

    def _set_parameters(self, params):
        (
            self.weights_,
            self.means_,
            self.covariances_,
            self.precisions_cholesky_,
        ) = params
        self.precisions_ = _precisions_from_chol(
            self.precisions_cholesky_, self.covariance_type
        )

    # ------------------------------------------------------------- fit
    def fit(self: _GM, X: ArrayLike, y: object = None) -> _GM:
        """Estimate the parameters by EM (best of ``n_init`` runs).

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        n_jobs = effective_n_jobs(self.n_jobs)
        X, init_rows, stats_pass = self._prepare_fit(X, n_jobs)
        n = X.shape[0]
        self._check_parameters(X)
        rng = check_random_state(self.random_state)
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        max_lb = -np.inf
        best = None
        best_lbs: list[float] = []
        best_iter = 0
        self.converged_ = False
        out = sys.stdout
        for init in range(n_init):
            if self.verbose:
                print(f"Initialization {init}", file=out)
            if do_init:
                self._initialize(init_rows, rng)
            lb = -np.inf if do_init else self.lower_bound_
            lbs: list[float] = []
            converged = False
            n_iter = 0
            t_init = time.perf_counter()
            for n_iter in range(1, self.max_iter + 1):
                t0 = time.perf_counter()
                prev = lb
                total, stats, _ = stats_pass(False)
                self._m_step_from_stats(n, stats)
                self._check_diverged(n_iter)
                lb = total / n
                lbs.append(lb)
                change = lb - prev
                if self.verbose and (
                    self.verbose >= 2 or n_iter % self.verbose_interval == 0
                ):
                    print(
                        f"  Iteration {n_iter:4d}  lower bound {lb:.8f}  "
                        f"change {change:.3e}  {1e3 * (time.perf_counter() - t0):.1f} ms",
                        file=out,
                    )
                if abs(change) < self.tol:
                    converged = True
                    break
            if self.verbose:
                state = "converged" if converged else "did not converge"
                print(
                    f"Initialization {state}: lower bound {lb:.8f} after {n_iter} "
                    f"iterations ({time.perf_counter() - t_init:.2f} s)",
                    file=out,
                )
            if lb > max_lb or max_lb == -np.inf:
                max_lb = lb
                best = self._get_parameters()
                best_iter = n_iter
                best_lbs = lbs
                self.converged_ = converged
        if not self.converged_ and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                exceptions.ConvergenceWarning,
                stacklevel=2,
            )
        # float32 data gives float32 parameters, as scikit-learn (computed in float64)
        self._set_parameters([np.asarray(p, dtype=X.dtype) for p in best])
        self.n_iter_ = best_iter
        self.lower_bound_ = max_lb
        self.lower_bounds_ = best_lbs
        return self

    def _prepare_fit(self, X, n_jobs):
        """Validate ``X``; return ``(X, init_rows, stats_pass)``: the data, a function
        returning the rows the initialisation sees, and ``stats_pass(entropy)`` running
        one E-step + statistics pass at the current parameters and returning
        ``(total log-lik, statistics, entropy)``.

        A ``dask.array.Array`` is handled by :mod:`fastml.mixture._dask` (statistics
        computed per chunk on the Dask workers).
        """
        if is_dask_array(X):
            from fastml.mixture import _dask

            return _dask.prepare_fit(self, X)
        X = self._validate_X(X, reset=True)

        def stats_pass(entropy):
            total, _, _, st, ent = self._pass(
                X, stats=True, entropy=entropy, n_jobs=n_jobs
            )
            return total, st, ent

        return X, lambda: X, stats_pass

    def _check_diverged(self, n_iter):
        check_diverged(
            self,
            n_iter,
            "increase reg_covar or standardise X",
            weights_=self.weights_,
            means_=self.means_,
            covariances_=self.covariances_,
        )

    def fit_predict(self, X: ArrayLike, y: object = None) -> IntArray:
        """Fit, then return the most probable component of each sample."""
        return self.fit(X).predict(X)

    # --------------------------------------------------------- inference
    def _check_fitted_X(self, X):
        check_is_fitted(self, ["means_", "precisions_cholesky_"])
        return self._validate_X(X, reset=False)

    def _lazy(self, X, what):
        """A lazy dask array of ``what`` for dask input (:mod:`._dask`)."""
        from fastml.mixture import _dask

        check_is_fitted(self, ["means_", "precisions_cholesky_"])
        return _dask.lazy(self, X, what)

    def score_samples(self, X: ArrayLike) -> RealArray:
        """Log-likelihood ``log p(x_n)`` of each sample (PRML eq. 9.14 term); a lazy
        dask array for a ``dask.array.Array`` ``X``."""
        if is_dask_array(X):
            return self._lazy(X, "score_samples")
        X = self._check_fitted_X(X)
        return self._pass(X, norm=True)[2]

    def _total_log_likelihood(self, X):
        """``(sum_n log p(x_n), n)``; on dask input, summed over the chunks on the
        workers."""
        if is_dask_array(X):
            from fastml.mixture import _dask

            check_is_fitted(self, ["means_", "precisions_cholesky_"])
            return _dask.total_log_likelihood(self, X)
        X = self._check_fitted_X(X)
        return self._pass(X)[0], X.shape[0]

    def score(self, X: ArrayLike, y: object = None) -> float:
        """Mean log-likelihood per sample (computed on the workers for dask input)."""
        total, n = self._total_log_likelihood(X)
        return total / n

    def predict_proba(self, X: ArrayLike) -> FloatArray:
        """Responsibilities ``r_nk`` (PRML eq. 9.23), shape (n_samples, K); lazy for
        dask input."""
        if is_dask_array(X):
            return self._lazy(X, "predict_proba")
        X = self._check_fitted_X(X)
        return np.exp(self._pass(X, resp=True)[1].astype(np.float64))

    def predict(self, X: ArrayLike) -> IntArray:
        """Most probable component of each sample; lazy for dask input."""
        if is_dask_array(X):
            return self._lazy(X, "predict")
        X = self._check_fitted_X(X)
        return np.argmax(self._pass(X, resp=True)[1], axis=1)

    def sample(self, n_samples: int = 1) -> tuple[RealArray, IntArray]:
        """Draw ``n_samples`` points; returns ``(X, labels)`` sorted by component.

        Uses a Generator seeded from ``random_state`` (numpy's Generator draws).
        """
        check_is_fitted(self, "means_")
        n_samples = check_int(n_samples, "n_samples", low=1)
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_)
        d = self.means_.shape[1]
        ct = self.covariance_type
        parts = []
        for k, c in enumerate(counts):
            z = rng.standard_normal((c, d))
            if ct == "full":
                L = linalg.cholesky(self.covariances_[k], lower=True)
                parts.append(self.means_[k] + z @ L.T)
            elif ct == "tied":
                L = linalg.cholesky(self.covariances_, lower=True)
                parts.append(self.means_[k] + z @ L.T)
            elif ct == "diag":
                parts.append(self.means_[k] + z * np.sqrt(self.covariances_[k]))
            else:
                parts.append(self.means_[k] + z * np.sqrt(self.covariances_[k]))
        labels = np.repeat(np.arange(len(counts)), counts)
        return np.vstack(parts), labels

    def _n_parameters(self):
        K, d = self.means_.shape
        cov = {
            "full": K * d * (d + 1) / 2.0,
            "diag": K * d,
            "tied": d * (d + 1) / 2.0,
            "spherical": K,
        }[self.covariance_type]
        return int(cov + K * d + K - 1)

    def bic(self, X: ArrayLike) -> float:
        """Bayesian information criterion (lower is better)."""
        total, n = self._total_log_likelihood(X)
        return -2 * total + self._n_parameters() * np.log(n)

    def aic(self, X: ArrayLike) -> float:
        """Akaike information criterion (lower is better)."""
        total, _ = self._total_log_likelihood(X)
        return -2 * total + 2 * self._n_parameters()
