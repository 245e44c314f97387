"""HMM whose states emit from Gaussian mixtures (hmmlearn.hmm.GMMHMM)."""

from __future__ import annotations

import numpy as np
from scipy import linalg

from fastml._kernels import _gmm
from fastml._typing import (
    ArrayLike,
    CovarianceType,
    HMMAlgorithm,
    HMMImplementation,
    RandomStateLike,
)
from fastml._validation import check_array, check_int, check_real
from fastml.hmm._base import _check_distribution, _ContinuousHMM
from fastml.hmm._gaussian import _KMEANS_ROWS, COVARIANCE_TYPES
from fastml.mixture._kmeans import _lloyd, kmeans_plusplus

__all__ = ["GMMHMM"]

_LOG_2PI = np.log(2.0 * np.pi)


def _kmeans_centers(x, k, rng):
    centers, _ = kmeans_plusplus(x, k, random_state=rng)
    return _lloyd(x, centers)


class GMMHMM(_ContinuousHMM):
    """HMM with a Gaussian mixture of ``n_mix`` components per state
    (hmmlearn.hmm.GMMHMM).

    In state ``k`` the emission density is
    ``p(x | z = k) = sum_m w_km N(x | mu_km, Sigma_km)`` (PRML eq. 9.7). The E-step
    evaluates all ``K * n_mix`` weighted component densities in one pass of the
    compiled Gaussian-mixture kernel (:mod:`fastml._kernels._gmm`: Cholesky whitening
    by GEMM), so the frame likelihoods ``log p(x_t | z_t = k)`` are exact log-sum-exps
    and the within-state responsibilities ``r_tkm`` come from the same numbers. The
    M-step weights every sample by ``gamma_tk r_tkm`` (PRML eq. 13.17 with eqs.
    9.24-9.27 inside each state) and applies hmmlearn's priors and formulas, with one
    difference: the covariance statistics are centred at the *updated* means, which
    is the exact maximiser of the expected complete-data log-likelihood (hmmlearn's
    GMMHMM centres them at the previous means; the two agree whenever the means are
    not re-estimated, i.e. ``"m"`` not in ``params``, and at a fixed point).

    Parameters
    ----------
    n_components : int
        Number of states K.
    n_mix : int
        Number of mixture components per state M.
    min_covar : float
        Added to the diagonal of the data covariance used to initialise ``covars_``.
    startprob_prior, transmat_prior : float or array
        Dirichlet prior parameters (1 = no prior).
    weights_prior : float or array (K, M)
        Dirichlet prior on each state's mixture weights.
    means_prior, means_weight : float or array
        Normal prior on the means (``means_weight = 0``: none).
    covars_prior, covars_weight : float or array, optional
        Prior on the covariances, hmmlearn's parameterisation and defaults (which give
        the maximum-likelihood update for "full", "diag" and "tied").
    algorithm, random_state, n_iter, tol, verbose, implementation, n_jobs
        As in :class:`GaussianHMM`.
    covariance_type : {"diag", "full", "spherical", "tied"}
        Shape of ``covars_``: (K, M), (K, M, D), (K, M, D, D); "tied": (K, D, D), one
        matrix per state shared by its components.
    params, init_params : str
        Letters of the parameters to update / initialise: 's', 't', 'm' (means), 'c'
        (covariances), 'w' (mixture weights).

    Attributes
    ----------
    startprob_, transmat_ : ndarray
    weights_ : ndarray, shape (K, M)
    means_ : ndarray, shape (K, M, D)
    covars_ : ndarray
    n_features : int
    monitor_ : ConvergenceMonitor

    Notes
    -----
    Initialisation (letters in ``init_params``): k-means with K clusters on (at most
    10,000 of) the rows, then k-means with M clusters inside each cluster (a cluster
    with fewer than M rows draws its means from a normal around the data centroid),
    equal weights, and every covariance set to the data covariance plus
    ``min_covar`` -- hmmlearn's scheme, with fastml's k-means++ / Lloyd.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.hmm import GMMHMM
    >>> m = GMMHMM(2, n_mix=2, covariance_type="spherical")
    >>> m.startprob_ = np.array([0.5, 0.5])
    >>> m.transmat_ = np.array([[0.9, 0.1], [0.1, 0.9]])
    >>> m.weights_ = np.array([[0.5, 0.5], [0.5, 0.5]])
    >>> m.means_ = np.array([[[-5.0], [-4.0]], [[4.0], [5.0]]])
    >>> m.covars_ = np.ones((2, 2))
    >>> m.predict(np.array([[-4.5], [-5.2], [4.8], [4.1]])).tolist()
    [0, 0, 1, 1]
    """

    _emission_letters = "mcw"
    # The GMM kernel runs once over all rows (its within-state responsibilities feed
    # the M-step); the recursions still run per block of sequences on threads.
    _frames_per_block = False
    _fitted_attrs = ("startprob_", "transmat_", "weights_", "means_", "covars_")

    def __init__(
        self,
        n_components: int = 1,
        n_mix: int = 1,
        min_covar: float = 1e-3,
        startprob_prior: ArrayLike = 1.0,
        transmat_prior: ArrayLike = 1.0,
        weights_prior: ArrayLike = 1.0,
        means_prior: ArrayLike = 0.0,
        means_weight: ArrayLike = 0.0,
        covars_prior: ArrayLike | None = None,
        covars_weight: ArrayLike | None = None,
        algorithm: HMMAlgorithm = "viterbi",
        covariance_type: CovarianceType = "diag",
        random_state: RandomStateLike = None,
        n_iter: int = 10,
        tol: float = 1e-2,
        verbose: bool = False,
        params: str = "stmcw",
        init_params: str = "stmcw",
        implementation: HMMImplementation = "scaling",
        n_jobs: int | None = None,
    ) -> None:
        self.n_components = n_components
        self.n_mix = n_mix
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.weights_prior = weights_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.algorithm = algorithm
        self.covariance_type = covariance_type
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_jobs = n_jobs

    # ---- shapes and validation ------------------------------------------------------
    def _covars_shape(self, k: int, m: int, d: int) -> tuple[int, ...]:
        return {
            "spherical": (k, m),
            "diag": (k, m, d),
            "full": (k, m, d, d),
            "tied": (k, d, d),
        }[self.covariance_type]

    def _emission_sizes(self) -> dict:
        k, m, d = np.shape(self.means_)
        cov = {"spherical": k * m, "diag": k * m * d, "full": k * m * d * (d + 1) // 2,
               "tied": k * d * (d + 1) // 2}[self.covariance_type]  # fmt: skip
        return {"m": k * m * d, "c": cov, "w": k * (m - 1)}

    def _check_hyper(self) -> int:
        k = super()._check_hyper()
        check_int(self.n_mix, "n_mix", low=1)
        check_real(self.min_covar, "min_covar", low=0.0)
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {COVARIANCE_TYPES}, "
                f"got {self.covariance_type!r}"
            )
        return k

    def _check_X(self, X, *, fitting: bool):
        arr = check_array(X, "X", ndim=2, dtype=np.float64)
        if not fitting and hasattr(self, "means_"):
            d = np.shape(self.means_)[-1]
            if arr.shape[1] != d:
                raise ValueError(
                    f"X has {arr.shape[1]} features, but the model has {d}"
                )
        self._check_n_features(arr.shape[1], "X")
        if max(arr.shape) >= 2**31:
            raise ValueError("X dimensions must be < 2**31 (32-bit BLAS)")
        return arr

    def _check_emissions(self, k: int) -> None:
        m = check_int(self.n_mix, "n_mix", low=1)
        self.weights_ = _check_distribution(self.weights_, "weights_", (k, m))
        means = check_array(self.means_, "means_", ndim=3, dtype=np.float64)
        if means.shape[:2] != (k, m):
            raise ValueError(
                f"means_ must have shape (n_components={k}, n_mix={m}, n_features), "
                f"got {means.shape}"
            )
        self.means_ = means
        d = means.shape[2]
        ct = self.covariance_type
        shape = self._covars_shape(k, m, d)
        c = check_array(self.covars_, "covars_", dtype=np.float64)
        if c.shape != shape:
            raise ValueError(
                f"covars_ must have shape {shape} for covariance_type={ct!r}, "
                f"got {c.shape}"
            )
        if ct in ("spherical", "diag"):
            if (c <= 0).any():
                idx = tuple(int(i) for i in np.argwhere(c <= 0)[0])
                raise ValueError(
                    f"covars_ must be positive for covariance_type={ct!r}; "
                    f"found {c[idx]} at index {idx}"
                )
            prec = 1.0 / np.sqrt(np.broadcast_to(c.reshape(k, m, -1), (k, m, d)))
            self._prec = np.ascontiguousarray(prec.reshape(k * m, d))
            log_det = np.log(self._prec).sum(axis=1)
        else:
            mats = c.reshape(-1, d, d)
            chols = np.empty_like(mats)
            for i, mat in enumerate(mats):
                where = [int(j) for j in np.unravel_index(i, c.shape[:-2])]
                if not np.allclose(mat, mat.T, rtol=1e-8, atol=1e-12):
                    raise ValueError(f"covars_{where} must be symmetric")
                try:
                    chols[i] = linalg.cholesky(mat, lower=True)
                except linalg.LinAlgError:
                    raise ValueError(
                        f"covars_{where} must be positive definite "
                        f"(smallest eigenvalue {np.linalg.eigvalsh(mat).min():.3g}); "
                        "increase min_covar or covars_prior"
                    ) from None
            # precision Cholesky factor P = inv(L)^T, so ||(x - mu) P||^2 is the
            # Mahalanobis term (the kernel's convention)
            prec = np.linalg.inv(chols).transpose(0, 2, 1)
            if ct == "tied":
                prec = np.repeat(prec, m, axis=0)
            self._prec = np.ascontiguousarray(prec)
            log_det = np.log(np.diagonal(prec, axis1=1, axis2=2)).sum(axis=1)
        with np.errstate(divide="ignore"):
            log_w = np.log(self.weights_).ravel()
        self._log_const = np.ascontiguousarray(log_w + log_det - 0.5 * d * _LOG_2PI)
        self.covars_ = c

    # ---- initialisation -------------------------------------------------------------
    def _init_emissions(self, Xv, rng) -> None:
        k, m = self.n_components, check_int(self.n_mix, "n_mix", low=1)
        n, d = Xv.shape
        if n < k:
            raise ValueError(f"X has {n} rows, fewer than n_components={k}")
        cv = np.atleast_2d(np.cov(Xv.T)) + self.min_covar * np.eye(d)
        if "w" in self.init_params or not hasattr(self, "weights_"):
            self.weights_ = np.full((k, m), 1.0 / m)
        if "m" in self.init_params or not hasattr(self, "means_"):
            x = Xv if n <= _KMEANS_ROWS else Xv[rng.choice(n, _KMEANS_ROWS, False)]
            centers, labels = _kmeans_centers(x, k, rng)
            means = np.empty((k, m, d))
            for s in range(k):
                xs = x[labels == s]
                if len(xs) >= m:
                    means[s] = _kmeans_centers(xs, m, rng)[0]
                else:
                    means[s] = rng.multivariate_normal(centers.mean(axis=0), cv, m)
            self.means_ = means
        if "c" in self.init_params or not hasattr(self, "covars_"):
            shape = self._covars_shape(k, m, d)
            base = {"spherical": cv.mean(), "diag": np.diag(cv)}.get(
                self.covariance_type, cv
            )
            self.covars_ = np.broadcast_to(base, shape).copy()

    # ---- E-step ---------------------------------------------------------------------
    def _component_log_densities(self, Xv) -> np.ndarray:
        """log w_km N(x_t | mu_km, Sigma_km), shape (T, K, M), from the GMM kernel."""
        k, m, d = self.means_.shape
        n = Xv.shape[0]
        log_resp = np.empty((n, k * m))
        log_norm = np.empty(n)
        means = np.ascontiguousarray(self.means_.reshape(k * m, d))
        empty = np.empty(0), np.empty((0, d))
        if self._prec.ndim == 3:
            _gmm.em_pass_full(Xv, means, self._prec, self._log_const, log_resp,
                              log_norm, *empty, np.empty((0, d, d)))  # fmt: skip
        else:
            _gmm.em_pass_diag(Xv, means, self._prec, self._log_const, log_resp,
                              log_norm, *empty, np.empty((0, d)))  # fmt: skip
        log_resp += log_norm[:, None]  # the kernel normalised over all K * M
        return log_resp.reshape(n, k, m)

    def _log_likelihood(self, Xv) -> np.ndarray:
        """log p(x_t | z_t = k) (T, K): a log-sum-exp over each state's components."""
        lp = self._component_log_densities(Xv)
        m = lp.shape[2]
        # loops over the few components: numpy reduces a short last axis slowly
        top = lp[:, :, 0].copy()
        for j in range(1, m):
            np.maximum(top, lp[:, :, j], out=top)
        top[~np.isfinite(top)] = 0.0
        lp -= top[:, :, None]
        np.exp(lp, out=lp)
        total = lp[:, :, 0].copy()
        for j in range(1, m):
            total += lp[:, :, j]
        with np.errstate(divide="ignore"):
            ll = np.log(total)
        ll += top
        if "_xfit" in self.__dict__:  # fitting: keep r_tkm for the M-step
            lp /= np.where(total > 0, total, 1.0)[:, :, None]
            self._within = lp
        return ll

    # ---- M-step ---------------------------------------------------------------------
    def _block_emission_stats(self, lo, hi, gamma):
        """Sums over rows ``lo:hi`` (per block of sequences in the E-step threads,
        added in block order) with the weights ``w_tkm = gamma_tk r_tkm`` (PRML eq.
        13.17 with eqs. 9.24-9.27 inside each state): sum_t gamma_tk, sum_t w_tkm,
        sum_t w_tkm x_t and, if ``"c"`` in ``params``, the second moments about the
        current means (the M-step moves them to the updated ones; centred, so data far
        from the origin lose no precision): "diag" / "spherical" sum_t w_tkm
        (x_t - mu_km)^2 (elementwise), "full" / "tied" the scatter
        sum_t w_tkm (x_t - mu_km)(x_t - mu_km)^T."""
        if not any(c in self.params for c in "mcw"):
            return None
        k, m, d = self.means_.shape
        x = self._xfit[lo:hi]
        g = gamma.astype(np.float64, copy=False)
        w = (g[:, :, None] * self._within[lo:hi]).reshape(len(x), k * m)
        if "c" not in self.params:
            second = np.zeros(0)
        else:
            mu = self.means_.reshape(k * m, d)
            diag = self.covariance_type in ("diag", "spherical")
            second = np.empty((k * m, d) if diag else (k * m, d, d))
            for c in range(k * m):
                diff = x - mu[c]
                if diag:
                    second[c] = w[:, c] @ (diff * diff)
                else:
                    second[c] = (diff * w[:, c, None]).T @ diff
        return g.sum(axis=0), w.sum(axis=0), w.T @ x, second

    def _mstep_emissions(self, stats) -> None:
        if not any(c in self.params for c in "mcw"):
            return
        k, m, d = self.means_.shape
        # sum gamma_tk, sum w_tkm, sum w_tkm x_t (K * M, D), second moments
        post, post_mix, wx, second = stats["emission"]
        post_mix = post_mix.reshape(k, m)
        old_means = self.means_
        if "w" in self.params:
            alpha1 = np.broadcast_to(self.weights_prior, (k, m)) - 1.0
            self.weights_ = (post_mix + alpha1) / (post + alpha1.sum(axis=1))[:, None]
        lam = np.broadcast_to(self.means_weight, (k, m)).astype(np.float64)
        mu0 = np.broadcast_to(self.means_prior, (k, m, d))
        if "m" in self.params:
            m_n = lam[:, :, None] * mu0 + wx.reshape(k, m, d)
            m_d = post_mix + lam
            m_d[(self.weights_ == 0) & (m_n == 0).all(axis=-1)] = 1
            self.means_ = m_n / m_d[:, :, None]
        if "c" in self.params:
            self.covars_ = self._covars_update(
                second, wx, post_mix, post, lam, mu0, old_means
            )

    def _covars_update(self, second, wx, post_mix, post, lam, mu0, old_means):
        """hmmlearn's MAP covariance formulas, statistics centred at ``means_``."""
        k, m, d = self.means_.shape
        ct = self.covariance_type
        mu = self.means_.reshape(k * m, d)
        dmu = self.means_ - mu0
        n = post_mix.reshape(-1)
        # The second moments about the old means mu' moved to the updated means mu:
        # with e = sum_t w (x_t - mu') and delta = mu - mu',
        # sum_t w (x_t - mu)(x_t - mu)^T = S - delta e^T - e delta^T + N delta delta^T
        # (exactly S when the means are not re-estimated); the diagonal for diag.
        delta = mu - old_means.reshape(k * m, d)
        e = wx - n[:, None] * old_means.reshape(k * m, d)
        if ct in ("diag", "spherical"):
            c_n = (second - 2 * delta * e + n[:, None] * delta**2).reshape(k, m, d)
            c_n = np.maximum(c_n, 0.0)  # rounding when a component's mass is ~0
            default_prior = -1.5 if ct == "diag" else -(m + 2.0) / 2.0
            a = default_prior if self.covars_prior is None else self.covars_prior
            b = 0.0 if self.covars_weight is None else self.covars_weight
            if ct == "diag":
                a, b = (np.broadcast_to(v, (k, m, d)) for v in (a, b))
                num = lam[:, :, None] * dmu**2 + 2 * b + c_n
                return num / (post_mix[:, :, None] + 1 + 2 * (a + 1))
            a, b = (np.broadcast_to(v, (k, m)) for v in (a, b))
            num = lam * np.einsum("kmi,kmi->km", dmu, dmu) + 2 * b + c_n.sum(axis=2)
            return num / (d * (post_mix + 1) + 2 * (a + 1))
        de = delta[:, :, None] * e[:, None, :]
        scatter = second - de - np.swapaxes(de, 1, 2)
        scatter += n[:, None, None] * delta[:, :, None] * delta[:, None, :]
        scatter = scatter.reshape(k, m, d, d)
        outer = lam[:, :, None, None] * dmu[..., :, None] * dmu[..., None, :]
        psi = np.zeros((d, d)) if self.covars_prior is None else self.covars_prior
        if ct == "full":
            nu = -(d + 2.0) if self.covars_weight is None else self.covars_weight
            psi = np.swapaxes(np.broadcast_to(psi, (k, m, d, d)), -1, -2)
            nu = np.broadcast_to(nu, (k, m))
            den = post_mix + 1 + nu + d + 1
            return (psi + outer + scatter) / den[:, :, None, None]
        nu = -(m + d + 1.0) if self.covars_weight is None else self.covars_weight
        psi = np.swapaxes(np.broadcast_to(psi, (k, d, d)), -1, -2)
        nu = np.broadcast_to(nu, (k,))
        den = post + m + nu + d + 1
        return (psi + outer.sum(axis=1) + scatter.sum(axis=1)) / den[:, None, None]

    # ---- sampling -------------------------------------------------------------------
    def _sample_emissions(self, states, rng) -> np.ndarray:
        k, m, d = self.means_.shape
        n = len(states)
        u = rng.random(n)
        mix = (np.cumsum(self.weights_, axis=1)[states] <= u[:, None]).sum(axis=1)
        mix = np.minimum(mix, m - 1)
        z = rng.standard_normal((n, d))
        ct = self.covariance_type
        x = np.empty((n, d))
        for s in range(k):
            for j in range(m):
                sel = (states == s) & (mix == j)
                if not sel.any():
                    continue
                if ct in ("spherical", "diag"):
                    x[sel] = self.means_[s, j] + z[sel] * np.sqrt(self.covars_[s, j])
                else:
                    cov = self.covars_[s] if ct == "tied" else self.covars_[s, j]
                    chol = linalg.cholesky(cov, lower=True)
                    x[sel] = self.means_[s, j] + z[sel] @ chol.T
        return x
