"""fastml: compiled kernels for classic probabilistic machine learning.

Public modules (each a thin, validated Python layer over compiled kernels):

- :mod:`fastml.stats`: one-pass moments, the ML variance bias.
- :mod:`fastml.losses`: negative log-likelihood losses and KL divergences.
- :mod:`fastml.sampling`: direct samplers on numpy's bit generators, rejection and
  importance sampling, Metropolis-Hastings, Gibbs and HMC with diagnostics.
- :mod:`fastml.mixture`: Gaussian mixtures by EM and variational Bayes, k-means++.
- :mod:`fastml.variational`: mean-field variational inference for a univariate Gaussian.
- :mod:`fastml.lda`: latent Dirichlet allocation, variational or collapsed Gibbs.
- :mod:`fastml.hmm`: hidden Markov models (categorical, Gaussian, Poisson emissions).
- :mod:`fastml.lds`: linear dynamical systems (Kalman filter, RTS smoother, EM).
- :mod:`fastml.graphical`: factor graphs, Bayesian and Markov networks, grid MRFs.
- :mod:`fastml.ep`: expectation propagation.
- :mod:`fastml.nn`: neural-network layers with explicit backpropagation.
- :mod:`fastml.rbm`: restricted Boltzmann machines trained by contrastive divergence.
- :mod:`fastml.exceptions`: ``NotFittedError`` and ``ConvergenceWarning`` (subclasses of
  scikit-learn's when it is installed).

Run ``fastml demo`` for a tour and ``fastml info`` for the build. C, C++ and Cython
code draws with fastml's samplers through ``fastml/random.h`` (:func:`get_include`).
"""

import os

from fastml._build_config import VERSION as __version__

__all__ = ["__version__", "get_include"]


def get_include() -> str:
    """The directory holding fastml's public C header and Cython declarations.

    It contains ``fastml/random.h`` (fastml's samplers as inline C functions on numpy's
    ``bitgen_t``), its ``fastml/ziggurat_tables.h`` and ``fastml/random.pxd``. Add it,
    with :func:`numpy.get_include`, to the C compiler's include path, and to Cython's
    (``cython -I``) to ``from fastml.random cimport ...``.

    Returns
    -------
    str
        An absolute path inside the installed package.

    Examples
    --------
    >>> import os, fastml
    >>> os.path.isfile(os.path.join(fastml.get_include(), "fastml", "random.h"))
    True
    """
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "include")
