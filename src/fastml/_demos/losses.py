"""``fastml demo losses``: maximum likelihood by gradient descent on the fastml losses."""

from __future__ import annotations

import time
from typing import TextIO

import numpy as np

from fastml.losses import binary_cross_entropy, softmax_cross_entropy


def _fit(loss_fn, x, y, n_out, steps=300, lr=0.5):
    """Plain gradient descent on a linear model x @ W + b under ``loss_fn``."""
    w = np.zeros((x.shape[1], n_out))
    b = np.zeros(n_out)
    history = []
    for step in range(steps):
        logits = x @ w + b
        if n_out == 1:
            loss, grad = loss_fn(logits[:, 0], y)
            grad = grad[:, None]
        else:
            loss, grad = loss_fn(logits, y)
        w -= lr * (x.T @ grad)
        b -= lr * grad.sum(axis=0)
        if step in (0, 9, 99, steps - 1):
            history.append((step + 1, loss))
    return w, b, history


def demo(out: TextIO) -> None:
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [3.0, 0.5], [1.0, 3.0]])
    labels = rng.integers(0, 3, size=3000)
    x = centres[labels] + rng.standard_normal((3000, 2))
    train, test = slice(0, 2000), slice(2000, None)

    t0 = time.perf_counter()
    yb = (labels == 1).astype(float)
    w, b, hist = _fit(binary_cross_entropy, x[train], yb[train], 1)
    acc = np.mean(((x[test] @ w + b)[:, 0] > 0) == (yb[test] == 1))
    print("   logistic regression (class 1 vs rest), binary cross-entropy:", file=out)
    print("     " + "  ".join(f"step {s}: {loss:.4f}" for s, loss in hist), file=out)
    print(f"     held-out accuracy {acc:.3f}", file=out)

    w, b, hist = _fit(softmax_cross_entropy, x[train], labels[train], 3)
    acc = np.mean(np.argmax(x[test] @ w + b, axis=1) == labels[test])
    print("   softmax regression (3 classes), softmax cross-entropy:", file=out)
    print("     " + "  ".join(f"step {s}: {loss:.4f}" for s, loss in hist), file=out)
    print(
        f"     held-out accuracy {acc:.3f}  ({time.perf_counter() - t0:.2f} s for both fits)",
        file=out,
    )
