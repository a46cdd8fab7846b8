"""Malformed expressions end in a ModelFileError naming the key, in bounded time."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import exopk
from exopk.errors import ModelFileError
from exopk.model.expressions import ExpressionSet, parse_expression

SRC = str(Path(exopk.__file__).resolve().parents[1])


@pytest.mark.parametrize("text, reason", [
    ("1 / 0", "division by zero"),
    ("k / (2 - 2.0)", "division by zero"),
    ("k * 1e999", "finite"),
    (f"k * {10 ** 400}", "finite"),
    ("k * log(0)", "finite"),
    ("sqrt(-4) + k", "finite"),
    ("k ** 1000", "larger in magnitude"),
    ("9 ** 99999999", "larger in magnitude"),
    ("k ** -101", "larger in magnitude"),
    (" + ".join(["k"] * 5000), "longer than"),
    (" + ".join(["k"] * 400), "levels deep"),
    ("exp(" * 120 + "k" + ")" * 120, "levels deep"),
    ("(" * 300 + "k" + ")" * 300, "cannot parse"),
])
def test_expression_limits_name_the_key(text, reason):
    with pytest.raises(ModelFileError, match=reason) as info:
        parse_expression(text, where="transfers[0].rate")
    assert info.value.key == "transfers[0].rate"


def test_integer_power_of_literal_does_not_hang():
    # On an unbounded compiler this builds a 95-million-digit integer; allow 20 s for the check
    code = textwrap.dedent("""
        from exopk.model.expressions import parse_expression
        from exopk.errors import ModelFileError
        try:
            parse_expression("9 ** 99999999 * k", where="transfers[0].rate")
        except ModelFileError as exc:
            print("ERROR", exc)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=20, env={"PYTHONPATH": SRC})
    assert done.stdout.startswith("ERROR key 'transfers[0].rate'")


def test_allowed_powers_and_constants_still_evaluate():
    exprs = [parse_expression("k ** 2 + 3 ** 2 * sqrt(k) / 2 - 0.5 ** -2")]
    values, jacobian = ExpressionSet(exprs, ["k"], {})(np.array([[4.0]]))
    assert values[0, 0] == pytest.approx(16 + 9 * 2 / 2 - 4)
    assert jacobian[0, 0, 0] == pytest.approx(2 * 4 + 9 / 2 * 0.5 / 2)


def test_constant_expressions_compile():
    # An expression set whose expressions read no parameter has no derivative terms at all
    values, jacobian = ExpressionSet([parse_expression("2 * 3")], ["k"], {})(np.ones((2, 1)))
    assert values.tolist() == [[6.0], [6.0]]
    assert not jacobian.any()


@pytest.mark.parametrize("names", [("p", "q"), ("values", "derivatives"), ("_evaluate", "np")])
def test_parameter_names_cannot_clash_with_generated_code(names):
    a, b = names
    compiled = ExpressionSet([parse_expression(f"{a} * {b} + {b}")], list(names), {})
    for batch in (1, 3):
        theta = np.tile([2.0, 5.0], (batch, 1))
        values, jacobian = compiled(theta)
        assert values[:, 0].tolist() == [15.0] * batch
        assert jacobian[:, 0].tolist() == [[5.0, 3.0]] * batch


def test_model_with_parameters_p_and_q_simulates():
    text = textwrap.dedent("""
        [model]
        name = "pq"
        [compartments.plasma]
        kind = "plasma"
        volume = "q"
        [compartments.out]
        kind = "sink"
        [[transfers]]
        from = "plasma"
        to = "out"
        clearance = "p"
        [routes.iv]
        plasma = "1"
        [outputs.plasma_percent_id]
        kind = "percent_id"
        compartments = ["plasma"]
        [parameters.p]
        value = 0.5
        fixed = true
        [parameters.q]
        value = 2.0
        fixed = true
    """)
    import tomllib
    model = exopk.model.toml_file.parse_model(tomllib.loads(text), file="pq.toml")
    result = exopk.simulate(model, None, np.array([0.0, 4.0]), exopk.Regimen.bolus("iv", 100.0))
    assert result.value.values[:, 0] == pytest.approx(100 * np.exp(-0.5 / 2.0 * np.array([0, 4])))
