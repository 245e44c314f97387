"""Moment kernels: one-pass, numerically stable mean and sum of squared deviations.

The reductions use Chan, Golub & LeVeque's pairwise combination of partial results
(Chan et al. 1979/1983): a block that fits in L1 is reduced with the corrected two-pass
formula, and blocks are merged pairwise, so the data is read from memory once and the
rounding error grows like log(n). All of it runs on data shifted by its first value
(Chan et al. 1983, sec. 3), so partial means stay small and precise when the data sits
far from zero (1e9 + N(0, 1)). Accumulators are double for float32 input too.
"""
import numpy as np

from numpy.random cimport bitgen_t
from numpy.random.c_distributions cimport random_standard_normal_fill

from fastml._kernels._bitgen cimport get_bitgen
from fastml._kernels._interrupt cimport POLL_WORK, poll
from fastml._kernels._types cimport idx_t, real

# Leaf size of the pairwise recursion: 2 KiB of float64, read twice from L1.
cdef idx_t _LEAF = 256


cdef inline void _merge(double n_a, double *mean_a, double *m2_a,
                        double n_b, double mean_b, double m2_b) noexcept nogil:
    """Merge partial moments (b into a): Chan et al. eq. 2.1, delta form."""
    cdef double n = n_a + n_b
    cdef double delta = mean_b - mean_a[0]
    mean_a[0] += delta * (n_b / n)
    m2_a[0] += m2_b + delta * delta * (n_a * n_b / n)


cdef void _leaf(const real *x, idx_t n, double shift, double *mean,
                double *m2) noexcept nogil:
    """Corrected two-pass moments of ``x - shift`` on a short block (Chan et al. eq. 1.7)."""
    cdef idx_t i, n4 = n - n % 4
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    cdef double d0, d1, d2, d3, m
    for i in range(0, n4, 4):
        s0 += x[i] - shift
        s1 += x[i + 1] - shift
        s2 += x[i + 2] - shift
        s3 += x[i + 3] - shift
    for i in range(n4, n):
        s0 += x[i] - shift
    m = ((s0 + s1) + (s2 + s3)) / n
    cdef double q0 = 0.0, q1 = 0.0, q2 = 0.0, q3 = 0.0
    cdef double c0 = 0.0, c1 = 0.0, c2 = 0.0, c3 = 0.0
    for i in range(0, n4, 4):
        d0 = (x[i] - shift) - m
        d1 = (x[i + 1] - shift) - m
        d2 = (x[i + 2] - shift) - m
        d3 = (x[i + 3] - shift) - m
        c0 += d0
        c1 += d1
        c2 += d2
        c3 += d3
        q0 += d0 * d0
        q1 += d1 * d1
        q2 += d2 * d2
        q3 += d3 * d3
    for i in range(n4, n):
        d0 = (x[i] - shift) - m
        c0 += d0
        q0 += d0 * d0
    cdef double c = (c0 + c1) + (c2 + c3)
    mean[0] = m + c / n
    m2[0] = ((q0 + q1) + (q2 + q3)) - c * c / n


cdef void _pairwise(const real *x, idx_t n, double shift, double *mean,
                    double *m2) noexcept nogil:
    """Mean of ``x[:n] - shift`` and sum of squared deviations (n >= 1), pairwise."""
    if n <= _LEAF:
        _leaf(x, n, shift, mean, m2)
        return
    cdef idx_t half = ((n // 2 + _LEAF - 1) // _LEAF) * _LEAF
    cdef double mean_b, m2_b
    _pairwise(x, half, shift, mean, m2)
    _pairwise(x + half, n - half, shift, &mean_b, &m2_b)
    _merge(<double> half, mean, m2, <double> (n - half), mean_b, m2_b)


cdef inline void _moments(const real *x, idx_t n, double *mean, double *m2) noexcept nogil:
    """Mean of ``x[:n] - x[0]`` and sum of squared deviations of ``x[:n]``."""
    _pairwise(x, n, <double> x[0], mean, m2)


def moments_last_axis(const real[:, ::1] x, double[::1] mean_out, double[::1] m2_out,
                      const unsigned char[::1] cancel=None):
    """Per-row shifted mean and sum of squared deviations of ``x`` (pairwise, Chan et al.).

    Assumes: ``x`` validated, C-contiguous, with at least one column.
    Writes ``mean_out[r] = mean(x[r] - x[r, 0])`` (the caller adds the shift back, so a
    mean far from zero loses no precision in merges) and
    ``m2_out[r] = sum_i (x[r, i] - mean[r])**2``. Polls for Ctrl-C (and the optional
    ``cancel`` byte of ``_parallel.run_blocks``) between rows.
    """
    cdef idx_t rows = x.shape[0], n = x.shape[1], r
    if mean_out.shape[0] != rows or m2_out.shape[0] != rows or n < 1:
        raise ValueError(f"moments_last_axis: shape mismatch (rows={rows}, n={n})")
    cdef idx_t left = POLL_WORK
    if cancel is not None and cancel.shape[0] != 1:
        raise ValueError("cancel must hold one byte")
    cdef const unsigned char *stop = NULL if cancel is None else &cancel[0]
    with nogil:
        for r in range(rows):
            poll(&left, 2 * n, stop)
            _moments(&x[r, 0], n, &mean_out[r], &m2_out[r])


def moments_middle_axis(const real[:, :, ::1] x, double[:, ::1] mean_out,
                        double[:, ::1] m2_out, const unsigned char[::1] cancel=None):
    """Moments of ``x`` (pre, n, post) along its middle axis, column-blocked.

    Blocks of rows (about 64 KiB) are reduced with the corrected two-pass formula, all
    ``post`` columns at once so the inner loop is contiguous, and each block is merged
    into the running moments with Chan et al.'s update. Every column is shifted by its
    first value while accumulating.

    Assumes: ``x`` validated, C-contiguous, ``n >= 1``.
    Writes ``mean_out[p, j] = mean(x[p, :, j] - x[p, 0, j])`` and ``m2_out`` (pre, post).
    Polls for Ctrl-C (and the optional ``cancel`` byte) between blocks.
    """
    cdef idx_t pre = x.shape[0], n = x.shape[1], post = x.shape[2], p, i, j, b, nb
    if (mean_out.shape[0] != pre or mean_out.shape[1] != post or m2_out.shape[0] != pre
            or m2_out.shape[1] != post or n < 1):
        raise ValueError(f"moments_middle_axis: shape mismatch (pre={pre}, n={n}, post={post})")
    cdef idx_t block = max(1, min(n, 8192 // max(post, 1)))
    cdef double[:, ::1] scratch = np.empty((3, post))
    cdef double[::1] bmean = scratch[0], bdev = scratch[1], bm2 = scratch[2]
    cdef double d, done
    cdef idx_t left = POLL_WORK
    if cancel is not None and cancel.shape[0] != 1:
        raise ValueError("cancel must hold one byte")
    cdef const unsigned char *stop = NULL if cancel is None else &cancel[0]
    with nogil:
        for p in range(pre):
            done = 0.0
            b = 0
            while b < n:
                nb = min(block, n - b)
                poll(&left, 4 * nb * post, stop)
                for j in range(post):
                    bmean[j] = 0.0
                    bdev[j] = 0.0
                    bm2[j] = 0.0
                for i in range(b, b + nb):
                    for j in range(post):
                        bmean[j] += <double> x[p, i, j] - <double> x[p, 0, j]
                for j in range(post):
                    bmean[j] /= nb
                for i in range(b, b + nb):
                    for j in range(post):
                        d = (<double> x[p, i, j] - <double> x[p, 0, j]) - bmean[j]
                        bdev[j] += d
                        bm2[j] += d * d
                for j in range(post):
                    bm2[j] -= bdev[j] * bdev[j] / nb
                    bmean[j] += bdev[j] / nb
                    if done == 0.0:
                        mean_out[p, j] = bmean[j]
                        m2_out[p, j] = bm2[j]
                    else:
                        _merge(done, &mean_out[p, j], &m2_out[p, j], <double> nb,
                               bmean[j], bm2[j])
                done += nb
                b += nb


def ml_variance_trials(object bit_generator, double sigma, double[::1] scratch,
                       double[::1] out):
    """Maximum-likelihood variances of ``len(out)`` Gaussian samples of size ``len(scratch)``.

    Trial t draws ``n = len(scratch)`` values N(0, sigma^2) from the bit generator (numpy's
    ``random_standard_normal_fill``, in trial order) and writes ``out[t] = m2 / n``
    (PRML eq. 1.56). Holds the bit generator's lock while drawing; polls for Ctrl-C
    between trials (on KeyboardInterrupt ``out`` holds the finished trials).

    Assumes: ``len(scratch) >= 1``, ``sigma`` finite and positive.
    """
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t n = scratch.shape[0], t, trials = out.shape[0]
    cdef double mean, m2
    if n < 1:
        raise ValueError("ml_variance_trials: scratch must not be empty")
    cdef idx_t left = POLL_WORK
    with bit_generator.lock, nogil:
        for t in range(trials):
            poll(&left, 16 * n, NULL)
            random_standard_normal_fill(rng, n, &scratch[0])
            _moments(&scratch[0], n, &mean, &m2)
            out[t] = sigma * sigma * m2 / n
