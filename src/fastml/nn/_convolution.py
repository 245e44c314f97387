"""Convolution and pooling layers: :class:`Conv2d` (NCHW, stride, padding; im2col +
GEMM) and :class:`MaxPool2d` (Goodfellow et al. 2016, ch. 9).
"""

from __future__ import annotations

import numpy as np

from fastml._parallel import effective_n_jobs
from fastml._typing import DTypeLike, RandomStateLike
from fastml._validation import (
    check_array,
    check_float_dtype,
    check_int,
    check_random_state,
)
from fastml.nn._base import Layer, _glorot
from fastml.nn._functional import (
    _INT32_MAX,
    _buffer,
    _conv,
    _conv2d_backward,
    _conv2d_forward,
    _pair,
)

__all__ = ["Conv2d", "MaxPool2d"]


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
    n_jobs : int or None, default None
        Threads over blocks of images in the forward and backward passes (None: every
        CPU this process may use, capped by ``OMP_NUM_THREADS`` and threadpoolctl; -1:
        every CPU; k >= 1: k threads), resolved at each call. Results are
        bit-identical for every ``n_jobs`` (see :func:`conv2d_backward`).

    Raises
    ------
    ValueError, TypeError
        Bad sizes, geometry or ``n_jobs`` (0, below -1, not an int).

    Notes
    -----
    Forward ``Y[n] = W_(F,K) cols[n] + b`` with ``cols = im2col(x)``; backward
    ``dW = sum_n dY[n] cols[n]^T``, ``db = sum dY``, ``dx = col2im(W^T dY[n])``
    (:func:`conv2d_backward`). Per block of images (as many as fill 1 MiB of
    columns), im2col is computed into a per-thread buffer just before the GEMMs that
    read it, in the forward pass and again in the backward pass (cheaper than keeping
    the whole column matrix, which does not stay in cache).

    With stride 1, padding below the kernel size and a CPU with AVX-512, both passes
    run instead on direct convolution kernels that read the padded image in place (no
    column matrix; the input gradient as a convolution of the padded output gradient
    with the flipped kernel), over the same kind of fixed blocks of images.
    """

    ndim = (4,)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int = 0,
        *,
        random_state: RandomStateLike = None,
        dtype: DTypeLike = np.float64,
        n_jobs: int | None = None,
    ) -> None:
        super().__init__()
        effective_n_jobs(n_jobs)  # validated now, resolved at each call
        self.n_jobs = n_jobs
        self._bufs = {}  # per-thread im2col buffers (thread id -> role -> array)
        self.in_channels = check_int(in_channels, "in_channels", low=1)
        self.out_channels = check_int(out_channels, "out_channels", low=1)
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = check_int(stride, "stride", low=1, high=_INT32_MAX)
        self.padding = check_int(padding, "padding", low=0, high=_INT32_MAX)
        dt = check_float_dtype(dtype)
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

    # x and grad_out are checked for NaN and infinity block by block on the threads,
    # where each block also copies its images into the cache (serial, these two passes
    # over memory cost a fifth of a pass on 2 threads)
    def _check_x(self, x, name="x"):
        return check_array(x, name, ndim=self.ndim, dtype=self.dtype, finite=False)

    def _check_grad_out(self, grad_out, finite=False):
        return super()._check_grad_out(grad_out, finite=False)

    def _forward(self, x):
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must have {self.in_channels} channels (in_channels), got "
                f"{x.shape[1]} (x shape {x.shape})"
            )
        self._out_shape = None  # no backward after a forward that failed half-way
        # a copy of x, made by the blocks: the backward pass reads it
        self._x = _buffer(getattr(self, "_x", None), x.shape, x.dtype)
        y, _ = _conv2d_forward(
            x,
            self.params["weight"],
            self.params["bias"],
            self.stride,
            self.padding,
            effective_n_jobs(self.n_jobs),
            self._bufs,
            x_copy=self._x,
        )
        return y

    def _backward(self, g):
        gx, gw, gb = _conv2d_backward(
            g,
            self._x.shape,
            self.params["weight"],
            None,
            self.stride,
            self.padding,
            effective_n_jobs(self.n_jobs),
            x=self._x,
            bufs=self._bufs,
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

    def __init__(
        self, kernel_size: int | tuple[int, int], stride: int | None = None
    ) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = (
            self.kernel_size[0]
            if stride is None
            else check_int(stride, "stride", low=1, high=_INT32_MAX)
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
