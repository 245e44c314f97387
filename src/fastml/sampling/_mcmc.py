"""Markov chain Monte Carlo: Metropolis-Hastings, Hamiltonian Monte Carlo and Gibbs
sampling (PRML sec. 11.2-11.5), compiled for :class:`MultivariateNormal` targets and
driven from Python for any other target.

Ctrl-C stops a run within milliseconds, also with ``n_jobs > 1`` (the compiled chains
poll for it; the chains on worker threads are cancelled by the main thread). The call
then raises KeyboardInterrupt and returns nothing; a Generator passed as
``random_state`` has only spawned the chains' child streams (``Generator.spawn``), so
it draws the same numbers afterwards as after a completed call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import SupportsFloat

import numpy as np

from fastml._kernels import _mcmc
from fastml._parallel import run_blocks
from fastml._typing import (
    ArrayLike,
    FloatArray,
    GradLogDensity,
    LogDensity,
    RandomStateLike,
)
from fastml._validation import (
    check_array,
    check_int,
    check_real,
    spawn_generators,
)
from fastml.sampling._diagnostics import MCMCResult
from fastml.sampling._distributions import _check_cov
from fastml.sampling._targets import MultivariateNormal

__all__ = ["gibbs_sampler", "hmc", "metropolis_hastings"]


def _chain_setup(x0, n_samples, burn_in, thin, n_chains, dim: int | None):
    n_samples = check_int(n_samples, "n_samples", low=1)
    burn_in = check_int(burn_in, "burn_in", low=0)
    thin = check_int(thin, "thin", low=1)
    n_chains = check_int(n_chains, "n_chains", low=1)
    if burn_in + n_samples * thin > np.iinfo(np.intp).max:
        raise ValueError(
            f"burn_in + n_samples * thin = {burn_in} + {n_samples} * {thin} exceeds "
            f"the largest iteration count {np.iinfo(np.intp).max}; lower thin, burn_in "
            "or n_samples"
        )
    x0 = check_array(x0, "x0", ndim=(1, 2), allow_float32=False)
    if dim is not None and x0.shape[-1] != dim:
        raise ValueError(
            f"x0 must have dimension {dim} (the target's), got shape {x0.shape}"
        )
    if x0.ndim == 2 and x0.shape[0] != n_chains:
        raise ValueError(
            f"x0 of shape {x0.shape} must be (d,) or (n_chains={n_chains}, d)"
        )
    x0 = np.ascontiguousarray(np.broadcast_to(x0, (n_chains, x0.shape[-1])), float)
    return x0, n_samples, burn_in, thin, n_chains


def _run_chains(run_one, n_chains: int, n_jobs) -> list:
    """Run ``run_one(c, cancel)`` for every chain, on ``n_jobs`` threads (the kernels
    release the GIL; :func:`fastml._parallel.run_blocks`, which sets ``cancel`` on
    Ctrl-C so every running chain stops within milliseconds). Results do not depend on
    n_jobs: each chain owns its stream.
    """
    return run_blocks(run_one, n_chains, n_jobs)


def _check_cancel(cancel) -> None:
    """Stop a Python-driven chain on a worker thread when the caller was interrupted."""
    if cancel[0]:
        raise KeyboardInterrupt("cancelled: another thread was interrupted")


def _log_prob_fn(target, name: str = "target"):
    if hasattr(target, "log_prob") and callable(target.log_prob):
        return target.log_prob
    if callable(target):
        return target
    raise TypeError(
        f"{name} must be a MultivariateNormal, an object with a log_prob(x) method or "
        f"a callable log_prob(x), got {type(target).__name__}"
    )


def _eval_log_prob(log_prob, x: np.ndarray, where: str) -> float:
    value = log_prob(x.copy())
    arr = np.asarray(value)
    if arr.shape not in ((), (1,)):
        raise ValueError(
            f"log_prob must return a scalar, got an array of shape {arr.shape} {where}"
        )
    try:
        val = float(arr.reshape(()))
    except (TypeError, ValueError):
        raise TypeError(
            f"log_prob must return a real number, got {type(value).__name__} {where}"
        ) from None
    if np.isnan(val) or val == np.inf:
        raise ValueError(f"log_prob returned {val} {where} (x = {x!r})")
    return val


def _eval_grad(grad, x: np.ndarray, d: int, where: str) -> np.ndarray:
    g = np.asarray(grad(x.copy()), dtype=float)
    if g.shape != (d,):
        raise ValueError(
            f"grad_log_prob must return shape ({d},), got {g.shape} {where}"
        )
    if np.isnan(g).any():
        raise ValueError(f"grad_log_prob returned NaN {where} (x = {x!r})")
    return g


def _check_start(log_prob, x0: np.ndarray) -> None:
    for c in range(x0.shape[0]):
        lp = _eval_log_prob(log_prob, x0[c], f"at x0[{c}]")
        if lp == -np.inf:
            raise ValueError(
                f"x0[{c}] has zero target density (log_prob = -inf); start inside "
                f"the support"
            )


_BLOCK = 4096  # iterations of random numbers drawn per draw_block call (generic path)


def metropolis_hastings(
    target: MultivariateNormal | LogDensity | Callable[[FloatArray], SupportsFloat],
    x0: ArrayLike,
    n_samples: int,
    *,
    proposal_cov: ArrayLike | None = None,
    step_size: float | None = None,
    burn_in: int = 0,
    thin: int = 1,
    n_chains: int = 1,
    n_jobs: int | None = 1,
    random_state: RandomStateLike = None,
) -> MCMCResult:
    """Random-walk Metropolis-Hastings with a Gaussian proposal of full covariance.

    Parameters
    ----------
    target : MultivariateNormal, object with ``log_prob(x)``, or callable
        The (unnormalised) log density. A :class:`MultivariateNormal` runs the whole
        chain in compiled code; anything else is called once per step (generic path).
    x0 : array_like, shape (d,) or (n_chains, d)
        Starting point(s), finite, inside the support.
    n_samples : int
        Samples kept per chain (after burn-in and thinning), >= 1.
    proposal_cov : array_like (d, d), optional
        Proposal covariance shape ``C`` (default identity); symmetric positive
        definite.
    step_size : float, optional
        Proposal ``y = x + step_size * L z`` with ``L L^T = C``: proposal covariance
        ``step_size^2 C``. Default ``2.38 / sqrt(d)`` (Roberts, Gelman & Gilks 1997).
    burn_in : int, default 0
        Iterations discarded first.
    thin : int, default 1
        Keep every ``thin``-th iteration.
    n_chains : int, default 1
        Chains with independent streams from ``Generator.spawn``.
    n_jobs : int or None, default 1
        Threads for the chains (compiled path releases the GIL); results do not depend
        on it.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    MCMCResult

    Raises
    ------
    ValueError
        Bad shapes, ``step_size <= 0``, a non-PD ``proposal_cov``, a ``log_prob``
        returning NaN, +inf or a non-scalar, a start with zero density.

    Notes
    -----
    Per iteration: d ziggurat normals ``z``, then one Exp(1) ziggurat draw ``E``;
    accept ``y`` when ``E > log p(x) - log p(y)``, which is ``log U < log p(y) -
    log p(x)`` for the uniform ``U = exp(-E)``: the Metropolis criterion of PRML
    eq. 11.33 (symmetric proposal, no proposal correction). The generic path draws
    the same numbers in the same order, so both paths give the same chain up to
    rounding in ``log p``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.sampling import MultivariateNormal, metropolis_hastings
    >>> t = MultivariateNormal([1.0, -1.0], [[1.0, 0.8], [0.8, 1.0]])
    >>> r = metropolis_hastings(t, [0.0, 0.0], 20_000, burn_in=1000, random_state=0)
    >>> r.samples.shape, bool(np.abs(r.flat().mean(axis=0) - [1, -1]).max() < 0.1)
    ((1, 20000, 2), True)
    """
    compiled = isinstance(target, MultivariateNormal)
    log_prob = None if compiled else _log_prob_fn(target)
    x0, n_samples, burn_in, thin, n_chains = _chain_setup(
        x0, n_samples, burn_in, thin, n_chains, target.dim if compiled else None
    )
    d = x0.shape[1]
    if step_size is None:
        step_size = 2.38 / np.sqrt(d)
    step_size = check_real(step_size, "step_size", low=0.0, low_open=True)
    if proposal_cov is None:
        chol = np.eye(d)
    else:
        pc = _check_cov(proposal_cov, d, "proposal_cov")
        try:
            chol = np.linalg.cholesky(pc)
        except np.linalg.LinAlgError:
            raise ValueError(
                "proposal_cov must be positive definite (Cholesky failed)"
            ) from None
    prop = np.asfortranarray(step_size * np.tril(chol))  # kernels: column-major
    prop_white = np.asfortranarray(np.tril(target.whiten @ prop)) if compiled else None
    if not compiled:
        _check_start(log_prob, x0)
    rngs = spawn_generators(random_state, n_chains)
    samples = np.empty((n_chains, n_samples, d))
    total = burn_in + n_samples * thin

    def run_one(c, cancel):
        x = x0[c].copy()
        bg = rngs[c].bit_generator
        if compiled:
            return _mcmc.mh_gaussian(
                bg, x, prop, prop_white, target.mean, target._whiten_f, burn_in, thin,
                samples[c], cancel,
            )  # fmt: skip
        return _mh_generic(
            bg, log_prob, x, prop, burn_in, thin, total, samples[c], cancel
        )

    acc = _run_chains(run_one, n_chains, n_jobs)
    return MCMCResult(samples, np.asarray(acc, float) / (n_samples * thin), "mh")


def _mh_generic(bg, log_prob, x, prop, burn_in, thin, total, out, cancel) -> int:
    d = x.shape[0]
    lpx = _eval_log_prob(log_prob, x, "at x0")
    acc_n = 0
    s = 0
    t = 0
    while t < total:
        _check_cancel(cancel)
        b = min(_BLOCK, total - t)
        z = np.empty((b, d))
        e = np.empty(b)
        _mcmc.draw_block(bg, z, e)
        steps = z @ prop.T
        for k in range(b):
            y = x + steps[k]
            lpy = _eval_log_prob(log_prob, y, f"at iteration {t}")
            if e[k] > lpx - lpy:
                x, lpx = y, lpy
                if t >= burn_in:
                    acc_n += 1
            if t >= burn_in and (t - burn_in) % thin == thin - 1:
                out[s] = x
                s += 1
            t += 1
    return acc_n


def _check_mass(mass, d: int) -> np.ndarray:
    if mass is None:
        return np.ones(d)
    m = np.asarray(mass)
    if m.ndim == 0:
        return np.full(d, check_real(float(m), "mass", low=0.0, low_open=True))
    m = check_array(mass, "mass", ndim=1, allow_float32=False)
    if m.shape != (d,):
        raise ValueError(f"mass must be a scalar or have shape ({d},), got {m.shape}")
    if (m <= 0).any():
        raise ValueError(f"mass must be > 0, got {m[m <= 0][0]}")
    return m


def hmc(
    target: MultivariateNormal
    | GradLogDensity
    | LogDensity
    | Callable[[FloatArray], SupportsFloat],
    x0: ArrayLike,
    n_samples: int,
    *,
    step_size: float,
    n_leapfrog: int,
    mass: ArrayLike | None = None,
    grad_log_prob: Callable[[FloatArray], ArrayLike] | None = None,
    burn_in: int = 0,
    thin: int = 1,
    n_chains: int = 1,
    n_jobs: int | None = 1,
    random_state: RandomStateLike = None,
) -> MCMCResult:
    """Hamiltonian (hybrid) Monte Carlo: leapfrog dynamics plus a Metropolis correction.

    Parameters
    ----------
    target : MultivariateNormal or object with ``log_prob`` and ``grad_log_prob``
        A :class:`MultivariateNormal` runs the chain in compiled code. Otherwise
        ``target.log_prob(x)`` and ``target.grad_log_prob(x)`` (or a callable target and
        the ``grad_log_prob`` argument) are called from Python.
    x0 : array_like, shape (d,) or (n_chains, d)
    n_samples : int
    step_size : float
        Leapfrog step ``epsilon > 0``.
    n_leapfrog : int
        Leapfrog steps per iteration ``L >= 1``.
    mass : None, float or array_like (d,)
        Diagonal mass matrix (default identity).
    grad_log_prob : callable, optional
        Gradient for a callable ``target``.
    burn_in, thin, n_chains, n_jobs, random_state
        As in :func:`metropolis_hastings`.

    Returns
    -------
    MCMCResult

    Notes
    -----
    PRML sec. 11.5: momentum ``p ~ N(0, M)``, Hamiltonian ``H = E(x) + K(p)`` with
    ``E = -log p(x)`` (eq. 11.57) and ``K = p^T M^{-1} p / 2`` (eq. 11.56); leapfrog
    eqs. 11.64-11.66; accept with probability ``min(1, exp(H - H'))`` (eq. 11.67).
    Per iteration: d ziggurat normals, then one Exp(1) ziggurat draw ``E``; accept
    when ``E > H' - H``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.sampling import MultivariateNormal, hmc
    >>> t = MultivariateNormal([0.0, 0.0], [[1.0, 0.9], [0.9, 1.0]])
    >>> r = hmc(t, [0.0, 0.0], 5000, step_size=0.2, n_leapfrog=10, random_state=0)
    >>> bool(r.acceptance_rate[0] > 0.8)
    True
    """
    compiled = isinstance(target, MultivariateNormal)
    if not compiled:
        log_prob = _log_prob_fn(target)
        grad = grad_log_prob
        if grad is None:
            grad = getattr(target, "grad_log_prob", None)
        if not callable(grad):
            raise TypeError(
                "hmc needs a gradient: pass a target with a grad_log_prob(x) method or "
                "grad_log_prob=callable"
            )
    x0, n_samples, burn_in, thin, n_chains = _chain_setup(
        x0, n_samples, burn_in, thin, n_chains, target.dim if compiled else None
    )
    d = x0.shape[1]
    step_size = check_real(step_size, "step_size", low=0.0, low_open=True)
    n_leapfrog = check_int(n_leapfrog, "n_leapfrog", low=1)
    m = _check_mass(mass, d)
    if not compiled:
        _check_start(log_prob, x0)
    rngs = spawn_generators(random_state, n_chains)
    samples = np.empty((n_chains, n_samples, d))
    total = burn_in + n_samples * thin

    def run_one(c, cancel):
        x = x0[c].copy()
        bg = rngs[c].bit_generator
        if compiled:
            return _mcmc.hmc_gaussian(
                bg,
                x,
                target.mean,
                target.precision,
                m,
                step_size,
                n_leapfrog,
                burn_in,
                thin,
                samples[c],
                cancel,
            )
        return _hmc_generic(
            bg, log_prob, grad, x, m, step_size, n_leapfrog, burn_in, thin, total,
            samples[c], cancel,
        )  # fmt: skip

    acc = _run_chains(run_one, n_chains, n_jobs)
    return MCMCResult(samples, np.asarray(acc, float) / (n_samples * thin), "hmc")


def _hmc_generic(
    bg, log_prob, grad, x, m, eps, n_leapfrog, burn_in, thin, total, out, cancel
) -> int:
    d = x.shape[0]
    sm = np.sqrt(m)
    lpx = _eval_log_prob(log_prob, x, "at x0")
    g = _eval_grad(grad, x, d, "at x0")
    acc_n = 0
    s = 0
    t = 0
    while t < total:
        _check_cancel(cancel)
        b = min(_BLOCK, total - t)
        z = np.empty((b, d))
        e = np.empty(b)
        _mcmc.draw_block(bg, z, e)
        for k in range(b):
            p = sm * z[k]
            h0 = -lpx + 0.5 * np.sum(p * p / m)
            xn = x.copy()
            pn = p + 0.5 * eps * g
            diverged = False
            with np.errstate(over="ignore", invalid="ignore"):
                for step in range(n_leapfrog):
                    xn = xn + eps * pn / m
                    if not np.isfinite(xn).all():
                        diverged = True  # overflowed trajectory: rejected
                        break
                    gn = _eval_grad(grad, xn, d, f"at iteration {t}")
                    if step < n_leapfrog - 1:
                        pn = pn + eps * gn
            if diverged:
                h1 = np.inf
            else:
                pn = pn + 0.5 * eps * gn
                lpn = _eval_log_prob(log_prob, xn, f"at iteration {t}")
                with np.errstate(over="ignore", invalid="ignore"):
                    h1 = -lpn + 0.5 * np.sum(pn * pn / m)
                if not np.isfinite(h1):
                    h1 = np.inf
            if e[k] > h1 - h0:
                x, g, lpx = xn, gn, lpn
                if t >= burn_in:
                    acc_n += 1
            if t >= burn_in and (t - burn_in) % thin == thin - 1:
                out[s] = x
                s += 1
            t += 1
    return acc_n


def gibbs_sampler(
    target: MultivariateNormal
    | Sequence[Callable[[FloatArray, np.random.Generator], SupportsFloat]],
    x0: ArrayLike,
    n_samples: int,
    *,
    burn_in: int = 0,
    thin: int = 1,
    n_chains: int = 1,
    n_jobs: int | None = 1,
    random_state: RandomStateLike = None,
) -> MCMCResult:
    """Systematic-scan Gibbs sampling (PRML sec. 11.3).

    Parameters
    ----------
    target : MultivariateNormal or list of callables
        A :class:`MultivariateNormal`: each coordinate is redrawn from its exact
        Gaussian full conditional, all in compiled code. Or a list of ``d`` full
        conditional samplers ``sample_i(x, rng) -> float`` (``x`` the current state,
        ``rng`` the chain's Generator), applied in order each sweep.
    x0 : array_like, shape (d,) or (n_chains, d)
    n_samples : int
        Sweeps kept per chain.
    burn_in, thin, n_chains, n_jobs, random_state
        As in :func:`metropolis_hastings` (counted in sweeps).

    Returns
    -------
    MCMCResult
        ``acceptance_rate`` is 1 (Gibbs proposals are always accepted, PRML eq. 11.49).

    Notes
    -----
    For N(mu, Lambda^{-1}) the conditional of ``x_i`` is Gaussian with mean
    ``mu_i - Lambda_ii^{-1} sum_{j != i} Lambda_ij (x_j - mu_j)`` and variance
    ``Lambda_ii^{-1}`` (PRML eqs. 2.75, 2.81-2.82 for one coordinate).

    Examples
    --------
    >>> from fastml.sampling import MultivariateNormal, gibbs_sampler
    >>> t = MultivariateNormal([0.0, 0.0], [[1.0, 0.5], [0.5, 1.0]])
    >>> gibbs_sampler(t, [0.0, 0.0], 1000, random_state=0).samples.shape
    (1, 1000, 2)
    """
    compiled = isinstance(target, MultivariateNormal)
    if not compiled:
        if isinstance(target, (list, tuple)) and all(callable(f) for f in target):
            conds = list(target)
        else:
            raise TypeError(
                "target must be a MultivariateNormal or a list of full-conditional "
                f"samplers sample_i(x, rng) -> float, got {type(target).__name__}"
            )
    x0, n_samples, burn_in, thin, n_chains = _chain_setup(
        x0, n_samples, burn_in, thin, n_chains, target.dim if compiled else len(conds)
    )
    d = x0.shape[1]
    rngs = spawn_generators(random_state, n_chains)
    samples = np.empty((n_chains, n_samples, d))
    total = burn_in + n_samples * thin

    def run_one(c, cancel):
        x = x0[c].copy()
        if compiled:
            _mcmc.gibbs_gaussian(
                rngs[c].bit_generator,
                x,
                target.mean,
                target.precision,
                burn_in,
                thin,
                samples[c],
                cancel,
            )
            return 0
        s = 0
        for t in range(total):
            _check_cancel(cancel)
            for i, f in enumerate(conds):
                v = np.asarray(f(x.copy(), rngs[c]), dtype=float)
                if v.shape not in ((), (1,)) or not np.isfinite(v).all():
                    raise ValueError(
                        f"full conditional {i} must return a finite scalar, got {v!r} "
                        f"at sweep {t}"
                    )
                x[i] = float(v.reshape(()))
            if t >= burn_in and (t - burn_in) % thin == thin - 1:
                samples[c, s] = x
                s += 1
        return 0

    _run_chains(run_one, n_chains, n_jobs)
    return MCMCResult(samples, np.ones(n_chains), "gibbs")
