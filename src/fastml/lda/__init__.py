"""Latent Dirichlet allocation by variational EM or collapsed Gibbs sampling.

One estimator, :class:`LatentDirichletAllocation`, with scikit-learn's interface
(``fit``, ``transform``, ``perplexity``, ``score``, ``components_``) plus the ``lda``
package's attributes (``doc_topic_``, ``topic_word_``, ``loglikelihoods_``):

- ``method="variational"``: Blei, Ng & Jordan (2003), sec. 5.3-5.4, with a
  Dirichlet(eta) prior on the topics and variational parameters ``lambda``
  (``components_``), batch or online (``learning_method``, ``partial_fit``; Hoffman,
  Blei & Bach 2010, scikit-learn's names and update); the per-document E-step is a
  compiled kernel run over threads on fixed document blocks (same bits for every
  ``n_jobs``); the exact ELBO in ``bounds_``; optional Newton-Raphson updates of the
  symmetric priors (Minka 2000; Blei et al. appendix A.4.2).
- ``method="gibbs"``: collapsed Gibbs sampling (Griffiths & Steyvers 2004), a compiled
  sweep drawing from the Generator's bit generator; the joint log-likelihood
  ``log p(w, z)`` (G&S eqs. 2-3) every ``evaluate_every`` sweeps.

Also: ``top_words``, ``word_vectors`` (each word's column of the topic-word matrix,
normalised) and ``most_similar`` (cosine similarity between those vectors).
"""

from fastml.lda._counts import check_counts
from fastml.lda._model import LatentDirichletAllocation

__all__ = ["LatentDirichletAllocation", "check_counts"]
