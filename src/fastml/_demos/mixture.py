"""``fastml demo mixture``: EM for a Gaussian mixture and its variational Bayes version."""

from __future__ import annotations

import time
from typing import TextIO

import numpy as np

from fastml.mixture import BayesianGaussianMixture, GaussianMixture


def demo(out: TextIO) -> None:
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
