"""Restricted Boltzmann machines trained by contrastive divergence.

:class:`BernoulliRBM` (binary or [0, 1] visibles) and :class:`GaussianBernoulliRBM`
(real visibles with unit variance) have the energy
``E(v, h) = -b^T v - c^T h - h^T W v`` (Gaussian: ``||v - b||^2 / 2 - c^T h - h^T W v``),
so both conditionals factorise and a Gibbs sweep samples a whole layer at once
(Goodfellow et al., Deep Learning, sec. 20.2). Training follows the log-likelihood
gradient ``<h v^T>_data - <h v^T>_model``, the model term estimated by CD-k (Hinton 2002)
or persistent CD (Tieleman 2008). An epoch runs in one compiled call
(:mod:`fastml._kernels._rbm`): GEMMs through BLAS, sigmoids, and every Bernoulli/normal
draw taken from the numpy Generator inside the kernel.

Names follow scikit-learn's ``BernoulliRBM`` (``components_``, ``intercept_hidden_``,
``intercept_visible_``, ``n_components``, ``learning_rate``, ``batch_size``, ``n_iter``).
"""

from __future__ import annotations

import sys
import time
import warnings
from typing import TypeVar

import numpy as np
from scipy import sparse

from fastml._base import (
    BaseEstimator,
    TransformerMixin,
    check_is_fitted,
    validate_data,
)
from fastml._kernels import variant
from fastml._typing import ArrayLike, RandomStateLike, RealArray
from fastml._validation import (
    check_diverged,
    check_int,
    check_random_state,
    check_real,
)

_rbm = variant("_rbm")  # the AVX2 + FMA build where the CPU has it

__all__ = ["BernoulliRBM", "GaussianBernoulliRBM"]

_INT32_MAX = 2**31 - 1

_DENSE_CHUNK = 1 << 20  # values per densified block of sparse input


def _softplus(a: np.ndarray) -> np.ndarray:
    return np.logaddexp(0, a)


def _even_bounds(n: int, n_batches: int) -> np.ndarray:
    """Batch boundaries of ``n`` rows in ``n_batches`` near-equal slices (as scikit-learn's
    ``gen_even_slices``: the first ``n % n_batches`` slices get one more row)."""
    sizes = np.full(n_batches, n // n_batches, dtype=np.intp)
    sizes[: n % n_batches] += 1
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)


_RBM = TypeVar("_RBM", bound="BernoulliRBM")


class BernoulliRBM(TransformerMixin, BaseEstimator):
    """Bernoulli restricted Boltzmann machine trained by CD-k or persistent CD.

    Parameters
    ----------
    n_components : int, default 256
        Number of hidden units.
    learning_rate : float, default 0.1
        Step size of the mini-batch gradient (the gradient is averaged over the batch).
    batch_size : int, default 10
        Examples per mini-batch (and rows of the persistent chain).
    n_iter : int, default 10
        Passes over the data in :meth:`fit`.
    k : int, default 1
        Gibbs steps per update (CD-k / PCD-k).
    persistent : bool, default True
        Persistent CD (Tieleman 2008), as scikit-learn; ``False`` restarts the chain
        from the data each update (CD-k, Hinton 2002).
    verbose : int, default 0
        Print the pseudo-log-likelihood and time per iteration.
    random_state : None, int or numpy.random.Generator
        Seeds the initial weights N(0, 0.01^2), the Gibbs draws and ``score_samples``.

    Attributes
    ----------
    components_ : ndarray (n_components, n_features)
    intercept_hidden_ : ndarray (n_components,)
    intercept_visible_ : ndarray (n_features,)
    h_samples_ : ndarray (batch_size, n_components)
        State of the persistent chain.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names of a DataFrame ``X`` (when they are all strings).

    Notes
    -----
    X may be dense or sparse (any scipy.sparse format, read as CSR): ``fit`` and
    ``transform`` densify about 2**20 values at a time (whole mini-batches, so a sparse
    fit equals the dense one bit for bit); ``gibbs``, ``free_energy``, ``score_samples``
    and ``reconstruction_error`` densify all of X. Values outside [0, 1] are used as
    they are, with a warning (scikit-learn accepts them silently): scaled test data
    (``MinMaxScaler`` fitted on the training set) may fall slightly outside.

    ``p(h_j = 1 | v) = sigmoid(W_j v + c_j)``, ``p(v_i = 1 | h) = sigmoid(W_:i^T h + b_i)``
    (Goodfellow et al. eq. 20.10-20.14). Per mini-batch V with negative samples V-
    (k Gibbs steps) and hidden probabilities H+ = p(h | V), H- = p(h | V-):
    ``W += lr (H+^T V / B - H-^T V- / R)`` (Hinton 2002, eq. 5; Hinton 2010, "A practical
    guide to training RBMs"). X may be float32 (kept) or float64.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.rbm import BernoulliRBM
    >>> X = (np.random.default_rng(0).random((100, 16)) < 0.3).astype(float)
    >>> rbm = BernoulliRBM(n_components=8, n_iter=5, random_state=0).fit(X)
    >>> rbm.transform(X).shape
    (100, 8)
    """

    _gaussian = False

    def __init__(
        self,
        n_components: int = 256,
        *,
        learning_rate: float = 0.1,
        batch_size: int = 10,
        n_iter: int = 10,
        k: int = 1,
        persistent: bool = True,
        verbose: int = 0,
        random_state: RandomStateLike = None,
    ) -> None:
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.k = k
        self.persistent = persistent
        self.verbose = verbose
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def _xfail_checks(self):
        if self._gaussian:
            return {}
        reason = (
            "score_samples is a stochastic estimate of the pseudo-likelihood (one "
            "randomly chosen unit flipped per row, as scikit-learn's), so it differs "
            "between batches and orders of the same rows"
        )
        return {
            "check_methods_sample_order_invariance": reason,
            "check_methods_subset_invariance": reason,
        }

    # ------------------------------------------------------------------ validation
    def _check_X(self, X, name="X", reset=False, dense=True):
        """Validated X: C-contiguous (float32 kept in fit, the fitted dtype after), or
        CSR when ``dense`` is False and X is sparse."""
        dtype = None if reset else self.components_.dtype
        x = validate_data(
            self, X, reset=reset, name=name, dtype=dtype, accept_sparse=True
        )
        if x.shape[1] > _INT32_MAX or x.shape[0] > _INT32_MAX:
            raise ValueError(f"{name} is too large for 32-bit BLAS: shape {x.shape}")
        if not self._gaussian and x.size:
            lo, hi = x.min(), x.max()
            if lo < 0 or hi > 1:
                warnings.warn(
                    f"{name} has values in [{lo:g}, {hi:g}], outside [0, 1]: a "
                    "BernoulliRBM models binary or [0, 1] visibles, so they are used "
                    "as they are (rescale X to [0, 1] to silence this)",
                    UserWarning,
                    stacklevel=3,
                )
        if dense and sparse.issparse(x):
            x = x.toarray()
        return x

    def _hidden_proba(self, x):
        h = np.empty((x.shape[0], self.components_.shape[0]), dtype=x.dtype)
        if x.shape[0]:
            _rbm.hidden_proba(self.components_, self.intercept_hidden_, x, h)
        return h

    def _check_params(self):
        self._m = check_int(self.n_components, "n_components", low=1, high=_INT32_MAX)
        self._lr = check_real(
            self.learning_rate, "learning_rate", low=0.0, low_open=True
        )
        self._bs = check_int(self.batch_size, "batch_size", low=1)
        self._n_iter = check_int(self.n_iter, "n_iter", low=1)
        self._k = check_int(self.k, "k", low=1)

    def _initialise(self, x):
        self.random_state_ = check_random_state(self.random_state)
        rng = self.random_state_
        m, d = self._m, x.shape[1]
        self.components_ = rng.normal(0, 0.01, (m, d)).astype(x.dtype)
        self.intercept_hidden_ = np.zeros(m, dtype=x.dtype)
        self.intercept_visible_ = np.zeros(d, dtype=x.dtype)
        self.h_samples_ = np.zeros((self._bs, m), dtype=x.dtype)

    def _epoch(self, x, bounds):
        if sparse.issparse(x):  # whole mini-batches, densified a block at a time
            per_block = max(1, _DENSE_CHUNK // max(1, x.shape[1] * int(bounds[1])))
            for t in range(0, bounds.shape[0] - 1, per_block):
                part = bounds[t : t + per_block + 1]
                self._epoch(x[part[0] : part[-1]].toarray(), part - part[0])
            return
        rows = int(np.max(np.diff(bounds)))
        r = self.h_samples_.shape[0] if self.persistent else rows
        m, d, dt = self._m, x.shape[1], x.dtype
        wt = np.ascontiguousarray(self.components_.T)  # the kernel's layout, (d, m)
        try:
            _rbm.cd_epoch(
                self.random_state_.bit_generator,
                x,
                bounds,
                wt,
                self.intercept_hidden_,
                self.intercept_visible_,
                self.h_samples_,
                self._k,
                self._lr,
                bool(self.persistent),
                self._gaussian,
                np.empty((r + rows, m), dtype=dt),
                np.empty((r + rows, d), dtype=dt),
            )
        finally:  # also on Ctrl-C: the weights then hold the finished batches' updates,
            self.components_[...] = wt.T  # as the intercepts and the chain do

    # ------------------------------------------------------------------ training
    def fit(self: _RBM, X: ArrayLike, y: object = None) -> _RBM:
        """Fit to ``X`` (n_samples, n_features): ``n_iter`` passes of mini-batch CD.

        Batches are consecutive near-equal slices of X (as scikit-learn), not shuffled.
        """
        self._check_params()
        x = self._check_X(X, reset=True, dense=False)
        self._initialise(x)
        n = x.shape[0]
        bounds = _even_bounds(n, -(-n // self._bs))
        for it in range(self._n_iter):
            t0 = time.perf_counter()
            self._epoch(x, bounds)
            self._check_diverged(it + 1)
            if self.verbose:
                xd = x.toarray() if sparse.issparse(x) else x
                pl = float(np.mean(self._score_samples(xd)))
                print(
                    f"[{type(self).__name__}] Iteration {it + 1}, "
                    f"pseudo-likelihood = {pl:.2f}, time = {time.perf_counter() - t0:.2f}s",
                    file=sys.stdout,
                )
        return self

    def partial_fit(self: _RBM, X: ArrayLike, y: object = None) -> _RBM:
        """One CD update with ``X`` as a single mini-batch (initialising on first call)."""
        self._check_params()
        first = not hasattr(self, "components_")
        x = self._check_X(X, reset=first, dense=False)
        if first:
            self._initialise(x)
        self._epoch(x, np.array([0, x.shape[0]], dtype=np.intp))
        self._check_diverged(1)
        return self

    def _check_diverged(self, iteration):
        check_diverged(
            self,
            iteration,
            "lower learning_rate (or standardise X)",
            components_=self.components_,
            intercept_hidden_=self.intercept_hidden_,
            intercept_visible_=self.intercept_visible_,
        )

    # ------------------------------------------------------------------ inference
    def transform(self, X: ArrayLike) -> RealArray:
        """Hidden-unit probabilities p(h = 1 | v) (n_samples, n_components)."""
        check_is_fitted(self, "components_")
        x = self._check_X(X, dense=False)
        if sparse.issparse(x):
            step = max(1, _DENSE_CHUNK // x.shape[1])
            blocks = range(0, x.shape[0], step)
            h = np.concatenate(
                [self._hidden_proba(x[i : i + step].toarray()) for i in blocks]
            )
        else:
            h = self._hidden_proba(x)
        return self._wrap_output(h, X)

    def fit_transform(self, X: ArrayLike, y: object = None) -> RealArray:
        """Fit to ``X``, then return ``transform(X)``."""
        return self.fit(X).transform(X)

    def gibbs(self, v: ArrayLike, k: int = 1) -> RealArray:
        """``k`` block Gibbs steps v -> h -> v; returns the visible sample.

        Draws come from the estimator's generator (``random_state``) in compiled code.
        """
        check_is_fitted(self, "components_")
        x = self._check_X(v, "v")
        k = check_int(k, "k", low=1)
        out = np.empty_like(x)
        h = np.empty((x.shape[0], self.components_.shape[0]), dtype=x.dtype)
        if x.shape[0]:
            _rbm.gibbs(
                self.random_state_.bit_generator,
                self.components_,
                self.intercept_hidden_,
                self.intercept_visible_,
                x,
                k,
                self._gaussian,
                h,
                out,
            )
        return out

    def free_energy(self, v: ArrayLike) -> RealArray:
        """``F(v) = -b^T v - sum_j softplus(W_j v + c_j)``, p(v) = exp(-F(v)) / Z."""
        check_is_fitted(self, "components_")
        x = self._check_X(v, "v")
        return self._free_energy(x)

    def _free_energy(self, x):
        a = x @ self.components_.T + self.intercept_hidden_
        return -(x @ self.intercept_visible_) - _softplus(a).sum(axis=1)

    def score_samples(self, X: ArrayLike) -> RealArray:
        """Pseudo-log-likelihood of each row, from one randomly flipped unit per row.

        ``d log sigmoid(F(v~) - F(v))`` where ``v~`` is v with one visible unit (chosen
        uniformly) flipped to ``1 - v_i``: the stochastic estimate of
        ``sum_i log p(v_i | v_-i)`` scikit-learn uses (Besag 1975 pseudo-likelihood).
        """
        check_is_fitted(self, "components_")
        return self._score_samples(self._check_X(X))

    def _score_samples(self, x):
        n, d = x.shape
        rng = self.random_state_
        j = rng.integers(0, d, n)
        flipped = x.copy()
        flipped[np.arange(n), j] = 1 - flipped[np.arange(n), j]
        delta = self._free_energy(flipped) - self._free_energy(x)
        return -d * _softplus(-delta)

    def reconstruction_error(self, X: ArrayLike) -> float:
        """Mean squared error between X and its one-step mean reconstruction
        ``E[v | h = p(h | X)]`` (a monitoring figure, not the training objective)."""
        check_is_fitted(self, "components_")
        x = self._check_X(X)
        v = self._hidden_proba(x) @ self.components_ + self.intercept_visible_
        if not self._gaussian:
            v = 1.0 / (1.0 + np.exp(-v))
        return float(np.mean((x - v) ** 2))


class GaussianBernoulliRBM(BernoulliRBM):
    """RBM with Gaussian visible units of unit variance and Bernoulli hidden units.

    ``v | h ~ N(W^T h + b, I)`` and ``p(h_j = 1 | v) = sigmoid(W_j v + c_j)`` (Hinton
    2010, sec. 13.2; Cho et al. 2011). Standardise each feature to zero mean and unit
    variance first. Parameters and attributes as :class:`BernoulliRBM`; the default
    learning rate is 0.01 (Gaussian visibles need smaller steps).

    Notes
    -----
    Free energy ``F(v) = ||v - b||^2 / 2 - sum_j softplus(W_j v + c_j)``. Pseudo-
    likelihood is not defined for continuous units, so :meth:`score_samples` returns
    ``-F(v)``: the log-density up to the constant ``-log Z``.
    """

    _gaussian = True

    def __init__(
        self,
        n_components: int = 256,
        *,
        learning_rate: float = 0.01,
        batch_size: int = 10,
        n_iter: int = 10,
        k: int = 1,
        persistent: bool = True,
        verbose: int = 0,
        random_state: RandomStateLike = None,
    ) -> None:
        super().__init__(
            n_components,
            learning_rate=learning_rate,
            batch_size=batch_size,
            n_iter=n_iter,
            k=k,
            persistent=persistent,
            verbose=verbose,
            random_state=random_state,
        )

    def _free_energy(self, x):
        a = x @ self.components_.T + self.intercept_hidden_
        r = x - self.intercept_visible_
        return 0.5 * np.sum(r * r, axis=1) - _softplus(a).sum(axis=1)

    def score_samples(self, X: ArrayLike) -> RealArray:
        """``-F(v)``: unnormalised log-density of each row."""
        check_is_fitted(self, "components_")
        return self._score_samples(self._check_X(X))

    def _score_samples(self, x):
        return -self._free_energy(x)
