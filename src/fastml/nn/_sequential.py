"""A stack of layers with a training loop: :class:`Sequential`."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any, Literal, TextIO, TypeVar

import numpy as np

from fastml import losses as _losses
from fastml._typing import ArrayLike, DTypeLike, IntArray, RandomStateLike, RealArray
from fastml._validation import (
    as_ndarray,
    check_array,
    check_int,
    check_random_state,
)
from fastml.nn._attention import AdditiveAttention, MultiHeadAttention
from fastml.nn._base import Layer
from fastml.nn._optim import SGD, Adam

__all__ = ["Sequential"]


_LOSSES = {
    "cross_entropy": _losses.softmax_cross_entropy,
    "binary_cross_entropy": _losses.binary_cross_entropy,
    "squared_error": _losses.squared_error,
}


_SEQ = TypeVar("_SEQ", bound="Sequential")


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

    def __init__(self, layers: Sequence[Layer]) -> None:
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
    def dtype(self) -> np.dtype[Any] | None:
        """The dtype of the first layer that has parameters (None if none has)."""
        for layer in self.layers:
            if layer.dtype is not None:
                return layer.dtype
        return None

    def _check_x(self, x, name="x"):
        return check_array(x, name, dtype=self.dtype)

    def _cache_dtype(self):
        return self._out_dtype

    def astype(self: _SEQ, dtype: DTypeLike) -> _SEQ:
        """Convert every layer's parameters to float32/float64 in place; returns ``self``."""
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

    def predict_logits(self, X: ArrayLike, batch_size: int = 256) -> RealArray:
        """Network output for ``X`` in batches (no caching needed afterwards)."""
        x = self._check_x(X, "X")
        batch_size = check_int(batch_size, "batch_size", low=1)
        return np.concatenate(
            [self._forward(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        )

    def predict(self, X: ArrayLike, batch_size: int = 256) -> IntArray:
        """Class labels ``argmax`` of the output (classification)."""
        return np.argmax(self.predict_logits(X, batch_size), axis=1)

    def score(self, X: ArrayLike, y: ArrayLike) -> float:
        """Accuracy of :meth:`predict` against integer labels ``y``."""
        return float(np.mean(self.predict(X) == as_ndarray(y, "y")))

    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        *,
        loss: Literal[
            "cross_entropy", "binary_cross_entropy", "squared_error"
        ] = "cross_entropy",
        optimizer: Literal["adam", "sgd"] | Adam | SGD = "adam",
        epochs: int = 10,
        batch_size: int = 32,
        shuffle: bool = True,
        random_state: RandomStateLike = None,
        validation_data: tuple[ArrayLike, ArrayLike] | None = None,
        verbose: bool = True,
        out: TextIO | None = None,
    ) -> dict[str, list[float]]:
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
