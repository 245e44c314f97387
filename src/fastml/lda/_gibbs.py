"""Collapsed Gibbs sampling for LDA: sparse buckets and partitioned parallel sweeps.

**Sampler.** Every token is resampled from ``p(z_i = k | z_-i, w) ~ (n_kw + eta)
(n_dk + alpha) / (n_k + V eta)`` (Griffiths & Steyvers 2004, eq. 5), the same model and
the same ``log p(w, z)`` for both samplers:

- ``"dense"``: the O(K) cumulative-sum draw of the original sweep;
- ``"sparse"``: SparseLDA (Yao, Mimno & McCallum 2009): the weight splits into a
  smoothing bucket ``s_k = alpha eta / (n_k + V eta)`` whose total is cached, a document
  bucket ``r_k = n_dk eta / (n_k + V eta)`` over the document's topics, and a word
  bucket ``q_k = n_kw (n_dk + alpha) / (n_k + V eta)`` over the word's topics, so a draw
  costs O(K_d + K_w) instead of O(K). SparseLDA rather than alias tables with
  Metropolis-Hastings (LightLDA, WarpLDA): it draws from the exact conditional (each
  step is a Gibbs step, so the chain, its stationary distribution and the tests are
  the dense sampler's), it needs no stale alias tables rebuilt per word, and on corpora
  of typical document length (tens to hundreds of tokens) K_d and K_w stay far below
  K = 100-1000, where the bucket walk is a handful of cache-friendly operations.
- ``"auto"``: sparse for ``K >= SPARSE_MIN_K`` (the measured crossover), dense below.

**Parallel sweeps.** tomotopy's PARTITION scheme (Yu et al. 2015, "A scalable
asynchronous distributed algorithm for topic modeling", as in tomotopy's
``ParallelScheme.PARTITION``) rather than AD-LDA (Newman et al. 2009): documents are cut
into ``P`` partitions (contiguous, balanced by tokens) and the vocabulary into ``P``
partitions (balanced by word frequency); a sweep is ``P`` sub-steps, and in sub-step
``j`` partition ``p`` resamples its documents' tokens whose word lies in vocabulary
part ``(p + j) mod P``. Blocks of a sub-step touch disjoint rows of the document-topic
and topic-word counts, so they update the shared counts in place with no copy of the
V x K topic-word matrix (AD-LDA copies it per partition per sweep, hundreds of MB at
K = 1000); only the K topic totals ``n_k`` are per-block copies, merged after each
sub-step in partition order (integer sums, so exact). Each document partition draws
from its own stream spawned from the seed, so the result depends on the seed and ``P``
only, never on the number of threads. With ``P = 1`` this is the serial sampler.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fastml._kernels import _lda
from fastml._parallel import run_blocks

__all__ = ["SPARSE_MIN_K", "GibbsSampler", "use_sparse"]

# Below this K the dense O(K) draw is as fast as the buckets (measured on Reuters and the
# synthetic bench corpus, one thread).
SPARSE_MIN_K = 64

_SAMPLERS = ("auto", "dense", "sparse")


def use_sparse(sampler: str, K: int) -> bool:
    """Whether ``sampler`` (``"auto"``, ``"dense"`` or ``"sparse"``) means SparseLDA
    at ``K`` topics. Raises ValueError naming ``sampler`` otherwise."""
    if not isinstance(sampler, str) or sampler not in _SAMPLERS:
        raise ValueError(f"sampler must be one of {_SAMPLERS}, got {sampler!r}")
    return sampler == "sparse" or (sampler == "auto" and K >= SPARSE_MIN_K)


def _topic_lists(counts, capacity):
    """Each row's topics with nonzero count, packed row after row with the given
    capacities: (topics int32, row offsets intp, per-row count int32)."""
    n_rows = counts.shape[0]
    ptr = np.zeros(n_rows + 1, dtype=np.intp)
    np.cumsum(capacity, out=ptr[1:])
    rows, ks = np.nonzero(counts)
    nnz = np.bincount(rows, minlength=n_rows)
    first = np.cumsum(nnz) - nnz
    topics = np.zeros(max(int(ptr[-1]), 1), dtype=np.intc)
    topics[ptr[rows] + np.arange(rows.shape[0]) - first[rows]] = ks
    return topics, ptr, nnz.astype(np.intc)


class GibbsSampler:
    """State of a collapsed Gibbs chain over a corpus cut into ``n_partitions``
    partitions (see the module docstring).

    Parameters
    ----------
    words, doc_ptr, nd : ndarray
        Token word ids (int32), per-document token offsets and lengths (``_tokens``).
    V, K : int
        Vocabulary size and number of topics.
    alpha, eta : float
        Symmetric Dirichlet priors.
    rng : numpy.random.Generator
        Draws the initial topics (uniform, in token order), then spawns one stream per
        document partition.
    sparse : bool
        SparseLDA buckets (True) or the dense draw.
    n_partitions : int
        ``P >= 1``; the result depends on it (not on ``n_jobs``).
    """

    def __init__(
        self, words, doc_ptr, nd, V, K, alpha, eta, rng, *, sparse, n_partitions
    ):
        D = nd.shape[0]
        N = words.shape[0]
        P = n_partitions
        self.K, self.P, self.alpha, self.eta, self.sparse = K, P, alpha, eta, sparse
        self.nd = nd.astype(np.intp)
        z = rng.integers(K, size=N).astype(np.intc)
        doc_of = np.repeat(np.arange(D), nd)
        self.ndk = (
            np.bincount(doc_of * K + z, minlength=D * K).astype(np.intc).reshape(D, K)
        )
        nwk = np.bincount(words.astype(np.int64) * K + z, minlength=V * K)
        self.nwk = nwk.astype(np.intc).reshape(V, K)
        self.nk = np.bincount(z, minlength=K).astype(np.intc)
        self.streams = [g.bit_generator for g in rng.spawn(P)]
        # documents: contiguous partitions balanced by tokens (by each one's midpoint)
        mid = (doc_ptr[:-1] + nd / 2.0) * P / max(N, 1)
        doc_part = np.minimum(mid.astype(np.intp), P - 1)
        # words: by decreasing frequency, dealt to the parts back and forth (snake)
        freq = np.bincount(words, minlength=V)
        order = np.argsort(-freq, kind="stable")
        rank = np.empty(V, dtype=np.intp)
        rank[order] = np.arange(V)
        cycle, pos = np.divmod(rank, P)
        word_part = np.where(cycle % 2 == 0, pos, P - 1 - pos)
        # tokens grouped by block (doc part, word part), by document inside a block
        block = doc_part[doc_of] * P + word_part[words]
        self.perm = np.argsort(block, kind="stable")
        self.words = np.ascontiguousarray(words[self.perm])
        self.z = np.ascontiguousarray(z[self.perm])
        doc_p = doc_of[self.perm]
        tok_ptr = np.zeros(P * P + 1, dtype=np.intp)
        np.cumsum(np.bincount(block, minlength=P * P), out=tok_ptr[1:])
        cuts = np.concatenate(
            [[0], np.flatnonzero(np.diff(doc_p)) + 1, tok_ptr[1:-1][tok_ptr[1:-1] < N]]
        )
        starts = np.unique(cuts) if N else np.zeros(0, dtype=np.intp)
        self.seg_ptr = np.append(starts, N).astype(np.intp)
        self.seg_doc = np.ascontiguousarray(doc_p[starts], dtype=np.intp)
        self.block_seg = np.searchsorted(starts, tok_ptr).astype(np.intp)
        if sparse:
            wl = _topic_lists(self.nwk, np.minimum(freq, K))
            dl = _topic_lists(self.ndk, np.minimum(nd, K))
        else:
            empty = (np.zeros(1, np.intc), np.zeros(1, np.intp), np.zeros(1, np.intc))
            wl = dl = empty
        self.word_topics, self.word_ptr, self.word_nnz = wl
        self.doc_topics, self.doc_lptr, self.doc_nnz = dl

    def sweep(self, n_jobs: int | None) -> None:
        """One sweep: ``P`` sub-steps of ``P`` blocks each, run by ``run_blocks``."""
        P, K = self.P, self.K
        for j in range(P):
            nk0 = self.nk.copy()

            def block(p: int, cancel: np.ndarray, j: int = j, nk0=nk0):
                b = p * P + (p + j) % P
                a, e = int(self.block_seg[b]), int(self.block_seg[b + 1])
                if a == e:
                    return None
                nk_b = nk0.copy()
                _lda.gibbs_sweep_block(
                    self.streams[p],
                    self.words,
                    self.z,
                    self.seg_doc[a:e],
                    self.seg_ptr[a : e + 1],
                    self.ndk,
                    self.nwk,
                    nk_b,
                    self.alpha,
                    self.eta,
                    self.sparse,
                    self.word_topics,
                    self.word_ptr,
                    self.word_nnz,
                    self.doc_topics,
                    self.doc_lptr,
                    self.doc_nnz,
                    np.empty(3 * K),
                    cancel,
                )
                return nk_b - nk0

            for delta in run_blocks(block, P, n_jobs):  # partition order
                if delta is not None:
                    self.nk += delta

    def loglik(self) -> float:
        """``log p(w, z)`` (Griffiths & Steyvers eqs. 2-3)."""
        return _lda.gibbs_loglik(
            self.ndk, self.nd, self.nwk, self.nk, self.alpha, self.eta
        )

    def topics(self) -> np.ndarray:
        """Every token's topic in the original token order."""
        z = np.empty_like(self.z)
        z[self.perm] = self.z
        return z

    def run(
        self,
        n_sweeps: int,
        n_jobs: int | None,
        evaluate_every: int,
        report: Callable[[int, float, int], None] | None = None,
    ) -> list[float]:
        """``n_sweeps`` sweeps; ``log p(w, z)`` every ``evaluate_every`` sweeps (<= 0:
        only after the last) passed to ``report(sweep, loglik, sweeps_since)``."""
        lls = []
        since = 0
        for it in range(n_sweeps):
            self.sweep(n_jobs)
            since += 1
            if it == n_sweeps - 1 or (
                evaluate_every > 0 and (it + 1) % evaluate_every == 0
            ):
                ll = self.loglik()
                lls.append(ll)
                if report is not None:
                    report(it + 1, ll, since)
                since = 0
        return lls
