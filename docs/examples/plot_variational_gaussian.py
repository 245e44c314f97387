"""
Mean-field VI for a Gaussian's mean and precision
=================================================

PRML sec. 10.1.3: ten points from :math:`\\mathcal N(\\mu, \\tau^{-1})` with a
Normal-gamma prior. The exact posterior is Normal-gamma (contours, grey);
:class:`~fastml.variational.UnivariateGaussianVI` fits the factorised
:math:`q(\\mu)q(\\tau)` (contours, blue) by the updates of PRML eqs. 10.26-10.30, and its
evidence lower bound rises at every iteration.
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from fastml.variational import UnivariateGaussianVI

rng = np.random.default_rng(2)
x = rng.normal(0.5, 1.0, 10)
mu0, lam0, a0, b0 = 0.0, 1.0, 1.0, 1.0
vi = UnivariateGaussianVI(mu0=mu0, lambda0=lam0, a0=a0, b0=b0, init_tau=5.0).fit(x)
print(
    f"q(mu) = N({vi.mu_N_:.4f}, 1/{vi.lambda_N_:.4f}),  q(tau) = Gam({vi.a_N_:.2f}, "
    f"{vi.b_N_:.4f}),  {len(vi.elbo_)} iterations"
)

# the exact Normal-gamma posterior (conjugacy)
n, xbar = x.size, x.mean()
lamN, muN = lam0 + n, (lam0 * mu0 + n * xbar) / (lam0 + n)
aN = a0 + n / 2
bN = (
    b0 + 0.5 * ((x - xbar) ** 2).sum() + lam0 * n * (xbar - mu0) ** 2 / (2 * (lam0 + n))
)

mu = np.linspace(-0.8, 1.8, 300)
tau = np.linspace(0.05, 2.5, 300)
M, T = np.meshgrid(mu, tau)
exact = stats.gamma.pdf(T, aN, scale=1 / bN) * stats.norm.pdf(
    M, muN, 1 / np.sqrt(lamN * T)
)
mf = stats.norm.pdf(M, vi.mu_N_, 1 / np.sqrt(vi.lambda_N_)) * stats.gamma.pdf(
    T, vi.a_N_, scale=1 / vi.b_N_
)

fig, axes = plt.subplots(1, 2, figsize=(10, 4))
axes[0].contour(M, T, exact, levels=5, colors="0.5")
axes[0].contour(M, T, mf, levels=5, colors="C0")
axes[0].set_xlabel("mu")
axes[0].set_ylabel("tau")
axes[0].set_title("exact posterior (grey) vs q(mu) q(tau) (blue)")
axes[1].plot(np.arange(1, len(vi.elbo_) + 1), vi.elbo_, "o-")
axes[1].set_xlabel("iteration")
axes[1].set_ylabel("ELBO")
axes[1].set_title("the bound never decreases")
fig.tight_layout()
