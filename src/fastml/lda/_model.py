"""The estimator: :class:`LatentDirichletAllocation` (variational EM or collapsed Gibbs)."""

from __future__ import annotations

import numbers
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any, Literal, TypeAlias, TypeVar

import numpy as np
from scipy.special import gammaln, polygamma, psi

from fastml import exceptions
from fastml._base import (
    BaseEstimator,
    TransformerMixin,
    check_is_fitted,
    validate_data,
)
from fastml._kernels import _lda
from fastml._parallel import effective_n_jobs
from fastml._typing import FloatArray, NDArray, RandomStateLike
from fastml._validation import (
    check_diverged,
    check_int,
    check_random_state,
    check_real,
)
from fastml.lda._counts import _Counts, _tokens, check_counts
from fastml.lda._gibbs import GibbsSampler, default_partitions, use_sparse

_Vocabulary: TypeAlias = Sequence[str] | NDArray[Any] | None

__all__ = ["LatentDirichletAllocation"]

_METHODS = ("variational", "gibbs")
# scikit-learn's common checks that fit method="gibbs" on non-integer data (see
# LatentDirichletAllocation._xfail_checks)
_GIBBS_NON_INTEGER_CHECKS = (
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_dtype_object",
    "check_estimator_sparse_array",
    "check_estimator_sparse_matrix",
    "check_estimator_sparse_tag",
    "check_estimators_dtypes",
    "check_estimators_fit_returns_self",
    "check_estimators_nan_inf",
    "check_estimators_overwrite_params",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_fit2d_1feature",
    "check_fit2d_1sample",
    "check_fit2d_predict1d",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_pipeline_consistency",
    "check_readonly_memmap_input",
    "check_transformer_data_not_an_array",
    "check_transformer_general",
    "check_transformer_n_iter",
    "check_transformer_preserve_dtypes",
)


def _newton_symmetric_dirichlet(a, n_groups, dim, suff, max_iter=100):
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


_LDA = TypeVar("_LDA", bound="LatentDirichletAllocation")


class LatentDirichletAllocation(TransformerMixin, BaseEstimator):
    """Latent Dirichlet allocation (Blei, Ng & Jordan 2003).

    Parameters
    ----------
    n_components : int, default 10
        Number of topics K (``1 <= K <= n_documents``).
    method : {"variational", "gibbs"}, default "variational"
        Batch variational EM (Blei et al. sec. 5.3-5.4) or collapsed Gibbs sampling
        (Griffiths & Steyvers 2004).
    doc_topic_prior : float, optional
        Symmetric Dirichlet prior alpha on document-topic proportions (default 1/K).
    topic_word_prior : float, optional
        Symmetric Dirichlet prior eta on topic-word distributions (default 1/K).
    max_iter : int, default 10
        EM iterations, or Gibbs sweeps.
    evaluate_every : int, default -1
        Variational: check the perplexity every this many iterations and stop when it
        changes by less than ``perp_tol`` (<= 0: never stop early; the ELBO is still
        recorded every iteration in ``bounds_``); a
        :class:`~fastml.exceptions.ConvergenceWarning` if ``max_iter`` is reached
        first. Gibbs: compute ``log p(w, z)`` every this many sweeps (<= 0: only after
        the last one).
    perp_tol : float, default 0.1
    mean_change_tol : float, default 1e-3
        Per-document E-step stops when the mean absolute change of gamma is smaller.
    max_doc_update_iter : int, default 100
    optimize_priors : bool, default False
        Variational only: Newton-Raphson updates of alpha and eta after each M-step.
    transform_iter : int, default 50
        Gibbs only: fold-in sweeps in ``transform`` (the first fifth are burn-in).
    sampler : {"auto", "dense", "sparse"}, default "auto"
        Gibbs only: the O(K) dense draw, or an exact sparse draw (F+LDA's sum tree,
        Yu et al. 2015, for frequent words: O(topics of the document + log K) per
        token; SparseLDA's s/r/q buckets, Yao, Mimno & McCallum 2009, for rare
        words); both draw from the same conditional (G&S eq. 5). "auto": sparse for
        ``n_components >= 40`` (the measured crossover), dense below.
    n_partitions : int, optional
        Gibbs only: documents and vocabulary are each cut into this many parts and a
        sweep runs as ``n_partitions`` rounds of independent (document part, word
        part) blocks (tomotopy's PARTITION scheme), spread over ``n_jobs`` threads.
        The result depends on ``random_state`` and ``n_partitions``, never on
        ``n_jobs``; 1 is the serial sampler. Default (None): 4 for corpora of
        2**18 tokens or more, else 1 (a sweep then takes milliseconds, less than
        the partitions' hand-offs save).
    n_jobs : int, optional
        Gibbs only: threads (None: the usable CPUs; -1: all CPUs).
    random_state : None, int or numpy.random.Generator
    verbose : int, default 0
        1 or more: one line per evaluation (iteration, bound or log-likelihood,
        tokens/s).

    Attributes
    ----------
    components_ : ndarray (K, V)
        Topic-word pseudo-counts: variational ``lambda``, or Gibbs ``n_kw + eta``.
        float32 for float32 ``X`` (as scikit-learn; computed in float64), as are
        ``topic_word_``, ``doc_topic_``, ``exp_dirichlet_component_`` and the output of
        ``transform`` for float32 input.
    topic_word_ : ndarray (K, V)
        ``components_`` normalised per topic.
    doc_topic_ : ndarray (n_docs, K)
        Training documents' topic proportions (normalised gamma, or
        ``(n_dk + alpha) / (n_d + K alpha)``).
    exp_dirichlet_component_ : ndarray (K, V)
        Variational only: ``exp(E[log beta])``.
    bounds_ : list of float
        Variational only: the ELBO after each E-step (non-decreasing).
    loglikelihoods_ : list of float
        Gibbs only: ``log p(w, z)`` at each evaluation.
    doc_topic_prior_, topic_word_prior_ : float
    n_iter_ : int
    vocabulary_ : ndarray or None
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names of a DataFrame ``X`` (when they are all strings).

    Raises
    ------
    ValueError, TypeError
        Bad parameters or counts (naming the argument).

    Notes
    -----
    Variational E-step: ``phi_dwk ~ exp(E[log theta_dk] + E[log beta_kw])`` and
    ``gamma_dk = alpha + sum_w n_dw phi_dwk`` (Blei et al. eqs. 16-17, with
    ``E[log beta]`` from the variational Dirichlet lambda, sec. 5.4); M-step
    ``lambda_kw = eta + sum_d n_dw phi_dwk``. Gibbs: G&S eq. 5 per token.

    References
    ----------
    D. M. Blei, A. Y. Ng, M. I. Jordan, "Latent Dirichlet allocation", JMLR 3, 2003.
    T. L. Griffiths, M. Steyvers, "Finding scientific topics", PNAS 101, 2004.
    T. Minka, "Estimating a Dirichlet distribution", 2000.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.lda import LatentDirichletAllocation
    >>> X = np.array([[5, 4, 0, 0], [4, 6, 0, 1], [0, 0, 7, 5], [1, 0, 5, 6]])
    >>> lda = LatentDirichletAllocation(2, method="gibbs", max_iter=50, random_state=0)
    >>> theta = lda.fit(X, vocabulary=["a", "b", "c", "d"]).doc_topic_
    >>> bool(np.argmax(theta[0]) == np.argmax(theta[1]) != np.argmax(theta[2]))
    True
    >>> sorted(lda.top_words(n=2)[int(np.argmax(theta[0]))])
    ['a', 'b']
    """

    def __init__(
        self,
        n_components: int = 10,
        *,
        method: Literal["variational", "gibbs"] = "variational",
        doc_topic_prior: float | None = None,
        topic_word_prior: float | None = None,
        max_iter: int = 10,
        evaluate_every: int = -1,
        perp_tol: float = 1e-1,
        mean_change_tol: float = 1e-3,
        max_doc_update_iter: int = 100,
        optimize_priors: bool = False,
        transform_iter: int = 50,
        sampler: Literal["auto", "dense", "sparse"] = "auto",
        n_partitions: int | None = None,
        n_jobs: int | None = None,
        random_state: RandomStateLike = None,
        verbose: int = 0,
    ) -> None:
        self.n_components = n_components
        self.method = method
        self.doc_topic_prior = doc_topic_prior
        self.topic_word_prior = topic_word_prior
        self.max_iter = max_iter
        self.evaluate_every = evaluate_every
        self.perp_tol = perp_tol
        self.mean_change_tol = mean_change_tol
        self.max_doc_update_iter = max_doc_update_iter
        self.optimize_priors = optimize_priors
        self.transform_iter = transform_iter
        self.sampler = sampler
        self.n_partitions = n_partitions
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True  # counts
        return tags

    def _xfail_checks(self):
        if self.method != "gibbs":
            return {}
        reason = (
            "collapsed Gibbs sampling assigns a topic to each token, so counts must be "
            "whole numbers; the check fits non-integer data"
        )
        return dict.fromkeys(_GIBBS_NON_INTEGER_CHECKS, reason)

    # ------------------------------------------------------------ checks
    def _check_params(self, n_docs):
        K = check_int(self.n_components, "n_components", low=1)
        if K > n_docs:
            raise ValueError(
                f"n_components must be <= the number of documents ({n_docs}), got {K}"
            )
        if self.method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {self.method!r}")
        alpha = 1.0 / K if self.doc_topic_prior is None else self.doc_topic_prior
        eta = 1.0 / K if self.topic_word_prior is None else self.topic_word_prior
        alpha = check_real(alpha, "doc_topic_prior", low=0.0, low_open=True)
        eta = check_real(eta, "topic_word_prior", low=0.0, low_open=True)
        check_int(self.max_iter, "max_iter", low=1)
        check_int(self.evaluate_every, "evaluate_every")
        check_real(self.perp_tol, "perp_tol", low=0.0)
        check_real(self.mean_change_tol, "mean_change_tol", low=0.0)
        check_int(
            self.max_doc_update_iter, "max_doc_update_iter", low=1, high=2**31 - 1
        )
        check_int(self.transform_iter, "transform_iter", low=1, high=2**31 - 1)
        use_sparse(self.sampler, K)
        if self.n_partitions is not None:
            check_int(self.n_partitions, "n_partitions", low=1)
        effective_n_jobs(self.n_jobs)
        check_int(self.verbose, "verbose", low=0)
        if not isinstance(self.optimize_priors, (bool, np.bool_)):
            raise TypeError(
                f"optimize_priors must be a bool, got {type(self.optimize_priors).__name__}"
            )
        if self.optimize_priors and self.method == "gibbs":
            raise ValueError(
                "optimize_priors=True is only available for method='variational'"
            )
        return K, alpha, eta

    @staticmethod
    def _check_vocabulary(vocabulary, V):
        if vocabulary is None:
            return None
        if isinstance(vocabulary, (str, bytes)):
            raise TypeError("vocabulary must be a sequence of words, not a string")
        vocab = np.asarray(list(vocabulary), dtype=object)
        if vocab.ndim != 1 or vocab.shape[0] != V:
            raise ValueError(
                f"vocabulary has {vocab.shape[0] if vocab.ndim else 0} entries but X has "
                f"{V} word columns"
            )
        return vocab

    # ------------------------------------------------------------ fit
    def fit(
        self: _LDA, X: _Counts, y: object = None, *, vocabulary: _Vocabulary = None
    ) -> _LDA:
        """Fit the topic model to the document-term counts ``X``.

        Parameters
        ----------
        X : array_like or scipy.sparse matrix, shape (n_docs, n_words)
            Counts (non-negative; integers for ``method="gibbs"``).
        y : ignored
        vocabulary : sequence of str, optional
            The word of each column (for ``top_words``/``most_similar``).

        Returns
        -------
        self
        """
        method = self.method
        x = validate_data(self, X, reset=True, accept_sparse=True)
        csr = check_counts(x, integer=method == "gibbs")
        D, V = csr.shape
        K, alpha, eta = self._check_params(D)
        vocab = self._check_vocabulary(vocabulary, V)
        if csr.nnz == 0:
            raise ValueError("X has no words (every document is empty)")
        rng = check_random_state(self.random_state)
        self.vocabulary_ = vocab
        self.doc_topic_prior_ = alpha
        self.topic_word_prior_ = eta
        if method == "gibbs":
            self._fit_gibbs(csr, K, alpha, eta, rng)
        else:
            self._fit_variational(csr, K, alpha, eta, rng)
        self.topic_word_ = self.components_ / self.components_.sum(
            axis=1, keepdims=True
        )
        if x.dtype == np.float32:  # scikit-learn keeps float32
            for name in (
                "components_",
                "topic_word_",
                "doc_topic_",
                "exp_dirichlet_component_",
            ):
                if hasattr(self, name):
                    setattr(self, name, getattr(self, name).astype(np.float32))
        return self

    def fit_transform(
        self, X: _Counts, y: object = None, *, vocabulary: _Vocabulary = None
    ) -> FloatArray:
        """Fit, then return the training documents' topic proportions."""
        return self._wrap_output(self.fit(X, vocabulary=vocabulary).doc_topic_, X)

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def _say(self, msg):
        print(msg, file=sys.stdout)

    # ------------------------------------------------------------ Gibbs
    def _fit_gibbs(self, csr, K, alpha, eta, rng):
        words, doc_ptr, nd = _tokens(csr)
        chain = GibbsSampler(
            words,
            doc_ptr,
            nd,
            csr.shape[1],
            K,
            alpha,
            eta,
            rng,
            sparse=use_sparse(self.sampler, K),
            n_partitions=default_partitions(words.shape[0])
            if self.n_partitions is None
            else int(self.n_partitions),
        )
        t_last = time.perf_counter()

        def report(it, ll, since):
            nonlocal t_last
            if self.verbose:
                now = time.perf_counter()
                rate = words.shape[0] * since / max(now - t_last, 1e-12)
                self._say(
                    f"iteration {it:5d}  log p(w, z) {ll:.6e}  {rate:.3g} tokens/s"
                )
                t_last = now

        self.loglikelihoods_ = chain.run(
            self.max_iter, self.n_jobs, self.evaluate_every, report
        )
        self.n_iter_ = self.max_iter
        self.components_ = chain.nwk.T.astype(np.float64) + eta
        self.doc_topic_ = (chain.ndk + alpha) / (nd[:, None] + K * alpha)
        self.nwk_ = chain.nwk
        self.ndk_ = chain.ndk
        self.nk_ = chain.nk
        self.z_ = chain.topics()

    # ------------------------------------------------------------ variational
    def _estep(self, csr, gamma, exp_elog_beta_wk, alpha, stats):
        D = csr.shape[0]
        K = gamma.shape[1]
        V = exp_elog_beta_wk.shape[0]
        sst = np.empty((V, K) if stats else (0, K))
        n_iter = np.empty(D, dtype=np.intc)
        m = max(int(np.diff(csr.indptr).max()), 1)
        bound = _lda.estep_docs(
            csr.indptr,
            csr.indices,
            csr.data,
            exp_elog_beta_wk,
            alpha,
            gamma,
            int(self.max_doc_update_iter),
            float(self.mean_change_tol),
            sst,
            np.empty((4, K)),
            n_iter,
            np.empty((m, K)),
            np.empty(m),
        )
        bound += D * (gammaln(K * alpha) - K * gammaln(alpha))
        return bound, sst, n_iter

    @staticmethod
    def _topic_bound(lam, elog_beta, eta):
        K, V = lam.shape
        return float(
            np.sum((eta - lam) * elog_beta + gammaln(lam))
            - K * V * gammaln(eta)
            + K * gammaln(V * eta)
            - np.sum(gammaln(lam.sum(axis=1)))
        )

    @staticmethod
    def _elog_beta(lam):
        return psi(lam) - psi(lam.sum(axis=1, keepdims=True))

    def _fit_variational(self, csr, K, alpha, eta, rng):
        D, V = csr.shape
        lam = rng.gamma(100.0, 0.01, size=(K, V))
        elog_beta = self._elog_beta(lam)
        n_words = float(csr.data.sum())
        lengths = np.asarray(csr.sum(axis=1)).ravel()
        gamma = np.empty((D, K))
        self.bounds_ = []
        every = self.evaluate_every
        last_perp = None
        self.n_iter_ = 0
        for it in range(self.max_iter):
            t0 = time.perf_counter()
            eeb_wk = np.ascontiguousarray(np.exp(elog_beta).T)
            # every E-step starts from alpha + N_d / K, as Blei's lda-c does
            gamma[:] = alpha + (lengths / K)[:, None]
            doc_bound, sst, _ = self._estep(csr, gamma, eeb_wk, alpha, stats=True)
            elbo = doc_bound + self._topic_bound(lam, elog_beta, eta)
            self.bounds_.append(elbo)
            # M-step (Blei et al. sec. 5.4): lambda_kw = eta + sum_d n_dw phi_dwk
            lam = eta + sst.T * eeb_wk.T
            elog_beta = self._elog_beta(lam)
            if self.optimize_priors:
                elog_theta = psi(gamma) - psi(gamma.sum(axis=1, keepdims=True))
                alpha = _newton_symmetric_dirichlet(
                    alpha, D, K, float(elog_theta.sum())
                )
                eta = _newton_symmetric_dirichlet(eta, K, V, float(elog_beta.sum()))
            check_diverged(
                self,
                it + 1,
                "use optimize_priors=False or larger priors",
                components_=lam,
                doc_topic_prior_=alpha,
                topic_word_prior_=eta,
            )
            self.n_iter_ = it + 1
            perp = float(np.exp(-elbo / n_words))
            if self.verbose:
                dt = time.perf_counter() - t0
                self._say(
                    f"iteration {it + 1:4d}  ELBO {elbo:.6e}  perplexity {perp:.4f}  "
                    f"{n_words / dt:.3g} tokens/s"
                )
            if every > 0 and (it + 1) % every == 0:
                if last_perp is not None and abs(last_perp - perp) < self.perp_tol:
                    break
                last_perp = perp
        else:
            if every > 0:
                warnings.warn(
                    f"LatentDirichletAllocation stopped at max_iter={self.max_iter} "
                    f"before the perplexity changed by less than perp_tol="
                    f"{self.perp_tol}; increase max_iter or perp_tol.",
                    exceptions.ConvergenceWarning,
                    stacklevel=3,
                )
        self.doc_topic_prior_ = alpha
        self.topic_word_prior_ = eta
        self.components_ = lam
        self.exp_dirichlet_component_ = np.exp(elog_beta)
        self.doc_topic_ = gamma / gamma.sum(axis=1, keepdims=True)

    # ------------------------------------------------------------ inference
    def _check_X(self, X):
        check_is_fitted(self, "components_")
        x = validate_data(self, X, reset=False, accept_sparse=True)
        return check_counts(x, integer=self.method == "gibbs")

    def _unnormalized_transform(self, csr):
        K = self.components_.shape[0]
        alpha = self.doc_topic_prior_
        lengths = np.asarray(csr.sum(axis=1)).ravel()
        gamma = np.empty((csr.shape[0], K))
        gamma[:] = alpha + (lengths / K)[:, None]
        eeb_wk = np.ascontiguousarray(self.exp_dirichlet_component_.T, dtype=np.float64)
        doc_bound = self._estep(csr, gamma, eeb_wk, alpha, stats=False)[0]
        return gamma, doc_bound

    def _fold_in(self, csr):
        K = self.components_.shape[0]
        alpha = self.doc_topic_prior_
        D = csr.shape[0]
        words, doc_ptr, nd = _tokens(csr)
        rng = check_random_state(self.random_state)
        z = rng.integers(K, size=words.shape[0]).astype(np.intc)
        doc_of = np.repeat(np.arange(D), nd)
        ndk = np.bincount(doc_of * K + z, minlength=D * K).astype(np.intc).reshape(D, K)
        phi_wk = np.ascontiguousarray(self.topic_word_.T, dtype=np.float64)
        n_iter = int(self.transform_iter)
        burn = n_iter // 5
        theta_sum = np.zeros((D, K))
        _lda.gibbs_fold_in(
            rng.bit_generator,
            words,
            doc_ptr,
            z,
            ndk,
            phi_wk,
            alpha,
            n_iter,
            burn,
            theta_sum,
            np.empty(K),
        )
        theta = theta_sum / (n_iter - burn) + alpha
        return theta / theta.sum(axis=1, keepdims=True)

    def transform(self, X: _Counts) -> FloatArray:
        """Topic proportions of documents ``X`` (rows sum to 1).

        Variational: normalised gamma from the E-step with the fitted topics. Gibbs:
        fold-in sampling with the topics fixed (``transform_iter`` sweeps, the first
        fifth discarded), averaging ``(n_dk + alpha)``. float32 input gives float32
        output.
        """
        csr = self._check_X(X)
        if self.method == "gibbs":
            theta = self._fold_in(csr)
        else:
            gamma, _ = self._unnormalized_transform(csr)
            theta = gamma / gamma.sum(axis=1, keepdims=True)
        dtype = np.float32 if getattr(X, "dtype", None) == np.float32 else np.float64
        return self._wrap_output(theta.astype(dtype, copy=False), X)

    def score(self, X: _Counts, y: object = None) -> float:
        """Variational: the ELBO of ``X`` (scikit-learn's approximate bound).
        Gibbs: ``sum_dw n_dw log sum_k theta_dk beta_kw`` with fold-in ``theta``."""
        return self._score(self._check_X(X))

    def _score(self, csr):
        if self.method == "gibbs":
            theta = self._fold_in(csr)
            coo = csr.tocoo()
            beta = self.topic_word_.astype(np.float64, copy=False)
            p = np.einsum("nk,kn->n", theta[coo.row], beta[:, coo.col])
            return float(np.sum(coo.data * np.log(p)))
        _, doc_bound = self._unnormalized_transform(csr)
        lam = self.components_.astype(np.float64)
        return doc_bound + self._topic_bound(
            lam, self._elog_beta(lam), self.topic_word_prior_
        )

    def perplexity(self, X: _Counts) -> float:
        """``exp(-score(X) / number of words)`` (as scikit-learn's)."""
        csr = self._check_X(X)
        n = float(csr.data.sum())
        if n == 0:
            raise ValueError("X has no words: perplexity is undefined")
        return float(np.exp(-self._score(csr) / n))

    # ------------------------------------------------------------ words
    def _vocab(self, vocabulary):
        V = self.n_features_in_
        if vocabulary is not None:
            return self._check_vocabulary(vocabulary, V)
        return self.vocabulary_

    def top_words(
        self, vocabulary: _Vocabulary = None, n: int = 10
    ) -> list[list[str]] | list[list[int]]:
        """The ``n`` most probable words of each topic (strings if a vocabulary is
        known, else column indices), most probable first."""
        check_is_fitted(self, "topic_word_")
        n = check_int(n, "n", low=1)
        vocab = self._vocab(vocabulary)
        order = np.argsort(-self.topic_word_, axis=1, kind="stable")[:, :n]
        if vocab is None:
            return [row.tolist() for row in order]
        return [[str(vocab[j]) for j in row] for row in order]

    def word_vectors(self) -> FloatArray:
        """Each word's column of the topic-word matrix, L2-normalised: (V, K)."""
        check_is_fitted(self, "topic_word_")
        vecs = self.topic_word_.T.copy()
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs

    def most_similar(
        self, word: str | int, n: int = 10, vocabulary: _Vocabulary = None
    ) -> list[tuple[str | int, float]]:
        """The ``n`` words with the highest cosine similarity of their word vectors.

        ``word`` is a string (needs a vocabulary) or a column index. Returns a list of
        ``(word, similarity)``, most similar first, without ``word`` itself.
        """
        n = check_int(n, "n", low=1)
        vecs = self.word_vectors()
        vocab = self._vocab(vocabulary)
        if isinstance(word, str):
            if vocab is None:
                raise ValueError("word is a string but no vocabulary was given")
            hits = np.flatnonzero(vocab == word)
            if hits.size == 0:
                raise ValueError(f"word {word!r} is not in the vocabulary")
            idx = int(hits[0])
        elif isinstance(word, (numbers.Integral, np.integer)) and not isinstance(
            word, bool
        ):
            idx = int(word)
            if not 0 <= idx < vecs.shape[0]:
                raise ValueError(
                    f"word index must be in [0, {vecs.shape[0]}), got {idx}"
                )
        else:
            raise TypeError(f"word must be a str or an int, got {type(word).__name__}")
        sims = vecs @ vecs[idx]
        sims[idx] = -np.inf
        order = np.argsort(-sims, kind="stable")[:n]
        names = order.tolist() if vocab is None else [str(vocab[j]) for j in order]
        return list(zip(names, sims[order].tolist(), strict=True))
