import numpy as np
import pytest

from fastml import sampling as S
from fastml._validation import (
    check_array,
    check_int,
    check_random_state,
    check_real,
    check_sample_weight,
)


def test_random_state_accepts_none_int_generator():
    g = np.random.default_rng(3)
    assert check_random_state(g) is g
    a = check_random_state(5).standard_normal(4)
    b = np.random.default_rng(5).standard_normal(4)
    np.testing.assert_array_equal(a, b)  # oracle: numpy's own default_rng(seed)
    assert isinstance(check_random_state(None), np.random.Generator)
    assert isinstance(check_random_state(np.int32(7)), np.random.Generator)


# numpy's conventions (as default_rng): these all denote the stream of PCG64(seed)
SAME_STREAM = {
    "int": lambda s: s,
    "numpy int": np.uint16,
    "SeedSequence": np.random.SeedSequence,
    "PCG64": np.random.PCG64,
    "Generator": np.random.default_rng,
}


@pytest.mark.parametrize("form", sorted(SAME_STREAM))
def test_random_state_forms_of_one_seed_give_one_stream(form):
    got = S.standard_normal(1000, random_state=SAME_STREAM[form](8))
    assert got.tobytes() == S.standard_normal(1000, random_state=8).tobytes()
    # oracle: numpy itself; the Generator made from this form draws PCG64(8)'s words
    first = check_random_state(SAME_STREAM[form](8)).bit_generator.random_raw()
    assert first == np.random.PCG64(8).random_raw()


@pytest.mark.parametrize(
    "bit_generator", [np.random.MT19937, np.random.Philox, np.random.SFC64]
)
def test_random_state_any_numpy_bit_generator_is_drawn_from(bit_generator):
    bg = bit_generator(4)
    got = S.standard_normal(50, random_state=bg)
    assert (
        got.tobytes()
        == S.standard_normal(
            50, random_state=np.random.Generator(bit_generator(4))
        ).tobytes()
    )
    # the BitGenerator itself advanced: its next word is the one after what was drawn
    ref = bit_generator(4)
    S.standard_normal(50, random_state=ref)
    assert bg.random_raw() == ref.random_raw()


def test_random_state_randomstate_draws_through_its_bit_generator():
    rs = np.random.RandomState(0)
    got = S.standard_normal(100, random_state=rs)
    # oracle: an MT19937 in RandomState(0)'s state, drawn from as a bit generator
    mt = np.random.MT19937()
    mt.state = np.random.RandomState(0).get_state(legacy=False)
    assert got.tobytes() == S.standard_normal(100, random_state=mt).tobytes()
    # the RandomState advanced exactly as far: both continue alike
    assert rs.random_sample() == np.random.RandomState(mt).random_sample()


@pytest.fixture
def global_randomstate():
    """numpy's legacy global RandomState, restored afterwards (the test seeds it)."""
    saved = np.random.get_state()  # noqa: NPY002 (the legacy API is under test)
    yield np.random.mtrand._rand
    np.random.set_state(saved)  # noqa: NPY002


def test_random_state_none_is_numpys_global_randomstate(global_randomstate):
    np.random.seed(0)  # noqa: NPY002 (what a scikit-learn user writes)
    a = S.standard_normal(20, random_state=None)
    after = global_randomstate.random_sample()
    global_randomstate.seed(0)
    b = S.standard_normal(20)
    assert a.tobytes() == b.tobytes()  # np.random.seed makes it reproducible
    assert (
        global_randomstate.random_sample() == after
    )  # the global state moved on alike
    # oracle: the same draws from an explicit RandomState(0)
    ref = S.standard_normal(20, random_state=np.random.RandomState(0))
    assert a.tobytes() == ref.tobytes()


@pytest.mark.parametrize("bad", [1.5, "3", True, [1, 2], object()])
def test_random_state_rejects_others(bad):
    with pytest.raises(TypeError, match="random_state must be None, an int, a numpy"):
        check_random_state(bad)


def test_random_state_rejects_a_bit_generator_that_is_not_numpys():
    class Unset(np.random.BitGenerator):  # never sets up its bitgen_t (would crash)
        pass

    with pytest.raises(TypeError, match="not a working numpy BitGenerator"):
        check_random_state(Unset(0))
    with pytest.raises(TypeError, match="not a working numpy BitGenerator"):
        S.gamma(2.0, size=3, random_state=Unset(0))


def test_random_state_rejects_a_seed_sequence_that_cannot_seed():
    seedless = np.random.bit_generator.SeedlessSeedSequence()
    with pytest.raises(
        TypeError, match="SeedlessSeedSequence that cannot generate state"
    ):
        check_random_state(seedless)


def test_random_state_negative_seed():
    with pytest.raises(ValueError, match="random_state"):
        check_random_state(-1)


def test_check_array_dtype_policy():
    assert check_array(np.ones(3, np.float32), "x").dtype == np.float32
    assert check_array(np.ones(3, np.float16), "x").dtype == np.float32
    assert check_array(np.ones(3, np.int64), "x").dtype == np.float64
    assert check_array([True, False], "x").dtype == np.float64
    assert (
        check_array(np.ones(3, np.float32), "x", allow_float32=False).dtype
        == np.float64
    )
    for bad in (
        np.ones(3, complex),
        np.array(["a"]),
        np.array([object()]),
        np.ones(2, np.longdouble),
    ):
        with pytest.raises(TypeError, match="x must have a real numeric dtype"):
            check_array(bad, "x")


def test_check_array_contiguous_copy_only_when_needed():
    a = np.arange(12.0).reshape(3, 4)
    assert check_array(a, "x") is a
    out = check_array(a[:, ::2], "x")
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, a[:, ::2])


def test_check_array_errors_name_the_argument():
    with pytest.raises(ValueError, match="foo must be 2-dimensional"):
        check_array(np.ones(3), "foo", ndim=2)
    with pytest.raises(ValueError, match="foo must not be empty"):
        check_array(np.ones(0), "foo")
    with pytest.raises(ValueError, match=r"foo must be finite .* at index \(1,\)"):
        check_array([1.0, np.nan], "foo")
    with pytest.raises(ValueError, match="foo could not be converted"):
        check_array([[1.0], [1.0, 2.0]], "foo")
    scipy_sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="foo must be a dense array"):
        check_array(scipy_sparse.eye(3, format="csr"), "foo")


def test_scalar_checks():
    assert check_int(np.int64(3), "k", low=1) == 3
    with pytest.raises(TypeError, match="k must be an int"):
        check_int(3.0, "k")
    with pytest.raises(TypeError, match="k must be an int"):
        check_int(True, "k")
    with pytest.raises(ValueError, match="k must be >= 1"):
        check_int(0, "k", low=1)
    assert check_real(2, "s", low=0, low_open=True) == 2.0
    with pytest.raises(ValueError, match="s must be > 0"):
        check_real(0.0, "s", low=0, low_open=True)
    with pytest.raises(ValueError, match="s must be finite"):
        check_real(np.inf, "s")
    with pytest.raises(TypeError, match="s must be a real number"):
        check_real("1", "s")


def test_sample_weight():
    w, total = check_sample_weight(None, 4, np.dtype(np.float64))
    assert w.shape == (0,) and total == 4.0
    w, total = check_sample_weight([1, 2, 3], 3, np.dtype(np.float32))
    assert w.dtype == np.float32 and total == 6.0
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(3,\)"):
        check_sample_weight([1, 2], 3, np.dtype(np.float64))
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        check_sample_weight([1, -2, 1], 3, np.dtype(np.float64))
    with pytest.raises(ValueError, match="positive sum"):
        check_sample_weight([0, 0, 0], 3, np.dtype(np.float64))
