"""``exopk --help`` starts quickly: the package root and the CLI import no heavy library.

Each check runs in a fresh interpreter and reads ``sys.modules`` (not the clock, which depends on
the machine's load): parsing the command line imports neither numpy, scipy, xarray, pint, pints,
matplotlib nor pandas; the public names of :mod:`exopk` still resolve, to the same objects as their modules'.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("numpy", "scipy", "xarray", "pint", "pints", "matplotlib", "pandas")
SRC = str(Path(__file__).resolve().parents[1] / "src")


def _run(code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], ["simulate", "--help"], ["fit", "--help"],
                                  ["data", "--help"], ["presets", "--help"],
                                  ["compare-routes", "--help"], ["simulate"],
                                  ["--version"]])
def test_parsing_the_command_line_imports_no_heavy_library(argv):
    loaded = _run(f"""
import contextlib, io, json, sys
import exopk
import exopk.cli
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        exopk.cli.main({argv!r})
    except SystemExit:
        pass
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))))
""")
    assert loaded == []


def test_the_public_names_resolve_on_first_use():
    found = _run("""
import json, sys
import exopk
before = "exopk.engine" in sys.modules
from exopk.engine import simulate
from exopk.dosing import Regimen
from exopk.data import load
import exopk.data, exopk.metrics
from exopk._version import __version__
print(json.dumps([before, exopk.__version__ == __version__, exopk.simulate is simulate, exopk.Regimen is Regimen,
                  sorted(set(exopk.__all__) - set(dir(exopk))),
                  exopk.data.load is load, callable(exopk.metrics.auc)]))
""")
    assert found == [False, True, True, True, [], True, True]


def test_an_unknown_name_is_an_attribute_error():
    import exopk
    with pytest.raises(AttributeError, match="no attribute 'simulat'"):
        exopk.simulat
