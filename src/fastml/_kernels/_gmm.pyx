"""Gaussian-mixture EM kernels: one pass over the data per EM iteration.

Each pass reads a block of rows once and, for every component, forms the centred block
``D = X_b - mu_k``, the whitened block ``Y = D P_k`` (P_k the precision Cholesky factor,
``P_k P_k^T = Lambda_k``; one GEMM), the log densities
``log w_k + log|P_k| - d/2 log(2 pi) - ||Y||^2 / 2`` (PRML eq. 9.7 inside eq. 9.13), the
responsibilities by a log-sum-exp over components (PRML eq. 9.23) and, in the same
pass, the M-step sufficient statistics (PRML eqs. 9.24-9.27) about the current means:
``N_k = sum_n r_nk``, ``s_k = sum_n r_nk D_n`` and ``S_k = sum_n r_nk D_n D_n^T``
(GEMM). Nothing of size n x K x d is allocated. Accumulators are double for float32
data too. A pass polls for Ctrl-C between blocks of rows; an interrupted pass leaves its
outputs partly written (the caller discards them).
"""
import numpy as np

from libc.math cimport exp, log
from scipy.linalg.cython_blas cimport dgemm, sgemm

from fastml._kernels._interrupt cimport POLL_WORK, poll
from fastml._kernels._types cimport idx_t, real

# Rows per block: at most 512, and K * block * d scratch values kept to ~2 MB of
# doubles so the centred blocks stay in cache between the E and M parts.
cdef idx_t _BLOCK = 512
cdef idx_t _SCRATCH = 262144


cdef inline void _gemm(char *ta, char *tb, int m, int n, int k, const real *a, int lda,
                       const real *b, int ldb, real *c, int ldc) noexcept nogil:
    """Column-major C = op(A) op(B) (alpha 1, beta 0)."""
    cdef double one = 1.0, zero = 0.0
    cdef float fone = 1.0, fzero = 0.0
    if real is double:
        dgemm(ta, tb, &m, &n, &k, &one, <double *> a, &lda, <double *> b, &ldb, &zero,
              c, &ldc)
    else:
        sgemm(ta, tb, &m, &n, &k, &fone, <float *> a, &lda, <float *> b, &ldb, &fzero,
              c, &ldc)


cdef inline double _normalise_row(double *lp, idx_t K) noexcept nogil:
    """Replace log densities ``lp[:K]`` by responsibilities; return log-sum-exp."""
    cdef idx_t k
    cdef double m = lp[0], s = 0.0, e
    for k in range(1, K):
        if lp[k] > m:
            m = lp[k]
    for k in range(K):
        e = exp(lp[k] - m)
        lp[k] = e
        s += e
    e = 1.0 / s
    for k in range(K):
        lp[k] *= e
    return m + log(s)


def em_pass_full(const real[:, ::1] X, const real[:, ::1] means,
                 const real[:, :, ::1] prec_chol, const double[::1] log_const,
                 real[:, ::1] log_resp_out, double[::1] log_norm_out,
                 double[::1] nk_out, double[:, ::1] sum_out,
                 double[:, :, ::1] scatter_out, const unsigned char[::1] cancel=None):
    """E-step and M-step statistics for full (or tied) covariances, one pass.

    ``prec_chol`` is (K, d, d) or (1, d, d) (tied); component k's Mahalanobis term is
    ``||(x - mu_k) P_k||^2`` (PRML eq. 2.43). ``log_const[k]`` is
    ``log w_k + log|det P_k| - d/2 log(2 pi)``.

    Assumes: arrays validated, C-contiguous, finite; d, n < 2**31.
    Writes ``log_resp_out`` (n, K) and ``log_norm_out`` (n,) when they have n rows
    (pass 0 rows to skip), and the statistics about the current means
    ``nk_out`` (K,), ``sum_out`` (K, d), ``scatter_out`` (K, d, d) when ``nk_out`` has
    K entries (else skipped). Returns ``sum_n log p(x_n)`` (double).
    ``cancel`` (one byte, optional) is polled with Ctrl-C: a nonzero value set by
    another thread stops the pass (``_parallel.run_blocks``).
    """
    cdef idx_t n = X.shape[0], d = X.shape[1], K = means.shape[0]
    cdef idx_t Kp = prec_chol.shape[0]
    cdef bint want_resp = log_resp_out.shape[0] == n
    cdef bint want_norm = log_norm_out.shape[0] == n
    cdef bint want_stats = nk_out.shape[0] == K
    if (means.shape[1] != d or (Kp != K and Kp != 1) or prec_chol.shape[1] != d
            or prec_chol.shape[2] != d or log_const.shape[0] != K or K < 1 or d < 1):
        raise ValueError(f"em_pass_full: shape mismatch (n={n}, d={d}, K={K})")
    if want_resp and log_resp_out.shape[1] != K:
        raise ValueError("em_pass_full: log_resp_out must be (n, K)")
    if want_stats and (sum_out.shape[0] != K or sum_out.shape[1] != d
                       or scatter_out.shape[0] != K or scatter_out.shape[1] != d
                       or scatter_out.shape[2] != d):
        raise ValueError("em_pass_full: statistics outputs must be (K,), (K, d), (K, d, d)")
    cdef idx_t B = min(_BLOCK, max(16, _SCRATCH // (K * d)), n)
    dt = np.float32 if real is float else np.float64
    cdef real[:, :, ::1] Dbuf = np.empty((K, B, d), dtype=dt)
    cdef real[:, ::1] Y = np.empty((B, d), dtype=dt)
    cdef real[:, ::1] S = np.empty((d, d), dtype=dt)
    cdef double[:, ::1] LP = np.empty((B, K))
    cdef idx_t start, nb, i, j, k
    cdef double total = 0.0, acc, v, r, ln
    cdef real *Dk
    cdef real *yr
    cdef const real *P
    cdef const real *mk
    cdef const real *xr
    cdef double *sk
    cdef double *sc
    cdef double rsum
    cdef int di = <int> d, nbi
    cdef idx_t left = POLL_WORK
    if cancel is not None and cancel.shape[0] != 1:
        raise ValueError("cancel must hold one byte")
    cdef const unsigned char *stop = NULL if cancel is None else &cancel[0]
    with nogil:
        if want_stats:
            for k in range(K):
                nk_out[k] = 0.0
                for i in range(d):
                    sum_out[k, i] = 0.0
                    for j in range(d):
                        scatter_out[k, i, j] = 0.0
        start = 0
        while start < n:
            nb = min(B, n - start)
            poll(&left, 4 * nb * K * (d * d + 4), stop)
            nbi = <int> nb
            for k in range(K):
                Dk = &Dbuf[k, 0, 0]
                mk = &means[k, 0]
                xr = &X[start, 0]
                for i in range(nb):
                    for j in range(d):
                        Dk[i * d + j] = xr[i * d + j] - mk[j]
                P = &prec_chol[k if Kp == K else 0, 0, 0]
                # Y (nb x d, row-major) = D P: column-major Y^T = P^T D^T.
                _gemm(b"N", b"N", di, nbi, di, P, di, Dk, di, &Y[0, 0], di)
                yr = &Y[0, 0]
                for i in range(nb):
                    acc = 0.0
                    for j in range(d):
                        v = yr[j]
                        acc += v * v
                    yr += d
                    LP[i, k] = log_const[k] - 0.5 * acc
            for i in range(nb):
                if want_resp:
                    for k in range(K):
                        log_resp_out[start + i, k] = <real> LP[i, k]
                ln = _normalise_row(&LP[i, 0], K)
                total += ln
                if want_resp:
                    for k in range(K):
                        log_resp_out[start + i, k] = <real> (log_resp_out[start + i, k] - ln)
                if want_norm:
                    log_norm_out[start + i] = ln
            if want_stats:
                for k in range(K):
                    Dk = &Dbuf[k, 0, 0]
                    sk = &sum_out[k, 0]
                    yr = &Y[0, 0]
                    rsum = 0.0
                    for i in range(nb):
                        r = LP[i, k]
                        rsum += r
                        for j in range(d):
                            yr[j] = <real> (r * Dk[j])
                            sk[j] += yr[j]
                        yr += d
                        Dk += d
                    nk_out[k] += rsum
                    Dk = &Dbuf[k, 0, 0]
                    # S (d x d) = D^T diag(r) D: column-major S = (D^T) (W^T)^T.
                    _gemm(b"N", b"T", di, di, nbi, Dk, di, &Y[0, 0], di, &S[0, 0], di)
                    sc = &scatter_out[k, 0, 0]
                    for i in range(d * d):
                        sc[i] += (&S[0, 0])[i]
            start += nb
    return total


def em_pass_diag(const real[:, ::1] X, const real[:, ::1] means,
                 const real[:, ::1] prec_chol, const double[::1] log_const,
                 real[:, ::1] log_resp_out, double[::1] log_norm_out,
                 double[::1] nk_out, double[:, ::1] sum_out, double[:, ::1] sumsq_out,
                 const unsigned char[::1] cancel=None):
    """E-step and M-step statistics for diagonal (or spherical) covariances, one pass.

    ``prec_chol[k, j]`` is ``1 / sigma_kj``; the Mahalanobis term is
    ``sum_j ((x_j - mu_kj) prec_chol[k, j])^2``. Outputs as in :func:`em_pass_full`,
    with ``sumsq_out[k, j] = sum_n r_nk (x_nj - mu_kj)^2`` (K, d) in place of the
    scatter matrices.

    Assumes: arrays validated, C-contiguous, finite.
    Returns ``sum_n log p(x_n)`` (double); ``cancel`` as in :func:`em_pass_full`.
    """
    cdef idx_t n = X.shape[0], d = X.shape[1], K = means.shape[0]
    cdef bint want_resp = log_resp_out.shape[0] == n
    cdef bint want_norm = log_norm_out.shape[0] == n
    cdef bint want_stats = nk_out.shape[0] == K
    if (means.shape[1] != d or prec_chol.shape[0] != K or prec_chol.shape[1] != d
            or log_const.shape[0] != K or K < 1 or d < 1):
        raise ValueError(f"em_pass_diag: shape mismatch (n={n}, d={d}, K={K})")
    if want_resp and log_resp_out.shape[1] != K:
        raise ValueError("em_pass_diag: log_resp_out must be (n, K)")
    if want_stats and (sum_out.shape[0] != K or sum_out.shape[1] != d
                       or sumsq_out.shape[0] != K or sumsq_out.shape[1] != d):
        raise ValueError("em_pass_diag: statistics outputs must be (K,), (K, d), (K, d)")
    cdef double[::1] LP = np.empty(K)
    cdef idx_t i, j, k
    cdef double total = 0.0, acc, v, r, ln
    cdef idx_t left = POLL_WORK
    if cancel is not None and cancel.shape[0] != 1:
        raise ValueError("cancel must hold one byte")
    cdef const unsigned char *stop = NULL if cancel is None else &cancel[0]
    with nogil:
        if want_stats:
            for k in range(K):
                nk_out[k] = 0.0
                for j in range(d):
                    sum_out[k, j] = 0.0
                    sumsq_out[k, j] = 0.0
        for i in range(n):
            poll(&left, 8 * K * d + 16, stop)
            for k in range(K):
                acc = 0.0
                for j in range(d):
                    v = (X[i, j] - means[k, j]) * prec_chol[k, j]
                    acc += v * v
                LP[k] = log_const[k] - 0.5 * acc
            if want_resp:
                for k in range(K):
                    log_resp_out[i, k] = <real> LP[k]
            ln = _normalise_row(&LP[0], K)
            total += ln
            if want_resp:
                for k in range(K):
                    log_resp_out[i, k] = <real> (log_resp_out[i, k] - ln)
            if want_norm:
                log_norm_out[i] = ln
            if want_stats:
                for k in range(K):
                    r = LP[k]
                    nk_out[k] += r
                    for j in range(d):
                        v = X[i, j] - means[k, j]
                        sum_out[k, j] += r * v
                        sumsq_out[k, j] += r * v * v
    return total
