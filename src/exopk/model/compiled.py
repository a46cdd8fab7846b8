"""A model compiled for simulation: index maps, structure and one expression function.

Every quantity that depends on parameters (transfer rates, saturable-transfer constants, dose
split fractions, output weights) is an expression; all of them are compiled into a single
:class:`~exopk.model.expressions.ExpressionSet` that returns values and exact parameter
derivatives for a batch of parameter sets in one call. Symbols that are not parameters come from
the species preset (see :data:`PHYSIOLOGY_SYMBOLS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from exopk.engine.linear import LinearSystem
from exopk.errors import ModelFileError, PhysiologyError, SimulationError
from exopk.model.expressions import ExpressionSet, parse_expression
from exopk.model.spec import Model
from exopk.physiology import SpeciesPhysiology, load_species

__all__ = ["CompiledModel", "PHYSIOLOGY_SYMBOLS", "physiology_value"]

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
class _OutputTerms:
    """Outputs as sums of weighted compartments: output ``o`` = sum of ``weight * x[state]``.

    Attributes
    ----------
    rows : ndarray of int
        Expression row of each term's weight.
    states : ndarray of int
        Compartment of each term.
    output_of_term : ndarray of int
        Output each term belongs to.
    output_percent : ndarray of bool
        Per output: scaled by 100 / total dose.
    membership : ndarray, shape (terms, outputs)
        1 where the term belongs to the output.
    placement : ndarray, shape (terms, outputs * states)
        1 at the (output, state) entry of the output matrix each term adds to.
    constant : ndarray, shape (outputs, states), or None
        The output matrix before percent scaling, when no weight depends on a parameter.
    """

    rows: np.ndarray
    states: np.ndarray
    output_of_term: np.ndarray
    output_percent: np.ndarray
    membership: np.ndarray
    placement: np.ndarray
    constant: np.ndarray | None

    @classmethod
    def build(cls, output_terms, output_percent, n_states, expressions, parameter_names):
        flat = [(o, state, row) for o, terms in enumerate(output_terms) for state, row in terms]
        n_outputs = len(output_terms)
        membership = np.zeros((len(flat), n_outputs))
        placement = np.zeros((len(flat), n_outputs * n_states))
        for k, (o, state, _) in enumerate(flat):
            membership[k, o] = 1.0
            placement[k, o * n_states + state] = 1.0
        rows = np.array([row for _, _, row in flat], dtype=int)
        constant = None
        if not any(expressions.expressions[r].symbols & set(parameter_names) for r in rows):
            weights = expressions(np.zeros((1, len(parameter_names))), derivatives=False)[0, rows]
            constant = (weights @ placement).reshape(n_outputs, n_states)
        return cls(rows=rows, states=np.array([state for _, state, _ in flat], dtype=int),
                   output_of_term=np.array([o for o, _, _ in flat], dtype=int),
                   output_percent=np.array(output_percent, dtype=bool),
                   membership=membership, placement=placement, constant=constant)


class CompiledModel:
    """Arrays and functions derived once from a :class:`~exopk.model.spec.Model`.

    Attributes
    ----------
    model : Model
    state_names : tuple of str
    parameter_names : tuple of str
    constants : dict
        Physiology symbols used by the model and their values.
    linear_sources, linear_targets : ndarray of int
        Compartment indices of first-order transfers (rate and clearance).
    saturable : list of tuple
        ``(source, target, vmax_row, km_row, volume_row)`` for Michaelis-Menten transfers.
    """

    def __init__(self, model: Model):
        self.model = model
        self.state_names = model.compartment_names
        self.state_index = {name: i for i, name in enumerate(self.state_names)}
        self.parameter_names = model.parameter_names
        self.parameter_index = {name: i for i, name in enumerate(self.parameter_names)}
        self.nominal = np.array([p.value for p in model.parameters], dtype=float)
        self.lower = np.array([p.lower for p in model.parameters], dtype=float)
        self.upper = np.array([p.upper for p in model.parameters], dtype=float)

        texts: list[tuple[str, str]] = []   # (expression text, where)

        def row(text: str, where: str) -> int:
            texts.append((str(text), where))
            return len(texts) - 1

        sources, targets, rate_rows = [], [], []
        self.saturable = []
        for i, t in enumerate(model.transfers):
            where = f"transfers[{i}]"
            s, d = self.state_index[t.source], self.state_index[t.target]
            volume = model.compartment(t.source).default_volume
            if t.kind == "rate":
                sources.append(s), targets.append(d), rate_rows.append(row(t.rate, where))
            elif t.kind == "clearance":
                sources.append(s), targets.append(d)
                rate_rows.append(row(f"({t.clearance}) / ({volume})", where))
            else:
                self.saturable.append((s, d, row(t.vmax, where), row(t.km, where), row(volume, where)))
        self.linear_sources = np.array(sources, dtype=int)
        self.linear_targets = np.array(targets, dtype=int)
        self.rate_rows = np.array(rate_rows, dtype=int)

        self.route_rows = {}      # route -> (target compartment indices, expression rows)
        for r in model.routes:
            pairs = [(self.state_index[c], row(f, f"routes.{r.name}.{c}"))
                     for c, f in r.targets.items()]
            self.route_rows[r.name] = (np.array([s for s, _ in pairs], dtype=int),
                                       np.array([e for _, e in pairs], dtype=int))

        self.endogenous_state = self.endogenous_row = None
        if model.endogenous is not None:
            self.endogenous_state = self.state_index[model.endogenous.compartment]
            self.endogenous_row = row(model.endogenous.rate, "endogenous.rate")
        self.output_endogenous = np.array([o.include_endogenous for o in model.outputs])

        output_terms, output_percent, self.output_units = [], [], []
        for o in model.outputs:
            terms, percent, unit = self._output_terms(o, row)
            output_terms.append(terms)
            output_percent.append(percent)
            self.output_units.append(unit)

        expressions = [parse_expression(text, where=where) for text, where in texts]
        symbols = set().union(*(e.symbols for e in expressions)) if expressions else set()
        self.species = self._species()
        used_at = {}
        for expression, (_, where) in zip(expressions, texts):
            for symbol in expression.symbols:
                used_at.setdefault(symbol, (where, expression.text))
        self.constants = self._resolve_constants(symbols - set(self.parameter_names), used_at)
        try:
            self.expressions = ExpressionSet(expressions, self.parameter_names, self.constants)
        except ModelFileError as exc:
            raise ModelFileError(exc.reason, file=model.source_file, key=exc.key) from None
        self.sinks = np.array([c.kind == "sink" for c in model.compartments])
        self._last_expressions = None
        self.output_term_table = _OutputTerms.build(output_terms, output_percent,
                                                    len(self.state_names), self.expressions,
                                                    self.parameter_names)
        self.constant_routes = self._check_constant_routes()

    # -- construction helpers -----------------------------------------------------------------
    def _output_terms(self, output, row):
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
        terms = [(self.state_index[m], row(weight, key)) for m in members]
        if output.residual_blood:
            vascular = next(c for c in model.compartments if c.kind in ("plasma", "blood"))
            organs = dict.fromkeys(model.compartment(n).organ for n in output.compartments
                                   if model.compartment(n).organ)
            blood = " + ".join(f"residual_blood_{o} * volume_ml_{o}" for o in organs)
            text = f"({blood}) / blood_volume_ml"
            if scale is not None:
                text = f"({text}) / ({scale})"
            terms.append((self.state_index[vascular.name], row(text, f"{key}.residual_blood")))
        return terms, output.kind in ("percent_id", "percent_id_per_g"), unit

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
        for name, (_, rows) in self.route_rows.items():
            if any(self.expressions.expressions[r].symbols & set(self.parameter_names) for r in rows):
                continue
            values = self.expressions(self.nominal[None], derivatives=False)[0, rows]
            if abs(values.sum() - 1.0) > 1e-9 or values.min() < 0 or values.max() > 1:
                raise ModelFileError(f"route '{name}' splits doses into fractions "
                                     f"{values.tolist()}; each must lie in [0, 1] and they must "
                                     "add up to 1", file=self.model.source_file,
                                     key=f"routes.{name}")
            constant.add(name)
        return frozenset(constant)

    @cached_property
    def linear_system(self) -> LinearSystem:
        """The first-order transfers as a :class:`~exopk.engine.linear.LinearSystem`."""
        return LinearSystem(len(self.state_names), self.linear_sources, self.linear_targets)

    @cached_property
    def output_drains(self) -> np.ndarray:
        """Per output: True when every compartment it reads drains (its area is finite)."""
        terms = self.output_term_table
        draining = self.linear_system.draining
        return np.array([bool(draining[terms.states[terms.output_of_term == o]].all())
                         for o in range(len(self.model.outputs))])

    # -- parameter handling -------------------------------------------------------------------
    def parameter_matrix(self, parameters=None) -> np.ndarray:
        """Turn user parameters into a (batch, n_parameters) array, checking names and bounds.

        ``parameters`` may be None (nominal values), a mapping name -> value or array of values
        (unnamed parameters keep their nominal value), a vector of all parameters or a
        (batch, n_parameters) array.
        """
        P = len(self.parameter_names)
        if parameters is None:
            theta = self.nominal[None, :].copy()
        elif isinstance(parameters, Mapping):
            unknown = set(parameters) - set(self.parameter_names)
            if unknown:
                raise SimulationError(f"unknown parameter(s) {', '.join(sorted(unknown))}; "
                                      f"known: {', '.join(self.parameter_names)}")
            values = {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in parameters.items()}
            sizes = {v.shape[0] for v in values.values()} or {1}
            if len(sizes) > 1 or any(v.ndim != 1 for v in values.values()):
                raise SimulationError("parameter arrays must be 1-d and of equal length")
            theta = np.repeat(self.nominal[None, :], max(sizes), axis=0)
            for name, v in values.items():
                theta[:, self.parameter_index[name]] = v
        else:
            theta = np.atleast_2d(np.asarray(parameters, dtype=float)).copy()
            if theta.ndim != 2 or theta.shape[1] != P:
                raise SimulationError(f"expected {P} parameter values "
                                      f"({', '.join(self.parameter_names)}), got shape "
                                      f"{np.shape(parameters)}")
        bad = ~np.isfinite(theta)
        if bad.any():
            b, p = np.argwhere(bad)[0]
            raise SimulationError(f"parameter '{self.parameter_names[p]}' is {theta[b, p]} "
                                  f"(parameter set {b})")
        outside = (theta < self.lower) | (theta > self.upper)
        if outside.any():
            b, p = np.argwhere(outside)[0]
            raise SimulationError(
                f"parameter '{self.parameter_names[p]}' = {theta[b, p]:g} is outside its bounds "
                f"[{self.lower[p]:g}, {self.upper[p]:g}] (parameter set {b})")
        return theta

    def evaluate_expressions(self, theta: np.ndarray, *, derivatives: bool = True):
        """Values (batch, n_expr) and Jacobian (batch, n_expr, n_parameters) of all expressions.

        Without ``derivatives`` the Jacobian is None. The arrays are read-only: the last result
        is reused when the same parameters are asked for again.
        """
        key = (theta.tobytes(), theta.shape, derivatives)
        if self._last_expressions is not None and self._last_expressions[0] == key:
            return self._last_expressions[1]
        if derivatives:
            values, jacobian = self.expressions(theta)
            jacobian.flags.writeable = False
        else:
            values, jacobian = self.expressions(theta, derivatives=False), None
        if not np.all(np.isfinite(values)):
            b, e = np.argwhere(~np.isfinite(values))[0]
            expr = self.expressions.expressions[e]
            raise SimulationError(f"expression '{expr.text}' evaluates to {values[b, e]} "
                                  f"(parameter set {b})")
        values.flags.writeable = False
        # one-entry cache: predictions for one parameter set evaluate the expressions repeatedly
        self._last_expressions = (key, (values, jacobian))
        return values, jacobian
