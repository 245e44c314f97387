"""Linear dynamical system kernels: Kalman filter and Rauch-Tung-Striebel smoother.

Small dense matrices (state dimension n, observation dimension p) in row-major order,
hand-written loops, no explicit inverses: the innovation covariance and the predicted
covariance are factorised by Cholesky and solved against. Covariance updates use the
Joseph form and are symmetrised after every step. float64 only (the recursions
subtract nearly equal covariances; float32 loses positive definiteness).
"""
cimport cython
import numpy as np

from libc.math cimport log, sqrt
from libc.string cimport memcpy

from fastml._kernels._interrupt cimport POLL_WORK, poll
from fastml._kernels._types cimport idx_t

cdef double _LOG_2PI = 1.8378770664093453


cdef struct _Model:
    # Shared parameters; each n* is the length of the leading time axis (1: constant).
    const double *A
    const double *b
    const double *C
    const double *d
    const double *Q
    const double *R
    const double *mu0
    const double *V0
    idx_t nA, nb, nC, nd, nQ, nR, n, p


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


cdef inline void _kf_mean_step(idx_t t, idx_t n, idx_t q, const double *A,
                               const double *b, const double *C, const double *d,
                               const double *mu0, const double *y, double *mp,
                               const double *m_prev, double *m, double *ll_out,
                               const idx_t *obs, const double *Kt, const double *L,
                               double *work) noexcept nogil:
    """The means and log-likelihood of one step (PRML eqs. 13.88, 13.91, 13.92), given
    the observed indices ``obs``, K^T and the Cholesky factor L of S: called by
    :func:`_kf_step`, and alone for a series missing the same entries as the one
    that left them (same operations, same bits).

    ``mp = A m_prev + b`` (row 0: ``mu0``), ``v = y_o - C_o mp - d_o``,
    ``log N(v | 0, S)`` via ``L^-1 v``, ``m = mp + K v``.
    """
    cdef double *v = work
    cdef double *w = v + q
    cdef idx_t i, j, a, c
    cdef double s, ll
    if t == 0:
        for i in range(n):
            mp[i] = mu0[i]
    else:
        for i in range(n):
            s = b[i]
            for j in range(n):
                s += A[i * n + j] * m_prev[j]
            mp[i] = s
    if q == 0:
        for i in range(n):
            m[i] = mp[i]
        ll_out[0] = 0.0
        return
    for a in range(q):
        s = y[obs[a]] - d[obs[a]]
        for j in range(n):
            s -= C[obs[a] * n + j] * mp[j]
        v[a] = s
    # log N(v | 0, S) via L^-1 v (forward substitution).
    ll = 0.0
    for a in range(q):
        s = v[a]
        for c in range(a):
            s -= L[a * q + c] * w[c]
        w[a] = s / L[a * q + a]
        ll += w[a] * w[a] + 2.0 * log(L[a * q + a])
    ll_out[0] = -0.5 * (ll + q * _LOG_2PI)
    for i in range(n):
        s = mp[i]
        for a in range(q):
            s += Kt[a * n + i] * v[a]
        m[i] = s


cdef inline int _kf_step(idx_t t, idx_t n, idx_t p, const double *A, const double *b,
                         const double *C, const double *d, const double *Q,
                         const double *R, const double *mu0, const double *V0,
                         const double *y, double *mp, double *Pp, const double *m_prev,
                         const double *P_prev, double *m, double *P, double *ll_out,
                         idx_t *obs, double *Kt, double *L,
                         double *work) noexcept nogil:
    """One predict + update step (see :func:`kalman_filter`): the number q of observed
    entries of y, or -1 if S is not PD.

    Leaves the observed indices in ``obs``, K^T (q x n) in ``Kt`` and the Cholesky
    factor of S (q x q) in ``L``: with the predicted moments they are all
    :func:`_kf_mean_step` (which computes the means here too) needs to filter another
    series with the same missing entries. ``inline`` so that the dispatch in
    :func:`_filter_series` can pass a constant n and let the compiler unroll the small
    matrix loops.
    """
    cdef double *Cq = work
    cdef double *CP = Cq + p * n
    cdef double *KR = CP + p * n
    cdef double *S = KR + p * n
    cdef double *Rq = S + p * p
    cdef double *IKC = Rq + p * p
    cdef double *tmp = IKC + n * n
    cdef double *AP = tmp + n * n
    cdef double *mwork = AP + n * n
    cdef idx_t i, j, a, c, q
    cdef double s
    # Predict the covariance (PRML eq. 13.89; row 0 is the prior).
    if t == 0:
        for i in range(n * n):
            Pp[i] = V0[i]
    else:
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
        for i in range(n * n):
            P[i] = Pp[i]
        _kf_mean_step(t, n, 0, A, b, C, d, mu0, y, mp, m_prev, m, ll_out, obs, Kt, L,
                      mwork)
        return 0
    # Observed rows of C, S = C_o P- C_o^T + R_oo.
    for a in range(q):
        for j in range(n):
            Cq[a * n + j] = C[obs[a] * n + j]
        for c in range(q):
            Rq[a * q + c] = R[obs[a] * p + obs[c]]
    _matmul(Cq, Pp, CP, q, n, n)
    _matmul_bt(CP, Cq, S, q, n, q)
    for a in range(q * q):
        S[a] += Rq[a]
    _symmetrize(S, q)
    if _cholesky(S, L, q) != 0:
        return -1
    # K^T = S^-1 C_o P- (PRML eq. 13.92 without the inverse).
    for a in range(q * n):
        Kt[a] = CP[a]
    _chol_solve(L, Kt, q, n)
    _kf_mean_step(t, n, q, A, b, C, d, mu0, y, mp, m_prev, m, ll_out, obs, Kt, L,
                  mwork)
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
    return q


cdef struct _Cache:
    # Per-step quantities that do not depend on the observed values, only on which
    # entries are missing: left by a fully computed series (the block's reference),
    # reused by the following series that miss the same entries.
    idx_t *obs      # (T, p) observed indices at each step
    idx_t *q        # (T,) number observed
    double *Kt      # (T, p, n) K^T
    double *L       # (T, p, p) Cholesky factor of S
    double *Jt      # (T, n, n) smoother gain J^T


cdef bint _same_missing(const double *Y1, const double *Y2, idx_t size) noexcept nogil:
    cdef idx_t i
    for i in range(size):
        if (Y1[i] == Y1[i]) != (Y2[i] == Y2[i]):
            return False
    return True


cdef idx_t _filter_series(const _Model *M, idx_t T, const double *Y, double *pm,
                          double *pc, bint keep_pred, double *fm, double *fc,
                          double *ll, bint shared, _Cache *K, double *work,
                          idx_t *left, const unsigned char *cancel) except -1 nogil:
    """Filter one series (T x p observations ``Y``); 0, or t + 1 if S_t is not PD.

    ``pm``/``pc`` hold the predicted moments of every step when ``keep_pred``, else of
    the current step only (one slot reused). Fills ``K``; with ``shared`` (``K``
    filled by a series with the same missing entries) only the means and the
    log-likelihood are computed, and ``pc``/``fc`` are left as they are.
    """
    cdef idx_t n = M.n, p = M.p, t, tp, it, io, ib, iq, id_, ir
    cdef idx_t n2 = n * n, q
    cdef double *mp
    cdef double *Pp
    for t in range(T):
        tp = t - 1 if t > 0 else 0
        it = tp if M.nA > 1 else 0
        ib = tp if M.nb > 1 else 0
        io = t if M.nC > 1 else 0
        id_ = t if M.nd > 1 else 0
        mp = pm + t * n if keep_pred else pm
        if shared:
            poll(left, 4 * (n + p) * n + 64, cancel)
            q = K.q[t]
            # Constant n for small states: the compiler unrolls the matrix loops.
            if n == 2:
                _kf_mean_step(t, 2, q, M.A + it * n2, M.b + ib * n, M.C + io * p * n,
                              M.d + id_ * p, M.mu0, Y + t * p, mp, fm + tp * n,
                              fm + t * n, ll + t, K.obs + t * p, K.Kt + t * p * n,
                              K.L + t * p * p, work)
            elif n == 4:
                _kf_mean_step(t, 4, q, M.A + it * n2, M.b + ib * n, M.C + io * p * n,
                              M.d + id_ * p, M.mu0, Y + t * p, mp, fm + tp * n,
                              fm + t * n, ll + t, K.obs + t * p, K.Kt + t * p * n,
                              K.L + t * p * p, work)
            else:
                _kf_mean_step(t, n, q, M.A + it * n2, M.b + ib * n, M.C + io * p * n,
                              M.d + id_ * p, M.mu0, Y + t * p, mp, fm + tp * n,
                              fm + t * n, ll + t, K.obs + t * p, K.Kt + t * p * n,
                              K.L + t * p * p, work)
            continue
        poll(left, 8 * (n + p) * (n + p) * (n + p) + 64, cancel)
        iq = tp if M.nQ > 1 else 0
        ir = t if M.nR > 1 else 0
        Pp = pc + t * n2 if keep_pred else pc
        if n == 2:
            q = _kf_step(t, 2, p, M.A + it * n2, M.b + ib * n, M.C + io * p * n,
                         M.d + id_ * p, M.Q + iq * n2, M.R + ir * p * p, M.mu0, M.V0,
                         Y + t * p, mp, Pp, fm + tp * n, fc + tp * n2, fm + t * n,
                         fc + t * n2, ll + t, K.obs + t * p, K.Kt + t * p * n,
                         K.L + t * p * p, work)
        elif n == 4:
            q = _kf_step(t, 4, p, M.A + it * n2, M.b + ib * n, M.C + io * p * n,
                         M.d + id_ * p, M.Q + iq * n2, M.R + ir * p * p, M.mu0, M.V0,
                         Y + t * p, mp, Pp, fm + tp * n, fc + tp * n2, fm + t * n,
                         fc + t * n2, ll + t, K.obs + t * p, K.Kt + t * p * n,
                         K.L + t * p * p, work)
        else:
            q = _kf_step(t, n, p, M.A + it * n2, M.b + ib * n, M.C + io * p * n,
                         M.d + id_ * p, M.Q + iq * n2, M.R + ir * p * p, M.mu0, M.V0,
                         Y + t * p, mp, Pp, fm + tp * n, fc + tp * n2, fm + t * n,
                         fc + t * n2, ll + t, K.obs + t * p, K.Kt + t * p * n,
                         K.L + t * p * p, work)
        if q < 0:
            return t + 1
        K.q[t] = q
    return 0


@cython.auto_pickle(False)  # private scratch: no pickling functions in the module
cdef class _Scratch:
    """Per-call buffers of the kernels: step workspace and the :class:`_Cache`."""
    cdef double[::1] work, Kt, L, Jt
    cdef idx_t[::1] obs, q
    cdef _Cache K

    def __init__(self, idx_t T, idx_t n, idx_t p):
        self.work = np.empty(max(3 * p * n + 2 * p * p + 3 * n * n + 2 * p,
                                 3 * n * n + n))
        self.obs = np.empty(T * p, dtype=np.intp)
        self.q = np.empty(T, dtype=np.intp)
        self.Kt = np.empty(T * p * n)
        self.L = np.empty(T * p * p)
        self.Jt = np.empty(T * n * n)
        self.K.obs, self.K.q = &self.obs[0], &self.q[0]
        self.K.Kt, self.K.L, self.K.Jt = &self.Kt[0], &self.L[0], &self.Jt[0]


cdef _Model _model(const double[:, :, ::1] A, const double[:, ::1] b,
                   const double[:, :, ::1] C, const double[:, ::1] d,
                   const double[:, :, ::1] Q, const double[:, :, ::1] R,
                   const double[::1] mu0, const double[:, ::1] V0, idx_t T) except *:
    """Check the parameter shapes (O(1)) and point a _Model at them."""
    cdef _Model M
    cdef idx_t n = A.shape[1], p = C.shape[1]
    if (A.shape[2] != n or b.shape[1] != n or C.shape[2] != n or d.shape[1] != p
            or Q.shape[1] != n or Q.shape[2] != n or R.shape[1] != p
            or R.shape[2] != p or mu0.shape[0] != n or V0.shape[0] != n
            or V0.shape[1] != n or T == 0 or A.shape[0] < 1 or b.shape[0] < 1
            or Q.shape[0] < 1 or C.shape[0] < 1 or d.shape[0] < 1 or R.shape[0] < 1
            or (A.shape[0] > 1 and A.shape[0] < T - 1)
            or (b.shape[0] > 1 and b.shape[0] < T - 1)
            or (Q.shape[0] > 1 and Q.shape[0] < T - 1)
            or (C.shape[0] > 1 and C.shape[0] < T)
            or (d.shape[0] > 1 and d.shape[0] < T)
            or (R.shape[0] > 1 and R.shape[0] < T)):
        raise ValueError(f"lds kernel: parameter shape mismatch (n={n}, p={p}, T={T})")
    M.A, M.b, M.C, M.d = &A[0, 0, 0], &b[0, 0], &C[0, 0, 0], &d[0, 0]
    M.Q, M.R, M.mu0, M.V0 = &Q[0, 0, 0], &R[0, 0, 0], &mu0[0], &V0[0, 0]
    M.nA, M.nb, M.nC, M.nd = A.shape[0], b.shape[0], C.shape[0], d.shape[0]
    M.nQ, M.nR, M.n, M.p = Q.shape[0], R.shape[0], n, p
    return M


def kalman_filter(const double[:, :, ::1] A, const double[:, ::1] b,
                  const double[:, :, ::1] C, const double[:, ::1] d,
                  const double[:, :, ::1] Q, const double[:, :, ::1] R,
                  const double[::1] mu0, const double[:, ::1] V0,
                  const double[:, :, ::1] Y, double[:, :, ::1] filt_mean,
                  double[:, :, :, ::1] filt_cov, double[:, ::1] loglik_out,
                  idx_t s0, idx_t s1, const unsigned char[::1] cancel):
    """Kalman filter (PRML eqs. 13.89-13.92) of series ``s0 .. s1 - 1`` of ``Y``
    (n_series, T, p), NaN entries missing, parameters shared by all series.

    Predict ``m- = A m + b``, ``P- = A P A^T + Q`` (row 0: ``mu0``, ``V0``). Update on
    the observed entries o of ``y_t`` only: ``S = C_o P- C_o^T + R_oo`` (Cholesky),
    ``K = P- C_o^T S^-1`` (solve, no inverse), ``m = m- + K (y_o - C_o m- - d_o)`` and
    the Joseph form ``P = (I - K C_o) P- (I - K C_o)^T + K R_oo K^T`` (symmetrised). A
    row with no observed entry skips the update and contributes 0 to the likelihood.
    ``loglik_out[s, t] = log N(y_o | C_o m- + d_o, S)`` (prediction error
    decomposition).

    The covariances, gains and factors depend only on the parameters and on which
    entries are missing: a series missing the same entries as the last fully
    computed series of this call reuses them (its covariances are copied), by the
    same operations in the same order, so its results are those it gets alone.

    Parameters have a leading time axis of length 1 (time-invariant) or one entry per
    step: the transition into step t uses ``A[t - 1], b[t - 1], Q[t - 1]`` (at least
    T - 1 entries), observation t uses ``C[t], d[t], R[t]`` (at least T entries).
    Writes only the rows ``s0 .. s1 - 1`` of the outputs (one thread per block of
    series); polls ``cancel[0]`` (see ``_interrupt.pxd``).

    Returns 0, or s * T + t + 1 for the first series s whose S at step t is not
    positive definite (later series of the block are then not filtered).
    Assumes: parameters finite, covariances symmetric PSD.
    """
    cdef idx_t S = Y.shape[0], T = Y.shape[1]
    cdef _Model M = _model(A, b, C, d, Q, R, mu0, V0, T)
    cdef idx_t n = M.n, p = M.p
    if (Y.shape[2] != p or filt_mean.shape[0] != S or filt_mean.shape[1] != T
            or filt_mean.shape[2] != n or filt_cov.shape[0] != S
            or filt_cov.shape[1] != T or filt_cov.shape[2] != n
            or filt_cov.shape[3] != n or loglik_out.shape[0] != S
            or loglik_out.shape[1] != T or s0 < 0 or s1 > S or s0 > s1
            or cancel.shape[0] != 1):
        raise ValueError(f"kalman_filter: shape mismatch (S={S}, n={n}, p={p}, T={T})")
    cdef _Scratch scr = _Scratch(T, n, p)
    cdef double[::1] pred = np.empty(n + n * n)
    cdef idx_t s, ref = -1, st = 0
    cdef bint shared
    cdef idx_t left = POLL_WORK
    with nogil:
        for s in range(s0, s1):
            shared = ref >= 0 and _same_missing(&Y[ref, 0, 0], &Y[s, 0, 0], T * p)
            st = _filter_series(&M, T, &Y[s, 0, 0], &pred[0], &pred[n], False,
                                &filt_mean[s, 0, 0], &filt_cov[s, 0, 0, 0],
                                &loglik_out[s, 0], shared, &scr.K, &scr.work[0], &left,
                                &cancel[0])
            if st != 0:
                st += s * T
                break
            if shared:
                memcpy(&filt_cov[s, 0, 0, 0], &filt_cov[ref, 0, 0, 0],
                       T * n * n * sizeof(double))
            else:
                ref = s
    return st


cdef inline void _rts_mean_step(idx_t n, const double *Jt, const double *m_f,
                                const double *m_p1, const double *m_s1, double *m_s,
                                double *diff) noexcept nogil:
    """``m^_t = m_t + J_t (m^_{t+1} - m-_{t+1})`` given J^T: called by
    :func:`_rts_step`, and alone for a series missing the same entries as the one
    that left ``Jt`` (same operations, same bits)."""
    cdef idx_t i, k
    cdef double s
    for k in range(n):
        diff[k] = m_s1[k] - m_p1[k]
    for i in range(n):
        s = m_f[i]
        for k in range(n):
            s += Jt[k * n + i] * diff[k]
        m_s[i] = s


cdef inline int _rts_step(idx_t n, const double *A, const double *m_f,
                          const double *P_f, const double *m_p1, const double *P_p1,
                          const double *m_s1, const double *P_s1, double *m_s,
                          double *P_s, double *cross1, double *Jt,
                          double *work) noexcept nogil:
    """One RTS step (see :func:`kalman_smooth`); -1 if P-_{t+1} is not PD.

    ``cross1`` (P^_{t+1} J_t^T) is not computed when NULL. Leaves J^T in ``Jt`` for
    :func:`_rts_mean_step`.
    """
    cdef double *L = work
    cdef double *D = L + n * n
    cdef double *tmp = D + n * n
    cdef double *diff = tmp + n * n
    cdef idx_t i, j, k
    cdef double s
    if _cholesky(P_p1, L, n) != 0:
        return -1
    # J^T = (P-_{t+1})^-1 A P_t  (both covariances symmetric).
    _matmul(A, P_f, Jt, n, n, n)
    _chol_solve(L, Jt, n, n)
    _rts_mean_step(n, Jt, m_f, m_p1, m_s1, m_s, diff)
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
    if cross1 != NULL:
        _matmul(P_s1, Jt, cross1, n, n, n)
    return 0


cdef idx_t _smooth_series(const _Model *M, idx_t T, const double *pm,
                          const double *pc, const double *fm, const double *fc,
                          double *sm, double *sc, double *cc, bint keep_cross,
                          bint shared, _Cache *K, double *work, idx_t *left,
                          const unsigned char *cancel) except -1 nogil:
    """RTS smoother of one filtered series; 0, or t + 1 if P-_{t+1} is not PD.

    ``cc`` receives ``cov(z_t, z_{t-1} | X)`` for every step when ``keep_cross`` (row 0
    set to 0); otherwise it is not computed. Fills ``K.Jt``; with ``shared`` only the
    means are computed (``sc``/``cc`` are the caller's to copy).
    """
    cdef idx_t n = M.n, n2 = n * n, t, i, ia
    cdef double *c1
    cdef int st
    for i in range(n):
        sm[(T - 1) * n + i] = fm[(T - 1) * n + i]
    if not shared:
        for i in range(n2):
            sc[(T - 1) * n2 + i] = fc[(T - 1) * n2 + i]
            if keep_cross:
                cc[i] = 0.0
    for t in range(T - 2, -1, -1):
        if shared:
            poll(left, 2 * n * n + 64, cancel)
            if n == 2:
                _rts_mean_step(2, K.Jt + t * n2, fm + t * n, pm + (t + 1) * n,
                               sm + (t + 1) * n, sm + t * n, work)
            elif n == 4:
                _rts_mean_step(4, K.Jt + t * n2, fm + t * n, pm + (t + 1) * n,
                               sm + (t + 1) * n, sm + t * n, work)
            else:
                _rts_mean_step(n, K.Jt + t * n2, fm + t * n, pm + (t + 1) * n,
                               sm + (t + 1) * n, sm + t * n, work)
            continue
        poll(left, 8 * n * n * n + 64, cancel)
        ia = t if M.nA > 1 else 0
        c1 = cc + (t + 1) * n2 if keep_cross else NULL
        if n == 2:
            st = _rts_step(2, M.A + ia * n2, fm + t * n, fc + t * n2, pm + (t + 1) * n,
                           pc + (t + 1) * n2, sm + (t + 1) * n, sc + (t + 1) * n2,
                           sm + t * n, sc + t * n2, c1, K.Jt + t * n2, work)
        elif n == 4:
            st = _rts_step(4, M.A + ia * n2, fm + t * n, fc + t * n2, pm + (t + 1) * n,
                           pc + (t + 1) * n2, sm + (t + 1) * n, sc + (t + 1) * n2,
                           sm + t * n, sc + t * n2, c1, K.Jt + t * n2, work)
        else:
            st = _rts_step(n, M.A + ia * n2, fm + t * n, fc + t * n2, pm + (t + 1) * n,
                           pc + (t + 1) * n2, sm + (t + 1) * n, sc + (t + 1) * n2,
                           sm + t * n, sc + t * n2, c1, K.Jt + t * n2, work)
        if st != 0:
            return t + 1
    return 0


def kalman_smooth(const double[:, :, ::1] A, const double[:, ::1] b,
                  const double[:, :, ::1] C, const double[:, ::1] d,
                  const double[:, :, ::1] Q, const double[:, :, ::1] R,
                  const double[::1] mu0, const double[:, ::1] V0,
                  const double[:, :, ::1] Y, double[:, :, ::1] smooth_mean,
                  double[:, :, :, ::1] smooth_cov, double[:, :, :, ::1] cross_cov,
                  double[:, ::1] loglik_out, double[:, ::1] pred_mean,
                  double[:, :, ::1] pred_cov, double[:, ::1] filt_mean,
                  double[:, :, ::1] filt_cov, idx_t s0, idx_t s1,
                  const unsigned char[::1] cancel):
    """Kalman filter then Rauch-Tung-Striebel smoother (PRML eqs. 13.100-13.102) of
    series ``s0 .. s1 - 1`` of ``Y`` (n_series, T, p), one series at a time.

    The filter is :func:`kalman_filter`'s, into the per-series scratch ``pred_*`` and
    ``filt_*`` (T rows each, reused by every series). Then
    ``J_t = P_t A^T (P-_{t+1})^-1`` from a Cholesky solve with ``P-_{t+1}``;
    ``m^_t = m_t + J_t (m^_{t+1} - m-_{t+1})``,
    ``P^_t = P_t + J_t (P^_{t+1} - P-_{t+1}) J_t^T`` (symmetrised), and
    ``cross_cov[s, t + 1] = cov(z_{t+1}, z_t | X) = P^_{t+1} J_t^T`` (PRML eq. 13.104),
    which EM needs; ``cross_cov[s, 0]`` is set to 0. ``cross_cov`` of shape
    (1, 1, n, n) when ``n_series * T > 1`` means "not wanted" (not computed).
    ``A`` maps step t to t + 1 (``A[t]``), as in :func:`kalman_filter`. A series
    missing the same entries as the last fully computed one reuses its gains and
    copies its covariances, as in :func:`kalman_filter`.

    Returns 0; s * T + t + 1 when S at step t of series s is not positive definite;
    -(s * T + t + 1) when its predicted covariance at t + 1 is not.
    Assumes: parameters finite, covariances symmetric PSD.
    """
    cdef idx_t S = Y.shape[0], T = Y.shape[1]
    cdef _Model M = _model(A, b, C, d, Q, R, mu0, V0, T)
    cdef idx_t n = M.n, p = M.p
    cdef bint keep_cross = cross_cov.shape[0] == S and cross_cov.shape[1] == T
    if (Y.shape[2] != p or smooth_mean.shape[0] != S or smooth_mean.shape[1] != T
            or smooth_mean.shape[2] != n or smooth_cov.shape[0] != S
            or smooth_cov.shape[1] != T or smooth_cov.shape[2] != n
            or smooth_cov.shape[3] != n or cross_cov.shape[2] != n
            or cross_cov.shape[3] != n
            or not (keep_cross or (cross_cov.shape[0] == 1 and cross_cov.shape[1] == 1))
            or loglik_out.shape[0] != S or loglik_out.shape[1] != T
            or pred_mean.shape[0] != T or pred_mean.shape[1] != n
            or filt_mean.shape[0] != T or filt_mean.shape[1] != n
            or pred_cov.shape[0] != T or pred_cov.shape[1] != n
            or pred_cov.shape[2] != n or filt_cov.shape[0] != T
            or filt_cov.shape[1] != n or filt_cov.shape[2] != n
            or s0 < 0 or s1 > S or s0 > s1 or cancel.shape[0] != 1):
        raise ValueError(f"kalman_smooth: shape mismatch (S={S}, n={n}, p={p}, T={T})")
    cdef _Scratch scr = _Scratch(T, n, p)
    cdef idx_t s, ref = -1, st = 0
    cdef bint shared
    cdef idx_t left = POLL_WORK
    with nogil:
        for s in range(s0, s1):
            shared = ref >= 0 and _same_missing(&Y[ref, 0, 0], &Y[s, 0, 0], T * p)
            st = _filter_series(&M, T, &Y[s, 0, 0], &pred_mean[0, 0],
                                &pred_cov[0, 0, 0], True, &filt_mean[0, 0],
                                &filt_cov[0, 0, 0], &loglik_out[s, 0], shared, &scr.K,
                                &scr.work[0], &left, &cancel[0])
            if st != 0:
                st += s * T
                break
            st = _smooth_series(&M, T, &pred_mean[0, 0], &pred_cov[0, 0, 0],
                                &filt_mean[0, 0], &filt_cov[0, 0, 0],
                                &smooth_mean[s, 0, 0], &smooth_cov[s, 0, 0, 0],
                                &cross_cov[s if keep_cross else 0, 0, 0, 0],
                                keep_cross, shared, &scr.K, &scr.work[0], &left,
                                &cancel[0])
            if st != 0:
                st = -(st + s * T)
                break
            if not shared:
                ref = s
                continue
            memcpy(&smooth_cov[s, 0, 0, 0], &smooth_cov[ref, 0, 0, 0],
                   T * n * n * sizeof(double))
            if keep_cross:
                memcpy(&cross_cov[s, 0, 0, 0], &cross_cov[ref, 0, 0, 0],
                       T * n * n * sizeof(double))
    return st
