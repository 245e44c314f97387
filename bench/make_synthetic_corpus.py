"""A seeded synthetic corpus drawn from LDA's generative process, for the Gibbs benches
and the topic-recovery bench.

Topics: ``beta_k ~ Dirichlet(c * base)`` with a Zipf-like base measure over the
vocabulary (word rank r has weight ``1 / (r + 10)``, total concentration
``c = topic_concentration * V``), so every topic has a heavy head of frequent words and
a long tail, as real text does. Documents: length ``~ Poisson(mean_len)``, ``theta_d ~
Dirichlet(alpha)``, each token's topic ``~ theta_d`` and word ``~ beta_topic``.

Defaults: 10,000 documents of mean length 220 (about 2.2e6 tokens), V = 20,000 words,
100 true topics, alpha = 0.1, seed 0.

- ``topic_concentration=0.05`` (the speed corpus): ``c = 1,000``, so each topic stays
  close to the shared Zipf base; the head words carry nearly the same weights in every
  topic (mean cosine between two true topics 0.645, between a true topic and the
  corpus's word frequencies 0.805). The topics differ only in sparse mid-frequency
  words, which makes them nearly unidentifiable by cosine (see ``bench_lda.py``).
- ``topic_concentration=0.01`` (the recovery corpus): ``c = 200 = eta V`` for the
  ``eta = 0.01`` the benches fit with, so the topics are drawn with the prior mass the
  model assumes (mean pairwise cosine 0.26).

Each corpus is cached under ``bench/.cache`` (about 2 s to regenerate)::

    python bench/make_synthetic_corpus.py [seed] [topic_concentration]
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
    topic_concentration: float = 0.05,
) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Counts (n_docs, n_words) as CSR int64 and the true topics (n_topics, n_words)."""
    rng = np.random.default_rng(seed)
    base = 1.0 / (np.arange(n_words) + 10.0)
    c = topic_concentration * n_words
    beta = rng.dirichlet(c * base / base.sum(), size=n_topics)
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


def load_corpus(
    seed: int = 0, topic_concentration: float = 0.05
) -> tuple[sparse.csr_matrix, np.ndarray]:
    """The corpus of the defaults, from the cache when present (else generated and
    cached)."""
    tag = "" if topic_concentration == 0.05 else f"_c{topic_concentration:g}"
    path = CACHE / f"synthetic_lda_seed{seed}{tag}.npz"
    if path.exists():
        f = np.load(path)
        X = sparse.csr_matrix(
            (f["data"], f["indices"], f["indptr"]), shape=tuple(f["shape"])
        )
        return X, f["beta"]
    X, beta = make_corpus(
        **DEFAULTS, seed=seed, topic_concentration=topic_concentration
    )
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
    X, beta = load_corpus(
        int(sys.argv[1]) if len(sys.argv) > 1 else 0,
        float(sys.argv[2]) if len(sys.argv) > 2 else 0.05,
    )
    print(
        f"{X.shape[0]} documents, V = {X.shape[1]}, {int(X.sum())} tokens, "
        f"{beta.shape[0]} true topics, words used {int((X.sum(0) > 0).sum())} "
        f"({time.perf_counter() - t0:.1f} s)"
    )
