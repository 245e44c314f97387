"""Restricted Boltzmann machine kernels: block Gibbs sampling and contrastive divergence.

An RBM with weights W (m hidden, d visible), hidden biases c and visible biases b has
conditionals that factorise (Hinton 2002; Goodfellow et al., Deep Learning, sec. 20.2):
``p(h_j = 1 | v) = sigmoid(W_j v + c_j)`` and ``p(v_i = 1 | h) = sigmoid(W_:i^T h + b_i)``
(Bernoulli visibles) or ``v | h ~ N(W^T h + b, I)`` (Gaussian visibles, unit variance).
A whole layer is therefore sampled at once: one GEMM (BLAS through
``scipy.linalg.cython_blas``), an elementwise sigmoid, and one uniform (or standard normal)
draw per unit from the numpy BitGenerator, in row-major order, under its lock.

Contrastive divergence (CD-k, Hinton 2002) approximates the log-likelihood gradient
``<v h^T>_data - <v h^T>_model`` by running k Gibbs steps from the data; persistent CD
(Tieleman 2008) keeps the negative chain between updates instead.
"""
from libc.string cimport memcpy
from numpy.random cimport bitgen_t
from numpy.random.c_distributions cimport (
    random_standard_normal,
    random_standard_uniform_fill,
)
from scipy.linalg.cython_blas cimport dgemm, sgemm

from fastml._kernels._bitgen cimport get_bitgen
from fastml._kernels._interrupt cimport POLL_WORK, poll
from fastml._kernels._types cimport idx_t, real


cdef inline void _gemm(char ta, char tb, int M, int N, int K, real alpha, const real *A,
                       int lda, const real *B, int ldb, real beta, real *C,
                       int ldc) noexcept nogil:
    """Row-major ``C (M, N) = alpha op(A) op(B) + beta C`` as column-major
    ``C^T = op(B)^T op(A)^T``."""
    if real is float:
        sgemm(&tb, &ta, &N, &M, &K, &alpha, <float *> B, &ldb, <float *> A, &lda, &beta,
              C, &ldc)
    else:
        dgemm(&tb, &ta, &N, &M, &K, &alpha, <double *> B, &ldb, <double *> A, &lda,
              &beta, C, &ldc)


cdef extern from "_sigmoid.h" nogil:
    void fastml_sigmoid_row_f64(double *x, const double *bias, idx_t n)
    void fastml_sigmoid_row_f32(float *x, const float *bias, idx_t n)


cdef inline void _sigmoid_row(real *x, const real *bias, idx_t n) noexcept nogil:
    """``x[j] = sigmoid(x[j] + bias[j])``: libm, or a vectorised exp in the AVX2 build
    (``_sigmoid.h``); float32 math for float32 data."""
    if real is float:
        fastml_sigmoid_row_f32(x, bias, n)
    else:
        fastml_sigmoid_row_f64(x, bias, n)


cdef void _hidden_proba(const real *v, idx_t n, const real *W, const real *c, idx_t m,
                        idx_t d, real *h, bint wt=False) noexcept nogil:
    """``h (n, m) = sigmoid(v W^T + c)``; ``wt``: ``W`` is stored transposed, (d, m)."""
    cdef idx_t i
    if wt:  # no-transpose GEMM: about 1.5x faster in OpenBLAS at these small sizes
        _gemm(c'N', c'N', <int> n, <int> m, <int> d, 1, v, <int> d, W, <int> m, 0, h,
              <int> m)
    else:
        _gemm(c'N', c'T', <int> n, <int> m, <int> d, 1, v, <int> d, W, <int> d, 0, h,
              <int> m)
    for i in range(n):
        _sigmoid_row(h + i * m, c, m)


cdef void _visible_mean(const real *h, idx_t n, const real *W, const real *b, idx_t m,
                        idx_t d, bint gaussian, real *v, bint wt=False) noexcept nogil:
    """``v (n, d) = sigmoid(h W + b)`` (Bernoulli) or ``h W + b`` (Gaussian)."""
    cdef idx_t i, j
    if wt:
        _gemm(c'N', c'T', <int> n, <int> d, <int> m, 1, h, <int> m, W, <int> m, 0, v,
              <int> d)
    else:
        _gemm(c'N', c'N', <int> n, <int> d, <int> m, 1, h, <int> m, W, <int> d, 0, v,
              <int> d)
    for i in range(n):
        if gaussian:
            for j in range(d):
                v[i * d + j] = v[i * d + j] + b[j]
        else:
            _sigmoid_row(v + i * d, b, d)


cdef void _bernoulli(bitgen_t *rng, const real *p, idx_t n, real *out) noexcept nogil:
    """``out[i] = 1`` with probability ``p[i]`` (one uniform per unit; in place allowed).

    Uniforms come 256 at a time from numpy's ``random_standard_uniform_fill`` (the stream
    of ``Generator.random``) into a stack buffer, so the comparison loop vectorises.
    """
    cdef double u[256]
    cdef idx_t start, i, len_
    for start in range(0, n, 256):
        len_ = min(256, n - start)
        random_standard_uniform_fill(rng, len_, u)
        for i in range(len_):
            out[start + i] = <real> (u[i] < p[start + i])


cdef void _add_normal(bitgen_t *rng, real *x, idx_t n) noexcept nogil:
    """``x[i] += N(0, 1)`` (numpy's ziggurat, one draw per unit)."""
    cdef idx_t i
    for i in range(n):
        x[i] = x[i] + <real> random_standard_normal(rng)


cdef void _sample_visible(bitgen_t *rng, const real *h, idx_t n, const real *W,
                          const real *b, idx_t m, idx_t d, bint gaussian,
                          real *v, bint wt=False) noexcept nogil:
    _visible_mean(h, n, W, b, m, d, gaussian, v, wt)
    if gaussian:
        _add_normal(rng, v, n * d)
    else:
        _bernoulli(rng, v, n * d, v)


cdef int _check(idx_t m, idx_t d, const real[:, ::1] W, const real[::1] c,
                const real[::1] b) except -1:
    if W.shape[0] != m or W.shape[1] != d or c.shape[0] != m or b.shape[0] != d:
        raise ValueError(f"rbm kernel: parameter shapes do not match (m={m}, d={d})")
    return 0


def gibbs(object bit_generator, const real[:, ::1] W, const real[::1] c,
          const real[::1] b, const real[:, ::1] v, idx_t k, bint gaussian,
          real[:, ::1] h_scratch, real[:, ::1] v_out):
    """``k`` block Gibbs steps v -> h ~ p(h|v) -> v ~ p(v|h) from each row of ``v``.

    Draws, per step, one uniform per hidden unit and then one uniform (Bernoulli) or
    standard normal (Gaussian) per visible unit, row-major, under the generator's lock.
    Writes the final visible sample into ``v_out``.

    Assumes: shapes W (m, d), c (m,), b (d,), v and v_out (n, d), h_scratch (n, m);
    n, m, d >= 1 and below 2**31.
    """
    cdef idx_t n = v.shape[0], d = v.shape[1], m = W.shape[0], _step
    _check(m, d, W, c, b)
    if (v_out.shape[0] != n or v_out.shape[1] != d or h_scratch.shape[0] != n
            or h_scratch.shape[1] != m or n < 1):
        raise ValueError("gibbs: shape mismatch")
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t left = POLL_WORK
    with bit_generator.lock, nogil:
        memcpy(&v_out[0, 0], &v[0, 0], n * d * sizeof(real))
        for _step in range(k):
            poll(&left, 4 * n * m * d + 32 * n * (m + d), NULL)
            _hidden_proba(&v_out[0, 0], n, &W[0, 0], &c[0], m, d, &h_scratch[0, 0])
            _bernoulli(rng, &h_scratch[0, 0], n * m, &h_scratch[0, 0])
            _sample_visible(rng, &h_scratch[0, 0], n, &W[0, 0], &b[0], m, d, gaussian,
                            &v_out[0, 0])


def hidden_proba(const real[:, ::1] W, const real[::1] c, const real[:, ::1] v,
                 real[:, ::1] h_out):
    """``h_out = sigmoid(v W^T + c)``: p(h = 1 | v), one GEMM.

    Assumes: W (m, d), c (m,), v (n, d), h_out (n, m), all at least 1 and below 2**31.
    """
    cdef idx_t n = v.shape[0], d = v.shape[1], m = W.shape[0]
    if (W.shape[1] != d or c.shape[0] != m or h_out.shape[0] != n
            or h_out.shape[1] != m or n < 1 or m < 1 or d < 1):
        raise ValueError("hidden_proba: shape mismatch")
    with nogil:
        _hidden_proba(&v[0, 0], n, &W[0, 0], &c[0], m, d, &h_out[0, 0])


def cd_epoch(object bit_generator, const real[:, ::1] X, const idx_t[::1] bounds,
             real[:, ::1] Wt, real[::1] c, real[::1] b, real[:, ::1] chain,
             idx_t k, double lr, bint persistent, bint gaussian,
             real[:, ::1] h_scratch, real[:, ::1] v_scratch):
    """One epoch of CD-k / persistent CD over the mini-batches ``X[bounds[t]:bounds[t+1]]``.

    The weights come transposed, ``Wt = W^T`` (d, m): every GEMM is then
    no-transpose or transpose-A, the fastest OpenBLAS paths for these small shapes.

    Per batch V (B rows), with k Gibbs steps in the negative phase (Hinton 2002):

    - positive phase ``H+ = p(h | V)`` (probabilities);
    - negative chain: CD-k starts from ``h ~ p(h | V)``, persistent CD from the hidden
      samples in ``chain`` (R rows); each step samples ``v ~ p(v | h)`` then
      ``p(h | v)``, sampling h again between steps;
    - update ``W += lr (H+^T V / B - H-^T V- / R)``, ``c += lr (mean H+ - mean H-)``,
      ``b += lr (mean V - mean V-)``; persistent CD then stores ``h ~ H-`` in ``chain``.

    The weight update is a single GEMM over the stacked rows ``[-H- lr/R; H+ lr/B]`` and
    ``[V-; V]``, so W is read and written once per batch; with persistent CD the chain
    runs first (it does not depend on the batch) and H- and H+ come from one GEMM too.

    Random draws, per batch, in this order: CD-k one uniform per (row, hidden unit) for
    the starting hidden sample; then per step the visible draws and (between steps) hidden
    draws; persistent CD finally one uniform per chain hidden unit.

    Polls for Ctrl-C between batches: on KeyboardInterrupt the parameters (and the
    persistent chain) hold the updates of the finished batches.

    Assumes: X (n, d) validated; ``bounds`` strictly increasing from 0 to n; scratch
    ``h_scratch`` (R + max B, m) and ``v_scratch`` (R + max B, d) with R the chain rows
    (persistent) or max B (CD); chain (R, m) of 0/1; k >= 1; sizes below 2**31.
    """
    cdef idx_t n = X.shape[0], d = X.shape[1], m = Wt.shape[1], nb = bounds.shape[0] - 1
    cdef idx_t t, s, B, R, step, i, j, rows = h_scratch.shape[0]
    cdef const real *V
    cdef real *hn
    cdef real *hp
    cdef real *vn
    cdef real *vp
    cdef real sp, sn
    if Wt.shape[0] != d or c.shape[0] != m or b.shape[0] != d:
        raise ValueError(f"cd_epoch: parameter shapes do not match (m={m}, d={d})")
    if (nb < 1 or bounds[0] != 0 or bounds[nb] != n or k < 1 or h_scratch.shape[1] != m
            or v_scratch.shape[1] != d or chain.shape[1] != m
            or v_scratch.shape[0] != rows or (persistent and chain.shape[0] < 1)):
        raise ValueError("cd_epoch: shape mismatch")
    for t in range(nb):
        B = bounds[t + 1] - bounds[t]
        R = chain.shape[0] if persistent else B
        if B < 1 or R + B > rows:
            raise ValueError("cd_epoch: batches must be non-empty and fit the scratch")
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t left = POLL_WORK
    with bit_generator.lock, nogil:
        for t in range(nb):
            s = bounds[t]
            B = bounds[t + 1] - s
            R = chain.shape[0] if persistent else B
            poll(&left, 4 * (k + 2) * (R + B) * (m * d + 8 * (m + d)), NULL)
            V = &X[s, 0]
            hn = &h_scratch[0, 0]
            hp = hn + R * m
            vn = &v_scratch[0, 0]
            vp = vn + R * d
            memcpy(vp, V, B * d * sizeof(real))
            if persistent:
                # The chain does not depend on this batch: run it first, and get p(h|v)
                # of the last negative sample and of the data from one GEMM on the
                # stacked rows [V-; V] (no draws happen in the positive phase, so the
                # draw order is the documented one).
                memcpy(hn, &chain[0, 0], R * m * sizeof(real))
                for step in range(k):
                    _sample_visible(rng, hn, R, &Wt[0, 0], &b[0], m, d, gaussian, vn,
                                    True)
                    if step < k - 1:
                        _hidden_proba(vn, R, &Wt[0, 0], &c[0], m, d, hn, True)
                        _bernoulli(rng, hn, R * m, hn)
                _hidden_proba(vn, R + B, &Wt[0, 0], &c[0], m, d, hn, True)
                _bernoulli(rng, hn, R * m, &chain[0, 0])
            else:
                _hidden_proba(V, B, &Wt[0, 0], &c[0], m, d, hp, True)
                _bernoulli(rng, hp, R * m, hn)
                for step in range(k):
                    _sample_visible(rng, hn, R, &Wt[0, 0], &b[0], m, d, gaussian, vn,
                                    True)
                    _hidden_proba(vn, R, &Wt[0, 0], &c[0], m, d, hn, True)
                    if step < k - 1:
                        _bernoulli(rng, hn, R * m, hn)
            sp = <real> (lr / B)
            sn = <real> (-lr / R)
            for i in range(B):
                for j in range(m):
                    hp[i * m + j] *= sp
                    c[j] += hp[i * m + j]
                for j in range(d):
                    b[j] += sp * vp[i * d + j]
            for i in range(R):
                for j in range(m):
                    hn[i * m + j] *= sn
                    c[j] += hn[i * m + j]
                for j in range(d):
                    b[j] += sn * vn[i * d + j]
            _gemm(c'T', c'N', <int> d, <int> m, <int> (R + B), 1, vn, <int> d, hn,
                  <int> m, 1, &Wt[0, 0], <int> m)
