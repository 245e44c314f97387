"""Neural networks with explicit backpropagation: every layer's backward is the chain rule.

No autograd. Each layer's ``forward(x)`` computes its output and caches what the
derivative needs; ``backward(grad_out)`` takes dL/d(output) and returns dL/d(input),
writing dL/d(parameter) into ``layer.grads`` (overwritten on every call). The formulas are
in each class's Notes, following Goodfellow, Bengio & Courville, *Deep Learning* (2016):
ch. 6 (feed-forward nets, back-propagation), ch. 9 (convolution) and ch. 10 (recurrent
nets, BPTT, LSTM), with Bahdanau et al. (2015) for additive attention and Vaswani et al.
(2017) for multi-head attention.

Convolution is im2col + GEMM forward and GEMM + col2im backward; im2col, col2im and max
pooling are compiled kernels (:mod:`fastml._kernels._conv`); dense algebra goes to BLAS
through ``numpy.matmul``. Training objectives are :mod:`fastml.losses`. float32 and
float64 work throughout: a layer computes in the dtype of its parameters.
"""

from __future__ import annotations

import copy
import sys
import time
from typing import TextIO

import numpy as np
import scipy.special

from fastml import losses as _losses
from fastml._kernels import variant
from fastml._validation import (
    as_ndarray,
    check_array,
    check_int,
    check_random_state,
    check_real,
)

_conv = variant("_conv")  # the AVX2 + FMA build where the CPU has it

__all__ = [
    "LSTM",
    "RNN",
    "SGD",
    "Adam",
    "AdditiveAttention",
    "Bidirectional",
    "Conv2d",
    "Flatten",
    "Layer",
    "Linear",
    "MaxPool2d",
    "MultiHeadAttention",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "col2im",
    "conv2d_backward",
    "conv2d_forward",
    "im2col",
]

_INT32_MAX = 2**31 - 1


# --------------------------------------------------------------------------- helpers
def _check_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _pair(value, name: str, low: int) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return (check_int(value[0], name, low=low), check_int(value[1], name, low=low))
    v = check_int(value, name, low=low)
    return (v, v)


def _glorot(rng, shape, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    """Glorot & Bengio (2010) uniform initialisation, bound sqrt(6 / (fan_in + fan_out))."""
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def _conv_out(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def _softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    m = np.max(z, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    e = np.exp(z - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def _softmax_backward(y: np.ndarray, g: np.ndarray, axis: int = -1) -> np.ndarray:
    """dL/dz of y = softmax(z): y * (g - sum(g * y)) (the Jacobian diag(y) - y y^T)."""
    return y * (g - np.sum(g * y, axis=axis, keepdims=True))


def _sigmoid(z):
    return scipy.special.expit(z)


# --------------------------------------------------------------- functional kernels
def im2col(x, kernel_size, stride=1, padding=0) -> np.ndarray:
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


def col2im(cols, x_shape, kernel_size, stride=1, padding=0) -> np.ndarray:
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
    s = check_int(stride, "stride", low=1)
    p = check_int(padding, "padding", low=0)
    h, w = shape[2], shape[3]
    if kh > h + 2 * p or kw > w + 2 * p:
        raise ValueError(
            f"kernel_size {kh}x{kw} is larger than the padded input "
            f"{h + 2 * p}x{w + 2 * p} (input {h}x{w}, padding={p})"
        )
    return kh, kw, s, p


def conv2d_forward(x, weight, bias=None, stride=1, padding=0):
    """2-D convolution (cross-correlation) by im2col + one GEMM per image.

    Parameters
    ----------
    x : array_like of shape (N, C, H, W)
    weight : array_like of shape (F, C, kh, kw)
    bias : array_like of shape (F,), optional
    stride, padding : int

    Returns
    -------
    y : numpy.ndarray of shape (N, F, OH, OW)
        ``y[n] = weight.reshape(F, K) @ cols[n] + bias`` (Goodfellow et al. eq. 9.4 with
        stride, sec. 9.5 and 9.8).
    cols : numpy.ndarray of shape (N, K, OH OW)
        The im2col matrix, needed by :func:`conv2d_backward`.
    """
    xa = check_array(x, "x", ndim=4)
    wa = check_array(weight, "weight", ndim=4, dtype=xa.dtype)
    ba = None if bias is None else check_array(bias, "bias", ndim=1, dtype=xa.dtype)
    _check_conv_shapes(xa.shape, wa.shape, ba)
    return _conv2d_forward(
        xa,
        wa,
        ba,
        check_int(stride, "stride", low=1),
        check_int(padding, "padding", low=0),
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


_CHUNK_BYTES = 1 << 20  # im2col block per GEMM in the layer: stays in a 1 MiB L2


def _conv2d_forward(x, w, b, s, p, cols=None, blocked=False):
    """y = conv(x, w) + b. Returns (y, cols) with the whole im2col matrix (the
    functional API keeps it for the backward pass), or with ``blocked`` (the layer)
    runs im2col and the GEMM a few images at a time, so that the column block is still
    in cache when the GEMM reads it, and returns (y, block buffer); ``cols`` is a
    buffer to reuse either way."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    _geometry(x.shape, (kh, kw), s, p)
    oh, ow = _conv_out(h, kh, s, p), _conv_out(wd, kw, s, p)
    k = c * kh * kw
    if max(k, oh * ow, f) > _INT32_MAX:
        raise ValueError("conv2d: a dimension exceeds the 32-bit BLAS limit")
    m = _chunk_images(n, k * oh * ow * x.dtype.itemsize) if blocked else n
    buf = _buffer(cols, (m, k, oh * ow), x.dtype)
    w2 = w.reshape(f, k)
    y = np.empty((n, f, oh * ow), dtype=x.dtype)
    for i in range(0, n, m):
        block = buf[: min(m, n - i)]
        _conv.im2col(x[i : i + m], kh, kw, s, p, block)
        np.matmul(w2, block, out=y[i : i + m])
    if b is not None:
        y += b[:, None]
    return y.reshape(n, f, oh, ow), buf


def _chunk_images(n, per_image_bytes):
    """Images per im2col block: as many as fit in _CHUNK_BYTES, at least one."""
    return max(1, min(n, _CHUNK_BYTES // max(per_image_bytes, 1)))


def conv2d_backward(grad_out, x_shape, weight, cols, stride=1, padding=0):
    """Gradients of :func:`conv2d_forward`: GEMMs and col2im (Goodfellow et al. sec. 9.5).

    With ``G[n] = grad_out[n].reshape(F, P)`` and ``W = weight.reshape(F, K)``:
    ``dW = sum_n G[n] cols[n]^T``, ``db = sum_{n,p} G[n]``,
    ``dx = col2im(W^T G[n])``.

    Returns
    -------
    grad_x, grad_weight, grad_bias : numpy.ndarray
    """
    w = check_array(weight, "weight", ndim=4)
    g = check_array(grad_out, "grad_out", ndim=4, dtype=w.dtype)
    ca = check_array(cols, "cols", ndim=3, dtype=w.dtype)
    shape = tuple(check_int(v, "x_shape", low=1) for v in x_shape)
    if len(shape) != 4 or shape[0] != g.shape[0] or shape[1] != w.shape[1]:
        raise ValueError(
            f"x_shape must be (N, C, H, W) with N = {g.shape[0]} (grad_out) and "
            f"C = {w.shape[1]} (weight), got {x_shape!r}"
        )
    gx, gw, gb, *_ = _conv2d_backward(
        g,
        shape,
        w,
        ca,
        check_int(stride, "stride", low=1),
        check_int(padding, "padding", low=0),
    )
    return gx, gw, gb


def _conv2d_backward(g, x_shape, w, cols, s, p, dcols=None, x=None, chunk=None):
    """Gradients (gx, gw, gb), then the column and dcols buffers for reuse. With the
    whole ``cols`` (functional API), dcols is one (N, K, P) array. With ``cols=None``,
    the input ``x`` and a chunk buffer: per block of images, im2col is recomputed into
    the chunk (cheaper than keeping the whole matrix, which does not stay in cache),
    then dW, dcols and col2im run on it while it is in cache."""
    n, f = g.shape[0], g.shape[1]
    kh, kw = w.shape[2], w.shape[3]
    k = w.shape[1] * kh * kw
    g3 = g.reshape(n, f, -1)
    P = g3.shape[2]
    if cols is not None and cols.shape != (n, k, P):
        raise ValueError(
            f"grad_out of shape {g.shape} does not match cols of shape {cols.shape}"
        )
    if cols is not None:
        m, blocks, dbuf = n, cols, _buffer(dcols, cols.shape, w.dtype)
    else:
        m = _chunk_images(n, k * P * w.dtype.itemsize)
        blocks = _buffer(chunk, (m, k, P), w.dtype)
        dbuf = _buffer(dcols, (m, k, P), w.dtype)
    w2 = w.reshape(f, k)
    gw = np.zeros((f, k), dtype=w.dtype)
    tmp = np.empty((f, k), dtype=w.dtype)
    gx = np.empty(x_shape, dtype=w.dtype)
    for i in range(0, n, m):
        r = min(m, n - i)
        block = blocks[:r]
        if cols is None:
            _conv.im2col(x[i : i + r], kh, kw, s, p, block)
        # one GEMM per image, accumulated without an (N, F, K) temporary
        for j in range(r):
            np.matmul(g3[i + j], block[j].T, out=tmp)
            gw += tmp
        dc = dbuf[:r]
        np.matmul(w2.T, g3[i : i + r], out=dc)
        _conv.col2im(dc, kh, kw, s, p, gx[i : i + r])
    gb = g3.sum(axis=(0, 2))
    return gx, gw.reshape(w.shape), gb, blocks, dbuf


# -------------------------------------------------------------------------- layers
class Layer:
    """Base class: ``forward`` caches, ``backward`` returns the input gradient.

    ``params`` and ``grads`` are dicts of arrays with the same keys; ``backward``
    overwrites ``grads``. Subclasses implement ``_forward``/``_backward`` on validated
    arrays; the public methods validate (dtype, ndim, finiteness) first.
    """

    ndim: tuple[int, ...] | None = None
    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]

    def __init__(self):
        self.params = {}
        self.grads = {}
        self._out_shape = None

    @property
    def dtype(self):
        """The dtype of the parameters (None for parameter-free layers)."""
        for p in self.params.values():
            return p.dtype
        return None

    def _check_x(self, x, name="x"):
        return check_array(x, name, ndim=self.ndim, dtype=self.dtype)

    def forward(self, x):
        """Output for input ``x``; caches what :meth:`backward` needs."""
        y = self._forward(self._check_x(x))
        self._out_shape = y.shape
        return y

    def backward(self, grad_out):
        """dL/dx given dL/dy (of the last output's shape); fills ``self.grads``."""
        return self._backward(self._check_grad_out(grad_out))

    def _check_grad_out(self, grad_out):
        """dL/dy validated against the last forward: finite, of its shape and dtype."""
        if self._out_shape is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        g = check_array(grad_out, "grad_out", dtype=self._cache_dtype())
        if g.shape != self._out_shape:
            raise ValueError(
                f"grad_out must have the output's shape {self._out_shape}, got {g.shape}"
            )
        return g

    def _cache_dtype(self):
        return self.dtype

    def _forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def _backward(self, g):  # pragma: no cover - abstract
        raise NotImplementedError

    def parameters(self):
        """List of (name, parameter, gradient) triples (arrays updated in place)."""
        return [(k, self.params[k], self.grads[k]) for k in self.params]

    def astype(self, dtype):
        """Convert the parameters to float32/float64 in place; returns ``self``."""
        dt = _check_dtype(dtype)
        for k in list(self.params):
            self.params[k] = self.params[k].astype(dt)
            self.grads[k] = np.zeros_like(self.params[k])
        return self

    def _add(self, name, value):
        self.params[name] = np.ascontiguousarray(value)
        self.grads[name] = np.zeros_like(self.params[name])

    def __repr__(self):
        return f"{type(self).__name__}()"


class _Activation(Layer):
    """Elementwise layer: parameter-free, keeps the input's dtype."""

    def _check_x(self, x, name="x"):
        return check_array(x, name)

    def _cache_dtype(self):
        return self._y.dtype


class Sigmoid(_Activation):
    """``y = 1 / (1 + exp(-x))``; ``dx = dy * y (1 - y)`` (Goodfellow et al. sec. 6.3.2)."""

    def _forward(self, x):
        self._y = _sigmoid(x)
        return self._y

    def _backward(self, g):
        return g * self._y * (1 - self._y)


class Tanh(_Activation):
    """``y = tanh(x)``; ``dx = dy (1 - y^2)`` (Goodfellow et al. sec. 6.3.3)."""

    def _forward(self, x):
        self._y = np.tanh(x)
        return self._y

    def _backward(self, g):
        return g * (1 - self._y * self._y)


class ReLU(_Activation):
    """``y = max(x, 0)``; ``dx = dy [x > 0]`` (Goodfellow et al. sec. 6.3.1)."""

    def _forward(self, x):
        self._mask = x > 0
        self._y = np.where(self._mask, x, 0).astype(x.dtype, copy=False)
        return self._y

    def _backward(self, g):
        return np.where(self._mask, g, 0).astype(g.dtype, copy=False)


class Softmax(_Activation):
    """Softmax over the last axis; ``dx = y (dy - sum(dy y))`` (Goodfellow et al. 6.2.2.3).

    For classification train on logits with ``loss="cross_entropy"`` instead (the fused
    softmax cross-entropy of :mod:`fastml.losses` is exact for any logit size).
    """

    def _forward(self, x):
        self._y = _softmax(x, -1)
        return self._y

    def _backward(self, g):
        return _softmax_backward(self._y, g, -1)


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1 d2 ...); backward reshapes back."""

    def _check_x(self, x, name="x"):
        return check_array(x, name, ndim=tuple(range(2, 8)))

    def _cache_dtype(self):
        return self._dt

    def _forward(self, x):
        self._shape, self._dt = x.shape, x.dtype
        return x.reshape(x.shape[0], -1)

    def _backward(self, g):
        return g.reshape(self._shape)


class Linear(Layer):
    """Affine layer ``y = x W^T + b`` over the last axis (Goodfellow et al. sec. 6.5).

    Parameters
    ----------
    in_features, out_features : int
    bias : bool, default True
    random_state : None, int or numpy.random.Generator
        Seeds the Glorot-uniform weights (biases start at 0).
    dtype : float32 or float64, default float64

    Notes
    -----
    With X the input rows: ``dW = dY^T X``, ``db = sum_rows dY``, ``dX = dY W``.
    """

    def __init__(
        self,
        in_features,
        out_features,
        *,
        bias=True,
        random_state=None,
        dtype=np.float64,
    ):
        super().__init__()
        self.in_features = check_int(in_features, "in_features", low=1)
        self.out_features = check_int(out_features, "out_features", low=1)
        dt = _check_dtype(dtype)
        rng = check_random_state(random_state)
        self._add(
            "weight",
            _glorot(
                rng,
                (self.out_features, self.in_features),
                self.in_features,
                self.out_features,
                dt,
            ),
        )
        if bias:
            self._add("bias", np.zeros(self.out_features, dtype=dt))

    def _check_x(self, x, name="x"):
        return check_array(x, name, ndim=tuple(range(1, 8)), dtype=self.dtype)

    def _forward(self, x):
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"x must have {self.in_features} features (in_features) on its last "
                f"axis, got shape {x.shape}"
            )
        self._x = x
        y = x @ self.params["weight"].T
        if "bias" in self.params:
            y += self.params["bias"]
        return y

    def _backward(self, g):
        x2 = self._x.reshape(-1, self.in_features)
        g2 = g.reshape(-1, self.out_features)
        np.matmul(g2.T, x2, out=self.grads["weight"])
        if "bias" in self.params:
            self.grads["bias"][...] = g2.sum(axis=0)
        return (g2 @ self.params["weight"]).reshape(self._x.shape)

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features})"


class Conv2d(Layer):
    """2-D convolution, NCHW, by im2col + GEMM (Goodfellow et al. ch. 9).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (int, int)
    stride : int, default 1
    padding : int, default 0
        Zero padding on every side.
    random_state, dtype : see :class:`Linear`.

    Notes
    -----
    Forward ``Y[n] = W_(F,K) cols[n] + b`` with ``cols = im2col(x)``; backward
    ``dW = sum_n dY[n] cols[n]^T``, ``db = sum dY``, ``dx = col2im(W^T dY[n])``
    (:func:`conv2d_backward`).
    """

    ndim = (4,)

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        *,
        random_state=None,
        dtype=np.float64,
    ):
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", low=1)
        self.out_channels = check_int(out_channels, "out_channels", low=1)
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = check_int(stride, "stride", low=1)
        self.padding = check_int(padding, "padding", low=0)
        dt = _check_dtype(dtype)
        rng = check_random_state(random_state)
        kh, kw = self.kernel_size
        fan_in, fan_out = self.in_channels * kh * kw, self.out_channels * kh * kw
        self._add(
            "weight",
            _glorot(
                rng, (self.out_channels, self.in_channels, kh, kw), fan_in, fan_out, dt
            ),
        )
        self._add("bias", np.zeros(self.out_channels, dtype=dt))

    def _forward(self, x):
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must have {self.in_channels} channels (in_channels), got "
                f"{x.shape[1]} (x shape {x.shape})"
            )
        # the backward pass recomputes im2col from a copy of x (blocks that stay in
        # cache beat keeping the whole, several times larger, column matrix)
        self._x = _buffer(getattr(self, "_x", None), x.shape, x.dtype)
        np.copyto(self._x, x)
        y, self._chunk = _conv2d_forward(
            x,
            self.params["weight"],
            self.params["bias"],
            self.stride,
            self.padding,
            getattr(self, "_chunk", None),
            blocked=True,
        )
        return y

    def _backward(self, g):
        gx, gw, gb, self._chunk, self._dcols = _conv2d_backward(
            g,
            self._x.shape,
            self.params["weight"],
            None,
            self.stride,
            self.padding,
            getattr(self, "_dcols", None),
            x=self._x,
            chunk=self._chunk,
        )
        self.grads["weight"][...] = gw
        self.grads["bias"][...] = gb
        return gx

    def __repr__(self):
        return (
            f"Conv2d({self.in_channels}, {self.out_channels}, "
            f"kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding})"
        )


class MaxPool2d(Layer):
    """Max pooling over kh x kw windows (no padding; stride defaults to the kernel size).

    Backward routes each output gradient to the position of its window's maximum
    (Goodfellow et al. sec. 9.3); the argmax is computed by the compiled forward kernel.
    """

    ndim = (4,)

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = (
            self.kernel_size[0]
            if stride is None
            else check_int(stride, "stride", low=1)
        )

    def _check_x(self, x, name="x"):
        return check_array(x, name, ndim=4)

    def _cache_dtype(self):
        return self._xdtype

    def _forward(self, x):
        kh, kw = self.kernel_size
        n, c, h, w = x.shape
        if kh > h or kw > w:
            raise ValueError(f"kernel_size {kh}x{kw} is larger than the input {h}x{w}")
        s = self.stride
        out = np.empty((n, c, (h - kh) // s + 1, (w - kw) // s + 1), dtype=x.dtype)
        self._arg = np.empty(out.shape, dtype=np.intp)
        _conv.maxpool2d_forward(x, kh, kw, s, out, self._arg)
        self._xshape, self._xdtype = x.shape, x.dtype
        return out

    def _backward(self, g):
        gx = np.empty(self._xshape, dtype=g.dtype)
        _conv.maxpool2d_backward(g, self._arg, gx)
        return gx

    def __repr__(self):
        return f"MaxPool2d({self.kernel_size}, stride={self.stride})"


# ----------------------------------------------------------------------- recurrent
class _Recurrent(Layer):
    ndim = (3,)

    def _init_common(self, input_size, hidden_size, return_sequences, truncate):
        self.input_size = check_int(input_size, "input_size", low=1)
        self.hidden_size = check_int(hidden_size, "hidden_size", low=1)
        self.return_sequences = bool(return_sequences)
        self.truncate = (
            None if truncate is None else check_int(truncate, "truncate", low=1)
        )

    def _check_x(self, x, name="x"):
        xa = check_array(x, name, ndim=3, dtype=self.dtype, allow_empty=True)
        if xa.shape[0] == 0:
            raise ValueError(f"{name} must hold at least one sequence, got {xa.shape}")
        self._check_seq(xa)
        return xa

    def _check_seq(self, x):
        if x.shape[1] == 0:
            raise ValueError(f"x must have at least one time step, got shape {x.shape}")
        if x.shape[2] != self.input_size:
            raise ValueError(
                f"x must have {self.input_size} features (input_size) on its last axis, "
                f"got shape {x.shape}"
            )

    def _full_grad(self, g):
        if self.return_sequences:
            return g
        n, t = self._x.shape[:2]
        full = np.zeros((n, t, self.hidden_size), dtype=g.dtype)
        full[:, -1] = g
        return full

    def _cut(self, t):
        """True where BPTT stops: the state entering step t is treated as a constant."""
        return self.truncate is not None and t % self.truncate == 0

    def __repr__(self):
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size})"


class RNN(_Recurrent):
    """Elman recurrent layer ``h_t = tanh(W_ih x_t + W_hh h_{t-1} + b)``, h_0 = 0.

    Parameters
    ----------
    input_size, hidden_size : int
    return_sequences : bool, default True
        Output all states (N, T, H), or only the last one (N, H).
    truncate : int, optional
        Truncated BPTT: the sequence is cut into chunks of ``truncate`` steps and no
        gradient flows through the hidden state across a chunk boundary (as detaching
        the state every ``truncate`` steps). ``None``: full BPTT.
    random_state, dtype : see :class:`Linear`.

    Notes
    -----
    Back-propagation through time (Goodfellow et al. sec. 10.2.2): with
    ``a_t = W_ih x_t + W_hh h_{t-1} + b``, ``dh_t = dy_t + W_hh^T da_{t+1}``,
    ``da_t = dh_t (1 - h_t^2)``; then ``dW_hh = sum_t da_t h_{t-1}^T``,
    ``dW_ih = sum_t da_t x_t^T``, ``db = sum_t da_t``, ``dx_t = W_ih^T da_t``.
    Input is batch-first (N, T, input_size).
    """

    def __init__(
        self,
        input_size,
        hidden_size,
        *,
        return_sequences=True,
        truncate=None,
        random_state=None,
        dtype=np.float64,
    ):
        super().__init__()
        self._init_common(input_size, hidden_size, return_sequences, truncate)
        self._init_params(check_random_state(random_state), _check_dtype(dtype))

    def _init_params(self, rng, dt):
        d, h = self.input_size, self.hidden_size
        self._add("weight_ih", _glorot(rng, (h, d), d, h, dt))
        # Orthogonal recurrent weights (Saxe et al. 2014) keep early gradients O(1).
        q, _ = np.linalg.qr(rng.standard_normal((h, h)))
        self._add("weight_hh", q.astype(dt))
        self._add("bias", np.zeros(h, dtype=dt))

    def _forward(self, x):
        self._check_seq(x)
        n, t, _ = x.shape
        w_hh = self.params["weight_hh"]
        a = x @ self.params["weight_ih"].T + self.params["bias"]
        hs = np.zeros((n, t + 1, self.hidden_size), dtype=x.dtype)  # hs[:, 0] = h_0
        for s in range(t):
            hs[:, s + 1] = np.tanh(a[:, s] + hs[:, s] @ w_hh.T)
        self._x, self._hs = x, hs
        return hs[:, 1:].copy() if self.return_sequences else hs[:, -1].copy()

    def _backward(self, g):
        g = self._full_grad(g)
        x, hs = self._x, self._hs
        n, t, _ = x.shape
        w_hh = self.params["weight_hh"]
        da = np.empty_like(g)
        dh_next = np.zeros((n, self.hidden_size), dtype=g.dtype)
        for s in range(t - 1, -1, -1):
            h = hs[:, s + 1]
            da[:, s] = (g[:, s] + dh_next) * (1 - h * h)
            dh_next = da[:, s] @ w_hh
            if self._cut(s):
                dh_next[...] = 0
        da2 = da.reshape(-1, self.hidden_size)
        self.grads["weight_hh"][...] = da2.T @ hs[:, :-1].reshape(-1, self.hidden_size)
        self.grads["weight_ih"][...] = da2.T @ x.reshape(-1, self.input_size)
        self.grads["bias"][...] = da2.sum(axis=0)
        return da @ self.params["weight_ih"]


class LSTM(_Recurrent):
    """Long short-term memory layer (Hochreiter & Schmidhuber 1997, with forget gate).

    Gates, in torch's order (i, f, g, o): ``z_t = W_ih x_t + W_hh h_{t-1} + b``,
    ``i, f, o = sigmoid(z)``, ``g = tanh(z)``, ``c_t = f c_{t-1} + i g``,
    ``h_t = o tanh(c_t)``; h_0 = c_0 = 0. Forget-gate biases start at ``forget_bias``
    (default 1, Jozefowicz et al. 2015; larger values, e.g. 3, keep the cell state over
    longer lags at the start of training, Gers et al. 2000). Other parameters as
    :class:`RNN`.

    Notes
    -----
    BPTT (Goodfellow et al. sec. 10.10.1): with ``dh_t = dy_t + W_hh^T dz_{t+1}`` and
    ``dc_t = dc_{t+1} f_{t+1} + dh_t o_t (1 - tanh^2 c_t)``:
    ``do = dh tanh(c)``, ``di = dc g``, ``dg = dc i``, ``df = dc c_{t-1}``, each times
    its nonlinearity's derivative to give ``dz_t``; weight gradients sum ``dz_t`` against
    ``x_t`` and ``h_{t-1}``.
    """

    def __init__(
        self,
        input_size,
        hidden_size,
        *,
        return_sequences=True,
        truncate=None,
        forget_bias=1.0,
        random_state=None,
        dtype=np.float64,
    ):
        super().__init__()
        self._init_common(input_size, hidden_size, return_sequences, truncate)
        self.forget_bias = check_real(forget_bias, "forget_bias")
        self._init_params(check_random_state(random_state), _check_dtype(dtype))

    def _init_params(self, rng, dt):
        d, h = self.input_size, self.hidden_size
        self._add("weight_ih", _glorot(rng, (4 * h, d), d, 4 * h, dt))
        q = np.concatenate(
            [np.linalg.qr(rng.standard_normal((h, h)))[0] for _ in range(4)]
        )
        self._add("weight_hh", q.astype(dt))
        b = np.zeros(4 * h, dtype=dt)
        b[h : 2 * h] = self.forget_bias
        self._add("bias", b)

    def _forward(self, x):
        self._check_seq(x)
        n, t, _ = x.shape
        h = self.hidden_size
        w_hh = self.params["weight_hh"]
        z = x @ self.params["weight_ih"].T + self.params["bias"]  # (N, T, 4H)
        gates = np.empty_like(z)
        hs = np.zeros((n, t + 1, h), dtype=x.dtype)
        cs = np.zeros((n, t + 1, h), dtype=x.dtype)
        tc = np.empty((n, t, h), dtype=x.dtype)
        for s in range(t):
            zs = z[:, s] + hs[:, s] @ w_hh.T
            gs = gates[:, s]
            gs[:, : 2 * h] = _sigmoid(zs[:, : 2 * h])
            gs[:, 2 * h : 3 * h] = np.tanh(zs[:, 2 * h : 3 * h])
            gs[:, 3 * h :] = _sigmoid(zs[:, 3 * h :])
            i, f, gg, o = (
                gs[:, :h],
                gs[:, h : 2 * h],
                gs[:, 2 * h : 3 * h],
                gs[:, 3 * h :],
            )
            cs[:, s + 1] = f * cs[:, s] + i * gg
            tc[:, s] = np.tanh(cs[:, s + 1])
            hs[:, s + 1] = o * tc[:, s]
        self._x, self._hs, self._cs, self._gates, self._tc = x, hs, cs, gates, tc
        return hs[:, 1:].copy() if self.return_sequences else hs[:, -1].copy()

    def _backward(self, g):
        g = self._full_grad(g)
        x, hs, cs, gates, tc = self._x, self._hs, self._cs, self._gates, self._tc
        n, t, _ = x.shape
        h = self.hidden_size
        w_hh = self.params["weight_hh"]
        dz = np.empty((n, t, 4 * h), dtype=g.dtype)
        dh_next = np.zeros((n, h), dtype=g.dtype)
        dc_next = np.zeros((n, h), dtype=g.dtype)
        for s in range(t - 1, -1, -1):
            gs = gates[:, s]
            i, f, gg, o = (
                gs[:, :h],
                gs[:, h : 2 * h],
                gs[:, 2 * h : 3 * h],
                gs[:, 3 * h :],
            )
            dh = g[:, s] + dh_next
            dc = dc_next + dh * o * (1 - tc[:, s] * tc[:, s])
            d = dz[:, s]
            d[:, :h] = dc * gg * i * (1 - i)
            d[:, h : 2 * h] = dc * cs[:, s] * f * (1 - f)
            d[:, 2 * h : 3 * h] = dc * i * (1 - gg * gg)
            d[:, 3 * h :] = dh * tc[:, s] * o * (1 - o)
            dh_next = d @ w_hh
            dc_next = dc * f
            if self._cut(s):
                dh_next[...] = 0
                dc_next[...] = 0
        dz2 = dz.reshape(-1, 4 * h)
        self.grads["weight_hh"][...] = dz2.T @ hs[:, :-1].reshape(-1, h)
        self.grads["weight_ih"][...] = dz2.T @ x.reshape(-1, self.input_size)
        self.grads["bias"][...] = dz2.sum(axis=0)
        return dz @ self.params["weight_ih"]


class Bidirectional(Layer):
    """Run a recurrent layer forwards and a copy of it on the reversed sequence.

    Outputs are concatenated on the feature axis: (N, T, 2H) with the backward layer's
    states re-reversed so position t sees both directions (Schuster & Paliwal 1997), or
    (N, 2H) = [last forward state, backward state at t = 0] without ``return_sequences``.

    Parameters
    ----------
    layer : RNN or LSTM
        The forward-direction layer.
    backward_layer : RNN or LSTM, optional
        Defaults to a copy of ``layer`` with parameters re-drawn from ``random_state``.
    random_state : None, int or numpy.random.Generator
    """

    ndim = (3,)

    def __init__(self, layer, backward_layer=None, *, random_state=None):
        super().__init__()
        if not isinstance(layer, _Recurrent):
            raise TypeError(f"layer must be an RNN or LSTM, got {type(layer).__name__}")
        if backward_layer is None:
            backward_layer = copy.deepcopy(layer)
            backward_layer.params, backward_layer.grads = {}, {}
            backward_layer._init_params(check_random_state(random_state), layer.dtype)
        elif not isinstance(backward_layer, _Recurrent) or (
            backward_layer.hidden_size != layer.hidden_size
            or backward_layer.input_size != layer.input_size
            or backward_layer.return_sequences != layer.return_sequences
        ):
            raise ValueError(
                "backward_layer must be a recurrent layer shaped like layer"
            )
        self.forward_layer, self.backward_layer = layer, backward_layer
        for side, lyr in (("fw", layer), ("bw", backward_layer)):
            for k in lyr.params:
                self.params[f"{side}_{k}"] = lyr.params[k]
                self.grads[f"{side}_{k}"] = lyr.grads[k]

    def _check_x(self, x, name="x"):
        return self.forward_layer._check_x(x, name)

    def astype(self, dtype):
        self.forward_layer.astype(dtype)
        self.backward_layer.astype(dtype)
        self.__init__(self.forward_layer, self.backward_layer)
        return self

    def _forward(self, x):
        yf = self.forward_layer._forward(x)
        yb = self.backward_layer._forward(np.ascontiguousarray(x[:, ::-1]))
        if self.forward_layer.return_sequences:
            yb = yb[:, ::-1]
        return np.concatenate([yf, yb], axis=-1)

    def _backward(self, g):
        h = self.forward_layer.hidden_size
        gf, gb = g[..., :h], g[..., h:]
        if self.forward_layer.return_sequences:
            gb = gb[:, ::-1]
        dx = self.forward_layer._backward(np.ascontiguousarray(gf))
        dx += self.backward_layer._backward(np.ascontiguousarray(gb))[:, ::-1]
        return dx

    def __repr__(self):
        return f"Bidirectional({self.forward_layer!r})"


# ----------------------------------------------------------------------- attention
def _check_bool_mask(mask, name, shapes):
    m = as_ndarray(mask, name)
    if m.dtype != np.bool_:
        raise TypeError(f"{name} must be a boolean array, got dtype {m.dtype}")
    if m.shape not in shapes:
        want = " or ".join(str(s) for s in shapes)
        raise ValueError(f"{name} must have shape {want}, got {m.shape}")
    return m


class AdditiveAttention(Layer):
    """Bahdanau (additive) attention of a decoder state over encoder states.

    ``e_t = v^T tanh(W_q s + W_k h_t + b)``, ``alpha = softmax(e)`` over t,
    ``context = sum_t alpha_t h_t`` (Bahdanau, Cho & Bengio 2015, eq. 5-6; the encoder
    states typically come from a :class:`Bidirectional` RNN).

    Parameters
    ----------
    query_size : int
        Size of the decoder state s.
    key_size : int
        Size of each encoder state h_t (the context has this size).
    attention_size : int
        Size of the hidden layer of the scoring MLP.
    random_state, dtype : see :class:`Linear`.

    Notes
    -----
    ``forward(query, keys, mask=None)`` takes ``query`` (N, Dq), ``keys`` (N, T, Dk) and an
    optional boolean ``mask`` (N, T), True where a key may be attended to. It returns the
    context (N, Dk); the weights are in ``weights_``. ``backward(d_context)`` returns
    ``(d_query, d_keys)``: ``d_keys = alpha dc + (dpre W_k)``, with
    ``de = alpha (dalpha - sum alpha dalpha)``, ``dalpha_t = h_t . dc`` and
    ``dpre = de v (1 - u^2)``.
    """

    def __init__(
        self,
        query_size,
        key_size,
        attention_size,
        *,
        random_state=None,
        dtype=np.float64,
    ):
        super().__init__()
        self.query_size = check_int(query_size, "query_size", low=1)
        self.key_size = check_int(key_size, "key_size", low=1)
        self.attention_size = check_int(attention_size, "attention_size", low=1)
        dt = _check_dtype(dtype)
        rng = check_random_state(random_state)
        a = self.attention_size
        self._add(
            "weight_query", _glorot(rng, (a, self.query_size), self.query_size, a, dt)
        )
        self._add("weight_key", _glorot(rng, (a, self.key_size), self.key_size, a, dt))
        self._add("bias", np.zeros(a, dtype=dt))
        self._add("v", _glorot(rng, (a,), a, 1, dt))

    def forward(self, query, keys, mask=None):
        """Context vector (N, key_size) of ``query`` (N, Dq) over ``keys`` (N, T, Dk)."""
        dt = self.dtype
        q = check_array(query, "query", ndim=2, dtype=dt)
        k = check_array(keys, "keys", ndim=3, dtype=dt, allow_empty=True)
        n, t = k.shape[:2]
        if q.shape[1] != self.query_size:
            raise ValueError(
                f"query must have {self.query_size} features (query_size), got {q.shape}"
            )
        if k.shape[2] != self.key_size:
            raise ValueError(
                f"keys must have {self.key_size} features (key_size), got {k.shape}"
            )
        if k.shape[0] != q.shape[0]:
            raise ValueError(
                f"keys must have the batch size of query ({q.shape[0]}), got {k.shape}"
            )
        if t == 0:
            raise ValueError(f"keys must have at least one time step, got {k.shape}")
        m = None
        if mask is not None:
            m = _check_bool_mask(mask, "mask", [(n, t)])
            if not m.any(axis=1).all():
                raise ValueError("mask must allow at least one key in every row")
        u = np.tanh(
            k @ self.params["weight_key"].T
            + (q @ self.params["weight_query"].T + self.params["bias"])[:, None]
        )
        e = u @ self.params["v"]
        if m is not None:
            e = np.where(m, e, -np.inf)
        alpha = _softmax(e, axis=1)
        self._q, self._k, self._u, self.weights_ = q, k, u, alpha
        out = np.matmul(alpha[:, None, :], k)[:, 0]
        self._out_shape = out.shape
        return out

    def backward(self, grad_out):
        """``(d_query, d_keys)`` given dL/d(context); fills ``self.grads``."""
        dc = self._check_grad_out(grad_out)
        q, k, u, alpha = self._q, self._k, self._u, self.weights_
        dalpha = np.matmul(k, dc[:, :, None])[:, :, 0]
        dk = alpha[:, :, None] * dc[:, None, :]
        de = _softmax_backward(alpha, dalpha, axis=1)
        self.grads["v"][...] = np.einsum("nta,nt->a", u, de)
        dpre = de[:, :, None] * self.params["v"] * (1 - u * u)
        dqa = dpre.sum(axis=1)
        self.grads["weight_query"][...] = dqa.T @ q
        self.grads["bias"][...] = dqa.sum(axis=0)
        dpre2 = dpre.reshape(-1, self.attention_size)
        self.grads["weight_key"][...] = dpre2.T @ k.reshape(-1, self.key_size)
        dk += dpre @ self.params["weight_key"]
        return dqa @ self.params["weight_query"], dk


class MultiHeadAttention(Layer):
    """Multi-head scaled dot-product attention (Vaswani et al. 2017, sec. 3.2).

    ``head_i = softmax(Q_i K_i^T / sqrt(d_h) + mask) V_i`` with ``Q = q W_q^T + b_q`` (and
    K, V likewise) split into ``num_heads`` heads of size ``d_h = embed_dim / num_heads``;
    output ``concat(heads) W_o^T + b_o``.

    Parameters
    ----------
    embed_dim : int
    num_heads : int
        Must divide ``embed_dim``.
    random_state, dtype : see :class:`Linear`.

    Notes
    -----
    ``forward(query, key=None, value=None, *, attn_mask=None, key_padding_mask=None,
    causal=False)``: inputs are batch-first (N, T, E); ``key``/``value`` default to
    ``query`` (self-attention). ``attn_mask`` is boolean (Tq, Tk) or (N, Tq, Tk), True
    where attention is allowed; ``key_padding_mask`` is boolean (N, Tk), True at padded
    keys (as torch); ``causal`` forbids attending to later positions. ``backward``
    returns ``(d_query, d_key, d_value)``, or one array for self-attention.
    Backward per head: ``dV = P^T dO``, ``dP = dO V^T``, ``dS = P (dP - sum P dP)``,
    ``dQ = dS K / sqrt(d_h)``, ``dK = dS^T Q / sqrt(d_h)``.
    """

    def __init__(self, embed_dim, num_heads, *, random_state=None, dtype=np.float64):
        super().__init__()
        self.embed_dim = check_int(embed_dim, "embed_dim", low=1)
        self.num_heads = check_int(num_heads, "num_heads", low=1)
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"num_heads ({self.num_heads}) must divide embed_dim ({self.embed_dim})"
            )
        dt = _check_dtype(dtype)
        rng = check_random_state(random_state)
        e = self.embed_dim
        for name in ("q", "k", "v", "o"):
            self._add(f"weight_{name}", _glorot(rng, (e, e), e, e, dt))
            self._add(f"bias_{name}", np.zeros(e, dtype=dt))

    def _split(self, x):
        n, t, _ = x.shape
        return x.reshape(n, t, self.num_heads, -1).transpose(0, 2, 1, 3)

    def forward(
        self,
        query,
        key=None,
        value=None,
        *,
        attn_mask=None,
        key_padding_mask=None,
        causal=False,
    ):
        """Attention output (N, Tq, E)."""
        dt, e = self.dtype, self.embed_dim
        self._self_attn = key is None and value is None
        q = check_array(query, "query", ndim=3, dtype=dt, allow_empty=True)
        k = (
            q
            if key is None
            else check_array(key, "key", ndim=3, dtype=dt, allow_empty=True)
        )
        v = (
            k
            if value is None
            else check_array(value, "value", ndim=3, dtype=dt, allow_empty=True)
        )
        for name, a in (("query", q), ("key", k), ("value", v)):
            if a.shape[2] != e:
                raise ValueError(
                    f"{name} must have {e} features (embed_dim), got shape {a.shape}"
                )
            if a.shape[1] == 0:
                raise ValueError(
                    f"{name} must have at least one time step, got {a.shape}"
                )
            if a.shape[0] != q.shape[0]:
                raise ValueError(
                    f"{name} must have the batch size of query, got {a.shape}"
                )
        if v.shape[1] != k.shape[1]:
            raise ValueError(
                f"value must have key's length {k.shape[1]}, got {v.shape}"
            )
        n, tq, tk = q.shape[0], q.shape[1], k.shape[1]
        allowed = np.ones((n, tq, tk), dtype=bool)
        if attn_mask is not None:
            allowed &= _check_bool_mask(attn_mask, "attn_mask", [(tq, tk), (n, tq, tk)])
        if key_padding_mask is not None:
            kpm = _check_bool_mask(key_padding_mask, "key_padding_mask", [(n, tk)])
            allowed &= ~kpm[:, None, :]
        if causal:
            allowed &= np.tril(np.ones((tq, tk), dtype=bool), k=tk - tq)
        if not allowed.any(axis=2).all():
            raise ValueError(
                "the masks leave a query with no key to attend to "
                "(every row of the combined mask needs one True)"
            )
        p = self.params
        Q = self._split(q @ p["weight_q"].T + p["bias_q"])
        K = self._split(k @ p["weight_k"].T + p["bias_k"])
        V = self._split(v @ p["weight_v"].T + p["bias_v"])
        scale = 1.0 / np.sqrt(e // self.num_heads)
        S = (Q @ K.transpose(0, 1, 3, 2)) * scale
        if not allowed.all():
            S = np.where(allowed[:, None], S, -np.inf)
        P = _softmax(S, axis=-1)
        Hc = (P @ V).transpose(0, 2, 1, 3).reshape(n, tq, e)
        self._cache = (q, k, v, Q, K, V, P, Hc, scale)
        self.weights_ = P
        out = Hc @ p["weight_o"].T + p["bias_o"]
        self._out_shape = out.shape
        return out

    def backward(self, grad_out):
        """``(d_query, d_key, d_value)``, or dL/dx for self-attention; fills ``grads``."""
        g = self._check_grad_out(grad_out)
        q, k, v, Q, K, V, P, Hc, scale = self._cache
        p, gr, e = self.params, self.grads, self.embed_dim
        g2 = g.reshape(-1, e)
        gr["weight_o"][...] = g2.T @ Hc.reshape(-1, e)
        gr["bias_o"][...] = g2.sum(axis=0)
        dO = self._split(g @ p["weight_o"])
        dV = P.transpose(0, 1, 3, 2) @ dO
        dS = _softmax_backward(P, dO @ V.transpose(0, 1, 3, 2)) * scale
        dQ = dS @ K
        dK = dS.transpose(0, 1, 3, 2) @ Q
        grads_in = []
        for name, x, d in (("q", q, dQ), ("k", k, dK), ("v", v, dV)):
            d = d.transpose(0, 2, 1, 3).reshape(x.shape[0], x.shape[1], e)
            d2 = d.reshape(-1, e)
            gr[f"weight_{name}"][...] = d2.T @ x.reshape(-1, e)
            gr[f"bias_{name}"][...] = d2.sum(axis=0)
            grads_in.append(d @ p[f"weight_{name}"])
        if self._self_attn:
            return grads_in[0] + grads_in[1] + grads_in[2]
        return tuple(grads_in)

    def __repr__(self):
        return f"MultiHeadAttention({self.embed_dim}, num_heads={self.num_heads})"


# ---------------------------------------------------------------------- optimisers
class SGD:
    """Stochastic gradient descent with (optionally Nesterov) momentum.

    ``v <- momentum v - lr (g + weight_decay p)``; ``p <- p + v`` (Goodfellow et al.
    alg. 8.2; Nesterov: ``p <- p + momentum v - lr g``, alg. 8.3 in Sutskever's form).
    """

    def __init__(self, lr=0.01, momentum=0.0, *, nesterov=False, weight_decay=0.0):
        self.lr = check_real(lr, "lr", low=0.0, low_open=True)
        self.momentum = check_real(
            momentum, "momentum", low=0.0, high=1.0, high_open=True
        )
        self.nesterov = bool(nesterov)
        self.weight_decay = check_real(weight_decay, "weight_decay", low=0.0)
        self._state: dict[int, np.ndarray] = {}

    def step(self, parameters):
        """Update every (name, param, grad) triple in place."""
        for i, (_, p, g) in enumerate(parameters):
            d = g + self.weight_decay * p if self.weight_decay else g
            if self.momentum:
                v = self._state.setdefault(i, np.zeros_like(p))
                v *= self.momentum
                v -= self.lr * d
                if self.nesterov:
                    p += self.momentum * v - self.lr * d
                else:
                    p += v
            else:
                p -= self.lr * d


class Adam:
    """Adam (Kingma & Ba 2015, alg. 1; Goodfellow et al. alg. 8.7), bias-corrected."""

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, *, weight_decay=0.0):
        self.lr = check_real(lr, "lr", low=0.0, low_open=True)
        self.beta1 = check_real(beta1, "beta1", low=0.0, high=1.0, high_open=True)
        self.beta2 = check_real(beta2, "beta2", low=0.0, high=1.0, high_open=True)
        self.eps = check_real(eps, "eps", low=0.0, low_open=True)
        self.weight_decay = check_real(weight_decay, "weight_decay", low=0.0)
        self._m: dict[int, np.ndarray] = {}
        self._v: dict[int, np.ndarray] = {}
        self.t = 0

    def step(self, parameters):
        """Update every (name, param, grad) triple in place."""
        self.t += 1
        c1 = 1 - self.beta1**self.t
        c2 = 1 - self.beta2**self.t
        for i, (_, p, g) in enumerate(parameters):
            d = g + self.weight_decay * p if self.weight_decay else g
            m = self._m.setdefault(i, np.zeros_like(p))
            v = self._v.setdefault(i, np.zeros_like(p))
            m *= self.beta1
            m += (1 - self.beta1) * d
            v *= self.beta2
            v += (1 - self.beta2) * (d * d)
            p -= (self.lr / c1) * m / (np.sqrt(v / c2) + self.eps)


# ---------------------------------------------------------------------- Sequential
_LOSSES = {
    "cross_entropy": _losses.softmax_cross_entropy,
    "binary_cross_entropy": _losses.binary_cross_entropy,
    "squared_error": _losses.squared_error,
}


class Sequential(Layer):
    """A chain of layers, trained by back-propagation (Goodfellow et al. alg. 6.4).

    Parameters
    ----------
    layers : list of Layer

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.nn import Sequential, Linear, ReLU
    >>> net = Sequential([Linear(4, 8, random_state=0), ReLU(), Linear(8, 3, random_state=1)])
    >>> X = np.random.default_rng(0).standard_normal((60, 4)); y = (X[:, 0] > 0).astype(int)
    >>> hist = net.fit(X, y, epochs=20, batch_size=10, random_state=0, verbose=False)
    >>> bool(hist["loss"][-1] < hist["loss"][0])
    True
    """

    def __init__(self, layers):
        super().__init__()
        self.layers = list(layers)
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer) or isinstance(
                layer, (AdditiveAttention, MultiHeadAttention)
            ):
                raise TypeError(
                    f"layers[{i}] must be a single-input fastml.nn Layer, got "
                    f"{type(layer).__name__}"
                )
            for k in layer.params:
                self.params[f"{i}.{k}"] = layer.params[k]
                self.grads[f"{i}.{k}"] = layer.grads[k]

    @property
    def dtype(self):
        for layer in self.layers:
            if layer.dtype is not None:
                return layer.dtype
        return None

    def _check_x(self, x, name="x"):
        return check_array(x, name, dtype=self.dtype)

    def _cache_dtype(self):
        return self._out_dtype

    def astype(self, dtype):
        for layer in self.layers:
            layer.astype(dtype)
        self.__init__(self.layers)
        return self

    def _forward(self, x):
        for layer in self.layers:
            x = layer._forward(x)
        self._out_dtype = x.dtype
        return x

    def _backward(self, g):
        for layer in reversed(self.layers):
            g = layer._backward(g)
        return g

    def predict_logits(self, X, batch_size=256):
        """Network output for ``X`` in batches (no caching needed afterwards)."""
        x = self._check_x(X, "X")
        batch_size = check_int(batch_size, "batch_size", low=1)
        return np.concatenate(
            [self._forward(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        )

    def predict(self, X, batch_size=256):
        """Class labels ``argmax`` of the output (classification)."""
        return np.argmax(self.predict_logits(X, batch_size), axis=1)

    def score(self, X, y):
        """Accuracy of :meth:`predict` against integer labels ``y``."""
        return float(np.mean(self.predict(X) == as_ndarray(y, "y")))

    def fit(
        self,
        X,
        y,
        *,
        loss="cross_entropy",
        optimizer="adam",
        epochs=10,
        batch_size=32,
        shuffle=True,
        random_state=None,
        validation_data=None,
        verbose=True,
        out: TextIO | None = None,
    ):
        """Mini-batch training by back-propagation; one progress line per epoch.

        Parameters
        ----------
        X : array_like of shape (n, ...)
        y : array_like
            Integer class labels (n,) for ``"cross_entropy"`` (the network outputs
            logits), targets of the output's shape for the other losses.
        loss : {"cross_entropy", "binary_cross_entropy", "squared_error"}
            The :mod:`fastml.losses` objective; its gradient seeds back-propagation.
        optimizer : "adam", "sgd", or an :class:`Adam`/:class:`SGD` instance
        epochs, batch_size : int
        shuffle : bool
            Reshuffle the samples every epoch (``random_state``).
        validation_data : (X_val, y_val), optional
            Accuracy on it is reported every epoch (classification).
        verbose : bool
            Print ``epoch e/E  loss ...  [val_acc ...]  time`` to ``out`` (stdout).

        Returns
        -------
        dict
            ``{"loss": [...], "val_accuracy": [...], "time": [...]}`` per epoch.
        """
        if loss not in _LOSSES:
            raise ValueError(f"loss must be one of {sorted(_LOSSES)}, got {loss!r}")
        loss_fn = _LOSSES[loss]
        x = self._check_x(X, "X")
        ya = as_ndarray(y, "y")
        if ya.shape[0] != x.shape[0]:
            raise ValueError(
                f"y must have one entry per sample of X ({x.shape[0]}), got {ya.shape}"
            )
        if loss == "cross_entropy":
            if ya.ndim != 1 or ya.dtype.kind not in "iu":
                raise ValueError(
                    f"y must be integer class labels of shape ({x.shape[0]},) for "
                    f"loss='cross_entropy', got dtype {ya.dtype} and shape {ya.shape}"
                )
            n_out = self._forward(x[:1]).shape[-1]
            if ya.min() < 0 or ya.max() >= n_out:
                raise ValueError(
                    f"y labels must lie in [0, {n_out}) (the network has {n_out} outputs), "
                    f"got values in [{ya.min()}, {ya.max()}]"
                )
        else:
            ya = check_array(ya, "y", dtype=self.dtype)
        epochs = check_int(epochs, "epochs", low=1)
        batch_size = check_int(batch_size, "batch_size", low=1)
        rng = check_random_state(random_state)
        if isinstance(optimizer, str):
            if optimizer not in ("adam", "sgd"):
                raise ValueError(
                    f"optimizer must be 'adam', 'sgd' or an instance, got {optimizer!r}"
                )
            optimizer = Adam() if optimizer == "adam" else SGD(0.05, momentum=0.9)
        elif not hasattr(optimizer, "step"):
            raise TypeError(
                f"optimizer must be 'adam', 'sgd' or an optimiser, got "
                f"{type(optimizer).__name__}"
            )
        if validation_data is not None:
            xv, yv = validation_data
            xv = self._check_x(xv, "validation_data[0]")
        out = sys.stdout if out is None else out
        params = self.parameters()
        history: dict[str, list] = {"loss": [], "val_accuracy": [], "time": []}
        n = x.shape[0]
        for epoch in range(epochs):
            t0 = time.perf_counter()
            order = rng.permutation(n) if shuffle else np.arange(n)
            total = 0.0
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                pred = self._forward(x[idx])
                value, grad = loss_fn(pred, ya[idx])
                self._backward(grad)
                optimizer.step(params)
                total += value * len(idx)
            history["loss"].append(total / n)
            line = f"epoch {epoch + 1}/{epochs}  loss {total / n:.4f}"
            if validation_data is not None:
                acc = float(np.mean(self.predict(xv) == as_ndarray(yv, "y_val")))
                history["val_accuracy"].append(acc)
                line += f"  val_acc {acc:.4f}"
            history["time"].append(time.perf_counter() - t0)
            if verbose:
                print(line + f"  {history['time'][-1]:.2f}s", file=out)
        self._out_shape = None
        return history

    def __repr__(self):
        return "Sequential([" + ", ".join(repr(layer) for layer in self.layers) + "])"
