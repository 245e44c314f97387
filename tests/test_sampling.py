"""Tests of fastml.sampling: distributions, reproducibility, threads, bad input.

Every statistical test uses a fixed seed and states its false-alarm rate (the chance
that a correct sampler fails it for a random seed). With fixed seeds the outcome is
deterministic; the rates say how surprising a failure after a change would be.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
from scipy import special, stats

from fastml import sampling as S

R_NOR = 3.6541528853610087716  # base-strip edge of the 256-layer normal ziggurat
R_EXP = 7.6971174701310497140  # ... of the exponential ziggurat
N_BIG = 10_000_000
ALPHA = 1e-3  # per-test false-alarm rate of the KS / chi-square / binomial tests

NORMAL_CASES = [
    (m, dt)
    for m in ("ziggurat", "box-muller", "polar")
    for dt in (np.float64, np.float32)
]
EXP_CASES = [
    (m, dt) for m in ("ziggurat", "inversion") for dt in (np.float64, np.float32)
]


def _ks_sorted(xs: np.ndarray, cdf) -> float:
    """p-value of the one-sample KS test for already sorted data ``xs``."""
    n = xs.shape[0]
    f = cdf(xs.astype(np.float64))
    i = np.arange(1, n + 1) / n
    d = max(float((i - f).max()), float((f - (i - 1.0 / n)).max()))
    return float(stats.kstwo.sf(d, n))


def _chi2_equiprobable(xs: np.ndarray, ppf, bins: int = 1000) -> float:
    """p-value of Pearson's chi-square on ``bins`` equiprobable cells (xs sorted)."""
    edges = ppf(np.arange(1, bins) / bins)
    idx = np.searchsorted(xs, edges)
    counts = np.diff(np.concatenate(([0], idx, [xs.shape[0]])))
    return float(stats.chisquare(counts).pvalue)


def _binom_two_sided(k: int, n: int, p: float) -> float:
    return float(stats.binomtest(k, n, p).pvalue)


# ---- normal: KS, chi-square, tail, moments on 10^7 draws ------------------------


@pytest.mark.parametrize(("method", "dtype"), NORMAL_CASES)
def test_standard_normal_distribution_1e7(method, dtype):
    x = S.standard_normal(N_BIG, method=method, dtype=dtype, random_state=20260101)
    assert x.dtype == dtype and x.shape == (N_BIG,)
    assert np.isfinite(x).all()
    # moments: mean, variance, skewness, excess kurtosis within 5 standard errors
    # (false alarm 4 x 5.7e-7); SEs of N(0,1) sample moments: 1, sqrt2, sqrt6, sqrt24
    x64 = x.astype(np.float64)
    se = 1 / np.sqrt(N_BIG)
    assert abs(x64.mean()) < 5 * se
    assert abs(x64.var() - 1) < 5 * np.sqrt(2) * se
    assert abs(stats.skew(x64)) < 5 * np.sqrt(6) * se
    assert abs(stats.kurtosis(x64)) < 5 * np.sqrt(24) * se
    del x64
    xs = np.sort(x)
    # KS against Phi, alpha = 1e-3
    assert _ks_sorted(xs, special.ndtr) > ALPHA
    # chi-square on 1000 equiprobable cells, alpha = 1e-3
    assert _chi2_equiprobable(xs, special.ndtri) > ALPHA
    # tail mass beyond the ziggurat's r: two-sided binomial test, alpha = 1e-3
    p_tail = 2 * special.ndtr(-R_NOR)
    tail = np.abs(xs[(xs > R_NOR) | (xs < -R_NOR)].astype(np.float64))
    assert _binom_two_sided(tail.shape[0], N_BIG, p_tail) > ALPHA
    # tail draws follow the truncated normal |Z| given |Z| > r: KS, alpha = 1e-3
    tail.sort()
    pval = _ks_sorted(
        tail, lambda t: (special.ndtr(t) - special.ndtr(R_NOR)) / special.ndtr(-R_NOR)
    )
    assert pval > ALPHA
    # both signs of the tail: binomial(1/2), alpha = 1e-3
    n_pos = int((xs > R_NOR).sum())
    assert _binom_two_sided(n_pos, tail.shape[0], 0.5) > ALPHA


def test_normal_far_tail_ziggurat():
    # 4e7 float64 draws: the tail algorithm reaches beyond 5 sigma. The count beyond 5
    # is Poisson(23): two-sided binomial test, alpha = 1e-3.
    x = S.standard_normal(40_000_000, random_state=7)
    k = int((np.abs(x) > 5).sum())
    assert _binom_two_sided(k, x.shape[0], 2 * special.ndtr(-5.0)) > ALPHA
    assert np.abs(x).max() < 8.0  # P(max |Z| > 8) over 4e7 draws ~ 5e-8


# ---- exponential ----------------------------------------------------------------


@pytest.mark.parametrize(("method", "dtype"), EXP_CASES)
def test_standard_exponential_distribution_1e7(method, dtype):
    x = S.standard_exponential(N_BIG, method=method, dtype=dtype, random_state=31)
    assert x.dtype == dtype and (x >= 0).all() and np.isfinite(x).all()
    # mean and variance of Exp(1) within 5 SE (false alarm 2 x 5.7e-7);
    # SE(mean) = 1/sqrt(n), SE(var) = sqrt(8/n) (fourth central moment 9)
    x64 = x.astype(np.float64)
    assert abs(x64.mean() - 1) < 5 / np.sqrt(N_BIG)
    assert abs(x64.var() - 1) < 5 * np.sqrt(8 / N_BIG)
    del x64
    xs = np.sort(x)
    # KS and chi-square (1000 equiprobable cells), alpha = 1e-3 each
    assert _ks_sorted(xs, lambda t: -np.expm1(-t)) > ALPHA
    assert _chi2_equiprobable(xs, lambda q: -np.log1p(-q)) > ALPHA
    # tail beyond the ziggurat's r: mass (binomial) and shape (x - r ~ Exp(1) by
    # memorylessness, KS), alpha = 1e-3 each
    tail = xs[xs > R_EXP].astype(np.float64) - R_EXP
    assert _binom_two_sided(tail.shape[0], N_BIG, np.exp(-R_EXP)) > ALPHA
    assert _ks_sorted(tail, lambda t: -np.expm1(-t)) > ALPHA


def test_scaled_normal_and_exponential():
    # sample mean within 5 SE, false alarm 5.7e-7 each
    n = 200_000
    x = S.normal(3.0, 2.0, n, random_state=1)
    assert abs(x.mean() - 3.0) < 5 * 2 / np.sqrt(n)
    e = S.exponential(0.5, n, random_state=2)
    assert abs(e.mean() - 0.5) < 5 * 0.5 / np.sqrt(n)
    b = S.normal([0.0, 100.0], [1.0, 0.0], (n, 2), random_state=3)
    assert (b[:, 1] == 100.0).all() and abs(b[:, 0].mean()) < 5 / np.sqrt(n)
    x32 = S.normal(1.0, 2.0, 10, dtype=np.float32, random_state=0)
    assert x32.dtype == np.float32
    assert isinstance(S.normal(random_state=0), np.float64)
    assert isinstance(
        S.standard_exponential(dtype=np.float32, random_state=0), np.float32
    )


# ---- reproducibility and stream continuation ------------------------------------

ALL_DRAWS = [
    ("normal", m, dt)
    for m in ("ziggurat", "box-muller", "polar")
    for dt in ("f8", "f4")
] + [("exp", m, dt) for m in ("ziggurat", "inversion") for dt in ("f8", "f4")]


def _draw(kind, method, dtype, n, rs):
    fn = S.standard_normal if kind == "normal" else S.standard_exponential
    return fn(n, method=method, dtype=np.dtype(dtype), random_state=rs)


@pytest.mark.parametrize(("kind", "method", "dtype"), ALL_DRAWS)
def test_bit_reproducible_and_stream_continues(kind, method, dtype):
    a = _draw(kind, method, dtype, 10_000, 123)
    b = _draw(kind, method, dtype, 10_000, 123)
    c = _draw(kind, method, dtype, 10_000, 124)
    assert a.tobytes() == b.tobytes()  # same seed: identical bits
    assert (a != c).mean() > 0.99  # different seeds: different values
    # drawing advances the caller's Generator: two calls = one call of twice the size
    g = np.random.default_rng(99)
    first = _draw(kind, method, dtype, 5000, g)
    second = _draw(kind, method, dtype, 5000, g)
    whole = _draw(kind, method, dtype, 10_000, 99)
    assert np.concatenate([first, second]).tobytes() == whole.tobytes()
    assert g.random() != np.random.default_rng(99).random()


def test_uniform_consumption_is_exact():
    # inverse_cdf consumes exactly one 64-bit word per value: afterwards the Generator
    # continues where random_raw would have
    g = np.random.default_rng(5)
    S.inverse_cdf(lambda u: u, 1000, random_state=g)
    ref = np.random.default_rng(5)
    ref.bit_generator.random_raw(1000)
    assert g.bit_generator.random_raw() == ref.bit_generator.random_raw()


def _reference_ziggurat_normal(raw: np.ndarray, n: int) -> np.ndarray:
    """Oracle: the documented algorithm in plain Python on the raw 64-bit words.

    Tables re-derived here in float64 from r by the layer recursion (independently of
    tools/gen_ziggurat_tables.py); next_double of PCG64 is (word >> 11) * 2^-53.
    """
    r = R_NOR

    def f(t):
        return math.exp(-0.5 * t * t)

    v = r * f(r) + math.sqrt(math.pi / 2) * math.erfc(r / math.sqrt(2))
    xs = [0.0] * 256
    xs[255] = r
    for i in range(255, 1, -1):
        xs[i - 1] = math.sqrt(-2 * math.log(v / xs[i] + f(xs[i])))
    fx = [1.0] + [f(xs[i]) for i in range(1, 256)]
    w = [v / f(r) / 2.0**52] + [xs[i] / 2.0**52 for i in range(1, 256)]
    kf = [r * f(r) / v, 0.0] + [xs[i - 1] / xs[i] for i in range(2, 256)]
    words = iter(int(b) for b in raw)

    def next_double():
        return (next(words) >> 11) * 2.0**-53

    out = []
    while len(out) < n:
        b = next(words)
        i = b & 255
        j = (b - (1 << 64) if b >= 1 << 63 else b) >> 11
        x = j * w[i]
        if abs(j) / 2.0**52 < kf[i]:
            out.append(x)
        elif i == 0:
            while True:
                xx = -math.log(1.0 - next_double()) / r
                yy = -math.log(1.0 - next_double())
                if yy + yy > xx * xx:
                    out.append(-(r + xx) if j < 0 else r + xx)
                    break
        elif fx[i] + next_double() * (fx[i - 1] - fx[i]) < f(x):
            out.append(x)
    return np.array(out)


def test_ziggurat_matches_reference_algorithm():
    # 20000 values (about 130 slow-path draws, a few tail draws) against the oracle
    n = 20_000
    raw = np.random.default_rng(11).bit_generator.random_raw(2 * n)
    x = S.standard_normal(n, random_state=11)
    ref = _reference_ziggurat_normal(raw, n)
    np.testing.assert_allclose(x, ref, rtol=1e-12, atol=0)
    assert (np.abs(x) > R_NOR).sum() >= 1  # the tail branch was exercised


def _reference_ziggurat_normal_f32(raw: np.ndarray, n: int) -> np.ndarray:
    """Oracle for the float32 path: 32-bit draws (PCG64 serves the low then the high
    half of each 64-bit word), layer i = b & 255, j = (int32) b >> 8 (sign + 23 bits),
    tables re-derived in float64 and rounded to float32, float32 arithmetic."""
    r = R_NOR

    def f(t):
        return math.exp(-0.5 * t * t)

    v = r * f(r) + math.sqrt(math.pi / 2) * math.erfc(r / math.sqrt(2))
    xs = [0.0] * 256
    xs[255] = r
    for i in range(255, 1, -1):
        xs[i - 1] = math.sqrt(-2 * math.log(v / xs[i] + f(xs[i])))
    f32 = np.float32
    fx = [f32(1.0)] + [f32(f(xs[i])) for i in range(1, 256)]
    w = [f32(v / f(r) / 2.0**23)] + [f32(xs[i] / 2.0**23) for i in range(1, 256)]
    k = [math.floor(2.0**23 * r * f(r) / v), 0]
    k += [math.floor(2.0**23 * xs[i - 1] / xs[i]) for i in range(2, 256)]
    halves = []
    for word in raw:
        halves += [int(word) & 0xFFFFFFFF, int(word) >> 32]
    words = iter(halves)

    def open_float():
        return f32(((next(words) >> 8) + 1) * 2.0**-24)

    def next_float():
        return f32((next(words) >> 8) * 2.0**-24)

    out = []
    while len(out) < n:
        b = next(words)
        i = b & 255
        j = (b - (1 << 32) if b >= 1 << 31 else b) >> 8
        x = f32(j) * w[i]
        if abs(j) < k[i]:
            out.append(x)
        elif i == 0:
            while True:
                xx = -f32(1 / r) * np.log(open_float())
                yy = -np.log(open_float())
                if yy + yy > xx * xx:
                    out.append(-(f32(r) + xx) if j < 0 else f32(r) + xx)
                    break
        elif fx[i] + next_float() * (fx[i - 1] - fx[i]) < np.exp(f32(-0.5) * x * x):
            out.append(x)
    return np.array(out, dtype=np.float32)


def test_ziggurat_float32_matches_reference_algorithm():
    n = 20_000
    raw = np.random.default_rng(13).bit_generator.random_raw(n)
    x = S.standard_normal(n, dtype=np.float32, random_state=13)
    ref = _reference_ziggurat_normal_f32(raw, n)
    np.testing.assert_allclose(x, ref, rtol=3.6e-7, atol=0)  # 3 ulp: table rounding


def test_exponential_ziggurat_matches_reference_algorithm():
    # Oracle: the documented float64 layout in plain Python: layer i = b & 255,
    # m = b >> 11 (53 bits), x = m w_i, fast accept m < k_i, wedge test against e^-x,
    # base layer -> r + a fresh Exp(1) (memorylessness); tables re-derived from r.
    r = R_EXP
    v = (r + 1) * math.exp(-r)
    xs = [0.0] * 256
    xs[255] = r
    for i in range(255, 1, -1):
        xs[i - 1] = -math.log(v / xs[i] + math.exp(-xs[i]))
    fx = [1.0] + [math.exp(-xs[i]) for i in range(1, 256)]
    w = [v / math.exp(-r) / 2.0**53] + [xs[i] / 2.0**53 for i in range(1, 256)]
    kf = [r * math.exp(-r) / v, 0.0] + [xs[i - 1] / xs[i] for i in range(2, 256)]
    n = 20_000
    words = iter(
        int(b) for b in np.random.default_rng(14).bit_generator.random_raw(2 * n)
    )
    ref = []
    while len(ref) < n:
        shift = 0.0
        while True:
            b = next(words)
            i, m = b & 255, b >> 11
            x = m * w[i]
            if m / 2.0**53 < kf[i]:
                ref.append(shift + x)
                break
            if i == 0:
                shift += r
            elif fx[i] + (next(words) >> 11) * 2.0**-53 * (
                fx[i - 1] - fx[i]
            ) < math.exp(-x):
                ref.append(shift + x)
                break
    e = S.standard_exponential(n, random_state=14)
    np.testing.assert_allclose(e, ref, rtol=1e-12, atol=0)


def test_box_muller_matches_reference():
    # Oracle: the documented draw layout with numpy's cos/sin. Pair k uses word 2k for
    # the radius (next_double) and word 2k+1 for the angle: t = (pi/4) (w >> 11) 2^-53,
    # bit 0 swaps (cos t, sin t), bits 1 and 2 flip the signs.
    n = 20_000
    raw = np.random.default_rng(12).bit_generator.random_raw(n)
    x = S.standard_normal(n, method="box-muller", random_state=12)
    w1, w2 = raw[0::2], raw[1::2]
    rad = np.sqrt(-2 * np.log(1 - (w1 >> np.uint64(11)) * 2.0**-53))
    t = (w2 >> np.uint64(11)) * 2.0**-53 * (np.pi / 4)
    c, s = np.cos(t), np.sin(t)
    swap = (w2 & np.uint64(1)).astype(bool)
    a0 = np.where(swap, s, c) * np.where(w2 & np.uint64(2), -1, 1)
    a1 = np.where(swap, c, s) * np.where(w2 & np.uint64(4), -1, 1)
    ref = np.empty(n)
    ref[0::2], ref[1::2] = rad * a0, rad * a1
    np.testing.assert_allclose(x, ref, rtol=4e-16 * 8, atol=1e-300)


# ---- gamma, Dirichlet, MVN, inverse CDF ------------------------------------------


@pytest.mark.parametrize("shape", [0.05, 0.3, 1.0, 2.5, 40.0])
def test_gamma_vs_scipy(shape):
    x = S.gamma(shape, 2.0, 200_000, random_state=int(shape * 100))
    assert (x >= 0).all() and np.isfinite(x).all()
    # KS vs scipy.stats.gamma(shape, scale=2), alpha = 1e-3
    assert stats.kstest(x, stats.gamma(shape, scale=2.0).cdf).pvalue > ALPHA


def test_dirichlet_marginals_vs_scipy_beta():
    alpha = np.array([0.3, 1.0, 2.5, 7.0])
    p = S.dirichlet(alpha, 100_000, random_state=8)
    assert p.shape == (100_000, 4)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    for k in range(4):
        # marginal p_k ~ Beta(alpha_k, sum - alpha_k): KS, alpha = 1e-3 each
        ref = stats.beta(alpha[k], alpha.sum() - alpha[k])
        assert stats.kstest(p[:, k], ref.cdf).pvalue > ALPHA


def test_dirichlet_tiny_alpha_never_nan():
    p = S.dirichlet([1e-3, 1e-3, 1e-3], 10_000, random_state=0)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)


def test_multivariate_normal_moments():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 5))
    cov = a @ a.T + 0.1 * np.eye(5)
    mean = np.arange(5.0)
    n = 400_000
    x = S.multivariate_normal(mean, cov, n, random_state=1)
    assert x.shape == (n, 5)
    sd = np.sqrt(np.diag(cov))
    # mean within 5 SE (false alarm 5 x 5.7e-7); covariance entries within 5 SE,
    # SE(S_ij) = sqrt((S_ii S_jj + S_ij^2) / n)
    assert (np.abs(x.mean(axis=0) - mean) < 5 * sd / np.sqrt(n)).all()
    se = np.sqrt((np.outer(sd**2, sd**2) + cov**2) / n)
    assert (np.abs(np.cov(x.T) - cov) < 5 * se).all()
    # a singular PSD covariance (rank 1) falls back to the eigen-factor
    y = S.multivariate_normal(
        [0.0, 0.0], [[1.0, 1.0], [1.0, 1.0]], 1000, random_state=2
    )
    np.testing.assert_allclose(y[:, 0], y[:, 1], atol=1e-12)
    assert S.multivariate_normal(mean, cov, random_state=3).shape == (5,)


def test_inverse_cdf_with_scipy_frozen():
    dist = stats.gamma(2.0, scale=3.0)
    x = S.inverse_cdf(dist.ppf, 100_000, random_state=4)
    assert stats.kstest(x, dist.cdf).pvalue > ALPHA  # KS, alpha = 1e-3
    assert S.inverse_cdf(dist.ppf, (3, 2), random_state=4).shape == (3, 2)


# ---- categorical / alias tables ---------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3, 17, 1000])
def test_alias_table_reconstructs_probabilities(k):
    rng = np.random.default_rng(k)
    p = rng.random(k) ** 3
    p[rng.random(k) < 0.2] = 0.0
    if p.sum() == 0:
        p[0] = 1.0
    p /= p.sum()
    t = S.AliasTable(p)
    assert ((t.prob >= 0) & (t.prob <= 1)).all()
    assert ((t.alias >= 0) & (t.alias < k)).all()
    np.testing.assert_allclose(t.probabilities(), p, rtol=0, atol=1e-14)  # exact oracle


def test_categorical_counts_chi_square():
    p = np.array([0.0, 0.05, 0.1, 0.15, 0.2, 0.0, 0.25, 0.25])
    n = 1_000_000
    c = S.categorical(p, n, random_state=6)
    counts = np.bincount(c, minlength=p.size)
    assert counts[p == 0].sum() == 0  # zero-probability categories never drawn
    # Pearson chi-square on the positive categories, alpha = 1e-3
    pos = p > 0
    assert stats.chisquare(counts[pos], n * p[pos]).pvalue > ALPHA
    t = S.AliasTable(p)
    assert (
        S.categorical(t, 5, random_state=0).tolist()
        == t.sample(5, random_state=0).tolist()
    )
    assert isinstance(S.categorical(p, random_state=0), int)


# ---- threads ------------------------------------------------------------------------


def test_two_threads_share_one_generator_without_overlap():
    # Each call holds bit_generator.lock, so the blocks drawn by two threads are
    # consecutive blocks of the single-thread stream, in some interleaving.
    block, n_blocks = 50_000, 20
    g = np.random.default_rng(77)
    got: list[bytes] = []
    lock = threading.Lock()

    def work():
        for _ in range(n_blocks):
            b = S.standard_normal(block, random_state=g)
            with lock:
                got.append(b.tobytes())

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ref_g = np.random.default_rng(77)
    ref = [S.standard_normal(block, random_state=ref_g).tobytes() for _ in range(40)]
    assert sorted(got) == sorted(ref)


def test_two_threads_own_generators_match_single_thread():
    # Threads with their own Generators draw exactly what each would draw alone.
    results = [None, None]

    def work(k):
        results[k] = S.standard_normal(2_000_000, random_state=np.random.default_rng(k))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(2):
        ref = S.standard_normal(2_000_000, random_state=np.random.default_rng(k))
        assert results[k].tobytes() == ref.tobytes()


def test_kernel_releases_the_gil():
    # While one thread draws 3e7 normals in the kernel, the main thread keeps running
    # Python code: that is only possible if the kernel released the GIL.
    done = threading.Event()

    def work():
        S.standard_normal(30_000_000, random_state=np.random.default_rng(1))
        done.set()

    t = threading.Thread(target=work)
    t.start()
    time.sleep(0.01)
    spins = 0
    while not done.is_set():
        spins += 1
    t.join()
    assert spins > 1000


# ---- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: S.standard_normal(-1), ValueError, "size must be >= 0"),
        (lambda: S.standard_normal(2.5), TypeError, "size must be"),
        (lambda: S.standard_normal((2, -3)), ValueError, "size must be >= 0"),
        (lambda: S.standard_normal("10"), TypeError, "size must be"),
        (lambda: S.standard_normal(3, method="fast"), ValueError, "method must be"),
        (lambda: S.standard_normal(3, dtype=np.int32), TypeError, "dtype must be"),
        (
            lambda: S.standard_normal(3, out=np.empty(3, np.float32)),
            TypeError,
            "out must",
        ),
        (lambda: S.standard_normal(4, out=np.empty(3)), ValueError, "out has shape"),
        (lambda: S.standard_normal(out=np.empty(6)[::2]), ValueError, "C-contiguous"),
        (lambda: S.standard_normal(out=[0.0, 0.0]), TypeError, "out must be a numpy"),
        (lambda: S.standard_normal(3, random_state="x"), TypeError, "random_state"),
        (lambda: S.normal(0, -1.0, 3), ValueError, "scale must be >= 0"),
        (lambda: S.normal(0, np.inf, 3), ValueError, "scale must be finite"),
        (lambda: S.normal(np.nan, 1.0, 3), ValueError, "loc must be finite"),
        (lambda: S.normal([0, 0], [1, 1, 1]), ValueError, "do not broadcast"),
        (lambda: S.exponential(-2.0, 3), ValueError, "scale must be >= 0"),
        (lambda: S.exponential(np.nan, 3), ValueError, "scale must be finite"),
        (lambda: S.gamma(0.0, 1.0, 3), ValueError, "shape must be > 0"),
        (lambda: S.gamma(1.0, -1.0, 3), ValueError, "scale must be > 0"),
        (lambda: S.dirichlet([1.0, -1.0]), ValueError, "alpha must be > 0"),
        (lambda: S.dirichlet([[1.0]]), ValueError, "alpha must be 1-dimensional"),
        (lambda: S.categorical([0.5, 0.6]), ValueError, "p must sum to 1"),
        (lambda: S.categorical([1.5, -0.5]), ValueError, "p must be non-negative"),
        (lambda: S.categorical([np.nan, 1.0]), ValueError, "p must be finite"),
        (lambda: S.categorical([]), ValueError, "p must not be empty"),
        (
            lambda: S.multivariate_normal([0, 0], [[1, 2], [2, 1]]),
            ValueError,
            "cov must be positive semi-definite",
        ),
        (
            lambda: S.multivariate_normal([0, 0], [[1, 0.5], [0, 1]]),
            ValueError,
            "cov must be symmetric",
        ),
        (
            lambda: S.multivariate_normal([0, 0], np.eye(3)),
            ValueError,
            "cov must have shape",
        ),
        (lambda: S.inverse_cdf(3.0, 2), TypeError, "ppf must be callable"),
        (
            lambda: S.inverse_cdf(lambda u: u[:1], 2),
            ValueError,
            "ppf must be vectorised",
        ),
        (
            lambda: S.inverse_cdf(lambda u: u * np.nan, 2),
            ValueError,
            "ppf returned NaN",
        ),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_empty_and_zero_size():
    assert S.standard_normal(0, random_state=0).shape == (0,)
    assert S.standard_normal((3, 0), method="polar", random_state=0).shape == (3, 0)
    assert S.gamma(2.0, size=0, random_state=0).shape == (0,)
    assert S.categorical([1.0], 4, random_state=0).tolist() == [0, 0, 0, 0]


# ---- MCMC ---------------------------------------------------------------------------


def _gauss10():
    """A 10-d correlated Gaussian, condition number 120 (eigenvalues 0.083 .. 10)."""
    rng = np.random.default_rng(2024)
    q, _ = np.linalg.qr(rng.standard_normal((10, 10)))
    cov = q @ np.diag(np.logspace(-1.08, 1, 10)) @ q.T
    cov = 0.5 * (cov + cov.T)
    mean = np.linspace(-2.0, 2.0, 10)
    assert np.linalg.cond(cov) >= 100
    return mean, cov


def _ess_1d(series: np.ndarray) -> np.ndarray:
    """ESS of each column of (n_chains, n, k) series, via MCMCResult's estimator."""
    return S.MCMCResult(series, np.ones(series.shape[0]), "x").effective_sample_size()


def _assert_within_mc_error(result, mean, cov, z=5.0):
    """Sample mean and covariance within z Monte-Carlo standard errors, SEs from ESS.

    Mean: SE_i = sd_i / sqrt(ESS_i). Covariance entry (i, j): SE = sd of the product
    series (x_i - m_i)(x_j - m_j) / sqrt(its own ESS), on chains thinned to <= 20000
    draws each. With z = 5 each comparison has false-alarm rate 5.7e-7 (normal
    approximation), 65 comparisons: < 4e-5 per call.
    """
    x = result.samples
    ess = result.effective_sample_size()
    assert (ess > 100).all(), ess
    se = np.sqrt(np.diag(cov) / ess)
    err = np.abs(x.reshape(-1, x.shape[2]).mean(axis=0) - mean)
    assert (err < z * se).all(), (err / se).max()
    step = max(1, x.shape[1] // 20_000)
    xt = x[:, ::step]
    dev = xt - mean
    iu = np.triu_indices(x.shape[2])
    prod = dev[..., iu[0]] * dev[..., iu[1]]
    ess_p = _ess_1d(prod)
    se_p = prod.reshape(-1, prod.shape[2]).std(axis=0) / np.sqrt(ess_p)
    err_p = np.abs(prod.reshape(-1, prod.shape[2]).mean(axis=0) - cov[iu])
    assert (err_p < z * se_p).all(), (err_p / se_p).max()


class PyGauss:
    """The same Gaussian as a plain Python target (generic path)."""

    def __init__(self, mean, cov):
        self.mean, self.prec = mean, np.linalg.inv(cov)

    def log_prob(self, x):
        r = x - self.mean
        return -0.5 * r @ self.prec @ r

    def grad_log_prob(self, x):
        return -self.prec @ (x - self.mean)


def test_mh_compiled_gaussian_10d():
    mean, cov = _gauss10()
    t = S.MultivariateNormal(mean, cov)
    r = S.metropolis_hastings(
        t, np.zeros(10), 100_000, proposal_cov=cov, burn_in=2000, n_chains=2,
        random_state=1,
    )  # fmt: skip
    assert r.samples.shape == (2, 100_000, 10)
    assert ((r.acceptance_rate > 0.15) & (r.acceptance_rate < 0.45)).all()
    _assert_within_mc_error(r, mean, cov)
    assert (r.rhat() < 1.01).all()


def test_hmc_compiled_gaussian_10d():
    mean, cov = _gauss10()
    t = S.MultivariateNormal(mean, cov)
    r = S.hmc(
        t, np.zeros(10), 20_000, step_size=0.15, n_leapfrog=10, burn_in=200,
        n_chains=2, random_state=2,
    )  # fmt: skip
    assert (r.acceptance_rate > 0.8).all()
    _assert_within_mc_error(r, mean, cov)
    assert (r.rhat() < 1.01).all()


def test_gibbs_compiled_gaussian_10d():
    mean, cov = _gauss10()
    t = S.MultivariateNormal(mean, cov)
    r = S.gibbs_sampler(t, np.zeros(10), 100_000, burn_in=200, random_state=3)
    assert (r.acceptance_rate == 1).all()
    _assert_within_mc_error(r, mean, cov)


def test_generic_paths_agree_with_compiled():
    # The generic path draws the same numbers in the same order, so the chains agree
    # up to rounding in log p (oracle: the compiled chain); and in distribution.
    mean, cov = _gauss10()
    t, g = S.MultivariateNormal(mean, cov), PyGauss(mean, cov)
    x0 = np.zeros(10)
    rc = S.metropolis_hastings(t, x0, 5000, proposal_cov=cov, random_state=4)
    rg = S.metropolis_hastings(g, x0, 5000, proposal_cov=cov, random_state=4)
    np.testing.assert_allclose(rg.samples, rc.samples, atol=1e-9)
    assert rg.acceptance_rate[0] == rc.acceptance_rate[0]
    rc = S.hmc(t, x0, 1000, step_size=0.15, n_leapfrog=10, random_state=5)
    rg = S.hmc(g, x0, 1000, step_size=0.15, n_leapfrog=10, random_state=5)
    np.testing.assert_allclose(rg.samples, rc.samples, atol=1e-9)
    # a callable log_prob with grad_log_prob= works too
    rf = S.hmc(g.log_prob, x0, 1000, step_size=0.15, n_leapfrog=10,
               grad_log_prob=g.grad_log_prob, random_state=5)  # fmt: skip
    np.testing.assert_allclose(rf.samples, rc.samples, atol=1e-9)


def test_generic_equals_compiled_above_blas_threshold():
    # d = 40 takes the BLAS branch (dtrmv / dsymv) of the compiled kernels; oracle: the
    # generic path with numpy linear algebra on the same random numbers
    rng = np.random.default_rng(40)
    a = rng.standard_normal((40, 40))
    cov = a @ a.T / 40 + 0.5 * np.eye(40)
    mean = rng.standard_normal(40)
    t, g = S.MultivariateNormal(mean, cov), PyGauss(mean, cov)
    x0 = np.zeros(40)
    rc = S.metropolis_hastings(t, x0, 2000, proposal_cov=cov, random_state=1)
    rg = S.metropolis_hastings(g, x0, 2000, proposal_cov=cov, random_state=1)
    np.testing.assert_allclose(rg.samples, rc.samples, atol=1e-8)
    rc = S.hmc(t, x0, 300, step_size=0.1, n_leapfrog=8, random_state=2)
    rg = S.hmc(g, x0, 300, step_size=0.1, n_leapfrog=8, random_state=2)
    np.testing.assert_allclose(rg.samples, rc.samples, atol=1e-8)
    assert 0.05 < rc.acceptance_rate[0] <= 1


def test_generic_gibbs_matches_in_distribution():
    mean, cov = _gauss10()
    prec = np.linalg.inv(cov)

    def conditional(i):
        def sample(x, rng):
            m = (
                mean[i]
                - (prec[i] @ (x - mean) - prec[i, i] * (x[i] - mean[i])) / prec[i, i]
            )
            return m + rng.standard_normal() / np.sqrt(prec[i, i])

        return sample

    r = S.gibbs_sampler(
        [conditional(i) for i in range(10)], np.zeros(10), 15_000, burn_in=100,
        random_state=6,
    )  # fmt: skip
    _assert_within_mc_error(r, mean, cov)


def test_mcmc_reproducible_and_thread_count_free():
    mean, cov = _gauss10()
    t = S.MultivariateNormal(mean, cov)
    kw = dict(proposal_cov=cov, n_chains=3, random_state=7)
    a = S.metropolis_hastings(t, np.zeros(10), 2000, n_jobs=1, **kw)
    b = S.metropolis_hastings(t, np.zeros(10), 2000, n_jobs=3, **kw)
    assert a.samples.tobytes() == b.samples.tobytes()
    assert not np.array_equal(a.samples[0], a.samples[1])  # chains: own streams
    c = S.metropolis_hastings(t, np.zeros(10), 2000, proposal_cov=cov, random_state=8)
    assert not np.array_equal(a.samples[0], c.samples[0])
    h1 = S.hmc(t, np.zeros(10), 500, step_size=0.1, n_leapfrog=5, n_chains=2,
               n_jobs=2, random_state=9)  # fmt: skip
    h2 = S.hmc(t, np.zeros(10), 500, step_size=0.1, n_leapfrog=5, n_chains=2,
               random_state=9)  # fmt: skip
    assert h1.samples.tobytes() == h2.samples.tobytes()


def test_burn_in_and_thin_select_iterations():
    # thin=k keeps iterations k-1, 2k-1, ... after burn-in of one long chain
    mean, cov = _gauss10()
    t = S.MultivariateNormal(mean, cov)
    full = S.gibbs_sampler(t, np.zeros(10), 60, random_state=10).samples[0]
    part = S.gibbs_sampler(t, np.zeros(10), 10, burn_in=20, thin=4, random_state=10)
    np.testing.assert_array_equal(part.samples[0], full[20 + 3 :: 4])


def test_ess_of_ar1_and_rhat_detects_non_mixing():
    # AR(1) with phi = 0.8: integrated autocorrelation time (1 + phi)/(1 - phi) = 9,
    # ESS = n / 9. Estimator error at n = 2e5 is a few percent; allow 15 %.
    rng = np.random.default_rng(0)
    n, phi = 200_000, 0.8
    e = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = e[0]
    for i in range(1, n):
        x[i] = phi * x[i - 1] + np.sqrt(1 - phi * phi) * e[i]
    ess = _ess_1d(x.reshape(1, n, 1))[0]
    assert abs(ess / (n / 9) - 1) < 0.15
    iid = _ess_1d(rng.standard_normal((2, 50_000, 1)))[0]
    assert abs(iid / 100_000 - 1) < 0.1
    # chains stuck in different places: split R-hat far above 1
    t = S.MultivariateNormal(np.zeros(2), np.eye(2))
    r = S.metropolis_hastings(t, [[-20.0, -20.0], [20.0, 20.0]], 500, step_size=0.01,
                              n_chains=2, random_state=0)  # fmt: skip
    assert (r.rhat() > 1.5).all()
    with pytest.raises(ValueError, match="n_chains > 1"):
        S.metropolis_hastings(t, [0.0, 0.0], 10, random_state=0).rhat()


class NanTarget:
    def log_prob(self, x):
        return np.nan if x[0] > 0.5 else -0.5 * x @ x


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda t: S.metropolis_hastings(t, np.zeros(3), 10), ValueError,
         "x0 must have dimension 2"),
        (lambda t: S.hmc(t, np.zeros(3), 10, step_size=0.1, n_leapfrog=2), ValueError,
         "x0 must have dimension 2"),
        (lambda t: S.gibbs_sampler(t, np.zeros((3, 2)), 10, n_chains=2), ValueError,
         "x0 of shape"),
        (lambda t: S.metropolis_hastings(t, [0.0, np.nan], 10), ValueError,
         "x0 must be finite"),
        (lambda t: S.metropolis_hastings(t, [0.0, 0.0], 10, step_size=0.0), ValueError,
         "step_size must be > 0"),
        (lambda t: S.metropolis_hastings(t, [0.0, 0.0], 10, step_size=-1), ValueError,
         "step_size must be > 0"),
        (lambda t: S.hmc(t, [0.0, 0.0], 10, step_size=-0.1, n_leapfrog=3), ValueError,
         "step_size must be > 0"),
        (lambda t: S.hmc(t, [0.0, 0.0], 10, step_size=0.1, n_leapfrog=0), ValueError,
         "n_leapfrog must be >= 1"),
        (lambda t: S.hmc(t, [0.0, 0.0], 10, step_size=0.1, n_leapfrog=2, mass=[1, -1]),
         ValueError, "mass must be > 0"),
        (lambda t: S.metropolis_hastings(t, [0.0, 0.0], 0), ValueError,
         "n_samples must be >= 1"),
        (lambda t: S.metropolis_hastings(t, [0.0, 0.0], 1.5), TypeError,
         "n_samples must be an int"),
        (lambda t: S.metropolis_hastings(t, [0.0, 0.0], 5, thin=0), ValueError,
         "thin must be >= 1"),
        (lambda t: S.metropolis_hastings(t, [0.0, 0.0], 5, proposal_cov=[[1, 2], [2, 1]]),
         ValueError, "proposal_cov must be positive definite"),
        (lambda t: S.metropolis_hastings(NanTarget(), [0.0, 0.0], 500, random_state=0),
         ValueError, "log_prob returned nan"),
        (lambda t: S.metropolis_hastings(lambda x: x, [0.0, 0.0], 5), ValueError,
         "log_prob must return a scalar"),
        (lambda t: S.metropolis_hastings(lambda x: -np.inf, [0.0, 0.0], 5), ValueError,
         "zero target density"),
        (lambda t: S.metropolis_hastings(object(), [0.0, 0.0], 5), TypeError,
         "target must be"),
        (lambda t: S.hmc(lambda x: 0.0, [0.0, 0.0], 5, step_size=0.1, n_leapfrog=1),
         TypeError, "hmc needs a gradient"),
        (lambda t: S.hmc(t.log_prob, [0.0, 0.0], 5, step_size=0.1, n_leapfrog=1,
                         grad_log_prob=lambda x: x[:1]), ValueError,
         "grad_log_prob must return shape"),
        (lambda t: S.gibbs_sampler([lambda x, r: np.nan] * 2, [0.0, 0.0], 5),
         ValueError, "full conditional 0"),
        (lambda t: S.gibbs_sampler("x", [0.0, 0.0], 5), TypeError, "target must be"),
        (lambda t: S.MultivariateNormal([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]]),
         ValueError, "cov must be positive definite"),
        (lambda t: S.MultivariateNormal([0.0, 0.0], [[1.0, 0.0]]), ValueError,
         "cov must have shape"),
    ],
)  # fmt: skip
def test_mcmc_bad_input(call, exc, match):
    t = S.MultivariateNormal([0.0, 0.0], np.eye(2))
    with pytest.raises(exc, match=match):
        call(t)


# ---- generic Monte Carlo -------------------------------------------------------------

LOG_K_CAUCHY = np.log(2 * np.pi) - 0.5  # sup_z exp(-z^2/2) / Cauchy(z), at z = +-1


def test_rejection_sample_normal_from_cauchy():
    r = S.rejection_sample(
        lambda z: -0.5 * z * z, stats.cauchy(), LOG_K_CAUCHY, 100_000, random_state=0
    )
    assert r.samples.shape == (100_000,)
    # samples ~ N(0, 1): KS, alpha = 1e-3
    assert stats.kstest(r.samples, stats.norm.cdf).pvalue > ALPHA
    # acceptance rate = int p~ / k = sqrt(2 pi) e^{1/2} / (2 pi); binomial SE, 5 SE
    p_acc = np.exp(0.5) / np.sqrt(2 * np.pi)
    se = np.sqrt(p_acc * (1 - p_acc) / r.n_proposed)
    assert abs(r.acceptance_rate - p_acc) < 5 * se


def test_rejection_sample_multivariate_proposal():
    prop = stats.multivariate_normal(np.zeros(2), 4 * np.eye(2))
    # p~ = exp(-|z|^2 / 2) <= k q with log k = log(2 pi 4) (ratio max at z = 0)
    r = S.rejection_sample(
        lambda z: -0.5 * (z * z).sum(axis=1), prop, np.log(8 * np.pi), 20_000,
        random_state=1,
    )  # fmt: skip
    assert r.samples.shape == (20_000, 2)
    assert stats.kstest(r.samples[:, 0], stats.norm.cdf).pvalue > ALPHA  # alpha 1e-3


def test_rejection_sample_detects_violated_envelope():
    with pytest.raises(ValueError, match="envelope violated"):
        S.rejection_sample(
            lambda z: -0.5 * z * z, stats.cauchy(), LOG_K_CAUCHY - 0.2, 1000,
            random_state=0,
        )  # fmt: skip
    with pytest.raises(RuntimeError, match="max_tries"):
        S.rejection_sample(
            lambda z: -0.5 * z * z, stats.cauchy(), LOG_K_CAUCHY + 20, 10,
            random_state=0, max_tries=1000,
        )  # fmt: skip


def test_importance_sample_estimates():
    prop = stats.norm(0, 2)
    # E[z^2] = 1 under N(0, 1): self-normalised (p unnormalised) and plain (p
    # normalised), each within 5 standard errors (false alarm 5.7e-7)
    r = S.importance_sample(lambda z: z**2, lambda z: -0.5 * z**2, prop, 200_000,
                            random_state=2)  # fmt: skip
    assert abs(r.estimate - 1.0) < 5 * r.stderr
    assert r.weights.shape == (200_000,) and abs(r.weights.sum() - 1) < 1e-12
    # ESS of N(0,1) target / N(0,4) proposal: n / E_q[w^2] = n * sqrt(1 - 1/(2*4))...
    # exact: E_q[(p/q)^2] = 4 / sqrt(7), so ESS ~ n sqrt(7) / 4
    assert abs(r.ess / (200_000 * np.sqrt(7) / 4) - 1) < 0.02
    r2 = S.importance_sample(lambda z: z**2, stats.norm.logpdf, prop, 200_000,
                             random_state=2, self_normalized=False)  # fmt: skip
    assert abs(r2.estimate - 1.0) < 5 * r2.stderr
    rv = S.importance_sample(lambda z: np.stack([z, z**2], axis=1),
                             lambda z: -0.5 * z**2, prop, 100_000, random_state=3)  # fmt: skip
    assert (np.abs(rv.estimate - [0.0, 1.0]) < 5 * rv.stderr).all()


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: S.rejection_sample(3, stats.norm(), 0.0, 5), TypeError, "log_target"),
        (lambda: S.rejection_sample(np.sin, object(), 0.0, 5), TypeError, "proposal"),
        (lambda: S.rejection_sample(np.sin, stats.norm(), np.nan, 5), ValueError,
         "log_k must be finite"),
        (lambda: S.rejection_sample(np.sin, stats.norm(), 0.0, 0), ValueError,
         "size must be >= 1"),
        (lambda: S.rejection_sample(lambda z: z[:1], stats.norm(), 0.0, 5), ValueError,
         "log_target must be vectorised"),
        (lambda: S.rejection_sample(lambda z: z * np.nan, stats.norm(), 0.0, 5),
         ValueError, "log_target returned NaN"),
        (lambda: S.importance_sample(np.sin, np.sin, stats.norm(), 1), ValueError,
         "size must be >= 2"),
        (lambda: S.importance_sample(lambda z: z[:2], np.sin, stats.norm(), 10),
         ValueError, "f must be vectorised"),
        (lambda: S.importance_sample(np.sin, lambda z: np.full(z.shape, -np.inf), stats.norm(), 10),
         ValueError, "proposal does not cover"),
    ],
)  # fmt: skip
def test_generic_mc_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_hmc_divergent_trajectories_are_rejected_not_raised():
    # a huge step overflows the leapfrog trajectory: both paths reject every proposal
    t = S.MultivariateNormal(np.zeros(3), np.eye(3))
    g = PyGauss(np.zeros(3), np.eye(3))
    for eps in (50.0, 1e200):
        rc = S.hmc(t, np.zeros(3), 100, step_size=eps, n_leapfrog=20, random_state=1)
        rg = S.hmc(g, np.zeros(3), 100, step_size=eps, n_leapfrog=20, random_state=1)
        assert rc.acceptance_rate[0] == rg.acceptance_rate[0] == 0.0
        assert (rc.samples == 0).all() and (rg.samples == 0).all()
