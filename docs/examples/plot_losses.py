"""
Losses as negative log-likelihoods
==================================

The binary cross-entropy is the Bernoulli negative log-likelihood of a logit :math:`a`,
with gradient :math:`\\sigma(a) - t` (PRML eqs. 4.90-4.91).
:func:`fastml.losses.binary_cross_entropy` evaluates it as
:math:`\\max(a, 0) - a t + \\ln(1 + e^{-|a|})`, exact for any :math:`|a|`; the textbook form
:math:`-t\\ln\\sigma(a) - (1-t)\\ln(1-\\sigma(a))` loses everything once :math:`\\sigma(a)`
rounds to 1. Right: logistic regression fitted by gradient descent on the fastml loss.
"""

import matplotlib.pyplot as plt
import numpy as np

from fastml.losses import binary_cross_entropy

a = np.linspace(-40, 40, 801)
ours = np.array([binary_cross_entropy([v], [0.0]).loss for v in a])
with np.errstate(divide="ignore"):
    naive = -np.log(1 - 1 / (1 + np.exp(-a)))  # target t = 0
print("at a = 40: fastml", ours[-1], " naive", naive[-1])

rng = np.random.default_rng(0)
X = rng.normal(size=(400, 2))
t = (X @ [2.0, -1.0] + 0.5 + rng.logistic(size=400) > 0).astype(float)
w, b = np.zeros(2), 0.0
losses = []
for _ in range(300):
    r = binary_cross_entropy(X @ w + b, t)  # mean loss and d loss / d logits
    w -= 1.0 * X.T @ r.grad
    b -= 1.0 * r.grad.sum()
    losses.append(r.loss)
print("fitted w, b:", w.round(3), round(b, 3), " final loss", round(losses[-1], 4))

fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
axes[0].semilogy(a, ours, "C0", lw=3, label="fastml (stable form)")
axes[0].semilogy(a, naive, "C3--", label="textbook form")
axes[0].set_xlabel("logit a (target t = 0)")
axes[0].set_ylabel("loss")
axes[0].legend(fontsize=8)
axes[0].set_title("binary cross-entropy")
axes[1].plot(losses)
axes[1].set_xlabel("gradient step")
axes[1].set_ylabel("mean loss")
axes[1].set_title("logistic regression by gradient descent")
fig.tight_layout()
