"""Input validation shared by every public module (one place, reused).

All checks that protect the compiled kernels live here or in the public modules: a
kernel assumes what these functions guarantee (dtype, C-contiguity, finiteness, shape).
"""

from __future__ import annotations

import ctypes
import numbers
from collections.abc import Sequence

import numpy as np

from fastml._typing import RandomStateLike

__all__ = [
    "as_ndarray",
    "check_array",
    "check_diverged",
    "check_float_dtype",
    "check_int",
    "check_param",
    "check_random_state",
    "check_real",
    "check_sample_weight",
    "check_size",
    "check_verbose",
    "float_dtype",
]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def check_random_state(
    random_state: RandomStateLike, name: str = "random_state"
) -> np.random.Generator:
    """Turn ``random_state`` into a :class:`numpy.random.Generator`, numpy's way.

    Parameters
    ----------
    random_state : None, int, SeedSequence, BitGenerator, Generator or RandomState
        - ``None``: numpy's global RandomState (``numpy.random.seed(0)`` then makes
          results reproducible), as in scikit-learn and hmmlearn; draws advance it.
        - an int >= 0 or a :class:`numpy.random.SeedSequence`: a fresh
          ``numpy.random.default_rng(random_state)`` (PCG64), so ``seed`` and
          ``SeedSequence(seed)`` give the same stream.
        - a :class:`numpy.random.BitGenerator` (``PCG64(seed)`` is again the same
          stream as ``seed``), a :class:`numpy.random.Generator` or a
          :class:`numpy.random.RandomState`: drawn from through its bit generator,
          which is advanced.
    name : str
        The argument's name, used in error messages.

    Returns
    -------
    numpy.random.Generator
        Sharing the bit generator (and so the stream) of ``random_state`` when it has
        one.

    Raises
    ------
    TypeError
        For any other type; for a BitGenerator that is not a working numpy one (no
        valid ``"BitGenerator"`` capsule); for a seed sequence that cannot generate
        state (e.g. numpy's ``SeedlessSeedSequence``).
    ValueError
        For a negative seed.
    """
    if random_state is None:
        return np.random.Generator(np.random.get_bit_generator())
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, (numbers.Integral, np.integer)) and not isinstance(
        random_state, (bool, np.bool_)
    ):
        if random_state < 0:
            raise ValueError(f"{name} must be a non-negative seed, got {random_state}")
        return np.random.default_rng(int(random_state))
    if isinstance(random_state, np.random.RandomState):
        random_state = random_state._bit_generator
    if isinstance(random_state, np.random.BitGenerator):
        return _generator_over(random_state, name)
    if isinstance(random_state, np.random.bit_generator.ISeedSequence):
        try:
            return np.random.default_rng(random_state)
        except (NotImplementedError, TypeError, ValueError) as exc:
            raise TypeError(
                f"{name} is a {type(random_state).__name__} that cannot generate "
                f"state ({type(exc).__name__}: {exc}); pass a "
                "numpy.random.SeedSequence"
            ) from None
    raise TypeError(
        f"{name} must be None, an int, a numpy.random.SeedSequence, BitGenerator, "
        f"Generator or RandomState, got {type(random_state).__name__}"
    )


def spawn_generators(
    random_state: RandomStateLike, n: int
) -> list[np.random.Generator]:
    """``n`` independent child streams of ``random_state`` (``Generator.spawn``), e.g.
    one per MCMC chain or per data partition.

    A bit generator without a spawnable seed sequence (MT19937 seeded the legacy way: a
    RandomState, numpy's global state after ``np.random.seed``) seeds the children from
    a SeedSequence of four words of its own stream instead, so they are reproducible
    from its state and it advances.
    """
    rng = check_random_state(random_state)
    if isinstance(
        rng.bit_generator.seed_seq, np.random.bit_generator.ISpawnableSeedSequence
    ):
        return rng.spawn(n)
    seq = np.random.SeedSequence(rng.bit_generator.random_raw(4))
    return [np.random.default_rng(child) for child in seq.spawn(n)]


def _generator_over(bit_generator, name: str) -> np.random.Generator:
    """A Generator sharing ``bit_generator``, after checking that fastml's kernels can
    draw from it: a capsule named ``"BitGenerator"`` (numpy's own check, in
    ``Generator()``) around a ``bitgen_t`` whose state and draw functions are set (a
    Python subclass of BitGenerator that never fills them in would crash the kernels).
    """
    try:
        gen = np.random.Generator(bit_generator)
        # bitgen_t = {state, next_uint64, next_uint32, next_double, next_raw}
        fields = (ctypes.c_void_p * 4).from_address(
            bit_generator.ctypes.bit_generator.value
        )
    except (ValueError, TypeError, AttributeError):
        fields = (None,)
    if not all(fields):
        raise TypeError(
            f"{name} is a {type(bit_generator).__name__} that is not a working numpy "
            'BitGenerator (no valid "BitGenerator" capsule with its state and draw '
            "functions set): fastml draws through numpy's C API, so pass one of numpy's "
            "(PCG64, MT19937, Philox, SFC64, ...) or a subclass that sets up its bitgen_t"
        )
    return gen


def float_dtype(
    *dtypes: np.dtype, allow_float32: bool = True, name: str = "x"
) -> np.dtype:
    """The kernel dtype for inputs of ``dtypes``: float32 if all are float16/float32
    (and ``allow_float32``), else float64.

    Raises a TypeError naming ``name`` when a dtype cannot be cast safely to float64
    (complex, object, strings, long double, datetimes).
    """
    for dt in dtypes:
        if dt.kind not in "biuf" or not np.can_cast(dt, np.float64, casting="safe"):
            raise TypeError(
                f"{name} must have a real numeric dtype that casts safely to float64, got {dt}"
            )
    if (
        allow_float32
        and dtypes
        and all(dt.kind == "f" and dt.itemsize <= 4 for dt in dtypes)
    ):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def as_ndarray(x, name: str) -> np.ndarray:
    """``np.asarray(x)`` with errors that name the argument (sparse input rejected)."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "toarray") or hasattr(x, "tocsr"):
        raise TypeError(
            f"{name} must be a dense array, got a sparse {type(x).__name__}"
        )
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} could not be converted to an array: {exc}") from None


def check_array(
    x,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    dtype: np.dtype | None = None,
    allow_float32: bool = True,
    allow_empty: bool = False,
    finite: bool = True,
) -> np.ndarray:
    """Validate ``x`` and return it as a C-contiguous float32/float64 array.

    Parameters
    ----------
    x : array_like
        The input.
    name : str
        The argument's name, used in every error message.
    ndim : int or sequence of int, optional
        Allowed numbers of dimensions.
    dtype : numpy.dtype, optional
        Force this dtype (must be float32 or float64); otherwise :func:`float_dtype`.
    allow_float32 : bool
        Keep float32 input in float32 (the kernel has a float32 path).
    allow_empty : bool
        Accept arrays with no elements.
    finite : bool
        Reject NaN and infinity.

    Returns
    -------
    numpy.ndarray
        C-contiguous, aligned, of dtype float32 or float64. A copy only where needed.

    Raises
    ------
    TypeError
        Non-numeric or unsafely castable dtype.
    ValueError
        Wrong ndim, empty input, non-finite values.
    """
    arr = as_ndarray(x, name)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(
                f"{name} must be {want}-dimensional, got shape {arr.shape}"
            )
    if dtype is None:
        dtype = float_dtype(arr.dtype, allow_float32=allow_float32, name=name)
    else:
        float_dtype(arr.dtype, name=name)
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    out = np.asarray(
        arr, dtype=dtype, order="C"
    )  # (ascontiguousarray would make 0-d 1-d)
    if not out.flags.aligned:  # e.g. np.frombuffer(buf, offset=1): kernels need aligned
        out = out.copy()
    if finite:
        check_finite(out, name)
    return out


def check_finite(arr: np.ndarray, name: str, offset: int = 0) -> None:
    """Raise a ValueError naming ``name`` and the first NaN or infinity in ``arr``.

    ``offset`` is added to the first index, for ``arr`` a block of rows
    ``[offset, ...)`` of the array the user passed (checks run block by block on
    threads).
    """
    if np.isfinite(arr).all():
        return
    bad = np.argwhere(~np.isfinite(arr))[0]
    where = tuple(int(i) for i in bad) if arr.ndim else ()
    shown = (where[0] + offset, *where[1:]) if where else ()
    raise ValueError(
        f"{name} must be finite (no NaN or infinity); "
        f"found {float(arr[where])} at index {shown}"
    )


def check_int(
    value, name: str, *, low: int | None = None, high: int | None = None
) -> int:
    """Validate an integer argument in ``[low, high]`` (bools rejected)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (numbers.Integral, np.integer)
    ):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def check_verbose(value) -> int:
    """Validate ``verbose``: a bool (True is 1) or an int >= 0, as scikit-learn's
    ``"verbose"`` constraint."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    return check_int(value, "verbose", low=0)


def check_real(
    value,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Validate a finite real scalar in a (half-)open or closed interval (a 0-d array
    counts as its scalar, as in numpy)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (numbers.Real, np.number)
    ):
        raise TypeError(
            f"{name} must be a real number, got {type(value).__name__} {value!r}"
        )
    if isinstance(value, (complex, np.complexfloating)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(
            f"{name} must be {'>' if low_open else '>='} {low}, got {value}"
        )
    if high is not None and (value >= high if high_open else value > high):
        raise ValueError(
            f"{name} must be {'<' if high_open else '<='} {high}, got {value}"
        )
    return value


def check_sample_weight(
    sample_weight, n: int, dtype: np.dtype, name: str = "sample_weight"
):
    """Validate per-sample weights: shape (n,), finite, non-negative, positive total.

    Returns the weights as a C-contiguous array of ``dtype`` (an empty array for ``None``,
    which the kernels read as unit weights) and their total.
    """
    if sample_weight is None:
        return np.empty(0, dtype=dtype), float(n)
    w = check_array(sample_weight, name, ndim=1, dtype=dtype)
    if w.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {w.shape}")
    if (w < 0).any():
        i = int(np.argmax(w < 0))
        raise ValueError(f"{name} must be non-negative; {name}[{i}] = {w[i]}")
    total = float(w.sum(dtype=np.float64))
    if not total > 0:
        raise ValueError(f"{name} must have a positive sum, got {total}")
    return w, total


def check_float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """A ``dtype`` argument that must be float32 or float64 (as a numpy dtype)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from None
    if dt not in _FLOATS:
        raise TypeError(f"{name} must be float32 or float64, got {dt}")
    return dt


def check_size(size, name: str = "size") -> tuple[int, ...] | None:
    """A numpy-style ``size``: ``None`` or a shape tuple of non-negative ints (an int or
    a 0-d integer array is a 1-d shape)."""
    if size is None:
        return None
    if isinstance(size, np.ndarray) and size.ndim == 0:  # as numpy: np.array(5)
        size = size[()]
    if isinstance(size, (numbers.Integral, np.integer)) and not isinstance(
        size, (bool, np.bool_)
    ):
        return (check_int(size, name, low=0),)
    if isinstance(size, np.ndarray) and size.ndim == 1:
        size = size.tolist()
    if isinstance(size, (tuple, list)):
        return tuple(check_int(s, name, low=0) for s in size)
    raise TypeError(
        f"{name} must be None, a non-negative int or a tuple of them, "
        f"got {type(size).__name__} {size!r}"
    )


def check_param(x, name: str, *, nonneg: bool = False, positive: bool = False):
    """A finite distribution parameter: a float for a scalar, else a float64 array
    (scale-like when ``nonneg`` / ``positive``)."""
    if np.ndim(x) == 0 and not isinstance(x, np.ndarray):
        value = check_real(x, name)
        if positive and value <= 0:
            raise ValueError(f"{name} must be > 0, got {value}")
        if nonneg and value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
        return value
    arr = check_array(x, name, allow_float32=False, allow_empty=True)
    if arr.ndim == 0:  # check_array gives 1-d for a 0-d array
        arr = arr.reshape(())
    if positive and (arr <= 0).any():
        bad = arr[arr <= 0].flat[0]
        raise ValueError(f"{name} must be > 0, got {bad}")
    if nonneg and (arr < 0).any():
        bad = arr[arr < 0].flat[0]
        raise ValueError(f"{name} must be >= 0, got {bad}")
    return float(arr) if arr.ndim == 0 else arr


def check_diverged(owner, iteration: int, advice: str, **params) -> None:
    """Stop an iterative fit whose parameters became non-finite (a divergence).

    Parameters
    ----------
    owner : object
        The estimator being fitted (its class name starts the message).
    iteration : int
        The iteration (1-based) after which the parameters were checked.
    advice : str
        What the user should change, e.g. ``"lower learning_rate"``.
    **params : array_like
        The parameters just updated, by their attribute names.

    Raises
    ------
    ValueError
        Naming the first non-finite parameter, the iteration and ``advice``.
    """
    for name, value in params.items():
        if not np.isfinite(value).all():
            raise ValueError(
                f"{type(owner).__name__} diverged: {name} became non-finite (NaN or "
                f"infinity) at iteration {iteration}; {advice}"
            )
