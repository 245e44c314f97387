"""Sampling: direct samplers, generic Monte Carlo and MCMC on numpy's bit generators.

Every function takes ``random_state`` (None, an int seed or a
:class:`numpy.random.Generator`) and draws from that Generator's bit generator through
numpy's C API while holding ``bit_generator.lock``: the same seed gives the same bits,
and drawing advances the caller's Generator exactly as far as the draws went.

Direct samplers (compiled, GIL released): :func:`standard_normal` (ziggurat,
Box-Muller, polar; float64 and float32), :func:`standard_exponential`, :func:`normal`,
:func:`exponential`, :func:`multivariate_normal`, :func:`gamma`, :func:`dirichlet`,
:func:`inverse_cdf`, :func:`categorical` / :class:`AliasTable`.

Generic Monte Carlo: :func:`rejection_sample`, :func:`importance_sample`.

C, C++, Cython and numba: ``fastml/random.h`` (:func:`fastml.get_include`) holds the
same samplers as inline C functions on numpy's ``bitgen_t``; :func:`ctypes_functions`
gives them as ctypes functions (:data:`C_API_VERSION` is the header's version).

MCMC: :func:`metropolis_hastings`, :func:`gibbs_sampler`, :func:`hmc`, on a compiled
:class:`MultivariateNormal` target or any object with ``log_prob`` (and
``grad_log_prob`` for HMC); results in :class:`MCMCResult`.
"""

from fastml.sampling._c_api import C_API_VERSION, ctypes_functions
from fastml.sampling._diagnostics import MCMCResult
from fastml.sampling._discrete import AliasTable, categorical
from fastml.sampling._distributions import (
    dirichlet,
    exponential,
    gamma,
    inverse_cdf,
    multivariate_normal,
    normal,
    standard_exponential,
    standard_normal,
)
from fastml.sampling._mcmc import gibbs_sampler, hmc, metropolis_hastings
from fastml.sampling._monte_carlo import (
    ImportanceResult,
    RejectionResult,
    importance_sample,
    rejection_sample,
)
from fastml.sampling._targets import MultivariateNormal

__all__ = [
    "C_API_VERSION",
    "AliasTable",
    "ImportanceResult",
    "MCMCResult",
    "MultivariateNormal",
    "RejectionResult",
    "categorical",
    "ctypes_functions",
    "dirichlet",
    "exponential",
    "gamma",
    "gibbs_sampler",
    "hmc",
    "importance_sample",
    "inverse_cdf",
    "metropolis_hastings",
    "multivariate_normal",
    "normal",
    "rejection_sample",
    "standard_exponential",
    "standard_normal",
]
