"""Compare fitted MPS structures on the same evidence: PSIS-LOO, predictive checks, PK summaries.

Reads result files written by ``exopk fit`` (ArviZ layout) for fits of the same observations
(for example ``fits/mouse_iv_mps.toml`` and ``fits/comparison/*.toml``) and prints, per result:

* **LOO**: ``arviz.loo`` (PSIS-LOO elpd with its SE, effective number of parameters ``p_loo``,
  how many observations have Pareto k > 0.7) and ``arviz.compare`` (elpd differences to the best
  model with their SE, stacking weights);
* **PPC**: how many observations fall inside the central 90% interval of their posterior
  predictive draws (``posterior_predictive/y``, observation noise and between-study dispersion
  included) and which do not;
* **tau**: the between-study dispersion (posterior median and 90% interval);
* **PK summaries**: the posterior predictive medians (``posterior_predictive/mean``, no noise) of
  every circulation summary in the evidence (Vss, MRT, clearance, AUC, time to half), next to
  the observed value;
* **convergence**: max R-hat, min bulk ESS (``arviz.summary`` over the posterior) and
  divergences.

The results must hold the same observations (same ``observed_data`` values); the script stops
with a message naming the first result that does not.

Usage::

    python benchmarks/mps_comparison.py NAME=RESULT.nc NAME=RESULT.nc ... [--json OUT.json]

The last line printed with ``--json -`` is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np


def _load(path: Path):
    import arviz as az
    return az.from_netcdf(path)


def _observations(data) -> list[dict]:
    od = data.observed_data
    return [{"study": str(od.study.values[i]), "kind": str(od.kind.values[i]),
             "output": str(od.output.values[i]), "condition": str(od.condition.values[i]),
             "observed": float(od.value.values[i])} for i in range(od.sizes["observation"])]


def _key(o: dict) -> str:
    """Short label of an observation: study and summary kind, or study and output for values."""
    return f"{o['study']}:{o['output'] if o['kind'] == 'value' else o['kind']}"


def _ppc(data, observations: list[dict], level: float = 0.9) -> tuple[int, list[str]]:
    y = data.posterior_predictive["y"].stack(sample=("chain", "draw")).transpose("observation", ...)
    lower = np.quantile(y.values, (1 - level) / 2, axis=1)
    upper = np.quantile(y.values, (1 + level) / 2, axis=1)
    outside = [_key(o) for o, lo, hi in zip(observations, lower, upper)
               if not lo <= o["observed"] <= hi]
    return len(observations) - len(outside), outside


def _quantiles(values, qs=(0.05, 0.5, 0.95)) -> list[float]:
    return [float(v) for v in np.quantile(np.asarray(values).ravel(), qs)]


def summarise(name: str, data) -> dict:
    """One result's LOO, PPC, tau, circulation summaries and convergence."""
    import arviz as az
    observations = _observations(data)
    loo = az.loo(data, pointwise=True)
    inside, outside = _ppc(data, observations)
    summary = az.summary(data, kind="diagnostics", round_to="none")
    diverging = int(data.sample_stats["diverging"].sum())
    mean = data.posterior_predictive["mean"]
    circulation = {}
    for i, o in enumerate(observations):
        if o["output"].endswith("concentration"):
            key = _key(o)
            circulation[key] = {"observed": o["observed"],
                                "predicted_q5_q50_q95": _quantiles(mean.isel(observation=i))}
    return {"name": name, "elpd_loo": float(loo.elpd_loo), "se": float(loo.se),
            "p_loo": float(loo.p_loo), "pareto_k_above_0.7": int((loo.pareto_k > 0.7).sum()),
            "pareto_k": {_key(o): round(float(k), 2)
                         for o, k in zip(observations, loo.pareto_k.values)},
            "ppc_inside_90": inside, "n_observations": len(observations), "ppc_outside": outside,
            "tau_q5_q50_q95": _quantiles(data.posterior["tau"]), "circulation": circulation,
            "max_rhat": float(summary["r_hat"].max()), "min_ess_bulk": float(summary["ess_bulk"].min()),
            "divergences": diverging,
            "n_parameters": len(data.posterior.data_vars)}


def _check_same_observations(datasets: dict) -> None:
    names = list(datasets)
    reference = datasets[names[0]].observed_data.value.values
    for name in names[1:]:
        values = datasets[name].observed_data.value.values
        if values.shape != reference.shape or not np.allclose(values, reference):
            sys.exit(f"error: result '{name}' does not hold the observations of '{names[0]}'; "
                     "LOO can only compare fits of the same data")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", metavar="NAME=RESULT.nc")
    parser.add_argument("--json", metavar="OUT", help="also write the numbers as JSON ('-': stdout)")
    args = parser.parse_args(argv)
    import arviz as az
    datasets = {}
    for item in args.results:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            sys.exit(f"error: expected NAME=RESULT.nc, got '{item}'")
        if not Path(path).is_file():
            sys.exit(f"error: result file '{path}' (for '{name}') not found")
        datasets[name] = _load(Path(path))
    _check_same_observations(datasets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = [summarise(name, data) for name, data in datasets.items()]
        table = az.compare(datasets, ic="loo", method="stacking")

    print("PSIS-LOO (arviz.compare, stacking weights)")
    print(table[["rank", "elpd_loo", "p_loo", "elpd_diff", "weight", "se", "dse", "warning"]]
          .to_string(float_format=lambda v: f"{v:.2f}"))
    print()
    header = (f"{'model':<22}{'k>0.7':>6}{'PPC 90%':>9}{'tau q50 [q5, q95]':>24}"
              f"{'max Rhat':>10}{'min ESS':>9}{'div':>5}")
    print(header)
    for r in rows:
        tau = r["tau_q5_q50_q95"]
        print(f"{r['name']:<22}{r['pareto_k_above_0.7']:>6}"
              f"{r['ppc_inside_90']:>5}/{r['n_observations']:<3}"
              f"{tau[1]:>10.2f} [{tau[0]:.2f}, {tau[2]:.2f}]"
              f"{r['max_rhat']:>10.3f}{r['min_ess_bulk']:>9.0f}{r['divergences']:>5}")
    print()
    print("circulation summaries: observed, posterior predictive median [q5, q95] (no noise)")
    for key in rows[0]["circulation"]:
        print(f"  {key} (observed {rows[0]['circulation'][key]['observed']:.4g})")
        for r in rows:
            q = r["circulation"][key]["predicted_q5_q50_q95"]
            print(f"    {r['name']:<22}{q[1]:>10.4g} [{q[0]:.4g}, {q[2]:.4g}]")
    print()
    for r in rows:
        print(f"outside 90% PPC, {r['name']}: {', '.join(r['ppc_outside']) or 'none'}")
        high = [f"{key} ({k:.2f})" for key, k in r["pareto_k"].items() if k > 0.7]
        print(f"Pareto k > 0.7, {r['name']}: {', '.join(high) or 'none'}")
    if args.json:
        table_json = {name: {k: (float(v) if isinstance(v, (int, float, np.floating)) else str(v))
                             for k, v in row.items()} for name, row in table.iterrows()}
        text = json.dumps({"results": rows, "compare": table_json})
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
