"""Optimisers that update a layer's ``params`` from its ``grads``: :class:`SGD` with
momentum and :class:`Adam` (Kingma & Ba 2015).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from fastml._validation import (
    check_real,
)

__all__ = ["SGD", "Adam"]


class SGD:
    """Stochastic gradient descent with (optionally Nesterov) momentum.

    ``v <- momentum v - lr (g + weight_decay p)``; ``p <- p + v`` (Goodfellow et al.
    alg. 8.2; Nesterov: ``p <- p + momentum v - lr g``, alg. 8.3 in Sutskever's form).
    """

    def __init__(
        self,
        lr: float = 0.01,
        momentum: float = 0.0,
        *,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        self.lr = check_real(lr, "lr", low=0.0, low_open=True)
        self.momentum = check_real(
            momentum, "momentum", low=0.0, high=1.0, high_open=True
        )
        self.nesterov = bool(nesterov)
        self.weight_decay = check_real(weight_decay, "weight_decay", low=0.0)
        self._state: dict[int, np.ndarray] = {}

    def step(self, parameters: Iterable[tuple[str, np.ndarray, np.ndarray]]) -> None:
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

    def __init__(
        self,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        *,
        weight_decay: float = 0.0,
    ) -> None:
        self.lr = check_real(lr, "lr", low=0.0, low_open=True)
        self.beta1 = check_real(beta1, "beta1", low=0.0, high=1.0, high_open=True)
        self.beta2 = check_real(beta2, "beta2", low=0.0, high=1.0, high_open=True)
        self.eps = check_real(eps, "eps", low=0.0, low_open=True)
        self.weight_decay = check_real(weight_decay, "weight_decay", low=0.0)
        self._m: dict[int, np.ndarray] = {}
        self._v: dict[int, np.ndarray] = {}
        self.t = 0

    def step(self, parameters: Iterable[tuple[str, np.ndarray, np.ndarray]]) -> None:
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
