"""
The ziggurat and what it draws
==============================

The ziggurat (Marsaglia & Tsang 2000) covers the half-normal density
:math:`f(x) = e^{-x^2/2}` with :math:`N` layers of equal area :math:`v`: a base strip with
the tail beyond :math:`r`, then rectangles :math:`[0, x_i] \\times [f(x_i), f(x_{i-1})]`
with :math:`x_{i-1} = f^{-1}(v / x_i + f(x_i))` (see the :doc:`user guide
</user_guide/sampling>`). Below, the same equations with :math:`N = 8` so the layers are
visible (fastml's tables use :math:`N = 256`, solved by ``tools/gen_ziggurat_tables.py``),
and a histogram of a million :func:`fastml.sampling.standard_normal` draws against the
density, on a log scale to show the tail.
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import brentq
from scipy.special import erfc

from fastml.sampling import standard_normal


def f(x):
    return np.exp(-0.5 * x * x)


def layers(r, n):
    """x_{n-1} = r, ..., x_0 from the layer equations; returns (x, v, top-layer gap)."""
    v = r * f(r) + np.sqrt(np.pi / 2) * erfc(r / np.sqrt(2))  # base: rectangle + tail
    x = [r]
    for _ in range(n - 2):
        if x[-1] == 0.0:  # r too small: the layers ran out before the top
            x.append(0.0)
            continue
        y = v / x[-1] + f(x[-1])
        x.append(np.sqrt(-2 * np.log(y)) if y < 1 else 0.0)
    gap = x[-1] * (1 - f(x[-1])) - v  # the top layer must have area v too
    return np.array(x[::-1]), v, gap


for n in (8, 256):
    r = brentq(lambda r, n=n: layers(r, n)[2], 1.0, 5.0, xtol=1e-14)
    print(f"N = {n:3d} layers: r = {r:.6f}")
xs, v, _ = layers(r8 := brentq(lambda r: layers(r, 8)[2], 1.0, 5.0), 8)

z = standard_normal(1_000_000, random_state=0)

fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
ax = axes[0]
t = np.linspace(0, 4, 400)
ax.plot(t, f(t), "k", lw=2, label="f(x) = exp(-x²/2)")
tops = np.r_[1.0, f(xs[:-1])]  # each layer spans heights [f(x_i), f(x_{i-1})]
for i, (xi, top) in enumerate(zip(xs, tops, strict=True)):
    ax.add_patch(plt.Rectangle((0, f(xi)), xi, top - f(xi), fill=False, color=f"C{i}"))
ax.add_patch(plt.Rectangle((0, 0), r8, f(r8), color="0.8", label="base strip (+ tail)"))
ax.axvline(r8, color="0.5", ls=":", lw=1)
ax.set_xlim(0, 4)
ax.set_ylim(0, 1.05)
ax.set_title(f"8 layers of equal area v = {v:.4f}, r = {r8:.3f}")
ax.legend(fontsize=8)

ax = axes[1]
edges = np.linspace(-5.5, 5.5, 111)
ax.hist(z, bins=edges, density=True, color="C0", alpha=0.6, label="10⁶ ziggurat draws")
t = np.linspace(-5.5, 5.5, 500)
ax.plot(t, f(t) / np.sqrt(2 * np.pi), "k", lw=1.5, label="N(0, 1) density")
ax.set_yscale("log")
ax.axvline(3.6542, color="0.5", ls=":", lw=1)
ax.axvline(-3.6542, color="0.5", ls=":", lw=1, label="r of the 256-layer tables")
ax.set_title("histogram vs density (log scale)")
ax.legend(fontsize=8)
fig.tight_layout()
