"""Laplace approximation at a mode: a Gaussian in the sampling coordinates.

The mode is taken of the density of the sampling coordinates (log for positive parameters,
logit for bounded ones; :mod:`exopk.inference.coordinates`), where the posterior is closest to
Gaussian and every point is inside the bounds. The Hessian there is built by central finite
differences of the exact gradient, ``H[:, j] = (g(phi + h e_j) - g(phi - h e_j)) / 2h``,
symmetrised; the covariance is ``inv(-H)``. Draws from that Gaussian, mapped to natural values
by the caller, give intervals that respect the bounds (a log-normal for a positive parameter).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize

from exopk.errors import ExopkError
from exopk.inference.sampling import ChainResult

__all__ = ["Laplace", "laplace", "laplace_chains", "hessian", "polish_mode"]

#: a coordinate this far out (|phi|, log or logit scale) is a mode at a bound
BOUND_COORDINATE = 25.0


@dataclass(frozen=True)
class Laplace:
    """A Gaussian approximation in the sampling coordinates.

    Attributes
    ----------
    mode : ndarray, shape (n,)
    covariance : ndarray, shape (n, n)
    draws : ndarray, shape (n_draws, n)
        Seeded draws from ``Normal(mode, covariance)``.
    at_bound : tuple of int
        Coordinates whose mode lies at a bound of the parameter (``|coordinate|`` above
        :data:`BOUND_COORDINATE` on a log or logit scale, or a curvature that is not
        negative); their draws stay at the mode and their covariance is 0.
    """

    mode: np.ndarray
    covariance: np.ndarray
    draws: np.ndarray
    at_bound: tuple


def polish_mode(log_pdf, phi, *, max_iterations: int = 500):
    """Climb from ``phi`` to the mode with L-BFGS on the exact gradient.

    The seeded iRprop- starts of :func:`~exopk.inference.sampling.find_map` can stall where the
    log density is steep and badly scaled (a log-normal error on predictions that span many
    decades); a quasi-Newton climb from the best of them reaches the mode that the Laplace
    approximation needs. Returns ``(phi, value)``, never worse than the start.
    """
    phi = np.asarray(phi, dtype=float)

    def negative(x):
        value, gradient = log_pdf.evaluateS1(x)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(x)
        return -value, -np.asarray(gradient)

    start = -negative(phi)[0]
    with np.errstate(all="ignore"):
        found = scipy.optimize.minimize(negative, phi, jac=True, method="L-BFGS-B",
                                        options={"maxiter": max_iterations, "gtol": 1e-8})
    if np.isfinite(found.fun) and -found.fun >= start:
        return found.x, float(-found.fun)
    return phi, float(start)


def hessian(log_pdf, phi, *, step: float = 1e-5) -> np.ndarray:
    """Hessian of ``log_pdf`` at ``phi`` by central differences of its exact gradient.

    Parameters
    ----------
    log_pdf : pints.LogPDF
        With ``evaluateS1``.
    phi : ndarray
    step : float
        Relative step (absolute for coordinates near 0).
    """
    phi = np.asarray(phi, dtype=float)
    n = phi.size
    out = np.empty((n, n))
    for j in range(n):
        h = step * max(1.0, abs(phi[j]))
        up, down = phi.copy(), phi.copy()
        up[j] += h
        down[j] -= h
        out[:, j] = (log_pdf.evaluateS1(up)[1] - log_pdf.evaluateS1(down)[1]) / (2 * h)
    return 0.5 * (out + out.T)


def laplace(log_pdf, mode, *, draws: int, seed: int, kinds=None) -> Laplace:
    """Gaussian approximation of ``log_pdf`` at ``mode`` and seeded draws from it.

    Parameters
    ----------
    log_pdf : pints.LogPDF
    mode : ndarray
        A mode of ``log_pdf`` (coordinates).
    draws : int
    seed : int
    kinds : sequence of str, optional
        The coordinates' kinds (``log``, ``logit``, ``identity``, ...): a bounded kind far out
        marks a mode at a bound.

    Raises
    ------
    ExopkError
        If the curvature is not negative definite at ``mode`` in directions that are not at a
        bound (not a mode, or a flat direction the data and priors leave undetermined).
    """
    mode = np.asarray(mode, dtype=float)
    H = hessian(log_pdf, mode)
    kinds = kinds or ("identity",) * mode.size
    at_bound = tuple(j for j in range(mode.size)
                     if (kinds[j] != "identity" and abs(mode[j]) > BOUND_COORDINATE)
                     or not H[j, j] < 0)
    inside = np.array([j for j in range(mode.size) if j not in at_bound], dtype=int)
    precision = -H[np.ix_(inside, inside)]
    try:
        chol = np.linalg.cholesky(precision)
    except np.linalg.LinAlgError:
        values = np.linalg.eigvalsh(precision)
        raise ExopkError(f"the log-posterior is not curved downwards at its mode (smallest "
                         f"eigenvalue of -H: {values[0]:.3g}): not a mode, or a direction the "
                         "data and priors leave undetermined; sample with NUTS instead") from None
    covariance = np.zeros((mode.size, mode.size))
    inverse = np.linalg.inv(precision)
    covariance[np.ix_(inside, inside)] = 0.5 * (inverse + inverse.T)
    rng = np.random.default_rng([seed, 3])
    z = rng.normal(size=(draws, inside.size))
    samples = np.repeat(mode[None], draws, axis=0)
    # mode + L^-T z has covariance (L L^T)^-1; coordinates at a bound stay at the mode
    samples[:, inside] += np.linalg.solve(chol.T, z.T).T
    return Laplace(mode=mode, covariance=covariance, draws=samples, at_bound=at_bound)


def laplace_chains(log_pdf, mode, *, chains: int, draws: int, seed: int):
    """Laplace draws laid out as ``chains`` chains of ``draws`` independent draws.

    The layout of MCMC results (:class:`~exopk.inference.sampling.ChainResult`), so that a
    Laplace fit is written and summarised like a sampled one; every draw is independent, so
    R-hat is near 1 and the effective sample size near the number of draws.

    Returns
    -------
    results : list of ChainResult
        Per-draw ``lp`` (the log density of the draw) and no divergences.
    approximation : Laplace
    """
    kinds = getattr(getattr(log_pdf, "coordinates", None), "kinds", None)
    approximation = laplace(log_pdf, mode, draws=chains * draws, seed=seed, kinds=kinds)
    results = []
    for c in range(chains):
        block = approximation.draws[c * draws:(c + 1) * draws]
        batched = getattr(log_pdf, "log_densities", None)
        values = batched(block) if batched else np.array([log_pdf(phi) for phi in block])
        results.append(ChainResult(draws=block, log_posterior=values,
                                   stats={"diverging": np.zeros(draws, dtype=bool)},
                                   seconds=0.0))
    return results, approximation
