"""A typed user script over every public module: ``mypy --strict`` must accept it.

Each ``assert_type`` pins what a type checker infers from fastml's annotations (an
``Any`` leaking out of fastml fails it), and ``_is`` checks the same value's run-time
type, so the annotations are tested against what the code really returns:
``tests/test_typing.py`` type-checks this file and also runs it.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from fastml import (
    ep,
    graphical,
    hmm,
    lda,
    lds,
    losses,
    mixture,
    nn,
    rbm,
    sampling,
    stats,
    variational,
)

if TYPE_CHECKING:
    from typing_extensions import assert_type
else:

    def assert_type(value, typ):  # run time: typing.assert_type is Python >= 3.11
        return value


T = TypeVar("T")
F64 = NDArray[np.float64]
Real = NDArray[np.floating[Any]]
Ints = NDArray[np.integer[Any]]


def _is(value: T, *kinds: Any) -> T:
    """Assert the run-time type: a class, or ``(np.ndarray, dtype kind letters)``."""
    if kinds[0] is np.ndarray:
        assert isinstance(value, np.ndarray), type(value)
        assert value.dtype.kind in kinds[1], value.dtype
    else:
        assert isinstance(value, kinds), (type(value), kinds)
    return value


rng = np.random.default_rng(0)
X = np.vstack([rng.normal(m, 0.5, (40, 2)) for m in (-3.0, 0.0, 3.0)])

# --- stats -------------------------------------------------------------------------
assert_type(_is(stats.variance(X), float), float)
assert_type(stats.variance(X, axis=0), float | F64)
m, v = stats.mean_variance([1.0, 2.0, 3.0], ddof=1)
assert_type(_is(m, float), float)
rm = stats.RunningMoments().update(X).update(X[:5])
assert_type(rm, stats.RunningMoments)
assert_type(rm.variance(ddof=1), float | F64)
vb = stats.variance_bias(5, n_trials=1000, random_state=0)
assert_type(_is(vb.exact, float), float)

# --- losses ------------------------------------------------------------------------
res = losses.softmax_cross_entropy(rng.standard_normal((4, 3)), np.array([0, 2, 1, 2]))
assert_type(res, losses.LossResult)
assert_type(_is(res.loss, float), float)
assert_type(_is(losses.kl_categorical([0.5, 0.5], [0.9, 0.1]), float), float)
assert_type(_is(losses.kl_gaussian([0.0], [[1.0]], [1.0], [[2.0]]), float), float)
losses.squared_error(np.zeros(3), np.ones(3), variance=2.0)
losses.binary_cross_entropy(np.zeros(3), np.ones(3))

# --- sampling ----------------------------------------------------------------------
z = sampling.standard_normal(random_state=0)
assert_type(_is(z, np.float64), np.float64)
zs = sampling.standard_normal(10, dtype=np.float32, random_state=0)
assert_type(_is(zs, np.ndarray, "f"), Real)
z32 = sampling.standard_exponential(dtype=np.float32, random_state=0)
assert_type(_is(z32, np.floating), np.floating[Any])
out = np.empty(5)
assert_type(sampling.normal(1.0, 2.0, out=out, random_state=rng), Real)
assert_type(_is(sampling.normal(1.0, 2.0, random_state=rng), np.float64), np.float64)
assert_type(sampling.exponential(2.0, (2, 3), random_state=rng), Real)
assert_type(_is(sampling.gamma(2.0, random_state=rng), float), float)
assert_type(_is(sampling.gamma(2.0, size=3, random_state=rng), np.ndarray, "f"), F64)
assert_type(sampling.dirichlet([1.0, 2.0], 4, random_state=rng), F64)
assert_type(sampling.multivariate_normal([0.0], [[1.0]], random_state=rng), F64)
k: int = _is(sampling.categorical([0.2, 0.8], random_state=rng), int)
ks = sampling.categorical(sampling.AliasTable([0.2, 0.8]), 7, random_state=rng)
assert_type(_is(ks, np.ndarray, "i"), NDArray[np.int64])
sampling.inverse_cdf(lambda u: -np.log1p(-u), 3, random_state=rng)
_is(sampling.inverse_cdf(lambda u: -np.log1p(-u), random_state=rng), np.floating)
target = sampling.MultivariateNormal(np.zeros(2), np.eye(2))


class Banana:
    """A user-defined target: satisfies the LogDensity protocol structurally."""

    def log_prob(self, x: F64) -> float:
        return float(-0.5 * x @ x)

    def grad_log_prob(self, x: F64) -> F64:
        return -x


chain = sampling.metropolis_hastings(Banana(), np.zeros(2), 50, random_state=0)
assert_type(chain, sampling.MCMCResult)
assert_type(chain.effective_sample_size(), np.ndarray)
sampling.hmc(Banana(), np.zeros(2), 20, step_size=0.1, n_leapfrog=5, random_state=0)
sampling.hmc(target, np.zeros(2), 20, step_size=0.1, n_leapfrog=5, random_state=0)
sampling.gibbs_sampler(target, np.zeros(2), 20, random_state=0)
sampling.metropolis_hastings(lambda x: -0.5 * float(x @ x), [0.0], 20, random_state=0)

# --- mixture -----------------------------------------------------------------------
gm = mixture.GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
assert_type(_is(gm, mixture.GaussianMixture), mixture.GaussianMixture)
assert_type(_is(gm.predict(X), np.ndarray, "i"), Ints)
assert_type(_is(gm.predict_proba(X), np.ndarray, "f"), F64)
assert_type(_is(gm.score(X), float), float)
assert_type(_is(gm.bic(X), float), float)
assert_type(_is(gm.aic(X), float), float)
assert_type(_is(gm.score_samples(X), np.ndarray, "f"), Real)
assert_type(_is(gm.fit_predict(X), np.ndarray, "i"), Ints)
Xs, labels = gm.sample(5)
assert_type(_is(Xs, np.ndarray, "f"), Real)
assert_type(labels, Ints)
bgm = mixture.BayesianGaussianMixture(4, max_iter=50, random_state=0).fit(X)
assert_type(bgm, mixture.BayesianGaussianMixture)
assert_type(bgm.set_params(max_iter=20), mixture.BayesianGaussianMixture)
centres, idx = mixture.kmeans_plusplus(X, 3, random_state=0)
assert_type(_is(centres, np.ndarray, "f"), Real)
assert_type(_is(idx, np.ndarray, "i"), Ints)

# --- variational -------------------------------------------------------------------
vi = variational.UnivariateGaussianVI(mu0=0.0).fit(rng.normal(2.0, 0.5, 50))
assert_type(vi, variational.UnivariateGaussianVI)
assert_type(_is(vi.expected_tau_, float), float)

# --- lda ---------------------------------------------------------------------------
counts = rng.poisson(0.5, size=(20, 12))
model = lda.LatentDirichletAllocation(3, method="gibbs", max_iter=5, random_state=0)
model = model.fit(counts, vocabulary=[f"w{j}" for j in range(12)])
assert_type(model, lda.LatentDirichletAllocation)
assert_type(_is(model.transform(counts), np.ndarray, "f"), F64)
assert_type(_is(model.perplexity(counts), float), float)
vb_lda = lda.LatentDirichletAllocation(2, max_iter=3, random_state=0).fit(counts)
assert_type(_is(vb_lda.score(counts), float), float)
assert_type(_is(vb_lda.word_vectors(), np.ndarray, "f"), F64)
top = model.top_words(n=2)
assert_type(top, list[list[str]] | list[list[int]])
for _word, sim in model.most_similar("w3", n=2):
    assert_type(sim, float)

# --- hmm ---------------------------------------------------------------------------
rolls = rng.integers(0, 3, size=(200, 1))
chmm = hmm.CategoricalHMM(n_components=2, n_iter=5, random_state=0)
chmm = chmm.fit(rolls, lengths=[100, 100])
assert_type(chmm, hmm.CategoricalHMM)
lp, path = chmm.decode(rolls, algorithm="map")
assert_type(_is(lp, float), float)
assert_type(_is(path, np.ndarray, "i"), Ints)
lp, path = chmm.decode(rolls)
assert_type(_is(lp, float), float)
assert_type(_is(chmm.score(rolls), float), float)
assert_type(_is(chmm.bic(rolls), float), float)
assert_type(_is(chmm.predict_proba(rolls), np.ndarray, "f"), F64)
ghmm = hmm.GaussianHMM(2, covariance_type="full", n_iter=5, random_state=0).fit(X)
assert_type(ghmm, hmm.GaussianHMM)
log_prob, post = ghmm.score_samples(X)
assert_type(_is(post, np.ndarray, "f"), F64)
obs, states = hmm.PoissonHMM(2, n_iter=3, random_state=0).fit(rolls).sample(10)
assert_type(states, Ints)

# --- lds ---------------------------------------------------------------------------
kf = lds.KalmanFilter(transition_covariance=[[1.0]], observation_covariance=[[10.0]])
y = np.cumsum(rng.normal(size=50))
means, covs = kf.filter(y)
assert_type(_is(means, np.ndarray, "f"), F64)
sm, sc, cc = kf.smooth(y, return_cross_covariances=True)
sm2, sc2 = kf.smooth(y)
assert_type(kf.em(y, n_iter=2), lds.KalmanFilter)
assert_type(_is(cc, np.ndarray, "f"), F64)
mean1, cov1 = kf.filter_update(means[-1], covs[-1], observation=[0.5])
assert_type(_is(cov1, np.ndarray, "f"), F64)
states_lds, obs_lds = kf.sample(5, random_state=0)
assert_type(_is(obs_lds, np.ndarray, "f"), F64)
assert_type(_is(kf.loglikelihood(y), float), float)

# --- graphical ---------------------------------------------------------------------
bn = graphical.BayesianNetwork([("rain", "wet"), ("sprinkler", "wet")])
assert_type(_is(bn.d_separated("rain", "sprinkler", given=["wet"]), bool), bool)
bn.add_cpd("rain", [0.8, 0.2])
bn.add_cpd("sprinkler", [0.6, 0.4])
bn.add_cpd("wet", [[[1.0, 0.0], [0.1, 0.9]], [[0.2, 0.8], [0.01, 0.99]]])
fg = bn.to_factor_graph()
fg.set_evidence({"wet": 1})
sp = fg.sum_product()
assert_type(sp, graphical.SumProductResult)
assert_type(_is(sp.log_z, float), float)
assignment: dict[Hashable, int] = fg.max_sum().assignment
names, table = fg.factor(0)
assert_type(_is(table, np.ndarray, "f"), F64)
parents, cpt = bn.cpd("wet")
assert_type(_is(parents, list), list[Hashable])
assert_type(_is(fg.variables, list), list[Hashable])
assert_type(_is(sp.marginals, dict), dict[Hashable, np.ndarray])
mn = graphical.MarkovNetwork([("a", "b")])
blanket: set[Hashable] = mn.markov_blanket("a")
mrf = graphical.PairwiseMRF.potts(rng.standard_normal((4, 4, 2)), coupling=1.0)
grid = mrf.loopy_belief_propagation(method="max", schedule="checkerboard")
assert_type(grid, graphical.GridBPResult)
lbp = fg.loopy_belief_propagation(schedule="sequential")
assert_type(lbp, graphical.LoopyBPResult)

# --- ep ----------------------------------------------------------------------------
prob = ep.ClutterProblem(w=0.5, prior_var=100.0, clutter_var=10.0)
res_ep = prob.fit_ep(prob.sample(2.0, 30, random_state=0))
assert_type(res_ep, ep.EPResult)
assert_type(_is(res_ep.log_evidence, float), float)
assert_type(_is(res_ep.variance, float), float)
assert_type(
    _is(prob.fit_adf(prob.sample(2.0, 30, random_state=1)).variance, float), float
)
A = rng.standard_normal((10, 2))
sites = [ep.ProbitSite(a, 1 if a[0] > 0 else -1) for a in A]
post_ep = ep.GaussianEP(np.zeros(2), np.eye(2), sites).fit()
assert_type(_is(post_ep.covariance, np.ndarray, "f"), F64)
assert_type(_is(post_ep.precision, np.ndarray, "f"), float | F64)
dep = ep.discrete_ep(fg, max_iter=5)
assert_type(_is(dep["converged"], bool), bool)

# --- nn ----------------------------------------------------------------------------
net = nn.Sequential([nn.Linear(2, 8, random_state=0), nn.Tanh(), nn.Linear(8, 3)])
history = net.fit(X, np.repeat([0, 1, 2], 40), epochs=2, optimizer="sgd", verbose=False)
assert_type(history, dict[str, list[float]])
assert_type(_is(net.score(X, np.repeat([0, 1, 2], 40)), float), float)
assert_type(net.astype(np.float32), nn.Sequential)
lstm = nn.LSTM(input_size=3, hidden_size=4, random_state=0)
h = lstm.forward(rng.standard_normal((2, 5, 3)))
assert_type(_is(lstm.backward(np.ones_like(h)), np.ndarray, "f"), Real)
conv = nn.Conv2d(1, 2, 3, padding=1, random_state=0)
conv.forward(rng.standard_normal((1, 1, 4, 4)))
att = nn.MultiHeadAttention(4, 2, random_state=0)
att.forward(rng.standard_normal((1, 3, 4)), causal=True)
cols = nn.im2col(rng.standard_normal((1, 1, 4, 4)), 3, padding=1)
y_conv, cols_conv = nn.conv2d_forward(
    rng.standard_normal((1, 1, 4, 4)), conv.params["weight"]
)
gx, gw, gb = nn.conv2d_backward(
    np.ones_like(y_conv), (1, 1, 4, 4), conv.params["weight"], cols_conv
)
assert_type(_is(gb, np.ndarray, "f"), Real)
opt = nn.Adam(1e-3)
opt.step(net.parameters())

# --- rbm ---------------------------------------------------------------------------
binary = (rng.random((30, 6)) < 0.5).astype(np.float64)
machine = rbm.BernoulliRBM(n_components=4, n_iter=2, random_state=0).fit(binary)
assert_type(machine, rbm.BernoulliRBM)
assert_type(_is(machine.transform(binary), np.ndarray, "f"), Real)
assert_type(_is(machine.reconstruction_error(binary), float), float)
assert_type(_is(machine.gibbs(binary[:2]), np.ndarray, "f"), Real)
assert_type(_is(machine.score_samples(binary[:2]), np.ndarray, "f"), Real)
assert_type(_is(machine.free_energy(binary[:2]), np.ndarray, "f"), Real)
gbrbm = rbm.GaussianBernoulliRBM(n_components=3, n_iter=1, random_state=0)
assert_type(gbrbm.partial_fit(X), rbm.GaussianBernoulliRBM)
