"""``fastml demo ep``: Minka's clutter problem, EP vs ADF vs numerical integration."""

from __future__ import annotations

import math
from typing import TextIO

import numpy as np

from fastml._demo import save_figure
from fastml.ep import ClutterProblem, GaussianEP, ProbitSite


def _exact(prob: ClutterProblem, x: np.ndarray):
    """Posterior mean, variance and ln p(D) by the trapezoid rule on a fine grid."""

    def log_post(g):
        lp = -0.5 * g**2 / prob.prior_var - 0.5 * math.log(2 * math.pi * prob.prior_var)
        return lp + prob.log_likelihood(g[:, None], x).sum(axis=1)

    g = np.linspace(-60.0, 60.0, 12_001)
    lp = log_post(g)
    inside = g[lp > lp.max() - 60.0]
    g = np.linspace(inside.min() - 0.1, inside.max() + 0.1, 40_001)
    lp = log_post(g)
    mx = lp.max()
    p = np.exp(lp - mx)
    dx = g[1] - g[0]
    z = p.sum() * dx
    m = (p * g).sum() * dx / z
    return m, (p * (g - m) ** 2).sum() * dx / z, mx + math.log(z)


def demo(out: TextIO, plot_dir=None) -> None:
    prob = ClutterProblem(w=0.5, prior_var=100.0, clutter_var=10.0)
    print(
        "   clutter problem (w=0.5, prior var 100, clutter var 10), theta = 2:",
        file=out,
    )
    print("       N  method        mean       variance     ln p(D)   passes", file=out)
    for n in (20, 200):
        x = prob.sample(2.0, n, random_state=n)
        m, v, lz = _exact(prob, x)
        ep = prob.fit_ep(x)
        adf = prob.fit_adf(x)
        if n == 20:
            small = (x, m, v, ep, adf)
        rows = [
            ("exact", m, v, lz, ""),
            ("EP", ep.mean[0], ep.variance, ep.log_evidence, str(ep.n_iter)),
            ("ADF", adf.mean[0], adf.variance, adf.log_evidence, "1"),
        ]
        for name, mean, var, logz, passes in rows:
            print(
                f"     {n:3d}  {name:<8} {mean:10.6f} {var:12.6e} {logz:11.5f}   {passes}",
                file=out,
            )
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 2))
    y = np.where(X @ [1.5, -1.0] + 0.5 * rng.standard_normal(50) > 0, 1, -1)
    r = GaussianEP(
        np.zeros(2),
        np.eye(2),
        [ProbitSite(a, int(t)) for a, t in zip(X, y, strict=True)],
    ).fit()
    print(
        f"   Bayesian probit regression, 50 points: EP mean {np.round(r.mean, 3)}, "
        f"ln p(D) = {r.log_evidence:.4f} ({r.n_iter} passes)",
        file=out,
    )
    if plot_dir is not None:
        import matplotlib.pyplot as plt

        x, m, v, ep, adf = small
        g = np.linspace(m - 6 * math.sqrt(v), m + 6 * math.sqrt(v), 2001)
        lp = (
            prob.log_likelihood(g[:, None], x).sum(axis=1) - 0.5 * g**2 / prob.prior_var
        )
        p = np.exp(lp - lp.max())
        p /= p.sum() * (g[1] - g[0])
        fig, ax = plt.subplots(figsize=(7, 3.6))
        ax.fill_between(g, p, color="0.85", label="exact posterior")
        for name, r, style in (("EP", ep, "C0-"), ("ADF", adf, "C1--")):
            mu, var = float(r.mean[0]), float(r.variance)
            dens = np.exp(-0.5 * (g - mu) ** 2 / var) / math.sqrt(2 * math.pi * var)
            ax.plot(g, dens, style, lw=2, label=name)
        ax.set_xlabel("theta")
        ax.legend(fontsize=8)
        ax.set_title("Clutter problem, N = 20: EP vs ADF vs exact")
        fig.tight_layout()
        save_figure(fig, plot_dir, "ep_clutter", out)
