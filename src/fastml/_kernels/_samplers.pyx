"""Direct samplers drawing from a numpy bit generator through its C API.

Every kernel takes ``Generator.bit_generator``, holds its lock and releases the GIL
while drawing (``with bit_generator.lock, nogil:``), and consumes raw bits only through
``next_uint64`` / ``next_uint32`` / ``next_double``. Draws are made in output order, one
value after the other, so equal seeds give equal bits and the caller's Generator moves
on by exactly what was consumed.

Fills run in blocks of ``_FILL`` values (an even number, so the pair methods' blocks
end on a pair boundary and give the same bits as one pass) and poll for Ctrl-C between
blocks (``_interrupt.pxd``). On KeyboardInterrupt ``out`` holds the values drawn so far
(a prefix), and the Generator has moved on by exactly the draws made for them.
"""
import math

import numpy as np

from libc.math cimport cosf, exp, log, logf, sinf, sqrt, sqrtf
from libc.stdint cimport int64_t, uint64_t
from numpy.random cimport bitgen_t

from fastml._kernels._bitgen cimport get_bitgen
from fastml._kernels._interrupt cimport POLL_WORK, poll
from fastml._kernels._types cimport idx_t, real
from fastml.random cimport (
    fastml_gamma_fill, fastml_gamma_mt, fastml_next_double as next_double,
    fastml_next_float as next_float, fastml_open_double as open_double,
    fastml_open_float as open_float, fastml_standard_exponential as exp_zig,
    fastml_standard_exponential_f as exp_zig_f, fastml_standard_normal as normal_zig,
    fastml_standard_normal_f as normal_zig_f,
)

cdef double _TWO_PI = 6.283185307179586
cdef double _PI_4 = 0.7853981633974483
cdef idx_t _FILL = 1 << 16   # values per block between two Ctrl-C polls (even)


# ---- normal ------------------------------------------------------------------------

# Taylor coefficients (-1)^k / (2k)! and (-1)^k / (2k+1)!, k = 0..8, filled at import.
cdef double _COS_C[9]
cdef double _SIN_C[9]
for _k in range(9):
    _COS_C[_k] = (-1.0) ** _k / math.factorial(2 * _k)
    _SIN_C[_k] = (-1.0) ** _k / math.factorial(2 * _k + 1)


cdef inline void _sincos_octant(double t, double *c, double *s) noexcept nogil:
    """cos t and sin t for 0 <= t < pi/4 by their Taylor series, Horner in t^2.

    Truncation after t^16/16! (cos) and t^17/17! (sin): the first omitted terms are
    below (pi/4)^18/18! = 2e-18 and (pi/4)^19/19! = 8e-20, under half an ulp.
    """
    cdef double t2 = t * t
    cdef double pc = _COS_C[8], ps = _SIN_C[8]
    cdef int k
    for k in range(7, -1, -1):
        pc = pc * t2 + _COS_C[k]
        ps = ps * t2 + _SIN_C[k]
    c[0] = pc
    s[0] = ps * t


cdef void _box_muller(bitgen_t *rng, idx_t n, double *out) noexcept nogil:
    """Box & Muller (1958): R = sqrt(-2 log U1), angle T = 2 pi U2, (R cos T, R sin T).

    The angle is drawn by octant: one next_uint64 gives t = (pi/4) U (53-bit U, bits
    11-63) and three independent bits (0-2) choosing a swap of (cos t, sin t) and the
    two signs, which makes T uniform on [0, 2 pi). cos t and sin t come from
    :func:`_sincos_octant`. U1 = 1 - next_double is in (0, 1].
    """
    cdef idx_t i
    cdef uint64_t b
    cdef double rad, t, c, s, a0, a1
    for i in range(0, n, 2):
        rad = sqrt(-2.0 * log(1.0 - next_double(rng)))
        b = rng.next_uint64(rng.state)
        t = <double> <int64_t> (b >> 11) * (_PI_4 / 9007199254740992.0)
        _sincos_octant(t, &c, &s)
        if b & 1:
            a0 = s
            a1 = c
        else:
            a0 = c
            a1 = s
        if b & 2:
            a0 = -a0
        if b & 4:
            a1 = -a1
        out[i] = rad * a0
        if i + 1 < n:
            out[i + 1] = rad * a1


cdef void _box_muller_f(bitgen_t *rng, idx_t n, float *out) noexcept nogil:
    cdef idx_t i
    cdef float rad, t
    for i in range(0, n, 2):
        rad = sqrtf(-2.0 * logf(open_float(rng)))
        t = <float> _TWO_PI * next_float(rng)
        out[i] = rad * cosf(t)
        if i + 1 < n:
            out[i + 1] = rad * sinf(t)


cdef void _polar(bitgen_t *rng, idx_t n, double *out) noexcept nogil:
    """Marsaglia & Bray (1964) polar method: (u, v) uniform in the unit disc,
    s = u^2 + v^2, factor sqrt(-2 log(s) / s)."""
    cdef idx_t i
    cdef double u, v, s, f
    for i in range(0, n, 2):
        while True:
            u = 2.0 * next_double(rng) - 1.0
            v = 2.0 * next_double(rng) - 1.0
            s = u * u + v * v
            if 0.0 < s < 1.0:
                break
        f = sqrt(-2.0 * log(s) / s)
        out[i] = u * f
        if i + 1 < n:
            out[i + 1] = v * f


cdef void _polar_f(bitgen_t *rng, idx_t n, float *out) noexcept nogil:
    cdef idx_t i
    cdef float u, v, s, f
    for i in range(0, n, 2):
        while True:
            u = 2.0 * next_float(rng) - 1.0
            v = 2.0 * next_float(rng) - 1.0
            s = u * u + v * v
            if 0.0 < s < 1.0:
                break
        f = sqrtf(-2.0 * logf(s) / s)
        out[i] = u * f
        if i + 1 < n:
            out[i + 1] = v * f


def standard_normal_fill(object bit_generator, int method, real[::1] out):
    """Fill ``out`` with N(0, 1) draws: method 0 ziggurat, 1 Box-Muller, 2 polar.

    float32 output has its own path: next_uint32 draws, float32 tables and arithmetic.
    Box-Muller and polar produce pairs; an odd ``len(out)`` drops the last partner.

    Assumes: ``method`` in {0, 1, 2}.
    """
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t n = out.shape[0], i
    if method < 0 or method > 2:
        raise ValueError(f"standard_normal_fill: unknown method {method}")
    cdef idx_t blk, i0, m, left = POLL_WORK
    with bit_generator.lock, nogil:
        for blk in range((n + _FILL - 1) // _FILL):
            i0 = blk * _FILL
            m = min(_FILL, n - i0)
            poll(&left, 16 * m, NULL)
            if real is double:
                if method == 0:
                    for i in range(i0, i0 + m):
                        out[i] = normal_zig(rng)
                elif method == 1:
                    _box_muller(rng, m, &out[i0])
                else:
                    _polar(rng, m, &out[i0])
            else:
                if method == 0:
                    for i in range(i0, i0 + m):
                        out[i] = normal_zig_f(rng)
                elif method == 1:
                    _box_muller_f(rng, m, &out[i0])
                else:
                    _polar_f(rng, m, &out[i0])


def normal_fill(object bit_generator, double loc, double scale, real[::1] out):
    """Fill ``out`` with ``loc + scale * Z``, Z from the ziggurat (float32: float path).

    Assumes: ``loc``, ``scale`` finite, ``scale >= 0``.
    """
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t n = out.shape[0], i
    cdef float locf = <float> loc, scalef = <float> scale
    cdef idx_t blk, i0, left = POLL_WORK
    with bit_generator.lock, nogil:
        for blk in range((n + _FILL - 1) // _FILL):
            i0 = blk * _FILL
            poll(&left, 16 * _FILL, NULL)
            for i in range(i0, min(i0 + _FILL, n)):
                if real is double:
                    out[i] = loc + scale * normal_zig(rng)
                else:
                    out[i] = locf + scalef * normal_zig_f(rng)


# ---- exponential -------------------------------------------------------------------

def standard_exponential_fill(object bit_generator, int method, real[::1] out):
    """Fill ``out`` with Exp(1) draws: method 0 ziggurat, 1 inversion -log(U).

    Inversion uses U in (0, 1] (float64: 53 bits via next_double, float32: 24 bits of
    next_uint32), so every value is finite.

    Assumes: ``method`` in {0, 1}.
    """
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t n = out.shape[0], i
    if method < 0 or method > 1:
        raise ValueError(f"standard_exponential_fill: unknown method {method}")
    cdef idx_t blk, i0, i1, left = POLL_WORK
    with bit_generator.lock, nogil:
        for blk in range((n + _FILL - 1) // _FILL):
            i0 = blk * _FILL
            i1 = min(i0 + _FILL, n)
            poll(&left, 16 * _FILL, NULL)
            if real is double:
                if method == 0:
                    for i in range(i0, i1):
                        out[i] = exp_zig(rng)
                else:
                    for i in range(i0, i1):
                        out[i] = -log(1.0 - next_double(rng))
            else:
                if method == 0:
                    for i in range(i0, i1):
                        out[i] = exp_zig_f(rng)
                else:
                    for i in range(i0, i1):
                        out[i] = -logf(open_float(rng))


def exponential_fill(object bit_generator, double scale, real[::1] out):
    """Fill ``out`` with ``scale * E``, E ~ Exp(1) from the ziggurat.

    Assumes: ``scale`` finite and ``>= 0``.
    """
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t n = out.shape[0], i
    cdef float scalef = <float> scale
    cdef idx_t blk, i0, left = POLL_WORK
    with bit_generator.lock, nogil:
        for blk in range((n + _FILL - 1) // _FILL):
            i0 = blk * _FILL
            poll(&left, 16 * _FILL, NULL)
            for i in range(i0, min(i0 + _FILL, n)):
                if real is double:
                    out[i] = scale * exp_zig(rng)
                else:
                    out[i] = scalef * exp_zig_f(rng)


# ---- uniform -----------------------------------------------------------------------

def uniform_open_fill(object bit_generator, double[::1] out):
    """Fill ``out`` with U(0, 1) draws, open at both ends: (m + 1/2) 2^-53."""
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t n = out.shape[0], i, blk, i0, left = POLL_WORK
    with bit_generator.lock, nogil:
        for blk in range((n + _FILL - 1) // _FILL):
            i0 = blk * _FILL
            poll(&left, 8 * _FILL, NULL)
            for i in range(i0, min(i0 + _FILL, n)):
                out[i] = open_double(rng)


# ---- multivariate normal -----------------------------------------------------------

def multivariate_normal_fill(object bit_generator, const double[::1] mean,
                             const double[::1, :] factor, bint triangular,
                             double[:, ::1] out):
    """Rows ``out[s] = mean + A z``, z ~ N(0, I) by the ziggurat, ``A A^T = cov``.

    The d normals of a row are drawn in order into scratch, then ``A z`` is
    accumulated column by column (``A`` Fortran-ordered: contiguous, vectorisable inner
    loop). A lower-triangular ``A`` (Cholesky) skips the zero upper part; a full
    ``A`` is the eigen-factor of a singular covariance.

    Assumes: ``factor`` (d, d), lower triangular when ``triangular``; ``mean`` (d,),
    ``out`` (n, d).
    """
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t n = out.shape[0], d = out.shape[1], s, i, j, i0
    cdef double zj
    if mean.shape[0] != d or factor.shape[0] != d or factor.shape[1] != d or d < 1:
        raise ValueError(f"multivariate_normal_fill: shape mismatch (d={d})")
    cdef double[::1] z = np.empty(d)
    cdef const double *col
    cdef idx_t left = POLL_WORK
    with bit_generator.lock, nogil:
        for s in range(n):
            poll(&left, d * d + 16 * d, NULL)
            for i in range(d):
                z[i] = normal_zig(rng)
                out[s, i] = mean[i]
            for j in range(d):
                zj = z[j]
                col = &factor[0, j]
                i0 = j if triangular else 0
                for i in range(i0, d):
                    out[s, i] = out[s, i] + col[i] * zj


# ---- gamma and Dirichlet -----------------------------------------------------------

cdef inline double _log_gamma_boost(bitgen_t *rng, double a, double d,
                                    double c) noexcept nogil:
    """log of a Gamma(a, 1) draw, a < 1: log G(a + 1) + log(U) / a (M&T 2000b, sec. 6)."""
    return log(fastml_gamma_mt(rng, d, c)) + log(open_double(rng)) / a


def gamma_fill(object bit_generator, double shape, double scale, double[::1] out):
    """Fill ``out`` with Gamma(shape, scale) draws (Marsaglia-Tsang on ziggurat normals).

    shape >= 1 draws G(shape) directly; shape < 1 draws G(shape + 1) U^(1/shape).
    Each value consumes its own normals and uniforms in order (fastml_gamma_fill of
    fastml/random.h).

    Assumes: ``shape > 0``, ``scale > 0``, both finite.
    """
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t n = out.shape[0], blk, i0, left = POLL_WORK
    with bit_generator.lock, nogil:
        for blk in range((n + _FILL - 1) // _FILL):  # same draws as one call, in blocks
            i0 = blk * _FILL
            poll(&left, 64 * _FILL, NULL)
            fastml_gamma_fill(rng, shape, scale, min(_FILL, n - i0), &out[i0])


def dirichlet_fill(object bit_generator, const double[::1] alpha, double[:, ::1] out):
    """Rows of ``out`` ~ Dirichlet(alpha): normalised Gamma(alpha_k) draws.

    Components with alpha_k < 1 are drawn in log space (log G(a + 1) + log(U) / a) and
    each row is normalised by log-sum-exp, so tiny alphas give exact zeros only where
    float64 underflows, never a 0/0 row.

    Assumes: ``alpha`` finite and positive, ``out`` (n, K) with K = len(alpha) >= 1.
    """
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t n = out.shape[0], K = out.shape[1], s, k
    cdef double mx, tot, a
    if alpha.shape[0] != K or K < 1:
        raise ValueError(f"dirichlet_fill: shape mismatch (K={K})")
    cdef double[:, ::1] dc = np.empty((K, 2))   # per component: d, c of M&T
    for k in range(K):
        a = alpha[k] if alpha[k] >= 1.0 else alpha[k] + 1.0
        dc[k, 0] = a - 1.0 / 3.0
        dc[k, 1] = 1.0 / sqrt(9.0 * dc[k, 0])
    cdef idx_t left = POLL_WORK
    with bit_generator.lock, nogil:
        for s in range(n):
            poll(&left, 64 * K, NULL)
            mx = -1e308
            for k in range(K):   # log G_k
                if alpha[k] >= 1.0:
                    out[s, k] = log(fastml_gamma_mt(rng, dc[k, 0], dc[k, 1]))
                else:
                    out[s, k] = _log_gamma_boost(rng, alpha[k], dc[k, 0], dc[k, 1])
                if out[s, k] > mx:
                    mx = out[s, k]
            tot = 0.0
            for k in range(K):
                out[s, k] = exp(out[s, k] - mx)
                tot = tot + out[s, k]
            for k in range(K):
                out[s, k] = out[s, k] / tot


# ---- categorical: Walker / Vose alias tables ---------------------------------------

def alias_build(const double[::1] p, double[::1] prob, int64_t[::1] alias,
                int64_t[::1] work):
    """Vose's (1991) O(K) alias-table construction from probabilities ``p``.

    Writes ``prob[i]`` (probability of keeping column i) and ``alias[i]``. Column i
    carries mass prob[i] / K of outcome i and (1 - prob[i]) / K of outcome alias[i].

    Assumes: ``p`` non-negative, sums to 1; ``prob``, ``alias`` of length K,
    ``work`` of length K (scratch: small and large stacks).
    """
    cdef idx_t K = p.shape[0], i, ns = 0, nl = 0, s, l
    if prob.shape[0] != K or alias.shape[0] != K or work.shape[0] != K or K < 1:
        raise ValueError(f"alias_build: shape mismatch (K={K})")
    with nogil:
        for i in range(K):
            prob[i] = p[i] * K
            alias[i] = i
        # small indices fill work from the front, large ones from the back
        for i in range(K):
            if prob[i] < 1.0:
                work[ns] = i
                ns += 1
            else:
                work[K - 1 - nl] = i
                nl += 1
        while ns > 0 and nl > 0:
            ns -= 1
            s = work[ns]
            l = work[K - nl]
            alias[s] = l
            prob[l] = (prob[l] + prob[s]) - 1.0
            if prob[l] < 1.0:
                nl -= 1
                work[ns] = l
                ns += 1
        # leftovers are 1 up to rounding (Vose's numerically stable ending)
        for i in range(ns):
            prob[work[i]] = 1.0
        for i in range(nl):
            prob[work[K - 1 - i]] = 1.0


def alias_draw(object bit_generator, const double[::1] prob, const int64_t[::1] alias,
               int64_t[::1] out):
    """Fill ``out`` with categorical draws from an alias table, O(1) per draw.

    One next_double ``u`` per draw: column ``i = floor(u K)``, and the fractional part
    ``u K - i`` (uniform on [0, 1), independent of i) decides between i and alias[i].

    Assumes: a table built by :func:`alias_build`; K < 2^31 (so u K keeps 22+ bits of
    fraction).
    """
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t n = out.shape[0], K = prob.shape[0], i, col
    cdef double u
    cdef idx_t blk, i0, left = POLL_WORK
    if alias.shape[0] != K or K < 1:
        raise ValueError(f"alias_draw: shape mismatch (K={K})")
    with bit_generator.lock, nogil:
        for blk in range((n + _FILL - 1) // _FILL):
            i0 = blk * _FILL
            poll(&left, 16 * _FILL, NULL)
            for i in range(i0, min(i0 + _FILL, n)):
                u = next_double(rng) * K
                col = <idx_t> u
                if col >= K:   # cannot happen for u < 1; guards rounding of u K
                    col = K - 1
                out[i] = col if (u - col) < prob[col] else alias[col]
