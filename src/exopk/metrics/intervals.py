"""Median and equal-tailed credible intervals over draws, and posterior probabilities."""

from __future__ import annotations

import xarray as xr

__all__ = ["SAMPLE_DIMS", "credible_interval", "probability_greater"]

SAMPLE_DIMS = ("chain", "draw")


def _sample_dims(values: xr.DataArray) -> list[str]:
    dims = [d for d in SAMPLE_DIMS if d in values.dims]
    if not dims:
        raise ValueError(f"values have no draw dimension (dims {values.dims}); expected "
                         f"{' and/or '.join(SAMPLE_DIMS)}")
    return dims


def credible_interval(values: xr.DataArray, level: float = 0.95) -> xr.Dataset:
    """Median and the equal-tailed ``level`` interval over ``chain`` and ``draw``.

    Returns
    -------
    xarray.Dataset
        ``median``, ``low``, ``high`` with the remaining dims of ``values``; ``attrs`` keep the
        units and record the level.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> x = xr.DataArray(np.arange(101.0)[None], dims=("chain", "draw"))
    >>> ci = credible_interval(x, 0.9)
    >>> [round(float(ci[k]), 9) for k in ("median", "low", "high")]
    [50.0, 5.0, 95.0]
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    dims = _sample_dims(values)
    tail = (1 - level) / 2
    q = values.quantile([0.5, tail, 1 - tail], dim=dims, skipna=False)
    out = xr.Dataset({"median": q.isel(quantile=0, drop=True), "low": q.isel(quantile=1, drop=True),
                      "high": q.isel(quantile=2, drop=True)})
    out.attrs.update(values.attrs)
    out.attrs["level"] = level
    return out


def probability_greater(a: xr.DataArray, b: xr.DataArray | float) -> xr.DataArray:
    """Share of draws in which ``a > b`` (draw by draw: both computed from the same draws)."""
    dims = _sample_dims(a)
    return (a > b).mean(dim=dims)
