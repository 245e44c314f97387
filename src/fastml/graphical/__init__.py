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

from fastml.graphical._bayesian_network import BayesianNetwork
from fastml.graphical._factor_graph import FactorGraph
from fastml.graphical._grid import GridBPResult, PairwiseMRF
from fastml.graphical._markov_network import MarkovNetwork
from fastml.graphical._results import LoopyBPResult, MaxSumResult, SumProductResult

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
