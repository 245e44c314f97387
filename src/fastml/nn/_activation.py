"""Element-wise and softmax activations with their derivatives
(Goodfellow et al. 2016, sec. 6.3).
"""

from __future__ import annotations

import numpy as np
import scipy.special

from fastml._validation import (
    check_array,
)
from fastml.nn._base import Layer

__all__ = ["ReLU", "Sigmoid", "Softmax", "Tanh"]


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
