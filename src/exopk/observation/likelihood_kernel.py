"""Log-normal likelihood terms of observed values, summed with their gradient (numba).

For observed values ``v`` with log-scale errors ``sigma_log`` and the between-study dispersion
``tau``: ``sigma = sqrt(sigma_log^2 + tau^2)``, ``z = (log v - log y) / sigma`` and the term
``-z^2 / 2 - log sigma - log sqrt(2 pi) - log v`` (:meth:`~exopk.observation.likelihood.
Likelihood.terms`), with ``d term / d y = z / (sigma y)`` and
``d term / d tau = (z^2 - 1) / sigma * tau / sigma``. A posterior evaluation whose observations
are all values needs their sum and these derivatives; in numpy that was some 15 operations on
arrays of a few numbers.
"""

from __future__ import annotations

import math

from exopk.engine.kernels import compile_kernel

__all__ = ["value_terms_and_slopes"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


@compile_kernel
def value_terms_and_slopes(y, log_value, sigma_log, tau, slope_y):
    """Sum of the terms, their derivative in ``tau``, and ``d term / d y`` in ``slope_y``.

    Returns
    -------
    total, d_tau : float
    ok : bool
        False (nothing summed) where a prediction is not positive or a sigma is 0: the caller
        takes the general path, which says which.
    """
    total, d_tau = 0.0, 0.0
    for i in range(y.shape[0]):
        sigma = math.sqrt(sigma_log[i] * sigma_log[i] + tau * tau)
        if not (y[i] > 0 and sigma > 0):
            return 0.0, 0.0, False
        z = (log_value[i] - math.log(y[i])) / sigma
        total += -0.5 * z * z - math.log(sigma) - _LOG_SQRT_2PI - log_value[i]
        slope_y[i] = z / sigma / y[i]
        d_tau += (z * z - 1.0) / sigma * tau / sigma
    return total, d_tau, True
