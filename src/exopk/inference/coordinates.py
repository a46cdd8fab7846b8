"""Unconstrained sampling coordinates of bounded parameters, as a PINTS ``Transformation``.

Each coordinate ``q`` maps to a model value ``p`` by its bounds (as Stan does):

* ``logit``: both bounds finite, ``p = lower + (upper - lower) * expit(q)``;
* ``log``: only the lower bound finite, ``p = lower + exp(q)``;
* ``log_below``: only the upper bound finite, ``p = upper - exp(q)``;
* ``identity``: no finite bound, ``p = q``.

Every method is vectorised over leading dimensions: ``q`` and ``p`` may have shape
``(..., n_parameters)`` (for example ``(chain, draw, n_parameters)``), as PINTS' own methods take
one point of shape ``(n_parameters,)``.
"""

from __future__ import annotations

import numpy as np
import pints
import scipy.special

__all__ = ["BoundedCoordinates", "KINDS", "coordinates_of_draws"]

KINDS = ("logit", "log", "log_below", "identity")


class BoundedCoordinates(pints.Transformation):
    """Elementwise map from unconstrained coordinates to bounded model values.

    Parameters
    ----------
    lower, upper : array_like, shape (n_parameters,)
        Bounds of the model values (``-inf`` / ``inf`` where unbounded).

    Examples
    --------
    >>> import numpy as np
    >>> from exopk.inference.coordinates import BoundedCoordinates
    >>> coordinates = BoundedCoordinates([0.0, 0.0, -np.inf], [1.0, np.inf, np.inf])
    >>> coordinates.kinds
    ('logit', 'log', 'identity')
    >>> coordinates.to_model(np.zeros((2, 3)))
    array([[0.5, 1. , 0. ],
           [0.5, 1. , 0. ]])
    >>> coordinates.to_search([0.5, 1.0, 0.0])
    array([0., 0., 0.])
    """

    def __init__(self, lower, upper):
        self.lower = np.asarray(lower, dtype=float)
        self.upper = np.asarray(upper, dtype=float)
        if self.lower.shape != self.upper.shape or self.lower.ndim != 1:
            raise ValueError("lower and upper bounds must be vectors of one length")
        if np.any(self.lower >= self.upper):
            j = int(np.flatnonzero(self.lower >= self.upper)[0])
            raise ValueError(f"coordinate {j}: lower bound {self.lower[j]} is not below the "
                             f"upper bound {self.upper[j]}")
        low, high = np.isfinite(self.lower), np.isfinite(self.upper)
        self.kinds = tuple("logit" if a and b else "log" if a else "log_below" if b
                           else "identity" for a, b in zip(low, high))
        kinds = np.array(self.kinds)
        self.logit, self.log, self.log_below = (np.flatnonzero(kinds == kind)
                                                for kind in ("logit", "log", "log_below"))
        self.width = (self.upper - self.lower)[self.logit]

    def n_parameters(self) -> int:
        return self.lower.size

    def elementwise(self) -> bool:
        return True

    def to_model_and_derivative(self, q):
        """Model values ``p`` and the diagonal of the Jacobian ``d p / d q``, shape of ``q``."""
        q = np.asarray(q, dtype=float)
        p = q.copy()
        dp = np.ones_like(p)
        if self.logit.size:
            s = scipy.special.expit(q[..., self.logit])
            p[..., self.logit] = self.lower[self.logit] + self.width * s
            dp[..., self.logit] = self.width * s * (1 - s)
        if self.log.size:
            e = np.exp(q[..., self.log])
            p[..., self.log] = self.lower[self.log] + e
            dp[..., self.log] = e
        if self.log_below.size:
            e = np.exp(q[..., self.log_below])
            p[..., self.log_below] = self.upper[self.log_below] - e
            dp[..., self.log_below] = -e
        return p, dp

    def to_model(self, q):
        return self.to_model_and_derivative(q)[0]

    def to_search(self, p):
        p = np.asarray(p, dtype=float)
        q = p.copy()
        with np.errstate(divide="ignore"):
            if self.logit.size:
                q[..., self.logit] = scipy.special.logit(
                    (p[..., self.logit] - self.lower[self.logit]) / self.width)
            if self.log.size:
                q[..., self.log] = np.log(p[..., self.log] - self.lower[self.log])
            if self.log_below.size:
                q[..., self.log_below] = np.log(self.upper[self.log_below]
                                                - p[..., self.log_below])
        return q

    def jacobian(self, q):
        return np.diag(self.to_model_and_derivative(q)[1])

    def log_jacobian_det(self, q):
        """``log |det d p / d q|``, shape ``q.shape[:-1]``."""
        return self.log_jacobian_det_S1(q)[0]

    def log_jacobian_det_S1(self, q):
        """``log |det d p / d q|`` and its gradient in ``q`` (shape of ``q``)."""
        q = np.asarray(q, dtype=float)
        gradient = np.zeros_like(q)
        value = np.zeros(q.shape[:-1])
        if self.logit.size:
            # log(width * s * (1 - s)), s = expit(q), without overflow or underflow
            ql = q[..., self.logit]
            value = value + (np.log(self.width) - np.logaddexp(0.0, -ql)
                             - np.logaddexp(0.0, ql)).sum(axis=-1)
            gradient[..., self.logit] = 1 - 2 * scipy.special.expit(ql)
        shifted = np.concatenate([self.log, self.log_below])
        value = value + q[..., shifted].sum(axis=-1)
        gradient[..., shifted] = 1.0
        return (value[()] if value.ndim == 0 else value), gradient


def coordinates_of_draws(draws, names) -> BoundedCoordinates | None:
    """The sampling coordinates of stored draws, from each variable's ``lower``/``upper`` attrs.

    Parameters
    ----------
    draws : xarray.Dataset or xarray.DataTree node
        Draws as ``exopk.fit`` writes them (the ``posterior`` group).
    names : sequence of str
        Variables, in the order of the coordinates.

    Returns
    -------
    BoundedCoordinates or None
        None when a variable has no stored bounds (results written before bounds were).
    """
    if not all("lower" in draws[n].attrs for n in names):
        return None
    return BoundedCoordinates([float(draws[n].attrs["lower"]) for n in names],
                              [float(draws[n].attrs["upper"]) for n in names])
