"""fastml.lds.KalmanFilter.smooth vs pykalman and statsmodels' KalmanSmoother, one thread;
batched smoothing (many series, shared parameters) vs simdkalman and, optionally,
dynamax.

Model: 2-d constant-velocity tracking (4-d state: position and velocity; 2-d position
observations). One long series: T = 10,000 steps. Batched: 1,000 series x 500 steps,
smoothed means and covariances (simdkalman's ``smooth`` with ``observations=False``;
dynamax's ``lgssm_smoother`` vmapped and jitted, timed after the warm-up, when
installed); floors: fastml one thread >= 5x simdkalman, fastml n_jobs=2 >= 1.8x
n_jobs=1. Groups: one thread, all cores (fastml n_jobs=2, peers at their default
threading), fastml n_jobs=1 vs 2, and one thread with 5 % of the rows missing at
random (no two series miss the same entries). Each call runs the filter and the RTS smoother.
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


# ------------------------------------------------------------------ batched series
N_SERIES, T_BATCH = 1_000, 500


@pytest.fixture(scope="module")
def batch():
    params = cv_model()
    kf = KalmanFilter(**params)
    X = np.stack([kf.sample(T_BATCH, random_state=s)[1] for s in range(N_SERIES)])
    return params, X


def _fastml_batch(params, X, n_jobs):
    kf = KalmanFilter(**params, n_jobs=n_jobs)
    return lambda: kf.smooth(X)


def _simdkalman_batch(params, X):
    simdkalman = pytest.importorskip("simdkalman")
    kf = simdkalman.KalmanFilter(
        state_transition=params["transition_matrices"],
        process_noise=params["transition_covariance"],
        observation_model=params["observation_matrices"],
        observation_noise=params["observation_covariance"],
    )

    def run():
        r = kf.smooth(
            X,
            initial_value=params["initial_state_mean"],
            initial_covariance=params["initial_state_covariance"],
            observations=False,
        )
        return r.states.mean, r.states.cov

    return run


def _dynamax_batch(params, X):
    pytest.importorskip("dynamax")
    import jax
    import jax.numpy as jnp
    from dynamax.linear_gaussian_ssm import lgssm_smoother
    from dynamax.linear_gaussian_ssm.inference import (
        ParamsLGSSM,
        ParamsLGSSMDynamics,
        ParamsLGSSMEmissions,
        ParamsLGSSMInitial,
    )

    jax.config.update("jax_enable_x64", True)
    f = lambda a: jnp.asarray(a, dtype=jnp.float64)  # noqa: E731
    prm = ParamsLGSSM(
        initial=ParamsLGSSMInitial(
            mean=f(params["initial_state_mean"]),
            cov=f(params["initial_state_covariance"]),
        ),
        dynamics=ParamsLGSSMDynamics(
            weights=f(params["transition_matrices"]),
            bias=f(np.zeros(4)),
            input_weights=f(np.zeros((4, 0))),
            cov=f(params["transition_covariance"]),
        ),
        emissions=ParamsLGSSMEmissions(
            weights=f(params["observation_matrices"]),
            bias=f(np.zeros(2)),
            input_weights=f(np.zeros((2, 0))),
            cov=f(params["observation_covariance"]),
        ),
    )
    smooth = jax.jit(jax.vmap(lambda y: lgssm_smoother(prm, y)))
    Xj = f(X)

    def run():
        post = smooth(Xj)
        post.smoothed_means.block_until_ready()
        return np.asarray(post.smoothed_means), np.asarray(post.smoothed_covariances)

    run()  # jit warm-up, outside the timing
    return run


BATCH_IMPLS = {
    "fastml": lambda p, X: _fastml_batch(p, X, 1),
    "simdkalman": _simdkalman_batch,
    "dynamax": _dynamax_batch,
}


def _check_batch(out, params, X):
    sm, sc = out
    assert sm.shape == (N_SERIES, T_BATCH, 4) and sc.shape == (N_SERIES, T_BATCH, 4, 4)
    kf = KalmanFilter(**params)
    for s in (0, N_SERIES - 1):  # correctness guard: the per-series smoother
        ref = kf.smooth(X[s])  # (dynamax's smoother agrees to ~3e-8 only)
        np.testing.assert_allclose(sm[s], ref[0], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(sc[s], ref[1], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("impl", list(BATCH_IMPLS))
def bench_batched_smooth_cv(benchmark, impl, batch):
    params, X = batch
    benchmark.group = "lds-batched-smooth-cv4d-1000x500"
    benchmark.extra_info.update(
        n_series=N_SERIES, T=T_BATCH, n_dim_state=4, n_dim_obs=2, dtype="float64"
    )
    fn = BATCH_IMPLS[impl](params, X)
    out = benchmark(fn)
    _check_batch(out, params, X)


@pytest.mark.parametrize("impl", ["fastml", "simdkalman"])
def bench_batched_smooth_cv_missing(benchmark, impl, batch):
    """5 % of the rows missing at random: every series misses different entries, so
    fastml cannot reuse one series' covariances for the next (its worst case)."""
    params, X = batch
    X = X.copy()
    X[np.random.default_rng(0).random(X.shape[:2]) < 0.05] = np.nan
    benchmark.group = "lds-batched-smooth-cv4d-1000x500-missing5pct"
    benchmark.extra_info.update(n_series=N_SERIES, T=T_BATCH, missing_rows=0.05)
    out = benchmark(BATCH_IMPLS[impl](params, X))
    _check_batch(out, params, X)


@pytest.mark.parametrize("impl", list(BATCH_IMPLS))
def bench_batched_smooth_cv_all_cores(benchmark, impl, batch, all_cores):
    params, X = batch
    benchmark.group = "lds-batched-smooth-cv4d-1000x500-all-cores"
    benchmark.extra_info.update(n_series=N_SERIES, T=T_BATCH, n_jobs=2)
    fn = (
        _fastml_batch(params, X, 2)
        if impl == "fastml"
        else BATCH_IMPLS[impl](params, X)
    )
    out = benchmark(fn)
    _check_batch(out, params, X)


@pytest.mark.parametrize("n_jobs", [1, 2])
def bench_batched_smooth_cv_threads(benchmark, n_jobs, batch, all_cores):
    params, X = batch
    benchmark.group = "lds-batched-smooth-cv4d-1000x500-threads"
    benchmark.extra_info.update(n_series=N_SERIES, T=T_BATCH, n_jobs=n_jobs)
    out = benchmark(_fastml_batch(params, X, n_jobs))
    _check_batch(out, params, X)
