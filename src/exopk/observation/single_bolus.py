"""Predictions with derivatives after one bolus at time 0, from one decomposition.

The common case of a posterior evaluation: a bolus at time 0, values at some times and the
summaries of the bolus response (areas, mean residence time, clearance, Vss, time to half),
with exact derivatives, for the few parameter sets of one design. :class:`~exopk.observation.
predictions.Evaluation` answers each request through the engine's general entry points, which
look their shared results (system matrices, decomposition, similarity transforms) up again by
identity or by their bytes, request after request. A :class:`SingleBolusPlan` holds what
depends only on the design (the kinds asked for, the observation times, the outputs) and takes
the same steps once per call: the expressions, the dose, one eigendecomposition with the
similarity transforms of the rate derivatives
(:meth:`~exopk.engine.linear.LinearSystem.whole_batch_eigen`), and from them the values at the
observation times, the moments (:func:`~exopk.engine.summaries.moments`) and the time to half
(:func:`~exopk.engine.summaries.halving_time`, the state at the crossing from the same
decomposition, :func:`~exopk.engine.summaries.refined_halving`).

These are the functions the general path calls, on the same arrays: the predictions and their
derivatives are the general path's, bit for bit. Where the general path would take another
route for a batch (a member with an ill-conditioned eigenvector matrix, real and complex
spectra mixed, more sets than are solved together with gradients, a negative rate), the plan
answers None and :func:`~exopk.observation.predictions.predict` takes the general path.
"""

from __future__ import annotations

import numpy as np

from exopk.engine.simulation import dose_inputs, output_matrix, outputs_from_amounts, paired
from exopk.engine.summaries import halving_time, modal_weights, moments, refined_halving

__all__ = ["SingleBolusPlan"]

MOMENT_KINDS = frozenset({"auc", "mrt", "clearance", "vss"})
"""Kinds computed from the output's area and first moment."""
VALUE_KINDS = frozenset({"value", "fraction_cleared"})
"""Kinds computed from the output's values at times after the bolus."""
PLANNED_KINDS = MOMENT_KINDS | VALUE_KINDS | {"time_to_half"}


class SingleBolusPlan:
    """What one design's predictions with derivatives need, prepared once.

    Parameters
    ----------
    compiled : CompiledModel
    regimen : Regimen
        One bolus at time 0.
    requests : list of Request
        Distinct requests, of the kinds in ``PLANNED_KINDS``.
    kinds : Mapping
        :data:`~exopk.observation.predictions.KINDS`: the value and moment kinds are computed
        by their own functions, on the state of one call (``_Call``).

    Use :meth:`of`, which answers None for designs the plan does not cover.
    """

    def __init__(self, compiled, regimen, requests, kinds):
        self.compiled, self.regimen, self.requests = compiled, regimen, requests
        self.computes = [kinds[r.kind].compute for r in requests]
        self.times = np.array(sorted({t for r in requests if r.kind in VALUE_KINDS
                                      for t in kinds[r.kind].course_times(r)}))
        names = compiled.model.output_names
        self.output_index = {r.output: names.index(r.output) for r in requests}

    @classmethod
    def of(cls, compiled, regimen, requests, kinds) -> SingleBolusPlan | None:
        """The plan for a design, or None where the general path is needed: another regimen
        (several doses, an infusion, a dose after 0, a steady state), a model that is not
        linear, a kind not planned, values of an output with endogenous secretion, or an area
        of an output that never drains (the general path says so)."""
        model = compiled.model
        if len(regimen.doses) != 1 or not model.is_linear:
            return None
        dose = regimen.doses[0]
        if dose.time != 0 or dose.is_infusion or dose.steady_state_interval is not None:
            return None
        if any(r.kind not in PLANNED_KINDS for r in requests):
            return None
        index = model.output_names.index
        if any(r.kind in MOMENT_KINDS and not compiled.output_drains[index(r.output)]
               or r.kind in VALUE_KINDS and compiled.output_endogenous[index(r.output)]
               for r in requests):
            return None
        return cls(compiled, regimen, requests, kinds)

    def predict(self, theta: np.ndarray):
        """Values (batch, n_requests) and derivatives (batch, n_requests, n_parameters) of the
        requests, or None where the general path must answer for this batch."""
        call = _Call.of(self, theta)
        if call is None:
            return None
        batch, P = theta.shape
        values = np.full((batch, len(self.requests)), np.nan)
        jacobian = np.zeros((batch, len(self.requests), P))
        for i, (r, compute) in enumerate(zip(self.requests, self.computes)):
            value, derivative = call.time_to_half(r.output) if r.kind == "time_to_half" else \
                compute(call, r)
            values[:, i] = r.scale * value
            jacobian[:, i] = r.scale * derivative
        return values, jacobian


class _Call:
    """One call of a plan: the expressions, the dose and the shared decomposition, and the
    interface of :class:`~exopk.observation.predictions.Evaluation` that the value and moment
    kinds read (``regimen``, ``at``, ``output_moments``)."""

    def __init__(self, plan, values, jacobian, inputs, rates, rate_jacobian, A, eigen):
        self.plan, self.compiled, self.regimen = plan, plan.compiled, plan.regimen
        self.values, self.jacobian, self.inputs = values, jacobian, inputs
        self.rates, self.rate_jacobian, self.A, self.eigen = rates, rate_jacobian, A, eigen
        # as Evaluation.dose and Evaluation.d_dose
        self.dose = sum(i.vector for i in inputs)
        jacobians = [i.jacobian for i in inputs if i.jacobian is not None]
        self.d_dose = sum(jacobians) if jacobians else None
        self._course = None
        self._moments = None

    @classmethod
    def of(cls, plan, theta):
        compiled = plan.compiled
        system = compiled.linear_system
        values, jacobian = compiled.evaluate_expressions(theta, derivatives=True)
        inputs = dose_inputs(compiled, plan.regimen, values, jacobian)
        rates = values[:, compiled.rate_rows]
        if rates.min(initial=0.0) < 0:
            return None
        rate_jacobian = jacobian[:, compiled.rate_rows, :]
        A = system.matrix(rates)
        eigen = system.whole_batch_eigen(A, rate_jacobian)
        if eigen is None:
            return None
        return cls(plan, values, jacobian, inputs, rates, rate_jacobian, A, eigen)

    def at(self, course: str, output: str, time: float):
        """``(y, dy)`` of ``output`` at ``time`` (``course`` is "value")."""
        if self._course is None:
            amounts, sensitivities = self.eigen.respond(self.inputs, self.plan.times, True)
            self._course = outputs_from_amounts(self.compiled, self.values, self.jacobian,
                                                self.regimen, amounts, sensitivities)
        outputs, d_outputs = self._course
        k = int(np.searchsorted(self.plan.times, time))
        o = self.plan.output_index[output]
        return outputs[:, k, o], d_outputs[:, k, o]

    def output_moments(self, output: str):
        """``(auc, d_auc, first, d_first)`` of ``output`` over ``[0, inf)``."""
        if self._moments is None:
            a, da, m, dm = moments(self.compiled.linear_system, self.rates, self.rate_jacobian,
                                   self.dose, self.d_dose, fill=0.0)
            self._moments = outputs_from_amounts(self.compiled, self.values, self.jacobian,
                                                 self.regimen, paired(a, m), paired(da, dm))
        y, dy = self._moments
        o = self.plan.output_index[output]
        return y[:, 0, o], dy[:, 0, o], y[:, 1, o], dy[:, 1, o]

    def time_to_half(self, output: str):
        """Time to half of ``output`` and its derivatives
        (:func:`~exopk.engine.summaries.time_to_half` on the shared decomposition)."""
        eigen = self.eigen
        C = output_matrix(self.compiled, self.values, self.regimen)[:, self.plan.output_index[output]]
        t = halving_time(eigen.lam, modal_weights(C, eigen.V, eigen.V_inv, self.dose), eigen.lam,
                         output)
        x_t, dx_t = eigen.propagate(self.dose, self.d_dose, t[:, None])
        return refined_halving(self.compiled, self.values, self.jacobian, self.regimen, output,
                               self.A, C, self.dose, self.d_dose, t, x_t, dx_t)
