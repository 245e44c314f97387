"""HMM with multinomial emissions: counts of ``n_trials`` draws per step
(hmmlearn.hmm.MultinomialHMM)."""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from fastml._typing import ArrayLike, HMMAlgorithm, HMMImplementation, RandomStateLike
from fastml._validation import as_ndarray, check_array, check_int
from fastml.hmm._base import (
    _check_distribution,
    _ContinuousHMM,
    _keep_empty_rows,
    _normalize,
)

__all__ = ["MultinomialHMM"]


class MultinomialHMM(_ContinuousHMM):
    """HMM whose state emits the counts of ``n_trials`` categorical draws per step
    (hmmlearn.hmm.MultinomialHMM).

    Row ``t`` of ``X`` holds the counts ``x_t1 .. x_tM`` of ``M = n_features`` symbols
    in ``n_t = sum_j x_tj`` draws; in state ``k``

    ``p(x_t | z_t = k) = n_t! / prod_j x_tj! * prod_j p_kj ** x_tj``

    (Bishop, PRML eq. 2.34), with ``p_k = emissionprob_[k]``. With ``n_trials = 1`` it
    is :class:`CategoricalHMM` with one-hot rows. The emission M-step is
    ``p_kj = sum_t gamma_tk x_tj / sum_t gamma_tk n_t`` (hmmlearn's, no prior); a state
    that gets no posterior mass keeps its row.

    Parameters
    ----------
    n_components : int
        Number of states K.
    n_trials : int or array of int, optional
        Draws per step, one value for every row or one per row of the data. If None, it
        is set from the first data seen by :meth:`fit` (each row's sum, as hmmlearn);
        otherwise every row of ``X`` must sum to it. Sampling needs a single value.
    startprob_prior, transmat_prior : float or array
        Dirichlet prior parameters (1 = no prior).
    algorithm, random_state, n_iter, tol, verbose, implementation, n_jobs
        As in :class:`CategoricalHMM`.
    params, init_params : str
        Letters of the parameters to update / initialise: 's', 't', 'e'.

    Attributes
    ----------
    startprob_, transmat_, emissionprob_ : ndarray
    n_features : int
        Number of symbols M (set from the data on fit, or from ``emissionprob_``).
    monitor_ : ConvergenceMonitor

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.hmm import MultinomialHMM
    >>> m = MultinomialHMM(2, n_trials=5)
    >>> m.startprob_ = np.array([0.5, 0.5])
    >>> m.transmat_ = np.array([[0.9, 0.1], [0.1, 0.9]])
    >>> m.emissionprob_ = np.array([[0.8, 0.2], [0.1, 0.9]])
    >>> m.predict(np.array([[5, 0], [4, 1], [0, 5], [1, 4]])).tolist()
    [0, 0, 1, 1]
    """

    _emission_letters = "e"
    _fitted_attrs = ("startprob_", "transmat_", "emissionprob_")
    _features_attr = "emissionprob_"

    def __init__(
        self,
        n_components: int = 1,
        n_trials: ArrayLike | None = None,
        startprob_prior: ArrayLike = 1.0,
        transmat_prior: ArrayLike = 1.0,
        algorithm: HMMAlgorithm = "viterbi",
        random_state: RandomStateLike = None,
        n_iter: int = 10,
        tol: float = 1e-2,
        verbose: bool = False,
        params: str = "ste",
        init_params: str = "ste",
        implementation: HMMImplementation = "scaling",
        n_jobs: int | None = None,
    ) -> None:
        self.n_components = n_components
        self.n_trials = n_trials
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_jobs = n_jobs

    def _emission_sizes(self) -> dict:
        return {"e": self.n_components * (np.shape(self.emissionprob_)[1] - 1)}

    def _check_trials(self, n: int) -> np.ndarray | None:
        """``n_trials`` as an int64 array broadcastable to (n,), or None if unset."""
        if self.n_trials is None:
            return None
        trials = as_ndarray(self.n_trials, "n_trials")
        if trials.ndim > 1 or trials.dtype.kind not in "iuf":
            raise TypeError(
                f"n_trials must be an int or a 1-d array of ints, got {self.n_trials!r}"
            )
        if trials.dtype.kind == "f" and not (
            np.isfinite(trials).all() and (trials == np.round(trials)).all()
        ):
            raise TypeError(f"n_trials must hold integers, got {self.n_trials!r}")
        trials = trials.astype(np.int64)
        if (trials < 0).any():
            raise ValueError(f"n_trials must be >= 0, got {self.n_trials!r}")
        if trials.ndim == 1 and trials.shape[0] != n:
            raise ValueError(
                f"n_trials has {trials.shape[0]} entries but X has {n} rows "
                "(give one per row, or a single int)"
            )
        return trials

    def _check_X(self, X, *, fitting: bool):
        arr = check_array(X, "X", ndim=2, dtype=np.float64)
        bad = (arr < 0) | (arr != np.round(arr))
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"X must contain non-negative integer counts; found {arr[idx]} at {idx}"
            )
        m = self._n_symbols()
        if m is not None and arr.shape[1] != m:
            raise ValueError(f"X has {arr.shape[1]} features, but the model has {m}")
        sums = arr.sum(axis=1)
        trials = self._check_trials(arr.shape[0])
        if trials is None:
            if fitting:  # as hmmlearn: the data fix n_trials
                self.n_trials = sums.astype(np.int64)
        elif (sums != trials).any():
            i = int(np.argmax(sums != np.broadcast_to(trials, sums.shape)))
            raise ValueError(
                f"every row of X must sum to n_trials: row {i} sums to {sums[i]:g}, "
                f"n_trials is {np.broadcast_to(trials, sums.shape)[i]}"
            )
        if fitting:
            self.n_features = arr.shape[1]
        return arr

    def _n_symbols(self) -> int | None:
        if getattr(self, "n_features", None) is not None:
            return check_int(self.n_features, "n_features", low=1)
        if hasattr(self, "emissionprob_"):
            return int(np.shape(self.emissionprob_)[-1])
        return None

    def _check_emissions(self, k: int) -> None:
        m = self._n_symbols()
        ep = np.atleast_2d(as_ndarray(self.emissionprob_, "emissionprob_"))
        self.emissionprob_ = _check_distribution(
            ep, "emissionprob_", (k, ep.shape[1] if m is None else m)
        )
        self.n_features = self.emissionprob_.shape[1]

    def _init_emissions(self, Xv, rng) -> None:
        if "e" in self.init_params or not hasattr(self, "emissionprob_"):
            m = Xv.shape[1]
            self.emissionprob_ = _normalize(rng.random((self.n_components, m)), axis=1)

    def _log_likelihood(self, Xv) -> np.ndarray:
        p = self.emissionprob_
        with np.errstate(divide="ignore"):
            logp = np.log(p)
        # sum_j x_j log p_kj with 0 log 0 = 0; a count on a symbol of probability 0
        # makes the state impossible.
        xl = Xv @ np.where(p > 0, logp, 0.0).T
        zero = (p == 0).astype(np.float64)
        if zero.any():
            xl[(Xv @ zero.T) > 0] = -np.inf
        log_coef = gammaln(Xv.sum(axis=1) + 1) - gammaln(Xv + 1).sum(axis=1)
        return np.ascontiguousarray(xl + log_coef[:, None])

    def _block_emission_stats(self, lo, hi, gamma):
        """sum_t gamma_tk x_t over rows ``lo:hi`` (computed per block of sequences in
        the E-step threads, added in block order)."""
        if "e" not in self.params:
            return None
        return (gamma.T @ self._xfit[lo:hi],)

    def _mstep_emissions(self, stats) -> None:
        if "e" in self.params:
            (obs,) = stats["emission"]
            ep = _normalize(obs, axis=1)
            self.emissionprob_ = _keep_empty_rows(ep, self.emissionprob_)

    def _sample_emissions(self, states, rng) -> np.ndarray:
        trials = None if self.n_trials is None else np.unique(np.asarray(self.n_trials))
        if trials is None or trials.size != 1:
            raise ValueError(
                "sampling needs a single n_trials: set n_trials to an int, "
                f"got {self.n_trials!r}"
            )
        n = check_int(trials[0].item(), "n_trials", low=0)
        return rng.multinomial(n, self.emissionprob_[states])
