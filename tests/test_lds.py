"""Tests for fastml.lds: pykalman and statsmodels as peer oracles, exact Gaussian
conditioning of the stacked state/observation vector and the Riccati fixed point as
independent ones, EM on the Nile data, and bad-input handling.

Tolerances: means and covariances 1e-8 relative (plus 1e-10 absolute), log-likelihood
1e-8 relative.
"""

import numpy as np
import pytest

from fastml.lds import KalmanFilter

RTOL, ATOL = 1e-8, 1e-10


def _random_model(rng, n=3, p=2):
    A = np.eye(n) * 0.9 + 0.1 * rng.normal(size=(n, n))
    C = rng.normal(size=(p, n))
    G = rng.normal(size=(n, n))
    H = rng.normal(size=(p, p))
    return dict(
        transition_matrices=A,
        observation_matrices=C,
        transition_covariance=G @ G.T * 0.1 + 0.01 * np.eye(n),
        observation_covariance=H @ H.T + 0.1 * np.eye(p),
        transition_offsets=rng.normal(size=n) * 0.1,
        observation_offsets=rng.normal(size=p),
        initial_state_mean=rng.normal(size=n),
        initial_state_covariance=np.eye(n) * 2.0,
    )


@pytest.fixture
def model_and_data():
    rng = np.random.default_rng(0)
    params = _random_model(rng)
    _, X = KalmanFilter(**params).sample(150, random_state=1)
    X[7] = np.nan  # a fully missing row
    return params, X


def test_matches_pykalman(model_and_data):
    pykalman = pytest.importorskip("pykalman")
    params, X = model_and_data
    ours, peer = KalmanFilter(**params), pykalman.KalmanFilter(**params)
    Xm = np.ma.masked_invalid(X)
    for a, b in zip(ours.filter(X), peer.filter(Xm), strict=True):  # oracle: pykalman
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
    for a, b in zip(ours.smooth(X), peer.smooth(Xm), strict=True):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
    assert ours.loglikelihood(X) == pytest.approx(peer.loglikelihood(Xm), rel=1e-8)
    assert ours.loglikelihood(Xm) == pytest.approx(ours.loglikelihood(X), rel=1e-15)
    m, P = ours.filter(X)
    for obs in (X[20], None):
        a = ours.filter_update(m[19], P[19], obs)
        b = peer.filter_update(m[19], P[19], obs)
        np.testing.assert_allclose(a[0], b[0], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(a[1], b[1], rtol=RTOL, atol=ATOL)


def _statsmodels_smoother(params, X):
    ks_mod = pytest.importorskip("statsmodels.tsa.statespace.kalman_smoother")
    n = params["transition_matrices"].shape[0]
    p = params["observation_matrices"].shape[0]
    ks = ks_mod.KalmanSmoother(
        k_endog=p,
        k_states=n,
        design=params["observation_matrices"],
        obs_intercept=params["observation_offsets"],
        obs_cov=params["observation_covariance"],
        transition=params["transition_matrices"],
        state_intercept=params["transition_offsets"],
        selection=np.eye(n),
        state_cov=params["transition_covariance"],
    )
    ks.bind(np.asfortranarray(X.T))
    ks.initialize_known(
        params["initial_state_mean"], params["initial_state_covariance"]
    )
    return ks.smooth()


def test_matches_statsmodels_with_partially_observed_rows(model_and_data):
    params, X = model_and_data
    X = X.copy()
    X[30, 0] = np.nan  # partially observed rows: statsmodels handles them too
    X[31, 1] = np.nan
    res = _statsmodels_smoother(params, X)
    kf = KalmanFilter(**params)
    m, P = kf.filter(X)
    np.testing.assert_allclose(m, res.filtered_state.T, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(
        P, res.filtered_state_cov.transpose(2, 0, 1), rtol=RTOL, atol=ATOL
    )
    sm, sc = kf.smooth(X)
    np.testing.assert_allclose(sm, res.smoothed_state.T, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(
        sc, res.smoothed_state_cov.transpose(2, 0, 1), rtol=RTOL, atol=1e-9
    )
    assert kf.loglikelihood(X) == pytest.approx(res.llf_obs.sum(), rel=1e-8)


def test_smoother_against_exact_gaussian_conditioning():
    """Stack z_0..z_{T-1}, x_0..x_{T-1} as one Gaussian and condition on x exactly."""
    rng = np.random.default_rng(3)
    n, p, T = 2, 1, 5
    prm = _random_model(rng, n, p)
    A, C = prm["transition_matrices"], prm["observation_matrices"]
    Q, R = prm["transition_covariance"], prm["observation_covariance"]
    b, d = prm["transition_offsets"], prm["observation_offsets"]
    # z = M w + offset, where w = (z_0 noise, state noises); x = C z + d + v.
    mz = np.zeros((T, n))
    mz[0] = prm["initial_state_mean"]
    for t in range(1, T):
        mz[t] = A @ mz[t - 1] + b
    L = np.zeros((T * n, T * n))  # z = mz + L e, e ~ N(0, blockdiag(V0, Q, ..., Q))
    for t in range(T):
        for s in range(t + 1):
            L[t * n : (t + 1) * n, s * n : (s + 1) * n] = np.linalg.matrix_power(
                A, t - s
            )
    cov_e = np.zeros((T * n, T * n))
    cov_e[:n, :n] = prm["initial_state_covariance"]
    for t in range(1, T):
        cov_e[t * n : (t + 1) * n, t * n : (t + 1) * n] = Q
    Szz = L @ cov_e @ L.T
    Cb = np.kron(np.eye(T), C)
    Sxz = Cb @ Szz
    Sxx = Cb @ Szz @ Cb.T + np.kron(np.eye(T), R)
    x = rng.normal(size=(T, p))
    mx = mz @ C.T + d
    gain = np.linalg.solve(Sxx, Sxz).T
    post_mean = (mz.ravel() + gain @ (x - mx).ravel()).reshape(T, n)
    post_cov = Szz - gain @ Sxz
    sm, sc, cc = KalmanFilter(**prm).smooth(x, return_cross_covariances=True)
    np.testing.assert_allclose(sm, post_mean, rtol=1e-9, atol=1e-10)  # exact oracle
    for t in range(T):
        blk = post_cov[t * n : (t + 1) * n, t * n : (t + 1) * n]
        np.testing.assert_allclose(sc[t], blk, rtol=1e-9, atol=1e-10)
        if t:
            cross = post_cov[t * n : (t + 1) * n, (t - 1) * n : t * n]
            np.testing.assert_allclose(cc[t], cross, rtol=1e-9, atol=1e-10)
    from scipy.stats import multivariate_normal

    ll = multivariate_normal(mx.ravel(), Sxx).logpdf(x.ravel())
    assert KalmanFilter(**prm).loglikelihood(x) == pytest.approx(ll, rel=1e-10)


@pytest.mark.parametrize(("q", "r"), [(1.0, 1.0), (0.01, 4.0), (10.0, 0.1)])
def test_local_level_steady_state_variance(q, r):
    kf = KalmanFilter(transition_covariance=[[q]], observation_covariance=[[r]])
    _, P = kf.filter(np.zeros(3000))  # converges geometrically
    p_pred = (q + np.sqrt(q * q + 4 * q * r)) / 2  # Riccati fixed point
    assert P[-1, 0, 0] == pytest.approx(p_pred - q, rel=1e-10)
    # ... and the filtered variance solves P = (P + q) r / (P + q + r).
    p = P[-1, 0, 0]
    assert p == pytest.approx((p + q) * r / (p + q + r), rel=1e-10)


def test_em_nile_matches_statsmodels_mle():
    sm = pytest.importorskip("statsmodels.api")
    y = sm.datasets.nile.load_pandas().data["volume"].to_numpy(float)
    mod = sm.tsa.UnobservedComponents(y, "local level")
    res = mod.fit(disp=False)
    kf = KalmanFilter(
        transition_covariance=[[1000.0]],
        observation_covariance=[[10000.0]],
        initial_state_mean=[y[0]],
        initial_state_covariance=[[1e7]],  # approximately diffuse, like statsmodels
    )
    kf.em(y, n_iter=500, em_vars=["transition_covariance", "observation_covariance"])
    assert (np.diff(kf.loglikelihoods_) >= -1e-9).all()
    sig_eps, sig_eta = kf.observation_covariance[0, 0], kf.transition_covariance[0, 0]
    # statsmodels' optimiser stops near the optimum of a flat surface: 1 %.
    assert sig_eps == pytest.approx(res.params[0], rel=1e-2)
    assert sig_eta == pytest.approx(res.params[1], rel=1e-2)
    # EM's point is at least as good under statsmodels' own (diffuse) likelihood.
    assert mod.loglike(np.array([sig_eps, sig_eta])) >= res.llf - 1e-6
    # Durbin & Koopman (2012), sec. 2.10: 15099 and 1469.1.
    assert sig_eps == pytest.approx(15099, rel=1e-3)
    assert sig_eta == pytest.approx(1469.1, rel=1e-3)


def test_em_all_vars_monotone_with_missing_rows(model_and_data):
    params, X = model_and_data
    kf = KalmanFilter(**params).em(X, n_iter=25, em_vars="all")
    ll = np.array(kf.loglikelihoods_)
    assert (np.diff(ll) >= -1e-8 * np.abs(ll[1:])).all()
    assert kf.loglikelihood(X) >= ll[-1]
    np.testing.assert_allclose(kf.transition_covariance, kf.transition_covariance.T)
    assert np.linalg.eigvalsh(kf.observation_covariance).min() > 0


def test_em_default_vars_like_pykalman(model_and_data):
    params, X = model_and_data
    kf = KalmanFilter(**params)
    before = kf.transition_matrices.copy()
    kf.em(X, n_iter=3)
    np.testing.assert_array_equal(kf.transition_matrices, before)
    assert len(kf.loglikelihoods_) == 3


def test_sample_and_filter_update_online():
    params = _random_model(np.random.default_rng(4))
    kf = KalmanFilter(**params)
    z, x = kf.sample(40, random_state=0)
    z2, x2 = kf.sample(40, random_state=0)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(z, z2)
    assert z.shape == (40, 3) and x.shape == (40, 2)
    assert not np.array_equal(x, kf.sample(40, random_state=1)[1])
    m, P = kf.filter(x)
    mt, Pt = m[0], P[0]
    for t in range(1, 40):
        mt, Pt = kf.filter_update(mt, Pt, x[t])
    np.testing.assert_allclose(mt, m[-1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Pt, P[-1], rtol=1e-12, atol=1e-12)


def test_default_parameters_and_1d_input():
    kf = KalmanFilter()
    m, P = kf.filter([1.0, 2.0, np.nan, 3.0])
    assert m.shape == (4, 1) and P.shape == (4, 1, 1)
    assert P[2, 0, 0] > P[1, 0, 0]  # no update at the missing step


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"transition_covariance": [[1.0, 2.0], [2.0, 1.0]]}, "positive semi-definite"),
        ({"observation_covariance": [[1.0, 0.5], [0.0, 1.0]]}, "must be symmetric"),
        ({"initial_state_covariance": [[-1.0]]}, "positive semi-definite"),
        (
            {"transition_matrices": np.eye(2), "initial_state_mean": np.zeros(3)},
            "inconsistent n_dim_state",
        ),
        ({"transition_matrices": np.ones((5, 2, 2, 2))}, "or, time-varying, one more"),
        ({"observation_matrices": np.eye(3)}, "inconsistent n_dim_obs"),
        ({"transition_offsets": [np.nan]}, "transition_offsets must be finite"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KalmanFilter(**kwargs).filter(np.zeros((4, 2)))


def test_bad_observations_and_singular_models():
    kf = KalmanFilter(n_dim_obs=2, n_dim_state=2)
    with pytest.raises(ValueError, match="X must not contain infinity"):
        kf.filter(np.array([[0.0, np.inf]]))
    with pytest.raises(ValueError, match="X must be 1 or 2-dimensional"):
        kf.filter(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="X must not be empty"):
        kf.filter(np.zeros((0, 2)))
    with pytest.raises(TypeError, match="X must have a real numeric dtype"):
        kf.filter(np.array([["a", "b"]]))
    zero = KalmanFilter(
        observation_covariance=[[0.0]], initial_state_covariance=[[0.0]]
    )
    with pytest.raises(ValueError, match="not positive definite at time step 0"):
        zero.filter([1.0, 2.0])
    with pytest.raises(ValueError, match="partially observed"):
        kf.em(np.array([[0.0, np.nan], [1.0, 1.0]]), em_vars=["observation_covariance"])
    with pytest.raises(ValueError, match="unknown name 'A' in em_vars"):
        kf.em(np.zeros((3, 2)), em_vars=["A"])
    with pytest.raises(ValueError, match=r"filtered_state_mean must have shape \(2,\)"):
        kf.filter_update(np.zeros(3), np.eye(2))
    with pytest.raises(ValueError, match="observation must have shape"):
        kf.filter_update(np.zeros(2), np.eye(2), np.zeros(3))
    with pytest.raises(TypeError, match="random_state must be None"):
        kf.sample(3, random_state="seed")


@pytest.mark.parametrize(("n", "p"), [(1, 1), (2, 1), (4, 2), (5, 3)])
def test_specialised_state_sizes_match_statsmodels(n, p):
    # n = 2 and 4 run compile-time-size copies of the step kernels; 1, 5 the generic one.
    params = _random_model(np.random.default_rng(10 + n), n, p)
    _, X = KalmanFilter(**params).sample(60, random_state=2)
    X[10] = np.nan
    res = _statsmodels_smoother(params, X)
    sm, sc = KalmanFilter(**params).smooth(X)
    np.testing.assert_allclose(sm, res.smoothed_state.T, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(
        sc, res.smoothed_state_cov.transpose(2, 0, 1), rtol=RTOL, atol=1e-9
    )
    assert KalmanFilter(**params).loglikelihood(X) == pytest.approx(
        res.llf_obs.sum(), rel=1e-8
    )


@pytest.mark.parametrize(
    "em_vars",
    [
        None,  # pykalman's default set: both noise covariances and the initial state
        ["observation_matrices"],
        ["transition_matrices"],
        ["transition_offsets"],
        ["observation_offsets"],
    ],
)
def test_em_steps_match_pykalman(model_and_data, em_vars):
    pykalman = pytest.importorskip("pykalman")
    params, X = model_and_data
    kw = {} if em_vars is None else {"em_vars": em_vars}
    ours = KalmanFilter(**params).em(X, n_iter=3, **kw)
    peer = pykalman.KalmanFilter(**params).em(np.ma.masked_invalid(X), n_iter=3, **kw)
    for name in ours.em_vars if em_vars is None else em_vars:
        np.testing.assert_allclose(
            getattr(ours, name), getattr(peer, name), rtol=1e-8, atol=1e-10
        )  # oracle: pykalman's M-step


def test_time_varying_parameters_match_pykalman():
    pykalman = pytest.importorskip("pykalman")
    rng = np.random.default_rng(12)
    n, p, T = 2, 2, 40
    base = _random_model(rng, n, p)
    tv = dict(base)
    tv["transition_matrices"] = base["transition_matrices"] + 0.05 * rng.normal(
        size=(T - 1, n, n)
    )
    tv["observation_matrices"] = base["observation_matrices"] + 0.1 * rng.normal(
        size=(T, p, n)
    )
    tv["observation_offsets"] = rng.normal(size=(T, p))
    tv["transition_covariance"] = base["transition_covariance"] * rng.uniform(
        0.5, 2.0, size=(T - 1, 1, 1)
    )
    ours = KalmanFilter(**tv)
    _, X = ours.sample(T, random_state=3)
    X[5] = np.nan
    peer = pykalman.KalmanFilter(**tv)
    Xm = np.ma.masked_invalid(X)
    for a, b in zip(ours.smooth(X), peer.smooth(Xm), strict=True):  # oracle: pykalman
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
    for a, b in zip(ours.filter(X), peer.filter(Xm), strict=True):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
    assert ours.loglikelihood(X) == pytest.approx(peer.loglikelihood(Xm), rel=1e-8)
    with pytest.raises(ValueError, match="needs at least 40 entries"):
        ours.filter(np.zeros((41, p)))
    with pytest.raises(ValueError, match="em does not support time-varying"):
        ours.em(X)
    with pytest.raises(ValueError, match="transition_matrices is time-varying"):
        ours.filter_update(np.zeros(n), np.eye(n), X[1])
    m, P = ours.filter(X)
    step = ours.filter_update(
        m[0],
        P[0],
        X[1],
        transition_matrix=tv["transition_matrices"][0],
        transition_covariance=tv["transition_covariance"][0],
        observation_matrix=tv["observation_matrices"][1],
        observation_offset=tv["observation_offsets"][1],
    )
    np.testing.assert_allclose(step[0], m[1], rtol=1e-12, atol=1e-12)
