"""MCMC output and its diagnostics: :class:`MCMCResult`, effective sample size and split
R-hat (Gelman et al., *Bayesian Data Analysis*, 3rd ed., sec. 11.4-11.5).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MCMCResult"]


class MCMCResult:
    """Samples of one or more Markov chains and their diagnostics.

    Attributes
    ----------
    samples : numpy.ndarray, shape (n_chains, n_samples, d)
    acceptance_rate : numpy.ndarray, shape (n_chains,)
        Fraction of accepted proposals after burn-in (1 for Gibbs).
    method : str
    """

    def __init__(
        self, samples: np.ndarray, acceptance_rate: np.ndarray, method: str
    ) -> None:
        self.samples = samples
        self.acceptance_rate = acceptance_rate
        self.method = method

    @property
    def n_chains(self) -> int:
        """Number of chains (first axis of ``samples``)."""
        return self.samples.shape[0]

    @property
    def n_samples(self) -> int:
        """Number of kept draws per chain (second axis of ``samples``)."""
        return self.samples.shape[1]

    def flat(self) -> np.ndarray:
        """All chains' samples stacked, shape (n_chains * n_samples, d)."""
        return self.samples.reshape(-1, self.samples.shape[2])

    def effective_sample_size(self) -> np.ndarray:
        """Effective sample size per dimension, over all chains, shape (d,).

        Notes
        -----
        Autocorrelations ``rho_t`` come from each chain's FFT autocovariance, combined
        across chains as in Stan (``rho_t = 1 - (W - mean_c acov_{c,t}) / var+``, with
        ``W`` the mean within-chain variance and ``var+`` the pooled variance estimate;
        for one chain ``rho_t = acov_t / acov_0``). Geyer's initial positive sequence:
        sum pairs ``rho_{2k} + rho_{2k+1}`` while positive, made monotone, then
        ``ESS = M N / (-1 + 2 sum_k P_k)``.

        References
        ----------
        C. J. Geyer, "Practical Markov Chain Monte Carlo", Statistical Science 7(4),
        1992. A. Gelman et al., Bayesian Data Analysis, 3rd ed., sec. 11.5.
        """
        return _ess(self.samples)

    def rhat(self) -> np.ndarray:
        """Split R-hat per dimension (Gelman et al., BDA3 sec. 11.4), shape (d,).

        Each chain is split into halves; with ``B`` and ``W`` the between- and
        within-half variances of the 2M half-chains of length n,
        ``R = sqrt(((n - 1)/n W + B/n) / W)``. Needs ``n_chains > 1``.
        """
        if self.n_chains < 2:
            raise ValueError("rhat needs n_chains > 1 (run with n_chains=2 or more)")
        return _split_rhat(self.samples)

    def __repr__(self) -> str:
        m, n, d = self.samples.shape
        return (
            f"MCMCResult(method={self.method!r}, n_chains={m}, n_samples={n}, dim={d}, "
            f"acceptance_rate={np.round(self.acceptance_rate, 3).tolist()})"
        )


def _autocov(x: np.ndarray) -> np.ndarray:
    """Autocovariance along axis -2 of (..., n, d) arrays, lags 0..n-1 (biased, /n)."""
    n = x.shape[-2]
    xc = x - x.mean(axis=-2, keepdims=True)
    m = 1 << int(2 * n - 1).bit_length()
    f = np.fft.rfft(xc, n=m, axis=-2)
    ac = np.fft.irfft(f * np.conj(f), n=m, axis=-2)[..., :n, :]
    return ac / n


def _ess(samples: np.ndarray) -> np.ndarray:
    m, n, d = samples.shape
    if n < 4:
        return np.full(d, float(m * n))
    acov = _autocov(samples)  # (m, n, d)
    chain_var = acov[:, 0, :] * n / (n - 1)
    w = chain_var.mean(axis=0)
    var_plus = w * (n - 1) / n
    if m > 1:
        var_plus = var_plus + samples.mean(axis=1).var(axis=0, ddof=1)
    ess = np.empty(d)
    for k in range(d):
        if not var_plus[k] > 0:
            ess[k] = float(m * n)
            continue
        rho = 1.0 - (w[k] - acov[:, :, k].mean(axis=0)) / var_plus[k]
        rho[0] = 1.0
        n_pairs = n // 2
        pairs = rho[: 2 * n_pairs].reshape(n_pairs, 2).sum(axis=1)
        neg = np.nonzero(pairs <= 0)[0]
        pairs = pairs[: neg[0]] if neg.size else pairs
        pairs = np.minimum.accumulate(pairs)  # initial monotone sequence
        tau = -1.0 + 2.0 * pairs.sum()
        ess[k] = m * n / max(tau, 1.0 / np.log10(m * n + 10.0))
    return ess


def _split_rhat(samples: np.ndarray) -> np.ndarray:
    n = samples.shape[1]
    half = n // 2
    if half < 2:
        raise ValueError(f"rhat needs at least 4 samples per chain, got {n}")
    chains = np.concatenate([samples[:, :half], samples[:, n - half :]], axis=0)
    means = chains.mean(axis=1)
    w = chains.var(axis=1, ddof=1).mean(axis=0)
    b = half * means.var(axis=0, ddof=1)
    var_plus = (half - 1) / half * w + b / half
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(var_plus / w)
