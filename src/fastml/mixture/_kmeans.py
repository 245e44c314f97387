"""k-means for initialisation: k-means++ seeding (Arthur & Vassilvitskii 2007) and
Lloyd's iterations.
"""

from __future__ import annotations

import numpy as np

from fastml._typing import ArrayLike, IntArray, RandomStateLike, RealArray
from fastml._validation import (
    check_array,
    check_int,
    check_random_state,
)

__all__ = ["kmeans_plusplus"]


def kmeans_plusplus(
    X: ArrayLike,
    n_clusters: int,
    random_state: RandomStateLike = None,
    n_local_trials: int | None = None,
) -> tuple[RealArray, IntArray]:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007).

    Each new centre is drawn with probability proportional to the squared distance to
    the nearest centre chosen so far; of ``n_local_trials`` (default
    ``2 + int(log(n_clusters))``) such draws the one that most reduces the potential
    is kept, as in scikit-learn.

    Parameters
    ----------
    X : array_like of shape (n_samples, n_features)
    n_clusters : int
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features)
    indices : ndarray of shape (n_clusters,)
        Rows of ``X`` chosen as centres.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.mixture import kmeans_plusplus
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 10.0], [10.1, 10.0]])
    >>> centers, idx = kmeans_plusplus(X, 2, random_state=0)
    >>> sorted(np.round(centers[:, 0]).tolist())
    [0.0, 10.0]
    """
    X = check_array(X, "X", ndim=2)
    n = X.shape[0]
    n_clusters = check_int(n_clusters, "n_clusters", low=1, high=n)
    rng = check_random_state(random_state)
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    Xd = X.astype(np.float64, copy=False)
    sq = np.einsum("ij,ij->i", Xd, Xd)
    indices = np.empty(n_clusters, dtype=np.intp)
    indices[0] = rng.integers(n)
    closest = np.maximum(sq - 2.0 * Xd @ Xd[indices[0]] + sq[indices[0]], 0.0)
    pot = closest.sum()
    for c in range(1, n_clusters):
        if pot > 0:
            u = rng.random(n_local_trials) * pot
            cand = np.searchsorted(np.cumsum(closest), u)
            cand = np.minimum(cand, n - 1)
        else:  # every point coincides with a centre
            cand = rng.integers(n, size=n_local_trials)
        dist = np.maximum(
            sq[None, :] - 2.0 * (Xd[cand] @ Xd.T) + sq[cand][:, None], 0.0
        )
        np.minimum(dist, closest[None, :], out=dist)
        pots = dist.sum(axis=1)
        best = int(np.argmin(pots))
        indices[c] = cand[best]
        closest = dist[best]
        pot = pots[best]
    return X[indices].copy(), indices


def _nearest(Xd, sq, centers):
    d2 = sq[:, None] - 2.0 * (Xd @ centers.T) + np.einsum("ij,ij->i", centers, centers)
    return np.argmin(d2, axis=1)


def _lloyd(Xd, centers, max_iter=100, tol=1e-4):
    """Lloyd's k-means iterations from ``centers``; returns the final centres and the
    labels of the rows (each row's nearest final centre)."""
    sq = np.einsum("ij,ij->i", Xd, Xd)
    K, d = centers.shape
    scale = tol * float(np.mean(np.var(Xd, axis=0))) + 1e-300
    labels = _nearest(Xd, sq, centers)
    for _ in range(max_iter):
        counts = np.bincount(labels, minlength=K).astype(np.float64)
        sums = np.zeros((K, d))
        _group_sum(Xd, labels, sums)
        new = np.where(
            counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centers
        )
        shift = float(np.sum((new - centers) ** 2))
        centers = new
        labels = _nearest(Xd, sq, centers)
        if shift <= scale:
            break
    return centers, labels


def _group_sum(Xd, labels, out):
    for j in range(Xd.shape[1]):
        out[:, j] = np.bincount(labels, weights=Xd[:, j], minlength=out.shape[0])
