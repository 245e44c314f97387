"""fastml.graphical vs pgmpy and vectorised NumPy message passing (one thread).

Groups:
- ``bp-tree-200``: all variable marginals of a 200-variable binary tree (binary variables,
  heap-ordered: parent(i) = (i - 1) // 2, a unary and a pairwise factor per node).
  fastml ``FactorGraph.sum_product`` (also computes factor marginals and ln Z) vs pgmpy
  ``BeliefPropagation`` (``calibrate`` + marginalising the clique beliefs; the junction
  tree is built outside the timed call) vs a level-synchronous NumPy sum-product.
- ``bp-chain-1e5-K10``: sum-product on a 1e5-variable chain with 10 states, fastml vs a
  scaled forward-backward recursion in NumPy (one matrix-vector product per step).
- ``bp-grid-256-K8``: 10 flooding sweeps of sum-product loopy BP on a 256 x 256 Potts
  grid with 8 labels, fastml ``PairwiseMRF`` (Potts O(K) messages and the general O(K^2)
  path) vs the same schedule vectorised in NumPy. On x86-64 with AVX2 + FMA fastml runs
  its ``_bp_avx2`` build; ``FASTML_DISABLE_SIMD=1`` measures the baseline build.
- ``bp-grid-256-K8-converge``: the same problem run to convergence (no message changes
  by more than 1e-6): NumPy flooding vs fastml flooding vs fastml checkerboard.
- ``bp-grid-512-K8-{parallel,checkerboard}-threads`` (all cores): 8 sweeps of
  sum-product loopy BP on a 512 x 512 Potts grid with 8 labels, fastml with
  ``n_jobs=1`` vs ``n_jobs=2`` (strips of 64 rows on threads; the same bits).

The single-thread groups call fastml with ``n_jobs=1``.
"""

import numpy as np
import pytest

from fastml.graphical import FactorGraph, PairwiseMRF
from fastml.graphical._grid import _bp_grid

# ---------------------------------------------------------------------------------
# 200-variable binary tree

N_TREE = 200


@pytest.fixture(scope="module")
def tree():
    rng = np.random.default_rng(0)
    parent = (np.arange(1, N_TREE) - 1) // 2
    unary = np.exp(rng.standard_normal((N_TREE, 2)))
    pair = np.exp(rng.standard_normal((N_TREE - 1, 2, 2)))  # pair[i - 1][x_parent, x_i]
    return parent, unary, pair


def fastml_tree(tree):
    parent, unary, pair = tree
    fg = FactorGraph([2] * N_TREE)
    fg.add_factors(np.arange(N_TREE)[:, None], unary)
    fg.add_factors(np.stack([parent, np.arange(1, N_TREE)], axis=1), pair)
    fg.sum_product()  # compiles the graph and the schedule once (cached)

    def run():
        return fg.sum_product().variable_beliefs.reshape(N_TREE, 2)

    return run


def numpy_tree(tree):
    """Level-synchronous sum-product on the tree, every level one vectorised step."""
    parent, unary, pair = tree
    child = np.arange(1, N_TREE)
    depth = np.zeros(N_TREE, dtype=int)
    for i in child:
        depth[i] = depth[parent[i - 1]] + 1
    levels = [child[depth[child] == d] for d in range(1, depth.max() + 1)]

    def run():
        inprod = unary.copy()  # unary times the messages from the children
        up = np.empty((N_TREE, 2))
        for nodes in reversed(levels):
            m = np.einsum("nab,nb->na", pair[nodes - 1], inprod[nodes])
            m /= m.sum(axis=1, keepdims=True)
            up[nodes] = m
            np.multiply.at(inprod, parent[nodes - 1], m)
        down = np.ones((N_TREE, 2))
        for nodes in levels:
            p = parent[nodes - 1]
            h = inprod[p] * down[p] / up[nodes]  # parent's belief without this child
            m = np.einsum("nab,na->nb", pair[nodes - 1], h)
            down[nodes] = m / m.sum(axis=1, keepdims=True)
        b = inprod * down
        return b / b.sum(axis=1, keepdims=True)

    return run


def pgmpy_tree(tree):
    pytest.importorskip("pgmpy")
    from pgmpy.factors.discrete import DiscreteFactor
    from pgmpy.inference import BeliefPropagation
    from pgmpy.models import DiscreteMarkovNetwork

    parent, unary, pair = tree
    edges = [(f"x{p}", f"x{i}") for i, p in zip(range(1, N_TREE), parent, strict=True)]
    model = DiscreteMarkovNetwork(edges)
    for i in range(N_TREE):
        model.add_factors(DiscreteFactor([f"x{i}"], [2], unary[i]))
    for i, p in zip(range(1, N_TREE), parent, strict=True):
        model.add_factors(DiscreteFactor([f"x{p}", f"x{i}"], [2, 2], pair[i - 1]))
    bp = BeliefPropagation(model)
    names = [f"x{i}" for i in range(N_TREE)]

    def run():
        bp.calibrate()
        home = {}
        for clique, belief in bp.get_clique_beliefs().items():
            for v in clique:
                home.setdefault(v, belief)
        out = np.empty((N_TREE, 2))
        for i, v in enumerate(names):
            f = home[v]
            m = f.marginalize([u for u in f.variables if u != v], inplace=False)
            out[i] = m.values / m.values.sum()
        return out

    return run


TREE_IMPLS = {"fastml": fastml_tree, "numpy": numpy_tree, "pgmpy": pgmpy_tree}


@pytest.mark.parametrize("impl", list(TREE_IMPLS))
def bench_tree_marginals(benchmark, impl, tree):
    benchmark.group = "bp-tree-200"
    fn = TREE_IMPLS[impl](tree)
    benchmark.extra_info.update(n_vars=N_TREE, card=2)
    out = benchmark(fn)
    ref = numpy_tree(tree)()
    np.testing.assert_allclose(out, ref, atol=1e-10)  # correctness guard after timing


# ---------------------------------------------------------------------------------
# 1e5-variable chain, 10 states

N_CHAIN, K_CHAIN = 100_000, 10


@pytest.fixture(scope="module")
def chain():
    rng = np.random.default_rng(1)
    unary = rng.random((N_CHAIN, K_CHAIN)) + 0.1
    pair = rng.random((K_CHAIN, K_CHAIN)) + 0.1
    return unary, pair


def fastml_chain(chain):
    unary, pair = chain
    fg = FactorGraph([K_CHAIN] * N_CHAIN)
    fg.add_factors(np.arange(N_CHAIN)[:, None], unary)
    idx = np.arange(N_CHAIN)
    fg.add_factors(
        np.stack([idx[:-1], idx[1:]], axis=1),
        np.broadcast_to(pair, (N_CHAIN - 1, K_CHAIN, K_CHAIN)),
    )
    fg.sum_product()

    def run():
        return fg.sum_product().variable_beliefs.reshape(N_CHAIN, K_CHAIN)

    return run


def numpy_chain(chain):
    """Scaled forward-backward (PRML eqs. 13.59, 13.62), one step at a time."""
    unary, pair = chain

    def run():
        alpha = np.empty((N_CHAIN, K_CHAIN))
        beta = np.ones((N_CHAIN, K_CHAIN))
        a = unary[0] / unary[0].sum()
        alpha[0] = a
        for t in range(1, N_CHAIN):
            a = (a @ pair) * unary[t]
            a /= a.sum()
            alpha[t] = a
        b = beta[-1]
        for t in range(N_CHAIN - 2, -1, -1):
            b = pair @ (unary[t + 1] * b)
            b /= b.sum()
            beta[t] = b
        g = alpha * beta
        return g / g.sum(axis=1, keepdims=True)

    return run


CHAIN_IMPLS = {"fastml": fastml_chain, "numpy": numpy_chain}


@pytest.mark.parametrize("impl", list(CHAIN_IMPLS))
def bench_chain_marginals(benchmark, impl, chain):
    benchmark.group = "bp-chain-1e5-K10"
    fn = CHAIN_IMPLS[impl](chain)
    benchmark.extra_info.update(n_vars=N_CHAIN, card=K_CHAIN)
    out = benchmark.pedantic(fn, rounds=3, iterations=1)
    assert out.shape == (N_CHAIN, K_CHAIN)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)


# ---------------------------------------------------------------------------------
# 256 x 256 Potts grid, 8 labels

H = W = 256
K_GRID = 8
SWEEPS = 10


@pytest.fixture(scope="module")
def grid():
    rng = np.random.default_rng(2)
    return rng.standard_normal((H, W, K_GRID)), 0.7


def numpy_grid_bp(log_unary, pair, sweeps, damping=0.0, tol=None):
    """Flooding loopy BP on the grid, vectorised over pixels; messages[d] arrive at a
    pixel from its left, right, upper, lower neighbour (as in the kernel). With ``tol``,
    stops once no message changes by more than ``tol`` (returns beliefs, sweeps)."""
    phi = np.exp(log_unary - log_unary.max(axis=2, keepdims=True))
    K = phi.shape[2]
    msg = np.ones((4, H, W, K))
    msg[0, :, 1:] = msg[1, :, :-1] = msg[2, 1:] = msg[3, :-1] = 1.0 / K
    done = 0
    for _ in range(sweeps):
        new = msg.copy()
        # to the right: from (i, j) to (i, j + 1), excluding what came from the right
        h = phi * msg[0] * msg[2] * msg[3]
        m = h[:, :-1] @ pair
        new[0, :, 1:] = m / m.sum(axis=-1, keepdims=True)
        h = phi * msg[1] * msg[2] * msg[3]  # to the left
        m = h[:, 1:] @ pair.T
        new[1, :, :-1] = m / m.sum(axis=-1, keepdims=True)
        h = phi * msg[0] * msg[1] * msg[2]  # downwards
        m = h[:-1] @ pair
        new[2, 1:] = m / m.sum(axis=-1, keepdims=True)
        h = phi * msg[0] * msg[1] * msg[3]  # upwards
        m = h[1:] @ pair.T
        new[3, :-1] = m / m.sum(axis=-1, keepdims=True)
        new = (1 - damping) * new + damping * msg if damping else new
        done += 1
        if tol is not None and np.abs(new - msg).max() < tol:
            msg = new
            break
        msg = new
    b = phi * msg.prod(axis=0)
    b /= b.sum(axis=-1, keepdims=True)
    return b if tol is None else (b, done)


def fastml_grid(grid, potts=True):
    log_unary, beta = grid
    pair = beta * np.eye(K_GRID)
    if not potts:
        pair = pair + 1e-9 * np.arange(K_GRID * K_GRID).reshape(K_GRID, K_GRID)
    mrf = PairwiseMRF(log_unary, pair)

    def run():
        return mrf.loopy_belief_propagation(max_iter=SWEEPS, tol=0.0, n_jobs=1).beliefs

    return run


def numpy_grid(grid):
    log_unary, beta = grid
    pair = np.exp(beta * np.eye(K_GRID))
    pair /= pair.max()

    def run():
        return numpy_grid_bp(log_unary, pair, SWEEPS)

    return run


GRID_IMPLS = {
    "fastml-potts": fastml_grid,
    "fastml-general": lambda g: fastml_grid(g, potts=False),
    "numpy": numpy_grid,
}


@pytest.mark.parametrize("impl", list(GRID_IMPLS))
def bench_grid_loopy_bp(benchmark, impl, grid):
    benchmark.group = "bp-grid-256-K8"
    fn = GRID_IMPLS[impl](grid)
    benchmark.extra_info.update(
        H=H, W=W, K=K_GRID, sweeps=SWEEPS, kernel=_bp_grid.__name__
    )
    out = benchmark.pedantic(fn, rounds=5, iterations=1)
    benchmark.extra_info["sweeps_per_s"] = SWEEPS / benchmark.stats.stats.min
    np.testing.assert_allclose(out, numpy_grid(grid)(), atol=1e-6)


GRID_TOL = 1e-6


def converge_numpy(grid):
    log_unary, beta = grid
    pair = np.exp(beta * np.eye(K_GRID))
    pair /= pair.max()

    def run():
        return numpy_grid_bp(log_unary, pair, 500, tol=GRID_TOL)

    return run


def converge_fastml(grid, schedule):
    log_unary, beta = grid
    mrf = PairwiseMRF.potts(log_unary, beta)

    def run():
        r = mrf.loopy_belief_propagation(
            max_iter=500, tol=GRID_TOL, schedule=schedule, n_jobs=1
        )
        return r.beliefs, r.n_iter

    return run


CONVERGE_IMPLS = {
    "fastml-parallel": lambda g: converge_fastml(g, "parallel"),
    "fastml-checkerboard": lambda g: converge_fastml(g, "checkerboard"),
    "numpy": converge_numpy,
}


@pytest.mark.parametrize("impl", list(CONVERGE_IMPLS))
def bench_grid_to_convergence(benchmark, impl, grid):
    benchmark.group = "bp-grid-256-K8-converge"
    fn = CONVERGE_IMPLS[impl](grid)
    benchmark.extra_info.update(H=H, W=W, K=K_GRID, tol=GRID_TOL)
    beliefs, sweeps = benchmark.pedantic(fn, rounds=3, iterations=1)
    benchmark.extra_info["sweeps"] = int(sweeps)
    ref, _ = converge_numpy(grid)()
    np.testing.assert_allclose(beliefs, ref, atol=1e-5)  # same fixed point


# ---------------------------------------------------------------------------------
# 512 x 512 Potts grid, 8 labels, on threads

H_BIG = 512
SWEEPS_BIG = 8


@pytest.fixture(scope="module")
def big_grid():
    rng = np.random.default_rng(3)
    return PairwiseMRF.potts(rng.standard_normal((H_BIG, H_BIG, K_GRID)), 0.7)


@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("schedule", ["parallel", "checkerboard"])
def bench_grid_threads(benchmark, all_cores, n_jobs, schedule, big_grid):
    benchmark.group = f"bp-grid-{H_BIG}-K{K_GRID}-{schedule}-threads"
    benchmark.extra_info.update(
        H=H_BIG, W=H_BIG, K=K_GRID, sweeps=SWEEPS_BIG, n_jobs=n_jobs,
        kernel=_bp_grid.__name__,
    )  # fmt: skip

    def run():
        return big_grid.loopy_belief_propagation(
            max_iter=SWEEPS_BIG, tol=0.0, schedule=schedule, n_jobs=n_jobs
        ).beliefs

    out = benchmark.pedantic(run, rounds=3, iterations=1)
    ref = big_grid.loopy_belief_propagation(
        max_iter=SWEEPS_BIG, tol=0.0, schedule=schedule, n_jobs=3 - n_jobs
    ).beliefs
    assert (out == ref).all()  # the same bits with the other thread count
