from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

_F = TypeVar("_F", np.float32, np.float64)

def gibbs(
    bit_generator: Any,
    W: NDArray[_F],
    c: NDArray[_F],
    b: NDArray[_F],
    v: NDArray[_F],
    k: int,
    gaussian: bool,
    h_scratch: NDArray[_F],
    v_out: NDArray[_F],
) -> None: ...
def hidden_proba(
    W: NDArray[_F], c: NDArray[_F], v: NDArray[_F], h_out: NDArray[_F]
) -> None: ...
def cd_epoch(
    bit_generator: Any,
    X: NDArray[_F],
    bounds: NDArray[np.intp],
    Wt: NDArray[_F],
    c: NDArray[_F],
    b: NDArray[_F],
    chain: NDArray[_F],
    k: int,
    lr: float,
    persistent: bool,
    gaussian: bool,
    h_scratch: NDArray[_F],
    v_scratch: NDArray[_F],
) -> None: ...
