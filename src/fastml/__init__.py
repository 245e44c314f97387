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

Run ``fastml demo`` for a tour and ``fastml info`` for the build.
"""

from fastml._build_config import VERSION as __version__

__all__ = ["__version__"]
