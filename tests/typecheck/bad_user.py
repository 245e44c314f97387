"""Planted mistakes a user could make with fastml: ``mypy --strict`` must report each.

Every line ending in ``# E: <code>`` must get exactly that mypy error code, and no
other line may get an error (``tests/test_typing.py`` compares the two sets). This
file is only type-checked, never run.
"""

from __future__ import annotations

import numpy as np

from fastml import ep, graphical, hmm, lda, lds, losses, nn, rbm, sampling, stats
from fastml.mixture import BayesianGaussianMixture, GaussianMixture

X = np.zeros((10, 2))

gm = GaussianMixture(3, random_state=0).fit(X)
gm.predcit(X)  # E: attr-defined
GaussianMixture(n_components="3")  # E: arg-type
GaussianMixture(3, covariance_type="ful")  # E: arg-type
labels: list[int] = gm.predict(X)  # E: assignment
_ = gm.score(X).shape  # E: attr-defined
BayesianGaussianMixture(2).fit(X).predict_probas(X)  # E: attr-defined
gm.fit(X, random_state=0)  # E: call-arg

sampling.standard_normal(random_state=0) + "1"  # E: operator
_ = sampling.categorical([0.5, 0.5], random_state=0).shape  # E: attr-defined
sampling.standard_normal(10, method="boxmuller")  # E: call-overload
sampling.gamma(2.0, random_state="seed")  # E: call-overload
sampling.metropolis_hastings(42, np.zeros(2), 10)  # E: arg-type

stats.variance(X, ddof="1")  # E: call-overload
kl = losses.kl_gaussian(np.zeros(1), np.eye(1), np.zeros(1), np.eye(1))
_ = kl.T  # E: attr-defined

lda.LatentDirichletAllocation(5, method="gibs")  # E: arg-type
hmm.CategoricalHMM(2, algorithm="forward")  # E: arg-type
hmm.GaussianHMM(2).fit(X).decode(X)[1].lower()  # E: attr-defined

kf = lds.KalmanFilter(transition_covariance=[[1.0]])
m, P, C = kf.smooth(np.zeros(5))  # E: misc
lds.KalmanFilter(random_state=1.5)  # E: arg-type

graphical.FactorGraph().add_variable("a", "2")  # E: arg-type
mrf = graphical.PairwiseMRF.potts(np.zeros((2, 2, 2)), 1.0)
mrf.loopy_belief_propagation(method="avg")  # E: arg-type

ep.ClutterProblem().fit_ep(np.zeros(3)).log_evidence.append(1.0)  # E: attr-defined

nn.Sequential([nn.Linear(2, 2)]).fit(X, np.zeros(10))["loss"] + 1  # E: operator
nn.Linear(2, 2, bias="yes")  # E: arg-type

rbm.BernoulliRBM(n_components=2.5)  # E: arg-type
