"""fastml.sampling vs numpy (and plain NumPy MCMC loops), side by side, one thread.

Every group holds fastml and its peer; all draw from PCG64. Ratios: peer mean time /
fastml mean time (for the MCMC groups both run the same number of iterations).

    python -m pytest bench/bench_sampling.py --benchmark-only
"""

import threading
import time

import numpy as np
import pytest

from fastml import sampling as S

N = 1_000_000


def _gen(seed=0):
    return np.random.Generator(np.random.PCG64(seed))


# ---- direct samplers: fastml writes into out=, numpy too (no allocation timed) ----


@pytest.mark.parametrize("impl", ["fastml", "numpy"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def bench_standard_normal(benchmark, impl, dtype):
    benchmark.group = f"standard_normal-ziggurat-{dtype}-1e6"
    benchmark.extra_info.update(n=N, dtype=dtype, bitgen="PCG64")
    g = _gen()
    out = np.empty(N, dtype=dtype)
    if impl == "fastml":
        benchmark(S.standard_normal, out=out, dtype=dtype, random_state=g)
    else:
        benchmark(g.standard_normal, out=out, dtype=dtype)
    assert abs(float(out.mean())) < 0.01


@pytest.mark.parametrize("impl", ["fastml", "numpy"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def bench_standard_exponential(benchmark, impl, dtype):
    benchmark.group = f"standard_exponential-ziggurat-{dtype}-1e6"
    benchmark.extra_info.update(n=N, dtype=dtype, bitgen="PCG64")
    g = _gen()
    out = np.empty(N, dtype=dtype)
    if impl == "fastml":
        benchmark(S.standard_exponential, out=out, dtype=dtype, random_state=g)
    else:
        benchmark(g.standard_exponential, out=out, dtype=dtype)
    assert abs(float(out.mean()) - 1) < 0.01


@pytest.mark.parametrize("impl", ["fastml-box-muller", "fastml-polar", "numpy-legacy"])
def bench_normal_classic_methods(benchmark, impl):
    """Box-Muller and polar vs numpy's legacy RandomState.standard_normal (polar)."""
    benchmark.group = "standard_normal-classic-float64-1e6"
    benchmark.extra_info.update(n=N, dtype="float64", bitgen="PCG64")
    if impl == "numpy-legacy":
        rs = np.random.RandomState(np.random.PCG64(0))
        x = benchmark(rs.standard_normal, N)
    else:
        g = _gen()
        out = np.empty(N)
        method = impl.removeprefix("fastml-")
        benchmark(S.standard_normal, out=out, method=method, random_state=g)
        x = out
    assert abs(float(x.mean())) < 0.01


# ---- MCMC on a 10-d (and 100-d) correlated Gaussian -------------------------------


def _gauss(d, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    cov = q @ np.diag(np.logspace(-1, 1, d)) @ q.T
    return np.linspace(-1, 1, d), 0.5 * (cov + cov.T)


def _numpy_mh(mean, cov, n_steps, seed):
    """The same random-walk MH as a plain per-step NumPy loop (the peer)."""
    rng = _gen(seed)
    d = mean.shape[0]
    w = np.linalg.inv(np.linalg.cholesky(cov))
    a = (2.38 / np.sqrt(d)) * np.linalg.cholesky(cov)
    x = np.zeros(d)
    r = w @ (x - mean)
    lpx = -0.5 * r @ r
    out = np.empty((n_steps, d))
    for t in range(n_steps):
        y = x + a @ rng.standard_normal(d)
        r = w @ (y - mean)
        lpy = -0.5 * r @ r
        if np.log(rng.random()) < lpy - lpx:
            x, lpx = y, lpy
        out[t] = x
    return out


def _numpy_hmc(mean, cov, n_iter, eps, n_leapfrog, seed):
    """The same HMC as a plain per-step NumPy loop (the peer)."""
    rng = _gen(seed)
    d = mean.shape[0]
    prec = np.linalg.inv(cov)
    x = np.zeros(d)
    g = -prec @ (x - mean)
    lpx = 0.5 * (x - mean) @ g
    out = np.empty((n_iter, d))
    for t in range(n_iter):
        p = rng.standard_normal(d)
        h0 = -lpx + 0.5 * p @ p
        xn = x.copy()
        pn = p + 0.5 * eps * g
        for step in range(n_leapfrog):
            xn = xn + eps * pn
            gn = -prec @ (xn - mean)
            if step < n_leapfrog - 1:
                pn = pn + eps * gn
        pn = pn + 0.5 * eps * gn
        lpn = 0.5 * (xn - mean) @ gn
        if np.log(rng.random()) < h0 - (-lpn + 0.5 * pn @ pn):
            x, g, lpx = xn, gn, lpn
        out[t] = x
    return out


MH_STEPS = 20_000


@pytest.mark.parametrize("impl", ["fastml", "numpy-loop"])
def bench_mh_d10(benchmark, impl):
    benchmark.group = f"mh-mvn-d10-{MH_STEPS}-steps"
    benchmark.extra_info.update(d=10, steps=MH_STEPS)
    mean, cov = _gauss(10)
    if impl == "fastml":
        t = S.MultivariateNormal(mean, cov)
        fn = lambda: S.metropolis_hastings(  # noqa: E731
            t, np.zeros(10), MH_STEPS, proposal_cov=cov, random_state=0
        ).samples[0]
    else:
        fn = lambda: _numpy_mh(mean, cov, MH_STEPS, 0)  # noqa: E731
    x = benchmark.pedantic(fn, rounds=3 if impl == "numpy-loop" else 20)
    benchmark.extra_info["steps_per_s"] = MH_STEPS / benchmark.stats.stats.mean
    assert x.shape == (MH_STEPS, 10)


def bench_mh_d10_throughput(benchmark):
    """Long compiled chain: steps per second of MultivariateNormal MH at d = 10."""
    benchmark.group = "mh-mvn-d10-throughput"
    n = 2_000_000
    mean, cov = _gauss(10)
    t = S.MultivariateNormal(mean, cov)
    r = benchmark.pedantic(
        lambda: S.metropolis_hastings(
            t, np.zeros(10), n, proposal_cov=cov, random_state=0
        ),
        rounds=5,
    )
    benchmark.extra_info.update(d=10, steps=n)
    benchmark.extra_info["steps_per_s"] = n / benchmark.stats.stats.mean
    assert 0.1 < r.acceptance_rate[0] < 0.5


@pytest.mark.parametrize("d", [10, 100])
@pytest.mark.parametrize("impl", ["fastml", "numpy-loop"])
def bench_hmc(benchmark, impl, d):
    n_iter = 2000 if d == 10 else 500
    benchmark.group = f"hmc-mvn-d{d}-L10-{n_iter}-iterations"
    benchmark.extra_info.update(d=d, iterations=n_iter, n_leapfrog=10)
    mean, cov = _gauss(d)
    eps = 0.1
    if impl == "fastml":
        t = S.MultivariateNormal(mean, cov)
        fn = lambda: S.hmc(  # noqa: E731
            t, np.zeros(d), n_iter, step_size=eps, n_leapfrog=10, random_state=0
        ).samples[0]
    else:
        fn = lambda: _numpy_hmc(mean, cov, n_iter, eps, 10, 0)  # noqa: E731
    x = benchmark.pedantic(fn, rounds=3 if impl == "numpy-loop" else 20)
    benchmark.extra_info["iterations_per_s"] = n_iter / benchmark.stats.stats.mean
    assert x.shape == (n_iter, d)


# ---- two threads, own Generators ------------------------------------------------


@pytest.mark.parametrize("impl", ["1-thread", "2-threads"])
def bench_two_threads(benchmark, impl):
    """2 x 1e7 ziggurat normals: sequentially in one thread vs one each in two threads
    with their own Generators (the kernel releases the GIL)."""
    benchmark.group = "standard_normal-2x1e7-threads"
    n = 10_000_000
    outs = [np.empty(n), np.empty(n)]
    gens = [_gen(1), _gen(2)]

    def one(k):
        S.standard_normal(out=outs[k], random_state=gens[k])

    def sequential():
        one(0)
        one(1)

    def parallel():
        ts = [threading.Thread(target=one, args=(k,)) for k in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    fn = sequential if impl == "1-thread" else parallel
    clock = {"cpu": 0.0, "wall": 0.0}

    def timed_fn():
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        clock["cpu"] += time.process_time() - c0
        clock["wall"] += time.perf_counter() - w0

    benchmark.extra_info.update(n=2 * n, python_threads=2 if impl == "2-threads" else 1)
    benchmark.pedantic(timed_fn, rounds=5, warmup_rounds=1)
    # CPU seconds per wall second: ~2 when both threads really ran at once (GIL
    # released and two free cores), ~1 when serialised
    benchmark.extra_info["cpu_per_wall"] = clock["cpu"] / clock["wall"]
    assert abs(float(outs[1].mean())) < 0.01
