"""Reliability: Ctrl-C in long compiled loops, overflow and alignment guards,
divergence checks, convergence on the parameters."""

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

# ---- Ctrl-C ----------------------------------------------------------------------------
#
# Each family runs a call that takes many seconds uninterrupted in a subprocess. The
# child prints "ready" just before the call; the parent sends SIGINT 0.5 s later and
# requires the child to report KeyboardInterrupt within 1 s (the child prints "finished"
# if the call ever returns, which fails the test). All children run at the same time, so
# the whole family set costs about one child's start-up plus a second.

_SETUP = {
    "mh": """
        from fastml.sampling import MultivariateNormal, metropolis_hastings
        t = MultivariateNormal(np.zeros(3), np.eye(3))
        call = lambda: metropolis_hastings(t, np.zeros(3), 10**9, random_state=0)
    """,
    "mh-threads": """
        from fastml.sampling import MultivariateNormal, metropolis_hastings
        t = MultivariateNormal(np.zeros(3), np.eye(3))
        call = lambda: metropolis_hastings(
            t, np.zeros(3), 10**5, thin=10**4, n_chains=2, n_jobs=2, random_state=0)
    """,
    "hmc": """
        from fastml.sampling import MultivariateNormal, hmc
        t = MultivariateNormal(np.zeros(3), np.eye(3))
        call = lambda: hmc(t, np.zeros(3), 10**3, step_size=0.3, n_leapfrog=10,
                           thin=10**6, random_state=0)
    """,
    "gibbs": """
        from fastml.sampling import MultivariateNormal, gibbs_sampler
        t = MultivariateNormal(np.zeros(3), np.eye(3))
        call = lambda: gibbs_sampler(t, np.zeros(3), 10**3, thin=10**6, random_state=0)
    """,
    "grid-bp": """
        from fastml.graphical import PairwiseMRF
        u = np.random.default_rng(0).standard_normal((64, 64, 4))
        mrf = PairwiseMRF.potts(u, 0.5)
        call = lambda: mrf.loopy_belief_propagation(max_iter=10**7, tol=0.0)
    """,
    "factor-graph-bp": """
        from fastml.graphical import FactorGraph
        g = FactorGraph([2] * 400)
        r = np.random.default_rng(0)
        for i in range(400):
            g.add_factor([i, (i + 1) % 400], np.exp(r.standard_normal((2, 2))))
            g.add_factor([i, (i + 7) % 400], np.exp(r.standard_normal((2, 2))))
        call = lambda: g.loopy_belief_propagation(max_iter=10**8, tol=0.0)
    """,
    "variance-bias": """
        from fastml.stats import variance_bias
        call = lambda: variance_bias(1000, n_trials=10**8, random_state=0)
    """,
    "sampler-fill": """
        from fastml.sampling import gamma
        call = lambda: gamma(0.5, size=3 * 10**7, random_state=0)
    """,
    "sampler-rows": """
        from fastml.sampling import multivariate_normal
        cov = np.eye(1000)
        call = lambda: multivariate_normal(np.zeros(1000), cov, size=2 * 10**4,
                                           random_state=0)
    """,
    "hmm": """
        from fastml.hmm import GaussianHMM
        m = GaussianHMM(8, covariance_type="diag")
        m.startprob_ = np.full(8, 1 / 8)
        m.transmat_ = np.full((8, 8), 1 / 8)
        m.means_ = np.arange(8.0)[:, None]
        m.covars_ = np.ones((8, 1))
        X = np.zeros((2 * 10**6, 1))
        call = lambda: m.decode(X, algorithm="viterbi")
    """,
    "lda": """
        from fastml.lda import LatentDirichletAllocation
        X = np.random.default_rng(0).poisson(1.0, (2000, 500))
        lda = LatentDirichletAllocation(20, method="gibbs", max_iter=10**6,
                                        random_state=0)
        call = lambda: lda.fit(X)
    """,
    "gmm": """
        from fastml.mixture import GaussianMixture
        X = np.random.default_rng(0).standard_normal((4 * 10**5, 8))
        gm = GaussianMixture(16, max_iter=10**6, tol=0.0, init_params="random",
                             random_state=0)
        call = lambda: gm.fit(X)
    """,
    "kalman": """
        from fastml.lds import KalmanFilter
        n = 60
        kf = KalmanFilter(np.eye(n), np.eye(n), 0.1 * np.eye(n), np.eye(n))
        Y = np.random.default_rng(0).standard_normal((2000, n))
        call = lambda: kf.filter(Y)
    """,
    "rbm": """
        from fastml.rbm import BernoulliRBM
        X = (np.random.default_rng(0).random((2000, 256)) < 0.5).astype(float)
        rbm = BernoulliRBM(512, n_iter=10**6, random_state=0)
        call = lambda: rbm.fit(X)
    """,
    "conv": """
        from fastml.nn import MaxPool2d
        x = np.random.default_rng(0).standard_normal((1, 1, 1500, 1500))
        call = lambda: MaxPool2d(100, stride=1).forward(x)
    """,
}

_CHILD = """
import os, signal, threading
# A parent started in the background of a shell ignores SIGINT and so would the child:
# install Python's own handler (KeyboardInterrupt), the one a terminal session has.
signal.signal(signal.SIGINT, signal.default_int_handler)
watchdog = threading.Timer(120, os._exit, (3,))  # never outlive a lost parent
watchdog.daemon = True
watchdog.start()
import numpy as np
{setup}
print("ready", flush=True)
try:
    call()
except KeyboardInterrupt:
    print("interrupted", flush=True)
else:
    print("finished", flush=True)
"""


def _readline(p, timeout):
    """The child's next stdout line, or "" after ``timeout`` seconds."""
    if not select.select([p.stdout], [], [], timeout)[0]:
        return ""
    return p.stdout.readline().strip()


def _interrupt_one(p):
    try:
        line = _readline(p, 60)
        if line != "ready":
            p.kill()
            return f"no ready: {line!r} {p.communicate()[1][-2000:]}", None
        time.sleep(0.5)
        sent = time.perf_counter()
        p.send_signal(signal.SIGINT)
        line = _readline(p, 5)
        return line, time.perf_counter() - sent
    finally:
        p.kill()
        p.communicate()


def _interrupt_all():
    """Start every family's child, send SIGINT 0.5 s after its "ready", and return
    {family: (first line after ready, seconds from SIGINT to that line)}."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    procs = {}
    for name, setup in _SETUP.items():
        code = _CHILD.format(setup=textwrap.dedent(setup))
        procs[name] = subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    with ThreadPoolExecutor(len(procs)) as pool:
        return dict(zip(procs, pool.map(_interrupt_one, procs.values()), strict=True))


@pytest.fixture(scope="module")
def interrupted():
    return _interrupt_all()


@pytest.mark.parametrize("family", sorted(_SETUP))
def test_ctrl_c_interrupts_within_a_second(interrupted, family):
    line, seconds = interrupted[family]
    assert line == "interrupted", line
    assert seconds < 1.0, seconds


# ---- MCMC iteration count overflow ------------------------------------------------------


@pytest.mark.parametrize("sampler", ["mh", "hmc", "gibbs"])
@pytest.mark.parametrize(
    "counts",
    [
        dict(n_samples=10, thin=2**62),
        dict(n_samples=2, burn_in=2**63 - 2),
        dict(n_samples=2**62, thin=2),
    ],
)
def test_mcmc_iteration_count_overflow_is_refused(sampler, counts):
    from fastml.sampling import (
        MultivariateNormal,
        gibbs_sampler,
        hmc,
        metropolis_hastings,
    )

    t = MultivariateNormal(np.zeros(2), np.eye(2))
    run = {
        "mh": lambda: metropolis_hastings(t, np.zeros(2), **counts),
        "hmc": lambda: hmc(t, np.zeros(2), step_size=0.1, n_leapfrog=2, **counts),
        "gibbs": lambda: gibbs_sampler(t, np.zeros(2), **counts),
    }[sampler]
    with pytest.raises(ValueError, match="burn_in \\+ n_samples \\* thin"):
        run()


def test_mcmc_largest_iteration_count_is_accepted():
    # burn_in + n_samples * thin = 2**63 - 1 exactly fits (the bound is not off by one);
    # only the validation runs, not the chain.
    from fastml.sampling._mcmc import _chain_setup

    _, n, b, th, _ = _chain_setup(np.zeros(2), 1, 2**63 - 2, 1, 1, 2)
    assert b + n * th == np.iinfo(np.intp).max


# ---- NaN through the AVX2 sigmoid -------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rbm_transform_nan_weight_gives_nan_in_every_build(monkeypatch, dtype):
    from scipy.special import expit

    import fastml.rbm
    from fastml._kernels import builds

    X = (np.random.default_rng(0).random((20, 6)) < 0.5).astype(dtype)
    rbm = fastml.rbm.BernoulliRBM(5, n_iter=2, random_state=0).fit(X)
    rbm.components_[0, 0] = np.nan
    rbm.components_[1, 2] = -np.nan  # a NaN with the sign bit set
    want = expit(
        X.astype(float) @ rbm.components_.T.astype(float) + rbm.intercept_hidden_
    )
    for mod in builds("_rbm"):
        monkeypatch.setattr(fastml.rbm, "_rbm", mod)
        h = rbm.transform(X)
        assert np.isnan(h[:, :2]).all(), mod.__name__
        tol = 1e-12 if dtype == np.float64 else 1e-6
        np.testing.assert_allclose(h[:, 2:], want[:, 2:], rtol=tol, atol=tol)


# ---- unaligned arrays never reach a kernel ----------------------------------------------


def _unaligned(a):
    """A C-contiguous copy of ``a`` at an odd address (np.frombuffer at offset 1)."""
    a = np.ascontiguousarray(a)
    buf = bytearray(a.nbytes + 1)
    u = np.frombuffer(buf, dtype=a.dtype, offset=1, count=a.size).reshape(a.shape)
    u[...] = a
    assert not u.flags.aligned
    return u


def _spy_alignment(monkeypatch, name):
    """Wrap every function of each build of kernel module ``name`` so that it records
    the names of functions that received an unaligned array."""
    from fastml._kernels import builds

    bad = []
    for mod in builds(name):
        for attr in dir(mod):
            fn = getattr(mod, attr)
            if attr.startswith("_") or not callable(fn) or isinstance(fn, type):
                continue

            def spy(*args, _fn=fn, _attr=attr):
                if any(isinstance(a, np.ndarray) and not a.flags.aligned for a in args):
                    bad.append(_attr)
                return _fn(*args)

            monkeypatch.setattr(mod, attr, spy)
    return bad


def test_unaligned_inputs_are_copied_before_the_kernels(monkeypatch):
    from fastml.hmm import CategoricalHMM, GaussianHMM
    from fastml.losses import softmax_cross_entropy, squared_error
    from fastml.mixture import GaussianMixture
    from fastml.stats import variance

    r = np.random.default_rng(0)
    x = r.standard_normal((200, 3))
    bad = {
        n: _spy_alignment(monkeypatch, n) for n in ("_stats", "_losses", "_gmm", "_hmm")
    }

    assert variance(_unaligned(x), axis=0).tolist() == variance(x, axis=0).tolist()
    labels = r.integers(0, 3, 200)
    got = softmax_cross_entropy(_unaligned(x), _unaligned(labels))
    assert got.loss == softmax_cross_entropy(x, labels).loss
    assert (
        squared_error(_unaligned(x), _unaligned(x + 1)).loss
        == squared_error(x, x + 1).loss
    )
    gm = GaussianMixture(2, random_state=0, max_iter=5).fit(_unaligned(x))
    assert gm.score(_unaligned(x)) == GaussianMixture(
        2, random_state=0, max_iter=5
    ).fit(x).score(x)
    hm = GaussianHMM(2, random_state=0, n_iter=3).fit(_unaligned(x))
    assert hm.score(_unaligned(x)) == hm.score(x)
    sym = r.integers(0, 4, (300, 1))
    ch = CategoricalHMM(2, n_features=4, random_state=0, n_iter=3).fit(_unaligned(sym))
    assert ch.score(_unaligned(sym)) == ch.score(sym)
    assert bad == {"_stats": [], "_losses": [], "_gmm": [], "_hmm": []}


@pytest.mark.parametrize("draw", ["standard_normal", "standard_exponential"])
def test_unaligned_out_is_refused(draw):
    import fastml.sampling as S

    out = _unaligned(np.zeros(10))
    with pytest.raises(ValueError, match="out must be aligned"):
        getattr(S, draw)(out=out, random_state=0)
    assert (out == 0).all()  # nothing written


# ---- conv geometry ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "geometry, name",
    [
        (dict(stride=2**62), "stride"),
        (dict(padding=2**62), "padding"),
        (dict(stride=2**62, padding=2**61), "stride"),
        (dict(kernel_size=2**62), "kernel_size"),
        (dict(kernel_size=(2, 2**31)), "kernel_size"),
    ],
)
def test_conv_geometry_beyond_32_bits_is_refused(geometry, name):
    from fastml.nn import Conv2d, MaxPool2d, conv2d_forward, im2col

    x = np.ones((1, 1, 4, 4))
    g = dict(kernel_size=2) | geometry
    with pytest.raises(ValueError, match=name):
        im2col(x, **g)
    k = g.pop("kernel_size")
    with pytest.raises(ValueError, match=name):
        Conv2d(1, 1, k, **g)
    if isinstance(k, int) and k < 2**31:
        with pytest.raises(ValueError, match=name):
            conv2d_forward(x, np.ones((1, 1, k, k)), **g)
    if "padding" not in g:
        with pytest.raises(ValueError, match=name):
            MaxPool2d(k, **g)


def test_conv_geometry_at_the_32_bit_bound_is_accepted():
    from fastml.nn import im2col

    x = np.arange(16.0).reshape(1, 1, 4, 4)
    cols = im2col(x, 2, stride=2**31 - 1)  # one window: the top-left 2 x 2 block
    assert cols[0, :, 0].tolist() == [0.0, 1.0, 4.0, 5.0]


# ---- LDA token counters -----------------------------------------------------------------


def test_lda_gibbs_token_total_must_fit_32_bit_counters():
    from fastml.lda import LatentDirichletAllocation, check_counts

    with pytest.raises(ValueError, match="2\\*\\*31"):
        LatentDirichletAllocation(2, method="gibbs").fit(np.array([[3e9, 1.0]]))
    with pytest.raises(ValueError, match="2147483648 tokens"):
        check_counts(np.array([[2**31 - 1, 1]]), integer=True)
    csr = check_counts(np.array([[2**31 - 2, 1]]), integer=True)  # the largest total
    assert csr.sum() == 2**31 - 1
    # the variational method has no token counters: the same counts are fine there
    assert check_counts(np.array([[3e9, 1.0]])).sum() == 3e9 + 1


# ---- divergence -------------------------------------------------------------------------


def test_check_diverged_names_the_parameter_and_the_remedy():
    from fastml._validation import check_diverged
    from fastml.mixture import GaussianMixture

    gm = GaussianMixture()
    check_diverged(gm, 3, "do X", a=np.ones(3), b=1.0)  # finite: no error
    with pytest.raises(
        ValueError,
        match=r"GaussianMixture diverged: b became .* "
        r"at iteration 3; do X",
    ):
        check_diverged(gm, 3, "do X", a=np.ones(3), b=np.array([1.0, np.inf]))


def test_gaussian_bernoulli_rbm_divergence_is_an_error():
    from fastml.rbm import GaussianBernoulliRBM

    X = np.random.default_rng(0).standard_normal((100, 5))
    with pytest.raises(ValueError, match=r"diverged: .* lower learning_rate"):
        GaussianBernoulliRBM(8, learning_rate=10.0, n_iter=20, random_state=0).fit(X)
    ok = GaussianBernoulliRBM(8, learning_rate=0.01, n_iter=20, random_state=0).fit(X)
    assert np.isfinite(ok.components_).all()


# ---- convergence on the parameters ------------------------------------------------------


@pytest.mark.parametrize("n, scale", [(10, 1.0), (1000, 0.5), (100_000, 3.0)])
def test_univariate_gaussian_vi_reaches_the_fixed_point(n, scale):
    from fastml.variational import UnivariateGaussianVI

    mu0, l0, a0, b0 = 0.5, 2.0, 1.5, 0.7
    x = np.random.default_rng(n).normal(2.0, scale, n)
    vi = UnivariateGaussianVI(mu0, l0, a0, b0).fit(x)
    # Closed-form fixed point of PRML eqs. 10.26-10.30 (see the class Notes).
    xbar = x.mean()
    mu_n = (l0 * mu0 + n * xbar) / (l0 + n)
    a_n = a0 + 0.5 * (n + 1)
    s = ((x - mu_n) ** 2).sum() + l0 * (mu_n - mu0) ** 2
    b_n = (b0 + 0.5 * s) / (1.0 - 1.0 / (2.0 * a_n))
    lam_n = (l0 + n) * a_n / b_n
    assert vi.converged_
    assert abs(vi.b_N_ - b_n) <= 1e-10 * b_n
    assert abs(vi.lambda_N_ - lam_n) <= 1e-10 * lam_n
    assert abs(vi.mu_N_ - mu_n) <= 1e-12 * abs(mu_n)
