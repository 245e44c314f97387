"""Hidden Markov models (PRML sec. 13.2) with hmmlearn's names, on compiled kernels.

``CategoricalHMM``, ``GaussianHMM``, ``GMMHMM``, ``PoissonHMM`` and ``MultinomialHMM``
take the same constructor parameters and expose the same fitted attributes as their
hmmlearn namesakes (``startprob_``, ``transmat_``, ``emissionprob_``, ``means_``,
``covars_``, ``weights_``, ``lambdas_``, ``monitor_``), so switching is an import
change.

Inference runs in :mod:`fastml._kernels._hmm`: the scaled forward-backward recursion
(PRML eqs. 13.59-13.65) is the default; ``implementation="log"`` runs it in log space.
With ``"scaling"``, a sequence whose scaling factor c_n underflows (e.g. a symbol that
every reachable state gives probability 0, or frame likelihoods below 1e-308 after the
per-frame shift) is redone in log space automatically, so both settings give the same
result; ``"scaling"`` is faster. Continuous emissions are shifted by their per-frame
maximum before exponentiation, so scaling never underflows on them in practice.

Missing observations: rows of NaN in ``GaussianHMM`` input (partially observed rows
too, for ``"diag"``/``"spherical"``) and the value ``-1`` (or a masked entry of a
``numpy.ma`` array) in ``CategoricalHMM`` input have emission likelihood 1: they are
marginalised out of the E-step, scoring and decoding, and do not enter the emission
M-step.
"""

from fastml.hmm._base import ConvergenceMonitor
from fastml.hmm._categorical import CategoricalHMM
from fastml.hmm._gaussian import GaussianHMM
from fastml.hmm._gmm_hmm import GMMHMM
from fastml.hmm._multinomial import MultinomialHMM
from fastml.hmm._poisson import PoissonHMM

__all__ = [
    "GMMHMM",
    "CategoricalHMM",
    "ConvergenceMonitor",
    "GaussianHMM",
    "MultinomialHMM",
    "PoissonHMM",
]
