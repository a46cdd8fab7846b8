"""The free parameters' side of a log-posterior in one compiled loop (numba).

From the sampling coordinates ``phi`` of the free parameters: their natural values ``x`` and
``dx/dphi`` (:class:`~exopk.inference.coordinates.BoundedCoordinates`: logit between two
bounds, log above a lower bound, log below an upper one, identity), the log-Jacobian of that map
and the log densities of the log-normal and logit-normal priors
(:class:`~exopk.model.priors.PriorSet`), with the gradient in ``phi``. In numpy these were
some 40 operations on arrays of a dozen numbers per posterior evaluation.
"""

from __future__ import annotations

import math

import numpy as np

from exopk.engine.kernels import compile_kernel

__all__ = ["TRANSFORM_CODES", "PRIOR_CODES", "free_parameter_density"]

TRANSFORM_CODES = {"identity": 0, "logit": 1, "log": 2, "log_below": 3}
"""The code of each coordinate transform."""
PRIOR_CODES = {"lognormal": 1, "logitnormal": 2}
"""The code of each prior family evaluated here; 0 for the others (evaluated by the caller)."""
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


@compile_kernel(ieee_division=True)
def free_parameter_density(phi, transforms, lower, upper, families, location, sigma, x, dx,
                           gradient):
    """Fill ``x``, ``dx`` and ``gradient`` (first ``len(transforms)`` entries) and return the
    log-Jacobian plus the log prior densities of the families coded here.

    Parameters
    ----------
    phi : ndarray (n_coordinates,)
        Sampling coordinates; the free parameters first.
    transforms : ndarray of int (n_free,)
        ``TRANSFORM_CODES`` of each free parameter.
    lower, upper : ndarray (n_free,)
        Bounds of the natural values.
    families : ndarray of int (n_free,)
        ``PRIOR_CODES`` of each prior (0: evaluated by the caller, which adds its density and
        its slope times ``dx``).
    location, sigma : ndarray (n_free,)
        Log-normal: log of the median; logit-normal: logit of the median; and the sigma.
    x, dx : ndarray (n_free,)
        Output: natural values and ``dx/dphi``.
    gradient : ndarray (n_coordinates,)
        Output, first ``n_free`` entries: the derivative of the returned value in ``phi``.

    Returns
    -------
    float
        ``-inf`` (and ``x``, ``dx`` filled up to the parameter at fault) where a natural value
        is outside its bounds or its prior's support.
    """
    total = 0.0
    for j in range(transforms.shape[0]):
        q = phi[j]
        kind = transforms[j]
        if kind == 1:
            # s = expit(q) and log(width s (1 - s)) without overflow
            e = math.exp(-abs(q))
            s = 1.0 / (1.0 + e) if q >= 0 else e / (1.0 + e)
            width = upper[j] - lower[j]
            value, derivative = lower[j] + width * s, width * s * (1.0 - s)
            total += math.log(width) - abs(q) - 2.0 * math.log1p(e)
            slope_phi = 1.0 - 2.0 * s
        elif kind == 2:
            e = math.exp(q)
            value, derivative = lower[j] + e, e
            total += q
            slope_phi = 1.0
        elif kind == 3:
            e = math.exp(q)
            value, derivative = upper[j] - e, -e
            total += q
            slope_phi = 1.0
        else:
            value, derivative = q, 1.0
            slope_phi = 0.0
        x[j], dx[j] = value, derivative
        if value < lower[j] or value > upper[j]:
            return -np.inf
        family = families[j]
        slope_x = 0.0
        if family == 1:
            if not value > 0:
                return -np.inf
            log_v = math.log(value)
            z = (log_v - location[j]) / sigma[j]
            total += -0.5 * z * z - log_v - math.log(sigma[j]) - _LOG_SQRT_2PI
            slope_x = -(z / sigma[j] + 1.0) / value
        elif family == 2:
            if not 0 < value < 1:
                return -np.inf
            log_v, log_w = math.log(value), math.log1p(-value)
            z = (log_v - log_w - location[j]) / sigma[j]
            total += -0.5 * z * z - log_v - log_w - math.log(sigma[j]) - _LOG_SQRT_2PI
            slope_x = -z / sigma[j] / (value * (1.0 - value)) - 1.0 / value + 1.0 / (1.0 - value)
        gradient[j] = slope_phi + slope_x * derivative
    return total
