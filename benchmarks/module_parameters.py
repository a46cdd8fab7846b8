"""What the data say about a model module's parameters: a Markdown table from fit results.

For every posterior parameter of the given results that the base model file does not have
(for ``m4_brain`` on ``m2_mps_sinusoidal``: the brain parameters; for ``m5_intranasal``: the
brain and nasal ones; plus any covariate offsets), prints the posterior median and 90% interval,
posterior sd / prior sd on the sampling coordinate (``shrinkage``, recomputed by
``exopk.inference.summary.summarize``; 1: the data said nothing) and the power-scaling verdict
(``sensitivity_verdict``). Used for the README's table of the shipped brain fits.

Usage::

    python benchmarks/module_parameters.py models/m2_mps_sinusoidal.toml \\
        fits/mouse_brain.nc fits/iv_vs_intranasal.nc
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import exopk
from exopk.inference.summary import summarize


def rows(base_names: set[str], path: str) -> list[str]:
    """Table rows of the parameters of one result that the base model does not have."""
    diagnostics = summarize(exopk.load_fit(path))
    out = []
    for name in diagnostics["parameter"].values:
        if name in base_names or name == "tau":
            continue
        d = diagnostics.sel(parameter=name)
        unit = str(d["unit"].values) if "unit" in d.coords else ""
        out.append(f"| `{Path(path).stem}` | `{name}` | {float(d['q50']):.3g} "
                   f"[{float(d['q5']):.3g}, {float(d['q95']):.3g}] {unit} | "
                   f"{float(d['shrinkage']):.2f} | {str(d['sensitivity_verdict'].values)} |")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_model", help="model file whose parameters are left out")
    parser.add_argument("results", nargs="+", help="result files (.nc)")
    args = parser.parse_args(argv)
    base = set(exopk.load_model(args.base_model).parameter_names)
    print("| result | parameter | posterior median [90%] | posterior sd / prior sd | "
          "power-scaling verdict |")
    print("|---|---|---|---|---|")
    for path in args.results:
        print("\n".join(rows(base, path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
