"""Residual error models of a measured time course, and their exact log-likelihood gradients.

The residual error is the scatter of one individual's measurements around the model's
prediction ``y`` (assay error, model misspecification within a time course). It is estimated,
per output, with its own parameters and priors, and is not the between-study dispersion ``tau``
of the packaged evidence (:mod:`exopk.observation.likelihood`), which stays as it is.

The models (``a`` additive sd in the observation's unit, ``b`` proportional sd as a fraction,
``sigma`` sd of the log):

* ``additive``: ``v ~ Normal(y, a)``;
* ``proportional``: ``v ~ Normal(y, b y)`` (NONMEM's ``Y = F + F*EPS(1)``; needs ``y > 0``);
* ``combined``: ``v ~ Normal(y, sqrt(a**2 + (b y)**2))`` (the variance form NONMEM, nlmixr2 and
  Pumas call combined);
* ``lognormal``: ``log v ~ Normal(log y, sigma)`` (needs ``v > 0`` and ``y > 0``).

A value below the lower limit of quantification ``L`` is censored (Beal's M3): its term is the
probability ``P(v < L)``, ``log Phi((L - y) / sd)`` for the normal models and
``log Phi((log L - log y) / sigma)`` for the log-normal one. Uncensored terms are densities of
the observed value, so sums over observations are proper log-likelihoods.

:meth:`ResidualError.terms` returns the terms with their derivatives with respect to ``y`` and
to every error parameter, in closed form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr

from exopk.errors import ExopkError

__all__ = ["ResidualError", "ERROR_MODELS"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)

#: error model -> names of its parameters, in order
ERROR_MODELS = {
    "additive": ("a",),
    "proportional": ("b",),
    "combined": ("a", "b"),
    "lognormal": ("sigma",),
}


def _mills(z):
    """``phi(z) / Phi(z)``, in log space (stable for very negative z)."""
    return np.exp(-0.5 * z * z - _LOG_SQRT_2PI - log_ndtr(z))


@dataclass(frozen=True)
class ResidualError:
    """The residual error model of one output.

    Attributes
    ----------
    kind : str
        One of :data:`ERROR_MODELS`.
    output : str
        The model output whose measurements it describes.

    Examples
    --------
    >>> import numpy as np
    >>> error = ResidualError("additive", "plasma_concentration")
    >>> error.parameter_names
    ('a_plasma_concentration',)
    >>> terms, d_y, d_params = error.terms(np.array([2.0]), np.array([1.0]),
    ...                                    np.array([False]), np.array([0.5]))
    >>> round(float(terms[0]), 6)   # Normal(1 | 2, 0.5): -2 - log 0.5 - log sqrt(2 pi)
    -2.225791
    """

    kind: str
    output: str

    def __post_init__(self):
        if self.kind not in ERROR_MODELS:
            raise ExopkError(f"unknown error model '{self.kind}' for output '{self.output}'; "
                             f"known: {', '.join(ERROR_MODELS)}")

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Names of the error parameters: ``<parameter>_<output>``."""
        return tuple(f"{p}_{self.output}" for p in ERROR_MODELS[self.kind])

    def check_values(self, values, censored) -> int | None:
        """Index of the first observation this model cannot describe, or None.

        The log-normal model needs positive values (censored ones: a positive limit); the
        normal models take any value, zeros included.
        """
        if self.kind != "lognormal":
            return None
        bad = np.flatnonzero(~(np.asarray(values, dtype=float) > 0))
        return int(bad[0]) if bad.size else None

    def sd(self, y, params):
        """Standard deviation of the normal models at prediction ``y`` (``sigma`` of the log
        for the log-normal one), and its derivatives in ``y`` and in every parameter."""
        y = np.asarray(y, dtype=float)
        if self.kind == "lognormal":
            sigma = np.full_like(y, params[0])
            return sigma, np.zeros_like(y), [np.ones_like(y)]
        if self.kind == "additive":
            a = params[0]
            return np.full_like(y, a), np.zeros_like(y), [np.ones_like(y)]
        if self.kind == "proportional":
            b = params[0]
            return b * np.abs(y), b * np.sign(y), [np.abs(y)]
        a, b = params
        s = np.sqrt(a * a + (b * y) ** 2)
        return s, b * b * y / s, [a / s, b * y * y / s]

    def terms(self, y, values, censored, params):
        """Log-likelihood term of every observation and its derivatives.

        Parameters
        ----------
        y : ndarray, shape (n,)
            Predictions.
        values : ndarray, shape (n,)
            Observed values; for censored observations, the limit of quantification.
        censored : ndarray of bool, shape (n,)
            Below the limit of quantification (M3).
        params : sequence of float
            The error parameters, in the order of :attr:`parameter_names` (all positive).

        Returns
        -------
        terms : ndarray, shape (n,)
        d_y : ndarray, shape (n,)
            d term / d y.
        d_params : ndarray, shape (n, n_params)
            d term / d parameter.
        """
        y = np.asarray(y, dtype=float)
        v = np.asarray(values, dtype=float)
        censored = np.asarray(censored, dtype=bool)
        s, ds_dy, ds_dp = self.sd(y, params)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.kind == "lognormal":
                # residual and its derivatives on the log scale: r = log v - log y
                r, dr_dy = np.log(v) - np.log(y), -1.0 / y
                log_jacobian = np.log(v)
            else:
                r, dr_dy = v - y, -np.ones_like(y)
                log_jacobian = np.zeros_like(y)
            z = r / s
            dz_dy = dr_dy / s - z / s * ds_dy
            dz_ds = -z / s
            # exact: -z**2/2 - log s - log sqrt(2 pi) - log jacobian
            exact_terms = -0.5 * z * z - np.log(s) - _LOG_SQRT_2PI - log_jacobian
            exact_dz, exact_ds = -z, -1.0 / s
            # censored: log Phi(z)
            mills = _mills(z)
            terms = np.where(censored, log_ndtr(z), exact_terms)
            d_z = np.where(censored, mills, exact_dz)
            d_s_direct = np.where(censored, 0.0, exact_ds)
        d_s = d_z * dz_ds + d_s_direct
        d_y = d_z * dz_dy + d_s_direct * ds_dy
        d_params = np.stack([d_s * ds for ds in ds_dp], axis=-1)
        return terms, d_y, d_params
