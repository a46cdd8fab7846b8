"""The claim-check report: one self-contained HTML page from a fit (figures inline, no network).

For the pharmacokinetic claims made for exosome therapy the page states what the fitted evidence
supports: route metrics with 95% credible intervals, posterior beside prior
(:func:`~exopk.metrics.routes.compare_routes`), the fit's convergence and misfit checks, the
evidence records (proxies marked), and the experiment that would most reduce the uncertainty of
the brain exposure (:func:`~exopk.metrics.design.rank_experiments`). Claims outside
pharmacokinetics are listed as not estimable from these data.
"""

from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path

from exopk.io import write_atomically
from exopk.metrics.design import default_experiments, rank_experiments
from exopk.metrics.intervals import credible_interval
from exopk.metrics.plots import design_figure, routes_figure
from exopk.metrics.routes import compare_routes
from exopk.metrics.targeting import TUMOUR_DELIVERY_MEDIAN_PERCENT_ID
from exopk.inference.summary import fit_diagnostics

__all__ = ["NOT_ESTIMABLE", "write_report"]

NOT_ESTIMABLE = ("immune rejection or immunogenicity", "tumorigenicity",
                 "clinical efficacy (no effect or outcome data are modelled)")

_STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:3px 8px;
font-size:90%}th{background:#eee}.proxy{color:#b45f06;font-weight:bold}img{max-width:100%}"""


def _ci(values) -> str:
    ci = credible_interval(values)
    return f"{float(ci['median']):.3g} [{float(ci['low']):.3g}, {float(ci['high']):.3g}]"


def _image(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(Path(path).stem)}" src="data:image/png;base64,{data}">'


def _table(header, rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _claims(post, prior, routes, target):
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
    if "direct_share_target" in post:
        rows.append((f"{other.capitalize()} as a route to the brain",
                     "model's share of brain exposure via nose-to-brain transfers",
                     cell(post, "direct_share_target", other),
                     cell(prior, "direct_share_target", other),
                     "Exact superposition over [0, inf); what DTP% approximates."))
    return [[html.escape(str(c)) for c in row] for row in rows]


def write_report(draws, out, *, routes=("iv", "intranasal"), dose=100.0, horizon=1440.0,
                 target="brain_percent_id", blood="plasma_percent_id",
                 off_target=("liver_percent_id", "spleen_percent_id", "lung_percent_id"),
                 design_times=(60.0, 240.0, 1440.0), replicates=100, seed=0) -> Path:
    """Write the claim-check page for ``draws`` (:func:`~exopk.metrics.draws.load_draws`)."""
    model, tree = draws.model, draws.tree
    comparison = compare_routes(model, draws.posterior, draws.prior, routes, dose=dose,
                                horizon=horizon, target=target, blood=blood,
                                off_target=list(off_target))
    post, prior = comparison["posterior"].to_dataset(), comparison["prior"].to_dataset()
    metric = post["auc_target"].sel(route=routes[1], drop=True)
    ranking = rank_experiments(model, draws.posterior, metric,
                               default_experiments(model, design_times, dose=dose),
                               replicates=replicates, seed=seed)
    diagnostics = fit_diagnostics(tree)
    with tempfile.TemporaryDirectory() as folder:
        images = [_image(routes_figure(model, draws.posterior, draws.prior, routes, dose=dose,
                                       horizon=horizon, outputs=[target, blood],
                                       path=Path(folder) / "routes.png")),
                  _image(design_figure(ranking, f"expected reduction of the sd of log10 "
                                                f"{target} AUC after {routes[1]}",
                                       Path(folder) / "design.png"))]
    best = ranking.isel(experiment=0)
    observed = tree["observed_data"]
    evidence = [[html.escape(str(observed["study"].values[i])),
                 '<span class="proxy">PROXY (not EV)</span>' if observed["is_proxy"].values[i]
                 else "EV", html.escape(str(observed["quantity"].values[i])),
                 html.escape(str(observed["route"].values[i])),
                 html.escape(str(observed["citation"].values[i])[:160]),
                 "yes" if bool(diagnostics["outside_90"].values[i]) else "no"]
                for i in range(observed.sizes["observation"])]
    fit_checks = [["converged (R-hat <= 1.01, bulk ESS >= 400, no divergences)",
                   str(bool(diagnostics["converged"]))],
                  ["largest R-hat", f"{float(diagnostics['max_rhat']):.4f}"],
                  ["divergences", str(int(diagnostics["divergences"]))],
                  ["published values outside their 90% / 99% predictive intervals",
                   f"{int(diagnostics['n_outside_90'])} / {int(diagnostics['n_outside_99'])} "
                   f"(allowed by chance at 90%: {int(diagnostics['allowed_outside_90'])})"],
                  ["misfit flag", str(bool(diagnostics["misfit"]))],
                  ["power-scaling sensitivity", "not computed for this result"]]
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
{_table(["claim", "metric", "posterior", "prior", "note"], _claims(post, prior, routes, target))}
<h2 id="not-estimable">Not estimable from these data</h2>
<ul>{"".join(f"<li>{html.escape(c)}</li>" for c in NOT_ESTIMABLE)}</ul>
<h2 id="routes">Routes compared</h2>
{images[0]}
<h2 id="fit-checks">Fit checks</h2>
{_table(["check", "result"], fit_checks)}
<h2 id="evidence">Evidence records</h2>
{_table(["study", "kind", "quantity", "route", "citation", "outside 90% interval"], evidence)}
<h2 id="next-experiment">What to measure next</h2>
<p>Most informative candidate for the brain exposure after {html.escape(routes[1])}:
<b>{html.escape(str(best.experiment.values))}</b>, expected to reduce the posterior sd of log10
AUC by {100 * float(best.reduction):.0f}% (effective sample size {float(best.ess_mean):.0f}
{"; weights degenerate, a refit is needed to confirm" if bool(best.degenerate) else ""}).</p>
{images[1]}
<p>Generated by exopk from {html.escape(str(draws.fit_file))}.</p>
</body></html>
"""
    write_atomically(Path(out), lambda temporary: Path(temporary).write_text(page,
                                                                             encoding="utf-8"))
    return Path(out)
