from typing import Any, overload

import numpy as np
from numpy.typing import NDArray

@overload
def moments_last_axis(
    x: NDArray[np.float64],
    mean_out: NDArray[np.float64],
    m2_out: NDArray[np.float64],
    cancel: NDArray[np.uint8] | None = None,
) -> None: ...
@overload
def moments_last_axis(
    x: NDArray[np.float32],
    mean_out: NDArray[np.float64],
    m2_out: NDArray[np.float64],
    cancel: NDArray[np.uint8] | None = None,
) -> None: ...
@overload
def moments_middle_axis(
    x: NDArray[np.float64],
    mean_out: NDArray[np.float64],
    m2_out: NDArray[np.float64],
    cancel: NDArray[np.uint8] | None = None,
) -> None: ...
@overload
def moments_middle_axis(
    x: NDArray[np.float32],
    mean_out: NDArray[np.float64],
    m2_out: NDArray[np.float64],
    cancel: NDArray[np.uint8] | None = None,
) -> None: ...
def ml_variance_trials(
    bit_generator: Any,
    sigma: float,
    scratch: NDArray[np.float64],
    out: NDArray[np.float64],
) -> None: ...
