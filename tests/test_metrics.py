"""Decision metrics against closed forms and a published worked table."""

import csv
import itertools
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import exopk
from exopk.inference.fit import fit
import exopk.data
from exopk.errors import ExopkError
from exopk.metrics import (auc, credible_interval, direct_transport_percentage,
                           drug_targeting_efficiency, influx_constant, output_at, pathway_share,
                           peak, probability_greater, targeting_index)


def sets_of(names, rows):
    """Parameter sets with dims (chain=1, draw, parameter)."""
    return xr.DataArray(np.asarray(rows, dtype=float)[None], dims=("chain", "draw", "parameter"),
                        coords={"parameter": names})


ONE = exopk.load_model(exopk.model_path("m0_one_compartment"))
TWO = exopk.load_model(exopk.model_path("m1_two_compartment"))
ONE_SETS = sets_of(["CL", "V_plasma", "secretion_rate"], [[0.5, 1.0, 0.0], [0.2, 2.0, 0.0]])
TWO_SETS = sets_of(["CL", "V_plasma", "Q", "V_peripheral"], [[0.2, 1.0, 0.05, 2.0],
                                                              [0.6, 0.8, 0.3, 1.5]])


def two_compartment_modes(CL, V1, Q, V2):
    """alpha, beta and the plasma and peripheral amounts' modal weights per unit bolus."""
    k10, k12, k21 = CL / V1, Q / V1, Q / V2
    s, p = k10 + k12 + k21, k10 * k21
    alpha, beta = (s + np.sqrt(s * s - 4 * p)) / 2, (s - np.sqrt(s * s - 4 * p)) / 2
    plasma = ((alpha - k21) / (alpha - beta), (k21 - beta) / (alpha - beta))
    peripheral = (-k12 / (alpha - beta), k12 / (alpha - beta))
    return alpha, beta, plasma, peripheral


def test_auc_one_compartment_bolus_and_infusion_closed_form():
    horizons = [3.0, 10.0, 200.0]
    bolus = auc(ONE, ONE_SETS, exopk.Regimen.bolus("iv", 100), horizons, "plasma_percent_id")
    for d, (CL, V, _) in enumerate(ONE_SETS.values[0]):
        k = CL / V
        expected = 100 * (1 - np.exp(-k * np.array(horizons))) / k
        np.testing.assert_allclose(bolus.values[0, d, :, 0], expected, rtol=1e-12)
    assert bolus.dims == ("chain", "draw", "horizon", "output")
    assert str(bolus["unit"].values[0]) == "%ID*min"
    # a 4-min infusion of 100: amount x = R/k (1 - e^-kt) while infusing, then decays
    infusion = auc(ONE, ONE_SETS, exopk.Regimen.infusion("iv", 100, 4.0), [2.0, 10.0],
                   "plasma_percent_id")
    CL, V, _ = ONE_SETS.values[0, 0]
    k, R = CL / V, 25.0
    during = R / k * (2.0 - (1 - np.exp(-2 * k)) / k)
    end = R / k * (1 - np.exp(-4 * k))
    after = R / k * (4.0 - (1 - np.exp(-4 * k)) / k) + end * (1 - np.exp(-6 * k)) / k
    np.testing.assert_allclose(infusion.values[0, 0, :, 0], [during, after], rtol=1e-12)


def test_auc_of_percent_id_over_staggered_doses_is_per_total_dose():
    """Two boluses of 50 at 0 and 30 min: the area is 100/100 x the area under the amount, while
    the %ID curve itself is per the dose given so far (twice as high before the second dose)."""
    regimen = exopk.Regimen.bolus("iv", 50, time=0.0) + exopk.Regimen.bolus("iv", 50, time=30.0)
    horizon = 90.0
    area = auc(ONE, ONE_SETS, regimen, horizon, "plasma_percent_id")
    assert area.attrs["percent_of"] == "the regimen's total dose"
    for d, (CL, V, _) in enumerate(ONE_SETS.values[0]):
        k = CL / V
        amount_area = 50 * (1 - np.exp(-k * horizon)) / k \
            + 50 * (1 - np.exp(-k * (horizon - 30.0))) / k
        np.testing.assert_allclose(area.values[0, d, 0], amount_area, rtol=1e-12)
    before = output_at(ONE, ONE_SETS, regimen, [10.0], "plasma_percent_id").values[0, 0, 0, 0]
    CL, V, _ = ONE_SETS.values[0, 0]
    np.testing.assert_allclose(before, 100 * np.exp(-CL / V * 10.0), rtol=1e-12)


def test_auc_two_compartment_closed_form_and_sinks_have_none():
    horizon = 90.0
    area = auc(TWO, TWO_SETS, exopk.Regimen.bolus("iv", 100), horizon,
               ["plasma_percent_id", "peripheral_percent_id"])
    for d, row in enumerate(TWO_SETS.values[0]):
        alpha, beta, plasma, peripheral = two_compartment_modes(*row)
        integral = np.array([-(np.exp(-alpha * horizon) - 1) / alpha,
                             -(np.exp(-beta * horizon) - 1) / beta])
        np.testing.assert_allclose(area.values[0, d], [100 * np.dot(plasma, integral),
                                                       100 * np.dot(peripheral, integral)],
                                   rtol=1e-10)
    with_sink = auc(ONE, ONE_SETS, exopk.Regimen.bolus("iv", 100), 5.0, "eliminated_percent_id")
    assert np.isnan(with_sink.values).all()


def test_peak_time_of_peripheral_amount_closed_form():
    result = peak(TWO, TWO_SETS, exopk.Regimen.bolus("iv", 100), 200.0, "peripheral_percent_id")
    for d, row in enumerate(TWO_SETS.values[0]):
        alpha, beta, _, peripheral = two_compartment_modes(*row)
        t_max = np.log(alpha / beta) / (alpha - beta)
        assert abs(float(result.time_of_max[0, d, 0]) - t_max) <= result.attrs["time_resolution"]
        value = 100 * (peripheral[0] * np.exp(-alpha * t_max)
                       + peripheral[1] * np.exp(-beta * t_max))
        np.testing.assert_allclose(float(result["max"][0, d, 0]), value, rtol=1e-5)


def test_delivery_efficiency_at_times_is_percent_of_dose():
    values = output_at(ONE, ONE_SETS, exopk.Regimen.bolus("iv", 50), [0.0, 4.0],
                       "plasma_percent_id")
    np.testing.assert_allclose(values.values[0, :, :, 0],
                               [[100, 100 * np.exp(-2.0)], [100, 100 * np.exp(-0.4)]], rtol=1e-12)


def test_influx_constant_of_irreversible_uptake_is_its_clearance():
    # the sink 'eliminated' takes up plasma irreversibly with clearance CL: Patlak slope = CL
    ki = influx_constant(ONE, ONE_SETS, exopk.Regimen.bolus("iv", 100), "eliminated_percent_id",
                         "plasma_concentration", [1, 2, 5, 10, 30])
    np.testing.assert_allclose(ki["Ki"].values[0], ONE_SETS.sel(parameter="CL").values[0],
                               rtol=1e-10)
    np.testing.assert_allclose(ki["intercept"].values[0], 0.0, atol=1e-9)
    assert ki["Ki"].attrs["units"] == "(%ID)/(dose/mL)/min"


PATHWAYS = """
[model]
name = "pathways"
time_unit = "min"
amount_unit = "dose"
[compartments.depot]
kind = "depot"
[compartments.plasma]
kind = "plasma"
volume = "V"
[compartments.brain]
kind = "tissue"
[compartments.out]
kind = "sink"
[[transfers]]
from = "depot"
to = "brain"
rate = "k1"
[[transfers]]
from = "depot"
to = "plasma"
rate = "k2"
[[transfers]]
from = "plasma"
to = "brain"
rate = "k3"
[[transfers]]
from = "brain"
to = "out"
rate = "k4"
[[transfers]]
from = "plasma"
to = "out"
rate = "k5"
[routes.nose]
depot = "1"
[outputs.brain_percent_id]
kind = "percent_id"
compartments = ["brain"]
[parameters.V]
value = 1.0
fixed = true
[parameters.k1]
value = 0.01
fixed = true
[parameters.k2]
value = 0.1
fixed = true
[parameters.k3]
value = 0.02
fixed = true
[parameters.k4]
value = 0.05
fixed = true
[parameters.k5]
value = 0.3
fixed = true
"""


def test_pathway_share_closed_form(tmp_path):
    path = tmp_path / "pathways.toml"
    path.write_text(PATHWAYS)
    model = exopk.load_model(path)
    rows = [[1.0, 0.01, 0.1, 0.02, 0.05, 0.3], [1.0, 0.2, 0.05, 0.4, 0.01, 0.1]]
    sets = sets_of(["V", "k1", "k2", "k3", "k4", "k5"], rows)
    share = pathway_share(model, sets, "depot", "brain", ["brain"])
    for d, (_, k1, k2, k3, _, k5) in enumerate(rows):
        np.testing.assert_allclose(float(share[0, d]), k1 / (k1 + k2 * k3 / (k3 + k5)),
                                   rtol=1e-12)
    with pytest.raises(ExopkError, match="no transfer plasma -> depot|receives"):
        pathway_share(model, sets, "plasma", "brain", ["brain"])


def escitalopram_rows():
    with open(Path(exopk.data.__file__).parent / "proxies.csv", newline="") as handle:
        return [r for r in csv.DictReader(handle) if r["study_key"] == "pmc8675330_escitalopram"]


def rounding_interval(text):
    """Every value that prints as ``text`` (half a unit in the last printed digit either side)."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    half = 0.5 * 10.0 ** -decimals
    return float(text) - half, float(text) + half


@pytest.mark.parametrize("arm", ["free escitalopram", "borneol nanostructured lipid carrier"])
def test_dte_dtp_reproduce_the_published_table_within_rounding(arm):
    rows = escitalopram_rows()

    def value(route, matrix, quantity):
        pick = [r for r in rows if r["route"] == route and r["matrix"] == matrix
                and r["quantity"] == quantity and (route == "iv" or arm in r["ev_source"])
                and (route == "iv" or ("lipid" in r["ev_source"]) == ("lipid" in arm))]
        assert len(pick) == 1, (route, matrix, quantity)
        return pick[0]["value"]

    aucs = {(route, matrix): rounding_interval(value(route, matrix, "auc"))
            for route in ("iv", "in") for matrix in ("brain", "plasma")}
    corners = [dict(zip(aucs, c)) for c in itertools.product(*aucs.values())]
    args = [(c["in", "brain"], c["in", "plasma"], c["iv", "brain"], c["iv", "plasma"])
            for c in corners]
    for function, quantity in ((drug_targeting_efficiency, "other:dte"),
                               (direct_transport_percentage, "other:dtp")):
        # both are monotone in each AUC: the extremes over the rounding box are at its corners
        values = [function(*a) for a in args]
        printed = rounding_interval(value("in", "brain", quantity))
        assert min(values) <= printed[1] and printed[0] <= max(values), (quantity, printed,
                                                                         min(values), max(values))


def test_targeting_index_and_intervals():
    target = xr.DataArray([[2.0, 4.0]], dims=("chain", "draw"))
    off = xr.DataArray([[[1.0, 3.0], [4.0, 4.0]]], dims=("chain", "draw", "output"))
    np.testing.assert_allclose(targeting_index(target, off).values, [[0.5, 0.5]])
    np.testing.assert_allclose(targeting_index(target, off, reference=0.25).values, [[2.0, 2.0]])
    assert float(probability_greater(target, 3.0)) == 0.5
    with pytest.raises(ValueError, match="draw dimension"):
        credible_interval(xr.DataArray([1.0, 2.0], dims=("x",)))


def test_bad_inputs_are_named():
    with pytest.raises(ExopkError, match="no output 'nope'|no output nope"):
        auc(ONE, ONE_SETS, exopk.Regimen.bolus("iv", 1), 1.0, "nope")
    with pytest.raises(ExopkError, match="lack model parameter"):
        auc(ONE, ONE_SETS.sel(parameter=["CL"]), exopk.Regimen.bolus("iv", 1), 1.0)
    with pytest.raises(ExopkError, match="no route 'oral'"):
        auc(ONE, ONE_SETS, exopk.Regimen.bolus("oral", 1), 1.0)


def two_route_model(tmp_path):
    path = tmp_path / "two_routes.toml"
    path.write_text(PATHWAYS.replace("[routes.nose]", "[routes.iv]\nplasma = \"1\"\n[outputs."
                                     "plasma_percent_id]\nkind = \"percent_id\"\ncompartments = "
                                     "[\"plasma\"]\n[outputs.out_percent_id]\nkind = \"percent_id\""
                                     "\ncompartments = [\"out\"]\n[routes.nose]"))
    return exopk.load_model(path)


def test_compare_routes_closed_form_dte_and_dtp_equals_direct_share(tmp_path):
    from exopk.metrics.routes import compare_routes
    model = two_route_model(tmp_path)
    rows = [[1.0, 0.01, 0.1, 0.02, 0.05, 0.3], [1.0, 0.2, 0.05, 0.4, 0.01, 0.1]]
    sets = sets_of(["V", "k1", "k2", "k3", "k4", "k5"], rows)
    tree = compare_routes(model, sets, sets.isel(draw=[0]), ["iv", "nose"], dose=10.0,
                          horizon=1e4, target="brain_percent_id", blood="plasma_percent_id",
                          off_target=["plasma_percent_id"])
    post = tree["posterior"].to_dataset()
    for d, (_, k1, k2, k3, k4, k5) in enumerate(rows):
        brain_iv, blood_iv = 100 * k3 / (k3 + k5) / k4, 100 / (k3 + k5)
        f = k1 / (k1 + k2)
        blood_in = (1 - f) * blood_iv
        brain_in = 100 / k4 * (f + (1 - f) * k3 / (k3 + k5))
        dte = 100 * (brain_in / blood_in) / (brain_iv / blood_iv)
        np.testing.assert_allclose(post.auc_target.values[:, 0, d], [brain_iv, brain_in], rtol=1e-9)
        np.testing.assert_allclose(float(post.dte_percent.sel(route="nose")[0, d]), dte, rtol=1e-9)
        # no path returns brain vesicles to blood: DTP% is exactly the direct share
        np.testing.assert_allclose(float(post.dtp_percent.sel(route="nose")[0, d]),
                                   100 * float(post.direct_share_target.sel(route="nose")[0, d]),
                                   rtol=1e-9)
    assert float(post.p_beats_reference_kp_target.sel(route="nose")) == 1.0
    assert tree["prior"].sizes["draw"] == 1
    with pytest.raises(ExopkError, match="no route oral"):
        compare_routes(model, sets, sets, ["iv", "oral"], dose=1.0, horizon=1.0,
                       target="brain_percent_id", blood="plasma_percent_id", off_target=[])


@pytest.fixture(scope="module")
def small_result(tmp_path_factory):
    """A MAP fit of the IV-vs-intranasal model with Laplace draws (the commands need a result's
    structure, not converged MCMC)."""
    out = tmp_path_factory.mktemp("result") / "iv_vs_intranasal.nc"
    fit("fits/iv_vs_intranasal.toml", method="map", draws=20, map_starts=1, progress=False,
        out=out)
    return out


def test_compare_routes_command_prints_table_and_writes_figure(small_result, tmp_path, capsys):
    from exopk.cli import main
    figure = tmp_path / "routes.png"
    status = main(["compare-routes", str(small_result), "--draws", "3", "--horizon",
                   "2h", "--figure", str(figure), "--ki-outputs",
                   "brain_percent_id_per_g,blood_concentration"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert figure.stat().st_size > 10_000
    for metric in ("auc_target", "kp_target", "dte_percent", "dtp_percent", "targeting_index",
                   "direct_share_target", "Wilhelm et al. 2016",
                   "Ki (brain_percent_id_per_g on blood_concentration"):
        assert metric in out
    assert "horizon 120 min" in out and "one 100 dose units bolus per route" in out
    assert main(["compare-routes", str(tmp_path / "missing.nc")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["compare-routes", str(small_result), "--horizon", "2 parsecs"]) == 2
    assert "--horizon" in capsys.readouterr().err


def test_design_linear_gaussian_matches_the_closed_form_posterior_sd():
    from exopk.metrics.design import expected_posterior_sd
    rng = np.random.default_rng(1)
    prior_sd, noise = 2.0, np.array([1.0, 0.5, 4.0])
    theta = rng.normal(1.0, prior_sd, 20000)
    sd, ess_mean, _ = expected_posterior_sd(theta, np.stack([theta] * 3, axis=1), noise,
                                            replicates=300, seed=3)
    exact = 1 / np.sqrt(1 / prior_sd**2 + 1 / noise**2)      # conjugate normal: data-independent
    np.testing.assert_allclose(sd, exact, rtol=0.02)
    assert np.all(ess_mean > 1000)
    again = expected_posterior_sd(theta, np.stack([theta] * 3, axis=1), noise, replicates=300,
                                  seed=3)
    np.testing.assert_array_equal(again[0], sd)


def test_design_ranks_the_obvious_experiment_first():
    from exopk.metrics.design import Experiment, rank_experiments
    rng = np.random.default_rng(0)
    n = 1500
    sets = sets_of(["CL", "V_plasma", "secretion_rate"],
                   np.column_stack([np.exp(rng.normal(np.log(0.2), 0.8, n)),
                                    np.exp(rng.normal(0.0, 0.3, n)), np.zeros(n)]))
    metric = auc(ONE, sets, exopk.Regimen.bolus("iv", 100), 1e4, "plasma_percent_id").isel(
        output=0, drop=True)                                       # 100 V / CL
    candidates = [Experiment("plasma_percent_id", 1e-4, "iv", 4),  # ~100 %ID whatever CL, V
                  Experiment("plasma_percent_id", 5.0, "iv", 1),
                  Experiment("plasma_percent_id", 5.0, "iv", 10)]
    ranking = rank_experiments(ONE, sets, metric, candidates, replicates=200, seed=2)
    assert list(ranking["animals"].values) == [10, 1, 4]
    assert list(ranking["time"].values) == [5.0, 5.0, 1e-4]
    assert ranking["reduction"].values[0] > 0.3
    assert abs(float(ranking["reduction"].values[-1])) < 0.02      # learns nothing
    assert not ranking["degenerate"].values.any()
    with pytest.raises(ExopkError, match="animals must be a positive integer"):
        Experiment("plasma_percent_id", 5.0, "iv", 0)


def test_design_command_prints_a_ranking_and_writes_a_figure(small_result, tmp_path, capsys):
    from exopk.cli import main
    figure = tmp_path / "design.png"
    status = main(["design", str(small_result), "--metric", "dte_percent", "--draws",
                   "5", "--replicates", "20", "--times", "1h,4h", "--figure", str(figure)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert figure.stat().st_size > 5_000
    table = [line for line in out.splitlines() if line[:4].strip().isdigit()]
    assert len(table) == 3 * 2 * 2                 # brain, blood, liver x 2 times x 2 routes
    reductions = [float(line.split("%")[0].split()[-1]) for line in table]
    assert reductions == sorted(reductions, reverse=True)
    assert "metric dte_percent [%]" in out and "expected sd [" in out and "time [min]" in out
    assert main(["design", str(small_result), "--metric", "nope", "--draws", "2"]) == 2
    assert "--metric 'nope'" in capsys.readouterr().err


def test_optimize_regimen_finds_the_closed_form_optimum(tmp_path):
    from exopk.metrics.optimize import Bounds, optimize_regimen
    model = two_route_model(tmp_path)
    # per unit dose, brain AUC over [0, inf): IV k3/(k3+k5)/k4 = 1.25, nose 2.95 (row below)
    k1, k2, k3, k4, k5 = 0.01, 0.1, 0.02, 0.05, 0.3
    sets = sets_of(["V", "k1", "k2", "k3", "k4", "k5"], [[1.0, k1, k2, k3, k4, k5]] * 2)
    bounds = Bounds(dose=(1.0, 40.0), interval=(10.0, 100.0), max_count=3, max_total_dose=60.0)
    best = optimize_regimen(model, sets, routes=("iv", "nose"), horizon=5e3,
                            target="brain_percent_id", bounds=bounds, starts=1)
    per_dose_nose = (k1 / (k1 + k2) + k2 / (k1 + k2) * k3 / (k3 + k5)) / k4
    assert best["split"] == pytest.approx(1.0, abs=1e-3)
    assert best["count"] * best["dose"] == pytest.approx(60.0, rel=1e-3)
    assert best["objective"] == pytest.approx(60.0 * per_dose_nose, rel=1e-3)
    # an off-target cap on plasma exposure: nose gives less plasma per dose, so the cap binds
    capped = optimize_regimen(model, sets, routes=("iv", "nose"), horizon=5e3,
                              target="brain_percent_id", bounds=bounds, starts=1,
                              off_target="plasma_percent_id", max_off_target=50.0)
    plasma_per_dose_nose = k2 / (k1 + k2) / (k3 + k5)
    assert capped["count"] * capped["dose"] * plasma_per_dose_nose <= 50.0 * (1 + 1e-6)
    assert capped["objective"] < best["objective"]


def test_optimize_command_reports_optimum_uncertainty_naive_prior_and_landscape(small_result,
                                                                                tmp_path, capsys):
    from exopk.cli import main
    figure = tmp_path / "landscape.png"
    status = main(["optimize", str(small_result), "--draws", "2", "--starts", "1",
                   "--max-count", "2", "--horizon", "6h", "--bootstrap", "3",
                   "--figure", str(figure)])
    out = capsys.readouterr().out
    assert status == 0, out
    for text in ("optimum:", "exact gradients", "over 3 bootstrap resamples",
                 "naive (100 dose units by iv once)", "optimum / naive", "under the prior alone",
                 "the posterior rates that regimen"):
        assert text in out
    assert figure.stat().st_size > 10_000
    assert main(["optimize", str(small_result), "--dose-bounds", "5"]) == 2
    assert "--dose-bounds" in capsys.readouterr().err
    assert main(["optimize", str(tmp_path / "not_read.nc"), "--objective", "probability"]) == 2
    assert "needs a positive --threshold" in capsys.readouterr().err       # before any reading


class PageStructure:
    """Tags, ids, image sources, external references and table cells of an HTML page."""

    def __init__(self, text):
        from html.parser import HTMLParser

        page = self

        class Parser(HTMLParser):
            def handle_starttag(self, tag, attrs):
                attrs = dict(attrs)
                page.tags.append(tag)
                page.ids.add(attrs.get("id"))
                if tag == "img":
                    page.sources.append(attrs.get("src", ""))
                page.links.extend(attrs[a] for a in ("href", "src") if a in attrs
                                  and not attrs[a].startswith("data:"))
                if tag == "tr":
                    page.rows.append([])
                if tag in ("td", "th"):
                    page.rows[-1].append("")
                    page._cell = True

            def handle_endtag(self, tag):
                if tag in ("td", "th"):
                    page._cell = False

            def handle_data(self, data):
                if page._cell:
                    page.rows[-1][-1] += data

        self.tags, self.ids, self.sources, self.links, self.rows = [], set(), [], [], []
        self._cell = False
        Parser().feed(text)


def test_report_is_one_self_contained_page_with_claims_and_figures(small_result, tmp_path, capsys):
    from exopk.cli import main
    out = tmp_path / "report.html"
    arguments = ["report", str(small_result), "--draws", "3", "--replicates", "10",
                 "--times", "1h,4h", "--out", str(out)]
    assert main(arguments) == 0, capsys.readouterr().err
    text = out.read_text(encoding="utf-8")
    page = PageStructure(text)
    assert {"claims", "not-estimable", "routes", "prior-posterior", "fit-checks", "sensitivity",
            "evidence", "next-experiment"} <= page.ids
    assert len(page.sources) == 3 and all(s.startswith("data:image/png;base64,")
                                          for s in page.sources)
    assert not page.links and "<script" not in text and "<link" not in text  # nothing to fetch
    cells = " ".join(" ".join(row) for row in page.rows)
    for phrase in ("DTE%", "DTP%", "Wilhelm et al. 2016", "PROXY", "converged",
                   "brain_parenchyma_percent_id", "plausibility bounds", "quantile of "
                   "brain_percent_id", "leave-out shift"):
        assert phrase in cells, phrase
    assert any(verdict in cells for verdict in ("informed by data", "prior-data conflict",
                                                "prior-dominated"))
    # one evidence row (9 cells) per observed record, under its header
    from exopk.inference.result import load_fit
    records = load_fit(small_result)["observed_data"].sizes["observation"]
    assert sum(1 for row in page.rows if len(row) == 9) == records + 1
    assert "tumorigenicity" in text
    # seeded: the same command writes the same page
    again = tmp_path / "again.html"
    assert main(arguments[:-1] + [str(again)]) == 0
    assert again.read_text(encoding="utf-8") == text


def test_figures_command_regenerates_every_figure_and_the_report(small_result, tmp_path, capsys):
    from exopk.cli import main
    fits = tmp_path / "fits"
    fits.mkdir()
    (fits / small_result.name).write_bytes(small_result.read_bytes())
    fit_file = Path("fits/iv_vs_intranasal.toml").read_text(encoding="utf-8")
    (fits / "iv_vs_intranasal.toml").write_text(fit_file.replace(
        '"../models/', f'"{Path("models").resolve().as_posix()}/'), encoding="utf-8")
    assert main(["figures", "--fits", str(fits), "--out", str(tmp_path / "docs")]) == 0, \
        capsys.readouterr().err
    written = {p.name for p in (tmp_path / "docs" / "figures").iterdir()}
    expected = {f"model_{name}.png" for name in exopk.available_models()} | {
        f"iv_vs_intranasal_{kind}.png" for kind in (
            "predictions", "shrinkage", "data_vs_predictive", "prior_vs_posterior", "routes",
            "optimize", "design")}
    assert written == expected
    assert all((tmp_path / "docs" / "figures" / name).stat().st_size > 10_000
               for name in written)
    page = PageStructure((tmp_path / "docs" / "report_iv_vs_intranasal.html").read_text(
        encoding="utf-8"))
    assert len(page.sources) == 3 and not page.links
    assert main(["figures", "--fits", str(tmp_path / "missing")]) == 2
    assert "no folder of fit results at" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["figures", "--fits", str(tmp_path / "empty")]) == 2
    assert "nothing to draw: no fit results" in capsys.readouterr().err


def test_model_diagram_places_every_compartment_beside_what_feeds_it():
    from exopk.diagram import _positions
    model = exopk.load_model(exopk.model_path("m5_intranasal"))
    where = _positions(model)
    assert set(where) == {c.name for c in model.compartments}
    assert len(set(where.values())) == len(where)                 # no two boxes overlap
    kinds = {c.name: c.kind for c in model.compartments}
    for t in model.transfers:
        if kinds[t.target] == "free_label" and kinds[t.source] == "tissue":
            assert where[t.target][1] == where[t.source][1]
    assert where["nasal"][0] < where["plasma"][0] < where["liver"][0]


def test_regimen_exposure_gradient_matches_finite_differences(tmp_path):
    from exopk.metrics.optimize import RegimenExposure, exposure, regimen_of
    model = two_route_model(tmp_path)
    rows = [[1.0, 0.01, 0.1, 0.02, 0.05, 0.3], [1.0, 0.2, 0.05, 0.4, 0.01, 0.1]]
    sets = sets_of(["V", "k1", "k2", "k3", "k4", "k5"], rows)
    problem = RegimenExposure(model, sets, ("iv", "nose"), 100.0, "brain_percent_id")
    x = np.array([0.3, 7.0, 40.0])
    E, gradient = problem.value_and_gradient(x[0], x[1], 3, x[2])
    # the value is the exact AUC of the assembled regimen (third dose at 80 of a 100 horizon)
    direct = exposure(model, sets, regimen_of(("iv", "nose"), *x[:2], 3, x[2]), 100.0,
                      "brain_percent_id")
    np.testing.assert_allclose(E, direct.values.ravel(), rtol=1e-10)
    for i, h in enumerate((1e-6, 1e-5, 1e-4)):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        central = (problem.value_and_gradient(up[0], up[1], 3, up[2])[0]
                   - problem.value_and_gradient(down[0], down[1], 3, down[2])[0]) / (2 * h)
        np.testing.assert_allclose(gradient[:, i], central, rtol=1e-6)
    # the landscape grids are the same exposures, averaged over the draws
    from exopk.metrics.optimize import landscape
    grid = landscape(model, sets, routes=("iv", "nose"), horizon=100.0,
                     target="brain_percent_id", count=3, dose=7.0, interval=40.0,
                     splits=[0.0, 0.3], doses=[2.0, 7.0], intervals=[20.0, 40.0])
    np.testing.assert_allclose(float(grid.by_dose.sel(split=0.3, dose=7.0)), E.mean(), rtol=1e-12)
    np.testing.assert_allclose(float(grid.by_interval.sel(split=0.3, interval=40.0)), E.mean(),
                               rtol=1e-12)
    # a dose given after the horizon adds nothing and its time has no gradient
    late, late_gradient = problem.value_and_gradient(0.3, 7.0, 3, 60.0)
    two, _ = problem.value_and_gradient(0.3, 7.0, 2, 60.0)
    np.testing.assert_allclose(late, two, rtol=1e-12)
    assert np.all(np.isfinite(late_gradient))


def test_probability_objective_gradient_matches_finite_differences():
    from exopk.metrics.optimize import _objective
    rng = np.random.default_rng(4)
    base, slope = rng.lognormal(0.0, 0.5, 30), rng.normal(size=(30, 3))
    weights = np.full(30, 1 / 30)

    def at(x):
        return base * np.exp(slope @ x), (base * np.exp(slope @ x))[:, None] * slope

    x = np.array([0.1, -0.2, 0.3])
    f, g = _objective(*at(x), weights, "probability", 1.2, 0.1)
    for i in range(3):
        step = np.eye(3)[i] * 1e-6
        central = (_objective(*at(x + step), weights, "probability", 1.2, 0.1)[0]
                   - _objective(*at(x - step), weights, "probability", 1.2, 0.1)[0]) / 2e-6
        np.testing.assert_allclose(g[i], central, rtol=1e-5)
    assert 0 < f < 1


def test_optimize_regimen_follows_the_draws_and_resamples_show_the_spread(tmp_path):
    from exopk.metrics.optimize import Bounds, exposure, optimize_regimen
    model = two_route_model(tmp_path)
    names = ["V", "k1", "k2", "k3", "k4", "k5"]
    # within 200 min: draw A, a direct nose-to-brain path, favours the nose; draw B, no direct
    # path and slow nasal absorption, favours IV
    nose_wins, iv_wins = [1.0, 0.01, 0.1, 0.02, 0.05, 0.3], [1.0, 0.0, 0.01, 0.4, 0.05, 0.1]
    bounds = Bounds(dose=(1.0, 10.0), interval=(10.0, 100.0), max_count=1, max_total_dose=10.0)
    options = dict(routes=("iv", "nose"), horizon=200.0, target="brain_percent_id",
                   bounds=bounds, starts=2)
    assert optimize_regimen(model, sets_of(names, [nose_wins] * 3), **options)["split"] == \
        pytest.approx(1.0)
    assert optimize_regimen(model, sets_of(names, [iv_wins] * 3), **options)["split"] == \
        pytest.approx(0.0)
    mixed_sets = sets_of(names, [nose_wins, iv_wins, iv_wins, iv_wins])
    mixed = optimize_regimen(model, mixed_sets, bootstrap=30, seed=1, **options)
    per_route = {route: float(exposure(model, mixed_sets, exopk.Regimen.bolus(route, 10.0), 200.0,
                                       "brain_percent_id").mean()) for route in ("iv", "nose")}
    best_route = max(per_route, key=per_route.get)
    assert mixed["split"] == pytest.approx(1.0 if best_route == "nose" else 0.0)
    assert mixed["objective"] == pytest.approx(per_route[best_route], rel=1e-9)
    # resamples without draw A choose IV, resamples rich in it the nose
    resampled = mixed["resamples"]["split"].values
    assert resampled.size == 30 and set(np.round(resampled, 6)) == {0.0, 1.0}


def test_leave_one_out_shift_matches_the_conjugate_normal_posteriors():
    from exopk.metrics.intervals import leave_one_out_shift
    # prior N(0, 1), records y = (1, -0.5) with sd 1: posterior N(1/6, 1/3); without y1
    # N(-1/4, 1/2), without y2 N(1/2, 1/2)
    y = np.array([1.0, -0.5])
    theta = np.random.default_rng(5).normal(y.sum() / 3, np.sqrt(1 / 3), 400_000)
    log_likelihood = -0.5 * (y[None, :] - theta[:, None]) ** 2
    shift, ess = leave_one_out_shift(theta, log_likelihood)
    expected = (np.array([-0.25, 0.5]) - 1 / 6) / np.sqrt(1 / 3)
    np.testing.assert_allclose(shift, expected, atol=0.01)
    assert np.all(ess > 100_000)
    flat, _ = leave_one_out_shift(theta, np.zeros((theta.size, 1)))
    assert abs(flat[0]) < 1e-12


def test_design_ranking_through_the_model_matches_the_linear_gaussian_closed_form():
    from exopk.metrics.design import Experiment, rank_experiments
    # one compartment, V = 1: log plasma %ID at t is log 100 - CL t, linear in CL; with CL
    # normal a priori and the mean log value of n animals normal around it, the posterior of CL
    # is normal with sd 1 / sqrt(1 / s0^2 + n t^2 / sigma^2), whatever the data
    rng = np.random.default_rng(7)
    s0, sigma, n_draws = 0.01, 0.3, 20000
    cl = rng.normal(0.05, s0, n_draws)
    sets = sets_of(["CL", "V_plasma", "secretion_rate"],
                   np.column_stack([cl, np.ones(n_draws), np.zeros(n_draws)]))
    metric = sets.sel(parameter="CL", drop=True)
    candidates = [Experiment("plasma_percent_id", t, "iv", n, sigma)
                  for t, n in ((5.0, 4), (20.0, 4), (1.0, 10))]
    ranking = rank_experiments(ONE, sets, metric, candidates, replicates=200, seed=1,
                               log_metric=False)
    exact = {(t, n): 1 / np.sqrt(1 / s0**2 + n * t**2 / sigma**2) for t, n in
             ((5.0, 4), (20.0, 4), (1.0, 10))}
    assert list(ranking["time"].values) == [20.0, 5.0, 1.0]
    for row in range(3):
        key = (float(ranking["time"][row]), int(ranking["animals"][row]))
        np.testing.assert_allclose(float(ranking["expected_sd"][row]), exact[key], rtol=0.03)
    np.testing.assert_allclose(ranking.attrs["current_sd"], s0, rtol=0.02)
