"""Hidden Markov models (PRML sec. 13.2) with hmmlearn's names, on compiled kernels.

``CategoricalHMM``, ``GaussianHMM`` and ``PoissonHMM`` take the same constructor
parameters and expose the same fitted attributes as their hmmlearn namesakes
(``startprob_``, ``transmat_``, ``emissionprob_``, ``means_``, ``covars_``,
``lambdas_``, ``monitor_``), so switching is an import change.

Inference runs in :mod:`fastml._kernels._hmm`: the scaled forward-backward recursion
(PRML eqs. 13.59-13.65) is the default; ``implementation="log"`` runs it in log space.
With ``"scaling"``, a sequence whose scaling factor c_n underflows (e.g. a symbol that
every reachable state gives probability 0, or frame likelihoods below 1e-308 after the
per-frame shift) is redone in log space automatically, so both settings give the same
result; ``"scaling"`` is faster. Continuous emissions are shifted by their per-frame
maximum before exponentiation, so scaling never underflows on them in practice.

Missing observations: rows of NaN in ``GaussianHMM`` input (partially observed rows
too, for ``"diag"``/``"spherical"``) and the value ``-1`` (or a masked entry of a
``numpy.ma`` array) in ``CategoricalHMM`` input have emission likelihood 1: they are
marginalised out of the E-step, scoring and decoding, and do not enter the emission
M-step.
"""

from __future__ import annotations

import logging
import sys

import numpy as np
from scipy import linalg
from scipy.special import gammaln

from fastml._base import BaseEstimator, check_is_fitted
from fastml._kernels import _hmm
from fastml._validation import (
    as_ndarray,
    check_array,
    check_int,
    check_random_state,
    check_real,
)

__all__ = ["CategoricalHMM", "ConvergenceMonitor", "GaussianHMM", "PoissonHMM"]

_log = logging.getLogger(__name__)

#: Tolerance on the row sums of probability vectors and stochastic matrices.
SUM_TOL = 1e-6
COVARIANCE_TYPES = ("spherical", "diag", "full", "tied")


class ConvergenceMonitor:
    """EM convergence record: the log-likelihood of every iteration.

    Attributes
    ----------
    history : list of float
        log p(X) under the parameters of each E-step, in order (hmmlearn keeps only the
        last two; this keeps all, so ``history`` can be plotted).
    iter : int
        Number of EM iterations performed.
    converged : bool
        True once ``n_iter`` iterations ran or the last gain was below ``tol``.
    """

    def __init__(self, tol, n_iter, verbose):
        self.tol = tol
        self.n_iter = n_iter
        self.verbose = verbose
        self.history: list[float] = []
        self.iter = 0

    def _reset(self):
        self.iter = 0
        self.history.clear()

    def report(self, log_prob: float) -> None:
        """Record one iteration's log-likelihood (printed when ``verbose``)."""
        if self.verbose:
            delta = log_prob - self.history[-1] if self.history else float("nan")
            print(
                f"{self.iter + 1:>10d} {log_prob:>16.8f} {delta:>+16.8f}",
                file=sys.stderr,
            )
        if self.history and log_prob - self.history[-1] < -1e-8 * max(
            1.0, abs(log_prob)
        ):
            _log.warning(
                "log-likelihood decreased from %r to %r", self.history[-1], log_prob
            )
        self.history.append(float(log_prob))
        self.iter += 1

    @property
    def converged(self) -> bool:
        return self.iter == self.n_iter or (
            len(self.history) >= 2 and self.history[-1] - self.history[-2] < self.tol
        )

    def __repr__(self) -> str:
        return (
            f"ConvergenceMonitor(tol={self.tol}, n_iter={self.n_iter}, "
            f"iter={self.iter}, converged={self.converged})"
        )


def _spans(lengths, n: int) -> np.ndarray:
    """[start, end) rows of each sequence, shape (S, 2), from ``lengths``."""
    if lengths is None:
        return np.array([[0, n]], dtype=np.intp)
    arr = as_ndarray(lengths, "lengths")
    if arr.ndim != 1:
        raise ValueError(f"lengths must be 1-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("lengths must not be empty")
    if arr.dtype.kind not in "iu":
        if (
            arr.dtype.kind == "f"
            and np.all(np.isfinite(arr))
            and np.all(arr == np.round(arr))
        ):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"lengths must contain integers, got dtype {arr.dtype}")
    if (arr <= 0).any():
        i = int(np.argmax(arr <= 0))
        raise ValueError(
            f"lengths must be positive (no zero-length sequences); lengths[{i}] = {arr[i]}"
        )
    total = int(arr.sum())
    if total != n:
        raise ValueError(
            f"lengths must sum to the number of samples in X ({n}), got {total}"
        )
    ends = np.cumsum(arr, dtype=np.intp)
    return np.ascontiguousarray(np.stack([ends - arr, ends], axis=1), dtype=np.intp)


def _check_distribution(arr, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Validate a probability vector (1-D) or row-stochastic matrix (2-D)."""
    out = check_array(arr, name, dtype=np.float64)
    if out.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {out.shape}")
    if (out < 0).any():
        idx = tuple(int(i) for i in np.argwhere(out < 0)[0])
        raise ValueError(
            f"{name} must be non-negative; found {out[idx]} at index {idx}"
        )
    sums = out.sum(axis=-1)
    bad = np.abs(sums - 1.0) > SUM_TOL
    if bad.any():
        if out.ndim == 1:
            raise ValueError(
                f"{name} must sum to 1 (sums to {sums:.6g}, tol={SUM_TOL})"
            )
        i = int(np.argmax(bad))
        raise ValueError(
            f"{name} rows must sum to 1 (row {i} sums to {sums[i]:.6g}, tol={SUM_TOL})"
        )
    return out


def _normalize(a: np.ndarray, axis=None) -> np.ndarray:
    """Divide by the sum along ``axis``, leaving all-zero slices at zero (hmmlearn)."""
    s = a.sum(axis=axis, keepdims=True)
    s[s == 0] = 1
    return a / s


def _keep_empty_rows(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """Rows of ``new`` that got no expected counts (all zero) keep their old value, so
    a state the data never visits leaves a valid distribution (hmmlearn leaves zeros)."""
    empty = new.sum(axis=1) == 0
    if empty.any():
        new = new.copy()
        new[empty] = old[empty]
    return new


def _log0(a: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(a)


def _backptr_dtype(k: int):
    if k <= 127:
        return np.int8
    if k <= 32767:
        return np.int16
    return np.int32


class _BaseHMM(BaseEstimator):
    """Shared HMM machinery; subclasses define the emission model."""

    _emission_letters = ""

    # ---- subclass hooks -------------------------------------------------------------
    def _check_X(self, X, *, fitting: bool):  # pragma: no cover - abstract
        raise NotImplementedError

    def _frames(self, Xv, log: bool):  # pragma: no cover - abstract
        """(table, rows, shift): see the kernel module docstring; shift is (T,) or None."""
        raise NotImplementedError

    # ---- validation -----------------------------------------------------------------
    def _check_hyper(self) -> int:
        k = check_int(self.n_components, "n_components", low=1)
        check_int(self.n_iter, "n_iter", low=0)
        check_real(self.tol, "tol")
        if self.implementation not in ("scaling", "log"):
            raise ValueError(
                f"implementation must be 'scaling' or 'log', got {self.implementation!r}"
            )
        if self.algorithm not in ("viterbi", "map"):
            raise ValueError(
                f"algorithm must be 'viterbi' or 'map', got {self.algorithm!r}"
            )
        for name in ("params", "init_params"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(
                    f"{name} must be a string of parameter letters, "
                    f"got {type(getattr(self, name)).__name__}"
                )
        return k

    def _check_params(self) -> None:
        k = self._check_hyper()
        self.startprob_ = _check_distribution(self.startprob_, "startprob_", (k,))
        self.transmat_ = _check_distribution(self.transmat_, "transmat_", (k, k))
        self._check_emissions(k)

    _fitted_attrs = ("startprob_", "transmat_")

    def _check_fitted(self) -> None:
        check_is_fitted(self, list(self._fitted_attrs))
        self._check_params()

    # ---- E-step ---------------------------------------------------------------------
    def _logs(self):
        log_a = _log0(self.transmat_)
        return _log0(self.startprob_), log_a, np.ascontiguousarray(log_a.T)

    def _forward_backward(self, Xv, spans, *, stats: bool, counts: bool = False):
        """Posteriors (T, K), per-span log p(X), and optional xi / emission counts."""
        k = self.n_components
        n_frames = Xv.shape[0]
        logprob = np.empty(len(spans))
        longest = int((spans[:, 1] - spans[:, 0]).max())
        xi = np.zeros((k, k)) if stats else np.zeros((0, 0))
        if self.implementation == "scaling":
            table, rows, shift = self._frames(Xv, log=False)
            gamma = np.empty((n_frames, k), dtype=table.dtype)
            cnt = np.zeros((len(table) if len(rows) else 1, k) if counts else (0, 0))
            _hmm.forward_backward_scaled(
                self.startprob_,
                self.transmat_,
                np.ascontiguousarray(self.transmat_.T),
                table,
                rows,
                spans,
                np.empty((longest, k)),
                np.empty(longest),
                gamma,
                xi,
                cnt,
                logprob,
            )
            if shift is not None:
                logprob += np.add.reduceat(shift, spans[:, 0])
            failed = np.isnan(logprob)
        else:
            table = None
            failed = np.ones(len(spans), dtype=bool)
        if failed.any():
            sub = np.ascontiguousarray(spans[failed])
            log_table, rows, _ = self._frames(Xv, log=True)
            if table is None:
                gamma = np.empty((n_frames, k), dtype=log_table.dtype)
                cnt = np.zeros(
                    (len(log_table) if len(rows) else 1, k) if counts else (0, 0)
                )
            log_pi, log_a, log_at = self._logs()
            lp = np.empty(len(sub))
            _hmm.forward_backward_log(
                log_pi,
                log_a,
                log_at,
                log_table,
                rows,
                sub,
                np.empty((longest, k)),
                gamma,
                xi,
                cnt,
                lp,
            )
            logprob[failed] = lp
        if not np.isfinite(logprob).all():
            i = int(np.argmax(~np.isfinite(logprob)))
            raise ValueError(
                f"sequence {i} (rows {spans[i, 0]}:{spans[i, 1]}) has probability 0 "
                "under the model (an observation no reachable state can emit)"
            )
        return gamma, logprob, xi, (cnt if counts else None)

    def _score_spans(self, Xv, spans) -> np.ndarray:
        logprob = np.empty(len(spans))
        if self.implementation == "scaling":
            table, rows, shift = self._frames(Xv, log=False)
            _hmm.forward_scaled(
                self.startprob_, self.transmat_, table, rows, spans, logprob
            )
            if shift is not None:
                logprob += np.add.reduceat(shift, spans[:, 0])
            failed = np.isnan(logprob)
        else:
            failed = np.ones(len(spans), dtype=bool)
        if failed.any():
            sub = np.ascontiguousarray(spans[failed])
            log_table, rows, _ = self._frames(Xv, log=True)
            log_pi, _, log_at = self._logs()
            lp = np.empty(len(sub))
            _hmm.forward_log(log_pi, log_at, log_table, rows, sub, lp)
            logprob[failed] = lp
        return logprob

    # ---- public API -----------------------------------------------------------------
    def score(self, X, lengths=None) -> float:
        """Log-likelihood log p(X) summed over the sequences (PRML eq. 13.63).

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
            Observations of all sequences, concatenated.
        lengths : array_like of int, optional
            Length of each sequence; must sum to ``n_samples``.

        Returns
        -------
        float
        """
        self._check_fitted()
        Xv = self._check_X(X, fitting=False)
        spans = _spans(lengths, Xv.shape[0])
        return float(self._score_spans(Xv, spans).sum())

    def score_samples(self, X, lengths=None):
        """Log-likelihood and state posteriors gamma (PRML eq. 13.33).

        Returns
        -------
        log_prob : float
        posteriors : ndarray, shape (n_samples, n_components)
        """
        self._check_fitted()
        Xv = self._check_X(X, fitting=False)
        spans = _spans(lengths, Xv.shape[0])
        gamma, logprob, _, _ = self._forward_backward(Xv, spans, stats=False)
        return float(logprob.sum()), gamma

    def predict_proba(self, X, lengths=None) -> np.ndarray:
        """State posteriors p(z_n | X), shape (n_samples, n_components)."""
        return self.score_samples(X, lengths)[1]

    def decode(self, X, lengths=None, algorithm=None):
        """Most likely states.

        Parameters
        ----------
        X, lengths
            As in :meth:`score`.
        algorithm : {"viterbi", "map"}, optional
            ``"viterbi"`` (PRML sec. 13.2.5): the jointly most probable path, and
            ``log_prob = max_Z log p(X, Z)``. ``"map"``: each state's posterior argmax,
            and ``log_prob`` the sum of the log of those posteriors. Default
            ``self.algorithm``.

        Returns
        -------
        log_prob : float
        state_sequence : ndarray of int, shape (n_samples,)
        """
        self._check_fitted()
        algorithm = self.algorithm if algorithm is None else algorithm
        if algorithm not in ("viterbi", "map"):
            raise ValueError(f"algorithm must be 'viterbi' or 'map', got {algorithm!r}")
        Xv = self._check_X(X, fitting=False)
        spans = _spans(lengths, Xv.shape[0])
        if algorithm == "map":
            gamma, _, _, _ = self._forward_backward(Xv, spans, stats=False)
            path = gamma.argmax(axis=1)
            with np.errstate(divide="ignore"):
                lp = float(np.log(gamma[np.arange(len(path)), path]).sum())
            return lp, path
        log_table, rows, _ = self._frames(Xv, log=True)
        log_pi, _, log_at = self._logs()
        k = self.n_components
        longest = int((spans[:, 1] - spans[:, 0]).max())
        path = np.empty(Xv.shape[0], dtype=np.intp)
        lp = np.empty(len(spans))
        _hmm.viterbi_log(
            log_pi,
            log_at,
            log_table,
            rows,
            spans,
            np.empty((longest, k), dtype=_backptr_dtype(k)),
            path,
            lp,
        )
        return float(lp.sum()), path

    def predict(self, X, lengths=None) -> np.ndarray:
        """Most likely state of each sample (by ``self.algorithm``)."""
        return self.decode(X, lengths)[1]

    def get_stationary_distribution(self) -> np.ndarray:
        """Stationary distribution pi = pi A (left eigenvector of ``transmat_`` for
        eigenvalue 1, normalised to sum to 1)."""
        self._check_fitted()
        vals, vecs = linalg.eig(self.transmat_.T)
        v = np.real_if_close(vecs[:, np.argmax(vals.real)])
        return np.real(v / v.sum())

    def _n_free_parameters(self) -> int:
        k = self.n_components
        sizes = {"s": k - 1, "t": k * (k - 1), **self._emission_sizes()}
        return sum(sizes.get(c, 0) for c in set(self.params))

    def aic(self, X, lengths=None) -> float:
        """Akaike information criterion: -2 log p(X) + 2 (number of free parameters
        in ``params``)."""
        return -2 * self.score(X, lengths) + 2 * self._n_free_parameters()

    def bic(self, X, lengths=None) -> float:
        """Bayesian information criterion: -2 log p(X) + log(n_samples) (number of
        free parameters in ``params``)."""
        n = len(self._check_X(X, fitting=False))
        return -2 * self.score(X, lengths) + np.log(n) * self._n_free_parameters()

    def fit(self, X, lengths=None):
        """Estimate the parameters by Baum-Welch EM (PRML sec. 13.2.1).

        Parameters listed in ``init_params`` are (re)initialised first; those in
        ``params`` are updated each iteration. ``monitor_.history`` holds log p(X) of
        every E-step, which never decreases (up to rounding).

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        lengths : array_like of int, optional

        Returns
        -------
        self
        """
        k = self._check_hyper()
        Xv = self._check_X(X, fitting=True)
        spans = _spans(lengths, Xv.shape[0])
        rng = check_random_state(self.random_state)
        init = 1.0 / k
        if "s" in self.init_params or not hasattr(self, "startprob_"):
            self.startprob_ = rng.dirichlet(np.full(k, init))
        if "t" in self.init_params or not hasattr(self, "transmat_"):
            self.transmat_ = rng.dirichlet(np.full(k, init), size=k)
        self._init_emissions(Xv, rng)
        self._check_params()
        self.monitor_ = ConvergenceMonitor(self.tol, self.n_iter, self.verbose)
        for _ in range(self.n_iter):
            stats, logprob = self._do_estep(Xv, spans)
            self._do_mstep(stats)
            self.monitor_.report(logprob)
            if self.monitor_.converged:
                break
        return self

    def _do_estep(self, Xv, spans):
        # Categorical: emission counts per symbol; others: posterior mass per state.
        need_counts = any(c in self.params for c in self._emission_letters)
        gamma, logprob, xi, cnt = self._forward_backward(
            Xv, spans, stats=True, counts=need_counts
        )
        stats = {
            "start": gamma[spans[:, 0]].sum(axis=0, dtype=np.float64),
            "trans": xi,
            "gamma": gamma,
            "counts": cnt,
        }
        return stats, float(logprob.sum())

    def _do_mstep(self, stats) -> None:
        if "s" in self.params:
            sp = np.maximum(self.startprob_prior - 1 + stats["start"], 0)
            self.startprob_ = _normalize(np.where(self.startprob_ == 0, 0, sp))
        if "t" in self.params:
            tm = np.maximum(self.transmat_prior - 1 + stats["trans"], 0)
            tm = np.where(self.transmat_ == 0, 0, tm)
            self.transmat_ = _keep_empty_rows(_normalize(tm, axis=1), self.transmat_)
        self._mstep_emissions(stats)

    def sample(self, n_samples=1, random_state=None, currstate=None):
        """Draw a state path and observations from the model.

        Random numbers are used in a fixed order: ``n_samples`` uniforms for the state
        path (inverse CDF, PRML sec. 13.2), then the emissions state by state.

        Parameters
        ----------
        n_samples : int
        random_state : None, int or numpy.random.Generator
            Defaults to ``self.random_state``.
        currstate : int, optional
            First state (instead of drawing it from ``startprob_``).

        Returns
        -------
        X : ndarray, shape (n_samples, n_features)
        state_sequence : ndarray of int, shape (n_samples,)
        """
        self._check_fitted()
        n = check_int(n_samples, "n_samples", low=1)
        rng = check_random_state(
            self.random_state if random_state is None else random_state
        )
        first = -1
        if currstate is not None:
            first = check_int(currstate, "currstate", low=0, high=self.n_components - 1)
        u = rng.random(n)
        states = np.empty(n, dtype=np.intp)
        _hmm.sample_states(
            np.cumsum(self.startprob_),
            np.cumsum(self.transmat_, axis=1),
            u,
            first,
            states,
        )
        return self._sample_emissions(states, rng), states


class CategoricalHMM(_BaseHMM):
    """HMM with categorical emissions (hmmlearn.hmm.CategoricalHMM).

    ``X`` holds integer symbols in ``[0, n_features)``, shape (n_samples, 1) or
    (n_samples,); ``-1`` (or a masked entry of a ``numpy.ma`` array) marks a missing
    observation, which is marginalised out.

    Parameters
    ----------
    n_components : int
        Number of states K.
    startprob_prior, transmat_prior, emissionprob_prior : float or array
        Dirichlet prior parameters (1 = no prior, the ML estimate).
    n_features : int, optional
        Number of symbols M; inferred from the data (max + 1) if None.
    algorithm : {"viterbi", "map"}
    random_state : None, int or numpy.random.Generator
    n_iter, tol : int, float
        EM stops after ``n_iter`` iterations or when the gain is below ``tol``.
    verbose : bool
    params, init_params : str
        Letters of the parameters to update / initialise: 's', 't', 'e'.
    implementation : {"scaling", "log"}
        Forward-backward variant (see the module docstring); scaling is faster and
        falls back to log space where it underflows.

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
        n_components=1,
        startprob_prior=1.0,
        transmat_prior=1.0,
        *,
        emissionprob_prior=1.0,
        n_features=None,
        algorithm="viterbi",
        random_state=None,
        n_iter=10,
        tol=1e-2,
        verbose=False,
        params="ste",
        init_params="ste",
        implementation="scaling",
    ):
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

    def _check_X(self, X, *, fitting: bool):
        mask = None
        if isinstance(X, np.ma.MaskedArray):
            mask = np.ma.getmaskarray(X)
            X = X.filled(-1)
        arr = as_ndarray(X, "X")
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
            mask = None if mask is None else mask[:, 0]
        if arr.ndim != 1:
            raise ValueError(
                f"X must have shape (n_samples, 1) or (n_samples,), got {arr.shape}"
            )
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
        sym = np.ascontiguousarray(arr, dtype=np.intp)
        if mask is not None:
            sym = np.where(mask, -1, sym)
        if (sym < -1).any():
            i = int(np.argmax(sym < -1))
            raise ValueError(
                f"X symbols must be >= 0 (or -1 for missing); X[{i}] = {sym[i]}"
            )
        top = int(sym.max())
        if fitting and self.n_features is None and not hasattr(self, "emissionprob_"):
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
        return np.where(sym < 0, m, sym).astype(np.intp, copy=False)

    def _emission_sizes(self) -> dict:
        return {"e": self.n_components * (self.emissionprob_.shape[1] - 1)}

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
        if "e" in self.init_params or not hasattr(self, "emissionprob_"):
            m = self._m_fit
            self.emissionprob_ = _normalize(rng.random((self.n_components, m)), axis=1)

    def _frames(self, Xv, log: bool):
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


class _ContinuousHMM(_BaseHMM):
    """Emissions from a T x K log-likelihood matrix computed with BLAS."""

    def _frames(self, Xv, log: bool):
        logb = self._log_likelihood(Xv)
        if log:
            return logb, np.empty(0, dtype=np.intp), None
        # exp(l - max_k l): frame maxima of 1 (an all -inf row becomes all 0, which
        # the scaled pass reports as an underflow and the log-space pass handles).
        shift = logb.max(axis=1)
        shift[~np.isfinite(shift)] = 0.0
        logb -= shift[:, None].astype(logb.dtype)
        np.exp(logb, out=logb)
        return logb, np.empty(0, dtype=np.intp), shift.astype(np.float64)


class GaussianHMM(_ContinuousHMM):
    """HMM with Gaussian emissions (hmmlearn.hmm.GaussianHMM).

    Parameters
    ----------
    n_components : int
    covariance_type : {"diag", "full", "spherical", "tied"}
        Shape of ``covars_`` as set/stored (hmmlearn's convention): (K,), (K, D),
        (K, D, D), (D, D); the ``covars_`` property always returns full (K, D, D)
        matrices.
    min_covar : float
        Added to the diagonal of the data covariance used to initialise ``covars_``.
    startprob_prior, transmat_prior, means_prior, means_weight, covars_prior,
    covars_weight :
        Prior parameters, with hmmlearn's defaults and M-step formulas (note that for
        "full"/"tied" a scalar ``covars_prior`` is added to every matrix entry, as in
        hmmlearn).
    algorithm, random_state, n_iter, tol, verbose, params, init_params, implementation
        As in :class:`CategoricalHMM`; emission letters are 'm' (means), 'c' (covars).

    Notes
    -----
    Rows of ``X`` that are all NaN are missing; with "diag"/"spherical" covariances
    partially observed rows are marginalised over their observed features. float32
    ``X`` keeps the emission matrix and posteriors in float32 (accumulation in float64).

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.hmm import GaussianHMM
    >>> m = GaussianHMM(2, random_state=0)
    >>> m.startprob_ = np.array([1.0, 0.0])
    >>> m.transmat_ = np.array([[0.9, 0.1], [0.1, 0.9]])
    >>> m.means_ = np.array([[0.0], [5.0]])
    >>> m.covars_ = np.array([[1.0], [1.0]])
    >>> m.predict(np.array([[0.1], [-0.2], [5.1], [4.8]])).tolist()
    [0, 0, 1, 1]
    """

    _emission_letters = "mc"
    _fitted_attrs = ("startprob_", "transmat_", "means_", "_covars_")

    def __init__(
        self,
        n_components=1,
        covariance_type="diag",
        min_covar=1e-3,
        startprob_prior=1.0,
        transmat_prior=1.0,
        means_prior=0,
        means_weight=0,
        covars_prior=1e-2,
        covars_weight=1,
        algorithm="viterbi",
        random_state=None,
        n_iter=10,
        tol=1e-2,
        verbose=False,
        params="stmc",
        init_params="stmc",
        implementation="scaling",
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation

    @property
    def covars_(self) -> np.ndarray:
        """Covariance matrices, always shape (n_components, n_features, n_features)."""
        c = self._covars_
        k, d = self.n_components, np.shape(self.means_)[1]
        if self.covariance_type == "full":
            return c
        if self.covariance_type == "diag":
            return np.stack([np.diag(r) for r in c])
        if self.covariance_type == "spherical":
            return c[:, None, None] * np.eye(d)[None]
        return np.broadcast_to(c, (k, d, d)).copy()

    @covars_.setter
    def covars_(self, covars) -> None:
        self._covars_ = np.array(covars, dtype=np.float64, copy=True)

    @property
    def n_features(self) -> int:
        return np.shape(self.means_)[1]

    def _emission_sizes(self) -> dict:
        k, d = self.means_.shape
        cov = {"spherical": k, "diag": k * d, "full": k * d * (d + 1) // 2,
               "tied": d * (d + 1) // 2}[self.covariance_type]  # fmt: skip
        return {"m": k * d, "c": cov}

    def _check_hyper(self) -> int:
        k = super()._check_hyper()
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {COVARIANCE_TYPES}, "
                f"got {self.covariance_type!r}"
            )
        return k

    def _check_X(self, X, *, fitting: bool):
        arr = check_array(X, "X", ndim=2, finite=False)
        if np.isinf(arr).any():
            idx = tuple(int(i) for i in np.argwhere(np.isinf(arr))[0])
            raise ValueError(f"X must not contain infinity; found {arr[idx]} at {idx}")
        nan = np.isnan(arr)
        self._missing = None
        if nan.any():
            partial = nan.any(axis=1) & ~nan.all(axis=1)
            if partial.any() and self.covariance_type in ("full", "tied"):
                i = int(np.argmax(partial))
                raise ValueError(
                    f"X row {i} is partially NaN; covariance_type="
                    f"{self.covariance_type!r} supports only fully missing (all-NaN) "
                    "rows (use 'diag' or 'spherical', or impute)"
                )
            self._missing = nan
        if not fitting and hasattr(self, "means_"):
            d = np.shape(self.means_)[1]
            if arr.shape[1] != d:
                raise ValueError(
                    f"X has {arr.shape[1]} features, but the model has {d}"
                )
        return arr

    def _check_emissions(self, k: int) -> None:
        self.means_ = check_array(self.means_, "means_", ndim=2, dtype=np.float64)
        d = self.means_.shape[1]
        if self.means_.shape[0] != k:
            raise ValueError(
                f"means_ must have shape ({k}, n_features), got {self.means_.shape}"
            )
        ct = self.covariance_type
        shape = {"spherical": (k,), "diag": (k, d), "full": (k, d, d), "tied": (d, d)}[
            ct
        ]
        c = check_array(self._covars_, "covars_", dtype=np.float64)
        if c.shape != shape:
            raise ValueError(
                f"covars_ must have shape {shape} for covariance_type={ct!r}, "
                f"got {c.shape}"
            )
        if ct in ("spherical", "diag"):
            if (c <= 0).any():
                idx = tuple(int(i) for i in np.argwhere(c <= 0)[0])
                raise ValueError(
                    f"covars_ must be positive for covariance_type={ct!r}; "
                    f"found {c[idx]} at index {idx}"
                )
            self._chol = None
        else:
            mats = c[None] if ct == "tied" else c
            chol = []
            for i, m in enumerate(mats):
                if not np.allclose(m, m.T, rtol=1e-8, atol=1e-12):
                    raise ValueError(f"covars_[{i}] must be symmetric")
                try:
                    chol.append(linalg.cholesky(m, lower=True))
                except linalg.LinAlgError:
                    where = "covars_" if ct == "tied" else f"covars_[{i}]"
                    raise ValueError(
                        f"{where} must be symmetric positive definite "
                        f"(Cholesky failed; smallest eigenvalue "
                        f"{np.linalg.eigvalsh(m).min():.3g})"
                    ) from None
            self._chol = chol
        self._covars_ = c

    def _init_emissions(self, Xv, rng) -> None:
        k = self.n_components
        obs = Xv[~np.isnan(Xv).any(axis=1)] if self._missing is not None else Xv
        if len(obs) < k:
            raise ValueError(
                f"X has {len(obs)} fully observed rows, fewer than n_components={k}"
            )
        if "m" in self.init_params or not hasattr(self, "means_"):
            self.means_ = _kmeans(obs.astype(np.float64), k, rng)
        if "c" in self.init_params or not hasattr(self, "_covars_"):
            d = obs.shape[1]
            cv = np.atleast_2d(np.cov(obs.T)) + self.min_covar * np.eye(d)
            ct = self.covariance_type
            if ct == "tied":
                self._covars_ = cv
            elif ct == "full":
                self._covars_ = np.tile(cv, (k, 1, 1))
            elif ct == "diag":
                self._covars_ = np.tile(np.diag(cv), (k, 1))
            else:
                self._covars_ = np.full(k, cv.mean())

    def _diag_params(self):
        """(means, precisions, log(2 pi var)) as (D, K) arrays for the kernels."""
        d = self.means_.shape[1]
        var = self._covars_
        if self.covariance_type == "spherical":
            var = np.repeat(var[:, None], d, axis=1)
        return (
            np.ascontiguousarray(self.means_.T),
            np.ascontiguousarray(1.0 / var.T),
            np.ascontiguousarray(np.log(2 * np.pi * var).T),
        )

    def _frames(self, Xv, log: bool):
        if self.covariance_type not in ("diag", "spherical"):
            return super()._frames(Xv, log)
        out = np.empty((Xv.shape[0], self.n_components), dtype=Xv.dtype)
        shift = np.empty(0 if log else Xv.shape[0])
        _hmm.gaussian_diag_frames(Xv, *self._diag_params(), out, shift)
        if not log:
            np.exp(out, out=out)  # numpy's SIMD exp: faster than a scalar kernel loop
        return out, np.empty(0, dtype=np.intp), (None if log else shift)

    def _log_likelihood(self, Xv) -> np.ndarray:
        """log N(x_t | mu_k, Sigma_k), shape (T, K), in X's float dtype."""
        dt = Xv.dtype
        k, d = self.means_.shape
        ct = self.covariance_type
        miss = self._missing
        mu = self.means_
        if ct in ("diag", "spherical"):
            var = (
                self._covars_
                if ct == "diag"
                else np.repeat(self._covars_[:, None], d, axis=1)
            )
            prec = 1.0 / var
            if miss is None:
                lpr = -0.5 * (
                    d * np.log(2 * np.pi)
                    + np.sum(np.log(var), 1)
                    + np.sum(mu**2 * prec, 1)
                    - 2 * (Xv @ (mu * prec).T.astype(dt))
                    + (Xv**2) @ prec.T.astype(dt)
                )
            else:
                w = (~miss).astype(dt)
                x0 = np.where(miss, 0, Xv).astype(dt)
                lpr = -0.5 * (
                    w @ (np.log(2 * np.pi) + np.log(var) + mu**2 * prec).T.astype(dt)
                    - 2 * (x0 @ (mu * prec).T.astype(dt))
                    + (x0**2) @ prec.T.astype(dt)
                )
            return np.ascontiguousarray(lpr, dtype=dt)
        x = Xv if miss is None else np.where(miss, 0, Xv)
        lpr = np.empty((Xv.shape[0], k), dtype=dt)
        for i in range(k):
            chol = self._chol[0 if ct == "tied" else i]
            sol = linalg.solve_triangular(
                chol, (x - mu[i]).T.astype(np.float64), lower=True
            )
            lpr[:, i] = -0.5 * (
                d * np.log(2 * np.pi)
                + 2 * np.log(np.diag(chol)).sum()
                + np.einsum("ij,ij->j", sol, sol)
            )
        if miss is not None:
            lpr[miss.all(axis=1)] = 0.0
        return lpr

    def _mstep_emissions(self, stats) -> None:
        if "m" not in self.params and "c" not in self.params:
            return
        g = stats["gamma"].astype(np.float64, copy=False)
        x = self._xfit
        miss = self._missing
        ct = self.covariance_type
        mp, mw = self.means_prior, self.means_weight
        cp, cw = self.covars_prior, self.covars_weight
        if miss is not None:
            x = np.where(miss, 0.0, x)
        if miss is not None and ct in ("diag", "spherical"):
            denom = g.T @ (~miss).astype(np.float64)
        elif miss is not None:
            g = g * (~miss.all(axis=1))[:, None]
            denom = g.sum(axis=0)[:, None]
        else:
            denom = stats["counts"][0][:, None]  # sum_t gamma_t, from the kernel
        obs = g.T @ x
        if "m" in self.params:
            with np.errstate(invalid="ignore", divide="ignore"):
                means = (mw * mp + obs) / (mw + denom)
            # A state with no posterior mass keeps its mean (0/0 otherwise).
            self.means_ = np.where(np.isfinite(means), means, self.means_)
        if "c" not in self.params:
            return
        mu = self.means_
        meandiff = mu - mp
        if ct in ("diag", "spherical"):
            if self._xsq is None:
                self._xsq = x * x  # fixed during fit: computed once
            obs2 = g.T @ self._xsq
            c_n = mw * meandiff**2 + obs2 - 2 * mu * obs + mu**2 * denom
            c_d = max(cw - 1, 0) + denom
            cov = (cp + c_n) / np.maximum(c_d, 1e-5)
            self._covars_ = cov.mean(axis=1) if ct == "spherical" else cov
            return
        k, d = mu.shape
        post = denom[:, 0]
        c_n = np.empty((k, d, d))
        for c in range(k):
            oo = (x * g[:, c, None]).T @ x
            om = np.outer(obs[c], mu[c])
            c_n[c] = (
                mw * np.outer(meandiff[c], meandiff[c])
                + oo
                - om
                - om.T
                + np.outer(mu[c], mu[c]) * post[c]
            )
        cvw = max(cw - d, 0)
        if ct == "tied":
            self._covars_ = (cp + c_n.sum(axis=0)) / (cvw + post.sum())
        else:
            self._covars_ = (cp + c_n) / (cvw + post[:, None, None])

    def fit(self, X, lengths=None):
        self._xfit = check_array(X, "X", ndim=2, finite=False, dtype=np.float64)
        self._xsq = None
        try:
            return super().fit(X, lengths)
        finally:
            del self._xfit, self._xsq

    fit.__doc__ = _BaseHMM.fit.__doc__

    def _sample_emissions(self, states, rng) -> np.ndarray:
        k, d = self.means_.shape
        z = rng.standard_normal((len(states), d))
        cov = self.covars_
        x = np.empty((len(states), d))
        for i in range(k):
            sel = states == i
            chol = linalg.cholesky(cov[i], lower=True)
            x[sel] = self.means_[i] + z[sel] @ chol.T
        return x


def _kmeans(x: np.ndarray, k: int, rng, n_iter: int = 20) -> np.ndarray:
    """k-means++ seeding and Lloyd iterations on at most 10,000 rows (initialisation)."""
    if len(x) > 10_000:
        x = x[rng.choice(len(x), 10_000, replace=False)]
    centers = [x[rng.integers(len(x))]]
    d2 = ((x - centers[0]) ** 2).sum(1)
    for _ in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(len(x), 1 / len(x))
        centers.append(x[rng.choice(len(x), p=p)])
        d2 = np.minimum(d2, ((x - centers[-1]) ** 2).sum(1))
    c = np.array(centers)
    for _ in range(n_iter):
        lab = ((x**2).sum(1)[:, None] - 2 * x @ c.T + (c**2).sum(1)[None]).argmin(
            axis=1
        )
        for j in range(k):
            if (lab == j).any():
                c[j] = x[lab == j].mean(0)
    return c


class PoissonHMM(_ContinuousHMM):
    """HMM with independent Poisson emissions per feature (hmmlearn.hmm.PoissonHMM).

    Parameters
    ----------
    n_components : int
    startprob_prior, transmat_prior : float or array
    lambdas_prior, lambdas_weight : float or array
        Gamma(alpha, beta) prior on the rates; the M-step is
        ``lambdas_ = (alpha + sum_t gamma_tk x_t) / (beta + sum_t gamma_tk)``.
    algorithm, random_state, n_iter, tol, verbose, params, init_params, implementation
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
    _fitted_attrs = ("startprob_", "transmat_", "lambdas_")

    def __init__(
        self,
        n_components=1,
        startprob_prior=1.0,
        transmat_prior=1.0,
        lambdas_prior=0.0,
        lambdas_weight=0.0,
        algorithm="viterbi",
        random_state=None,
        n_iter=10,
        tol=1e-2,
        verbose=False,
        params="stl",
        init_params="stl",
        implementation="scaling",
    ):
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

    @property
    def n_features(self) -> int:
        return np.shape(self.lambdas_)[1]

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
        if fitting:
            self._xfit = arr  # the M-step's data (dropped again at the end of fit)
        return arr

    def _check_emissions(self, k: int) -> None:
        lam = check_array(self.lambdas_, "lambdas_", ndim=2, dtype=np.float64)
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

    def _mstep_emissions(self, stats) -> None:
        if "l" in self.params:
            g = stats["gamma"]
            post = stats["counts"][0][:, None]  # sum_t gamma_t, from the kernel
            obs = g.T @ self._xfit
            self.lambdas_ = (self.lambdas_prior + obs) / (self.lambdas_weight + post)

    def fit(self, X, lengths=None):
        try:
            return super().fit(X, lengths)
        finally:
            self.__dict__.pop("_xfit", None)

    fit.__doc__ = _BaseHMM.fit.__doc__

    def _sample_emissions(self, states, rng) -> np.ndarray:
        return rng.poisson(self.lambdas_[states]).astype(np.int64)
