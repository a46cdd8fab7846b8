"""Provenance records: versions, platform, inputs with hashes and relative paths."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pints
import scipy
import threadpoolctl
import xarray as xr

from exopk.cli import main
from exopk.provenance import SCHEMA_VERSION, get_provenance_dict, relative_path


def test_record_names_versions_platform_and_hashed_inputs(tmp_path):
    source = tmp_path / "inputs" / "model.toml"
    source.parent.mkdir()
    source.write_text("[model]\nname = 'x'\n")
    result = tmp_path / "results" / "run.nc"
    record = get_provenance_dict(inputs={"model_file": source}, result_path=result,
                                 parameters={"seed": 3}, command=["/opt/bin/exopk", "fit"])
    assert record["schema_version"] == SCHEMA_VERSION
    assert record["libraries"]["numpy"] == np.__version__
    assert record["libraries"]["scipy"] == scipy.__version__
    assert record["libraries"]["pints"] == pints.__version__
    assert record["platform"]["system"]
    loaded = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    assert len(record["numeric_kernels"]["blas"]) == len(loaded)
    assert all(i["architecture"] in " ".join(record["numeric_kernels"]["blas"]) for i in loaded)
    assert record["numeric_kernels"]["numpy_simd"][0] != "unknown"
    assert record["command"] == ["exopk", "fit"]
    assert record["inputs"]["model_file"] == {
        "path": "../inputs/model.toml",
        "sha256": hashlib.sha256(source.read_bytes()).hexdigest()}
    assert json.loads(json.dumps(record)) == record


def test_packaged_files_are_named_inside_the_package():
    import exopk.data
    packaged = next(Path(exopk.data.__file__).parent.rglob("*.csv"))
    assert relative_path(packaged, "/somewhere/else").startswith("exopk:data/")


def test_simulate_netcdf_records_its_provenance(tmp_path, capsys):
    path = tmp_path / "sim.nc"
    assert main(["simulate", "m0_one_compartment", "--times", "1,2", "--netcdf", str(path)]) == 0
    record = json.loads(xr.open_dataset(path).attrs["provenance"])
    assert record["software"]["name"] == "exopk"
    assert record["libraries"]["xarray"] == xr.__version__
    model = record["inputs"]["model_file"]
    assert not Path(model["path"]).is_absolute()
