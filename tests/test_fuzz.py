"""Random shapes, dtypes, NaN/inf and non-contiguous views against every public function.

The property: a call either returns a result that agrees with a plain NumPy oracle, or
raises ValueError/TypeError. Anything else (another exception, a crash, a silent NaN)
fails.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fastml import losses, stats

DTYPES = st.sampled_from(
    [
        np.float64,
        np.float32,
        np.int64,
        np.int8,
        np.bool_,
        np.float16,
        np.complex128,
        np.uint32,
    ]
)
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def arrays(draw, min_dims=0, max_dims=3, max_side=6):
    dtype = draw(DTYPES)
    shape = draw(
        hnp.array_shapes(
            min_dims=min_dims, max_dims=max_dims, min_side=0, max_side=max_side
        )
    )
    if np.dtype(dtype).kind in "fc":
        width = {np.float16: 16, np.float32: 32}.get(dtype, 64)
        bound = 6e4 if width == 16 else 1e6
        elements = st.floats(-bound, bound, allow_nan=False, width=width)
        elements = (
            st.one_of(elements, st.sampled_from([np.nan, np.inf, -np.inf]))
            if draw(st.booleans())
            else elements
        )
        a = draw(hnp.arrays(dtype, shape, elements=elements))
    else:
        a = draw(hnp.arrays(dtype, shape))
    if a.ndim and draw(st.booleans()):  # a non-contiguous view
        a = a[::-1] if a.ndim == 1 else np.swapaxes(a, 0, -1)[::2]
    return a


def ok_or_clean_error(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs), None
    except (ValueError, TypeError) as exc:
        assert str(exc), "error messages must say something"
        return None, exc


def numeric_finite(a):
    return (
        a.dtype.kind in "biuf"
        and a.dtype.itemsize <= 8
        and np.isfinite(a.astype(np.float64)).all()
    )


@SETTINGS
@given(
    a=arrays(),
    ddof=st.sampled_from([0, 1, 2, -1, 0.5]),
    axis=st.sampled_from([None, 0, -1, 1, (0, 1)]),
)
def test_variance_fuzz(a, ddof, axis):
    got, err = ok_or_clean_error(stats.variance, a, ddof=ddof, axis=axis)
    if err is None:
        ref = np.var(a.astype(np.float64), ddof=ddof, axis=axis)  # oracle: numpy.var
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-6)
    elif a.dtype.kind == "c":
        assert isinstance(err, TypeError)
    elif (
        numeric_finite(a)
        and a.size
        and a.ndim
        and ddof in (0, 1)
        and axis in (None, 0, -1)
    ):
        n = a.size if axis is None else a.shape[axis]
        assert n == 0 or ddof >= n, err  # only an empty reduction or ddof >= n may fail


@SETTINGS
@given(a=arrays(min_dims=1, max_dims=2), b=arrays(min_dims=1, max_dims=2))
def test_losses_fuzz(a, b):
    for fn in (losses.squared_error, losses.binary_cross_entropy):
        got, err = ok_or_clean_error(fn, a, b)
        if err is None:
            assert np.isfinite(got.loss) and np.isfinite(got.grad).all()
            assert got.grad.shape == a.shape
    got, err = ok_or_clean_error(losses.softmax_cross_entropy, a, b)
    if err is None:
        assert np.isfinite(got.loss) and np.isfinite(got.grad).all()
    got, err = ok_or_clean_error(losses.kl_categorical, a, b)
    if err is None:
        assert np.all(np.asarray(got) >= -1e-12)


@SETTINGS
@given(
    m=arrays(min_dims=1, max_dims=1, max_side=3),
    c=arrays(min_dims=0, max_dims=3, max_side=3),
)
def test_kl_gaussian_fuzz(m, c):
    got, err = ok_or_clean_error(losses.kl_gaussian, m, c, m, c)
    if err is None:
        assert got == pytest.approx(0.0, abs=1e-8)


@SETTINGS
@given(chunks=st.lists(arrays(min_dims=1, max_dims=2, max_side=5), max_size=4))
def test_running_moments_fuzz(chunks):
    rm = stats.RunningMoments()
    for c in chunks:
        ok_or_clean_error(rm.update, c)
    if rm.n:
        assert np.all(np.asarray(rm.variance()) >= 0)


# ---- every other public module: valid input -> finite output of the right shape; -------
# ---- invalid input -> ValueError/TypeError, never another exception or a crash. -------

SMALL = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
SEEDS = st.integers(0, 2**32 - 1)


@st.composite
def data_matrix(draw, max_rows=12, max_cols=3, nonfinite=True):
    """A 2-D float64 array, sometimes with NaN/inf, sometimes empty or 1-D."""
    shape = draw(
        st.one_of(
            st.tuples(st.integers(1, max_rows), st.integers(1, max_cols)),
            st.sampled_from([(0, 2), (3,), (2, 0)]),
        )
    )
    elements = st.floats(-1e3, 1e3, allow_nan=False)
    if nonfinite and draw(st.booleans()):
        elements = st.one_of(elements, st.sampled_from([np.nan, np.inf]))
    return draw(hnp.arrays(np.float64, shape, elements=elements))


def finite_2d(x):
    return x.ndim == 2 and x.size > 0 and np.isfinite(x).all()


def assert_finite(*arrays):
    for a in arrays:
        assert np.isfinite(np.asarray(a, dtype=float)).all()


@SMALL
@given(
    n=st.sampled_from([1, 2, 5, 0, -1, 2.5]),
    sigma2=st.sampled_from([1.0, 0.1, 0.0, -1.0, np.nan]),
    trials=st.sampled_from([2, 50, 1]),
    seed=SEEDS,
)
def test_variance_bias_fuzz(n, sigma2, trials, seed):
    got, err = ok_or_clean_error(
        stats.variance_bias, n, sigma2, n_trials=trials, random_state=seed
    )
    valid = isinstance(n, int) and n >= 1 and sigma2 > 0 and trials >= 2
    assert (err is None) == valid, err
    if valid:
        assert_finite(got.estimate, got.exact, got.stderr)
        assert got.estimate >= 0 and got.n_trials == trials


@SMALL
@given(
    param=st.sampled_from([1.0, 0.3, 0.0, -1.0, np.nan, np.inf]),
    size=st.sampled_from([None, 0, 3, (2, 3), -1, 2.5]),
    seed=SEEDS,
)
def test_direct_samplers_fuzz(param, size, seed):
    from fastml import sampling

    calls = [
        (sampling.standard_normal, ()),
        (sampling.standard_exponential, ()),
        (sampling.normal, (0.0, param)),
        (sampling.exponential, (param,)),
        (sampling.gamma, (param,)),
        (sampling.dirichlet, (np.array([param, 1.0]),)),
        (sampling.categorical, (np.array([param, 1.0]) / (abs(param) + 1.0),)),
    ]
    for fn, args in calls:
        got, err = ok_or_clean_error(fn, *args, size=size, random_state=seed)
        if err is None:
            assert_finite(got)
            shape = [] if size is None else np.atleast_1d(size).tolist()
            assert list(np.shape(got))[: len(shape)] == shape
        elif size in (None, 0, 3, (2, 3)) and fn is sampling.standard_normal:
            raise AssertionError(f"{fn.__name__} refused valid input: {err}")


@SMALL
@given(
    mean=data_matrix(max_rows=1, max_cols=3),
    scale=st.sampled_from([1.0, 0.0, -1.0]),
    size=st.sampled_from([None, 4]),
    seed=SEEDS,
)
def test_multivariate_normal_and_alias_fuzz(mean, scale, size, seed):
    from fastml import sampling

    m = mean.reshape(-1)
    got, err = ok_or_clean_error(
        sampling.multivariate_normal, m, scale * np.eye(m.size), size,
        random_state=seed,
    )  # fmt: skip
    if err is None:
        assert_finite(got)
        assert got.shape == ((m.size,) if size is None else (size, m.size))
    elif m.size and np.isfinite(m).all() and scale >= 0:
        raise AssertionError(f"valid mean/cov refused: {err}")
    table, err = ok_or_clean_error(sampling.AliasTable, np.abs(m))
    if err is None:
        draws = table.sample(50, random_state=seed)
        assert ((draws >= 0) & (draws < m.size)).all()
        assert (np.abs(m)[draws] > 0).all()  # only outcomes of positive probability


@SMALL
@given(
    x0=data_matrix(max_rows=2, max_cols=3),
    n=st.sampled_from([2, 5, 0]),  # with thin=2**62: an iteration count past int64
    thin=st.sampled_from([1, 3, 0, 2**62]),
    seed=SEEDS,
)
def test_mcmc_fuzz(x0, n, thin, seed):
    from fastml import sampling

    d = x0.shape[-1] if x0.ndim else 1
    target = sampling.MultivariateNormal(np.zeros(max(d, 1)), np.eye(max(d, 1)))
    chains = x0.shape[0] if x0.ndim == 2 else 1
    runs = [
        lambda: sampling.metropolis_hastings(
            target, x0, n, thin=thin, n_chains=chains, random_state=seed
        ),
        lambda: sampling.hmc(
            target, x0, n, step_size=0.2, n_leapfrog=3, thin=thin, n_chains=chains,
            random_state=seed,
        ),
        lambda: sampling.gibbs_sampler(
            target, x0, n, thin=thin, n_chains=chains, random_state=seed
        ),
    ]  # fmt: skip
    for run in runs:
        got, err = ok_or_clean_error(run)
        if err is None:
            assert got.samples.shape == (chains, n, d)
            assert_finite(got.samples)
        elif x0.size and np.isfinite(x0).all() and n >= 1 and 1 <= thin < 2**40:
            raise AssertionError(f"valid chain refused: {err}")


@settings(SMALL, max_examples=8)
@given(
    log_k=st.sampled_from([1.0, np.nan, -np.inf]),
    size=st.sampled_from([5, 0, -2]),
    seed=SEEDS,
)
def test_monte_carlo_fuzz(log_k, size, seed):
    from scipy import stats as sps

    from fastml import sampling

    got, err = ok_or_clean_error(
        sampling.rejection_sample, lambda z: -0.5 * z**2, sps.norm(), log_k, size,
        random_state=seed,
    )  # fmt: skip
    if err is None:
        assert got.samples.shape == (size,)
        assert_finite(got.samples)
    got, err = ok_or_clean_error(
        sampling.importance_sample, lambda z: z, lambda z: -0.5 * z**2, sps.norm(),
        size, random_state=seed,
    )  # fmt: skip
    if err is None:
        assert np.isfinite(got.estimate)
    got, err = ok_or_clean_error(
        sampling.inverse_cdf, sps.expon.ppf, size, random_state=seed
    )
    if err is None:
        assert got.shape == (size,) and (got >= 0).all()


@SMALL
@given(X=data_matrix(), k=st.sampled_from([1, 2, 0, 50]), seed=SEEDS)
def test_mixture_fuzz(X, k, seed):
    import warnings

    from fastml import mixture

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mixture.ConvergenceWarning)
        for cls in (mixture.GaussianMixture, mixture.BayesianGaussianMixture):
            gm, err = ok_or_clean_error(
                cls(k, max_iter=5, random_state=seed, reg_covar=1e-3).fit, X
            )
            if err is None:
                assert gm.means_.shape == (k, X.shape[1])
                assert_finite(gm.means_, gm.weights_, gm.covariances_)
                assert gm.predict(X).shape == (X.shape[0],)
            else:
                assert not finite_2d(X) or k < 1 or k > X.shape[0] or len(X) < 2, err
        centers, err = ok_or_clean_error(mixture.kmeans_plusplus, X, k, seed)
        if err is None:
            assert centers[0].shape == (k, X.shape[1])
            assert_finite(centers[0])


@SMALL
@given(x=data_matrix(max_cols=1), tol=st.sampled_from([1e-12, 0.0, -1.0]))
def test_variational_fuzz(x, tol):
    from fastml.variational import UnivariateGaussianVI

    vi, err = ok_or_clean_error(UnivariateGaussianVI(tol=tol).fit, x.reshape(-1))
    if err is None:
        assert_finite(vi.mu_N_, vi.lambda_N_, vi.a_N_, vi.b_N_, vi.elbo_)
    else:
        assert not (x.size and np.isfinite(x).all() and tol >= 0), err


@SMALL
@given(
    X=hnp.arrays(
        np.int64,
        st.tuples(st.integers(1, 6), st.integers(1, 8)),
        elements=st.integers(-1, 4),
    ),
    method=st.sampled_from(["variational", "gibbs"]),
    k=st.sampled_from([1, 3, 0]),
    seed=SEEDS,
)
def test_lda_fuzz(X, method, k, seed):
    from fastml.lda import LatentDirichletAllocation

    lda = LatentDirichletAllocation(k, method=method, max_iter=3, random_state=seed)
    theta, err = ok_or_clean_error(lda.fit_transform, X)
    if err is None:
        assert theta.shape == (X.shape[0], k)
        assert_finite(theta, lda.components_)
        np.testing.assert_allclose(theta.sum(axis=1), 1.0, rtol=1e-9)
    else:
        assert (X < 0).any() or not 1 <= k <= len(X) or X.sum() == 0, err


@SMALL
@given(X=data_matrix(max_rows=20), k=st.sampled_from([1, 2, 0]), seed=SEEDS)
def test_hmm_fuzz(X, k, seed):
    from fastml import hmm

    models = [
        (hmm.GaussianHMM(k, n_iter=3, random_state=seed), X),
        (hmm.PoissonHMM(k, n_iter=3, random_state=seed), np.abs(np.round(X))),
        (hmm.CategoricalHMM(k, n_iter=3, random_state=seed), np.round(X) % 3),
        (hmm.GMMHMM(k, 2, n_iter=3, random_state=seed), X),
        (hmm.MultinomialHMM(k, n_iter=3, random_state=seed), np.abs(np.round(X))),
    ]
    for model, data in models:
        fitted, err = ok_or_clean_error(model.fit, data)
        if err is None:
            assert_finite(fitted.startprob_, fitted.transmat_)
            score, err = ok_or_clean_error(fitted.score, data)
            assert err is not None or not np.isnan(score)
            states, err = ok_or_clean_error(fitted.predict, data)
            if err is None:
                assert states.shape == (data.shape[0],)
                assert ((states >= 0) & (states < k)).all()


@SMALL
@given(Y=data_matrix(max_rows=15), n_iter=st.sampled_from([1, 2, 0]))
def test_lds_fuzz(Y, n_iter):
    from fastml.lds import KalmanFilter

    d = Y.shape[1] if Y.ndim == 2 else 1
    kf = KalmanFilter(n_dim_state=d, n_dim_obs=d)
    for run in (kf.filter, kf.smooth):
        got, err = ok_or_clean_error(run, Y)
        if err is None:
            mean, cov = got
            assert mean.shape == (Y.shape[0], d) and cov.shape == (Y.shape[0], d, d)
            assert_finite(mean, cov)
    got, err = ok_or_clean_error(kf.em, Y, n_iter=n_iter)
    if err is None and n_iter >= 1:
        assert_finite(got.transition_covariance, got.observation_covariance)


@SMALL
@given(
    cards=st.lists(st.integers(1, 3), min_size=1, max_size=4),
    table=data_matrix(max_rows=3, max_cols=3),
    seed=SEEDS,
)
def test_graphical_fuzz(cards, table, seed):
    from fastml import graphical
    from fastml.ep import discrete_ep

    fg = graphical.FactorGraph(cards)
    r = np.random.default_rng(seed)
    for i in range(len(cards) - 1):
        fg.add_factor([i, i + 1], r.random((cards[i], cards[i + 1])) + 0.1)
    _, err = ok_or_clean_error(fg.add_factor, [0], table)  # often the wrong shape
    if err is None:
        assert table.shape == (cards[0],) or table.shape == (cards[0], 1)
    for run in (
        lambda: fg.sum_product().marginal,
        lambda: fg.loopy_belief_propagation().marginal,
        lambda: discrete_ep(fg)["beliefs"].__getitem__,
    ):
        marginal, err = ok_or_clean_error(run)
        if err is None:
            for i, c in enumerate(cards):
                m = marginal(i)
                assert m.shape == (c,)
                np.testing.assert_allclose(m.sum(), 1.0, rtol=1e-9)
    if table.ndim == 2:
        mrf, err = ok_or_clean_error(
            graphical.PairwiseMRF.potts, table[:, :, None] * np.ones(2), 0.5
        )
        if err is None:
            b = mrf.loopy_belief_propagation(max_iter=5).beliefs
            np.testing.assert_allclose(b.sum(axis=-1), 1.0, rtol=1e-9)
        else:
            assert not np.isfinite(table).all() or table.size == 0, err
    bn = graphical.BayesianNetwork([("a", "b")])
    _, err = ok_or_clean_error(bn.add_cpd, "a", table.reshape(-1))
    mn = graphical.MarkovNetwork([("a", "b")])
    _, err = ok_or_clean_error(mn.add_factor, ["a", "b"], table)


@SMALL
@given(
    x=data_matrix(max_rows=10, max_cols=2),
    w=st.sampled_from([0.5, 0.0, 1.0, -0.1]),
    y=st.sampled_from([1, -1, 0, 2]),
)
def test_ep_fuzz(x, w, y):
    from fastml import ep

    prob, err = ok_or_clean_error(ep.ClutterProblem, w=w)
    if err is None:
        for fit in (prob.fit_ep, prob.fit_adf):
            res, err = ok_or_clean_error(fit, x)
            if err is None:
                assert_finite(res.mean)
    site, err = ok_or_clean_error(ep.ProbitSite, np.ones(2), y)
    if err is None:
        res, err = ok_or_clean_error(ep.GaussianEP(np.zeros(2), np.eye(2), [site]).fit)
        assert err is None, err
        assert_finite(res.mean, res.covariance)
    else:
        assert y not in (1, -1), err


@SMALL
@given(
    x=hnp.arrays(
        np.float64,
        st.tuples(*(st.integers(1, 5) for _ in range(4))),
        elements=st.floats(-10, 10),
    ),
    k=st.sampled_from([1, 2, 3, 9]),
    stride=st.sampled_from([1, 2, 0, 2**40]),
    padding=st.sampled_from([0, 1, -1]),
)
def test_nn_conv_fuzz(x, k, stride, padding):
    from fastml import nn

    w = np.ones((2, x.shape[1], k, k))
    got, err = ok_or_clean_error(
        nn.conv2d_forward, x, w, stride=stride, padding=padding
    )
    if err is None:
        y, cols = got
        oh = (x.shape[2] + 2 * padding - k) // stride + 1
        ow = (x.shape[3] + 2 * padding - k) // stride + 1
        assert y.shape == (x.shape[0], 2, oh, ow)
        assert_finite(y)
        gx, gw, _ = nn.conv2d_backward(
            np.ones_like(y), x.shape, w, cols, stride, padding
        )
        assert gx.shape == x.shape and gw.shape == w.shape
    else:
        assert (
            stride < 1 or stride > 2**31 or padding < 0
            or k > min(x.shape[2], x.shape[3]) + 2 * max(padding, 0)
        ), err  # fmt: skip
    layer = nn.MaxPool2d(2)
    got, err = ok_or_clean_error(layer.forward, x)
    if err is None:
        assert got.shape == (x.shape[0], x.shape[1], x.shape[2] // 2, x.shape[3] // 2)


@SMALL
@given(X=data_matrix(max_rows=20, max_cols=4), seed=SEEDS)
def test_nn_layers_fuzz(X, seed):
    from fastml import nn

    d = X.shape[-1] if X.ndim else 1
    model = nn.Sequential(
        [nn.Linear(max(d, 1), 3, random_state=seed), nn.Tanh(), nn.Linear(3, 2)]
    )
    y = np.arange(X.shape[0]) % 2 if X.ndim == 2 else np.zeros(1, int)
    got, err = ok_or_clean_error(model.forward, X)
    if err is None:
        assert got.shape == (*X.shape[:-1], 2)
        assert_finite(got)
    _, err = ok_or_clean_error(
        model.fit, X, y, epochs=1, batch_size=4, random_state=seed, verbose=False
    )
    if err is None:
        assert_finite(model.forward(X))
    seq = X.reshape(1, *X.shape) if X.ndim == 2 else X
    for layer in (
        nn.RNN(max(d, 1), 3, random_state=seed),
        nn.MultiHeadAttention(max(d, 1), 1, random_state=seed),
    ):
        out, err = ok_or_clean_error(layer.forward, seq)
        if err is None:
            assert out.shape[:2] == seq.shape[:2]
            assert_finite(out)


@SMALL
@given(
    X=data_matrix(max_rows=20, max_cols=6),
    lr=st.sampled_from([0.1, 0.0, -1.0, np.nan]),
    seed=SEEDS,
)
def test_rbm_fuzz(X, lr, seed):
    from fastml import rbm

    for cls, data in (
        (rbm.BernoulliRBM, (np.nan_to_num(X) > 0).astype(float)),
        (rbm.GaussianBernoulliRBM, X),
    ):
        model, err = ok_or_clean_error(
            cls(4, learning_rate=lr, n_iter=2, batch_size=5, random_state=seed).fit,
            data,
        )
        if err is None:
            h = model.transform(data)
            assert h.shape == (data.shape[0], 4)
            assert ((h >= 0) & (h <= 1)).all()
        else:
            assert not (data.ndim == 2 and data.size and np.isfinite(data).all()
                        and lr > 0) or "diverged" in str(err), err  # fmt: skip
