"""``fastml demo rbm``: scikit-learn's "RBM features for digit classification" recipe:
a Bernoulli RBM trained by persistent CD on the nudged digits (reconstruction error per
epoch), then a softmax regression on its hidden features vs on raw pixels."""

from __future__ import annotations

import time
from typing import TextIO

import numpy as np

from fastml import nn
from fastml._demo import save_figure
from fastml.rbm import BernoulliRBM


def _nudged_digits():
    """Digits plus their 1-pixel shifts up/down/left/right (5x the data), min-max
    scaled, shuffled and split 80/20 as in scikit-learn's example."""
    from sklearn.datasets import load_digits

    d = load_digits()
    im = d.data.reshape(-1, 8, 8)
    shifted = [im]
    for axis in (1, 2):
        for step in (1, -1):
            s = np.roll(im, step, axis=axis)
            edge = 0 if step == 1 else -1
            if axis == 1:
                s[:, edge] = 0
            else:
                s[:, :, edge] = 0
            shifted.append(s)
    x = np.concatenate(shifted).reshape(-1, 64)
    y = np.tile(d.target, 5)
    x = (x - x.min(0)) / (x.max(0) + 1e-4)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    cut = int(0.8 * len(y))
    return x[:cut], x[cut:], y[:cut], y[cut:]


def _softmax_regression_accuracy(xtr, ytr, xte, yte):
    net = nn.Sequential([nn.Linear(xtr.shape[1], 10, random_state=0)])
    net.fit(
        xtr,
        ytr,
        epochs=40,
        batch_size=64,
        optimizer=nn.Adam(1e-2),
        random_state=0,
        verbose=False,
    )
    return net.score(xte, yte)


def demo(out: TextIO, plot_dir=None) -> None:
    try:
        xtr, xte, ytr, yte = _nudged_digits()
    except ImportError:
        print(
            "   needs scikit-learn for the digits data (pip install scikit-learn)",
            file=out,
        )
        return
    rbm = BernoulliRBM(
        n_components=100, learning_rate=0.06, batch_size=10, random_state=0
    )
    print(
        f"   BernoulliRBM, 100 hidden units, PCD-1, batch 10, on {len(ytr)} nudged "
        "digits:",
        file=out,
    )
    t0 = time.perf_counter()
    for epoch in range(10):
        for start in range(0, len(xtr), 10):  # one PCD update per mini-batch
            rbm.partial_fit(xtr[start : start + 10])
        if epoch % 3 == 0 or epoch == 9:
            print(
                f"     epoch {epoch + 1:2d}  reconstruction error "
                f"{rbm.reconstruction_error(xte):.4f}  pseudo-log-likelihood "
                f"{rbm.score_samples(xte).mean():8.2f}",
                file=out,
            )
    print(f"     10 epochs in {time.perf_counter() - t0:.2f} s", file=out)
    acc_rbm = _softmax_regression_accuracy(
        rbm.transform(xtr), ytr, rbm.transform(xte), yte
    )
    acc_raw = _softmax_regression_accuracy(xtr, ytr, xte, yte)
    print("   softmax regression (fastml.nn), held-out accuracy:", file=out)
    print(f"     on RBM features (100)  {acc_rbm:.4f}", file=out)
    print(f"     on raw pixels (64)     {acc_raw:.4f}", file=out)
    if plot_dir is not None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(10, 10, figsize=(6.5, 6.5))
        for w, ax in zip(rbm.components_, axes.ravel(), strict=True):
            lim = np.abs(w).max()
            ax.imshow(w.reshape(8, 8), cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.axis("off")
        fig.suptitle("RBM: the 100 hidden units' weights (red excitatory)")
        save_figure(fig, plot_dir, "rbm_filters", out)
