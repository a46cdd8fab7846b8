"""What a model predicts for each kind of published number, with exact parameter derivatives.

A :class:`Request` names a model output and a kind of prediction. :func:`predict` answers many
requests for one study design (one regimen) at once:

=========================  ==================================================================
kind                       prediction (output ``y``, regimen with total dose ``D``)
=========================  ==================================================================
``value``                  ``y(t)``
``auc_to``                 ``int_0^t y dt`` (exact: the step response of the dose vector)
``auc``                    ``int_0^inf y dt = C (-A^-1) b`` on the draining compartments
``mrt``                    ``int t y dt / int y dt`` (first moment ``C A^-2 b`` over ``auc``)
``clearance``              ``D / auc`` (for a concentration output: volume per time)
``vss``                    ``clearance * mrt``
``elimination_rate``       ``|Re lam_z|``: slowest decaying mode present in ``y``
``half_life``              ``ln 2 / elimination_rate`` (terminal half-life)
``half_life_alpha``        ``ln 2 / |Re lam|`` of the faster mode with the largest weight in
                           ``y`` (the distribution phase of a biexponential description)
``time_to_half``           the first time at which ``y`` has fallen to half its value at time
                           0 (``ln 2 / k`` for a single exponential decline)
``volume_terminal``        ``clearance / elimination_rate`` (Vz)
``fraction_cleared``       ``100 (1 - y(t) / y(0))``, in percent
``transfer_fraction``      share of the dose (percent) that ever crosses the first-order
                           transfers named ``"A->B"`` (sources may be ``"A1+A2->B"``):
                           ``100 sum k_AB int x_A dt / D``, e.g. the fraction of an intranasal
                           dose absorbed into blood
``time_of_peak``           the time of the largest value of ``y`` (0 when ``y`` only falls,
                           ``ln(ka / ke) / (ka - ke)`` after first-order absorption)
``mrt_last``               ``int_0^T t y dt / int_0^T y dt`` (AUMC over AUC from 0 to the last
                           sampling time ``T``, as non-compartmental analyses report it; here
                           the exact integrals of the model's curve, where an analysis uses
                           the trapezoidal rule on its samples)
``fraction_of_uptake``     ``100 y_mac(T) / y_organ(T)``: the macrophages' share (percent) of
                           the organ's content at ``T``, macrophage uptake being the part of a
                           transfer that macrophage depletion removes
                           (:mod:`exopk.observation.macrophages`); the organ's content leaves
                           out its residual blood
=========================  ==================================================================

A request may carry a ``scale``: its prediction is the kind's value times ``scale``. Evidence in
amounts of the dosed material (ng/mL, particles/mL, ug*min/g) is predicted as the %ID-based
value times the study's dose over 100 %ID (:func:`exopk.units.dose_scale`).

Each kind is one entry of :data:`KINDS` (a :class:`Kind`) and one function; the kinds' shared
work (expressions, dose inputs, the time course, moments, modes) is done once per call by
:class:`Evaluation`.

The summary mathematics is in :mod:`exopk.engine.summaries`. Half-lives come from the model's
eigenvalues, not from a curve fit: ``y(t) = sum_i w_i exp(lam_i t)`` and a mode is present in
``y`` when ``|w_i|`` exceeds ``MODE_WEIGHT_FLOOR`` of ``sum |w_i|``. Their derivatives use
``d lam_i / dp = (V^-1 dA_p V)_ii``. Where a slow mode's weight crosses the floor, the terminal
and distribution half-lives jump from one mode to another: they are discontinuous in the
parameters there (a sampler sees a cliff). The time to half is continuous and differentiable
(``dt/dp = -(dy(t)/dp - dy(0)/dp / 2) / y'(t)``), so it is the prediction behind a reported
half-life whose phase is not stated.

Summaries (every kind but ``value`` and ``fraction_cleared``) need a linear model and a regimen
of boluses given at time 0 (the published summaries are single-dose quantities).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType

import numpy as np

from exopk.dosing import Regimen
from exopk.engine.linear import CONDITION_LIMIT, STRUCTURED_BATCH, LinearInput
from exopk.engine.simulation import KEPT, dose_inputs, output_matrix, outputs_from_amounts, \
    paired, respond
from exopk.engine.structured import forward_moments
from exopk.engine.summaries import (MODE_WEIGHT_FLOOR, CoreModes, halving_time, modal_rates,
                                    moments, moments_to, peak_time, rates_of_modes,
                                    time_of_peak, time_to_half)
from exopk.errors import SimulationError
from exopk.observation.macrophages import (MACROPHAGE_SWITCH, depends_on_switch,
                                           macrophage_shares, organ_states)
from exopk.observation.single_bolus import SingleBolusPlan
from exopk.units import parse_unit

__all__ = ["Evaluation", "Kind", "KINDS", "MODE_WEIGHT_FLOOR", "Request", "predict"]


@dataclass(frozen=True)
class Kind:
    """A kind of prediction: its function, what a request of it carries, what evidence it explains.

    Adding a kind is one :class:`Kind` entry in :data:`KINDS` and its function. Guidelines for
    implementers:

    1. ``name`` is the identifier used in :class:`Request` and in result files (lowercase words
       joined by ``_``); document the kind in the table of the module docstring.
    2. ``compute(evaluation, request)`` returns ``(value, derivative)``: ``value`` of shape
       (batch,), and ``derivative`` of shape (batch, n_parameters), exact (closed form, implicit
       differentiation or the engine's sensitivities, never finite differences). Without
       ``evaluation.gradients`` the derivative may be None or have no columns; it is not read.
    3. Take shared work from the :class:`Evaluation` (its expression values, dose inputs, time
       courses, moments, modes); add a cached quantity there only when two kinds share it.
    4. ``timed``: a request carries a time (``Request.time``); checked when the request is made.
       ``course`` and ``course_times``: the time course the kind reads (``"value"``, the
       response, or ``"area"``, its running integral) and at which times; all kinds reading a
       course share one solve over the union of their times.
    5. ``summary``: a single-dose summary, defined for linear models and boluses at time 0;
       checked before ``compute`` is called. ``target``: ``"output"`` (the request names an
       output; checked) or ``"transfers"`` (the function checks its own target).
    6. ``quantities`` and ``units``: the evidence quantities (:data:`exopk.data.schema.QUANTITIES`
       or ``other:`` names) the kind explains and the canonical record units comparable with it
       directly; :func:`exopk.observation.build_observations` reads them. When a quantity is
       explained by a timed and an untimed kind, a record with a time uses the timed one.
    7. Raise :class:`~exopk.errors.SimulationError` naming the output when the prediction does
       not exist for the model or parameters (no decay, no peak); never return NaN silently.
    8. ``unusable(model, route, output)``, optional: why the kind cannot explain a record of
       ``output`` after a bolus by ``route`` (a reason, or None); such records are set aside
       with the reason instead of becoming observations.
    9. ``time_is``: what the time of a timed kind is (named when a record lacks it).
       The kind's ``units`` set how its values change with the model's time unit
       (:attr:`time_power`).
       ``modal``: the kind reads the eigendecomposition of the whole system matrix (modes, or
       the state at a time); with gradients, time courses are then solved on the engine's
       dense path, which shares that decomposition, instead of the structured one.
    10. Test the kind against a closed form and its derivative against finite differences.
    """

    name: str
    compute: Callable[["Evaluation", "Request"], tuple]
    timed: bool = False
    summary: bool = True
    target: str = "output"
    course: str | None = None
    course_times: Callable[["Request"], tuple] | None = None
    quantities: tuple[str, ...] = ()
    units: frozenset[str] = frozenset()
    unusable: Callable | None = None
    time_is: str = "the sampling time"
    modal: bool = False

    @property
    def time_power(self) -> int:
        """The power of time in the kind's units (1 for times and areas, -1 for rates and
        clearances): values scale by the time unit to this power."""
        powers = {int(parse_unit(unit).dimensionality.get("[time]", 0)) for unit in self.units}
        if len(powers) != 1:
            raise SimulationError(f"kind '{self.name}' has units of different powers of time")
        return powers.pop()


@dataclass(frozen=True)
class Request:
    """One prediction: ``kind`` of output ``output`` (at ``time`` for time-dependent kinds),
    times ``scale`` (a unit factor, for instance the dose in ng over 100 %ID).

    The kinds are those of :data:`KINDS`; :func:`predict` computes requests.

    Examples
    --------
    >>> from exopk.observation import Request
    >>> Request("value", "plasma_percent_id", 10.0)
    Request(kind='value', output='plasma_percent_id', time=10.0, scale=1.0)
    >>> Request("auc", "plasma_concentration", scale=0.05)      # 5 ug dose: %ID -> ug
    Request(kind='auc', output='plasma_concentration', time=None, scale=0.05)
    >>> Request("auc", "plasma_concentration", 60.0)
    Traceback (most recent call last):
    ...
    exopk.errors.SimulationError: prediction 'auc' takes no time
    """

    kind: str
    output: str
    time: float | None = None
    scale: float = 1.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise SimulationError(f"unknown prediction kind '{self.kind}'; known: "
                                  f"{', '.join(KINDS)}")
        if KINDS[self.kind].timed != (self.time is not None):
            raise SimulationError(f"prediction '{self.kind}' "
                                  f"{'needs a' if self.time is None else 'takes no'} time")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise SimulationError(f"prediction scale must be a positive number, got {self.scale}")


class Evaluation:
    """The work the kinds of one :func:`predict` call share, each piece done on first use.

    Attributes
    ----------
    compiled : CompiledModel
    theta : ndarray, shape (batch, n_parameters)
    regimen : Regimen
    requests : list of Request
        The distinct requests of the call.
    gradients : bool
    values, jacobian : ndarray
        Expression values and Jacobian (:meth:`CompiledModel.evaluate_expressions`; the
        Jacobian is None when neither gradients nor a saturable model need it).
    inputs : list of LinearInput
        The regimen's doses as linear inputs.

    Notes
    -----
    Without gradients, a batch of ``STRUCTURED_BATCH`` parameter sets or more whose system has
    a leaf or a sink (:mod:`exopk.engine.structured`) takes the structured path throughout: time
    courses, moments (:func:`~exopk.engine.structured.forward_moments`), the state at a time,
    and the modes of outputs that read only core compartments (:class:`CoreModes`). Members
    whose core is ill-conditioned, and outputs that read a leaf or a sink, take the dense path
    (an evaluation made with ``structured=False`` takes it throughout).
    """

    def __init__(self, compiled, theta, regimen, requests, gradients, *, structured=True):
        self.compiled, self.regimen, self.requests = compiled, regimen, requests
        self.theta, self.gradients = theta, gradients
        self._structured = structured
        # saturable models always need the Jacobian: their ODE solver uses it
        self.values, self.jacobian = compiled.evaluate_expressions(
            theta, derivatives=gradients or bool(compiled.saturable))
        self.inputs = dose_inputs(compiled, regimen, self.values,
                                  self.jacobian if gradients else None)
        self._courses = {}
        self._rates_of = {}
        self._states = {}

    def output_index(self, output: str) -> int:
        return self.compiled.model.output_names.index(output)

    # -- time courses --------------------------------------------------------------------------
    def at(self, course: str, output: str, time: float):
        """``(y, dy)`` of a time course of ``output`` at ``time`` (``dy`` None without
        gradients for the ``value`` course)."""
        if course not in self._courses:
            times = sorted({t for r in self.requests if KINDS[r.kind].course == course
                            for t in KINDS[r.kind].course_times(r)})
            self._courses[course] = (times, *self._solve_course(course, np.array(times)))
        times, outputs, d_outputs = self._courses[course]
        k, o = times.index(time), self.output_index(output)
        return outputs[:, k, o], None if d_outputs is None else d_outputs[:, k, o]

    def _solve_course(self, course, times):
        # one decomposition serves the course and the modes when some kind reads them
        path = "dense" if not self.structured and any(KINDS[r.kind].modal
                                                      for r in self.requests) else "auto"
        if course == "value":
            outputs, d_outputs, _, _, _ = respond(self.compiled, self.values, self.jacobian,
                                                  self.inputs, times, self.regimen,
                                                  gradients=self.gradients, path=path)
            return outputs, d_outputs
        steps = [LinearInput("step", 0.0, self.dose, self.d_dose)]
        x, dx = self.system.solve(self.rates, steps, times, rate_jacobian=self.rate_jacobian,
                                  path=path)
        return outputs_from_amounts(self.compiled, self.values, self.summary_jacobian,
                                    self.regimen, x, dx)

    # -- single-dose summaries -----------------------------------------------------------------
    def check_single_dose(self):
        """Summaries need a linear model and boluses given at time 0."""
        if not self.compiled.model.is_linear:
            raise SimulationError("PK summaries need a linear model (no saturable transfers)")
        if any(d.time != 0 or d.duration > 0 or d.steady_state_interval
               for d in self.regimen.doses):
            raise SimulationError("PK summaries are defined for boluses given at time 0")

    @cached_property
    def structured(self) -> bool:
        """Whether this evaluation takes the structured path (see the class notes)."""
        return (self._structured and not self.gradients and self.compiled.model.is_linear
                and self.theta.shape[0] >= STRUCTURED_BATCH and self.system.blocks.useful)

    @cached_property
    def core_modes(self) -> CoreModes:
        """The core's modes (structured path only)."""
        return CoreModes(self.system, self.matrices, CONDITION_LIMIT)

    def modal_summary(self, output, on_core, dense):
        """A modal summary of ``output``: ``on_core(lam, w, span)`` on the core's modes where
        the structured path applies, ``dense(evaluation)`` (a tuple of arrays) elsewhere."""
        if not self.structured:
            return dense(self)
        C = output_matrix(self.compiled, self.values, self.regimen)[:, self.output_index(output)]
        modes = self.core_modes
        if not modes.reads_core_only(C):
            return dense(self)
        solved = modes.solved
        found = on_core(modes.lam, modes.weights(C, self.dose), modes.span)
        if solved.all():
            return found
        rest = np.flatnonzero(~solved)
        others = dense(Evaluation(self.compiled, self.theta[rest], self.regimen, self.requests,
                                  self.gradients, structured=False))
        combined = []
        for part, other in zip(found, others):
            whole = np.empty((len(solved),) + part.shape[1:], dtype=np.result_type(part, other))
            whole[solved], whole[rest] = part, other
            combined.append(whole)
        return tuple(combined)

    @cached_property
    def summary_jacobian(self):
        """The expression Jacobian, or one without columns when no gradients are asked for."""
        return self.jacobian if self.gradients else np.zeros(self.values.shape + (0,))

    @cached_property
    def system(self):
        return self.compiled.linear_system

    @cached_property
    def rates(self):
        return self.values[:, self.compiled.rate_rows]

    @cached_property
    def matrices(self):
        """The system matrices ``A`` (batch, n, n)."""
        return self.system.matrix(self.rates)

    @cached_property
    def rate_jacobian(self):
        return self.summary_jacobian[:, self.compiled.rate_rows, :]

    @cached_property
    def dose(self):
        """The summed bolus vector (batch, n_states)."""
        return sum(i.vector for i in self.inputs)

    @cached_property
    def d_dose(self):
        if not any(i.jacobian is not None for i in self.inputs):
            return None
        return sum(i.jacobian for i in self.inputs if i.jacobian is not None)

    @cached_property
    def state_moments(self):
        """Areas and first moments of every compartment (0 for sinks), with derivatives."""
        return self._moments_of(self.dose, self.d_dose)

    def _moments_of(self, vector, d_vector):
        """Moments of the response to the bolus ``vector`` (:func:`moments`)."""
        if self.structured:
            area, first = forward_moments(self.system.blocks, self.matrices, vector, fill=0.0,
                                          core_order=self.system.core_order(self.matrices))
            no_columns = np.zeros(area.shape + (0,))
            return area, no_columns, first, no_columns
        return moments(self.system, self.rates, self.rate_jacobian, vector, d_vector, fill=0.0)

    @cached_property
    def _output_moments(self):
        a, da, m, dm = self.state_moments
        y, dy = outputs_from_amounts(self.compiled, self.values, self.summary_jacobian,
                                     self.regimen, paired(a, m), paired(da, dm))
        return (y[:, :1], dy[:, :1]), (y[:, 1:], dy[:, 1:])

    def output_moments(self, output: str):
        """``(auc, d_auc, first, d_first)``: area and first moment of ``output`` over
        ``[0, inf)``."""
        self._check_drains(output)
        area, moment = self._output_moments
        o = self.output_index(output)
        return area[0][:, 0, o], area[1][:, 0, o], moment[0][:, 0, o], moment[1][:, 0, o]

    def output_moments_to(self, output: str, time: float):
        """``(auc, d_auc, first, d_first)`` of ``output`` over ``[0, time]``
        (:func:`exopk.engine.summaries.moments_to`)."""
        self._check_drains(output)
        a, da, m, dm = moments_to(self.state_moments, self._moments_of(*self.state_at(time)),
                                  time)
        y, dy = outputs_from_amounts(self.compiled, self.values, self.summary_jacobian,
                                     self.regimen, paired(a, m), paired(da, dm))
        o = self.output_index(output)
        return y[:, 0, o], dy[:, 0, o], y[:, 1, o], dy[:, 1, o]

    def _check_drains(self, output):
        if not self.compiled.output_drains[self.output_index(output)]:
            raise SimulationError(f"output '{output}' includes a compartment that never drains, so "
                                  "its area under the curve is infinite")

    def state_at(self, time: float):
        """``(x, dx)``: every compartment's amount at ``time`` after the bolus, with its
        derivative (no columns without gradients)."""
        if time not in self._states:
            if self.structured:
                x = self.system.solve(self.rates, [LinearInput("bolus", 0.0, self.dose)],
                                      np.array([float(time)]))[0][:, 0]
                self._states[time] = (x, np.zeros(x.shape + (0,)))
            else:
                self._states[time] = self.system.bolus_response_at(
                    self.rates, self.rate_jacobian, self.dose, self.d_dose,
                    np.full(self.rates.shape[0], float(time)))
        return self._states[time]

    def modal_rates(self, output: str):
        """``(k_terminal, dk_terminal, k_alpha, dk_alpha)`` of ``output``
        (:func:`exopk.engine.summaries.modal_rates`)."""
        if output not in self._rates_of:
            def on_core(lam, w, span):
                return rates_of_modes(lam, np.zeros(lam.shape + (0,)), w, output)

            def dense(ev):
                return modal_rates(ev.compiled, ev.system, ev.rates, ev.rate_jacobian, ev.dose,
                                   output, ev.values, ev.regimen)
            self._rates_of[output] = self.modal_summary(output, on_core, dense)
        return self._rates_of[output]


def predict(compiled, theta: np.ndarray, regimen: Regimen, requests: list[Request], *,
            gradients: bool = False):
    """Predictions for ``requests`` under ``regimen``.

    Parameters
    ----------
    compiled : CompiledModel
        From :func:`exopk.engine.compile_model`.
    theta : ndarray, shape (batch, n_parameters)
    regimen : Regimen
    requests : list of Request
    gradients : bool

    Returns
    -------
    values : ndarray, shape (batch, n_requests)
    jacobian : ndarray, shape (batch, n_requests, n_parameters), or None

    Notes
    -----
    With gradients, a design of one bolus at time 0 asking for values and summaries of the
    bolus response is answered by its :class:`~exopk.observation.single_bolus.SingleBolusPlan`
    (the same maths in fewer steps: the numbers agree to rounding); other designs, and the
    batches the plan hands back, by an :class:`Evaluation`.

    Examples
    --------
    One compartment (``CL = 0.5`` mL/min, ``V = 2`` mL) after an IV bolus: the plasma %ID at
    10 min is ``100 exp(-10 CL / V)`` and the area of the concentration is ``D / CL``.

    >>> import numpy as np, exopk
    >>> from exopk.engine import compile_model
    >>> from exopk.observation import Request, predict
    >>> compiled = compile_model(exopk.load_model(exopk.model_path("m0_one_compartment")))
    >>> theta = compiled.parameter_matrix({"CL": 0.5, "V_plasma": 2.0})
    >>> requests = [Request("value", "plasma_percent_id", 10.0),
    ...             Request("auc", "plasma_concentration")]
    >>> values, _ = predict(compiled, theta, exopk.Regimen.bolus("iv", 100.0), requests)
    >>> np.allclose(values[0], [100 * np.exp(-2.5), 100 / 0.5])
    True
    """
    requests, order, plan = _prepared(compiled, regimen, requests)
    planned = plan.predict(theta) if gradients and plan is not None else None
    if planned is not None:
        values, jacobian = planned
    else:
        values, jacobian = _evaluated(compiled, theta, regimen, requests, gradients)
    if order is None:          # no repeats: already in the order asked
        return values, jacobian
    return values[:, order], None if jacobian is None else jacobian[:, order]


def _prepared(compiled, regimen, asked):
    """The distinct requests of ``asked`` (checked against the model), where each request
    asked is among them (None when they are ``asked`` itself), and the design's
    :class:`~exopk.observation.single_bolus.SingleBolusPlan` (None where it has none).

    Kept on the compiled model per list of requests: a posterior evaluation asks again with
    the same list, which is known by identity and checked to hold the same requests.
    """
    kept = compiled.prepared_requests.get(id(asked))
    if kept is not None and kept[0] is asked and kept[1] == tuple(asked) and kept[2] == regimen:
        return kept[3:]
    names = compiled.model.output_names
    for r in asked:
        if KINDS[r.kind].target == "transfers":
            _transfers(compiled, r.output)
        elif r.output not in names:
            raise SimulationError(f"model '{compiled.model.name}' has no output '{r.output}'")
    requests = list(dict.fromkeys(asked))   # identical requests are computed once
    index = {r: i for i, r in enumerate(requests)}
    order = None if len(requests) == len(asked) else [index[r] for r in asked]
    plan = SingleBolusPlan.of(compiled, regimen, requests)
    if len(compiled.prepared_requests) >= KEPT:
        compiled.prepared_requests.clear()
    compiled.prepared_requests[id(asked)] = (asked, tuple(asked), regimen, requests, order, plan)
    return requests, order, plan


def _evaluated(compiled, theta, regimen, requests, gradients):
    """The predictions of distinct ``requests`` by an :class:`Evaluation` (the general path)."""
    batch, P = theta.shape
    values = np.full((batch, len(requests)), np.nan)
    jacobian = np.zeros((batch, len(requests), P)) if gradients else None
    evaluation = Evaluation(compiled, theta, regimen, requests, gradients)
    if any(KINDS[r.kind].summary for r in requests):
        evaluation.check_single_dose()
    for i, r in enumerate(requests):
        value, derivative = KINDS[r.kind].compute(evaluation, r)
        values[:, i] = r.scale * value
        if jacobian is not None and derivative is not None:
            jacobian[:, i] = r.scale * derivative
    return values, jacobian


# -- the kinds -------------------------------------------------------------------------------
def _value(ev, r):
    return ev.at("value", r.output, r.time)


def _fraction_cleared(ev, r):
    y, dy = ev.at("value", r.output, r.time)
    y0, dy0 = ev.at("value", r.output, 0.0)
    return 100 * (1 - y / y0), None if dy is None else \
        -100 * (dy * y0[:, None] - y[:, None] * dy0) / (y0**2)[:, None]


def _auc_to(ev, r):
    return ev.at("area", r.output, r.time)


def _auc(ev, r):
    auc, d_auc, _, _ = ev.output_moments(r.output)
    return auc, d_auc


def _mrt(ev, r):
    auc, d_auc, first, d_first = ev.output_moments(r.output)
    return first / auc, (d_first * auc[:, None] - first[:, None] * d_auc) / (auc**2)[:, None]


def _clearance(ev, r):
    D = ev.regimen.total_amount
    auc, d_auc, _, _ = ev.output_moments(r.output)
    return D / auc, -D * d_auc / (auc**2)[:, None]


def _vss(ev, r):
    clearance, d_clearance = _clearance(ev, r)
    mrt, d_mrt = _mrt(ev, r)
    return clearance * mrt, d_clearance * mrt[:, None] + clearance[:, None] * d_mrt


def _volume_terminal(ev, r):
    clearance, d_clearance = _clearance(ev, r)
    k, dk = ev.modal_rates(r.output)[:2]
    return clearance / k, (d_clearance * k[:, None] - clearance[:, None] * dk) / (k**2)[:, None]


def _elimination_rate(ev, r):
    return ev.modal_rates(r.output)[:2]


def _half_life(ev, r):
    k, dk = ev.modal_rates(r.output)[:2]
    return math.log(2) / k, -math.log(2) * dk / (k**2)[:, None]


def _half_life_alpha(ev, r):
    k, dk = ev.modal_rates(r.output)[2:]
    return math.log(2) / k, -math.log(2) * dk / (k**2)[:, None]


def _time_to_half(ev, r):
    def on_core(lam, w, span):
        return halving_time(lam, w, span, r.output), np.zeros((len(lam), 0))

    def dense(e):
        return time_to_half(e.compiled, e.system, e.rates, e.rate_jacobian, e.dose, e.d_dose,
                            r.output, e.values, e.summary_jacobian, e.regimen)
    return ev.modal_summary(r.output, on_core, dense)


def _time_of_peak(ev, r):
    def on_core(lam, w, span):
        return peak_time(lam, w, span, r.output)[0], np.zeros((len(lam), 0))

    def dense(e):
        return time_of_peak(e.compiled, e.system, e.rates, e.rate_jacobian, e.dose, e.d_dose,
                            r.output, e.values, e.summary_jacobian, e.regimen)
    return ev.modal_summary(r.output, on_core, dense)


def _peak_at_dosing(model, route, output):
    """A bolus landing in a compartment the output reads makes the output peak at time 0."""
    landing = set(model.route(route).targets) & set(model.outputs[
        model.output_names.index(output)].compartments)
    if landing:
        return (f"the bolus by route '{route}' lands in {', '.join(sorted(landing))}, which output "
                f"'{output}' reads: its time of peak is 0 for every parameter set")
    return None


def _mrt_last(ev, r):
    if not r.time > 0:
        raise SimulationError(f"mrt_last of '{r.output}' needs a last sampling time above 0, "
                              f"got {r.time:g}")
    auc, d_auc, first, d_first = ev.output_moments_to(r.output, r.time)
    if not np.all(auc > 0):
        raise SimulationError(f"output '{r.output}' has no positive area up to {r.time:g}: "
                              "no mean residence time")
    return first / auc, (d_first * auc[:, None] - first[:, None] * d_auc) / (auc**2)[:, None]


def _fraction_of_uptake(ev, r):
    share, d_share = macrophage_shares(ev.compiled, ev.theta, ev.rates, ev.rate_jacobian, ev.dose,
                                       r.output, ev.gradients)
    x, dx = ev.state_at(r.time)
    organ = np.zeros(x.shape[1])
    organ[organ_states(ev.compiled, r.output)] = 1.0
    amounts = np.stack([organ * x, share * x], axis=1)
    d_amounts = np.stack([organ[:, None] * dx, d_share * x[..., None] + share[..., None] * dx],
                         axis=1)
    y, dy = outputs_from_amounts(ev.compiled, ev.values, ev.summary_jacobian, ev.regimen,
                                 amounts, d_amounts)
    o = ev.output_index(r.output)
    total, d_total, held, d_held = y[:, 0, o], dy[:, 0, o], y[:, 1, o], dy[:, 1, o]
    if not np.all(total > 0):
        raise SimulationError(f"output '{r.output}' holds nothing at {r.time:g}: no share of "
                              "its uptake")
    return 100 * held / total, \
        100 * (d_held * total[:, None] - held[:, None] * d_total) / (total**2)[:, None]


def _no_macrophage_uptake(model, route, output):
    """Why a model cannot attribute an organ's uptake to macrophages, or None."""
    if MACROPHAGE_SWITCH not in model.parameter_names:
        return f"model '{model.name}' has no '{MACROPHAGE_SWITCH}' switch: it does not say " \
               "which uptake is by macrophages"
    reads = model.outputs[model.output_names.index(output)].compartments
    if not depends_on_switch(model, reads):
        return f"no transfer into the compartments of '{output}' depends on " \
               f"'{MACROPHAGE_SWITCH}': the model attributes none of its uptake to macrophages"
    return None


def _transfer_fraction(ev, r):
    a, da, _, _ = ev.state_moments
    share, d_share = 0.0, 0.0
    for j, source in _transfers(ev.compiled, r.output):
        share = share + ev.rates[:, j] * a[:, source]
        d_share = d_share + ev.rate_jacobian[:, j] * a[:, source, None] \
            + ev.rates[:, j, None] * da[:, source]
    D = ev.regimen.total_amount
    return 100 * share / D, 100 * d_share / D


def _transfers(compiled, text):
    """``[(transfer column, source index)]`` of the first-order transfers named ``"A+B->C"``."""
    sources, arrow, target = text.partition("->")
    pairs = []
    names = compiled.state_names
    linear = [t for t in compiled.model.transfers if t.kind != "michaelis_menten"]
    for source in sources.split("+"):
        matches = [j for j, t in enumerate(linear) if t.source == source.strip()
                   and t.target == target.strip()]
        if not arrow or not matches:
            raise SimulationError(f"'{text}' names no first-order transfer of model "
                                  f"'{compiled.model.name}' (write 'source->target')")
        pairs += [(j, names.index(source.strip())) for j in matches]
    return pairs


_MINUTES = frozenset({"min"})
_VOLUMES = frozenset({"mL"})
_AREAS = frozenset({"%ID*min/mL", "%ID*min/g"})

KINDS = MappingProxyType({kind.name: kind for kind in (
    Kind("value", _value, timed=True, summary=False, course="value",
         course_times=lambda r: (r.time,),
         quantities=("percent_id_per_organ", "percent_id_per_g", "concentration"),
         units=frozenset({"%ID/organ", "%ID/g", "%ID/mL", "%ID"})),
    Kind("auc_to", _auc_to, timed=True, course="area", course_times=lambda r: (r.time,),
         quantities=("auc",), units=_AREAS),
    Kind("auc", _auc, quantities=("auc",), units=_AREAS),
    Kind("mrt", _mrt, quantities=("mrt", "mrt_inf", "other:nasal_mucociliary_transit_time"),
         units=_MINUTES),
    Kind("clearance", _clearance, quantities=("clearance",), units=frozenset({"mL/min"})),
    Kind("vss", _vss, quantities=("vss",), units=_VOLUMES),
    Kind("elimination_rate", _elimination_rate, quantities=("elimination_rate_constant",),
         units=frozenset({"min^-1"}), modal=True),
    Kind("half_life", _half_life, quantities=("half_life_beta",), units=_MINUTES, modal=True),
    Kind("half_life_alpha", _half_life_alpha, quantities=("half_life_alpha",), units=_MINUTES,
         modal=True),
    Kind("time_to_half", _time_to_half, quantities=("half_life",), units=_MINUTES, modal=True),
    Kind("volume_terminal", _volume_terminal, quantities=("volume_of_distribution",),
         units=_VOLUMES, modal=True),
    Kind("fraction_cleared", _fraction_cleared, timed=True, summary=False, course="value",
         course_times=lambda r: (r.time, 0.0), quantities=("fraction_cleared",),
         units=frozenset({"%"})),
    Kind("transfer_fraction", _transfer_fraction, target="transfers",
         quantities=("other:fraction_of_in_dose_to_blood",), units=frozenset({"%"})),
    Kind("time_of_peak", _time_of_peak, quantities=("time_of_peak",), units=_MINUTES,
         unusable=_peak_at_dosing, modal=True),
    Kind("mrt_last", _mrt_last, timed=True, quantities=("mrt_last",), units=_MINUTES,
         time_is="the last sampling time, tlast", modal=True),
    Kind("fraction_of_uptake", _fraction_of_uptake, timed=True, quantities=("fraction_of_uptake",),
         units=frozenset({"%"}), unusable=_no_macrophage_uptake, modal=True),
)})
"""The prediction kinds by name (see :class:`Kind` for how to add one)."""
