import numpy as np
from numpy.typing import NDArray

def tree_sum_product(
    graph: NDArray[np.intp],
    ptab: NDArray[np.float64],
    log_offset: float,
    mask: NDArray[np.float64],
    sched_edge: NDArray[np.intp],
    sched_to_var: NDArray[np.intp],
    roots: NDArray[np.intp],
    m_vf: NDArray[np.float64],
    m_fv: NDArray[np.float64],
    var_belief: NDArray[np.float64],
    scratch: NDArray[np.intp],
) -> float: ...
def factor_beliefs(
    graph: NDArray[np.intp],
    ptab: NDArray[np.float64],
    m_vf: NDArray[np.float64],
    fac_belief: NDArray[np.float64],
    scratch: NDArray[np.intp],
) -> None: ...
def tree_max_sum(
    graph: NDArray[np.intp],
    logtab: NDArray[np.float64],
    logmask: NDArray[np.float64],
    sched_edge: NDArray[np.intp],
    sched_to_var: NDArray[np.intp],
    roots: NDArray[np.intp],
    m_vf: NDArray[np.float64],
    m_fv: NDArray[np.float64],
    backptr: NDArray[np.intp],
    assignment: NDArray[np.intp],
    work: NDArray[np.float64],
    scratch: NDArray[np.intp],
) -> float: ...
def loopy_bp(
    graph: NDArray[np.intp],
    ptab: NDArray[np.float64],
    mask: NDArray[np.float64],
    max_iter: int,
    tol: float,
    damping: float,
    sequential: bool,
    m_vf: NDArray[np.float64],
    m_fv: NDArray[np.float64],
    var_belief: NDArray[np.float64],
    fac_belief: NDArray[np.float64],
    tmp: NDArray[np.float64],
    scratch: NDArray[np.intp],
) -> tuple[int, float]: ...
def bethe_free_energy(
    graph: NDArray[np.intp],
    logtab: NDArray[np.float64],
    var_belief: NDArray[np.float64],
    fac_belief: NDArray[np.float64],
) -> float: ...

GRID_FUSE: int

def grid_bp(
    unary: NDArray[np.float64],
    W: int,
    pair: NDArray[np.float64],
    pair_t: NDArray[np.float64],
    potts_diag: float,
    potts_off: float,
    potts: bool,
    is_max: bool,
    max_iter: int,
    tol: float,
    damping: float,
    checkerboard: bool,
    messages: NDArray[np.float64],
    belief: NDArray[np.float64],
    scratch: NDArray[np.float64],
) -> tuple[int, float]: ...
