"""The demo registry behind ``fastml demo``.

Each algorithm family adds one line to ``DEMOS``: the demo's name, the module that holds
it and a one-line description. A demo is a function ``demo(out) -> None`` that writes
plain text to the file-like ``out``; modules are imported only when their demo runs. A
demo with a natural picture takes a second argument, ``plot_dir``: when it is not None
(``fastml demo --plot DIR``) the demo draws with matplotlib and writes PNG files there
through :func:`save_figure`, which prints each file's path.
"""

from __future__ import annotations

import importlib
import inspect
import pathlib
import time
from collections.abc import Callable
from typing import TextIO

import numpy as np

__all__ = ["DEMOS", "fmt", "get_demo", "has_pictures", "save_figure", "timed"]

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


def has_pictures(name: str) -> bool:
    """Whether the demo ``name`` draws pictures (takes a ``plot_dir`` argument)."""
    return "plot_dir" in inspect.signature(get_demo(name)).parameters


def save_figure(fig, plot_dir: str | pathlib.Path, name: str, out: TextIO) -> None:
    """Write ``fig`` as ``plot_dir/name.png``, close it, and print where it went."""
    import matplotlib.pyplot as plt

    path = pathlib.Path(plot_dir) / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"   picture: {path}", file=out)


def _number(x: float, digits: int) -> str:
    if x != 0 and np.isfinite(x) and not 1e-3 <= abs(x) < 1e5:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def fmt(values, digits: int = 4) -> str:
    """Numbers for people: ``digits`` significant digits, scientific notation for magnitudes
    below 1e-3 or from 1e5 on (so 1.7e-4 never prints as 0); arrays keep their brackets.

    >>> fmt(1.7e-4), fmt([0.25, 1.7e-4]), fmt([0.95, 0.05], 2)
    ('1.700e-04', '[0.25 1.700e-04]', '[0.95 0.05]')
    """
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        return _number(float(arr), digits)
    return np.array2string(
        arr, formatter={"float_kind": lambda x: _number(float(x), digits)}
    )
