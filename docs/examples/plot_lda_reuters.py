"""
Topics of the Reuters corpus
============================

The ``lda`` package ships 395 Reuters news stories as a document-term count matrix
(vocabulary of 4,258 words). We fit :class:`~fastml.lda.LatentDirichletAllocation` with
8 topics by collapsed Gibbs sampling (Griffiths & Steyvers 2004) and show each topic's
eight most probable words as bars of :math:`\\hat\\beta_{kw}`, with the joint
log-likelihood :math:`\\ln p(w, z)` over the sweeps.
"""

import lda.datasets
import matplotlib.pyplot as plt
import numpy as np

from fastml.lda import LatentDirichletAllocation

X = lda.datasets.load_reuters()
vocab = lda.datasets.load_reuters_vocab()
print("documents x words:", X.shape, " tokens:", X.sum())

model = LatentDirichletAllocation(
    8, method="gibbs", max_iter=300, evaluate_every=10, random_state=0
)
model.fit(X, vocabulary=vocab)
for k, words in enumerate(model.top_words(n=8)):
    print(f"topic {k}:", " ".join(words))

# %%
# Top words per topic
# -------------------

beta = model.topic_word_
fig, axes = plt.subplots(2, 4, figsize=(10, 5.5))
for k, ax in enumerate(axes.ravel()):
    top = np.argsort(beta[k])[::-1][:8]
    ax.barh(range(8)[::-1], beta[k, top], color=f"C{k}")
    ax.set_yticks(range(8)[::-1], [vocab[i] for i in top], fontsize=8)
    ax.set_title(f"topic {k}", fontsize=9)
    ax.tick_params(axis="x", labelsize=7)
fig.suptitle("Reuters, 8 topics by collapsed Gibbs sampling: p(word | topic)")
fig.tight_layout()

# %%
# The sampler's progress
# ----------------------

fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(10 * np.arange(1, len(model.loglikelihoods_) + 1), model.loglikelihoods_)
ax.set_xlabel("sweep")
ax.set_ylabel("ln p(w, z)")
fig.tight_layout()
