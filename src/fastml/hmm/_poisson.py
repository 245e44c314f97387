"""HMM with independent Poisson emissions per feature (hmmlearn.hmm.PoissonHMM)."""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from fastml._typing import ArrayLike, HMMAlgorithm, HMMImplementation, RandomStateLike
from fastml._validation import (
    check_array,
)
from fastml.hmm._base import _ContinuousHMM

__all__ = ["PoissonHMM"]


class PoissonHMM(_ContinuousHMM):
    """HMM with independent Poisson emissions per feature (hmmlearn.hmm.PoissonHMM).

    Parameters
    ----------
    n_components : int
    startprob_prior, transmat_prior : float or array
    lambdas_prior, lambdas_weight : float or array
        Gamma(alpha, beta) prior on the rates; the M-step is
        ``lambdas_ = (alpha + sum_t gamma_tk x_t) / (beta + sum_t gamma_tk)``.
    algorithm, random_state, n_iter, tol, verbose, params, init_params, implementation,
    n_jobs
        As in :class:`CategoricalHMM`; the emission letter is 'l'.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.hmm import PoissonHMM
    >>> m = PoissonHMM(2)
    >>> m.startprob_ = np.array([0.5, 0.5])
    >>> m.transmat_ = np.array([[0.9, 0.1], [0.1, 0.9]])
    >>> m.lambdas_ = np.array([[1.0], [10.0]])
    >>> m.predict(np.array([[0], [2], [11], [9]])).tolist()
    [0, 0, 1, 1]
    """

    _emission_letters = "l"
    _features_attr = "lambdas_"
    _fitted_attrs = ("startprob_", "transmat_", "lambdas_")

    def __init__(
        self,
        n_components: int = 1,
        startprob_prior: ArrayLike = 1.0,
        transmat_prior: ArrayLike = 1.0,
        lambdas_prior: ArrayLike = 0.0,
        lambdas_weight: ArrayLike = 0.0,
        algorithm: HMMAlgorithm = "viterbi",
        random_state: RandomStateLike = None,
        n_iter: int = 10,
        tol: float = 1e-2,
        verbose: bool = False,
        params: str = "stl",
        init_params: str = "stl",
        implementation: HMMImplementation = "scaling",
        n_jobs: int | None = None,
    ) -> None:
        self.n_components = n_components
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.lambdas_prior = lambdas_prior
        self.lambdas_weight = lambdas_weight
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
        return {"l": int(np.size(self.lambdas_))}

    def _check_X(self, X, *, fitting: bool):
        arr = check_array(X, "X", ndim=2, dtype=np.float64)
        if (arr < 0).any() or (arr != np.round(arr)).any():
            idx = tuple(
                int(i) for i in np.argwhere((arr < 0) | (arr != np.round(arr)))[0]
            )
            raise ValueError(
                f"X must contain non-negative integer counts; found {arr[idx]} at {idx}"
            )
        if not fitting and hasattr(self, "lambdas_"):
            d = np.shape(self.lambdas_)[1]
            if arr.shape[1] != d:
                raise ValueError(
                    f"X has {arr.shape[1]} features, but the model has {d}"
                )
        self._check_n_features(arr.shape[1], "X")
        return arr

    def _check_emissions(self, k: int) -> None:
        lam = check_array(self.lambdas_, "lambdas_", ndim=2, dtype=np.float64)
        self._check_n_features(lam.shape[1], "lambdas_")
        if lam.shape[0] != k:
            raise ValueError(
                f"lambdas_ must have shape ({k}, n_features), got {lam.shape}"
            )
        if (lam < 0).any():
            raise ValueError("lambdas_ must be non-negative")
        self.lambdas_ = lam

    def _init_emissions(self, Xv, rng) -> None:
        if "l" in self.init_params or not hasattr(self, "lambdas_"):
            mean, var = Xv.mean(), Xv.var()
            if mean > 0 and var > 0:
                self.lambdas_ = rng.gamma(
                    mean**2 / var, var / mean, size=(self.n_components, Xv.shape[1])
                )
            else:
                self.lambdas_ = np.full((self.n_components, Xv.shape[1]), mean + 1e-3)

    def _log_likelihood(self, Xv) -> np.ndarray:
        lam = self.lambdas_
        with np.errstate(divide="ignore"):
            loglam = np.log(lam)
        # x log(lambda) with the convention 0 log 0 = 0.
        xl = Xv @ np.where(lam > 0, loglam, 0.0).T
        zero = (lam == 0).astype(np.float64)
        if zero.any():
            xl[(Xv @ zero.T) > 0] = -np.inf
        lpr = xl - lam.sum(1) - gammaln(Xv + 1).sum(1)[:, None]
        return np.ascontiguousarray(lpr)

    def _block_emission_stats(self, lo, hi, gamma):
        """sum_t gamma_tk x_t over rows ``lo:hi`` (computed per block of sequences in
        the E-step threads, added in block order)."""
        if "l" not in self.params:
            return None
        return (gamma.T @ self._xfit[lo:hi],)

    def _mstep_emissions(self, stats) -> None:
        if "l" in self.params:
            post = stats["counts"][0][:, None]  # sum_t gamma_t, from the kernel
            (obs,) = stats["emission"]
            self.lambdas_ = (self.lambdas_prior + obs) / (self.lambdas_weight + post)

    def _sample_emissions(self, states, rng) -> np.ndarray:
        return rng.poisson(self.lambdas_[states]).astype(np.int64)
