"""fastml: compiled kernels for classic probabilistic machine learning.

Public modules: :mod:`fastml.stats` (one-pass moments, the ML variance bias) and
:mod:`fastml.losses` (negative log-likelihood losses and KL divergences). Run
``fastml demo`` for a tour and ``fastml info`` for the build.
"""

from fastml._build_config import VERSION as __version__

__all__ = ["__version__"]
