"""Compare fit results by PSIS-LOO with ArviZ: ``exopk compare RESULT.nc RESULT.nc ...``.

:func:`compare_results` reads results written by :func:`exopk.fit` and returns ArviZ's
:func:`arviz.compare` table (expected log pointwise predictive density ``elpd_loo`` with its
standard error, effective number of parameters ``p_loo``, the difference to the best model
``elpd_diff`` with the standard error of the difference ``dse``, stacking ``weight`` and
ArviZ's ``warning`` flag), plus the number of observations whose Pareto k exceeds
:data:`PARETO_K_LIMIT` (there the importance-sampling estimate of that observation's
leave-one-out density is unreliable). Results can only be compared when they were fitted to the
same observations; anything else is refused, naming the files.

ArviZ is an optional dependency: ``pip install 'exopk[analysis]'``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from exopk.errors import ExopkError
from exopk.inference.result import load_fit

__all__ = ["compare_results", "format_comparison", "PARETO_K_LIMIT"]

PARETO_K_LIMIT = 0.7


def _arviz():
    try:
        import arviz
    except ImportError:
        raise ExopkError("comparing results needs ArviZ, an optional dependency: "
                         "pip install 'exopk[analysis]' (or pip install 'arviz>=0.20')") from None
    return arviz


def _read(path: Path):
    if not path.is_file():
        raise ExopkError(f"result file '{path}' not found")
    try:
        tree = load_fit(path)
    except (OSError, ValueError) as exc:
        raise ExopkError(f"'{path}' is not a fit result (NetCDF): {exc}") from None
    if "log_likelihood" not in tree.children or "observed_data" not in tree.children:
        raise ExopkError(f"'{path}' has no log_likelihood/observed_data group: not a result "
                         "written by exopk fit")
    return tree


def compare_results(paths, names=None):
    """The PSIS-LOO comparison of fit results.

    Parameters
    ----------
    paths : sequence of path
        At least two results of :func:`exopk.fit`, fitted to the same observations.
    names : sequence of str, optional
        Row names (default: the file names without ``.nc``).

    Returns
    -------
    pandas.DataFrame
        :func:`arviz.compare` (``ic="loo"``, ``method="stacking"``), best model first, with the
        column ``n_pareto_k_high``.

    Raises
    ------
    ExopkError
        Fewer than two results, duplicate names, a file that is not a result, results fitted to
        different observations, or ArviZ not installed.
    """
    az = _arviz()
    paths = [Path(p) for p in paths]
    names = list(names) if names is not None else [p.stem for p in paths]
    if len(paths) < 2:
        raise ExopkError("compare needs at least two result files")
    if len(set(names)) != len(names):
        raise ExopkError(f"result names must differ, got {', '.join(names)} (rename the files)")
    trees = [_read(p) for p in paths]
    def observed(tree):
        return [tree["observed_data"][name].values for name in ("value", "upper")]

    reference = observed(trees[0])
    for path, tree in zip(paths[1:], trees[1:]):
        if not all(a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
                   for a, b in zip(observed(tree), reference)):
            raise ExopkError(f"'{path}' was fitted to other observations than '{paths[0]}': "
                             "PSIS-LOO compares models on the same data only")
    data = {name: az.from_datatree(tree) for name, tree in zip(names, trees)}
    table = az.compare(data, ic="loo", method="stacking")
    high = {name: int((az.loo(d, pointwise=True).pareto_k.values > PARETO_K_LIMIT).sum())
            for name, d in data.items()}
    return table.assign(n_pareto_k_high=[high[name] for name in table.index])


def format_comparison(table) -> str:
    """The table ``exopk compare`` prints."""
    lines = [f"{'model':<28} {'rank':>4} {'elpd_loo':>9} {'se':>7} {'p_loo':>7} "
             f"{'elpd_diff':>9} {'dse':>7} {'weight':>7} {'k>' + str(PARETO_K_LIMIT):>6}"]
    for name, row in table.iterrows():
        lines.append(f"{name:<28} {int(row['rank']):>4} {row['elpd_loo']:>9.2f} {row['se']:>7.2f} "
                     f"{row['p_loo']:>7.2f} {row['elpd_diff']:>9.2f} {row['dse']:>7.2f} "
                     f"{row['weight']:>7.3f} {int(row['n_pareto_k_high']):>6}")
    flagged = [name for name, row in table.iterrows() if row["n_pareto_k_high"] > 0]
    if flagged:
        lines.append(f"WARNING: Pareto k > {PARETO_K_LIMIT} for some observations of "
                     f"{', '.join(flagged)}: their leave-one-out estimates are unreliable, so "
                     "elpd_loo and its differences are approximate")
    return "\n".join(lines)
