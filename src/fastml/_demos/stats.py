"""``fastml demo stats``: one-pass variance on offset data, and the ML variance bias."""

from __future__ import annotations

from typing import TextIO

import numpy as np

from fastml._demo import timed
from fastml.stats import variance, variance_bias


def demo(out: TextIO) -> None:
    rng = np.random.default_rng(0)
    n = 10_000_000
    x = 1e9 + rng.standard_normal(n)
    exact = float(
        np.var(x - 1e9)
    )  # x - 1e9 is exact here (Sterbenz), so this is a sound reference
    fast, t_fast = timed(variance, x)
    ref, t_np = timed(np.var, x)
    naive = float(np.mean(x * x) - np.mean(x) ** 2)
    print(f"   variance of 1e7 values N(1e9, 1) (reference {exact:.15f}):", file=out)
    print(
        f"     fastml.stats.variance  {fast:.15f}  rel.err {abs(fast - exact) / exact:.1e}"
        f"  {t_fast * 1e3:7.1f} ms",
        file=out,
    )
    print(
        f"     numpy.var              {ref:.15f}  rel.err {abs(ref - exact) / exact:.1e}"
        f"  {t_np * 1e3:7.1f} ms",
        file=out,
    )
    print(
        f"     naive E[x^2] - E[x]^2  {naive:.15g}  (catastrophic cancellation)",
        file=out,
    )
    print(f"     fastml / numpy speed: {t_np / t_fast:.2f}x", file=out)
    print(
        "   E[s^2_ML] = (N-1)/N sigma^2 (PRML eq. 1.58), sigma^2 = 1, 200000 trials:",
        file=out,
    )
    print("       N   simulated     exact   +-stderr   unbiased N/(N-1) s^2", file=out)
    for size in (2, 3, 5, 10, 50):
        r = variance_bias(size, 1.0, n_trials=200_000, random_state=size)
        print(
            f"     {size:3d}   {r.estimate:9.5f} {r.exact:9.5f}   {r.stderr:8.5f}"
            f"   {r.unbiased_estimate:9.5f}",
            file=out,
        )
