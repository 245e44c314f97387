"""fastml.rbm: CD/PCD updates against a NumPy transcription, exact quantities on tiny
models (brute-force enumeration), Gibbs sampling statistics, digits features vs
scikit-learn's RBM example, bad input."""

import itertools
import warnings

import numpy as np
import pytest

from fastml._kernels import builds
from fastml.rbm import BernoulliRBM, GaussianBernoulliRBM


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def binary_data(n=60, d=6, seed=0):
    rng = np.random.default_rng(seed)
    proto = rng.random((3, d)) < 0.5
    x = proto[rng.integers(0, 3, n)] ^ (rng.random((n, d)) < 0.1)
    return x.astype(np.float64)


def test_free_energy_matches_brute_force_marginal():
    x = binary_data()
    rbm = BernoulliRBM(4, n_iter=3, random_state=0).fit(x)
    W, c, b = rbm.components_, rbm.intercept_hidden_, rbm.intercept_visible_
    v = np.array(list(itertools.product([0, 1], repeat=6)), dtype=float)
    h = np.array(list(itertools.product([0, 1], repeat=4)), dtype=float)
    # log sum_h exp(-E(v, h)) with E = -b.v - c.h - h W v, enumerated over all 16 h
    logits = v @ b[:, None] + (h @ c)[None] + v @ W.T @ h.T
    ref = -np.logaddexp.reduce(logits, axis=1)
    np.testing.assert_allclose(rbm.free_energy(v), ref, rtol=1e-12)  # brute force


def test_transform_and_pseudo_likelihood():
    x = binary_data()
    rbm = BernoulliRBM(5, n_iter=2, random_state=1).fit(x)
    W, c = rbm.components_, rbm.intercept_hidden_
    np.testing.assert_allclose(rbm.transform(x), sigmoid(x @ W.T + c), rtol=1e-13)
    # pseudo-likelihood term of the flipped unit, by brute force: d log p(v_j | v_-j)
    ps = rbm.score_samples(x)
    assert ps.shape == (60,) and np.all(ps <= 0)
    fe = rbm.free_energy(x)
    rng = np.random.default_rng(7)
    rbm.random_state_ = np.random.default_rng(7)
    j = rng.integers(0, 6, 60)
    xf = x.copy()
    xf[np.arange(60), j] = 1 - xf[np.arange(60), j]
    ref = 6 * np.log(np.exp(-fe) / (np.exp(-fe) + np.exp(-rbm.free_energy(xf))))
    np.testing.assert_allclose(rbm.score_samples(x), ref, rtol=1e-10)


def reference_epoch(rbm0, x, bounds, persistent, k, lr, rng):
    """The documented update, transcribed in NumPy with the documented draw order."""
    W = rbm0.components_.copy()
    c = rbm0.intercept_hidden_.copy()
    b = rbm0.intercept_visible_.copy()
    chain = rbm0.h_samples_.copy()
    for s, e in itertools.pairwise(bounds):
        v = x[s:e]
        hp = sigmoid(v @ W.T + c)
        if persistent:
            hn = chain.copy()
        else:
            hn = (rng.random(hp.shape) < hp).astype(float)
        for step in range(k):
            vm = sigmoid(hn @ W + b)
            vn = (rng.random(vm.shape) < vm).astype(float)
            hn = sigmoid(vn @ W.T + c)
            if step < k - 1:
                hn = (rng.random(hn.shape) < hn).astype(float)
        B, R = len(v), len(vn)
        W += lr * (hp.T @ v / B - hn.T @ vn / R)
        c += lr * (hp.mean(0) - hn.mean(0))
        b += lr * (v.mean(0) - vn.mean(0))
        if persistent:
            chain = (rng.random(hn.shape) < hn).astype(float)
    return W, c, b


@pytest.mark.parametrize("persistent,k", [(True, 1), (False, 1), (False, 3), (True, 2)])
def test_cd_epoch_matches_numpy_transcription(persistent, k):
    x = binary_data(n=23)
    rbm = BernoulliRBM(
        4, batch_size=5, n_iter=1, k=k, persistent=persistent, random_state=3
    )
    rbm._check_params()
    rbm._initialise(x)
    start = {a: getattr(rbm, a).copy() for a in ("components_", "h_samples_")}
    state = rbm.random_state_.bit_generator.state
    bounds = np.array([0, 5, 10, 15, 19, 23])
    rbm._epoch(x, bounds)
    ref_rng = np.random.default_rng()
    ref_rng.bit_generator.state = state  # same stream: uniforms are next_double

    class Start:
        components_ = start["components_"]
        intercept_hidden_ = np.zeros(4)
        intercept_visible_ = np.zeros(6)
        h_samples_ = start["h_samples_"]

    W, c, b = reference_epoch(Start, x, bounds, persistent, k, 0.1, ref_rng)
    np.testing.assert_allclose(rbm.components_, W, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(rbm.intercept_hidden_, c, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(rbm.intercept_visible_, b, rtol=1e-12, atol=1e-15)


def test_gibbs_sampler_matches_exact_conditionals():
    rbm = BernoulliRBM(3, random_state=0).fit(binary_data(d=4))
    v0 = np.tile(np.array([[1.0, 0, 1, 0]]), (40_000, 1))
    v1 = rbm.gibbs(v0)
    W, c, b = rbm.components_, rbm.intercept_hidden_, rbm.intercept_visible_
    # exact P(v1 | v0) = sum_h p(h | v0) p(v1 | h), enumerated over the 8 h
    hs = np.array(list(itertools.product([0, 1], repeat=3)), dtype=float)
    ph = sigmoid(v0[0] @ W.T + c)
    w_h = np.prod(np.where(hs == 1, ph, 1 - ph), axis=1)
    pv = w_h @ sigmoid(hs @ W + b)  # marginal P(v1_i = 1)
    se = np.sqrt(pv * (1 - pv) / 40_000)
    assert np.all(np.abs(v1.mean(0) - pv) < 4.5 * se)  # z-test per unit, alpha ~ 3e-5
    assert set(np.unique(v1)) <= {0.0, 1.0}


def test_same_seed_same_bits_and_float32():
    x = binary_data()
    a = BernoulliRBM(4, n_iter=3, random_state=5).fit(x)
    b = BernoulliRBM(4, n_iter=3, random_state=5).fit(x)
    c = BernoulliRBM(4, n_iter=3, random_state=6).fit(x)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert not np.array_equal(a.components_, c.components_)
    f = BernoulliRBM(4, n_iter=3, random_state=5).fit(x.astype(np.float32))
    assert f.components_.dtype == f.transform(x).dtype == np.float32
    np.testing.assert_allclose(f.components_, a.components_, atol=2e-3)


def test_partial_fit_and_sklearn_params():
    x = binary_data()
    rbm = BernoulliRBM(4, random_state=0)
    for chunk in np.array_split(x, 6):
        rbm.partial_fit(chunk)
    assert rbm.components_.shape == (4, 6)
    assert rbm.get_params()["n_components"] == 4
    sklearn = pytest.importorskip("sklearn")
    clone = sklearn.base.clone(rbm)
    assert clone.n_components == 4 and not hasattr(clone, "components_")


def test_gaussian_rbm_learns_and_samples():
    rng = np.random.default_rng(0)
    centres = np.array([[2.0, -2, 0, 1], [-2.0, 2, 1, -1]])
    x = centres[rng.integers(0, 2, 400)] + 0.3 * rng.standard_normal((400, 4))
    x = (x - x.mean(0)) / x.std(0)
    rbm = GaussianBernoulliRBM(8, n_iter=30, learning_rate=0.01, random_state=0)
    before = GaussianBernoulliRBM(8, n_iter=1, learning_rate=1e-9, random_state=0)
    before.fit(x)
    rbm.fit(x)
    assert rbm.reconstruction_error(x) < 0.5 * before.reconstruction_error(x)
    assert np.isfinite(rbm.score_samples(x)).all()
    assert rbm.gibbs(x[:5]).shape == (5, 4)


@pytest.mark.slow
def test_digits_features_match_sklearn_example_and_beat_pixels():
    """scikit-learn's "RBM features for digit classification" example, side by side."""
    pytest.importorskip("sklearn")
    from scipy.ndimage import convolve
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import BernoulliRBM as SkRBM

    def nudge(X, Y):  # the example's 1-pixel shifts: 5x the data
        dirs = [
            [[0, 1, 0], [0, 0, 0], [0, 0, 0]],
            [[0, 0, 0], [1, 0, 0], [0, 0, 0]],
            [[0, 0, 0], [0, 0, 1], [0, 0, 0]],
            [[0, 0, 0], [0, 0, 0], [0, 1, 0]],
        ]
        shifted = [
            np.apply_along_axis(
                lambda x, w=w: convolve(
                    x.reshape(8, 8), mode="constant", weights=w
                ).ravel(),
                1,
                X,
            )
            for w in dirs
        ]
        return np.concatenate([X, *shifted]), np.concatenate([Y] * 5)

    d = load_digits()
    X, Y = nudge(d.data.astype(float), d.target)
    X = (X - X.min(0)) / (X.max(0) + 1e-4)  # the example's minmax_scale
    xtr, xte, ytr, yte = train_test_split(X, Y, test_size=0.2, random_state=0)

    def accuracy(rbm):
        feats = rbm.fit(xtr).transform if rbm is not None else (lambda z: z)
        clf = LogisticRegression(C=6000 if rbm is not None else 100, max_iter=200)
        clf.fit(feats(xtr), ytr)
        return clf.score(feats(xte), yte)

    kw = {"n_components": 100, "learning_rate": 0.06, "n_iter": 10, "random_state": 0}
    threadpoolctl = pytest.importorskip("threadpoolctl")
    # One BLAS thread: on a shared 2-core machine lbfgs is ~100x slower oversubscribed.
    with threadpoolctl.threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs stops at max_iter, identically for all
        ours = accuracy(BernoulliRBM(**kw))
        theirs = accuracy(SkRBM(**kw))
        raw = accuracy(None)
    assert ours >= theirs - 0.01  # the peer's accuracy, same recipe
    assert ours >= raw + 0.05  # clearly beats raw pixels


def test_bad_inputs():
    x = binary_data()
    with pytest.warns(UserWarning, match=r"X has values in \[0, 2\], outside \[0, 1\]"):
        BernoulliRBM(2, n_iter=1).fit(x * 2)  # used as they are, as scikit-learn
    with pytest.raises(ValueError, match="X must be finite"):
        BernoulliRBM(2).fit(np.where(x > 0, np.nan, 0))
    with pytest.raises(ValueError, match="X must be 2-dimensional"):
        BernoulliRBM(2).fit(x[0])
    with pytest.raises(ValueError, match="n_components must be >= 1"):
        BernoulliRBM(0).fit(x)
    with pytest.raises(ValueError, match="k must be >= 1"):
        BernoulliRBM(2, k=0).fit(x)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        BernoulliRBM(2, learning_rate=-1).fit(x)
    with pytest.raises(TypeError, match="random_state must be None"):
        BernoulliRBM(2, random_state="a").fit(x)
    rbm = BernoulliRBM(2, n_iter=1, random_state=0).fit(x)
    with pytest.raises(
        ValueError, match="v has 3 features, but BernoulliRBM is expecting 6"
    ):
        rbm.gibbs(x[:, :3])
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\)"):
        rbm.transform(np.zeros((0, 6)))
    from fastml._base import NotFittedError

    with pytest.raises(NotFittedError):
        BernoulliRBM(2).transform(x)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernel_sigmoid_is_accurate(dtype):
    # oracle: 1 / (1 + exp(-a)) in long double (or float64 for float32), over the whole
    # range, including the saturated tails and the cut-off below exp(-708) / exp(-87)
    rng = np.random.default_rng(40)
    a = np.concatenate(
        [rng.uniform(-40, 40, 5000), rng.uniform(-800, 800, 2000),
         [0.0, -0.0, 1e-300, -1e-300, 36.0, -36.0, 700.0, -700.0, 1e4, -1e4]]
    )  # fmt: skip
    a = a.astype(dtype)
    exact = 1 / (1 + np.exp(-a.astype(np.longdouble)))
    eps = np.finfo(dtype).eps
    floor = 4e-308 if dtype == np.float64 else 2e-38  # the documented saturation
    for mod in builds("_rbm"):
        h = np.empty((a.size, 1), dtype=dtype)
        # h = sigmoid(v W^T + c) with W = [[1]], c = 0: the kernel's sigmoid of a
        mod.hidden_proba(np.ones((1, 1), dtype), np.zeros(1, dtype), a[:, None], h)
        big = exact > floor
        rel = np.abs(h[big, 0] - exact[big]) / exact[big]
        assert rel.max() <= 4 * eps, (mod.__name__, rel.max() / eps)
        assert (h[~big, 0] <= floor).all() and (h[:, 0] >= 0).all()
