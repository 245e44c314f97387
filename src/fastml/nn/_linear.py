"""The fully connected layer, y = x W^T + b (Goodfellow et al. 2016, sec. 6.5)."""

from __future__ import annotations

import numpy as np

from fastml._typing import DTypeLike, RandomStateLike
from fastml._validation import (
    check_array,
    check_float_dtype,
    check_int,
    check_random_state,
)
from fastml.nn._base import Layer, _glorot

__all__ = ["Linear"]


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
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        random_state: RandomStateLike = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__()
        self.in_features = check_int(in_features, "in_features", low=1)
        self.out_features = check_int(out_features, "out_features", low=1)
        dt = check_float_dtype(dtype)
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
