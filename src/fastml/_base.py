"""Estimator base with scikit-learn's contract, without depending on scikit-learn.

``get_params``/``set_params``/``__repr__`` are read off the constructor signature, so
``sklearn.base.clone``, ``GridSearchCV`` and pipelines work on fastml estimators.
"""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

__all__ = ["BaseEstimator", "NotFittedError", "check_is_fitted"]


class NotFittedError(ValueError, AttributeError):
    """Raised when a method needs a fitted estimator (same bases as scikit-learn's)."""


_E = TypeVar("_E", bound="BaseEstimator")


class BaseEstimator:
    """Base class: constructor parameters are stored as attributes of the same name.

    Subclasses list every parameter explicitly in ``__init__`` (no ``*args`` or
    ``**kwargs``) and store each one unchanged; validation happens in ``fit``.
    """

    @classmethod
    def _get_param_names(cls) -> list[str]:
        init = cls.__init__
        if init is object.__init__:
            return []
        params = inspect.signature(init).parameters.values()
        names = []
        for p in params:
            if p.name == "self":
                continue
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(
                    f"{cls.__name__}.__init__ must list its parameters explicitly "
                    f"(no *args/**kwargs), got {p}"
                )
            names.append(p.name)
        return sorted(names)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters of this estimator (and of nested estimators when ``deep``)."""
        out = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                for key, sub in value.get_params().items():
                    out[f"{name}__{key}"] = sub
            out[name] = value
        return out

    def set_params(self: _E, **params: Any) -> _E:
        """Set parameters (``name`` or nested ``name__sub``); returns ``self``."""
        if not params:
            return self
        valid = self.get_params(deep=True)
        nested: dict[str, dict] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"invalid parameter {name!r} for estimator {type(self).__name__}; "
                    f"valid parameters are {sorted(self._get_param_names())}"
                )
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
                valid[name] = value
        for name, sub_params in nested.items():
            valid[name].set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        defaults = {
            p.name: p.default
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.default is not inspect.Parameter.empty
        }
        shown = []
        for name in self._get_param_names():
            value = getattr(self, name)
            default = defaults.get(name, inspect.Parameter.empty)
            if default is inspect.Parameter.empty or not _same(value, default):
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def __sklearn_tags__(self):
        # Only called by scikit-learn (>= 1.6), which is then importable.
        from sklearn.utils import Tags, TargetTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False))


def _same(a, b) -> bool:
    try:
        return bool(a is b or a == b)
    except (TypeError, ValueError):
        return False


def check_is_fitted(estimator, attributes: str | list[str]) -> None:
    """Raise :class:`NotFittedError` unless every fitted attribute exists."""
    names = [attributes] if isinstance(attributes, str) else attributes
    if not all(hasattr(estimator, a) for a in names):
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet; call 'fit' first."
        )
