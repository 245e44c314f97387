"""Gaussian mixtures fitted by EM (PRML sec. 9.2), with scikit-learn's interface.

``fastml.mixture.GaussianMixture`` mirrors :class:`sklearn.mixture.GaussianMixture`
(parameters, fitted attributes and methods), so switching is an import change. Each EM
iteration is one compiled pass over the data (:mod:`fastml._kernels._gmm`): the
Mahalanobis terms by GEMM against the precision Cholesky factors, the log-sum-exp of the
responsibilities and the M-step sufficient statistics fused per block of rows.
"""

from fastml import exceptions
from fastml.mixture._bayesian_mixture import BayesianGaussianMixture
from fastml.mixture._gaussian_mixture import GaussianMixture
from fastml.mixture._kmeans import kmeans_plusplus

__all__ = [
    "BayesianGaussianMixture",
    "ConvergenceWarning",
    "GaussianMixture",
    "kmeans_plusplus",
]

# ``ConvergenceWarning`` is :class:`fastml.exceptions.ConvergenceWarning` (made on first
# use, so that ``import fastml.mixture`` does not import scikit-learn)
__getattr__ = exceptions._reexport(__name__, "ConvergenceWarning")
