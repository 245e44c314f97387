"""
Expectation propagation on the clutter problem
==============================================

Minka's clutter problem in one dimension (PRML sec. 10.7.1): 40 points from
:math:`\\mathcal N(\\theta, 1)` mixed half and half with clutter from
:math:`\\mathcal N(0, 10)`, prior :math:`\\theta \\sim \\mathcal N(0, 100)`. The exact posterior
(a mixture of :math:`2^{40}` Gaussians) is integrated numerically on a grid; EP and one
pass of assumed density filtering (ADF) each give a Gaussian.
"""

import matplotlib.pyplot as plt
import numpy as np

from fastml.ep import ClutterProblem

prob = ClutterProblem(w=0.5, prior_var=100.0, clutter_var=10.0)
x = prob.sample(2.0, 40, random_state=4)
ep = prob.fit_ep(x)
adf = prob.fit_adf(x)

grid = np.linspace(-2, 6, 4001)
log_post = prob.log_likelihood(grid[:, None], x).sum(1) - grid**2 / (2 * 100.0)
post = np.exp(log_post - log_post.max())
post /= np.trapezoid(post, grid)
mean = np.trapezoid(grid * post, grid)
var = np.trapezoid((grid - mean) ** 2 * post, grid)
print(f"exact  mean {mean:.4f}  variance {var:.4f}")
for name, r in (("EP", ep), ("ADF", adf)):
    print(
        f"{name:6s} mean {float(np.ravel(r.mean)[0]):.4f}  variance {float(r.variance):.4f}"
    )


def gauss(m, v):
    return np.exp(-((grid - m) ** 2) / (2 * v)) / np.sqrt(2 * np.pi * v)


fig, ax = plt.subplots(figsize=(8, 4))
ax.fill_between(grid, post, color="0.85", label="exact posterior (numerical)")
ax.plot(
    grid, gauss(float(np.ravel(ep.mean)[0]), float(ep.variance)), "C0", lw=2, label="EP"
)
ax.plot(
    grid,
    gauss(float(np.ravel(adf.mean)[0]), float(adf.variance)),
    "C1--",
    lw=2,
    label="ADF (one pass)",
)
ax.plot(x[:, 0], np.full(x.shape[0], -0.02), "|k", ms=8, label="data (those in range)")
ax.set_xlim(grid[0], grid[-1])
ax.set_xlabel("theta")
ax.legend(fontsize=8)
ax.set_title("Clutter problem: EP vs ADF vs the exact posterior")
fig.tight_layout()
