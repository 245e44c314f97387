"""``fastml demo sampling``: normal samplers vs numpy, and MH / HMC on a 10-d Gaussian."""

from __future__ import annotations

import time
from typing import TextIO

import numpy as np

from fastml._demo import timed
from fastml.sampling import (
    MultivariateNormal,
    hmc,
    metropolis_hastings,
    standard_normal,
)


def _pcg(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def demo(out: TextIO) -> None:
    n = 10_000_000
    print(f"   {n:.0e} standard normals, PCG64, one thread (best of 2):", file=out)
    rs = np.random.RandomState(np.random.PCG64(0))
    _, t_leg = timed(rs.standard_normal, n, repeat=3)
    rows = []
    for dtype in (np.float64, np.float32):
        name = np.dtype(dtype).name
        buf = np.empty(n, dtype=dtype)
        g = _pcg(0)
        _, t_np = timed(g.standard_normal, out=buf, dtype=dtype, repeat=2)
        rows.append((name, "numpy Generator", t_np, "", float("nan")))
        _, t = timed(standard_normal, out=buf, dtype=dtype, random_state=g, repeat=2)
        rows.append((name, "ziggurat", t, "numpy Generator", t_np / t))
        for method in ("box-muller", "polar"):
            # the peer, numpy's legacy polar (float64 only), has no out=: both allocate
            _, t = timed(
                standard_normal, n, method=method, dtype=dtype, random_state=g,
                repeat=2,
            )  # fmt: skip
            rows.append((name, method, t, "numpy RandomState", t_leg / t))
    rows.append(("float64", "numpy RandomState", t_leg, "", float("nan")))
    print("     dtype    method               Mdraws/s   speed-up vs", file=out)
    for dt, method, t, peer, ratio in rows:
        rel = "" if np.isnan(ratio) else f"{ratio:5.2f}x {peer}"
        print(f"     {dt:8s} {method:20s} {n / t / 1e6:8.1f}   {rel}", file=out)

    d = 10
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    cov = q @ np.diag(np.logspace(-1, 1, d)) @ q.T
    cov = 0.5 * (cov + cov.T)
    target = MultivariateNormal(np.linspace(-1, 1, d), cov)
    print(
        f"   MCMC on a {d}-d Gaussian, condition number {np.linalg.cond(cov):.0f}, "
        "4 chains (compiled MultivariateNormal target):",
        file=out,
    )
    print(
        "     sampler              iters/chain  accept  min ESS   ESS/s     "
        "max|cov err|  max R-hat",
        file=out,
    )
    runs = [
        (
            "MH (prop. cov = cov)",
            400_000,
            lambda n_s: metropolis_hastings(
                target, np.zeros(d), n_s, proposal_cov=cov, burn_in=1000, n_chains=4,
                random_state=1,
            ),
        ),
        (
            "HMC (eps=0.15, L=10)",
            25_000,
            lambda n_s: hmc(
                target, np.zeros(d), n_s, step_size=0.15, n_leapfrog=10, burn_in=200,
                n_chains=4, random_state=2,
            ),
        ),
    ]  # fmt: skip
    for name, n_s, run in runs:
        t0 = time.perf_counter()
        r = run(n_s)
        dt = time.perf_counter() - t0
        ess = r.effective_sample_size()
        err = np.abs(np.cov(r.flat().T) - cov).max()
        print(
            f"     {name:20s} {n_s:11d}  {r.acceptance_rate.mean():6.3f} {ess.min():8.0f}"
            f" {ess.min() / dt:9.0f}   {err:11.4f}  {r.rhat().max():9.4f}",
            file=out,
        )
