"""MCMC kernels: whole chains on a Gaussian target, compiled, GIL released.

The target is N(mu, Sigma) given by ``mu`` and either the whitening matrix
``W = L^{-1}`` (``Sigma = L L^T``, lower triangular: log density
``-||W (x - mu)||^2 / 2`` up to a constant) or the precision ``P = Sigma^{-1}``
(gradient ``-P (x - mu)``). Each kernel runs one chain from its own bit generator,
holding its lock; the caller gives every chain its own stream (``Generator.spawn``).

Random numbers are consumed in a fixed documented order per iteration, so a generic
(Python) implementation that draws the same way reproduces the chain.
"""
import numpy as np

from libc.math cimport INFINITY, isfinite, log, sqrt
from numpy.random cimport bitgen_t
from scipy.linalg.cython_blas cimport dsymv, dtrmv

from fastml._kernels._bitgen cimport get_bitgen
from fastml._kernels._types cimport idx_t
from fastml._kernels._ziggurat cimport normal_zig, open_double


# From this dimension on, matrix-vector products go to BLAS (scipy's cython_blas);
# below it an inline loop beats the call overhead.
cdef idx_t _BLAS_MIN_D = 24


cdef inline double _half_sq_white(const double *W, const double *mu, const double *x,
                                  double *r, idx_t d) noexcept nogil:
    """``||W (x - mu)||^2 / 2`` for lower-triangular W (d, d), row-major.

    ``r`` is scratch of length d.
    """
    cdef idx_t i, j
    cdef double acc, tot = 0.0
    cdef int n = <int> d, inc = 1
    for i in range(d):
        r[i] = x[i] - mu[i]
    if d >= _BLAS_MIN_D:
        # row-major lower W is column-major upper W^T: r <- (W^T)^T r = W r
        dtrmv(b"U", b"T", b"N", &n, <double *> W, &n, r, &inc)
        for i in range(d):
            tot = tot + r[i] * r[i]
        return 0.5 * tot
    for i in range(d):
        acc = 0.0
        for j in range(i + 1):
            acc = acc + W[i * d + j] * r[j]
        tot = tot + acc * acc
    return 0.5 * tot


cdef inline double _grad_logp(const double *P, const double *mu, const double *x,
                              double *g, double *r, idx_t d) noexcept nogil:
    """Write ``g = -P (x - mu)`` (P symmetric); return the log density
    ``(x - mu) . g / 2``. ``r`` is scratch of length d."""
    cdef idx_t i, j
    cdef double acc, lp = 0.0, alpha = -1.0, beta = 0.0
    cdef int n = <int> d, inc = 1
    for i in range(d):
        r[i] = x[i] - mu[i]
    if d >= _BLAS_MIN_D:
        dsymv(b"U", &n, &alpha, <double *> P, &n, r, &inc, &beta, g, &inc)
    else:
        for i in range(d):
            acc = 0.0
            for j in range(d):
                acc = acc - P[i * d + j] * r[j]
            g[i] = acc
    for i in range(d):
        lp = lp + r[i] * g[i]
    return 0.5 * lp


def draw_block(object bit_generator, double[:, ::1] z, double[::1] u):
    """The random numbers of ``len(u)`` MH / HMC iterations, in the chain kernels' order.

    Iteration t takes ``d`` ziggurat normals (``z[t]``) then one U(0, 1) (``u[t]``):
    the generic Python samplers use this to consume the stream exactly like
    :func:`mh_gaussian` and :func:`hmc_gaussian`.
    """
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t n = z.shape[0], d = z.shape[1], t, i
    if u.shape[0] != n:
        raise ValueError(f"draw_block: shape mismatch (n={n})")
    with bit_generator.lock, nogil:
        for t in range(n):
            for i in range(d):
                z[t, i] = normal_zig(rng)
            u[t] = open_double(rng)


def mh_gaussian(object bit_generator, double[::1] x, const double[:, ::1] prop_chol,
                const double[::1] mu, const double[:, ::1] whiten, idx_t burn_in,
                idx_t thin, double[:, ::1] out):
    """Random-walk Metropolis on N(mu, Sigma) (PRML sec. 11.2.1, eq. 11.33).

    Iteration: ``d`` ziggurat normals z, proposal ``y = x + A z`` (``A`` lower
    triangular, ``A A^T`` = proposal covariance), one U(0, 1) u; accept when
    ``log u < log p(y) - log p(x)``. ``burn_in`` iterations, then ``thin`` iterations
    per row of ``out``. ``x`` holds x0 on entry and the last state on exit.

    Assumes: shapes (d,), (d, d), finite x0. Returns the number of accepted
    proposals after burn-in.
    """
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t n = out.shape[0], d = out.shape[1], s, t, i, j, total, acc_n = 0
    if (x.shape[0] != d or mu.shape[0] != d or prop_chol.shape[0] != d
            or prop_chol.shape[1] != d or whiten.shape[0] != d or whiten.shape[1] != d
            or d < 1 or thin < 1 or burn_in < 0):
        raise ValueError(f"mh_gaussian: shape mismatch (d={d})")
    cdef double[:, ::1] scratch = np.empty((3, d))
    cdef double *z = &scratch[0, 0]
    cdef double *y = &scratch[1, 0]
    cdef double *r = &scratch[2, 0]
    cdef const double *A = &prop_chol[0, 0]
    cdef double lpx, lpy, acc
    total = burn_in + n * thin
    with bit_generator.lock, nogil:
        lpx = -_half_sq_white(&whiten[0, 0], &mu[0], &x[0], r, d)
        s = 0
        for t in range(total):
            for i in range(d):
                z[i] = normal_zig(rng)
            for i in range(d):
                acc = x[i]
                for j in range(i + 1):
                    acc = acc + A[i * d + j] * z[j]
                y[i] = acc
            lpy = -_half_sq_white(&whiten[0, 0], &mu[0], y, r, d)
            if log(open_double(rng)) < lpy - lpx:
                for i in range(d):
                    x[i] = y[i]
                lpx = lpy
                if t >= burn_in:
                    acc_n += 1
            if t >= burn_in and (t - burn_in) % thin == thin - 1:
                for i in range(d):
                    out[s, i] = x[i]
                s += 1
    return acc_n


def hmc_gaussian(object bit_generator, double[::1] x, const double[::1] mu,
                 const double[:, ::1] prec, const double[::1] mass, double step_size,
                 idx_t n_leapfrog, idx_t burn_in, idx_t thin, double[:, ::1] out):
    """Hamiltonian Monte Carlo on N(mu, P^{-1}) (PRML sec. 11.5.2, eqs. 11.64-11.66).

    Iteration: momentum ``p = sqrt(m) z`` from ``d`` ziggurat normals (diagonal mass
    m), ``n_leapfrog`` leapfrog steps of size ``step_size`` on
    ``H = -log p(x) + sum p^2 / (2 m)``, one U(0, 1) u; accept when
    ``log u < H(x, p) - H(x', p')`` (a non-finite H' rejects). The gradient at the
    current state is carried over between iterations.

    Assumes: shapes (d,), (d, d), (d,); mass > 0; step_size > 0; n_leapfrog >= 1.
    Returns the number of accepted proposals after burn-in.
    """
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t n = out.shape[0], d = out.shape[1], s, t, i, l, total, acc_n = 0
    if (x.shape[0] != d or mu.shape[0] != d or prec.shape[0] != d or prec.shape[1] != d
            or mass.shape[0] != d or d < 1 or thin < 1 or burn_in < 0
            or n_leapfrog < 1):
        raise ValueError(f"hmc_gaussian: shape mismatch (d={d})")
    cdef double[:, ::1] scratch = np.empty((7, d))
    cdef double *p = &scratch[0, 0]
    cdef double *g = &scratch[1, 0]      # gradient at x
    cdef double *xn = &scratch[2, 0]
    cdef double *pn = &scratch[3, 0]
    cdef double *gn = &scratch[4, 0]
    cdef double *sm = &scratch[5, 0]     # sqrt(mass)
    cdef double *r = &scratch[6, 0]
    cdef const double *P = &prec[0, 0]
    cdef double lpx, lpn, h0, h1, kin, eps = step_size
    total = burn_in + n * thin
    with bit_generator.lock, nogil:
        for i in range(d):
            sm[i] = sqrt(mass[i])
        lpx = _grad_logp(P, &mu[0], &x[0], g, r, d)
        s = 0
        for t in range(total):
            kin = 0.0
            for i in range(d):
                p[i] = sm[i] * normal_zig(rng)
                kin = kin + p[i] * p[i] / mass[i]
                xn[i] = x[i]
                pn[i] = p[i] + 0.5 * eps * g[i]
            h0 = -lpx + 0.5 * kin
            lpn = lpx
            for l in range(n_leapfrog):
                for i in range(d):
                    xn[i] = xn[i] + eps * pn[i] / mass[i]
                lpn = _grad_logp(P, &mu[0], xn, gn, r, d)
                if l < n_leapfrog - 1:
                    for i in range(d):
                        pn[i] = pn[i] + eps * gn[i]
            kin = 0.0
            for i in range(d):
                pn[i] = pn[i] + 0.5 * eps * gn[i]
                kin = kin + pn[i] * pn[i] / mass[i]
            h1 = -lpn + 0.5 * kin
            if not isfinite(h1):
                h1 = INFINITY
            if log(open_double(rng)) < h0 - h1:
                for i in range(d):
                    x[i] = xn[i]
                    g[i] = gn[i]
                lpx = lpn
                if t >= burn_in:
                    acc_n += 1
            if t >= burn_in and (t - burn_in) % thin == thin - 1:
                for i in range(d):
                    out[s, i] = x[i]
                s += 1
    return acc_n


def gibbs_gaussian(object bit_generator, double[::1] x, const double[::1] mu,
                   const double[:, ::1] prec, idx_t burn_in, idx_t thin,
                   double[:, ::1] out):
    """Systematic-scan Gibbs sampling of N(mu, P^{-1}) (PRML sec. 11.3).

    Coordinate i is redrawn from its exact full conditional (PRML eqs. 2.96, 2.97 in
    precision form): ``x_i | x_-i ~ N(mu_i - sum_{j != i} P_ij (x_j - mu_j) / P_ii,
    1 / P_ii)``, one ziggurat normal per coordinate, i = 0..d-1 per sweep.
    ``burn_in`` sweeps, then ``thin`` sweeps per row of ``out``.

    Assumes: ``P`` symmetric positive definite (so P_ii > 0).
    """
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t n = out.shape[0], d = out.shape[1], s, t, i, j, total
    if (x.shape[0] != d or mu.shape[0] != d or prec.shape[0] != d or prec.shape[1] != d
            or d < 1 or thin < 1 or burn_in < 0):
        raise ValueError(f"gibbs_gaussian: shape mismatch (d={d})")
    cdef double[::1] sd = np.empty(d)
    cdef double acc
    total = burn_in + n * thin
    with bit_generator.lock, nogil:
        for i in range(d):
            sd[i] = 1.0 / sqrt(prec[i, i])
        s = 0
        for t in range(total):
            for i in range(d):
                acc = 0.0
                for j in range(d):
                    if j != i:
                        acc = acc + prec[i, j] * (x[j] - mu[j])
                x[i] = mu[i] - acc / prec[i, i] + sd[i] * normal_zig(rng)
            if t >= burn_in and (t - burn_in) % thin == thin - 1:
                for i in range(d):
                    out[s, i] = x[i]
                s += 1
