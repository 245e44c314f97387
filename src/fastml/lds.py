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
time-varying, with a leading axis of n_timesteps - 1 (n_timesteps) entries (``em``
estimates the constant ones given the time-varying ones), and a scalar (or, for a
matrix, a 1-D row) stands for an array with leading axes of length 1.

Many series at once: ``filter``, ``smooth``, ``loglikelihood`` and ``em`` accept
``X`` of shape (n_series, n_timesteps, n_dim_obs), the parameters shared by all series.
The series run through the compiled kernels in fixed blocks of ``_SERIES_BLOCK``
series, spread over ``n_jobs`` threads (:func:`fastml._parallel.run_blocks`), so the
results do not depend on ``n_jobs``. The covariances, gains and Cholesky factors
depend only on the parameters and on which entries are missing: within a block, a
series missing the same entries as the last one computed in full reuses them and only
its means and log-likelihood are computed, by the same operations as for a series
alone (tested equal to the per-series results to 1e-12).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal, TypeVar, overload

import numpy as np
from scipy import linalg

from fastml._base import BaseEstimator
from fastml._kernels import _lds
from fastml._parallel import block_bounds, run_blocks
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
# Series per thread block: fixed (never derived from the thread count). ~2-10 ms of
# work for small models, so the per-block Python call is negligible, and enough blocks
# at a thousand series to keep several threads busy; the first series of each block
# is computed in full, the others reuse its covariances when they miss the same
# entries.
_SERIES_BLOCK = 32


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
    n_jobs : int or None, default None
        Threads for batched input (n_series, n_timesteps, n_dim_obs): None uses the
        usable CPUs (see :func:`fastml._parallel.effective_n_jobs`), -1 all CPUs.
        Results are identical for every value.

    Notes
    -----
    A parameter given as a scalar (or a matrix given as a 1-D row) is promoted as
    pykalman's ``array1d``/``array2d`` do, so a scalar covariance is a 1 x 1 matrix and
    is accepted only when that dimension is 1.

    :meth:`em` overwrites the parameter attributes with its estimates, as pykalman
    does. Innovation covariances are factorised by Cholesky; a non-positive-definite
    one raises a ValueError naming the time step (and the series, for batched input).

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

    Many series sharing the parameters: a leading series axis, on two threads.

    >>> X = np.random.default_rng(0).normal(size=(100, 50, 1))
    >>> X[7] = np.nan  # a series with no observation: the prior, log-likelihood 0
    >>> kf.set_params(n_jobs=2).smooth(X)[0].shape
    (100, 50, 1)
    >>> float(kf.loglikelihood(X, per_series=True)[7])
    0.0
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
        n_jobs: int | None = None,
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
        self.n_jobs = n_jobs

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
        promoted = []
        for name, axes in _SHAPES.items():
            value = getattr(self, name)
            if value is None:
                continue
            shape = np.shape(value)
            if len(shape) < len(axes):  # pykalman's array1d / array2d promotion
                shape = (1,) * (len(axes) - len(shape)) + shape
                promoted.append(name)
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
                scalars = [nm for nm in dict(dims[axis]) if nm in promoted]
                hint = (
                    f"; {', '.join(scalars)} given as a scalar or 1-D row stands for "
                    "an array with leading axes of length 1 (as in pykalman): give "
                    "the full array"
                    if scalars
                    else ""
                )
                raise ValueError(
                    f"inconsistent {label} between arguments ({desc}){hint}"
                )
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
            arr = _param_array(value, name)
            if name in _COVARIANCES:
                _check_psd(arr, name)
            out[name] = arr
        return out

    def _obs(self, X) -> np.ndarray:
        """Observations as a (n_series, T, p) float64 array, NaN for missing entries
        (1-D and 2-D input: one series)."""
        if isinstance(X, np.ma.MaskedArray):
            X = np.ma.asarray(X, dtype=np.float64).filled(np.nan)
        arr = check_array(X, "X", ndim=(1, 2, 3), dtype=np.float64, finite=False)
        if np.isinf(arr).any():
            idx = tuple(int(i) for i in np.argwhere(np.isinf(arr))[0])
            raise ValueError(
                f"X must not contain infinity (NaN marks a missing value); "
                f"found {arr[idx]} at index {idx}"
            )
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim == 2:
            arr = arr[None]
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

    def _kernel_args(self, prm: dict, t: int) -> tuple:
        tv = self._stacked(prm, t)
        return (
            tv["transition_matrices"],
            tv["transition_offsets"],
            tv["observation_matrices"],
            tv["observation_offsets"],
            tv["transition_covariance"],
            tv["observation_covariance"],
            prm["initial_state_mean"],
            prm["initial_state_covariance"],
        )

    def _run_blocks(self, run_block, n_series: int, t: int) -> None:
        """Run ``run_block(s0, s1, cancel)`` (a kernel status) over fixed blocks of
        series on ``n_jobs`` threads; raise for the first failing series."""
        bounds = block_bounds(n_series, _SERIES_BLOCK)
        statuses = run_blocks(
            lambda i, cancel: run_block(*bounds[i], cancel), len(bounds), self.n_jobs
        )
        status = next((st for st in statuses if st != 0), 0)
        if status == 0:
            return
        s, step = divmod(abs(status) - 1, t)
        series = f" of series {s}" if n_series > 1 else ""
        if status > 0:
            raise ValueError(
                f"the innovation covariance C P C^T + R is not positive definite at "
                f"time step {step}{series}; make observation_covariance positive "
                "definite (or the observed rows of it, for partially observed data)"
            )
        raise ValueError(
            f"the predicted state covariance at time step {step + 1}{series} is "
            "singular; the smoother needs transition_covariance (or A P A^T + Q) "
            "positive definite"
        )

    def _run_filter(self, Y: np.ndarray, prm: dict) -> tuple[np.ndarray, ...]:
        """Filtered means (S, T, n), covariances (S, T, n, n), log-likelihood terms
        (S, T) of the (S, T, p) observations ``Y``."""
        n_series, t, _ = Y.shape
        n = prm["initial_state_mean"].shape[0]
        args = self._kernel_args(prm, t)
        fm, fc = np.empty((n_series, t, n)), np.empty((n_series, t, n, n))
        ll = np.empty((n_series, t))
        self._run_blocks(
            lambda s0, s1, cancel: _lds.kalman_filter(
                *args, Y, fm, fc, ll, s0, s1, cancel
            ),
            n_series,
            t,
        )
        return fm, fc, ll

    def _run_smoother(
        self, Y: np.ndarray, prm: dict, cross: bool
    ) -> tuple[np.ndarray, ...]:
        """Smoothed means (S, T, n), covariances (S, T, n, n), lag-one covariances
        (S, T, n, n; None unless ``cross``) and log-likelihood terms (S, T)."""
        n_series, t, _ = Y.shape
        n = prm["initial_state_mean"].shape[0]
        args = self._kernel_args(prm, t)
        sm, sc = np.empty((n_series, t, n)), np.empty((n_series, t, n, n))
        cc = np.empty((n_series, t, n, n) if cross else (1, 1, n, n))
        ll = np.empty((n_series, t))

        def block(s0: int, s1: int, cancel: np.ndarray) -> int:
            # Per-block scratch: predicted, then filtered moments of one series.
            pm, pc = np.empty((t, n)), np.empty((t, n, n))
            fm, fc = np.empty((t, n)), np.empty((t, n, n))
            return _lds.kalman_smooth(
                *args, Y, sm, sc, cc, ll, pm, pc, fm, fc, s0, s1, cancel
            )

        self._run_blocks(block, n_series, t)
        return sm, sc, (cc if cross else None), ll

    def _prepare(self, X) -> tuple[np.ndarray, dict, bool]:
        """(S, T, p) observations, resolved parameters, and whether X was batched."""
        batched = np.ndim(X) == 3
        Y = self._obs(X)
        prm = self._resolved(Y.shape[2])
        return Y, prm, batched

    def filter(self, X: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Filtered state distributions p(z_t | x_0..x_t) (PRML eqs. 13.89-13.92).

        Parameters
        ----------
        X : array_like, shape (n_timesteps, n_dim_obs), (n_timesteps,) or \
(n_series, n_timesteps, n_dim_obs)
            Observations; NaN (or masked) entries are missing. A 3-D array holds
            independent series sharing the parameters, filtered on ``n_jobs``
            threads.

        Returns
        -------
        filtered_state_means : ndarray, shape (n_timesteps, n_dim_state)
            (n_series, n_timesteps, n_dim_state) for 3-D ``X``.
        filtered_state_covariances : ndarray, shape (n_timesteps, n_dim_state, \
n_dim_state)
            (n_series, n_timesteps, n_dim_state, n_dim_state) for 3-D ``X``.

        Raises
        ------
        ValueError
            Bad ``X`` or parameters, or an innovation covariance that is not positive
            definite (naming the time step and series).
        """
        Y, prm, batched = self._prepare(X)
        fm, fc, _ = self._run_filter(Y, prm)
        return (fm, fc) if batched else (fm[0], fc[0])

    @overload
    def loglikelihood(
        self, X: ArrayLike, per_series: Literal[False] = False
    ) -> float: ...
    @overload
    def loglikelihood(self, X: ArrayLike, per_series: Literal[True]) -> FloatArray: ...
    @overload
    def loglikelihood(self, X: ArrayLike, per_series: bool) -> float | FloatArray: ...
    def loglikelihood(
        self, X: ArrayLike, per_series: bool = False
    ) -> float | FloatArray:
        """log p(x_0..x_T) = sum_t log N(x_t | C m-_t + d, S_t) (prediction error
        decomposition, PRML eq. 13.63 with 13.84).

        Missing rows add nothing, partially observed rows their observed entries'
        marginal; a series with no observed entry has log-likelihood 0 (the
        probability of observing nothing is 1).

        Parameters
        ----------
        X : array_like, shape (n_timesteps, n_dim_obs), (n_timesteps,) or \
(n_series, n_timesteps, n_dim_obs)
        per_series : bool, default False
            Return each series' log-likelihood instead of their sum.

        Returns
        -------
        float, or ndarray of shape (n_series,) with ``per_series``
            The log-likelihood of all series (the series are independent: the sum of
            theirs, the quantity :meth:`em` maximises), or of each (shape (1,) for
            1-D and 2-D ``X``).
        """
        Y, prm, _ = self._prepare(X)
        ll = self._run_filter(Y, prm)[2]
        if per_series:
            return ll.sum(axis=1)
        return float(ll.sum())

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
        """Smoothed state distributions p(z_t | x_0..x_T) by Rauch-Tung-Striebel
        (PRML eqs. 13.100-13.102).

        Parameters
        ----------
        X : array_like, shape (n_timesteps, n_dim_obs), (n_timesteps,) or \
(n_series, n_timesteps, n_dim_obs)
            A 3-D array holds independent series sharing the parameters, smoothed on
            ``n_jobs`` threads.
        return_cross_covariances : bool, default False
            Also return ``cov(z_t, z_{t-1} | X)`` (PRML eq. 13.104; row 0 is zero).

        Returns
        -------
        smoothed_state_means : ndarray, shape (n_timesteps, n_dim_state)
            (n_series, n_timesteps, n_dim_state) for 3-D ``X``.
        smoothed_state_covariances : ndarray, shape (n_timesteps, n, n)
            (n_series, n_timesteps, n, n) for 3-D ``X``.
        cross_covariances : ndarray, shape (n_timesteps, n, n), if requested
            (n_series, n_timesteps, n, n) for 3-D ``X``.

        Raises
        ------
        ValueError
            Bad ``X`` or parameters, or a covariance that is not positive definite
            (naming the time step and series).
        """
        Y, prm, batched = self._prepare(X)
        sm, sc, cc, _ = self._run_smoother(Y, prm, return_cross_covariances)
        out = (sm, sc, cc) if return_cross_covariances else (sm, sc)
        return out if batched else tuple(a[0] for a in out)

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
                arr = _param_array(value, name, name.rstrip("s"))
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
            y = np.full((1, 1, p), np.nan)
        else:
            y = self._obs(np.atleast_1d(observation)[None] if np.ndim(observation) <= 1
                          else observation)  # fmt: skip
            if y.shape != (1, 1, p):
                raise ValueError(
                    f"observation must have shape ({p},), got {np.shape(observation)}"
                )
        A, b, Q = (prm[k] for k in ("transition_matrices", "transition_offsets",
                                    "transition_covariance"))  # fmt: skip
        pm = A @ m + b
        pc = A @ P @ A.T + Q
        pc = 0.5 * (pc + pc.T)
        step = dict(prm, initial_state_mean=pm, initial_state_covariance=pc)
        fm, fc, _ = self._run_filter(y, step)
        return fm[0, 0], fc[0, 0]

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
        log-likelihood before each M-step is appended to ``loglikelihoods_``. The
        updates run in pykalman's order, each given the values pykalman gives it (the
        offsets are estimated last, with the new matrices), so the estimates equal
        pykalman's for any ``em_vars``.

        Time-varying parameters (a leading time axis) are used per step in the
        updates of the constant ones, as in pykalman; a time-varying parameter listed
        in ``em_vars`` is replaced by a constant estimate, with a warning (pykalman
        does the same).

        For 3-D ``X`` (independent series sharing the parameters) the E-step runs on
        ``n_jobs`` threads and the M-step sums its statistics over series and time
        steps (numpy reductions in a fixed order, so the estimates do not depend on
        ``n_jobs``); ``initial_state_mean`` and ``initial_state_covariance`` become the
        mean over series of the smoothed first states' moments.

        Parameters
        ----------
        X : array_like, shape (n_timesteps, n_dim_obs), (n_timesteps,) or \
(n_series, n_timesteps, n_dim_obs)
            Fully missing (NaN) rows are allowed; partially observed rows only when no
            observation parameter is estimated.
        y : ignored
        n_iter : int, default 10
        em_vars : list of str or "all", optional
            Default ``self.em_vars``.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Unknown ``em_vars``, partially observed rows with an observation parameter
            estimated, bad ``X`` or parameters, or a divergence.

        Warns
        -----
        UserWarning
            A parameter in ``em_vars`` is time-varying (it becomes a constant).
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
        Y, prm, batched = self._prepare(X)
        self._stacked(prm, Y.shape[1])  # time-varying lengths checked up front
        for name in names:
            if name in _TIME_VARYING and prm[name].ndim != _TIME_VARYING[name]:
                warnings.warn(
                    f"{name} is time-varying (shape {prm[name].shape}); em estimates "
                    "it as a constant, as pykalman does",
                    UserWarning,
                    stacklevel=2,
                )
        nan = np.isnan(Y)
        partial = nan.any(axis=2) & ~nan.all(axis=2)
        obs_vars = {
            "observation_matrices",
            "observation_covariance",
            "observation_offsets",
        }
        if partial.any() and obs_vars.intersection(names):
            s, t = np.argwhere(partial)[0]
            row = f"X[{s}, {t}]" if batched else f"X row {t}"
            raise ValueError(
                f"{row} is partially observed: EM for "
                f"{sorted(obs_vars.intersection(names))} supports only fully observed or "
                "fully missing rows"
            )
        self.loglikelihoods_ = []
        for it in range(n_iter):
            m, P, X1, ll = self._run_smoother(Y, prm, cross=True)
            self.loglikelihoods_.append(float(ll.sum()))
            _m_step(prm, names, Y, m, P, X1)
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


def _param_array(value, name: str, label: str | None = None) -> np.ndarray:
    """A parameter as a float64 array; a scalar (or, for a matrix, a 1-D row) gets
    leading axes of length 1, as pykalman's ``array1d``/``array2d`` do."""
    arr = check_array(value, label or name, dtype=np.float64)
    base = len(_SHAPES[name])
    if arr.ndim < base:
        arr = arr.reshape((1,) * (base - arr.ndim) + arr.shape)
    return arr


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


def _steps(prm: dict, name: str, count: int) -> np.ndarray:
    """Per-step values of a parameter, shape (count, ...) or (1, ...) if constant."""
    arr = prm[name]
    return arr[None] if arr.ndim == len(_SHAPES[name]) else arr[:count]


def _m_step(prm, names, Y, m, P, X1) -> None:
    """Shumway-Stoffer M-step in pykalman's order, each update given the others.

    ``Y`` (S, T, p), smoothed ``m`` (S, T, n), ``P`` and lag-one ``X1`` (S, T, n, n):
    the expectations are summed over series and steps; time-varying parameters enter
    per step (pykalman's ``_em_*`` functions, summed over series).
    """
    n_series, t, _ = m.shape
    tr = lambda a: np.swapaxes(a, -1, -2)  # noqa: E731
    sym = lambda a: 0.5 * (a + a.T)  # noqa: E731
    outer = lambda a, b: a[..., :, None] * b[..., None, :]  # noqa: E731
    obs = ~np.isnan(Y).any(axis=2)  # fully observed rows (partial ones refused)
    n_obs = int(obs.sum())
    w = obs[..., None].astype(np.float64)
    W = w[..., None]
    yo = np.where(obs[..., None], Y, 0.0)
    if n_obs:
        if "observation_matrices" in names:
            d = _steps(prm, "observation_offsets", t)
            res1 = (W * outer(yo - d, m)).sum((0, 1))
            res2 = (W * (P + outer(m, m))).sum((0, 1))
            prm["observation_matrices"] = _solve_right(res1, res2)
        if "observation_covariance" in names:
            C = _steps(prm, "observation_matrices", t)
            d = _steps(prm, "observation_offsets", t)
            r = yo - (C @ m[..., None])[..., 0] - d
            res = (W * (outer(r, r) + C @ P @ tr(C))).sum((0, 1))
            prm["observation_covariance"] = sym(res / n_obs)
    if t >= 2:
        if "transition_matrices" in names:
            b = _steps(prm, "transition_offsets", t - 1)
            res1 = (X1[:, 1:] + outer(m[:, 1:] - b, m[:, :-1])).sum((0, 1))
            res2 = (P[:, :-1] + outer(m[:, :-1], m[:, :-1])).sum((0, 1))
            prm["transition_matrices"] = _solve_right(res1, res2)
        if "transition_covariance" in names:
            A = _steps(prm, "transition_matrices", t - 1)
            b = _steps(prm, "transition_offsets", t - 1)
            r = m[:, 1:] - (A @ m[:, :-1, :, None])[..., 0] - b
            xa = X1[:, 1:] @ tr(A)
            q = outer(r, r) + A @ P[:, :-1] @ tr(A) + P[:, 1:] - xa - tr(xa)
            prm["transition_covariance"] = sym(q.sum((0, 1)) / (n_series * (t - 1)))
    if "initial_state_mean" in names:
        prm["initial_state_mean"] = m[:, 0].mean(0)
    if "initial_state_covariance" in names:
        dm = m[:, 0] - prm["initial_state_mean"]
        prm["initial_state_covariance"] = sym((P[:, 0] + outer(dm, dm)).mean(0))
    if "transition_offsets" in names and t >= 2:
        A = _steps(prm, "transition_matrices", t - 1)
        prm["transition_offsets"] = (m[:, 1:] - (A @ m[:, :-1, :, None])[..., 0]).mean(
            (0, 1)
        )
    if "observation_offsets" in names and n_obs:
        C = _steps(prm, "observation_matrices", t)
        r = (w * (yo - (C @ m[..., None])[..., 0])).sum((0, 1))
        prm["observation_offsets"] = r / n_obs
