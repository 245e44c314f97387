from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

_F = TypeVar("_F", np.float32, np.float64)

def em_pass_full(
    X: NDArray[_F],
    means: NDArray[_F],
    prec_chol: NDArray[_F],
    log_const: NDArray[np.float64],
    log_resp_out: NDArray[_F],
    log_norm_out: NDArray[np.float64],
    nk_out: NDArray[np.float64],
    sum_out: NDArray[np.float64],
    scatter_out: NDArray[np.float64],
    cancel: NDArray[np.uint8] | None = None,
) -> float: ...
def em_pass_diag(
    X: NDArray[_F],
    means: NDArray[_F],
    prec_chol: NDArray[_F],
    log_const: NDArray[np.float64],
    log_resp_out: NDArray[_F],
    log_norm_out: NDArray[np.float64],
    nk_out: NDArray[np.float64],
    sum_out: NDArray[np.float64],
    sumsq_out: NDArray[np.float64],
    cancel: NDArray[np.uint8] | None = None,
) -> float: ...
