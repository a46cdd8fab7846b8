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
=========================  ==================================================================

Half-lives come from the model's eigenvalues, not from a curve fit: ``y(t) = sum_i w_i
exp(lam_i t)`` and a mode is present in ``y`` when ``|w_i|`` exceeds ``MODE_WEIGHT_FLOOR`` of
``sum |w_i|``. Their derivatives use ``d lam_i / dp = (V^-1 dA_p V)_ii``. Where a slow mode's
weight crosses the floor, the terminal and distribution half-lives jump from one mode to
another: they are discontinuous in the parameters there (a sampler sees a cliff). The time to
half is continuous and differentiable (``dt/dp = -(dy(t)/dp - dy(0)/dp / 2) / y'(t)``), so it
is the prediction behind a reported half-life whose phase is not stated.

Summaries other than ``value`` need a linear model and a regimen of boluses given at time 0
(the published summaries are single-dose quantities).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from exopk.dosing import Regimen
from exopk.engine.linear import LinearInput
from exopk.engine.simulation import dose_inputs, outputs_from_amounts, respond
from exopk.engine.summaries import (MODE_WEIGHT_FLOOR, modal_rates, moments, time_to_half)
from exopk.errors import SimulationError

__all__ = ["Request", "predict", "KINDS", "MODE_WEIGHT_FLOOR"]

KINDS = ("value", "auc_to", "auc", "mrt", "clearance", "vss", "elimination_rate", "half_life",
         "half_life_alpha", "time_to_half", "volume_terminal", "fraction_cleared",
         "transfer_fraction")


@dataclass(frozen=True)
class Request:
    """One prediction: ``kind`` of output ``output`` (at ``time`` for time-dependent kinds)."""

    kind: str
    output: str
    time: float | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise SimulationError(f"unknown prediction kind '{self.kind}'; known: {', '.join(KINDS)}")
        if (self.kind in ("value", "auc_to", "fraction_cleared")) != (self.time is not None):
            raise SimulationError(f"prediction '{self.kind}' {'needs' if self.time is None else 'takes no'} a time")


def predict(compiled, theta: np.ndarray, regimen: Regimen, requests: list[Request], *,
            gradients: bool = False):
    """Predictions for ``requests`` under ``regimen``.

    Parameters
    ----------
    compiled : CompiledModel
    theta : ndarray, shape (batch, n_parameters)
    regimen : Regimen
    requests : list of Request
    gradients : bool

    Returns
    -------
    values : ndarray, shape (batch, n_requests)
    jacobian : ndarray, shape (batch, n_requests, n_parameters), or None
    """
    batch, P = theta.shape
    names = compiled.model.output_names
    for r in requests:
        if r.kind == "transfer_fraction":
            _transfers(compiled, r.output)
        elif r.output not in names:
            raise SimulationError(f"model '{compiled.model.name}' has no output '{r.output}'")
    asked = requests
    requests = list(dict.fromkeys(asked))   # identical requests are computed once
    values = np.full((batch, len(requests)), np.nan)
    jacobian = np.zeros((batch, len(requests), P)) if gradients else None
    index = {r: i for i, r in enumerate(requests)}

    timed = sorted({r.time for r in requests if r.kind in ("value", "fraction_cleared")} |
                   ({0.0} if any(r.kind == "fraction_cleared" for r in requests) else set()))
    # expressions and dose inputs are shared by values and summaries (saturable models always
    # need the Jacobian: their ODE solver uses it)
    expr_values, expr_jacobian = compiled.evaluate_expressions(
        theta, derivatives=gradients or bool(compiled.saturable))
    inputs = dose_inputs(compiled, regimen, expr_values, expr_jacobian if gradients else None)
    if timed:
        outputs, d_outputs, _, _, _ = respond(compiled, expr_values, expr_jacobian, inputs,
                                              np.array(timed), regimen, gradients=gradients)
        for r in requests:
            if r.kind not in ("value", "fraction_cleared"):
                continue
            o = names.index(r.output)
            y = outputs[:, timed.index(r.time), o]
            dy = d_outputs[:, timed.index(r.time), o] if gradients else None
            if r.kind == "value":
                _store(values, jacobian, index[r], y, dy)
            else:
                y0 = outputs[:, timed.index(0.0), o]
                dy0 = d_outputs[:, timed.index(0.0), o] if gradients else None
                _store(values, jacobian, index[r], 100 * (1 - y / y0),
                       None if dy is None else -100 * (dy * y0[:, None] - y[:, None] * dy0)
                       / (y0**2)[:, None])

    summaries = [r for r in requests if r.kind not in ("value", "fraction_cleared")]
    if summaries:
        # without gradients, summaries run on an empty (zero-column) Jacobian
        _summaries(compiled, expr_values, expr_jacobian if gradients else
                   np.zeros(expr_values.shape + (0,)), inputs, regimen, summaries, index,
                   values, jacobian)
    order = [index[r] for r in asked]
    return values[:, order], None if jacobian is None else jacobian[:, order]


def _store(values, jacobian, i, value, derivative):
    values[:, i] = value
    if jacobian is not None and derivative is not None:
        jacobian[:, i] = derivative


def _summaries(compiled, expr_values, expr_jacobian, inputs, regimen, requests, index, values,
               jacobian):
    if not compiled.model.is_linear:
        raise SimulationError("PK summaries need a linear model (no saturable transfers)")
    if any(d.time != 0 or d.duration > 0 or d.steady_state_interval for d in regimen.doses):
        raise SimulationError("PK summaries are defined for boluses given at time 0")
    names = compiled.model.output_names
    rates = expr_values[:, compiled.rate_rows]
    rate_jacobian = expr_jacobian[:, compiled.rate_rows, :]
    system = compiled.linear_system
    dose = sum(i.vector for i in inputs)
    d_dose = sum(i.jacobian for i in inputs if i.jacobian is not None) \
        if any(i.jacobian is not None for i in inputs) else None
    D = regimen.total_amount

    def as_output(amounts, d_amounts):
        """Output-space values (B, 1, O) and derivatives (B, 1, O, P) of state quantities."""
        return outputs_from_amounts(compiled, expr_values, expr_jacobian, regimen, amounts[:, None],
                        d_amounts[:, None])

    needs_moments = {r.output for r in requests if r.kind in (
        "auc", "mrt", "clearance", "vss", "volume_terminal")}
    area = moment = None
    if needs_moments or any(r.kind == "transfer_fraction" for r in requests):
        _check_no_sinks(compiled, needs_moments)
        a, da, m, dm = moments(system, rates, rate_jacobian, dose, d_dose, fill=0.0)
        area = as_output(a, da)
        moment = as_output(m, dm)

    auc_times = sorted({r.time for r in requests if r.kind == "auc_to"})
    if auc_times:
        steps = [LinearInput("step", 0.0, dose, d_dose)]
        x, dx = system.solve(rates, steps, np.array(auc_times), rate_jacobian=rate_jacobian)
        auc_to, d_auc_to = outputs_from_amounts(compiled, expr_values, expr_jacobian, regimen, x, dx)

    modal = {r.output for r in requests if r.kind in (
        "elimination_rate", "half_life", "half_life_alpha", "volume_terminal")}
    rates_by_output = {o: modal_rates(compiled, system, rates, rate_jacobian, dose, o,
                                       expr_values, regimen) for o in modal}

    halving = {r.output: time_to_half(compiled, system, rates, rate_jacobian, dose, d_dose,
                                       r.output, expr_values, expr_jacobian, regimen)
               for r in requests if r.kind == "time_to_half"}

    for r in requests:
        i = index[r]
        if r.kind == "time_to_half":
            _store(values, jacobian, i, *halving[r.output])
            continue
        if r.kind == "transfer_fraction":
            share, d_share = 0.0, 0.0
            for j, source in _transfers(compiled, r.output):
                share = share + rates[:, j] * a[:, source]
                d_share = d_share + rate_jacobian[:, j] * a[:, source, None] \
                    + rates[:, j, None] * da[:, source]
            _store(values, jacobian, i, 100 * share / D, 100 * d_share / D)
            continue
        o = names.index(r.output)
        if r.kind == "auc_to":
            t = auc_times.index(r.time)
            _store(values, jacobian, i, auc_to[:, t, o], d_auc_to[:, t, o])
            continue
        if r.kind in ("elimination_rate", "half_life", "half_life_alpha"):
            k_terminal, dk_terminal, k_alpha, dk_alpha = rates_by_output[r.output]
            k, dk = (k_alpha, dk_alpha) if r.kind == "half_life_alpha" else (k_terminal, dk_terminal)
            if r.kind == "elimination_rate":
                _store(values, jacobian, i, k, dk)
            else:
                _store(values, jacobian, i, math.log(2) / k, -math.log(2) * dk / (k**2)[:, None])
            continue
        auc, d_auc = area[0][:, 0, o], area[1][:, 0, o]
        first, d_first = moment[0][:, 0, o], moment[1][:, 0, o]
        mrt = first / auc
        d_mrt = (d_first * auc[:, None] - first[:, None] * d_auc) / (auc**2)[:, None]
        clearance = D / auc
        d_clearance = -D * d_auc / (auc**2)[:, None]
        if r.kind == "auc":
            _store(values, jacobian, i, auc, d_auc)
        elif r.kind == "mrt":
            _store(values, jacobian, i, mrt, d_mrt)
        elif r.kind == "clearance":
            _store(values, jacobian, i, clearance, d_clearance)
        elif r.kind == "vss":
            _store(values, jacobian, i, clearance * mrt,
                   d_clearance * mrt[:, None] + clearance[:, None] * d_mrt)
        elif r.kind == "volume_terminal":
            k, dk = rates_by_output[r.output][:2]
            _store(values, jacobian, i, clearance / k,
                   (d_clearance * k[:, None] - clearance[:, None] * dk) / (k**2)[:, None])


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


def _check_no_sinks(compiled, outputs):
    """Areas are infinite for outputs that read a compartment which never drains."""
    for name in outputs:
        if not compiled.output_drains[compiled.model.output_names.index(name)]:
            raise SimulationError(f"output '{name}' includes a compartment that never drains, so "
                                  "its area under the curve is infinite")
