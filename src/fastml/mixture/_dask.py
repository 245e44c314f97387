"""Gaussian mixtures on a ``dask.array.Array``: EM whose passes run on the Dask workers.

Each EM iteration ships the current parameters to the workers, runs the same compiled
E-step + statistics pass as in memory (:func:`fastml.mixture._gaussian_mixture._em_pass`)
on every row chunk where it lives, and tree-reduces only the statistics
(``N_k``, ``s_k``, ``S_k``: K x d x d at most) through :func:`fastml._parallel.dask_reduce`;
the M-step runs on the client. Imported only when a dask array is passed.

Initialisation on dask input (documented in the estimators): ``init_params`` runs on a
sample of ``min(n, 20000)`` rows drawn without replacement by ``random_state`` (the
only rows brought to the client), so it is deterministic for a given seed and chunking.
"""

from __future__ import annotations

import operator

import numpy as np

from fastml._parallel import (
    _compute,
    check_dask_array,
    dask_map_rows,
    dask_reduce,
    dask_scheduler_guard,
)
from fastml._validation import check_array, check_random_state
from fastml.mixture._gaussian_mixture import _em_pass

# Rows the initialisation sees (k-means++ / Lloyd / random responsibilities).
INIT_SAMPLE = 20_000


def _check_total(total, X):
    """A non-finite log-likelihood from non-finite data is the data's fault: say so
    (:func:`fastml._parallel.dask_reduce` adds which chunk)."""
    if not np.isfinite(total) and not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinity")
    return total


def _chunk_stats(chunk, dtype, params, entropy):
    """E-step + statistics of one chunk: ``(total, (N_k, s_k, S_k), entropy)``."""
    X = np.ascontiguousarray(chunk, dtype=dtype)
    total, _, _, stats, ent = _em_pass(X, params, stats=True, entropy=entropy)
    return _check_total(total, X), stats, ent


def _add(a, b):
    """Merge two chunks' ``(total, stats, entropy)``: sums (associative)."""
    return (
        a[0] + b[0],
        tuple(x + y for x, y in zip(a[1], b[1], strict=True)),
        a[2] + b[2],
    )


def prepare_fit(est, X):
    """``(X, init_rows, stats_pass)`` for :meth:`GaussianMixture._prepare_fit` on dask
    input: the checked dask array, a function computing the initialisation sample
    (numpy, only when the initialisation needs data) and the pass."""
    X, dtype = check_dask_array(X, "X", ndim=2, whole_axes=(1,))
    n, d = X.shape
    if n < 2:
        raise ValueError(f"X must have at least 2 samples, got {n}")
    if max(n, d) >= 2**31:
        raise ValueError("X dimensions must be < 2**31 (32-bit BLAS)")
    est.n_features_in_ = d
    if hasattr(est, "feature_names_in_"):
        del est.feature_names_in_

    same_scheduler = dask_scheduler_guard()

    def stats_pass(entropy):
        same_scheduler()
        params = est._kernel_params(np.empty((0, d), dtype=dtype))
        return dask_reduce(X, _chunk_stats, _add, args=(dtype, params, entropy))

    sample = []

    def init_rows():  # computed once, on first use
        if not sample:
            sample.append(init_sample(X, est.random_state, dtype))
        return sample[0]

    return X, init_rows, stats_pass


def init_sample(X, random_state, dtype):
    """The rows the initialisation sees: ``min(n, INIT_SAMPLE)`` of them, chosen
    without replacement by a Generator seeded from ``random_state`` (sorted)."""
    n = X.shape[0]
    if n <= INIT_SAMPLE:
        idx = np.arange(n)
    else:
        rng = check_random_state(random_state)
        idx = np.sort(rng.choice(n, size=INIT_SAMPLE, replace=False))
    (sample,) = _compute(X[idx])
    return check_array(sample, "X", ndim=2, dtype=dtype)


def mean_cov(X):
    """Column means and the (ddof=1) covariance of a dask array, computed on the
    workers (for the Bayesian mixture's default priors)."""
    Xd = X.astype(np.float64)
    mean = Xd.mean(axis=0)
    Xc = Xd - mean
    cov = (Xc.T @ Xc) / (X.shape[0] - 1)
    return _compute(mean, cov)


def _chunk_log_resp(chunk, dtype, params):
    X = np.ascontiguousarray(chunk, dtype=dtype)
    return _em_pass(X, params, resp=True)[1]


def _chunk_log_norm(chunk, dtype, params):
    X = np.ascontiguousarray(chunk, dtype=dtype)
    return _em_pass(X, params, norm=True)[2]


def _chunk_proba(chunk, dtype, params):
    return np.exp(_chunk_log_resp(chunk, dtype, params).astype(np.float64))


def _chunk_predict(chunk, dtype, params):
    return np.argmax(_chunk_log_resp(chunk, dtype, params), axis=1)


def _checked(est, X):
    """The checked dask array (features as at fit), its dtype and kernel parameters."""
    X, dtype = check_dask_array(X, "X", ndim=2, whole_axes=(1,))
    d = X.shape[1]
    if d != est.n_features_in_:
        raise ValueError(
            f"X has {d} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input."
        )
    return X, dtype, est._kernel_params(np.empty((0, d), dtype=dtype))


def _chunk_total(chunk, dtype, params):
    X = np.ascontiguousarray(chunk, dtype=dtype)
    return _check_total(_em_pass(X, params)[0], X)


def total_log_likelihood(est, X):
    """``(sum_n log p(x_n), n)`` of a dask array, the sum tree-reduced in chunk order."""
    X, dtype, params = _checked(est, X)
    total = dask_reduce(X, _chunk_total, operator.add, args=(dtype, params))
    return total, X.shape[0]


def lazy(est, X, what):
    """Lazy per-row results on dask input: ``"score_samples"``, ``"predict_proba"``
    or ``"predict"``; a dask array chunked as ``X``'s rows."""
    X, dtype, params = _checked(est, X)
    K = est.means_.shape[0]
    if what == "score_samples":
        return dask_map_rows(X, _chunk_log_norm, args=(dtype, params), dtype=np.float64)
    if what == "predict_proba":
        return dask_map_rows(
            X, _chunk_proba, args=(dtype, params), dtype=np.float64, n_cols=K
        )
    return dask_map_rows(X, _chunk_predict, args=(dtype, params), dtype=np.intp)
