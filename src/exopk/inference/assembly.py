"""A fit's result: draws -> natural values, predictive draws, diagnostics -> DataTree.

Shared by every way of fitting (:func:`exopk.fit`, :func:`exopk.fit_observations`, MCMC or a
Laplace approximation): given the draws of the sampling coordinates, builds the ArviZ-layout
tree with its ``diagnostics`` group (:mod:`exopk.inference.result`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from exopk.inference.plausibility import check_plausibility
from exopk.inference.result import as_attr, build_tree, hash_of, observation_table
from exopk.inference.summary import format_summary, summarize
from exopk.provenance import provenance_json

__all__ = ["FitResult", "assemble", "PRIOR_DRAWS"]

PRIOR_DRAWS = 500


@dataclass
class FitResult:
    """A finished fit.

    Attributes
    ----------
    tree : xarray.DataTree
        ArviZ layout (see :mod:`exopk.inference.result`).
    diagnostics : xarray.Dataset
        The ``diagnostics`` group of ``tree``: :func:`exopk.inference.summary.summarize`.
    path : Path or None
        Where the tree was written.
    """

    tree: xr.DataTree
    diagnostics: xr.Dataset
    path: Path | None

    @property
    def converged(self) -> bool:
        """R-hat <= 1.01, bulk ESS >= 400 for every parameter and no divergences."""
        return bool(self.diagnostics["converged"])

    @property
    def misfit(self) -> bool:
        """A published value outside its 99% posterior predictive interval, or more outside
        their 90% intervals than chance explains (see :mod:`exopk.inference.summary`)."""
        return bool(self.diagnostics["misfit"])

    @property
    def implausible(self) -> bool:
        """The posterior predictive violates a plausibility bound of the model
        (:mod:`exopk.inference.plausibility`)."""
        return bool(self.diagnostics["implausible"])

    def summary(self) -> str:
        """The diagnostics table ``exopk fit`` prints."""
        return format_summary(self.tree, self.diagnostics)


def _natural_draws(lp, phi_draws):
    """Natural values of every coordinate for an array of coordinate draws (..., n)."""
    flat = phi_draws.reshape(-1, phi_draws.shape[-1])
    rows = [lp.natural(phi) for phi in flat]
    return {name: np.array([r[name] for r in rows]).reshape(phi_draws.shape[:-1])
            for name in rows[0]}


def _predictive(lp, phi_draws, rng):
    """Prediction, noisy replicate and log-likelihood terms of every observation, per draw."""
    shape = phi_draws.shape[:-1]
    flat = phi_draws.reshape(-1, phi_draws.shape[-1])
    n_obs = len(lp.observations)
    mean, terms = lp.predictions_of_draws(flat)
    if hasattr(lp, "replicates"):      # residual error models of a time course
        replicate = lp.replicates(flat, mean, rng)
    else:                              # log-normal with the between-study tau
        tau = np.exp(flat[:, len(lp.free)])
        sigma = np.sqrt(lp.likelihood._sigma_log[None, :] ** 2 + tau[:, None] ** 2)
        replicate = mean * np.exp(sigma * rng.normal(size=mean.shape))
    return (mean.reshape(shape + (n_obs,)), replicate.reshape(shape + (n_obs,)),
            terms.reshape(shape + (n_obs,)))


def assemble(prepared, results, map_result, seed, chains, warmup, draws, path, *,
              sampler=None, approximation=None):
    """The result tree of a fit. ``sampler`` overrides the fit file's (``"laplace"`` with
    ``approximation``, a :class:`~exopk.inference.laplace.Laplace`)."""
    lp = prepared.log_posterior
    model = prepared.model
    phi = np.stack([r.draws for r in results])                     # (chain, draw, n)
    posterior = _natural_draws(lp, phi)
    rng = np.random.default_rng([seed, 2])
    prior_phi = lp.sample_prior(rng, PRIOR_DRAWS)[None]
    prior = _natural_draws(lp, prior_phi)
    mean, replicate, log_likelihood = _predictive(lp, phi, rng)
    prior_mean, prior_replicate, _ = _predictive(lp, prior_phi, rng)
    log_prior = {name: prior.logpdf(posterior[name])
                 for name, prior in lp.natural_priors().items()}
    units = {p.name: p.unit for p in model.parameters}
    units["tau"] = "1 (sd of log)"
    units.update(getattr(lp, "error_units", {}))
    bounds = dict(zip(lp.natural_names(), zip(lp.coordinates.lower, lp.coordinates.upper)))
    stats = {"lp": np.stack([r.log_posterior for r in results]),
             **{name: np.stack([r.stats[name] for r in results]) for name in results[0].stats}}
    map_natural = lp.natural(map_result.phi)
    ff = prepared.fit_file
    sampler = sampler or ff.sampler.method
    inputs = {"fit_file": ff.path} if ff.path else {}
    if model.source_file:
        inputs["model_file"] = model.source_file
    evidence_sha256 = hash_of(*(str(o) for o in prepared.observations))
    attrs = {
        "provenance": provenance_json(inputs=inputs, result_path=path, parameters={
            "seed": seed, "sampler": sampler, "chains": chains, "warmup": warmup,
            "draws": draws, "thin": ff.sampler.thin, "evidence_sha256": evidence_sha256}),
        "fit_name": ff.name,
        "fit_file_text": ff.text,
        "model": model.name,
        "evidence_sha256": evidence_sha256,
        "seed": seed,
        "sampler": sampler,
        "chains": chains,
        "warmup": warmup,
        "draws": draws,
        "thin": ff.sampler.thin,
        "map": as_attr(map_natural),
        "map_log_density": map_result.log_posterior,
        "map_starts_log_density": as_attr(list(map_result.values)),
        "skipped_records": as_attr([vars(s) for s in prepared.skipped]),
        "caveats": as_attr(prepared.caveats),
        "sampling_seconds_slowest_chain": max(r.seconds for r in results),
        "gradient_evaluations": int(sum(r.n_steps.sum() for r in results)),
        "simulated_data": "no",
    }
    tree = build_tree(posterior=posterior, units=units, bounds=bounds, sample_stats=stats,
                      prior=prior, prior_predictive_mean=prior_mean,
                      prior_predictive_draws=prior_replicate, log_prior=log_prior,
                      predictive_mean=mean, predictive_draws=replicate,
                      log_likelihood=log_likelihood,
                      observed=observation_table(prepared.observations, prepared.records, dict(
                          zip(model.output_names, (o.unit for o in model.quantities.outputs)))),
                      attrs=attrs)
    if approximation is not None:
        names = lp.natural_names()
        tree["posterior"].attrs["approximation"] = (
            "laplace: Gaussian at the mode of the density of the sampling coordinates, Hessian "
            "by central differences of the exact gradient; draws mapped to natural values")
        tree["posterior"].attrs["mode_at_bound"] = as_attr(
            [names[j] for j in approximation.at_bound])
        tree["posterior"].attrs["coordinate_covariance"] = as_attr(
            approximation.covariance.tolist())
    if model.plausibility:
        tree["plausibility"] = check_plausibility(model, lp.parameter_sets(phi).values)
    tree["diagnostics"] = summarize(tree)
    return tree
