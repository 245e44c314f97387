"""Recurrent layers trained by back-propagation through time: :class:`RNN`,
:class:`LSTM` and :class:`Bidirectional` (Goodfellow et al. 2016, ch. 10).
"""

from __future__ import annotations

import copy
from typing import TypeVar

import numpy as np

from fastml._typing import DTypeLike, RandomStateLike
from fastml._validation import (
    check_array,
    check_float_dtype,
    check_int,
    check_random_state,
    check_real,
)
from fastml.nn._activation import _sigmoid
from fastml.nn._base import Layer, _glorot

__all__ = ["LSTM", "RNN", "Bidirectional"]


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
        input_size: int,
        hidden_size: int,
        *,
        return_sequences: bool = True,
        truncate: int | None = None,
        random_state: RandomStateLike = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__()
        self._init_common(input_size, hidden_size, return_sequences, truncate)
        self._init_params(check_random_state(random_state), check_float_dtype(dtype))

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
        input_size: int,
        hidden_size: int,
        *,
        return_sequences: bool = True,
        truncate: int | None = None,
        forget_bias: float = 1.0,
        random_state: RandomStateLike = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__()
        self._init_common(input_size, hidden_size, return_sequences, truncate)
        self.forget_bias = check_real(forget_bias, "forget_bias")
        self._init_params(check_random_state(random_state), check_float_dtype(dtype))

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


_BI = TypeVar("_BI", bound="Bidirectional")


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

    def __init__(
        self,
        layer: RNN | LSTM,
        backward_layer: RNN | LSTM | None = None,
        *,
        random_state: RandomStateLike = None,
    ) -> None:
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

    def astype(self: _BI, dtype: DTypeLike) -> _BI:
        """Convert both directions' parameters to float32/float64 in place; returns ``self``."""
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
