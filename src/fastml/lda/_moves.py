"""Ways out of the local optima of batch variational LDA: document seeds
(``init="documents"``, :func:`seed_topics`) and split-and-delete moves
(``split_merge=True``, :func:`propose`).

Batch VB from a random start stops at a local optimum of the ELBO in which some
topics each hold two true topics (they carry about twice the usage of the others,
``N_k = sum_d (gamma_dk - alpha)``) while others hold a few stray words (the least
used). Coordinate ascent cannot leave such a point: moving one topic's words to another
lowers the ELBO on the way. A *round* of moves jumps over the barrier, in the manner of
split-and-merge EM (Ueda, Nakano, Ghahramani & Hinton 2000) and of the birth and merge
moves of memoized VB (Hughes & Sudderth 2013):

1. **Candidates**: the ``2 M`` most used topics (``M = max(1, K // 10)``).
2. **Split test**: a candidate's share of every count,
   ``n_dw theta_dk beta_kw / sum_j theta_dj beta_jw`` (point estimates from gamma
   and lambda), gives one vector per document that uses the topic for at least
   :data:`_MIN_SHARE` of its words. Spherical 2-means (k-means++ start, best of
   :data:`_RESTARTS`) clusters these vectors; the topic is split if it has at least
   :data:`_MIN_DOCS` such documents and two centroids raise their usage-weighted
   mean cosine to the documents by at least :data:`_MIN_GAIN` over one centroid (two
   true topics in one give 0.04-0.08 on the synthetic corpus of ``bench/``; one true
   topic 0.01-0.03).
3. **Move**: each split topic (up to ``M``, in order of usage) keeps the share of the
   documents of one cluster; the share of the other cluster's documents replaces the
   least used topic, whose words the next E-step gives back to the others.

The caller runs :data:`ROUND_ITERATIONS` more passes and keeps the round only if the
ELBO then exceeds the ELBO before it (otherwise it restores the topics from before the
round and proposes no more rounds).

References
----------
N. Ueda, R. Nakano, Z. Ghahramani, G. E. Hinton, "SMEM algorithm for mixture models",
Neural Computation 12, 2000.
M. C. Hughes, E. B. Sudderth, "Memoized online variational inference for Dirichlet
process mixture models", NIPS 2013.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

# Passes between a round of moves and its ELBO test; the first round comes after
# FIRST_ROUND passes (the topics' usage has settled by then).
ROUND_ITERATIONS = 3
FIRST_ROUND = 10
# init="documents": weight of a seed document's counts on top of the Gamma(100, 1/100)
# start (every entry about 1).
SEED_WEIGHT = 10.0
_MIN_SHARE = 0.25
_MIN_DOCS = 20
_MIN_GAIN = 0.035
_RESTARTS = 3
_LLOYD = 10
_NNZ_CHUNK = 1 << 16


def _count_shares(csr, theta, beta):
    """The row ``d`` and column ``w`` of every non-zero of ``csr`` and its
    ``sum_j theta_dj beta_jw`` (in chunks of :data:`_NNZ_CHUNK` non-zeros, so that
    memory stays O(K x chunk))."""
    rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
    cols = csr.indices
    p = np.empty(csr.nnz)
    for s in range(0, csr.nnz, _NNZ_CHUNK):
        e = min(s + _NNZ_CHUNK, csr.nnz)
        p[s:e] = np.einsum("nk,kn->n", theta[rows[s:e]], beta[:, cols[s:e]])
    return rows, cols, p


def _unit_rows(m):
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    return sparse.diags(1.0 / norms) @ m


def _two_means(unit, weights, rng):
    """Spherical 2-means of the unit rows of ``unit``: the labels of the best of
    :data:`_RESTARTS` k-means++ starts and its gain (usage-weighted mean cosine to the
    nearest of two centroids minus the mean cosine to one)."""
    one = np.asarray(unit.sum(axis=0)).ravel()
    one_cos = unit @ (one / np.linalg.norm(one))
    best_gain, best = -np.inf, None
    n = unit.shape[0]
    for _ in range(_RESTARTS):
        i0 = int(rng.integers(n))
        far = np.maximum(1.0 - (unit @ unit[i0].T).toarray().ravel(), 0.0) ** 2
        i1 = int(rng.choice(n, p=far / far.sum())) if far.sum() > 0 else (i0 + 1) % n
        cent = unit[[i0, i1]].toarray()
        for _ in range(_LLOYD):
            labels = np.asarray(unit @ cent.T).argmax(axis=1)
            cent = np.stack(
                [np.asarray(unit[labels == j].sum(axis=0)).ravel() for j in (0, 1)]
            )
            cent /= np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-300)
        cos = np.asarray(unit @ cent.T)
        labels = cos.argmax(axis=1)
        gain = float(np.average(cos.max(axis=1) - one_cos, weights=weights))
        if gain > best_gain:
            best_gain, best = gain, labels
    return best, best_gain


def seed_topics(csr, lam, rng):
    """``init="documents"``: add ``SEED_WEIGHT`` times the counts of ``K`` documents
    chosen by k-means++ on cosine distance (Arthur & Vassilvitskii 2007: the first
    uniformly, each next one with probability proportional to the squared distance to
    the nearest one chosen) to the random start ``lam`` (K, V), in place."""
    K = lam.shape[0]
    nonempty = np.flatnonzero(np.diff(csr.indptr))
    unit = _unit_rows(csr[nonempty])
    first = int(rng.integers(unit.shape[0]))
    chosen = [first]
    dist = 1.0 - (unit @ unit[first].T).toarray().ravel()
    for _ in range(K - 1):
        w = np.maximum(dist, 0.0) ** 2
        total = w.sum()
        nxt = (
            int(rng.choice(w.size, p=w / total))
            if total > 0
            else int(rng.integers(w.size))
        )
        chosen.append(nxt)
        dist = np.minimum(dist, 1.0 - (unit @ unit[nxt].T).toarray().ravel())
    lam += SEED_WEIGHT * csr[nonempty[chosen]].toarray()
    return lam


def propose(csr, lam, gamma, eta, rng):
    """One round of moves: a copy of ``lam`` (K, V) with the split topics in place, or
    ``None`` when no candidate passes the split test.

    ``gamma`` (n_docs, K) is the E-step's result for the documents of ``csr`` with the
    topics ``lam`` came from; ``rng`` draws the k-means++ starts.
    """
    K, V = lam.shape
    n_moves = max(1, K // 10)
    usage = lam.sum(axis=1) - V * eta
    order = np.argsort(usage, kind="stable")
    theta = gamma / gamma.sum(axis=1, keepdims=True)
    beta = lam / lam.sum(axis=1, keepdims=True)
    rows, cols, p = _count_shares(csr, theta, beta)
    length = np.asarray(csr.sum(axis=1)).ravel()
    splits = []
    for k in order[::-1][: 2 * n_moves]:
        share = csr.data * theta[rows, k] * beta[k, cols] / p
        topic = sparse.csr_matrix((share, csr.indices, csr.indptr), shape=csr.shape)
        mass = np.asarray(topic.sum(axis=1)).ravel()
        docs = np.flatnonzero(mass >= _MIN_SHARE * length)
        if docs.size < _MIN_DOCS:
            continue
        labels, gain = _two_means(_unit_rows(topic[docs]), mass[docs], rng)
        if gain < _MIN_GAIN:
            continue
        side = np.zeros(csr.shape[0], dtype=bool)
        side[docs[labels == 1]] = True
        splits.append((k, topic, side))
        if len(splits) == n_moves:
            break
    if not splits:
        return None
    split = {k for k, _, _ in splits}
    slots = [j for j in order if j not in split]
    new = lam.copy()
    for slot, (k, topic, side) in zip(slots, splits, strict=False):
        new[k] = eta + np.asarray(topic[~side].sum(axis=0)).ravel()
        new[slot] = eta + np.asarray(topic[side].sum(axis=0)).ravel()
    return new
