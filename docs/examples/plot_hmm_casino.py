"""
The occasionally dishonest casino
=================================

A casino switches between a fair die and one loaded on six (PRML sec. 13.2; Durbin et
al. 1998). We sample 20 sequences of rolls from the true model, fit a
:class:`~fastml.hmm.CategoricalHMM` by Baum-Welch from a random start, and compare, on
the first 300 rolls of one sequence, the posterior probability of the loaded die
(forward-backward) and the Viterbi path with the truth.
"""

import matplotlib.pyplot as plt
import numpy as np

from fastml.hmm import CategoricalHMM

truth = CategoricalHMM(2)
truth.startprob_ = np.array([0.5, 0.5])
truth.transmat_ = np.array([[0.95, 0.05], [0.10, 0.90]])
truth.emissionprob_ = np.array([[1 / 6] * 6, [0.1] * 5 + [0.5]])
n_seq, length = 20, 2_000
rolls, states = truth.sample(n_seq * length, random_state=0)

model = CategoricalHMM(2, n_iter=200, tol=1e-6, random_state=1)
model.fit(rolls, [length] * n_seq)
loaded = int(np.argmax(model.emissionprob_[:, 5]))  # the state that likes sixes
print("learned P(6 | loaded) =", model.emissionprob_[loaded, 5].round(3), "(true 0.5)")
print("learned transitions (fair, loaded):")
order = [1 - loaded, loaded]
print(model.transmat_[np.ix_(order, order)].round(3))

# %%
# Posterior and Viterbi path on the first sequence
# ------------------------------------------------
# ``predict_proba`` gives :math:`p(z_n = \text{loaded} \mid X)`; ``decode`` the most
# probable state sequence.

x, z = rolls[:length], states[:length]
post = model.predict_proba(x)[:, loaded]
_, path = model.decode(x)
path = (path == loaded).astype(int)
print(f"Viterbi agrees with the truth on {np.mean(path == z):.1%} of the rolls")

n = np.arange(300)
fig, axes = plt.subplots(2, 1, figsize=(9, 4.5), sharex=True)
axes[0].fill_between(n, z[:300], step="mid", color="0.85", label="truth: loaded")
axes[0].plot(n, post[:300], color="C0", label="p(loaded | all rolls)")
axes[0].set_ylabel("probability")
axes[0].legend(loc="upper right", fontsize=8)
axes[1].fill_between(n, z[:300], step="mid", color="0.85", label="truth")
axes[1].step(n, path[:300], where="mid", color="C3", label="Viterbi")
axes[1].scatter(
    n, x[:300, 0] / 5, s=4, color="k", alpha=0.4, label="roll (1..6, scaled)"
)
axes[1].set_yticks([0, 1], ["fair", "loaded"])
axes[1].set_xlabel("roll")
axes[1].legend(loc="upper right", fontsize=8)
fig.suptitle("Dishonest casino: posterior and Viterbi path vs the truth")
fig.tight_layout()
