"""The demo registry behind ``fastml demo``.

Each algorithm family adds one line to ``DEMOS``: the demo's name, the module that holds
it and a one-line description. A demo is a function ``demo(out) -> None`` that writes
plain text to the file-like ``out``; modules are imported only when their demo runs.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["DEMOS", "get_demo", "timed"]

DEMOS: dict[str, tuple[str, str]] = {
    "stats": (
        "fastml._demos.stats",
        "one-pass variance vs numpy, and the ML variance bias",
    ),
    "losses": (
        "fastml._demos.losses",
        "logistic and softmax regression by the MLE losses",
    ),
    "sampling": (
        "fastml._demos.sampling",
        "ziggurat / Box-Muller / polar normals vs numpy, MH and HMC on a 10-d Gaussian",
    ),
    "mixture": (
        "fastml._demos.mixture",
        "Gaussian mixture by EM and variational Bayes (components kept)",
    ),
    "lda": (
        "fastml._demos.lda",
        "LDA topics on Reuters by collapsed Gibbs and variational EM",
    ),
    "hmm": (
        "fastml._demos.hmm",
        "dishonest casino: Baum-Welch and Viterbi on fair/loaded dice",
    ),
    "lds": (
        "fastml._demos.lds",
        "Kalman filter/smoother tracking a 2-D object; EM-learned noise levels",
    ),
    "graphical": (
        "fastml._demos.graphical",
        "Asia network queries, MAP of a 1e5 chain, de-noising with loopy BP",
    ),
    "ep": (
        "fastml._demos.ep",
        "expectation propagation on the clutter problem: EP vs ADF vs exact",
    ),
    "nn": (
        "fastml._demos.nn",
        "MLP and CNN on the digits by explicit backprop (accuracy per epoch)",
    ),
    "rbm": (
        "fastml._demos.rbm",
        "Bernoulli RBM on the digits by persistent CD; features vs raw pixels",
    ),
}


def get_demo(name: str) -> Callable[[TextIO], None]:
    """The ``demo`` function registered under ``name`` (KeyError if unknown)."""
    module, _ = DEMOS[name]
    return importlib.import_module(module).demo


def timed(fn, *args, repeat: int = 3, **kwargs):
    """Call ``fn`` ``repeat`` times; return (last result, best wall time in seconds)."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    return result, best
