"""numpy's conventions in fastml.sampling: ``out=`` and ``dtype=`` for gamma, dirichlet,
multivariate_normal and categorical, 0-d array sizes and parameters, and every
``random_state`` form, including the MCMC chains' child streams.

Oracles: the allocating call with the same seed (``out=`` must give the same bits), the
float64 draws rounded (float32 results, documented as such), and numpy's own
constructions of the same stream.
"""

import numpy as np
import pytest

from fastml import sampling as S

MEAN = [0.5, -1.0, 2.0]
COV = [[2.0, 0.3, 0.0], [0.3, 1.0, -0.2], [0.0, -0.2, 0.5]]

# name: (call(size, **kw), the shape of the result for size (4, 5))
CALLS = {
    "gamma_small_shape": (lambda size, **kw: S.gamma(0.4, 2.0, size, **kw), (4, 5)),
    "gamma": (lambda size, **kw: S.gamma(3.5, 0.5, size, **kw), (4, 5)),
    "dirichlet": (lambda size, **kw: S.dirichlet([0.2, 1.0, 4.0], size, **kw), (4, 5, 3)),
    "multivariate_normal": (
        lambda size, **kw: S.multivariate_normal(MEAN, COV, size, **kw),
        (4, 5, 3),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_out_equals_the_allocating_call(name, dtype):
    call, shape = CALLS[name]
    ref = call((4, 5), dtype=dtype, random_state=3)
    assert ref.shape == shape and ref.dtype == dtype
    out = np.full(shape, np.nan, dtype=dtype)
    got = call((4, 5), dtype=dtype, out=out, random_state=3)
    assert got is out
    assert out.tobytes() == ref.tobytes()  # same seed, same bits
    # size may be omitted when out is given: its shape is used
    out2 = np.empty(shape, dtype=dtype)
    if name.startswith("gamma"):
        call(None, dtype=dtype, out=out2, random_state=3)
        assert out2.tobytes() == ref.tobytes()


@pytest.mark.parametrize("name", sorted(CALLS))
def test_float32_is_the_float64_draws_rounded(name):
    call, _ = CALLS[name]
    f64 = call((4, 5), random_state=9)
    f32 = call((4, 5), dtype=np.float32, random_state=9)
    assert f32.tobytes() == f64.astype(np.float32).tobytes()


def test_categorical_out():
    p = [0.1, 0.2, 0.3, 0.4]
    ref = S.categorical(p, (6, 7), random_state=4)
    out = np.full((6, 7), -1, dtype=np.int64)
    assert S.categorical(p, (6, 7), out=out, random_state=4) is out
    np.testing.assert_array_equal(out, ref)
    table = S.AliasTable(p)
    out[...] = -1
    assert table.sample(out=out, random_state=4) is out
    np.testing.assert_array_equal(out, ref)
    scalar = S.categorical(p, random_state=4)
    assert type(scalar) is int and scalar == ref.flat[0]


def _read_only(shape, dtype):
    a = np.zeros(shape, dtype=dtype)
    a.flags.writeable = False
    return a


BAD_OUT = [
    (lambda: S.gamma(2.0, size=3, out=np.empty(3, np.float32)), TypeError,
     r"out must have dtype float64 \(the dtype argument\), got float32"),
    (lambda: S.gamma(2.0, size=3, out=[0.0, 0.0, 0.0]), TypeError,
     "out must be a numpy.ndarray, got list"),
    (lambda: S.gamma(2.0, size=3, out=np.empty(4)), ValueError,
     r"out has shape \(4,\), but size asks for \(3,\)"),
    (lambda: S.gamma(2.0, size=(3, 2), out=np.empty((2, 3)).T), ValueError,
     "out must be C-contiguous"),
    (lambda: S.gamma(2.0, size=3, out=_read_only(3, np.float64)), ValueError,
     "out must be writeable"),
    (lambda: S.gamma(2.0, size=3, dtype=np.int64), TypeError,
     "dtype must be float32 or float64"),
    (lambda: S.dirichlet([1.0, 2.0], 3, out=np.empty((3, 3))), ValueError,
     r"out has shape \(3, 3\), but size asks for \(3, 2\)"),
    (lambda: S.dirichlet([1.0, 2.0], 3, out=np.empty((2, 3)).T), ValueError,
     "out must be C-contiguous"),
    (lambda: S.dirichlet([1.0, 2.0], 3, out=_read_only((3, 2), np.float64)), ValueError,
     "out must be writeable"),
    (lambda: S.dirichlet([1.0, 2.0], 3, dtype=np.float32, out=np.empty((3, 2))),
     TypeError, r"out must have dtype float32"),
    (lambda: S.multivariate_normal([0.0, 0.0], np.eye(2), out=np.empty((1, 2))),
     ValueError, r"out has shape \(1, 2\), but size asks for \(2,\)"),
    (lambda: S.multivariate_normal([0.0], [[1.0]], 4, out=np.empty(4, np.float32)),
     TypeError, "out must have dtype float64"),
    (lambda: S.categorical([0.5, 0.5], 4, out=np.empty(4, np.int32)), TypeError,
     "out must have dtype int64, got int32"),
    (lambda: S.categorical([0.5, 0.5], 4, out=_read_only(4, np.int64)), ValueError,
     "out must be writeable"),
    (lambda: S.categorical([0.5, 0.5], (2, 2), out=np.empty((2, 4), np.int64)[:, ::2]),
     ValueError, "out must be C-contiguous"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "exc", "match"), BAD_OUT)
def test_bad_out_is_refused_clearly(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_bad_out_leaves_the_stream_untouched():
    # validation happens before any draw: the Generator is not advanced by a refusal
    g = np.random.default_rng(1)
    with pytest.raises(ValueError):
        S.gamma(2.0, size=3, out=np.empty(4), random_state=g)
    assert g.random() == np.random.default_rng(1).random()


def test_zero_d_arrays_as_numpy_accepts_them():
    # numpy takes 0-d arrays for sizes and scalar parameters; so does fastml
    g = np.random.default_rng(0)
    g.gamma(np.array(2.0), np.array(1.5), size=np.array(3))  # numpy accepts these
    a = S.gamma(np.array(2.0), np.array(1.5), np.array(3), random_state=0)
    assert a.tobytes() == S.gamma(2.0, 1.5, 3, random_state=0).tobytes()
    n = S.standard_normal(np.array(4), random_state=0)
    assert n.tobytes() == S.standard_normal(4, random_state=0).tobytes()
    d = S.dirichlet([1.0, 2.0], np.array(5), random_state=0)
    assert d.tobytes() == S.dirichlet([1.0, 2.0], 5, random_state=0).tobytes()
    c = S.categorical([0.5, 0.5], np.array(6), random_state=0)
    assert c.tobytes() == S.categorical([0.5, 0.5], 6, random_state=0).tobytes()
    x = S.normal(np.array(1.0), np.array(2.0), 4, random_state=0)
    assert x.tobytes() == S.normal(1.0, 2.0, 4, random_state=0).tobytes()
    with pytest.raises(TypeError, match="size must be"):
        S.gamma(2.0, size=np.array(2.5))
    with pytest.raises(ValueError, match="shape must be > 0"):
        S.gamma(np.array(-1.0))


# every form of one seed denotes PCG64(seed)'s stream, as numpy.random.default_rng
FORMS = {
    "int": lambda: 21,
    "numpy int": lambda: np.int32(21),
    "SeedSequence": lambda: np.random.SeedSequence(21),
    "PCG64": lambda: np.random.PCG64(21),
    "Generator": lambda: np.random.default_rng(21),
}


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("name", sorted(CALLS))
def test_random_state_forms_give_the_same_bits(form, name):
    call, _ = CALLS[name]
    assert (
        call(7, random_state=FORMS[form]()).tobytes()
        == call(7, random_state=21).tobytes()
    )


def test_randomstate_advances_and_mcmc_chains_are_reproducible():
    # a RandomState's MT19937 cannot spawn (legacy seeding): the chains are seeded from
    # its stream, so the same RandomState seed gives the same chains
    t = S.MultivariateNormal([0.0, 1.0], [[1.0, 0.3], [0.3, 2.0]])
    rs = np.random.RandomState(5)
    a = S.metropolis_hastings(t, [0.0, 0.0], 200, n_chains=2, random_state=rs)
    b = S.metropolis_hastings(
        t, [0.0, 0.0], 200, n_chains=2, random_state=np.random.RandomState(5)
    )
    assert a.samples.tobytes() == b.samples.tobytes()
    assert not np.array_equal(a.samples[0], a.samples[1])  # distinct child streams
    ref = np.random.RandomState(5)
    ref.random_sample(2)  # MT19937 raw words are 32-bit: four of them = two doubles
    assert rs.random_sample() == ref.random_sample()  # rs advanced by the 4 words


def test_global_randomstate_makes_mcmc_reproducible():
    t = S.MultivariateNormal([0.0, 0.0], np.eye(2))
    saved = np.random.get_state()  # noqa: NPY002 (the legacy global state is under test)
    try:
        np.random.seed(3)  # noqa: NPY002
        a = S.hmc(t, [0.0, 0.0], 100, step_size=0.2, n_leapfrog=5, n_chains=2)
        np.random.seed(3)  # noqa: NPY002
        b = S.hmc(t, [0.0, 0.0], 100, step_size=0.2, n_leapfrog=5, n_chains=2)
    finally:
        np.random.set_state(saved)  # noqa: NPY002
    assert a.samples.tobytes() == b.samples.tobytes()
