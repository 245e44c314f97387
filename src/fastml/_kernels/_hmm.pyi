from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

_F = TypeVar("_F", np.float32, np.float64)

def forward_scaled(
    startprob: NDArray[np.float64],
    transmat: NDArray[np.float64],
    table: NDArray[_F],
    rows: NDArray[np.intp],
    spans: NDArray[np.intp],
    logprob_out: NDArray[np.float64],
    cancel: NDArray[np.uint8],
) -> None: ...
def forward_backward_scaled(
    startprob: NDArray[np.float64],
    transmat: NDArray[np.float64],
    transmat_T: NDArray[np.float64],
    table: NDArray[_F],
    rows: NDArray[np.intp],
    spans: NDArray[np.intp],
    alpha: NDArray[np.float64],
    cscale: NDArray[np.float64],
    gamma_out: NDArray[_F],
    xi_out: NDArray[np.float64],
    counts_out: NDArray[np.float64],
    logprob_out: NDArray[np.float64],
    cancel: NDArray[np.uint8],
) -> None: ...
def forward_log(
    log_startprob: NDArray[np.float64],
    log_transmat_T: NDArray[np.float64],
    log_table: NDArray[_F],
    rows: NDArray[np.intp],
    spans: NDArray[np.intp],
    logprob_out: NDArray[np.float64],
    cancel: NDArray[np.uint8],
) -> None: ...
def forward_backward_log(
    log_startprob: NDArray[np.float64],
    log_transmat: NDArray[np.float64],
    log_transmat_T: NDArray[np.float64],
    log_table: NDArray[_F],
    rows: NDArray[np.intp],
    spans: NDArray[np.intp],
    log_alpha: NDArray[np.float64],
    gamma_out: NDArray[_F],
    xi_out: NDArray[np.float64],
    counts_out: NDArray[np.float64],
    logprob_out: NDArray[np.float64],
    cancel: NDArray[np.uint8],
) -> None: ...
def viterbi_log(
    log_startprob: NDArray[np.float64],
    log_transmat: NDArray[np.float64],
    log_transmat_T: NDArray[np.float64],
    log_table: NDArray[_F],
    rows: NDArray[np.intp],
    spans: NDArray[np.intp],
    delta: NDArray[np.float64],
    path_out: NDArray[np.intp],
    logprob_out: NDArray[np.float64],
    cancel: NDArray[np.uint8],
) -> None: ...
def sample_states(
    startcdf: NDArray[np.float64],
    transcdf: NDArray[np.float64],
    u: NDArray[np.float64],
    first: int,
    out: NDArray[np.intp],
) -> None: ...
def gaussian_diag_frames(
    X: NDArray[_F],
    means_T: NDArray[np.float64],
    prec_T: NDArray[np.float64],
    lognorm_T: NDArray[np.float64],
    out: NDArray[_F],
    shift_out: NDArray[np.float64],
    cancel: NDArray[np.uint8],
) -> None: ...
