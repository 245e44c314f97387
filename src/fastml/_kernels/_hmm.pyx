"""Hidden Markov model kernels: forward-backward (scaled and log space), Viterbi.

Emissions reach every kernel as a lookup ``table`` (R, K) plus ``rows`` (T,): frame t
uses ``table[rows[t]]``, or ``table[t]`` when ``rows`` is empty. A categorical model
passes its (transposed) emission matrix and the symbols, so no T x K frame matrix is
built; continuous models pass their T x K frame matrix and an empty ``rows``.

Sequences are given as ``spans`` (S, 2) of [start, end) rows, processed in one call.
Accumulators (log-probabilities, expected counts) are double for float32 input too.

With K = 4 states and double frames, the AVX2 + FMA build runs the scaled forward,
backward and Viterbi recursions with the state vector in one register (``_hmm4.h``):
at small K a step is a short chain of dependent operations, and its latency, not its
arithmetic, sets the speed.
"""
import numpy as np

from libc.math cimport INFINITY, NAN, exp, log
from libc.stdint cimport int64_t, uint16_t, uint64_t
from libc.string cimport memcpy

from fastml._kernels._interrupt cimport POLL_WORK, poll
from fastml._kernels._types cimport idx_t, real


cdef extern from "_hmm4.h" nogil:
    # K = 4 recursions in AVX2 registers (see the header); FASTML_HMM4 is 0 where the
    # build does not target AVX2 + FMA, and the kernels then take their generic loops.
    enum: FASTML_HMM4
    ctypedef struct fastml_hmm4_fwd:
        double u[4]
        int64_t e1, e2, e3, k1, k2, ksum
        double smallest
    void fastml_hmm4_forward(fastml_hmm4_fwd *st, const double *A, const double *tab,
                             const idx_t *rows, idx_t t0, idx_t ta, idx_t tb,
                             double *alpha, double *cscale)
    void fastml_hmm4_backward(double *beta, const double *A, const double *tab,
                              const idx_t *rows, idx_t t0, idx_t ta, idx_t tb,
                              const double *alpha, const double *cscale, double *gamma,
                              double *counts, double *xi)
    void fastml_hmm4_viterbi(double *delta, const double *LA, const double *tab,
                             const idx_t *rows, idx_t t0, idx_t ta, idx_t tb,
                             uint16_t *bp)


# Steps per call of the K = 4 recursions (the kernels poll for Ctrl-C between calls).
cdef idx_t _CHUNK4 = 4096

# Scaling factors below this are treated as an underflow (alpha-hat would lose
# precision): the sequence is reported as failed and redone in log space.
cdef double _TINY = 2.2250738585072014e-308
cdef double _LN2 = 0.6931471805599453


cdef inline const real *_frame(const real[:, ::1] table, const idx_t[::1] rows,
                               idx_t t) noexcept nogil:
    """Row of the emission table for frame t (memoryviews: for the one-off uses)."""
    if rows.shape[0] == 0:
        return &table[t, 0]
    return &table[rows[t], 0]


cdef inline const real *_frame_p(const real *table, const idx_t *rows, idx_t t,
                                 idx_t K) noexcept nogil:
    """Row of the emission table for frame t, from raw pointers (``rows`` NULL: row
    t): the recursions' per-step lookup, with no memoryview struct in the loop."""
    if rows == NULL:
        return table + t * K
    return table + rows[t] * K


cdef inline const idx_t *_rows_ptr(const idx_t[::1] rows) noexcept nogil:
    return NULL if rows.shape[0] == 0 else &rows[0]


cdef inline double _pow2_inv(double c, idx_t *expo) noexcept nogil:
    """``2^-e`` for ``c = m 2^e`` with ``1 <= m < 2``; adds e to ``expo``.

    Assumes c positive and normal. Scaling by a power of two is exact, and the
    exponent comes from the bits of c: no division or log in the recursion's
    dependency chain, and log p(X) accumulates as an exact integer sum of exponents.
    """
    cdef uint64_t bits
    cdef idx_t e
    cdef double inv
    memcpy(&bits, &c, 8)
    e = <idx_t> ((bits >> 52) & 0x7FF) - 1023
    expo[0] += e
    bits = (<uint64_t> (1023 - e)) << 52
    memcpy(&inv, &bits, 8)
    return inv


cdef inline void _vec_mat(const double *v, const double *A, double *out,
                          idx_t K) noexcept nogil:
    """out = v A: rows of A are contiguous, j innermost (vectorised), i four at a time
    summed as a tree (a short dependency chain: small K are latency-bound)."""
    cdef idx_t i, j, i0 = 1
    cdef double a0, a1, a2, a3
    cdef const double *r0
    cdef const double *r1
    cdef const double *r2
    cdef const double *r3
    if K >= 4:
        i0 = K - K % 4
        for i in range(0, i0, 4):
            a0 = v[i]
            a1 = v[i + 1]
            a2 = v[i + 2]
            a3 = v[i + 3]
            r0 = A + i * K
            r1 = r0 + K
            r2 = r1 + K
            r3 = r2 + K
            if i == 0:
                for j in range(K):
                    out[j] = (a0 * r0[j] + a1 * r1[j]) + (a2 * r2[j] + a3 * r3[j])
            else:
                for j in range(K):
                    out[j] += (a0 * r0[j] + a1 * r1[j]) + (a2 * r2[j] + a3 * r3[j])
    else:
        a0 = v[0]
        for j in range(K):
            out[j] = a0 * A[j]
    for i in range(i0, K):
        a0 = v[i]
        r0 = A + i * K
        for j in range(K):
            out[j] += a0 * r0[j]


cdef inline double _sum(const double *v, idx_t K) noexcept nogil:
    """Sum with four independent partial sums (short dependency chain)."""
    cdef idx_t j
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    for j in range(0, K - 3, 4):
        s0 += v[j]
        s1 += v[j + 1]
        s2 += v[j + 2]
        s3 += v[j + 3]
    for j in range(K - K % 4, K):
        s0 += v[j]
    return (s0 + s1) + (s2 + s3)


cdef inline double _forward_step(const double *cur, const double *A, const real *b,
                                 double inv, double *nxt, idx_t K) noexcept nogil:
    """``nxt = ((cur A) * b) * inv``; returns sum(nxt)."""
    cdef idx_t j
    _vec_mat(cur, A, nxt, K)
    for j in range(K):
        nxt[j] = (nxt[j] * b[j]) * inv
    return _sum(nxt, K)


cdef inline int64_t _exponent(double c) noexcept nogil:
    """Binary exponent e of a positive normal c = m 2^e, 1 <= m < 2 (from its bits)."""
    cdef uint64_t bits
    memcpy(&bits, &c, 8)
    return <int64_t> ((bits >> 52) & 0x7FF) - 1023


cdef double _forward4_seq(const double *pi, const double *A, const double *tab,
                          const idx_t *rp, idx_t t0, idx_t t1, double *alpha,
                          double *cscale, idx_t *left,
                          const unsigned char *cancel) except? -1.0 nogil:
    """:func:`_forward_scaled_seq` for K = 4 in AVX2 registers (``_hmm4.h``): the same
    outputs, with the scale factors of the header (stored alpha-hat rows sum to
    [2^(3 phi), 2) instead of [1, 2)). Returns log p(X), or NaN on underflow."""
    cdef fastml_hmm4_fwd st
    cdef const double *b = _frame_p(tab, rp, t0, 4)
    cdef idx_t j, ta, tb
    cdef double c
    for j in range(4):
        st.u[j] = pi[j] * b[j]
    c = _sum(st.u, 4)
    if not c >= _TINY:
        return NAN
    st.e1 = _exponent(c)
    st.e2 = st.e3 = st.k1 = st.k2 = st.ksum = 0
    st.smallest = c
    if alpha != NULL:
        cscale[0] = 1.0
        for j in range(4):
            alpha[j] = st.u[j]
    ta = t0 + 1
    while ta < t1:
        tb = min(ta + _CHUNK4, t1)
        poll(left, 40 * (tb - ta), cancel)
        fastml_hmm4_forward(&st, A, tab, rp, t0, ta, tb, alpha, cscale)
        ta = tb
    if not st.smallest >= _TINY:
        return NAN
    return log(_sum(st.u, 4)) - st.ksum * _LN2


cdef double _forward_scaled_seq(const double *pi, const double *A,
                                const real[:, ::1] table, const idx_t[::1] rows,
                                idx_t t0, idx_t t1, idx_t K, double *cur,
                                double *nxt, double *alpha, double *cscale,
                                idx_t *left, const unsigned char *cancel) except? -1.0 nogil:
    """Scaled alpha recursion (PRML eqs. 13.59-13.63) on rows [t0, t1).

    ``cur``/``nxt`` are K-scratch; when ``alpha`` is not NULL, alpha-hat and the
    inverse scale factors 1 / c_n are stored (row t - t0). Returns log p(X) = sum_n
    log c_n + log sum_k alpha-hat_N(k) (eq. 13.63), or NaN when some step's sum
    underflows. Polls for Ctrl-C and ``cancel`` every step (budget ``left``).

    The scale factor c_n is the power of two at or below the step's sum (so
    alpha-hat sums to [1, 2), not exactly 1): eqs. 13.59-13.65 hold for any positive
    c_n, the rescaling is exact, and it costs a few integer operations on the
    exponent bits instead of a division. It is applied together with b_n, after the
    product with A: ``a_n = ((a_{n-1} A) * b_n) / c_{n-1}`` with ``a_{n-1}`` the
    unscaled vector, so the sum of one step overlaps the matrix product of the next
    instead of lengthening the dependency chain.
    """
    cdef idx_t t, j, expo = 0
    cdef double c, inv
    cdef const real *b
    cdef double *tmp
    cdef const real *tab = &table[0, 0]
    cdef const idx_t *rp = _rows_ptr(rows)
    if real is double:
        if FASTML_HMM4 and K == 4:
            return _forward4_seq(pi, A, tab, rp, t0, t1, alpha, cscale, left, cancel)
    b = _frame_p(tab, rp, t0, K)
    for j in range(K):
        cur[j] = pi[j] * b[j]
    c = _sum(cur, K)
    if not c >= _TINY:
        return NAN
    inv = _pow2_inv(c, &expo)
    if alpha != NULL:
        cscale[0] = inv
        for j in range(K):
            alpha[j] = cur[j] * inv
    for t in range(t0 + 1, t1):
        poll(left, 2 * K * K + 8, cancel)
        b = _frame_p(tab, rp, t, K)
        # Small K get a constant-size copy of the step, unrolled by the compiler.
        if K == 4:
            c = _forward_step(cur, A, b, inv, nxt, 4)
        elif K == 8:
            c = _forward_step(cur, A, b, inv, nxt, 8)
        else:
            c = _forward_step(cur, A, b, inv, nxt, K)
        if not c >= _TINY:
            return NAN
        inv = _pow2_inv(c, &expo)
        if alpha != NULL:
            cscale[t - t0] = inv
            for j in range(K):
                alpha[(t - t0) * K + j] = nxt[j] * inv
        tmp = cur
        cur = nxt
        nxt = tmp
    return expo * _LN2 + log(c * inv)


cdef const unsigned char *_cancel_ptr(const unsigned char[::1] cancel) except NULL:
    """``&cancel[0]``: the byte ``fastml._parallel.run_blocks`` sets to stop a block."""
    if cancel.shape[0] != 1:
        raise ValueError("HMM kernel: cancel must be a 1-byte array")
    return &cancel[0]


cdef inline idx_t _n_frames(const real[:, ::1] table, const idx_t[::1] rows) noexcept:
    """Number of frames: ``rows``' length, or the table's rows when ``rows`` is empty."""
    return rows.shape[0] if rows.shape[0] != 0 else table.shape[0]


cdef idx_t _check_common(const double[::1] pi, const double[:, ::1] A,
                         const real[:, ::1] table, const idx_t[::1] rows,
                         const idx_t[:, ::1] spans) except -1:
    """Shapes agree and every span is a non-empty [start, end) inside the frames (O(S),
    so that no recursion runs outside its buffers); returns the longest span's length."""
    cdef idx_t K = pi.shape[0], s, longest = 0
    cdef idx_t n = _n_frames(table, rows)
    if A.shape[0] != K or A.shape[1] != K or table.shape[1] != K or spans.shape[1] != 2:
        raise ValueError(f"HMM kernel: shape mismatch (K={K})")
    if spans.shape[0] == 0:
        raise ValueError("HMM kernel: no spans")
    for s in range(spans.shape[0]):
        if not 0 <= spans[s, 0] < spans[s, 1] <= n:
            raise ValueError(f"HMM kernel: span {s} is not inside the {n} frames")
        longest = max(longest, spans[s, 1] - spans[s, 0])
    return longest


def forward_scaled(const double[::1] startprob, const double[:, ::1] transmat,
                   const real[:, ::1] table, const idx_t[::1] rows,
                   const idx_t[:, ::1] spans, double[::1] logprob_out,
                   const unsigned char[::1] cancel):
    """log p(X) of each sequence by the scaled forward pass (PRML eq. 13.63).

    Keeps two K-vectors, no T x K lattice. ``logprob_out[s]`` is NaN where a scaling
    factor underflowed (the caller redoes that sequence in log space).

    Assumes: probabilities validated; ``table`` rows referenced by ``rows`` (or its
    first T rows) exist; spans non-empty and inside the frame range.
    """
    _check_common(startprob, transmat, table, rows, spans)
    cdef idx_t K = startprob.shape[0], S = spans.shape[0], s
    if logprob_out.shape[0] != S:
        raise ValueError("forward_scaled: logprob_out must have one entry per span")
    cdef double[:, ::1] buf = np.empty((2, K))
    cdef idx_t left = POLL_WORK
    cdef const unsigned char *cp = _cancel_ptr(cancel)
    with nogil:
        for s in range(S):
            logprob_out[s] = _forward_scaled_seq(
                &startprob[0], &transmat[0, 0], table, rows, spans[s, 0], spans[s, 1],
                K, &buf[0, 0], &buf[1, 0], NULL, NULL, &left, cp)


cdef inline void _posterior_row(const double *a_t, const double *beta, real *g_out,
                                double *crow, idx_t K) noexcept nogil:
    """``g_out = a_t * beta / sum(a_t * beta)`` (eq. 13.64); added to ``crow`` too
    unless it is NULL."""
    cdef idx_t i
    cdef double norm = 0.0, w
    for i in range(K):
        norm += a_t[i] * beta[i]
    norm = 1.0 / norm
    for i in range(K):
        w = a_t[i] * beta[i] * norm
        g_out[i] = <real> w
        if crow != NULL:
            crow[i] += w


cdef inline void _backward_step(const real *b, double acc, const double *A,
                                const double *AT, const double *a_prev, double *beta,
                                double *tmp, double *xi, idx_t K) noexcept nogil:
    """beta-hat_{t-1} = A (b_t * beta-hat_t * acc) (eq. 13.62, acc = 1 / c_t), and
    ``xi[i, j] += alpha-hat_{t-1}(i) A_ij b_t(j) beta-hat_t(j) acc`` (eq. 13.65)
    unless ``xi`` is NULL. ``beta = A tmp = tmp^T A^T``: the forward pass's
    vector-matrix product on A^T (contiguous rows, short dependency chain)."""
    cdef idx_t i, j
    cdef double g
    cdef const double *row
    cdef double *xrow
    for j in range(K):
        tmp[j] = b[j] * beta[j] * acc
    _vec_mat(tmp, AT, beta, K)
    if xi != NULL:
        for i in range(K):
            g = a_prev[i]
            row = A + i * K
            xrow = xi + i * K
            for j in range(K):
                xrow[j] += g * row[j] * tmp[j]


def forward_backward_scaled(const double[::1] startprob, const double[:, ::1] transmat,
                            const double[:, ::1] transmat_T, const real[:, ::1] table, const idx_t[::1] rows,
                            const idx_t[:, ::1] spans, double[:, ::1] alpha,
                            double[::1] cscale, real[:, ::1] gamma_out,
                            double[:, ::1] xi_out, double[:, ::1] counts_out,
                            double[::1] logprob_out, const unsigned char[::1] cancel):
    """Posteriors and expected counts by scaled forward-backward (PRML sec. 13.2.4).

    For each span: alpha-hat and 1 / c_n (eqs. 13.59, 13.62) into ``alpha``/``cscale``
    (scratch with at least as many rows as the longest span; with float64 posteriors
    ``alpha`` may have 0 rows: alpha-hat is then kept in the span's rows of
    ``gamma_out``, each overwritten by its posterior once no longer needed), then the beta-hat
    recursion (eq. 13.62) with two K-vectors, writing gamma (eq. 13.64) to
    ``gamma_out`` rows of the span and adding xi summed over time (eq. 13.65) to
    ``xi_out`` (skipped when it has shape (0, 0)); no T x K x K array. When
    ``counts_out`` is not (0, 0), ``counts_out[rows[t]] += gamma[t]`` (categorical
    emission counts), or with empty ``rows`` ``counts_out[0] += gamma[t]`` (the
    posterior mass of each state). ``logprob_out[s]`` is log p(X_s), or
    NaN on underflow, in which case nothing is accumulated for that span.

    Assumes: as :func:`forward_scaled`.
    """
    cdef idx_t longest = _check_common(startprob, transmat, table, rows, spans)
    cdef idx_t K = startprob.shape[0], S = spans.shape[0], s, t, t0, t1, t0b, j
    cdef bint do_xi = xi_out.shape[0] != 0, do_counts = counts_out.shape[0] != 0
    cdef bint in_gamma = alpha.shape[0] == 0 and real is double
    if (logprob_out.shape[0] != S or alpha.shape[1] != K or gamma_out.shape[1] != K
            or (alpha.shape[0] < longest and not in_gamma)
            or gamma_out.shape[0] < _n_frames(table, rows)
            or cscale.shape[0] < longest or transmat_T.shape[0] != K
            or transmat_T.shape[1] != K
            or (do_xi and (xi_out.shape[0] != K or xi_out.shape[1] != K))
            or (do_counts and (counts_out.shape[1] != K or counts_out.shape[0] != (
                table.shape[0] if rows.shape[0] != 0 else 1)))):
        raise ValueError("forward_backward_scaled: shape mismatch")
    cdef double[:, ::1] buf = np.empty((4, K))
    cdef double *beta = &buf[2, 0]
    cdef double *tmp = &buf[3, 0]
    cdef const double *A = &transmat[0, 0]
    cdef const double *AT = &transmat_T[0, 0]
    cdef const double *a_t
    cdef double *al
    cdef double *xi = NULL
    cdef double *crow
    cdef const real *b
    cdef const real *tab = &table[0, 0]
    cdef const idx_t *rp = _rows_ptr(rows)
    cdef double lp, norm, acc
    if do_xi:
        xi = &xi_out[0, 0]
    cdef idx_t left = POLL_WORK
    cdef const unsigned char *cp = _cancel_ptr(cancel)
    with nogil:
        for s in range(S):
            t0 = spans[s, 0]
            t1 = spans[s, 1]
            if in_gamma:
                al = <double *> &gamma_out[t0, 0]
            else:
                al = &alpha[0, 0]
            lp = _forward_scaled_seq(&startprob[0], A, table, rows, t0, t1, K,
                                     &buf[0, 0], &buf[1, 0], al, &cscale[0],
                                     &left, cp)
            logprob_out[s] = lp
            if lp != lp:
                continue
            # beta-hat_N = 1 / sum_k alpha-hat_N(k): alpha-hat_n * beta-hat_n then sums
            # to 1 at every n with the power-of-two scale factors (eq. 13.64).
            norm = 1.0 / _sum(al + (t1 - 1 - t0) * K, K)
            for j in range(K):
                beta[j] = norm
            t = t1 - 1
            if real is double:
                if FASTML_HMM4 and K == 4:
                    # rows t1 - 1 .. t0 + 1 in registers (_hmm4.h), then row t0 below
                    while t > t0:
                        t0b = max(t - _CHUNK4, t0)
                        poll(&left, 80 * (t - t0b), cp)
                        fastml_hmm4_backward(
                            beta, A, tab, rp, t0, t, t0b, al, &cscale[0],
                            <double *> &gamma_out[0, 0],
                            &counts_out[0, 0] if do_counts else NULL, xi)
                        t = t0b
            while True:
                poll(&left, 4 * K * K + 8, cp)
                crow = NULL
                if do_counts:
                    crow = &counts_out[rows[t] if rows.shape[0] != 0 else 0, 0]
                # gamma_t = alpha-hat_t * beta-hat_t (eq. 13.64), renormalised.
                _posterior_row(al + (t - t0) * K, beta, &gamma_out[t, 0], crow, K)
                if t == t0:
                    break
                # beta-hat_{t-1}(i) = sum_j A_ij b_t(j) beta-hat_t(j) / c_t (eq. 13.62)
                # and xi (eq. 13.65); small K get a constant-size copy of the step.
                b = _frame_p(tab, rp, t, K)
                acc = cscale[t - t0]
                a_t = al + (t - 1 - t0) * K
                if K == 4:
                    _backward_step(b, acc, A, AT, a_t, beta, tmp, xi, 4)
                elif K == 8:
                    _backward_step(b, acc, A, AT, a_t, beta, tmp, xi, 8)
                else:
                    _backward_step(b, acc, A, AT, a_t, beta, tmp, xi, K)
                t -= 1


cdef inline double _lse_col(const double *v, const double *col, idx_t K) noexcept nogil:
    """log sum_i exp(v[i] + col[i])."""
    cdef idx_t i
    cdef double m = -INFINITY, x, s = 0.0
    for i in range(K):
        x = v[i] + col[i]
        if x > m:
            m = x
    if m == -INFINITY:
        return m
    for i in range(K):
        s += exp(v[i] + col[i] - m)
    return m + log(s)


cdef double _forward_log_seq(const double *log_pi, const double *log_AT,
                             const real[:, ::1] table, const idx_t[::1] rows,
                             idx_t t0, idx_t t1, idx_t K, double *cur, double *nxt,
                             double *log_alpha, idx_t *left,
                             const unsigned char *cancel) except? -1.0 nogil:
    """Log-space alpha recursion (PRML eq. 13.36 with log-sum-exp) on [t0, t1); polls
    for Ctrl-C every step (budget ``left``)."""
    cdef idx_t t, j
    cdef const real *b = _frame(table, rows, t0)
    cdef double *tmp
    for j in range(K):
        cur[j] = log_pi[j] + b[j]
    if log_alpha != NULL:
        for j in range(K):
            log_alpha[j] = cur[j]
    for t in range(t0 + 1, t1):
        poll(left, 20 * K * K, cancel)
        b = _frame(table, rows, t)
        for j in range(K):
            nxt[j] = _lse_col(cur, log_AT + j * K, K) + b[j]
        if log_alpha != NULL:
            for j in range(K):
                log_alpha[(t - t0) * K + j] = nxt[j]
        tmp = cur
        cur = nxt
        nxt = tmp
    return _lse_zero(cur, K)


cdef inline double _lse_zero(const double *v, idx_t K) noexcept nogil:
    cdef idx_t i
    cdef double m = -INFINITY, s = 0.0
    for i in range(K):
        if v[i] > m:
            m = v[i]
    if m == -INFINITY:
        return m
    for i in range(K):
        s += exp(v[i] - m)
    return m + log(s)


def forward_log(const double[::1] log_startprob, const double[:, ::1] log_transmat_T,
                const real[:, ::1] log_table, const idx_t[::1] rows,
                const idx_t[:, ::1] spans, double[::1] logprob_out,
                const unsigned char[::1] cancel):
    """log p(X) of each span by the forward pass in log space (log-sum-exp).

    ``log_transmat_T`` is the transposed log transition matrix (contiguous columns).
    Assumes: as :func:`forward_scaled`, with log-probabilities (-inf allowed).
    """
    _check_common(log_startprob, log_transmat_T, log_table, rows, spans)
    cdef idx_t K = log_startprob.shape[0], S = spans.shape[0], s
    if logprob_out.shape[0] != S:
        raise ValueError("forward_log: logprob_out must have one entry per span")
    cdef double[:, ::1] buf = np.empty((2, K))
    cdef idx_t left = POLL_WORK
    cdef const unsigned char *cp = _cancel_ptr(cancel)
    with nogil:
        for s in range(S):
            logprob_out[s] = _forward_log_seq(
                &log_startprob[0], &log_transmat_T[0, 0], log_table, rows,
                spans[s, 0], spans[s, 1], K, &buf[0, 0], &buf[1, 0], NULL, &left, cp)


def forward_backward_log(const double[::1] log_startprob,
                         const double[:, ::1] log_transmat,
                         const double[:, ::1] log_transmat_T,
                         const real[:, ::1] log_table, const idx_t[::1] rows,
                         const idx_t[:, ::1] spans, double[:, ::1] log_alpha,
                         real[:, ::1] gamma_out, double[:, ::1] xi_out,
                         double[:, ::1] counts_out, double[::1] logprob_out,
                         const unsigned char[::1] cancel):
    """Forward-backward in log space: the robust path (PRML sec. 13.2.2 in logs).

    Same outputs and accumulation rules as :func:`forward_backward_scaled`; only
    ``log_alpha`` (longest span x K) is stored, beta is kept as two K-vectors.
    Assumes: as :func:`forward_log`.
    """
    cdef idx_t longest = _check_common(log_startprob, log_transmat, log_table, rows,
                                       spans)
    cdef idx_t K = log_startprob.shape[0], S = spans.shape[0], s, t, t0, t1, i, j
    cdef bint do_xi = xi_out.shape[0] != 0, do_counts = counts_out.shape[0] != 0
    if (logprob_out.shape[0] != S or log_alpha.shape[1] != K
            or log_alpha.shape[0] < longest
            or gamma_out.shape[0] < _n_frames(log_table, rows)
            or gamma_out.shape[1] != K or log_transmat_T.shape[0] != K
            or log_transmat_T.shape[1] != K
            or (do_xi and (xi_out.shape[0] != K or xi_out.shape[1] != K))
            or (do_counts and (counts_out.shape[1] != K or counts_out.shape[0] != (
                log_table.shape[0] if rows.shape[0] != 0 else 1)))):
        raise ValueError("forward_backward_log: shape mismatch")
    cdef double[:, ::1] buf = np.empty((4, K))
    cdef double *beta = &buf[2, 0]
    cdef double *w = &buf[3, 0]
    cdef const double *LA = &log_transmat[0, 0]
    cdef const double *la
    cdef const real *b
    cdef double *crow
    cdef double lp, m, norm
    cdef idx_t left = POLL_WORK
    cdef const unsigned char *cp = _cancel_ptr(cancel)
    with nogil:
        for s in range(S):
            t0 = spans[s, 0]
            t1 = spans[s, 1]
            lp = _forward_log_seq(&log_startprob[0], &log_transmat_T[0, 0], log_table,
                                  rows, t0, t1, K, &buf[0, 0], &buf[1, 0],
                                  &log_alpha[0, 0], &left, cp)
            logprob_out[s] = lp
            if lp == -INFINITY or lp != lp:
                continue
            for j in range(K):
                beta[j] = 0.0
            t = t1 - 1
            while True:
                poll(&left, 40 * K * K, cp)
                la = &log_alpha[t - t0, 0]
                m = -INFINITY
                for i in range(K):
                    if la[i] + beta[i] > m:
                        m = la[i] + beta[i]
                norm = 0.0
                for i in range(K):
                    w[i] = exp(la[i] + beta[i] - m)
                    norm += w[i]
                norm = 1.0 / norm
                for i in range(K):
                    gamma_out[t, i] = <real> (w[i] * norm)
                if do_counts:
                    crow = &counts_out[rows[t] if rows.shape[0] != 0 else 0, 0]
                    for i in range(K):
                        crow[i] += w[i] * norm
                if t == t0:
                    break
                b = _frame(log_table, rows, t)
                for j in range(K):
                    w[j] = b[j] + beta[j]
                la = &log_alpha[t - 1 - t0, 0]
                for i in range(K):
                    if do_xi:
                        for j in range(K):
                            xi_out[i, j] += exp(la[i] + LA[i * K + j] + w[j] - lp)
                    beta[i] = _lse_col(w, LA + i * K, K)
                t -= 1


cdef inline void _max_plus(const double *v, const double *LA, double *out,
                           idx_t K) noexcept nogil:
    """``out[j] = max_i (v[i] + LA[i, j])`` (the Viterbi max-product in logs).

    Source states i form the outer loop, four at a time (a tree of maxima, one store
    per group), and the K target states j the inner one over contiguous rows of
    ``LA``: SIMD adds and max instructions across j. A maximum is exact whatever the
    order, so this is the value a scalar scan over i gives, bit for bit.
    """
    cdef idx_t i, j, i0
    cdef double m, x0, x1, x2, x3, v0, v1, v2, v3
    cdef const double *r0
    cdef const double *r1
    cdef const double *r2
    cdef const double *r3
    i0 = 1
    if K >= 4:
        i0 = K - K % 4
        for i in range(0, i0, 4):
            v0 = v[i]
            v1 = v[i + 1]
            v2 = v[i + 2]
            v3 = v[i + 3]
            r0 = LA + i * K
            r1 = r0 + K
            r2 = r1 + K
            r3 = r2 + K
            for j in range(K):
                x0 = v0 + r0[j]
                x1 = v1 + r1[j]
                x2 = v2 + r2[j]
                x3 = v3 + r3[j]
                x0 = x1 if x1 > x0 else x0
                x2 = x3 if x3 > x2 else x2
                x0 = x2 if x2 > x0 else x0
                if i != 0:
                    m = out[j]
                    x0 = x0 if x0 > m else m
                out[j] = x0
    else:
        v0 = v[0]
        for j in range(K):
            out[j] = v0 + LA[j]
    for i in range(i0, K):
        v0 = v[i]
        r0 = LA + i * K
        for j in range(K):
            x0 = v0 + r0[j]
            m = out[j]
            out[j] = x0 if x0 > m else m


cdef inline void _viterbi_step(const double *prev, const double *LA, const real *b,
                               double *cur, idx_t K) noexcept nogil:
    """``cur[j] = max_i (prev[i] + LA[i, j]) + b[j]``."""
    cdef idx_t j
    _max_plus(prev, LA, cur, K)
    for j in range(K):
        cur[j] += b[j]


cdef inline idx_t _argmax_plus(const double *v, const double *col, idx_t K) noexcept nogil:
    """The lowest i maximising ``v[i] + col[i]`` (branch-free selects: the
    backtracking chain has no mispredicted jumps)."""
    cdef idx_t i, arg = 0
    cdef double m = v[0] + col[0], x
    for i in range(1, K):
        x = v[i] + col[i]
        arg = i if x > m else arg
        m = x if x > m else m
    return arg


cdef int _viterbi4_seq(const double *log_pi, const double *LA, const double *tab,
                       const idx_t *rp, idx_t t0, idx_t t1, uint16_t *bp,
                       idx_t *path, double *logprob, idx_t *left,
                       const unsigned char *cancel) except -1 nogil:
    """Viterbi for K = 4 in AVX2 registers (``_hmm4.h``): the recursion stores 16 bits
    of back-pointers per step in ``bp`` (entry t - t0) instead of the lattice, and the
    backtracking follows them. Same delta values, path and ties as the generic loop."""
    cdef double d[4]
    cdef const double *b = _frame_p(tab, rp, t0, 4)
    cdef idx_t j, ta, tb, t, arg = 0, sh
    for j in range(4):
        d[j] = log_pi[j] + b[j]
    ta = t0 + 1
    while ta < t1:
        tb = min(ta + _CHUNK4, t1)
        poll(left, 24 * (tb - ta), cancel)
        fastml_hmm4_viterbi(d, LA, tab, rp, t0, ta, tb, bp)
        ta = tb
    for j in range(1, 4):
        if d[j] > d[arg]:
            arg = j
    logprob[0] = d[arg]
    t = t1 - 1
    path[t] = arg
    sh = 4 * arg
    while t > t0:
        sh = (bp[t - t0] >> sh) & 15
        t -= 1
        path[t] = sh >> 2
    return 0


def viterbi_log(const double[::1] log_startprob, const double[:, ::1] log_transmat,
                const double[:, ::1] log_transmat_T, const real[:, ::1] log_table,
                const idx_t[::1] rows, const idx_t[:, ::1] spans, double[:, ::1] delta,
                idx_t[::1] path_out, double[::1] logprob_out,
                const unsigned char[::1] cancel):
    """Most probable state path of each span (Viterbi, PRML sec. 13.2.5, eq. 13.68).

    Max-sum in log space, ``delta_t(j) = max_i (delta_{t-1}(i) + log A_ij) + log
    b_t(j)``, vectorised over the target states j (:func:`_max_plus` on the rows of
    ``log_transmat``) with no argmax in the recursion: the lattice ``delta`` (longest
    span x K) is kept, and backtracking recomputes, for the one state on the path,
    ``delta_{t-1}(i) + log A_ij`` over i (from ``log_transmat_T``, the same sums
    bit for bit) and takes its argmax. Ties go to the lowest state index, both for the
    predecessor of a state and for the final state. Writes the path into the span's
    rows of ``path_out`` and max log p(X, Z) into ``logprob_out``. With K = 4 in the
    AVX2 build (double frames) the recursion runs in registers (``_hmm4.h``) and keeps
    16 bits of back-pointers per step in ``delta``'s memory instead of the lattice:
    the same sums and maxima, path and ties.

    Assumes: as :func:`forward_log`.
    """
    cdef idx_t longest = _check_common(log_startprob, log_transmat, log_table, rows,
                                       spans)
    cdef idx_t K = log_startprob.shape[0], S = spans.shape[0], s, t, t0, t1, j, arg
    if (logprob_out.shape[0] != S or delta.shape[1] != K or delta.shape[0] < longest
            or log_transmat_T.shape[0] != K or log_transmat_T.shape[1] != K
            or path_out.shape[0] < _n_frames(log_table, rows)):
        raise ValueError("viterbi_log: shape mismatch")
    cdef const double *LA = &log_transmat[0, 0]
    cdef const double *LAT = &log_transmat_T[0, 0]
    cdef const real *b
    cdef double *cur
    cdef double *prev
    cdef double m
    cdef idx_t left = POLL_WORK
    cdef const unsigned char *cp = _cancel_ptr(cancel)
    cdef const real *tab = &log_table[0, 0]
    cdef const idx_t *rp = _rows_ptr(rows)
    cdef bint fast4 = False
    if real is double:
        fast4 = FASTML_HMM4 and K == 4
    with nogil:
        for s in range(S):
            t0 = spans[s, 0]
            t1 = spans[s, 1]
            b = _frame_p(tab, rp, t0, K)
            if fast4:
                _viterbi4_seq(&log_startprob[0], LA, <const double *> tab, rp, t0, t1,
                              <uint16_t *> &delta[0, 0], &path_out[0],
                              &logprob_out[s], &left, cp)
                continue
            cur = &delta[0, 0]
            for j in range(K):
                cur[j] = log_startprob[j] + b[j]
            for t in range(t0 + 1, t1):
                poll(&left, K * K + 8, cp)
                prev = cur
                cur = &delta[t - t0, 0]
                b = _frame_p(tab, rp, t, K)
                # Small K get a constant-size copy of the step, unrolled by the compiler.
                if K == 4:
                    _viterbi_step(prev, LA, b, cur, 4)
                elif K == 8:
                    _viterbi_step(prev, LA, b, cur, 8)
                else:
                    _viterbi_step(prev, LA, b, cur, K)
            m = cur[0]
            arg = 0
            for j in range(1, K):
                if cur[j] > m:
                    m = cur[j]
                    arg = j
            logprob_out[s] = m
            t = t1 - 1
            path_out[t] = arg
            while t > t0:
                if K == 4:
                    arg = _argmax_plus(&delta[t - 1 - t0, 0], LAT + arg * 4, 4)
                else:
                    arg = _argmax_plus(&delta[t - 1 - t0, 0], LAT + arg * K, K)
                t -= 1
                path_out[t] = arg


def sample_states(const double[::1] startcdf, const double[:, ::1] transcdf,
                  const double[::1] u, idx_t first, idx_t[::1] out):
    """Markov chain by inverse-CDF draws: state t is the first k with cdf[k] > u[t].

    ``first >= 0`` fixes the first state (u[0] unused), else it is drawn from
    ``startcdf``. Assumes: cdf rows non-decreasing with last entry 1 (clamped to K - 1).
    """
    cdef idx_t K = startcdf.shape[0], n = u.shape[0], t, k, prev
    if (transcdf.shape[0] != K or transcdf.shape[1] != K or out.shape[0] != n
            or n == 0 or first >= K):
        raise ValueError("sample_states: shape mismatch")
    with nogil:
        if first >= 0:
            prev = first
        else:
            prev = _inv_cdf(&startcdf[0], K, u[0])
        out[0] = prev
        for t in range(1, n):
            k = _inv_cdf(&transcdf[prev, 0], K, u[t])
            out[t] = k
            prev = k


cdef inline idx_t _inv_cdf(const double *cdf, idx_t K, double u) noexcept nogil:
    cdef idx_t k
    for k in range(K - 1):
        if cdf[k] > u:
            return k
    return K - 1


def gaussian_diag_frames(const real[:, ::1] X, const double[:, ::1] means_T,
                         const double[:, ::1] prec_T, const double[:, ::1] lognorm_T,
                         real[:, ::1] out, double[::1] shift_out,
                         const unsigned char[::1] cancel):
    """Diagonal-Gaussian emission log-likelihoods, optionally as scaled likelihoods.

    ``out[t, k] = -0.5 sum_d (lognorm[d, k] + (x_td - mu_kd)^2 prec[d, k])`` over the
    observed (non-NaN) features d of row t, with ``lognorm = log(2 pi sigma^2)``
    (PRML eq. 2.43 for a diagonal covariance); a NaN feature is marginalised out and
    an all-NaN row gets 0 (likelihood 1). When ``shift_out`` has T entries, each row
    is shifted by its maximum, stored in ``shift_out`` (the caller exponentiates with
    numpy's SIMD ``exp`` for the scaled recursions). Parameters are (D, K) so that the state loop is
    contiguous; accumulation is in double.

    Assumes: X (T, D) without infinities; prec > 0.
    """
    cdef idx_t T = X.shape[0], D = X.shape[1], K = means_T.shape[1], t, d, k
    cdef bint do_exp = shift_out.shape[0] != 0
    if (means_T.shape[0] != D or prec_T.shape[0] != D or prec_T.shape[1] != K
            or lognorm_T.shape[0] != D or lognorm_T.shape[1] != K
            or out.shape[0] != T or out.shape[1] != K
            or (do_exp and shift_out.shape[0] != T)):
        raise ValueError("gaussian_diag_frames: shape mismatch")
    cdef double[::1] acc_buf = np.empty(K)
    cdef double *acc = &acc_buf[0]
    cdef const double *mu
    cdef const double *pr
    cdef const double *ln
    cdef double x, diff, m
    cdef real *orow
    cdef idx_t left = POLL_WORK
    cdef const unsigned char *cp = _cancel_ptr(cancel)
    with nogil:
        for t in range(T):
            poll(&left, 4 * K * D + 8, cp)
            for k in range(K):
                acc[k] = 0.0
            for d in range(D):
                x = X[t, d]
                if x != x:
                    continue
                mu = &means_T[d, 0]
                pr = &prec_T[d, 0]
                ln = &lognorm_T[d, 0]
                for k in range(K):
                    diff = x - mu[k]
                    acc[k] -= 0.5 * (ln[k] + diff * diff * pr[k])
            if do_exp:
                m = acc[0]
                for k in range(1, K):
                    if acc[k] > m:
                        m = acc[k]
                shift_out[t] = m
                orow = &out[t, 0]
                for k in range(K):
                    orow[k] = <real> (acc[k] - m)
            else:
                orow = &out[t, 0]
                for k in range(K):
                    orow[k] = <real> acc[k]
