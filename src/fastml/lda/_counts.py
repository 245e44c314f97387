"""Validation of document-term count matrices and their token layout for the kernels."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
from scipy import sparse

from fastml._typing import ArrayLike

_Counts: TypeAlias = ArrayLike | sparse.spmatrix | sparse.sparray

__all__ = ["check_counts"]


def check_counts(
    X: _Counts,
    name: str = "X",
    *,
    integer: bool = False,
    n_features: int | None = None,
) -> sparse.csr_matrix:
    """Validate a document-term count matrix; return it as CSR (float64, int32 indices).

    Parameters
    ----------
    X : array_like or scipy.sparse matrix of shape (n_docs, n_words)
        Non-negative, finite counts. Empty documents (all-zero rows) are allowed.
    integer : bool
        Require whole-number counts (collapsed Gibbs works on tokens).
    n_features : int, optional
        Required number of columns (the fitted vocabulary size).

    Raises
    ------
    TypeError
        Non-numeric input.
    ValueError
        Wrong ndim, negative, NaN/inf or non-integer counts, no documents, wrong
        vocabulary size; with ``integer``, 2**31 tokens or more (the 32-bit counters
        of the Gibbs kernels).
    """
    if sparse.issparse(X):
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-dimensional, got shape {X.shape}")
        if X.dtype.kind not in "biuf":
            raise TypeError(f"{name} must have a real numeric dtype, got {X.dtype}")
        csr = sparse.csr_matrix(X, dtype=np.float64, copy=True)
        csr.sum_duplicates()
    else:
        arr = np.asarray(X) if not isinstance(X, np.ndarray) else X
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must have a real numeric dtype, got {arr.dtype}")
        if arr.ndim != 2:
            raise ValueError(f"{name} must be 2-dimensional, got shape {arr.shape}")
        csr = sparse.csr_matrix(arr.astype(np.float64))
    D, V = csr.shape
    if D < 1:
        raise ValueError(
            f"{name} must have at least one document, got shape {csr.shape}"
        )
    if V < 1:
        raise ValueError(
            f"{name} must have at least one word column, got shape {csr.shape}"
        )
    data = csr.data
    if not np.all(np.isfinite(data)):
        i = int(np.argmin(np.isfinite(data)))
        raise ValueError(f"{name} must be finite (no NaN or infinity); found {data[i]}")
    if np.any(data < 0):
        i = int(np.argmax(data < 0))
        row = int(np.searchsorted(csr.indptr, i, side="right") - 1)
        raise ValueError(
            f"Negative values in data passed to {name}: {name} must hold non-negative "
            f"counts; found {data[i]} in document {row}, word {int(csr.indices[i])}"
        )
    if integer and np.any(data != np.round(data)):
        i = int(np.argmax(data != np.round(data)))
        raise ValueError(
            f"{name} must hold integer counts for method='gibbs' (tokens); found "
            f"{data[i]}"
        )
    if integer and data.sum() >= 2**31:  # before _tokens allocates one int per token
        raise ValueError(
            f"{name} holds {data.sum():.0f} tokens; collapsed Gibbs keeps 32-bit "
            "counts, so the total must be below 2**31 = 2147483648 (subsample the "
            "corpus or use method='variational')"
        )
    if n_features is not None and V != n_features:
        raise ValueError(
            f"{name} has {V} word columns but the model was fitted with a vocabulary "
            f"of {n_features}"
        )
    csr.eliminate_zeros()
    if csr.nnz >= 2**31:
        raise ValueError(f"{name} has too many non-zero entries (>= 2**31)")
    csr.indptr = csr.indptr.astype(np.intc)
    csr.indices = csr.indices.astype(np.intc)
    return csr


def _tokens(csr):
    """Token word ids (int32) and per-document offsets (intp) from integer counts."""
    counts = csr.data.astype(np.int64)
    words = np.repeat(csr.indices, counts).astype(np.intc)
    csum = np.concatenate([[0], np.cumsum(counts)])
    lengths = csum[csr.indptr[1:]] - csum[csr.indptr[:-1]]  # empty rows give 0
    doc_ptr = np.zeros(csr.shape[0] + 1, dtype=np.intp)
    np.cumsum(lengths, out=doc_ptr[1:])
    return words, doc_ptr, lengths
