"""Sample statistics: one-pass stable variance, streaming moments, the ML variance bias.

The variance kernels read the data once and are accurate to a few ulps even for data
with a large offset (values near 1e9 with unit spread), where the textbook one-pass
formula ``E[x^2] - E[x]^2`` loses every significant digit.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple, overload

import numpy as np

from fastml._kernels import _stats
from fastml._typing import ArrayLike, FloatArray, RandomStateLike
from fastml._validation import check_array, check_int, check_random_state, check_real

__all__ = [
    "RunningMoments",
    "VarianceBiasResult",
    "mean_variance",
    "variance",
    "variance_bias",
]


def _normalize_axis(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (numbers.Integral, np.integer)) else axis
    try:
        axes = tuple(axes)
    except TypeError:
        raise TypeError(
            f"axis must be None, an int or a tuple of ints, got {axis!r}"
        ) from None
    out = []
    for a in axes:
        if isinstance(a, (bool, np.bool_)) or not isinstance(
            a, (numbers.Integral, np.integer)
        ):
            raise TypeError(
                f"axis must be None, an int or a tuple of ints, got {axis!r}"
            )
        if not -ndim <= a < ndim:
            raise ValueError(
                f"axis {a} is out of bounds for an array of dimension {ndim}"
            )
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"axis contains a repeated axis: {axis!r}")
    return tuple(sorted(out))


def _moments(x: np.ndarray, axes: tuple[int, ...]):
    """Count, shift, shifted mean and sum of squared deviations of ``x`` over ``axes``.

    The shift is the first value of each reduced slice; the mean is ``shift + mean``.
    Keeping the two apart lets :class:`RunningMoments` merge means far from zero exactly.
    """
    kept = [a for a in range(x.ndim) if a not in axes]
    out_shape = tuple(x.shape[a] for a in kept)
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    if len(axes) == 1 and axes[0] != x.ndim - 1:
        a = axes[0]
        pre = int(np.prod(x.shape[:a], dtype=np.int64))
        post = int(np.prod(x.shape[a + 1 :], dtype=np.int64))
        x3 = x.reshape(pre, n, post)
        shift = x3[:, 0, :].astype(np.float64)
        mean = np.empty((pre, post))
        m2 = np.empty((pre, post))
        _stats.moments_middle_axis(x3, mean, m2)
    else:
        # Reduced axes last (a view when they already are, else one copy).
        rows = np.ascontiguousarray(np.transpose(x, kept + list(axes))).reshape(-1, n)
        shift = rows[:, 0].astype(np.float64)
        mean = np.empty(rows.shape[0])
        m2 = np.empty(rows.shape[0])
        _stats.moments_last_axis(rows, mean, m2)
    return n, shift.reshape(out_shape), mean.reshape(out_shape), m2.reshape(out_shape)


def _check_finite_result(arr: np.ndarray, m2: np.ndarray) -> None:
    """Finiteness of the input, checked through the result: a NaN or infinity anywhere in
    the data makes the moments non-finite, so the extra pass runs only in that case."""
    if np.isfinite(m2).all():
        return
    check_array(arr, "x")  # raises, naming the first non-finite value
    raise ValueError(
        "x is finite but its sum of squared deviations overflows float64; "
        "rescale the data (e.g. divide by its largest magnitude) first"
    )


def _check_ddof(ddof, n: int) -> float:
    ddof = check_real(ddof, "ddof", low=0.0)
    if ddof >= n:
        raise ValueError(
            f"ddof must be smaller than the number of values reduced ({n}), got {ddof:g}"
        )
    return ddof


def _unwrap(a: np.ndarray):

    return float(a) if a.ndim == 0 else a


@overload
def mean_variance(
    x: ArrayLike, ddof: float = 0, axis: None = None
) -> tuple[float, float]: ...
@overload
def mean_variance(
    x: ArrayLike, ddof: float = 0, axis: int | tuple[int, ...] | None = None
) -> tuple[float | FloatArray, float | FloatArray]: ...
def mean_variance(
    x: ArrayLike, ddof: float = 0, axis: int | tuple[int, ...] | None = None
) -> tuple[float | FloatArray, float | FloatArray]:
    """Mean and variance of ``x`` in one pass over the data.

    Parameters
    ----------
    x : array_like
        Real data, float32 or float64 (integers are converted to float64). Must be finite
        and non-empty.
    ddof : float, default 0
        Delta degrees of freedom: the divisor is ``n - ddof``. ``ddof=0`` is the
        maximum-likelihood estimate (PRML eq. 1.56), ``ddof=1`` the unbiased one.
    axis : None, int or tuple of ints, default None
        Axes to reduce; ``None`` reduces all.

    Returns
    -------
    mean, var : float or numpy.ndarray
        float64 (the accumulator precision), of the shape of ``x`` without ``axis``.

    Raises
    ------
    ValueError
        Empty or non-finite input, ``ddof < 0`` or ``ddof >= n``, bad ``axis``.
    TypeError
        Non-numeric input or a non-integer ``axis``.

    Notes
    -----
    Blocks of 256 values are reduced with the corrected two-pass formula and merged
    pairwise with Chan, Golub & LeVeque's update
    ``M2 = M2_a + M2_b + delta^2 n_a n_b / n``; reductions over a non-final axis use
    Welford's update row by row. Either way each value is read from memory once.

    References
    ----------
    T. F. Chan, G. H. Golub, R. J. LeVeque, "Algorithms for computing the sample
    variance: analysis and recommendations", The American Statistician 37(3), 1983.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.stats import mean_variance
    >>> mean_variance(np.array([1.0, 2.0, 3.0, 4.0]), ddof=1)
    (2.5, 1.6666666666666667)
    """
    arr = check_array(x, "x", finite=False)
    axes = _normalize_axis(axis, arr.ndim)
    ddof = _check_ddof(ddof, int(np.prod([arr.shape[a] for a in axes], dtype=np.int64)))
    n, shift, mean, m2 = _moments(arr, axes)
    _check_finite_result(arr, m2)
    return _unwrap(shift + mean), _unwrap(m2 / (n - ddof))


@overload
def variance(x: ArrayLike, ddof: float = 0, axis: None = None) -> float: ...
@overload
def variance(
    x: ArrayLike, ddof: float = 0, axis: int | tuple[int, ...] | None = None
) -> float | FloatArray: ...
def variance(
    x: ArrayLike, ddof: float = 0, axis: int | tuple[int, ...] | None = None
) -> float | FloatArray:
    """Variance of ``x`` in one numerically stable pass (see :func:`mean_variance`).

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.stats import variance
    >>> variance(1e9 + np.array([1.0, 2.0, 3.0, 4.0]))
    1.25
    """
    return mean_variance(x, ddof=ddof, axis=axis)[1]


class RunningMoments:
    """Mean and variance of a stream of chunks, merged exactly (Chan et al. 1979).

    Each chunk's moments come from the one-pass kernel; chunks and other
    ``RunningMoments`` are combined with the pairwise update, so the result equals a single
    pass over the concatenated data up to rounding, whatever the chunking.

    Parameters
    ----------
    axis : int, default 0
        The samples axis of each chunk; the other axes are features, which must keep the
        same shape from chunk to chunk.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.stats import RunningMoments
    >>> rm = RunningMoments()
    >>> for chunk in np.array_split(np.arange(10.0), 3):
    ...     _ = rm.update(chunk)
    >>> rm.n, rm.mean, rm.variance(ddof=1)
    (10, 4.5, 9.166666666666666)
    """

    def __init__(self, axis: int = 0) -> None:
        self.axis = check_int(axis, "axis")
        self.n = 0
        self._shift: np.ndarray | None = None
        self._mean: np.ndarray | None = None
        self._m2: np.ndarray | None = None

    def update(self, x: ArrayLike) -> RunningMoments:
        """Add a chunk of samples (an empty chunk is a no-op); returns ``self``."""
        arr = check_array(x, "x", allow_empty=True, finite=False)
        if arr.ndim == 0:
            raise ValueError("x must have a samples axis; got a 0-dimensional array")
        axes = _normalize_axis(self.axis, arr.ndim)
        feat_shape = tuple(s for i, s in enumerate(arr.shape) if i not in axes)
        if self._mean is not None and feat_shape != self._mean.shape:
            raise ValueError(
                f"x has feature shape {feat_shape}, but earlier chunks had {self._mean.shape}"
            )
        if arr.shape[axes[0]] == 0:
            return self
        if arr.size == 0:
            raise ValueError(f"x has no features: shape {arr.shape}")
        n, shift, mean, m2 = _moments(arr, axes)
        _check_finite_result(arr, m2)
        self._merge(n, shift, mean, m2)
        return self

    def merge(self, other: RunningMoments) -> RunningMoments:
        """Fold another accumulator's moments into this one; returns ``self``."""
        if not isinstance(other, RunningMoments):
            raise TypeError(
                f"other must be a RunningMoments, got {type(other).__name__}"
            )
        if other.n:
            if self._mean is not None and other._mean.shape != self._mean.shape:
                raise ValueError(
                    f"other has feature shape {other._mean.shape}, this one {self._mean.shape}"
                )
            self._merge(other.n, other._shift, other._mean, other._m2)
        return self

    def _merge(self, n_b: int, shift_b, mean_b: np.ndarray, m2_b: np.ndarray) -> None:
        # Means are kept relative to the first value seen (self._shift); b's mean relative to
        # that shift is (shift_b - shift) + mean_b, with the first difference exact for data
        # clustered far from zero, so merges lose no digits to the offset (Chan et al. 1983).
        if self.n == 0:
            self.n, self._shift = n_b, shift_b
            self._mean, self._m2 = mean_b.copy(), m2_b.copy()
            return
        n_a = self.n
        n = n_a + n_b
        delta = (shift_b - self._shift) + mean_b - self._mean
        self._mean = self._mean + delta * (n_b / n)
        self._m2 = self._m2 + m2_b + delta * delta * (n_a * n_b / n)
        self.n = n

    def _require_data(self) -> None:
        if self.n == 0:
            raise ValueError(
                "RunningMoments has seen no samples yet; call update() first"
            )

    @property
    def mean(self) -> float | FloatArray:
        """Mean of all samples seen (float or array of the feature shape)."""
        self._require_data()
        return _unwrap(self._shift + self._mean)

    def variance(self, ddof: float = 0) -> float | FloatArray:
        """Variance of all samples seen, divisor ``n - ddof``."""
        self._require_data()
        ddof = _check_ddof(ddof, self.n)
        return _unwrap(self._m2 / (self.n - ddof))

    def __repr__(self) -> str:
        return f"RunningMoments(axis={self.axis}, n={self.n})"


class VarianceBiasResult(NamedTuple):
    """Monte-Carlo estimate of E[s^2_ML] next to its exact value (PRML eq. 1.58)."""

    estimate: float
    """Mean of the ML variances over the trials."""
    exact: float
    """(N - 1) / N * sigma2."""
    stderr: float
    """Standard error of ``estimate``."""
    unbiased_estimate: float
    """Mean of the unbiased variances N/(N-1) s^2_ML (nan for N = 1)."""
    n: int
    sigma2: float
    n_trials: int


def variance_bias(
    n: int,
    sigma2: float = 1.0,
    n_trials: int = 100_000,
    random_state: RandomStateLike = None,
) -> VarianceBiasResult:
    """Show by simulation that the maximum-likelihood variance is biased.

    Draws ``n_trials`` samples of size ``n`` from N(0, sigma2), computes each sample's
    ML variance s^2_ML (divisor N) and compares their mean with PRML eq. 1.58,
    E[s^2_ML] = (N - 1) / N * sigma^2.

    Parameters
    ----------
    n : int
        Sample size N >= 1.
    sigma2 : float, default 1.0
        True variance, > 0.
    n_trials : int, default 100000
        Number of simulated samples, >= 2.
    random_state : None, int or numpy.random.Generator
        Source of the normal draws (numpy's ziggurat through the C API, trial by trial).

    Returns
    -------
    VarianceBiasResult

    Examples
    --------
    >>> from fastml.stats import variance_bias
    >>> r = variance_bias(5, sigma2=2.0, n_trials=200_000, random_state=0)
    >>> r.exact
    1.6
    >>> abs(r.estimate - r.exact) < 4 * r.stderr
    True
    """
    n = check_int(n, "n", low=1)
    sigma2 = check_real(sigma2, "sigma2", low=0.0, low_open=True)
    n_trials = check_int(n_trials, "n_trials", low=2)
    rng = check_random_state(random_state)
    out = np.empty(n_trials)
    _stats.ml_variance_trials(
        rng.bit_generator, float(np.sqrt(sigma2)), np.empty(n), out
    )
    _, shift, mean, m2 = _moments(out, (0,))
    estimate = float(shift + mean)
    stderr = float(np.sqrt(m2 / (n_trials - 1) / n_trials))
    unbiased = estimate * n / (n - 1) if n > 1 else float("nan")
    return VarianceBiasResult(
        estimate=estimate,
        exact=(n - 1) / n * sigma2,
        stderr=stderr,
        unbiased_estimate=unbiased,
        n=n,
        sigma2=sigma2,
        n_trials=n_trials,
    )
