"""``fastml demo graphical``: the Asia network, MAP of a chain, image de-noising."""

from __future__ import annotations

import itertools
from typing import TextIO

import numpy as np

from fastml._demo import save_figure, timed
from fastml.graphical import BayesianNetwork, FactorGraph, PairwiseMRF


def asia() -> BayesianNetwork:
    """The chest-clinic network (Lauritzen & Spiegelhalter 1988); state 1 = yes."""
    bn = BayesianNetwork(
        [
            ("asia", "tub"),
            ("smoke", "lung"),
            ("smoke", "bronc"),
            ("tub", "either"),
            ("lung", "either"),
            ("either", "xray"),
            ("either", "dysp"),
            ("bronc", "dysp"),
        ]
    )

    def yes(p):
        return [1 - p, p]

    bn.add_cpd("asia", yes(0.01))
    bn.add_cpd("smoke", yes(0.5))
    bn.add_cpd("tub", [yes(0.01), yes(0.05)])
    bn.add_cpd("lung", [yes(0.01), yes(0.1)])
    bn.add_cpd("bronc", [yes(0.3), yes(0.6)])
    either = np.zeros((2, 2, 2))
    for t, lu in itertools.product((0, 1), (0, 1)):
        either[t, lu, int(t or lu)] = 1.0
    bn.add_cpd("either", either, parents=["tub", "lung"])
    bn.add_cpd("xray", [yes(0.05), yes(0.98)])
    bn.add_cpd(
        "dysp", [[yes(0.1), yes(0.8)], [yes(0.7), yes(0.9)]], ["either", "bronc"]
    )
    return bn


def demo(out: TextIO, plot_dir=None) -> None:
    bn = asia()
    print("   Asia network (Lauritzen & Spiegelhalter 1988):", file=out)
    print(
        f"     tub d-separated from smoke: {bn.d_separated('tub', 'smoke')}; "
        f"given dysp: {bn.d_separated('tub', 'smoke', given=['dysp'])}",
        file=out,
    )
    print(f"     Markov blanket of lung: {sorted(bn.markov_blanket('lung'))}", file=out)
    fg = bn.to_factor_graph()
    queries = [
        ({}, "no evidence"),
        ({"dysp": 1}, "dyspnoea"),
        ({"asia": 1, "dysp": 1}, "visited Asia, dyspnoea"),
        ({"asia": 1, "dysp": 1, "xray": 1}, "+ positive x-ray"),
    ]
    print("     P(yes | evidence), exact by cutset conditioning on smoke:", file=out)
    print("       evidence                   tub    lung   bronc", file=out)
    for ev, label in queries:
        fg.set_evidence(ev)
        r = fg.sum_product(cutset=["smoke"])
        print(
            f"       {label:<24} {r.marginal('tub')[1]:6.4f} "
            f"{r.marginal('lung')[1]:6.4f} {r.marginal('bronc')[1]:6.4f}",
            file=out,
        )
    lbp = fg.loopy_belief_propagation()
    print(
        f"       loopy BP, last query:    {lbp.marginal('tub')[1]:6.4f} "
        f"{lbp.marginal('lung')[1]:6.4f} {lbp.marginal('bronc')[1]:6.4f}"
        f"  ({lbp.n_iter} sweeps)",
        file=out,
    )

    n, K = 100_000, 10
    rng = np.random.default_rng(0)
    chain = FactorGraph([K] * n)
    chain.add_factors(np.arange(n)[:, None], rng.random((n, K)) + 0.05)
    idx = np.arange(n)
    chain.add_factors(
        np.stack([idx[:-1], idx[1:]], 1),
        np.broadcast_to(np.eye(K) * 4 + 1, (n - 1, K, K)),
    )
    m, t_map = timed(chain.max_sum, repeat=1)
    r, t_sp = timed(chain.sum_product, repeat=1)
    print(
        f"   chain of {n} variables, {K} states: ln Z = {r.log_z:.6f} "
        f"(sum-product {t_sp * 1e3:.0f} ms),",
        file=out,
    )
    print(
        f"     MAP by max-sum ({t_map * 1e3:.0f} ms): ln p(x_MAP) = {m.log_prob:.3f}, "
        f"first states {m.states[:12].tolist()}",
        file=out,
    )

    H = W = 128
    yy, xx = np.mgrid[:H, :W]
    clean = (((xx - 64) ** 2 + (yy - 64) ** 2 < 40**2) ^ (np.abs(xx - yy) < 8)).astype(
        int
    )
    noisy = np.where(rng.random((H, W)) < 0.15, 1 - clean, clean)
    h = 0.5 * np.log(0.85 / 0.15)  # evidence of each pixel: ln(0.85/0.15) / 2 per side
    mrf = PairwiseMRF.potts(np.where(np.eye(2)[noisy] > 0, h, -h), 1.0)
    print(
        f"   de-noising a {H}x{W} binary image (15% pixels flipped), Ising prior:",
        file=out,
    )
    print(f"     pixel error before: {(noisy != clean).mean():.4f}", file=out)
    labels = {}
    for method, damping in (("sum", 0.0), ("max", 0.5)):
        res, t = timed(
            mrf.loopy_belief_propagation, method=method, damping=damping, repeat=1
        )
        labels[method] = res.labels
        print(
            f"     after loopy {method}-product (damping {damping}): "
            f"{(res.labels != clean).mean():.4f} "
            f"({res.n_iter} sweeps, converged={res.converged}, {t * 1e3:.0f} ms)",
            file=out,
        )
    if plot_dir is not None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
        images = (noisy, labels["sum"], clean)
        titles = ("noisy (15% flipped)", "loopy sum-product", "truth")
        for ax, img, title in zip(axes, images, titles, strict=True):
            ax.imshow(img, cmap="gray_r", interpolation="nearest")
            ax.set_title(title)
            ax.axis("off")
        fig.tight_layout()
        save_figure(fig, plot_dir, "graphical_denoising", out)
