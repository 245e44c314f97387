"""Linear dynamical system kernels: Kalman filter and Rauch-Tung-Striebel smoother.

Small dense matrices (state dimension n, observation dimension p) in row-major order,
hand-written loops, no explicit inverses: the innovation covariance and the predicted
covariance are factorised by Cholesky and solved against. Covariance updates use the
Joseph form and are symmetrised after every step. float64 only (the recursions
subtract nearly equal covariances; float32 loses positive definiteness).
"""
import numpy as np

from libc.math cimport log, sqrt

from fastml._kernels._interrupt cimport POLL_WORK, poll
from fastml._kernels._types cimport idx_t

cdef double _LOG_2PI = 1.8378770664093453


cdef inline void _matmul(const double *A, const double *B, double *C, idx_t m,
                         idx_t k, idx_t n) noexcept nogil:
    """C (m x n) = A (m x k) B (k x n)."""
    cdef idx_t i, j, l
    cdef double a
    for i in range(m):
        for j in range(n):
            C[i * n + j] = 0.0
        for l in range(k):
            a = A[i * k + l]
            for j in range(n):
                C[i * n + j] += a * B[l * n + j]


cdef inline void _matmul_bt(const double *A, const double *B, double *C, idx_t m,
                            idx_t k, idx_t n) noexcept nogil:
    """C (m x n) = A (m x k) B^T with B (n x k)."""
    cdef idx_t i, j, l
    cdef double s
    for i in range(m):
        for j in range(n):
            s = 0.0
            for l in range(k):
                s += A[i * k + l] * B[j * k + l]
            C[i * n + j] = s


cdef inline void _symmetrize(double *P, idx_t n) noexcept nogil:
    cdef idx_t i, j
    cdef double s
    for i in range(n):
        for j in range(i + 1, n):
            s = 0.5 * (P[i * n + j] + P[j * n + i])
            P[i * n + j] = s
            P[j * n + i] = s


cdef inline int _cholesky(const double *S, double *L, idx_t q) noexcept nogil:
    """Lower Cholesky factor of the SPD matrix S (q x q); -1 if not positive definite."""
    cdef idx_t i, j, l
    cdef double s
    for i in range(q):
        for j in range(i + 1):
            s = S[i * q + j]
            for l in range(j):
                s -= L[i * q + l] * L[j * q + l]
            if i == j:
                if not s > 0.0:
                    return -1
                L[i * q + i] = sqrt(s)
            else:
                L[i * q + j] = s / L[j * q + j]
        for j in range(i + 1, q):
            L[i * q + j] = 0.0
    return 0


cdef inline void _chol_solve(const double *L, double *B, idx_t q, idx_t ncols) noexcept nogil:
    """Solve (L L^T) X = B in place; B is (q x ncols)."""
    cdef idx_t i, l, c
    cdef double s
    for c in range(ncols):
        for i in range(q):
            s = B[i * ncols + c]
            for l in range(i):
                s -= L[i * q + l] * B[l * ncols + c]
            B[i * ncols + c] = s / L[i * q + i]
        for i in range(q - 1, -1, -1):
            s = B[i * ncols + c]
            for l in range(i + 1, q):
                s -= L[l * q + i] * B[l * ncols + c]
            B[i * ncols + c] = s / L[i * q + i]


cdef inline int _kf_step(idx_t t, idx_t n, idx_t p, const double *A, const double *b,
                         const double *C, const double *d, const double *Q,
                         const double *R, const double *mu0, const double *V0,
                         const double *y, double *mp, double *Pp, const double *m_prev,
                         const double *P_prev, double *m, double *P, double *ll_out,
                         idx_t *obs, double *work) noexcept nogil:
    """One predict + update step (see :func:`kalman_filter`); -1 if S is not PD.

    ``inline`` so that the dispatch in :func:`kalman_filter` can pass a constant n and
    let the compiler unroll the small matrix loops.
    """
    cdef double *Cq = work
    cdef double *CP = Cq + p * n
    cdef double *Kt = CP + p * n
    cdef double *KR = Kt + p * n
    cdef double *S = KR + p * n
    cdef double *L = S + p * p
    cdef double *Rq = L + p * p
    cdef double *IKC = Rq + p * p
    cdef double *tmp = IKC + n * n
    cdef double *AP = tmp + n * n
    cdef double *v = AP + n * n
    cdef double *w = v + p
    cdef idx_t i, j, a, c, q
    cdef double s, ll
    # Predict (PRML eqs. 13.88, 13.89); row 0 is the prior.
    if t == 0:
        for i in range(n):
            mp[i] = mu0[i]
        for i in range(n * n):
            Pp[i] = V0[i]
    else:
        for i in range(n):
            s = b[i]
            for j in range(n):
                s += A[i * n + j] * m_prev[j]
            mp[i] = s
        _matmul(A, P_prev, AP, n, n, n)
        _matmul_bt(AP, A, Pp, n, n, n)
        for i in range(n * n):
            Pp[i] += Q[i]
        _symmetrize(Pp, n)
    q = 0
    for a in range(p):
        if y[a] == y[a]:
            obs[q] = a
            q += 1
    if q == 0:
        for i in range(n):
            m[i] = mp[i]
        for i in range(n * n):
            P[i] = Pp[i]
        ll_out[0] = 0.0
        return 0
    # Observed rows of C, innovation v, S = C_o P- C_o^T + R_oo.
    for a in range(q):
        for j in range(n):
            Cq[a * n + j] = C[obs[a] * n + j]
        s = y[obs[a]] - d[obs[a]]
        for j in range(n):
            s -= Cq[a * n + j] * mp[j]
        v[a] = s
        for c in range(q):
            Rq[a * q + c] = R[obs[a] * p + obs[c]]
    _matmul(Cq, Pp, CP, q, n, n)
    _matmul_bt(CP, Cq, S, q, n, q)
    for a in range(q * q):
        S[a] += Rq[a]
    _symmetrize(S, q)
    if _cholesky(S, L, q) != 0:
        return -1
    # log N(v | 0, S) via L^-1 v (forward substitution).
    ll = 0.0
    for a in range(q):
        s = v[a]
        for c in range(a):
            s -= L[a * q + c] * w[c]
        w[a] = s / L[a * q + a]
        ll += w[a] * w[a] + 2.0 * log(L[a * q + a])
    ll_out[0] = -0.5 * (ll + q * _LOG_2PI)
    # K^T = S^-1 C_o P- (PRML eq. 13.92 without the inverse).
    for a in range(q * n):
        Kt[a] = CP[a]
    _chol_solve(L, Kt, q, n)
    for i in range(n):
        s = mp[i]
        for a in range(q):
            s += Kt[a * n + i] * v[a]
        m[i] = s
    # Joseph form: P = (I - K C) P- (I - K C)^T + K R K^T.
    for i in range(n):
        for j in range(n):
            s = 1.0 if i == j else 0.0
            for a in range(q):
                s -= Kt[a * n + i] * Cq[a * n + j]
            IKC[i * n + j] = s
    _matmul(IKC, Pp, tmp, n, n, n)
    _matmul_bt(tmp, IKC, P, n, n, n)
    for i in range(n):
        for c in range(q):
            s = 0.0
            for a in range(q):
                s += Kt[a * n + i] * Rq[a * q + c]
            KR[i * q + c] = s
    for i in range(n):
        for j in range(n):
            s = 0.0
            for c in range(q):
                s += KR[i * q + c] * Kt[c * n + j]
            P[i * n + j] += s
    _symmetrize(P, n)
    return 0


def kalman_filter(const double[:, :, ::1] A, const double[:, ::1] b,
                  const double[:, :, ::1] C, const double[:, ::1] d,
                  const double[:, :, ::1] Q, const double[:, :, ::1] R,
                  const double[::1] mu0, const double[:, ::1] V0,
                  const double[:, ::1] Y, double[:, ::1] pred_mean,
                  double[:, :, ::1] pred_cov, double[:, ::1] filt_mean,
                  double[:, :, ::1] filt_cov, double[::1] loglik_out):
    """Kalman filter (PRML eqs. 13.89-13.92) with NaN entries of ``Y`` missing.

    Predict ``m- = A m + b``, ``P- = A P A^T + Q`` (row 0: ``mu0``, ``V0``). Update on
    the observed entries o of ``y_t`` only: ``S = C_o P- C_o^T + R_oo`` (Cholesky),
    ``K = P- C_o^T S^-1`` (solve, no inverse), ``m = m- + K (y_o - C_o m- - d_o)`` and
    the Joseph form ``P = (I - K C_o) P- (I - K C_o)^T + K R_oo K^T`` (symmetrised). A
    row with no observed entry skips the update and contributes 0 to the likelihood.
    ``loglik_out[t] = log N(y_o | C_o m- + d_o, S)`` (prediction error decomposition).

    Parameters have a leading time axis of length 1 (time-invariant) or one entry per
    step: the transition into step t uses ``A[t - 1], b[t - 1], Q[t - 1]`` (at least
    T - 1 entries), observation t uses ``C[t], d[t], R[t]`` (at least T entries).

    Returns 0, or t + 1 when S at step t is not positive definite.
    Assumes: shapes consistent, parameters finite, covariances symmetric PSD.
    """
    cdef idx_t n = A.shape[1], p = C.shape[1], T = Y.shape[0]
    cdef idx_t nA = A.shape[0], nb = b.shape[0], nC = C.shape[0], nd = d.shape[0]
    cdef idx_t nQ = Q.shape[0], nR = R.shape[0]
    if (A.shape[2] != n or b.shape[1] != n or C.shape[2] != n or d.shape[1] != p
            or Q.shape[1] != n or Q.shape[2] != n or R.shape[1] != p
            or R.shape[2] != p or mu0.shape[0] != n or V0.shape[0] != n
            or V0.shape[1] != n or Y.shape[1] != p or pred_mean.shape[0] != T
            or pred_mean.shape[1] != n or filt_mean.shape[0] != T
            or filt_mean.shape[1] != n or pred_cov.shape[0] != T
            or pred_cov.shape[1] != n or pred_cov.shape[2] != n
            or filt_cov.shape[0] != T or filt_cov.shape[1] != n
            or filt_cov.shape[2] != n or loglik_out.shape[0] != T or T == 0
            or nA < 1 or nb < 1 or nQ < 1 or nC < 1 or nd < 1 or nR < 1
            or (nA > 1 and nA < T - 1) or (nb > 1 and nb < T - 1)
            or (nQ > 1 and nQ < T - 1) or (nC > 1 and nC < T)
            or (nd > 1 and nd < T) or (nR > 1 and nR < T)):
        raise ValueError(f"kalman_filter: shape mismatch (n={n}, p={p}, T={T})")
    cdef idx_t[::1] obs = np.empty(p, dtype=np.intp)
    cdef double[::1] work = np.empty(4 * p * n + 3 * p * p + 3 * n * n + 2 * p)
    cdef idx_t t, tp, it, io
    cdef int status = 0, st
    cdef idx_t left = POLL_WORK
    with nogil:
        for t in range(T):
            poll(&left, 8 * (n + p) * (n + p) * (n + p) + 64, NULL)
            tp = t - 1 if t > 0 else 0
            it = tp if nA > 1 else 0
            io = t if nC > 1 else 0
            # Constant n for small states: the compiler unrolls the matrix loops.
            if n == 2:
                st = _kf_step(t, 2, p, &A[it, 0, 0], &b[tp if nb > 1 else 0, 0],
                              &C[io, 0, 0], &d[t if nd > 1 else 0, 0],
                              &Q[tp if nQ > 1 else 0, 0, 0],
                              &R[t if nR > 1 else 0, 0, 0], &mu0[0], &V0[0, 0],
                              &Y[t, 0], &pred_mean[t, 0], &pred_cov[t, 0, 0],
                              &filt_mean[tp, 0], &filt_cov[tp, 0, 0], &filt_mean[t, 0],
                              &filt_cov[t, 0, 0], &loglik_out[t], &obs[0], &work[0])
            elif n == 4:
                st = _kf_step(t, 4, p, &A[it, 0, 0], &b[tp if nb > 1 else 0, 0],
                              &C[io, 0, 0], &d[t if nd > 1 else 0, 0],
                              &Q[tp if nQ > 1 else 0, 0, 0],
                              &R[t if nR > 1 else 0, 0, 0], &mu0[0], &V0[0, 0],
                              &Y[t, 0], &pred_mean[t, 0], &pred_cov[t, 0, 0],
                              &filt_mean[tp, 0], &filt_cov[tp, 0, 0], &filt_mean[t, 0],
                              &filt_cov[t, 0, 0], &loglik_out[t], &obs[0], &work[0])
            else:
                st = _kf_step(t, n, p, &A[it, 0, 0], &b[tp if nb > 1 else 0, 0],
                              &C[io, 0, 0], &d[t if nd > 1 else 0, 0],
                              &Q[tp if nQ > 1 else 0, 0, 0],
                              &R[t if nR > 1 else 0, 0, 0], &mu0[0], &V0[0, 0],
                              &Y[t, 0], &pred_mean[t, 0], &pred_cov[t, 0, 0],
                              &filt_mean[tp, 0], &filt_cov[tp, 0, 0], &filt_mean[t, 0],
                              &filt_cov[t, 0, 0], &loglik_out[t], &obs[0], &work[0])
            if st != 0:
                status = t + 1
                break
    return status


cdef inline int _rts_step(idx_t n, const double *A, const double *m_f,
                          const double *P_f, const double *m_p1, const double *P_p1,
                          const double *m_s1, const double *P_s1, double *m_s,
                          double *P_s, double *cross1, double *work) noexcept nogil:
    """One RTS step (see :func:`rts_smooth`); -1 if P-_{t+1} is not PD."""
    cdef double *L = work
    cdef double *Jt = L + n * n
    cdef double *D = Jt + n * n
    cdef double *tmp = D + n * n
    cdef double *diff = tmp + n * n
    cdef idx_t i, j, k
    cdef double s
    if _cholesky(P_p1, L, n) != 0:
        return -1
    # J^T = (P-_{t+1})^-1 A P_t  (both covariances symmetric).
    _matmul(A, P_f, Jt, n, n, n)
    _chol_solve(L, Jt, n, n)
    for k in range(n):
        diff[k] = m_s1[k] - m_p1[k]
    for i in range(n):
        s = m_f[i]
        for k in range(n):
            s += Jt[k * n + i] * diff[k]
        m_s[i] = s
    for i in range(n * n):
        D[i] = P_s1[i] - P_p1[i]
    # tmp = J D, then P^_t = P_t + tmp J^T.
    for i in range(n):
        for j in range(n):
            s = 0.0
            for k in range(n):
                s += Jt[k * n + i] * D[k * n + j]
            tmp[i * n + j] = s
    _matmul(tmp, Jt, P_s, n, n, n)
    for i in range(n * n):
        P_s[i] += P_f[i]
    _symmetrize(P_s, n)
    _matmul(P_s1, Jt, cross1, n, n, n)
    return 0


def rts_smooth(const double[:, :, ::1] A, const double[:, ::1] pred_mean,
               const double[:, :, ::1] pred_cov, const double[:, ::1] filt_mean,
               const double[:, :, ::1] filt_cov, double[:, ::1] smooth_mean,
               double[:, :, ::1] smooth_cov, double[:, :, ::1] cross_cov):
    """Rauch-Tung-Striebel smoother (PRML eqs. 13.100-13.102) and lag-one covariances.

    ``J_t = P_t A^T (P-_{t+1})^-1`` from a Cholesky solve with ``P-_{t+1}``;
    ``m^_t = m_t + J_t (m^_{t+1} - m-_{t+1})``,
    ``P^_t = P_t + J_t (P^_{t+1} - P-_{t+1}) J_t^T`` (symmetrised), and
    ``cross_cov[t + 1] = cov(z_{t+1}, z_t | X) = P^_{t+1} J_t^T`` (PRML eq. 13.104),
    which EM needs; ``cross_cov[0]`` is set to 0.

    ``A`` has a leading time axis of length 1 or at least T - 1 (``A[t]`` maps step
    t to t + 1), as in :func:`kalman_filter`.

    Returns 0, or t + 1 when the predicted covariance at t + 1 is not positive definite.
    Assumes: inputs from :func:`kalman_filter` with the same ``A``.
    """
    cdef idx_t n = A.shape[1], T = pred_mean.shape[0], nA = A.shape[0]
    if (A.shape[2] != n or nA < 1 or (nA > 1 and nA < T - 1)
            or pred_mean.shape[1] != n or filt_mean.shape[0] != T
            or filt_mean.shape[1] != n or smooth_mean.shape[0] != T
            or smooth_mean.shape[1] != n or pred_cov.shape[0] != T
            or pred_cov.shape[1] != n or pred_cov.shape[2] != n
            or filt_cov.shape[0] != T or filt_cov.shape[1] != n
            or filt_cov.shape[2] != n or smooth_cov.shape[0] != T
            or smooth_cov.shape[1] != n or smooth_cov.shape[2] != n
            or cross_cov.shape[0] != T or cross_cov.shape[1] != n
            or cross_cov.shape[2] != n or T == 0):
        raise ValueError(f"rts_smooth: shape mismatch (n={n}, T={T})")
    cdef double[::1] work = np.empty(4 * n * n + n)
    cdef idx_t t, i, j, ia
    cdef int status = 0, st
    cdef idx_t left = POLL_WORK
    with nogil:
        for i in range(n):
            smooth_mean[T - 1, i] = filt_mean[T - 1, i]
            for j in range(n):
                smooth_cov[T - 1, i, j] = filt_cov[T - 1, i, j]
                cross_cov[0, i, j] = 0.0
        for t in range(T - 2, -1, -1):
            poll(&left, 8 * n * n * n + 64, NULL)
            ia = t if nA > 1 else 0
            if n == 2:
                st = _rts_step(2, &A[ia, 0, 0], &filt_mean[t, 0], &filt_cov[t, 0, 0],
                               &pred_mean[t + 1, 0], &pred_cov[t + 1, 0, 0],
                               &smooth_mean[t + 1, 0], &smooth_cov[t + 1, 0, 0],
                               &smooth_mean[t, 0], &smooth_cov[t, 0, 0],
                               &cross_cov[t + 1, 0, 0], &work[0])
            elif n == 4:
                st = _rts_step(4, &A[ia, 0, 0], &filt_mean[t, 0], &filt_cov[t, 0, 0],
                               &pred_mean[t + 1, 0], &pred_cov[t + 1, 0, 0],
                               &smooth_mean[t + 1, 0], &smooth_cov[t + 1, 0, 0],
                               &smooth_mean[t, 0], &smooth_cov[t, 0, 0],
                               &cross_cov[t + 1, 0, 0], &work[0])
            else:
                st = _rts_step(n, &A[ia, 0, 0], &filt_mean[t, 0], &filt_cov[t, 0, 0],
                               &pred_mean[t + 1, 0], &pred_cov[t + 1, 0, 0],
                               &smooth_mean[t + 1, 0], &smooth_cov[t + 1, 0, 0],
                               &smooth_mean[t, 0], &smooth_cov[t, 0, 0],
                               &cross_cov[t + 1, 0, 0], &work[0])
            if st != 0:
                status = t + 1
                break
    return status
