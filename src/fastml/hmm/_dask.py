"""HMM fits on a ``dask.array.Array``: Baum-Welch whose E-steps run on the Dask workers.

``fit(X, lengths)`` with ``X`` a dask array (rows = time steps, chunked along the rows)
and ``lengths`` a numpy array: the in-memory call unchanged. ``X`` is first rechunked
so that every chunk holds whole consecutive sequences (:func:`whole_sequences`), then
each EM iteration ships the current parameters to the workers once, runs the in-memory
E-step (:meth:`_BaseHMM._do_estep`: the same compiled forward-backward, transition and
emission statistics, log-likelihood) on every chunk where it lives, with that chunk's
lengths, and tree-reduces only the statistics in chunk order
(:func:`fastml._parallel.dask_reduce`); the M-step runs on the client, the same code
as in memory. ``score`` reduces the per-chunk log-likelihoods the same way;
``predict`` and ``predict_proba`` are lazy, one task per chunk of whole sequences.
Imported only when a dask array is passed.
"""

from __future__ import annotations

import copy
import operator

import numpy as np

from fastml._parallel import (
    _compute,
    _run_chunk,
    check_dask_array,
    dask_reduce,
    dask_scheduler_guard,
)
from fastml._validation import check_random_state
from fastml.hmm._base import _spans
from fastml.hmm._categorical import CategoricalHMM
from fastml.hmm._gaussian import GaussianHMM
from fastml.hmm._multinomial import MultinomialHMM

#: Rows the emission initialisation sees (k-means, data covariance, rates).
INIT_SAMPLE = 20_000


def whole_sequences(X, lengths: np.ndarray):
    """``X`` rechunked along the rows at sequence boundaries, and the lengths of the
    sequences of each chunk (a list of 1-tuples, the ``chunk_args`` of
    :func:`dask_reduce`).

    Every sequence goes to the input chunk its first row lies in, so the new chunks
    are about the input's size, end at sequence boundaries, depend only on ``lengths``
    and the input chunking, and are the input chunks when those already end at
    sequence boundaries (no data moves). A sequence longer than a chunk makes a chunk
    of its own.
    """
    sizes = np.asarray(X.chunks[0], dtype=np.int64)
    chunk_starts = np.cumsum(sizes) - sizes
    seq_starts = np.cumsum(lengths) - lengths
    owner = np.searchsorted(chunk_starts, seq_starts, side="right") - 1
    groups = np.split(lengths, np.flatnonzero(np.diff(owner)) + 1)
    rows = tuple(int(g.sum()) for g in groups)
    if rows != tuple(X.chunks[0]):
        X = X.rechunk({0: rows})
    return X, [(np.ascontiguousarray(g),) for g in groups]


def _shipped(est):
    """A copy of ``est`` holding its parameters but no data: what goes to the workers
    (once per iteration). One thread per task: Dask runs the tasks in parallel."""
    model = copy.copy(est)
    for name in ("_xfit", "_within", "_missing", "monitor_"):
        model.__dict__.pop(name, None)
    model.n_jobs = 1
    if isinstance(model, MultinomialHMM):
        model.n_trials = None  # checked against every row by the validation pass
    return model


# ---- validation pass (before the initialisation) -------------------------------------


def _chunk_check(chunk, model, trials):
    """Validate one chunk (the in-memory checks) and return what the fit needs to
    know about every row: CategoricalHMM the largest symbol, MultinomialHMM the
    smallest and largest row sums, GaussianHMM whether values are missing (NaN), the
    others None."""
    model = copy.copy(model)
    if trials is not None:
        model.n_trials = trials
    Xv = model._check_X(chunk, fitting=False)
    if isinstance(model, CategoricalHMM):
        seen = Xv[Xv < model._n_symbols()]  # missing values are coded n_features
        return int(seen.max()) if seen.size else -1
    if isinstance(model, MultinomialHMM):
        sums = Xv.sum(axis=1)
        return float(sums.min()), float(sums.max())
    if isinstance(model, GaussianHMM):
        return model._missing is not None
    return None


def _merge_check(a, b):
    if a is None:
        return None
    if isinstance(a, tuple):
        return min(a[0], b[0]), max(a[1], b[1])
    return max(a, b)


def _validate(est, X, chunk_lengths):
    """One pass over ``X`` with the in-memory checks (errors name the chunk); returns
    :func:`_chunk_check`'s summary of all rows."""
    model = _shipped(est)
    chunk_args = [(None,)] * X.numblocks[0]
    if isinstance(est, CategoricalHMM) and est._n_features_unset():
        model.n_features = np.iinfo(np.intp).max  # any symbol >= 0 is valid here
    if isinstance(est, MultinomialHMM) and est.n_trials is not None:
        trials = est._check_trials(X.shape[0])
        if trials.ndim == 1:  # one per row: each chunk checks its own
            ends = np.cumsum([sum(g) for (g,) in chunk_lengths])
            chunk_args = [(t,) for t in np.split(trials, ends[:-1])]
        else:
            model.n_trials = trials
    return dask_reduce(X, _chunk_check, _merge_check, args=(model,),
                       chunk_args=chunk_args)  # fmt: skip


# ---- initialisation ---------------------------------------------------------------------


def _init_rows(X, rng) -> np.ndarray:
    """The rows the emission initialisation sees: all of them in order when there are
    at most :data:`INIT_SAMPLE` (no random numbers drawn: the initialisation then
    equals the in-memory one), else :data:`INIT_SAMPLE` drawn without replacement by
    ``rng`` (sorted)."""
    n = X.shape[0]
    if n > INIT_SAMPLE:
        X = X[np.sort(rng.choice(n, size=INIT_SAMPLE, replace=False))]
    return np.asarray(_compute(X)[0])


def _initialise(est, X, rng, summary) -> None:
    """``init_params`` on dask input: the chain as in memory, then the in-memory
    emission initialisation on :func:`_init_rows`, with the settings that depend on
    every row (CategoricalHMM's ``n_features``, MultinomialHMM's ``n_trials``) taken
    from the validation pass."""
    est._init_chain(rng)
    trials = None
    if isinstance(est, CategoricalHMM) and est._n_features_unset():
        if summary < 0:
            raise ValueError("X has no observed symbol (all -1)")
        est.n_features = summary + 1  # as in memory: fit sets it from the data
    if isinstance(est, MultinomialHMM):
        trials = est.n_trials
        if trials is None:  # as hmmlearn: the data fix n_trials
            lo, hi = summary
            trials = int(lo) if lo == hi else _row_sums(X)
        est.n_trials = None  # every row was checked against it
    rows = _init_rows(X, rng)
    try:
        est._init_emissions(est._fit_X(rows), rng)
    finally:
        est._drop_fit_data()
        if isinstance(est, MultinomialHMM):
            est.n_trials = trials


def _row_sums(X) -> np.ndarray:
    return _compute(X.sum(axis=1).astype(np.int64))[0]


# ---- the E-step on the workers -------------------------------------------------------


def _chunk_estep(chunk, model, missing, lengths):
    """The in-memory E-step on one chunk of whole sequences: ``(stats, log p)``.
    ``missing``: values are missing in some chunk (GaussianHMM), so every chunk sums
    the posterior mass per observed feature, as in memory."""
    model = copy.copy(model)  # tasks on one worker share the unpickled parameters
    Xv = model._fit_X(chunk)
    if missing and model._missing is None:
        model._missing = np.zeros(Xv.shape, dtype=bool)
    return model._do_estep(Xv, _spans(lengths, Xv.shape[0]))


def _add(a, b):
    """Sum two chunks' ``(stats, log p)`` (associative; None stays None)."""

    def add(x, y):
        if x is None:
            return None
        if isinstance(x, tuple):
            return tuple(add(u, v) for u, v in zip(x, y, strict=True))
        return x + y

    return {key: add(a[0][key], b[0][key]) for key in a[0]}, a[1] + b[1]


def fit(est, X, lengths):
    """:meth:`_BaseHMM.fit` on a dask array ``X`` with numpy ``lengths``."""
    est._check_hyper()
    X, _ = check_dask_array(X, "X", ndim=2, whole_axes=(1,))
    spans = _spans(lengths, X.shape[0])
    X, chunk_lengths = whole_sequences(X, spans[:, 1] - spans[:, 0])
    summary = _validate(est, X, chunk_lengths)
    _initialise(est, X, check_random_state(est.random_state), summary)

    same_scheduler = dask_scheduler_guard()

    def estep():
        same_scheduler()
        missing = isinstance(est, GaussianHMM) and summary
        return dask_reduce(X, _chunk_estep, _add, args=(_shipped(est), missing),
                           chunk_args=chunk_lengths)  # fmt: skip

    return est._em(estep, stacklevel=4)


# ---- inference ---------------------------------------------------------------------------


def _prepared(est, X, lengths):
    """Fitted ``est`` and dask ``X``: X in chunks of whole sequences, their lengths,
    and the parameters to ship."""
    est._check_fitted()
    X, _ = check_dask_array(X, "X", ndim=2, whole_axes=(1,))
    spans = _spans(lengths, X.shape[0])
    X, chunk_lengths = whole_sequences(X, spans[:, 1] - spans[:, 0])
    model = _shipped(est)
    if isinstance(est, MultinomialHMM) and np.ndim(est.n_trials) == 0:
        model.n_trials = est.n_trials  # every row must sum to it, as in memory
    return X, chunk_lengths, model


def _chunk_score(chunk, model, lengths):
    """The in-memory ``score`` of one chunk of whole sequences."""
    return copy.copy(model).score(chunk, lengths)


def score(est, X, lengths) -> float:
    """:meth:`_BaseHMM.score` of a dask array: per-chunk sums added in chunk order."""
    X, chunk_lengths, model = _prepared(est, X, lengths)
    return dask_reduce(X, _chunk_score, operator.add, args=(model,),
                       chunk_args=chunk_lengths)  # fmt: skip


def _chunk_lazy(chunk, model, method, lengths):
    """The in-memory ``predict`` / ``predict_proba`` of one chunk of whole
    sequences."""
    return getattr(copy.copy(model), method)(chunk, lengths)


def lazy(est, X, lengths, method: str):
    """``predict`` or ``predict_proba`` of a dask array: a lazy dask array with one
    task per chunk of whole sequences (errors name the chunk, as in :meth:`fit`)."""
    import dask
    import dask.array as da

    X, chunk_lengths, model = _prepared(est, X, lengths)
    params = dask.delayed((model, method))
    run = dask.delayed(_run_chunk, pure=True)
    k, d = est.n_components, X.shape[1]
    dtype = np.intp if method == "predict" else est._frame_dtype(X)
    ends = np.cumsum((0,) + X.chunks[0])
    parts = []
    for i, (blk, (lens,)) in enumerate(
        zip(X.to_delayed().ravel(), chunk_lengths, strict=True)
    ):
        where = f"({i}, 0) ([{ends[i]}:{ends[i + 1]}, 0:{d}])"
        out = run(blk, _chunk_lazy, where, "X", params, (lens,))
        rows = int(ends[i + 1] - ends[i])
        shape = (rows,) if method == "predict" else (rows, k)
        parts.append(da.from_delayed(out, shape=shape, dtype=dtype))
    return da.concatenate(parts)
