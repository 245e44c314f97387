"""The estimator: :class:`LatentDirichletAllocation` (variational EM or collapsed Gibbs)."""

from __future__ import annotations

import numbers
import sys
import time
from collections.abc import Sequence
from typing import Any, Literal, TypeAlias, TypeVar

import numpy as np

from fastml._base import (
    BaseEstimator,
    TransformerMixin,
    check_is_fitted,
    validate_data,
)
from fastml._kernels import _lda
from fastml._parallel import blas_single_threaded, effective_n_jobs, is_dask_array
from fastml._typing import FloatArray, NDArray, RandomStateLike
from fastml._validation import (
    check_int,
    check_random_state,
    check_real,
    check_verbose,
)
from fastml.lda import _online
from fastml.lda._counts import _Counts, _tokens, check_counts
from fastml.lda._gibbs import GibbsSampler, default_partitions, use_sparse

_Vocabulary: TypeAlias = Sequence[str] | NDArray[Any] | None

__all__ = ["LatentDirichletAllocation"]

_METHODS = ("variational", "gibbs")
_LEARNING_METHODS = ("batch", "online")
_INITS = ("random", "documents")
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


_LDA = TypeVar("_LDA", bound="LatentDirichletAllocation")


class LatentDirichletAllocation(TransformerMixin, BaseEstimator):
    """Latent Dirichlet allocation (Blei, Ng & Jordan 2003).

    Parameters
    ----------
    n_components : int, default 10
        Number of topics K (any K >= 1; more topics than documents is allowed).
    method : {"variational", "gibbs"}, default "variational"
        Variational Bayes (Blei et al. sec. 5.3-5.4; batch or online, see
        ``learning_method``) or collapsed Gibbs sampling (Griffiths & Steyvers 2004).
    doc_topic_prior : float, optional
        Symmetric Dirichlet prior alpha on document-topic proportions (default 1/K).
    topic_word_prior : float, optional
        Symmetric Dirichlet prior eta on topic-word distributions (default 1/K).
    learning_method : {"batch", "online"}, default "batch"
        Variational only (scikit-learn's names and semantics). ``"batch"``: every
        iteration is an E-step on all documents and ``lambda = eta + S``. ``"online"``
        (Hoffman, Blei & Bach 2010, Algorithm 2): each pass cuts the documents into
        consecutive mini-batches of ``batch_size``, and each mini-batch B moves
        ``lambda`` towards ``eta + (D / |B|) S_B`` with weight
        ``rho_t = (learning_offset + t)^-learning_decay``, ``t = n_batch_iter_``.
    learning_decay : float, default 0.7
        kappa in (0.5, 1] (the range in which online VB converges, Hoffman et al.
        sec. 2.2).
    learning_offset : float, default 10.0
        tau_0 > 0: down-weights the first mini-batches.
    batch_size : int, default 128
        Documents per mini-batch (online learning and ``partial_fit``).
    total_samples : float, default 1e6
        D in the online update of ``partial_fit`` (``fit`` uses the number of rows).
    max_iter : int, default 10
        Variational: passes over the data (batch EM iterations or online epochs).
        Gibbs: sweeps.
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
    init : {"random", "documents"}, default "random"
        Variational ``fit`` only: the starting topics. "random": ``lambda`` ~
        Gamma(100, 1/100) (scikit-learn's start). "documents": the same draws plus
        10 times the counts of ``n_components`` documents chosen by k-means++ on
        cosine distance (Arthur & Vassilvitskii 2007), so that each topic starts near
        a different document; with ``split_merge`` it is what brings the synthetic
        corpus of ``bench/`` (K = 100) to a matched cosine of 0.9.
    split_merge : bool, default False
        Batch variational only: after 10 passes, rounds of moves that split a topic
        whose documents form two clusters and give one half the slot of the least
        used topic (split-and-merge EM, Ueda et al. 2000; see
        :mod:`fastml.lda._moves`). A round is kept if the ELBO 3 passes later is
        higher than before it, and the next round follows; a rejected round restores
        the topics and ends the moves (``evaluate_every`` stops the fit only after
        them; ``bounds_`` holds every pass, those of an undone round included).
        Batch VB from a random start keeps topics that hold two true topics and
        topics that hold stray words; on the synthetic corpus of ``bench/``
        (K = 100, with ``init="documents"``) the moves take the matched cosine to
        the true topics from 0.63 to 0.91. Off by default, so that a fit gives
        scikit-learn's topics for the same start.
    transform_iter : int, default 50
        Gibbs only: fold-in sweeps in ``transform`` (the first fifth are burn-in).
    sampler : {"auto", "dense", "sparse"}, default "auto"
        Gibbs only: the O(K) dense draw (masses summed in float32), or an exact
        sparse draw (F+LDA's sum tree, Yu et al. 2015, for frequent words: O(topics
        of the document + log K) per token; SparseLDA's s/r/q buckets, Yao, Mimno &
        McCallum 2009, for rare words); both draw from the same conditional (G&S
        eq. 5). "auto": sparse for ``n_components >= 128`` (the measured
        crossover), dense below.
    n_partitions : int, optional
        Gibbs only: documents and vocabulary are each cut into this many parts and a
        sweep runs as ``n_partitions`` rounds of independent (document part, word
        part) blocks (tomotopy's PARTITION scheme), spread over ``n_jobs`` threads.
        The result depends on ``random_state`` and ``n_partitions``, never on
        ``n_jobs``; 1 is the serial sampler. Default (None): from the corpus size,
        1 below 2**18 tokens (a sweep then takes milliseconds, less than the
        partitions' hand-offs save), 4 below 2**20, 8 from 2**20 tokens.
    syncs_per_sweep : int, default 2
        Gibbs on a dask array only (AD-LDA, one partition per row chunk): the
        partitions' count changes are merged this many times per sweep, each time
        after every partition has resampled the next ``1 / syncs_per_sweep`` of its
        tokens. Each merge is one round trip to the cluster; between merges a
        partition does not see the others' moves, so more merges mean less stale
        counts. On Reuters (K = 20, 4 chunks, 200 sweeps, seeds 0-7) the mean
        log-likelihood gap to the serial sampler is 0.52% with 1 and 0.26% with 2.
    random_state : None, int or numpy.random.Generator
        Initial ``lambda`` ~ Gamma(100, 1/100) and, for every training E-step, the
        starting gamma ~ Gamma(100, 1/100) (as scikit-learn and Hoffman's
        onlineldavb); Gibbs: the initial topics and the sweeps.
    n_jobs : int or None, default None
        Threads. None: all usable CPUs (see
        :func:`fastml._parallel.effective_n_jobs`), -1: all CPUs. Variational: the
        per-document E-step (``fit``, ``partial_fit``, ``transform``, ``score``);
        documents are cut into blocks fixed by the data and the topic-word statistics
        are added in block order. Gibbs: the partition blocks of a sweep (see
        ``n_partitions``). Either way the result is the same, bit for bit, for every
        ``n_jobs``.
    verbose : int or bool, default 0
        1 or more (True is 1). Variational: one line per pass, scikit-learn's
        ``iteration: i of max_iter: n`` with ``, perplexity: p`` at the passes
        ``evaluate_every`` picks, then tokens/s and (batch) the ELBO. Gibbs: one
        line per evaluation (sweep, log p(w, z), tokens/s).

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
        Training documents' topic proportions (normalised gamma from an E-step with
        the final topics, equal to ``transform(X)``; or
        ``(n_dk + alpha) / (n_d + K alpha)``).
    exp_dirichlet_component_ : ndarray (K, V)
        Variational only: ``exp(E[log beta])``.
    bounds_ : list of float
        Variational only. Batch: the ELBO at each E-step (with the lambda it used);
        each E-step restarts gamma from Gamma(100, 1/100) draws, as scikit-learn, so
        the sequence rises but is not guaranteed monotone. Online: the training-set
        ELBO every ``evaluate_every`` passes (empty when ``evaluate_every <= 0``).
    bound_ : float
        Variational only: the training perplexity after ``fit`` (scikit-learn's
        ``bound_``), from the same E-step as ``doc_topic_``.
    n_batch_iter_ : int
        Variational only: 1 + the number of M-steps (mini-batches online), the ``t``
        of the online learning rate (continued by ``partial_fit``).
    random_state_ : numpy.random.Generator
        Variational only: the generator ``partial_fit`` continues to draw from.
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
    ``E[log beta]`` from the variational Dirichlet lambda, sec. 5.4); batch M-step
    ``lambda_kw = eta + sum_d n_dw phi_dwk``; online M-step
    ``lambda <- (1 - rho_t) lambda + rho_t (eta + D / |B| sum_{d in B} n_dw phi_dwk)``
    (Hoffman, Blei & Bach 2010, Algorithm 2; the same update and defaults as
    scikit-learn's ``LatentDirichletAllocation``, which this class can replace by
    import). Gibbs: G&S eq. 5 per token.

    References
    ----------
    D. M. Blei, A. Y. Ng, M. I. Jordan, "Latent Dirichlet allocation", JMLR 3, 2003.
    T. L. Griffiths, M. Steyvers, "Finding scientific topics", PNAS 101, 2004.
    T. Minka, "Estimating a Dirichlet distribution", 2000.
    M. D. Hoffman, D. M. Blei, F. Bach, "Online learning for latent Dirichlet
    allocation", NIPS 2010.
    N. Ueda, R. Nakano, Z. Ghahramani, G. E. Hinton, "SMEM algorithm for mixture
    models", Neural Computation 12, 2000.

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
        learning_method: Literal["batch", "online"] = "batch",
        learning_decay: float = 0.7,
        learning_offset: float = 10.0,
        batch_size: int = 128,
        total_samples: float = 1e6,
        max_iter: int = 10,
        evaluate_every: int = -1,
        perp_tol: float = 1e-1,
        mean_change_tol: float = 1e-3,
        max_doc_update_iter: int = 100,
        optimize_priors: bool = False,
        init: Literal["random", "documents"] = "random",
        split_merge: bool = False,
        transform_iter: int = 50,
        sampler: Literal["auto", "dense", "sparse"] = "auto",
        n_partitions: int | None = None,
        syncs_per_sweep: int = 2,
        random_state: RandomStateLike = None,
        n_jobs: int | None = None,
        verbose: int = 0,
    ) -> None:
        self.n_components = n_components
        self.method = method
        self.doc_topic_prior = doc_topic_prior
        self.topic_word_prior = topic_word_prior
        self.learning_method = learning_method
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.batch_size = batch_size
        self.total_samples = total_samples
        self.max_iter = max_iter
        self.evaluate_every = evaluate_every
        self.perp_tol = perp_tol
        self.mean_change_tol = mean_change_tol
        self.max_doc_update_iter = max_doc_update_iter
        self.optimize_priors = optimize_priors
        self.init = init
        self.split_merge = split_merge
        self.transform_iter = transform_iter
        self.sampler = sampler
        self.n_partitions = n_partitions
        self.syncs_per_sweep = syncs_per_sweep
        self.random_state = random_state
        self.n_jobs = n_jobs
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
    def _check_params(self):
        K = check_int(self.n_components, "n_components", low=1)
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
        check_int(self.syncs_per_sweep, "syncs_per_sweep", low=1, high=2**31 - 1)
        check_verbose(self.verbose)
        for name in ("optimize_priors", "split_merge"):
            flag = getattr(self, name)
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
        if self.init not in _INITS:
            raise ValueError(f"init must be one of {_INITS}, got {self.init!r}")
        if self.init != "random" and self.method == "gibbs":
            raise ValueError(
                "init='documents' is only available for method='variational'"
            )
        if self.split_merge and (
            self.method == "gibbs" or self.learning_method == "online"
        ):
            raise ValueError(
                "split_merge=True is only available for method='variational' with "
                "learning_method='batch'"
            )
        if self.optimize_priors and self.method == "gibbs":
            raise ValueError(
                "optimize_priors=True is only available for method='variational'"
            )
        self._check_online_params()
        if self.optimize_priors and self.learning_method == "online":
            raise ValueError(
                "optimize_priors=True is only available for learning_method='batch'"
            )
        return K, alpha, eta

    def _check_online_params(self):
        if self.learning_method not in _LEARNING_METHODS:
            raise ValueError(
                f"learning_method must be one of {_LEARNING_METHODS}, got "
                f"{self.learning_method!r}"
            )
        check_real(
            self.learning_decay, "learning_decay", low=0.5, high=1.0, low_open=True
        )
        check_real(self.learning_offset, "learning_offset", low=0.0, low_open=True)
        check_int(self.batch_size, "batch_size", low=1)
        check_real(self.total_samples, "total_samples", low=0.0, low_open=True)
        return effective_n_jobs(self.n_jobs)

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
        X : array_like, scipy.sparse matrix or dask array, shape (n_docs, n_words)
            Counts (non-negative; integers for ``method="gibbs"``). A
            ``dask.array.Array`` (rows = documents; numpy or scipy.sparse chunks) is
            fitted on the Dask workers (:mod:`fastml.lda._dask`): variational batch EM
            with the E-step on the workers (the in-memory fit's result, to rounding;
            ``doc_topic_`` is then a lazy dask array), or AD-LDA Gibbs (Newman et al.
            2009) with each row chunk a partition whose state stays on its worker
            (the result depends on ``random_state``, the chunking and
            ``syncs_per_sweep``; ``n_partitions``
            must be None and ``n_jobs`` is not used; ``ndk_`` and ``doc_topic_`` are
            dask arrays held by the cluster, ``z_`` is not set).
        y : ignored
        vocabulary : sequence of str, optional
            The word of each column (for ``top_words``/``most_similar``).

        Returns
        -------
        self
        """
        if is_dask_array(X):
            from fastml.lda import _dask

            return _dask.fit(self, X, vocabulary)
        method = self.method
        x = validate_data(self, X, reset=True, accept_sparse=True)
        csr = check_counts(x, integer=method == "gibbs")
        V = csr.shape[1]
        K, alpha, eta = self._check_params()
        n_jobs = self._check_online_params()
        vocab = self._check_vocabulary(vocabulary, V)
        if csr.nnz == 0:
            raise ValueError("X has no words (every document is empty)")
        rng = check_random_state(self.random_state)
        self.vocabulary_ = vocab
        self.doc_topic_prior_ = alpha
        self.topic_word_prior_ = eta
        if method == "gibbs":
            self._fit_gibbs(csr, K, alpha, eta, rng)
            self.topic_word_ = self.components_ / self.components_.sum(
                axis=1, keepdims=True
            )
            self._keep_dtype(x.dtype)
            return self
        self.random_state_ = rng  # partial_fit continues its stream
        with blas_single_threaded(n_jobs > 1):
            lam, elog_b, alpha, eta = _online.fit(self, csr, K, alpha, eta, rng, n_jobs)
            self.doc_topic_prior_ = alpha
            self.topic_word_prior_ = eta
            self._set_topics(lam, elog_b, x.dtype)
            # the training documents' topics with the final topics (what
            # transform(X) gives), and scikit-learn's bound_: the training
            # perplexity there
            gamma, doc_bound = self._unnormalized_transform(csr, n_jobs)
        self.doc_topic_ = (gamma / gamma.sum(axis=1, keepdims=True)).astype(
            self.components_.dtype, copy=False
        )
        self.bound_ = float(
            np.exp(-(doc_bound + self._topic_part()) / float(csr.data.sum()))
        )
        return self

    def partial_fit(self: _LDA, X: _Counts, y: object = None) -> _LDA:
        """Online VB on the mini-batches of ``X`` (Hoffman et al. 2010, Algorithm 2).

        The first call starts the model (``lambda`` ~ Gamma(100, 1/100)); every call
        cuts ``X`` into consecutive mini-batches of ``batch_size`` documents and
        applies one online update per mini-batch with ``D = total_samples``
        (scikit-learn's ``partial_fit``). ``doc_topic_`` and ``bound_`` are not set.

        Parameters
        ----------
        X : array_like or scipy.sparse matrix, shape (n_docs, n_words)
            Non-negative counts with the vocabulary of the first call.
        y : ignored

        Returns
        -------
        self

        Raises
        ------
        ValueError
            ``method="gibbs"``, bad parameters or counts, or a number of columns that
            differs from the first call's.
        """
        if self.method != "variational":
            raise ValueError(
                f"partial_fit needs method='variational', got method={self.method!r}"
            )
        if is_dask_array(X):
            raise TypeError(
                "partial_fit takes in-memory mini-batches, not a dask array: pass "
                "X.compute() (or fit the dask array with learning_method='batch')"
            )
        first = not hasattr(self, "components_")
        x = validate_data(self, X, reset=first, accept_sparse=True)
        csr = check_counts(x)
        K, alpha, eta = self._check_params()
        n_jobs = self._check_online_params()
        if self.split_merge or self.init != "random":
            raise ValueError(
                "split_merge=True and init='documents' are only available for fit "
                "(they need all documents), not partial_fit"
            )
        if first:
            self.random_state_ = check_random_state(self.random_state)
            self.vocabulary_ = None
            self.doc_topic_prior_ = alpha
            self.topic_word_prior_ = eta
            self.n_batch_iter_ = 1
            self.n_iter_ = 0
            self.bounds_ = []
            lam = self.random_state_.gamma(100.0, 0.01, (K, csr.shape[1]))
            dtype = x.dtype
        else:
            lam = self.components_.astype(np.float64)
            dtype = self.components_.dtype
        alpha, eta = self.doc_topic_prior_, self.topic_word_prior_
        elog_b = _online.elog_beta(lam)
        D = csr.shape[0]
        with blas_single_threaded(n_jobs > 1):
            for s in range(0, D, int(self.batch_size)):
                blocks = _online.DocBlocks(csr, s, min(s + int(self.batch_size), D))
                lam, elog_b = _online.online_step(
                    self,
                    blocks,
                    lam,
                    elog_b,
                    alpha,
                    eta,
                    self.random_state_,
                    self.total_samples,
                    n_jobs,
                )
        self.__dict__.pop("doc_topic_", None)
        self.__dict__.pop("bound_", None)
        self._set_topics(lam, elog_b, dtype)
        return self

    def _set_topics(self, lam, elog_b, dtype):
        self.components_ = lam
        self.exp_dirichlet_component_ = np.exp(elog_b)
        self.topic_word_ = lam / lam.sum(axis=1, keepdims=True)
        self._keep_dtype(dtype)

    def _keep_dtype(self, dtype):
        if dtype == np.float32:  # scikit-learn keeps float32
            for name in (
                "components_",
                "topic_word_",
                "doc_topic_",
                "exp_dirichlet_component_",
            ):
                if hasattr(self, name):
                    setattr(self, name, getattr(self, name).astype(np.float32))

    def fit_transform(
        self,
        X: _Counts,
        y: object = None,
        *,
        normalize: bool = True,
        vocabulary: _Vocabulary = None,
    ) -> FloatArray:
        """Fit, then return the training documents' topic proportions.

        Variational: equals ``fit(X).transform(X, normalize=normalize)``. Gibbs: the
        fitted chain's ``doc_topic_`` (``normalize=False``: ``n_dk + alpha``).
        """
        self.fit(X, vocabulary=vocabulary)
        if self.method == "variational":
            return self.transform(X, normalize=normalize)
        theta = self.doc_topic_
        if not normalize:
            theta = self.ndk_ + self.doc_topic_prior_
        if is_dask_array(X):
            return theta
        return self._wrap_output(theta, X)

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
        self.nwk_ = chain.topic_word_counts()
        self.components_ = self.nwk_.T.astype(np.float64) + eta
        self.doc_topic_ = (chain.ndk + alpha) / (nd[:, None] + K * alpha)
        self.ndk_ = chain.ndk
        self.nk_ = chain.nk
        self.z_ = chain.topics()

    # ------------------------------------------------------------ variational
    def _topic_part(self):
        lam = self.components_.astype(np.float64)
        return _online.topic_bound(lam, _online.elog_beta(lam), self.topic_word_prior_)

    # ------------------------------------------------------------ inference
    def _check_X(self, X):
        check_is_fitted(self, "components_")
        x = validate_data(self, X, reset=False, accept_sparse=True)
        return check_counts(x, integer=self.method == "gibbs")

    def _unnormalized_transform(self, csr, n_jobs=None):
        """gamma of every document with the fitted topics (E-step from gamma = 1, as
        scikit-learn's transform) and the document part of the ELBO there."""
        outer = n_jobs is not None  # called inside fit's blas_single_threaded
        if not outer:
            n_jobs = effective_n_jobs(self.n_jobs)
        K = self.components_.shape[0]
        gamma = np.ones((csr.shape[0], K))
        eeb_wk = np.ascontiguousarray(self.exp_dirichlet_component_.T, dtype=np.float64)
        with blas_single_threaded(not outer and n_jobs > 1):
            doc_bound, _ = _online.estep(
                _online.DocBlocks(csr, 0, csr.shape[0]),
                eeb_wk,
                self.doc_topic_prior_,
                gamma,
                stats=False,
                max_iter=self.max_doc_update_iter,
                tol=self.mean_change_tol,
                n_jobs=n_jobs,
            )
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

    def transform(self, X: _Counts, *, normalize: bool = True) -> FloatArray:
        """Topic proportions of documents ``X``.

        Variational: gamma from the E-step with the fitted topics, started at
        gamma = 1 (scikit-learn's transform), over ``n_jobs`` threads. Gibbs: fold-in
        sampling with the topics fixed (``transform_iter`` sweeps, the first fifth
        discarded), averaging ``(n_dk + alpha)``. float32 input gives float32 output.

        Parameters
        ----------
        X : array_like or scipy.sparse matrix, shape (n_docs, n_words)
        normalize : bool, default True
            Rows summing to 1 (as scikit-learn >= 1.5). False: variational gamma, or
            Gibbs' average ``n_dk + alpha`` (pseudo-counts).

        Returns
        -------
        ndarray, shape (n_docs, n_components)
        """
        if not isinstance(normalize, (bool, np.bool_)):
            raise TypeError(f"normalize must be a bool, got {type(normalize).__name__}")
        if is_dask_array(X):  # variational only: a lazy dask array
            from fastml.lda import _dask

            check_is_fitted(self, "components_")
            return _dask.transform(self, X, normalize)
        csr = self._check_X(X)
        if self.method == "gibbs":
            theta = self._fold_in(csr)
            if not normalize:  # sum_k (mean n_dk + alpha) = n_d + K alpha
                n_d = np.asarray(csr.sum(axis=1)).ravel()
                theta = theta * (n_d + theta.shape[1] * self.doc_topic_prior_)[:, None]
        else:
            theta, _ = self._unnormalized_transform(csr)
            if normalize:
                theta = theta / theta.sum(axis=1, keepdims=True)
        dtype = np.float32 if getattr(X, "dtype", None) == np.float32 else np.float64
        return self._wrap_output(theta.astype(dtype, copy=False), X)

    def score(self, X: _Counts, y: object = None) -> float:
        """Variational: the ELBO of ``X`` (scikit-learn's approximate bound).
        Gibbs: ``sum_dw n_dw log sum_k theta_dk beta_kw`` with fold-in ``theta``.
        A dask array (variational only) is scored on the workers."""
        if is_dask_array(X):
            return self._dask_score(X)[0]
        return self._score(self._check_X(X))

    def _dask_score(self, X):
        from fastml.lda import _dask

        check_is_fitted(self, "components_")
        return _dask.score(self, X)

    def _score(self, csr):
        if self.method == "gibbs":
            theta = self._fold_in(csr)
            coo = csr.tocoo()
            beta = self.topic_word_.astype(np.float64, copy=False)
            p = np.einsum("nk,kn->n", theta[coo.row], beta[:, coo.col])
            return float(np.sum(coo.data * np.log(p)))
        _, doc_bound = self._unnormalized_transform(csr)
        return doc_bound + self._topic_part()

    def perplexity(self, X: _Counts, sub_sampling: bool = False) -> float:
        """``exp(-score(X) / number of words)`` (as scikit-learn's).

        ``sub_sampling=True`` (as scikit-learn's): ``X`` stands for a sample of
        ``total_samples`` documents, so the per-document part of the variational
        bound and the word count are scaled by ``total_samples / n_docs`` (the
        topics' part is not). The Gibbs score is all per-document terms, so the
        scaling cancels and the value is unchanged.
        """
        if not isinstance(sub_sampling, (bool, np.bool_)):
            raise TypeError(
                f"sub_sampling must be a bool, got {type(sub_sampling).__name__}"
            )
        if is_dask_array(X):
            score, n = self._dask_score(X)
        else:
            X = csr = self._check_X(X)
            score, n = None, float(csr.data.sum())
        if n == 0:
            raise ValueError("X has no words: perplexity is undefined")
        if score is None:
            score = self._score(csr)
        if sub_sampling and self.method != "gibbs":
            ratio = check_real(
                self.total_samples, "total_samples", low=0.0, low_open=True
            ) / float(X.shape[0])
            topics = self._topic_part()
            score = (score - topics) * ratio + topics
            n *= ratio
        return float(np.exp(-score / n))

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
