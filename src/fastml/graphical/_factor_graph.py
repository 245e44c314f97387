"""Factor graphs over discrete variables: exact sum-product and max-sum on trees
(PRML sec. 8.4.4-8.4.5), cutset conditioning on loopy graphs, and loopy belief
propagation; compiled in :mod:`fastml._kernels._bp`.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Literal

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components

from fastml._kernels import _bp
from fastml._typing import ArrayLike, FloatArray
from fastml._validation import as_ndarray, check_array, check_int, check_real
from fastml.graphical._results import LoopyBPResult, MaxSumResult, SumProductResult

__all__ = ["FactorGraph"]


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

    def __init__(
        self, cardinalities: Mapping[Hashable, int] | Sequence[int] = ()
    ) -> None:
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
    def variables(self) -> list[Hashable]:
        """Variable names, in the order they were added."""
        return list(self._names)

    @property
    def n_factors(self) -> int:
        """Number of factors added so far."""
        return self._n_factors

    def cardinality(self, variable: Hashable) -> int:
        """Number of states of ``variable`` (ValueError if unknown)."""
        return self._card[self._var_id(variable, "variable")]

    def add_variable(self, name: Hashable, cardinality: int) -> None:
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

    def add_factor(
        self,
        variables: Hashable | Sequence[Hashable],
        table: ArrayLike,
        *,
        log: bool = False,
    ) -> int:
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

    def add_factors(
        self, variables: ArrayLike, tables: ArrayLike, *, log: bool = False
    ) -> range:
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

    def factor(self, index: int) -> tuple[list[Hashable], FloatArray]:
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
    def evidence(self) -> dict[Hashable, int]:
        """The clamped variables as ``{name: state}`` (a copy)."""
        return {self._names[i]: s for i, s in self._evidence.items()}

    def set_evidence(self, evidence: Mapping[Hashable, int]) -> None:
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
        """Remove all evidence: every variable is free again."""
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

    def sum_product(self, cutset: Sequence[Hashable] | None = None) -> SumProductResult:
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

    def max_sum(self, cutset: Sequence[Hashable] | None = None) -> MaxSumResult:
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

    def log_score(self, assignment: Mapping[Hashable, int]) -> float:
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
        schedule: Literal["parallel", "sequential"] = "parallel",
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
