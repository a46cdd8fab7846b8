"""A model compiled for simulation: index maps, structure and the model's expressions.

:func:`compile_model` turns a :class:`~exopk.model.spec.Model` into a :class:`CompiledModel`
once per model object: compartment and parameter indices, the first-order transfers as a
:class:`~exopk.engine.linear.LinearSystem`, and the model's parameter-dependent quantities
(:class:`~exopk.model.quantities.ModelQuantities`: one expression set returning values and exact
parameter derivatives for a batch of parameter sets in one call).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from exopk.engine.linear import LinearSystem
from exopk.errors import SimulationError
from exopk.model.spec import Model

__all__ = ["CompiledModel", "compile_model"]


def compile_model(model: Model) -> "CompiledModel":
    """The model compiled for simulation, built on first use and kept with the model object.

    Examples
    --------
    >>> import exopk
    >>> from exopk.engine import compile_model
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> compiled = compile_model(model)
    >>> compiled is compile_model(model), compiled.state_names
    (True, ('plasma', 'eliminated'))
    """
    compiled = model.derived.get(CompiledModel)
    if compiled is None:
        compiled = model.derived[CompiledModel] = CompiledModel(model)
    return compiled


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

    Examples
    --------
    Build it with :func:`compile_model`; :meth:`parameter_matrix` turns parameters given by
    name into the rows :func:`~exopk.engine.evaluate` takes (unnamed ones keep their nominal
    value) and checks their bounds:

    >>> import exopk
    >>> from exopk.engine import compile_model
    >>> compiled = compile_model(exopk.load_model(exopk.model_path("m0_one_compartment")))
    >>> compiled.parameter_names
    ('CL', 'V_plasma', 'secretion_rate')
    >>> compiled.parameter_matrix({"CL": [0.1, 0.2]})
    array([[0.1, 1. , 0. ],
           [0.2, 1. , 0. ]])
    >>> compiled.parameter_matrix({"CL": -1.0})
    Traceback (most recent call last):
    ...
    exopk.errors.SimulationError: parameter 'CL' = -1 is outside its bounds [1e-06, 1000] (parameter set 0)
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

        quantities = model.quantities
        sources, targets, rate_rows = [], [], []
        self.saturable = []
        for t, rows in zip(model.transfers, quantities.transfer_rows):
            s, d = self.state_index[t.source], self.state_index[t.target]
            if t.kind == "michaelis_menten":
                self.saturable.append((s, d) + rows)
            else:
                sources.append(s), targets.append(d), rate_rows.append(rows[0])
        self.linear_sources = np.array(sources, dtype=int)
        self.linear_targets = np.array(targets, dtype=int)
        self.rate_rows = np.array(rate_rows, dtype=int)

        self.route_rows = {}      # route -> (target compartment indices, expression rows)
        for name, pairs in quantities.route_rows.items():
            self.route_rows[name] = (np.array([self.state_index[c] for c, _ in pairs], dtype=int),
                                     np.array([e for _, e in pairs], dtype=int))

        self.endogenous_state = self.endogenous_row = None
        if model.endogenous is not None:
            self.endogenous_state = self.state_index[model.endogenous.compartment]
            self.endogenous_row = quantities.endogenous_row
        self.output_endogenous = np.array([o.include_endogenous for o in model.outputs])
        self.output_units = [w.unit for w in quantities.outputs]

        self.species = quantities.species
        self.constants = quantities.constants
        self.expressions = quantities.expressions
        self.sinks = np.array([c.kind == "sink" for c in model.compartments])
        self._last_expressions = None
        self.output_term_table = _OutputTerms.build(
            [[(self.state_index[c], row) for c, row in w.terms] for w in quantities.outputs],
            [w.percent for w in quantities.outputs], len(self.state_names), self.expressions,
            self.parameter_names)
        self.constant_routes = quantities.constant_routes
        # output matrices without parameter-dependent weights, by total dose (output_matrix)
        self.constant_output_matrices = {}
        # amounts given by each observation time, by (regimen, times) (simulation._administered)
        self.administered = {}
        # percent-of-dose corrections, by (regimen, times) (simulation._given_so_far)
        self.given_so_far = {}
        # plans of one parameter set's outputs, by (regimen, times) (simulation._single_set_plan)
        self.single_set_plans = {}
        # requests made distinct and checked, with their single-bolus plan, by the identity of
        # the list asked (exopk.observation.predictions._prepared)
        self.prepared_requests = {}

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
        if not np.isfinite(values).all():
            b, e = np.argwhere(~np.isfinite(values))[0]
            text, where = self.model.quantities.texts[e]
            place = ", ".join(part for part in (self.model.source_file, f"key '{where}'") if part)
            raise SimulationError(f"{place}: '{text}' evaluates to {values[b, e]} at parameter "
                                  f"set {b} of the batch (a zero volume or a rate out of range?)")
        values.flags.writeable = False
        # one-entry cache: predictions for one parameter set evaluate the expressions repeatedly
        self._last_expressions = (key, (values, jacobian))
        return values, jacobian
