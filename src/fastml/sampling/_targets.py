"""Compiled MCMC targets: densities whose log-probability and gradient the chains
evaluate without returning to Python.
"""

from __future__ import annotations

import numpy as np

from fastml._typing import ArrayLike, FloatArray
from fastml._validation import (
    check_array,
)
from fastml.sampling._distributions import _check_cov

__all__ = ["MultivariateNormal"]


class MultivariateNormal:
    """Gaussian target N(mean, cov) whose log density and gradient run in compiled code.

    Passed to :func:`metropolis_hastings`, :func:`hmc` or :func:`gibbs_sampler`, the whole
    chain runs in Cython with no Python call per step. The Python methods below evaluate
    the same density (for checks and for the generic samplers).

    Parameters
    ----------
    mean : array_like, shape (d,)
    cov : array_like, shape (d, d)
        Symmetric positive definite.

    Attributes
    ----------
    dim : int
    chol : numpy.ndarray
        Lower Cholesky factor ``L`` of ``cov``.
    whiten : numpy.ndarray
        ``L^{-1}`` (lower triangular).
    precision : numpy.ndarray
        ``cov^{-1} = L^{-T} L^{-1}``.

    Examples
    --------
    >>> from fastml.sampling import MultivariateNormal
    >>> t = MultivariateNormal([0.0, 0.0], [[1.0, 0.5], [0.5, 2.0]])
    >>> round(float(t.log_prob([0.0, 0.0])), 6)
    -2.117685
    """

    def __init__(self, mean: ArrayLike, cov: ArrayLike) -> None:
        self.mean = check_array(mean, "mean", ndim=1, allow_float32=False)
        d = self.mean.shape[0]
        self.cov = _check_cov(cov, d)
        try:
            self.chol = np.linalg.cholesky(self.cov)
        except np.linalg.LinAlgError:
            w = np.linalg.eigvalsh(self.cov)
            raise ValueError(
                f"cov must be positive definite for a MultivariateNormal target; its "
                f"smallest eigenvalue is {w[0]:.3g}"
            ) from None
        from scipy.linalg import solve_triangular

        self.whiten = np.ascontiguousarray(
            solve_triangular(self.chol, np.eye(d), lower=True)
        )
        self.precision = np.ascontiguousarray(self.whiten.T @ self.whiten)
        self._whiten_f = np.asfortranarray(np.tril(self.whiten))  # kernels: Fortran
        self._log_norm = -0.5 * d * np.log(2 * np.pi) - np.log(np.diag(self.chol)).sum()

    @property
    def dim(self) -> int:
        """Dimension d of the Gaussian."""
        return self.mean.shape[0]

    def log_prob(self, x: ArrayLike) -> np.float64 | FloatArray:
        """log N(x | mean, cov) (PRML eq. 2.43), vectorised over leading axes."""
        r = (np.asarray(x, dtype=float) - self.mean) @ self.whiten.T
        return self._log_norm - 0.5 * np.sum(r * r, axis=-1)

    def grad_log_prob(self, x: ArrayLike) -> FloatArray:
        """Gradient ``-cov^{-1} (x - mean)``."""
        return -(np.asarray(x, dtype=float) - self.mean) @ self.precision

    def __repr__(self) -> str:
        return f"MultivariateNormal(dim={self.dim})"
