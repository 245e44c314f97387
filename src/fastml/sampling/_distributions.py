"""Direct samplers for continuous distributions: normal (ziggurat, Box-Muller, polar),
exponential, multivariate normal, gamma, Dirichlet and inverse-CDF sampling.

Compiled in :mod:`fastml._kernels._samplers`; every draw comes from the caller's bit
generator under its lock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, overload

import numpy as np

from fastml._kernels import _samplers
from fastml._typing import (
    ArrayLike,
    DTypeLike,
    ExponentialMethod,
    FloatArray,
    NDArray,
    NormalMethod,
    RandomStateLike,
    RealArray,
    SizeLike,
)
from fastml._validation import (
    as_ndarray,
    check_array,
    check_float_dtype,
    check_param,
    check_random_state,
    check_real,
    check_size,
)

__all__ = [
    "dirichlet",
    "exponential",
    "gamma",
    "inverse_cdf",
    "multivariate_normal",
    "normal",
    "standard_exponential",
    "standard_normal",
]


_NORMAL_METHODS = {"ziggurat": 0, "box-muller": 1, "polar": 2}


_EXP_METHODS = {"ziggurat": 0, "inversion": 1}


def _check_method(method, methods: dict[str, int]) -> int:
    if method not in methods:
        raise ValueError(f"method must be one of {sorted(methods)}, got {method!r}")
    return methods[method]


def _output(size, dtype, out, *, integer: bool = False) -> tuple[np.ndarray, bool]:
    """The array to fill (flat view) and whether the caller wants a scalar back.

    ``integer``: the output holds int64 indices (categorical), not ``dtype`` floats.
    """
    shape = check_size(size)
    dt = np.dtype(np.int64) if integer else check_float_dtype(dtype)
    if out is None:
        scalar = shape is None
        return np.empty(() if scalar else shape, dtype=dt), scalar
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dt:
        which = "" if integer else " (the dtype argument)"
        raise TypeError(f"out must have dtype {dt}{which}, got {out.dtype}")
    if shape is not None and out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, but size asks for {shape}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    if not out.flags.aligned:
        raise ValueError(
            "out must be aligned (e.g. not np.frombuffer at an odd offset)"
        )
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    return out, False


def _finish(arr: np.ndarray, scalar: bool):
    return arr.dtype.type(arr[()]) if scalar else arr


def _fill_float64(arr: np.ndarray, fill: Callable[[np.ndarray], None]) -> None:
    """Run ``fill(buffer)``, a float64-only kernel writing a C-contiguous buffer of
    ``arr``'s shape, into ``arr``: directly when ``arr`` is float64, else through a
    float64 buffer rounded into ``arr`` (float32 values are the float64 draws rounded).
    """
    if arr.dtype == np.float64:
        fill(arr)
    else:
        buf = np.empty(arr.shape)
        fill(buf)
        np.copyto(arr, buf, casting="same_kind")


@overload
def standard_normal(
    size: None = None,
    *,
    method: NormalMethod = "ziggurat",
    dtype: type[np.float64] = np.float64,
    out: None = None,
    random_state: RandomStateLike = None,
) -> np.float64: ...
@overload
def standard_normal(
    size: None = None,
    *,
    method: NormalMethod = "ziggurat",
    dtype: DTypeLike,
    out: None = None,
    random_state: RandomStateLike = None,
) -> np.floating[Any]: ...
@overload
def standard_normal(
    size: int | tuple[int, ...],
    *,
    method: NormalMethod = "ziggurat",
    dtype: DTypeLike = np.float64,
    out: RealArray | None = None,
    random_state: RandomStateLike = None,
) -> RealArray: ...
@overload
def standard_normal(
    size: None = None,
    *,
    method: NormalMethod = "ziggurat",
    dtype: DTypeLike = np.float64,
    out: RealArray,
    random_state: RandomStateLike = None,
) -> RealArray: ...
def standard_normal(
    size: SizeLike = None,
    *,
    method: NormalMethod = "ziggurat",
    dtype: DTypeLike = np.float64,
    out: RealArray | None = None,
    random_state: RandomStateLike = None,
) -> np.floating[Any] | RealArray:
    """Draw standard normal N(0, 1) values.

    Parameters
    ----------
    size : None, int or tuple of ints
        Output shape; ``None`` returns one scalar (unless ``out`` is given).
    method : {"ziggurat", "box-muller", "polar"}
        ``"ziggurat"``: Marsaglia & Tsang's 256-layer ziggurat with the exact tail
        algorithm (one 64-bit draw per value on the fast path, about 99% of draws).
        ``"box-muller"``: Box & Muller's trigonometric transform.
        ``"polar"``: Marsaglia's polar (rejection) method.
    dtype : float64 or float32
        float32 has its own path (32-bit draws, float32 tables and arithmetic), it is
        not a cast of the float64 values.
    out : numpy.ndarray, optional
        C-contiguous, writeable array of ``dtype`` to fill (shape ``size`` if given).
    random_state : None, int or numpy.random.Generator
        Source of randomness; a Generator is advanced.

    Returns
    -------
    float or numpy.ndarray

    Raises
    ------
    TypeError
        Non-integer ``size``, a dtype other than float32/float64, ``out`` not an array
        of ``dtype``, a bad ``random_state``.
    ValueError
        Negative ``size``, unknown ``method``, ``out`` of the wrong shape.

    Notes
    -----
    Ziggurat: the half-density ``f(x) = exp(-x^2/2)`` is covered by 256 layers of
    equal area ``v`` (255 rectangles and a base strip with the tail beyond
    ``r = 3.6541528853610088``); a layer is picked uniformly and a point ``x = j w_i``
    is accepted at once when ``|j| < k_i``. Otherwise the wedge test compares a uniform
    height with ``f(x)``, and the base layer samples the tail by Marsaglia's exact
    method (``x = -log(U1)/r``, ``y = -log(U2)``, accept if ``2y > x^2``).
    Box-Muller and polar produce values in pairs; a pair's second value is dropped when
    the output length is odd (nothing is cached between calls).

    References
    ----------
    G. Marsaglia, W. W. Tsang, "The Ziggurat Method for Generating Random Variables",
    J. Stat. Softw. 5(8), 2000. G. E. P. Box, M. E. Muller, "A Note on the Generation
    of Random Normal Deviates", Ann. Math. Stat. 29, 1958. G. Marsaglia, T. A. Bray,
    "A Convenient Method for Generating Normal Variables", SIAM Review 6, 1964.

    Examples
    --------
    >>> from fastml.sampling import standard_normal
    >>> x = standard_normal(100_000, random_state=0)
    >>> bool(abs(x.mean()) < 0.02 and abs(x.std() - 1) < 0.02)
    True
    >>> bool((standard_normal(5, random_state=1) == standard_normal(5, random_state=1)).all())
    True
    """
    m = _check_method(method, _NORMAL_METHODS)
    arr, scalar = _output(size, dtype, out)
    rng = check_random_state(random_state)
    _samplers.standard_normal_fill(rng.bit_generator, m, arr.reshape(-1))
    return _finish(arr, scalar)


@overload
def standard_exponential(
    size: None = None,
    *,
    method: ExponentialMethod = "ziggurat",
    dtype: type[np.float64] = np.float64,
    out: None = None,
    random_state: RandomStateLike = None,
) -> np.float64: ...
@overload
def standard_exponential(
    size: None = None,
    *,
    method: ExponentialMethod = "ziggurat",
    dtype: DTypeLike,
    out: None = None,
    random_state: RandomStateLike = None,
) -> np.floating[Any]: ...
@overload
def standard_exponential(
    size: int | tuple[int, ...],
    *,
    method: ExponentialMethod = "ziggurat",
    dtype: DTypeLike = np.float64,
    out: RealArray | None = None,
    random_state: RandomStateLike = None,
) -> RealArray: ...
@overload
def standard_exponential(
    size: None = None,
    *,
    method: ExponentialMethod = "ziggurat",
    dtype: DTypeLike = np.float64,
    out: RealArray,
    random_state: RandomStateLike = None,
) -> RealArray: ...
def standard_exponential(
    size: SizeLike = None,
    *,
    method: ExponentialMethod = "ziggurat",
    dtype: DTypeLike = np.float64,
    out: RealArray | None = None,
    random_state: RandomStateLike = None,
) -> np.floating[Any] | RealArray:
    """Draw standard exponential Exp(1) values.

    Parameters
    ----------
    size, dtype, out, random_state
        As in :func:`standard_normal`.
    method : {"ziggurat", "inversion"}
        ``"ziggurat"``: 256-layer exponential ziggurat (Marsaglia & Tsang 2000) whose
        tail beyond ``r = 7.69711747013105`` is ``r + Exp(1)`` by memorylessness.
        ``"inversion"``: ``-log(U)``, ``U`` uniform on (0, 1].

    Returns
    -------
    float or numpy.ndarray

    Examples
    --------
    >>> from fastml.sampling import standard_exponential
    >>> e = standard_exponential(100_000, random_state=0)
    >>> bool(abs(e.mean() - 1) < 0.02)
    True
    """
    m = _check_method(method, _EXP_METHODS)
    arr, scalar = _output(size, dtype, out)
    rng = check_random_state(random_state)
    _samplers.standard_exponential_fill(rng.bit_generator, m, arr.reshape(-1))
    return _finish(arr, scalar)


def _broadcast_shape(size, *params) -> tuple[tuple[int, ...] | None, bool]:
    shapes = [np.shape(p) for p in params]
    try:
        pshape = np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"parameter shapes {shapes} do not broadcast") from None
    shape = check_size(size)
    if shape is None:
        return (pshape if pshape else None), False
    try:
        if np.broadcast_shapes(shape, pshape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"size {shape} is not compatible with the parameter shape {pshape}"
        ) from None
    return shape, True


@overload
def normal(
    loc: float = 0.0,
    scale: float = 1.0,
    size: None = None,
    *,
    method: NormalMethod = "ziggurat",
    dtype: type[np.float64] = np.float64,
    out: None = None,
    random_state: RandomStateLike = None,
) -> np.float64: ...
@overload
def normal(
    loc: float = 0.0,
    scale: float = 1.0,
    size: None = None,
    *,
    method: NormalMethod = "ziggurat",
    dtype: DTypeLike,
    out: None = None,
    random_state: RandomStateLike = None,
) -> np.floating[Any]: ...
@overload
def normal(
    loc: ArrayLike = 0.0,
    scale: ArrayLike = 1.0,
    size: SizeLike = None,
    *,
    method: NormalMethod = "ziggurat",
    dtype: DTypeLike = np.float64,
    out: RealArray | None = None,
    random_state: RandomStateLike = None,
) -> RealArray: ...
def normal(
    loc: ArrayLike = 0.0,
    scale: ArrayLike = 1.0,
    size: SizeLike = None,
    *,
    method: NormalMethod = "ziggurat",
    dtype: DTypeLike = np.float64,
    out: RealArray | None = None,
    random_state: RandomStateLike = None,
) -> np.floating[Any] | RealArray:
    """Draw N(loc, scale^2) values: ``loc + scale * Z`` with Z from
    :func:`standard_normal`.

    Parameters
    ----------
    loc : float or array_like
        Mean, finite.
    scale : float or array_like
        Standard deviation, finite and ``>= 0``.
    size, method, dtype, out, random_state
        As in :func:`standard_normal`; array ``loc``/``scale`` broadcast against
        ``size`` as in numpy.

    Raises
    ------
    ValueError
        Non-finite ``loc`` or ``scale``, negative ``scale``, shapes that do not
        broadcast to ``size``.

    Examples
    --------
    >>> from fastml.sampling import normal
    >>> x = normal(3.0, 2.0, 100_000, random_state=0)
    >>> bool(abs(x.mean() - 3) < 0.05 and abs(x.std() - 2) < 0.05)
    True
    """
    loc = check_param(loc, "loc")
    scale = check_param(scale, "scale", nonneg=True)
    m = _check_method(method, _NORMAL_METHODS)
    if isinstance(loc, float) and isinstance(scale, float):
        arr, scalar = _output(size, dtype, out)
        rng = check_random_state(random_state)
        if m == 0:
            _samplers.normal_fill(rng.bit_generator, loc, scale, arr.reshape(-1))
        else:
            _samplers.standard_normal_fill(rng.bit_generator, m, arr.reshape(-1))
            arr *= arr.dtype.type(scale)
            arr += arr.dtype.type(loc)
        return _finish(arr, scalar)
    shape, _ = _broadcast_shape(size, loc, scale)
    arr, scalar = _output(shape, dtype, out)
    rng = check_random_state(random_state)
    _samplers.standard_normal_fill(rng.bit_generator, m, arr.reshape(-1))
    np.multiply(arr, scale, out=arr, casting="unsafe")
    np.add(arr, loc, out=arr, casting="unsafe")
    return _finish(arr, scalar)


@overload
def exponential(
    scale: float = 1.0,
    size: None = None,
    *,
    method: ExponentialMethod = "ziggurat",
    dtype: type[np.float64] = np.float64,
    out: None = None,
    random_state: RandomStateLike = None,
) -> np.float64: ...
@overload
def exponential(
    scale: float = 1.0,
    size: None = None,
    *,
    method: ExponentialMethod = "ziggurat",
    dtype: DTypeLike,
    out: None = None,
    random_state: RandomStateLike = None,
) -> np.floating[Any]: ...
@overload
def exponential(
    scale: ArrayLike = 1.0,
    size: SizeLike = None,
    *,
    method: ExponentialMethod = "ziggurat",
    dtype: DTypeLike = np.float64,
    out: RealArray | None = None,
    random_state: RandomStateLike = None,
) -> RealArray: ...
def exponential(
    scale: ArrayLike = 1.0,
    size: SizeLike = None,
    *,
    method: ExponentialMethod = "ziggurat",
    dtype: DTypeLike = np.float64,
    out: RealArray | None = None,
    random_state: RandomStateLike = None,
) -> np.floating[Any] | RealArray:
    """Draw Exp(1/scale) values (mean ``scale``): ``scale * E``, E from
    :func:`standard_exponential`.

    Parameters
    ----------
    scale : float or array_like
        Mean, finite and ``>= 0``.
    size, method, dtype, out, random_state
        As in :func:`standard_exponential`.

    Examples
    --------
    >>> from fastml.sampling import exponential
    >>> bool(abs(exponential(2.0, 100_000, random_state=0).mean() - 2) < 0.05)
    True
    """
    scale = check_param(scale, "scale", nonneg=True)
    m = _check_method(method, _EXP_METHODS)
    if isinstance(scale, float):
        arr, scalar = _output(size, dtype, out)
        rng = check_random_state(random_state)
        if m == 0:
            _samplers.exponential_fill(rng.bit_generator, scale, arr.reshape(-1))
        else:
            _samplers.standard_exponential_fill(rng.bit_generator, m, arr.reshape(-1))
            arr *= arr.dtype.type(scale)
        return _finish(arr, scalar)
    shape, _ = _broadcast_shape(size, scale)
    arr, scalar = _output(shape, dtype, out)
    rng = check_random_state(random_state)
    _samplers.standard_exponential_fill(rng.bit_generator, m, arr.reshape(-1))
    np.multiply(arr, scale, out=arr, casting="unsafe")
    return _finish(arr, scalar)


def _check_cov(cov, d: int, name: str = "cov", tol: float = 1e-8) -> np.ndarray:
    """Validate a covariance: (d, d), finite, symmetric; returns it as float64."""
    cov = check_array(cov, name, ndim=2, allow_float32=False)
    if cov.shape != (d, d):
        raise ValueError(f"{name} must have shape ({d}, {d}), got {cov.shape}")
    scale = max(float(np.abs(cov).max()), np.finfo(float).tiny)
    asym = float(np.abs(cov - cov.T).max())
    if asym > tol * scale:
        i, j = np.unravel_index(np.argmax(np.abs(cov - cov.T)), cov.shape)
        raise ValueError(
            f"{name} must be symmetric: {name}[{i}, {j}] = {float(cov[i, j])!r} but "
            f"{name}[{j}, {i}] = {float(cov[j, i])!r} (tol={tol:g} relative)"
        )
    return 0.5 * (cov + cov.T)


def _cov_factor(cov: np.ndarray, name: str = "cov", tol: float = 1e-8):
    """A factor ``A`` with ``A A^T = cov``: Cholesky (lower triangular) when ``cov`` is
    positive definite, else ``Q sqrt(Lambda)`` for a PSD ``cov``.

    Returns ``(A, triangular)``; raises a ValueError for an indefinite ``cov``.
    """
    try:
        return np.ascontiguousarray(np.linalg.cholesky(cov)), True
    except np.linalg.LinAlgError:
        pass
    w, q = np.linalg.eigh(cov)
    if w[0] < -tol * max(w[-1], 0.0) or (w[-1] <= 0 and w[0] < 0):
        raise ValueError(
            f"{name} must be positive semi-definite; its smallest eigenvalue is "
            f"{w[0]:.3g} (largest {w[-1]:.3g})"
        )
    return np.ascontiguousarray(q * np.sqrt(np.clip(w, 0.0, None))), False


@overload
def multivariate_normal(
    mean: ArrayLike,
    cov: ArrayLike,
    size: SizeLike = None,
    *,
    dtype: type[np.float64] = np.float64,
    out: FloatArray | None = None,
    random_state: RandomStateLike = None,
) -> FloatArray: ...
@overload
def multivariate_normal(
    mean: ArrayLike,
    cov: ArrayLike,
    size: SizeLike = None,
    *,
    dtype: DTypeLike = np.float64,
    out: RealArray | None = None,
    random_state: RandomStateLike = None,
) -> RealArray: ...
def multivariate_normal(
    mean: ArrayLike,
    cov: ArrayLike,
    size: SizeLike = None,
    *,
    dtype: DTypeLike = np.float64,
    out: RealArray | None = None,
    random_state: RandomStateLike = None,
) -> RealArray:
    """Draw from N(mean, cov): ``mean + L z`` with ``L L^T = cov`` and ziggurat z.

    Parameters
    ----------
    mean : array_like, shape (d,)
    cov : array_like, shape (d, d)
        Symmetric positive semi-definite. Factorised once by Cholesky (a singular PSD
        ``cov`` falls back to its eigendecomposition).
    size : None, int or tuple of ints
        Number (shape) of draws; the result has shape ``size + (d,)``.
    dtype : float64 or float32
        float32 values are the float64 draws rounded (no separate float32 path).
    out : numpy.ndarray, optional
        C-contiguous, writeable array of ``dtype`` and shape ``size + (d,)`` to fill.
    random_state : None, int, SeedSequence, BitGenerator, Generator or RandomState
        As in :func:`fastml._validation.check_random_state`.

    Returns
    -------
    numpy.ndarray, shape ``size + (d,)`` (``(d,)`` when size is None)

    Raises
    ------
    TypeError
        A dtype other than float32/float64, ``out`` not an array of ``dtype``.
    ValueError
        Wrong shapes, non-finite entries, non-symmetric or non-PSD ``cov``; ``out``
        of the wrong shape, not C-contiguous or read-only.

    Notes
    -----
    If ``z ~ N(0, I)`` then ``mean + L z ~ N(mean, L L^T)`` (PRML sec. 11.1.1, the
    paragraph after eq. 11.12).

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.sampling import multivariate_normal
    >>> x = multivariate_normal([0, 1], [[1, 0.9], [0.9, 1]], 50_000, random_state=0)
    >>> x.shape, bool(abs(np.corrcoef(x.T)[0, 1] - 0.9) < 0.01)
    ((50000, 2), True)
    """
    mean = check_array(mean, "mean", ndim=1, allow_float32=False)
    d = mean.shape[0]
    cov = _check_cov(cov, d)
    factor, tri = _cov_factor(cov)
    shape = check_size(size)
    arr, _ = _output((*(shape or ()), d), dtype, out)
    rng = check_random_state(random_state)
    factor = np.asfortranarray(factor)
    _fill_float64(
        arr,
        lambda buf: _samplers.multivariate_normal_fill(
            rng.bit_generator, mean, factor, tri, buf.reshape(-1, d)
        ),
    )
    return arr


@overload
def gamma(
    shape: float,
    scale: float = 1.0,
    size: None = None,
    *,
    dtype: type[np.float64] = np.float64,
    out: None = None,
    random_state: RandomStateLike = None,
) -> float: ...
@overload
def gamma(
    shape: float,
    scale: float,
    size: int | tuple[int, ...],
    *,
    dtype: type[np.float64] = np.float64,
    out: FloatArray | None = None,
    random_state: RandomStateLike = None,
) -> FloatArray: ...
@overload
def gamma(
    shape: float,
    scale: float = 1.0,
    *,
    size: int | tuple[int, ...],
    dtype: type[np.float64] = np.float64,
    out: FloatArray | None = None,
    random_state: RandomStateLike = None,
) -> FloatArray: ...
@overload
def gamma(
    shape: float,
    scale: float = 1.0,
    size: SizeLike = None,
    *,
    dtype: DTypeLike = np.float64,
    out: RealArray | None = None,
    random_state: RandomStateLike = None,
) -> float | np.floating[Any] | RealArray: ...
def gamma(
    shape: float,
    scale: float = 1.0,
    size: SizeLike = None,
    *,
    dtype: DTypeLike = np.float64,
    out: RealArray | None = None,
    random_state: RandomStateLike = None,
) -> float | np.floating[Any] | RealArray:
    """Draw Gamma(shape, scale) values (density x^(a-1) e^(-x/scale)).

    Parameters
    ----------
    shape : float
        ``a > 0``, finite.
    scale : float
        ``> 0``, finite.
    size : None, int or tuple of ints
    dtype : float64 or float32
        float32 values are the float64 draws rounded (no separate float32 path).
    out : numpy.ndarray, optional
        C-contiguous, writeable array of ``dtype`` to fill (shape ``size`` if given).
    random_state : None, int, SeedSequence, BitGenerator, Generator or RandomState
        As in :func:`fastml._validation.check_random_state`.

    Returns
    -------
    float or numpy.ndarray

    Raises
    ------
    TypeError
        Non-real ``shape``/``scale``, a dtype other than float32/float64, ``out`` not
        an array of ``dtype``, a bad ``random_state``.
    ValueError
        ``shape`` or ``scale`` not finite and > 0; ``out`` of the wrong shape, not
        C-contiguous or read-only.

    Notes
    -----
    Marsaglia & Tsang's squeeze-rejection method on fastml's ziggurat normals: with
    ``d = a - 1/3``, ``c = 1/sqrt(9d)``, ``x ~ N(0,1)``, ``v = (1 + c x)^3``, accept
    ``d v`` if ``u < 1 - 0.0331 x^4`` or ``log u < x^2/2 + d(1 - v + log v)``. For
    ``a < 1``, ``G(a) = G(a + 1) U^(1/a)``.

    References
    ----------
    G. Marsaglia, W. W. Tsang, "A Simple Method for Generating Gamma Variables", ACM
    TOMS 26(3), 2000.

    Examples
    --------
    >>> from fastml.sampling import gamma
    >>> bool(abs(gamma(3.0, 2.0, 100_000, random_state=0).mean() - 6) < 0.1)
    True
    """
    a = check_real(shape, "shape", low=0.0, low_open=True)
    scale = check_real(scale, "scale", low=0.0, low_open=True)
    arr, scalar = _output(size, dtype, out)
    rng = check_random_state(random_state)
    _fill_float64(
        arr,
        lambda buf: _samplers.gamma_fill(rng.bit_generator, a, scale, buf.reshape(-1)),
    )
    return _finish(arr, scalar)


@overload
def dirichlet(
    alpha: ArrayLike,
    size: SizeLike = None,
    *,
    dtype: type[np.float64] = np.float64,
    out: FloatArray | None = None,
    random_state: RandomStateLike = None,
) -> FloatArray: ...
@overload
def dirichlet(
    alpha: ArrayLike,
    size: SizeLike = None,
    *,
    dtype: DTypeLike = np.float64,
    out: RealArray | None = None,
    random_state: RandomStateLike = None,
) -> RealArray: ...
def dirichlet(
    alpha: ArrayLike,
    size: SizeLike = None,
    *,
    dtype: DTypeLike = np.float64,
    out: RealArray | None = None,
    random_state: RandomStateLike = None,
) -> RealArray:
    """Draw Dirichlet(alpha) probability vectors: normalised Gamma(alpha_k) draws.

    Parameters
    ----------
    alpha : array_like, shape (K,)
        Concentrations, finite and > 0.
    size : None, int or tuple of ints
    dtype : float64 or float32
        float32 values are the float64 draws rounded (no separate float32 path).
    out : numpy.ndarray, optional
        C-contiguous, writeable array of ``dtype`` and shape ``size + (K,)`` to fill.
    random_state : None, int, SeedSequence, BitGenerator, Generator or RandomState
        As in :func:`fastml._validation.check_random_state`.

    Returns
    -------
    numpy.ndarray, shape ``size + (K,)``

    Raises
    ------
    TypeError
        A dtype other than float32/float64, ``out`` not an array of ``dtype``.
    ValueError
        ``alpha`` not 1-d, empty, non-finite or not > 0; ``out`` of the wrong shape,
        not C-contiguous or read-only.

    Notes
    -----
    If ``G_k ~ Gamma(alpha_k, 1)`` independently, ``G / sum(G) ~ Dir(alpha)``
    (PRML sec. 2.2.1, eq. 2.38). Components with ``alpha_k < 1`` are drawn as logs and
    normalised by log-sum-exp, so small alphas never give a 0/0 row.

    Examples
    --------
    >>> from fastml.sampling import dirichlet
    >>> p = dirichlet([1.0, 2.0, 3.0], 10_000, random_state=0)
    >>> p.shape, bool(abs(p.sum(axis=1) - 1).max() < 1e-12)
    ((10000, 3), True)
    """
    alpha = check_array(alpha, "alpha", ndim=1, allow_float32=False)
    if (alpha <= 0).any():
        k = int(np.argmax(alpha <= 0))
        raise ValueError(f"alpha must be > 0; alpha[{k}] = {alpha[k]}")
    shape = check_size(size)
    k = alpha.shape[0]
    arr, _ = _output((*(shape or ()), k), dtype, out)
    rng = check_random_state(random_state)
    _fill_float64(
        arr,
        lambda buf: _samplers.dirichlet_fill(
            rng.bit_generator, alpha, buf.reshape(-1, k)
        ),
    )
    return arr


def _uniform_open(rng: np.random.Generator, n: int) -> np.ndarray:
    u = np.empty(n)
    _samplers.uniform_open_fill(rng.bit_generator, u)
    return u


@overload
def inverse_cdf(
    ppf: Callable[[FloatArray], ArrayLike],
    size: None = None,
    *,
    random_state: RandomStateLike = None,
) -> Any: ...
@overload
def inverse_cdf(
    ppf: Callable[[FloatArray], ArrayLike],
    size: int | tuple[int, ...],
    *,
    random_state: RandomStateLike = None,
) -> NDArray[Any]: ...
def inverse_cdf(
    ppf: Callable[[FloatArray], ArrayLike],
    size: SizeLike = None,
    *,
    random_state: RandomStateLike = None,
) -> Any:
    """Inverse-transform sampling: ``ppf(U)`` with ``U ~ U(0, 1)``.

    Parameters
    ----------
    ppf : callable
        A vectorised inverse CDF (quantile function), e.g. a frozen
        ``scipy.stats`` distribution's ``.ppf``. Called once with a float64 array.
    size : None, int or tuple of ints
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    float or numpy.ndarray

    Raises
    ------
    TypeError
        ``ppf`` not callable.
    ValueError
        ``ppf`` returning the wrong shape or NaN.

    Notes
    -----
    If ``U`` is uniform then ``F^{-1}(U)`` has CDF ``F`` (PRML sec. 11.1.1, eq. 11.6).
    ``U = (m + 1/2) 2^-53`` for a 53-bit integer ``m``, so it is never 0 or 1.

    Examples
    --------
    >>> from scipy import stats
    >>> from fastml.sampling import inverse_cdf
    >>> x = inverse_cdf(stats.expon(scale=2).ppf, 100_000, random_state=0)
    >>> bool(abs(x.mean() - 2) < 0.05)
    True
    """
    if not callable(ppf):
        raise TypeError(f"ppf must be callable, got {type(ppf).__name__}")
    shape = check_size(size)
    rng = check_random_state(random_state)
    n = 1 if shape is None else int(np.prod(shape, dtype=np.int64))
    u = _uniform_open(rng, n)
    x = as_ndarray(ppf(u), "ppf(u)")
    if x.shape != u.shape:
        raise ValueError(
            f"ppf must be vectorised: ppf(u) for u of shape {u.shape} returned shape "
            f"{x.shape}"
        )
    if np.isnan(x).any():
        i = int(np.argmax(np.isnan(x)))
        raise ValueError(f"ppf returned NaN at u = {u[i]!r}")
    return x[0] if shape is None else x.reshape(shape)
