"""Exceptions and warnings raised by fastml's estimators.

Both classes subclass scikit-learn's when scikit-learn is importable, so code written
for scikit-learn (``except sklearn.exceptions.NotFittedError``,
``warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)``) also
catches fastml's; without scikit-learn they have the same built-in bases as
scikit-learn's. scikit-learn stays optional: importing it costs a second or more, so it
is imported only when one of these classes is first used (PEP 562 module
``__getattr__``), not by ``import fastml``.

- :class:`NotFittedError` (``ValueError``, ``AttributeError``): a method needs a fitted
  estimator.
- :class:`ConvergenceWarning` (``UserWarning``): an iterative fit stopped at its
  iteration limit before its convergence criterion (``tol``) was met.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

__all__ = ["ConvergenceWarning", "NotFittedError"]

if TYPE_CHECKING:  # what type checkers see; at run time the classes are made below

    class NotFittedError(ValueError, AttributeError):
        """A method that needs a fitted estimator was called before ``fit``."""

    class ConvergenceWarning(UserWarning):
        """An iterative fit stopped at its iteration limit before converging."""


_DOCS = {
    "NotFittedError": (
        "A method that needs a fitted estimator was called before ``fit``.\n\n"
        "Subclasses ``sklearn.exceptions.NotFittedError`` when scikit-learn is "
        "importable, else ``ValueError`` and ``AttributeError`` (its bases)."
    ),
    "ConvergenceWarning": (
        "An iterative fit stopped at its iteration limit before meeting ``tol``.\n\n"
        "Subclasses ``sklearn.exceptions.ConvergenceWarning`` when scikit-learn is "
        "importable, else ``UserWarning`` (its base)."
    ),
}
_FALLBACK_BASES = {
    "NotFittedError": (ValueError, AttributeError),
    "ConvergenceWarning": (UserWarning,),
}
_lock = threading.Lock()


def _make(name: str) -> type:
    try:
        from sklearn import exceptions as sk_exceptions
    except ImportError:
        bases = _FALLBACK_BASES[name]
    else:
        bases = (getattr(sk_exceptions, name),)
    return type(name, bases, {"__module__": __name__, "__doc__": _DOCS[name]})


def __getattr__(name: str) -> type:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _lock:  # one class object per process, even if threads race here
        cls = globals().get(name)
        if cls is None:
            cls = globals()[name] = _make(name)
    return cls


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _reexport(module: str, *names: str) -> Callable[[str], type]:
    """A module ``__getattr__`` for ``module`` that serves ``names`` from here, so a
    re-export does not create the classes (and import scikit-learn) at import time."""

    def module_getattr(name: str) -> type:
        if name in names:
            return __getattr__(name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return module_getattr
