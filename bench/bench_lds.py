"""fastml.lds.KalmanFilter.smooth vs pykalman and statsmodels' KalmanSmoother, one thread.

Model: 2-d constant-velocity tracking (4-d state: position and velocity; 2-d position
observations), T = 10,000 steps; each call runs the filter and the RTS smoother.
"""

import numpy as np
import pytest

from fastml.lds import KalmanFilter

T = 10_000
DT = 0.1


def cv_model():
    A = np.eye(4)
    A[0, 2] = A[1, 3] = DT
    C = np.zeros((2, 4))
    C[0, 0] = C[1, 1] = 1.0
    q = 0.5
    G = np.array([[DT**3 / 3, DT**2 / 2], [DT**2 / 2, DT]]) * q
    Q = np.zeros((4, 4))
    Q[np.ix_([0, 2], [0, 2])] = G
    Q[np.ix_([1, 3], [1, 3])] = G
    R = np.eye(2) * 0.25
    return dict(
        transition_matrices=A,
        observation_matrices=C,
        transition_covariance=Q,
        observation_covariance=R,
        initial_state_mean=np.zeros(4),
        initial_state_covariance=np.eye(4),
    )


@pytest.fixture(scope="module")
def problem():
    params = cv_model()
    _, X = KalmanFilter(**params).sample(T, random_state=0)
    return params, X


def _fastml(params, X):
    kf = KalmanFilter(**params)
    return lambda: kf.smooth(X)[0]


def _pykalman(params, X):
    pk = pytest.importorskip("pykalman")
    kf = pk.KalmanFilter(**params)
    return lambda: kf.smooth(X)[0]


def _statsmodels(params, X):
    ks_mod = pytest.importorskip("statsmodels.tsa.statespace.kalman_smoother")
    ks = ks_mod.KalmanSmoother(
        k_endog=2,
        k_states=4,
        design=params["observation_matrices"],
        obs_cov=params["observation_covariance"],
        transition=params["transition_matrices"],
        selection=np.eye(4),
        state_cov=params["transition_covariance"],
    )
    ks.bind(np.asfortranarray(X.T))
    ks.initialize_known(
        params["initial_state_mean"], params["initial_state_covariance"]
    )
    return lambda: ks.smooth().smoothed_state.T


IMPLS = {"fastml": _fastml, "pykalman": _pykalman, "statsmodels": _statsmodels}


@pytest.mark.parametrize("impl", list(IMPLS))
def bench_filter_smooth_cv(benchmark, impl, problem):
    params, X = problem
    benchmark.group = "lds-filter+smooth-cv4d-T10k"
    benchmark.extra_info.update(n_dim_state=4, n_dim_obs=2, T=T, dtype="float64")
    fn = IMPLS[impl](params, X)
    if impl == "pykalman":
        out = benchmark.pedantic(fn, rounds=3, iterations=1)
    else:
        out = benchmark(fn)
    np.testing.assert_allclose(out, _fastml(params, X)(), rtol=1e-6, atol=1e-8)
