"""Attention layers: additive attention (Bahdanau et al. 2015) and multi-head scaled
dot-product attention (Vaswani et al. 2017), with causal and padding masks.
"""

from __future__ import annotations

import numpy as np

from fastml._typing import ArrayLike, DTypeLike, RandomStateLike, RealArray
from fastml._validation import (
    as_ndarray,
    check_array,
    check_float_dtype,
    check_int,
    check_random_state,
)
from fastml.nn._activation import _softmax, _softmax_backward
from fastml.nn._base import Layer, _glorot

__all__ = ["AdditiveAttention", "MultiHeadAttention"]


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
        query_size: int,
        key_size: int,
        attention_size: int,
        *,
        random_state: RandomStateLike = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__()
        self.query_size = check_int(query_size, "query_size", low=1)
        self.key_size = check_int(key_size, "key_size", low=1)
        self.attention_size = check_int(attention_size, "attention_size", low=1)
        dt = check_float_dtype(dtype)
        rng = check_random_state(random_state)
        a = self.attention_size
        self._add(
            "weight_query", _glorot(rng, (a, self.query_size), self.query_size, a, dt)
        )
        self._add("weight_key", _glorot(rng, (a, self.key_size), self.key_size, a, dt))
        self._add("bias", np.zeros(a, dtype=dt))
        self._add("v", _glorot(rng, (a,), a, 1, dt))

    def forward(  # type: ignore[override]
        self, query: ArrayLike, keys: ArrayLike, mask: ArrayLike | None = None
    ) -> RealArray:
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

    def backward(  # type: ignore[override]
        self, grad_out: ArrayLike
    ) -> tuple[RealArray, RealArray]:
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

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        random_state: RandomStateLike = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__()
        self.embed_dim = check_int(embed_dim, "embed_dim", low=1)
        self.num_heads = check_int(num_heads, "num_heads", low=1)
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"num_heads ({self.num_heads}) must divide embed_dim ({self.embed_dim})"
            )
        dt = check_float_dtype(dtype)
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
        query: ArrayLike,
        key: ArrayLike | None = None,
        value: ArrayLike | None = None,
        *,
        attn_mask: ArrayLike | None = None,
        key_padding_mask: ArrayLike | None = None,
        causal: bool = False,
    ) -> RealArray:
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

    def backward(  # type: ignore[override]
        self, grad_out: ArrayLike
    ) -> RealArray | tuple[RealArray, RealArray, RealArray]:
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
