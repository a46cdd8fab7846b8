"""The tutorial on pharmpy's neonatal phenobarbital data (docs/tutorial_own_data.md), small:
the event table is built from pheno.dta, the fit file is fitted with --map, and the estimates
are set beside NONMEM's (pharmpy's pheno.lst, tests/data/SOURCES.md).

Tolerance. NONMEM's model has between-infant random effects on CL and V (omega**2 0.029 and
0.028: about 17% CV each) and an Apgar-score covariate on V (+15.9% for APGR < 5, 10 of 59
infants); the pooled fit shares one CL and one V per kg among all infants. For a log-normal
spread of 17% CV the typical value (median) and the pooled estimate differ by about
omega**2 / 2 = 1.5% (the mean of a log-normal is exp(omega**2 / 2) times its median), and the
covariate moves the average V of the pooled infants by 0.159 * 10 / 59 = 2.7%, in the
opposite direction to the 1.5%. Together with NONMEM's standard errors (4.5% for CL, 2.7% for
V) the pooled estimates are expected within about 10% of NONMEM's; the test asks 10%. The
proportional residual error absorbs the between-infant spread: sqrt(SIGMA + omega_CL**2 +
omega_V**2) = sqrt(0.0132 + 0.029 + 0.028) = 0.27 is its upper bound, NONMEM's own 0.115 its
lower one.
"""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from exopk.cli import main
from exopk.errors import ModelFileError
from exopk.inference.fit import fit
from exopk.inference.fitfile import read_fit_file

ROOT = Path(__file__).resolve().parents[1]
NONMEM = {"CL": 4.70e-3 * 1000, "V": 9.84e-01 * 1000}     # L/h/kg and L/kg in mL
SIGMA, OMEGA_CL, OMEGA_V = 1.32e-02, 2.94e-02, 2.79e-02


def _pheno_events():
    spec = importlib.util.spec_from_file_location("pheno_events", ROOT / "docs" / "pheno_events.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.pheno_events


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pheno")
    shutil.copy(ROOT / "fits" / "pheno.toml", folder / "pheno.toml")
    text = (folder / "pheno.toml").read_text().replace(
        '"../models/pheno_one_compartment.toml"',
        repr(str(ROOT / "models" / "pheno_one_compartment.toml")).replace("'", '"'))
    (folder / "pheno.toml").write_text(text)
    assert _pheno_events()(ROOT / "tests" / "data" / "pheno.dta", folder / "pheno.csv") == 155
    return folder


def test_shipped_event_table_is_the_one_the_script_writes(folder):
    assert (folder / "pheno.csv").read_text() == (ROOT / "fits" / "pheno.csv").read_text()


def test_map_estimates_agree_with_nonmem(folder, capsys):
    assert main(["fit", str(folder / "pheno.toml"), "--map", "--draws", "100", "--quiet",
                 "--out", str(folder / "pheno.nc")]) == 0
    printed = capsys.readouterr().out
    assert "no MCMC: intervals from a Laplace approximation" in printed
    from exopk.inference.result import load_fit
    tree = load_fit(folder / "pheno.nc")
    for name, value in NONMEM.items():
        estimate = float(np.median(tree.posterior[name].values))
        assert estimate == pytest.approx(value, rel=0.10), name
    b = float(np.median(tree.posterior["b_concentration"].values))
    assert np.sqrt(SIGMA) < b < np.sqrt(SIGMA + OMEGA_CL + OMEGA_V)
    assert tree.posterior.attrs["approximation"].startswith("laplace")
    assert tree.attrs["sampler"] == "laplace"


def test_individual_fits_give_one_row_per_infant(folder):
    text = (folder / "pheno.toml").read_text().replace('fit = "pooled"', 'fit = "individual"')
    (folder / "individual.toml").write_text(text)
    fits = fit(folder / "individual.toml", method="map", draws=20, map_starts=1, progress=False,
               out=folder / "individual.nc")
    table = fits.table
    assert table.sizes["individual"] == 59
    cl = table["median"].sel(parameter="CL").values
    not_fitted = json.loads(table.attrs["not_fitted"])
    # an infant is either fitted or named with the reason (two concentrations cannot pin
    # down CL, V and the residual error together)
    assert np.isfinite(cl).sum() + len(not_fitted) == 59
    assert np.isfinite(cl).sum() >= 40
    assert all(f"not fitted: {i}" in fits.summary() for i in not_fitted)
    # the infants' own clearances scatter around the typical value
    fitted = cl[np.isfinite(cl)]
    assert float(np.exp(np.mean(np.log(fitted)))) == pytest.approx(NONMEM["CL"], rel=0.25)
    assert "59 individuals fitted separately" in fits.summary()


@pytest.mark.parametrize("replace, key, message", [
    ('dv_unit = "mg/L"', "data.dv_unit", "cannot convert"),
    ('output = "concentration"', "data.output", "no output"),
    ('events = "pheno.csv"', "data.events", "not found"),
])
def test_fit_file_errors_name_the_key(folder, replace, key, message):
    bad = {"data.dv_unit": 'dv_unit = "h"', "data.output": 'output = "conc"',
           "data.events": 'events = "missing.csv"'}[key]
    text = (folder / "pheno.toml").read_text().replace(replace, bad)
    (folder / "bad.toml").write_text(text)
    with pytest.raises(ModelFileError, match=message) as error:
        fit(folder / "bad.toml", method="map", draws=10, write=False, progress=False)
    assert error.value.key == key


def test_log_normal_error_refuses_a_zero_concentration(folder):
    csv = (folder / "pheno.csv").read_text().splitlines()
    row = next(i for i, line in enumerate(csv) if line.split(",")[4] == "0")
    cells = csv[row].split(",")
    cells[6] = "0"
    csv[row] = ",".join(cells)
    (folder / "zero.csv").write_text("\n".join(csv) + "\n")
    text = (folder / "pheno.toml").read_text().replace('events = "pheno.csv"',
                                                       'events = "zero.csv"').replace(
        'error = "proportional"', 'error = "lognormal"')
    (folder / "zero.toml").write_text(text)
    from exopk.data import DataValidationError
    with pytest.raises(DataValidationError, match="DV 0 is not positive"):
        fit(folder / "zero.toml", method="map", draws=10, write=False, progress=False)


def test_unknown_data_keys_are_refused(folder):
    text = (folder / "pheno.toml").read_text().replace('fit = "pooled"', 'fit = "everyone"')
    (folder / "keys.toml").write_text(text)
    with pytest.raises(ModelFileError, match="unknown fit 'everyone'"):
        read_fit_file(folder / "keys.toml")


def _population_file(folder, *, error="lognormal", random_effects=True):
    lines = (folder / "pheno.csv").read_text().splitlines()
    small = [lines[0]] + [line for line in lines[1:] if int(line.split(",")[0]) <= 12]
    (folder / "small.csv").write_text("\n".join(small) + "\n")
    text = (folder / "pheno.toml").read_text().replace('fit = "pooled"', 'fit = "population"')
    text = text.replace('events = "pheno.csv"', 'events = "small.csv"').replace(
        'error = "proportional"', f'error = "{error}"')
    if random_effects:
        text += '\n[random_effects]\nparameters = ["CL", "V"]\n'
    (folder / "population.toml").write_text(text)
    return folder / "population.toml"


def test_population_fit_has_random_effects_per_infant(folder):
    """12 infants with random effects on CL and V: the typical CL near NONMEM's (its 90%
    interval covers it), one z per infant and parameter, tau the residual sd of log."""
    result = fit(_population_file(folder), method="map", draws=25, write=False,
                 progress=False)
    posterior = result.tree.posterior
    assert {"omega_CL", "omega_V", "tau"} <= set(posterior.data_vars)
    assert sum(name.startswith("z_CL[") for name in posterior.data_vars) == 12
    low, high = np.quantile(posterior["CL"].values, [0.05, 0.95])
    assert low < NONMEM["CL"] < high
    assert float(np.median(posterior["tau"].values)) < np.sqrt(SIGMA + OMEGA_CL + OMEGA_V)


@pytest.mark.parametrize("error, random_effects, key", [
    ("proportional", True, "data.error"), ("lognormal", False, "random_effects.parameters")])
def test_population_fit_errors_name_the_key(folder, error, random_effects, key):
    with pytest.raises(ModelFileError) as raised:
        fit(_population_file(folder, error=error, random_effects=random_effects), method="map",
            draws=10, write=False, progress=False)
    assert raised.value.key == key
