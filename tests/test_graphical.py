"""fastml.graphical: exact message passing vs brute-force enumeration, d-separation vs
conditional independence of the enumerated joint, loopy BP fixed points, the Asia
network, and bad input. All random graphs use fixed seeds."""

import itertools
import math

import numpy as np
import pytest

from fastml.graphical import (
    BayesianNetwork,
    FactorGraph,
    MarkovNetwork,
    PairwiseMRF,
    _grid,
)

# ---------------------------------------------------------------------------------
# brute force


def brute_force(fg):
    """Enumerate the joint: (log Z, variable marginals, factor marginals, argmax, max)."""
    names = fg.variables
    cards = [fg.cardinality(n) for n in names]
    logp = np.zeros(cards)
    for i in range(fg.n_factors):
        vs, tab = fg.factor(i)
        axes = [names.index(v) for v in vs]
        with np.errstate(divide="ignore"):
            lt = np.log(tab)
        lt = np.transpose(lt, np.argsort(axes))
        shape = [1] * len(names)
        for a in axes:
            shape[a] = cards[a]
        logp = logp + lt.reshape(shape)
    for v, s in fg.evidence.items():
        a = names.index(v)
        keep = np.full(cards[a], -np.inf)
        keep[s] = 0.0
        shape = [1] * len(names)
        shape[a] = cards[a]
        logp = logp + keep.reshape(shape)
    log_z = np.logaddexp.reduce(logp.ravel())
    p = np.exp(logp - log_z)
    marg = {
        n: p.sum(axis=tuple(j for j in range(len(names)) if j != i))
        for i, n in enumerate(names)
    }
    fmarg = []
    for i in range(fg.n_factors):
        vs, _ = fg.factor(i)
        axes = [names.index(v) for v in vs]
        m = p.sum(axis=tuple(j for j in range(len(names)) if j not in axes))
        fmarg.append(np.transpose(m, np.argsort(np.argsort(axes))))
    best = np.unravel_index(np.argmax(logp), cards)
    return log_z, marg, fmarg, dict(zip(names, map(int, best), strict=True)), logp.max()


def random_forest(rng, n_vars, zeros=False):
    """A random factor forest: factors of arity 1-3 (sometimes 4) and cards 2-4."""
    cards = rng.integers(2, 4, size=n_vars)
    if n_vars > 3:
        cards[rng.integers(n_vars)] = 4
    fg = FactorGraph({f"v{i}": int(c) for i, c in enumerate(cards)})
    order = [f"v{i}" for i in rng.permutation(n_vars)]
    placed = [order[0]]
    rest = order[1:]
    while rest:
        k = int(rng.choice([1, 2, 3, 4], p=[0.1, 0.2, 0.5, 0.2]))
        k = min(k, len(rest))
        new, rest = rest[:k], rest[k:]
        scope = new if rng.random() < 0.1 else [placed[rng.integers(len(placed))], *new]
        placed += new
        scope = list(rng.permutation(scope))
        shape = tuple(fg.cardinality(v) for v in scope)
        table = np.exp(2.0 * rng.standard_normal(shape))
        if zeros:
            table[rng.random(shape) < 0.15] = 0.0
            table.flat[rng.integers(table.size)] = 1.0
        fg.add_factor(scope, table)
    for _ in range(rng.integers(0, 4)):  # unary factors never close a loop
        v = order[rng.integers(n_vars)]
        fg.add_factor([v], rng.random(fg.cardinality(v)) + 0.05)
    return fg


@pytest.mark.parametrize("seed", range(40))
def test_sum_product_and_max_sum_equal_enumeration(seed):
    rng = np.random.default_rng(seed)
    fg = random_forest(rng, int(rng.integers(1, 13)), zeros=seed % 3 == 0)
    if seed % 2:
        # evidence on states with positive probability (read off the enumerated joint)
        _, marg, _, _, _ = brute_force(fg)
        names = fg.variables
        ev = {}
        for v in rng.permutation(names)[: rng.integers(1, 3)]:
            ev[v] = int(np.argmax(marg[v]))
        fg.set_evidence(ev)
        try:
            brute_force(fg)
        except FloatingPointError:  # pragma: no cover
            pytest.skip("evidence impossible")
    log_z, marg, fmarg, best, best_val = brute_force(fg)
    if not np.isfinite(log_z):
        with pytest.raises(ValueError, match="probability zero"):
            fg.sum_product()
        return
    r = fg.sum_product()
    assert r.log_z == pytest.approx(log_z, abs=1e-12)  # oracle: enumeration
    for v in fg.variables:
        np.testing.assert_allclose(r.marginal(v), marg[v], atol=1e-12, rtol=0)
    for i in range(fg.n_factors):
        np.testing.assert_allclose(r.factor_marginal(i), fmarg[i], atol=1e-12, rtol=0)
    m = fg.max_sum()
    assert m.assignment == best  # oracle: argmax of the enumerated joint
    assert m.log_score == pytest.approx(best_val, abs=1e-12)
    assert m.log_prob == pytest.approx(best_val - log_z, abs=1e-12)


def test_long_chain_does_not_underflow():
    # 1e5 variables, 10 states: Z underflows float64 by far, ln Z must stay finite.
    # Oracle: a scaled forward recursion in NumPy (PRML eq. 13.59), ln Z = fsum(ln c_n).
    rng = np.random.default_rng(0)
    n, K = 100_000, 10
    fg = FactorGraph([K] * n)
    pair = rng.random((K, K)) * 0.01 + 1e-3
    fg.add_factors(
        np.stack([np.arange(n - 1), np.arange(1, n)], 1),
        np.broadcast_to(pair, (n - 1, K, K)),
    )
    r = fg.sum_product()
    assert np.isfinite(r.log_z) and r.log_z < -1e5  # exp(-1e5) underflows
    alpha, logc = np.ones(K), [0.0] * n
    for t in range(n - 1):
        alpha = alpha @ pair
        c = alpha.sum()
        alpha /= c
        logc[t] = math.log(c)
    logc[-1] = math.log(alpha.sum())
    assert r.log_z == pytest.approx(math.fsum(logc), rel=1e-13)
    np.testing.assert_allclose(r.marginal(n - 1), alpha / alpha.sum(), atol=1e-12)


def test_loop_is_rejected_naming_loopy_bp():
    fg = FactorGraph([2, 2, 2])
    for a, b in [(0, 1), (1, 2), (2, 0)]:
        fg.add_factor([a, b], np.ones((2, 2)))
    assert not fg.is_tree()
    with pytest.raises(ValueError, match="loopy_belief_propagation"):
        fg.sum_product()
    with pytest.raises(ValueError, match="loopy_belief_propagation"):
        fg.max_sum()


def test_cutset_conditioning_is_exact_on_loopy_graph():
    rng = np.random.default_rng(5)
    fg = FactorGraph([2, 3, 2, 2, 3])
    for a, b in [(0, 1), (1, 2), (2, 3), (3, 0), (1, 4), (4, 0)]:
        fg.add_factor(
            [a, b], np.exp(rng.standard_normal((fg.cardinality(a), fg.cardinality(b))))
        )
    fg.set_evidence({2: 1})
    log_z, marg, fmarg, best, best_val = brute_force(fg)
    r = fg.sum_product(cutset=[0, 1])
    assert r.log_z == pytest.approx(log_z, abs=1e-12)  # oracle: enumeration
    for v in fg.variables:
        np.testing.assert_allclose(r.marginal(v), marg[v], atol=1e-12)
    for i in range(fg.n_factors):
        np.testing.assert_allclose(r.factor_marginal(i), fmarg[i], atol=1e-12)
    m = fg.max_sum(cutset=[0, 1])
    assert m.assignment == best and m.log_score == pytest.approx(best_val, abs=1e-12)
    with pytest.raises(ValueError, match="cutset"):
        fg.sum_product(cutset=[4])


# ---------------------------------------------------------------------------------
# Asia (Lauritzen & Spiegelhalter 1988)

ASIA_EDGES = [
    ("asia", "tub"),
    ("smoke", "lung"),
    ("smoke", "bronc"),
    ("tub", "either"),
    ("lung", "either"),
    ("either", "xray"),
    ("either", "dysp"),
    ("bronc", "dysp"),
]


def asia():
    """The chest-clinic network; state 1 = yes. CPTs from Lauritzen & Spiegelhalter
    (1988), Table 1: axes (parents..., node)."""
    bn = BayesianNetwork(ASIA_EDGES)
    yes = lambda p: [1 - p, p]  # noqa: E731
    bn.add_cpd("asia", yes(0.01))
    bn.add_cpd("smoke", yes(0.5))
    bn.add_cpd("tub", [yes(0.01), yes(0.05)], parents=["asia"])
    bn.add_cpd("lung", [yes(0.01), yes(0.1)], parents=["smoke"])
    bn.add_cpd("bronc", [yes(0.3), yes(0.6)], parents=["smoke"])
    either = np.zeros((2, 2, 2))
    for t, lu in itertools.product((0, 1), (0, 1)):
        either[t, lu, int(t or lu)] = 1.0
    bn.add_cpd("either", either, parents=["tub", "lung"])
    bn.add_cpd("xray", [yes(0.05), yes(0.98)], parents=["either"])
    dysp = np.array([[yes(0.1), yes(0.8)], [yes(0.7), yes(0.9)]])  # [either, bronc]
    bn.add_cpd("dysp", dysp, parents=["either", "bronc"])
    return bn


# Published prior marginals P(node = yes) (Lauritzen & Spiegelhalter 1988, Fig. 4).
ASIA_PRIOR = {
    "asia": 0.01,
    "smoke": 0.5,
    "tub": 0.0104,
    "lung": 0.055,
    "bronc": 0.45,
    "either": 0.0648,
    "xray": 0.1103,
    "dysp": 0.4360,
}


def test_asia_marginals_published_enumeration_and_pgmpy():
    fg = asia().to_factor_graph()
    assert not fg.is_tree()  # smoke-lung-either-dysp-bronc loop
    r = fg.sum_product(cutset=["smoke"])
    for node, p in ASIA_PRIOR.items():
        assert r.marginal(node)[1] == pytest.approx(p, abs=6e-5)  # published, 4 digits
    log_z, marg, _, _, _ = brute_force(fg)
    assert r.log_z == pytest.approx(0.0, abs=1e-12) and log_z == pytest.approx(
        0, abs=1e-12
    )
    for v in fg.variables:
        np.testing.assert_allclose(r.marginal(v), marg[v], atol=1e-12)  # enumeration
    fg.set_evidence({"asia": 1, "dysp": 1})
    r = fg.sum_product(cutset=["smoke"])
    _, marg, _, _, _ = brute_force(fg)
    for v in fg.variables:
        np.testing.assert_allclose(r.marginal(v), marg[v], atol=1e-12)  # enumeration
    pgmpy = pytest.importorskip("pgmpy")
    del pgmpy
    from pgmpy.factors.discrete import TabularCPD
    from pgmpy.inference import VariableElimination
    from pgmpy.models import DiscreteBayesianNetwork

    bn = asia()
    model = DiscreteBayesianNetwork(ASIA_EDGES)
    for node in bn.nodes:
        ps, t = bn.cpd(node)
        vals = np.moveaxis(t, -1, 0).reshape(t.shape[-1], -1)
        model.add_cpds(
            TabularCPD(node, t.shape[-1], vals, evidence=ps or None,
                       evidence_card=[2] * len(ps) or None)
        )  # fmt: skip
    ve = VariableElimination(model)
    for node in ["tub", "lung", "bronc", "either", "xray", "smoke"]:
        q = ve.query([node], evidence={"asia": 1, "dysp": 1}, show_progress=False)
        np.testing.assert_allclose(r.marginal(node), q.values, atol=1e-12)  # pgmpy
    m = fg.max_sum(cutset=["smoke"])
    assert m.assignment["asia"] == 1 and m.assignment["dysp"] == 1


# ---------------------------------------------------------------------------------
# d-separation


def random_dag(rng, n, p_edge):
    order = rng.permutation(n)
    edges = [
        (f"n{order[i]}", f"n{order[j]}")
        for i in range(n)
        for j in range(i + 1, n)
        if rng.random() < p_edge
    ]
    return BayesianNetwork(edges, nodes=[f"n{i}" for i in range(n)])


def joint_of(bn, rng):
    """Random generic binary CPTs (Dirichlet(1) rows), and the enumerated joint."""
    nodes = sorted(bn.nodes)
    p = np.ones([2] * len(nodes))
    for node in nodes:
        ps = bn.parents(node)
        t = rng.dirichlet(np.ones(2), size=[2] * len(ps))
        axes = [nodes.index(q) for q in [*ps, node]]
        t = np.transpose(t, np.argsort(axes))
        shape = [1] * len(nodes)
        for a in axes:
            shape[a] = 2
        p = p * t.reshape(shape)
    return nodes, p


def cond_independent(nodes, p, xs, ys, zs, tol=1e-10):
    """X ⊥ Y | Z in the joint: p(x,y,z) p(z) == p(x,z) p(y,z) everywhere."""
    keep = [nodes.index(v) for v in [*xs, *ys, *zs]]
    other = tuple(i for i in range(len(nodes)) if i not in keep)
    pxyz = np.transpose(p.sum(axis=other), np.argsort(np.argsort(keep)))
    pxyz = pxyz.reshape(2 ** len(xs), 2 ** len(ys), 2 ** len(zs))
    pz = pxyz.sum(axis=(0, 1))
    pxz = pxyz.sum(axis=1)
    pyz = pxyz.sum(axis=0)
    return np.abs(pxyz * pz[None, None] - pxz[:, None] * pyz[None]).max() < tol


@pytest.mark.parametrize("seed", range(30))
def test_d_separation_equals_conditional_independence(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(3, 8))
    bn = random_dag(rng, n, p_edge=float(rng.uniform(0.2, 0.6)))
    nodes, p = joint_of(bn, rng)
    for _ in range(25):
        perm = list(rng.permutation(nodes))
        nx, ny = rng.integers(1, 3), rng.integers(1, 3)
        nz = rng.integers(0, max(1, n - nx - ny) + 1)
        xs, ys = perm[:nx], perm[nx : nx + ny]
        zs = perm[nx + ny : nx + ny + nz]
        if not ys:
            continue
        sep = bn.d_separated(xs, ys, given=zs)
        # oracle: conditional independence in the enumerated joint (generic CPTs are
        # faithful with probability 1; tolerance 1e-10 on p(x,y,z)p(z) - p(x,z)p(y,z))
        assert sep == cond_independent(nodes, p, xs, ys, zs), (xs, ys, zs, bn.edges)


def test_d_separation_vs_pgmpy():
    pytest.importorskip("pgmpy")
    from pgmpy.models import DiscreteBayesianNetwork

    rng = np.random.default_rng(7)
    for _ in range(5):
        bn = random_dag(rng, 7, 0.35)
        model = DiscreteBayesianNetwork(bn.edges)
        model.add_nodes_from(bn.nodes)
        for _ in range(20):
            perm = list(rng.permutation(bn.nodes))
            xs, ys, zs = perm[:1], perm[1:2], perm[2 : 2 + rng.integers(0, 4)]
            ours = bn.d_separated(xs, ys, zs)
            theirs = not model.is_dconnected(xs[0], ys[0], observed=zs)
            assert ours == theirs  # oracle: pgmpy


def test_markov_blankets_and_structure():
    bn = BayesianNetwork(ASIA_EDGES)
    assert set(bn.parents("dysp")) == {"either", "bronc"}
    assert set(bn.children("smoke")) == {"lung", "bronc"}
    assert bn.markov_blanket("lung") == {"smoke", "either", "tub"}
    assert bn.markov_blanket("either") == {"tub", "lung", "xray", "dysp", "bronc"}
    mn = MarkovNetwork([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])
    assert mn.markov_blanket("c") == {"a", "b", "d"}
    # the Markov blanket screens a node off from the rest (checked in the joint)
    rng = np.random.default_rng(3)
    bn = random_dag(rng, 7, 0.4)
    nodes, p = joint_of(bn, rng)
    for node in nodes:
        mb = sorted(bn.markov_blanket(node))
        rest = [v for v in nodes if v != node and v not in mb]
        if rest:
            assert cond_independent(nodes, p, [node], rest, mb)


# ---------------------------------------------------------------------------------
# loopy BP


def random_loopy(rng, n, coupling):
    fg = FactorGraph([2] * n)
    for i in range(n):
        fg.add_factor([i], np.exp(0.5 * rng.standard_normal(2)))
    edges = {(i, (i + 1) % n) for i in range(n)} | {
        tuple(sorted(rng.choice(n, 2, replace=False))) for _ in range(n // 2)
    }
    for a, b in sorted(edges):
        fg.add_factor([a, b], np.exp(coupling * rng.standard_normal((2, 2))))
    return fg


@pytest.mark.parametrize("schedule", ["parallel", "sequential"])
def test_loopy_bp_exact_on_trees(schedule):
    rng = np.random.default_rng(11)
    fg = random_forest(rng, 10)
    fg.set_evidence({fg.variables[3]: 1})
    exact = fg.sum_product()
    r = fg.loopy_belief_propagation(max_iter=100, tol=1e-13, schedule=schedule)
    assert r.converged
    for v in fg.variables:
        np.testing.assert_allclose(r.marginal(v), exact.marginal(v), atol=1e-12)
    for i in range(fg.n_factors):
        np.testing.assert_allclose(
            r.factor_marginal(i), exact.factor_marginal(i), atol=1e-12
        )
    assert r.log_z_bethe == pytest.approx(
        exact.log_z, abs=1e-10
    )  # Bethe is exact on trees


@pytest.mark.parametrize("schedule", ["parallel", "sequential"])
def test_loopy_bp_fixed_point_equations(schedule):
    rng = np.random.default_rng(12)
    fg = random_loopy(rng, 8, 0.5)
    r = fg.loopy_belief_propagation(
        max_iter=500, tol=1e-12, damping=0.3, schedule=schedule
    )
    assert r.converged
    for i in range(fg.n_factors):
        vs, tab = fg.factor(i)
        for k, v in enumerate(vs):
            # PRML eq. 8.66: mu_{f->x} ∝ sum over the others of f times incoming messages
            t = tab.copy()
            for j, u in enumerate(vs):
                if j != k:
                    shape = [1] * len(vs)
                    shape[j] = -1
                    t = t * r.message_to_factor(u, i).reshape(shape)
            m = t.sum(axis=tuple(j for j in range(len(vs)) if j != k))
            np.testing.assert_allclose(
                r.message_to_variable(i, v), m / m.sum(), atol=1e-10
            )
            # PRML eq. 8.69: mu_{x->f} ∝ product of the other factors' messages
            prod = np.ones(2)
            for g in range(fg.n_factors):
                if g != i and v in fg.factor(g)[0]:
                    prod *= r.message_to_variable(g, v)
            np.testing.assert_allclose(
                r.message_to_factor(v, i), prod / prod.sum(), atol=1e-10
            )


def test_loopy_bp_close_to_enumeration_at_weak_coupling():
    # Not exact on a loopy graph: at weak coupling the error is small (measured here:
    # marginals 6.2e-4, Bethe ln Z 8.5e-4), at strong coupling it grows (7.6e-2). The
    # test bounds the error; it does not claim equality.
    rng = np.random.default_rng(13)
    fg = random_loopy(rng, 10, 0.2)
    _, marg, _, _, _ = brute_force(fg)
    r = fg.loopy_belief_propagation(max_iter=300, tol=1e-12)
    assert r.converged
    err = max(np.abs(r.marginal(v) - marg[v]).max() for v in fg.variables)
    assert 0 < err < 5e-3
    log_z, *_ = brute_force(fg)
    assert abs(r.log_z_bethe - log_z) < 5e-3
    strong = random_loopy(np.random.default_rng(13), 10, 1.5)
    _, marg_s, _, _, _ = brute_force(strong)
    rs = strong.loopy_belief_propagation(max_iter=1000, tol=1e-10, damping=0.5)
    err_s = max(np.abs(rs.marginal(v) - marg_s[v]).max() for v in strong.variables)
    assert err_s > err


# ---------------------------------------------------------------------------------
# grid MRF


@pytest.mark.parametrize("potts", [True, False])
def test_grid_kernel_equals_generic_loopy_bp(potts):
    rng = np.random.default_rng(21)
    H, W, K = 5, 6, 3
    unary = rng.standard_normal((H, W, K))
    pair = 0.7 * np.eye(K) if potts else 0.5 * rng.standard_normal((K, K))
    mrf = PairwiseMRF(unary, pair)
    g = mrf.loopy_belief_propagation(max_iter=500, tol=1e-12)
    f = mrf.to_factor_graph().loopy_belief_propagation(max_iter=500, tol=1e-12)
    assert g.converged and f.converged
    beliefs = np.array([f.marginal(i) for i in range(H * W)]).reshape(H, W, K)
    # oracle: generic loopy BP
    np.testing.assert_allclose(g.beliefs, beliefs, atol=1e-9)
    c = mrf.loopy_belief_propagation(max_iter=500, tol=1e-12, schedule="checkerboard")
    assert c.converged and c.n_iter < g.n_iter
    np.testing.assert_allclose(c.beliefs, beliefs, atol=1e-9)  # same fixed point


@pytest.mark.parametrize("potts", [True, False])
def test_grid_max_product_exact_on_a_line(potts):
    # a 1 x W grid is a chain: max-product's labels are the exact MAP (oracle: max_sum)
    rng = np.random.default_rng(22)
    W, K = 9, 3
    unary = rng.standard_normal((1, W, K))
    pair = 0.8 * np.eye(K) if potts else rng.standard_normal((K, K))
    mrf = PairwiseMRF(unary, pair)
    g = mrf.loopy_belief_propagation(method="max", max_iter=100, tol=1e-12)
    m = mrf.to_factor_graph().max_sum()
    assert g.converged
    assert list(g.labels[0]) == list(m.states)
    c = mrf.loopy_belief_propagation(method="max", tol=1e-12, schedule="checkerboard")
    assert c.converged and list(c.labels[0]) == list(m.states)  # oracle: max_sum
    s = mrf.loopy_belief_propagation(method="sum", tol=1e-13)
    exact = mrf.to_factor_graph().sum_product()
    np.testing.assert_allclose(
        s.beliefs[0], exact.variable_beliefs.reshape(W, K), atol=1e-12
    )


def _grid_bp_reference(
    log_unary, log_pair, sweeps, damping, is_max, checkerboard=False
):
    """Loopy BP on a grid in plain NumPy, one sweep at a time (independent of the
    kernel's layout and fusion): messages[d, i, j] arrive at (i, j) from its left,
    right, upper, lower neighbour; border messages stay uniform. Flooding, or red-black:
    the messages into the pixels with (i + j) % 2 == 0, then into the others."""
    H, W, K = log_unary.shape
    if is_max:
        phi, pair = log_unary, log_pair
    else:
        phi = np.exp(log_unary - log_unary.max(axis=2, keepdims=True))
        pair = np.exp(log_pair - log_pair.max())
    msg = np.full((4, H, W, K), 0.0 if is_max else 1.0 / K)
    edge = 0.0 if is_max else 1.0
    msg[0, :, 0] = msg[1, :, -1] = msg[2, 0] = msg[3, -1] = edge

    def send(h, table):  # h (..., K) -> message (..., K) through table[x, y]
        if is_max:
            m = (h[..., :, None] + table).max(axis=-2)
            return m - m.max(axis=-1, keepdims=True)
        m = h @ table
        return m / m.sum(axis=-1, keepdims=True)

    comb = np.add if is_max else np.multiply
    colour = np.add.outer(np.arange(H), np.arange(W)) % 2
    for t in range(2 * sweeps if checkerboard else sweeps):
        new = msg.copy()
        cav = [
            comb(comb(comb(phi, msg[a]), msg[b]), msg[c])
            for a, b, c in [(0, 2, 3), (1, 2, 3), (0, 1, 2), (0, 1, 3)]
        ]  # to right, left, down, up
        new[0, :, 1:] = send(cav[0][:, :-1], pair)
        new[1, :, :-1] = send(cav[1][:, 1:], pair.T)
        new[2, 1:] = send(cav[2][:-1], pair)
        new[3, :-1] = send(cav[3][1:], pair.T)
        new = (1 - damping) * new + damping * msg
        if checkerboard:  # half-sweep t updates the messages into colour t % 2 only
            new[:, colour != t % 2] = msg[:, colour != t % 2]
        msg = new
    b = comb(phi, comb(comb(msg[0], msg[1]), comb(msg[2], msg[3])))
    if is_max:
        return b - b.max(axis=-1, keepdims=True)
    return b / b.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("method", ["sum", "max"])
@pytest.mark.parametrize("potts", [True, False])
def test_grid_kernel_sweep_by_sweep(method, potts):
    # oracle: the plain NumPy recursion above, for every sweep count 1..9 (the kernel
    # fuses up to GRID_FUSE flooding sweeps per pass, and both colours of a red-black
    # sweep), odd and even widths, single rows and columns, damping
    rng = np.random.default_rng(23)
    for (H, W, K), damping in [
        ((5, 7, 3), 0.0),
        ((4, 6, 2), 0.3),
        ((1, 5, 3), 0.1),
        ((6, 1, 2), 0.0),
        ((1, 1, 4), 0.0),
        ((9, 8, 5), 0.5),
    ]:
        unary = rng.standard_normal((H, W, K))
        pair = 0.9 * np.eye(K) if potts else rng.standard_normal((K, K))
        mrf = PairwiseMRF(unary, pair)
        for sweeps, schedule in itertools.product(
            range(1, 10), ["parallel", "checkerboard"]
        ):
            r = mrf.loopy_belief_propagation(
                max_iter=sweeps, tol=0.0, damping=damping, method=method,
                schedule=schedule,
            )  # fmt: skip
            assert r.n_iter == sweeps
            ref = _grid_bp_reference(
                unary,
                pair,
                sweeps,
                damping,
                method == "max",
                schedule == "checkerboard",
            )
            np.testing.assert_allclose(r.beliefs, ref, atol=1e-12, rtol=0)


def test_grid_bp_strips_match_numpy_recursion(monkeypatch):
    # oracle: the plain NumPy sweep-by-sweep recursion above (one array, no strips,
    # no fusion), with threads (tests/test_threads_bp_conv.py: the same bits for
    # every n_jobs), on grids cut into strips of 2 rows and of 64 rows
    rng = np.random.default_rng(4)
    for strip, (H, W, K) in [(2, (9, 4, 3)), (64, (129, 3, 2))]:
        monkeypatch.setattr(_grid, "_STRIP_ROWS", strip)
        unary = rng.standard_normal((H, W, K))
        pair = rng.standard_normal((K, K))
        mrf = PairwiseMRF(unary, pair)
        for sweeps in (1, 3, 4, 6, 9):
            for method in ("sum", "max"):
                for schedule in ("parallel", "checkerboard"):
                    r = mrf.loopy_belief_propagation(
                        max_iter=sweeps, tol=0.0, damping=0.2, method=method,
                        schedule=schedule, n_jobs=3,
                    )  # fmt: skip
                    ref = _grid_bp_reference(
                        unary, pair, sweeps, 0.2, method == "max",
                        schedule == "checkerboard",
                    )  # fmt: skip
                    np.testing.assert_allclose(r.beliefs, ref, atol=1e-12, rtol=0)


def test_grid_bp_threads_converge_to_a_fixed_point():
    # both schedules, on threads, over three strips: they converge, agree with each
    # other (the same BP fixed point), and the NumPy recursion run one sweep longer
    # than the flooding run gives the same beliefs to 1e-9 (a fixed point)
    rng = np.random.default_rng(5)
    unary = 0.5 * rng.standard_normal((150, 4, 3))
    mrf = PairwiseMRF.potts(unary, 0.4)
    kw = dict(max_iter=2000, tol=1e-12, n_jobs=2)
    flood = mrf.loopy_belief_propagation(schedule="parallel", **kw)
    red_black = mrf.loopy_belief_propagation(schedule="checkerboard", **kw)
    assert flood.converged and red_black.converged
    np.testing.assert_allclose(red_black.beliefs, flood.beliefs, atol=1e-9)
    ref = _grid_bp_reference(unary, 0.4 * np.eye(3), flood.n_iter + 1, 0.0, False)
    np.testing.assert_allclose(flood.beliefs, ref, atol=1e-9)


@pytest.mark.parametrize("schedule", ["parallel", "checkerboard"])
def test_grid_bp_strips_exact_and_equal_generic_bp(schedule, monkeypatch):
    # strips of 2 rows on 3 threads. A 9 x 1 grid is a chain: sum-product marginals
    # and max-product labels are exact (oracle: brute-force enumeration). A 9 x 4
    # grid: the fixed point of the generic factor-graph loopy BP (oracle)
    monkeypatch.setattr(_grid, "_STRIP_ROWS", 2)
    rng = np.random.default_rng(24)
    chain = PairwiseMRF(rng.standard_normal((9, 1, 3)), rng.standard_normal((3, 3)))
    _, marg, _, best, _ = brute_force(chain.to_factor_graph())
    kw = dict(max_iter=200, tol=1e-13, schedule=schedule, n_jobs=3)
    s = chain.loopy_belief_propagation(**kw)
    m = chain.loopy_belief_propagation(method="max", **kw)
    assert s.converged and m.converged
    exact = np.array([marg[v] for v in chain.to_factor_graph().variables])
    np.testing.assert_allclose(s.beliefs[:, 0], exact, atol=1e-12)
    assert list(m.labels[:, 0]) == [best[v] for v in sorted(best)]
    grid = PairwiseMRF(
        rng.standard_normal((9, 4, 3)), 0.5 * rng.standard_normal((3, 3))
    )
    g = grid.loopy_belief_propagation(max_iter=500, tol=1e-12, schedule=schedule,
                                      n_jobs=3)  # fmt: skip
    f = grid.to_factor_graph().loopy_belief_propagation(max_iter=500, tol=1e-12)
    assert g.converged and f.converged
    beliefs = np.array([f.marginal(i) for i in range(36)]).reshape(9, 4, 3)
    np.testing.assert_allclose(g.beliefs, beliefs, atol=1e-9)


def test_grid_denoising_reduces_error():
    rng = np.random.default_rng(0)
    H = W = 48
    yy, xx = np.mgrid[:H, :W]
    clean = ((xx - 24) ** 2 + (yy - 24) ** 2 < 15**2).astype(int)
    noisy = np.where(rng.random((H, W)) < 0.1, 1 - clean, clean)
    unary = np.where(np.eye(2)[noisy] > 0, 1.1, -1.1)  # ln(0.9/0.1)/2 per side
    mrf = PairwiseMRF.potts(unary, 1.0)
    before = (noisy != clean).mean()
    for method in ("sum", "max"):
        after = (mrf.loopy_belief_propagation(method=method).labels != clean).mean()
        assert after < before / 3


# ---------------------------------------------------------------------------------
# bad input


def test_bad_input():
    fg = FactorGraph({"a": 2, "b": 3})
    with pytest.raises(ValueError, match=r"table must have shape \(2, 3\)"):
        fg.add_factor(["a", "b"], np.ones((3, 2)))
    with pytest.raises(ValueError, match="table must hold finite non-negative"):
        fg.add_factor(["a"], [0.5, -0.1])
    with pytest.raises(ValueError, match="at least one positive"):
        fg.add_factor(["a"], [0.0, 0.0])
    with pytest.raises(ValueError, match="NaN"):
        fg.add_factor(["a"], [np.nan, 1.0])
    with pytest.raises(ValueError, match="unknown variable 'c' in variables"):
        fg.add_factor(["c"], [1.0, 1.0])
    with pytest.raises(ValueError, match="distinct"):
        fg.add_factor(["a", "a"], np.ones((2, 2)))
    with pytest.raises(ValueError, match="unknown variable 'z' in evidence"):
        fg.set_evidence({"z": 0})
    with pytest.raises(
        ValueError, match=r"evidence for 'b' must be a state in \[0, 3\)"
    ):
        fg.set_evidence({"b": 3})
    with pytest.raises(TypeError, match="evidence for 'b' must be an int"):
        fg.set_evidence({"b": 1.5})
    fg.add_factor(["a", "b"], np.ones((2, 3)))
    with pytest.raises(ValueError, match="unknown variable 'q' in variable"):
        fg.sum_product().marginal("q")
    with pytest.raises(ValueError, match="damping must be <"):
        fg.loopy_belief_propagation(damping=1.0)
    zero = FactorGraph({"a": 2})
    zero.add_factor("a", [0.0, 1.0])
    zero.set_evidence({"a": 0})
    for method in (zero.sum_product, zero.max_sum, zero.loopy_belief_propagation):
        with pytest.raises(ValueError, match="probability zero"):
            method()
    with pytest.raises(ValueError, match="the factor graph has no variables"):
        FactorGraph([]).sum_product()
    with pytest.raises(TypeError, match="cardinalities must be a mapping"):
        FactorGraph([2.5])
    with pytest.raises(ValueError, match="cardinality of 1 must be >= 1"):
        FactorGraph([2, 0])
    with pytest.raises(ValueError, match="damping must be >="):
        fg.loopy_belief_propagation(damping=-0.1)
    with pytest.raises(ValueError, match="schedule"):
        fg.loopy_belief_propagation(schedule="random")
    with pytest.raises(TypeError, match="max_iter must be an int"):
        fg.loopy_belief_propagation(max_iter=2.5)
    with pytest.raises(ValueError, match="cardinality of 'c' must be >= 1"):
        fg.add_variable("c", 0)
    with pytest.raises(
        ValueError, match="edges: 'c' -> 'a' would close a directed cycle"
    ):
        BayesianNetwork([("a", "b"), ("b", "c"), ("c", "a")])
    bn = BayesianNetwork([("a", "b")])
    with pytest.raises(ValueError, match="unknown node 'q' in ys"):
        bn.d_separated("a", "q")
    with pytest.raises(ValueError, match="must sum to 1"):
        bn.add_cpd("a", [0.5, 0.6])
    with pytest.raises(ValueError, match="to_factor_graph needs a CPT"):
        bn.to_factor_graph()
    with pytest.raises(ValueError, match=r"log_pairwise must have shape \(2, 2\)"):
        PairwiseMRF(np.zeros((3, 3, 2)), np.zeros((3, 3)))
    mrf = PairwiseMRF.potts(np.zeros((3, 3, 2)), 1.0)
    with pytest.raises(ValueError, match="damping must be <"):
        mrf.loopy_belief_propagation(damping=1.5)
    with pytest.raises(
        ValueError, match="schedule must be 'parallel' or 'checkerboard'"
    ):
        mrf.loopy_belief_propagation(schedule="random")
    with pytest.raises(ValueError, match="method must be 'sum' or 'max'"):
        mrf.loopy_belief_propagation(method="mean")
    with pytest.raises(ValueError, match="log_unary must be 3-dimensional"):
        PairwiseMRF(np.zeros((3, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="log_unary must be finite"):
        PairwiseMRF(np.full((2, 2, 2), np.nan), np.zeros((2, 2)))
