"""Variational Bayes for LDA: the threaded E-step, batch and online (Hoffman et al.
2010) M-steps, the ELBO.

The E-step (Blei, Ng & Jordan 2003, eqs. 16-17) runs the compiled kernel
``_lda.estep_docs`` on **blocks of documents fixed by the data** (consecutive rows
holding about ``_BLOCK_NNZ`` distinct document-word pairs, never cut by the thread
count), over :func:`fastml._parallel.run_blocks`. Each block works on its own local
vocabulary (the words it contains), and its topic-word statistics are added into the
(V, K) total in block order, so every ``n_jobs`` gives the same bits.

Batch VB sets ``lambda = eta + S`` after each pass (``S_kw = sum_d n_dw phi_dwk``);
online VB (Hoffman, Blei & Bach 2010, Algorithm 2) blends each mini-batch's estimate
``eta + (D / |B|) S_B`` into ``lambda`` with weight ``rho_t = (tau_0 + t)^-kappa``,
exactly as scikit-learn's ``LatentDirichletAllocation`` (``learning_offset`` tau_0,
``learning_decay`` kappa, ``t`` = ``n_batch_iter_`` starting at 1).
"""

from __future__ import annotations

import itertools
import sys
import time
import warnings

import numpy as np
from scipy.special import gammaln, polygamma, psi

from fastml import exceptions
from fastml._kernels import _lda
from fastml._parallel import run_blocks
from fastml._validation import check_diverged
from fastml.lda import _moves

# Distinct (document, word) pairs per E-step block: ~0.5-5 ms of kernel work at K=20.
_BLOCK_NNZ = 4096
# Blocks handed to the thread pool at once (bounds the per-block statistics held).
_GROUP = 256


def elog_beta(lam):
    """``E[log beta_kw] = psi(lambda_kw) - psi(sum_w lambda_kw)`` (float64)."""
    return psi(lam) - psi(lam.sum(axis=1, keepdims=True))


def topic_bound(lam, elog_b, eta):
    """``E[log p(beta | eta) - log q(beta | lambda)]`` (Hoffman et al. 2010, eq. 4)."""
    K, V = lam.shape
    return float(
        np.sum((eta - lam) * elog_b + gammaln(lam))
        - K * V * gammaln(eta)
        + K * gammaln(V * eta)
        - np.sum(gammaln(lam.sum(axis=1)))
    )


def newton_symmetric_dirichlet(a, n_groups, dim, suff, max_iter=100):
    """Maximise ``n_groups [lgamma(dim a) - dim lgamma(a)] + a suff`` over a > 0.

    Newton-Raphson (Minka 2000, fixed point for a symmetric Dirichlet; Blei et al. 2003
    appendix A.4.2). The objective is concave in ``a``; overshoots below 0 are halved.
    """
    for _ in range(max_iter):
        g = n_groups * dim * (psi(dim * a) - psi(a)) + suff
        h = n_groups * dim * (dim * polygamma(1, dim * a) - polygamma(1, a))
        step = g / h
        new = a - step
        while new <= 0:
            step *= 0.5
            new = a - step
        if abs(new - a) <= 1e-12 * a:
            return float(new)
        a = new
    return float(a)


class DocBlocks:
    """Rows ``[start, stop)`` of a CSR count matrix cut into E-step blocks.

    Block boundaries depend on the rows only: a block closes once it holds at least
    ``_BLOCK_NNZ`` non-zeros. Each block keeps its local vocabulary ``vocab`` (sorted
    word ids), its word ids remapped into it, its counts and relative ``indptr``.
    """

    def __init__(self, csr, start, stop):
        self.start, self.stop = start, stop
        indptr = csr.indptr
        # a new block starts at each row where the running non-zero count crosses a
        # multiple of _BLOCK_NNZ
        key = (indptr[start:stop].astype(np.int64) - int(indptr[start])) // _BLOCK_NNZ
        cuts = [start, *(start + np.flatnonzero(np.diff(key)) + 1).tolist(), stop]
        self.blocks = []
        for s, e in itertools.pairwise(cuts):
            p0, p1 = int(indptr[s]), int(indptr[e])
            vocab, local = np.unique(csr.indices[p0:p1], return_inverse=True)
            rows = np.diff(indptr[s : e + 1])
            self.blocks.append(
                (
                    s,
                    e,
                    vocab,
                    local.astype(np.intc).ravel(),
                    np.ascontiguousarray(csr.data[p0:p1], dtype=np.float64),
                    (indptr[s : e + 1] - p0).astype(np.intc),
                    max(int(rows.max()) if rows.size else 1, 1),
                )
            )


def estep(blocks, eeb_wk, alpha, gamma, *, stats, max_iter, tol, n_jobs, bound=True):
    """Variational E-step over ``blocks`` (a :class:`DocBlocks`), in place on ``gamma``.

    ``eeb_wk`` (V, K) is ``exp(E[log beta])``; ``gamma`` (one row per document of
    ``blocks``) holds the starting point and receives the result. Returns the document
    part of the ELBO (kernel terms plus the alpha constants; 0.0 when ``bound`` is
    False) and, with ``stats``, the (V, K) statistic
    ``sum_d n_dw exp(E[log theta_dk]) / phinorm_dw`` summed in block order (``None``
    otherwise). Callers running several threads wrap it in
    :func:`fastml._parallel.blas_single_threaded` (the kernel calls dgemv).
    """
    K = gamma.shape[1]
    V = eeb_wk.shape[0]
    sst = np.zeros((V, K)) if stats else None
    total = 0.0
    items = blocks.blocks
    r0 = blocks.start
    max_iter = int(max_iter)
    tol = float(tol)

    def run(item, cancel):
        s, e, vocab, local, cnt, indptr, m = item
        eeb_b = eeb_wk[vocab]
        sst_b = np.empty((vocab.shape[0], K) if stats else (0, K))
        b = _lda.estep_docs(
            indptr,
            local,
            cnt,
            eeb_b,
            alpha,
            gamma[s - r0 : e - r0],
            max_iter,
            tol,
            sst_b,
            np.empty((4, K)),
            np.empty(e - s, dtype=np.intc),
            np.empty((m, K)),
            np.empty(m),
            bound,
            cancel,
        )
        return b, sst_b

    for g0 in range(0, len(items), _GROUP):
        group = items[g0 : g0 + _GROUP]
        results = run_blocks(
            lambda i, c, group=group: run(group[i], c), len(group), n_jobs
        )
        for item, (b, sst_b) in zip(group, results, strict=True):
            total += b
            if stats:
                sst[item[2]] += sst_b
    if bound:
        n_docs = blocks.stop - blocks.start
        total += n_docs * (gammaln(K * alpha) - K * gammaln(alpha))
    return total, sst


def init_gamma(rng, n_docs, K):
    """Training E-step start: Gamma(100, 1/100) draws, as Hoffman's onlineldavb and
    scikit-learn (one (n_docs, K) draw per E-step, before the blocks run)."""
    return rng.gamma(100.0, 0.01, (n_docs, K))


def online_weight(learning_offset, n_batch_iter, learning_decay):
    """``rho_t = (tau_0 + t)^-kappa`` (Hoffman et al. 2010, sec. 2.2)."""
    return float(np.power(learning_offset + n_batch_iter, -learning_decay))


def _exp_t(elog_b):
    """``exp(E[log beta])`` as (K, V) and its (V, K) C-contiguous transpose."""
    eeb = np.exp(elog_b)
    return eeb, np.ascontiguousarray(eeb.T)


def _train_estep(est, blocks, elog_b, alpha, rng, n_jobs, bound):
    """E-step of a training pass, gamma started from Gamma(100, 1/100) draws.

    Returns the document ELBO (0.0 without ``bound``), the (V, K) statistic, the
    (K, V) ``exp(E[log beta])`` it used and the final gamma.
    """
    eeb, eeb_wk = _exp_t(elog_b)
    gamma = init_gamma(rng, blocks.stop - blocks.start, elog_b.shape[0])
    doc_b, sst = estep(
        blocks,
        eeb_wk,
        alpha,
        gamma,
        stats=True,
        max_iter=est.max_doc_update_iter,
        tol=est.mean_change_tol,
        n_jobs=n_jobs,
        bound=bound,
    )
    return doc_b, sst, eeb, gamma


def online_step(est, blocks, lam, elog_b, alpha, eta, rng, total_samples, n_jobs):
    """One mini-batch of online VB (Hoffman et al. 2010, Algorithm 2); returns the new
    ``lambda`` and ``E[log beta]`` and advances ``est.n_batch_iter_``.

    ``lambda <- (1 - rho) lambda + rho (eta + (total_samples / |B|) S_B)``, the order
    of operations of scikit-learn's ``_em_step``.
    """
    n = blocks.stop - blocks.start
    _, sst, eeb, _ = _train_estep(est, blocks, elog_b, alpha, rng, n_jobs, False)
    rho = online_weight(est.learning_offset, est.n_batch_iter_, est.learning_decay)
    lam *= 1.0 - rho
    lam += rho * (eta + (float(total_samples) / n) * (sst.T * eeb))
    est.n_batch_iter_ += 1
    return lam, elog_beta(lam)


def fit(est, csr, K, alpha, eta, rng, n_jobs):
    """Batch or online VB on all of ``csr`` for ``est.max_iter`` passes.

    Returns ``(lambda, E[log beta], alpha, eta)`` (float64) and sets ``bounds_``,
    ``n_iter_`` and ``n_batch_iter_`` on ``est`` (see :func:`run_passes`). Online: the
    ELBO of the training set (a separate E-step from gamma = 1) every
    ``evaluate_every`` passes.
    """
    D, V = csr.shape
    lam = rng.gamma(100.0, 0.01, (K, V))
    if est.init == "documents":
        _moves.seed_topics(csr, lam, rng)
    full = DocBlocks(csr, 0, D)

    last = {}

    def batch_pass(elog_b, alpha):
        doc_b, sst, eeb, gamma = _train_estep(
            est, full, elog_b, alpha, rng, n_jobs, True
        )
        last["gamma"] = gamma
        elog_theta = None
        if est.optimize_priors:
            elog_theta = float(
                (psi(gamma) - psi(gamma.sum(axis=1, keepdims=True))).sum()
            )
        return doc_b, sst, eeb, elog_theta

    online = None
    if est.learning_method == "online":
        batches = [
            DocBlocks(csr, s, min(s + est.batch_size, D))
            for s in range(0, D, est.batch_size)
        ]

        def epoch(lam, elog_b):
            for blocks in batches:
                lam, elog_b = online_step(
                    est, blocks, lam, elog_b, alpha, eta, rng, D, n_jobs
                )
            return lam, elog_b

        def evaluate(lam, elog_b):
            _, eeb_wk = _exp_t(elog_b)
            doc_b, _ = estep(
                full,
                eeb_wk,
                alpha,
                np.ones((D, K)),
                stats=False,
                max_iter=est.max_doc_update_iter,
                tol=est.mean_change_tol,
                n_jobs=n_jobs,
            )
            return doc_b + topic_bound(lam, elog_b, eta)

        online = (epoch, evaluate)
    moves = None
    if est.split_merge and online is None:

        def moves(lam, eta):
            return _moves.propose(csr, lam, last["gamma"], eta, rng)

    return run_passes(
        est, lam, alpha, eta, D, float(csr.data.sum()), batch_pass, online, moves
    )


def run_passes(
    est, lam, alpha, eta, n_docs, n_words, batch_pass, online=None, moves=None
):
    """The ``est.max_iter`` passes of :func:`fit`, from ``lambda = lam``, whatever holds
    the documents (in memory, or a dask array: :mod:`fastml.lda._dask`).

    ``batch_pass(elog_b, alpha)`` is the E-step of a batch pass over all ``n_docs``
    documents: ``(document ELBO, (V, K) statistic, exp(E[log beta]) (K, V), sum of
    E[log theta] or None without optimize_priors)``. ``online``, if given, is
    ``(epoch, evaluate)``: ``epoch(lam, elog_b)`` returns the ``(lam, elog_b)`` after
    one pass of mini-batches, ``evaluate(lam, elog_b)`` the training-set ELBO.

    ``moves``, if given (batch only), is ``moves(lam, eta)``: a round of topic moves
    (:func:`fastml.lda._moves.propose`, from the last E-step's gamma) or ``None``. A
    round is proposed after pass :data:`~fastml.lda._moves.FIRST_ROUND` and then after
    every accepted round, as long as its test fits in ``max_iter``: it is kept if the
    ELBO :data:`~fastml.lda._moves.ROUND_ITERATIONS` passes later exceeds the ELBO
    before it; otherwise the topics before it are restored and no more rounds come.
    The convergence test waits until no round is on trial or still to come.

    Returns ``(lambda, E[log beta], alpha, eta)`` and sets ``bounds_``, ``n_iter_``
    and ``n_batch_iter_`` on ``est``. Batch: the ELBO of every pass (at the E-step's
    gamma and the lambda it used) goes to ``bounds_``. Online: the ELBO every
    ``evaluate_every`` passes. Either way ``evaluate_every > 0`` stops when the
    perplexity changes by less than ``perp_tol`` between evaluations.
    """
    K, V = lam.shape
    elog_b = elog_beta(lam)
    every = est.evaluate_every
    est.bounds_ = []
    est.n_batch_iter_ = 1
    est.n_iter_ = 0
    last_perp = None
    converged = False
    trial = None  # (pass whose ELBO tests the round, lambda and ELBO before it)
    next_round = _moves.FIRST_ROUND if moves is not None else None
    for it in range(est.max_iter):
        t0 = time.perf_counter()
        elbo = None
        if online is not None:
            lam, elog_b = online[0](lam, elog_b)
            if every > 0 and (it + 1) % every == 0:
                elbo = online[1](lam, elog_b)
                est.bounds_.append(elbo)
        else:
            doc_b, sst, eeb, elog_theta = batch_pass(elog_b, alpha)
            elbo = doc_b + topic_bound(lam, elog_b, eta)
            est.bounds_.append(elbo)
            # M-step (Blei et al. sec. 5.4): lambda_kw = eta + sum_d n_dw phi_dwk
            lam = eta + sst.T * eeb
            if trial is not None and it == trial[0]:
                kept = elbo > trial[2]
                if not kept:  # back to the topics before the round
                    lam, next_round = trial[1], None
                if est.verbose:
                    print(
                        f"split_merge round {'kept' if kept else 'undone'}: ELBO "
                        f"{elbo - trial[2]:+.6e} over {_moves.ROUND_ITERATIONS} passes",
                        file=sys.stdout,
                    )
                trial = None
            if trial is None and next_round is not None and it + 1 >= next_round:
                next_round = None
                if it + _moves.ROUND_ITERATIONS < est.max_iter:
                    proposal = moves(lam, eta)
                    if proposal is not None:
                        trial = (it + _moves.ROUND_ITERATIONS, lam, elbo)
                        lam, next_round = proposal, it + _moves.ROUND_ITERATIONS + 1
            elog_b = elog_beta(lam)
            est.n_batch_iter_ += 1
            if est.optimize_priors:
                alpha = newton_symmetric_dirichlet(alpha, n_docs, K, elog_theta)
                eta = newton_symmetric_dirichlet(eta, K, V, float(elog_b.sum()))
        check_diverged(
            est,
            it + 1,
            "use optimize_priors=False or larger priors",
            components_=lam,
            doc_topic_prior_=alpha,
            topic_word_prior_=eta,
        )
        est.n_iter_ = it + 1
        evaluated = elbo is not None and every > 0 and (it + 1) % every == 0
        if est.verbose:
            # scikit-learn's line, plus speed and (batch: every pass) the ELBO; the
            # perplexity only where evaluate_every asks for it, as there
            dt = time.perf_counter() - t0
            msg = f"iteration: {it + 1} of max_iter: {est.max_iter}"
            if evaluated:
                msg += f", perplexity: {float(np.exp(-elbo / n_words)):.4f}"
            msg += f"  ({n_words / dt:.3g} tokens/s"
            msg += f", ELBO {elbo:.6e})" if elbo is not None else ")"
            print(msg, file=sys.stdout)
        testing = trial is not None or next_round is not None  # moves still to come
        if evaluated and not testing:
            perp = float(np.exp(-elbo / n_words))
            if last_perp is not None and abs(last_perp - perp) < est.perp_tol:
                converged = True
                break
            last_perp = perp
    if every > 0 and not converged:
        warnings.warn(
            f"LatentDirichletAllocation stopped at max_iter={est.max_iter} "
            f"before the perplexity changed by less than perp_tol="
            f"{est.perp_tol}; increase max_iter or perp_tol.",
            exceptions.ConvergenceWarning,
            stacklevel=5,  # the caller of LatentDirichletAllocation.fit
        )
    return lam, elog_b, alpha, eta
