"""exopk models as PINTS forward models (``pints.ForwardModelS1``), with exact sensitivities."""

from __future__ import annotations

import numpy as np
import pints

from exopk.dosing import Regimen
from exopk.engine.compiled import compile_model
from exopk.engine.simulation import evaluate, validate_times
from exopk.errors import SimulationError

__all__ = ["PintsForwardModel"]


class PintsForwardModel(pints.ForwardModelS1):
    """A model, a regimen and a choice of outputs and free parameters, for PINTS.

    Parameters
    ----------
    model : Model
    regimen : Regimen
    outputs : sequence of str, optional
        Outputs to return (default: all).
    parameters : sequence of str, optional
        Parameters PINTS varies, in order (default: the model's free parameters). The others
        keep ``fixed_values`` or their nominal value.
    fixed_values : mapping, optional
        Values of the parameters that PINTS does not vary.

    Examples
    --------
    >>> import exopk
    >>> from exopk.engine.pints_model import PintsForwardModel
    >>> model = exopk.load_model(exopk.model_path("m0_one_compartment"))
    >>> forward = PintsForwardModel(model, exopk.Regimen.bolus("iv", 100), outputs=["plasma_percent_id"])
    >>> y, dy = forward.simulateS1([0.5, 1.0], [1.0, 2.0])
    >>> y.shape, dy.shape
    ((2,), (2, 2))
    """

    def __init__(self, model, regimen: Regimen, *, outputs=None, parameters=None,
                 fixed_values=None):
        super().__init__()
        self._compiled = compile_model(model)
        self._regimen = regimen
        names = self._compiled.model.output_names
        outputs = list(names if outputs is None else outputs)
        unknown = [o for o in outputs if o not in names]
        if unknown:
            raise SimulationError(f"unknown output(s) {', '.join(unknown)}; known: {', '.join(names)}")
        self.output_names = tuple(outputs)
        self._output_index = np.array([names.index(o) for o in outputs])
        self.parameter_names = tuple(model.free_parameter_names if parameters is None else parameters)
        base = self._compiled.parameter_matrix(fixed_values)[0]
        self._base = base
        try:
            self._free_index = np.array([self._compiled.parameter_index[p]
                                         for p in self.parameter_names], dtype=int)
        except KeyError as exc:
            raise SimulationError(f"unknown parameter {exc.args[0]!r}") from None

    def n_parameters(self) -> int:
        return len(self.parameter_names)

    def n_outputs(self) -> int:
        return len(self.output_names)

    def _theta(self, parameters):
        theta = self._base.copy()
        theta[self._free_index] = parameters
        return self._compiled.parameter_matrix(theta)

    def _shape(self, array):
        return array[:, 0] if self.n_outputs() == 1 else array

    def simulate(self, parameters, times):
        """Outputs at ``times``: shape (n_times,) for one output, else (n_times, n_outputs)."""
        result = evaluate(self._compiled, self._theta(parameters), validate_times(times),
                          self._regimen)
        return self._shape(result.outputs[0][:, self._output_index])

    def simulateS1(self, parameters, times):
        """Outputs and their derivatives with respect to the free parameters."""
        result = evaluate(self._compiled, self._theta(parameters), validate_times(times),
                          self._regimen, gradients=True)
        y = result.outputs[0][:, self._output_index]
        dy = result.output_sensitivities[0][:, self._output_index][:, :, self._free_index]
        if self.n_outputs() == 1:
            return y[:, 0], dy[:, 0, :]
        return y, dy
