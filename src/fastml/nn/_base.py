"""The layer contract (``forward`` / ``backward`` / ``params`` / ``grads``), parameter
initialisation and the shape-only :class:`Flatten` layer.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

from fastml._typing import ArrayLike, DTypeLike, RealArray
from fastml._validation import (
    check_array,
    check_float_dtype,
)

__all__ = ["Flatten", "Layer"]


def _glorot(rng, shape, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    """Glorot & Bengio (2010) uniform initialisation, bound sqrt(6 / (fan_in + fan_out))."""
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


_L = TypeVar("_L", bound="Layer")


class Layer:
    """Base class: ``forward`` caches, ``backward`` returns the input gradient.

    ``params`` and ``grads`` are dicts of arrays with the same keys; ``backward``
    overwrites ``grads``. Subclasses implement ``_forward``/``_backward`` on validated
    arrays; the public methods validate (dtype, ndim, finiteness) first.
    """

    ndim: tuple[int, ...] | None = None
    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]

    def __init__(self) -> None:
        self.params = {}
        self.grads = {}
        self._out_shape = None

    @property
    def dtype(self) -> np.dtype[Any] | None:
        """The dtype of the parameters (None for parameter-free layers)."""
        for p in self.params.values():
            return p.dtype
        return None

    def _check_x(self, x, name="x"):
        return check_array(x, name, ndim=self.ndim, dtype=self.dtype)

    def forward(self, x: ArrayLike) -> RealArray:
        """Output for input ``x``; caches what :meth:`backward` needs."""
        y = self._forward(self._check_x(x))
        self._out_shape = y.shape
        return y

    def backward(self, grad_out: ArrayLike) -> RealArray:
        """dL/dx given dL/dy (of the last output's shape); fills ``self.grads``."""
        return self._backward(self._check_grad_out(grad_out))

    def _check_grad_out(self, grad_out, finite=True):
        """dL/dy validated against the last forward: finite (unless the layer checks
        that itself), of its shape and dtype."""
        if self._out_shape is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        g = check_array(grad_out, "grad_out", dtype=self._cache_dtype(), finite=finite)
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

    def parameters(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """List of (name, parameter, gradient) triples (arrays updated in place)."""
        return [(k, self.params[k], self.grads[k]) for k in self.params]

    def astype(self: _L, dtype: DTypeLike) -> _L:
        """Convert the parameters to float32/float64 in place; returns ``self``."""
        dt = check_float_dtype(dtype)
        for k in list(self.params):
            self.params[k] = self.params[k].astype(dt)
            self.grads[k] = np.zeros_like(self.params[k])
        return self

    def _add(self, name, value):
        self.params[name] = np.ascontiguousarray(value)
        self.grads[name] = np.zeros_like(self.params[name])

    def __repr__(self):
        return f"{type(self).__name__}()"


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
