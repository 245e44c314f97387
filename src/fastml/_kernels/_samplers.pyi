from typing import Any, overload

import numpy as np
from numpy.typing import NDArray

@overload
def standard_normal_fill(
    bit_generator: Any, method: int, out: NDArray[np.float64]
) -> None: ...
@overload
def standard_normal_fill(
    bit_generator: Any, method: int, out: NDArray[np.float32]
) -> None: ...
@overload
def normal_fill(
    bit_generator: Any, loc: float, scale: float, out: NDArray[np.float64]
) -> None: ...
@overload
def normal_fill(
    bit_generator: Any, loc: float, scale: float, out: NDArray[np.float32]
) -> None: ...
@overload
def standard_exponential_fill(
    bit_generator: Any, method: int, out: NDArray[np.float64]
) -> None: ...
@overload
def standard_exponential_fill(
    bit_generator: Any, method: int, out: NDArray[np.float32]
) -> None: ...
@overload
def exponential_fill(
    bit_generator: Any, scale: float, out: NDArray[np.float64]
) -> None: ...
@overload
def exponential_fill(
    bit_generator: Any, scale: float, out: NDArray[np.float32]
) -> None: ...
def uniform_open_fill(bit_generator: Any, out: NDArray[np.float64]) -> None: ...
def multivariate_normal_fill(
    bit_generator: Any,
    mean: NDArray[np.float64],
    factor: NDArray[np.float64],
    triangular: bool,
    out: NDArray[np.float64],
) -> None: ...
def gamma_fill(
    bit_generator: Any, shape: float, scale: float, out: NDArray[np.float64]
) -> None: ...
def dirichlet_fill(
    bit_generator: Any, alpha: NDArray[np.float64], out: NDArray[np.float64]
) -> None: ...
def alias_build(
    p: NDArray[np.float64],
    prob: NDArray[np.float64],
    alias: NDArray[np.int64],
    work: NDArray[np.int64],
) -> None: ...
def alias_draw(
    bit_generator: Any,
    prob: NDArray[np.float64],
    alias: NDArray[np.int64],
    out: NDArray[np.int64],
) -> None: ...
