"""Estimator base with scikit-learn's contract, without depending on scikit-learn.

``get_params``/``set_params``/``__repr__`` are read off the constructor signature, so
``sklearn.base.clone``, ``GridSearchCV`` and pipelines work on fastml estimators;
``validate_data`` checks inputs as scikit-learn's estimators do (feature counts and
names, the error messages its ``check_estimator`` looks for); :class:`TransformerMixin`
gives transformers ``get_feature_names_out``, ``set_output`` and their tags.
scikit-learn is imported only by ``__sklearn_tags__`` (which only scikit-learn calls)
and by :mod:`fastml.exceptions`.
"""

from __future__ import annotations

import inspect
import sys
import warnings
from typing import Any, TypeVar

import numpy as np
from scipy import sparse

from fastml import exceptions
from fastml._typing import ArrayLike
from fastml._validation import as_ndarray, check_array, float_dtype

__all__ = [
    "BaseEstimator",
    "TransformerMixin",
    "check_is_fitted",
    "validate_data",
]


# ``fastml._base.NotFittedError`` is :class:`fastml.exceptions.NotFittedError`
__getattr__ = exceptions._reexport(__name__, "NotFittedError")


_E = TypeVar("_E", bound="BaseEstimator")
_T = TypeVar("_T", bound="TransformerMixin")


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

    def _xfail_checks(self) -> dict[str, str]:
        """scikit-learn common checks this estimator is known to fail, with the reason
        (``{check name: reason}``); pass them to ``check_estimator`` /
        ``parametrize_with_checks`` as ``expected_failed_checks``. Empty unless the
        model's mathematics forbids what a check asks."""
        return {}


def _same(a, b) -> bool:
    try:
        return bool(a is b or a == b)
    except (TypeError, ValueError):
        return False


def check_is_fitted(estimator, attributes: str | list[str]) -> None:
    """Raise :class:`fastml.exceptions.NotFittedError` unless every fitted attribute
    exists (with scikit-learn's message)."""
    names = [attributes] if isinstance(attributes, str) else attributes
    if not all(hasattr(estimator, a) for a in names):
        raise exceptions.NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' "
            "with appropriate arguments before using this estimator."
        )


def _feature_names(X) -> np.ndarray | None:
    """String column names of a DataFrame-like ``X`` (None for arrays or non-string
    names), as scikit-learn's ``_get_feature_names``."""
    columns = getattr(X, "columns", None)
    if columns is None or sparse.issparse(X):
        return None
    names = np.asarray(columns, dtype=object)
    is_str = np.array([isinstance(c, str) for c in names], dtype=bool)
    if names.size and is_str.any() and not is_str.all():
        raise TypeError(
            "X has feature names of mixed types (only strings are used as feature "
            f"names); got {sorted({type(c).__name__ for c in names})}"
        )
    return names if names.size and is_str.all() else None


def _check_feature_names(estimator, X, reset: bool) -> None:
    """Set ``feature_names_in_`` (reset) or check ``X``'s names against it, with
    scikit-learn's messages (a warning when only one side has names)."""
    names = _feature_names(X)
    cls = type(estimator).__name__
    if reset:
        if names is not None:
            estimator.feature_names_in_ = names
        elif hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        return
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is None and names is None:
        return
    if names is not None and fitted is None:
        warnings.warn(
            f"X has feature names, but {cls} was fitted without feature names",
            UserWarning,
            stacklevel=3,
        )
    elif names is None:
        warnings.warn(
            f"X does not have valid feature names, but {cls} was fitted with feature "
            "names",
            UserWarning,
            stacklevel=3,
        )
    elif len(names) != len(fitted) or np.any(names != fitted):
        msg = "The feature names should match those that were passed during fit.\n"
        unseen = sorted(set(names) - set(fitted))
        missing = sorted(set(fitted) - set(names))
        for title, group in (
            ("Feature names unseen at fit time", unseen),
            ("Feature names seen at fit time, yet now missing", missing),
        ):
            if group:
                shown = [f"- {n}\n" for n in group[:5]]
                msg += f"{title}:\n" + "".join(shown) + ("- ...\n" if group[5:] else "")
        if not unseen and not missing:
            msg += "Feature names must be in the same order as they were in fit.\n"
        raise ValueError(msg)


def validate_data(
    estimator,
    X,
    *,
    reset: bool,
    name: str = "X",
    dtype=None,
    accept_sparse: bool = False,
    min_samples: int = 1,
):
    """Validate a 2-d sample matrix for ``estimator`` (scikit-learn's ``validate_data``).

    Parameters
    ----------
    estimator : BaseEstimator
    X : array_like, DataFrame or (if ``accept_sparse``) scipy.sparse matrix
    reset : bool
        ``fit``: record ``n_features_in_`` (and ``feature_names_in_`` for a DataFrame
        with string columns). Otherwise check ``X`` against them.
    name : str
        The argument's name in error messages.
    dtype : numpy.dtype, optional
        Force float32/float64; by default float32 is kept and anything else becomes
        float64 (:func:`fastml._validation.check_array`).
    accept_sparse : bool
        Return sparse input as CSR (float32/float64 data, finite) instead of refusing it.
    min_samples : int
        Fewer rows raise a ValueError saying how many there are.

    Returns
    -------
    numpy.ndarray (C-contiguous) or scipy.sparse.csr_matrix

    Raises
    ------
    ValueError
        1-d or 3-d input ("Reshape your data"), complex values, too few samples, no
        features, a feature count or names differing from ``fit``, NaN or infinity.
    TypeError
        Sparse input where it is not accepted, non-numeric values.
    """
    cls = type(estimator).__name__
    _check_feature_names(estimator, X, reset)
    if sparse.issparse(X):
        if not accept_sparse:
            raise TypeError(
                f"{name} is a sparse {type(X).__name__}, but {cls} needs dense input: "
                f"sparse input is not supported (pass {name}.toarray())"
            )
        x = sparse.csr_matrix(X)
        dt = float_dtype(x.dtype, name=name) if dtype is None else np.dtype(dtype)
        x = x.astype(dt, copy=x.dtype != dt)
        check_array(x.data, f"{name}.data", ndim=1, allow_empty=True)  # finite
    else:
        x = as_ndarray(X, name)
        if x.dtype == object:
            try:
                x = x.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{name} must hold numbers: {exc}") from None
        if x.dtype.kind == "c":
            raise ValueError(
                f"Complex data not supported: {name} must have a real numeric dtype, "
                f"got {x.dtype}"
            )
    if x.ndim != 2:
        raise ValueError(
            f"{name} must be 2-dimensional (n_samples, n_features), got shape "
            f"{x.shape}. Reshape your data either using X.reshape(-1, 1) if "
            "your data has a single feature or X.reshape(1, -1) if it contains a "
            "single sample."
        )
    n, d = x.shape
    if n < min_samples:
        raise ValueError(
            f"Found array with {n} sample(s) (shape={x.shape}) while a minimum of "
            f"{min_samples} is required by {cls}: {name} has n_samples={n}."
        )
    if d < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={x.shape}) while a minimum of 1 "
            f"is required by {cls}."
        )
    if reset:
        estimator.n_features_in_ = d
    elif d != estimator.n_features_in_:
        raise ValueError(
            f"{name} has {d} features, but {cls} is expecting "
            f"{estimator.n_features_in_} features as input."
        )
    if sparse.issparse(x):
        return x
    return check_array(x, name, ndim=2, dtype=dtype)


class TransformerMixin:
    """Transformer conventions of scikit-learn's ``TransformerMixin`` and
    ``ClassNamePrefixFeaturesOutMixin``: output features named ``<classname><i>``,
    ``set_output`` (``"default"``, ``"pandas"``, ``"polars"``; ``None`` follows
    ``sklearn.set_config(transform_output=...)`` when scikit-learn is in use) and the
    transformer tags. Subclasses define ``_n_features_out`` and pass every
    ``transform``/``fit_transform`` result through ``_wrap_output``. List it before
    :class:`BaseEstimator` in the bases.
    """

    def get_feature_names_out(
        self, input_features: ArrayLike | None = None
    ) -> np.ndarray:
        """Output feature names ``<classname lowercase><i>``, i < number of outputs.

        Parameters
        ----------
        input_features : array_like of str, optional
            Only checked: it must match ``feature_names_in_`` (or have
            ``n_features_in_`` entries).

        Returns
        -------
        ndarray of str (object dtype)
        """
        check_is_fitted(self, "n_features_in_")
        if input_features is not None:
            given = np.asarray(input_features, dtype=object)
            fitted = getattr(self, "feature_names_in_", None)
            if fitted is not None and (
                given.shape != fitted.shape or np.any(given != fitted)
            ):
                raise ValueError("input_features is not equal to feature_names_in_")
            if fitted is None and len(given) != self.n_features_in_:
                raise ValueError(
                    f"input_features should have length equal to number of features "
                    f"({self.n_features_in_}), got {len(given)}"
                )
        prefix = type(self).__name__.lower()
        return np.asarray(
            [f"{prefix}{i}" for i in range(self._n_features_out)], dtype=object
        )

    def set_output(self: _T, *, transform: str | None = None) -> _T:
        """Container of ``transform``/``fit_transform`` results: ``"default"``
        (ndarray), ``"pandas"`` or ``"polars"`` (a DataFrame with the
        ``get_feature_names_out()`` columns); ``None`` leaves it unchanged. Returns
        ``self``."""
        if transform is None:
            return self
        if transform not in ("default", "pandas", "polars"):
            raise ValueError(
                "transform must be 'default', 'pandas', 'polars' or None, got "
                f"{transform!r}"
            )
        # scikit-learn's attribute name, so sklearn.base.clone carries it over
        self._sklearn_output_config = {"transform": transform}
        return self

    def _wrap_output(self, out, X):
        container = getattr(self, "_sklearn_output_config", {}).get("transform")
        if container is None:
            sk = sys.modules.get("sklearn")  # a global config exists only if imported
            container = sk.get_config()["transform_output"] if sk else "default"
        if container == "default":
            return out
        columns = self.get_feature_names_out()
        if container == "pandas":
            import pandas as pd

            index = X.index if isinstance(X, pd.DataFrame) else None
            return pd.DataFrame(out, index=index, columns=columns, copy=False)
        import polars as pl

        return pl.DataFrame(out, schema=columns.tolist(), orient="row")

    def __sklearn_tags__(self):
        from sklearn.utils import TransformerTags

        tags = super().__sklearn_tags__()
        tags.transformer_tags = TransformerTags(preserves_dtype=["float64", "float32"])
        return tags
