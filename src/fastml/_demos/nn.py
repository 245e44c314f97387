"""``fastml demo nn``: an MLP and a small CNN trained on the 8x8 digits by explicit
back-propagation (accuracy per epoch, time)."""

from __future__ import annotations

import time
from typing import TextIO

import numpy as np

from fastml import nn


def load_digits_split(seed: int = 0):
    """The 1797 8x8 digits (scikit-learn's copy of the UCI set) in [0, 1], 75/25 split;
    None when scikit-learn is not installed."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return None
    d = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(d.target))
    x, y = d.data[order] / 16.0, d.target[order]
    cut = int(0.75 * len(y))
    return x[:cut], x[cut:], y[:cut], y[cut:]


def _train(out, title, net, xtr, ytr, xte, yte, epochs, lr):
    print(f"   {title}", file=out)
    t0 = time.perf_counter()
    hist = net.fit(
        xtr,
        ytr,
        epochs=epochs,
        batch_size=32,
        optimizer=nn.Adam(lr),
        random_state=0,
        validation_data=(xte, yte),
        verbose=False,
    )
    for e, (loss, acc, t) in enumerate(
        zip(hist["loss"], hist["val_accuracy"], hist["time"], strict=True)
    ):
        print(
            f"     epoch {e + 1:2d}  loss {loss:.4f}  held-out accuracy {acc:.4f}"
            f"  {t:.2f} s",
            file=out,
        )
    print(f"     total {time.perf_counter() - t0:.2f} s", file=out)


def demo(out: TextIO) -> None:
    data = load_digits_split()
    if data is None:
        print(
            "   needs scikit-learn for the digits data (pip install scikit-learn)",
            file=out,
        )
        return
    xtr, xte, ytr, yte = data
    print(
        f"   digits: {len(ytr)} training and {len(yte)} held-out images, float32",
        file=out,
    )
    xtr, xte = xtr.astype(np.float32), xte.astype(np.float32)
    f32 = np.float32
    mlp = nn.Sequential(
        [
            nn.Linear(64, 128, random_state=0, dtype=f32),
            nn.ReLU(),
            nn.Linear(128, 10, random_state=1, dtype=f32),
        ]
    )
    _train(out, "MLP 64-128-10 (ReLU), Adam:", mlp, xtr, ytr, xte, yte, 8, 3e-3)
    cnn = nn.Sequential(
        [
            nn.Conv2d(1, 32, 3, padding=1, random_state=0, dtype=f32),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1, random_state=1, dtype=f32),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(256, 10, random_state=2, dtype=f32),
        ]
    )
    img = (-1, 1, 8, 8)
    _train(
        out,
        "CNN conv3x3(32)-pool-conv3x3(64)-pool-linear, im2col + GEMM, Adam:",
        cnn,
        xtr.reshape(img),
        ytr,
        xte.reshape(img),
        yte,
        8,
        2e-3,
    )
