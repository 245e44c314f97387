"""
Gaussian mixtures: EM and variational Bayes
===========================================

Data from three Gaussians. :class:`~fastml.mixture.GaussianMixture` fitted by EM with
the right number of components, and :class:`~fastml.mixture.BayesianGaussianMixture`
given eight components and a small Dirichlet concentration :math:`\\alpha_0 = 10^{-3}`:
variational Bayes switches off the components it does not need (PRML sec. 10.2.4).
Ellipses are two standard deviations of each fitted component (dashed: the truth);
components with weight below 1% are drawn faint.
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Ellipse

from fastml.mixture import BayesianGaussianMixture, GaussianMixture

rng = np.random.default_rng(0)
means = np.array([[-4.0, 0.0], [0.0, 3.0], [3.5, -1.0]])
covs = np.array(
    [[[1.5, 0.8], [0.8, 1.0]], [[0.5, 0.0], [0.0, 2.0]], [[1.0, -0.6], [-0.6, 0.8]]]
)
n = [300, 200, 250]
X = np.vstack(
    [rng.multivariate_normal(m, c, k) for m, c, k in zip(means, covs, n, strict=True)]
)

gm = GaussianMixture(3, covariance_type="full", random_state=0).fit(X)
bgm = BayesianGaussianMixture(
    8, weight_concentration_prior=1e-3, max_iter=500, random_state=0
).fit(X)
print("EM weights:", np.sort(gm.weights_).round(3))
print("VB weights:", np.sort(bgm.weights_).round(3))
print("VB components kept:", bgm.n_active_components_)


def ellipse(ax, mean, cov, **kw):
    vals, vecs = np.linalg.eigh(cov)
    angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
    w, h = 2 * 2 * np.sqrt(vals[::-1])  # two standard deviations on each side
    ax.add_patch(Ellipse(mean, w, h, angle=angle, fill=False, **kw))


fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharex=True, sharey=True)
for ax, model, title in (
    (axes[0], gm, "EM, 3 components"),
    (axes[1], bgm, "variational Bayes, 8 components"),
):
    ax.scatter(X[:, 0], X[:, 1], s=3, c=model.predict(X), cmap="tab10", vmin=0, vmax=9)
    for m, c in zip(means, covs, strict=True):
        ellipse(ax, m, c, color="k", ls="--", lw=1)
    for k, (w, m, c) in enumerate(
        zip(model.weights_, model.means_, model.covariances_, strict=True)
    ):
        ellipse(
            ax,
            m,
            c,
            color=f"C{k}",
            lw=2.5 if w > 0.01 else 0.8,
            alpha=1.0 if w > 0.01 else 0.3,
        )
    ax.set_title(title)
    ax.set_aspect("equal")
fig.tight_layout()

# %%
# Weights of the eight variational components
# -------------------------------------------

fig, ax = plt.subplots(figsize=(6, 2.8))
ax.bar(range(8), bgm.weights_, color=[f"C{k}" for k in range(8)])
ax.set_yscale("log")
ax.set_xlabel("component")
ax.set_ylabel("E[pi_k]")
ax.set_title(f"{bgm.n_active_components_} of 8 components kept")
fig.tight_layout()
