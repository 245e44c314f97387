"""Results of inference on a factor graph: marginals, ln Z, MAP assignments."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

import numpy as np

from fastml._typing import FloatArray, IntArray
from fastml._validation import check_int

if TYPE_CHECKING:  # annotations only: the factor graph imports this module
    from fastml.graphical._factor_graph import FactorGraph, _Compiled

__all__ = ["LoopyBPResult", "MaxSumResult", "SumProductResult"]


class _Beliefs:
    """Shared accessors of marginals (flat arrays, views per variable and factor)."""

    def __init__(
        self,
        graph: FactorGraph,
        c: _Compiled,
        vb: FloatArray,
        m_vf: FloatArray | None,
        fb: FloatArray | None = None,
    ) -> None:
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

    def marginal(self, variable: Hashable) -> np.ndarray:
        """p(x_v | evidence) as an array of length card(v)."""
        i = self._graph._var_id(variable, "variable")
        return self.variable_beliefs[self._c.voff[i] : self._c.voff[i + 1]]

    @property
    def marginals(self) -> dict[Hashable, np.ndarray]:
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

    def __init__(
        self,
        graph: FactorGraph,
        c: _Compiled,
        vb: FloatArray,
        m_vf: FloatArray | None,
        log_z: float,
        fb: FloatArray | None = None,
    ) -> None:
        super().__init__(graph, c, vb, m_vf, fb)
        self.log_z = float(log_z)

    def __repr__(self) -> str:
        return f"SumProductResult(n_variables={self._c.V}, log_z={self.log_z:.6g})"


class MaxSumResult:
    """MAP state: ``assignment`` {name: state}, ``states`` (array in variable order),
    ``log_score`` = sum_f ln f(x_f) and ``log_prob`` = ln p(x | evidence)."""

    def __init__(
        self,
        assignment: dict[Hashable, int],
        states: IntArray,
        log_score: float,
        log_prob: float,
    ) -> None:
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

    def __init__(
        self,
        graph: FactorGraph,
        c: _Compiled,
        vb: FloatArray,
        fb: FloatArray | None,
        m_vf: FloatArray,
        m_fv: FloatArray,
        converged: bool,
        n_iter: int,
        delta: float,
        energy: float,
    ) -> None:
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

    def message_to_variable(self, factor: int, variable: Hashable) -> np.ndarray:
        """Normalised message mu_{f->x} (PRML eq. 8.66)."""
        e = self._edge(factor, variable)
        return self._m_fv[self._c.eoff[e] : self._c.eoff[e + 1]]

    def message_to_factor(self, variable: Hashable, factor: int) -> np.ndarray:
        """Normalised message mu_{x->f} (PRML eq. 8.69)."""
        e = self._edge(factor, variable)
        return self._m_vf[self._c.eoff[e] : self._c.eoff[e + 1]]

    def __repr__(self) -> str:
        return (
            f"LoopyBPResult(converged={self.converged}, n_iter={self.n_iter}, "
            f"bethe_free_energy={self.bethe_free_energy:.6g})"
        )
