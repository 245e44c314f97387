from typing import Any

import numpy as np
from numpy.typing import NDArray

def digamma(x: NDArray[np.float64], out: NDArray[np.float64]) -> None: ...
def gibbs_sweep(
    bit_generator: Any,
    words: NDArray[np.intc],
    doc_ptr: NDArray[np.intp],
    z: NDArray[np.intc],
    ndk: NDArray[np.intc],
    nwk: NDArray[np.intc],
    nk: NDArray[np.intc],
    alpha: float,
    eta: float,
    scratch: NDArray[np.float64],
) -> None: ...
def gibbs_fold_in(
    bit_generator: Any,
    words: NDArray[np.intc],
    doc_ptr: NDArray[np.intp],
    z: NDArray[np.intc],
    ndk: NDArray[np.intc],
    phi_wk: NDArray[np.float64],
    alpha: float,
    n_iter: int,
    burn_in: int,
    theta_sum: NDArray[np.float64],
    scratch: NDArray[np.float64],
) -> None: ...
def gibbs_loglik(
    ndk: NDArray[np.intc],
    nd: NDArray[np.intp],
    nwk: NDArray[np.intc],
    nk: NDArray[np.intc],
    alpha: float,
    eta: float,
) -> float: ...
def estep_docs(
    indptr: NDArray[np.intc],
    indices: NDArray[np.intc],
    counts: NDArray[np.float64],
    exp_elog_beta_wk: NDArray[np.float64],
    alpha: float,
    gamma: NDArray[np.float64],
    max_iter: int,
    mean_change_tol: float,
    sstats_wk: NDArray[np.float64],
    scratch: NDArray[np.float64],
    n_iter_out: NDArray[np.intc],
    gather: NDArray[np.float64],
    cbuf: NDArray[np.float64],
    want_bound: bool,
    cancel: NDArray[np.uint8],
) -> float: ...
