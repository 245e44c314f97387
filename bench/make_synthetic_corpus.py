"""A seeded synthetic corpus drawn from LDA's generative process, for the Gibbs benches.

Topics: ``beta_k ~ Dirichlet(c * base)`` with a Zipf-like base measure over the
vocabulary (word rank r has weight ``1 / (r + 10)``, total concentration
``c = 0.05 V``), so every topic has a heavy head of frequent words and a long tail, as
real text does. Documents: length ``~ Poisson(mean_len)``, ``theta_d ~
Dirichlet(alpha)``, each token's topic ``~ theta_d`` and word ``~ beta_topic``.

Defaults: 10,000 documents of mean length 220 (about 2.2e6 tokens), V = 20,000 words,
100 true topics, alpha = 0.1, seed 0. The result is cached under ``bench/.cache`` (about
2 s to regenerate)::

    python bench/make_synthetic_corpus.py          # writes the cache, prints a summary
"""

from __future__ import annotations

import pathlib
import sys
import time

import numpy as np
from scipy import sparse

CACHE = pathlib.Path(__file__).resolve().parent / ".cache"
DEFAULTS = dict(n_docs=10_000, n_words=20_000, n_topics=100, mean_len=220, alpha=0.1)


def make_corpus(
    n_docs: int,
    n_words: int,
    n_topics: int,
    mean_len: float,
    alpha: float,
    seed: int = 0,
) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Counts (n_docs, n_words) as CSR int64 and the true topics (n_topics, n_words)."""
    rng = np.random.default_rng(seed)
    base = 1.0 / (np.arange(n_words) + 10.0)
    beta = rng.dirichlet(0.05 * n_words * base / base.sum(), size=n_topics)
    theta = rng.dirichlet(np.full(n_topics, alpha), size=n_docs)
    lengths = rng.poisson(mean_len, size=n_docs)
    # topic counts per document, then each topic's words by inverse CDF
    ndk = np.stack([rng.multinomial(n, t) for n, t in zip(lengths, theta, strict=True)])
    doc_of, topic_of = np.nonzero(ndk)
    reps = ndk[doc_of, topic_of]
    tok_doc = np.repeat(doc_of, reps)
    tok_topic = np.repeat(topic_of, reps)
    tok_word = np.empty(tok_doc.shape[0], dtype=np.int64)
    cdf = np.cumsum(beta, axis=1)
    cdf /= cdf[:, -1:]
    for k in range(n_topics):
        sel = np.flatnonzero(tok_topic == k)
        tok_word[sel] = np.minimum(
            np.searchsorted(cdf[k], rng.random(sel.shape[0]), side="right"),
            n_words - 1,
        )
    X = sparse.coo_matrix(
        (np.ones(tok_doc.shape[0], dtype=np.int64), (tok_doc, tok_word)),
        shape=(n_docs, n_words),
    ).tocsr()
    X.sum_duplicates()
    return X, beta


def load_corpus(seed: int = 0) -> tuple[sparse.csr_matrix, np.ndarray]:
    """The default corpus, from the cache when present (else generated and cached)."""
    path = CACHE / f"synthetic_lda_seed{seed}.npz"
    if path.exists():
        f = np.load(path)
        X = sparse.csr_matrix(
            (f["data"], f["indices"], f["indptr"]), shape=tuple(f["shape"])
        )
        return X, f["beta"]
    X, beta = make_corpus(**DEFAULTS, seed=seed)
    CACHE.mkdir(exist_ok=True)
    (CACHE / ".gitignore").write_text("*\n")
    np.savez(
        path,
        data=X.data,
        indices=X.indices,
        indptr=X.indptr,
        shape=np.array(X.shape),
        beta=beta,
    )
    return X, beta


if __name__ == "__main__":
    t0 = time.perf_counter()
    X, beta = load_corpus(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(
        f"{X.shape[0]} documents, V = {X.shape[1]}, {int(X.sum())} tokens, "
        f"{beta.shape[0]} true topics, words used {int((X.sum(0) > 0).sum())} "
        f"({time.perf_counter() - t0:.1f} s)"
    )
