"""Graphical models over discrete variables and message passing on them.

- :class:`BayesianNetwork`: a DAG with d-separation by the reachability ("Bayes ball")
  algorithm, Markov blankets and optional conditional probability tables.
- :class:`MarkovNetwork`: an undirected graph (Markov blanket = neighbours).
- :class:`FactorGraph`: discrete variables and dense factor tables with evidence;
  exact :meth:`~FactorGraph.sum_product` (marginals and ln Z) and
  :meth:`~FactorGraph.max_sum` (MAP) on trees and forests, and
  :meth:`~FactorGraph.loopy_belief_propagation` on graphs with cycles.
- :class:`PairwiseMRF`: Ising/Potts models on an image grid with a specialised loopy BP.

Graph structure (tree checks, schedules, d-separation) is handled here in Python; the
messages run in the compiled kernels of ``fastml._kernels._bp`` with the GIL released.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Hashable, Iterable, Mapping

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components

from fastml._kernels import _bp, variant
from fastml._validation import as_ndarray, check_array, check_int, check_real

# The grid kernel runs its AVX2 + FMA build where the CPU has it (about 1.3x faster per
# sweep); the factor-graph kernels, whose loops run over a few states, stay on the
# baseline build, which is faster for them (tree marginals: 23 vs 33 us).
_bp_grid = variant("_bp")

__all__ = [
    "BayesianNetwork",
    "FactorGraph",
    "GridBPResult",
    "LoopyBPResult",
    "MarkovNetwork",
    "MaxSumResult",
    "PairwiseMRF",
    "SumProductResult",
]

_IDX = np.intp


def _check_table(table, name: str, shape: tuple[int, ...], log: bool) -> np.ndarray:
    """A factor table as float64 of ``shape``: potentials >= 0 (or log-potentials < inf)
    with at least one positive entry. Returns the log table."""
    t = check_array(table, name, dtype=np.float64, finite=False)
    if t.shape != shape:
        raise ValueError(
            f"{name} must have shape {shape} (the cardinalities of its variables), "
            f"got {t.shape}"
        )
    if np.isnan(t).any():
        where = tuple(int(i) for i in np.argwhere(np.isnan(t))[0])
        raise ValueError(f"{name} must not contain NaN; found NaN at index {where}")
    if log:
        if np.isposinf(t).any():
            where = tuple(int(i) for i in np.argwhere(np.isposinf(t))[0])
            raise ValueError(f"{name} (log-potentials) must be < inf; +inf at {where}")
        logt = t
    else:
        if (t < 0).any() or np.isinf(t).any():
            bad = (t < 0) | np.isinf(t)
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{name} must hold finite non-negative potentials; "
                f"found {float(t[where])} at index {where}"
            )
        with np.errstate(divide="ignore"):
            logt = np.log(t)
    if not (logt > -np.inf).any():
        raise ValueError(f"{name} must have at least one positive potential")
    return np.ascontiguousarray(logt, dtype=np.float64)


class _Compiled:
    """The packed arrays the kernels read (see ``_bp`` module notes)."""

    def __init__(self, card: np.ndarray, batches: list):
        V = card.shape[0]
        scopes, sizes, tabs, arity, strides, maxes, ptabs = [], [], [], [], [], [], []
        for scope, logtab in batches:
            B, k = scope.shape
            scopes.append(scope.ravel())
            c = card[scope[0]]  # one shape per batch
            st = np.ones(k, _IDX)
            st[:-1] = np.cumprod(c[::-1])[::-1][1:]
            strides.append(np.tile(st, B))
            arity.append(np.full(B, k, dtype=_IDX))
            sizes.append(np.full(B, logtab.shape[1], dtype=_IDX))
            tabs.append(logtab.ravel())
            mx = logtab.max(axis=1)
            maxes.append(mx)
            pt = logtab - mx[:, None]
            ptabs.append(np.exp(pt, out=pt).ravel())
        evar = np.concatenate(scopes) if scopes else np.zeros(0, _IDX)
        arity = np.concatenate(arity) if arity else np.zeros(0, _IDX)
        sizes = np.concatenate(sizes) if sizes else np.zeros(0, _IDX)
        logtab = np.concatenate(tabs) if tabs else np.zeros(0)
        F, E = arity.shape[0], evar.shape[0]
        fptr = np.zeros(F + 1, _IDX)
        np.cumsum(arity, out=fptr[1:])
        efac = np.repeat(np.arange(F, dtype=_IDX), arity)
        ecard = card[evar]
        # C-order stride of each variable in its table: product of the later axes' sizes
        estride = np.concatenate(strides) if strides else np.zeros(0, _IDX)
        toff = np.zeros(F + 1, _IDX)
        np.cumsum(sizes, out=toff[1:])
        eoff = np.zeros(E + 1, _IDX)
        np.cumsum(ecard, out=eoff[1:])
        voff = np.zeros(V + 1, _IDX)
        np.cumsum(card, out=voff[1:])
        vedge = np.argsort(evar, kind="stable").astype(_IDX)
        vptr = np.zeros(V + 1, _IDX)
        np.cumsum(np.bincount(evar, minlength=V), out=vptr[1:])
        parts = [card, voff, fptr, evar, efac, estride, eoff, toff, vptr, vedge]
        header = np.zeros(17, _IDX)
        offs, pos = [], 17
        for p in parts:
            offs.append(pos)
            pos += p.shape[0]
        max_arity = int(arity.max()) if F else 0
        header[:4] = (V, F, E, max_arity)
        header[4:14] = offs
        header[14] = pos
        header[15] = logtab.shape[0]
        header[16] = int(card.max()) if V else 1
        self.graph = np.concatenate([header, *parts]).astype(_IDX)
        self.V, self.F, self.E = V, F, E
        self.card, self.voff, self.fptr, self.evar, self.efac = (
            card,
            voff,
            fptr,
            evar,
            efac,
        )
        self.estride, self.eoff, self.toff, self.vptr, self.vedge = (
            estride,
            eoff,
            toff,
            vptr,
            vedge,
        )
        self.logtab = logtab
        self.max_arity = max_arity
        self.max_card = int(header[16])
        if F:
            self.logmax = np.concatenate(maxes)
            self.log_offset = math.fsum(self.logmax)
            self.ptab = np.concatenate(ptabs)
        else:
            self.logmax = np.zeros(0)
            self.log_offset = 0.0
            self.ptab = np.zeros(0)
        self._schedule = None
        self.scratch = np.zeros(max(max_arity, 1), _IDX)

    def factor_beliefs(self, m_vf: np.ndarray) -> np.ndarray:
        """All factor marginals (flat) from the variable->factor messages."""
        out = np.empty(self.toff[-1])
        _bp.factor_beliefs(self.graph, self.ptab, m_vf, out, self.scratch)
        return out

    def schedule(self):
        """Leaves-to-root message order on a forest; raises on a cycle."""
        if self._schedule is not None:
            return self._schedule
        V, F, E = self.V, self.F, self.E
        n = V + F
        adj = coo_matrix(
            (np.ones(E), (self.evar, V + self.efac)), shape=(n + 1, n + 1)
        ).tocsr()
        n_comp, labels = connected_components(adj[:n, :n], directed=False)
        if E != n - n_comp:
            raise ValueError("the factor graph has a loop")
        _, first = np.unique(labels[:V], return_index=True)
        roots = first.astype(_IDX)
        rows = np.concatenate([self.evar, V + self.efac, np.full(roots.size, n), roots])
        cols = np.concatenate([V + self.efac, self.evar, roots, np.full(roots.size, n)])
        full = coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n + 1, n + 1))
        order, pred = breadth_first_order(
            full.tocsr(), n, directed=True, return_predecessors=True
        )
        order = order[1:]
        order = order[pred[order] != n][::-1]  # non-root nodes, leaves first
        par = pred[order]
        to_var = order >= V  # a factor sends to its parent variable
        var = np.where(to_var, par, order)
        fac = np.where(to_var, order, par) - V
        # edge id of each (variable, factor) pair
        keys = self.evar.astype(np.int64) * max(F, 1) + self.efac
        sorter = np.argsort(keys, kind="stable")
        q = var.astype(np.int64) * max(F, 1) + fac
        edge = sorter[np.searchsorted(keys, q, sorter=sorter)].astype(_IDX)
        self._schedule = (edge, to_var.astype(_IDX), roots)
        return self._schedule


class FactorGraph:
    """Discrete variables and factors (dense tables) with evidence.

    Parameters
    ----------
    cardinalities : mapping or sequence of int
        ``{name: cardinality}``, or a sequence of cardinalities for variables named
        ``0, 1, ..., n-1``. More variables can be added with :meth:`add_variable`.

    Notes
    -----
    A factor is a non-negative table over any number of variables, axes in the order the
    variables are given; tables are stored as log-potentials. The joint distribution is
    p(x) = (1/Z) prod_f f(x_f) (PRML eq. 8.59). Evidence clamps variables to states.

    References
    ----------
    C. M. Bishop, *Pattern Recognition and Machine Learning* (PRML), sec. 8.4, 2006.
    F. R. Kschischang, B. J. Frey, H.-A. Loeliger, "Factor graphs and the sum-product
    algorithm", IEEE Trans. Inf. Theory 47(2), 2001.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.graphical import FactorGraph
    >>> fg = FactorGraph({"a": 2, "b": 3})
    >>> fg.add_factor(["a"], [0.3, 0.7])
    0
    >>> fg.add_factor(["a", "b"], [[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
    1
    >>> r = fg.sum_product()
    >>> np.round(r.marginal("b"), 2)
    array([0.48, 0.23, 0.29])
    >>> fg.max_sum().assignment
    {'a': 1, 'b': 0}
    """

    def __init__(self, cardinalities=()):
        self._names: list = []
        self._index: dict = {}
        self._card: list[int] = []
        self._batches: list = []  # (scope ids (B, k), log tables (B, size), shape)
        self._n_factors = 0
        self._evidence: dict[int, int] = {}
        self._compiled: _Compiled | None = None
        if isinstance(cardinalities, Mapping):
            for name, c in cardinalities.items():
                self.add_variable(name, c)
            return
        cards = as_ndarray(cardinalities, "cardinalities")
        if cards.ndim != 1 or (cards.size and cards.dtype.kind not in "iu"):
            raise TypeError(
                "cardinalities must be a mapping {name: cardinality} or a sequence of "
                f"ints, got {cardinalities!r}"[:200]
            )
        if cards.size and cards.min() < 1:
            i = int(np.argmin(cards))
            raise ValueError(f"cardinality of {i!r} must be >= 1, got {int(cards[i])}")
        n = cards.size
        self._names = list(range(n))
        self._index = dict(zip(self._names, self._names, strict=True))
        self._card = [int(c) for c in cards]

    # -- structure -----------------------------------------------------------------
    @property
    def variables(self) -> list:
        """Variable names, in the order they were added."""
        return list(self._names)

    @property
    def n_factors(self) -> int:
        return self._n_factors

    def cardinality(self, variable) -> int:
        return self._card[self._var_id(variable, "variable")]

    def add_variable(self, name, cardinality) -> None:
        """Add a discrete variable with states ``0 .. cardinality - 1``."""
        if not isinstance(name, Hashable):
            raise TypeError(
                f"variable names must be hashable, got {type(name).__name__}"
            )
        if name in self._index:
            raise ValueError(f"variable {name!r} already exists")
        c = check_int(cardinality, f"cardinality of {name!r}", low=1)
        self._index[name] = len(self._names)
        self._names.append(name)
        self._card.append(c)
        self._compiled = None

    def _var_id(self, name, what: str) -> int:
        try:
            return self._index[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown variable {name!r} in {what}") from None

    def add_factor(self, variables, table, *, log: bool = False) -> int:
        """Add a factor over ``variables`` (axes of ``table`` in that order).

        Parameters
        ----------
        variables : sequence
            Distinct variable names.
        table : array_like
            Potentials of shape ``(card(v) for v in variables)``, non-negative and not all
            zero; with ``log=True`` log-potentials (``-inf`` allowed).

        Returns
        -------
        int
            The factor's index.
        """
        if isinstance(variables, (str, bytes)) or not isinstance(variables, Iterable):
            variables = [variables]
        variables = list(variables)
        if not variables:
            raise ValueError("variables must name at least one variable")
        ids = [self._var_id(v, "variables") for v in variables]
        if len(set(ids)) != len(ids):
            raise ValueError(f"variables must be distinct, got {variables!r}")
        shape = tuple(self._card[i] for i in ids)
        logt = _check_table(table, "table", shape, log)
        return self._append(np.array([ids], dtype=_IDX), logt.reshape(1, -1))

    def add_factors(self, variables, tables, *, log: bool = False) -> range:
        """Add many factors of the same shape at once.

        ``variables`` is an (F, k) array of variable names (or ids when the variables are
        named ``0..n-1``), ``tables`` an array of shape (F, c_1, ..., c_k). Returns the
        range of the new factors' indices.
        """
        names = as_ndarray(variables, "variables")
        if names.ndim != 2 or names.shape[0] == 0 or names.shape[1] == 0:
            raise ValueError(
                f"variables must be a non-empty 2-D (n_factors, arity) array, "
                f"got shape {names.shape}"
            )
        if self._names == list(range(len(self._names))) and names.dtype.kind in "iu":
            ids = names.astype(_IDX)
            if ids.min() < 0 or ids.max() >= len(self._names):
                bad = ids[(ids < 0) | (ids >= len(self._names))][0]
                raise ValueError(f"unknown variable {int(bad)!r} in variables")
        else:
            ids = np.array(
                [[self._var_id(v, "variables") for v in row] for row in names.tolist()],
                dtype=_IDX,
            )
        srt = np.sort(ids, axis=1)
        if (srt[:, 1:] == srt[:, :-1]).any():
            row = int(np.argmax((srt[:, 1:] == srt[:, :-1]).any(axis=1)))
            raise ValueError(f"variables must be distinct within a factor (row {row})")
        card = np.asarray(self._card, dtype=_IDX)
        cards = card[ids]
        if (cards != cards[0]).any():
            raise ValueError(
                "add_factors needs factors of one shape: the variables in every row "
                "must have the same cardinalities"
            )
        shape = (ids.shape[0], *(int(c) for c in cards[0]))
        logt = _check_table(tables, "tables", shape, log)
        start = self._append(ids, logt.reshape(ids.shape[0], -1))
        return range(start, self._n_factors)

    def _append(self, ids: np.ndarray, logt: np.ndarray):
        start = self._n_factors
        self._batches.append((ids, logt))
        self._n_factors += ids.shape[0]
        self._compiled = None
        return start

    def factor(self, index: int):
        """(variable names, potential table) of factor ``index``."""
        index = check_int(index, "index", low=0, high=self._n_factors - 1)
        for ids, logt in self._batches:
            if index < ids.shape[0]:
                names = [self._names[i] for i in ids[index]]
                shape = tuple(self._card[i] for i in ids[index])
                return names, np.exp(logt[index]).reshape(shape)
            index -= ids.shape[0]
        raise AssertionError("unreachable")

    # -- evidence ------------------------------------------------------------------
    @property
    def evidence(self) -> dict:
        return {self._names[i]: s for i, s in self._evidence.items()}

    def set_evidence(self, evidence: Mapping) -> None:
        """Clamp variables to observed states (``{name: state}``); replaces old evidence."""
        if not isinstance(evidence, Mapping):
            raise TypeError(
                f"evidence must be a mapping {{variable: state}}, got {type(evidence).__name__}"
            )
        new = {}
        for name, state in evidence.items():
            i = self._var_id(name, "evidence")
            if isinstance(state, (bool, np.bool_)) or not isinstance(
                state, (numbers.Integral, np.integer)
            ):
                raise TypeError(
                    f"evidence for {name!r} must be an int state, got {state!r}"
                )
            if not 0 <= state < self._card[i]:
                raise ValueError(
                    f"evidence for {name!r} must be a state in [0, {self._card[i]}), "
                    f"got {state}"
                )
            new[i] = int(state)
        self._evidence = new

    def clear_evidence(self) -> None:
        self._evidence = {}

    def _compile(self) -> _Compiled:
        if not self._names:
            raise ValueError("the factor graph has no variables")
        if self._compiled is None:
            self._compiled = _Compiled(
                np.asarray(self._card, dtype=_IDX), self._batches
            )
        return self._compiled

    def _mask(self, c: _Compiled) -> np.ndarray:
        mask = np.ones(c.voff[-1])
        for i, s in self._evidence.items():
            mask[c.voff[i] : c.voff[i + 1]] = 0.0
            mask[c.voff[i] + s] = 1.0
        return mask

    def is_tree(self) -> bool:
        """True if the factor graph has no cycles (a tree or a forest)."""
        try:
            self._compile().schedule()
        except ValueError:
            return False
        return True

    # -- inference -----------------------------------------------------------------
    def _split(self, cutset) -> tuple[_Compiled, list[int], list[list[int]]]:
        """The graph with every cutset variable replaced by one copy per factor slot.

        Clamping a variable and its copies to one state leaves the distribution of the
        others unchanged, and removes the variable's loops (cutset conditioning, Pearl
        1988 sec. 4.5.1)."""
        if isinstance(cutset, (str, bytes)) or not isinstance(cutset, Iterable):
            raise TypeError(
                f"cutset must be a sequence of variable names, got {cutset!r}"
            )
        cut = [self._var_id(v, "cutset") for v in cutset]
        if len(set(cut)) != len(cut):
            raise ValueError(f"cutset must name distinct variables, got {cutset!r}")
        card = list(self._card)
        copies: list[list[int]] = [[] for _ in cut]
        batches = []
        for ids, logt in self._batches:
            ids = ids.copy()
            for j, v in enumerate(cut):
                for r, col in zip(*np.nonzero(ids == v), strict=True):
                    ids[r, col] = len(card)
                    copies[j].append(len(card))
                    card.append(self._card[v])
            batches.append((ids, logt))
        return _Compiled(np.asarray(card, dtype=_IDX), batches), cut, copies

    def _cut_masks(self, c: _Compiled, cut, copies):
        """(joint cutset state, evidence mask) for every state consistent with evidence."""
        base = np.ones(c.voff[-1])
        for i, s in self._evidence.items():
            base[c.voff[i] : c.voff[i + 1]] = 0.0
            base[c.voff[i] + s] = 1.0
        for states in itertools.product(*(range(self._card[v]) for v in cut)):
            if any(
                self._evidence.get(v, s) != s for v, s in zip(cut, states, strict=True)
            ):
                continue
            mask = base.copy()
            for v, cps, s in zip(cut, copies, states, strict=True):
                for u in (v, *cps):
                    mask[c.voff[u] : c.voff[u + 1]] = 0.0
                    mask[c.voff[u] + s] = 1.0
            yield states, mask

    @staticmethod
    def _run_sum_product(c: _Compiled, mask: np.ndarray):
        edge, to_var, roots = c.schedule()
        m_vf = np.empty(c.eoff[-1] + 1)
        m_fv = np.empty(c.eoff[-1] + 1)
        vb = np.empty(c.voff[-1])
        log_z = _bp.tree_sum_product(
            c.graph, c.ptab, c.log_offset, mask, edge, to_var, roots, m_vf, m_fv, vb,
            c.scratch,
        )  # fmt: skip
        return log_z, vb, m_vf

    @staticmethod
    def _run_max_sum(c: _Compiled, mask: np.ndarray):
        edge, to_var, roots = c.schedule()
        with np.errstate(divide="ignore"):
            logmask = np.log(mask)
        m_vf = np.empty(c.eoff[-1] + 1)
        m_fv = np.empty(c.eoff[-1] + 1)
        backptr = np.zeros(c.eoff[-1] + 1, _IDX)
        states = np.zeros(c.V, _IDX)
        score = _bp.tree_max_sum(
            c.graph, c.logtab, logmask, edge, to_var, roots,
            m_vf, m_fv, backptr, states, np.empty(c.max_card), c.scratch,
        )  # fmt: skip
        return score, states

    def _no_tree(self, cutset) -> ValueError:
        if cutset:
            return ValueError(
                f"the factor graph still has a loop after conditioning on cutset="
                f"{list(cutset)!r}; add variables to the cutset, or use "
                "loopy_belief_propagation() for approximate marginals"
            )
        return ValueError(
            "the factor graph has a loop (a cycle through its factors); exact "
            "sum_product/max_sum need a tree or forest: use loopy_belief_propagation() "
            "for approximate marginals, or pass cutset=[...] (variables whose removal "
            "breaks every loop) for exact ones"
        )

    def _impossible(self) -> ValueError:
        return ValueError(
            f"the evidence {self.evidence!r} has probability zero under the factors"
        )

    def sum_product(self, cutset=None) -> SumProductResult:
        """Exact marginals and ln Z by the sum-product algorithm (PRML sec. 8.4.4).

        Messages run leaves-to-root then root-to-leaves over each tree of the forest
        (PRML eqs. 8.66 and 8.69), normalised to sum 1 with their log normalisers added
        up separately, so long chains neither underflow nor overflow. Variable marginals
        follow PRML eq. 8.63, factor marginals eq. 8.72; Z is the product over connected
        components of the root's unnormalised belief mass.

        Parameters
        ----------
        cutset : sequence of variable names, optional
            Exact inference on a graph with loops by cutset conditioning (Pearl 1988,
            sec. 4.5.1): sum-product runs once per joint state of these variables (whose
            removal must leave a forest) and the results are mixed with weights Z_s / Z.

        Returns
        -------
        SumProductResult

        Raises
        ------
        ValueError
            If the graph has a cycle (use :meth:`loopy_belief_propagation`), or the
            evidence has probability zero.
        """
        if not cutset:
            c = self._compile()
            try:
                c.schedule()
            except ValueError:
                raise self._no_tree(cutset) from None
            log_z, vb, m_vf = self._run_sum_product(c, self._mask(c))
            if not np.isfinite(log_z):
                raise self._impossible()
            return SumProductResult(self, c, vb, m_vf, log_z)
        c0 = self._compile()
        c, cut, copies = self._split(cutset)
        try:
            c.schedule()
        except ValueError:
            raise self._no_tree(cutset) from None
        runs = [
            self._run_sum_product(c, mask)
            for _, mask in self._cut_masks(c, cut, copies)
        ]
        log_zs = np.array([r[0] for r in runs])
        if not runs or not np.isfinite(log_zs).any():
            raise self._impossible()
        log_z = float(np.logaddexp.reduce(log_zs))
        w = np.exp(log_zs - log_z)
        nv = c0.voff[-1]
        vb = sum(wi * r[1][:nv] for wi, r in zip(w, runs, strict=True) if wi > 0)
        fb = np.zeros(c.toff[-1])
        for wi, r in zip(w, runs, strict=True):
            if wi > 0:
                fb += wi * c.factor_beliefs(r[2])
        return SumProductResult(self, c0, vb, None, log_z, fb)

    def max_sum(self, cutset=None) -> MaxSumResult:
        """Most probable joint state by max-sum with back-tracking (PRML sec. 8.4.5).

        Log-space messages (PRML eqs. 8.93-8.94) flow leaves-to-root, each factor message
        keeping the maximising configuration per receiving state; the roots take their
        max-marginal argmax (eq. 8.98) and the stored configurations are read back down
        (eq. 8.101), so the result is a consistent global maximiser even with ties.

        Parameters
        ----------
        cutset : sequence of variable names, optional
            As in :meth:`sum_product`: the best of the conditioned MAPs.

        Returns
        -------
        MaxSumResult
            ``assignment`` (a state per variable, evidence included), ``log_score``
            (sum_f ln f(x_f) at the MAP) and ``log_prob`` = ln p(x_MAP | evidence).

        Raises
        ------
        ValueError
            On a cycle (use :meth:`loopy_belief_propagation`) or impossible evidence.
        """
        c0 = self._compile()
        if not cutset:
            c, masks = c0, [self._mask(c0)]
        else:
            c, cut, copies = self._split(cutset)
            masks = [m for _, m in self._cut_masks(c, cut, copies)]
        try:
            c.schedule()
        except ValueError:
            raise self._no_tree(cutset) from None
        best, states = -np.inf, None
        for mask in masks:
            score, st = self._run_max_sum(c, mask)
            if score > best:
                best, states = score, st[: c0.V]
        if states is None:
            raise self._impossible()
        log_score = self._log_score(c0, states)
        log_z = self.sum_product(cutset).log_z
        assignment = {name: int(s) for name, s in zip(self._names, states, strict=True)}
        return MaxSumResult(assignment, states, log_score, log_score - log_z)

    def _log_score(self, c: _Compiled, states: np.ndarray) -> float:
        if not c.F:
            return 0.0
        contrib = c.estride * states[c.evar]
        idx = c.toff[:-1] + np.add.reduceat(contrib, c.fptr[:-1])
        return float(c.logtab[idx].sum())

    def log_score(self, assignment: Mapping) -> float:
        """sum_f ln f(x_f) of a full assignment ``{name: state}`` (unnormalised)."""
        c = self._compile()
        states = np.zeros(c.V, _IDX)
        missing = set(self._names) - set(assignment)
        if missing:
            raise ValueError(f"assignment misses variables {sorted(map(str, missing))}")
        for name, s in assignment.items():
            i = self._var_id(name, "assignment")
            states[i] = check_int(
                s, f"assignment[{name!r}]", low=0, high=self._card[i] - 1
            )
        return self._log_score(c, states)

    def loopy_belief_propagation(
        self,
        max_iter: int = 200,
        tol: float = 1e-8,
        damping: float = 0.0,
        schedule: str = "parallel",
    ) -> LoopyBPResult:
        """Approximate marginals by loopy belief propagation (PRML sec. 8.4.7).

        The sum-product updates (PRML eqs. 8.66, 8.69) iterated on a graph with cycles,
        messages initialised uniform. ``schedule="parallel"`` (flooding) recomputes every
        message from the previous sweep; ``"sequential"`` visits the factors in order,
        refreshing each factor's incoming messages first. ``damping`` mixes each new
        factor-to-variable message with the old one: (1 - damping) new + damping old.
        On a tree it converges to the exact marginals. Loopy BP is expectation
        propagation with a fully factorised approximation (Minka 2001, sec. 3.2; see
        :func:`fastml.ep.discrete_ep`).

        Parameters
        ----------
        max_iter : int, default 200
            Maximum number of sweeps.
        tol : float, default 1e-8
            Stop when no message entry changes by more than this.
        damping : float in [0, 1), default 0
        schedule : {"parallel", "sequential"}

        Returns
        -------
        LoopyBPResult
            Beliefs, ``converged``, ``n_iter``, the Bethe free energy
            (Yedidia, Freeman & Weiss 2005), whose negative approximates ln Z.

        Raises
        ------
        ValueError
            Bad ``max_iter``/``tol``/``damping``/``schedule``, or evidence of
            probability zero.

        References
        ----------
        J. S. Yedidia, W. T. Freeman, Y. Weiss, "Constructing free-energy approximations
        and generalized belief propagation algorithms", IEEE Trans. Inf. Theory 51(7),
        2005. T. P. Minka, "Expectation propagation for approximate Bayesian
        inference", UAI 2001.
        """
        max_iter = check_int(max_iter, "max_iter", low=1)
        tol = check_real(tol, "tol", low=0.0)
        damping = check_real(damping, "damping", low=0.0, high=1.0, high_open=True)
        if schedule not in ("parallel", "sequential"):
            raise ValueError(
                f"schedule must be 'parallel' or 'sequential', got {schedule!r}"
            )
        c = self._compile()
        mask = self._mask(c)
        m_vf = np.empty(c.eoff[-1] + 1)
        m_fv = np.empty(c.eoff[-1] + 1)
        m_fv[:-1] = np.repeat(1.0 / c.card[c.evar], c.card[c.evar])
        vb = np.empty(c.voff[-1])
        fb = np.empty(c.toff[-1] + 1)
        tmp = np.empty(c.max_card)
        scratch = np.zeros(max(c.max_arity, 1), _IDX)
        n_iter, delta = _bp.loopy_bp(
            c.graph, c.ptab, mask, max_iter, tol, damping, schedule == "sequential",
            m_vf, m_fv, vb, fb, tmp, scratch,
        )  # fmt: skip
        if not (np.add.reduceat(vb, c.voff[:-1]) > 0).all():
            raise ValueError(
                f"loopy BP beliefs vanish: the evidence {self.evidence!r} has "
                "probability zero under the factors"
            )
        energy = _bp.bethe_free_energy(c.graph, c.logtab, vb, fb[:-1])
        return LoopyBPResult(
            self, c, vb, fb[:-1], m_vf[:-1], m_fv[:-1],
            delta < tol, int(n_iter), float(delta), float(energy),
        )  # fmt: skip


class _Beliefs:
    """Shared accessors of marginals (flat arrays, views per variable and factor)."""

    def __init__(self, graph: FactorGraph, c: _Compiled, vb, m_vf, fb=None):
        self._graph, self._c = graph, c
        self._m_vf = m_vf
        self.variable_beliefs = vb
        """All variable marginals, concatenated in variable order."""
        self._fb = fb

    @property
    def factor_beliefs(self) -> np.ndarray:
        """All factor marginals, flattened and concatenated in factor order (computed
        from the messages on first use)."""
        if self._fb is None:
            self._fb = self._c.factor_beliefs(self._m_vf)
        return self._fb

    def marginal(self, variable) -> np.ndarray:
        """p(x_v | evidence) as an array of length card(v)."""
        i = self._graph._var_id(variable, "variable")
        return self.variable_beliefs[self._c.voff[i] : self._c.voff[i + 1]]

    @property
    def marginals(self) -> dict:
        """``{name: marginal}`` for every variable."""
        return {n: self.marginal(n) for n in self._graph._names}

    def factor_marginal(self, index: int) -> np.ndarray:
        """p(x_f | evidence) of factor ``index``, shaped like its table."""
        c = self._c
        index = check_int(index, "index", low=0, high=c.F - 1)
        shape = tuple(c.card[c.evar[c.fptr[index] : c.fptr[index + 1]]])
        return self.factor_beliefs[c.toff[index] : c.toff[index + 1]].reshape(shape)


class SumProductResult(_Beliefs):
    """Exact marginals and ``log_z`` = ln sum_x prod_f f(x_f) (evidence clamped)."""

    def __init__(self, graph, c, vb, m_vf, log_z, fb=None):
        super().__init__(graph, c, vb, m_vf, fb)
        self.log_z = float(log_z)

    def __repr__(self) -> str:
        return f"SumProductResult(n_variables={self._c.V}, log_z={self.log_z:.6g})"


class MaxSumResult:
    """MAP state: ``assignment`` {name: state}, ``states`` (array in variable order),
    ``log_score`` = sum_f ln f(x_f) and ``log_prob`` = ln p(x | evidence)."""

    def __init__(self, assignment, states, log_score, log_prob):
        self.assignment = assignment
        self.states = states
        self.log_score = float(log_score)
        self.log_prob = float(log_prob)

    def __repr__(self) -> str:
        return f"MaxSumResult(log_prob={self.log_prob:.6g}, n_variables={len(self.states)})"


class LoopyBPResult(_Beliefs):
    """Beliefs of loopy BP, its convergence and the Bethe free energy.

    Attributes: ``converged``, ``n_iter``, ``delta`` (last largest message change),
    ``bethe_free_energy`` and ``log_z_bethe`` (its negative, exact on trees).
    """

    def __init__(self, graph, c, vb, fb, m_vf, m_fv, converged, n_iter, delta, energy):
        super().__init__(graph, c, vb, m_vf, fb)
        self._m_fv = m_fv
        self.converged = bool(converged)
        self.n_iter = n_iter
        self.delta = delta
        self.bethe_free_energy = energy
        self.log_z_bethe = -energy

    def _edge(self, factor: int, variable) -> int:
        c = self._c
        f = check_int(factor, "factor", low=0, high=c.F - 1)
        v = self._graph._var_id(variable, "variable")
        for e in range(c.fptr[f], c.fptr[f + 1]):
            if c.evar[e] == v:
                return e
        raise ValueError(f"variable {variable!r} is not in factor {factor}")

    def message_to_variable(self, factor: int, variable) -> np.ndarray:
        """Normalised message mu_{f->x} (PRML eq. 8.66)."""
        e = self._edge(factor, variable)
        return self._m_fv[self._c.eoff[e] : self._c.eoff[e + 1]]

    def message_to_factor(self, variable, factor: int) -> np.ndarray:
        """Normalised message mu_{x->f} (PRML eq. 8.69)."""
        e = self._edge(factor, variable)
        return self._m_vf[self._c.eoff[e] : self._c.eoff[e + 1]]

    def __repr__(self) -> str:
        return (
            f"LoopyBPResult(converged={self.converged}, n_iter={self.n_iter}, "
            f"bethe_free_energy={self.bethe_free_energy:.6g})"
        )


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

    def __init__(self, edges=(), nodes=()):
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

    def add_node(self, node) -> None:
        if not isinstance(node, Hashable):
            raise TypeError(f"nodes must be hashable, got {type(node).__name__}")
        if node not in self._parents:
            self._parents[node] = []
            self._children[node] = []

    def add_edge(self, u, v) -> None:
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
    def nodes(self) -> list:
        return list(self._parents)

    @property
    def edges(self) -> list:
        return [(u, v) for v, ps in self._parents.items() for u in ps]

    def _check(self, node, name: str = "node"):
        if not isinstance(node, Hashable) or node not in self._parents:
            raise ValueError(f"unknown node {node!r} in {name}")
        return node

    def parents(self, node) -> list:
        return list(self._parents[self._check(node)])

    def children(self, node) -> list:
        return list(self._children[self._check(node)])

    def _descendants(self, node) -> set:
        seen, stack = {node}, [node]
        while stack:
            for c in self._children[stack.pop()]:
                if c not in seen:
                    seen.add(c)
                    stack.append(c)
        return seen

    def topological_order(self) -> list:
        indeg = {n: len(p) for n, p in self._parents.items()}
        order = [n for n, d in indeg.items() if d == 0]
        for n in order:
            for c in self._children[n]:
                indeg[c] -= 1
                if indeg[c] == 0:
                    order.append(c)
        return order

    def markov_blanket(self, node) -> set:
        """Parents, children and the children's other parents (PRML sec. 8.2, Fig. 8.26)."""
        node = self._check(node)
        mb = set(self._parents[node]) | set(self._children[node])
        for c in self._children[node]:
            mb.update(self._parents[c])
        mb.discard(node)
        return mb

    def reachable(self, source, given=()) -> set:
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

    def d_separated(self, xs, ys, given=()) -> bool:
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
    def add_cpd(self, node, table, parents=None) -> None:
        """Set p(node | parents) as a table of shape (*parent cards, card(node)).

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

    def cpd(self, node):
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

    def __init__(self, edges=(), nodes=()):
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

    def add_node(self, node) -> None:
        if not isinstance(node, Hashable):
            raise TypeError(f"nodes must be hashable, got {type(node).__name__}")
        self._adj.setdefault(node, set())

    def add_edge(self, u, v) -> None:
        if u == v:
            raise ValueError(f"edges: self-loop on {u!r}")
        self.add_node(u)
        self.add_node(v)
        self._adj[u].add(v)
        self._adj[v].add(u)

    @property
    def nodes(self) -> list:
        return list(self._adj)

    def neighbors(self, node) -> set:
        if not isinstance(node, Hashable) or node not in self._adj:
            raise ValueError(f"unknown node {node!r} in node")
        return set(self._adj[node])

    def markov_blanket(self, node) -> set:
        return self.neighbors(node)

    def add_factor(self, nodes, table) -> None:
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


def _half_stride(W: int) -> int:
    """Slots per half-row in the grid kernel's layout: ceil(W / 2) plus 4 of padding, so
    that label rows 2^k doubles wide do not all map to the same cache sets."""
    return (W + 1) // 2 + 4


def _to_half_rows(a: np.ndarray, pad: float) -> np.ndarray:
    """(H, W, K) -> the grid kernel's layout (H, K, 2, hs): each row split into its even
    and odd columns, labels outermost; padding slots hold ``pad``."""
    H, W, K = a.shape
    hs = _half_stride(W)
    out = np.full((H, 2 * hs, K), pad)
    out[:, :W] = a  # column j is slot j // 2 of half j % 2
    return np.ascontiguousarray(out.reshape(H, hs, 2, K).transpose(0, 3, 2, 1))


class GridBPResult:
    """Loopy BP on a grid: ``beliefs`` (H, W, K) (normalised marginals for sum-product,
    max-marginal log-beliefs shifted to max 0 for max-product), ``labels`` (argmax per
    pixel), ``converged``, ``n_iter``, ``delta``."""

    def __init__(self, beliefs, converged, n_iter, delta):
        self.beliefs = beliefs
        self.converged = bool(converged)
        self.n_iter = int(n_iter)
        self.delta = float(delta)

    @property
    def labels(self) -> np.ndarray:
        """Most probable label per pixel (argmax of the beliefs), shape (H, W)."""
        return np.argmax(self.beliefs, axis=-1)

    def __repr__(self) -> str:
        return f"GridBPResult(converged={self.converged}, n_iter={self.n_iter})"


class PairwiseMRF:
    """A pairwise MRF on an H x W grid: one unary table per pixel and a pairwise table
    shared by all 4-neighbour edges (Ising for K = 2, Potts for K labels).

    p(x) ∝ prod_p phi_p(x_p) prod_{(p,q)} psi(x_p, x_q) (PRML eq. 8.39; the image
    de-noising model of PRML sec. 8.3.3), with psi(a, b) indexed by the left (or upper)
    pixel's label a and the right (or lower) pixel's label b.

    Parameters
    ----------
    log_unary : array_like, shape (H, W, K)
        ln phi_p(k), finite.
    log_pairwise : array_like, shape (K, K)
        ln psi(a, b), finite.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.graphical import PairwiseMRF
    >>> noisy = np.array([[0, 0, 1], [0, 1, 1], [0, 1, 1]])
    >>> mrf = PairwiseMRF.potts(np.where(np.eye(2)[noisy] > 0, 1.0, -1.0), 0.8)
    >>> mrf.loopy_belief_propagation(method="max").labels.shape
    (3, 3)
    """

    def __init__(self, log_unary, log_pairwise):
        u = check_array(log_unary, "log_unary", ndim=3, dtype=np.float64)
        p = check_array(log_pairwise, "log_pairwise", ndim=2, dtype=np.float64)
        K = u.shape[2]
        if p.shape != (K, K):
            raise ValueError(
                f"log_pairwise must have shape ({K}, {K}) for K={K} labels, got {p.shape}"
            )
        # private read-only copies: the scaled potentials are cached from them
        self.log_unary = np.array(u, copy=True)
        self.log_pairwise = np.array(p, copy=True)
        self.log_unary.flags.writeable = False
        self.log_pairwise.flags.writeable = False
        self._kernel_unary = {}  # per method, in the grid kernel's layout (cached)

    @classmethod
    def potts(cls, log_unary, coupling) -> PairwiseMRF:
        """Potts model: ln psi(a, b) = coupling if a == b else 0 (Ising for K = 2)."""
        coupling = check_real(coupling, "coupling")
        u = check_array(log_unary, "log_unary", ndim=3, dtype=np.float64)
        return cls(u, coupling * np.eye(u.shape[2]))

    @property
    def shape(self) -> tuple[int, int]:
        return self.log_unary.shape[:2]

    def to_factor_graph(self) -> FactorGraph:
        """The same model as a :class:`FactorGraph`; pixel (i, j) is variable i * W + j."""
        H, W, K = self.log_unary.shape
        fg = FactorGraph([K] * (H * W))
        idx = np.arange(H * W).reshape(H, W)
        fg.add_factors(idx.reshape(-1, 1), self.log_unary.reshape(H * W, K), log=True)
        pairs = np.concatenate(
            [
                np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], axis=1),
                np.stack([idx[:-1].ravel(), idx[1:].ravel()], axis=1),
            ]
        )
        if pairs.size:
            fg.add_factors(
                pairs, np.broadcast_to(self.log_pairwise, (len(pairs), K, K)), log=True
            )
        return fg

    def loopy_belief_propagation(
        self,
        max_iter: int = 100,
        tol: float = 1e-6,
        damping: float = 0.0,
        method: str = "sum",
        schedule: str = "parallel",
    ) -> GridBPResult:
        """Loopy BP with the flooding schedule on the grid (compiled grid kernel).

        ``method="sum"`` gives approximate marginals (sum-product, PRML eqs. 8.66, 8.69),
        ``"max"`` max-marginals whose per-pixel argmax approximates the MAP labelling
        (max-product, PRML eqs. 8.93-8.94). A Potts pairwise table (constant diagonal,
        constant off-diagonal) is detected and each message then costs O(K), not O(K^2).

        Parameters
        ----------
        max_iter : int, default 100
        tol : float, default 1e-6
            Stop when no message entry changes by more than this. The flooding
            schedule runs up to four sweeps per pass over memory (temporal blocking:
            the intermediate sweeps live in a few cached rows), so it checks this
            after every fourth sweep and may run up to three sweeps past the first
            one that met it; ``n_iter`` counts every sweep run.
        damping : float in [0, 1), default 0
        method : {"sum", "max"}
        schedule : {"parallel", "checkerboard"}
            ``"parallel"`` is the flooding schedule (every message from the previous
            sweep). ``"checkerboard"`` updates the messages into the pixels of one
            colour of the chessboard, in place, then into the other from the newest
            values (Felzenszwalb & Huttenlocher 2006, sec. 4): a sweep costs the same
            and typically needs about half as many sweeps; same fixed points.

        Returns
        -------
        GridBPResult

        References
        ----------
        P. F. Felzenszwalb, D. P. Huttenlocher, "Efficient belief propagation for early
        vision", IJCV 70(1), 2006.
        """
        max_iter = check_int(max_iter, "max_iter", low=1)
        tol = check_real(tol, "tol", low=0.0)
        damping = check_real(damping, "damping", low=0.0, high=1.0, high_open=True)
        if method not in ("sum", "max"):
            raise ValueError(f"method must be 'sum' or 'max', got {method!r}")
        if schedule not in ("parallel", "checkerboard"):
            raise ValueError(
                f"schedule must be 'parallel' or 'checkerboard', got {schedule!r}"
            )
        is_max = method == "max"
        H, W, K = self.log_unary.shape
        lp = self.log_pairwise
        off = lp[~np.eye(K, dtype=bool)]
        diag = np.diag(lp)
        potts = K == 1 or ((off == off[0]).all() and (diag == diag[0]).all())
        if method not in self._kernel_unary:
            u = self.log_unary
            if not is_max:  # potentials scaled to max 1 per pixel
                u = np.exp(u - u.max(axis=2, keepdims=True))
            self._kernel_unary[method] = _to_half_rows(u, 0.0 if is_max else 1.0)
        unary = self._kernel_unary[method]
        if is_max:
            pair = lp
            pd, po = float(diag[0]), float(off[0]) if K > 1 else 0.0
        else:
            pair = np.exp(lp - lp.max())
            pd = float(pair[0, 0])
            po = float(pair[0, 1]) if K > 1 else 0.0
        pair = np.ascontiguousarray(pair)
        hs = _half_stride(W)
        belief = np.empty((H, W, K))
        n_iter, delta = _bp_grid.grid_bp(
            unary, W, pair, np.ascontiguousarray(pair.T), pd, po, bool(potts), is_max,
            max_iter, tol, damping, schedule == "checkerboard",
            np.empty((H, 4, K, 2, hs)), belief,
            np.empty((2 * K + 3 + 8 * (3 * _bp_grid.GRID_FUSE + 4) * K) * hs),
        )  # fmt: skip
        return GridBPResult(belief, delta < tol, n_iter, delta)
