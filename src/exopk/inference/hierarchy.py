"""The hierarchy of a posterior: how each observation's parameter set departs from the typical one.

Four structures act on the free model parameters of a :class:`~exopk.inference.posterior.
LogPosterior`, each with its own coordinates after ``log tau``:

* random effects (per parameter): ``log omega`` (the effects' sd on the log scale) and one
  standard-normal ``z`` per study (non-centred: ``x_study = x * exp(omega * z_study)``);
* categorical covariates: an effect ``beta`` on the log scale for every level but the
  reference (``x_level = x * exp(beta_level)``), normal prior of sd ``prior_sd``;
* species scaling: the allometric exponent ``b``, ``x * (BW / BW_reference) ** b``;
* conditions (no coordinates): parameter values an intervention overrides.

:class:`Hierarchy` names these coordinates, adds their hyper-priors to a log-density, gives the
parameter set behind a group of observations with its derivatives in the coordinates, and
draws the coordinates from their priors.
"""

from __future__ import annotations

import math

import numpy as np

from exopk.errors import SimulationError
from exopk.model.priors import Prior

__all__ = ["Hierarchy"]


class Hierarchy:
    """Random effects, covariate effects, species scaling and conditions of a posterior.

    Parameters
    ----------
    spec : PosteriorSpec
    observations : sequence of Observation
    parameter_index : dict of str to int
        Index of every model parameter.
    first : int
        Position of the hierarchy's first coordinate (after the free parameters and ``log
        tau``).

    Attributes
    ----------
    names : list of str
        Names of the hierarchy's coordinates, in order.
    studies : list of str
        The studies, sorted (the order of each random effect's ``z``).
    """

    def __init__(self, spec, observations, parameter_index: dict, first: int):
        self.spec = spec
        self.observations = tuple(observations)
        self._index = parameter_index
        self.names = []
        self.studies = sorted({o.study for o in self.observations})
        self._re = []        # (parameter index, position of log omega, positions of z per study)
        for name in spec.random_effects:
            omega = first + len(self.names)
            self.names.append(f"log omega_{name}")
            z = {s: first + len(self.names) + i for i, s in enumerate(self.studies)}
            self.names.extend(f"z_{name}[{s}]" for s in self.studies)
            self._re.append((parameter_index[name], omega, z))
        self._cov = []       # (parameter indices, {level: position}, covariate)
        for covariate in spec.covariates:
            levels = sorted(set(covariate.levels) - {covariate.reference})
            positions = {lv: first + len(self.names) + i for i, lv in enumerate(levels)}
            self.names.extend(f"beta_{covariate.name}[{lv}]" for lv in levels)
            self._cov.append(([parameter_index[p] for p in covariate.parameters], positions,
                              covariate))
        self._exponent = None
        if spec.species_scaling:
            self._exponent = first + len(self.names)
            self.names.append("allometric_exponent")
            self._scaled = [parameter_index[p] for p in spec.species_scaling]
            self._log_weight_ratio = np.log(np.asarray(spec.body_weights_kg, dtype=float)
                                            / spec.reference_body_weight_kg)

    def priors(self) -> dict:
        """The prior of every hierarchy coordinate's natural value, by name.

        ``omega_<parameter>`` (the random effects' sd), ``z_...`` (standard normal),
        ``beta_...`` (normal of sd ``prior_sd``) and ``allometric_exponent``.
        """
        out = {}
        for name in self.spec.random_effects:
            out[f"omega_{name}"] = self.spec.random_effect_sd_prior
            for s in self.studies:
                out[f"z_{name}[{s}]"] = Prior("normal", {"mean": 0.0, "sd": 1.0})
        for _, positions, covariate in self._cov:
            for level in positions:
                out[f"beta_{covariate.name}[{level}]"] = Prior(
                    "normal", {"mean": 0.0, "sd": covariate.prior_sd})
        if self._exponent is not None:
            out["allometric_exponent"] = self.spec.exponent_prior
        return out

    @property
    def log_sd_positions(self) -> list[int]:
        """Positions of the ``log omega`` coordinates (log-transformed sds)."""
        return [omega for _, omega, _ in self._re]

    def group_key(self, i: int) -> tuple:
        """What observation ``i``'s parameter set depends on besides its design."""
        obs = self.observations[i]
        # conditions with the same parameter overrides (or none) share a parameter set
        key = [obs.route, obs.regimen,
               tuple(sorted(self.spec.conditions.get(obs.condition, {}).items()))]
        if self._re:
            key.append(obs.study)
        for _, _, covariate in self._cov:
            key.append(covariate.levels[i])
        if self._exponent is not None:
            key.append(float(self._log_weight_ratio[i]))
        return tuple(key)

    def add_log_prior(self, phi, value: float, gradient: np.ndarray) -> float:
        """``value`` plus the hyper-priors' log-densities; their slopes added to ``gradient``."""
        for _, omega_at, z_at in self._re:
            omega = math.exp(phi[omega_at])
            density, slope = self.spec.random_effect_sd_prior.log_density_and_slope(omega)
            value += density
            gradient[omega_at] += slope * omega
            for position in z_at.values():
                value += -0.5 * phi[position] ** 2 - 0.5 * math.log(2 * math.pi)
                gradient[position] = -phi[position]
        for _, positions, covariate in self._cov:
            for position in positions.values():
                value += _norm_logpdf(phi[position], covariate.prior_sd)
                gradient[position] = -phi[position] / covariate.prior_sd**2
        if self._exponent is not None:
            density, slope = self.spec.exponent_prior.log_density_and_slope(phi[self._exponent])
            value += density
            gradient[self._exponent] = slope
        return value

    def parameters(self, theta, phi, representatives):
        """Parameter set of each group and its derivatives in the hierarchy's coordinates.

        Parameters
        ----------
        theta : ndarray, shape (n_parameters,) or (draws, n_parameters)
            The typical parameter set (of each draw).
        phi : ndarray, shape (n_coordinates,) or (draws, n_coordinates)
            All coordinates (of each draw).
        representatives : list of int
            One observation per group.

        Returns
        -------
        thetas : ndarray, shape (groups, n_parameters) or (draws, groups, n_parameters)
        extra : list of (group, parameter index, coordinate, d log theta / d coordinate)
            The last entry is an array over draws when draws are given.
        overridden : ndarray of bool, shape (groups, n_parameters)
            Parameters a condition sets (they do not depend on any coordinate).
        """
        G = len(representatives)
        thetas = np.repeat(theta[..., None, :], G, axis=-2)
        log_shift = np.zeros(thetas.shape)
        extra = []
        for g, i in enumerate(representatives):
            obs = self.observations[i]
            for p_index, omega_at, z_at in self._re:
                omega = np.exp(phi[..., omega_at])
                z = phi[..., z_at[obs.study]]
                log_shift[..., g, p_index] += omega * z
                extra.append((g, p_index, omega_at, omega * z))
                extra.append((g, p_index, z_at[obs.study], omega))
            for p_indices, positions, covariate in self._cov:
                level = covariate.levels[i]
                if level in positions:
                    for p_index in p_indices:
                        log_shift[..., g, p_index] += phi[..., positions[level]]
                        extra.append((g, p_index, positions[level], 1.0))
            if self._exponent is not None:
                ratio = self._log_weight_ratio[i]
                for p_index in self._scaled:
                    log_shift[..., g, p_index] += phi[..., self._exponent] * ratio
                    extra.append((g, p_index, self._exponent, ratio))
        if extra:
            thetas *= np.exp(log_shift)
        overridden = np.zeros((G, theta.shape[-1]), dtype=bool)
        for g, i in enumerate(representatives):
            for name, value in self.spec.conditions.get(self.observations[i].condition,
                                                        {}).items():
                p_index = self._index[name]
                thetas[..., g, p_index] = float(value)
                overridden[g, p_index] = True
        return thetas, extra, overridden

    def centre(self, phi) -> None:
        """Set the hierarchy's coordinates of ``phi`` to their prior medians (z and beta 0)."""
        for _, omega_at, _ in self._re:
            phi[omega_at] = math.log(float(np.median(
                self.spec.random_effect_sd_prior.sample(np.random.default_rng(0), 4001))))
        if self._exponent is not None:
            phi[self._exponent] = float(np.median(
                self.spec.exponent_prior.sample(np.random.default_rng(0), 4001)))

    def sample(self, rng: np.random.Generator, draws: np.ndarray) -> None:
        """Fill the hierarchy's columns of ``draws`` (n, n_coordinates) with prior draws."""
        n = draws.shape[0]
        for _, omega_at, z_at in self._re:
            draws[:, omega_at] = np.log(np.maximum(
                self.spec.random_effect_sd_prior.sample(rng, size=n), 1e-12))
            for position in z_at.values():
                draws[:, position] = rng.normal(size=n)
        for _, positions, covariate in self._cov:
            for position in positions.values():
                draws[:, position] = rng.normal(0, covariate.prior_sd, size=n)
        if self._exponent is not None:
            draws[:, self._exponent] = self.spec.exponent_prior.sample(rng, size=n)


def check_positive(spec, free: list, lower: np.ndarray) -> None:
    """Raise unless every parameter the hierarchy scales is free and positive."""
    for name in (*spec.random_effects, *spec.species_scaling,
                 *(p for c in spec.covariates for p in c.parameters)):
        j = free.index(name) if name in free else None
        if j is None or not lower[j] >= 0:
            raise SimulationError(f"random effects and covariates act on positive free "
                                  f"parameters; '{name}' is not one")


def _norm_logpdf(x, sd):
    return -0.5 * (x / sd) ** 2 - math.log(sd) - 0.5 * math.log(2 * math.pi)
