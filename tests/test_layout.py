"""The package layout: every public name of the five family packages is still importable
from the package, each lives in exactly one concept file, and nothing else is exported."""

import importlib
import inspect
import pkgutil

import pytest

import fastml
import fastml.exceptions

# The public names of each package (those before the split into concept files, plus
# GMMHMM and MultinomialHMM added since): none may be lost, none added by accident.
PUBLIC = {
    "fastml.sampling": [
        "AliasTable", "C_API_VERSION", "ImportanceResult", "MCMCResult", "MultivariateNormal",
        "RejectionResult", "categorical", "dirichlet", "exponential", "gamma",
        "gibbs_sampler", "hmc", "importance_sample", "inverse_cdf",
        "metropolis_hastings", "multivariate_normal", "normal", "rejection_sample",
        "standard_exponential", "standard_normal",
        "ctypes_functions",  # issue 15: the C samplers for numba / ctypes
    ],
    "fastml.nn": [
        "Adam", "AdditiveAttention", "Bidirectional", "Conv2d", "Flatten", "LSTM",
        "Layer", "Linear", "MaxPool2d", "MultiHeadAttention", "RNN", "ReLU", "SGD",
        "Sequential", "Sigmoid", "Softmax", "Tanh", "col2im", "conv2d_backward",
        "conv2d_forward", "im2col",
    ],
    "fastml.graphical": [
        "BayesianNetwork", "FactorGraph", "GridBPResult", "LoopyBPResult",
        "MarkovNetwork", "MaxSumResult", "PairwiseMRF", "SumProductResult",
    ],
    "fastml.mixture": [
        "BayesianGaussianMixture", "ConvergenceWarning", "GaussianMixture",
        "kmeans_plusplus",
    ],
    "fastml.lda": ["LatentDirichletAllocation", "check_counts"],
    "fastml.hmm": [
        "CategoricalHMM", "ConvergenceMonitor", "GaussianHMM", "GMMHMM",
        "MultinomialHMM", "PoissonHMM",
    ],
}  # fmt: skip


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_public_names_kept(package):
    pkg = importlib.import_module(package)
    assert sorted(pkg.__all__) == sorted(PUBLIC[package])
    for name in pkg.__all__:  # `from fastml.<package> import <name>` works
        exec(f"from {package} import {name}", {})


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_init_only_reexports(package):
    pkg = importlib.import_module(package)
    submodules = [
        importlib.import_module(m.name)
        for m in pkgutil.iter_modules(pkg.__path__, package + ".")
    ]
    assert submodules, package
    # fastml.exceptions' classes are re-exported lazily (fastml.mixture's
    # ConvergenceWarning): the same object, defined in neither the package nor its files
    shared = {n for n in pkg.__all__ if n in fastml.exceptions.__all__}
    for name in shared:
        assert getattr(pkg, name) is getattr(fastml.exceptions, name)
    for name in sorted(set(pkg.__all__) - shared):
        obj = getattr(pkg, name)
        # defined in one concept file of this package, which lists it in its __all__
        owners = [m for m in submodules if name in getattr(m, "__all__", ())]
        assert len(owners) == 1, (name, [m.__name__ for m in owners])
        assert getattr(owners[0], name) is obj
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__ == owners[0].__name__
    # __init__.py defines nothing of its own: all its public attributes are re-exports
    own = {
        k
        for k, v in vars(pkg).items()
        if not k.startswith("_") and not inspect.ismodule(v)
    }
    assert own - shared == set(pkg.__all__) - shared


def test_package_docstring_names_every_public_module():
    for module in [
        "stats", "losses", "sampling", "mixture", "variational", "lda", "hmm", "lds",
        "graphical", "ep", "nn", "rbm",
    ]:  # fmt: skip
        assert f":mod:`fastml.{module}`" in fastml.__doc__, module
        importlib.import_module(f"fastml.{module}")
