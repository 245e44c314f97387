"""``fastml demo hmm``: the dishonest casino, a fair and a loaded die (PRML sec. 13.2)."""

from __future__ import annotations

import time
from typing import TextIO

import numpy as np

from fastml._demo import fmt, save_figure, timed
from fastml.hmm import CategoricalHMM


def _segments(states: np.ndarray) -> str:
    return "".join("FL"[s] for s in states)


def demo(out: TextIO, plot_dir=None) -> None:
    truth = CategoricalHMM(2)
    truth.startprob_ = np.array([0.5, 0.5])
    truth.transmat_ = np.array([[0.95, 0.05], [0.10, 0.90]])
    truth.emissionprob_ = np.array([[1 / 6] * 6, [0.1] * 5 + [0.5]])
    n_seq, length = 20, 5_000
    rolls, states = truth.sample(n_seq * length, random_state=0)
    lengths = [length] * n_seq
    print(
        f"   {n_seq} sequences x {length} rolls; fair die (F) and a die loaded on 6 (L)",
        file=out,
    )
    model = CategoricalHMM(2, n_iter=200, tol=1e-4, random_state=1)
    t0 = time.perf_counter()
    model.fit(rolls, lengths)
    t_fit = time.perf_counter() - t0
    loaded = int(np.argmax(model.emissionprob_[:, 5]))
    order = [1 - loaded, loaded]
    print(
        f"   Baum-Welch: {model.monitor_.iter} iterations in {t_fit:.2f} s "
        f"({t_fit / model.monitor_.iter * 1e3:.1f} ms each), "
        f"log-likelihood {model.monitor_.history[0]:.1f} -> {model.monitor_.history[-1]:.1f}",
        file=out,
    )
    print("   learned transmat (F, L)      true", file=out)
    learned_t = model.transmat_[np.ix_(order, order)]
    for i in range(2):
        print(
            f"     {fmt(learned_t[i], 3)}      {fmt(truth.transmat_[i], 3)}", file=out
        )
    print(
        f"   learned P(6 | L) = {model.emissionprob_[loaded, 5]:.3f} (true 0.5), "
        f"P(6 | F) = {model.emissionprob_[1 - loaded, 5]:.3f} (true 0.167)",
        file=out,
    )
    (_, path), t_vit = timed(model.decode, rolls, lengths)
    path = np.where(path == loaded, 1, 0)
    acc = float((path == states).mean())
    print(
        f"   Viterbi over {len(rolls):,} rolls: {t_vit * 1e3:.1f} ms, "
        f"{acc:.1%} of states recovered",
        file=out,
    )
    post, t_post = timed(model.predict_proba, rolls, lengths)
    print(f"   posteriors (forward-backward): {t_post * 1e3:.1f} ms", file=out)
    print("   first 120 rolls:", file=out)
    show = slice(0, 120)
    print("     rolls   " + "".join(str(r + 1) for r in rolls[show, 0]), file=out)
    print("     truth   " + _segments(states[show]), file=out)
    print("     viterbi " + _segments(path[show]), file=out)
    if plot_dir is not None:
        import matplotlib.pyplot as plt

        n = np.arange(400)
        fig, ax = plt.subplots(figsize=(9, 3.2))
        ax.fill_between(
            n, states[:400], step="mid", color="0.85", label="truth: loaded"
        )
        ax.plot(n, post[:400, loaded], color="C0", label="p(loaded | rolls)")
        ax.step(
            n,
            0.5 * path[:400] + 0.25,
            where="mid",
            color="C3",
            lw=1,
            label="Viterbi (loaded high)",
        )
        ax.set_xlabel("roll")
        ax.set_ylim(-0.05, 1.05)
        ax.legend(fontsize=8, loc="upper right")
        ax.set_title("Dishonest casino: posterior and Viterbi path vs the truth")
        fig.tight_layout()
        save_figure(fig, plot_dir, "hmm_casino", out)
