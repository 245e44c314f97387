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
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset

from fastml._kernels._interrupt cimport POLL_WORK, poll
from fastml._kernels._types cimport idx_t, real

cdef extern from "_gather.h" nogil:
    void fastml_gather2_f32(const float *src, float *dst, idx_t n)
    void fastml_gather2_f64(const double *src, double *dst, idx_t n)

cdef extern from "_conv_direct.h" nogil:
    enum:
        FML_FB
        FML_NV
        FML_FW
        FML_JB
        FML_VBYTES
    int fml_conv_direct_available()
    void fml_conv_fwd_float(const float *xp, idx_t WP, const idx_t *off, idx_t taps,
                            const float *wp, idx_t F, const float *bias, idx_t OH,
                            idx_t OW, float *y)
    void fml_conv_fwd_double(const double *xp, idx_t WP, const idx_t *off, idx_t taps,
                             const double *wp, idx_t F, const double *bias, idx_t OH,
                             idx_t OW, double *y)
    void fml_conv_dw_float(const float *xp, const idx_t *off, idx_t taps, const float *gp,
                           idx_t GP, idx_t F, idx_t NQ, float *dw)
    void fml_conv_dw_double(const double *xp, const idx_t *off, idx_t taps,
                            const double *gp, idx_t GP, idx_t F, idx_t NQ, double *dw)


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


# --- direct convolution at stride 1 (AVX-512; _conv_direct.h) ------------------------


def direct_available():
    """Whether this CPU (and OS) runs the AVX-512 direct convolution kernels."""
    return bool(fml_conv_direct_available())


cdef inline idx_t _round_up(idx_t n, idx_t m) noexcept nogil:
    return (n + m - 1) // m * m


cdef inline void _fwd(const real *xp, idx_t WP, const idx_t *off, idx_t taps,
                      const real *wp, idx_t F, const real *bias, idx_t OH, idx_t OW,
                      real *y) noexcept nogil:
    if real is float:
        fml_conv_fwd_float(xp, WP, off, taps, wp, F, bias, OH, OW, y)
    else:
        fml_conv_fwd_double(xp, WP, off, taps, wp, F, bias, OH, OW, y)


cdef inline void _dw(const real *xp, const idx_t *off, idx_t taps, const real *gp,
                     idx_t GP, idx_t F, idx_t NQ, real *dw) noexcept nogil:
    if real is float:
        fml_conv_dw_float(xp, off, taps, gp, GP, F, NQ, dw)
    else:
        fml_conv_dw_double(xp, off, taps, gp, GP, F, NQ, dw)


cdef void _pad_planes(const real *src, idx_t planes, idx_t rows, idx_t cols, real *dst,
                      idx_t plane_stride, idx_t row_stride, idx_t top,
                      idx_t left) noexcept nogil:
    """Copy ``planes`` (rows, cols) planes into a zeroed buffer at (top, left) of each
    padded plane; the padding is never written, so it stays zero."""
    cdef idx_t c, r
    for c in range(planes):
        for r in range(rows):
            memcpy(dst + c * plane_stride + (top + r) * row_stride + left,
                   src + (c * rows + r) * cols, cols * sizeof(real))


cdef int _check_direct(idx_t N, idx_t C, idx_t H, idx_t W, idx_t F, idx_t C2, idx_t kh,
                       idx_t kw, idx_t p, idx_t yN, idx_t yF, idx_t yH,
                       idx_t yW) except -1:
    if not fml_conv_direct_available():
        raise RuntimeError("the direct convolution kernels need AVX-512 (F, VL)")
    if (C2 != C or p < 0 or p >= kh or p >= kw or H + 2 * p < kh or W + 2 * p < kw
            or yN != N or yF != F or yH != H + 2 * p - kh + 1
            or yW != W + 2 * p - kw + 1):
        raise ValueError("direct convolution: shapes or padding do not agree")
    return 0


def conv2d_direct_forward(const real[:, :, :, ::1] x, const real[:, :, :, ::1] w,
                          const real[::1] bias, idx_t padding, real[:, :, :, ::1] y,
                          const unsigned char[::1] cancel=None):
    """``y[n, f] = bias[f] + sum_{c, i, j} w[f, c, i, j] xp[n, c, oh + i, ow + j]`` at
    stride 1, zero padding ``p``, without an im2col matrix (``_conv_direct.h``).

    Per image: the image is copied into a zero-padded buffer whose rows are wide enough
    for whole vector tiles, then the AVX-512 kernel runs tiles of filters x output row
    segments over the C kh kw taps. Assumes: C-contiguous arrays, ``y`` (N, F, OH, OW)
    with OH = H + 2p - kh + 1 (likewise OW), ``bias`` (F,) or None, ``p < min(kh, kw)``,
    :func:`direct_available`. ``cancel``: as :func:`im2col`.
    """
    cdef idx_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef idx_t F = w.shape[0], kh = w.shape[2], kw = w.shape[3], p = padding
    _check_direct(N, C, H, W, F, w.shape[1], kh, kw, p, y.shape[0], y.shape[1],
                  y.shape[2], y.shape[3])
    if bias is not None and bias.shape[0] != F:
        raise ValueError("direct convolution: bias must have one entry per filter")
    cdef idx_t OH = y.shape[2], OW = y.shape[3], taps = C * kh * kw
    cdef idx_t VW = FML_VBYTES // sizeof(real)
    cdef idx_t HP = H + 2 * p
    cdef idx_t WP = max(W + 2 * p, _round_up(OW, FML_NV * VW) + kw - 1)
    cdef idx_t nfb = (F + FML_FB - 1) // FML_FB, n, f, t, c, i, j
    cdef const real *b = &bias[0] if bias is not None else NULL
    if N == 0 or F == 0 or C == 0:
        return
    cdef real *xp = <real *> calloc(C * HP * WP, sizeof(real))
    cdef real *wp = <real *> calloc(nfb * taps * FML_FB, sizeof(real))
    cdef idx_t *off = <idx_t *> calloc(taps, sizeof(idx_t))
    cdef idx_t left = POLL_WORK
    cdef const unsigned char *stop = _cancel_ptr(cancel)
    try:
        if xp == NULL or wp == NULL or off == NULL:
            raise MemoryError()
        with nogil:
            for c in range(C):
                for i in range(kh):
                    for j in range(kw):
                        off[(c * kh + i) * kw + j] = (c * HP + i) * WP + j
            for f in range(F):
                for t in range(taps):
                    wp[((f // FML_FB) * taps + t) * FML_FB + f % FML_FB] = (
                        (&w[f, 0, 0, 0])[t])
            for n in range(N):
                poll(&left, 2 * F * taps * OH * OW, stop)
                _pad_planes(&x[n, 0, 0, 0], C, H, W, xp, HP * WP, WP, p, p)
                _fwd(xp, WP, off, taps, wp, F, b, OH, OW, &y[n, 0, 0, 0])
    finally:
        free(xp)
        free(wp)
        free(off)


def conv2d_direct_backward(const real[:, :, :, ::1] g, const real[:, :, :, ::1] x,
                           const real[:, :, :, ::1] w, idx_t padding,
                           real[:, :, :, ::1] gx, real[:, :, :, ::1] gw,
                           const unsigned char[::1] cancel=None):
    """Gradients of :func:`conv2d_direct_forward` for the images of ``x``: ``gx``
    (overwritten) and ``gw`` (overwritten with the sum over these images, in image
    order); the bias gradient is the caller's (a sum of ``g``).

    ``gx`` is the stride-1 adjoint, a direct convolution of ``g`` zero-padded by
    ``k - 1 - p`` with ``w`` flipped and its channel axes swapped; ``gw[f, c, i, j] =
    sum g[n, f, oh, ow] xp[n, c, oh + i, ow + j]`` runs on both padded planes with the
    pixels flattened on one row width (``_conv_direct.h``). Assumes: as
    :func:`conv2d_direct_forward`, ``g`` (N, F, OH, OW), ``gx`` the shape of ``x``,
    ``gw`` the shape of ``w``.
    """
    cdef idx_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef idx_t F = w.shape[0], kh = w.shape[2], kw = w.shape[3], p = padding
    _check_direct(N, C, H, W, F, w.shape[1], kh, kw, p, g.shape[0], g.shape[1],
                  g.shape[2], g.shape[3])
    if (gx.shape[0] != N or gx.shape[1] != C or gx.shape[2] != H or gx.shape[3] != W
            or gw.shape[0] != F or gw.shape[1] != C or gw.shape[2] != kh
            or gw.shape[3] != kw):
        raise ValueError("direct convolution: gradient shapes do not agree")
    cdef idx_t OH = g.shape[2], OW = g.shape[3], taps = C * kh * kw
    cdef idx_t taps2 = F * kh * kw, VW = FML_VBYTES // sizeof(real)
    cdef idx_t HP = H + 2 * p, HG = H + kh - 1
    cdef idx_t WP = max(W + 2 * p, _round_up(W, FML_NV * VW) + kw - 1)
    cdef idx_t NQ = _round_up(OH * WP, VW)
    cdef idx_t XP = HP * WP, GP = HG * WP + VW  # plane strides (g: a vector of slack)
    cdef idx_t FP = _round_up(F, FML_FW), slack = WP + VW + kw
    cdef idx_t nfb = (C + FML_FB - 1) // FML_FB, n, f, c, i, j
    cdef idx_t gtop = kh - 1 - p, gleft = kw - 1 - p
    if N == 0 or F == 0 or C == 0:
        if F * taps > 0:
            memset(&gw[0, 0, 0, 0], 0, F * taps * sizeof(real))
        return
    cdef real *xp = <real *> calloc(C * XP + slack, sizeof(real))
    cdef real *gp = <real *> calloc(FP * GP + slack, sizeof(real))
    cdef real *wp = <real *> calloc(nfb * taps2 * FML_FB, sizeof(real))
    cdef real *dw = <real *> calloc(F * taps, sizeof(real))
    cdef idx_t *off = <idx_t *> calloc(_round_up(taps, FML_JB), sizeof(idx_t))
    cdef idx_t *off2 = <idx_t *> calloc(taps2, sizeof(idx_t))
    cdef idx_t left = POLL_WORK
    cdef const unsigned char *stop = _cancel_ptr(cancel)
    try:
        if (xp == NULL or gp == NULL or wp == NULL or dw == NULL or off == NULL
                or off2 == NULL):
            raise MemoryError()
        with nogil:
            for c in range(C):
                for i in range(kh):
                    for j in range(kw):
                        off[(c * kh + i) * kw + j] = c * XP + i * WP + j
            for f in range(F):
                for i in range(kh):
                    for j in range(kw):
                        off2[(f * kh + i) * kw + j] = f * GP + i * WP + j
                        for c in range(C):
                            wp[((c // FML_FB) * taps2 + (f * kh + i) * kw + j) * FML_FB
                               + c % FML_FB] = w[f, c, kh - 1 - i, kw - 1 - j]
            for n in range(N):
                poll(&left, 6 * F * taps * OH * OW, stop)
                _pad_planes(&x[n, 0, 0, 0], C, H, W, xp, XP, WP, p, p)
                _pad_planes(&g[n, 0, 0, 0], F, OH, OW, gp, GP, WP, gtop, gleft)
                _fwd(gp, WP, off2, taps2, wp, C, <const real *> NULL, H, W,
                     &gx[n, 0, 0, 0])
                _dw(xp, off, taps, gp + gtop * WP + gleft, GP, F, NQ, dw)
            memcpy(&gw[0, 0, 0, 0], dw, F * taps * sizeof(real))
    finally:
        free(xp)
        free(gp)
        free(wp)
        free(dw)
        free(off)
        free(off2)
