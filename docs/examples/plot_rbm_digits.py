"""
RBM filters on the digits
=========================

A :class:`~fastml.rbm.BernoulliRBM` with 64 hidden units trained by persistent
contrastive divergence on scikit-learn's 8x8 digits (pixel intensities in [0, 1] used as
Bernoulli means). Each hidden unit's weight vector, drawn as an 8x8 image, is a stroke
detector; below them, digits and their reconstructions
:math:`\\mathbb E[v \\mid h \\sim p(h \\mid v)]` after one Gibbs step.
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy.special import expit
from sklearn.datasets import load_digits

from fastml.rbm import BernoulliRBM

X = load_digits().data / 16.0
rbm = BernoulliRBM(n_components=64, learning_rate=0.06, n_iter=20, random_state=0)
rbm.fit(X)
print("mean pseudo-log-likelihood:", rbm.score_samples(X).mean().round(2))

fig, axes = plt.subplots(8, 8, figsize=(6, 6))
for w, ax in zip(rbm.components_, axes.ravel(), strict=True):
    lim = np.abs(w).max()
    ax.imshow(w.reshape(8, 8), cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.axis("off")
fig.suptitle("64 hidden units' weights (red: excitatory)")
fig.tight_layout()

# %%
# Reconstructions
# ---------------

rng = np.random.default_rng(1)
h = rng.random((10, 64)) < rbm.transform(X[:10])  # a sample of h given each digit
recon = expit(h @ rbm.components_ + rbm.intercept_visible_)
fig, axes = plt.subplots(2, 10, figsize=(8, 1.9))
for i in range(10):
    axes[0, i].imshow(X[i].reshape(8, 8), cmap="gray_r")
    axes[1, i].imshow(recon[i].reshape(8, 8), cmap="gray_r")
    axes[0, i].axis("off")
    axes[1, i].axis("off")
axes[0, 0].set_title("data", fontsize=8, loc="left")
axes[1, 0].set_title("reconstruction", fontsize=8, loc="left")
fig.tight_layout()
