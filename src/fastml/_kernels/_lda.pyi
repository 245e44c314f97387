from typing import Any

import numpy as np
from numpy.typing import NDArray

def digamma(x: NDArray[np.float64], out: NDArray[np.float64]) -> None: ...
def gibbs_scratch_size(K: int, sparse: bool) -> int: ...
def gibbs_sweep_blocks(
    bit_generators: list[Any],
    words: NDArray[np.intc],
    z: NDArray[np.intc],
    seg_docs: list[NDArray[np.intp]],
    seg_ptrs: list[NDArray[np.intp]],
    ndk: NDArray[np.intc],
    nwk: NDArray[np.intc],
    nks: list[NDArray[np.intc]],
    alpha: float,
    eta: float,
    scratches: list[NDArray[np.float64]],
    cancel: NDArray[np.uint8],
) -> None: ...
def gibbs_sweep_block_sparse(
    bit_generator: Any,
    docs: NDArray[np.intp],
    z: NDArray[np.intc],
    seg_word: NDArray[np.intp],
    seg_ptr: NDArray[np.intp],
    ndk: NDArray[np.intc],
    nwk: NDArray[np.intc],
    nk: NDArray[np.intc],
    alpha: float,
    eta: float,
    tree_work: float,
    word_topics: NDArray[np.intc],
    word_ptr: NDArray[np.intp],
    word_nnz: NDArray[np.intc],
    doc_topics: NDArray[np.intc],
    doc_lptr: NDArray[np.intp],
    doc_nnz: NDArray[np.intc],
    scratch: NDArray[np.float64],
    cancel: NDArray[np.uint8],
) -> None: ...
def sparse_topic_draws(
    bit_generator: Any,
    w: int,
    d: int,
    ndk: NDArray[np.intc],
    nwk: NDArray[np.intc],
    nk: NDArray[np.intc],
    alpha: float,
    eta: float,
    word_topics: NDArray[np.intc],
    doc_topics: NDArray[np.intc],
    use_tree: bool,
    n_draws: int,
    counts_out: NDArray[np.intp],
    masses_out: NDArray[np.float64],
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
