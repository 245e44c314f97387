"""
Kalman smoothing across a missing stretch
=========================================

A random walk observed in heavy noise, with 60 observations missing in the middle
(NaN). The Kalman filter (PRML eqs. 13.89-13.92) sees only the past; the
Rauch-Tung-Striebel smoother (eqs. 13.100-13.102) uses all the data. Both give a
Gaussian posterior per step, drawn as a 95% band :math:`\\mu \\pm 1.96\\sigma`; across the
gap the filter's band grows without bound while the smoother's bulges and closes.
"""

import matplotlib.pyplot as plt
import numpy as np

from fastml.lds import KalmanFilter

rng = np.random.default_rng(3)
T, q, r = 300, 0.05, 1.0
state = np.cumsum(rng.normal(0, np.sqrt(q), T))
y = state + rng.normal(0, np.sqrt(r), T)
y[120:180] = np.nan  # the missing stretch

kf = KalmanFilter(
    transition_covariance=[[q]],
    observation_covariance=[[r]],
    initial_state_mean=[0.0],
    initial_state_covariance=[[1.0]],
)
fm, fc = kf.filter(y)
sm, sc = kf.smooth(y)
inside = np.abs(sm[:, 0] - state) < 1.96 * np.sqrt(sc[:, 0, 0])
print(f"truth inside the smoother's 95% band at {inside.mean():.0%} of the steps")

t = np.arange(T)
fig, ax = plt.subplots(figsize=(9, 4))
ax.axvspan(120, 179, color="0.92", label="observations missing")
ax.scatter(t, y, s=5, color="0.5", label="observations")
for m, c, name, col in ((fm, fc, "filter", "C1"), (sm, sc, "RTS smoother", "C0")):
    sd = np.sqrt(c[:, 0, 0])
    ax.plot(t, m[:, 0], color=col, label=f"{name} mean")
    ax.fill_between(t, m[:, 0] - 1.96 * sd, m[:, 0] + 1.96 * sd, color=col, alpha=0.2)
ax.plot(t, state, "k--", lw=1, label="true state")
ax.set_xlabel("step")
ax.legend(fontsize=8, ncol=3, loc="upper left")
ax.set_title("Filtered and smoothed state with 95% bands")
fig.tight_layout()
