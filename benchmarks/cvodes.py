"""An exopk model as a myokit model, solved by CVODES with forward sensitivities: the
compiled-ODE baseline of the solver benchmark (myokit is what chi runs underneath).

myokit is optional: it needs SUNDIALS' CVODES library and a C compiler (on Debian,
``apt install libsundials-dev``, then ``pip install myokit``). :func:`cvodes_or_reason` returns
``None`` and the reason when it is missing.
"""

from __future__ import annotations

import numpy as np

from exopk.engine.simulation import output_matrix


def cvodes_or_reason(compiled, regimen, times, *, rtol=1e-8, atol=1e-10):
    """A :class:`CVODESModel` and ``None``, or ``None`` and why it cannot be built here."""
    try:
        import myokit  # noqa: F401
    except ImportError:
        return None, "myokit (CVODES) is not installed: skipped"
    try:
        return CVODESModel(compiled, regimen, times, rtol=rtol, atol=atol), None
    except Exception as error:            # no compiler or no CVODES: myokit's own message
        return None, f"myokit is installed but cannot compile a simulation here: {error}"


class CVODESModel:
    """``compiled`` (first-order and Michaelis-Menten transfers, one bolus at time 0) as a myokit
    simulation.

    Every rate constant and every ``vmax``, ``km`` and volume of a saturable transfer is a
    literal constant of the myokit model, set before each solve; sensitivities are taken with
    respect to those constants and carried to the model's parameters by the chain rule with
    exopk's expression derivatives (the other baselines get ``dA/dp`` the same way). The
    bolus's own dependence on the parameters (dose split fractions) is left out, as in the
    other baselines.

    Parameters
    ----------
    compiled : CompiledModel
    regimen : Regimen
        A single bolus at time 0.
    times : ndarray
        Observation times (model time unit).
    rtol, atol : float
        CVODES tolerances.
    """

    def __init__(self, compiled, regimen, times, *, rtol, atol):
        import myokit

        (dose,) = regimen.doses
        if dose.time != 0.0:
            raise ValueError("the CVODES baseline takes one bolus at time 0")
        self.compiled, self.regimen, self.times = compiled, regimen, np.asarray(times, float)
        self.route = dose.route
        self.amount = dose.amount
        n = len(compiled.state_names)
        model = myokit.Model("exopk_baseline")
        component = model.add_component("c")
        time = component.add_variable("t")
        time.set_rhs(0)
        time.set_binding("time")
        states = []
        for i in range(n):
            states.append(component.add_variable(f"x{i}"))
            states[-1].promote(0.0)
        self.rows = []                           # expression rows held by myokit constants

        def constant(row):
            name = f"v{row}"
            if row not in self.rows:
                component.add_variable(name).set_rhs(1.0)
                self.rows.append(row)
            return name

        terms = [[] for _ in range(n)]
        for source, target, row in zip(compiled.linear_sources, compiled.linear_targets,
                                       compiled.rate_rows):
            flow = f"{constant(row)} * x{source}"
            terms[source].append(f"- {flow}")
            terms[target].append(f"+ {flow}")
        for source, target, vmax, km, volume in compiled.saturable:
            concentration = f"(x{source} / {constant(volume)})"
            flux = f"{constant(vmax)} * {concentration} / ({constant(km)} + {concentration})"
            terms[source].append(f"- {flux}")
            terms[target].append(f"+ {flux}")
        for state, rhs in zip(states, terms):
            state.set_rhs(" ".join(rhs) or "0")
        self.state_names = [f"c.x{i}" for i in range(n)]
        self.constant_names = [f"c.v{row}" for row in self.rows]
        self.forward = myokit.Simulation(model)
        self.sensitivity = myokit.Simulation(
            model, sensitivities=(self.state_names, self.constant_names))
        for simulation in (self.forward, self.sensitivity):
            simulation.set_tolerance(abs_tol=atol, rel_tol=rtol)

    def _run(self, simulation, theta):
        values, jacobian = self.compiled.evaluate_expressions(theta[None])
        simulation.reset()
        for name, row in zip(self.constant_names, self.rows):
            simulation.set_constant(name, float(values[0, row]))
        x0 = np.zeros(len(self.state_names))
        states, rows = self.compiled.route_rows[self.route]
        x0[states] = self.amount * values[0, rows]
        simulation.set_state(x0)
        log = simulation.run(self.times[-1] + 1e-9, log=self.state_names,
                             log_times=self.times)
        return values, jacobian, log

    def outputs(self, theta):
        """Outputs at the times, (T, O)."""
        values, _, log = self._run(self.forward, theta)
        amounts = np.column_stack([log[name] for name in self.state_names])        # (T, n)
        return amounts @ output_matrix(self.compiled, values, self.regimen)[0].T

    def gradient(self, theta):
        """Outputs (T, O) and their derivatives by the model's parameters (T, O, P)."""
        values, jacobian, (log, sens) = self._run(self.sensitivity, theta)
        amounts = np.column_stack([log[name] for name in self.state_names])
        C = output_matrix(self.compiled, values, self.regimen)[0]
        by_constant = np.array(sens)                                             # (T, n, q)
        by_parameter = by_constant @ jacobian[0, self.rows, :]                   # (T, n, P)
        return amounts @ C.T, np.einsum("on,tnp->top", C, by_parameter)
