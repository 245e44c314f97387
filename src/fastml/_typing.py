"""Type aliases shared by the public annotations (static typing only, no runtime checks).

Estimators annotate ``fit`` (and other methods returning ``self``) with a TypeVar bound
to their class, ``def fit(self: _GM, X: ArrayLike) -> _GM``, rather than ``typing.Self``:
``Self`` is Python >= 3.11 only and ``typing_extensions`` is not a runtime dependency,
while a bound TypeVar means the same to a type checker (a subclass's ``fit`` returns the
subclass) on every supported Python and keeps ``typing.get_type_hints`` working.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, SupportsFloat, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

__all__ = [
    "ArrayLike",
    "CovarianceType",
    "DTypeLike",
    "ExponentialMethod",
    "FloatArray",
    "GradLogDensity",
    "HMMAlgorithm",
    "HMMImplementation",
    "IntArray",
    "LogDensity",
    "MixtureInit",
    "NDArray",
    "NormalMethod",
    "Proposal",
    "RandomStateLike",
    "RealArray",
    "SizeLike",
]

FloatArray: TypeAlias = NDArray[np.float64]
"""A float64 array."""
RealArray: TypeAlias = NDArray[np.floating[Any]]
"""A float32 or float64 array (the dtype follows the input or a ``dtype`` argument)."""
IntArray: TypeAlias = NDArray[np.integer[Any]]
"""An integer array (labels, states, indices)."""
RandomStateLike: TypeAlias = (
    int
    | np.integer[Any]
    | np.random.SeedSequence
    | np.random.BitGenerator
    | np.random.Generator
    | np.random.RandomState
    | None
)
"""What ``_validation.check_random_state`` accepts (numpy's and scikit-learn's forms)."""
SizeLike: TypeAlias = int | tuple[int, ...] | None
"""A numpy-style ``size``: None (one draw) or a shape."""
CovarianceType: TypeAlias = Literal["full", "tied", "diag", "spherical"]
"""The four covariance structures of the mixtures and Gaussian HMMs."""
MixtureInit: TypeAlias = Literal["kmeans", "k-means++", "random", "random_from_data"]
"""How the mixtures initialise their responsibilities."""
HMMAlgorithm: TypeAlias = Literal["viterbi", "map"]
"""Decoding by the jointly most probable path or by each state's posterior."""
HMMImplementation: TypeAlias = Literal["scaling", "log"]
"""Forward-backward with scaled probabilities or in log space."""
NormalMethod: TypeAlias = Literal["ziggurat", "box-muller", "polar"]
ExponentialMethod: TypeAlias = Literal["ziggurat", "inversion"]


class LogDensity(Protocol):
    """A target with a ``log_prob(x)`` method (an unnormalised log density)."""

    def log_prob(self, x: FloatArray, /) -> SupportsFloat: ...


class GradLogDensity(LogDensity, Protocol):
    """A target with ``log_prob(x)`` and its gradient ``grad_log_prob(x)`` (for HMC)."""

    def grad_log_prob(self, x: FloatArray, /) -> ArrayLike: ...


class Proposal(Protocol):
    """A proposal distribution: ``rvs(size=, random_state=)`` and a vectorised
    ``logpdf(x)``; a frozen ``scipy.stats`` distribution qualifies."""

    def rvs(self, size: int, random_state: np.random.Generator) -> ArrayLike: ...

    def logpdf(self, x: NDArray[Any], /) -> ArrayLike: ...
