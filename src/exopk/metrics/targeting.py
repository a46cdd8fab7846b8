"""Targeting metrics: Kp, targeting index, DTE% and DTP%, pathway share, influx constant Ki.

Context for any delivery number: across nanoparticle studies of 2005-2015 the median share of
the administered dose delivered to a solid tumour is 0.7 %ID (Wilhelm S, Tavares AJ, Dai Q, et
al. Analysis of nanoparticle delivery to tumours. Nat Rev Mater 2016;1:16014,
doi:10.1038/natrevmats.2016.14): :data:`TUMOUR_DELIVERY_MEDIAN_PERCENT_ID`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from exopk.dosing import Regimen
from exopk.engine.compiled import compile_model
from exopk.errors import ExopkError
from exopk.metrics.exposure import auc, flat_sets, labelled, output_at

__all__ = ["TUMOUR_DELIVERY_MEDIAN_PERCENT_ID", "direct_transport_percentage",
           "drug_targeting_efficiency", "influx_constant", "pathway_share", "targeting_index",
           "tissue_to_blood_ratio"]

TUMOUR_DELIVERY_MEDIAN_PERCENT_ID = 0.7
"""Median nanoparticle delivery to solid tumours, %ID (Wilhelm et al. 2016, Nat Rev Mater
1:16014)."""


def tissue_to_blood_ratio(tissue_auc, blood_auc):
    """Kp = AUC_tissue / AUC_blood over the same horizon (units: ratio of their units).

    Examples
    --------
    In ``m2_mps`` at its nominal values the liver takes vesicles up from plasma at
    ``k_uptake_liver`` = 0.1/min and degrades them at ``k_degradation_liver`` = 0.005/min, and
    nothing returns, so over all time the perfused liver's AUC is 0.1 / 0.005 = 20 times the
    plasma's:

    >>> import xarray as xr, exopk
    >>> from exopk.metrics import auc
    >>> model = exopk.load_model(exopk.model_path("m2_mps"))
    >>> nominal = xr.DataArray([[p.value for p in model.parameters]], dims=("draw", "parameter"),
    ...                        coords={"parameter": list(model.parameter_names)})
    >>> areas = auc(model, nominal, exopk.Regimen.bolus("iv", 100), 1e6,
    ...             ["plasma_percent_id", "liver_perfused_percent_id",
    ...              "spleen_perfused_percent_id", "lung_perfused_percent_id"])
    >>> kp = tissue_to_blood_ratio(areas.sel(output="liver_perfused_percent_id"),
    ...                            areas.sel(output="plasma_percent_id"))
    >>> kp.values.round(9)
    array([20.])
    """
    return tissue_auc / blood_auc


def targeting_index(target_auc, off_target_aucs, reference=None):
    """Targeting index TI = AUC_target / sum of AUC_off-target (liver, spleen, lung by default).

    ``off_target_aucs`` is a DataArray with an ``output`` dim summed over. With ``reference``
    (the TI of a reference route, e.g. IV, from the same draws) the result is TI / TI_reference.

    Examples
    --------
    Liver against spleen and lung in ``m2_mps`` at its nominal values: each organ's AUC over
    all time is its uptake rate over its degradation rate times the plasma AUC, so
    TI = (0.1 / 0.005) / (0.02 / 0.005 + 0.02 / 0.005) = 2.5:

    >>> import xarray as xr, exopk
    >>> from exopk.metrics import auc
    >>> model = exopk.load_model(exopk.model_path("m2_mps"))
    >>> nominal = xr.DataArray([[p.value for p in model.parameters]], dims=("draw", "parameter"),
    ...                        coords={"parameter": list(model.parameter_names)})
    >>> areas = auc(model, nominal, exopk.Regimen.bolus("iv", 100), 1e6,
    ...             ["plasma_percent_id", "liver_perfused_percent_id",
    ...              "spleen_perfused_percent_id", "lung_perfused_percent_id"])
    >>> ti = targeting_index(areas.sel(output="liver_perfused_percent_id"),
    ...                      areas.sel(output=["spleen_perfused_percent_id",
    ...                                        "lung_perfused_percent_id"]))
    >>> ti.values.round(9)
    array([2.5])
    >>> targeting_index(areas.sel(output="liver_perfused_percent_id"),
    ...                 areas.sel(output=["spleen_perfused_percent_id"]), reference=ti).values
    array([2.])
    """
    index = target_auc / off_target_aucs.sum("output")
    return index if reference is None else index / reference


def drug_targeting_efficiency(brain_in, blood_in, brain_iv, blood_iv):
    """DTE% = (AUC_brain / AUC_blood)_IN / (AUC_brain / AUC_blood)_IV x 100.

    Above 100: relatively more brain exposure per blood exposure after intranasal than after
    intravenous dosing. Kozlovskaya L, Abou-Kaoud M, Stepensky D. Quantitative analysis of drug
    delivery to the brain via nasal route. J Control Release 2014;189:133-140.

    Examples
    --------
    >>> round(drug_targeting_efficiency(6.25, 28.3, 59.8, 68.7), 1)
    25.4
    """
    return 100.0 * (brain_in / blood_in) / (brain_iv / blood_iv)


def direct_transport_percentage(brain_in, blood_in, brain_iv, blood_iv):
    """DTP% = (B_IN - B_x) / B_IN x 100 with B_x = B_IV / P_IV x P_IN.

    ``B`` brain AUC, ``P`` blood AUC. ``B_x`` is the brain exposure that the systemic share of an
    intranasal dose would give if it behaved like an IV dose; DTP% is the share of intranasal
    brain exposure attributed to direct nose-to-brain transport (negative when IN gives less brain
    exposure per blood exposure than IV). It assumes the systemic part of the IN dose reaches the
    brain as an IV dose does; :func:`pathway_share` gives the model's own answer. Kozlovskaya et
    al. 2014 (see :func:`drug_targeting_efficiency`).

    Examples
    --------
    >>> round(direct_transport_percentage(6.25, 28.3, 59.8, 68.7))
    -294
    """
    return 100.0 * (brain_in - brain_iv / blood_iv * blood_in) / brain_in


def pathway_share(model, parameter_sets, source: str, target: str, exposed) -> xr.DataArray:
    """Share of the total ``[0, inf)`` exposure of ``exposed`` owed to the transfer source->target.

    For a dose into ``source`` (for example the nasal depot), the exposure of the compartments
    ``exposed`` (for example the brain's) is split by superposition: the amount carried by the
    transfer ``source -> target`` over all time is ``k AUC_source``, and each unit put into
    ``target`` gives ``sum_c G[c, target]`` of exposure with ``G = -A_NN^-1`` (exact areas). The
    share is ``k AUC_source sum_c G[c, target] / sum_c AUC_c``. ``source`` must receive nothing
    from other compartments (a depot), so that material never returns to it.

    Returns
    -------
    xarray.DataArray
        Dims of the sets, fraction in [0, 1].

    Examples
    --------
    A depot empties into the brain (``k_direct``) and into plasma (``k_absorb``), and plasma
    loses half of what leaves it to the brain. With equal depot rates two thirds of the brain's
    exposure come by the direct path: ``k_direct / (k_direct + k_absorb k_in / (k_in +
    k_out))`` = 1 / (1 + 1/2).

    >>> import xarray as xr
    >>> from exopk.model import Model, Compartment, Transfer, Route, Output, Parameter, Prior
    >>> prior = Prior("lognormal", {"median": 0.01, "sigma": 1.0})
    >>> rates = {"k_direct": 0.01, "k_absorb": 0.01, "k_in": 0.05, "k_out": 0.05, "k_loss": 0.02}
    >>> paths = [("depot", "brain", "k_direct"), ("depot", "plasma", "k_absorb"),
    ...          ("plasma", "brain", "k_in"), ("plasma", "gone", "k_out"),
    ...          ("brain", "gone", "k_loss")]
    >>> model = Model(
    ...     "depot_to_brain",
    ...     compartments=(Compartment("depot", kind="depot"), Compartment("plasma", kind="plasma",
    ...                   volume="1"), Compartment("brain"), Compartment("gone", kind="sink")),
    ...     transfers=tuple(Transfer(a, b, rate=k) for a, b, k in paths),
    ...     routes=(Route("nasal", {"depot": "1"}),),
    ...     outputs=(Output("brain_percent_id", compartments=("brain",)),),
    ...     parameters=tuple(Parameter(k, v, "1/min", prior=prior) for k, v in rates.items()))
    >>> sets = xr.DataArray([list(rates.values())], dims=("draw", "parameter"),
    ...                     coords={"parameter": list(rates)})
    >>> pathway_share(model, sets, "depot", "brain", ["brain"]).values.round(9)
    array([0.66666667])
    """
    compiled = compile_model(model)
    system = compiled.linear_system
    index = compiled.state_index
    for name in [source, target, *exposed]:
        if name not in index:
            raise ExopkError(f"model '{model.name}' has no compartment '{name}'")
    s, d = index[source], index[target]
    if np.any(compiled.linear_targets == s):
        raise ExopkError(f"compartment '{source}' receives transfers: pathway_share needs a depot")
    j = np.flatnonzero((compiled.linear_sources == s) & (compiled.linear_targets == d))
    if j.size != 1:
        raise ExopkError(f"model '{model.name}' has no transfer {source} -> {target}")
    theta, lead, shape, coords = flat_sets(compiled, parameter_sets)
    values, _ = compiled.evaluate_expressions(theta, derivatives=False)
    rates = values[:, compiled.rate_rows]
    N = list(system.draining_index)
    G = -np.linalg.inv(system.draining_matrix(rates))                        # (B, N, N)
    rows = [N.index(index[c]) for c in exposed]
    area_per_unit_dose = G[:, :, N.index(s)]                                 # bolus of 1 in source
    total = area_per_unit_dose[:, rows].sum(axis=1)
    carried = rates[:, j[0]] * area_per_unit_dose[:, N.index(s)]
    direct = carried * G[:, rows, N.index(d)].sum(axis=1)
    return labelled(direct / total, lead, shape, coords,
                    attrs={"units": "1", "long_name": f"share of exposure via {source}->{target}"})


def influx_constant(model, parameter_sets, regimen: Regimen, tissue_output: str,
                    plasma_output: str, times) -> xr.Dataset:
    """Unidirectional influx constant Ki by multiple-time regression (Patlak plot).

    Regress the tissue-to-plasma ratio ``R(t) = y_tissue(t) / y_plasma(t)`` on the exposure time
    ``theta(t) = int_0^t y_plasma / y_plasma(t)`` at ``times``, per draw (ordinary least
    squares); Ki is the slope and ``V_i`` the intercept (initial distribution volume). For
    irreversible uptake Ki is the clearance into the tissue. Patlak CS, Blasberg RG,
    Fenstermacher JD. Graphical evaluation of blood-to-brain transfer constants from
    multiple-time uptake data. J Cereb Blood Flow Metab 1983;3:1-7. The plasma area is exact
    (:func:`~exopk.metrics.exposure.auc`).

    Returns
    -------
    xarray.Dataset
        ``Ki`` (tissue unit / plasma unit / time unit) and ``intercept`` (tissue unit / plasma
        unit), dims of the sets.

    Examples
    --------
    Irreversible uptake from a 2-mL plasma compartment at ``k_in`` = 0.01/min: the tissue holds
    ``k_in V int c dt``, so the Patlak plot is a line through 0 with slope
    Ki = 0.01 x 2 = 0.02 mL/min:

    >>> import xarray as xr, exopk
    >>> from exopk.model import Model, Compartment, Transfer, Route, Output, Parameter, Prior
    >>> prior = Prior("lognormal", {"median": 0.01, "sigma": 1.0})
    >>> model = Model(
    ...     "uptake",
    ...     compartments=(Compartment("plasma", kind="plasma", volume="2"), Compartment("tissue"),
    ...                   Compartment("gone", kind="sink")),
    ...     transfers=(Transfer("plasma", "tissue", rate="k_in"),
    ...                Transfer("plasma", "gone", rate="k_out")),
    ...     routes=(Route("iv", {"plasma": "1"}),),
    ...     outputs=(Output("tissue_amount", kind="amount", compartments=("tissue",)),
    ...              Output("plasma_concentration", kind="concentration",
    ...                     compartments=("plasma",))),
    ...     parameters=(Parameter("k_in", 0.01, "1/min", prior=prior),
    ...                 Parameter("k_out", 0.1, "1/min", prior=prior)))
    >>> sets = xr.DataArray([[0.01, 0.1]], dims=("draw", "parameter"),
    ...                     coords={"parameter": ["k_in", "k_out"]})
    >>> ki = influx_constant(model, sets, exopk.Regimen.bolus("iv", 100), "tissue_amount",
    ...                      "plasma_concentration", [5, 10, 20, 40])
    >>> ki["Ki"].values.round(9), ki["Ki"].attrs["units"]
    (array([0.02]), '(dose)/(dose/mL)/min')
    >>> bool(abs(ki["intercept"].values).max() < 1e-9)
    True
    """
    t = np.asarray(times, dtype=float)
    if t.ndim != 1 or t.size < 2 or np.any(t <= 0):
        raise ExopkError(f"influx_constant needs at least two positive times, got {times}")
    values = output_at(model, parameter_sets, regimen, t, [tissue_output, plasma_output])
    tissue = values.sel(output=tissue_output, drop=True)
    plasma = values.sel(output=plasma_output, drop=True)
    area = auc(model, parameter_sets, regimen, t, plasma_output).isel(output=0, drop=True)
    area = area.rename(horizon="time").assign_coords(time=tissue["time"])
    x = (area / plasma).drop_vars("unit", errors="ignore")
    y = (tissue / plasma).drop_vars("unit", errors="ignore")
    xm, ym = x.mean("time"), y.mean("time")
    slope = ((x - xm) * (y - ym)).sum("time") / ((x - xm) ** 2).sum("time")
    units = dict(zip(values["output"].values, values["unit"].values))
    ratio = f"({units[tissue_output]})/({units[plasma_output]})"
    out = xr.Dataset({"Ki": slope, "intercept": ym - slope * xm})
    out["Ki"].attrs["units"] = f"{ratio}/{model.time_unit}"
    out["intercept"].attrs["units"] = ratio
    out.attrs["times"] = t.tolist()
    return out
