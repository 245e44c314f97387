import numpy as np
import pytest

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


@pytest.mark.parametrize("bad", [np.random.RandomState(0), 1.5, "3", True, [1, 2]])
def test_random_state_rejects_others(bad):
    with pytest.raises(TypeError, match="random_state must be None, an int or a numpy"):
        check_random_state(bad)


def test_random_state_message_says_what_to_pass_for_randomstate():
    with pytest.raises(TypeError, match=r"default_rng\(seed\)"):
        check_random_state(np.random.RandomState(0))


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
