"""The estimator base honours scikit-learn's contract (clone, GridSearchCV, repr)."""

import numpy as np
import pytest

from fastml._base import BaseEstimator, NotFittedError, check_is_fitted


class Ridge(BaseEstimator):
    """A tiny closed-form ridge regressor used only to exercise the base class."""

    def __init__(self, alpha=1.0, fit_intercept=True):
        self.alpha = alpha
        self.fit_intercept = fit_intercept

    def fit(self, X, y):
        X = np.asarray(X, float)
        y = np.asarray(y, float)
        self.x_mean_ = X.mean(0) if self.fit_intercept else np.zeros(X.shape[1])
        self.y_mean_ = y.mean() if self.fit_intercept else 0.0
        Xc, yc = X - self.x_mean_, y - self.y_mean_
        self.coef_ = np.linalg.solve(
            Xc.T @ Xc + self.alpha * np.eye(X.shape[1]), Xc.T @ yc
        )
        return self

    def predict(self, X):
        check_is_fitted(self, "coef_")
        return (np.asarray(X, float) - self.x_mean_) @ self.coef_ + self.y_mean_

    def score(self, X, y):
        return -np.mean((self.predict(X) - y) ** 2)


class Pipeline2(BaseEstimator):
    def __init__(self, inner=None, scale=2.0):
        self.inner = inner
        self.scale = scale


def test_get_set_params_and_repr():
    r = Ridge(alpha=0.5)
    assert r.get_params() == {"alpha": 0.5, "fit_intercept": True}
    assert r.set_params(alpha=3.0) is r and r.alpha == 3.0
    assert repr(r) == "Ridge(alpha=3.0)"
    assert repr(Ridge()) == "Ridge()"
    with pytest.raises(
        ValueError, match="invalid parameter 'beta' for estimator Ridge"
    ):
        r.set_params(beta=1)


def test_nested_params():
    p = Pipeline2(inner=Ridge(alpha=2.0))
    params = p.get_params(deep=True)
    assert params["inner__alpha"] == 2.0
    p.set_params(inner__alpha=7.0, scale=1.0)
    assert p.inner.alpha == 7.0 and p.scale == 1.0
    assert "inner" in p.get_params(deep=False)


def test_not_fitted():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        Ridge().predict(np.ones((2, 2)))


def test_rejects_varargs_constructor():
    class Bad(BaseEstimator):
        def __init__(self, *args):
            self.args = args

    with pytest.raises(TypeError, match="explicitly"):
        Bad().get_params()


def test_sklearn_clone_and_grid_search():
    sklearn_base = pytest.importorskip("sklearn.base")
    from sklearn.model_selection import GridSearchCV

    r = Ridge(alpha=0.25).fit(np.eye(3), np.arange(3.0))
    c = sklearn_base.clone(r)
    assert c is not r and c.get_params() == r.get_params() and not hasattr(c, "coef_")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(120)
    gs = GridSearchCV(Ridge(), {"alpha": [1e-3, 1e3]}, cv=3).fit(X, y)
    assert gs.best_params_ == {"alpha": 1e-3}  # heavy shrinkage must lose on this data
    assert isinstance(gs.best_estimator_, Ridge)
