"""Median and equal-tailed credible intervals over draws, posterior probabilities, and how far
leaving one record out would move a posterior mean."""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["SAMPLE_DIMS", "credible_interval", "leave_one_out_shift", "probability_greater"]

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
    """Share of draws in which ``a > b`` (draw by draw: both computed from the same draws).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from exopk.metrics import probability_greater
    >>> a = xr.DataArray([[1.0, 2.0, 3.0, 4.0]], dims=("chain", "draw"))
    >>> b = xr.DataArray([[2.0, 1.0, 1.0, 5.0]], dims=("chain", "draw"))
    >>> float(probability_greater(a, b)), float(probability_greater(a, 2.5))
    (0.5, 0.5)
    """
    dims = _sample_dims(a)
    return (a > b).mean(dim=dims)


def leave_one_out_shift(values, log_likelihood):
    """How far the posterior mean of ``values`` moves when one record's likelihood is removed.

    Importance reweighting of the posterior draws by ``exp(-log_likelihood_i)`` gives the
    posterior without record ``i`` (Gelfand, Dey & Chang 1992); the shift of the mean is reported
    in posterior sd, with the weights' effective sample size ``1 / sum w^2`` (small: the record
    dominates and the reweighted estimate is rough).

    Parameters
    ----------
    values : array (S,)
        A quantity per posterior draw.
    log_likelihood : array (S, N)
        Each record's log-likelihood per draw (the same draws).

    Returns
    -------
    shift, ess : ndarray (N,)
        ``(mean without i - mean) / sd`` and the effective sample size per record.
    """
    values = np.asarray(values, dtype=float)
    log_w = -np.asarray(log_likelihood, dtype=float)
    if log_w.ndim != 2 or log_w.shape[0] != values.size:
        raise ValueError(f"log_likelihood must be (draws, records) with {values.size} draws, got "
                         f"shape {log_w.shape}")
    w = np.exp(log_w - log_w.max(axis=0))
    w /= w.sum(axis=0)
    sd = values.std()
    shift = (w.T @ values - values.mean()) / (sd if sd > 0 else np.inf)
    return shift, 1.0 / (w ** 2).sum(axis=0)
