"""Bayesian networks: d-separation by the Bayes ball, Markov blankets and conditional
probability tables (PRML sec. 8.1-8.2).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import numpy as np

from fastml._typing import ArrayLike, FloatArray
from fastml._validation import check_array
from fastml.graphical._factor_graph import FactorGraph

__all__ = ["BayesianNetwork"]


def _node_list(nodes, name: str) -> list:
    if isinstance(nodes, (str, bytes)) or not isinstance(nodes, Iterable):
        return [nodes]
    return list(nodes)


class BayesianNetwork:
    """A directed acyclic graph over named nodes, with optional CPTs.

    Parameters
    ----------
    edges : iterable of (parent, child)
        Directed edges; a cycle raises ValueError.
    nodes : iterable, optional
        Extra nodes without edges.

    Notes
    -----
    p(x) = prod_k p(x_k | pa_k) (PRML eq. 8.5). :meth:`d_separated` uses the reachability
    algorithm ("Bayes ball"; Koller & Friedman 2009, Algorithm 3.1; Shachter 1998),
    linear in the size of the graph.

    Examples
    --------
    >>> from fastml.graphical import BayesianNetwork
    >>> bn = BayesianNetwork([("a", "c"), ("b", "c"), ("c", "d")])
    >>> bn.d_separated("a", "b"), bn.d_separated("a", "b", given=["d"])
    (True, False)
    >>> sorted(bn.markov_blanket("a"))
    ['b', 'c']
    """

    def __init__(
        self,
        edges: Iterable[tuple[Hashable, Hashable]] = (),
        nodes: Iterable[Hashable] = (),
    ) -> None:
        self._parents: dict = {}
        self._children: dict = {}
        self._cpds: dict = {}
        self._card: dict = {}
        for n in nodes:
            self.add_node(n)
        for edge in edges:
            try:
                u, v = edge
            except (TypeError, ValueError):
                raise TypeError(
                    f"edges must be (parent, child) pairs, got {edge!r}"
                ) from None
            self.add_edge(u, v)

    def add_node(self, node: Hashable) -> None:
        """Add a node with no edges (nothing happens if it exists); nodes must be hashable."""
        if not isinstance(node, Hashable):
            raise TypeError(f"nodes must be hashable, got {type(node).__name__}")
        if node not in self._parents:
            self._parents[node] = []
            self._children[node] = []

    def add_edge(self, u: Hashable, v: Hashable) -> None:
        """Add u -> v; raises ValueError if it would close a directed cycle."""
        if u == v:
            raise ValueError(f"edges: self-loop {u!r} -> {v!r} makes a cycle")
        self.add_node(u)
        self.add_node(v)
        if u in self._parents[v]:
            return
        if u in self._descendants(v):
            raise ValueError(
                f"edges: {u!r} -> {v!r} would close a directed cycle; a Bayesian network "
                "must be acyclic"
            )
        self._parents[v].append(u)
        self._children[u].append(v)
        self._cpds.pop(v, None)

    @property
    def nodes(self) -> list[Hashable]:
        """The nodes, in insertion order."""
        return list(self._parents)

    @property
    def edges(self) -> list[tuple[Hashable, Hashable]]:
        """The directed edges as ``(parent, child)`` pairs."""
        return [(u, v) for v, ps in self._parents.items() for u in ps]

    def _check(self, node, name: str = "node"):
        if not isinstance(node, Hashable) or node not in self._parents:
            raise ValueError(f"unknown node {node!r} in {name}")
        return node

    def parents(self, node: Hashable) -> list[Hashable]:
        """The parents of ``node`` (ValueError if unknown)."""
        return list(self._parents[self._check(node)])

    def children(self, node: Hashable) -> list[Hashable]:
        """The children of ``node`` (ValueError if unknown)."""
        return list(self._children[self._check(node)])

    def _descendants(self, node) -> set:
        seen, stack = {node}, [node]
        while stack:
            for c in self._children[stack.pop()]:
                if c not in seen:
                    seen.add(c)
                    stack.append(c)
        return seen

    def topological_order(self) -> list[Hashable]:
        """The nodes ordered so that every parent comes before its children (Kahn's algorithm)."""
        indeg = {n: len(p) for n, p in self._parents.items()}
        order = [n for n, d in indeg.items() if d == 0]
        for n in order:
            for c in self._children[n]:
                indeg[c] -= 1
                if indeg[c] == 0:
                    order.append(c)
        return order

    def markov_blanket(self, node: Hashable) -> set[Hashable]:
        """Parents, children and the children's other parents (PRML sec. 8.2, Fig. 8.26)."""
        node = self._check(node)
        mb = set(self._parents[node]) | set(self._children[node])
        for c in self._children[node]:
            mb.update(self._parents[c])
        mb.discard(node)
        return mb

    def reachable(
        self,
        source: Hashable | Iterable[Hashable],
        given: Hashable | Iterable[Hashable] = (),
    ) -> set[Hashable]:
        """Nodes with an active trail from ``source`` given ``given`` (Bayes ball).

        Koller & Friedman (2009), Algorithm 3.1: first mark ``given`` and its ancestors
        (a v-structure is active when its middle node or a descendant is observed), then
        search over (node, direction) pairs.
        """
        sources = [self._check(s, "xs") for s in _node_list(source, "xs")]
        z = {self._check(g, "given") for g in _node_list(given, "given")}
        anc, stack = set(z), list(z)
        while stack:
            for p in self._parents[stack.pop()]:
                if p not in anc:
                    anc.add(p)
                    stack.append(p)
        visit = [(s, "up") for s in sources]
        visited, reach = set(), set()
        while visit:
            y, d = visit.pop()
            if (y, d) in visited:
                continue
            visited.add((y, d))
            if y not in z:
                reach.add(y)
            if d == "up" and y not in z:
                visit.extend((p, "up") for p in self._parents[y])
                visit.extend((c, "down") for c in self._children[y])
            elif d == "down":
                if y not in z:
                    visit.extend((c, "down") for c in self._children[y])
                if y in anc:
                    visit.extend((p, "up") for p in self._parents[y])
        return reach

    def d_separated(
        self,
        xs: Hashable | Iterable[Hashable],
        ys: Hashable | Iterable[Hashable],
        given: Hashable | Iterable[Hashable] = (),
    ) -> bool:
        """True if every trail between ``xs`` and ``ys`` is blocked by ``given``
        (PRML sec. 8.2.2), so that xs ⊥ ys | given in every distribution that factorises
        over the graph."""
        xs, ys = _node_list(xs, "xs"), _node_list(ys, "ys")
        given = _node_list(given, "given")
        for name, group in (("xs", xs), ("ys", ys), ("given", given)):
            for n in group:
                self._check(n, name)
        if not xs or not ys:
            raise ValueError("xs and ys must each name at least one node")
        sx, sy, sz = set(xs), set(ys), set(given)
        if sx & sy or sx & sz or sy & sz:
            raise ValueError("xs, ys and given must be disjoint sets of nodes")
        return not (self.reachable(xs, given) & sy)

    # -- CPTs ----------------------------------------------------------------------
    def add_cpd(
        self,
        node: Hashable,
        table: ArrayLike,
        parents: Sequence[Hashable] | None = None,
    ) -> None:
        """Set p(node | parents) as a table of shape ``(*parent cards, card(node))``.

        ``parents`` gives the order of the leading axes (default :meth:`parents`); the
        last axis must sum to 1 (within 1e-8) and entries be non-negative.
        """
        node = self._check(node)
        ps = self._parents[node] if parents is None else _node_list(parents, "parents")
        if sorted(map(repr, ps)) != sorted(map(repr, self._parents[node])) or len(
            ps
        ) != len(self._parents[node]):
            raise ValueError(
                f"parents must be the parents of {node!r} {self._parents[node]!r} "
                f"in some order, got {ps!r}"
            )
        t = check_array(table, "table", dtype=np.float64)
        if t.ndim != len(ps) + 1:
            raise ValueError(
                f"table for {node!r} must have {len(ps) + 1} axes (parents, then the "
                f"node), got shape {t.shape}"
            )
        for axis, n in zip(range(t.ndim), [*ps, node], strict=True):
            known = self._card.get(n)
            if known is not None and n not in (node,) and known != t.shape[axis]:
                raise ValueError(
                    f"table axis {axis} ({n!r}) has size {t.shape[axis]}, but {n!r} has "
                    f"cardinality {known}"
                )
        if (t < 0).any():
            raise ValueError(f"table for {node!r} must be non-negative")
        sums = t.sum(axis=-1)
        if not np.allclose(sums, 1.0, atol=1e-8, rtol=0):
            bad = np.unravel_index(np.argmax(np.abs(sums - 1)), sums.shape)
            raise ValueError(
                f"table for {node!r} must sum to 1 over its last axis (at {bad} it sums "
                f"to {float(sums[bad]):.6g}, tol=1e-8)"
            )
        for n, size in zip([*ps, node], t.shape, strict=True):
            self._card[n] = int(size)
        self._cpds[node] = (list(ps), t)

    def cpd(self, node: Hashable) -> tuple[list[Hashable], FloatArray]:
        """(parents order, table) of ``node``'s CPT."""
        node = self._check(node)
        if node not in self._cpds:
            raise ValueError(f"no CPT set for node {node!r}")
        return self._cpds[node]

    def to_factor_graph(self) -> FactorGraph:
        """A factor graph with one factor p(x_k | pa_k) per node (PRML sec. 8.4.3)."""
        missing = [n for n in self._parents if n not in self._cpds]
        if missing:
            raise ValueError(
                f"to_factor_graph needs a CPT for every node; missing {missing!r}"
            )
        fg = FactorGraph({n: self._card[n] for n in self.topological_order()})
        for n in self.topological_order():
            ps, t = self._cpds[n]
            fg.add_factor([*ps, n], t)
        return fg
