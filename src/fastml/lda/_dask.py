"""LDA on a ``dask.array.Array`` of counts: variational EM and AD-LDA Gibbs on the workers.

``X`` holds one document per row, chunked along the rows (a chunking of the vocabulary
is undone: every row must be whole on one worker); its chunks are numpy arrays or
scipy.sparse matrices (a dask-backed sparse matrix, e.g.
``da.from_array(csr, chunks=(rows, -1), asarray=False)`` or ``map_blocks`` returning
CSR chunks). Each chunk is checked like in-memory counts (:func:`check_counts`), on its
worker; an error names the chunk. Imported only when a dask array is passed.

**Variational (batch).** Each EM iteration sends ``exp(E[log beta])`` (V x K) to the
workers once (:func:`fastml._parallel.dask_reduce`), runs the in-memory E-step
(:func:`fastml.lda._online.estep`, the compiled ``estep_docs`` kernel) on every chunk
where it lives, and reduces only the V x K statistics, the document ELBO and (with
``optimize_priors``) the sum of ``E[log theta]``, in chunk order; the M-step runs on
the client (:func:`fastml.lda._online.run_passes`, the in-memory loop). The training
E-step starts gamma from Gamma(100, 1/100) draws, as in memory: the client draws each
chunk's rows in turn from ``random_state``'s stream, ships the stream's state at the
start of the chunk (a few hundred bytes) and discards the draws, and the worker draws
them again from that state. So the fit from a given ``random_state`` is the in-memory
fit's, to rounding (the statistics are summed in another order), for any chunking; the
client spends one Gamma draw per document and topic per iteration on it. Online
learning is refused: its mini-batches are sequential updates of ``lambda``, one round
trip to the cluster each.

**Gibbs: AD-LDA** (approximate distributed LDA, Newman, Asuncion, Smyth & Welling
2009, sec. 2.1). Each row chunk is a partition whose state (token topics ``z``,
document-topic counts, its random stream) is built on its worker and stays there
between sweeps (:func:`fastml._parallel.dask_chunk_states`). A sweep runs in
``syncs_per_sweep`` steps. Each step sends the global topic-word counts ``n_wk``
(V x K) and ``n_k`` to the workers once; every partition resamples the next
``1 / syncs_per_sweep`` of its tokens (whole documents, or whole words for the sparse
draw) with the compiled in-memory sweep kernel against its own copy of them and returns
only its count change, and the client adds the changes in chunk order (integer sums,
exact) to form the next global counts. The approximation: within a step a partition
does not see the moves of the other partitions (their counts are a step old), so this
is not an exact Gibbs sampler of the joint posterior; Newman et al. found the same
perplexity as the serial sampler when each partition is a small part of the corpus,
and merging more often than once per sweep shrinks the staleness (on Reuters with 4
chunks the gap to the serial sampler halves with 2 steps). The counts stay consistent
with ``z`` after every step, and ``log p(w, z)`` is the in-memory definition (G&S eqs.
2-3), its document part summed on the workers. Partition ``i`` draws from the
``i``-th stream spawned from ``random_state``, so the result depends on the seed, the
row chunking and ``syncs_per_sweep`` only (not on the scheduler or the number of
workers).

References
----------
D. Newman, A. Asuncion, P. Smyth, M. Welling, "Distributed algorithms for topic
models", JMLR 10, 2009.
"""

from __future__ import annotations

import pickle
import time

import numpy as np
from scipy.special import psi

from fastml._kernels import _lda
from fastml._parallel import (
    check_dask_array,
    dask_chunk_states,
    dask_map_rows,
    dask_reduce,
    dask_scheduler_guard,
)
from fastml._validation import check_random_state, spawn_generators
from fastml.lda import _online
from fastml.lda._counts import _tokens, check_counts
from fastml.lda._gibbs import TREE_WORK_PER_TOPIC, _topic_lists, use_sparse


def _checked(X, n_features=None):
    """``X`` with its vocabulary in one chunk, and its dtype; the vocabulary size
    against a fitted model's."""
    X, dtype = check_dask_array(X, "X", ndim=2, whole_axes=(1,))
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"X has {X.shape[1]} word columns but the model was fitted with a "
            f"vocabulary of {n_features}"
        )
    return X, dtype


def _add(a, b):
    """Merge two chunks' tuples of statistics (sums; None stays None)."""
    return tuple(None if x is None else x + y for x, y in zip(a, b, strict=True))


def _set_common(est, X, vocabulary):
    """What ``fit`` records before fitting on dask input; returns ``(X, dtype)``."""
    X, dtype = _checked(X)
    vocab = est._check_vocabulary(vocabulary, X.shape[1])
    est.n_features_in_ = X.shape[1]
    for name in ("feature_names_in_", "z_", "doc_topic_", "bound_"):
        est.__dict__.pop(name, None)
    est.vocabulary_ = vocab
    return X, dtype


def fit(est, X, vocabulary):
    """``est.fit(X)`` for a dask array ``X`` (see the module docstring)."""
    K, alpha, eta = est._check_params()
    if est.method == "gibbs":
        if est.n_partitions is not None:
            raise ValueError(
                "n_partitions must be None for a dask array X: its row chunks are the "
                f"partitions (got n_partitions={est.n_partitions}; rechunk X instead)"
            )
        X, dtype = _set_common(est, X, vocabulary)
        _fit_gibbs(est, X, K, alpha, eta)
        est._keep_dtype(dtype)
    else:
        if est.learning_method != "batch":
            raise ValueError(
                "learning_method='online' is not available for a dask array X (each "
                "mini-batch would be a round trip to the cluster); use "
                "learning_method='batch', or partial_fit on in-memory mini-batches"
            )
        if est.split_merge or est.init != "random":
            raise ValueError(
                "split_merge=True and init='documents' are not available for a dask "
                "array X (they read every document in memory)"
            )
        X, dtype = _set_common(est, X, vocabulary)
        _fit_variational(est, X, dtype, K, alpha, eta)
    return est


# ---------------------------------------------------------------------- variational
def _n_words(chunk):
    return (float(check_counts(chunk).data.sum()),)


def _estep_chunk(chunk, eeb_wk, alpha, max_iter, tol, stats, elog_theta, start):
    """E-step of one chunk: ``(document ELBO, (V, K) statistic or None, sum of
    E[log theta] or None, number of words)``; gamma starts at 1 (``start`` None) or
    from Gamma draws of the bit generator pickled in ``start``."""
    csr = check_counts(chunk)
    n, K = csr.shape[0], eeb_wk.shape[1]
    if start is None:
        gamma = np.ones((n, K))
    else:
        gamma = _online.init_gamma(np.random.Generator(pickle.loads(start)), n, K)
    doc_b, sst = _online.estep(
        _online.DocBlocks(csr, 0, n),
        eeb_wk,
        alpha,
        gamma,
        stats=stats,
        max_iter=max_iter,
        tol=tol,
        n_jobs=1,
    )
    et = None
    if elog_theta:
        et = float((psi(gamma) - psi(gamma.sum(axis=1, keepdims=True))).sum())
    return doc_b, sst, et, float(csr.data.sum())


def _fit_variational(est, X, dtype, K, alpha, eta):
    rng = check_random_state(est.random_state)
    est.random_state_ = rng
    (n_words,) = dask_reduce(X, _n_words, _add)
    if n_words == 0:
        raise ValueError("X has no words (every document is empty)")
    D, V = X.shape
    lam = rng.gamma(100.0, 0.01, (K, V))
    opts = (int(est.max_doc_update_iter), float(est.mean_change_tol))

    same_scheduler = dask_scheduler_guard()

    def batch_pass(elog_b, alpha):
        same_scheduler()
        eeb, eeb_wk = _online._exp_t(elog_b)
        starts = []
        for n in X.chunks[0]:  # the in-memory draws, chunk by chunk (module docstring)
            starts.append((pickle.dumps(rng.bit_generator),))
            _online.init_gamma(rng, n, K)
        doc_b, sst, et, _ = dask_reduce(
            X,
            _estep_chunk,
            _add,
            args=(eeb_wk, alpha, *opts, True, bool(est.optimize_priors)),
            chunk_args=starts,
        )
        return doc_b, sst, eeb, et

    lam, elog_b, alpha, eta = _online.run_passes(
        est, lam, alpha, eta, D, n_words, batch_pass
    )
    est.doc_topic_prior_ = alpha
    est.topic_word_prior_ = eta
    est._set_topics(lam, elog_b, dtype)
    # scikit-learn's bound_ (the training perplexity) from the E-step that transform
    # runs; doc_topic_ is that transform, lazily
    doc_b, _ = _doc_bound(est, X)
    est.bound_ = float(np.exp(-(doc_b + est._topic_part()) / n_words))
    est.doc_topic_ = transform(est, X, normalize=True)


def _transform_chunk(chunk, eeb_wk, alpha, max_iter, tol, normalize, dtype):
    csr = check_counts(chunk)
    gamma = np.ones((csr.shape[0], eeb_wk.shape[1]))
    _online.estep(
        _online.DocBlocks(csr, 0, csr.shape[0]),
        eeb_wk,
        alpha,
        gamma,
        stats=False,
        max_iter=max_iter,
        tol=tol,
        n_jobs=1,
        bound=False,
    )
    if normalize:
        gamma /= gamma.sum(axis=1, keepdims=True)
    return gamma.astype(dtype, copy=False)


def _inference_args(est):
    """exp(E[log beta]) (V, K) as the in-memory inference uses it, alpha, the E-step
    options."""
    eeb_wk = np.ascontiguousarray(est.exp_dirichlet_component_.T, dtype=np.float64)
    return (
        eeb_wk,
        est.doc_topic_prior_,
        int(est.max_doc_update_iter),
        float(est.mean_change_tol),
    )


def _check_variational(est, what):
    if est.method != "variational":
        raise ValueError(
            f"{what} of a dask array X needs method='variational'; with "
            "method='gibbs' use doc_topic_ (the training documents) or compute X "
            "(X.compute()) for the in-memory fold-in"
        )


def transform(est, X, normalize):
    """Lazy topic proportions of the documents of ``X`` (a dask array with ``X``'s
    row chunks): the in-memory E-step from gamma = 1, chunk by chunk."""
    _check_variational(est, "transform")
    X, dtype = _checked(X, est.n_features_in_)
    K = est.components_.shape[0]
    out = np.float32 if dtype == np.float32 else np.float64
    return dask_map_rows(
        X,
        _transform_chunk,
        args=(*_inference_args(est), bool(normalize), out),
        dtype=out,
        n_cols=K,
    )


def _doc_bound(est, X):
    """``(document ELBO, number of words)`` of ``X`` with the fitted topics (gamma
    from 1), reduced on the workers."""
    doc_b, _, _, n = dask_reduce(
        X, _estep_chunk, _add, args=(*_inference_args(est), False, False, None)
    )
    return doc_b, n


def score(est, X):
    """``(ELBO of X, number of words)`` (scikit-learn's approximate bound), reduced on
    the workers."""
    _check_variational(est, "score")
    X, _ = _checked(X, est.n_features_in_)
    doc_b, n = _doc_bound(est, X)
    return doc_b + est._topic_part(), n


# -------------------------------------------------------------------------- Gibbs
class _Partition:
    """One partition's AD-LDA state, kept on its worker: tokens in sweep order
    (document-major for the dense draw, word-major for the sparse one), their topics,
    the document-topic counts (and topic lists) and the partition's random stream."""

    def __init__(self, csr, K, sparse, stream):
        words, doc_ptr, nd = _tokens(csr)
        n_docs = csr.shape[0]
        self.nd = nd.astype(np.intp)
        self.stream = stream.bit_generator
        z = stream.integers(K, size=words.shape[0]).astype(np.intc)
        doc_of = np.repeat(np.arange(n_docs), nd)
        self.ndk = (
            np.bincount(doc_of * K + z, minlength=n_docs * K)
            .astype(np.intc)
            .reshape(n_docs, K)
        )
        self.sparse = sparse
        if sparse:
            perm = np.lexsort((doc_of, words))
            self.docs = np.ascontiguousarray(doc_of[perm], dtype=np.intp)
            self.words = np.ascontiguousarray(words[perm])
            self.z = np.ascontiguousarray(z[perm])
            starts = np.flatnonzero(np.diff(self.words, prepend=-1))
            self.seg_key = self.words[starts].astype(np.intp)
            self.seg_ptr = np.append(starts, words.shape[0]).astype(np.intp)
            self.doc_lists = _topic_lists(self.ndk, np.minimum(nd, K))
        else:
            self.words, self.z = words, z
            self.seg_key = np.arange(n_docs, dtype=np.intp)
            self.seg_ptr = doc_ptr
        self.scratch = np.empty(_lda.gibbs_scratch_size(K, sparse))


def _gibbs_init(chunk, K, V, sparse, seed):
    """Build a partition from its chunk; its statistics are its counts ``(n_wk,
    n_k, tokens)``."""
    csr = check_counts(chunk, integer=True)
    part = _Partition(csr, K, sparse, np.random.Generator(pickle.loads(seed)))
    nwk = np.bincount(part.words.astype(np.int64) * K + part.z, minlength=V * K)
    nk = np.bincount(part.z, minlength=K)
    return part, (nwk.astype(np.intc).reshape(V, K), nk.astype(np.intc), part.z.size)


def _gibbs_sweep(part, nwk, nk, alpha, eta, tree_work, loglik, step, n_steps):
    """Step ``step`` of ``n_steps`` of an AD-LDA sweep of a partition, against its own
    copy of the global counts: it resamples the segments (documents, or words for the
    sparse draw) that start in the ``step``-th ``1 / n_steps`` of its tokens. Returns
    its count change ``(d n_wk, d n_k)`` and, with ``loglik``, the document part of
    ``log p(w, z)``."""
    local, nk_local = nwk.copy(), nk.copy()
    n = part.z.size
    a, b = np.searchsorted(
        part.seg_ptr[:-1], [step * n // n_steps, (step + 1) * n // n_steps]
    )
    key, ptr = part.seg_key[a:b], part.seg_ptr[a : b + 1]
    cancel = np.zeros(1, np.uint8)
    if part.sparse:
        K = nk.shape[0]
        wl = _topic_lists(local, np.minimum(local.sum(axis=1), K))
        _lda.gibbs_sweep_block_sparse(
            part.stream, part.docs, part.z, key, ptr, part.ndk,
            local, nk_local, alpha, eta, tree_work, *wl, *part.doc_lists,
            part.scratch, cancel,
        )  # fmt: skip
    else:
        _lda.gibbs_sweep_blocks(
            [part.stream], part.words, part.z, [key], [ptr],
            part.ndk, local, [nk_local], alpha, eta, [part.scratch], cancel,
        )  # fmt: skip
    ll = 0.0
    if loglik:  # an empty vocabulary's word part is zero (one word, no tokens)
        K = nk.shape[0]
        empty = np.zeros((1, K), np.intc)
        ll = _lda.gibbs_loglik(part.ndk, part.nd, empty, empty[0], alpha, eta)
    local -= nwk
    nk_local -= nk
    return part, (local, nk_local, ll)


def _take_ndk(part):
    return part.ndk, None


def _nothing(a, b):
    return None


def _fit_gibbs(est, X, K, alpha, eta):
    V = X.shape[1]
    sparse = use_sparse(est.sampler, K)
    streams = spawn_generators(est.random_state, X.npartitions)  # spawned, or seeded
    seeds = [(pickle.dumps(g.bit_generator),) for g in streams]
    states, (nwk, nk, n_tokens) = dask_chunk_states(
        X, _gibbs_init, _add, args=(K, V, sparse), chunk_args=seeds
    )
    if n_tokens == 0:
        raise ValueError("X has no words (every document is empty)")
    if n_tokens >= 2**31:
        raise ValueError(
            f"X holds {n_tokens} tokens; collapsed Gibbs keeps 32-bit counts, so the "
            "total must be below 2**31 = 2147483648 (subsample the corpus or use "
            "method='variational')"
        )
    no_docs = (np.zeros((0, K), np.intc), np.zeros(0, np.intp))
    tree_work = TREE_WORK_PER_TOPIC * K
    n_steps = int(est.syncs_per_sweep)
    lls = []
    every = est.evaluate_every
    t_last = time.perf_counter()
    since = 0
    same_scheduler = dask_scheduler_guard()
    for it in range(est.max_iter):
        same_scheduler()
        want = it == est.max_iter - 1 or (every > 0 and (it + 1) % every == 0)
        for step in range(n_steps):
            states, (dnwk, dnk, ll_docs) = dask_chunk_states(
                X,
                _gibbs_sweep,
                _add,
                states=states,
                args=(
                    nwk, nk, alpha, eta, tree_work, want and step == n_steps - 1,
                    step, n_steps,
                ),
            )  # fmt: skip
            nwk = nwk + dnwk
            nk = nk + dnk
        since += 1
        if want:
            ll = ll_docs + _lda.gibbs_loglik(*no_docs, nwk, nk, alpha, eta)
            lls.append(ll)
            if est.verbose:
                now = time.perf_counter()
                rate = n_tokens * since / max(now - t_last, 1e-12)
                est._say(
                    f"iteration {it + 1:5d}  log p(w, z) {ll:.6e}  {rate:.3g} tokens/s"
                )
                t_last = now
            since = 0
    import dask.array as da

    ndk_chunks, _ = dask_chunk_states(X, _take_ndk, _nothing, states=states)
    est.ndk_ = da.concatenate(
        [
            da.from_delayed(c, shape=(n, K), dtype=np.intc)
            for c, n in zip(ndk_chunks, X.chunks[0], strict=True)
        ]
    )
    nd = est.ndk_.sum(axis=1, keepdims=True)
    est.doc_topic_ = (est.ndk_ + alpha) / (nd + K * alpha)
    est.loglikelihoods_ = lls
    est.n_iter_ = est.max_iter
    est.nwk_ = nwk
    est.nk_ = nk
    est.components_ = nwk.T.astype(np.float64) + eta
    est.topic_word_ = est.components_ / est.components_.sum(axis=1, keepdims=True)
    est.doc_topic_prior_ = alpha
    est.topic_word_prior_ = eta
