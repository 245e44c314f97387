from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

_F = TypeVar("_F", np.float32, np.float64)

def im2col(
    x: NDArray[_F],
    kh: int,
    kw: int,
    stride: int,
    padding: int,
    cols_out: NDArray[_F],
    cancel: NDArray[np.uint8] | None = None,
) -> None: ...
def col2im(
    cols: NDArray[_F],
    kh: int,
    kw: int,
    stride: int,
    padding: int,
    x_out: NDArray[_F],
    cancel: NDArray[np.uint8] | None = None,
) -> None: ...
def maxpool2d_forward(
    x: NDArray[_F],
    kh: int,
    kw: int,
    stride: int,
    out: NDArray[_F],
    argmax_out: NDArray[np.intp],
) -> None: ...
def maxpool2d_backward(
    grad_out: NDArray[_F],
    argmax: NDArray[np.intp],
    grad_in: NDArray[_F],
) -> None: ...
def direct_available() -> bool: ...
def conv2d_direct_forward(
    x: NDArray[_F],
    w: NDArray[_F],
    bias: NDArray[_F] | None,
    padding: int,
    y: NDArray[_F],
    cancel: NDArray[np.uint8] | None = None,
) -> None: ...
def conv2d_direct_backward(
    g: NDArray[_F],
    x: NDArray[_F],
    w: NDArray[_F],
    padding: int,
    gx: NDArray[_F],
    gw: NDArray[_F],
    cancel: NDArray[np.uint8] | None = None,
) -> None: ...
