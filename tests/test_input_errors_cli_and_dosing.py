"""Regimen sizes are bounded and CLI options fail cleanly, before any simulation."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import exopk
from exopk.cli import main
from exopk.dosing import MAX_DOSES, Regimen
from exopk.errors import SimulationError

SRC = str(Path(exopk.__file__).resolve().parents[1])


def _run(code: str) -> str:
    """Run ``code`` in a fresh interpreter with a time limit (a hang fails instead of blocking)."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=30, env={"PYTHONPATH": SRC})
    return done.stdout + done.stderr


def test_repeated_count_is_bounded_quickly():
    out = _run("""
        from exopk.dosing import Regimen
        from exopk.errors import SimulationError
        try:
            Regimen.repeated("iv", 1.0, interval=1.0, count=100_000_000)
        except SimulationError as exc:
            print("ERROR", exc)
    """)
    assert "ERROR count must be an integer from 1 to 10000" in out


@pytest.mark.parametrize("count", [0, -1, 2.0, True])
def test_repeated_count_must_be_a_positive_integer(count):
    with pytest.raises(SimulationError, match="count"):
        Regimen.repeated("iv", 1.0, interval=1.0, count=count)


@pytest.mark.parametrize("interval", [0.0, -1.0, float("nan"), float("inf"), "1"])
def test_repeated_interval_must_be_a_positive_number(interval):
    with pytest.raises(SimulationError, match="interval"):
        Regimen.repeated("iv", 1.0, interval=interval, count=2)


def test_combined_regimens_are_bounded_too():
    half = Regimen.repeated("iv", 1.0, interval=1.0, count=MAX_DOSES // 2 + 1)
    with pytest.raises(SimulationError, match=f"at most {MAX_DOSES} doses"):
        half + half


def test_doses_adding_up_to_overflow_are_refused():
    with pytest.raises(SimulationError, match="add up"):
        Regimen.repeated("iv", 1e308, interval=1.0, count=3)


@pytest.mark.parametrize("interval", ["0", "-60"])
def test_cli_repeated_doses_need_a_positive_interval(interval, capsys):
    assert main(["simulate", "m0_one_compartment", "--count", "2", "--interval", interval]) == 2
    assert "positive --interval" in capsys.readouterr().err


def test_largest_allowed_regimen_is_accepted():
    regimen = Regimen.repeated("iv", 1.0, interval=1.0, count=MAX_DOSES)
    assert regimen.total_amount == MAX_DOSES


def test_cli_count_beyond_the_limit_is_an_option_error():
    out = _run("""
        from exopk.cli import main
        try:
            main(["simulate", "m0_one_compartment", "--count", "100000000", "--interval", "60"])
        except SystemExit as exc:
            print("EXIT", exc.code)
    """)
    assert "argument --count: must be an integer from 1 to 10000" in out and "EXIT 2" in out


@pytest.mark.parametrize("option", ["--csv", "--netcdf"])
def test_cli_unwritable_output_is_a_clean_error(tmp_path, option, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert main(["simulate", "m0_one_compartment", option, str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert option in err and "cannot be written" in err


def test_cli_output_that_is_a_folder_is_a_clean_error(tmp_path, capsys):
    assert main(["simulate", "m0_one_compartment", "--csv", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_cli_writes_into_a_new_folder(tmp_path, capsys):
    target = tmp_path / "new" / "table.csv"
    assert main(["simulate", "m0_one_compartment", "--csv", str(target)]) == 0
    assert target.read_text().startswith("time [min]")
