"""From a batch file to its tasks, every one checked before any runs.

:func:`plan` reads every fit file a batch names, puts each task's settings in it
(:mod:`exopk.batch.overrides`) and prepares it (:func:`exopk.inference.preparation.prepare`:
model, evidence, priors), so a configuration error stops the batch before the first fit. A
task is a JSON-serialisable specification that a worker runs
(:func:`exopk.batch.worker.run_task`); its SHA-256 covers the fit file's text with the settings,
the model file and the observations, so a rerun skips a finished task only if none of them
changed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from exopk.batch.calibration import replicate_seeds
from exopk.batch.overrides import setting_of, with_settings
from exopk.batch.spec import TRUTH_FROM_PRIOR, BatchSpec
from exopk.errors import ModelFileError, SimulationError
from exopk.inference.fitfile import did_you_mean, known_names, read_fit_file
from exopk.inference.preparation import prepare
from exopk.inference.result import hash_of
from exopk.inference.samplers import NUTS_MIN_WARMUP

__all__ = ["Task", "plan"]


@dataclass(frozen=True)
class Task:
    """One fit of a batch.

    Attributes
    ----------
    id : str
        Unique in the batch; names its files (letters, digits, ``.``, ``_`` and ``-``).
    spec : dict
        What the worker runs (JSON-serialisable): ``kind`` (``"fit"`` or ``"simulate"``), the
        fit file's path and text with the settings, the input hashes and the kind's settings.
    columns : dict
        The task's settings as shown in the summary table (seed, grid values, replicate).
    """

    id: str
    spec: dict
    columns: dict

    @property
    def sha256(self) -> str:
        """SHA-256 of the canonical JSON of :attr:`spec`."""
        return hashlib.sha256(json.dumps(self.spec, sort_keys=True).encode()).hexdigest()


def _file_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


class _Preparer:
    """Prepared fit files, once per text without sampler settings and seed."""

    def __init__(self, spec: BatchSpec):
        self.spec = spec
        self.cache = {}

    def __call__(self, fit_file, settings: dict, label: str):
        """The fit file with ``settings``, its preparation (None for event-data fits) and the
        hashes of its inputs."""
        try:
            task_file = with_settings(fit_file, settings, label=label)
            if task_file.data is not None:
                events = task_file.resolve(task_file.data.events)
                return task_file, None, {"events_sha256": hash_of(events.read_bytes())
                                         if events.is_file() else None}
            key = (task_file.path, _without_sampler(task_file.text))
            if key not in self.cache:
                prepared = prepare(task_file)
                model_file = prepared.model.source_file
                self.cache[key] = prepared, {
                    "model_sha256": hash_of(Path(model_file).read_bytes()) if model_file
                    else None,
                    "evidence_sha256": hash_of(*(str(o) for o in prepared.observations))}
        except ModelFileError as exc:
            setting = setting_of(exc)
            if setting is None or not _sets(settings, setting):
                raise
            varied = any(setting == name for name, _ in self.spec.grid)
            raise ModelFileError(f"{label}: setting '{setting}': {exc.reason}",
                                 file=self.spec.path, key=f"{'grid' if varied else 'settings'}."
                                 f"{setting}") from None
        prepared, hashes = self.cache[key]
        return task_file, prepared, hashes


def _sets(settings: dict, setting: str) -> bool:
    """Whether batch ``settings`` set ``setting`` (``"priors.NAME"`` for a prior)."""
    if setting.startswith("priors."):
        return setting.removeprefix("priors.") in settings.get("priors", {})
    return setting in settings


def _without_sampler(text: str) -> str:
    """A fit file's text less its ``[sampler]`` table and seed (what preparation ignores)."""
    import tomllib
    tables = tomllib.loads(text)
    tables.pop("sampler", None)
    tables.get("fit", {}).pop("seed", None)
    return json.dumps(tables, sort_keys=True, default=str)


def plan(spec: BatchSpec) -> list[Task]:
    """Every task of a batch, checked.

    Raises
    ------
    ModelFileError
        A fit file is invalid, with or without a task's settings (the message names the task
        and the setting), two fit files have the same name, or the ``[simulate]`` table does
        not fit the fit file (true values, ``thin_to``).
    """
    preparer = _Preparer(spec)
    if spec.simulate is not None:
        return _simulated(spec, preparer)
    tasks, seen = [], {}
    points = spec.combinations()
    width = len(str(len(points) - 1))
    for path in spec.fits:
        fit_file = read_fit_file(path)
        if fit_file.name in seen:
            raise ModelFileError(f"fit files {seen[fit_file.name]} and {path} have the same name "
                                 f"'{fit_file.name}'; task results are named after it",
                                 file=spec.path, key="batch.fits")
        seen[fit_file.name] = path
        if fit_file.data is not None and fit_file.data.fit == "individual":
            raise ModelFileError(f"{path} fits every individual separately (data.fit = "
                                 "\"individual\"), which gives a table, not one fit result; "
                                 "run it with exopk fit", file=spec.path, key="batch.fits")
        for k, settings in enumerate(points):
            task_id = _file_id(fit_file.name if not spec.grid else f"{fit_file.name}-{k:0{width}d}")
            task_file, _, hashes = preparer(fit_file, settings, f"task {task_id}")
            columns = {"fit": fit_file.name, **{
                name: (settings["priors"][name.removeprefix("priors.")]
                       if name.startswith("priors.") else settings[name])
                for name, _ in spec.grid}}
            tasks.append(Task(task_id, {
                "kind": "fit", "fit_file": task_file.path, "fit_file_text": task_file.text,
                "method": settings.get("method"), **hashes}, columns))
    return tasks


def _simulated(spec: BatchSpec, preparer: _Preparer) -> list[Task]:
    simulate = spec.simulate
    fit_file = read_fit_file(simulate.fit)
    if fit_file.data is not None:
        raise ModelFileError("simulated replicates need a fit file of evidence records, not of "
                             "an event table ([data])", file=spec.path, key="simulate.fit")
    settings = {k: v for k, v in spec.settings.items() if k != "chains"}
    task_file, prepared, hashes = preparer(fit_file, settings, "the replicates")
    sampler = task_file.sampler
    chains = spec.settings.get("chains", sampler.chains)
    if sampler.method != "nuts":
        raise ModelFileError(f"simulated replicates are fitted with NUTS; the fit file's sampler "
                             f"is '{sampler.method}' (set method = \"nuts\" in its [sampler] "
                             "table to calibrate it)", file=simulate.fit, key="sampler.method")
    if sampler.warmup < NUTS_MIN_WARMUP:
        raise ModelFileError(f"simulated replicates run NUTS, which needs at least "
                             f"{NUTS_MIN_WARMUP} warm-up iterations; got {sampler.warmup}",
                             file=spec.path, key="settings.warmup")
    if simulate.thin_to > chains * sampler.draws:
        raise ModelFileError(f"thin_to {simulate.thin_to} is more than the {chains} x "
                             f"{sampler.draws} posterior draws of a replicate",
                             file=spec.path, key="simulate.thin_to")
    truth = None if simulate.truth == TRUTH_FROM_PRIOR else \
        _checked_truth(simulate.truth, prepared.log_posterior, spec.path)
    seed = task_file.seed if simulate.seed is None else simulate.seed
    common = {"kind": "simulate", "fit_file": task_file.path, "fit_file_text": task_file.text,
              **hashes, "truth": truth, "chains": chains, "warmup": sampler.warmup,
              "draws": sampler.draws, "map_starts": sampler.map_starts,
              "max_tree_depth": sampler.max_tree_depth,
              "target_acceptance": sampler.target_acceptance, "metric": sampler.metric,
              "thin_to": simulate.thin_to, "level": simulate.level}
    if sampler.thin != 1:       # a key only when used: earlier batches keep their task hashes
        common["thin"] = sampler.thin
    width = max(len(str(simulate.replicates - 1)), 3)
    return [Task(_file_id(f"{task_file.name}-{i:0{width}d}"),
                 {**common, "replicate": i, "seed": s}, {"replicate": i, "seed": s})
            for i, s in enumerate(replicate_seeds(seed, simulate.replicates))]


def _checked_truth(truth: dict, lp, file) -> dict:
    """Given true values: every estimated parameter and ``tau``, inside their bounds, with
    positive finite predictions."""
    import numpy as np
    names = lp.natural_names()
    if names != lp.free + ["tau"]:
        raise ModelFileError("true values can be given for fits without random effects, "
                             "covariates or species scaling; use truth = \"prior\"", file=file,
                             key="simulate.truth")
    for name in truth:
        if name not in names:
            raise ModelFileError(f"'{name}' is not estimated by the fit{did_you_mean(name, names)}"
                                 f"; estimated: {known_names(names)}", file=file,
                                 key=f"simulate.truth.{name}")
    missing = [n for n in names if n not in truth]
    if missing:
        raise ModelFileError(f"no true value for {', '.join(missing)}", file=file,
                             key="simulate.truth")
    try:
        with np.errstate(all="ignore"):
            phi = lp.to_unconstrained(truth)
    except ValueError:        # the log of a value at or beyond its bound
        phi = np.full(len(names), np.nan)
    if not np.all(np.isfinite(phi)):
        raise ModelFileError("a true value lies outside its parameter's bounds (tau > 0)",
                             file=file, key="simulate.truth")
    from exopk.inference.simulated import simulate_observations
    try:
        simulate_observations(lp, phi, np.random.default_rng(0))
    except SimulationError as exc:
        raise ModelFileError(str(exc), file=file, key="simulate.truth") from None
    return truth
