"""The exopk command and the PINTS forward-model interface."""

import numpy as np
import pints
import pytest
import xarray as xr

import exopk
from exopk.cli import main
from exopk.engine.pints_model import PintsForwardModel


def test_simulate_prints_a_table_and_writes_csv_and_netcdf(tmp_path, capsys):
    csv_path, nc_path = tmp_path / "out.csv", tmp_path / "out.nc"
    status = main(["simulate", "m5_intranasal", "--route", "intranasal", "--dose", "10",
                   "--times", "0.5,2", "--time-unit", "h", "--param", "k_nose_to_brain=0.001",
                   "--outputs", "brain_percent_id,nasal_percent_id", "--csv", str(csv_path),
                   "--netcdf", str(nc_path), "--gradients"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "brain_percent_id" in printed and "mass balance" in printed
    model = exopk.load_model(exopk.model_path("m5_intranasal"))
    expected = exopk.simulate(model, {"k_nose_to_brain": 0.001}, [30.0, 120.0],
                              exopk.Regimen.bolus("intranasal", 10.0))
    table = np.loadtxt(csv_path, delimiter=",", skiprows=1)
    assert csv_path.read_text().splitlines()[0] == \
        "time [h],brain_percent_id [%ID],nasal_percent_id [%ID]"
    np.testing.assert_allclose(table[:, 0], [0.5, 2.0])     # in --time-unit, as given
    np.testing.assert_allclose(table[:, 1], expected.value.sel(output="brain_percent_id"), rtol=1e-12)
    saved = xr.open_dataset(nc_path)
    assert "sensitivity" in saved and saved.attrs["model"] == "m5_intranasal"


def test_cli_reports_bad_input_without_a_traceback(capsys):
    assert main(["simulate", "m0_one_compartment", "--param", "CL=-2"]) == 2
    assert "outside its bounds" in capsys.readouterr().err
    assert main(["simulate", "no_such_model"]) == 2
    assert "no shipped model" in capsys.readouterr().err


def test_models_and_presets_subcommands_list_what_is_shipped(capsys):
    assert main(["models"]) == 0
    assert "m5_intranasal_olfactory" in capsys.readouterr().out
    assert main(["presets", "mouse_brown1997", "--body-weight-kg", "0.025"]) == 0
    assert "Brown RP" in capsys.readouterr().out


def test_pints_forward_model_gives_exact_sensitivities():
    model = exopk.load_model(exopk.model_path("m1_two_compartment"))
    forward = PintsForwardModel(model, exopk.Regimen.bolus("iv", 100.0),
                                outputs=["plasma_percent_id", "peripheral_percent_id"],
                                parameters=["CL", "Q"], fixed_values={"V_plasma": 1.2})
    assert isinstance(forward, pints.ForwardModelS1)
    assert (forward.n_parameters(), forward.n_outputs()) == (2, 2)
    times = np.array([1.0, 10.0, 60.0])
    y, dy = forward.simulateS1([0.3, 0.05], times)
    assert y.shape == (3, 2) and dy.shape == (3, 2, 2)
    np.testing.assert_allclose(forward.simulate([0.3, 0.05], times), y, rtol=1e-14)
    h = 1e-6
    fd = (forward.simulate([0.3 + h, 0.05], times) - forward.simulate([0.3 - h, 0.05], times)) / (2 * h)
    np.testing.assert_allclose(dy[:, :, 0], fd, rtol=1e-7, atol=1e-9)
    # a PINTS problem built on it evaluates
    problem = pints.SingleOutputProblem(
        PintsForwardModel(model, exopk.Regimen.bolus("iv", 100.0), outputs=["plasma_percent_id"]),
        times, y[:, 0])
    assert problem.evaluateS1([0.3, 1.2, 0.05, 2.0])[1].shape == (3, 4)


def test_pints_forward_model_rejects_unknown_names():
    model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    with pytest.raises(exopk.errors.SimulationError, match="unknown output"):
        PintsForwardModel(model, exopk.Regimen.bolus("iv", 1.0), outputs=["liver"])


def test_atomic_writes_leave_no_temporary_file_and_normal_permissions(tmp_path):
    import os
    from exopk.io import write_atomically
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        write_atomically(target, lambda p: (p.write_text("half"), (_ for _ in ()).throw(RuntimeError("boom"))))
    assert target.read_text() == "old" and len(list(tmp_path.iterdir())) == 1
    write_atomically(target, lambda p: p.write_text("new"))
    umask = os.umask(0)
    os.umask(umask)
    assert target.read_text() == "new"
    assert (target.stat().st_mode & 0o777) == (0o666 & ~umask)
