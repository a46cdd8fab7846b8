"""Mutated model files and fit files: a correct load or an exopk error naming the file.

Each example rewrites a shipped file line by line (drop a line, replace a value by a value of
another type, an odd string, a huge number, insert non-UTF-8 bytes or truncate) and checks that
reading it either succeeds, with finite simulated outputs, or raises an
:class:`~exopk.errors.ExopkError` whose message names the file. Any other exception fails;
examples run in bounded time (the example counts are fixed, the whole module takes seconds).
"""

import json
import re
import warnings
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import exopk
from exopk.errors import ExopkError
from exopk.inference.preparation import prepare

ROOT = Path(__file__).parents[1]
MODELS = ["m0_one_compartment", "m2_mps", "m5_intranasal"]
MODEL_TEXT = {name: Path(exopk.model_path(name)).read_text(encoding="utf-8") for name in MODELS}
FIT_TEXT = (ROOT / "fits" / "mouse_iv_mps.toml").read_text(encoding="utf-8").replace(
    '"../models/m2_mps.toml"', '"m2_mps"')
VALUES = ['"0"', '"-1"', '"1 / 0"', '"9 ** 99999999"', '"p * q"', '"__import__(\'os\')"', "0",
          "-1", "1e308", "-1e308", "nan", "inf", "true", '"false"', "[]", '["a", 1]', "{}",
          '{ a = "b" }', '""', '"\u00e9"', '"min"', '"h"', '"banana"', "3", "2.5",
          f'"{" + ".join(["x"] * 3000)}"', '[1e999]', '"exp(log(sqrt(-1)))"', '"ev"']
ODD = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12).map(
    json.dumps)
SETTINGS = settings(max_examples=100, deadline=5000, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
ASSIGNMENT = re.compile(r"^(\s*[A-Za-z0-9_.\"-]+\s*=\s*)(.*)$")


@st.composite
def mutated(draw, text: str) -> bytes:
    """``text`` with a few line-level mutations, as bytes (possibly not UTF-8)."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["drop", "value", "value", "value", "duplicate", "key"]))
        match = ASSIGNMENT.match(lines[i])
        if action == "drop":
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        elif action == "key" and match:
            lines[i] = f"{draw(st.sampled_from(['colour', 'Volume', 'rate2', 'x']))} = " \
                       f"{match.group(2)}"
        elif match:
            lines[i] = match.group(1) + draw(st.sampled_from(VALUES) | ODD)
        if not lines:
            lines = [""]
    data = "\n".join(lines).encode("utf-8")
    ending = draw(st.sampled_from(["keep", "keep", "keep", "latin1", "binary", "truncate"]))
    if ending == "latin1":
        position = draw(st.integers(0, len(data)))
        data = data[:position] + b"\xe9" + data[position:]
    elif ending == "binary":
        data = data[:draw(st.integers(0, len(data)))] + bytes(draw(st.lists(
            st.integers(0, 255), min_size=1, max_size=8)))
    elif ending == "truncate":
        data = data[:draw(st.integers(0, len(data)))]
    return data


def _outcome(path: Path, load):
    """Run ``load(path)``; an exopk error must name the file. Returns the loaded object or None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load(path)
    except ExopkError as exc:
        assert str(path) in str(exc), f"error does not name the file: {exc}"
        return None


@SETTINGS
@given(name=st.sampled_from(MODELS), data=st.data())
def test_mutated_model_files_load_or_name_the_file(tmp_path, name, data):
    path = tmp_path / f"{name}.toml"
    path.write_bytes(data.draw(mutated(MODEL_TEXT[name])))
    model = _outcome(path, exopk.load_model)
    if model is None:
        return
    try:
        result = exopk.simulate(model, None, np.array([0.0, 10.0, 100.0]),
                                exopk.Regimen.bolus(model.routes[0].name, 100.0))
    except ExopkError:
        return       # for example a rate of 0 in the only route's target: a clean refusal
    assert np.all(np.isfinite(result.value.values))


@SETTINGS
@given(data=st.data())
def test_mutated_fit_files_prepare_or_name_the_file(tmp_path, data):
    path = tmp_path / "fit.toml"
    path.write_bytes(data.draw(mutated(FIT_TEXT)))
    prepared = _outcome(path, prepare)
    if prepared is not None:
        value = prepared.log_posterior(prepared.log_posterior.prior_centre())
        assert np.isfinite(value) or value == -np.inf
