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
from fastml._parallel import block_bounds, effective_n_jobs, is_dask_array, run_blocks
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


# Values per parallel block (8 MiB of float64). Fixed, never the thread count: an
# array is cut into the same blocks for every ``n_jobs`` and the blocks' moments are
# merged in block order, so the result has the same bits for any number of threads.
_BLOCK = 1 << 20


def _chan_merge(a, b):
    """Merge two ``(n, shift, mean, m2)`` partial moments (``mean`` relative to
    ``shift``; b after a): Chan, Golub & LeVeque's pairwise update
    ``M2 = M2_a + M2_b + delta^2 n_a n_b / n``.

    b's mean relative to a's shift is ``(shift_b - shift_a) + mean_b``, the first
    difference exact for data clustered far from zero, so merges lose no digits to the
    offset (Chan et al. 1983).
    """
    n_a, shift_a, mean_a, m2_a = a
    n_b, shift_b, mean_b, m2_b = b
    if n_a == 0:
        return b
    n = n_a + n_b
    delta = (shift_b - shift_a) + mean_b - mean_a
    return (
        n,
        shift_a,
        mean_a + delta * (n_b / n),
        m2_a + m2_b + delta * delta * (n_a * n_b / n),
    )


def _moments_last(rows: np.ndarray, n_jobs: int):
    """``(shift, mean, m2)`` of each row of ``rows`` (R, n) on ``n_jobs`` threads."""
    R, n = rows.shape
    if n > _BLOCK:  # long rows: column blocks of every row, merged in block order
        cols = block_bounds(n, _BLOCK)

        def block(t, cancel):
            c0, c1 = cols[t // R]
            part = rows[t % R : t % R + 1, c0:c1]
            mean, m2 = np.empty(1), np.empty(1)
            _stats.moments_last_axis(part, mean, m2, cancel)
            return mean[0], m2[0]

        parts = run_blocks(block, R * len(cols), n_jobs)
        acc = (0, None, None, None)
        for c, (c0, c1) in enumerate(cols):
            got = np.array(parts[c * R : (c + 1) * R]).reshape(R, 2)
            shift = rows[:, c0].astype(np.float64)
            acc = _chan_merge(acc, (c1 - c0, shift, got[:, 0], got[:, 1]))
        return acc[1:]
    # short rows: blocks of whole rows, each writing its own slice of the outputs
    bounds = block_bounds(R, max(1, _BLOCK // n))
    mean, m2 = np.empty(R), np.empty(R)

    def block(b, cancel):
        r0, r1 = bounds[b]
        _stats.moments_last_axis(rows[r0:r1], mean[r0:r1], m2[r0:r1], cancel)

    run_blocks(block, len(bounds), n_jobs)
    return rows[:, 0].astype(np.float64), mean, m2


def _moments_middle(x3: np.ndarray, n_jobs: int):
    """``(shift, mean, m2)`` of ``x3`` (pre, n, post) along its middle axis."""
    pre, n, post = x3.shape
    if n * post > _BLOCK:  # long slices: blocks of rows of every slice, merged in order
        rows = block_bounds(n, max(1, _BLOCK // post))

        def block(t, cancel):
            r0, r1 = rows[t // pre]
            p = t % pre
            mean, m2 = np.empty((1, post)), np.empty((1, post))
            _stats.moments_middle_axis(x3[p : p + 1, r0:r1], mean, m2, cancel)
            return mean[0], m2[0]

        parts = run_blocks(block, pre * len(rows), n_jobs)
        acc = (0, None, None, None)
        for c, (r0, r1) in enumerate(rows):
            got = parts[c * pre : (c + 1) * pre]
            shift = x3[:, r0, :].astype(np.float64)
            mean = np.array([g[0] for g in got])
            m2 = np.array([g[1] for g in got])
            acc = _chan_merge(acc, (r1 - r0, shift, mean, m2))
        return acc[1:]
    bounds = block_bounds(pre, max(1, _BLOCK // (n * post)))
    mean, m2 = np.empty((pre, post)), np.empty((pre, post))

    def block(b, cancel):
        p0, p1 = bounds[b]
        _stats.moments_middle_axis(x3[p0:p1], mean[p0:p1], m2[p0:p1], cancel)

    run_blocks(block, len(bounds), n_jobs)
    return x3[:, 0, :].astype(np.float64), mean, m2


def _moments(x: np.ndarray, axes: tuple[int, ...], n_jobs: int = 1):
    """Count, shift, shifted mean and sum of squared deviations of ``x`` over ``axes``.

    The shift is the first value of each reduced slice (of its first block for slices
    longer than ``_BLOCK``); the mean is ``shift + mean``. Keeping the two apart lets
    :class:`RunningMoments` merge means far from zero exactly.
    """
    kept = [a for a in range(x.ndim) if a not in axes]
    out_shape = tuple(x.shape[a] for a in kept)
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    if len(axes) == 1 and axes[0] != x.ndim - 1:
        a = axes[0]
        pre = int(np.prod(x.shape[:a], dtype=np.int64))
        post = int(np.prod(x.shape[a + 1 :], dtype=np.int64))
        shift, mean, m2 = _moments_middle(x.reshape(pre, n, post), n_jobs)
    else:
        # Reduced axes last (a view when they already are, else one copy).
        rows = np.ascontiguousarray(np.transpose(x, kept + list(axes))).reshape(-1, n)
        shift, mean, m2 = _moments_last(rows, n_jobs)
    return n, shift.reshape(out_shape), mean.reshape(out_shape), m2.reshape(out_shape)


def _chunk_moments(chunk, dtype, axes):
    """Moments of one dask chunk over ``axes`` (one thread: the workers are parallel)."""
    arr = np.ascontiguousarray(chunk, dtype=dtype)
    n, shift, mean, m2 = _moments(arr, axes)
    if not np.isfinite(m2).all():
        _check_finite_result(arr, m2)
    return n, shift, mean, m2


def _check_dask(x, axes: tuple[int, ...]):
    """A checked dask array with the kept axes rechunked whole (so every chunk's
    moments have the output's shape), and its kernel dtype."""
    from fastml._parallel import check_dask_array

    kept = tuple(a for a in range(x.ndim) if a not in axes)
    return check_dask_array(x, "x", whole_axes=kept)


def _dask_moments(x, axes: tuple[int, ...], dtype):
    """``_moments`` of a checked dask array: per-chunk moments on the workers, merged
    with :func:`_chan_merge` in chunk order."""
    from fastml._parallel import dask_reduce

    return dask_reduce(x, _chunk_moments, _chan_merge, args=(dtype, axes), name="x")


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
    x: ArrayLike, ddof: float = 0, axis: None = None, n_jobs: int | None = None
) -> tuple[float, float]: ...
@overload
def mean_variance(
    x: ArrayLike,
    ddof: float = 0,
    axis: int | tuple[int, ...] | None = None,
    n_jobs: int | None = None,
) -> tuple[float | FloatArray, float | FloatArray]: ...
def mean_variance(
    x: ArrayLike,
    ddof: float = 0,
    axis: int | tuple[int, ...] | None = None,
    n_jobs: int | None = None,
) -> tuple[float | FloatArray, float | FloatArray]:
    """Mean and variance of ``x`` in one pass over the data.

    Parameters
    ----------
    x : array_like or dask.array.Array
        Real data, float32 or float64 (integers are converted to float64). Must be finite
        and non-empty. A dask array is reduced chunk by chunk on the active Dask
        scheduler (per-chunk moments merged as below; only the moments travel).
    ddof : float, default 0
        Delta degrees of freedom: the divisor is ``n - ddof``. ``ddof=0`` is the
        maximum-likelihood estimate (PRML eq. 1.56), ``ddof=1`` the unbiased one.
    axis : None, int or tuple of ints, default None
        Axes to reduce; ``None`` reduces all.
    n_jobs : int or None, default None
        Threads: ``None`` all usable CPUs, ``-1`` all CPUs, ``k`` k threads. Arrays
        are cut into blocks of 2**20 values whatever the thread count and merged in
        block order, so every ``n_jobs`` gives the same bits.

    Returns
    -------
    mean, var : float or numpy.ndarray
        float64 (the accumulator precision), of the shape of ``x`` without ``axis``.

    Raises
    ------
    ValueError
        Empty or non-finite input (for dask input: naming the chunk), ``ddof < 0`` or
        ``ddof >= n``, bad ``axis``, ``n_jobs`` 0 or below -1.
    TypeError
        Non-numeric input, a non-integer ``axis`` or ``n_jobs``.

    Notes
    -----
    Blocks of 256 values are reduced with the corrected two-pass formula and merged
    pairwise with Chan, Golub & LeVeque's update
    ``M2 = M2_a + M2_b + delta^2 n_a n_b / n``; reductions over a non-final axis use
    Welford's update row by row. Either way each value is read from memory once.
    Slices longer than 2**20 values are cut into such blocks for the threads, each
    shifted by its own first value, and merged with the same update.

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
    n_jobs = effective_n_jobs(n_jobs)
    if is_dask_array(x):
        axes = _normalize_axis(axis, x.ndim)
        x, dtype = _check_dask(x, axes)
        ddof = _check_ddof(
            ddof, int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
        )
        n, shift, mean, m2 = _dask_moments(x, axes, dtype)
        return _unwrap(shift + mean), _unwrap(m2 / (n - ddof))
    arr = check_array(x, "x", finite=False)
    axes = _normalize_axis(axis, arr.ndim)
    ddof = _check_ddof(ddof, int(np.prod([arr.shape[a] for a in axes], dtype=np.int64)))
    n, shift, mean, m2 = _moments(arr, axes, n_jobs)
    _check_finite_result(arr, m2)
    return _unwrap(shift + mean), _unwrap(m2 / (n - ddof))


@overload
def variance(
    x: ArrayLike, ddof: float = 0, axis: None = None, n_jobs: int | None = None
) -> float: ...
@overload
def variance(
    x: ArrayLike,
    ddof: float = 0,
    axis: int | tuple[int, ...] | None = None,
    n_jobs: int | None = None,
) -> float | FloatArray: ...
def variance(
    x: ArrayLike,
    ddof: float = 0,
    axis: int | tuple[int, ...] | None = None,
    n_jobs: int | None = None,
) -> float | FloatArray:
    """Variance of ``x`` in one numerically stable pass (see :func:`mean_variance`,
    which documents the parameters; ``x`` may be a dask array).

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.stats import variance
    >>> variance(1e9 + np.array([1.0, 2.0, 3.0, 4.0]))
    1.25
    """
    return mean_variance(x, ddof=ddof, axis=axis, n_jobs=n_jobs)[1]


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
        """Add a chunk of samples (an empty chunk is a no-op); returns ``self``.

        ``x`` may be a ``dask.array.Array``: its chunks' moments are computed on the
        active Dask scheduler and merged in chunk order (only the moments travel).
        """
        dask_input = is_dask_array(x)
        arr = x if dask_input else check_array(x, "x", allow_empty=True, finite=False)
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
        if dask_input:
            arr, dtype = _check_dask(arr, axes)
            self._merge(*_dask_moments(arr, axes, dtype))
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
        if self.n == 0:
            self.n, self._shift = n_b, shift_b
            self._mean, self._m2 = mean_b.copy(), m2_b.copy()
            return
        a = (self.n, self._shift, self._mean, self._m2)
        self.n, self._shift, self._mean, self._m2 = _chan_merge(
            a, (n_b, shift_b, mean_b, m2_b)
        )

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
