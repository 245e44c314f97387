import math

import numpy as np
import pytest

from fastml.stats import RunningMoments, mean_variance, variance, variance_bias


def exact_var(x, ddof=0):
    """Independent oracle: exactly rounded sums (math.fsum) of the two-pass formula."""
    x = np.asarray(x, dtype=np.float64).ravel()
    shift = x[0]
    y = x - shift  # exact for data within a factor 2 of the shift (Sterbenz)
    m = math.fsum(y) / len(y)
    return math.fsum((y - m) ** 2) / (len(y) - ddof)


@pytest.fixture(scope="module")
def big():
    return np.random.default_rng(0).standard_normal(10_000_000)


def test_1e7_matches_numpy(big):
    assert variance(big) == pytest.approx(np.var(big), rel=1e-12)  # oracle: numpy.var
    assert variance(big, ddof=1) == pytest.approx(np.var(big, ddof=1), rel=1e-12)


def test_1e7_offset_1e9_is_exact(big):
    x = 1e9 + big
    ref = exact_var(x)  # oracle: fsum two-pass
    assert variance(x) == pytest.approx(ref, rel=1e-12)
    assert np.var(x) == pytest.approx(ref, rel=1e-12)  # numpy agrees on this flat case
    naive = np.mean(x * x) - np.mean(x) ** 2
    assert abs(naive - ref) / ref > 1e-2  # the textbook one-pass formula fails here


def test_mean(big):
    m, _ = mean_variance(1e9 + big[:100_000])
    assert m == pytest.approx(1e9 + math.fsum(big[:100_000]) / 100_000, rel=1e-15)


@pytest.mark.parametrize(
    "shape,axis",
    [
        ((1000, 300), 0),
        ((1000, 300), 1),
        ((7, 500, 3), 1),
        ((50001, 2), 0),
        ((4, 5, 6), (0, 2)),
        ((3, 4, 5), -1),
    ],
)
def test_axis_against_exact(shape, axis):
    rng = np.random.default_rng(1)
    x = 1e9 + rng.standard_normal(shape)
    got = variance(x, axis=axis, ddof=1)
    axes = (axis,) if isinstance(axis, int) else axis
    moved = np.moveaxis(x, axes, tuple(range(-len(axes), 0)))
    rows = moved.reshape(-1, int(np.prod([shape[a] for a in axes])))
    ref = np.array([exact_var(r, ddof=1) for r in rows]).reshape(got.shape)
    np.testing.assert_allclose(got, ref, rtol=1e-12)  # oracle: fsum two-pass per row
    m, _ = mean_variance(x, axis=axis)
    np.testing.assert_allclose(m, x.mean(axis=axis), rtol=1e-14)  # oracle: numpy.mean


def test_float32_accumulates_in_double():
    rng = np.random.default_rng(2)
    x = (1000.0 + rng.standard_normal(1_000_000)).astype(np.float32)
    ref = exact_var(x.astype(np.float64))
    assert variance(x) == pytest.approx(
        ref, rel=1e-12
    )  # float64 oracle on the same values
    assert isinstance(variance(x), float)
    np.testing.assert_allclose(
        variance(x.reshape(1000, 1000), axis=0),
        [exact_var(c) for c in x.reshape(1000, 1000).T.astype(np.float64)],
        rtol=1e-12,
    )


def test_small_cases():
    assert variance([3.0]) == 0.0
    assert mean_variance([1, 2, 3, 4], ddof=1) == (2.5, pytest.approx(5 / 3, rel=1e-15))
    assert variance(np.arange(10), ddof=1.5) == pytest.approx(
        np.var(np.arange(10), ddof=1.5)
    )
    np.testing.assert_array_equal(variance(np.ones((3, 1)), axis=1), np.zeros(3))


def test_noncontiguous_input():
    x = np.random.default_rng(3).standard_normal((300, 400))
    v = x[::2, 1::3]
    np.testing.assert_allclose(variance(v, axis=0), np.var(v, axis=0), rtol=1e-12)
    np.testing.assert_allclose(variance(v.T, axis=1), np.var(v.T, axis=1), rtol=1e-12)


@pytest.mark.parametrize(
    "bad,kw,err,msg",
    [
        ([], {}, ValueError, "x must not be empty"),
        ([1.0, np.nan], {}, ValueError, "x must be finite"),
        ([1.0, np.inf, 2.0], {}, ValueError, "x must be finite"),
        ([1.0, 2.0], {"ddof": -1}, ValueError, "ddof must be >= 0"),
        ([1.0, 2.0], {"ddof": 2}, ValueError, "ddof must be smaller"),
        ([1.0, 2.0], {"ddof": np.nan}, ValueError, "ddof must be finite"),
        ([1.0, 2.0], {"axis": 1}, ValueError, "axis 1 is out of bounds"),
        ([1.0, 2.0], {"axis": 0.5}, TypeError, "axis must be"),
        (np.ones((2, 2)), {"axis": (0, 0)}, ValueError, "repeated axis"),
        (["a", "b"], {}, TypeError, "x must have a real numeric dtype"),
        ([1 + 1j, 2], {}, TypeError, "x must have a real numeric dtype"),
        ([1e300, -1e300], {}, ValueError, "overflows"),
    ],
)
def test_bad_input(bad, kw, err, msg):
    with pytest.raises(err, match=msg):
        variance(bad, **kw)


def test_running_moments_equals_one_pass():
    rng = np.random.default_rng(4)
    x = 1e6 + rng.standard_normal((10_000, 3))
    rm = RunningMoments()
    for chunk in np.array_split(x, [1, 2, 500, 501, 7000]):
        rm.update(chunk)
    rm.update(x[:0])  # empty chunk: no-op
    assert rm.n == 10_000
    np.testing.assert_allclose(rm.mean, x.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(
        rm.variance(ddof=1), variance(x, axis=0, ddof=1), rtol=1e-12
    )
    # merging two accumulators equals one accumulator over both halves
    a = RunningMoments().update(x[:3333])
    b = RunningMoments().update(x[3333:])
    a.merge(b).merge(RunningMoments())
    np.testing.assert_allclose(a.variance(), variance(x, axis=0), rtol=1e-12)


def test_running_moments_scalar_stream_and_axis():
    rng = np.random.default_rng(5)
    x = rng.standard_normal(1001)
    rm = RunningMoments()
    for v in x:
        rm.update([v])
    assert rm.variance() == pytest.approx(
        exact_var(x), rel=1e-12
    )  # oracle: fsum two-pass
    assert isinstance(rm.mean, float)
    y = rng.standard_normal((4, 50))
    rm1 = RunningMoments(axis=1).update(y[:, :20]).update(y[:, 20:])
    np.testing.assert_allclose(rm1.variance(), np.var(y, axis=1), rtol=1e-12)


def test_running_moments_errors():
    rm = RunningMoments()
    with pytest.raises(ValueError, match="no samples yet"):
        rm.variance()
    rm.update(np.ones((3, 2)))
    with pytest.raises(ValueError, match="feature shape"):
        rm.update(np.ones((3, 4)))
    with pytest.raises(ValueError, match="ddof must be smaller"):
        rm.variance(ddof=3)
    with pytest.raises(ValueError, match="x must be finite"):
        rm.update([[np.nan, 1.0]])
    with pytest.raises(TypeError, match="other must be a RunningMoments"):
        rm.merge(3)
    with pytest.raises(ValueError, match="samples axis"):
        RunningMoments().update(np.float64(1.0))


@pytest.mark.parametrize("n", [1, 2, 5, 30])
def test_variance_bias_matches_prml_1_58(n):
    r = variance_bias(n, sigma2=2.5, n_trials=200_000, random_state=n)
    assert r.exact == pytest.approx((n - 1) / n * 2.5)
    # z-test against the closed form; two-sided alpha = 1e-4 per case (|z| < 3.9)
    if n > 1:
        assert abs(r.estimate - r.exact) < 3.9 * r.stderr
        # the stderr itself is right: Var(s2_ML) = 2 (n-1) sigma^4 / n^2 for Gaussian data
        sd = math.sqrt(2 * (n - 1)) * 2.5 / n / math.sqrt(r.n_trials)
        assert r.stderr == pytest.approx(sd, rel=0.05)
        # and the ML estimate is clearly biased below sigma2 when n is small
        if n <= 5:
            assert r.estimate + 10 * r.stderr < 2.5
    else:
        assert r.estimate == 0.0 and math.isnan(r.unbiased_estimate)


def test_variance_bias_reproducible_and_advances_generator():
    a = variance_bias(4, n_trials=1000, random_state=7)
    b = variance_bias(4, n_trials=1000, random_state=7)
    assert a == b or (a.estimate == b.estimate and a.stderr == b.stderr)
    assert variance_bias(4, n_trials=1000, random_state=8).estimate != a.estimate
    g = np.random.default_rng(11)
    variance_bias(3, n_trials=10, random_state=g)
    ref = np.random.default_rng(11)
    ref.standard_normal(
        30
    )  # the kernel drew 10 trials x 3 normals through numpy's C API
    assert g.standard_normal() == ref.standard_normal()


@pytest.mark.parametrize(
    "kw,err,msg",
    [
        ({"n": 0}, ValueError, "n must be >= 1"),
        ({"n": 2.0}, TypeError, "n must be an int"),
        ({"n": 2, "sigma2": 0.0}, ValueError, "sigma2 must be > 0"),
        ({"n": 2, "sigma2": np.inf}, ValueError, "sigma2 must be finite"),
        ({"n": 2, "n_trials": 1}, ValueError, "n_trials must be >= 2"),
        ({"n": 2, "random_state": 1.5}, TypeError, "random_state"),
    ],
)
def test_variance_bias_bad_input(kw, err, msg):
    with pytest.raises(err, match=msg):
        variance_bias(**kw)


# ------------------------------------------------------------------ threads
@pytest.mark.parametrize(
    "shape, axis",
    [
        ((3_000_001,), None),  # one long row: column blocks merged in order
        ((2, 1_500_000), 1),  # several long rows
        ((1_200_000, 3), 0),  # long middle axis: row blocks of each slice
        ((3, 400_000, 2), 1),
        ((300, 5000), 1),  # short rows: blocks of whole rows
        ((2000, 700), 0),
        ((40, 300, 200), (0, 2)),
    ],
)
def test_n_jobs_bit_identical_and_exact(shape, axis):
    rng = np.random.default_rng(3)
    x = 1e9 + rng.standard_normal(shape)
    results = [mean_variance(x, ddof=1, axis=axis, n_jobs=j) for j in (1, 2, 3, 4)]
    for m, v in results[1:]:  # fixed blocks merged in block order: the same bits
        assert np.array_equal(m, results[0][0]) and np.array_equal(v, results[0][1])
    got = np.asarray(results[0][1])
    axes = (
        tuple(range(x.ndim))
        if axis is None
        else (axis,)
        if isinstance(axis, int)
        else axis
    )
    moved = np.moveaxis(x, axes, tuple(range(-len(axes), 0)))
    rows = moved.reshape(-1, int(np.prod([shape[a] for a in axes])))
    ref = np.array([exact_var(r, ddof=1) for r in rows[:50]])  # oracle: fsum two-pass
    np.testing.assert_allclose(got.ravel()[:50], ref, rtol=1e-11)
    mean_ref = 1e9 + np.array([math.fsum(r - 1e9) / r.size for r in rows[:50]])
    np.testing.assert_allclose(
        np.asarray(results[0][0]).ravel()[:50], mean_ref, rtol=1e-15
    )


def test_n_jobs_float32_bit_identical():
    x = np.random.default_rng(4).standard_normal(2_500_000).astype(np.float32)
    v = [variance(x, n_jobs=j) for j in (1, 2, 3)]
    assert v[0] == v[1] == v[2]
    assert v[0] == pytest.approx(exact_var(x), rel=1e-12)  # double accumulators


@pytest.mark.parametrize(
    "n_jobs, err",
    [(0, ValueError), (-3, ValueError), (2.0, TypeError), ("1", TypeError)],
)
def test_bad_n_jobs(n_jobs, err):
    with pytest.raises(err, match="n_jobs"):
        variance(np.ones(10), n_jobs=n_jobs)
