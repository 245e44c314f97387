"""
Metropolis-Hastings vs Hamiltonian Monte Carlo
==============================================

Both samplers target a 10-dimensional Gaussian whose coordinates are correlated at 0.9
(the whole chain runs in compiled code). The random walk must take small steps along
the narrow direction, so successive draws stay correlated for hundreds of steps; HMC's
leapfrog trajectories (PRML sec. 11.5) move far at high acceptance. We compare the
trace of the first coordinate and its autocorrelation, which decides the effective
sample size.
"""

import matplotlib.pyplot as plt
import numpy as np

from fastml import sampling as S

d = 10
cov = 0.1 * np.eye(d) + 0.9
target = S.MultivariateNormal(np.zeros(d), cov)
n = 5_000
mh = S.metropolis_hastings(target, np.zeros(d), n, step_size=0.25, random_state=0)
hm = S.hmc(target, np.zeros(d), n, step_size=0.12, n_leapfrog=20, random_state=1)
for name, r in (("MH", mh), ("HMC", hm)):
    print(
        f"{name:4s} acceptance {r.acceptance_rate[0]:.2f}, "
        f"ESS of x1 {r.effective_sample_size()[0]:7.1f} of {n}"
    )


def acf(x, max_lag):
    x = x - x.mean()
    c = np.correlate(x, x, mode="full")[x.size - 1 :]
    return c[: max_lag + 1] / c[0]


fig, axes = plt.subplots(2, 2, figsize=(10, 5.5), gridspec_kw={"width_ratios": [2, 1]})
for row, (name, r, col) in enumerate(
    (("Metropolis-Hastings", mh, "C1"), ("HMC", hm, "C0"))
):
    x = r.samples[0, :, 0]
    axes[row, 0].plot(x[:1000], color=col, lw=0.7)
    axes[row, 0].set_ylabel("x1")
    axes[row, 0].set_title(f"{name}: trace (first 1000 draws)", fontsize=10)
    axes[row, 1].bar(np.arange(101), acf(x, 100), width=1.0, color=col)
    axes[row, 1].axhline(0, color="k", lw=0.5)
    axes[row, 1].set_ylim(-0.2, 1.0)
    axes[row, 1].set_title(
        f"autocorrelation, ESS {r.effective_sample_size()[0]:.0f}", fontsize=10
    )
axes[1, 0].set_xlabel("iteration")
axes[1, 1].set_xlabel("lag")
fig.tight_layout()
