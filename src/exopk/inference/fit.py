"""Run a fit: evidence -> log-posterior -> MAP -> MCMC -> diagnostics -> DataTree on disk.

``exopk.fit("fits/mouse_iv_mps.toml")`` and ``exopk fit fits/mouse_iv_mps.toml`` do the same.
"""

from __future__ import annotations

import datetime
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

import exopk
from exopk.inference.diagnostics import ess_bulk, ess_tail, split_rhat
from exopk.inference.fitfile import FitFile
from exopk.inference.preparation import Prepared, check_fit_arguments, output_path, prepare
from exopk.inference.result import (as_attr, build_tree, hash_of, load_fit, observation_table,
                                    write_fit)
from exopk.inference.sampling import chain_starts, find_map, run_chains

__all__ = ["FitResult", "Prepared", "fit", "format_summary", "load_fit", "prepare", "RHAT_LIMIT",
           "ESS_LIMIT", "PRIOR_DRAWS"]

RHAT_LIMIT = 1.01
ESS_LIMIT = 400
PRIOR_DRAWS = 500


@dataclass
class FitResult:
    """A finished fit.

    Attributes
    ----------
    tree : xarray.DataTree
        ArviZ layout (see :mod:`exopk.inference.result`).
    diagnostics : dict
        Per parameter: ``rhat``, ``ess_bulk``, ``ess_tail``, ``shrinkage``; plus totals.
    path : Path or None
        Where the tree was written.
    """

    tree: xr.DataTree
    diagnostics: dict
    path: Path | None

    @property
    def converged(self) -> bool:
        """R-hat <= 1.01, bulk ESS >= 400 for every parameter and no divergences."""
        return bool(self.diagnostics["converged"])

    def summary(self) -> str:
        """The diagnostics table ``exopk fit`` prints."""
        return format_summary(self.tree, self.diagnostics)


def fit(fit_file: FitFile | str | Path, *, out: str | Path | None = None, chains: int | None = None,
        warmup: int | None = None, draws: int | None = None, seed: int | None = None,
        map_starts: int | None = None, processes: int | None = None, progress: bool = True,
        write: bool = True) -> FitResult:
    """Run a fit file: MAP from several seeded starts, then MCMC, diagnostics and results.

    Parameters
    ----------
    fit_file : FitFile, str or Path
    out : path, optional
        Output NetCDF (default: the fit file's path with ``.nc``).
    chains, warmup, draws, seed, map_starts : int, optional
        Override the fit file's sampler settings.
    processes : int, optional
        Worker processes for chains.
    progress : bool
        Progress line on stderr.
    write : bool
        Write the result file.

    Returns
    -------
    FitResult
    """
    fit_file = check_fit_arguments(fit_file, out=out, write=write, chains=chains, warmup=warmup,
                                   draws=draws, seed=seed, map_starts=map_starts,
                                   processes=processes)
    prepared = prepare(fit_file)
    ff = prepared.fit_file
    settings = ff.sampler
    chains = chains or settings.chains
    warmup = warmup or settings.warmup
    draws = draws or settings.draws
    seed = ff.seed if seed is None else seed
    lp = prepared.log_posterior

    map_result = find_map(lp, seed=seed, starts=map_starts or settings.map_starts)
    x0s = chain_starts(lp, map_result.phi, chains, seed=seed)
    results = run_chains(lp, x0s, seed=seed, method=settings.method, warmup=warmup, draws=draws,
                         settings={"max_tree_depth": settings.max_tree_depth,
                                   "target_acceptance": settings.target_acceptance,
                                   "metric": settings.metric},
                         processes=processes, progress=progress)
    tree, diagnostics = _assemble(prepared, results, map_result, seed, chains, warmup, draws)
    path = None
    if write:
        path = output_path(ff, out)
        write_fit(tree, path)
    return FitResult(tree=tree, diagnostics=diagnostics, path=path)


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
    tau = np.exp(flat[:, len(lp.free)])
    sigma = np.sqrt(lp.likelihood._sigma_log[None, :] ** 2 + tau[:, None] ** 2)
    replicate = mean * np.exp(sigma * rng.normal(size=mean.shape))
    return (mean.reshape(shape + (n_obs,)), replicate.reshape(shape + (n_obs,)),
            terms.reshape(shape + (n_obs,)))


def _assemble(prepared, results, map_result, seed, chains, warmup, draws):
    lp = prepared.log_posterior
    model = prepared.model
    phi = np.stack([r.draws for r in results])                     # (chain, draw, n)
    posterior = _natural_draws(lp, phi)
    rng = np.random.default_rng([seed, 2])
    prior_phi = lp.sample_prior(rng, PRIOR_DRAWS)[None]
    prior = _natural_draws(lp, prior_phi)
    mean, replicate, log_likelihood = _predictive(lp, phi, rng)
    prior_mean = _predictive(lp, prior_phi, rng)[0]
    units = {p.name: p.unit for p in model.parameters}
    units["tau"] = "1 (sd of log)"
    stats = {
        "lp": np.stack([r.log_posterior for r in results]),
        "diverging": np.stack([r.diverging for r in results]),
        "n_steps": np.stack([r.n_steps for r in results]),
        "tree_depth": np.stack([np.floor(np.log2(np.maximum(r.n_steps, 1))).astype(int) + 1
                                for r in results]),
        "step_size": np.stack([r.step_size for r in results]),
        "acceptance_rate": np.stack([r.acceptance for r in results]),
    }
    diagnostics = _diagnostics(posterior, phi, prior_phi, stats, mean, prior_mean, prepared)
    map_natural = lp.natural(map_result.phi)
    ff = prepared.fit_file
    attrs = {
        "exopk_version": exopk.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command_line": " ".join(sys.argv),
        "fit_name": ff.name,
        "fit_file": ff.path or "",
        "fit_file_sha256": ff.sha256,
        "fit_file_text": ff.text,
        "model": model.name,
        "model_file": model.source_file or "",
        "model_file_sha256": hash_of(Path(model.source_file).read_text()) if model.source_file else "",
        "evidence_sha256": hash_of(*(str(o) for o in prepared.observations)),
        "seed": seed,
        "sampler": ff.sampler.method,
        "chains": chains,
        "warmup": warmup,
        "draws": draws,
        "map": as_attr(map_natural),
        "map_log_density": map_result.log_posterior,
        "map_starts_log_density": as_attr(list(map_result.values)),
        "skipped_records": as_attr([vars(s) for s in prepared.skipped]),
        "sampling_seconds_slowest_chain": max(r.seconds for r in results),
        "gradient_evaluations": int(sum(r.n_steps.sum() for r in results)),
        "diagnostics": as_attr(diagnostics),
        "simulated_data": "no",
    }
    tree = build_tree(posterior=posterior, units=units, sample_stats=stats, prior=prior,
                      prior_predictive_mean=prior_mean,
                      predictive_mean=mean, predictive_draws=replicate,
                      log_likelihood=log_likelihood,
                      observed=observation_table(prepared.observations, prepared.records),
                      attrs=attrs)
    return tree, diagnostics


def _diagnostics(posterior, phi, prior_phi, stats, mean, prior_mean, prepared):
    """Convergence and shrinkage per parameter; prediction intervals per observation.

    Shrinkage is the posterior sd over the prior sd in the sampling coordinates (log scale for
    positive parameters, logit for fractions), where the sd means the same thing for a rate of
    0.001/min as for one of 10/min: 1 means the data said nothing about the parameter. For the
    derived quantities (the prediction behind every observation) it is the sd of the log
    prediction under the posterior over that under the prior.
    """
    parameters = {}
    for k, (name, draws) in enumerate(posterior.items()):
        prior_sd = float(np.std(prior_phi[..., k]))
        parameters[name] = {
            "mean": float(np.mean(draws)), "sd": float(np.std(draws)),
            "q5": float(np.quantile(draws, 0.05)), "q95": float(np.quantile(draws, 0.95)),
            "rhat": float(split_rhat(draws)), "ess_bulk": float(ess_bulk(draws)),
            "ess_tail": float(ess_tail(draws)),
            "shrinkage": float(np.std(phi[..., k]) / prior_sd) if prior_sd > 0 else math.nan,
        }
    divergences = int(np.sum(stats["diverging"]))
    worst_rhat = max((p["rhat"] for p in parameters.values() if np.isfinite(p["rhat"])), default=math.nan)
    worst_ess = min((p["ess_bulk"] for p in parameters.values() if np.isfinite(p["ess_bulk"])),
                    default=math.nan)
    predictions = []
    for i, obs in enumerate(prepared.observations):
        draws_i = mean[..., i]
        prior_sd = float(np.nanstd(np.log(prior_mean[..., i])))
        predictions.append({
            "study": obs.study, "line": obs.line, "kind": obs.request.kind,
            "output": obs.request.output, "observed": obs.value, "is_proxy": obs.is_proxy,
            "q5": float(np.nanquantile(draws_i, 0.05)), "q50": float(np.nanquantile(draws_i, 0.5)),
            "q95": float(np.nanquantile(draws_i, 0.95)),
            "shrinkage": float(np.nanstd(np.log(draws_i)) / prior_sd) if prior_sd > 0 else math.nan})
    return {
        "parameters": parameters, "divergences": divergences, "max_rhat": worst_rhat,
        "min_ess_bulk": worst_ess,
        "converged": bool(worst_rhat <= RHAT_LIMIT and worst_ess >= ESS_LIMIT and divergences == 0),
        "predictions": predictions,
    }


def format_summary(tree, diagnostics) -> str:
    """A readable table of parameters, convergence and how much the data moved each one."""
    attrs = tree.attrs
    lines = [f"fit {attrs['fit_name']}: model {attrs['model']}, {attrs['chains']} chains x "
             f"{attrs['draws']} draws ({attrs['warmup']} warm-up), sampler {attrs['sampler']}, "
             f"seed {attrs['seed']}",
             f"{len(diagnostics['predictions'])} observations; MAP log density "
             f"{float(attrs['map_log_density']):.2f}",
             "",
             f"{'parameter':<34} {'mean':>10} {'5%':>10} {'95%':>10} {'R-hat':>7} {'ESS bulk':>9} "
             f"{'ESS tail':>9} {'sd/prior sd':>11}"]
    for name, p in diagnostics["parameters"].items():
        flag = ""
        if not (p["rhat"] <= RHAT_LIMIT) or not (p["ess_bulk"] >= ESS_LIMIT):
            flag = "  <-- not converged"
        elif p["shrinkage"] > 0.9:
            flag = "  (data say little)"
        lines.append(f"{name:<34} {p['mean']:>10.4g} {p['q5']:>10.4g} {p['q95']:>10.4g} "
                     f"{p['rhat']:>7.3f} {p['ess_bulk']:>9.0f} {p['ess_tail']:>9.0f} "
                     f"{p['shrinkage']:>11.2f}{flag}")
    lines += ["", f"{'observation (prediction)':<44} {'observed':>10} {'5%':>10} {'50%':>10} "
                  f"{'95%':>10} {'sd/prior sd':>11}"]
    for p in diagnostics["predictions"]:
        label = f"{'PROXY ' if p['is_proxy'] else ''}{p['study']}:{p['line']} {p['kind']} {p['output']}"
        lines.append(f"{label[:44]:<44} {p['observed']:>10.4g} {p['q5']:>10.4g} {p['q50']:>10.4g} "
                     f"{p['q95']:>10.4g} {p['shrinkage']:>11.2f}")
    lines.append("")
    if diagnostics["converged"]:
        lines.append(f"converged: max R-hat {diagnostics['max_rhat']:.3f}, min bulk ESS "
                     f"{diagnostics['min_ess_bulk']:.0f}, no divergences")
    else:
        lines.append("!" * 72)
        lines.append(f"NOT CONVERGED: max R-hat {diagnostics['max_rhat']:.3f} (limit {RHAT_LIMIT}), "
                     f"min bulk ESS {diagnostics['min_ess_bulk']:.0f} (limit {ESS_LIMIT}), "
                     f"{diagnostics['divergences']} divergent transitions")
        lines.append("!" * 72)
    return "\n".join(lines)

