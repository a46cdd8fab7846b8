"""MCMC convergence diagnostics: rank-normalised split R-hat, bulk and tail ESS, MCSE.

The algorithms are those of Vehtari, Gelman, Simpson, Carpenter and Bürkner (2021),
"Rank-normalization, folding, and localization: An improved R-hat for assessing convergence of
MCMC", *Bayesian Analysis* 16(2), 667-718, doi:10.1214/20-BA1221, implemented as ArviZ
(``rhat(method="rank")``, ``ess(method="bulk")``, ``ess(method="tail")``,
``mcse(method="mean")``) and Stan do, and checked against ArviZ numbers in the tests:

* every chain is split into its first and last halves (the middle draw of an odd-length chain is
  dropped), so that a trend within a chain shows up as disagreement between half-chains;
* rank normalisation replaces each draw by ``Phi^-1((r - 3/8) / (S + 1/4))``, where ``r`` is its
  rank (ties averaged) among all ``S`` split draws (Blom's offset), which makes R-hat and ESS
  well defined for heavy tails; bulk and tail ESS are invariant to any increasing
  reparametrisation, R-hat (which also folds the draws about their median) to affine ones;
* the autocorrelation of each chain is computed by FFT and summed over lags up to Geyer's initial
  positive sequence, made monotone (Geyer's initial monotone sequence).

Every function takes the draws of one scalar quantity as an array of shape ``(chain, draw)``
with at least 2 chains of at least 4 draws each, all finite; anything else raises
:class:`ValueError`. Quantities are in the units of the draws (R-hat and ESS are unitless).

Constant draws follow ArviZ's convention and raise no warning: R-hat is NaN (undefined), ESS is
the number of split draws ``chains * 2 * (draws // 2)`` (there is nothing left to estimate), and
the Monte Carlo standard error of the mean is 0. When each half-chain is constant but the
half-chains differ, R-hat is ``inf`` (ArviZ returns a huge finite number from rounding). One
deviation from ArviZ: an array counts as constant only when all its values are equal, whereas
ArviZ treats a range below ``1e-15`` as constant; this only matters for :func:`mcse_mean` of
draws on a scale below ``1e-15``.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from exopk.limits import MIN_CHAINS, MIN_DRAWS

__all__ = ["ess_bulk", "ess_tail", "mcse_mean", "split_rhat"]

_TAIL_PROBABILITIES = (0.05, 0.95)


def _validated(draws, name: str | None = None) -> np.ndarray:
    """Return ``draws`` as a float array of shape (chain, draw), or raise ``ValueError``."""
    where = f"parameter '{name}': " if name is not None else ""
    draws = np.asarray(draws, dtype=float)
    if draws.ndim != 2:
        raise ValueError(f"{where}draws must have shape (chain, draw); got an array of shape "
                         f"{draws.shape}")
    n_chain, n_draw = draws.shape
    if n_chain < MIN_CHAINS or n_draw < MIN_DRAWS:
        raise ValueError(f"{where}convergence diagnostics need at least {MIN_CHAINS} chains of "
                         f"at least {MIN_DRAWS} draws; got {n_chain} chain(s) of {n_draw} "
                         f"draw(s)")
    if not np.isfinite(draws).all():
        bad = np.argwhere(~np.isfinite(draws))[0]
        raise ValueError(f"{where}draws must be finite; found {draws[tuple(bad)]} at chain "
                         f"{bad[0]}, draw {bad[1]}")
    return draws


def _split_chains(draws: np.ndarray) -> np.ndarray:
    """Stack the first and last halves of every chain: shape (2 * chain, draw // 2)."""
    half = draws.shape[1] // 2
    return np.vstack((draws[:, :half], draws[:, -half:]))


def _rank_normalised(draws: np.ndarray) -> np.ndarray:
    """Normal scores of the pooled ranks (ties averaged, Blom's offset 3/8)."""
    ranks = stats.rankdata(draws, method="average").reshape(draws.shape)
    return stats.norm.ppf((ranks - 0.375) / (draws.size + 0.25))


def _rhat(draws: np.ndarray) -> float:
    """Gelman-Rubin potential scale reduction of (already split) chains.

    NaN when all draws are equal, ``inf`` when every chain is constant but chains differ.
    """
    n_draw = draws.shape[1]
    if np.ptp(draws, axis=1).max() == 0.0:
        return np.nan if np.ptp(draws) == 0.0 else np.inf
    between = n_draw * np.var(draws.mean(axis=1), ddof=1)
    within = np.mean(np.var(draws, axis=1, ddof=1))
    return float(np.sqrt((between / within + n_draw - 1) / n_draw))


def _autocovariance(draws: np.ndarray) -> np.ndarray:
    """Biased (divide by n) autocovariance of every chain at every lag, by FFT."""
    n_draw = draws.shape[1]
    n_fft = 1 << (2 * n_draw - 1).bit_length()  # zero padding: no circular wrap-around
    centred = draws - draws.mean(axis=1, keepdims=True)
    spectrum = np.fft.rfft(centred, n=n_fft, axis=1)
    return np.fft.irfft(spectrum * np.conjugate(spectrum), n=n_fft, axis=1)[:, :n_draw] / n_draw


def _ess(draws: np.ndarray) -> float:
    """Effective sample size of (already split) chains, Stan's estimator.

    The number of draws ``S`` when all draws are equal.
    """
    n_chain, n_draw = draws.shape
    size = n_chain * n_draw
    if np.ptp(draws) == 0.0:
        return float(size)
    acov = _autocovariance(draws)
    mean_var = np.mean(acov[:, 0]) * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw + np.var(draws.mean(axis=1), ddof=1)
    rho = 1.0 - (mean_var - acov.mean(axis=0)) / var_plus  # combined autocorrelation per lag
    rho[0] = 1.0

    # Geyer's initial positive sequence: keep pairs (rho[t+1], rho[t+2]) while their sum is
    # positive; the even term of the first non-positive pair is kept when positive.
    rho_hat = np.zeros(n_draw)
    rho_hat[:2] = rho[:2]
    rho_even, rho_odd = 1.0, rho[1]
    t = 1
    while t < n_draw - 3 and rho_even + rho_odd > 0.0:
        rho_even, rho_odd = rho[t + 1], rho[t + 2]
        if rho_even + rho_odd >= 0.0:
            rho_hat[t + 1], rho_hat[t + 2] = rho_even, rho_odd
        t += 2
    max_t = t - 2
    if rho_even > 0.0:
        rho_hat[max_t + 1] = rho_even
    # Geyer's initial monotone sequence: pair sums may not increase.
    t = 1
    while t <= max_t - 2:
        if rho_hat[t + 1] + rho_hat[t + 2] > rho_hat[t - 1] + rho_hat[t]:
            rho_hat[t + 1] = rho_hat[t + 2] = (rho_hat[t - 1] + rho_hat[t]) / 2.0
        t += 2

    tau = -1.0 + 2.0 * np.sum(rho_hat[:max_t + 1]) + np.sum(rho_hat[max_t + 1:max_t + 2])
    return float(size / max(tau, 1.0 / np.log10(size)))


def split_rhat(draws) -> float:
    """Rank-normalised split R-hat of one scalar quantity (Vehtari et al. 2021).

    The larger of the R-hat of the rank-normalised split chains (bulk: disagreement in location)
    and the R-hat of the rank-normalised folded draws ``|x - median(x)|`` (tails: disagreement
    in scale). Values above 1.01 signal chains that have not mixed.

    Parameters
    ----------
    draws : array_like, shape (chain, draw)
        Posterior draws, at least 2 chains of at least 4 draws, all finite. Any unit.

    Returns
    -------
    float
        R-hat (unitless, >= 1 up to estimation noise). NaN when all draws are equal;
        ``inf`` when every half-chain is constant but the half-chains differ.

    Raises
    ------
    ValueError
        If ``draws`` is not two-dimensional, has fewer than 2 chains or 4 draws per chain, or
        contains NaN or infinite values.

    Examples
    --------
    >>> import numpy as np
    >>> from exopk.inference.diagnostics import split_rhat
    >>> draws = np.random.default_rng(0).normal(size=(4, 1000))
    >>> round(split_rhat(draws), 2)
    1.0
    >>> split_rhat(draws + np.array([[0.0], [0.0], [0.0], [1.0]])) > 1.1
    True
    >>> split_rhat(np.ones((2, 10)))
    nan
    """
    split = _split_chains(_validated(draws))
    bulk = _rhat(_rank_normalised(split))
    folded = _rhat(_rank_normalised(np.abs(split - np.median(split))))
    return float(np.fmax(bulk, folded))


def ess_bulk(draws) -> float:
    """Bulk effective sample size of one scalar quantity (Vehtari et al. 2021).

    The ESS of the rank-normalised split chains: how many independent draws would estimate the
    centre of the distribution as well. Vehtari et al. recommend at least 100 per chain (400
    for 4 chains) before posterior means and medians are trusted.

    Parameters
    ----------
    draws : array_like, shape (chain, draw)
        Posterior draws, at least 2 chains of at least 4 draws, all finite. Any unit.

    Returns
    -------
    float
        Effective number of draws (unitless); can exceed the number of draws for antithetic
        chains. Equal to ``chains * 2 * (draws // 2)`` when all draws are equal.

    Raises
    ------
    ValueError
        As :func:`split_rhat`.
    """
    return _ess(_rank_normalised(_split_chains(_validated(draws))))


def ess_tail(draws) -> float:
    """Tail effective sample size of one scalar quantity (Vehtari et al. 2021).

    The smaller of the ESS of the indicators ``I(x <= q05)`` and ``I(x <= q95)``, where ``q05``
    and ``q95`` are the 5 % and 95 % quantiles of all draws (linear interpolation, R type 7),
    computed on the split chains: how well the 90 % interval ends are estimated.

    Parameters
    ----------
    draws : array_like, shape (chain, draw)
        Posterior draws, at least 2 chains of at least 4 draws, all finite. Any unit.

    Returns
    -------
    float
        Effective number of draws (unitless). Equal to ``chains * 2 * (draws // 2)`` when all
        draws are equal.

    Raises
    ------
    ValueError
        As :func:`split_rhat`.
    """
    draws = _validated(draws)
    quantiles = np.quantile(draws, _TAIL_PROBABILITIES)
    return min(_ess(_split_chains((draws <= q).astype(float))) for q in quantiles)


def mcse_mean(draws) -> float:
    """Monte Carlo standard error of the posterior mean of one scalar quantity.

    ``sd / sqrt(ess)``, where ``sd`` is the standard deviation of all draws (``ddof=1``) and
    ``ess`` the effective sample size of the split chains without rank normalisation (the ESS
    of the mean), as ArviZ's ``mcse(method="mean")``.

    Parameters
    ----------
    draws : array_like, shape (chain, draw)
        Posterior draws, at least 2 chains of at least 4 draws, all finite. Any unit.

    Returns
    -------
    float
        Standard error, in the unit of the draws. 0 when all draws are equal.

    Raises
    ------
    ValueError
        As :func:`split_rhat`.
    """
    draws = _validated(draws)
    return float(np.std(draws, ddof=1) / np.sqrt(_ess(_split_chains(draws))))
