"""``fastml demo lda``: topics on Reuters (``lda`` package installed) or a synthetic
corpus, by collapsed Gibbs sampling and by variational EM."""

from __future__ import annotations

import time
from typing import TextIO

import numpy as np

from fastml.lda import LatentDirichletAllocation

# Variational settings of the demo. Batch VB from the uniform E-step start (20
# iterations) gave topics made of a few long documents' rare words ("topless tsar
# family went former cerpa georgy church"; mean NPMI 0.08 against 0.21 for Gibbs). Not
# a bug: the update equals scikit-learn's to 1e-8 from the same draws. Batch VB sits in
# poor local optima on this small corpus (395 documents, 20 topics); more iterations
# or larger priors do not help (NPMI 0.09 after 100 iterations, lower for eta = 0.5).
# Online VB on mini-batches of 64 for 50 passes, with the Gamma(100, 1/100) E-step
# start, reaches mean NPMI 0.18-0.19 (tests/test_lda_variational.py).
VARIATIONAL = dict(
    learning_method="online",
    batch_size=64,
    max_iter=50,
    doc_topic_prior=0.1,
    topic_word_prior=0.01,
)


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
    for method, iters in (("gibbs", 200), ("variational", VARIATIONAL["max_iter"])):
        kw = (
            VARIATIONAL
            if method == "variational"
            else dict(max_iter=iters, doc_topic_prior=0.1, topic_word_prior=0.01)
        )
        m = LatentDirichletAllocation(K, method=method, random_state=0, **kw)
        t0 = time.perf_counter()
        m.fit(X, vocabulary=vocab)
        dt = (time.perf_counter() - t0) / iters
        if method == "gibbs":
            extra = (
                f"{n_tok / dt / 1e6:.1f} M tokens/s, log p(w, z) "
                f"{m.loglikelihoods_[-1]:.0f}"
            )
        else:
            extra = f"online VB, perplexity {m.bound_:.0f}"
        print(
            f"   {method}: {iters} iterations, {dt * 1e3:.1f} ms per iteration, {extra}",
            file=out,
        )
        for k, words in enumerate(m.top_words(n=8)[:6]):
            print(f"     topic {k:2d}: {' '.join(words)}", file=out)
    word = "church" if "church" in vocab else vocab[0]
    sims = ", ".join(f"{w} ({s:.2f})" for w, s in m.most_similar(word, n=5))
    print(f"   most similar to {word!r} (cosine of word vectors): {sims}", file=out)
