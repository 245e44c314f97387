"""Markov networks: undirected graphs of clique potentials (PRML sec. 8.3)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

from fastml._typing import ArrayLike
from fastml._validation import as_ndarray
from fastml.graphical._bayesian_network import _node_list
from fastml.graphical._factor_graph import FactorGraph, _check_table

__all__ = ["MarkovNetwork"]


class MarkovNetwork:
    """An undirected graph (Markov random field) with optional clique factors.

    The Markov blanket of a node is its set of neighbours (PRML sec. 8.3.1).

    Examples
    --------
    >>> from fastml.graphical import MarkovNetwork
    >>> mn = MarkovNetwork([("a", "b"), ("b", "c")])
    >>> sorted(mn.markov_blanket("b"))
    ['a', 'c']
    """

    def __init__(
        self,
        edges: Iterable[tuple[Hashable, Hashable]] = (),
        nodes: Iterable[Hashable] = (),
    ) -> None:
        self._adj: dict = {}
        self._factors: list = []
        self._card: dict = {}
        for n in nodes:
            self.add_node(n)
        for edge in edges:
            try:
                u, v = edge
            except (TypeError, ValueError):
                raise TypeError(f"edges must be node pairs, got {edge!r}") from None
            self.add_edge(u, v)

    def add_node(self, node: Hashable) -> None:
        """Add a node with no edges (nothing happens if it exists); nodes must be hashable."""
        if not isinstance(node, Hashable):
            raise TypeError(f"nodes must be hashable, got {type(node).__name__}")
        self._adj.setdefault(node, set())

    def add_edge(self, u: Hashable, v: Hashable) -> None:
        """Add the undirected edge u - v; a self-loop is a ValueError."""
        if u == v:
            raise ValueError(f"edges: self-loop on {u!r}")
        self.add_node(u)
        self.add_node(v)
        self._adj[u].add(v)
        self._adj[v].add(u)

    @property
    def nodes(self) -> list[Hashable]:
        """The nodes, in insertion order."""
        return list(self._adj)

    def neighbors(self, node: Hashable) -> set[Hashable]:
        """The nodes adjacent to ``node`` (ValueError if unknown)."""
        if not isinstance(node, Hashable) or node not in self._adj:
            raise ValueError(f"unknown node {node!r} in node")
        return set(self._adj[node])

    def markov_blanket(self, node: Hashable) -> set[Hashable]:
        """The Markov blanket of ``node``: its neighbours (PRML sec. 8.3.1)."""
        return self.neighbors(node)

    def add_factor(
        self, nodes: Hashable | Sequence[Hashable], table: ArrayLike
    ) -> None:
        """A potential over ``nodes`` (which must be pairwise adjacent: a clique)."""
        nodes = _node_list(nodes, "nodes")
        for i, u in enumerate(nodes):
            self.neighbors(u)
            for v in nodes[i + 1 :]:
                if v not in self._adj[u]:
                    raise ValueError(
                        f"nodes {nodes!r} are not a clique: no edge {u}-{v}"
                    )
        t = as_ndarray(table, "table")
        if t.ndim != len(nodes):
            raise ValueError(f"table must have {len(nodes)} axes, got shape {t.shape}")
        for n, size in zip(nodes, t.shape, strict=True):
            if self._card.setdefault(n, int(size)) != size:
                raise ValueError(
                    f"table axis for {n!r} has size {size}, expected {self._card[n]}"
                )
        _check_table(t, "table", t.shape, False)
        self._factors.append((nodes, t))

    def to_factor_graph(self) -> FactorGraph:
        """One factor node per potential (PRML sec. 8.4.3)."""
        missing = [n for n in self._adj if n not in self._card]
        if missing:
            raise ValueError(
                f"nodes {missing!r} are in no factor (cardinality unknown)"
            )
        fg = FactorGraph({n: self._card[n] for n in self._adj})
        for nodes, t in self._factors:
            fg.add_factor(nodes, t)
        return fg
