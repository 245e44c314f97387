"""Generic Monte Carlo on any proposal: rejection and importance sampling
(PRML sec. 11.1.2 and 11.1.4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from fastml._typing import ArrayLike, NDArray, Proposal, RandomStateLike
from fastml._validation import (
    check_int,
    check_random_state,
    check_real,
)
from fastml.sampling._distributions import _uniform_open

__all__ = [
    "ImportanceResult",
    "RejectionResult",
    "importance_sample",
    "rejection_sample",
]


class RejectionResult(NamedTuple):
    """Output of :func:`rejection_sample`."""

    samples: np.ndarray
    """Accepted draws, shape ``(size,) + event_shape``."""
    acceptance_rate: float
    """Accepted / proposed."""
    n_proposed: int


class ImportanceResult(NamedTuple):
    """Output of :func:`importance_sample`."""

    estimate: float | np.ndarray
    """The estimate of E_p[f]."""
    stderr: float | np.ndarray
    """Its standard error (delta method when self-normalised)."""
    weights: np.ndarray
    """Normalised importance weights (sum to 1), shape (size,)."""
    ess: float
    """Effective sample size ``1 / sum w_i^2`` of the normalised weights."""


def _check_proposal(proposal) -> None:
    for attr in ("rvs", "logpdf"):
        if not callable(getattr(proposal, attr, None)):
            raise TypeError(
                "proposal must have rvs(size, random_state) and logpdf(x) methods "
                f"(e.g. a frozen scipy.stats distribution); {type(proposal).__name__} "
                f"has no {attr}"
            )


def _batch_eval(fn, z: np.ndarray, n: int, name: str) -> np.ndarray:
    out = np.asarray(fn(z), dtype=float)
    if out.shape != (n,):
        raise ValueError(
            f"{name} must be vectorised: for {n} points (shape {z.shape}) it returned "
            f"shape {out.shape}, expected ({n},)"
        )
    if np.isnan(out).any():
        i = int(np.argmax(np.isnan(out)))
        raise ValueError(f"{name} returned NaN at z = {z[i]}")
    return out


def _propose(proposal, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(proposal.rvs(size=n, random_state=rng))
    if z.ndim == 0 or z.shape[0] != n:
        raise ValueError(
            f"proposal.rvs(size={n}) must return {n} draws along axis 0, got shape "
            f"{z.shape}"
        )
    return z, _batch_eval(proposal.logpdf, z, n, "proposal.logpdf")


def rejection_sample(
    log_target: Callable[[NDArray[Any]], ArrayLike],
    proposal: Proposal,
    log_k: float,
    size: int,
    random_state: RandomStateLike = None,
    *,
    max_tries: int | None = None,
) -> RejectionResult:
    """Envelope rejection sampling from an unnormalised density ``p~``.

    Parameters
    ----------
    log_target : callable
        Vectorised ``log p~(z)``: called with a batch of proposals (axis 0), returns one
        value per proposal.
    proposal : object
        ``rvs(size, random_state)`` and ``logpdf(x)``, e.g. a frozen ``scipy.stats``
        distribution.
    log_k : float
        ``log k`` of the envelope ``k q(z) >= p~(z)`` for all z.
    size : int
        Number of samples wanted, >= 1.
    random_state : None, int or numpy.random.Generator
        Passed to ``proposal.rvs``; the acceptance uniforms come from the same
        Generator (through the C API).
    max_tries : int, optional
        Give up after this many proposals (default ``1000 * size + 10000``).

    Returns
    -------
    RejectionResult
        ``samples``, ``acceptance_rate``, ``n_proposed``.

    Raises
    ------
    ValueError
        A violated envelope: ``p~(z) > k q(z)`` at a proposed point (the message gives
        z and by how much; raise ``log_k``). Non-finite ``log_k``, bad shapes, NaN
        densities.
    RuntimeError
        Fewer than ``size`` acceptances within ``max_tries`` proposals.

    Notes
    -----
    PRML sec. 11.1.2: draw ``z ~ q``, ``u ~ U(0, k q(z))``, keep z when ``u <= p~(z)``;
    here in logs: ``log U < log p~(z) - log k - log q(z)``. The acceptance rate
    estimates ``int p~ / k`` (eq. 11.14 with normalised q).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import stats
    >>> from fastml.sampling import rejection_sample
    >>> log_k = np.log(2 * np.pi) - 0.5   # sup of exp(-z^2/2) / Cauchy pdf
    >>> r = rejection_sample(lambda z: -0.5 * z**2, stats.cauchy(), log_k, 10_000,
    ...                      random_state=0)
    >>> r.samples.shape, bool(abs(r.acceptance_rate - 0.6577) < 0.02)
    ((10000,), True)
    """
    if not callable(log_target):
        raise TypeError(f"log_target must be callable, got {type(log_target).__name__}")
    _check_proposal(proposal)
    log_k = check_real(log_k, "log_k")
    size = check_int(size, "size", low=1)
    if max_tries is None:
        max_tries = 1000 * size + 10_000
    max_tries = check_int(max_tries, "max_tries", low=1)
    rng = check_random_state(random_state)
    kept: list[np.ndarray] = []
    n_acc = n_prop = 0
    rate = 1.0
    while n_acc < size:
        if n_prop >= max_tries:
            raise RuntimeError(
                f"rejection_sample accepted {n_acc} of {n_prop} proposals (max_tries="
                f"{max_tries}) before reaching size={size}: the envelope is too loose "
                f"(lower log_k) or the proposal misses the target"
            )
        b = int(min(max_tries - n_prop, max(64, 1.2 * (size - n_acc) / rate)))
        z, lq = _propose(proposal, b, rng)
        lp = _batch_eval(log_target, z, b, "log_target")
        with np.errstate(invalid="ignore"):
            excess = lp - (log_k + lq)
        excess[np.isnan(excess)] = -np.inf  # p~ = q = 0: never proposed in practice
        worst = int(np.argmax(excess))
        if excess[worst] > 1e-9 * max(1.0, abs(lp[worst])):
            raise ValueError(
                f"envelope violated: p~(z) > k q(z) at z = {z[worst]} "
                f"(log p~(z) - log k q(z) = {excess[worst]:.4g}); increase log_k to "
                f"at least {log_k + excess[worst]:.6g}"
            )
        u = _uniform_open(rng, b)
        acc = np.log(u) < excess
        kept.append(z[acc])
        n_acc += int(acc.sum())
        n_prop += b
        rate = max(n_acc / n_prop, 1e-3)
    samples = np.concatenate(kept)[:size]
    return RejectionResult(samples, n_acc / n_prop, n_prop)


def importance_sample(
    f: Callable[[NDArray[Any]], ArrayLike],
    log_target: Callable[[NDArray[Any]], ArrayLike],
    proposal: Proposal,
    size: int,
    random_state: RandomStateLike = None,
    *,
    self_normalized: bool = True,
) -> ImportanceResult:
    """Importance-sampling estimate of ``E_p[f(z)]`` with draws from ``proposal``.

    Parameters
    ----------
    f : callable
        Vectorised integrand: for a batch z (axis 0) returns shape (size,) or
        (size, k).
    log_target : callable
        Vectorised ``log p(z)``; unnormalised is fine when ``self_normalized``.
    proposal : object
        ``rvs(size, random_state)`` and ``logpdf(x)`` (a frozen ``scipy.stats``
        distribution qualifies).
    size : int
        Number of proposals, >= 2.
    random_state : None, int or numpy.random.Generator
    self_normalized : bool, default True
        Weights ``w_i / sum w`` (PRML eqs. 11.22-11.23, p may be unnormalised).
        Otherwise ``mean(w f)`` with ``w = p / q`` (eq. 11.19, p normalised).

    Returns
    -------
    ImportanceResult
        ``estimate``, ``stderr``, normalised ``weights`` and their ``ess``.

    Notes
    -----
    Self-normalised standard error by the delta method,
    ``sqrt(sum_i wbar_i^2 (f_i - estimate)^2)``; ESS ``= 1 / sum_i wbar_i^2``
    (Kong 1992).

    Examples
    --------
    >>> from scipy import stats
    >>> from fastml.sampling import importance_sample
    >>> r = importance_sample(lambda z: z**2, lambda z: -0.5 * z**2, stats.norm(0, 2),
    ...                       100_000, random_state=0)
    >>> bool(abs(r.estimate - 1) < 5 * r.stderr)
    True
    """
    for name, fn in (("f", f), ("log_target", log_target)):
        if not callable(fn):
            raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    _check_proposal(proposal)
    size = check_int(size, "size", low=2)
    rng = check_random_state(random_state)
    z, lq = _propose(proposal, size, rng)
    lp = _batch_eval(log_target, z, size, "log_target")
    fz = np.asarray(f(z), dtype=float)
    if fz.ndim not in (1, 2) or fz.shape[0] != size:
        raise ValueError(
            f"f must be vectorised: returned shape {fz.shape}, expected ({size},) or "
            f"({size}, k)"
        )
    if not np.isfinite(fz).all():
        raise ValueError("f returned a non-finite value")
    if np.isposinf(lp).any():
        raise ValueError("log_target returned +inf")
    logw = lp - lq
    logw[np.isnan(logw)] = -np.inf
    top = logw.max()
    if not np.isfinite(top):
        raise ValueError(
            "all importance weights are zero (or infinite): the proposal does not "
            "cover the target"
        )
    w = np.exp(logw - top)
    wbar = w / w.sum()
    ess = float(1.0 / np.sum(wbar * wbar))
    wcol = wbar if fz.ndim == 1 else wbar[:, None]
    if self_normalized:
        est = np.sum(wcol * fz, axis=0)
        se = np.sqrt(np.sum(wcol * wcol * (fz - est) ** 2, axis=0))
    else:
        wf = np.exp(logw)[:, None] * fz if fz.ndim == 2 else np.exp(logw) * fz
        est = wf.mean(axis=0)
        se = wf.std(axis=0, ddof=1) / np.sqrt(size)
    if fz.ndim == 1:
        est, se = float(est), float(se)
    return ImportanceResult(est, se, wbar, ess)
