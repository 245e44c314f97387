"""
The bias of the maximum-likelihood variance
===========================================

:func:`fastml.stats.variance_bias` simulates many samples of size :math:`N` from
:math:`\\mathcal N(0, \\sigma^2)` and averages their ML variance (divisor :math:`N`). PRML
eq. 1.58 says the average is :math:`\\frac{N-1}{N}\\sigma^2`, not :math:`\\sigma^2`: the ML
estimate is too small, by a factor that matters for small samples.
"""

import matplotlib.pyplot as plt
import numpy as np

from fastml.stats import variance_bias

sizes = np.array([2, 3, 4, 5, 7, 10, 15, 20, 30, 50])
res = [
    variance_bias(int(n), sigma2=1.0, n_trials=50_000, random_state=int(n))
    for n in sizes
]
est = np.array([r.estimate for r in res])
err = np.array([r.stderr for r in res])
for n, r in zip(sizes, res, strict=True):
    print(
        f"N = {n:2d}: simulated {r.estimate:.4f} +- {r.stderr:.4f}, exact {r.exact:.4f}"
    )

fig, ax = plt.subplots(figsize=(7, 3.8))
t = np.linspace(2, 50, 300)
ax.plot(t, (t - 1) / t, "k", label="(N - 1) / N   (PRML eq. 1.58)")
ax.errorbar(
    sizes, est, yerr=2 * err, fmt="o", color="C0", label="simulated mean ± 2 s.e."
)
ax.axhline(1.0, color="0.5", ls="--", lw=1, label="true variance")
ax.set_xscale("log")
ax.set_xlabel("sample size N")
ax.set_ylabel("E[ML variance] / sigma²")
ax.legend(fontsize=8)
fig.tight_layout()
