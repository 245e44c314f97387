"""``fastml demo mixture``: EM for a Gaussian mixture and its variational Bayes version."""

from __future__ import annotations

import time
from typing import TextIO

import numpy as np

from fastml._demo import save_figure
from fastml.mixture import BayesianGaussianMixture, GaussianMixture


def demo(out: TextIO, plot_dir=None) -> None:
    rng = np.random.default_rng(0)
    true_means = np.array([[-5.0, 0.0], [0.0, 5.0], [5.0, 0.0], [0.0, -3.0]])
    true_w = np.array([0.4, 0.3, 0.2, 0.1])
    n = 20_000
    z = rng.choice(4, size=n, p=true_w)
    X = true_means[z] + rng.normal(size=(n, 2)) @ np.array([[1.0, 0.3], [0.0, 0.7]])

    t0 = time.perf_counter()
    gm = GaussianMixture(4, random_state=0, tol=1e-6, max_iter=300).fit(X)
    dt = time.perf_counter() - t0
    print(
        f"   GaussianMixture (EM, full covariances) on {n} points: {gm.n_iter_} "
        f"iterations, {dt * 1e3:.0f} ms, mean log-likelihood {gm.lower_bound_:.4f}",
        file=out,
    )
    print("     weight   mean              (true weight, mean)", file=out)
    for k in np.argsort(gm.means_[:, 0] + 0.1 * gm.means_[:, 1]):
        j = int(np.argmin(np.sum((true_means - gm.means_[k]) ** 2, axis=1)))
        print(
            f"     {gm.weights_[k]:.3f}   ({gm.means_[k, 0]:6.2f}, {gm.means_[k, 1]:6.2f})"
            f"   ({true_w[j]:.1f}, ({true_means[j, 0]:5.1f}, {true_means[j, 1]:5.1f}))",
            file=out,
        )
    t0 = time.perf_counter()
    m = 5000
    bgm = BayesianGaussianMixture(
        n_components=10,
        weight_concentration_prior_type="dirichlet_distribution",
        weight_concentration_prior=1e-3,
        tol=1e-4,
        max_iter=1000,
        random_state=0,
    ).fit(X[:m])
    dt = time.perf_counter() - t0
    print(
        f"   BayesianGaussianMixture (PRML 10.2), first {m} points, 10 components, "
        f"alpha0 = 1e-3: "
        f"kept {bgm.n_active_components_} (weights > {bgm.weight_threshold:g}), "
        f"{bgm.n_iter_} iterations, {dt * 1e3:.0f} ms",
        file=out,
    )
    kept = np.flatnonzero(bgm.active_components_)
    for k in kept[np.argsort(bgm.means_[kept, 0])]:
        print(
            f"     {bgm.weights_[k]:.3f}   ({bgm.means_[k, 0]:6.2f}, {bgm.means_[k, 1]:6.2f})",
            file=out,
        )
    print(
        f"   exact ELBO (PRML eq. 10.70): {bgm.elbo_[0]:.1f} -> {bgm.elbo_[-1]:.1f}, "
        f"never decreasing: {bool(np.all(np.diff(bgm.elbo_) >= -1e-9 * abs(bgm.elbo_[-1])))}",
        file=out,
    )
    if plot_dir is not None:
        import matplotlib.pyplot as plt
        from matplotlib.patches import Ellipse

        fig, ax = plt.subplots(figsize=(6, 5))
        ax.scatter(X[:m, 0], X[:m, 1], s=2, color="0.7")
        for k in range(bgm.n_components):
            vals, vecs = np.linalg.eigh(bgm.covariances_[k])
            angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
            kept_k = bool(bgm.active_components_[k])
            ax.add_patch(
                Ellipse(
                    bgm.means_[k],
                    *(4 * np.sqrt(vals[::-1])),
                    angle=angle,
                    fill=False,
                    color="C3" if kept_k else "C0",
                    lw=2 if kept_k else 0.7,
                    ls="-" if kept_k else ":",
                )
            )
        ax.plot(*true_means.T, "k+", ms=12, mew=2, label="true means")
        ax.set_aspect("equal")
        ax.legend(fontsize=8)
        ax.set_title(
            f"Bayesian GMM: {bgm.n_active_components_} of 10 components kept "
            "(red; dotted: pruned)",
            fontsize=9,
        )
        fig.tight_layout()
        save_figure(fig, plot_dir, "mixture_bayesian_gmm", out)
