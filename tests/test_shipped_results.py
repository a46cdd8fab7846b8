"""The results shipped in fits/ were made by the code, model files and evidence that ship them."""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from exopk.inference.fit import fit
from exopk.inference.preparation import prepare

SHIPPED = sorted(path.stem for path in Path("fits").glob("*.nc"))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_draws_have_the_log_posterior_the_current_code_gives(name):
    """Model files, evidence, priors and likelihood are those the draws were sampled under."""
    tree = xr.open_datatree(f"fits/{name}.nc")
    lp = prepare(f"fits/{name}.toml").log_posterior
    assert tree.attrs["fit_file_text"] == Path(f"fits/{name}.toml").read_text()
    posterior = tree["posterior"]
    for draw in (0, 1, 500, 999):
        natural = {variable: float(posterior[variable].values[0, draw])
                   for variable in posterior.data_vars}
        stored = float(tree["sample_stats"]["lp"].values[0, draw])
        assert lp(lp.to_unconstrained(natural)) == pytest.approx(stored, rel=1e-9, abs=1e-9), \
            f"{name}: draw {draw}"


def test_the_main_result_reproduces_its_first_draws_bit_for_bit():
    """MAP, chain starts and NUTS of the shipped code give the committed draws, same seed."""
    shipped = xr.open_datatree("fits/mouse_iv_mps.nc")
    again = fit("fits/mouse_iv_mps.toml", chains=2, draws=4, processes=2, progress=False,
                write=False)
    for variable, values in again.tree["posterior"].data_vars.items():
        np.testing.assert_array_equal(
            values.values, shipped["posterior"][variable].values[:2, :4], err_msg=variable)
