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

def grid_init(rows: NDArray[np.float64], W: int, is_max: bool) -> None: ...
def grid_flood_strip(
    unary: NDArray[np.float64],
    W: int,
    pair: NDArray[np.float64],
    pair_t: NDArray[np.float64],
    potts_diag: float,
    potts_off: float,
    potts: bool,
    is_max: bool,
    damping: float,
    messages: NDArray[np.float64],
    halo: NDArray[np.float64],
    start: NDArray[np.float64],
    first: bool,
    a: int,
    b: int,
    depth: int,
    belief: NDArray[np.float64],
    beliefs: bool,
    scratch: NDArray[np.float64],
    cancel: NDArray[np.uint8],
) -> float: ...
def grid_checkerboard_rows(
    unary: NDArray[np.float64],
    W: int,
    pair: NDArray[np.float64],
    pair_t: NDArray[np.float64],
    potts_diag: float,
    potts_off: float,
    potts: bool,
    is_max: bool,
    damping: float,
    messages: NDArray[np.float64],
    a: int,
    b: int,
    c1_lo: int,
    c1_hi: int,
    colour0: bool,
    scratch: NDArray[np.float64],
    cancel: NDArray[np.uint8],
) -> float: ...
def grid_beliefs(
    unary: NDArray[np.float64],
    W: int,
    messages: NDArray[np.float64],
    is_max: bool,
    a: int,
    b: int,
    belief: NDArray[np.float64],
    scratch: NDArray[np.float64],
) -> None: ...
