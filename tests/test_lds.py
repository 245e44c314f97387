"""Tests for fastml.lds: pykalman and statsmodels as peer oracles, exact Gaussian
conditioning of the stacked state/observation vector and the Riccati fixed point as
independent ones, EM on the Nile data and on pykalman's robot data (MATLAB reference
log-likelihoods), batched series against the per-series results, and bad-input
handling.

Tolerances: means and covariances 1e-8 relative (plus 1e-10 absolute), log-likelihood
1e-8 relative.
"""

import numpy as np
import pytest

from fastml.lds import EM_VARS, KalmanFilter

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
    with pytest.raises(ValueError, match="X must be 1 or 2 or 3-dimensional"):
        kf.filter(np.zeros((2, 2, 2, 2)))
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
        "all",  # coupled updates, in pykalman's order
    ],
)
def test_em_steps_match_pykalman(model_and_data, em_vars):
    pykalman = pytest.importorskip("pykalman")
    params, X = model_and_data
    kw = {} if em_vars is None else {"em_vars": em_vars}
    ours = KalmanFilter(**params).em(X, n_iter=3, **kw)
    peer = pykalman.KalmanFilter(**params).em(np.ma.masked_invalid(X), n_iter=3, **kw)
    names = EM_VARS if em_vars == "all" else em_vars or ours.em_vars
    for name in names:
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


# ------------------------------------------------------------------ batched series
def _batch(params, n_series, T, seed, partial=True):
    """Series drawn from the model: the first 4 with missing rows at random, the
    others all missing the same rows (the kernels reuse the covariances of a series
    with the same missing entries), with ``partial`` a partially observed row in
    series 0 and the same partially observed row in all series from 4 on, and one
    series (index 3) entirely missing."""
    kf = KalmanFilter(**params)
    X = np.stack([kf.sample(T, random_state=seed + s)[1] for s in range(n_series)])
    rng = np.random.default_rng(seed)
    X[:4][rng.random((4, T)) < 0.1] = np.nan  # missing rows
    X[4:, [2, 7]] = np.nan  # the same missing rows
    if partial:
        X[0, 5, 0] = np.nan
        X[4:, 9, 1] = np.nan
    X[3] = np.nan  # a series with no observation at all
    return X


@pytest.mark.parametrize("time_varying", [False, True])
def test_batched_equals_per_series(time_varying):
    rng = np.random.default_rng(20)
    params = _time_varying_model(rng, 30, 3) if time_varying else _random_model(rng)
    if time_varying:
        params["transition_matrices"] = params["transition_matrices"] + 0.05 * (
            rng.normal(size=(29, 3, 3))
        )
    X = _batch(params, 70, 30, seed=1)  # 3 blocks of series (32, 32, 6)
    kf = KalmanFilter(**params, n_jobs=2)
    fm, fc = kf.filter(X)
    sm, sc, cc = kf.smooth(X, return_cross_covariances=True)
    ll = kf.loglikelihood(X, per_series=True)
    assert kf.loglikelihood(X) == pytest.approx(ll.sum(), rel=1e-14)
    assert fm.shape == sm.shape == (70, 30, 3)
    assert fc.shape == sc.shape == cc.shape == (70, 30, 3, 3)
    assert ll.shape == (70,)
    for s in range(70):  # oracle: the same model run on each series alone
        for a, b in zip(
            (fm[s], fc[s], sm[s], sc[s], cc[s]),
            (*kf.filter(X[s]), *kf.smooth(X[s], return_cross_covariances=True)),
            strict=True,
        ):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        assert ll[s] == pytest.approx(kf.loglikelihood(X[s]), rel=1e-12, abs=1e-12)
    # One series given as a batch of one is the 2-D computation, bit for bit.
    one = kf.smooth(X[:1], return_cross_covariances=True)
    for a, b in zip(one, kf.smooth(X[0], return_cross_covariances=True), strict=True):
        np.testing.assert_array_equal(a[0], b)


def test_batched_all_missing_series_propagates_the_prior():
    params = _random_model(np.random.default_rng(21))
    X = _batch(params, 5, 12, seed=2)
    kf = KalmanFilter(**params)
    A, b = params["transition_matrices"], params["transition_offsets"]
    Q = params["transition_covariance"]
    m, P = params["initial_state_mean"], params["initial_state_covariance"]
    fm, fc = kf.filter(X)
    sm, sc = kf.smooth(X)
    for t in range(12):  # oracle: the prior's moments, m_t = A m_{t-1} + b
        if t:
            m, P = A @ m + b, A @ P @ A.T + Q
        for got in (fm[3, t], sm[3, t]):
            np.testing.assert_allclose(got, m, rtol=1e-12, atol=1e-12)
        for got in (fc[3, t], sc[3, t]):
            np.testing.assert_allclose(got, P, rtol=1e-12, atol=1e-12)
    assert kf.loglikelihood(X, per_series=True)[3] == 0.0  # log 1: nothing observed


def test_batched_results_identical_for_every_thread_count():
    params = _random_model(np.random.default_rng(22))
    X = _batch(params, 100, 25, seed=3, partial=False)  # 4 blocks; no partial rows
    runs = []
    for n_jobs in (1, 2, 3, 4):
        kf = KalmanFilter(**params, n_jobs=n_jobs)
        em = KalmanFilter(**params, n_jobs=n_jobs).em(X, n_iter=2, em_vars="all")
        runs.append(
            (
                *kf.filter(X),
                *kf.smooth(X, return_cross_covariances=True),
                kf.loglikelihood(X, per_series=True),
                *(getattr(em, name) for name in EM_VARS),
                np.array(em.loglikelihoods_),
            )
        )
    for run in runs[1:]:
        for a, b in zip(runs[0], run, strict=True):
            assert a.shape == b.shape and (a == b).all()  # bit-identical


def _pykalman_em_step(pk, params, X):
    """One default-em_vars EM step on a batch by pykalman's own per-series E-step and
    M-step functions, the statistics pooled over series."""
    from pykalman import standard as ps

    per = []
    for s in range(X.shape[0]):
        Z = np.ma.masked_invalid(X[s])
        f = ps._filter(
            params["transition_matrices"],
            params["observation_matrices"],
            params["transition_covariance"],
            params["observation_covariance"],
            params["transition_offsets"],
            params["observation_offsets"],
            params["initial_state_mean"],
            params["initial_state_covariance"],
            Z,
        )
        m, P, gains = ps._smooth(params["transition_matrices"], f[3], f[4], f[0], f[1])
        pair = ps._smooth_pair(P, gains)
        n_obs = int((~np.ma.getmaskarray(Z).any(axis=1)).sum())
        R = ps._em_observation_covariance(
            Z,
            params["observation_offsets"],
            params["observation_matrices"],
            m,
            P,
        )
        Q = ps._em_transition_covariance(
            params["transition_matrices"], params["transition_offsets"], m, P, pair
        )
        per.append((m, P, R * n_obs, n_obs, Q))
    mu0 = np.mean([p[0][0] for p in per], axis=0)
    V0 = np.mean(
        [ps._em_initial_state_covariance(mu0, p[0], p[1]) for p in per], axis=0
    )
    R = sum(p[2] for p in per) / sum(p[3] for p in per)
    Q = np.mean([p[4] for p in per], axis=0)  # same T - 1 transitions per series
    return {
        "observation_covariance": R,
        "transition_covariance": Q,
        "initial_state_mean": mu0,
        "initial_state_covariance": V0,
    }


def test_batched_em_step_matches_pykalman_pooled_over_series():
    pk = pytest.importorskip("pykalman")
    params = _random_model(np.random.default_rng(23))
    X = _batch(params, 6, 40, seed=4, partial=False)
    want = _pykalman_em_step(pk, params, X)
    kf = KalmanFilter(**params).em(X, n_iter=1)
    for name, value in want.items():  # oracle: pykalman's M-step, pooled
        np.testing.assert_allclose(getattr(kf, name), value, rtol=1e-8, atol=1e-10)


def test_batched_em_on_duplicated_series_equals_single_series_em(model_and_data):
    # Two copies of a series double every statistic and every count: the estimates
    # of all eight parameters are those of the series alone.
    params, X = model_and_data
    one = KalmanFilter(**params).em(X, n_iter=3, em_vars="all")
    two = KalmanFilter(**params).em(np.stack([X, X]), n_iter=3, em_vars="all")
    for name in EM_VARS:
        np.testing.assert_allclose(
            getattr(two, name), getattr(one, name), rtol=1e-10, atol=1e-12
        )
    np.testing.assert_allclose(
        two.loglikelihoods_, 2 * np.array(one.loglikelihoods_), rtol=1e-12
    )


# ------------------------------------------------------------------ pykalman parity
def _time_varying_model(rng, T, n=2, p=2):
    base = _random_model(rng, n, p)
    tv = dict(base)
    tv["transition_offsets"] = rng.normal(size=(T - 1, n)) * 0.3
    tv["observation_matrices"] = base["observation_matrices"] + 0.1 * rng.normal(
        size=(T, p, n)
    )
    tv["observation_covariance"] = base["observation_covariance"] * rng.uniform(
        0.5, 2.0, size=(T, 1, 1)
    )
    return tv


@pytest.mark.parametrize(
    "em_vars",
    [
        ["transition_covariance", "initial_state_mean", "initial_state_covariance"],
        ["transition_matrices"],
        ["transition_matrices", "transition_covariance"],
        ["observation_offsets"],
    ],
)
def test_em_with_time_varying_parameters_matches_pykalman(em_vars):
    pk = pytest.importorskip("pykalman")
    T = 50
    tv = _time_varying_model(np.random.default_rng(30), T)
    _, X = KalmanFilter(**tv).sample(T, random_state=5)
    X[9] = np.nan
    ours = KalmanFilter(**tv).em(X, n_iter=3, em_vars=em_vars)
    peer = pk.KalmanFilter(**tv).em(np.ma.masked_invalid(X), n_iter=3, em_vars=em_vars)
    for name in em_vars:  # oracle: pykalman, time-varying parameters used per step
        np.testing.assert_allclose(
            getattr(ours, name), getattr(peer, name), rtol=1e-8, atol=1e-10
        )
    assert ours.observation_matrices.shape == (T, 2, 2)  # the given ones kept


def test_em_estimating_a_time_varying_parameter_warns_like_pykalman():
    pk = pytest.importorskip("pykalman")
    T = 40
    tv = _time_varying_model(np.random.default_rng(31), T)
    _, X = KalmanFilter(**tv).sample(T, random_state=6)
    with pytest.warns(UserWarning, match="observation_covariance is time-varying"):
        ours = KalmanFilter(**tv).em(X, n_iter=2)
    with pytest.warns(UserWarning):
        peer = pk.KalmanFilter(**tv).em(X, n_iter=2)
    assert ours.observation_covariance.shape == (2, 2)
    np.testing.assert_allclose(  # oracle: pykalman's constant estimate
        ours.observation_covariance, peer.observation_covariance, rtol=1e-8, atol=1e-10
    )


def test_pykalman_robot_em_reproduces_matlab_loglikelihoods():
    """pykalman's own test_kalman_fit: time-varying transition offsets, EM of the two
    noise covariances, log-likelihoods from the MATLAB reference implementation."""
    pk_data = pytest.importorskip("pykalman.datasets")
    data = pk_data.load_robot()
    kf = KalmanFilter(
        data.transition_matrix,
        data.observation_matrix,
        data.initial_transition_covariance,
        data.initial_observation_covariance,
        data.transition_offsets,
        data.observation_offset,
        data.initial_state_mean,
        data.initial_state_covariance,
        em_vars=["transition_covariance", "observation_covariance"],
    )
    lls = []
    for _ in range(5):
        lls.append(kf.loglikelihood(data.observations))
        kf.em(data.observations, n_iter=1)
    np.testing.assert_allclose(lls, data.loglikelihoods[:5], rtol=1e-8)  # MATLAB
    kf.em_vars = "all"  # ... and then every parameter, on the first 30 steps
    X30 = data.observations[:30]
    with pytest.warns(UserWarning, match="transition_offsets is time-varying"):
        kf.em(X30, n_iter=1)
    lls = [kf.loglikelihood(X30)]
    for _ in range(4):
        kf.em(X30, n_iter=1)
        lls.append(kf.loglikelihood(X30))
    assert (np.diff(lls) > 0).all()


def test_scalar_parameters_match_pykalman():
    pk = pytest.importorskip("pykalman")
    scalars = dict(
        transition_matrices=0.9,
        observation_matrices=[1.5],  # a 1-D row: a 1 x 1 matrix here
        transition_covariance=0.2,
        observation_covariance=0.5,
        transition_offsets=0.1,
        observation_offsets=-0.3,
        initial_state_mean=1.0,
        initial_state_covariance=2.0,
    )
    X = np.random.default_rng(7).normal(size=(30, 1))
    X[4] = np.nan
    ours, peer = KalmanFilter(**scalars), pk.KalmanFilter(**scalars)
    Xm = np.ma.masked_invalid(X)
    for a, b in zip(ours.smooth(X), peer.smooth(Xm), strict=True):  # oracle: pykalman
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
    assert ours.loglikelihood(X) == pytest.approx(peer.loglikelihood(Xm), rel=1e-8)
    ours.em(X, n_iter=2, em_vars="all")
    peer.em(Xm, n_iter=2, em_vars="all")
    for name in EM_VARS:
        np.testing.assert_allclose(
            np.atleast_1d(getattr(ours, name)).ravel(),
            np.atleast_1d(getattr(peer, name)).ravel(),
            rtol=1e-8,
            atol=1e-10,
        )
    # pykalman's test_em_single_timestep_no_zerodiv: one step, every parameter.
    one = KalmanFilter([[1.0]], [[1.0]], [[0.1]], [[0.1]], [0.0], [0.0], [0.0],
                       [[1.0]], em_vars="all").em(np.array([[1.0]]), n_iter=1)  # fmt: skip
    assert np.isfinite(one.observation_covariance).all()
    stepped = ours.filter_update([0.0], [[1.0]], 0.5, transition_matrix=0.9)
    full = ours.filter_update([0.0], [[1.0]], [0.5], transition_matrix=[[0.9]])
    np.testing.assert_array_equal(stepped[0], full[0])  # a scalar is a 1 x 1 matrix


def test_scalar_parameter_with_more_than_one_state_is_refused_like_pykalman():
    pk = pytest.importorskip("pykalman")
    kw = dict(transition_covariance=0.1, initial_state_mean=np.zeros(2))
    with pytest.raises(ValueError):  # pykalman: "shape of all parameters is not ..."
        pk.KalmanFilter(**kw).filter(np.zeros((3, 1)))
    with pytest.raises(
        ValueError, match=r"initial_state_mean: 2\); transition_covariance given as a"
    ):
        KalmanFilter(**kw).filter(np.zeros((3, 1)))


def test_batched_bad_input():
    params = _random_model(np.random.default_rng(24))
    kf = KalmanFilter(**params)
    with pytest.raises(ValueError, match="X must be 1 or 2 or 3-dimensional"):
        kf.smooth(np.zeros((2, 3, 4, 2)))
    with pytest.raises(ValueError, match=r"inconsistent n_dim_obs .*X \(number of"):
        kf.smooth(np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match="X must not be empty"):
        kf.smooth(np.zeros((0, 5, 2)))
    tv = dict(params, observation_offsets=np.zeros((4, 2)))  # per step, too short
    with pytest.raises(ValueError, match="needs at least 5 entries"):
        KalmanFilter(**tv).smooth(np.zeros((3, 5, 2)))
    with pytest.raises(ValueError, match="needs at least 5 entries"):
        KalmanFilter(**tv).em(np.zeros((3, 5, 2)))
    with pytest.raises(ValueError, match="n_jobs must be None"):
        KalmanFilter(**params, n_jobs=0).filter(np.zeros((3, 5, 2)))
    with pytest.raises(TypeError, match="n_jobs must be None"):
        KalmanFilter(**params, n_jobs=1.5).filter(np.zeros((3, 5, 2)))
    X = np.zeros((3, 5, 2))
    X[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match=r"X\[2, 1\] is partially observed"):
        kf.em(X, em_vars=["observation_covariance"])
    singular = KalmanFilter(
        observation_covariance=[[0.0]],
        initial_state_covariance=[[0.0]],
        transition_covariance=[[0.0]],
    )
    Y = np.ones((3, 6, 1))
    Y[0, :4] = np.nan  # series 0 first observed at step 4, the others at step 0
    with pytest.raises(ValueError, match="at time step 4 of series 0"):
        singular.filter(Y)
