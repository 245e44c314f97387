"""Collapsed Gibbs sampling for LDA: sparse buckets and partitioned parallel sweeps.

**Sampler.** Every token is resampled from ``p(z_i = k | z_-i, w) ~ (n_kw + eta)
(n_dk + alpha) / (n_k + V eta)`` (Griffiths & Steyvers 2004, eq. 5), the same model and
the same ``log p(w, z)`` for both samplers:

- ``"dense"``: the O(K) cumulative-sum draw, document by document (with ``P = 1``
  the plain serial sweep of G&S), its masses summed in four float32 lanes
  (``_kernels/_lda_draw.h``);
- ``"sparse"``: an exact sparse draw, word by word (the tokens of a block sorted by
  word, then document), by one of two splits of the same weight:

  * F+LDA (Yu et al. 2015): ``n_dk F_k + alpha F_k`` with
    ``F_k = (n_kw + eta) / (n_k + V eta)`` kept in a sum tree (F+tree) over the K
    topics, built once per run of a word's tokens (O(K)) and updated at the two
    topics a token leaves and joins (O(log K)): O(K_d + log K) per token;
  * SparseLDA (Yao, Mimno & McCallum 2009): a smoothing bucket
    ``s_k = alpha eta / (n_k + V eta)`` with a cached total, a document bucket
    ``r_k = n_dk eta / (n_k + V eta)`` over the document's topics and a word bucket
    ``q_k = n_kw (n_dk + alpha) / (n_k + V eta)`` over the word's topics:
    O(K_d + K_w) per token, no set-up, for words with few tokens in the block.

  The tree is used when the run's tokens times the word's nonzero topics reach
  ``TREE_WORK_PER_TOPIC * K`` (the bucket walk would cost more than the build).
  Why these and not alias tables with Metropolis-Hastings (LightLDA, WarpLDA): every
  step is an exact Gibbs step from G&S eq. 5, so the chain, its stationary
  distribution and the tests are the dense sampler's (no stale proposals, no
  acceptance rate to tune), and with Zipf-like vocabularies the frequent words, which
  hold most tokens and most topics (K_w near K, where SparseLDA alone degrades to
  O(K)), get the O(log K) tree while the long tail of rare words keeps the
  set-up-free buckets;
- ``"auto"``: sparse for ``K >= SPARSE_MIN_K`` (the measured crossover), dense below.

**Parallel sweeps.** tomotopy's PARTITION scheme (``ParallelScheme.PARTITION``, the
diagonal document x vocabulary partitioning of Yan, Xu & Qi 2009) rather than AD-LDA
(Newman et al. 2009): documents are cut
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
``P`` comes from the corpus size (:func:`default_partitions`: 8 from 2**20 tokens), so
each of two threads runs several blocks per sub-step and one block that runs long
(or a thread the OS preempts) delays the sub-step by a fraction of a block.

**Partitions stay on their thread.** Thread ``i`` of ``t`` runs the document
partitions of its own contiguous share first (``run_blocks(..., shares=True)``), the
same ones every sub-step, and helps another thread from the far end of that one's
share when done. A partition's document-topic rows and topic totals then stay in one
core's cache, and a vocabulary part, which moves from partition ``p`` to ``p - 1``
from one sub-step to the next, changes thread only at the shares' edges (``t`` of the
``P`` parts per sub-step). With the threads taking blocks from a shared counter,
largest first, each sub-step handed most rows to the other core, and two threads
spent 28-46% more CPU per sweep than one thread on the same tokens (3-18% by
shares). Measured on the synthetic bench corpus at K = 100, dense, the schedules
alternating in one process (10 rounds of 3 sweeps, minimum / median wall per
sweep): one thread 150.7 / 186.2 ms, two threads from a shared counter
121.6 / 152.7 ms, two threads by shares 82.1 / 119.0 ms (a second run: 168.9 / 190.2,
116.3 / 141.8, 95.0 / 117.6). Two independent chains, one per thread, cost as much
CPU per sweep as the two threads by shares. At K = 20 the two schedules were within
5%, and the sparse kernel at K = 300 and 1000 (V x K counts far beyond the caches)
within the noise.

**Two blocks per thread (dense).** The blocks of a sub-step are independent (own rows,
own totals, own stream), so the dense kernel sweeps them two at a time, one token of
each in turn: each token's draw waits on the counts the previous token of its block
left, and the other block's token fills that wait; the two draws' running sums are
computed in one loop. The result is the same bits as one block at a time. Measured on
the synthetic bench corpus at K = 20, one thread, runs alternating: 88 ms per sweep
against 95-100 ms one block at a time (minimum of 7), 76 ms with the one loop. The
same interleaving of the sparse kernel was slower at K = 100 (217 ms against
177-193 ms; two words' F+trees and document rows in cache at once), so it runs one
block at a time. Four dense blocks at a time (one loop over four chains' running
sums, same bits) were slower than two: 108 against 88 ms at K = 20, 189 against 173
ms at K = 100 (minimum of 12 sweeps in alternating processes).

References
----------
T. L. Griffiths, M. Steyvers, "Finding scientific topics", PNAS 101, 2004.
L. Yao, D. Mimno, A. McCallum, "Efficient methods for topic model inference on
streaming document collections", KDD 2009.
H.-F. Yu, C.-J. Hsieh, H. Yun, S. V. N. Vishwanathan, I. S. Dhillon, "A scalable
asynchronous distributed algorithm for topic modeling", WWW 2015 (F+LDA).
F. Yan, N. Xu, Y. Qi, "Parallel inference for latent Dirichlet allocation on graphics
processing units", NIPS 2009.
D. Newman, A. Asuncion, P. Smyth, M. Welling, "Distributed algorithms for topic
models", JMLR 10, 2009.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fastml._kernels import _lda
from fastml._parallel import run_blocks
from fastml._validation import spawn_generators

__all__ = ["SPARSE_MIN_K", "GibbsSampler", "default_partitions", "use_sparse"]

# Below this K the dense O(K) draw is as fast as the sparse one. Measured one thread,
# minimum sweep (dense / sparse, ms): synthetic bench corpus K = 100 153 / 180-196,
# K = 150 227 / 220; Reuters K = 64 5.1 / 5.1, K = 100 6.3 / 6.2, K = 150 8.4 / 6.8.
SPARSE_MIN_K = 128
# A word's F+tree (O(K) to build) is used for a run of its tokens when tokens x the
# word's nonzero topics (the bucket walk's work) reach this many times K.
TREE_WORK_PER_TOPIC = 2.0

_SAMPLERS = ("auto", "dense", "sparse")


def default_partitions(n_tokens: int) -> int:
    """``n_partitions=None``: the largest of 1, 4 and 8 whose ``P * P`` blocks hold at
    least 2**14 tokens on average, i.e. 1 below 2**18 tokens, 4 below 2**20, then 8
    (depends on the corpus only, never on the thread count).

    Below 2**18 a sweep takes a few milliseconds and the per-block hand-offs (16 per
    sweep at P = 4) cost more than a second thread saves (measured on Reuters, 84,010
    tokens: P = 4 sweeps 5% slower than P = 1 on one thread). On the synthetic bench
    corpus (2.2e6 tokens), one thread's CPU time per sweep at P = 8 is 0.93-1.02x that
    at P = 4 for K = 20-1000 (the blocks' rows stay in cache), and a sub-step's 8
    blocks let two threads even out a block that runs long; P = 16 (blocks of 8,600
    tokens) costs 4-9% more CPU at K = 20 and 1000.
    """
    if n_tokens >= 2**20:
        return 8
    return 4 if n_tokens >= 2**18 else 1


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
        self,
        words,
        doc_ptr,
        nd,
        V,
        K,
        alpha,
        eta,
        rng,
        *,
        sparse,
        n_partitions,
        tree_work=None,
    ):
        D = nd.shape[0]
        N = words.shape[0]
        P = n_partitions
        self.K, self.P, self.alpha, self.eta, self.sparse = K, P, alpha, eta, sparse
        self.tree_work = TREE_WORK_PER_TOPIC * K if tree_work is None else tree_work
        self.nd = nd.astype(np.intp)
        z = rng.integers(K, size=N).astype(np.intc)
        doc_of = np.repeat(np.arange(D), nd)
        self.ndk = (
            np.bincount(doc_of * K + z, minlength=D * K).astype(np.intc).reshape(D, K)
        )
        self.nk = np.bincount(z, minlength=K).astype(np.intc)
        self.streams = [g.bit_generator for g in spawn_generators(rng, P)]
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
        # Internal word ids: each word part's words are consecutive rows of the
        # topic-word counts, so threads sweeping different parts never write to the
        # same cache line (interleaved rows halved each core's speed at K = 20).
        # ``word_id[i]`` is the original id of internal word i.
        self.word_id = np.lexsort((np.arange(V), word_part))
        internal = np.empty(V, dtype=words.dtype)
        internal[self.word_id] = np.arange(V)
        words = internal[words]
        word_part = word_part[self.word_id]
        freq = freq[self.word_id]
        nwk = np.bincount(words.astype(np.int64) * K + z, minlength=V * K)
        self.nwk = nwk.astype(np.intc).reshape(V, K)
        # tokens grouped by block (doc part, word part); inside a block by document
        # (dense: doc-major sweep) or by word, then document (sparse: word-major)
        block = doc_part[doc_of] * P + word_part[words]
        if sparse:
            self.perm = np.lexsort((doc_of, words, block))
            key = words[self.perm]
        else:
            self.perm = np.argsort(block, kind="stable")
            key = doc_of[self.perm]
        self.words = np.ascontiguousarray(words[self.perm])
        self.docs = np.ascontiguousarray(doc_of[self.perm], dtype=np.intp)
        self.z = np.ascontiguousarray(z[self.perm])
        tok_ptr = np.zeros(P * P + 1, dtype=np.intp)
        np.cumsum(np.bincount(block, minlength=P * P), out=tok_ptr[1:])
        cuts = np.concatenate(
            [[0], np.flatnonzero(np.diff(key)) + 1, tok_ptr[1:-1][tok_ptr[1:-1] < N]]
        )
        starts = np.unique(cuts)
        self.seg_ptr = np.append(starts, N).astype(np.intp)
        self.seg_key = np.ascontiguousarray(key[starts], dtype=np.intp)
        self.block_seg = np.searchsorted(starts, tok_ptr).astype(np.intp)
        if sparse:
            wl = _topic_lists(self.nwk, np.minimum(freq, K))
            dl = _topic_lists(self.ndk, np.minimum(nd, K))
            self.word_topics, self.word_ptr, self.word_nnz = wl
            self.doc_topics, self.doc_lptr, self.doc_nnz = dl
        # per partition: scratch and a copy of the topic totals (a partition runs one
        # block per sub-step); per block: its segments (None when empty)
        # Rows padded by a cache line (64 bytes) so no two partitions' rows share one.
        n_scratch = _lda.gibbs_scratch_size(K, sparse)
        self._scratch = np.empty((P, n_scratch + 8))[:, :n_scratch]
        self._nk_part = np.empty((P, K + 16), dtype=np.intc)[:, :K]
        self._blocks = [
            (self.seg_key[a:e], self.seg_ptr[a : e + 1]) if e > a else None
            for a, e in zip(self.block_seg[:-1], self.block_seg[1:], strict=True)
        ]

    def _sweep_blocks(self, j: int, parts: list[int], cancel: np.ndarray) -> None:
        """Sweep the blocks of partitions ``parts`` in sub-step ``j`` (sparse: one
        block; dense: one, or two interleaved by the kernel), each against its own
        copy of the totals."""
        P = self.P
        for p in parts:
            self._nk_part[p] = self.nk
        if self.sparse:
            (p,) = parts
            seg_key, seg_ptr = self._blocks[p * P + (p + j) % P]
            _lda.gibbs_sweep_block_sparse(
                self.streams[p], self.docs, self.z, seg_key, seg_ptr, self.ndk,
                self.nwk, self._nk_part[p], self.alpha, self.eta,
                float(self.tree_work), self.word_topics, self.word_ptr,
                self.word_nnz, self.doc_topics, self.doc_lptr, self.doc_nnz,
                self._scratch[p], cancel,
            )  # fmt: skip
            return
        blocks = [self._blocks[p * P + (p + j) % P] for p in parts]
        _lda.gibbs_sweep_blocks(
            [self.streams[p] for p in parts], self.words, self.z,
            [blk[0] for blk in blocks], [blk[1] for blk in blocks], self.ndk,
            self.nwk, [self._nk_part[p] for p in parts], self.alpha, self.eta,
            [self._scratch[p] for p in parts], cancel,
        )  # fmt: skip

    def sweep(self, n_jobs: int | None) -> None:
        """One sweep: ``P`` sub-steps of ``P`` blocks each, run by ``run_blocks``.

        A sub-step's nonempty blocks, in partition order, are taken in pairs by the dense
        kernel (one thread sweeps the two interleaved) and one at a time by the sparse
        one. Every block sweeps against the totals at the start of its sub-step, with
        its own stream, so how the blocks are grouped and which thread runs them does
        not change the result.

        On KeyboardInterrupt (or an error in a block) the sub-step's topic totals
        are not merged, so the chain is left inconsistent: discard it (the estimator
        sets no fitted attribute from an interrupted chain).
        """
        P = self.P
        group = 1 if self.sparse else 2
        for j in range(P):
            parts = [p for p in range(P) if self._blocks[p * P + (p + j) % P]]
            groups = [parts[q : q + group] for q in range(0, len(parts), group)]

            def run(i: int, cancel: np.ndarray, j: int = j, groups=groups) -> None:
                self._sweep_blocks(j, groups[i], cancel)

            run_blocks(run, len(groups), n_jobs, shares=True)
            nk0 = self.nk.copy()
            for p in sorted(parts):  # integer sums: exact in any order
                self.nk += self._nk_part[p] - nk0

    def loglik(self) -> float:
        """``log p(w, z)`` (Griffiths & Steyvers eqs. 2-3)."""
        return _lda.gibbs_loglik(
            self.ndk, self.nd, self.nwk, self.nk, self.alpha, self.eta
        )

    def topic_word_counts(self) -> np.ndarray:
        """``n_wk`` (V, K) with the rows in the original word order."""
        out = np.empty_like(self.nwk)
        out[self.word_id] = self.nwk
        return out

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
