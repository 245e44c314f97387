"""HMM with Gaussian emissions, four covariance types (hmmlearn.hmm.GaussianHMM)."""

from __future__ import annotations

import numpy as np
from scipy import linalg

from fastml._typing import (
    ArrayLike,
    CovarianceType,
    HMMAlgorithm,
    HMMImplementation,
    RandomStateLike,
)
from fastml._validation import (
    check_array,
)
from fastml.hmm._base import _ContinuousHMM, _hmm
from fastml.mixture._kmeans import _lloyd, kmeans_plusplus

__all__ = ["GaussianHMM"]


COVARIANCE_TYPES = ("spherical", "diag", "full", "tied")


_KMEANS_ROWS = 10_000  # rows that the k-means initialisation of the means uses


class GaussianHMM(_ContinuousHMM):
    """HMM with Gaussian emissions (hmmlearn.hmm.GaussianHMM).

    Parameters
    ----------
    n_components : int
    covariance_type : {"diag", "full", "spherical", "tied"}
        Shape of ``covars_`` as set/stored (hmmlearn's convention): (K,), (K, D),
        (K, D, D), (D, D); the ``covars_`` property always returns full (K, D, D)
        matrices.
    min_covar : float
        Added to the diagonal of the data covariance used to initialise ``covars_``.
    startprob_prior, transmat_prior, means_prior, means_weight, covars_prior,
    covars_weight :
        Prior parameters, with hmmlearn's defaults and M-step formulas (note that for
        "full"/"tied" a scalar ``covars_prior`` is added to every matrix entry, as in
        hmmlearn).
    algorithm, random_state, n_iter, tol, verbose, params, init_params, implementation,
    n_jobs
        As in :class:`CategoricalHMM`; emission letters are 'm' (means), 'c' (covars).

    Notes
    -----
    Rows of ``X`` that are all NaN are missing; with "diag"/"spherical" covariances
    partially observed rows are marginalised over their observed features. float32
    ``X`` keeps the emission matrix and posteriors in float32 (accumulation in float64).

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.hmm import GaussianHMM
    >>> m = GaussianHMM(2, random_state=0)
    >>> m.startprob_ = np.array([1.0, 0.0])
    >>> m.transmat_ = np.array([[0.9, 0.1], [0.1, 0.9]])
    >>> m.means_ = np.array([[0.0], [5.0]])
    >>> m.covars_ = np.array([[1.0], [1.0]])
    >>> m.predict(np.array([[0.1], [-0.2], [5.1], [4.8]])).tolist()
    [0, 0, 1, 1]
    """

    _emission_letters = "mc"
    _fitted_attrs = ("startprob_", "transmat_", "means_", "_covars_")

    def __init__(
        self,
        n_components: int = 1,
        covariance_type: CovarianceType = "diag",
        min_covar: float = 1e-3,
        startprob_prior: ArrayLike = 1.0,
        transmat_prior: ArrayLike = 1.0,
        means_prior: ArrayLike = 0,
        means_weight: ArrayLike = 0,
        covars_prior: ArrayLike = 1e-2,
        covars_weight: ArrayLike = 1,
        algorithm: HMMAlgorithm = "viterbi",
        random_state: RandomStateLike = None,
        n_iter: int = 10,
        tol: float = 1e-2,
        verbose: bool = False,
        params: str = "stmc",
        init_params: str = "stmc",
        implementation: HMMImplementation = "scaling",
        n_jobs: int | None = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_jobs = n_jobs

    @property
    def covars_(self) -> np.ndarray:
        """Covariance matrices, always shape (n_components, n_features, n_features)."""
        c = self._covars_
        k, d = self.n_components, np.shape(self.means_)[1]
        if self.covariance_type == "full":
            return c
        if self.covariance_type == "diag":
            return np.stack([np.diag(r) for r in c])
        if self.covariance_type == "spherical":
            return c[:, None, None] * np.eye(d)[None]
        return np.broadcast_to(c, (k, d, d)).copy()

    @covars_.setter
    def covars_(self, covars: ArrayLike) -> None:
        c = np.array(covars, dtype=np.float64, copy=True)
        if self.covariance_type == "spherical" and c.ndim == 2 and c.shape[1] == 1:
            c = c[:, 0]  # hmmlearn accepts (K,) and (K, 1)
        self._covars_ = c

    def _emission_sizes(self) -> dict:
        k, d = self.means_.shape
        cov = {"spherical": k, "diag": k * d, "full": k * d * (d + 1) // 2,
               "tied": d * (d + 1) // 2}[self.covariance_type]  # fmt: skip
        return {"m": k * d, "c": cov}

    def _check_hyper(self) -> int:
        k = super()._check_hyper()
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {COVARIANCE_TYPES}, "
                f"got {self.covariance_type!r}"
            )
        return k

    def _check_X(self, X, *, fitting: bool):
        arr = check_array(X, "X", ndim=2, finite=False)
        if np.isinf(arr).any():
            idx = tuple(int(i) for i in np.argwhere(np.isinf(arr))[0])
            raise ValueError(f"X must not contain infinity; found {arr[idx]} at {idx}")
        nan = np.isnan(arr)
        self._missing = None
        if nan.any():
            partial = nan.any(axis=1) & ~nan.all(axis=1)
            if partial.any() and self.covariance_type in ("full", "tied"):
                i = int(np.argmax(partial))
                raise ValueError(
                    f"X row {i} is partially NaN; covariance_type="
                    f"{self.covariance_type!r} supports only fully missing (all-NaN) "
                    "rows (use 'diag' or 'spherical', or impute)"
                )
            self._missing = nan
        if not fitting and hasattr(self, "means_"):
            d = np.shape(self.means_)[1]
            if arr.shape[1] != d:
                raise ValueError(
                    f"X has {arr.shape[1]} features, but the model has {d}"
                )
        self._check_n_features(arr.shape[1], "X")
        return arr

    def _check_emissions(self, k: int) -> None:
        self.means_ = check_array(self.means_, "means_", ndim=2, dtype=np.float64)
        d = self.means_.shape[1]
        self._check_n_features(d, "means_")
        if self.means_.shape[0] != k:
            raise ValueError(
                f"means_ must have shape ({k}, n_features), got {self.means_.shape}"
            )
        ct = self.covariance_type
        shape = {"spherical": (k,), "diag": (k, d), "full": (k, d, d), "tied": (d, d)}[
            ct
        ]
        c = check_array(self._covars_, "covars_", dtype=np.float64)
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
            self._chol = None
        else:
            mats = c[None] if ct == "tied" else c
            chol = []
            for i, m in enumerate(mats):
                if not np.allclose(m, m.T, rtol=1e-8, atol=1e-12):
                    raise ValueError(f"covars_[{i}] must be symmetric")
                try:
                    chol.append(linalg.cholesky(m, lower=True))
                except linalg.LinAlgError:
                    where = "covars_" if ct == "tied" else f"covars_[{i}]"
                    raise ValueError(
                        f"{where} must be symmetric positive definite "
                        f"(Cholesky failed; smallest eigenvalue "
                        f"{np.linalg.eigvalsh(m).min():.3g})"
                    ) from None
            self._chol = chol
        self._covars_ = c

    def _init_emissions(self, Xv, rng) -> None:
        k = self.n_components
        obs = Xv[~np.isnan(Xv).any(axis=1)] if self._missing is not None else Xv
        if len(obs) < k:
            raise ValueError(
                f"X has {len(obs)} fully observed rows, fewer than n_components={k}"
            )
        if "m" in self.init_params or not hasattr(self, "means_"):
            x = obs.astype(np.float64)
            if len(x) > _KMEANS_ROWS:  # seed and iterate on a sample of the rows
                x = x[rng.choice(len(x), _KMEANS_ROWS, replace=False)]
            centers, _ = kmeans_plusplus(x, k, random_state=rng)
            self.means_, _ = _lloyd(x, centers)
        if "c" in self.init_params or not hasattr(self, "_covars_"):
            d = obs.shape[1]
            cv = np.atleast_2d(np.cov(obs.T)) + self.min_covar * np.eye(d)
            ct = self.covariance_type
            if ct == "tied":
                self._covars_ = cv
            elif ct == "full":
                self._covars_ = np.tile(cv, (k, 1, 1))
            elif ct == "diag":
                self._covars_ = np.tile(np.diag(cv), (k, 1))
            else:
                self._covars_ = np.full(k, cv.mean())

    def _diag_params(self):
        """(means, precisions, log(2 pi var)) as (D, K) arrays for the kernels."""
        d = self.means_.shape[1]
        var = self._covars_
        if self.covariance_type == "spherical":
            var = np.repeat(var[:, None], d, axis=1)
        return (
            np.ascontiguousarray(self.means_.T),
            np.ascontiguousarray(1.0 / var.T),
            np.ascontiguousarray(np.log(2 * np.pi * var).T),
        )

    def _frames(self, Xv, log: bool, cancel):
        if self.covariance_type not in ("diag", "spherical"):
            return super()._frames(Xv, log, cancel)
        out = np.empty((Xv.shape[0], self.n_components), dtype=Xv.dtype)
        shift = np.empty(0 if log else Xv.shape[0])
        _hmm.gaussian_diag_frames(Xv, *self._diag_params(), out, shift, cancel)
        if not log:
            np.exp(out, out=out)  # numpy's SIMD exp: faster than a scalar kernel loop
        return out, np.empty(0, dtype=np.intp), (None if log else shift)

    def _log_likelihood(self, Xv) -> np.ndarray:
        """log N(x_t | mu_k, Sigma_k), shape (T, K), in X's float dtype."""
        dt = Xv.dtype
        k, d = self.means_.shape
        ct = self.covariance_type
        # Xv may be a block of rows: its own NaN mask, not the one of all rows.
        miss = None if self._missing is None else np.isnan(Xv)
        mu = self.means_
        if ct in ("diag", "spherical"):
            var = (
                self._covars_
                if ct == "diag"
                else np.repeat(self._covars_[:, None], d, axis=1)
            )
            prec = 1.0 / var
            if miss is None:
                lpr = -0.5 * (
                    d * np.log(2 * np.pi)
                    + np.sum(np.log(var), 1)
                    + np.sum(mu**2 * prec, 1)
                    - 2 * (Xv @ (mu * prec).T.astype(dt))
                    + (Xv**2) @ prec.T.astype(dt)
                )
            else:
                w = (~miss).astype(dt)
                x0 = np.where(miss, 0, Xv).astype(dt)
                lpr = -0.5 * (
                    w @ (np.log(2 * np.pi) + np.log(var) + mu**2 * prec).T.astype(dt)
                    - 2 * (x0 @ (mu * prec).T.astype(dt))
                    + (x0**2) @ prec.T.astype(dt)
                )
            return np.ascontiguousarray(lpr, dtype=dt)
        x = Xv if miss is None else np.where(miss, 0, Xv)
        lpr = np.empty((Xv.shape[0], k), dtype=dt)
        for i in range(k):
            chol = self._chol[0 if ct == "tied" else i]
            sol = linalg.solve_triangular(
                chol, (x - mu[i]).T.astype(np.float64), lower=True
            )
            lpr[:, i] = -0.5 * (
                d * np.log(2 * np.pi)
                + 2 * np.log(np.diag(chol)).sum()
                + np.einsum("ij,ij->j", sol, sol)
            )
        if miss is not None:
            lpr[miss.all(axis=1)] = 0.0
        return lpr

    def _block_emission_stats(self, lo, hi, gamma):
        """The emission M-step sums over rows ``lo:hi`` (computed per block of
        sequences in the E-step threads and added in block order): sum_t gamma_tk x_t;
        for "diag"/"spherical" sum_t gamma_tk x_t^2 (elementwise) and, with missing
        values, the posterior mass per state and observed feature (NaN features count
        as 0); for "full"/"tied" sum_t gamma_tk x_t x_t^T (if ``"c"`` in ``params``)
        and, with missing rows, the posterior mass of the observed rows."""
        if "m" not in self.params and "c" not in self.params:
            return None
        g = gamma.astype(np.float64, copy=False)
        x = self._xfit[lo:hi]
        miss = None if self._missing is None else self._missing[lo:hi]
        if miss is not None:
            x = np.where(miss, 0.0, x)
        if self.covariance_type in ("diag", "spherical"):
            mass = () if miss is None else (g.T @ (~miss).astype(np.float64),)
            return (g.T @ x, g.T @ (x * x), *mass)
        k, d = g.shape[1], x.shape[1]
        oo = np.zeros((k if "c" in self.params else 0, d, d))
        for c in range(len(oo)):
            oo[c] = (x * g[:, c, None]).T @ x
        mass = () if miss is None else (g[~miss.all(axis=1)].sum(axis=0),)
        return (g.T @ x, oo, *mass)

    def _mstep_emissions(self, stats) -> None:
        if "m" not in self.params and "c" not in self.params:
            return
        ct = self.covariance_type
        mp, mw = self.means_prior, self.means_weight
        cp, cw = self.covars_prior, self.covars_weight
        obs, obs2, *mass = stats["emission"]  # obs2: sum gamma x^2 or x x^T
        if ct in ("diag", "spherical"):
            # sum_t gamma_t from the kernel, or per observed feature
            denom = mass[0] if mass else stats["counts"][0][:, None]
        else:  # sum_t gamma_t over the observed rows, or from the kernel
            denom = (mass[0] if mass else stats["counts"][0])[:, None]
        if "m" in self.params:
            with np.errstate(invalid="ignore", divide="ignore"):
                means = (mw * mp + obs) / (mw + denom)
            # A state with no posterior mass keeps its mean (0/0 otherwise).
            self.means_ = np.where(np.isfinite(means), means, self.means_)
        if "c" not in self.params:
            return
        mu = self.means_
        meandiff = mu - mp
        if ct in ("diag", "spherical"):
            c_n = mw * meandiff**2 + obs2 - 2 * mu * obs + mu**2 * denom
            c_d = max(cw - 1, 0) + denom
            cov = (cp + c_n) / np.maximum(c_d, 1e-5)
            self._covars_ = cov.mean(axis=1) if ct == "spherical" else cov
            return
        k, d = mu.shape
        post = denom[:, 0]
        c_n = np.empty((k, d, d))
        for c in range(k):
            om = np.outer(obs[c], mu[c])
            c_n[c] = (
                mw * np.outer(meandiff[c], meandiff[c])
                + obs2[c]
                - om
                - om.T
                + np.outer(mu[c], mu[c]) * post[c]
            )
        cvw = max(cw - d, 0)
        if ct == "tied":
            self._covars_ = (cp + c_n.sum(axis=0)) / (cvw + post.sum())
        else:
            self._covars_ = (cp + c_n) / (cvw + post[:, None, None])

    def _sample_emissions(self, states, rng) -> np.ndarray:
        k, d = self.means_.shape
        z = rng.standard_normal((len(states), d))
        cov = self.covars_
        x = np.empty((len(states), d))
        for i in range(k):
            sel = states == i
            chol = linalg.cholesky(cov[i], lower=True)
            x[sel] = self.means_[i] + z[sel] @ chol.T
        return x
