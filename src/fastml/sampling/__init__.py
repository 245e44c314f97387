"""Sampling: direct samplers, generic Monte Carlo and MCMC on numpy's bit generators.

Every function takes ``random_state`` (None, an int seed or a
:class:`numpy.random.Generator`) and draws from that Generator's bit generator through
numpy's C API while holding ``bit_generator.lock``: the same seed gives the same bits,
and drawing advances the caller's Generator exactly as far as the draws went.

Direct samplers (compiled, GIL released): :func:`standard_normal` (ziggurat,
Box-Muller, polar; float64 and float32), :func:`standard_exponential`, :func:`normal`,
:func:`exponential`, :func:`multivariate_normal`, :func:`gamma`, :func:`dirichlet`,
:func:`inverse_cdf`, :func:`categorical` / :class:`AliasTable`.

Generic Monte Carlo: :func:`rejection_sample`, :func:`importance_sample`.

MCMC: :func:`metropolis_hastings`, :func:`gibbs_sampler`, :func:`hmc`, on a compiled
:class:`MultivariateNormal` target or any object with ``log_prob`` (and
``grad_log_prob`` for HMC); results in :class:`MCMCResult`.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from fastml._kernels import _mcmc, _samplers
from fastml._validation import (
    as_ndarray,
    check_array,
    check_int,
    check_random_state,
    check_real,
)

__all__ = [
    "AliasTable",
    "ImportanceResult",
    "MCMCResult",
    "MultivariateNormal",
    "RejectionResult",
    "categorical",
    "dirichlet",
    "exponential",
    "gamma",
    "gibbs_sampler",
    "hmc",
    "importance_sample",
    "inverse_cdf",
    "metropolis_hastings",
    "multivariate_normal",
    "normal",
    "rejection_sample",
    "standard_exponential",
    "standard_normal",
]

_NORMAL_METHODS = {"ziggurat": 0, "box-muller": 1, "polar": 2}
_EXP_METHODS = {"ziggurat": 0, "inversion": 1}
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# ---- argument checks ---------------------------------------------------------------


def _check_size(size, name: str = "size") -> tuple[int, ...] | None:
    """``None`` or a shape tuple of non-negative ints (an int is a 1-d shape)."""
    if size is None:
        return None
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


def _check_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in _FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _check_method(method, methods: dict[str, int]) -> int:
    if method not in methods:
        raise ValueError(f"method must be one of {sorted(methods)}, got {method!r}")
    return methods[method]


def _output(size, dtype, out) -> tuple[np.ndarray, bool]:
    """The array to fill (flat view) and whether the caller wants a scalar back."""
    shape = _check_size(size)
    dt = _check_dtype(dtype)
    if out is None:
        scalar = shape is None
        return np.empty(() if scalar else shape, dtype=dt), scalar
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dt:
        raise TypeError(
            f"out must have dtype {dt} (the dtype argument), got {out.dtype}"
        )
    if shape is not None and out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, but size asks for {shape}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    return out, False


def _finish(arr: np.ndarray, scalar: bool):
    return arr.dtype.type(arr[()]) if scalar else arr


def _param(x, name: str, *, nonneg: bool = False, positive: bool = False):
    """A finite float or float64 array parameter (scale-like when nonneg/positive)."""
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


# ---- normal and exponential --------------------------------------------------------


def standard_normal(
    size=None, *, method="ziggurat", dtype=np.float64, out=None, random_state=None
):
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


def standard_exponential(
    size=None, *, method="ziggurat", dtype=np.float64, out=None, random_state=None
):
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
    shape = _check_size(size)
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


def normal(
    loc=0.0,
    scale=1.0,
    size=None,
    *,
    method="ziggurat",
    dtype=np.float64,
    out=None,
    random_state=None,
):
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
    loc = _param(loc, "loc")
    scale = _param(scale, "scale", nonneg=True)
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


def exponential(
    scale=1.0,
    size=None,
    *,
    method="ziggurat",
    dtype=np.float64,
    out=None,
    random_state=None,
):
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
    scale = _param(scale, "scale", nonneg=True)
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


# ---- multivariate normal -----------------------------------------------------------


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


def multivariate_normal(mean, cov, size=None, *, random_state=None):
    """Draw from N(mean, cov): ``mean + L z`` with ``L L^T = cov`` and ziggurat z.

    Parameters
    ----------
    mean : array_like, shape (d,)
    cov : array_like, shape (d, d)
        Symmetric positive semi-definite. Factorised once by Cholesky (a singular PSD
        ``cov`` falls back to its eigendecomposition).
    size : None, int or tuple of ints
        Number (shape) of draws; the result has shape ``size + (d,)``.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    numpy.ndarray, shape ``size + (d,)`` (``(d,)`` when size is None)

    Raises
    ------
    ValueError
        Wrong shapes, non-finite entries, non-symmetric or non-PSD ``cov``.

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
    shape = _check_size(size)
    rng = check_random_state(random_state)
    n = 1 if shape is None else int(np.prod(shape, dtype=np.int64))
    out = np.empty((n, d))
    _samplers.multivariate_normal_fill(
        rng.bit_generator, mean, np.asfortranarray(factor), tri, out
    )
    return out[0] if shape is None else out.reshape((*shape, d))


# ---- gamma, Dirichlet --------------------------------------------------------------


def gamma(shape, scale=1.0, size=None, *, random_state=None):
    """Draw Gamma(shape, scale) values (density x^(a-1) e^(-x/scale)).

    Parameters
    ----------
    shape : float
        ``a > 0``, finite.
    scale : float
        ``> 0``, finite.
    size : None, int or tuple of ints
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    float or numpy.ndarray (float64)

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
    shp = _check_size(size)
    rng = check_random_state(random_state)
    arr = np.empty(() if shp is None else shp)
    _samplers.gamma_fill(rng.bit_generator, a, scale, arr.reshape(-1))
    return float(arr) if shp is None else arr


def dirichlet(alpha, size=None, *, random_state=None):
    """Draw Dirichlet(alpha) probability vectors: normalised Gamma(alpha_k) draws.

    Parameters
    ----------
    alpha : array_like, shape (K,)
        Concentrations, finite and > 0.
    size : None, int or tuple of ints
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    numpy.ndarray, shape ``size + (K,)``

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
    shape = _check_size(size)
    rng = check_random_state(random_state)
    n = 1 if shape is None else int(np.prod(shape, dtype=np.int64))
    out = np.empty((n, alpha.shape[0]))
    _samplers.dirichlet_fill(rng.bit_generator, alpha, out)
    return out[0] if shape is None else out.reshape((*shape, alpha.shape[0]))


# ---- inverse CDF and categorical ---------------------------------------------------


def _uniform_open(rng: np.random.Generator, n: int) -> np.ndarray:
    u = np.empty(n)
    _samplers.uniform_open_fill(rng.bit_generator, u)
    return u


def inverse_cdf(ppf, size=None, *, random_state=None):
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
    shape = _check_size(size)
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


class AliasTable:
    """Walker's alias table (Vose's construction) for O(1) categorical draws.

    Parameters
    ----------
    p : array_like, shape (K,)
        Probabilities: finite, non-negative, summing to 1 within ``atol``.
    atol : float, default 1e-8
        Tolerance on ``|sum(p) - 1|``; ``p`` is then divided by its sum.

    Attributes
    ----------
    p : numpy.ndarray
        The normalised probabilities.
    prob : numpy.ndarray
        ``prob[i]``: probability of keeping column ``i`` (else take ``alias[i]``).
    alias : numpy.ndarray of int64

    Notes
    -----
    Column ``i`` of ``K`` equal-width columns holds mass ``prob[i]/K`` of outcome ``i``
    and ``(1 - prob[i])/K`` of ``alias[i]``, so ``p_k = (prob[k] + sum_{i: alias[i]=k}
    (1 - prob[i])) / K`` (:meth:`probabilities`). Built in O(K) by Vose's algorithm;
    a draw uses one 53-bit uniform: the column from its integer part times K, the
    choice from the fraction.

    References
    ----------
    A. J. Walker, "An Efficient Method for Generating Discrete Random Variables with
    General Distributions", ACM TOMS 3(3), 1977. M. D. Vose, "A Linear Algorithm for
    Generating Random Numbers with a Given Distribution", IEEE TSE 17(9), 1991.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.sampling import AliasTable
    >>> t = AliasTable([0.5, 0.25, 0.25])
    >>> np.allclose(t.probabilities(), [0.5, 0.25, 0.25])
    True
    >>> t.sample(5, random_state=0).shape
    (5,)
    """

    def __init__(self, p, atol: float = 1e-8):
        p = check_array(p, "p", ndim=1, allow_float32=False)
        atol = check_real(atol, "atol", low=0.0)
        if (p < 0).any():
            k = int(np.argmax(p < 0))
            raise ValueError(f"p must be non-negative; p[{k}] = {p[k]}")
        total = float(p.sum())
        if not abs(total - 1.0) <= atol:
            raise ValueError(f"p must sum to 1 (sums to {total:.10g}, atol={atol:g})")
        if p.shape[0] >= 2**31:
            raise ValueError(f"p has {p.shape[0]} categories; at most 2**31 - 1")
        self.p = p / total
        k = self.p.shape[0]
        self.prob = np.empty(k)
        self.alias = np.empty(k, dtype=np.int64)
        _samplers.alias_build(self.p, self.prob, self.alias, np.empty(k, np.int64))

    @property
    def n_categories(self) -> int:
        return self.p.shape[0]

    def probabilities(self) -> np.ndarray:
        """The distribution the table encodes, reconstructed from ``prob``/``alias``."""
        k = self.n_categories
        mass = self.prob.copy()
        np.add.at(mass, self.alias, 1.0 - self.prob)
        return mass / k

    def sample(self, size=None, *, random_state=None):
        """Draw category indices (int64) in O(1) each; shape ``size``."""
        shape = _check_size(size)
        rng = check_random_state(random_state)
        out = np.empty(() if shape is None else shape, dtype=np.int64)
        _samplers.alias_draw(rng.bit_generator, self.prob, self.alias, out.reshape(-1))
        return int(out) if shape is None else out

    def __repr__(self) -> str:
        return f"AliasTable(n_categories={self.n_categories})"


def categorical(p, size=None, *, random_state=None):
    """Draw category indices with probabilities ``p`` (Walker/Vose alias method).

    Parameters
    ----------
    p : array_like of shape (K,) or AliasTable
        Probabilities summing to 1 (within 1e-8), or a prebuilt table to reuse.
    size : None, int or tuple of ints
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    int or numpy.ndarray of int64

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.sampling import categorical
    >>> c = categorical([0.2, 0.8], 100_000, random_state=0)
    >>> bool(abs((c == 1).mean() - 0.8) < 0.01)
    True
    """
    table = p if isinstance(p, AliasTable) else AliasTable(p)
    return table.sample(size, random_state=random_state)


# ---- generic Monte Carlo ------------------------------------------------------------


class RejectionResult(NamedTuple):
    """Output of :func:`rejection_sample`."""

    samples: np.ndarray
    """Accepted draws, shape ``(size,) + event_shape``."""
    acceptance_rate: float
    """Accepted / proposed."""
    n_proposed: int


class ImportanceResult(NamedTuple):
    """Output of :func:`importance_sample`."""

    estimate: float | np.ndarray
    """The estimate of E_p[f]."""
    stderr: float | np.ndarray
    """Its standard error (delta method when self-normalised)."""
    weights: np.ndarray
    """Normalised importance weights (sum to 1), shape (size,)."""
    ess: float
    """Effective sample size ``1 / sum w_i^2`` of the normalised weights."""


def _check_proposal(proposal) -> None:
    for attr in ("rvs", "logpdf"):
        if not callable(getattr(proposal, attr, None)):
            raise TypeError(
                "proposal must have rvs(size, random_state) and logpdf(x) methods "
                f"(e.g. a frozen scipy.stats distribution); {type(proposal).__name__} "
                f"has no {attr}"
            )


def _batch_eval(fn, z: np.ndarray, n: int, name: str) -> np.ndarray:
    out = np.asarray(fn(z), dtype=float)
    if out.shape != (n,):
        raise ValueError(
            f"{name} must be vectorised: for {n} points (shape {z.shape}) it returned "
            f"shape {out.shape}, expected ({n},)"
        )
    if np.isnan(out).any():
        i = int(np.argmax(np.isnan(out)))
        raise ValueError(f"{name} returned NaN at z = {z[i]}")
    return out


def _propose(proposal, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(proposal.rvs(size=n, random_state=rng))
    if z.ndim == 0 or z.shape[0] != n:
        raise ValueError(
            f"proposal.rvs(size={n}) must return {n} draws along axis 0, got shape "
            f"{z.shape}"
        )
    return z, _batch_eval(proposal.logpdf, z, n, "proposal.logpdf")


def rejection_sample(
    log_target, proposal, log_k, size, random_state=None, *, max_tries=None
) -> RejectionResult:
    """Envelope rejection sampling from an unnormalised density ``p~``.

    Parameters
    ----------
    log_target : callable
        Vectorised ``log p~(z)``: called with a batch of proposals (axis 0), returns one
        value per proposal.
    proposal : object
        ``rvs(size, random_state)`` and ``logpdf(x)``, e.g. a frozen ``scipy.stats``
        distribution.
    log_k : float
        ``log k`` of the envelope ``k q(z) >= p~(z)`` for all z.
    size : int
        Number of samples wanted, >= 1.
    random_state : None, int or numpy.random.Generator
        Passed to ``proposal.rvs``; the acceptance uniforms come from the same
        Generator (through the C API).
    max_tries : int, optional
        Give up after this many proposals (default ``1000 * size + 10000``).

    Returns
    -------
    RejectionResult
        ``samples``, ``acceptance_rate``, ``n_proposed``.

    Raises
    ------
    ValueError
        A violated envelope: ``p~(z) > k q(z)`` at a proposed point (the message gives
        z and by how much; raise ``log_k``). Non-finite ``log_k``, bad shapes, NaN
        densities.
    RuntimeError
        Fewer than ``size`` acceptances within ``max_tries`` proposals.

    Notes
    -----
    PRML sec. 11.1.2: draw ``z ~ q``, ``u ~ U(0, k q(z))``, keep z when ``u <= p~(z)``;
    here in logs: ``log U < log p~(z) - log k - log q(z)``. The acceptance rate
    estimates ``int p~ / k`` (eq. 11.14 with normalised q).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import stats
    >>> from fastml.sampling import rejection_sample
    >>> log_k = np.log(2 * np.pi) - 0.5   # sup of exp(-z^2/2) / Cauchy pdf
    >>> r = rejection_sample(lambda z: -0.5 * z**2, stats.cauchy(), log_k, 10_000,
    ...                      random_state=0)
    >>> r.samples.shape, bool(abs(r.acceptance_rate - 0.6577) < 0.02)
    ((10000,), True)
    """
    if not callable(log_target):
        raise TypeError(f"log_target must be callable, got {type(log_target).__name__}")
    _check_proposal(proposal)
    log_k = check_real(log_k, "log_k")
    size = check_int(size, "size", low=1)
    if max_tries is None:
        max_tries = 1000 * size + 10_000
    max_tries = check_int(max_tries, "max_tries", low=1)
    rng = check_random_state(random_state)
    kept: list[np.ndarray] = []
    n_acc = n_prop = 0
    rate = 1.0
    while n_acc < size:
        if n_prop >= max_tries:
            raise RuntimeError(
                f"rejection_sample accepted {n_acc} of {n_prop} proposals (max_tries="
                f"{max_tries}) before reaching size={size}: the envelope is too loose "
                f"(lower log_k) or the proposal misses the target"
            )
        b = int(min(max_tries - n_prop, max(64, 1.2 * (size - n_acc) / rate)))
        z, lq = _propose(proposal, b, rng)
        lp = _batch_eval(log_target, z, b, "log_target")
        with np.errstate(invalid="ignore"):
            excess = lp - (log_k + lq)
        excess[np.isnan(excess)] = -np.inf  # p~ = q = 0: never proposed in practice
        worst = int(np.argmax(excess))
        if excess[worst] > 1e-9 * max(1.0, abs(lp[worst])):
            raise ValueError(
                f"envelope violated: p~(z) > k q(z) at z = {z[worst]} "
                f"(log p~(z) - log k q(z) = {excess[worst]:.4g}); increase log_k to "
                f"at least {log_k + excess[worst]:.6g}"
            )
        u = _uniform_open(rng, b)
        acc = np.log(u) < excess
        kept.append(z[acc])
        n_acc += int(acc.sum())
        n_prop += b
        rate = max(n_acc / n_prop, 1e-3)
    samples = np.concatenate(kept)[:size]
    return RejectionResult(samples, n_acc / n_prop, n_prop)


def importance_sample(
    f, log_target, proposal, size, random_state=None, *, self_normalized=True
) -> ImportanceResult:
    """Importance-sampling estimate of ``E_p[f(z)]`` with draws from ``proposal``.

    Parameters
    ----------
    f : callable
        Vectorised integrand: for a batch z (axis 0) returns shape (size,) or
        (size, k).
    log_target : callable
        Vectorised ``log p(z)``; unnormalised is fine when ``self_normalized``.
    proposal : object
        ``rvs(size, random_state)`` and ``logpdf(x)`` (a frozen ``scipy.stats``
        distribution qualifies).
    size : int
        Number of proposals, >= 2.
    random_state : None, int or numpy.random.Generator
    self_normalized : bool, default True
        Weights ``w_i / sum w`` (PRML eqs. 11.22-11.23, p may be unnormalised).
        Otherwise ``mean(w f)`` with ``w = p / q`` (eq. 11.19, p normalised).

    Returns
    -------
    ImportanceResult
        ``estimate``, ``stderr``, normalised ``weights`` and their ``ess``.

    Notes
    -----
    Self-normalised standard error by the delta method,
    ``sqrt(sum_i wbar_i^2 (f_i - estimate)^2)``; ESS ``= 1 / sum_i wbar_i^2``
    (Kong 1992).

    Examples
    --------
    >>> from scipy import stats
    >>> from fastml.sampling import importance_sample
    >>> r = importance_sample(lambda z: z**2, lambda z: -0.5 * z**2, stats.norm(0, 2),
    ...                       100_000, random_state=0)
    >>> bool(abs(r.estimate - 1) < 5 * r.stderr)
    True
    """
    for name, fn in (("f", f), ("log_target", log_target)):
        if not callable(fn):
            raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    _check_proposal(proposal)
    size = check_int(size, "size", low=2)
    rng = check_random_state(random_state)
    z, lq = _propose(proposal, size, rng)
    lp = _batch_eval(log_target, z, size, "log_target")
    fz = np.asarray(f(z), dtype=float)
    if fz.ndim not in (1, 2) or fz.shape[0] != size:
        raise ValueError(
            f"f must be vectorised: returned shape {fz.shape}, expected ({size},) or "
            f"({size}, k)"
        )
    if not np.isfinite(fz).all():
        raise ValueError("f returned a non-finite value")
    if np.isposinf(lp).any():
        raise ValueError("log_target returned +inf")
    logw = lp - lq
    logw[np.isnan(logw)] = -np.inf
    top = logw.max()
    if not np.isfinite(top):
        raise ValueError(
            "all importance weights are zero (or infinite): the proposal does not "
            "cover the target"
        )
    w = np.exp(logw - top)
    wbar = w / w.sum()
    ess = float(1.0 / np.sum(wbar * wbar))
    wcol = wbar if fz.ndim == 1 else wbar[:, None]
    if self_normalized:
        est = np.sum(wcol * fz, axis=0)
        se = np.sqrt(np.sum(wcol * wcol * (fz - est) ** 2, axis=0))
    else:
        wf = np.exp(logw)[:, None] * fz if fz.ndim == 2 else np.exp(logw) * fz
        est = wf.mean(axis=0)
        se = wf.std(axis=0, ddof=1) / np.sqrt(size)
    if fz.ndim == 1:
        est, se = float(est), float(se)
    return ImportanceResult(est, se, wbar, ess)


# ---- MCMC -------------------------------------------------------------------------


class MultivariateNormal:
    """Gaussian target N(mean, cov) whose log density and gradient run in compiled code.

    Passed to :func:`metropolis_hastings`, :func:`hmc` or :func:`gibbs_sampler`, the whole
    chain runs in Cython with no Python call per step. The Python methods below evaluate
    the same density (for checks and for the generic samplers).

    Parameters
    ----------
    mean : array_like, shape (d,)
    cov : array_like, shape (d, d)
        Symmetric positive definite.

    Attributes
    ----------
    dim : int
    chol : numpy.ndarray
        Lower Cholesky factor ``L`` of ``cov``.
    whiten : numpy.ndarray
        ``L^{-1}`` (lower triangular).
    precision : numpy.ndarray
        ``cov^{-1} = L^{-T} L^{-1}``.

    Examples
    --------
    >>> from fastml.sampling import MultivariateNormal
    >>> t = MultivariateNormal([0.0, 0.0], [[1.0, 0.5], [0.5, 2.0]])
    >>> round(float(t.log_prob([0.0, 0.0])), 6)
    -2.117685
    """

    def __init__(self, mean, cov):
        self.mean = check_array(mean, "mean", ndim=1, allow_float32=False)
        d = self.mean.shape[0]
        self.cov = _check_cov(cov, d)
        try:
            self.chol = np.linalg.cholesky(self.cov)
        except np.linalg.LinAlgError:
            w = np.linalg.eigvalsh(self.cov)
            raise ValueError(
                f"cov must be positive definite for a MultivariateNormal target; its "
                f"smallest eigenvalue is {w[0]:.3g}"
            ) from None
        from scipy.linalg import solve_triangular

        self.whiten = np.ascontiguousarray(
            solve_triangular(self.chol, np.eye(d), lower=True)
        )
        self.precision = np.ascontiguousarray(self.whiten.T @ self.whiten)
        self._whiten_f = np.asfortranarray(np.tril(self.whiten))  # kernels: Fortran
        self._log_norm = -0.5 * d * np.log(2 * np.pi) - np.log(np.diag(self.chol)).sum()

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    def log_prob(self, x):
        """log N(x | mean, cov) (PRML eq. 2.43), vectorised over leading axes."""
        r = (np.asarray(x, dtype=float) - self.mean) @ self.whiten.T
        return self._log_norm - 0.5 * np.sum(r * r, axis=-1)

    def grad_log_prob(self, x):
        """Gradient ``-cov^{-1} (x - mean)``."""
        return -(np.asarray(x, dtype=float) - self.mean) @ self.precision

    def __repr__(self) -> str:
        return f"MultivariateNormal(dim={self.dim})"


class MCMCResult:
    """Samples of one or more Markov chains and their diagnostics.

    Attributes
    ----------
    samples : numpy.ndarray, shape (n_chains, n_samples, d)
    acceptance_rate : numpy.ndarray, shape (n_chains,)
        Fraction of accepted proposals after burn-in (1 for Gibbs).
    method : str
    """

    def __init__(self, samples: np.ndarray, acceptance_rate: np.ndarray, method: str):
        self.samples = samples
        self.acceptance_rate = acceptance_rate
        self.method = method

    @property
    def n_chains(self) -> int:
        return self.samples.shape[0]

    @property
    def n_samples(self) -> int:
        return self.samples.shape[1]

    def flat(self) -> np.ndarray:
        """All chains' samples stacked, shape (n_chains * n_samples, d)."""
        return self.samples.reshape(-1, self.samples.shape[2])

    def effective_sample_size(self) -> np.ndarray:
        """Effective sample size per dimension, over all chains, shape (d,).

        Notes
        -----
        Autocorrelations ``rho_t`` come from each chain's FFT autocovariance, combined
        across chains as in Stan (``rho_t = 1 - (W - mean_c acov_{c,t}) / var+``, with
        ``W`` the mean within-chain variance and ``var+`` the pooled variance estimate;
        for one chain ``rho_t = acov_t / acov_0``). Geyer's initial positive sequence:
        sum pairs ``rho_{2k} + rho_{2k+1}`` while positive, made monotone, then
        ``ESS = M N / (-1 + 2 sum_k P_k)``.

        References
        ----------
        C. J. Geyer, "Practical Markov Chain Monte Carlo", Statistical Science 7(4),
        1992. A. Gelman et al., Bayesian Data Analysis, 3rd ed., sec. 11.5.
        """
        return _ess(self.samples)

    def rhat(self) -> np.ndarray:
        """Split R-hat per dimension (Gelman et al., BDA3 sec. 11.4), shape (d,).

        Each chain is split into halves; with ``B`` and ``W`` the between- and
        within-half variances of the 2M half-chains of length n,
        ``R = sqrt(((n - 1)/n W + B/n) / W)``. Needs ``n_chains > 1``.
        """
        if self.n_chains < 2:
            raise ValueError("rhat needs n_chains > 1 (run with n_chains=2 or more)")
        return _split_rhat(self.samples)

    def __repr__(self) -> str:
        m, n, d = self.samples.shape
        return (
            f"MCMCResult(method={self.method!r}, n_chains={m}, n_samples={n}, dim={d}, "
            f"acceptance_rate={np.round(self.acceptance_rate, 3).tolist()})"
        )


def _autocov(x: np.ndarray) -> np.ndarray:
    """Autocovariance along axis -2 of (..., n, d) arrays, lags 0..n-1 (biased, /n)."""
    n = x.shape[-2]
    xc = x - x.mean(axis=-2, keepdims=True)
    m = 1 << int(2 * n - 1).bit_length()
    f = np.fft.rfft(xc, n=m, axis=-2)
    ac = np.fft.irfft(f * np.conj(f), n=m, axis=-2)[..., :n, :]
    return ac / n


def _ess(samples: np.ndarray) -> np.ndarray:
    m, n, d = samples.shape
    if n < 4:
        return np.full(d, float(m * n))
    acov = _autocov(samples)  # (m, n, d)
    chain_var = acov[:, 0, :] * n / (n - 1)
    w = chain_var.mean(axis=0)
    var_plus = w * (n - 1) / n
    if m > 1:
        var_plus = var_plus + samples.mean(axis=1).var(axis=0, ddof=1)
    ess = np.empty(d)
    for k in range(d):
        if not var_plus[k] > 0:
            ess[k] = float(m * n)
            continue
        rho = 1.0 - (w[k] - acov[:, :, k].mean(axis=0)) / var_plus[k]
        rho[0] = 1.0
        n_pairs = n // 2
        pairs = rho[: 2 * n_pairs].reshape(n_pairs, 2).sum(axis=1)
        neg = np.nonzero(pairs <= 0)[0]
        pairs = pairs[: neg[0]] if neg.size else pairs
        pairs = np.minimum.accumulate(pairs)  # initial monotone sequence
        tau = -1.0 + 2.0 * pairs.sum()
        ess[k] = m * n / max(tau, 1.0 / np.log10(m * n + 10.0))
    return ess


def _split_rhat(samples: np.ndarray) -> np.ndarray:
    n = samples.shape[1]
    half = n // 2
    if half < 2:
        raise ValueError(f"rhat needs at least 4 samples per chain, got {n}")
    chains = np.concatenate([samples[:, :half], samples[:, n - half :]], axis=0)
    means = chains.mean(axis=1)
    w = chains.var(axis=1, ddof=1).mean(axis=0)
    b = half * means.var(axis=0, ddof=1)
    var_plus = (half - 1) / half * w + b / half
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(var_plus / w)


# -- argument handling shared by the samplers --


def _chain_setup(x0, n_samples, burn_in, thin, n_chains, dim: int | None):
    n_samples = check_int(n_samples, "n_samples", low=1)
    burn_in = check_int(burn_in, "burn_in", low=0)
    thin = check_int(thin, "thin", low=1)
    n_chains = check_int(n_chains, "n_chains", low=1)
    x0 = check_array(x0, "x0", ndim=(1, 2), allow_float32=False)
    if dim is not None and x0.shape[-1] != dim:
        raise ValueError(
            f"x0 must have dimension {dim} (the target's), got shape {x0.shape}"
        )
    if x0.ndim == 2 and x0.shape[0] != n_chains:
        raise ValueError(
            f"x0 of shape {x0.shape} must be (d,) or (n_chains={n_chains}, d)"
        )
    x0 = np.ascontiguousarray(np.broadcast_to(x0, (n_chains, x0.shape[-1])), float)
    return x0, n_samples, burn_in, thin, n_chains


def _chain_rngs(random_state, n_chains: int) -> list[np.random.Generator]:
    """Independent child streams, one per chain (Generator.spawn)."""
    rng = check_random_state(random_state)
    return rng.spawn(n_chains)


def _run_chains(run_one, n_chains: int, n_jobs) -> list:
    """Run ``run_one(c)`` for every chain; threads when ``n_jobs > 1`` (the kernels
    release the GIL). Results do not depend on n_jobs: each chain owns its stream."""
    n_jobs = check_int(n_jobs, "n_jobs", low=1)
    if n_jobs == 1 or n_chains == 1:
        return [run_one(c) for c in range(n_chains)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(n_jobs, n_chains)) as pool:
        return list(pool.map(run_one, range(n_chains)))


def _log_prob_fn(target, name: str = "target"):
    if hasattr(target, "log_prob") and callable(target.log_prob):
        return target.log_prob
    if callable(target):
        return target
    raise TypeError(
        f"{name} must be a MultivariateNormal, an object with a log_prob(x) method or "
        f"a callable log_prob(x), got {type(target).__name__}"
    )


def _eval_log_prob(log_prob, x: np.ndarray, where: str) -> float:
    value = log_prob(x.copy())
    arr = np.asarray(value)
    if arr.shape not in ((), (1,)):
        raise ValueError(
            f"log_prob must return a scalar, got an array of shape {arr.shape} {where}"
        )
    try:
        val = float(arr.reshape(()))
    except (TypeError, ValueError):
        raise TypeError(
            f"log_prob must return a real number, got {type(value).__name__} {where}"
        ) from None
    if np.isnan(val) or val == np.inf:
        raise ValueError(f"log_prob returned {val} {where} (x = {x!r})")
    return val


def _eval_grad(grad, x: np.ndarray, d: int, where: str) -> np.ndarray:
    g = np.asarray(grad(x.copy()), dtype=float)
    if g.shape != (d,):
        raise ValueError(
            f"grad_log_prob must return shape ({d},), got {g.shape} {where}"
        )
    if np.isnan(g).any():
        raise ValueError(f"grad_log_prob returned NaN {where} (x = {x!r})")
    return g


def _check_start(log_prob, x0: np.ndarray) -> None:
    for c in range(x0.shape[0]):
        lp = _eval_log_prob(log_prob, x0[c], f"at x0[{c}]")
        if lp == -np.inf:
            raise ValueError(
                f"x0[{c}] has zero target density (log_prob = -inf); start inside "
                f"the support"
            )


_BLOCK = 4096  # iterations of random numbers drawn per draw_block call (generic path)


def metropolis_hastings(
    target,
    x0,
    n_samples,
    *,
    proposal_cov=None,
    step_size=None,
    burn_in=0,
    thin=1,
    n_chains=1,
    n_jobs=1,
    random_state=None,
):
    """Random-walk Metropolis-Hastings with a Gaussian proposal of full covariance.

    Parameters
    ----------
    target : MultivariateNormal, object with ``log_prob(x)``, or callable
        The (unnormalised) log density. A :class:`MultivariateNormal` runs the whole
        chain in compiled code; anything else is called once per step (generic path).
    x0 : array_like, shape (d,) or (n_chains, d)
        Starting point(s), finite, inside the support.
    n_samples : int
        Samples kept per chain (after burn-in and thinning), >= 1.
    proposal_cov : array_like (d, d), optional
        Proposal covariance shape ``C`` (default identity); symmetric positive
        definite.
    step_size : float, optional
        Proposal ``y = x + step_size * L z`` with ``L L^T = C``: proposal covariance
        ``step_size^2 C``. Default ``2.38 / sqrt(d)`` (Roberts, Gelman & Gilks 1997).
    burn_in : int, default 0
        Iterations discarded first.
    thin : int, default 1
        Keep every ``thin``-th iteration.
    n_chains : int, default 1
        Chains with independent streams from ``Generator.spawn``.
    n_jobs : int, default 1
        Threads for the chains (compiled path releases the GIL); results do not depend
        on it.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    MCMCResult

    Raises
    ------
    ValueError
        Bad shapes, ``step_size <= 0``, a non-PD ``proposal_cov``, a ``log_prob``
        returning NaN, +inf or a non-scalar, a start with zero density.

    Notes
    -----
    Per iteration: d ziggurat normals ``z``, then one Exp(1) ziggurat draw ``E``;
    accept ``y`` when ``E > log p(x) - log p(y)``, which is ``log U < log p(y) -
    log p(x)`` for the uniform ``U = exp(-E)``: the Metropolis criterion of PRML
    eq. 11.33 (symmetric proposal, no proposal correction). The generic path draws
    the same numbers in the same order, so both paths give the same chain up to
    rounding in ``log p``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.sampling import MultivariateNormal, metropolis_hastings
    >>> t = MultivariateNormal([1.0, -1.0], [[1.0, 0.8], [0.8, 1.0]])
    >>> r = metropolis_hastings(t, [0.0, 0.0], 20_000, burn_in=1000, random_state=0)
    >>> r.samples.shape, bool(np.abs(r.flat().mean(axis=0) - [1, -1]).max() < 0.1)
    ((1, 20000, 2), True)
    """
    compiled = isinstance(target, MultivariateNormal)
    log_prob = None if compiled else _log_prob_fn(target)
    x0, n_samples, burn_in, thin, n_chains = _chain_setup(
        x0, n_samples, burn_in, thin, n_chains, target.dim if compiled else None
    )
    d = x0.shape[1]
    if step_size is None:
        step_size = 2.38 / np.sqrt(d)
    step_size = check_real(step_size, "step_size", low=0.0, low_open=True)
    if proposal_cov is None:
        chol = np.eye(d)
    else:
        pc = _check_cov(proposal_cov, d, "proposal_cov")
        try:
            chol = np.linalg.cholesky(pc)
        except np.linalg.LinAlgError:
            raise ValueError(
                "proposal_cov must be positive definite (Cholesky failed)"
            ) from None
    prop = np.asfortranarray(step_size * np.tril(chol))  # kernels: column-major
    prop_white = np.asfortranarray(np.tril(target.whiten @ prop)) if compiled else None
    if not compiled:
        _check_start(log_prob, x0)
    rngs = _chain_rngs(random_state, n_chains)
    samples = np.empty((n_chains, n_samples, d))
    total = burn_in + n_samples * thin

    def run_one(c):
        x = x0[c].copy()
        bg = rngs[c].bit_generator
        if compiled:
            return _mcmc.mh_gaussian(
                bg, x, prop, prop_white, target.mean, target._whiten_f, burn_in, thin,
                samples[c],
            )  # fmt: skip
        return _mh_generic(bg, log_prob, x, prop, burn_in, thin, total, samples[c])

    acc = _run_chains(run_one, n_chains, n_jobs)
    return MCMCResult(samples, np.asarray(acc, float) / (n_samples * thin), "mh")


def _mh_generic(bg, log_prob, x, prop, burn_in, thin, total, out) -> int:
    d = x.shape[0]
    lpx = _eval_log_prob(log_prob, x, "at x0")
    acc_n = 0
    s = 0
    t = 0
    while t < total:
        b = min(_BLOCK, total - t)
        z = np.empty((b, d))
        e = np.empty(b)
        _mcmc.draw_block(bg, z, e)
        steps = z @ prop.T
        for k in range(b):
            y = x + steps[k]
            lpy = _eval_log_prob(log_prob, y, f"at iteration {t}")
            if e[k] > lpx - lpy:
                x, lpx = y, lpy
                if t >= burn_in:
                    acc_n += 1
            if t >= burn_in and (t - burn_in) % thin == thin - 1:
                out[s] = x
                s += 1
            t += 1
    return acc_n


def _check_mass(mass, d: int) -> np.ndarray:
    if mass is None:
        return np.ones(d)
    m = np.asarray(mass)
    if m.ndim == 0:
        return np.full(d, check_real(float(m), "mass", low=0.0, low_open=True))
    m = check_array(mass, "mass", ndim=1, allow_float32=False)
    if m.shape != (d,):
        raise ValueError(f"mass must be a scalar or have shape ({d},), got {m.shape}")
    if (m <= 0).any():
        raise ValueError(f"mass must be > 0, got {m[m <= 0][0]}")
    return m


def hmc(
    target,
    x0,
    n_samples,
    *,
    step_size,
    n_leapfrog,
    mass=None,
    grad_log_prob=None,
    burn_in=0,
    thin=1,
    n_chains=1,
    n_jobs=1,
    random_state=None,
):
    """Hamiltonian (hybrid) Monte Carlo: leapfrog dynamics plus a Metropolis correction.

    Parameters
    ----------
    target : MultivariateNormal or object with ``log_prob`` and ``grad_log_prob``
        A :class:`MultivariateNormal` runs the chain in compiled code. Otherwise
        ``target.log_prob(x)`` and ``target.grad_log_prob(x)`` (or a callable target and
        the ``grad_log_prob`` argument) are called from Python.
    x0 : array_like, shape (d,) or (n_chains, d)
    n_samples : int
    step_size : float
        Leapfrog step ``epsilon > 0``.
    n_leapfrog : int
        Leapfrog steps per iteration ``L >= 1``.
    mass : None, float or array_like (d,)
        Diagonal mass matrix (default identity).
    grad_log_prob : callable, optional
        Gradient for a callable ``target``.
    burn_in, thin, n_chains, n_jobs, random_state
        As in :func:`metropolis_hastings`.

    Returns
    -------
    MCMCResult

    Notes
    -----
    PRML sec. 11.5: momentum ``p ~ N(0, M)``, Hamiltonian ``H = E(x) + K(p)`` with
    ``E = -log p(x)`` (eq. 11.57) and ``K = p^T M^{-1} p / 2`` (eq. 11.56); leapfrog
    eqs. 11.64-11.66; accept with probability ``min(1, exp(H - H'))`` (eq. 11.67).
    Per iteration: d ziggurat normals, then one Exp(1) ziggurat draw ``E``; accept
    when ``E > H' - H``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.sampling import MultivariateNormal, hmc
    >>> t = MultivariateNormal([0.0, 0.0], [[1.0, 0.9], [0.9, 1.0]])
    >>> r = hmc(t, [0.0, 0.0], 5000, step_size=0.2, n_leapfrog=10, random_state=0)
    >>> bool(r.acceptance_rate[0] > 0.8)
    True
    """
    compiled = isinstance(target, MultivariateNormal)
    if not compiled:
        log_prob = _log_prob_fn(target)
        grad = grad_log_prob
        if grad is None:
            grad = getattr(target, "grad_log_prob", None)
        if not callable(grad):
            raise TypeError(
                "hmc needs a gradient: pass a target with a grad_log_prob(x) method or "
                "grad_log_prob=callable"
            )
    x0, n_samples, burn_in, thin, n_chains = _chain_setup(
        x0, n_samples, burn_in, thin, n_chains, target.dim if compiled else None
    )
    d = x0.shape[1]
    step_size = check_real(step_size, "step_size", low=0.0, low_open=True)
    n_leapfrog = check_int(n_leapfrog, "n_leapfrog", low=1)
    m = _check_mass(mass, d)
    if not compiled:
        _check_start(log_prob, x0)
    rngs = _chain_rngs(random_state, n_chains)
    samples = np.empty((n_chains, n_samples, d))
    total = burn_in + n_samples * thin

    def run_one(c):
        x = x0[c].copy()
        bg = rngs[c].bit_generator
        if compiled:
            return _mcmc.hmc_gaussian(
                bg,
                x,
                target.mean,
                target.precision,
                m,
                step_size,
                n_leapfrog,
                burn_in,
                thin,
                samples[c],
            )
        return _hmc_generic(
            bg, log_prob, grad, x, m, step_size, n_leapfrog, burn_in, thin, total,
            samples[c],
        )  # fmt: skip

    acc = _run_chains(run_one, n_chains, n_jobs)
    return MCMCResult(samples, np.asarray(acc, float) / (n_samples * thin), "hmc")


def _hmc_generic(
    bg, log_prob, grad, x, m, eps, n_leapfrog, burn_in, thin, total, out
) -> int:
    d = x.shape[0]
    sm = np.sqrt(m)
    lpx = _eval_log_prob(log_prob, x, "at x0")
    g = _eval_grad(grad, x, d, "at x0")
    acc_n = 0
    s = 0
    t = 0
    while t < total:
        b = min(_BLOCK, total - t)
        z = np.empty((b, d))
        e = np.empty(b)
        _mcmc.draw_block(bg, z, e)
        for k in range(b):
            p = sm * z[k]
            h0 = -lpx + 0.5 * np.sum(p * p / m)
            xn = x.copy()
            pn = p + 0.5 * eps * g
            diverged = False
            with np.errstate(over="ignore", invalid="ignore"):
                for step in range(n_leapfrog):
                    xn = xn + eps * pn / m
                    if not np.isfinite(xn).all():
                        diverged = True  # overflowed trajectory: rejected
                        break
                    gn = _eval_grad(grad, xn, d, f"at iteration {t}")
                    if step < n_leapfrog - 1:
                        pn = pn + eps * gn
            if diverged:
                h1 = np.inf
            else:
                pn = pn + 0.5 * eps * gn
                lpn = _eval_log_prob(log_prob, xn, f"at iteration {t}")
                with np.errstate(over="ignore", invalid="ignore"):
                    h1 = -lpn + 0.5 * np.sum(pn * pn / m)
                if not np.isfinite(h1):
                    h1 = np.inf
            if e[k] > h1 - h0:
                x, g, lpx = xn, gn, lpn
                if t >= burn_in:
                    acc_n += 1
            if t >= burn_in and (t - burn_in) % thin == thin - 1:
                out[s] = x
                s += 1
            t += 1
    return acc_n


def gibbs_sampler(
    target,
    x0,
    n_samples,
    *,
    burn_in=0,
    thin=1,
    n_chains=1,
    n_jobs=1,
    random_state=None,
):
    """Systematic-scan Gibbs sampling (PRML sec. 11.3).

    Parameters
    ----------
    target : MultivariateNormal or list of callables
        A :class:`MultivariateNormal`: each coordinate is redrawn from its exact
        Gaussian full conditional, all in compiled code. Or a list of ``d`` full
        conditional samplers ``sample_i(x, rng) -> float`` (``x`` the current state,
        ``rng`` the chain's Generator), applied in order each sweep.
    x0 : array_like, shape (d,) or (n_chains, d)
    n_samples : int
        Sweeps kept per chain.
    burn_in, thin, n_chains, n_jobs, random_state
        As in :func:`metropolis_hastings` (counted in sweeps).

    Returns
    -------
    MCMCResult
        ``acceptance_rate`` is 1 (Gibbs proposals are always accepted, PRML eq. 11.49).

    Notes
    -----
    For N(mu, Lambda^{-1}) the conditional of ``x_i`` is Gaussian with mean
    ``mu_i - Lambda_ii^{-1} sum_{j != i} Lambda_ij (x_j - mu_j)`` and variance
    ``Lambda_ii^{-1}`` (PRML eqs. 2.75, 2.81-2.82 for one coordinate).

    Examples
    --------
    >>> from fastml.sampling import MultivariateNormal, gibbs_sampler
    >>> t = MultivariateNormal([0.0, 0.0], [[1.0, 0.5], [0.5, 1.0]])
    >>> gibbs_sampler(t, [0.0, 0.0], 1000, random_state=0).samples.shape
    (1, 1000, 2)
    """
    compiled = isinstance(target, MultivariateNormal)
    if not compiled:
        if isinstance(target, (list, tuple)) and all(callable(f) for f in target):
            conds = list(target)
        else:
            raise TypeError(
                "target must be a MultivariateNormal or a list of full-conditional "
                f"samplers sample_i(x, rng) -> float, got {type(target).__name__}"
            )
    x0, n_samples, burn_in, thin, n_chains = _chain_setup(
        x0, n_samples, burn_in, thin, n_chains, target.dim if compiled else len(conds)
    )
    d = x0.shape[1]
    rngs = _chain_rngs(random_state, n_chains)
    samples = np.empty((n_chains, n_samples, d))
    total = burn_in + n_samples * thin

    def run_one(c):
        x = x0[c].copy()
        if compiled:
            _mcmc.gibbs_gaussian(
                rngs[c].bit_generator,
                x,
                target.mean,
                target.precision,
                burn_in,
                thin,
                samples[c],
            )
            return 0
        s = 0
        for t in range(total):
            for i, f in enumerate(conds):
                v = np.asarray(f(x.copy(), rngs[c]), dtype=float)
                if v.shape not in ((), (1,)) or not np.isfinite(v).all():
                    raise ValueError(
                        f"full conditional {i} must return a finite scalar, got {v!r} "
                        f"at sweep {t}"
                    )
                x[i] = float(v.reshape(()))
            if t >= burn_in and (t - burn_in) % thin == thin - 1:
                samples[c, s] = x
                s += 1
        return 0

    _run_chains(run_one, n_chains, n_jobs)
    return MCMCResult(samples, np.ones(n_chains), "gibbs")
