"""MCMC kernels: whole chains on a Gaussian target, compiled, GIL released.

The target is N(mu, Sigma) given by ``mu`` and either the whitening matrix
``W = L^{-1}`` (``Sigma = L L^T``, lower triangular: log density
``-||W (x - mu)||^2 / 2`` up to a constant) or the precision ``P = Sigma^{-1}``
(gradient ``-P (x - mu)``). Each kernel runs one chain from its own bit generator,
holding its lock; the caller gives every chain its own stream (``Generator.spawn``).

Random numbers are consumed in a fixed documented order per iteration, so a generic
(Python) implementation that draws the same way reproduces the chain.

The chain kernels poll for Ctrl-C (``_interrupt.pxd``) and also stop when
``cancel[0]`` (one byte) becomes nonzero, which is how a chain on a worker thread is
stopped. On KeyboardInterrupt, ``x`` holds the chain's current state, ``out`` the rows
drawn so far, and the bit generator has advanced by the draws made.
"""
import numpy as np

from libc.math cimport INFINITY, isfinite, sqrt
from numpy.random cimport bitgen_t

from fastml._kernels._bitgen cimport get_bitgen
from fastml._kernels._interrupt cimport POLL_WORK, poll
from fastml._kernels._types cimport idx_t
from fastml.random cimport (
    fastml_standard_exponential as exp_zig, fastml_standard_normal as normal_zig,
)


# Matrix-vector products on column-major (Fortran-ordered) matrices, no BLAS (so
# nothing depends on a BLAS thread count). From _COLUMN_MIN_D on they are
# column-oriented (axpy form, y += A[:, j] z_j): the inner loop is contiguous and every
# y_i its own accumulator, so it vectorises without reassociating sums. Below that,
# the short dot-product form (rows read with stride d, all in L1) has less loop
# overhead.
cdef idx_t _COLUMN_MIN_D = 24


cdef inline void _cols_axpy(const double *A, const double *z, double *y, idx_t d,
                            idx_t j0, idx_t i0) noexcept nogil:
    """``y[i] += sum_{j >= j0} A[i, j] z_j`` for rows ``i >= i0(j)``, column-major A.

    Columns go four at a time (y is read and written once per four columns); with
    ``i0 < 0`` every row is updated, else rows from the block's first column on (the
    lower triangle plus the block's own zero entries above the diagonal).
    """
    cdef idx_t i, j, start
    cdef double z0, z1, z2, z3
    cdef const double *c0
    cdef const double *c1
    cdef const double *c2
    cdef const double *c3
    j = j0
    while j + 4 <= d:
        z0 = z[j]
        z1 = z[j + 1]
        z2 = z[j + 2]
        z3 = z[j + 3]
        c0 = A + j * d
        c1 = c0 + d
        c2 = c1 + d
        c3 = c2 + d
        start = 0 if i0 < 0 else j
        for i in range(start, d):
            y[i] = y[i] + ((c0[i] * z0 + c1[i] * z1) + (c2[i] * z2 + c3[i] * z3))
        j += 4
    while j < d:
        z0 = z[j]
        c0 = A + j * d
        start = 0 if i0 < 0 else j
        for i in range(start, d):
            y[i] = y[i] + c0[i] * z0
        j += 1


cdef inline void _tril_matvec_add(const double *A, const double *z, double *y,
                                  idx_t d) noexcept nogil:
    """``y += A z`` for lower-triangular ``A`` (d, d), column-major, zeros stored
    above the diagonal."""
    cdef idx_t i, j
    cdef double acc
    if d < _COLUMN_MIN_D:
        for i in range(d):
            acc = 0.0
            for j in range(i + 1):
                acc = acc + A[i + j * d] * z[j]
            y[i] = y[i] + acc
        return
    _cols_axpy(A, z, y, d, 0, 0)


cdef inline double _half_sq_white(const double *W, const double *mu, const double *x,
                                  double *r, double *wr, idx_t d) noexcept nogil:
    """``||W (x - mu)||^2 / 2`` for lower-triangular W (d, d), column-major.

    ``r`` and ``wr`` are scratch of length d.
    """
    cdef idx_t i
    cdef double tot = 0.0
    for i in range(d):
        r[i] = x[i] - mu[i]
        wr[i] = 0.0
    _tril_matvec_add(W, r, wr, d)
    for i in range(d):
        tot = tot + wr[i] * wr[i]
    return 0.5 * tot


cdef inline double _grad_logp(const double *P, const double *mu, const double *x,
                              double *g, double *r, idx_t d) noexcept nogil:
    """Write ``g = -P (x - mu)`` (P symmetric, so either layout); return the log
    density ``(x - mu) . g / 2``. ``r`` is scratch of length d."""
    cdef idx_t i, j
    cdef double acc, lp = 0.0
    for i in range(d):
        r[i] = x[i] - mu[i]
        g[i] = 0.0
    if d < _COLUMN_MIN_D:
        for i in range(d):
            acc = 0.0
            for j in range(d):
                acc = acc - P[i + j * d] * r[j]
            g[i] = acc
            lp = lp + r[i] * acc
        return 0.5 * lp
    _cols_axpy(P, r, g, d, 0, -1)
    for i in range(d):
        g[i] = -g[i]
        lp = lp + r[i] * g[i]
    return 0.5 * lp


def draw_block(object bit_generator, double[:, ::1] z, double[::1] e):
    """The random numbers of ``len(e)`` MH / HMC iterations, in the chain kernels' order.

    Iteration t takes ``d`` ziggurat normals (``z[t]``) then one Exp(1) ziggurat draw
    (``e[t]``): the generic Python samplers use this to consume the stream exactly like
    :func:`mh_gaussian` and :func:`hmc_gaussian`.
    """
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t n = z.shape[0], d = z.shape[1], t, i
    if e.shape[0] != n:
        raise ValueError(f"draw_block: shape mismatch (n={n})")
    with bit_generator.lock, nogil:
        for t in range(n):
            for i in range(d):
                z[t, i] = normal_zig(rng)
            e[t] = exp_zig(rng)


# MH re-derives its whitened state from x after this many accepted moves, so rounding
# in the incremental update cannot accumulate.
cdef idx_t _REFRESH = 256


def mh_gaussian(object bit_generator, double[::1] x, const double[::1, :] prop_chol,
                const double[::1, :] prop_white, const double[::1] mu,
                const double[::1, :] whiten, idx_t burn_in, idx_t thin,
                double[:, ::1] out, const unsigned char[::1] cancel):
    """Random-walk Metropolis on N(mu, Sigma) (PRML sec. 11.2.1, eq. 11.33).

    Iteration: ``d`` ziggurat normals z, proposal ``y = x + A z`` (``A`` lower
    triangular, ``A A^T`` = proposal covariance), then one Exp(1) ziggurat draw E;
    accept when ``E > log p(x) - log p(y)`` (the same event as ``log U < log p(y) -
    log p(x)`` for ``U = exp(-E)`` uniform). The chain carries ``w = W (x - mu)``
    and moves it by ``B z`` with ``B = W A`` (``prop_white``, lower triangular), so a
    step costs one triangular product; ``x`` is moved only on acceptance and ``w`` is
    recomputed from ``x`` every 256 acceptances. All matrices Fortran-ordered, zeros
    above the diagonal. ``burn_in`` iterations, then ``thin`` iterations per row of
    ``out``. ``x`` holds x0 on entry and the last state on exit.

    Assumes: shapes (d,), (d, d), finite x0. Returns the number of accepted
    proposals after burn-in.
    """
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t n = out.shape[0], d = out.shape[1], s, t, i, total, acc_n = 0, moved = 0
    if (x.shape[0] != d or mu.shape[0] != d or prop_chol.shape[0] != d
            or prop_chol.shape[1] != d or whiten.shape[0] != d or whiten.shape[1] != d
            or prop_white.shape[0] != d or prop_white.shape[1] != d
            or d < 1 or thin < 1 or burn_in < 0 or cancel.shape[0] != 1):
        raise ValueError(f"mh_gaussian: shape mismatch (d={d})")
    cdef double[:, ::1] scratch = np.empty((4, d))
    cdef double *z = &scratch[0, 0]
    cdef double *w = &scratch[1, 0]     # W (x - mu)
    cdef double *wy = &scratch[2, 0]    # W (y - mu)
    cdef double *r = &scratch[3, 0]
    cdef const double *A = &prop_chol[0, 0]
    cdef const double *B = &prop_white[0, 0]
    cdef const double *W = &whiten[0, 0]
    cdef double lpx, lpy
    cdef idx_t left = POLL_WORK, work
    total = burn_in + n * thin
    with bit_generator.lock, nogil:
        lpx = -_half_sq_white(W, &mu[0], &x[0], r, w, d)
        s = 0
        work = d * d // 2 + 8 * d + 30
        for t in range(total):
            poll(&left, work, &cancel[0])
            for i in range(d):
                z[i] = normal_zig(rng)
                wy[i] = w[i]
            _tril_matvec_add(B, z, wy, d)
            lpy = 0.0
            for i in range(d):
                lpy = lpy + wy[i] * wy[i]
            lpy = -0.5 * lpy
            if exp_zig(rng) > lpx - lpy:
                _tril_matvec_add(A, z, &x[0], d)
                moved += 1
                if moved % _REFRESH == 0:
                    lpy = -_half_sq_white(W, &mu[0], &x[0], r, wy, d)
                for i in range(d):
                    w[i] = wy[i]
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
                 idx_t n_leapfrog, idx_t burn_in, idx_t thin, double[:, ::1] out,
                 const unsigned char[::1] cancel):
    """Hamiltonian Monte Carlo on N(mu, P^{-1}) (PRML sec. 11.5.2, eqs. 11.64-11.66).

    Iteration: momentum ``p = sqrt(m) z`` from ``d`` ziggurat normals (diagonal mass
    m), ``n_leapfrog`` leapfrog steps of size ``step_size`` on
    ``H = -log p(x) + sum p^2 / (2 m)``, then one Exp(1) ziggurat draw E; accept
    when ``E > H(x', p') - H(x, p)`` (the event ``log U < H - H'`` for
    ``U = exp(-E)``; a non-finite H' rejects). The gradient at the current state is
    carried over between iterations.

    Assumes: shapes (d,), (d, d), (d,); mass > 0; step_size > 0; n_leapfrog >= 1.
    Returns the number of accepted proposals after burn-in.
    """
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t n = out.shape[0], d = out.shape[1], s, t, i, l, total, acc_n = 0
    if (x.shape[0] != d or mu.shape[0] != d or prec.shape[0] != d or prec.shape[1] != d
            or mass.shape[0] != d or d < 1 or thin < 1 or burn_in < 0
            or n_leapfrog < 1 or cancel.shape[0] != 1):
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
    cdef idx_t left = POLL_WORK, work
    total = burn_in + n * thin
    with bit_generator.lock, nogil:
        for i in range(d):
            sm[i] = sqrt(mass[i])
        lpx = _grad_logp(P, &mu[0], &x[0], g, r, d)
        s = 0
        work = n_leapfrog * (d * d + 4 * d) + 10 * d + 30
        for t in range(total):
            poll(&left, work, &cancel[0])
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
            if exp_zig(rng) > h1 - h0:
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
                   double[:, ::1] out, const unsigned char[::1] cancel):
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
            or d < 1 or thin < 1 or burn_in < 0 or cancel.shape[0] != 1):
        raise ValueError(f"gibbs_gaussian: shape mismatch (d={d})")
    cdef double[::1] sd = np.empty(d)
    cdef double acc
    cdef idx_t left = POLL_WORK, work
    total = burn_in + n * thin
    with bit_generator.lock, nogil:
        for i in range(d):
            sd[i] = 1.0 / sqrt(prec[i, i])
        s = 0
        work = d * d + 10 * d
        for t in range(total):
            poll(&left, work, &cancel[0])
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
