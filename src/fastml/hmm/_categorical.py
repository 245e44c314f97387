"""HMM with categorical emissions (hmmlearn.hmm.CategoricalHMM)."""

from __future__ import annotations

import numpy as np

from fastml._typing import ArrayLike, HMMAlgorithm, HMMImplementation, RandomStateLike
from fastml._validation import (
    as_ndarray,
    check_int,
)
from fastml.hmm._base import (
    _BaseHMM,
    _check_distribution,
    _keep_empty_rows,
    _log0,
    _normalize,
)

__all__ = ["CategoricalHMM"]


class CategoricalHMM(_BaseHMM):
    """HMM with categorical emissions (hmmlearn.hmm.CategoricalHMM).

    ``X`` holds integer symbols in ``[0, n_features)``, shape (n_samples, 1);
    ``-1`` (or a masked entry of a ``numpy.ma`` array) marks a missing
    observation, which is marginalised out.

    Parameters
    ----------
    n_components : int
        Number of states K.
    startprob_prior, transmat_prior, emissionprob_prior : float or array
        Dirichlet prior parameters (1 = no prior, the ML estimate).
    n_features : int, optional
        Number of symbols M; if None, :meth:`fit` sets it from the data (max + 1) or
        ``emissionprob_``, as hmmlearn does.
    algorithm : {"viterbi", "map"}
    random_state : None, int or numpy.random.Generator
    n_iter, tol : int, float
        EM stops after ``n_iter`` iterations or when the gain is below ``tol`` (a
        :class:`~fastml.exceptions.ConvergenceWarning` if ``n_iter`` comes first).
    verbose : bool
    params, init_params : str
        Letters of the parameters to update / initialise: 's', 't', 'e'.
    implementation : {"scaling", "log"}
        Forward-backward variant (see the module docstring); scaling is faster and
        falls back to log space where it underflows.
    n_jobs : int, optional
        Threads for ``fit``, ``score``, ``score_samples``, ``predict``,
        ``predict_proba`` and ``decode`` over the sequences given by ``lengths``
        (blocks of whole sequences; one long sequence is one block). None: every
        usable CPU (capped by ``OMP_NUM_THREADS`` and threadpoolctl); -1: every CPU.
        Results have the same bits for every value: the blocks are fixed by
        ``lengths`` and their Baum-Welch statistics are added in block order.

    Attributes
    ----------
    startprob_, transmat_, emissionprob_ : ndarray
    n_features : int
    monitor_ : ConvergenceMonitor

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.hmm import CategoricalHMM
    >>> m = CategoricalHMM(2, n_features=2)
    >>> m.startprob_ = np.array([0.5, 0.5])
    >>> m.transmat_ = np.array([[0.8, 0.2], [0.2, 0.8]])
    >>> m.emissionprob_ = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> m.predict(np.array([[0], [0], [1], [1], [1]])).tolist()
    [0, 0, 1, 1, 1]
    """

    _emission_letters = "e"
    _fitted_attrs = ("startprob_", "transmat_", "emissionprob_")

    def __init__(
        self,
        n_components: int = 1,
        startprob_prior: ArrayLike = 1.0,
        transmat_prior: ArrayLike = 1.0,
        *,
        emissionprob_prior: ArrayLike = 1.0,
        n_features: int | None = None,
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
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.emissionprob_prior = emissionprob_prior
        self.n_features = n_features
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_jobs = n_jobs

    def _check_X(self, X, *, fitting: bool):
        mask = None
        if isinstance(X, np.ma.MaskedArray):
            mask = np.ma.getmaskarray(X)
            X = X.filled(-1)
        arr = as_ndarray(X, "X")
        if arr.ndim != 2 or arr.shape[1] != 1:
            hint = " (use X.reshape(-1, 1))" if arr.ndim == 1 else ""
            raise ValueError(
                f"X must have shape (n_samples, 1), got {arr.shape}{hint}"
            )  # as hmmlearn: one column of symbols, like every HMM's 2-D X
        arr = arr[:, 0]
        mask = None if mask is None else mask[:, 0]
        if arr.size == 0:
            raise ValueError("X must not be empty")
        if arr.dtype.kind not in "iu":
            if (
                arr.dtype.kind == "f"
                and np.isfinite(arr).all()
                and (arr == np.round(arr)).all()
            ):
                arr = arr.astype(np.int64)
            else:
                what = ""
                if arr.dtype.kind == "f":
                    what = " with NaN" if np.isnan(arr).any() else " with fractions"
                raise TypeError(
                    f"X must contain integer symbols (-1 for missing), got dtype "
                    f"{arr.dtype}{what}"
                )
        sym = np.require(arr, np.intp, "CA")  # C-contiguous and aligned
        if mask is not None:
            sym = np.where(mask, -1, sym)
        low, top = int(sym.min()), int(sym.max())
        if low < -1:
            i = int(np.argmax(sym < -1))
            raise ValueError(
                f"X symbols must be >= 0 (or -1 for missing); X[{i}] = {sym[i]}"
            )
        if fitting and self._n_features_unset():
            if top < 0:
                raise ValueError("X has no observed symbol (all -1)")
            m = top + 1
        else:
            m = self._n_symbols()
        if top >= m:
            i = int(np.argmax(sym >= m))
            raise ValueError(
                f"X contains symbol {sym[i]} at index {i}, outside [0, n_features={m})"
            )
        self._m_fit = m
        # Missing -> row m of the emission table, which is all ones (log 0).
        return np.where(sym < 0, m, sym) if low < 0 else sym

    def _emission_sizes(self) -> dict:
        return {"e": self.n_components * (self.emissionprob_.shape[1] - 1)}

    def _n_features_unset(self) -> bool:
        """True when fit takes ``n_features`` from the data (max symbol + 1)."""
        return self.n_features is None and not hasattr(self, "emissionprob_")

    def _n_symbols(self) -> int:
        if self.n_features is not None:
            return check_int(self.n_features, "n_features", low=1)
        if hasattr(self, "emissionprob_"):
            return np.shape(self.emissionprob_)[-1]
        return self._m_fit

    def _check_emissions(self, k: int) -> None:
        m = self._n_symbols()
        self.emissionprob_ = _check_distribution(
            self.emissionprob_, "emissionprob_", (k, m)
        )

    def _init_emissions(self, Xv, rng) -> None:
        self.n_features = self._m_fit  # set by fit, as hmmlearn
        if "e" in self.init_params or not hasattr(self, "emissionprob_"):
            m = self._m_fit
            self.emissionprob_ = _normalize(rng.random((self.n_components, m)), axis=1)

    def _frames(self, Xv, log: bool, cancel):
        table = np.ones((self.emissionprob_.shape[1] + 1, self.n_components))
        table[:-1] = self.emissionprob_.T
        return (_log0(table) if log else table), Xv, None

    def _mstep_emissions(self, stats) -> None:
        if "e" in self.params:
            obs = stats["counts"][:-1].T
            ep = _normalize(np.maximum(self.emissionprob_prior - 1 + obs, 0), axis=1)
            self.emissionprob_ = _keep_empty_rows(ep, self.emissionprob_)

    def _sample_emissions(self, states, rng) -> np.ndarray:
        cdf = np.cumsum(self.emissionprob_, axis=1)
        u = rng.random(len(states))
        x = (cdf[states] <= u[:, None]).sum(axis=1)
        return np.minimum(x, cdf.shape[1] - 1)[:, None]
