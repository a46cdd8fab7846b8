"""Convert %ID/g and %ID/organ into each other with the organ masses of a species preset."""

from __future__ import annotations

import numpy as np
import xarray as xr

from exopk.data.problems import ProblemCollector
from exopk.errors import PhysiologyError
from exopk.physiology import SpeciesPhysiology, load_species

__all__ = ["to_percent_id_per_organ"]

_PER_G = "percent_id_per_g"
_PER_ORGAN = "percent_id_per_organ"


def to_percent_id_per_organ(ds: xr.Dataset, species: str | SpeciesPhysiology, *,
                            body_weight_kg: float | None = None) -> xr.Dataset:
    """Express every %ID/g record also as %ID/organ, and every %ID/organ record also as %ID/g.

    ``%ID/organ = %ID/g x organ mass (g)``, with the organ mass of the species preset
    (:meth:`exopk.physiology.SpeciesPhysiology.organ_mass_g`). Only records whose
    ``quantity`` is ``percent_id_per_g`` or ``percent_id_per_organ`` are converted; their
    ``matrix`` must be an organ with a mass in the preset (a sub-site such as
    ``brain:midbrain`` has no mass of its own) and their ``species`` must be the preset's.

    Parameters
    ----------
    ds : xarray.Dataset
        Records from :func:`exopk.data.load` or :func:`exopk.data.read_csv`
        (``value_canonical`` in %ID/g or %ID/organ).
    species : str or SpeciesPhysiology
        A preset name (for example ``"mouse_brown1997"``) or a built physiology.
    body_weight_kg : float, optional
        Body weight in kg, when ``species`` is a preset name (see
        :func:`exopk.physiology.load_species`).

    Returns
    -------
    xarray.Dataset
        A copy of ``ds`` with ``organ_mass_g`` (g), ``value_percent_id_per_organ`` and
        ``error_percent_id_per_organ`` (%ID/organ), ``value_percent_id_per_g`` and
        ``error_percent_id_per_g`` (%ID/g); NaN for the other records. ``attrs`` gain
        ``species_preset`` and ``body_weight_kg``.

    Raises
    ------
    exopk.data.DataValidationError
        A record's organ has no mass in the preset, or its species is not the preset's;
        every such record is listed with its file, line and column.
    exopk.errors.PhysiologyError
        Unknown preset, invalid body weight, or ``body_weight_kg`` given with a built
        physiology.

    Examples
    --------
    A 25-g mouse's liver weighs 1.375 g in ``mouse_brown1997``, so 10 %ID/g is 13.75 %ID in
    the liver:

    >>> import pathlib, tempfile
    >>> from exopk.data import read_csv, to_percent_id_per_organ
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = pathlib.Path(folder.name) / "mine.csv"
    >>> _ = path.write_text(
    ...     "study_key,species,route,matrix,quantity,statistic,value,unit,time,time_unit\\n"
    ...     "mine,mouse,iv,liver,percent_id_per_g,mean,10,%ID/g,2,h\\n")
    >>> both = to_percent_id_per_organ(read_csv(path), "mouse_brown1997", body_weight_kg=0.025)
    >>> float(both["organ_mass_g"][0]), float(both["value_percent_id_per_organ"][0])
    (1.375, 13.75)
    >>> folder.cleanup()
    """
    if isinstance(species, SpeciesPhysiology):
        if body_weight_kg is not None:
            raise PhysiologyError("body_weight_kg applies to a preset name; this physiology "
                                  f"was built for {species.body_weight_kg:g} kg")
        physiology = species
    else:
        physiology = load_species(species, body_weight_kg=body_weight_kg)
    problems = ProblemCollector(str(ds.attrs.get("source_file", "")))
    size = ds.sizes["record"]
    mass = np.full(size, np.nan)
    quantities = ds["quantity"].values
    for i in np.flatnonzero((quantities == _PER_G) | (quantities == _PER_ORGAN)):
        file, line = str(ds["source_file"].values[i]), int(ds["line"].values[i])
        organ, record_species = str(ds["matrix"].values[i]), str(ds["species"].values[i])
        if record_species != physiology.species:
            problems.add(f"species {record_species!r} is not that of preset "
                         f"{physiology.preset!r} ({physiology.species})", file=file, row=line,
                         column="species")
        elif organ not in physiology.organs:
            problems.add(f"no organ mass for {organ!r} in preset {physiology.preset!r}; organs "
                         f"with a mass: {', '.join(physiology.organs)}", file=file, row=line,
                         column="matrix")
        else:
            mass[i] = physiology.organ_mass_g(organ)
    problems.raise_if_any()
    per_g = quantities == _PER_G
    per_organ = quantities == _PER_ORGAN
    out = ds.copy()
    out["organ_mass_g"] = ("record", mass, {"units": "g"})
    for kind in ("value", "error"):
        canonical = ds[f"{kind}_canonical"].values
        out[f"{kind}_percent_id_per_organ"] = (
            "record", np.where(per_g, canonical * mass, np.where(per_organ, canonical, np.nan)),
            {"units": "%ID/organ"})
        out[f"{kind}_percent_id_per_g"] = (
            "record", np.where(per_organ, canonical / mass, np.where(per_g, canonical, np.nan)),
            {"units": "%ID/g"})
    out.attrs.update(species_preset=physiology.preset, body_weight_kg=physiology.body_weight_kg)
    return out
