"""Domain objects are values (hashable, equal by content), and the package has one of each
shared service: one model resolver, one unit registry, no import side effects."""

import ast
import dataclasses
import subprocess
import sys

import pytest

import exopk
from exopk.engine import compile_model
from exopk.errors import ModelFileError
from exopk.models_library import resolve_model

from test_layers import module_files


def test_models_hash_by_content(shipped_model):
    again = exopk.load_model(exopk.model_path(shipped_model.name))
    assert again is not shipped_model
    assert again == shipped_model and hash(again) == hash(shipped_model)
    assert {shipped_model: 1}[again] == 1
    changed = shipped_model.with_parameter_values(**{shipped_model.parameters[0].name: 0.5
                                                     * shipped_model.parameters[0].value + 1.0})
    assert changed != shipped_model


def test_the_compiled_form_is_kept_per_model_object_and_is_not_part_of_its_value():
    model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    compiled = compile_model(model)
    assert compile_model(model) is compiled
    copy = dataclasses.replace(model)
    assert copy == model and copy.derived == {}
    assert compile_model(copy) is not compiled and compile_model(copy).model is copy


def test_one_resolver_for_model_references(tmp_path):
    shipped = exopk.model_path("m0_one_compartment")
    (tmp_path / "mine.toml").write_text(shipped.read_text())
    assert resolve_model("m0_one_compartment") == resolve_model("mine.toml", folder=tmp_path)
    with pytest.raises(ModelFileError, match="model file 'missing.toml' not found") as caught:
        resolve_model("missing.toml", folder=tmp_path, file="fit.toml", key="fit.model")
    assert (caught.value.file, caught.value.key) == ("fit.toml", "fit.model")
    with pytest.raises(ModelFileError, match="no shipped model 'm9'"):
        resolve_model("m9")


def test_one_pint_registry():
    """Only exopk.units builds a pint registry; everything else converts through it."""
    builders = []
    for name, path in module_files().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "UnitRegistry":
                builders.append(name)
    assert sorted(set(builders)) == ["exopk.units"]


def test_importing_the_figures_module_leaves_the_matplotlib_backend_alone():
    code = ("import matplotlib; before = matplotlib.rcParams._get_backend_or_none(); "
            "import exopk.figures, exopk.cli; "
            "print(before == matplotlib.rcParams._get_backend_or_none())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "True"
