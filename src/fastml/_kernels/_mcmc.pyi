from typing import Any

import numpy as np
from numpy.typing import NDArray

def draw_block(
    bit_generator: Any, z: NDArray[np.float64], e: NDArray[np.float64]
) -> None: ...
def mh_gaussian(
    bit_generator: Any,
    x: NDArray[np.float64],
    prop_chol: NDArray[np.float64],
    prop_white: NDArray[np.float64],
    mu: NDArray[np.float64],
    whiten: NDArray[np.float64],
    burn_in: int,
    thin: int,
    out: NDArray[np.float64],
    cancel: NDArray[np.uint8],
) -> int: ...
def hmc_gaussian(
    bit_generator: Any,
    x: NDArray[np.float64],
    mu: NDArray[np.float64],
    prec: NDArray[np.float64],
    mass: NDArray[np.float64],
    step_size: float,
    n_leapfrog: int,
    burn_in: int,
    thin: int,
    out: NDArray[np.float64],
    cancel: NDArray[np.uint8],
) -> int: ...
def gibbs_gaussian(
    bit_generator: Any,
    x: NDArray[np.float64],
    mu: NDArray[np.float64],
    prec: NDArray[np.float64],
    burn_in: int,
    thin: int,
    out: NDArray[np.float64],
    cancel: NDArray[np.uint8],
) -> None: ...
