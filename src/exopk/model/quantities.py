"""Every parameter-dependent quantity of a model as one row of an expression set.

Transfer rates, saturable-transfer constants, dose split fractions, the endogenous secretion
rate and output weights are expressions of parameters and physiology symbols. They are compiled
into a single :class:`~exopk.model.expressions.ExpressionSet` that returns values and exact
parameter derivatives for a batch of parameter sets in one call. Symbols that are not parameters
come from the model's species preset (see :data:`PHYSIOLOGY_SYMBOLS`); a symbol that resolves
nowhere is a :class:`~exopk.errors.ModelFileError` naming the file and the key, raised when the
model file is read.

The engine (:mod:`exopk.engine.compiled`) turns these rows into index arrays for simulation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exopk.errors import ModelFileError, PhysiologyError
from exopk.model.expressions import ExpressionSet, parse_expression
from exopk.physiology import SpeciesPhysiology, load_species

__all__ = ["ModelQuantities", "OutputWeights", "PHYSIOLOGY_SYMBOLS", "physiology_value"]

PHYSIOLOGY_SYMBOLS = {
    "body_weight_kg": "body weight (kg)",
    "blood_volume_ml": "blood volume (mL)",
    "plasma_volume_ml": "plasma volume (mL)",
    "cardiac_output_ml_per_min": "cardiac output (mL/min)",
    "volume_ml_<organ>": "organ volume (mL)",
    "mass_g_<organ>": "organ mass (g)",
    "residual_blood_<organ>": "share of organ volume that is blood",
    "blood_flow_ml_per_min_<organ>": "organ blood flow (mL/min)",
}


def physiology_value(species: SpeciesPhysiology, symbol: str) -> float:
    """Value of a physiology symbol (see :data:`PHYSIOLOGY_SYMBOLS`) under a species preset."""
    direct = {"body_weight_kg": lambda: species.body_weight_kg,
              "blood_volume_ml": lambda: species.blood_volume_ml,
              "plasma_volume_ml": lambda: species.plasma_volume_ml,
              "cardiac_output_ml_per_min": lambda: species.cardiac_output_ml_per_min}
    if symbol in direct:
        return float(direct[symbol]())
    for prefix, method in (("volume_ml_", species.organ_volume_ml),
                           ("mass_g_", species.organ_mass_g),
                           ("residual_blood_", species.residual_blood_fraction),
                           ("blood_flow_ml_per_min_", species.blood_flow_ml_per_min)):
        if symbol.startswith(prefix):
            return float(method(symbol[len(prefix):]))
    raise KeyError(symbol)


@dataclass(frozen=True)
class OutputWeights:
    """An output as a weighted sum of compartments.

    Attributes
    ----------
    terms : tuple of (str, int)
        ``(compartment, expression row of its weight)``.
    percent : bool
        Scaled by 100 / dose given (``percent_id`` and ``percent_id_per_g`` outputs; the dose
        given by each time, :mod:`exopk.engine.simulation`).
    unit : str
    """

    terms: tuple[tuple[str, int], ...]
    percent: bool
    unit: str


class ModelQuantities:
    """The expression rows of a :class:`~exopk.model.spec.Model` (``model.quantities``).

    Attributes
    ----------
    texts : tuple of (str, str)
        ``(expression text, where it comes from)`` per row.
    transfer_rows : tuple of tuple of int
        Per transfer: ``(rate row,)`` for first-order transfers (a clearance divided by the
        source volume), ``(vmax row, km row, volume row)`` for saturable ones.
    route_rows : dict
        Route -> ``((compartment, split fraction row), ...)``.
    endogenous_row : int or None
        Row of the endogenous secretion rate.
    outputs : tuple of OutputWeights
    species : SpeciesPhysiology or None
    constants : dict
        Physiology symbols used by the model and their values.
    expressions : ExpressionSet
        All rows, in order.
    constant_routes : frozenset of str
        Routes whose split fractions use no parameter (checked here, once).
    """

    def __init__(self, model):
        self.model = model
        texts: list[tuple[str, str]] = []

        def row(text: str, where: str) -> int:
            texts.append((str(text), where))
            return len(texts) - 1

        transfer_rows = []
        for i, t in enumerate(model.transfers):
            where = f"transfers[{i}]"
            volume = model.compartment(t.source).default_volume
            if t.kind == "rate":
                transfer_rows.append((row(t.rate, where),))
            elif t.kind == "clearance":
                transfer_rows.append((row(f"({t.clearance}) / ({volume})", where),))
            else:
                transfer_rows.append((row(t.vmax, where), row(t.km, where), row(volume, where)))
        self.transfer_rows = tuple(transfer_rows)
        self.route_rows = {r.name: tuple((c, row(f, f"routes.{r.name}.{c}"))
                                         for c, f in r.targets.items()) for r in model.routes}
        self.endogenous_row = None
        if model.endogenous is not None:
            self.endogenous_row = row(model.endogenous.rate, "endogenous.rate")
        self.outputs = tuple(self._output_weights(o, row) for o in model.outputs)
        self.texts = tuple(texts)

        expressions = [parse_expression(text, where=where) for text, where in texts]
        symbols = set().union(*(e.symbols for e in expressions)) if expressions else set()
        self.species = self._species()
        used_at = {}
        for expression, (_, where) in zip(expressions, texts):
            for symbol in expression.symbols:
                used_at.setdefault(symbol, (where, expression.text))
        self.constants = self._resolve_constants(symbols - set(model.parameter_names), used_at)
        try:
            self.expressions = ExpressionSet(expressions, model.parameter_names, self.constants)
        except ModelFileError as exc:
            raise ModelFileError(exc.reason, file=model.source_file, key=exc.key) from None
        self.constant_routes = self._check_constant_routes()

    def _output_weights(self, output, row) -> OutputWeights:
        model = self.model
        key = f"outputs.{output.name}"
        members = list(output.compartments)
        if output.signal == "label":
            members += [c.name for c in model.compartments
                        if c.kind == "free_label" and c.label_of in output.compartments]
        if output.kind == "concentration":
            scale = output.volume or model.compartment(output.compartments[0]).default_volume
            unit = f"{model.amount_unit}/mL"
        elif output.kind == "percent_id_per_g":
            organs = [model.compartment(n).organ for n in output.compartments
                      if model.compartment(n).organ]
            scale = output.mass_g or " + ".join(f"mass_g_{o}" for o in dict.fromkeys(organs))
            unit = "%ID/g"
        else:
            scale = None
            unit = "%ID" if output.kind == "percent_id" else model.amount_unit
        weight = "1" if scale is None else f"1 / ({scale})"
        terms = [(m, row(weight, key)) for m in members]
        if output.residual_blood:
            vascular = next(c for c in model.compartments if c.kind in ("plasma", "blood"))
            organs = dict.fromkeys(model.compartment(n).organ for n in output.compartments
                                   if model.compartment(n).organ)
            blood = " + ".join(f"residual_blood_{o} * volume_ml_{o}" for o in organs)
            text = f"({blood}) / blood_volume_ml"
            if scale is not None:
                text = f"({text}) / ({scale})"
            terms.append((vascular.name, row(text, f"{key}.residual_blood")))
        return OutputWeights(tuple(terms), output.kind in ("percent_id", "percent_id_per_g"), unit)

    def _species(self) -> SpeciesPhysiology | None:
        spec = self.model.species
        if spec is None:
            return None
        try:
            return load_species(spec.preset, body_weight_kg=spec.body_weight_kg)
        except PhysiologyError as exc:
            raise ModelFileError(str(exc), file=self.model.source_file, key="species") from None

    def _resolve_constants(self, symbols, used_at) -> dict[str, float]:
        constants = {}
        file = self.model.source_file
        for symbol in sorted(symbols):
            where, text = used_at[symbol]
            if self.species is None:
                raise ModelFileError(
                    f"unknown symbol '{symbol}' in '{text}': not a parameter, and physiology "
                    "symbols need a [species] table", file=file, key=where)
            try:
                constants[symbol] = physiology_value(self.species, symbol)
            except KeyError:
                raise ModelFileError(
                    f"unknown symbol '{symbol}' in '{text}': not a parameter and not a "
                    f"physiology symbol ({', '.join(PHYSIOLOGY_SYMBOLS)})", file=file,
                    key=where) from None
            except PhysiologyError as exc:
                raise ModelFileError(f"symbol '{symbol}' in '{text}': {exc}; declare it as a "
                                     "parameter to give it a value", file=file, key=where) from None
        return constants

    def _check_constant_routes(self) -> frozenset[str]:
        """Routes whose split fractions use no parameter: checked once here, not per simulation."""
        constant = set()
        names = set(self.model.parameter_names)
        nominal = np.array([p.value for p in self.model.parameters], dtype=float)
        for name, pairs in self.route_rows.items():
            rows = np.array([r for _, r in pairs], dtype=int)
            if any(self.expressions.expressions[r].symbols & names for r in rows):
                continue
            values = self.expressions(nominal[None], derivatives=False)[0, rows]
            if abs(values.sum() - 1.0) > 1e-9 or values.min() < 0 or values.max() > 1:
                raise ModelFileError(f"route '{name}' splits doses into fractions "
                                     f"{values.tolist()}; each must lie in [0, 1] and they must "
                                     "add up to 1", file=self.model.source_file,
                                     key=f"routes.{name}")
            constant.add(name)
        return frozenset(constant)
