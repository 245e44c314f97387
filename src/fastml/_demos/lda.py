"""``fastml demo lda``: topics on Reuters (``lda`` package installed) or a synthetic
corpus, by collapsed Gibbs sampling and by variational EM."""

from __future__ import annotations

import time
from typing import TextIO

import numpy as np

from fastml.lda import LatentDirichletAllocation


def _corpus():
    try:
        import lda.datasets as ds

        return ds.load_reuters(), list(ds.load_reuters_vocab()), "Reuters (lda package)"
    except ImportError:
        rng = np.random.default_rng(0)
        K, per, V = 10, 30, 300
        beta = np.zeros((K, V))
        for k in range(K):
            beta[k, k * per : (k + 1) * per] = rng.dirichlet(np.ones(per))
        theta = rng.dirichlet(np.full(K, 0.1), size=400)
        X = np.array([rng.multinomial(150, t @ beta) for t in theta])
        vocab = [f"t{j // per}w{j % per}" for j in range(V)]
        return X, vocab, "synthetic (install 'lda' for Reuters)"


def demo(out: TextIO) -> None:
    X, vocab, name = _corpus()
    n_tok = int(X.sum())
    print(
        f"   corpus: {name}, {X.shape[0]} documents, {X.shape[1]} words, {n_tok} tokens",
        file=out,
    )
    K = 20 if X.shape[1] > 1000 else 10
    for method, iters in (("gibbs", 200), ("variational", 20)):
        m = LatentDirichletAllocation(
            K,
            method=method,
            doc_topic_prior=0.1,
            topic_word_prior=0.01,
            max_iter=iters,
            random_state=0,
        )
        t0 = time.perf_counter()
        m.fit(X, vocabulary=vocab)
        dt = (time.perf_counter() - t0) / iters
        if method == "gibbs":
            extra = (
                f"{n_tok / dt / 1e6:.1f} M tokens/s, log p(w, z) "
                f"{m.loglikelihoods_[-1]:.0f}"
            )
        else:
            extra = f"ELBO {m.bounds_[-1]:.0f}, perplexity {m.perplexity(X):.0f}"
        print(
            f"   {method}: {iters} iterations, {dt * 1e3:.1f} ms per iteration, {extra}",
            file=out,
        )
        for k, words in enumerate(m.top_words(n=8)[:6]):
            print(f"     topic {k:2d}: {' '.join(words)}", file=out)
    word = "church" if "church" in vocab else vocab[0]
    sims = ", ".join(f"{w} ({s:.2f})" for w, s in m.most_similar(word, n=5))
    print(f"   most similar to {word!r} (cosine of word vectors): {sims}", file=out)
