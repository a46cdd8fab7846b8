"""The claim-check report: one self-contained HTML page from a fit (figures inline, no network).

For the pharmacokinetic claims made for exosome therapy the page states what the fitted evidence
supports: route metrics with 95% credible intervals, posterior beside prior
(:func:`~exopk.metrics.routes.compare_routes`, and a figure of both), the fit's convergence and
misfit checks, the power-scaling verdict of each parameter, the model's plausibility bounds, the
evidence records (proxies marked) with how far each moves the headline metrics when left out
(:func:`~exopk.metrics.intervals.leave_one_out_shift`), and the experiment that would most reduce
the uncertainty of DTE% (:func:`~exopk.metrics.design.rank_experiments`). Claims outside
pharmacokinetics are listed as not estimable from these data.
"""

from __future__ import annotations

import base64
import contextlib
import html
import tempfile
from pathlib import Path

import numpy as np

from exopk.inference.plausibility import plausibility_report
from exopk._version import __version__ as exopk_version
from exopk.io import write_atomically
from exopk.dosing import Regimen
from exopk.metrics.design import default_experiments, rank_experiments
from exopk.metrics.exposure import peak
from exopk.metrics.draws import thin_draws
from exopk.metrics.intervals import credible_interval, leave_one_out_shift
from exopk.metrics.plots import design_figure, prior_posterior_figure, routes_figure
from exopk.metrics.routes import compare_routes
from exopk.metrics.targeting import TUMOUR_DELIVERY_MEDIAN_PERCENT_ID
from exopk.inference.summary import fit_diagnostics

__all__ = ["NOT_ESTIMABLE", "headline_metrics", "report_figure_paths", "write_report"]

NOT_ESTIMABLE = ("immune rejection or immunogenicity", "tumorigenicity",
                 "clinical efficacy (no effect or outcome data are modelled)")

_STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
line-height:1.4}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;
padding:3px 8px;font-size:90%;vertical-align:top}th{background:#eee;text-align:left}
.proxy{color:#b45f06;font-weight:bold}.bad{color:#b00;font-weight:bold}img{max-width:100%}
.num{white-space:nowrap}"""


def _ci(values) -> str:
    ci = credible_interval(values)
    return f"{float(ci['median']):.3g} [{float(ci['low']):.3g}, {float(ci['high']):.3g}]"


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _shorten(text: str, characters: int = 120) -> str:
    """``text`` cut at a word boundary to at most ``characters``, marked with an ellipsis."""
    if len(text) <= characters:
        return text
    return text[:characters].rsplit(" ", 1)[0] + " …"


def _breakable(text: str) -> str:
    """``text`` escaped, with line-break opportunities after ``_`` and ``:`` (long names)."""
    return html.escape(text).replace("_", "_<wbr>").replace(":", ":<wbr>")


def _table(header, rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _claims(post, prior, routes, target, parenchyma=None):
    iv, other = routes
    def cell(ds, metric, route):
        return _ci(ds[metric].sel(route=route))
    p = post["p_beats_reference_auc_target"].sel(route=other)
    rows = [
        ("Crosses biological barriers: reaches the brain after IV",
         f"peak {target} after {iv} (%ID)", cell(post, "de_max_target", iv),
         cell(prior, "de_max_target", iv),
         "Context: median nanoparticle delivery to solid tumours "
         f"{TUMOUR_DELIVERY_MEDIAN_PERCENT_ID} %ID (Wilhelm et al. 2016, Nat Rev Mater 1:16014)."),
        ("Crosses biological barriers: brain exposure per blood exposure",
         f"Kp = AUC {target} / AUC blood after {iv}", cell(post, "kp_target", iv),
         cell(prior, "kp_target", iv), "Ratio of exact AUCs over the horizon."),
        ("Targeted delivery", f"targeting index after {iv} (target AUC / liver+spleen+lung AUC)",
         cell(post, "targeting_index", iv), cell(prior, "targeting_index", iv),
         "Damaged tissue is not a compartment of the model: targeting to damaged tissue "
         "is not estimable from these data; this is the brain against the MPS organs."),
        (f"{other.capitalize()} as a route to the brain", f"DTE% ({other} vs {iv})",
         cell(post, "dte_percent", other), cell(prior, "dte_percent", other),
         f"P({other} gives more brain AUC than {iv}) = {float(p):.2f} (posterior), "
         f"{float(prior['p_beats_reference_auc_target'].sel(route=other)):.2f} (prior)."),
        (f"{other.capitalize()} as a route to the brain", f"DTP% ({other} vs {iv})",
         cell(post, "dtp_percent", other), cell(prior, "dtp_percent", other),
         "DTP% assumes the systemic share of the dose reaches the brain as an IV dose does."),
    ]
    if parenchyma is not None:
        rows.insert(1, ("Crosses the blood-brain barrier: reaches the brain tissue after IV",
                        f"peak {parenchyma[0]} after {iv} (%ID; vesicles beyond the vascular "
                        "space)", _ci(parenchyma[1]), _ci(parenchyma[2]),
                        "The brain %ID above includes vesicles in the brain's blood; this is "
                        "the parenchyma alone, over the same horizon."))
    if "direct_share_target" in post:
        rows.append((f"{other.capitalize()} as a route to the brain",
                     "model's share of brain exposure via nose-to-brain transfers",
                     cell(post, "direct_share_target", other),
                     cell(prior, "direct_share_target", other),
                     "Exact superposition over [0, inf); what DTP% approximates."))
    return [[html.escape(str(c)) for c in row] for row in rows]


def _influence(tree, max_draws, metrics):
    """Per record and metric: the shift of the posterior mean of log10(metric) when the record
    is left out (in posterior sd), flagged where the weights' ESS is below 30."""
    group = thin_draws(tree["log_likelihood"].to_dataset(), max_draws)
    log_likelihood = group[next(iter(group.data_vars))].transpose("chain", "draw", "observation")
    per_draw = log_likelihood.values.reshape(-1, log_likelihood.sizes["observation"])
    columns = []
    for values in metrics:
        flat = np.asarray(values.transpose("chain", "draw").values, dtype=float).ravel()
        flat = np.log10(flat) if np.all(flat > 0) else flat
        shift, ess = leave_one_out_shift(flat, per_draw)
        columns.append([f"{s:+.2f}" + (f"<br><small>ESS {e:.0f}: rough</small>" if e < 30
                                       else "") for s, e in zip(shift, ess)])
    return list(zip(*columns))


def _sensitivity_rows(diagnostics):
    """Power-scaling verdict per parameter (most informed first)."""
    if "sensitivity_verdict" not in diagnostics:
        return []
    order = np.argsort(diagnostics["shrinkage"].values)
    rows = []
    for i in order:
        p = diagnostics.isel(parameter=int(i))
        verdict = str(p["sensitivity_verdict"].values)
        rows.append([html.escape(str(p["parameter"].values)),
                     f'<span class="bad">{verdict}</span>' if verdict == "prior-data conflict"
                     else html.escape(verdict),
                     f"{float(p['prior_sensitivity']):.3f}",
                     f"{float(p['likelihood_sensitivity']):.3f}",
                     f"{float(p['shrinkage']):.2f}"])
    return rows


def headline_metrics(post, prior, routes) -> dict:
    """``name -> (prior values, posterior values, unit)`` of the headline route metrics of a
    :func:`~exopk.metrics.routes.compare_routes` result, for
    :func:`exopk.metrics.plots.prior_posterior_figure`."""
    reference, other = routes
    metrics = {}
    for metric, route in (("auc_target", reference), ("auc_target", other),
                          ("kp_target", reference), ("de_max_target", reference),
                          ("dte_percent", other), ("dtp_percent", other)):
        relative = metric in ("dte_percent", "dtp_percent")
        metrics[f"{metric} ({route}{' vs ' + reference if relative else ''})"] = (
            prior[metric].sel(route=route).values, post[metric].sel(route=route).values,
            str(post[metric].attrs.get("units", "")))
    return metrics


def report_figure_paths(folder: str | Path, name: str) -> dict[str, Path]:
    """Where :func:`write_report` keeps the figures of fit ``name`` in ``folder``: the routes,
    the experiment ranking and prior against posterior (``NAME_routes.png``, ``NAME_design.png``
    and ``NAME_prior_vs_posterior.png``)."""
    return {figure: Path(folder) / f"{name}_{figure}.png"
            for figure in ("routes", "design", "prior_vs_posterior")}


def write_report(draws, out, *, routes=("iv", "intranasal"), dose=100.0, horizon=1440.0,
                 target="brain_percent_id", blood="plasma_percent_id",
                 off_target=("liver_percent_id", "spleen_percent_id", "lung_percent_id"),
                 design_times=(60.0, 240.0, 1440.0), replicates=100, seed=0,
                 figures_folder: str | Path | None = None) -> Path:
    """Write the claim-check page for ``draws`` (:func:`~exopk.metrics.draws.load_draws`).

    Parameters
    ----------
    draws : FitDraws
    out : path
        The HTML file.
    routes : (str, str)
        Reference route and the route compared with it.
    dose, horizon : float
        One bolus per route (model amount unit) and the AUC horizon (model time unit).
    target, blood, off_target : str, str, sequence of str
        Outputs of the route metrics.
    design_times, replicates, seed
        Candidate times of the next experiment, simulated data sets per candidate, their seed.
    figures_folder : path, optional
        Keep the page's figures there (named by :func:`report_figure_paths`), besides
        embedding them. Default: drawn in a temporary folder and only embedded.

    Returns
    -------
    Path
        The page.
    """
    model, tree = draws.model, draws.tree
    comparison = compare_routes(model, draws.posterior, draws.prior, routes, dose=dose,
                                horizon=horizon, target=target, blood=blood,
                                off_target=list(off_target))
    post, prior = comparison["posterior"].to_dataset(), comparison["prior"].to_dataset()
    dte = post["dte_percent"].sel(route=routes[1], drop=True)
    ranking = rank_experiments(model, draws.posterior, dte,
                               default_experiments(model, design_times, dose=dose),
                               replicates=replicates, seed=seed)
    diagnostics = fit_diagnostics(tree)
    parenchyma = None
    tissue = target.replace("_percent_id", "_parenchyma_percent_id")
    if tissue != target and tissue in model.output_names:
        parenchyma = (tissue, *(peak(model, sets, Regimen.bolus(routes[0], dose), horizon,
                                     tissue)["max"].isel(output=0)
                                for sets in (draws.posterior, draws.prior)))
    with contextlib.ExitStack() as stack:
        folder = Path(figures_folder) if figures_folder is not None else \
            Path(stack.enter_context(tempfile.TemporaryDirectory()))
        paths = report_figure_paths(folder, draws.name)
        images = [_image(routes_figure(model, draws.posterior, draws.prior, routes, dose=dose,
                                       horizon=horizon, outputs=[target, blood],
                                       path=paths["routes"]), "routes"),
                  _image(design_figure(ranking, f"{draws.name}: expected reduction of the "
                                                f"posterior sd of log10 DTE% ({routes[1]} vs "
                                                f"{routes[0]})", paths["design"]), "design"),
                  _image(prior_posterior_figure(tree, headline_metrics(post, prior, routes),
                                                paths["prior_vs_posterior"]),
                         "prior_posterior")]
    best = ranking.isel(experiment=0)
    observed = tree["observed_data"]
    influence = _influence(tree, draws.max_draws,
                           [dte, post["auc_target"].sel(route=routes[0], drop=True)])
    evidence = [[_breakable(str(observed["study"].values[i])),
                 '<span class="proxy">PROXY</span>' if observed["is_proxy"].values[i]
                 else "EV", _breakable(str(observed["quantity"].values[i])),
                 f'<span class="num">{float(observed["value"].values[i]):.3g} '
                 f'{html.escape(str(observed["unit_canonical"].values[i]))}</span>',
                 html.escape(str(observed["route"].values[i])),
                 html.escape(_shorten(str(observed["citation"].values[i]))),
                 "yes" if bool(diagnostics["outside_90"].values[i]) else "no",
                 *influence[i]]
                for i in range(observed.sizes["observation"])]
    verdicts = {}
    if "sensitivity_verdict" in diagnostics:
        for v in diagnostics["sensitivity_verdict"].values:
            verdicts[str(v)] = verdicts.get(str(v), 0) + 1
    plausibility = (plausibility_report(tree["plausibility"].to_dataset())
                    if "plausibility" in tree.children else [])
    fit_checks = [["converged (R-hat <= 1.01, bulk ESS >= 400, no divergences)",
                   str(bool(diagnostics["converged"]))],
                  ["largest R-hat", f"{float(diagnostics['max_rhat']):.4f}"],
                  ["divergences", str(int(diagnostics["divergences"]))],
                  ["published values outside their 90% / 99% predictive intervals",
                   f"{int(diagnostics['n_outside_90'])} / {int(diagnostics['n_outside_99'])} "
                   f"(allowed by chance at 90%: {int(diagnostics['allowed_outside_90'])})"],
                  ["misfit flag", str(bool(diagnostics["misfit"]))],
                  ["power-scaling verdicts (parameters)",
                   html.escape(", ".join(f"{n} {v}" for v, n in verdicts.items())
                               or "not computed for this result")],
                  ["plausibility bounds of the model",
                   "<br>".join(html.escape(line) for line in plausibility)
                   or "the model declares none"]]
    name = html.escape(draws.name)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>exopk claim check: {name}</title>
<style>{_STYLE}</style></head><body>
<h1>Claim check: {name} ({html.escape(model.name)})</h1>
<p>One bolus of {dose:g} {html.escape(model.amount_unit)} per route, horizon {horizon:g}
{html.escape(model.time_unit)}. Medians and 95% credible intervals over
{post.sizes['chain'] * post.sizes['draw']} posterior and {prior.sizes['chain'] *
prior.sizes['draw']} prior draws: where the two columns agree, the data added little.</p>
<h2 id="claims">Pharmacokinetic claims</h2>
{_table(["claim", "metric", "posterior", "prior", "note"],
        _claims(post, prior, routes, target, parenchyma))}
<h2 id="not-estimable">Not estimable from these data</h2>
<ul>{"".join(f"<li>{html.escape(c)}</li>" for c in NOT_ESTIMABLE)}</ul>
<h2 id="routes">Routes compared</h2>
{images[0]}
<h2 id="prior-posterior">Prior and posterior</h2>
<p>Grey: prior draws; blue: posterior draws. Where the two agree, the evidence says little.</p>
{images[2]}
<h2 id="fit-checks">Fit checks</h2>
{_table(["check", "result"], fit_checks)}
<h2 id="sensitivity">Power-scaling sensitivity</h2>
<p>Prior and likelihood power-scaling sensitivity of each parameter (Kallioinen et al. 2023,
Stat Comput 34:57; threshold 0.05), most informed parameter first (posterior sd / prior sd).</p>
{_table(["parameter", "verdict", "prior sensitivity", "likelihood sensitivity",
         "posterior sd / prior sd"], _sensitivity_rows(diagnostics))}
<h2 id="evidence">Evidence records</h2>
<p>The last two columns say which records drove the headline numbers: how far the posterior mean
of log10 DTE% ({html.escape(routes[1])} vs {html.escape(routes[0])}) and of log10 brain AUC after
{html.escape(routes[0])} would move, in posterior sd, if the record were left out (importance
reweighting of the draws).</p>
{_table(["study", "EV or PROXY (not EV)", "quantity", "published", "route", "citation",
         "outside 90% interval",
         "leave-out shift: DTE%", f"leave-out shift: AUC {target} ({routes[0]})"], evidence)}
<h2 id="next-experiment">What to measure next</h2>
<p>Most informative candidate for DTE% ({html.escape(routes[1])} vs {html.escape(routes[0])}):
<b>{html.escape(str(best.experiment.values))}</b> (time in {html.escape(model.time_unit)}),
expected to reduce the posterior sd of log10 DTE% by {100 * float(best.reduction):.0f}%
(effective sample size {float(best.ess_mean):.0f}{
"; weights degenerate, a refit is needed to confirm" if bool(best.degenerate) else ""}).</p>
{images[1]}
<p>Generated by exopk {html.escape(exopk_version)} from {html.escape(draws.fit_file.name)}.</p>
</body></html>
"""
    write_atomically(Path(out), lambda temporary: Path(temporary).write_text(page,
                                                                             encoding="utf-8"))
    return Path(out)
