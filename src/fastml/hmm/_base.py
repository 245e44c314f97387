"""What every HMM shares: validation of start / transition probabilities, the
forward-backward and Viterbi orchestration over many sequences, Baum-Welch (PRML sec.
13.2) and :class:`ConvergenceMonitor`.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import warnings
from typing import Any, TypeVar

import numpy as np
from scipy import linalg

from fastml import exceptions
from fastml._base import BaseEstimator, check_is_fitted
from fastml._kernels import variant
from fastml._parallel import (
    blas_single_threaded,
    effective_n_jobs,
    is_dask_array,
    run_blocks,
)
from fastml._typing import (
    ArrayLike,
    FloatArray,
    HMMAlgorithm,
    IntArray,
    NDArray,
    RandomStateLike,
)
from fastml._validation import (
    as_ndarray,
    check_array,
    check_diverged,
    check_int,
    check_random_state,
    check_real,
)

__all__ = ["ConvergenceMonitor"]

_hmm = variant("_hmm")  # the AVX2 + FMA build where the CPU has it


_log = logging.getLogger(__name__)


#: Tolerance on the row sums of probability vectors and stochastic matrices.
SUM_TOL = 1e-6


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

    def __init__(self, tol: float, n_iter: int, verbose: bool) -> None:
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
        """True after ``n_iter`` iterations or once the log-likelihood gain is below ``tol``."""
        return self.iter == self.n_iter or self._gain_below_tol

    @property
    def _gain_below_tol(self) -> bool:
        return len(self.history) >= 2 and self.history[-1] - self.history[-2] < self.tol

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


#: Rows per block of the threaded loops (about 1 ms of forward-backward at K = 16).
_BLOCK_ROWS = 8192


def _sequence_blocks(spans: np.ndarray) -> list[tuple[int, int]]:
    """[first, last) span indices of the blocks of whole sequences the threads share.

    A sequence belongs to the block of the ``_BLOCK_ROWS``-row stretch its first row
    falls in, so a block holds consecutive whole sequences, one long sequence is one
    block, and the blocks depend on ``lengths`` only, never on the thread count.
    """
    key = spans[:, 0] // _BLOCK_ROWS
    cuts = np.flatnonzero(np.diff(key)) + 1
    bounds = np.concatenate([[0], cuts, [len(spans)]])
    return [(int(f), int(e)) for f, e in itertools.pairwise(bounds.tolist())]


class _Block:
    """The sequences ``first:last`` of one block: rows ``lo:hi`` of the data, ``sub``
    their spans relative to ``lo``, ``longest`` the longest one's length."""

    def __init__(self, model, Xv, spans, first, last, all_frames, cancel):
        self.first, self.last = first, last
        self.lo, self.hi = int(spans[first, 0]), int(spans[last - 1, 1])
        self.sub = np.ascontiguousarray(spans[first:last] - self.lo)
        self.longest = int((self.sub[:, 1] - self.sub[:, 0]).max())
        self._model, self._Xv, self._all_frames = model, Xv, all_frames
        self._cancel = cancel

    def frames(self, log: bool):
        """(table, rows, shift) of the block's rows (see ``_BaseHMM._frames``)."""
        lo, hi = self.lo, self.hi
        if self._model._frames_per_block:
            return self._model._frames(self._Xv[lo:hi], log, self._cancel)
        table, rows, shift = self._all_frames(log, self._cancel)
        shift = None if shift is None else shift[lo:hi]
        if len(rows):
            return table, rows[lo:hi], shift
        return table[lo:hi], rows, shift


def _check_possible(logprob: np.ndarray, spans: np.ndarray) -> None:
    if not np.isfinite(logprob).all():
        i = int(np.argmax(~np.isfinite(logprob)))
        raise ValueError(
            f"sequence {i} (rows {spans[i, 0]}:{spans[i, 1]}) has probability 0 "
            "under the model (an observation no reachable state can emit)"
        )


def _in_memory(X, method: str):
    """``X`` unless it is a dask array (which ``fit``, ``score``, ``predict`` and
    ``predict_proba`` take, not ``method``)."""
    if is_dask_array(X):
        raise TypeError(
            f"{method} takes X in memory, got a dask array; compute it first "
            "(X.compute(), or a slice of it). On dask arrays use fit, score, or "
            "predict / predict_proba (lazy)"
        )
    return X


_HMM = TypeVar("_HMM", bound="_BaseHMM")


class _BaseHMM(BaseEstimator):
    """Shared HMM machinery; subclasses define the emission model."""

    _emission_letters = ""

    # ---- subclass hooks -------------------------------------------------------------
    def _check_X(self, X, *, fitting: bool):  # pragma: no cover - abstract
        raise NotImplementedError

    def _frames(self, Xv, log: bool, cancel):  # pragma: no cover - abstract
        """(table, rows, shift): see the kernel module docstring; shift is (T,) or None.
        ``cancel`` is the block's cancel byte (``fastml._parallel.run_blocks``)."""
        raise NotImplementedError

    # ---- validation -----------------------------------------------------------------
    def _check_hyper(self) -> int:
        k = check_int(self.n_components, "n_components", low=1)
        effective_n_jobs(self.n_jobs)  # TypeError / ValueError naming n_jobs
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

    def _block_emission_stats(self, lo, hi, gamma):
        """Emission M-step sums over rows ``lo:hi`` given their posteriors ``gamma``: a
        tuple of arrays, added over the blocks in block order, or None when the M-step
        needs only the kernel's counts."""
        return None

    # ---- E-step: blocks of whole sequences on threads --------------------------------
    #: False where the emission hook must see all rows at once (GMMHMM keeps the
    #: within-state responsibilities of every row for its M-step): the frames are then
    #: computed once, serially, and only the recursions run per block.
    _frames_per_block = True

    def _logs(self):
        log_a = _log0(self.transmat_)
        return _log0(self.startprob_), log_a, np.ascontiguousarray(log_a.T)

    def _run(self, Xv, spans, block_fn, *, log: bool):
        """Run ``block_fn(blk, cancel)`` on every block of whole sequences
        (:func:`_sequence_blocks`) across ``n_jobs`` threads; the per-block results,
        in block order.

        ``blk`` is a :class:`_Block`. Its ``frames(log)`` are the block's emission
        frames (see the kernel module docstring), computed in the block's thread, or
        sliced from frames of all rows computed beforehand when
        ``_frames_per_block`` is False (those for ``log`` at once, the others only if
        a block asks for them, under a lock).
        """
        blocks = _sequence_blocks(spans)
        cache: dict[bool, tuple] = {}
        lock = threading.Lock()
        if not self._frames_per_block:
            cache[log] = self._frames(Xv, log, np.zeros(1, np.uint8))

        def all_frames(want, cancel):
            with lock:
                if want not in cache:
                    cache[want] = self._frames(Xv, want, cancel)
                return cache[want]

        def run_one(b, cancel):
            first, last = blocks[b]
            blk = _Block(self, Xv, spans, first, last, all_frames, cancel)
            return block_fn(blk, cancel)

        threads = min(effective_n_jobs(self.n_jobs), len(blocks))
        with blas_single_threaded(threads > 1):
            return run_blocks(run_one, len(blocks), threads)

    def _forward_backward(self, Xv, spans, *, stats: bool, counts: bool = False):
        """Posteriors (T, K), per-span log p(X), optional xi / emission counts and,
        with ``stats``, the sums of :meth:`_block_emission_stats`.

        Each block of sequences writes its rows of the posteriors and its spans' log
        p(X); its xi and counts are partial sums, added here in block order, so the
        result has the same bits for every ``n_jobs``. With ``stats`` (the E-step of
        ``fit``) no (T, K) posteriors are kept: each block's live in a block-sized
        array while its statistics are taken (so a thread's working set stays in
        cache instead of streaming T x K doubles through memory each iteration), and
        the first item returned is the sum of the posteriors of the spans' first rows.
        """
        k = self.n_components
        dtype = self._frame_dtype(Xv)
        gamma = None if stats else np.empty((Xv.shape[0], k), dtype=dtype)
        logprob = np.empty(len(spans))
        pi, a, at = (
            self.startprob_,
            self.transmat_,
            np.ascontiguousarray(self.transmat_.T),
        )
        log_params = self._logs()

        def counts_shape(table, rows):
            return (len(table) if len(rows) else 1, k) if counts else (0, 0)

        def block(blk, cancel):
            sub, longest = blk.sub, blk.longest
            if gamma is None:
                g = np.empty((blk.hi - blk.lo, k), dtype=dtype)
            else:
                g = gamma[blk.lo : blk.hi]
            lp = logprob[blk.first : blk.last]
            xi = np.zeros((k, k)) if stats else np.zeros((0, 0))
            cnt = None
            failed = np.ones(len(sub), dtype=bool)
            if self.implementation == "scaling":
                table, rows, shift = blk.frames(False)
                cnt = np.zeros(counts_shape(table, rows))
                # float64 posteriors hold alpha-hat until overwritten: no scratch
                n_alpha = 0 if g.dtype == np.float64 else longest
                _hmm.forward_backward_scaled(
                    pi, a, at, table, rows, sub, np.empty((n_alpha, k)),
                    np.empty(longest), g, xi, cnt, lp, cancel,
                )  # fmt: skip
                if shift is not None:
                    lp += np.add.reduceat(shift, sub[:, 0])
                failed = np.isnan(lp)
            if failed.any():
                log_table, rows, _ = blk.frames(True)
                if cnt is None:
                    cnt = np.zeros(counts_shape(log_table, rows))
                lp_log = np.empty(int(failed.sum()))
                _hmm.forward_backward_log(
                    *log_params, log_table, rows, np.ascontiguousarray(sub[failed]),
                    np.empty((longest, k)), g, xi, cnt, lp_log, cancel,
                )  # fmt: skip
                lp[failed] = lp_log
            if not stats:
                return xi, cnt, None, None
            em = self._block_emission_stats(blk.lo, blk.hi, g)
            return xi, cnt, em, g[sub[:, 0]].sum(axis=0, dtype=np.float64)

        parts = self._run(Xv, spans, block, log=self.implementation == "log")
        xi, cnt, em, start = parts[0]
        for xi_b, cnt_b, em_b, start_b in parts[1:]:  # block order: same sums always
            xi += xi_b
            cnt += cnt_b
            if stats:
                start += start_b
            if em is not None:
                em = tuple(a + b for a, b in zip(em, em_b, strict=True))
        _check_possible(logprob, spans)
        return (start if stats else gamma), logprob, xi, (cnt if counts else None), em

    def _score_spans(self, Xv, spans) -> np.ndarray:
        logprob = np.empty(len(spans))
        log_pi, _, log_at = self._logs()

        def block(blk, cancel):
            lp = logprob[blk.first : blk.last]
            failed = np.ones(len(blk.sub), dtype=bool)
            if self.implementation == "scaling":
                table, rows, shift = blk.frames(False)
                _hmm.forward_scaled(
                    self.startprob_, self.transmat_, table, rows, blk.sub, lp, cancel
                )
                if shift is not None:
                    lp += np.add.reduceat(shift, blk.sub[:, 0])
                failed = np.isnan(lp)
            if failed.any():
                log_table, rows, _ = blk.frames(True)
                lp_log = np.empty(int(failed.sum()))
                _hmm.forward_log(
                    log_pi, log_at, log_table, rows, np.ascontiguousarray(blk.sub[failed]),
                    lp_log, cancel,
                )  # fmt: skip
                lp[failed] = lp_log

        self._run(Xv, spans, block, log=self.implementation == "log")
        return logprob

    def _viterbi(self, Xv, spans) -> tuple[float, np.ndarray]:
        k = self.n_components
        path = np.empty(Xv.shape[0], dtype=np.intp)
        logprob = np.empty(len(spans))
        log_params = self._logs()

        def block(blk, cancel):
            log_table, rows, _ = blk.frames(True)
            _hmm.viterbi_log(
                *log_params, log_table, rows, blk.sub, np.empty((blk.longest, k)),
                path[blk.lo : blk.hi], logprob[blk.first : blk.last], cancel,
            )  # fmt: skip

        self._run(Xv, spans, block, log=True)
        return float(logprob.sum()), path

    @staticmethod
    def _frame_dtype(Xv) -> type:
        """dtype of the frames and posteriors: float32 for float32 data, else float64."""
        return np.float32 if Xv.dtype == np.float32 else np.float64

    # ---- public API -----------------------------------------------------------------
    def score(self, X: ArrayLike, lengths: ArrayLike | None = None) -> float:
        """Log-likelihood log p(X) summed over the sequences (PRML eq. 13.63).

        Parameters
        ----------
        X : array_like or dask.array.Array, shape (n_samples, n_features)
            Observations of all sequences, concatenated. On a dask array the
            sequences' log-likelihoods are computed per chunk of whole sequences on
            the workers and summed in chunk order (as in :meth:`fit`).
        lengths : array_like of int, optional
            Length of each sequence; must sum to ``n_samples``.

        Returns
        -------
        float
        """
        if is_dask_array(X):
            from fastml.hmm import _dask

            return _dask.score(self, X, lengths)
        self._check_fitted()
        Xv = self._check_X(X, fitting=False)
        spans = _spans(lengths, Xv.shape[0])
        return float(self._score_spans(Xv, spans).sum())

    def score_samples(
        self, X: ArrayLike, lengths: ArrayLike | None = None
    ) -> tuple[float, FloatArray]:
        """Log-likelihood and state posteriors gamma (PRML eq. 13.33).

        Returns
        -------
        log_prob : float
        posteriors : ndarray, shape (n_samples, n_components)
        """
        self._check_fitted()
        Xv = self._check_X(_in_memory(X, "score_samples"), fitting=False)
        spans = _spans(lengths, Xv.shape[0])
        gamma, logprob, *_ = self._forward_backward(Xv, spans, stats=False)
        return float(logprob.sum()), gamma

    def predict_proba(
        self, X: ArrayLike, lengths: ArrayLike | None = None
    ) -> FloatArray:
        """State posteriors p(z_n | X), shape (n_samples, n_components).

        On a dask array ``X``: a lazy dask array, computed per chunk of whole
        sequences (``X`` rechunked as in :meth:`fit`), with those row chunks.
        """
        if is_dask_array(X):
            from fastml.hmm import _dask

            return _dask.lazy(self, X, lengths, "predict_proba")
        return self.score_samples(X, lengths)[1]

    def decode(
        self,
        X: ArrayLike,
        lengths: ArrayLike | None = None,
        algorithm: HMMAlgorithm | None = None,
    ) -> tuple[float, IntArray]:
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
        Xv = self._check_X(_in_memory(X, "decode"), fitting=False)
        spans = _spans(lengths, Xv.shape[0])
        if algorithm == "map":
            gamma, *_ = self._forward_backward(Xv, spans, stats=False)
            path = gamma.argmax(axis=1)
            with np.errstate(divide="ignore"):
                lp = float(np.log(gamma[np.arange(len(path)), path]).sum())
            return lp, path
        return self._viterbi(Xv, spans)

    def predict(self, X: ArrayLike, lengths: ArrayLike | None = None) -> IntArray:
        """Most likely state of each sample (by ``self.algorithm``).

        On a dask array ``X``: a lazy dask array, computed per chunk of whole
        sequences (``X`` rechunked as in :meth:`fit`), with those row chunks.
        """
        if is_dask_array(X):
            from fastml.hmm import _dask

            return _dask.lazy(self, X, lengths, "predict")
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

    def aic(self, X: ArrayLike, lengths: ArrayLike | None = None) -> float:
        """Akaike information criterion: -2 log p(X) + 2 (number of free parameters
        in ``params``)."""
        return -2 * self.score(X, lengths) + 2 * self._n_free_parameters()

    def bic(self, X: ArrayLike, lengths: ArrayLike | None = None) -> float:
        """Bayesian information criterion: -2 log p(X) + log(n_samples) (number of
        free parameters in ``params``)."""
        n = X.shape[0] if is_dask_array(X) else len(self._check_X(X, fitting=False))
        return -2 * self.score(X, lengths) + np.log(n) * self._n_free_parameters()

    def fit(self: _HMM, X: ArrayLike, lengths: ArrayLike | None = None) -> _HMM:
        """Estimate the parameters by Baum-Welch EM (PRML sec. 13.2.1).

        Parameters listed in ``init_params`` are (re)initialised first; those in
        ``params`` are updated each iteration. ``monitor_.history`` holds log p(X) of
        every E-step, which never decreases (up to rounding).

        Parameters
        ----------
        X : array_like or dask.array.Array, shape (n_samples, n_features)
            Observations of all sequences, concatenated. A ``dask.array.Array``
            (chunked along the rows) is fitted on the Dask workers: see Notes.
        lengths : array_like of int, optional
            Length of each sequence (a numpy array also with dask ``X``); must sum to
            ``n_samples``. None: one sequence.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            ``lengths`` not summing to ``n_samples`` or holding a zero, invalid values
            in ``X`` (on dask input the message names the chunk), parameters that
            became non-finite.
        RuntimeError
            The Dask client went away during a fit on dask input.

        Notes
        -----
        Dask (:mod:`fastml.hmm._dask`): ``fit(X, lengths)`` with ``X`` a dask array and
        ``lengths`` a numpy array -- the same call as in memory and as hmmlearn's API,
        so a pipeline switches by passing a dask array (a bag or a list of dask arrays
        would need a second calling convention). ``X`` is rechunked so that every
        chunk holds whole consecutive sequences (each sequence goes to the input chunk
        its first row lies in; chunks that already end at sequence boundaries stay as
        they are) and the features into one chunk. Each EM iteration sends the
        parameters to the workers once, runs this E-step (the same compiled
        forward-backward and statistics) on every chunk where it lives, and reduces
        only the sums in chunk order; the M-step runs here. From the same start the
        result equals the in-memory fit up to rounding.

        Initialisation on dask input: ``startprob_`` and ``transmat_`` are drawn as in
        memory; the emission initialisation (k-means means, data covariance, rates)
        runs the in-memory one on a sample of ``min(n_samples, 20000)`` rows drawn
        without replacement by ``random_state`` (all rows, in order, when there are
        no more: then the whole fit equals the in-memory one); CategoricalHMM's
        ``n_features`` and MultinomialHMM's ``n_trials``, when unset, come from all
        rows. Deterministic for a given ``random_state`` and chunking. ``score``
        (a float), ``predict`` and ``predict_proba`` (lazy dask arrays) take dask
        arrays too; ``score_samples`` and ``decode`` take numpy input.
        """
        if is_dask_array(X):
            from fastml.hmm import _dask

            return _dask.fit(self, X, lengths)
        self._check_hyper()
        try:
            Xv = self._fit_X(X)
            spans = _spans(lengths, Xv.shape[0])
            rng = check_random_state(self.random_state)
            self._init_chain(rng)
            self._init_emissions(Xv, rng)
            return self._em(lambda: self._do_estep(Xv, spans), stacklevel=3)
        finally:
            self._drop_fit_data()

    def _fit_X(self, X):
        """``X`` checked for fitting (``_check_X``); subclasses also keep what their
        emission statistics read (``_xfit``), dropped by :meth:`_drop_fit_data`."""
        return self._check_X(X, fitting=True)

    def _drop_fit_data(self) -> None:
        for name in ("_xfit", "_within"):
            self.__dict__.pop(name, None)

    def _init_chain(self, rng) -> None:
        """Draw ``startprob_`` / ``transmat_`` (Dirichlet(1/K)) where ``init_params``
        asks or they are unset: the first random numbers of a fit, in this order."""
        k = self.n_components
        init = 1.0 / k
        if "s" in self.init_params or not hasattr(self, "startprob_"):
            self.startprob_ = rng.dirichlet(np.full(k, init))
        if "t" in self.init_params or not hasattr(self, "transmat_"):
            self.transmat_ = rng.dirichlet(np.full(k, init), size=k)

    def _em(self: _HMM, estep, stacklevel: int) -> _HMM:
        """Baum-Welch from the current parameters: ``estep()`` returns the summed
        statistics of :meth:`_do_estep` and log p(X) (in memory, or reduced over the
        chunks of a dask array), the M-step runs here."""
        self._check_params()
        self.monitor_ = ConvergenceMonitor(self.tol, self.n_iter, self.verbose)
        for it in range(self.n_iter):
            stats, logprob = estep()
            self._do_mstep(stats)
            check_diverged(
                self,
                it + 1,
                "check X's scale, or raise min_covar / the priors",
                **{name: getattr(self, name) for name in self._fitted_attrs},
            )
            # refresh what the E-step derives from the parameters (Cholesky factors,
            # precisions), which the M-step left stale
            self._check_emissions(self.n_components)
            self.monitor_.report(logprob)
            if self.monitor_.converged:
                break
        if self.n_iter > 0 and not self.monitor_._gain_below_tol:
            warnings.warn(
                f"{type(self).__name__} stopped at n_iter={self.n_iter} before the "
                f"log-likelihood gain fell below tol={self.tol}; increase n_iter or tol.",
                exceptions.ConvergenceWarning,
                stacklevel=stacklevel,  # the frame of the user's call to fit
            )
        return self

    def _do_estep(self, Xv, spans):
        """The M-step's statistics of the sequences ``spans`` of ``Xv`` and their
        log p(X): sums over the sequences only (never per-row arrays), so the
        statistics of chunks of whole sequences add up to those of all of them
        (:mod:`fastml.hmm._dask`)."""
        # Categorical: emission counts per symbol; others: posterior mass per state.
        need_counts = any(c in self.params for c in self._emission_letters)
        start, logprob, xi, cnt, em = self._forward_backward(
            Xv, spans, stats=True, counts=need_counts
        )
        stats = {
            "start": start,
            "trans": xi,
            "counts": cnt,
            "emission": em,
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

    def sample(
        self,
        n_samples: int = 1,
        random_state: RandomStateLike = None,
        currstate: int | None = None,
    ) -> tuple[NDArray[Any], IntArray]:
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


class _ContinuousHMM(_BaseHMM):
    """Emissions from a T x K log-likelihood matrix computed with BLAS."""

    #: The fitted attribute whose last axis is the number of features.
    _features_attr = "means_"

    @property
    def n_features(self) -> int:
        """Number of features D: from the emission parameters once they are set,
        else the value assigned (as hmmlearn, which lets users set it before fit)."""
        if hasattr(self, self._features_attr):
            return int(np.shape(getattr(self, self._features_attr))[-1])
        if "_n_features" in self.__dict__:
            return self._n_features
        raise AttributeError(
            f"n_features is not set: assign it or {self._features_attr}, or call fit"
        )

    @n_features.setter
    def n_features(self, value: int) -> None:
        self._n_features = check_int(value, "n_features", low=1)

    def _check_n_features(self, d: int, what: str) -> None:
        """``what`` has ``d`` features: it must agree with an assigned n_features."""
        assigned = self.__dict__.get("_n_features")
        if assigned is not None and d != assigned:
            raise ValueError(f"{what} has {d} features, but n_features={assigned}")

    def _fit_X(self, X):
        Xv = self._check_X(X, fitting=True)
        self._xfit = Xv.astype(np.float64, copy=False)  # the emission statistics' rows
        return Xv

    def _frames(self, Xv, log: bool, cancel):
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
