import numpy as np
from numpy.typing import NDArray

_F64 = NDArray[np.float64]

def kalman_filter(
    A: _F64,
    b: _F64,
    C: _F64,
    d: _F64,
    Q: _F64,
    R: _F64,
    mu0: _F64,
    V0: _F64,
    Y: _F64,
    filt_mean: _F64,
    filt_cov: _F64,
    loglik_out: _F64,
    s0: int,
    s1: int,
    cancel: NDArray[np.uint8],
) -> int: ...
def kalman_smooth(
    A: _F64,
    b: _F64,
    C: _F64,
    d: _F64,
    Q: _F64,
    R: _F64,
    mu0: _F64,
    V0: _F64,
    Y: _F64,
    smooth_mean: _F64,
    smooth_cov: _F64,
    cross_cov: _F64,
    loglik_out: _F64,
    pred_mean: _F64,
    pred_cov: _F64,
    filt_mean: _F64,
    filt_cov: _F64,
    s0: int,
    s1: int,
    cancel: NDArray[np.uint8],
) -> int: ...
