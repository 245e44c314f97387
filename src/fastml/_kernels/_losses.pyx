"""Loss kernels: mean negative log-likelihoods and their gradients in one pass.

Every kernel returns the weighted sum of per-element losses (accumulated in double) and
writes the gradient of ``scale * sum`` w.r.t. the prediction/logits, where the Python
layer passes ``scale = 1 / (weight total)``. An empty weight array means unit weights.
"""
from libc.math cimport copysign, exp, fabs, log

from fastml._kernels._types cimport idx_t, real

cdef double _LOG_2PI = 1.8378770664093453


cdef inline double _weight(const real[::1] w, idx_t i) noexcept nogil:
    return 1.0 if w.shape[0] == 0 else <double> w[i]


def squared_error(const real[:, ::1] pred, const real[:, ::1] target,
                  const real[:, ::1] var, const real[::1] w, double scale,
                  real[:, ::1] grad_out):
    """Gaussian negative log-likelihood (PRML eq. 1.62) or squared error.

    With ``var`` empty: per-element loss ``(p - t)**2`` and gradient ``2 (p - t)``.
    Otherwise ``0.5 log(2 pi v) + (p - t)**2 / (2 v)`` and gradient ``(p - t) / v``.

    Assumes: arrays validated, C-contiguous, of shape (n, k) (``var`` (n, k) or (0, 0),
    positive), ``w`` of length n or 0.
    """
    cdef idx_t n = pred.shape[0], k = pred.shape[1], i, j
    cdef bint has_var = var.shape[0] != 0
    cdef double total = 0.0, row, wi, r, v
    if (target.shape[0] != n or target.shape[1] != k or grad_out.shape[0] != n
            or grad_out.shape[1] != k or (w.shape[0] != 0 and w.shape[0] != n)
            or (has_var and (var.shape[0] != n or var.shape[1] != k))):
        raise ValueError(f"squared_error: shape mismatch (n={n}, k={k})")
    with nogil:
        for i in range(n):
            wi = _weight(w, i)
            row = 0.0
            for j in range(k):
                r = <double> pred[i, j] - <double> target[i, j]
                if has_var:
                    v = var[i, j]
                    row += 0.5 * (_LOG_2PI + log(v)) + 0.5 * r * r / v
                    grad_out[i, j] = <real> (wi * scale * r / v)
                else:
                    row += r * r
                    grad_out[i, j] = <real> (2.0 * wi * scale * r)
            total += wi * row
    return total


def binary_cross_entropy(const real[:, ::1] logits, const real[:, ::1] y,
                         const real[:, ::1] softplus_neg_abs, const real[::1] w,
                         double scale, real[:, ::1] grad_out):
    """Bernoulli negative log-likelihood from logits (PRML eq. 4.90), overflow-free.

    Per element ``max(z, 0) - z y + log1p(exp(-|z|))`` and gradient ``sigmoid(z) - y``
    (PRML eq. 4.91), with the sigmoid evaluated on the side where ``exp`` cannot overflow:
    with ``r = e / (1 + e)``, ``e = exp(-|z|)``, sigmoid(z) is ``1 - r`` for z >= 0 and
    ``r`` otherwise (computed without branches: random signs would mispredict).

    The transcendental parts come precomputed from numpy's SIMD ufuncs, which scalar libm
    calls cannot match: ``grad_out`` holds ``exp(-|z|)`` on entry (and the gradient on
    exit) and ``softplus_neg_abs`` holds ``log1p(exp(-|z|))``.

    Assumes: arrays validated, C-contiguous, shape (n, k); ``w`` of length n or 0.
    """
    cdef idx_t n = logits.shape[0], k = logits.shape[1], i, j
    cdef double total = 0.0, row, wi, z, t, e, r, s, pos
    if (y.shape[0] != n or y.shape[1] != k or grad_out.shape[0] != n
            or grad_out.shape[1] != k or softplus_neg_abs.shape[0] != n
            or softplus_neg_abs.shape[1] != k or (w.shape[0] != 0 and w.shape[0] != n)):
        raise ValueError(f"binary_cross_entropy: shape mismatch (n={n}, k={k})")
    with nogil:
        for i in range(n):
            wi = _weight(w, i)
            row = 0.0
            for j in range(k):
                z = logits[i, j]
                t = y[i, j]
                e = grad_out[i, j]
                # max(z, 0) = (z + |z|) / 2 exactly; pos = 1 for z >= 0, else 0 (copysign
                # is bit arithmetic: no branch for the sign)
                pos = 0.5 + copysign(0.5, z)
                row += 0.5 * (z + fabs(z)) - z * t + softplus_neg_abs[i, j]
                r = e / (1.0 + e)
                s = r + (1.0 - 2.0 * r) * pos
                grad_out[i, j] = <real> (wi * scale * (s - t))
            total += wi * row
    return total


cdef inline double _exp_shifted(const real *z, idx_t c, real *g, double *inv_sum) noexcept nogil:
    """Write exp(z - max z) into ``g`` and 1 / its sum into ``inv_sum``; return logsumexp(z)."""
    cdef idx_t j
    cdef double m = z[0], s = 0.0, e
    for j in range(1, c):
        if z[j] > m:
            m = z[j]
    for j in range(c):
        e = exp(<double> z[j] - m)
        g[j] = <real> e
        s += e
    inv_sum[0] = 1.0 / s
    return m + log(s)


def softmax_cross_entropy_index(const real[:, ::1] logits, const idx_t[::1] labels,
                                const real[::1] w, double scale, real[:, ::1] grad_out):
    """Multinomial negative log-likelihood with integer targets (PRML eq. 4.108).

    Per row ``logsumexp(z) - z[label]`` and gradient ``softmax(z) - onehot(label)``
    (PRML eq. 4.109); the log-sum-exp is shifted by the row maximum.

    Assumes: arrays validated, C-contiguous; ``0 <= labels[i] < C``; ``w`` length n or 0.
    """
    cdef idx_t n = logits.shape[0], c = logits.shape[1], i, j
    cdef double total = 0.0, lse, wi, inv_s
    if (labels.shape[0] != n or grad_out.shape[0] != n or grad_out.shape[1] != c
            or (w.shape[0] != 0 and w.shape[0] != n) or c < 1):
        raise ValueError(f"softmax_cross_entropy_index: shape mismatch (n={n}, C={c})")
    with nogil:
        for i in range(n):
            wi = _weight(w, i)
            lse = _exp_shifted(&logits[i, 0], c, &grad_out[i, 0], &inv_s)
            for j in range(c):
                grad_out[i, j] = <real> (wi * scale * grad_out[i, j] * inv_s)
            grad_out[i, labels[i]] -= <real> (wi * scale)
            total += wi * (lse - logits[i, labels[i]])
    return total


def softmax_cross_entropy_proba(const real[:, ::1] logits, const real[:, ::1] y,
                                const real[::1] w, double scale, real[:, ::1] grad_out):
    """Cross-entropy against target distributions ``y`` (rows summing to 1).

    Per row ``sum_c y_c (logsumexp(z) - z_c)`` and gradient ``softmax(z) sum_c y_c - y``.

    Assumes: arrays validated, C-contiguous, shape (n, C); ``y >= 0``; ``w`` length n or 0.
    """
    cdef idx_t n = logits.shape[0], c = logits.shape[1], i, j
    cdef double total = 0.0, lse, wi, inv_s, ysum, row
    if (y.shape[0] != n or y.shape[1] != c or grad_out.shape[0] != n
            or grad_out.shape[1] != c or (w.shape[0] != 0 and w.shape[0] != n) or c < 1):
        raise ValueError(f"softmax_cross_entropy_proba: shape mismatch (n={n}, C={c})")
    with nogil:
        for i in range(n):
            wi = _weight(w, i)
            lse = _exp_shifted(&logits[i, 0], c, &grad_out[i, 0], &inv_s)
            ysum = 0.0
            row = 0.0
            for j in range(c):
                ysum += y[i, j]
                row += y[i, j] * (lse - logits[i, j])
            for j in range(c):
                grad_out[i, j] = <real> (wi * scale * (grad_out[i, j] * inv_s * ysum - y[i, j]))
            total += wi * row
    return total
