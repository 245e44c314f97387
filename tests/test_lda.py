"""fastml.lda.LatentDirichletAllocation: Gibbs vs an independent G&S log-likelihood and
the ``lda`` package on Reuters; variational vs scikit-learn's bound and perplexity;
recovery of synthetic topics; bad input.
"""

import numpy as np
import pytest
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.special import gammaln, psi

from fastml._kernels import _lda
from fastml.lda import LatentDirichletAllocation, check_counts


def _synthetic(n_docs=200, K=4, words_per_topic=10, doc_len=80, alpha=0.1, seed=0):
    """Topics with disjoint supports; documents drawn from the LDA generative model."""
    rng = np.random.default_rng(seed)
    V = K * words_per_topic
    beta = np.zeros((K, V))
    for k in range(K):
        beta[k, k * words_per_topic : (k + 1) * words_per_topic] = rng.dirichlet(
            np.full(words_per_topic, 5.0)
        )
    X = np.zeros((n_docs, V), dtype=np.int64)
    for d in range(n_docs):
        theta = rng.dirichlet(np.full(K, alpha))
        X[d] = rng.multinomial(doc_len, theta @ beta)
    return X, beta


def _match_topics(est, truth):
    """Max |difference| after matching estimated to true topics (Hungarian, L1 cost)."""
    cost = np.abs(est[:, None, :] - truth[None, :, :]).sum(-1)
    r, c = linear_sum_assignment(cost)
    return np.abs(est[r] - truth[c]).max()


def _gs_loglik(ndk, nwk, alpha, eta):
    """Independent G&S eqs. 2-3 (Dirichlet-multinomial marginals) in numpy."""
    D, K = ndk.shape
    V = nwk.shape[0]
    nkw = nwk.T
    lp_w_z = K * (gammaln(V * eta) - V * gammaln(eta)) + np.sum(
        np.sum(gammaln(nkw + eta), axis=1) - gammaln(nkw.sum(axis=1) + V * eta)
    )
    lp_z = D * (gammaln(K * alpha) - K * gammaln(alpha)) + np.sum(
        np.sum(gammaln(ndk + alpha), axis=1) - gammaln(ndk.sum(axis=1) + K * alpha)
    )
    return lp_w_z + lp_z


@pytest.fixture(scope="module")
def reuters():
    lda_ds = pytest.importorskip("lda.datasets")
    return lda_ds.load_reuters(), lda_ds.load_reuters_vocab()


# ----------------------------------------------------------------------- Gibbs
def test_gibbs_loglik_equals_independent_gs_formula():
    X, _ = _synthetic(n_docs=60)
    for it in (1, 7):
        m = LatentDirichletAllocation(
            4,
            method="gibbs",
            max_iter=it,
            doc_topic_prior=0.3,
            topic_word_prior=0.05,
            random_state=3,
        ).fit(X)
        ref = _gs_loglik(m.ndk_, m.nwk_, 0.3, 0.05)  # oracle: G&S eqs. 2-3 in numpy
        assert m.loglikelihoods_[-1] == pytest.approx(ref, rel=1e-12)
        # counts are consistent with the assignments
        assert m.nk_.sum() == X.sum() and np.all(m.nwk_.sum(axis=1) == X.sum(axis=0))
        assert np.all(m.ndk_.sum(axis=1) == X.sum(axis=1))


def test_gibbs_reproducible_and_seed_dependent():
    X, _ = _synthetic(n_docs=50)
    kw = dict(method="gibbs", max_iter=5)
    a = LatentDirichletAllocation(4, random_state=1, **kw).fit(X)
    b = LatentDirichletAllocation(4, random_state=1, **kw).fit(X)
    c = LatentDirichletAllocation(4, random_state=2, **kw).fit(X)
    np.testing.assert_array_equal(a.z_, b.z_)
    assert not np.array_equal(a.z_, c.z_)


def test_gibbs_matches_lda_package_on_reuters(reuters):
    lda = pytest.importorskip("lda")
    import logging

    logging.getLogger("lda").setLevel(logging.WARNING)
    X, vocab = reuters
    n_iter = 200
    ours = LatentDirichletAllocation(
        20,
        method="gibbs",
        doc_topic_prior=0.1,
        topic_word_prior=0.01,
        max_iter=n_iter,
        random_state=1,
    ).fit(X, vocabulary=vocab)
    ref = lda.LDA(20, n_iter=n_iter, alpha=0.1, eta=0.01, random_state=1, refresh=10**9)
    ref.fit(X)
    # oracle: the lda package's final log p(w, z) after the same number of sweeps
    assert abs(ours.loglikelihoods_[-1] / ref.loglikelihood() - 1) < 0.005
    top_a = np.argsort(-ours.topic_word_, axis=1)[:, :10]
    top_b = np.argsort(-ref.topic_word_, axis=1)[:, :10]
    overlap = np.array([[len(set(x) & set(y)) for y in top_b] for x in top_a])
    r, c = linear_sum_assignment(-overlap)
    # two lda-package chains with different seeds overlap by ~5.1 of 10 (measured)
    assert overlap[r, c].mean() >= 4.0
    union = len(set(top_a.ravel()) & set(top_b.ravel())) / len(set(top_b.ravel()))
    assert union >= 0.6
    assert ours.top_words(n=3)[0][0] in vocab


def test_gibbs_recovers_synthetic_topics_and_fold_in():
    X, beta = _synthetic()
    m = LatentDirichletAllocation(
        4,
        method="gibbs",
        max_iter=300,
        doc_topic_prior=0.1,
        topic_word_prior=0.01,
        random_state=0,
    ).fit(X)
    assert _match_topics(m.topic_word_, beta) < 0.05
    theta = m.transform(X[:20])
    np.testing.assert_allclose(theta.sum(axis=1), 1.0)
    assert np.abs(theta - m.doc_topic_[:20]).max() < 0.25
    assert np.isfinite(m.perplexity(X))


# ------------------------------------------------------------------ variational
def test_digamma_kernel_matches_scipy():
    x = np.concatenate([np.geomspace(1e-6, 1e3, 200), [0.1, 0.5, 1.0, 5.999, 6.0]])
    out = np.empty_like(x)
    _lda.digamma(x, out)
    np.testing.assert_allclose(out, psi(x), rtol=1e-13, atol=1e-13)


def test_variational_bound_equals_sklearn_approx_bound():
    skd = pytest.importorskip("sklearn.decomposition")
    X, _ = _synthetic(n_docs=80, seed=4)
    m = LatentDirichletAllocation(4, max_iter=5, random_state=0).fit(X)
    csr = check_counts(X)
    gamma, _ = m._unnormalized_transform(csr)
    ref = skd.LatentDirichletAllocation(4)
    ref.components_ = m.components_
    ref.exp_dirichlet_component_ = m.exp_dirichlet_component_
    ref.doc_topic_prior_ = m.doc_topic_prior_
    ref.topic_word_prior_ = m.topic_word_prior_
    ref.n_features_in_ = X.shape[1]
    bound = ref._approx_bound(X.astype(float), gamma, False)  # oracle: sklearn
    assert m.score(X) == pytest.approx(bound, rel=1e-10)


def test_variational_elbo_monotone_and_topics_recovered():
    X, beta = _synthetic(seed=1)
    m = LatentDirichletAllocation(
        4, max_iter=60, doc_topic_prior=0.1, topic_word_prior=0.01, random_state=0
    ).fit(sparse.csr_matrix(X))
    b = np.array(m.bounds_)
    assert np.all(np.diff(b) >= -1e-9 * np.abs(b[1:]))
    assert _match_topics(m.topic_word_, beta) < 0.05
    np.testing.assert_allclose(m.transform(X).sum(axis=1), 1.0)


def test_variational_perplexity_no_worse_than_sklearn(reuters):
    skd = pytest.importorskip("sklearn.decomposition")
    X, _ = reuters
    kw = dict(doc_topic_prior=0.1, topic_word_prior=0.01, max_iter=20, random_state=0)
    ours = LatentDirichletAllocation(20, **kw).fit(X)
    ref = skd.LatentDirichletAllocation(20, learning_method="batch", **kw).fit(X)
    # oracle: scikit-learn batch VB with the same priors and iterations
    assert ours.perplexity(X) <= 1.01 * ref.perplexity(X)


def test_optimize_priors_newton():
    X, _ = _synthetic(n_docs=300, alpha=0.1, seed=2)
    m = LatentDirichletAllocation(
        4,
        max_iter=40,
        optimize_priors=True,
        doc_topic_prior=1.0,
        topic_word_prior=1.0,
        random_state=0,
    ).fit(X)
    b = np.array(m.bounds_)
    assert np.all(np.diff(b) >= -1e-9 * np.abs(b[1:]))
    assert 0.02 < m.doc_topic_prior_ < 0.5  # data drawn with alpha = 0.1
    assert m.topic_word_prior_ < 1.0
    fixed = LatentDirichletAllocation(
        4, max_iter=40, doc_topic_prior=1.0, topic_word_prior=1.0, random_state=0
    ).fit(X)
    assert m.bounds_[-1] > fixed.bounds_[-1]


def test_empty_documents_allowed():
    X, _ = _synthetic(n_docs=40)
    X[[0, 3, 17, 38, 39]] = 0  # first, middle and trailing documents
    for method in ("variational", "gibbs"):
        m = LatentDirichletAllocation(4, method=method, max_iter=5, random_state=0).fit(
            X
        )
        theta = m.transform(X)
        np.testing.assert_allclose(theta[3], 0.25)
        np.testing.assert_allclose(theta.sum(axis=1), 1.0)


def test_words_api_and_verbose(capsys):
    X, _ = _synthetic()
    vocab = [f"w{j}" for j in range(X.shape[1])]
    m = LatentDirichletAllocation(
        4, method="gibbs", max_iter=100, evaluate_every=50, verbose=1, random_state=0
    ).fit(X, vocabulary=vocab)
    out = capsys.readouterr().out
    assert "tokens/s" in out and "log p(w, z)" in out
    assert len(m.loglikelihoods_) == 2
    vecs = m.word_vectors()
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0)
    sims = m.most_similar("w0", n=5)
    # words of the same (disjoint-support) topic are the most similar
    assert all(int(w[1:]) < 10 for w, _ in sims)
    assert [w for w, _ in m.most_similar(0, n=5)] == [w for w, _ in sims]
    tops = m.top_words(n=3)
    assert len(tops) == 4 and all(len(t) == 3 for t in tops)
    m2 = LatentDirichletAllocation(4, max_iter=3, verbose=1, random_state=0).fit(X)
    assert "ELBO" in capsys.readouterr().out
    assert isinstance(m2.top_words(n=2)[0][0], int)


# -------------------------------------------------------------------- bad input
X_OK = _synthetic(n_docs=20)[0]


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(n_components=0), ValueError, "n_components"),
        (dict(n_components=2.0), TypeError, "n_components"),
        (dict(doc_topic_prior=0.0), ValueError, "doc_topic_prior"),
        (dict(topic_word_prior=-1.0), ValueError, "topic_word_prior"),
        (dict(doc_topic_prior=np.nan), ValueError, "doc_topic_prior"),
        (dict(method="em"), ValueError, "method"),
        (dict(max_iter=0), ValueError, "max_iter"),
        (dict(method="gibbs", optimize_priors=True), ValueError, "optimize_priors"),
        (dict(random_state="seed"), TypeError, "random_state"),
    ],
)
def test_bad_parameters(kwargs, err, match):
    with pytest.raises(err, match=match):
        LatentDirichletAllocation(**{"n_components": 2, **kwargs}).fit(X_OK)


def test_bad_counts():
    L = LatentDirichletAllocation
    X = X_OK.astype(float)
    X[2, 3] = -1
    with pytest.raises(ValueError, match="non-negative counts"):
        L(2).fit(X)
    with pytest.raises(ValueError, match="non-negative counts"):
        L(2).fit(sparse.csr_matrix(X))
    X = X_OK.astype(float)
    X[1, 1] = 0.5
    with pytest.raises(ValueError, match="integer counts for method='gibbs'"):
        L(2, method="gibbs").fit(X)
    L(2, max_iter=2).fit(X)  # fractional counts are fine for variational
    X[1, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        L(2).fit(X)
    X[1, 1] = np.inf
    with pytest.raises(ValueError, match="finite"):
        L(2).fit(sparse.csr_matrix(X))
    with pytest.raises(ValueError, match="no words"):
        L(2).fit(np.zeros((5, 4)))
    with pytest.raises(ValueError, match="2-dimensional"):
        L(2).fit(X_OK[0])
    with pytest.raises(TypeError, match="numeric"):
        L(2).fit(np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match="vocabulary has 3 entries"):
        L(2).fit(X_OK, vocabulary=["a", "b", "c"])
    m = L(2, max_iter=2, random_state=0).fit(X_OK)
    with pytest.raises(
        ValueError, match="X has 5 features, but LatentDirichletAllocation"
    ):
        m.transform(X_OK[:, :5])
    with pytest.raises(ValueError, match="no vocabulary"):
        m.most_similar("w0")
    from fastml._base import NotFittedError

    with pytest.raises(NotFittedError):
        L(2).transform(X_OK)
