import numpy as np
import pytest
import scipy.special
import scipy.stats

from fastml.losses import (
    binary_cross_entropy,
    kl_categorical,
    kl_gaussian,
    softmax_cross_entropy,
    squared_error,
)

RNG = np.random.default_rng(0)


def fd_grad(f, x, h=1e-6):
    """Central finite differences of the scalar f at x (float64)."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        g[idx] = (f(xp) - f(xm)) / (2 * h)
    return g


def problems():
    n, k, c = 7, 3, 5
    w = RNG.uniform(0.1, 2.0, n)
    return {
        "mse": (
            lambda p, **kw: squared_error(p, y_reg, **kw),
            RNG.standard_normal((n, k)),
        ),
        "gauss": (
            lambda p, **kw: squared_error(p, y_reg, variance=var, **kw),
            RNG.standard_normal((n, k)),
        ),
        "bce": (
            lambda z, **kw: binary_cross_entropy(z, y_bin, **kw),
            3 * RNG.standard_normal((n, k)),
        ),
        "bce1d": (
            lambda z, **kw: binary_cross_entropy(z, y_bin[:, 0], **kw),
            RNG.standard_normal(n),
        ),
        "ce_idx": (
            lambda z, **kw: softmax_cross_entropy(z, y_idx, **kw),
            3 * RNG.standard_normal((n, c)),
        ),
        "ce_prob": (
            lambda z, **kw: softmax_cross_entropy(z, y_prob, **kw),
            RNG.standard_normal((n, c)),
        ),
    }, w


y_reg = RNG.standard_normal((7, 3))
var = RNG.uniform(0.5, 2.0, (7, 3))
y_bin = RNG.uniform(0, 1, (7, 3))
y_idx = RNG.integers(0, 5, 7)
y_prob = RNG.dirichlet(np.ones(5), 7)
PROBLEMS, W = problems()


@pytest.mark.parametrize("name", list(PROBLEMS))
@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_matches_finite_differences(name, weighted):
    fn, x = PROBLEMS[name]
    kw = {"sample_weight": W} if weighted else {}
    grad = fn(x, **kw).grad
    assert grad.shape == x.shape and grad.dtype == x.dtype
    np.testing.assert_allclose(
        grad, fd_grad(lambda v: fn(v, **kw).loss, x), rtol=1e-6, atol=1e-9
    )


def torch_losses(name, x, weighted):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    w = torch.tensor(W, dtype=torch.float64)
    if name == "mse":
        per = F.mse_loss(t, torch.tensor(y_reg), reduction="none").mean(1)
    elif name == "gauss":
        per = F.gaussian_nll_loss(
            t,
            torch.tensor(y_reg),
            torch.tensor(var),
            full=True,
            eps=0.0,
            reduction="none",
        ).mean(1)
    elif name == "bce":
        per = F.binary_cross_entropy_with_logits(
            t, torch.tensor(y_bin), reduction="none"
        ).mean(1)
    elif name == "bce1d":
        per = F.binary_cross_entropy_with_logits(
            t, torch.tensor(y_bin[:, 0]), reduction="none"
        )
    elif name == "ce_idx":
        per = F.cross_entropy(t, torch.tensor(y_idx), reduction="none")
    else:
        per = F.cross_entropy(t, torch.tensor(y_prob), reduction="none")
    loss = (per * w).sum() / w.sum() if weighted else per.mean()
    loss.backward()
    return loss.item(), t.grad.numpy()


@pytest.mark.parametrize("name", list(PROBLEMS))
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_torch_float64(name, weighted):
    fn, x = PROBLEMS[name]
    ref_loss, ref_grad = torch_losses(name, x, weighted)  # oracle: torch autograd
    loss, grad = fn(x, **({"sample_weight": W} if weighted else {}))
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_float32_path(name):
    fn, x = PROBLEMS[name]
    loss64, grad64 = fn(x)
    loss32, grad32 = fn(x.astype(np.float32))
    assert grad32.dtype == np.float32
    # float32 predictions run the float32 kernel (targets converted); tolerance set by
    # float32 rounding of inputs and stored gradients: 1e-5 relative on the loss.
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    np.testing.assert_allclose(grad32, grad64, rtol=1e-4, atol=1e-6)


def test_float32_kernel_when_all_inputs_float32():
    z = RNG.standard_normal((50, 4)).astype(np.float32)
    y = RNG.uniform(0, 1, (50, 4)).astype(np.float32)
    loss, grad = binary_cross_entropy(z, y)
    assert grad.dtype == np.float32
    ref_loss, ref_grad = binary_cross_entropy(
        z.astype(np.float64), y.astype(np.float64)
    )
    assert loss == pytest.approx(
        ref_loss, rel=1e-6
    )  # double accumulator, float32 storage
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_are_exact_and_finite(dtype):
    z = np.array([1e4, -1e4, 1e4, -1e4], dtype=dtype)
    y = np.array([0.0, 1.0, 1.0, 0.0], dtype=dtype)
    loss, grad = binary_cross_entropy(z, y)
    assert loss == pytest.approx(
        (1e4 + 1e4 + 0 + 0) / 4, rel=1e-12
    )  # closed form: |z| when wrong
    np.testing.assert_array_equal(grad, np.array([1, -1, 0, 0], dtype) / 4)
    zc = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype=dtype)
    loss, grad = softmax_cross_entropy(zc, np.array([1, 2]))
    assert loss == pytest.approx((2e4 + np.log(3)) / 2, rel=1e-7)  # closed form
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(
        grad, np.array([[1, -1, 0], [1 / 3, 1 / 3, -2 / 3]]) / 2, atol=1e-7
    )


def test_softmax_ce_equals_independent_formula():
    z = RNG.standard_normal((20, 6))
    y = RNG.integers(0, 6, 20)
    ref = np.mean(
        scipy.special.logsumexp(z, axis=1) - z[np.arange(20), y]
    )  # oracle: scipy
    assert softmax_cross_entropy(z, y).loss == pytest.approx(ref, rel=1e-13)
    onehot = np.eye(6)[y]
    assert softmax_cross_entropy(z, onehot).loss == pytest.approx(ref, rel=1e-13)


def test_gaussian_nll_is_scaled_squared_error_plus_constant():
    p, t = RNG.standard_normal(30), RNG.standard_normal(30)
    s2 = 0.7
    nll = squared_error(p, t, variance=s2).loss
    mse = squared_error(p, t).loss
    assert nll == pytest.approx(
        mse / (2 * s2) + 0.5 * np.log(2 * np.pi * s2), rel=1e-14
    )
    ref = -np.mean(scipy.stats.norm(p, np.sqrt(s2)).logpdf(t))  # oracle: scipy.stats
    assert nll == pytest.approx(ref, rel=1e-13)


@pytest.mark.parametrize(
    "call,err,msg",
    [
        (
            lambda: squared_error([1.0, 2.0], [1.0]),
            ValueError,
            "y_true must have the shape",
        ),
        (lambda: squared_error([], []), ValueError, "y_pred must not be empty"),
        (
            lambda: squared_error(np.ones((2, 2, 2)), np.ones((2, 2, 2))),
            ValueError,
            "y_pred must be 1 or 2",
        ),
        (lambda: squared_error([np.nan], [1.0]), ValueError, "y_pred must be finite"),
        (
            lambda: squared_error([1.0], [1.0], variance=0.0),
            ValueError,
            "variance must be positive",
        ),
        (
            lambda: squared_error([1.0, 2.0], [1.0, 2.0], variance=[1.0, 2.0, 3.0]),
            ValueError,
            "broadcast",
        ),
        (
            lambda: squared_error(["a"], [1.0]),
            TypeError,
            "y_pred must have a real numeric dtype",
        ),
        (
            lambda: binary_cross_entropy([0.0], [1.5]),
            ValueError,
            r"y must lie in \[0, 1\]",
        ),
        (
            lambda: binary_cross_entropy([np.inf], [1.0]),
            ValueError,
            "logits must be finite",
        ),
        (
            lambda: binary_cross_entropy([0.0, 1.0], [1.0, 0.0], sample_weight=[1.0]),
            ValueError,
            "sample_weight",
        ),
        (
            lambda: binary_cross_entropy([0.0], [1.0], sample_weight=[-1.0]),
            ValueError,
            "non-negative",
        ),
        (
            lambda: softmax_cross_entropy(np.zeros(3), [0]),
            ValueError,
            "logits must be 2-dimensional",
        ),
        (
            lambda: softmax_cross_entropy(np.zeros((2, 3)), [0, 3]),
            ValueError,
            r"lie in \[0, 3\)",
        ),
        (
            lambda: softmax_cross_entropy(np.zeros((2, 3)), [0, -1]),
            ValueError,
            r"lie in \[0, 3\)",
        ),
        (
            lambda: softmax_cross_entropy(np.zeros((2, 3)), [0]),
            ValueError,
            r"shape \(2,\)",
        ),
        (
            lambda: softmax_cross_entropy(np.zeros((2, 3)), [0.0, 1.0]),
            ValueError,
            "integer class indices",
        ),
        (
            lambda: softmax_cross_entropy(np.zeros((1, 2)), [[0.5, 0.6]]),
            ValueError,
            "rows must sum to 1",
        ),
        (
            lambda: softmax_cross_entropy(np.zeros((1, 2)), [[1.5, -0.5]]),
            ValueError,
            "non-negative",
        ),
        (
            lambda: softmax_cross_entropy(np.zeros((1, 2)), [[1.0, 0.0, 0.0]]),
            ValueError,
            "must have shape",
        ),
    ],
)
def test_bad_input(call, err, msg):
    with pytest.raises(err, match=msg):
        call()


def test_kl_categorical_against_scipy():
    p = RNG.dirichlet(np.ones(6), 10)
    q = RNG.dirichlet(np.ones(6), 10)
    ref = scipy.stats.entropy(p, q, axis=1)  # oracle: scipy.stats.entropy(p, q)
    np.testing.assert_allclose(kl_categorical(p, q), ref, rtol=1e-12)
    assert kl_categorical([0.0, 1.0], [0.5, 0.5]) == pytest.approx(
        np.log(2)
    )  # 0 log 0 = 0
    assert kl_categorical([0.5, 0.5], [1.0, 0.0]) == np.inf
    assert kl_categorical(p[0], p[0]) == 0.0
    np.testing.assert_allclose(kl_categorical(p.T, q.T, axis=0), ref, rtol=1e-12)


@pytest.mark.parametrize(
    "p,q,msg",
    [
        ([0.5, 0.6], [0.5, 0.5], "p must sum to 1"),
        ([1.5, -0.5], [0.5, 0.5], "p must be non-negative"),
        ([0.5, 0.5], [0.5, 0.5, 0.0], "do not broadcast"),
        ([0.5, np.nan], [0.5, 0.5], "p must be finite"),
        (0.5, 0.5, "at least one dimension"),
    ],
)
def test_kl_categorical_bad_input(p, q, msg):
    with pytest.raises(ValueError, match=msg):
        kl_categorical(p, q)


def random_spd(d, rng, cond=50.0):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * np.geomspace(1, cond, d)) @ q.T


def test_kl_gaussian_against_explicit_formula_and_monte_carlo():
    rng = np.random.default_rng(1)
    d = 4
    m0, m1 = rng.standard_normal(d), rng.standard_normal(d)
    s0, s1 = random_spd(d, rng), random_spd(d, rng)
    kl = kl_gaussian(m0, s0, m1, s1)
    inv1 = np.linalg.inv(
        s1
    )  # independent textbook formula with explicit inverse/slogdet
    ref = 0.5 * (
        np.trace(inv1 @ s0)
        + (m1 - m0) @ inv1 @ (m1 - m0)
        - d
        + np.linalg.slogdet(s1)[1]
        - np.linalg.slogdet(s0)[1]
    )
    assert kl == pytest.approx(ref, rel=1e-10)
    # Monte Carlo: E_0[log N0(x) - log N1(x)], 4e5 draws; |error| < 5 standard errors
    # (two-sided false-alarm rate about 6e-7).
    x = rng.multivariate_normal(m0, s0, size=400_000)
    diff = scipy.stats.multivariate_normal(m0, s0).logpdf(
        x
    ) - scipy.stats.multivariate_normal(m1, s1).logpdf(x)
    assert abs(diff.mean() - kl) < 5 * diff.std() / np.sqrt(len(x))
    assert kl_gaussian(m0, s0, m0, s0) == pytest.approx(0.0, abs=1e-12)
    assert kl_gaussian([0.0], 1.0, [1.0], 2.0) == pytest.approx(
        0.5 * (0.5 + 0.5 - 1 + np.log(2))
    )


@pytest.mark.parametrize(
    "args,msg",
    [
        (([0.0, 0.0], np.eye(2), [0.0], np.eye(2)), "mean1 must have shape"),
        (
            ([0.0, 0.0], np.eye(3), [0.0, 0.0], np.eye(2)),
            r"cov0 must have shape \(2, 2\)",
        ),
        (
            ([0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]], [0.0, 0.0], np.eye(2)),
            "cov0 must be symmetric",
        ),
        (
            ([0.0, 0.0], np.eye(2), [0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]]),
            "cov1 must be positive definite",
        ),
        (([0.0, np.inf], np.eye(2), [0.0, 0.0], np.eye(2)), "mean0 must be finite"),
    ],
)
def test_kl_gaussian_bad_input(args, msg):
    with pytest.raises(ValueError, match=msg):
        kl_gaussian(*args)
