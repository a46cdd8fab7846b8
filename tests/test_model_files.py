"""Model files: the shipped library loads, and malformed files get errors naming file and key."""

import textwrap

import pytest

import exopk
from exopk.errors import ModelFileError

MINIMAL = """
[model]
name = "tiny"

[compartments.plasma]
kind = "plasma"
volume = "V"

[compartments.out]
kind = "sink"

[[transfers]]
from = "plasma"
to = "out"
clearance = "CL"

[routes.iv]
plasma = "1"

[outputs.plasma_percent_id]
kind = "percent_id"
compartments = ["plasma"]

[parameters.CL]
value = 1.0
prior = { distribution = "lognormal", median = 1.0, sigma = 1.0 }

[parameters.V]
value = 2.0
prior = { distribution = "lognormal", median = 2.0, sigma = 0.5 }
"""


def write(tmp_path, text, name="model.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_every_shipped_model_documents_itself_and_has_priors(shipped_model):
    assert shipped_model.description
    text = open(shipped_model.source_file).read()
    assert text.startswith(f"# {shipped_model.name}:"), "model file must open with its documentation"
    for parameter in shipped_model.parameters:
        if not parameter.fixed:
            assert parameter.prior is not None and parameter.prior.justification, parameter.name


def test_minimal_file_loads_and_simulates(tmp_path):
    model = exopk.load_model(write(tmp_path, MINIMAL))
    ds = exopk.simulate(model, None, [0.0, 2.0], exopk.Regimen.bolus("iv", 10.0))
    assert float(ds.value.sel(time=2.0, output="plasma_percent_id")) == pytest.approx(100 * 2.718281828459045 ** -1)


@pytest.mark.parametrize("change,key,message", [
    (("to = \"out\"", "to = \"outside\""), "transfers[0].to", "unknown compartment 'outside'"),
    (("kind = \"sink\"", "kind = \"drain\""), "compartments.out.kind", "unknown kind 'drain'"),
    (("clearance = \"CL\"", "clearance = \"CL +\""), "transfers[0].clearance", "cannot parse"),
    (("clearance = \"CL\"", "clearance = \"CLX\""), "transfers[0]", "unknown symbol 'CLX'"),
    (("value = 1.0", "value = \"one\""), "parameters.CL.value", "expected a number"),
    (("median = 1.0, sigma = 1.0", "median = 1.0"), "parameters.CL.prior", "needs exactly median, sigma"),
    (("distribution = \"lognormal\", median = 1.0", "distribution = \"gamma\", median = 1.0"),
     "parameters.CL.prior", "unknown prior distribution 'gamma'"),
    (("compartments = [\"plasma\"]", "compartments = [\"plasma\"]\ncolour = \"red\""),
     "outputs.plasma_percent_id", "unknown key(s) colour"),
    (("[routes.iv]\nplasma = \"1\"", "[routes.iv]\nout = \"1\""), "routes.iv.out", "cannot land in sink"),
    (("kind = \"percent_id\"", "kind = \"percent\""), "outputs.plasma_percent_id.kind", "unknown kind 'percent'"),
    (("[model]\nname = \"tiny\"", "[model]\nname = \"tiny\"\n[species]\npreset = \"dog\""),
     "species", "unknown species preset 'dog'"),
])
def test_malformed_file_error_names_file_key_and_problem(tmp_path, change, key, message):
    old, new = change
    assert old in MINIMAL
    path = write(tmp_path, MINIMAL.replace(old, new, 1))
    with pytest.raises(ModelFileError) as info:
        exopk.load_model(path)
    error = info.value
    assert error.file == str(path)
    assert message in str(error)
    if key is not None:
        assert error.key == key
        assert f"key '{key}'" in str(error)


def test_prior_without_a_distribution_is_log_normal(tmp_path):
    model = exopk.load_model(write(tmp_path, MINIMAL.replace(
        'distribution = "lognormal", median = 1.0, sigma = 1.0', 'median = 1.0, sigma = 1.0')))
    assert model.parameter("CL").prior.distribution == "lognormal"


def test_invalid_toml_and_missing_files_are_reported(tmp_path):
    with pytest.raises(ModelFileError, match="not valid TOML"):
        exopk.load_model(write(tmp_path, "[model\nname = 1"))
    with pytest.raises(ModelFileError, match="cannot read model file"):
        exopk.load_model(tmp_path / "absent.toml")
    with pytest.raises(ModelFileError, match="missing required key 'routes'"):
        exopk.load_model(write(tmp_path, MINIMAL.replace("[routes.iv]\nplasma = \"1\"", "")))


def test_extends_merges_tables_and_detects_cycles(tmp_path):
    write(tmp_path, MINIMAL, "base.toml")
    child = write(tmp_path, """
        [model]
        name = "child"
        extends = "base.toml"

        [compartments.liver]
        kind = "tissue"

        [[transfers]]
        from = "plasma"
        to = "liver"
        rate = "k"

        [parameters.k]
        value = 0.1
        prior = { distribution = "lognormal", median = 0.1, sigma = 1.0 }
        """, "child.toml")
    model = exopk.load_model(child)
    assert model.compartment_names == ("plasma", "out", "liver")
    assert len(model.transfers) == 2
    write(tmp_path, '[model]\nname = "a"\nextends = "b.toml"\n', "a.toml")
    write(tmp_path, '[model]\nname = "b"\nextends = "a.toml"\n', "b.toml")
    with pytest.raises(ModelFileError, match="cycle"):
        exopk.load_model(tmp_path / "a.toml")


def test_physiology_symbols_missing_from_the_preset_are_explained(tmp_path):
    text = MINIMAL.replace("[model]\nname = \"tiny\"",
                           "[model]\nname = \"tiny\"\n[species]\npreset = \"rat_brown1997\"")
    text = text.replace("volume = \"V\"", "volume = \"volume_ml_brain\"")
    with pytest.raises(ModelFileError, match="volume_ml_brain.*unknown organ 'brain'.*declare it as a parameter"):
        exopk.load_model(write(tmp_path, text))
