"""Discrete sampling: Walker/Vose alias tables and categorical draws."""

from __future__ import annotations

from typing import overload

import numpy as np

from fastml._kernels import _samplers
from fastml._typing import ArrayLike, NDArray, RandomStateLike
from fastml._validation import (
    check_array,
    check_random_state,
    check_real,
)
from fastml.sampling._distributions import _output

__all__ = ["AliasTable", "categorical"]


class AliasTable:
    """Walker's alias table (Vose's construction) for O(1) categorical draws.

    Parameters
    ----------
    p : array_like, shape (K,)
        Probabilities: finite, non-negative, summing to 1 within ``atol``.
    atol : float, default 1e-8
        Tolerance on ``|sum(p) - 1|``; ``p`` is then divided by its sum.

    Attributes
    ----------
    p : numpy.ndarray
        The normalised probabilities.
    prob : numpy.ndarray
        ``prob[i]``: probability of keeping column ``i`` (else take ``alias[i]``).
    alias : numpy.ndarray of int64

    Notes
    -----
    Column ``i`` of ``K`` equal-width columns holds mass ``prob[i]/K`` of outcome ``i``
    and ``(1 - prob[i])/K`` of ``alias[i]``, so ``p_k = (prob[k] + sum_{i: alias[i]=k}
    (1 - prob[i])) / K`` (:meth:`probabilities`). Built in O(K) by Vose's algorithm;
    a draw uses one 53-bit uniform: the column from its integer part times K, the
    choice from the fraction.

    References
    ----------
    A. J. Walker, "An Efficient Method for Generating Discrete Random Variables with
    General Distributions", ACM TOMS 3(3), 1977. M. D. Vose, "A Linear Algorithm for
    Generating Random Numbers with a Given Distribution", IEEE TSE 17(9), 1991.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.sampling import AliasTable
    >>> t = AliasTable([0.5, 0.25, 0.25])
    >>> np.allclose(t.probabilities(), [0.5, 0.25, 0.25])
    True
    >>> t.sample(5, random_state=0).shape
    (5,)
    """

    def __init__(self, p: ArrayLike, atol: float = 1e-8) -> None:
        p = check_array(p, "p", ndim=1, allow_float32=False)
        atol = check_real(atol, "atol", low=0.0)
        if (p < 0).any():
            k = int(np.argmax(p < 0))
            raise ValueError(f"p must be non-negative; p[{k}] = {p[k]}")
        total = float(p.sum())
        if not abs(total - 1.0) <= atol:
            raise ValueError(f"p must sum to 1 (sums to {total:.10g}, atol={atol:g})")
        if p.shape[0] >= 2**31:
            raise ValueError(f"p has {p.shape[0]} categories; at most 2**31 - 1")
        self.p = p / total
        k = self.p.shape[0]
        self.prob = np.empty(k)
        self.alias = np.empty(k, dtype=np.int64)
        _samplers.alias_build(self.p, self.prob, self.alias, np.empty(k, np.int64))

    @property
    def n_categories(self) -> int:
        """Number of categories k in the table."""
        return self.p.shape[0]

    def probabilities(self) -> np.ndarray:
        """The distribution the table encodes, reconstructed from ``prob``/``alias``."""
        k = self.n_categories
        mass = self.prob.copy()
        np.add.at(mass, self.alias, 1.0 - self.prob)
        return mass / k

    @overload
    def sample(
        self,
        size: None = None,
        *,
        out: None = None,
        random_state: RandomStateLike = None,
    ) -> int: ...
    @overload
    def sample(
        self,
        size: int | tuple[int, ...] | None = None,
        *,
        out: NDArray[np.int64],
        random_state: RandomStateLike = None,
    ) -> NDArray[np.int64]: ...
    @overload
    def sample(
        self,
        size: int | tuple[int, ...],
        *,
        out: NDArray[np.int64] | None = None,
        random_state: RandomStateLike = None,
    ) -> NDArray[np.int64]: ...
    def sample(
        self,
        size: int | tuple[int, ...] | None = None,
        *,
        out: NDArray[np.int64] | None = None,
        random_state: RandomStateLike = None,
    ) -> int | NDArray[np.int64]:
        """Draw category indices (int64) in O(1) each; shape ``size``.

        ``out``: a C-contiguous, writeable int64 array to fill (shape ``size`` if
        given), returned. ``random_state`` as in :func:`categorical`.
        """
        arr, scalar = _output(size, np.int64, out, integer=True)
        rng = check_random_state(random_state)
        _samplers.alias_draw(rng.bit_generator, self.prob, self.alias, arr.reshape(-1))
        return int(arr[()]) if scalar else arr

    def __repr__(self) -> str:
        return f"AliasTable(n_categories={self.n_categories})"


@overload
def categorical(
    p: ArrayLike | AliasTable,
    size: None = None,
    *,
    out: None = None,
    random_state: RandomStateLike = None,
) -> int: ...
@overload
def categorical(
    p: ArrayLike | AliasTable,
    size: int | tuple[int, ...] | None = None,
    *,
    out: NDArray[np.int64],
    random_state: RandomStateLike = None,
) -> NDArray[np.int64]: ...
@overload
def categorical(
    p: ArrayLike | AliasTable,
    size: int | tuple[int, ...],
    *,
    out: NDArray[np.int64] | None = None,
    random_state: RandomStateLike = None,
) -> NDArray[np.int64]: ...
def categorical(
    p: ArrayLike | AliasTable,
    size: int | tuple[int, ...] | None = None,
    *,
    out: NDArray[np.int64] | None = None,
    random_state: RandomStateLike = None,
) -> int | NDArray[np.int64]:
    """Draw category indices with probabilities ``p`` (Walker/Vose alias method).

    Parameters
    ----------
    p : array_like of shape (K,) or AliasTable
        Probabilities summing to 1 (within 1e-8), or a prebuilt table to reuse.
    size : None, int or tuple of ints
    out : numpy.ndarray, optional
        C-contiguous, writeable int64 array to fill (shape ``size`` if given). Indices
        are int64 only (no ``dtype`` argument): the kernel writes them directly.
    random_state : None, int, SeedSequence, BitGenerator, Generator or RandomState
        As in :func:`fastml._validation.check_random_state`.

    Returns
    -------
    int or numpy.ndarray of int64

    Raises
    ------
    TypeError
        ``out`` not an int64 array; a bad ``random_state``.
    ValueError
        Bad ``p`` (see :class:`AliasTable`); ``out`` of the wrong shape, not
        C-contiguous or read-only.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.sampling import categorical
    >>> c = categorical([0.2, 0.8], 100_000, random_state=0)
    >>> bool(abs((c == 1).mean() - 0.8) < 0.01)
    True
    """
    table = p if isinstance(p, AliasTable) else AliasTable(p)
    return table.sample(size, out=out, random_state=random_state)
