"""Convolution as functions: im2col / col2im (compiled in :mod:`fastml._kernels._conv`)
and the im2col + GEMM forward and GEMM + col2im backward passes (Goodfellow et al.
2016, sec. 9.1-9.5), which :class:`~fastml.nn.Conv2d` runs unless its convolution has
stride 1, padding below the kernel size and the CPU has AVX-512: then the layer runs the
direct kernels of ``_kernels/_conv_direct.h`` (no im2col matrix; 2-3x the GEMMs' speed
on the benchmark's shapes).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from fastml._kernels import simd_enabled, variant
from fastml._parallel import (
    blas_single_threaded,
    block_bounds,
    effective_n_jobs,
    run_blocks,
)
from fastml._typing import ArrayLike, RealArray
from fastml._validation import (
    check_array,
    check_finite,
    check_int,
)

__all__ = ["col2im", "conv2d_backward", "conv2d_forward", "im2col"]


_conv = variant("_conv")  # the AVX2 + FMA build where the CPU has it

# The direct stride-1 kernels are AVX-512 code (compiled into every build of _conv and
# used where the CPU runs it); FASTML_DISABLE_SIMD=1 turns them off with the rest.
_DIRECT = simd_enabled() and _conv.direct_available()


def _use_direct(s: int, p: int, kh: int, kw: int) -> bool:
    """Whether a layer's convolution runs on the direct kernels: stride 1 and padding
    below the kernel size (so the input gradient is itself a padded convolution)."""
    return _DIRECT and s == 1 and p < min(kh, kw)


_DIRECT_BLOCK_FLOPS = 1 << 25  # forward flops per direct block: ~0.25 ms


def _direct_bounds(x_shape, w_shape, out_pixels):
    """Fixed blocks of images for the direct kernels, the same for the forward and the
    backward pass (from the problem size only, never the thread count)."""
    flops = 2 * int(np.prod(w_shape)) * out_pixels
    return block_bounds(
        x_shape[0], max(1, min(x_shape[0], _DIRECT_BLOCK_FLOPS // max(flops, 1)))
    )


# Geometry (kernel size, stride, padding) is bounded by 2**31 - 1: the kernels' index
# arithmetic (products such as ``ow * stride``) then stays far inside int64.
_INT32_MAX = 2**31 - 1


def _pair(value, name: str, low: int) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return (
            check_int(value[0], name, low=low, high=_INT32_MAX),
            check_int(value[1], name, low=low, high=_INT32_MAX),
        )
    v = check_int(value, name, low=low, high=_INT32_MAX)
    return (v, v)


def _conv_out(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def im2col(
    x: ArrayLike,
    kernel_size: int | tuple[int, int],
    stride: int = 1,
    padding: int = 0,
) -> np.ndarray:
    """Unfold every receptive field of ``x`` (N, C, H, W) into a column.

    Parameters
    ----------
    x : array_like of shape (N, C, H, W)
        float32 stays float32, the rest becomes float64.
    kernel_size : int or (int, int)
    stride : int, default 1
    padding : int, default 0
        Zero padding on every side.

    Returns
    -------
    cols : numpy.ndarray of shape (N, C kh kw, OH OW)
        ``cols[n, (c kh + i) kw + j, oh OW + ow] = x_pad[n, c, oh s + i, ow s + j]`` with
        ``OH = (H + 2p - kh) // s + 1`` (Goodfellow et al. 2016, sec. 9.8).

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.nn import im2col
    >>> im2col(np.arange(9.0).reshape(1, 1, 3, 3), 2).shape
    (1, 4, 4)
    """
    xa = check_array(x, "x", ndim=4)
    kh, kw, s, p = _geometry(xa.shape, kernel_size, stride, padding)
    n, c, h, w = xa.shape
    oh, ow = _conv_out(h, kh, s, p), _conv_out(w, kw, s, p)
    cols = np.empty((n, c * kh * kw, oh * ow), dtype=xa.dtype)
    _conv.im2col(xa, kh, kw, s, p, cols)
    return cols


def col2im(
    cols: ArrayLike,
    x_shape: Sequence[int],
    kernel_size: int | tuple[int, int],
    stride: int = 1,
    padding: int = 0,
) -> np.ndarray:
    """Adjoint of :func:`im2col`: add every column entry back into its source pixel.

    ``<im2col(x), c> = <x, col2im(c)>`` for all x and c. ``x_shape`` is (N, C, H, W).

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.nn import col2im
    >>> col2im(np.ones((1, 4, 4)), (1, 1, 3, 3), 2)[0, 0]  # pixel use counts
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    ca = check_array(cols, "cols", ndim=3)
    shape = tuple(check_int(v, "x_shape", low=1) for v in x_shape)
    if len(shape) != 4:
        raise ValueError(f"x_shape must be (N, C, H, W), got {x_shape!r}")
    kh, kw, s, p = _geometry(shape, kernel_size, stride, padding)
    n, c, h, w = shape
    want = (n, c * kh * kw, _conv_out(h, kh, s, p) * _conv_out(w, kw, s, p))
    if ca.shape != want:
        raise ValueError(
            f"cols must have shape {want} for x_shape {shape}, got {ca.shape}"
        )
    x = np.empty(shape, dtype=ca.dtype)
    _conv.col2im(ca, kh, kw, s, p, x)
    return x


def _geometry(shape, kernel_size, stride, padding):
    kh, kw = _pair(kernel_size, "kernel_size", 1)
    s = check_int(stride, "stride", low=1, high=_INT32_MAX)
    p = check_int(padding, "padding", low=0, high=_INT32_MAX)
    h, w = shape[2], shape[3]
    if kh > h + 2 * p or kw > w + 2 * p:
        raise ValueError(
            f"kernel_size {kh}x{kw} is larger than the padded input "
            f"{h + 2 * p}x{w + 2 * p} (input {h}x{w}, padding={p})"
        )
    return kh, kw, s, p


def conv2d_forward(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: int = 1,
    padding: int = 0,
    *,
    n_jobs: int | None = None,
) -> tuple[RealArray, RealArray]:
    """2-D convolution (cross-correlation) by im2col + one GEMM per block of images.

    Parameters
    ----------
    x : array_like of shape (N, C, H, W)
    weight : array_like of shape (F, C, kh, kw)
    bias : array_like of shape (F,), optional
    stride, padding : int
    n_jobs : int or None, default None
        Threads over blocks of images (None: every CPU this process may use, capped
        by ``OMP_NUM_THREADS`` and threadpoolctl; -1: every CPU; k >= 1: k threads).
        The blocks (as many images as fill 1 MiB of columns) depend on the shapes
        only and every image is computed alone, so the result is bit-identical for
        every ``n_jobs``. BLAS is kept single-threaded inside the blocks
        (threadpoolctl), so at most ``n_jobs`` threads are busy.

    Returns
    -------
    y : numpy.ndarray of shape (N, F, OH, OW)
        ``y[n] = weight.reshape(F, K) @ cols[n] + bias`` (Goodfellow et al. eq. 9.4 with
        stride, sec. 9.5 and 9.8).
    cols : numpy.ndarray of shape (N, K, OH OW)
        The im2col matrix, needed by :func:`conv2d_backward`.

    Raises
    ------
    ValueError, TypeError
        Shapes that do not agree, bad geometry, ``n_jobs`` 0, below -1 or not an int.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.nn import conv2d_forward
    >>> y, cols = conv2d_forward(np.ones((2, 1, 3, 3)), np.ones((1, 1, 2, 2)), n_jobs=1)
    >>> y[0, 0]
    array([[4., 4.],
           [4., 4.]])
    """
    n_jobs = effective_n_jobs(n_jobs)
    xa = check_array(x, "x", ndim=4)
    wa = check_array(weight, "weight", ndim=4, dtype=xa.dtype)
    ba = None if bias is None else check_array(bias, "bias", ndim=1, dtype=xa.dtype)
    _check_conv_shapes(xa.shape, wa.shape, ba)
    return _conv2d_forward(
        xa,
        wa,
        ba,
        check_int(stride, "stride", low=1, high=_INT32_MAX),
        check_int(padding, "padding", low=0, high=_INT32_MAX),
        n_jobs,
    )


def _check_conv_shapes(xshape, wshape, b):
    if xshape[1] != wshape[1]:
        raise ValueError(
            f"x must have {wshape[1]} channels (weight.shape[1]), got {xshape[1]} "
            f"(x shape {xshape})"
        )
    if b is not None and b.shape != (wshape[0],):
        raise ValueError(f"bias must have shape ({wshape[0]},), got {b.shape}")


def _buffer(buf, shape, dtype):
    """``buf`` when it already has this shape and dtype, else a new empty array (layers
    reuse their im2col buffers: a fresh multi-MB array costs a page fault per 4 KiB)."""
    if buf is not None and buf.shape == shape and buf.dtype == dtype:
        return buf
    return np.empty(shape, dtype=dtype)


_CHUNK_BYTES = 1 << 20  # im2col block per GEMM: stays in a 1 MiB L2


def _thread_buffer(bufs, role, shape, dtype):
    """The calling thread's buffer ``role`` in ``bufs`` (thread id -> role -> array),
    reused when its shape and dtype match: every thread running blocks gets its own."""
    mine = bufs.setdefault(threading.get_ident(), {})
    buf = mine[role] = _buffer(mine.get(role), shape, dtype)
    return buf


def _take_images(x, a, e, x_copy):
    """A layer's block of images ``[a, e)``: checked for NaN and infinity (the error
    names the image index in the whole batch) and copied into the layer's cache."""
    check_finite(x[a:e], "x", a)
    np.copyto(x_copy[a:e], x[a:e])


def _conv2d_forward(x, w, b, s, p, n_jobs, bufs=None, x_copy=None):
    """y = conv(x, w) + b, over fixed blocks of images (``_chunk_images``) on up to
    ``n_jobs`` threads: per block, im2col then one GEMM per image into its rows of y.
    Returns (y, cols). Without ``bufs``, cols is the whole (N, K, P) im2col matrix (the
    functional API keeps it for the backward pass); with ``bufs`` (the layer's
    per-thread buffers, see ``_thread_buffer``) each block's columns live in its
    thread's buffer, still in cache when the GEMM reads them, and cols is None; a layer
    whose convolution qualifies (``_use_direct``) runs the direct kernels instead. A
    layer also passes ``x_copy``: each block checks its images and copies them there
    (``_take_images``)."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    _geometry(x.shape, (kh, kw), s, p)
    oh, ow = _conv_out(h, kh, s, p), _conv_out(wd, kw, s, p)
    k = c * kh * kw
    if max(k, oh * ow, f) > _INT32_MAX:
        raise ValueError("conv2d: a dimension exceeds the 32-bit BLAS limit")
    if bufs is not None and _use_direct(s, p, kh, kw):
        y4 = np.empty((n, f, oh, ow), dtype=x.dtype)
        dbounds = _direct_bounds(x.shape, w.shape, oh * ow)

        def direct(i, cancel):
            a, e = dbounds[i]
            if x_copy is not None:
                _take_images(x, a, e, x_copy)
            _conv.conv2d_direct_forward(x[a:e], w, b, p, y4[a:e], cancel)

        run_blocks(direct, len(dbounds), n_jobs)
        return y4, None
    m = _chunk_images(n, k * oh * ow * x.dtype.itemsize)
    bounds = block_bounds(n, m)
    cols = np.empty((n, k, oh * ow), dtype=x.dtype) if bufs is None else None
    w2 = w.reshape(f, k)
    y = np.empty((n, f, oh * ow), dtype=x.dtype)

    def block(i, cancel):
        a, e = bounds[i]
        if x_copy is not None:
            _take_images(x, a, e, x_copy)
        if cols is None:
            col = _thread_buffer(bufs, "cols", (m, k, oh * ow), x.dtype)[: e - a]
        else:
            col = cols[a:e]
        _conv.im2col(x[a:e], kh, kw, s, p, col, cancel)
        np.matmul(w2, col, out=y[a:e])
        if b is not None:
            y[a:e] += b[:, None]

    with blas_single_threaded():
        run_blocks(block, len(bounds), n_jobs)
    return y.reshape(n, f, oh, ow), cols


def _direct_backward(g, x, w, p, n_jobs):
    """(gx, gw, gb) by the direct kernels over fixed blocks of images; each block's
    weight and bias gradients are summed over its images in order, and the blocks'
    sums are added in block order (bit-identical for every ``n_jobs``)."""
    gx = np.empty(x.shape, dtype=w.dtype)
    dbounds = _direct_bounds(x.shape, w.shape, g.shape[2] * g.shape[3])

    def direct(i, cancel):
        a, e = dbounds[i]
        check_finite(g[a:e], "grad_out", a)
        gw = np.empty_like(w)
        _conv.conv2d_direct_backward(g[a:e], x[a:e], w, p, gx[a:e], gw, cancel)
        return gw, g[a:e].sum(axis=(0, 2, 3))

    gw, gb = _add_in_block_order(run_blocks(direct, len(dbounds), n_jobs))
    return gx, gw, gb


def _add_in_block_order(parts):
    """The blocks' (weight gradient, bias gradient) sums, added in block order."""
    gw, gb = parts[0]
    for pw, pb in parts[1:]:
        gw += pw
        gb += pb
    return gw, gb


def _chunk_images(n, per_image_bytes):
    """Images per im2col block: as many as fit in _CHUNK_BYTES, at least one."""
    return max(1, min(n, _CHUNK_BYTES // max(per_image_bytes, 1)))


def conv2d_backward(
    grad_out: ArrayLike,
    x_shape: Sequence[int],
    weight: ArrayLike,
    cols: ArrayLike,
    stride: int = 1,
    padding: int = 0,
    *,
    n_jobs: int | None = None,
) -> tuple[RealArray, RealArray, RealArray]:
    """Gradients of :func:`conv2d_forward`: GEMMs and col2im (Goodfellow et al. sec. 9.5).

    With ``G[n] = grad_out[n].reshape(F, P)`` and ``W = weight.reshape(F, K)``:
    ``dW = sum_n G[n] cols[n]^T``, ``db = sum_{n,p} G[n]``,
    ``dx = col2im(W^T G[n])``.

    Parameters
    ----------
    grad_out : array_like of shape (N, F, OH, OW)
    x_shape : (N, C, H, W)
    weight : array_like of shape (F, C, kh, kw)
    cols : array_like of shape (N, C kh kw, OH OW)
        From :func:`conv2d_forward`.
    stride, padding : int
    n_jobs : int or None, default None
        Threads over the blocks of images of :func:`conv2d_forward`. Each block sums
        its images' ``G[n] cols[n]^T`` and ``G[n]`` in image order, and the block sums
        are added in block order, so the result is bit-identical for every ``n_jobs``.

    Returns
    -------
    grad_x, grad_weight, grad_bias : numpy.ndarray

    Raises
    ------
    ValueError, TypeError
        Shapes that do not agree, ``n_jobs`` 0, below -1 or not an int.
    """
    n_jobs = effective_n_jobs(n_jobs)
    w = check_array(weight, "weight", ndim=4)
    g = check_array(grad_out, "grad_out", ndim=4, dtype=w.dtype)
    ca = check_array(cols, "cols", ndim=3, dtype=w.dtype)
    shape = tuple(check_int(v, "x_shape", low=1) for v in x_shape)
    if len(shape) != 4 or shape[0] != g.shape[0] or shape[1] != w.shape[1]:
        raise ValueError(
            f"x_shape must be (N, C, H, W) with N = {g.shape[0]} (grad_out) and "
            f"C = {w.shape[1]} (weight), got {x_shape!r}"
        )
    return _conv2d_backward(
        g,
        shape,
        w,
        ca,
        check_int(stride, "stride", low=1, high=_INT32_MAX),
        check_int(padding, "padding", low=0, high=_INT32_MAX),
        n_jobs,
    )


def _conv2d_backward(g, x_shape, w, cols, s, p, n_jobs, x=None, bufs=None):
    """Gradients (gx, gw, gb) over the forward pass's blocks of images on up to
    ``n_jobs`` threads. With the whole ``cols`` (functional API) a block reads its
    slice; with ``cols=None``, the input ``x`` and the layer's per-thread ``bufs``, a
    block recomputes its im2col into its thread's buffer (cheaper than keeping the
    whole matrix, which does not stay in cache), then dW, dcols and col2im run on it
    while it is in cache. Each block returns its sums of dW^T and db over its images
    in order; they are added in block order. A layer whose convolution qualifies
    (``_use_direct``) runs the direct kernels over the same kind of blocks."""
    n, f = g.shape[0], g.shape[1]
    kh, kw = w.shape[2], w.shape[3]
    k = w.shape[1] * kh * kw
    g3 = g.reshape(n, f, -1)
    P = g3.shape[2]
    if cols is None and _use_direct(s, p, kh, kw):
        return _direct_backward(g, x, w, p, n_jobs)
    if cols is not None and cols.shape != (n, k, P):
        raise ValueError(
            f"grad_out of shape {g.shape} does not match cols of shape {cols.shape}"
        )
    bufs = {} if bufs is None else bufs
    dt = w.dtype
    m = _chunk_images(n, k * P * dt.itemsize)
    bounds = block_bounds(n, m)
    w2t = w.reshape(f, k).T
    gx = np.empty(x_shape, dtype=dt)

    def block(i, cancel):
        a, e = bounds[i]
        if cols is None:
            check_finite(g[a:e], "grad_out", a)  # the layer's: see Conv2d._check_x
            col = _thread_buffer(bufs, "cols", (m, k, P), dt)[: e - a]
            _conv.im2col(x[a:e], kh, kw, s, p, col, cancel)
        else:
            col = cols[a:e]
        # one GEMM per image, summed without an (images, K, F) temporary; dW^T =
        # cols G^T (K x F) runs a third faster in OpenBLAS than G cols^T (F x K)
        gwt = np.matmul(col[0], g3[a].T)
        tmp = _thread_buffer(bufs, "tmp", (k, f), dt)
        for j in range(1, e - a):
            np.matmul(col[j], g3[a + j].T, out=tmp)
            gwt += tmp
        dc = _thread_buffer(bufs, "dcols", (m, k, P), dt)[: e - a]
        np.matmul(w2t, g3[a:e], out=dc)
        _conv.col2im(dc, kh, kw, s, p, gx[a:e], cancel)
        return gwt, g3[a:e].sum(axis=(0, 2))

    with blas_single_threaded():
        parts = run_blocks(block, len(bounds), n_jobs)
    gwt, gb = _add_in_block_order(parts)
    return gx, np.ascontiguousarray(gwt.T).reshape(w.shape), gb
