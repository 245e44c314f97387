from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

_F = TypeVar("_F", np.float32, np.float64)

def squared_error(
    pred: NDArray[_F],
    target: NDArray[_F],
    var: NDArray[_F],
    w: NDArray[_F],
    scale: float,
    grad_out: NDArray[_F],
) -> float: ...
def binary_cross_entropy(
    logits: NDArray[_F],
    y: NDArray[_F],
    softplus_neg_abs: NDArray[_F],
    w: NDArray[_F],
    scale: float,
    grad_out: NDArray[_F],
) -> float: ...
def softmax_cross_entropy_index(
    logits: NDArray[_F],
    labels: NDArray[np.intp],
    w: NDArray[_F],
    scale: float,
    grad_out: NDArray[_F],
) -> float: ...
def softmax_cross_entropy_proba(
    logits: NDArray[_F],
    y: NDArray[_F],
    w: NDArray[_F],
    scale: float,
    grad_out: NDArray[_F],
) -> float: ...
