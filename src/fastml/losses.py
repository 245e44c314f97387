"""Losses as negative log-likelihoods, their gradients, and the divergences behind them.

Maximum likelihood under a noise model is minimisation of a loss: Gaussian noise gives
the squared error (PRML eq. 1.62), a Bernoulli output the binary cross-entropy (PRML eq.
4.90) and a categorical output the softmax cross-entropy (PRML eq. 4.108). Minimising the
expected negative log-likelihood is minimising KL(p_data || p_model) up to the data
entropy, so :func:`kl_categorical` and :func:`kl_gaussian` are given in closed form too.

Each loss returns a :class:`LossResult` ``(loss, grad)``: the (weighted) mean loss as a
Python float, accumulated in float64, and its gradient w.r.t. the prediction or logits,
of the input's shape and dtype: float32 predictions give a float32 kernel and gradient
(targets are converted to float32), anything else float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, overload

import numpy as np
import scipy.linalg

from fastml._kernels import _losses
from fastml._typing import ArrayLike, FloatArray
from fastml._validation import (
    as_ndarray,
    check_array,
    check_sample_weight,
    float_dtype,
)

__all__ = [
    "LossResult",
    "binary_cross_entropy",
    "kl_categorical",
    "kl_gaussian",
    "softmax_cross_entropy",
    "squared_error",
]


class LossResult(NamedTuple):
    """A mean loss and its gradient w.r.t. the prediction (same shape and dtype)."""

    loss: float
    grad: np.ndarray


def _as_2d(a: np.ndarray, weighted: bool) -> np.ndarray:
    """(n, k) rows for per-sample weights; one long row without them (the kernels' inner
    loop then runs over all elements at once)."""
    return a.reshape(a.shape[0], -1) if weighted else a.reshape(1, -1)


def _paired(pred, target, pred_name: str, target_name: str):
    """Validate two arrays of the same shape, (n,) or (n, k), in the prediction's dtype.

    The prediction decides the kernel dtype (float32 stays float32, the rest float64) and
    the target is converted to it, so a float32 model gets float32 gradients.
    """
    p = as_ndarray(pred, pred_name)
    t = as_ndarray(target, target_name)
    dt = float_dtype(p.dtype, name=pred_name)
    float_dtype(t.dtype, name=target_name)
    p = check_array(p, pred_name, ndim=(1, 2), dtype=dt)
    t = check_array(t, target_name, ndim=(1, 2), dtype=dt)
    if p.shape != t.shape:
        raise ValueError(
            f"{target_name} must have the shape of {pred_name} {p.shape}, got {t.shape}"
        )
    return p, t


def squared_error(
    y_pred: ArrayLike,
    y_true: ArrayLike,
    *,
    variance: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
) -> LossResult:
    """Squared error, or the full Gaussian negative log-likelihood when ``variance`` is given.

    Parameters
    ----------
    y_pred, y_true : array_like of shape (n,) or (n, k)
        Predictions and targets, finite.
    variance : float or array_like, optional
        Noise variance sigma^2 > 0, a scalar or broadcastable to ``y_pred``. Without it the
        loss is the mean of ``(y_pred - y_true)**2`` (as ``torch.nn.functional.mse_loss``);
        with it, the mean of ``0.5 log(2 pi sigma^2) + (y_pred - y_true)**2 / (2 sigma^2)``
        (as ``gaussian_nll_loss(..., full=True)``).
    sample_weight : array_like of shape (n,), optional
        Non-negative weights; the mean is ``sum_i w_i l_i / (k sum_i w_i)``.

    Returns
    -------
    LossResult
        ``loss`` and ``grad = d loss / d y_pred``.

    Notes
    -----
    Under y ~ N(f(x), sigma^2) the negative log-likelihood is PRML eq. 1.62; for fixed
    sigma^2 minimising it is minimising the squared error.

    Examples
    --------
    >>> from fastml.losses import squared_error
    >>> squared_error([1.0, 2.0], [0.0, 0.0])
    LossResult(loss=2.5, grad=array([1., 2.]))
    """
    p, t = _paired(y_pred, y_true, "y_pred", "y_true")
    w, total = check_sample_weight(sample_weight, p.shape[0], p.dtype)
    p2, t2 = _as_2d(p, w.size > 0), _as_2d(t, w.size > 0)
    if variance is None:
        var = np.empty((0, 0), dtype=p.dtype)
    else:
        var = check_array(variance, "variance", ndim=(0, 1, 2), dtype=p.dtype)
        if (var <= 0).any():
            raise ValueError(f"variance must be positive, got min {var.min()}")
        try:
            var = np.ascontiguousarray(np.broadcast_to(var, p.shape)).reshape(p2.shape)
        except ValueError:
            raise ValueError(
                f"variance of shape {var.shape} does not broadcast to y_pred {p.shape}"
            ) from None
    scale = 1.0 / (total * (p.size // p.shape[0]))  # mean over samples and outputs
    grad = np.empty_like(p2)
    loss = _losses.squared_error(p2, t2, var, w, scale, grad)
    return LossResult(loss * scale, grad.reshape(p.shape))


def binary_cross_entropy(
    logits: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None
) -> LossResult:
    """Binary cross-entropy from logits (Bernoulli negative log-likelihood).

    Parameters
    ----------
    logits : array_like of shape (n,) or (n, k)
        Real-valued scores a; the model is p(y=1) = sigmoid(a). Finite; any magnitude
        (``|a| = 1e4`` gives exact, finite results).
    y : array_like of the shape of ``logits``
        Targets in [0, 1] (hard labels or probabilities).
    sample_weight : array_like of shape (n,), optional
        Non-negative weights; the mean is ``sum_i w_i l_i / (k sum_i w_i)``.

    Returns
    -------
    LossResult
        ``loss`` and ``grad = d loss / d logits`` (``sigmoid(a) - y`` per element, scaled).

    Notes
    -----
    PRML eq. 4.90 written in logits: ``l = max(a, 0) - a y + log(1 + exp(-|a|))``, whose
    gradient is PRML eq. 4.91.

    Examples
    --------
    >>> from fastml.losses import binary_cross_entropy
    >>> r = binary_cross_entropy([0.0, 1e4], [1.0, 1.0])
    >>> round(r.loss, 6), r.grad
    (0.346574, array([-0.25,  0.  ]))
    """
    z, t = _paired(logits, y, "logits", "y")
    if ((t < 0) | (t > 1)).any():
        raise ValueError(f"y must lie in [0, 1], got values in [{t.min()}, {t.max()}]")
    w, total = check_sample_weight(sample_weight, z.shape[0], z.dtype)
    z2, t2 = _as_2d(z, w.size > 0), _as_2d(t, w.size > 0)
    scale = 1.0 / (total * (z.size // z.shape[0]))  # mean over samples and outputs
    # exp(-|z|) and log1p of it by numpy's SIMD ufuncs; the kernel does the rest in one pass
    grad = np.abs(z2)
    np.negative(grad, out=grad)
    np.exp(grad, out=grad)
    softplus = np.log1p(grad)
    loss = _losses.binary_cross_entropy(z2, t2, softplus, w, scale, grad)
    return LossResult(loss * scale, grad.reshape(z.shape))


def softmax_cross_entropy(
    logits: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None
) -> LossResult:
    """Multi-class cross-entropy of softmax(logits) (categorical negative log-likelihood).

    Parameters
    ----------
    logits : array_like of shape (n, C)
        Finite scores, any magnitude.
    y : array_like
        Either integer class indices of shape (n,) in ``[0, C)``, or target probabilities
        of shape (n, C): non-negative rows summing to 1 (tolerance 1e-6 for float64,
        1e-4 for float32).
    sample_weight : array_like of shape (n,), optional
        Non-negative weights; the mean is ``sum_i w_i l_i / sum_i w_i``.

    Returns
    -------
    LossResult
        ``loss`` and ``grad = d loss / d logits`` (``softmax(a) - y`` per row, scaled).

    Notes
    -----
    PRML eq. 4.108 with the log-sum-exp shifted by the row maximum; gradient PRML eq.
    4.109.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.losses import softmax_cross_entropy
    >>> r = softmax_cross_entropy(np.zeros((1, 4)), [2])
    >>> bool(abs(r.loss - np.log(4)) < 1e-15)
    True
    """
    z_in = as_ndarray(logits, "logits")
    y_in = as_ndarray(y, "y")
    z = check_array(z_in, "logits", ndim=2)
    n, c = z.shape
    w, total = check_sample_weight(sample_weight, n, z.dtype)
    grad = np.empty_like(z)
    scale = 1.0 / total
    if y_in.dtype.kind in "iu":
        if y_in.shape != (n,):
            raise ValueError(
                f"y as class indices must have shape ({n},), got {y_in.shape}"
            )
        if n and (y_in.min() < 0 or y_in.max() >= c):
            raise ValueError(
                f"y class indices must lie in [0, {c}), got values in [{y_in.min()}, {y_in.max()}]"
            )
        labels = np.require(y_in, np.intp, "CA")  # C-contiguous and aligned
        loss = _losses.softmax_cross_entropy_index(z, labels, w, scale, grad)
        return LossResult(loss * scale, grad)
    if y_in.dtype.kind == "b" or y_in.ndim != 2:
        raise ValueError(
            f"y must be integer class indices of shape ({n},) or probabilities of shape "
            f"({n}, {c}); got dtype {y_in.dtype} and shape {y_in.shape}"
        )
    t = check_array(y_in, "y", ndim=2, dtype=z.dtype)
    if t.shape != z.shape:
        raise ValueError(f"y as probabilities must have shape {z.shape}, got {t.shape}")
    if (t < 0).any():
        raise ValueError("y probabilities must be non-negative")
    tol = 1e-4 if z.dtype == np.float32 else 1e-6
    sums = t.sum(axis=1, dtype=np.float64)
    bad = np.flatnonzero(np.abs(sums - 1.0) > tol)
    if bad.size:
        raise ValueError(
            f"y rows must sum to 1 (row {bad[0]} sums to {sums[bad[0]]:.6g}, tol={tol:g})"
        )
    loss = _losses.softmax_cross_entropy_proba(z, t, w, scale, grad)
    return LossResult(loss * scale, grad)


@overload
def kl_categorical(p: Sequence[float], q: Sequence[float], axis: int = -1) -> float: ...
@overload
def kl_categorical(
    p: ArrayLike, q: ArrayLike, axis: int = -1
) -> float | FloatArray: ...
def kl_categorical(p: ArrayLike, q: ArrayLike, axis: int = -1) -> float | FloatArray:
    """KL(p || q) = sum_i p_i log(p_i / q_i) between categorical distributions.

    Parameters
    ----------
    p, q : array_like
        Probability vectors along ``axis`` (non-negative, summing to 1 within 1e-6),
        broadcastable against each other.
    axis : int, default -1
        The category axis.

    Returns
    -------
    float or numpy.ndarray
        float64, >= 0; ``0 log 0 = 0`` and ``inf`` where p_i > 0 = q_i.

    Examples
    --------
    >>> from fastml.losses import kl_categorical
    >>> round(kl_categorical([0.5, 0.5], [0.9, 0.1]), 10)
    0.5108256238
    """
    pa = check_array(p, "p", dtype=np.float64)
    qa = check_array(q, "q", dtype=np.float64)
    if pa.ndim == 0 or qa.ndim == 0:
        raise ValueError("p and q must have at least one dimension")
    try:
        pa, qa = np.broadcast_arrays(pa, qa)
    except ValueError:
        raise ValueError(
            f"p {pa.shape} and q {qa.shape} do not broadcast together"
        ) from None
    if not -pa.ndim <= axis < pa.ndim:
        raise ValueError(f"axis {axis} is out of bounds for {pa.ndim}-dimensional p")
    for name, a in (("p", pa), ("q", qa)):
        if (a < 0).any():
            raise ValueError(f"{name} must be non-negative")
        s = a.sum(axis=axis)
        if (np.abs(s - 1.0) > 1e-6).any():
            raise ValueError(
                f"{name} must sum to 1 along axis {axis} (found a sum of "
                f"{s.flat[np.argmax(np.abs(s - 1.0))]:.6g}, tol=1e-6)"
            )
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(pa > 0, pa * (np.log(pa) - np.log(qa)), 0.0)
    out = terms.sum(axis=axis)
    return float(out) if out.ndim == 0 else out


def kl_gaussian(
    mean0: ArrayLike, cov0: ArrayLike, mean1: ArrayLike, cov1: ArrayLike
) -> float:
    """KL(N(mean0, cov0) || N(mean1, cov1)) in closed form, via Cholesky factors.

    ``0.5 [tr(S1^-1 S0) + (m1 - m0)^T S1^-1 (m1 - m0) - d + log|S1| - log|S0|]``
    (the closed form asked for in PRML exercise 2.13), with every solve and
    log-determinant taken from the Cholesky factors L0, L1: no inverse is formed.

    Parameters
    ----------
    mean0, mean1 : array_like of shape (d,)
    cov0, cov1 : array_like of shape (d, d)
        Symmetric positive-definite covariances (a scalar is accepted for d = 1).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Shape mismatch, non-finite values, a non-symmetric or non-positive-definite
        covariance.

    Examples
    --------
    >>> from fastml.losses import kl_gaussian
    >>> round(kl_gaussian([0.0], [[1.0]], [1.0], [[2.0]]), 10)  # 0.5 log 2
    0.3465735903
    """
    m0 = check_array(mean0, "mean0", ndim=1, dtype=np.float64)
    m1 = check_array(mean1, "mean1", ndim=1, dtype=np.float64)
    d = m0.shape[0]
    if m1.shape != (d,):
        raise ValueError(f"mean1 must have shape ({d},) like mean0, got {m1.shape}")
    l0 = _cholesky(cov0, "cov0", d)
    l1 = _cholesky(cov1, "cov1", d)
    # S1^-1 S0 = L1^-T L1^-1 L0 L0^T, so tr(S1^-1 S0) = ||L1^-1 L0||_F^2.
    a = scipy.linalg.solve_triangular(l1, l0, lower=True)
    b = scipy.linalg.solve_triangular(l1, m1 - m0, lower=True)
    logdet = 2.0 * (np.log(np.diag(l1)).sum() - np.log(np.diag(l0)).sum())
    return float(0.5 * (np.sum(a * a) + b @ b - d + logdet))


def _cholesky(cov, name: str, d: int) -> np.ndarray:
    c = check_array(cov, name, ndim=(0, 2), dtype=np.float64)
    if c.ndim == 0:
        c = c.reshape(1, 1)
    if c.shape != (d, d):
        raise ValueError(f"{name} must have shape ({d}, {d}), got {c.shape}")
    if not np.allclose(c, c.T, rtol=1e-10, atol=1e-12 * np.abs(c).max()):
        raise ValueError(f"{name} must be symmetric")
    try:
        return np.linalg.cholesky(c)
    except np.linalg.LinAlgError:
        raise ValueError(
            f"{name} must be positive definite (its Cholesky factorisation failed)"
        ) from None
