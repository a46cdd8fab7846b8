"""Numbers of simulated replicates: ranks of the truth (SBC), interval coverage (recovery).

Simulation-based calibration (Talts, Betancourt, Simpson, Vehtari and Gelman 2018,
arXiv:1804.06788): if the truth is drawn from the prior and the data from the model at that
truth, the rank of the truth among ``L`` posterior draws is uniform on ``0..L`` for every
parameter when the sampler is correct. Ranks are taken in the sampling coordinates, which is the
same as in natural units (the transformations are monotone). Recovery: the central ``level``
posterior interval of a parameter covers the truth in a fraction ``level`` of the replicates, so
the count of covers is Binomial(replicates, level).
"""

from __future__ import annotations

import numpy as np
import scipy.stats

from exopk.inference.diagnostics import ess_bulk, split_rhat

__all__ = ["replicate_seeds", "truth_ranks", "replicate_numbers", "rank_histograms",
           "binomial_p", "calibration_lines"]


def replicate_seeds(seed: int, n: int) -> list[int]:
    """One independent seed per replicate index: ``SeedSequence([seed, i])``.

    Examples
    --------
    >>> from exopk.batch.calibration import replicate_seeds
    >>> replicate_seeds(1, 3) == replicate_seeds(1, 5)[:3]
    True
    """
    return [int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in range(n)]


def truth_ranks(pooled, phi_true, thin_to: int) -> np.ndarray:
    """Rank of the truth among ``thin_to`` evenly spaced draws, per coordinate (0..thin_to).

    Parameters
    ----------
    pooled : ndarray, shape (draws, n_parameters)
        Posterior draws of all chains, at least ``thin_to`` of them.
    phi_true : ndarray, shape (n_parameters,)
    thin_to : int

    Examples
    --------
    >>> import numpy as np
    >>> from exopk.batch.calibration import truth_ranks
    >>> truth_ranks(np.arange(10.0)[:, None], np.array([4.5]), thin_to=5)   # draws 0, 2, .., 8
    array([3])
    """
    thinned = pooled[::len(pooled) // thin_to][:thin_to]
    return np.sum(thinned < phi_true, axis=0)


def replicate_numbers(log_posterior, result, *, thin_to: int, level: float) -> dict:
    """The key numbers of one simulated fit (:class:`~exopk.inference.simulated.SimulatedFit`).

    Returns
    -------
    dict
        ``divergences``; ``max_rhat`` and ``min_ess_bulk`` over the coordinates (None with one
        chain: both need two); ``parameters``: per natural name, ``truth`` (natural units),
        ``rank`` (:func:`truth_ranks`), ``covered`` (the central ``level`` interval of the
        draws covers the truth), ``z`` (``(posterior mean - truth) / posterior sd``) and ``sd``
        (posterior sd), the last two in the sampling coordinates.
    """
    draws = result.draws
    pooled = draws.reshape(-1, draws.shape[-1])
    ranks = truth_ranks(pooled, result.phi_true, thin_to)
    tail = (1 - level) / 2
    low, high = np.quantile(pooled, [tail, 1 - tail], axis=0)
    sd = pooled.std(axis=0)
    z = (pooled.mean(axis=0) - result.phi_true) / sd
    covered = (low <= result.phi_true) & (result.phi_true <= high)
    truth = log_posterior.natural(result.phi_true)
    several = draws.shape[0] >= 2
    return {
        "divergences": int(result.divergences),
        "max_rhat": max(split_rhat(draws[:, :, j]) for j in range(draws.shape[2]))
        if several else None,
        "min_ess_bulk": min(ess_bulk(draws[:, :, j]) for j in range(draws.shape[2]))
        if several else None,
        "parameters": {name: {"truth": float(truth[name]), "rank": int(ranks[j]),
                              "covered": bool(covered[j]), "z": float(z[j]), "sd": float(sd[j])}
                       for j, name in enumerate(log_posterior.natural_names())},
    }


def rank_histograms(ranks, thin_to: int, bins: int):
    """Rank counts per bin and chi-square p-values of uniformity.

    Parameters
    ----------
    ranks : array_like, shape (replicates, parameters)
    thin_to : int
        Ranks take the values ``0..thin_to``; ``thin_to + 1`` must be a multiple of ``bins``.
    bins : int

    Returns
    -------
    counts : ndarray, shape (parameters, bins)
    p_values : list of float
    """
    ranks = np.asarray(ranks)
    counts = np.stack([np.histogram(r, bins=bins, range=(0, thin_to + 1))[0] for r in ranks.T])
    return counts, [float(scipy.stats.chisquare(c).pvalue) for c in counts]


def binomial_p(successes: int, trials: int, level: float) -> float:
    """Two-sided exact binomial test of a coverage rate against ``level``."""
    return float(scipy.stats.binomtest(int(successes), int(trials), level).pvalue)


def _bins(thin_to: int, replicates: int) -> int:
    """The most histogram bins, at most 10, dividing ``thin_to + 1`` with 5 ranks expected per bin."""
    return max(b for b in range(1, 11) if (thin_to + 1) % b == 0 and b <= max(replicates // 5, 1))


def calibration_lines(parameters: list[dict], *, thin_to: int, level: float) -> list[str]:
    """Per-parameter table of finished replicates: rank uniformity, coverage, mean z.

    Parameters
    ----------
    parameters : list of dict
        The ``parameters`` of :func:`replicate_numbers` of every finished replicate.
    thin_to, level : as for :func:`replicate_numbers`.
    """
    names = list(parameters[0])
    n = len(parameters)
    ranks = np.array([[p[name]["rank"] for name in names] for p in parameters])
    bins = _bins(thin_to, n)
    counts, p_values = rank_histograms(ranks, thin_to, bins)
    lines = [f"{n} replicates: ranks of the truth among {thin_to} draws in {bins} bins "
             f"({n / bins:g} expected per bin), coverage of the central {level:g} interval",
             f"{'parameter':26} {'rank counts':>{max(4 * bins, 11)}} {'chi2 p':>8} "
             f"{'coverage':>9} {'binom p':>8} {'mean z':>7}"]
    for j, name in enumerate(names):
        covered = sum(p[name]["covered"] for p in parameters)
        mean_z = np.mean([p[name]["z"] for p in parameters])
        p_cover = binomial_p(covered, n, level)
        p_rank = p_values[j] if bins > 1 else float("nan")     # one bin: nothing to test
        flag = "  <-- not calibrated at 0.01" if min(p_rank, p_cover) < 0.01 else ""
        shown = f"{p_rank:8.3f}" if bins > 1 else f"{'-':>8}"
        lines.append(f"{name:26} {''.join(f'{c:4d}' for c in counts[j]):>{max(4 * bins, 11)}} "
                     f"{shown} {covered / n:9.2f} {p_cover:8.3f} {mean_z:7.2f}{flag}")
    return lines
