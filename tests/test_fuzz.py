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
