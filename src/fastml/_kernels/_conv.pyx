"""Convolution and pooling kernels: im2col/col2im and 2-D max pooling, NCHW.

A 2-D convolution (cross-correlation, as in every deep-learning library) of ``x`` (N, C,
H, W) with ``w`` (F, C, kh, kw) at stride s and zero padding p is, per sample, one GEMM
``y[n] = w.reshape(F, K) @ cols[n]`` where ``cols[n]`` (K = C kh kw, P = OH OW) holds the
receptive field of every output pixel (im2col; Goodfellow et al., Deep Learning, sec.
9.8; Chellapilla et al. 2006). Its backward pass is the transposed GEMM followed by
col2im, the adjoint of im2col: it adds each column entry back into the pixel it was read
from, so ``<im2col(x), c> = <x, col2im(c)>`` exactly in exact arithmetic.

Rows of ``cols[n]`` are ordered (c, i, j), matching ``w.reshape(F, C * kh * kw)``. The
kernels poll for Ctrl-C between images (pooling: between output rows); im2col and
col2im also watch the ``cancel`` byte of the other threads when ``fastml.nn`` runs
blocks of images on threads (``fastml._parallel.run_blocks``).
"""
from libc.string cimport memcpy, memset

from fastml._kernels._interrupt cimport POLL_WORK, poll
from fastml._kernels._types cimport idx_t, real

cdef extern from "_gather.h" nogil:
    void fastml_gather2_f32(const float *src, float *dst, idx_t n)
    void fastml_gather2_f64(const double *src, double *dst, idx_t n)


cdef inline void _valid_range(idx_t n_in, idx_t n_out, idx_t s, idx_t p, idx_t j,
                              idx_t *lo, idx_t *hi) noexcept nogil:
    """Output positions o in [lo, hi) whose input index o*s - p + j lies in [0, n_in)."""
    cdef idx_t a = p - j, b = n_in - 1 + p - j
    lo[0] = (a + s - 1) // s if a > 0 else 0
    hi[0] = b // s + 1 if b >= 0 else 0
    if hi[0] > n_out:
        hi[0] = n_out
    if lo[0] > hi[0]:
        lo[0] = hi[0]


cdef void _im2col_one(const real *x, idx_t C, idx_t H, idx_t W, idx_t kh, idx_t kw,
                      idx_t s, idx_t p, idx_t OH, idx_t OW, real *col) noexcept nogil:
    """Write the (C kh kw, OH OW) column matrix of one image ``x`` (C, H, W) into ``col``.

    Per kernel offset (i, j), output rows [rlo, rhi) and columns [lo, hi) read inside
    the image; the rest is zero padding. Inside, each row is a copy (stride 1), a SIMD
    gather of every other element (stride 2, ``_gather.h``) or a strided loop.
    """
    cdef idx_t c, i, j, ow, lo, hi, rlo, rhi, r1, n, t
    cdef real *dst = col
    # Set below only when a row is read (r1 > rlo), so the pointer is never formed
    # outside the image; initialised because gcc cannot see that the row loop then runs
    # zero times (-Wmaybe-uninitialized).
    cdef const real *src = x
    for c in range(C):
        for i in range(kh):
            _valid_range(H, OH, s, p, i, &rlo, &rhi)
            for j in range(kw):
                _valid_range(W, OW, s, p, j, &lo, &hi)
                n = hi - lo
                r1 = rhi if n > 0 else rlo  # no column inside: every row is padding
                for t in range(rlo * OW):  # rows above the image
                    dst[t] = 0
                dst += rlo * OW
                if r1 > rlo:
                    src = x + (c * H + rlo * s - p + i) * W + (lo * s - p + j)
                for _ in range(r1 - rlo):
                    for ow in range(lo):
                        dst[ow] = 0
                    if s == 1:
                        memcpy(dst + lo, src, n * sizeof(real))
                    elif s == 2:
                        if real is float:
                            fastml_gather2_f32(src, dst + lo, n)
                        else:
                            fastml_gather2_f64(src, dst + lo, n)
                    else:
                        for ow in range(n):
                            dst[lo + ow] = src[ow * s]
                    for ow in range(hi, OW):
                        dst[ow] = 0
                    src += s * W
                    dst += OW
                for t in range((OH - r1) * OW):  # rows below the image
                    dst[t] = 0
                dst += (OH - r1) * OW


cdef void _col2im_one(const real *col, idx_t C, idx_t H, idx_t W, idx_t kh, idx_t kw,
                      idx_t s, idx_t p, idx_t OH, idx_t OW, real *x) noexcept nogil:
    """Add the (C kh kw, OH OW) columns back into the image ``x`` (C, H, W), zeroed first."""
    cdef idx_t c, i, j, oh, ow, ih, lo, hi
    cdef const real *src = col
    cdef real *dst
    memset(x, 0, C * H * W * sizeof(real))
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                _valid_range(W, OW, s, p, j, &lo, &hi)
                for oh in range(OH):
                    ih = oh * s - p + i
                    if ih >= 0 and ih < H:
                        dst = x + (c * H + ih) * W + (lo * s - p + j)
                        if s == 1:
                            for ow in range(hi - lo):
                                dst[ow] += src[lo + ow]
                        else:
                            for ow in range(hi - lo):
                                dst[ow * s] += src[lo + ow]
                    src += OW


cdef int _check_geometry(idx_t N, idx_t C, idx_t H, idx_t W, idx_t kh, idx_t kw,
                         idx_t s, idx_t p, idx_t n_cols, idx_t K, idx_t P) except -1:
    cdef idx_t OH, OW
    if s < 1 or p < 0 or kh < 1 or kw < 1 or H + 2 * p < kh or W + 2 * p < kw:
        raise ValueError(f"conv geometry invalid (k={kh}x{kw}, stride={s}, pad={p})")
    OH = (H + 2 * p - kh) // s + 1
    OW = (W + 2 * p - kw) // s + 1
    if n_cols != N or K != C * kh * kw or P != OH * OW:
        raise ValueError(f"cols must have shape ({N}, {C * kh * kw}, {OH * OW}), "
                         f"got ({n_cols}, {K}, {P})")
    return 0


cdef const unsigned char *_cancel_ptr(const unsigned char[::1] cancel) except? NULL:
    """The cancel byte of a parallel call, or NULL (none)."""
    if cancel is None:
        return NULL
    if cancel.shape[0] < 1:
        raise ValueError("cancel must hold one byte")
    return &cancel[0]


def im2col(const real[:, :, :, ::1] x, idx_t kh, idx_t kw, idx_t stride, idx_t padding,
           real[:, :, ::1] cols_out, const unsigned char[::1] cancel=None):
    """Receptive fields of every output pixel, per image (Goodfellow et al. sec. 9.8).

    ``cols_out[n, (c*kh + i)*kw + j, oh*OW + ow] = x[n, c, oh*s - p + i, ow*s - p + j]``
    (zero outside the image). Stride 1: each output row is a contiguous copy of an input
    row with the padded border zeroed; stride 2: a SIMD gather of the even elements
    (``_gather.h``) instead of the copy; larger strides: a strided loop.

    Assumes: ``x`` (N, C, H, W) C-contiguous; ``cols_out`` (N, C kh kw, OH OW).
    ``cancel`` (optional) is the byte the other threads of a parallel call set to stop
    this one (``_interrupt.pxd``).
    """
    cdef idx_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3], n
    _check_geometry(N, C, H, W, kh, kw, stride, padding, cols_out.shape[0],
                    cols_out.shape[1], cols_out.shape[2])
    cdef idx_t OH = (H + 2 * padding - kh) // stride + 1
    cdef idx_t OW = (W + 2 * padding - kw) // stride + 1
    if N == 0 or cols_out.shape[1] == 0 or cols_out.shape[2] == 0:
        return
    cdef idx_t left = POLL_WORK
    cdef const unsigned char *stop = _cancel_ptr(cancel)
    with nogil:
        for n in range(N):
            poll(&left, 2 * cols_out.shape[1] * cols_out.shape[2], stop)
            _im2col_one(&x[n, 0, 0, 0], C, H, W, kh, kw, stride, padding, OH, OW,
                        &cols_out[n, 0, 0])


def col2im(const real[:, :, ::1] cols, idx_t kh, idx_t kw, idx_t stride, idx_t padding,
           real[:, :, :, ::1] x_out, const unsigned char[::1] cancel=None):
    """Adjoint of :func:`im2col`: sum every column entry into the pixel it came from.

    Overwrites ``x_out`` (N, C, H, W) with ``x_out[n, c, h, w] = sum`` of the entries of
    ``cols[n]`` that im2col read from (c, h, w); padded positions are dropped. This is the
    input gradient of a convolution given ``cols = w^T @ grad_out`` (Goodfellow et al.
    sec. 9.8, the transpose of the convolution operator).

    Assumes: ``cols`` (N, C kh kw, OH OW) and ``x_out`` (N, C, H, W) C-contiguous.
    ``cancel``: as :func:`im2col`.
    """
    cdef idx_t N = x_out.shape[0], C = x_out.shape[1], H = x_out.shape[2]
    cdef idx_t W = x_out.shape[3], n
    _check_geometry(N, C, H, W, kh, kw, stride, padding, cols.shape[0], cols.shape[1],
                    cols.shape[2])
    cdef idx_t OH = (H + 2 * padding - kh) // stride + 1
    cdef idx_t OW = (W + 2 * padding - kw) // stride + 1
    if N == 0 or C * H * W == 0:
        return
    cdef idx_t left = POLL_WORK
    cdef const unsigned char *stop = _cancel_ptr(cancel)
    with nogil:
        for n in range(N):
            poll(&left, 2 * cols.shape[1] * cols.shape[2] + C * H * W, stop)
            _col2im_one(&cols[n, 0, 0], C, H, W, kh, kw, stride, padding, OH, OW,
                        &x_out[n, 0, 0, 0])


def maxpool2d_forward(const real[:, :, :, ::1] x, idx_t kh, idx_t kw, idx_t stride,
                      real[:, :, :, ::1] out, idx_t[:, :, :, ::1] argmax_out):
    """Max over each kh x kw window at the given stride (no padding).

    Writes the maximum into ``out`` (N, C, OH, OW) and its flat index ``h * W + w`` within
    the (H, W) plane into ``argmax_out``; ties go to the first maximum in row-major order
    (as torch's CPU kernel).

    Assumes: ``x`` finite, C-contiguous; kh <= H, kw <= W, stride >= 1.
    """
    cdef idx_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef idx_t OH = out.shape[2], OW = out.shape[3], n, c, oh, ow, i, j, best
    cdef real m
    cdef const real *plane
    if (stride < 1 or kh < 1 or kw < 1 or kh > H or kw > W
            or out.shape[0] != N or out.shape[1] != C
            or OH != (H - kh) // stride + 1 or OW != (W - kw) // stride + 1
            or argmax_out.shape[0] != N or argmax_out.shape[1] != C
            or argmax_out.shape[2] != OH or argmax_out.shape[3] != OW):
        raise ValueError("maxpool2d_forward: shape mismatch")
    if N == 0 or C == 0:
        return
    cdef idx_t left = POLL_WORK
    with nogil:
        for n in range(N):
            for c in range(C):
                plane = &x[n, c, 0, 0]
                for oh in range(OH):
                    poll(&left, 2 * OW * kh * kw, NULL)
                    for ow in range(OW):
                        best = oh * stride * W + ow * stride
                        m = plane[best]
                        for i in range(kh):
                            for j in range(kw):
                                if plane[(oh * stride + i) * W + ow * stride + j] > m:
                                    best = (oh * stride + i) * W + ow * stride + j
                                    m = plane[best]
                        out[n, c, oh, ow] = m
                        argmax_out[n, c, oh, ow] = best


def maxpool2d_backward(const real[:, :, :, ::1] grad_out, const idx_t[:, :, :, ::1] argmax,
                       real[:, :, :, ::1] grad_in):
    """Route each output gradient to the input that won the max (zero elsewhere).

    Overwrites ``grad_in`` (N, C, H, W); overlapping windows add up.

    Assumes: ``argmax`` from :func:`maxpool2d_forward` on an input of ``grad_in``'s shape.
    """
    cdef idx_t N = grad_in.shape[0], C = grad_in.shape[1]
    cdef idx_t HW = grad_in.shape[2] * grad_in.shape[3]
    cdef idx_t OH = grad_out.shape[2], OW = grad_out.shape[3], n, c, oh, ow
    cdef real *plane
    if (grad_out.shape[0] != N or grad_out.shape[1] != C or argmax.shape[0] != N
            or argmax.shape[1] != C or argmax.shape[2] != OH or argmax.shape[3] != OW):
        raise ValueError("maxpool2d_backward: shape mismatch")
    if N == 0 or C == 0 or HW == 0:
        return
    cdef idx_t left = POLL_WORK
    with nogil:
        for n in range(N):
            poll(&left, C * (HW + 2 * OH * OW), NULL)
            for c in range(C):
                plane = &grad_in[n, c, 0, 0]
                memset(plane, 0, HW * sizeof(real))
                for oh in range(OH):
                    for ow in range(OW):
                        plane[argmax[n, c, oh, ow]] += grad_out[n, c, oh, ow]
