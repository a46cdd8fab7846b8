"""Predictions with derivatives after one bolus at time 0, from one decomposition.

The common case of a posterior evaluation: a bolus at time 0, values at some times and the
summaries of the bolus response (areas, mean residence time, clearance, Vss, time to half),
with exact derivatives, for the few parameter sets of one design. :class:`~exopk.observation.
predictions.Evaluation` answers each request through the engine's general entry points, which
look their shared results (system matrices, decomposition, similarity transforms) up again,
request after request, and maps every state to every output with array operations on a few
numbers each. A :class:`SingleBolusPlan` holds what depends only on the design (the observation
times, the outputs with a time to half, a table of the requests and of their outputs' terms)
and takes each step once per call: the expressions and the dose; one eigendecomposition with
the similarity transforms of the rate derivatives
(:meth:`~exopk.engine.linear.LinearSystem.whole_batch_eigen`); the amounts at the observation
times (:func:`~exopk.engine.phi_kernel.bolus_response`), the areas and first moments
(:func:`~exopk.engine.summaries.moments`), and each time to half's modal estimate
(:func:`~exopk.engine.summaries.halving_time`) with the amounts there, all with derivatives;
then every request from its output's terms in one compiled loop
(:func:`~exopk.observation.single_bolus_kernel.answer_requests`).

The maths is the general path's; the outputs are summed term by term where the general path
multiplies by the output matrix, so the two agree to rounding (tests: values to 1e-12 and
derivatives to 1e-10 relative). Where the general path would take another route for a batch (a
member with an ill-conditioned eigenvector matrix, real and complex spectra mixed, more sets
than are solved together with gradients, a negative rate), the plan answers None and
:func:`~exopk.observation.predictions.predict` takes the general path.
"""

from __future__ import annotations

import numpy as np

from exopk.engine.linear import CHUNK
from exopk.engine.simulation import dose_inputs, output_matrix, percent_scale, route_fractions
from exopk.engine.summaries import NOT_FALLING_AT_HALF, halving_time, moments
from exopk.errors import SimulationError

__all__ = ["SingleBolusPlan", "PLANNED_KINDS"]

MOMENT_KINDS = frozenset({"auc", "mrt", "clearance", "vss"})
VALUE_KINDS = frozenset({"value", "fraction_cleared"})
PLANNED_KINDS = MOMENT_KINDS | VALUE_KINDS | {"time_to_half"}
"""The kinds a plan answers."""


class SingleBolusPlan:
    """What one design's predictions with derivatives need, prepared once.

    Parameters
    ----------
    compiled : CompiledModel
    regimen : Regimen
        One bolus at time 0.
    requests : list of Request
        Distinct requests, of the kinds in ``PLANNED_KINDS``.

    Use :meth:`of`, which answers None for designs the plan does not cover.
    """

    def __init__(self, compiled, regimen, requests):
        from exopk.observation.single_bolus_kernel import KIND_CODES

        self.compiled, self.regimen, self.requests = compiled, regimen, requests
        index = compiled.model.output_names.index
        # the observation times, as the value course of Evaluation.at takes them
        self.times = np.array(sorted({t for r in requests if r.kind in VALUE_KINDS
                                      for t in ((r.time, 0.0) if r.kind == "fraction_cleared"
                                                else (r.time,))}))
        self.halving_outputs = list(dict.fromkeys(r.output for r in requests
                                                  if r.kind == "time_to_half"))
        self.halving_rows = [index(output) for output in self.halving_outputs]
        self.with_moments = any(r.kind in MOMENT_KINDS for r in requests)
        self.kinds = np.array([KIND_CODES[r.kind] for r in requests], dtype=np.int64)
        self.outputs = np.array([index(r.output) for r in requests], dtype=np.int64)
        self.first_index = np.array([
            self.halving_outputs.index(r.output) if r.kind == "time_to_half" else
            int(np.searchsorted(self.times, r.time)) if r.kind in VALUE_KINDS else 0
            for r in requests], dtype=np.int64)
        self.second_index = np.full(len(requests), int(np.searchsorted(self.times, 0.0)),
                                    dtype=np.int64)
        self.scales = np.array([r.scale for r in requests], dtype=float)
        # the outputs' terms, in output order (output_term_table lists them so)
        terms = compiled.output_term_table
        self.term_start = np.searchsorted(terms.output_of_term,
                                          np.arange(len(compiled.model.outputs) + 1))
        self.term_states = np.ascontiguousarray(terms.states, dtype=np.int64)
        self.term_rows = terms.rows
        self.term_scale = percent_scale(compiled, regimen)[terms.output_of_term]
        # a dose split by constant fractions is the same bolus for every parameter set
        dose = regimen.doses[0]
        self.constant_dose = None
        if dose.route in compiled.constant_routes:
            nominal = compiled.expressions(compiled.nominal[None], derivatives=False)
            self.constant_dose = dose.amount * route_fractions(compiled, nominal, dose.route)
        self._per_batch = {}

    @classmethod
    def of(cls, compiled, regimen, requests) -> SingleBolusPlan | None:
        """The plan for a design, or None where the general path is needed: another regimen
        (several doses, an infusion, a dose after 0, a steady state), a model that is not
        linear, a kind not planned, values of an output with endogenous secretion, or an area
        of an output that never drains (the general path says so)."""
        model = compiled.model
        if len(regimen.doses) != 1 or not model.is_linear:
            return None
        dose = regimen.doses[0]
        if dose.time != 0 or dose.is_infusion or dose.steady_state_interval is not None \
                or dose.route not in compiled.route_rows:
            return None
        if any(r.kind not in PLANNED_KINDS for r in requests):
            return None
        index = model.output_names.index
        if any(r.kind in MOMENT_KINDS and not compiled.output_drains[index(r.output)]
               or r.kind in VALUE_KINDS and compiled.output_endogenous[index(r.output)]
               for r in requests):
            return None
        return cls(compiled, regimen, requests)

    def predict(self, theta: np.ndarray):
        """Values (batch, n_requests) and derivatives (batch, n_requests, n_parameters) of the
        requests, or None where the general path must answer for this batch."""
        from exopk.engine.phi_kernel import bolus_response            # numba: on first use
        from exopk.observation.single_bolus_kernel import answer_requests

        compiled, regimen = self.compiled, self.regimen
        system = compiled.linear_system
        batch, P = theta.shape
        if batch > CHUNK:           # solved in chunks by the general path
            return None
        values, jacobian = compiled.evaluate_expressions(theta, derivatives=True)
        times, dose, no_dose_derivative = self._per_batch_arrays(batch, P)
        d_dose = None
        if dose is None:
            (bolus,) = dose_inputs(compiled, regimen, values, jacobian)
            dose, d_dose = bolus.vector, bolus.jacobian
        rates = values[:, compiled.rate_rows]
        if rates.min(initial=0.0) < 0:
            return None
        A = system.matrix(rates)
        rate_jacobian = jacobian[:, compiled.rate_rows, :]
        eigen = system.whole_batch_eigen(A, rate_jacobian)
        if eigen is None:
            return None
        n = system.n_states
        lam, V, G = eigen.lam, eigen.V, eigen.G
        c = np.ascontiguousarray((eigen.V_inv @ dose[:, :, None])[:, :, 0])
        if d_dose is None:
            dc = no_dose_derivative if lam.dtype == float else no_dose_derivative.astype(complex)
        else:
            dc = np.ascontiguousarray(eigen.V_inv @ d_dose, dtype=lam.dtype)
        lam, V, G = np.ascontiguousarray(lam), np.ascontiguousarray(V), np.ascontiguousarray(G)

        def amounts_at(tau):
            x = np.empty((batch, tau.shape[1], n))
            dx = np.empty((batch, tau.shape[1], n, P))
            if tau.shape[1]:
                bolus_response(lam, V, G, c, dc, tau, x, dx)
            return x, dx

        x, dx = amounts_at(times)
        if self.with_moments:
            area, d_area, moment, d_moment = moments(system, rates, rate_jacobian, dose, d_dose,
                                                     fill=0.0)
        else:
            area = moment = np.zeros((batch, 0))
            d_area = d_moment = np.zeros((batch, 0, P))
        t_half = np.empty((batch, len(self.halving_outputs)))
        if self.halving_outputs:
            C = output_matrix(compiled, values, regimen)
        for h, output in enumerate(self.halving_outputs):
            row = C[:, self.halving_rows[h]]
            t_half[:, h] = halving_time(eigen.lam, (row[:, None, :] @ eigen.V)[:, 0, :] * c,
                                        eigen.lam, output)
        x_half, dx_half = amounts_at(t_half)
        found = np.empty((batch, len(self.requests)))
        found_jacobian = np.empty((batch, len(self.requests), P))
        status = np.zeros(len(self.requests), dtype=np.int8)
        answer_requests(self.kinds, self.outputs, self.first_index, self.second_index,
                        self.scales, self.term_start, self.term_states,
                        values[:, self.term_rows] * self.term_scale,
                        jacobian[:, self.term_rows, :] * self.term_scale[:, None], x, dx, area,
                        d_area, moment, d_moment, dose,
                        no_dose_derivative if d_dose is None else d_dose, A, t_half,
                        x_half, dx_half, float(regimen.total_amount), found, found_jacobian,
                        status)
        if status.any():
            output = self.requests[int(np.flatnonzero(status)[0])].output
            raise SimulationError(NOT_FALLING_AT_HALF.format(output))
        return found, found_jacobian

    def _per_batch_arrays(self, batch, P):
        """Read-only arrays that depend on the batch size only, kept: the observation times per
        member (batch, T), the dose (batch, n) where it is split by constant fractions (else
        None), and zeros for a dose without parameter derivatives (batch, n, P)."""
        if batch not in self._per_batch:
            n = len(self.compiled.state_names)
            arrays = (np.repeat(self.times[None], batch, axis=0),
                      None if self.constant_dose is None else
                      np.repeat(self.constant_dose, batch, axis=0),
                      np.zeros((batch, n, P)))
            for array in arrays:
                if array is not None:
                    array.flags.writeable = False
            self._per_batch[batch] = arrays
        return self._per_batch[batch]
