"""``fastml demo lds``: track a noisy 2-D constant-velocity object (PRML sec. 13.3)."""

from __future__ import annotations

import time
from typing import TextIO

import numpy as np

from fastml._demo import fmt, save_figure, timed
from fastml.lds import KalmanFilter


def _cv_model(dt: float, q: float, r: float) -> dict:
    A = np.eye(4)
    A[0, 2] = A[1, 3] = dt
    C = np.zeros((2, 4))
    C[0, 0] = C[1, 1] = 1.0
    g = q * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
    Q = np.zeros((4, 4))
    Q[np.ix_([0, 2], [0, 2])] = g
    Q[np.ix_([1, 3], [1, 3])] = g
    return dict(
        transition_matrices=A,
        observation_matrices=C,
        transition_covariance=Q,
        observation_covariance=r * np.eye(2),
        initial_state_mean=np.zeros(4),
        initial_state_covariance=np.eye(4),
    )


def demo(out: TextIO, plot_dir=None) -> None:
    dt, q, r, T = 0.1, 0.5, 0.25, 5_000
    true = _cv_model(dt, q, r)
    states, obs = KalmanFilter(**true).sample(T, random_state=0)
    obs[np.random.default_rng(1).random(T) < 0.05] = np.nan  # 5 % dropped frames
    kf = KalmanFilter(**true)
    (fm, _), t_f = timed(kf.filter, obs)
    (sm, sc), t_s = timed(kf.smooth, obs)

    def rmse(est):
        return float(np.sqrt(np.nanmean(((est - states[:, :2]) ** 2).sum(1))))

    print(
        f"   {T} steps, position noise sd {np.sqrt(r):.2f}, 5 % missing frames",
        file=out,
    )
    print(f"   position RMSE  raw observations {rmse(obs):.3f}", file=out)
    print(
        f"                  Kalman filter    {rmse(fm[:, :2]):.3f}  ({t_f * 1e3:.1f} ms)",
        file=out,
    )
    print(
        f"                  RTS smoother     {rmse(sm[:, :2]):.3f}  "
        f"({t_s * 1e3:.1f} ms, filter included)",
        file=out,
    )
    start = _cv_model(dt, 5 * q, 4 * r)  # wrong noise levels to start EM from
    em = KalmanFilter(**start)
    t0 = time.perf_counter()
    em.em(obs, n_iter=100, em_vars=["transition_covariance", "observation_covariance"])
    t_em = time.perf_counter() - t0
    ll = em.loglikelihoods_
    print(
        f"   EM, 100 iterations in {t_em:.2f} s: log-likelihood {ll[0]:.1f} -> {ll[-1]:.1f}",
        file=out,
    )
    Rl, Ql = em.observation_covariance, em.transition_covariance
    print(
        f"     observation noise var  learned {fmt(np.diag(Rl))}  true {fmt(r)}",
        file=out,
    )
    print(
        f"     velocity noise var     learned {fmt(np.diag(Ql)[2:])}  "
        f"true {fmt(q * dt)}",
        file=out,
    )
    print(
        f"     position noise var     learned {fmt(np.diag(Ql)[:2])}  "
        f"true {fmt(q * dt**3 / 3)}",
        file=out,
    )
    if plot_dir is not None:
        import matplotlib.pyplot as plt

        show = slice(0, 400)
        t = np.arange(T)[show]
        fig, ax = plt.subplots(figsize=(9, 3.6))
        ax.scatter(t, obs[show, 0], s=4, color="0.6", label="observed x")
        sd = np.sqrt(sc[show, 0, 0])
        ax.plot(t, sm[show, 0], color="C0", label="RTS smoother")
        ax.fill_between(
            t,
            sm[show, 0] - 1.96 * sd,
            sm[show, 0] + 1.96 * sd,
            color="C0",
            alpha=0.25,
            label="95% band",
        )
        ax.plot(t, states[show, 0], "k--", lw=1, label="true x")
        ax.set_xlabel("step")
        ax.legend(fontsize=8, ncol=4)
        ax.set_title("Smoothed position (x) with 5% of the frames missing")
        fig.tight_layout()
        save_figure(fig, plot_dir, "lds_smoothing", out)
