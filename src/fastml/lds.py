"""Linear dynamical systems (PRML sec. 13.3): Kalman filter, RTS smoother and EM.

:class:`KalmanFilter` takes pykalman's constructor parameters and method names
(``filter``, ``filter_update``, ``smooth``, ``em``, ``sample``, ``loglikelihood``), so
switching is an import change. The model (PRML eqs. 13.75-13.78, pykalman notation)::

    z_0 ~ N(initial_state_mean, initial_state_covariance)
    z_{t+1} = transition_matrices z_t + transition_offsets + N(0, transition_covariance)
    x_t     = observation_matrices z_t + observation_offsets + N(0, observation_covariance)

The recursions over time run in :mod:`fastml._kernels._lds` (Cholesky solves, Joseph
form, symmetrised covariances). Missing observations are NaN entries (or masked
entries of a ``numpy.ma`` array): a fully missing row skips the update and adds nothing
to the log-likelihood, a partially observed row is updated with its observed entries.
As in pykalman, the transition (observation) matrices, offsets and covariances may be
time-varying, with a leading axis of n_timesteps - 1 (n_timesteps) entries; ``em``
needs time-invariant parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeVar, overload

import numpy as np
from scipy import linalg

from fastml._base import BaseEstimator
from fastml._kernels import _lds
from fastml._typing import ArrayLike, FloatArray, RandomStateLike
from fastml._validation import (
    check_array,
    check_diverged,
    check_int,
    check_random_state,
)

__all__ = ["KalmanFilter"]

EM_VARS = (
    "transition_matrices",
    "observation_matrices",
    "transition_covariance",
    "observation_covariance",
    "transition_offsets",
    "observation_offsets",
    "initial_state_mean",
    "initial_state_covariance",
)
_DEFAULT_EM_VARS = (
    "transition_covariance",
    "observation_covariance",
    "initial_state_mean",
    "initial_state_covariance",
)
# (ndim, (state dims, obs dims)) of each parameter: which axes are n and which p.
_SHAPES = {
    "transition_matrices": ("n", "n"),
    "observation_matrices": ("p", "n"),
    "transition_covariance": ("n", "n"),
    "observation_covariance": ("p", "p"),
    "transition_offsets": ("n",),
    "observation_offsets": ("p",),
    "initial_state_mean": ("n",),
    "initial_state_covariance": ("n", "n"),
}
# Parameters that may carry a leading time axis (pykalman's time-varying form): the
# transition ones with n_timesteps - 1 entries, the observation ones with n_timesteps.
_TIME_VARYING = {
    "transition_matrices": 2,
    "transition_offsets": 1,
    "transition_covariance": 2,
    "observation_matrices": 2,
    "observation_offsets": 1,
    "observation_covariance": 2,
}
_COVARIANCES = ("transition_covariance", "observation_covariance",
                "initial_state_covariance")  # fmt: skip


_KF = TypeVar("_KF", bound="KalmanFilter")


class KalmanFilter(BaseEstimator):
    """Kalman filter and smoother for a linear-Gaussian state-space model.

    Parameters
    ----------
    transition_matrices : array (n, n) or (n_timesteps - 1, n, n), default identity
    observation_matrices : array (p, n) or (n_timesteps, p, n), default ``eye(p, n)``
    transition_covariance : array (n, n), default identity. Symmetric PSD.
    observation_covariance : array (p, p), default identity. Symmetric PSD.
    transition_offsets : array (n,), default 0
    observation_offsets : array (p,), default 0
    initial_state_mean : array (n,), default 0
    initial_state_covariance : array (n, n), default identity. Symmetric PSD.
    random_state : None, int or numpy.random.Generator
        Used by :meth:`sample`.
    em_vars : list of str or "all"
        Parameters :meth:`em` estimates (pykalman's default: both noise covariances
        and the initial state's mean and covariance).
    n_dim_state, n_dim_obs : int, optional
        Dimensions, when no parameter array fixes them.

    Notes
    -----
    :meth:`em` overwrites the parameter attributes with its estimates, as pykalman
    does. Innovation covariances are factorised by Cholesky; a non-positive-definite
    one raises a ValueError naming the time step.

    References
    ----------
    C. M. Bishop, Pattern Recognition and Machine Learning (PRML), sec. 13.3.
    R. H. Shumway and D. S. Stoffer, "An approach to time series smoothing and
    forecasting using the EM algorithm", J. Time Series Analysis 3(4), 1982.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.lds import KalmanFilter
    >>> kf = KalmanFilter(transition_covariance=[[0.1]], observation_covariance=[[1.0]],
    ...                   initial_state_covariance=[[10.0]])
    >>> means, covs = kf.filter(np.array([1.0, 1.2, 0.9, np.nan, 1.1]))
    >>> means.shape, covs.shape
    ((5, 1), (5, 1, 1))
    """

    def __init__(
        self,
        transition_matrices: ArrayLike | None = None,
        observation_matrices: ArrayLike | None = None,
        transition_covariance: ArrayLike | None = None,
        observation_covariance: ArrayLike | None = None,
        transition_offsets: ArrayLike | None = None,
        observation_offsets: ArrayLike | None = None,
        initial_state_mean: ArrayLike | None = None,
        initial_state_covariance: ArrayLike | None = None,
        random_state: RandomStateLike = None,
        em_vars: Sequence[str] = _DEFAULT_EM_VARS,
        n_dim_state: int | None = None,
        n_dim_obs: int | None = None,
    ) -> None:
        self.transition_matrices = transition_matrices
        self.observation_matrices = observation_matrices
        self.transition_covariance = transition_covariance
        self.observation_covariance = observation_covariance
        self.transition_offsets = transition_offsets
        self.observation_offsets = observation_offsets
        self.initial_state_mean = initial_state_mean
        self.initial_state_covariance = initial_state_covariance
        self.random_state = random_state
        self.em_vars = em_vars
        self.n_dim_state = n_dim_state
        self.n_dim_obs = n_dim_obs

    # ------------------------------------------------------------ parameters
    def _dims(self, p_data: int | None = None) -> tuple[int, int]:
        dims = {"n": [], "p": []}
        if self.n_dim_state is not None:
            dims["n"].append(
                ("n_dim_state", check_int(self.n_dim_state, "n_dim_state", low=1))
            )
        if self.n_dim_obs is not None:
            dims["p"].append(
                ("n_dim_obs", check_int(self.n_dim_obs, "n_dim_obs", low=1))
            )
        for name, axes in _SHAPES.items():
            value = getattr(self, name)
            if value is None:
                continue
            shape = np.shape(value)
            if name in _TIME_VARYING and len(shape) == len(axes) + 1:
                shape = shape[1:]  # time-varying: (n_timesteps[-1], ...)
            if len(shape) != len(axes):
                extra = " or, time-varying, one more" if name in _TIME_VARYING else ""
                raise ValueError(
                    f"{name} must be {len(axes)}-dimensional{extra}, got shape "
                    f"{np.shape(value)}"
                )
            for axis, size in zip(axes, shape, strict=True):
                dims[axis].append((name, size))
        if p_data is not None:
            dims["p"].append(("X (number of columns)", p_data))
        out = []
        for axis, label in (("n", "n_dim_state"), ("p", "n_dim_obs")):
            sizes = {s for _, s in dims[axis]}
            if len(sizes) > 1:
                desc = ", ".join(f"{nm}: {s}" for nm, s in dict(dims[axis]).items())
                raise ValueError(f"inconsistent {label} between arguments ({desc})")
            out.append(sizes.pop() if sizes else 1)
        return out[0], out[1]

    def _resolved(self, p_data: int | None = None) -> dict:
        """All eight parameters as validated float64 arrays (defaults filled in)."""
        n, p = self._dims(p_data)
        defaults = {
            "transition_matrices": lambda: np.eye(n),
            "observation_matrices": lambda: np.eye(p, n),
            "transition_covariance": lambda: np.eye(n),
            "observation_covariance": lambda: np.eye(p),
            "transition_offsets": lambda: np.zeros(n),
            "observation_offsets": lambda: np.zeros(p),
            "initial_state_mean": lambda: np.zeros(n),
            "initial_state_covariance": lambda: np.eye(n),
        }
        out = {}
        for name, make in defaults.items():
            value = getattr(self, name)
            if value is None:
                out[name] = make()
                continue
            arr = check_array(value, name, dtype=np.float64)
            if name in _COVARIANCES:
                _check_psd(arr, name)
            out[name] = arr
        return out

    def _obs(self, X) -> np.ndarray:
        """Observations as a (T, p) float64 array with NaN for missing entries."""
        if isinstance(X, np.ma.MaskedArray):
            X = np.ma.asarray(X, dtype=np.float64).filled(np.nan)
        arr = check_array(X, "X", ndim=(1, 2), dtype=np.float64, finite=False)
        if np.isinf(arr).any():
            idx = tuple(int(i) for i in np.argwhere(np.isinf(arr))[0])
            raise ValueError(
                f"X must not contain infinity (NaN marks a missing value); "
                f"found {arr[idx]} at index {idx}"
            )
        if arr.ndim == 1:
            arr = arr[:, None]
        return np.ascontiguousarray(arr)

    # ------------------------------------------------------------ inference
    @staticmethod
    def _stacked(prm: dict, t: int) -> dict:
        """Parameters with a leading time axis (length 1 when time-invariant)."""
        out = {}
        for name, base in _TIME_VARYING.items():
            arr = prm[name]
            if arr.ndim == base:
                out[name] = arr[None]
                continue
            need = t - 1 if name.startswith("transition") else t
            if arr.shape[0] < need:
                raise ValueError(
                    f"time-varying {name} needs at least {need} entries along its first "
                    f"axis for {t} time steps, got {arr.shape[0]}"
                )
            out[name] = np.ascontiguousarray(arr)
        return out

    def _run_filter(self, Y: np.ndarray, prm: dict) -> dict:
        t, n = Y.shape[0], prm["initial_state_mean"].shape[0]
        tv = self._stacked(prm, t)
        out = {
            "pred_mean": np.empty((t, n)),
            "pred_cov": np.empty((t, n, n)),
            "filt_mean": np.empty((t, n)),
            "filt_cov": np.empty((t, n, n)),
            "loglik": np.empty(t),
        }
        status = _lds.kalman_filter(
            tv["transition_matrices"],
            tv["transition_offsets"],
            tv["observation_matrices"],
            tv["observation_offsets"],
            tv["transition_covariance"],
            tv["observation_covariance"],
            prm["initial_state_mean"],
            prm["initial_state_covariance"],
            Y,
            out["pred_mean"],
            out["pred_cov"],
            out["filt_mean"],
            out["filt_cov"],
            out["loglik"],
        )
        if status:
            raise ValueError(
                f"the innovation covariance C P C^T + R is not positive definite at "
                f"time step {status - 1}; make observation_covariance positive "
                "definite (or the observed rows of it, for partially observed data)"
            )
        return out

    def _run_smoother(self, f: dict, prm: dict) -> tuple[np.ndarray, ...]:
        t, n = f["filt_mean"].shape
        sm = np.empty((t, n))
        sc = np.empty((t, n, n))
        cc = np.empty((t, n, n))
        status = _lds.rts_smooth(
            self._stacked(prm, t)["transition_matrices"],
            f["pred_mean"],
            f["pred_cov"],
            f["filt_mean"],
            f["filt_cov"],
            sm,
            sc,
            cc,
        )
        if status:
            raise ValueError(
                f"the predicted state covariance at time step {status} is singular; "
                "the smoother needs transition_covariance (or A P A^T + Q) positive "
                "definite"
            )
        return sm, sc, cc

    def _prepare(self, X):
        Y = self._obs(X)
        prm = self._resolved(Y.shape[1])
        if Y.shape[0] == 0:
            raise ValueError("X must contain at least one time step")
        return Y, prm

    def filter(self, X: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Filtered state distributions p(z_t | x_0..x_t) (PRML eqs. 13.89-13.92).

        Parameters
        ----------
        X : array_like, shape (n_timesteps, n_dim_obs) or (n_timesteps,)
            Observations; NaN (or masked) entries are missing.

        Returns
        -------
        filtered_state_means : ndarray, shape (n_timesteps, n_dim_state)
        filtered_state_covariances : ndarray, shape (n_timesteps, n_dim_state, n_dim_state)
        """
        Y, prm = self._prepare(X)
        f = self._run_filter(Y, prm)
        return f["filt_mean"], f["filt_cov"]

    def loglikelihood(self, X: ArrayLike) -> float:
        """log p(x_0..x_T) = sum_t log N(x_t | C m-_t + d, S_t) (prediction error
        decomposition); missing rows add nothing, partially observed rows their
        observed entries' marginal."""
        Y, prm = self._prepare(X)
        return float(self._run_filter(Y, prm)["loglik"].sum())

    @overload
    def smooth(
        self, X: ArrayLike, return_cross_covariances: Literal[False] = False
    ) -> tuple[FloatArray, FloatArray]: ...
    @overload
    def smooth(
        self, X: ArrayLike, return_cross_covariances: Literal[True]
    ) -> tuple[FloatArray, FloatArray, FloatArray]: ...
    @overload
    def smooth(
        self, X: ArrayLike, return_cross_covariances: bool
    ) -> tuple[FloatArray, FloatArray] | tuple[FloatArray, FloatArray, FloatArray]: ...
    def smooth(
        self, X: ArrayLike, return_cross_covariances: bool = False
    ) -> tuple[FloatArray, FloatArray] | tuple[FloatArray, FloatArray, FloatArray]:
        """Smoothed state distributions p(z_t | x_0..x_T) by Rauch-Tung-Striebel.

        Parameters
        ----------
        X : array_like, shape (n_timesteps, n_dim_obs) or (n_timesteps,)
        return_cross_covariances : bool, default False
            Also return ``cov(z_t, z_{t-1} | X)`` (PRML eq. 13.104; row 0 is zero).

        Returns
        -------
        smoothed_state_means : ndarray, shape (n_timesteps, n_dim_state)
        smoothed_state_covariances : ndarray, shape (n_timesteps, n, n)
        cross_covariances : ndarray, shape (n_timesteps, n, n), if requested
        """
        Y, prm = self._prepare(X)
        f = self._run_filter(Y, prm)
        sm, sc, cc = self._run_smoother(f, prm)
        return (sm, sc, cc) if return_cross_covariances else (sm, sc)

    def filter_update(
        self,
        filtered_state_mean: ArrayLike,
        filtered_state_covariance: ArrayLike,
        observation: ArrayLike | None = None,
        transition_matrix: ArrayLike | None = None,
        transition_offset: ArrayLike | None = None,
        transition_covariance: ArrayLike | None = None,
        observation_matrix: ArrayLike | None = None,
        observation_offset: ArrayLike | None = None,
        observation_covariance: ArrayLike | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """One online step: predict from the filtered state at t, update with x_{t+1}.

        ``observation`` None (or all NaN / masked) only predicts. The other arguments
        override this model's parameters for this step (pykalman's signature).

        Returns
        -------
        next_filtered_state_mean : ndarray, shape (n_dim_state,)
        next_filtered_state_covariance : ndarray, shape (n_dim_state, n_dim_state)
        """
        prm = self._resolved()
        overrides = {
            "transition_matrices": transition_matrix,
            "transition_offsets": transition_offset,
            "transition_covariance": transition_covariance,
            "observation_matrices": observation_matrix,
            "observation_offsets": observation_offset,
            "observation_covariance": observation_covariance,
        }
        for name, value in overrides.items():
            base = _TIME_VARYING[name]
            shape = prm[name].shape[-base:]
            if value is not None:
                arr = check_array(value, name.rstrip("s"), dtype=np.float64)
                if arr.shape != shape:
                    raise ValueError(
                        f"{name.rstrip('s')} must have shape {shape}, got {arr.shape}"
                    )
                if name in _COVARIANCES:
                    _check_psd(arr, name.rstrip("s"))
                prm[name] = arr
            elif prm[name].ndim != base:
                raise ValueError(
                    f"{name} is time-varying: pass {name.rstrip('s')} for this step"
                )
        n, p = prm["initial_state_mean"].shape[0], prm["observation_offsets"].shape[-1]
        m = check_array(filtered_state_mean, "filtered_state_mean", dtype=np.float64)
        P = check_array(
            filtered_state_covariance, "filtered_state_covariance", dtype=np.float64
        )
        if m.shape != (n,):
            raise ValueError(
                f"filtered_state_mean must have shape ({n},), got {m.shape}"
            )
        if P.shape != (n, n):
            raise ValueError(
                f"filtered_state_covariance must have shape ({n}, {n}), got {P.shape}"
            )
        _check_psd(P, "filtered_state_covariance")
        if observation is None:
            y = np.full((1, p), np.nan)
        else:
            y = self._obs(np.atleast_1d(observation)[None] if np.ndim(observation) <= 1
                          else observation)  # fmt: skip
            if y.shape != (1, p):
                raise ValueError(
                    f"observation must have shape ({p},), got {np.shape(observation)}"
                )
        A, b, Q = (prm[k] for k in ("transition_matrices", "transition_offsets",
                                    "transition_covariance"))  # fmt: skip
        pm = A @ m + b
        pc = A @ P @ A.T + Q
        pc = 0.5 * (pc + pc.T)
        step = dict(prm, initial_state_mean=pm, initial_state_covariance=pc)
        f = self._run_filter(np.ascontiguousarray(y), step)
        return f["filt_mean"][0], f["filt_cov"][0]

    # ------------------------------------------------------------ learning
    def em(
        self: _KF,
        X: ArrayLike,
        y: object = None,
        n_iter: int = 10,
        em_vars: Sequence[str] | None = None,
    ) -> _KF:
        """Maximum-likelihood parameters by EM (PRML sec. 13.3.2; Shumway & Stoffer).

        Each iteration runs the filter and smoother (E-step) and then maximises the
        expected complete-data log-likelihood over each parameter in ``em_vars`` in
        turn, given the others (an ECM sequence, so log p(X) never decreases). The
        log-likelihood before each M-step is appended to ``loglikelihoods_``. Each
        single-parameter update equals pykalman's; when several coupled parameters are
        estimated together (e.g. a matrix and its offset), each uses the others'
        freshly updated values, so the sequence can differ from pykalman's.

        Parameters
        ----------
        X : array_like, shape (n_timesteps, n_dim_obs)
            Fully missing (NaN) rows are allowed; partially observed rows only when no
            observation parameter is estimated.
        y : ignored
        n_iter : int, default 10
        em_vars : list of str or "all", optional
            Default ``self.em_vars``.

        Returns
        -------
        self
        """
        n_iter = check_int(n_iter, "n_iter", low=0)
        names = self.em_vars if em_vars is None else em_vars
        if isinstance(names, str):
            if names != "all":
                raise ValueError(
                    f"em_vars must be a list of names or 'all', got {names!r}"
                )
            names = EM_VARS
        names = list(names)
        for nm in names:
            if nm not in EM_VARS:
                raise ValueError(f"unknown name {nm!r} in em_vars; valid: {EM_VARS}")
        Y, prm = self._prepare(X)
        varying = [k for k, base in _TIME_VARYING.items() if prm[k].ndim != base]
        if varying:
            raise ValueError(f"em does not support time-varying parameters ({varying})")
        nan = np.isnan(Y)
        obs_rows = ~nan.any(axis=1)
        partial = nan.any(axis=1) & ~nan.all(axis=1)
        obs_vars = {
            "observation_matrices",
            "observation_covariance",
            "observation_offsets",
        }
        if partial.any() and obs_vars.intersection(names):
            raise ValueError(
                f"X row {int(np.argmax(partial))} is partially observed: EM for "
                f"{sorted(obs_vars.intersection(names))} supports only fully observed or "
                "fully missing rows"
            )
        self.loglikelihoods_ = []
        for it in range(n_iter):
            f = self._run_filter(Y, prm)
            self.loglikelihoods_.append(float(f["loglik"].sum()))
            m, P, X1 = self._run_smoother(f, prm)
            _m_step(prm, names, Y, obs_rows, m, P, X1)
            check_diverged(
                self,
                it + 1,
                "estimate fewer parameters (em_vars) or rescale X",
                **{name: prm[name] for name in names},
            )
            for name in names:
                setattr(self, name, prm[name].copy())
        return self

    # ------------------------------------------------------------ sampling
    def sample(
        self,
        n_timesteps: int,
        initial_state: ArrayLike | None = None,
        random_state: RandomStateLike = None,
    ) -> tuple[FloatArray, FloatArray]:
        """Draw states and observations from the model.

        Draw order: the initial state (unless given), then all state noise, then all
        observation noise, each as standard normals mapped through a symmetric square
        root of its covariance (PSD covariances allowed).

        Returns
        -------
        states : ndarray, shape (n_timesteps, n_dim_state)
        observations : ndarray, shape (n_timesteps, n_dim_obs)
        """
        t = check_int(n_timesteps, "n_timesteps", low=1)
        prm = self._resolved()
        rng = check_random_state(
            self.random_state if random_state is None else random_state
        )
        tv = self._stacked(prm, t)
        A, b, C, d, Q, R = (tv[k] for k in (
            "transition_matrices", "transition_offsets", "observation_matrices",
            "observation_offsets", "transition_covariance", "observation_covariance"))  # fmt: skip
        mu0, V0 = prm["initial_state_mean"], prm["initial_state_covariance"]
        n, p = mu0.shape[0], d.shape[1]
        if initial_state is None:
            z0 = mu0 + _sqrtm(V0) @ rng.standard_normal(n)
        else:
            z0 = check_array(initial_state, "initial_state", dtype=np.float64)
            if z0.shape != (n,):
                raise ValueError(
                    f"initial_state must have shape ({n},), got {z0.shape}"
                )
        w = rng.standard_normal((t, n))
        v = rng.standard_normal((t, p))
        sq_q = [_sqrtm(q) for q in Q]
        sq_r = [_sqrtm(r) for r in R]
        z = np.empty((t, n))
        x = np.empty((t, p))
        z[0] = z0
        for i in range(t):
            if i:
                k = (i - 1) % len(A), (i - 1) % len(b), (i - 1) % len(sq_q)
                z[i] = A[k[0]] @ z[i - 1] + b[k[1]] + sq_q[k[2]] @ w[i]
            k = i % len(C), i % len(d), i % len(sq_r)
            x[i] = C[k[0]] @ z[i] + d[k[1]] + sq_r[k[2]] @ v[i]
        return z, x


def _sqrtm(S: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix (eigenvalues clipped at 0)."""
    vals, vecs = np.linalg.eigh(S)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def _check_psd(arr: np.ndarray, name: str) -> None:
    """Symmetric positive semi-definite matrix, or a stack of them (time-varying)."""
    if arr.ndim not in (2, 3) or arr.shape[-1] != arr.shape[-2]:
        raise ValueError(f"{name} must be a square matrix, got shape {arr.shape}")
    scale = max(1.0, float(np.abs(arr).max()))
    if not np.allclose(arr, np.swapaxes(arr, -1, -2), rtol=1e-10, atol=1e-12 * scale):
        raise ValueError(f"{name} must be symmetric")
    low = float(np.linalg.eigvalsh(arr).min())
    if low < -1e-10 * scale:
        raise ValueError(
            f"{name} must be positive semi-definite (smallest eigenvalue {low:.3g})"
        )


def _solve_right(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num @ inv(den) for a symmetric positive definite den (Cholesky solve)."""
    return linalg.cho_solve(linalg.cho_factor(den), num.T).T


def _m_step(prm, names, Y, obs_rows, m, P, X1) -> None:
    """Shumway-Stoffer M-step, in pykalman's order, each update given the others."""
    t = m.shape[0]
    ezz = P + m[:, :, None] * m[:, None, :]
    sym = lambda a: 0.5 * (a + a.T)  # noqa: E731
    if obs_rows.any():
        yo, mo = Y[obs_rows], m[obs_rows]
        no = yo.shape[0]
        if "observation_matrices" in names:
            d = prm["observation_offsets"]
            prm["observation_matrices"] = _solve_right(
                (yo - d).T @ mo, ezz[obs_rows].sum(0)
            )
        if "observation_covariance" in names:
            C, d = prm["observation_matrices"], prm["observation_offsets"]
            r = yo - mo @ C.T - d
            prm["observation_covariance"] = sym(
                (r.T @ r + C @ P[obs_rows].sum(0) @ C.T) / no
            )
    if t >= 2:
        ezz1 = X1[1:] + m[1:, :, None] * m[:-1, None, :]
        if "transition_matrices" in names:
            b = prm["transition_offsets"]
            prm["transition_matrices"] = _solve_right(
                ezz1.sum(0) - np.outer(b, m[:-1].sum(0)), ezz[:-1].sum(0)
            )
        if "transition_covariance" in names:
            A, b = prm["transition_matrices"], prm["transition_offsets"]
            r = m[1:] - m[:-1] @ A.T - b
            ax = A @ X1[1:].sum(0).T
            q = r.T @ r + P[1:].sum(0) - ax - ax.T + A @ P[:-1].sum(0) @ A.T
            prm["transition_covariance"] = sym(q / (t - 1))
    if "initial_state_mean" in names:
        prm["initial_state_mean"] = m[0].copy()
    if "initial_state_covariance" in names:
        dm = m[0] - prm["initial_state_mean"]
        prm["initial_state_covariance"] = sym(P[0] + np.outer(dm, dm))
    if "transition_offsets" in names and t >= 2:
        A = prm["transition_matrices"]
        prm["transition_offsets"] = (m[1:] - m[:-1] @ A.T).mean(0)
    if "observation_offsets" in names and obs_rows.any():
        C = prm["observation_matrices"]
        prm["observation_offsets"] = (Y[obs_rows] - m[obs_rows] @ C.T).mean(0)
