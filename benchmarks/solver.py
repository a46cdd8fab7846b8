"""Benchmark: exopk's exact linear engine against scipy's LSODA on m5_intranasal.

Times, in one run on the same machine (medians of repeated calls):

* exopk ``evaluate`` (expressions, eigendecomposition, outputs) without and with exact
  sensitivities for every parameter;
* ``scipy.integrate.solve_ivp`` (LSODA, rtol 1e-8, atol 1e-10, analytic Jacobian) on the same
  system matrix, and on the augmented forward-sensitivity system for the gradients. The baseline
  is given the assembled matrices for free: only its solve and output product are timed.

Accuracy of both is measured against a tight reference computed here with
``scipy.linalg.expm`` (values) and Van Loan block exponentials (sensitivities). Relative errors
are taken over all outputs and times whose reference value exceeds 1e-12 of that output's peak.
Then the cost of exopk's engine is timed on chain models of 5, 10, 20 and 40 compartments.

The last line printed is one JSON object.

Usage: ``python benchmarks/solver.py [--quick]``
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import scipy.linalg
from scipy.integrate import solve_ivp

import exopk
from exopk.engine.simulation import evaluate, output_matrix
from exopk.model import Compartment, Model, Output, Parameter, Prior, Route, Transfer
from exopk.engine import compile_model
from timing import median_seconds

TIMES_MIN = np.array([1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 240.0, 480.0, 720.0, 1440.0, 2160.0,
                      2880.0])
DOSE = 100.0


def assembled(model, regimen):
    """System matrix, its derivatives, output matrix and dose vector, as plain arrays."""
    compiled = compile_model(model)
    theta = compiled.nominal[None]
    values, jacobian = compiled.evaluate_expressions(theta)
    system = compiled.linear_system
    A = system.matrix(values[:, compiled.rate_rows])[0]
    dA = system.matrix_derivative(jacobian[:, compiled.rate_rows, :])[0]
    C = output_matrix(compiled, values, regimen)[0]
    x0 = np.zeros(A.shape[0])
    states, rows = compiled.route_rows[regimen.doses[0].route]
    x0[states] = regimen.doses[0].amount * values[0, rows]
    return theta, A, dA, C, x0


def lsoda_values(A, C, x0):
    solution = solve_ivp(lambda t, x: A @ x, (0.0, TIMES_MIN[-1]), x0, method="LSODA",
                         t_eval=TIMES_MIN, rtol=1e-8, atol=1e-10, jac=lambda t, x: A)
    return (C @ solution.y).T


def lsoda_sensitivities(A, dA, C, x0):
    n, P = A.shape[0], dA.shape[0]
    size = n * (1 + P)
    J = np.zeros((size, size))
    for block in range(1 + P):
        J[block * n:(block + 1) * n, block * n:(block + 1) * n] = A
    for p in range(P):
        J[(p + 1) * n:(p + 2) * n, :n] = dA[p]

    def rhs(t, z):
        x = z[:n]
        S = z[n:].reshape(P, n)
        return np.concatenate([A @ x, (S @ A.T + dA @ x).reshape(-1)])

    z0 = np.concatenate([x0, np.zeros(n * P)])
    solution = solve_ivp(rhs, (0.0, TIMES_MIN[-1]), z0, method="LSODA", t_eval=TIMES_MIN,
                         rtol=1e-8, atol=1e-10, jac=lambda t, z: J)
    S = solution.y[n:].reshape(P, n, -1)                  # (P, n, T)
    return np.einsum("on,pnt->top", C, S)


def reference(A, dA, C, x0):
    """Outputs and sensitivities from scipy.linalg.expm, independent of exopk's solver."""
    n, P = A.shape[0], dA.shape[0]
    values = np.array([C @ scipy.linalg.expm(A * t) @ x0 for t in TIMES_MIN])
    sens = np.empty((len(TIMES_MIN), C.shape[0], P))
    block = np.zeros((2 * n, 2 * n))
    block[:n, :n] = A
    block[n:, n:] = A
    for p in range(P):
        block[:n, n:] = dA[p]
        for i, t in enumerate(TIMES_MIN):
            sens[i, :, p] = C @ (scipy.linalg.expm(block * t)[:n, n:] @ x0)
    return values, sens


def relative_error(result, ref):
    peak = np.max(np.abs(ref), axis=0, keepdims=True)
    mask = np.abs(ref) > 1e-12 * peak
    return float(np.max(np.abs(result - ref)[mask] / np.abs(ref)[mask]))


def chain_model(n_compartments, seed=0):
    """Plasma exchanging with n - 2 tissues, each degrading into one sink."""
    rng = np.random.default_rng(seed)
    tissues = [f"tissue_{i}" for i in range(n_compartments - 2)]
    compartments = [Compartment("plasma", kind="plasma", volume="1")]
    compartments += [Compartment(t) for t in tissues] + [Compartment("sink", kind="sink")]
    transfers, parameters = [], []
    prior = Prior("lognormal", {"median": 0.01, "sigma": 1.0})
    for t in tissues:
        for name, source, target in ((f"up_{t}", "plasma", t), (f"rel_{t}", t, "plasma"),
                                     (f"deg_{t}", t, "sink")):
            transfers.append(Transfer(source, target, rate=name))
            parameters.append(Parameter(name, float(rng.lognormal(np.log(0.01), 1.0)), prior=prior))
    outputs = [Output(f"{c.name}_pid", compartments=(c.name,)) for c in compartments[:-1]]
    return Model(f"chain{n_compartments}", tuple(compartments), tuple(transfers),
                 (Route("iv", {"plasma": "1"}),), tuple(outputs), tuple(parameters))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeats = 50 if args.quick else 300
    baseline_repeats = 5 if args.quick else 20

    model = exopk.load_model(exopk.model_path("m5_intranasal"))
    regimen = exopk.Regimen.bolus("intranasal", DOSE)
    compiled = compile_model(model)
    theta, A, dA, C, x0 = assembled(model, regimen)
    print(f"m5_intranasal: {A.shape[0]} compartments, {dA.shape[0]} parameters, "
          f"{C.shape[0]} outputs, {len(TIMES_MIN)} times from 1 min to 48 h, intranasal bolus")

    ref_values, ref_sens = reference(A, dA, C, x0)
    exo = evaluate(compiled, theta, TIMES_MIN, regimen, gradients=True)
    lsoda_y = lsoda_values(A, C, x0)
    lsoda_s = lsoda_sensitivities(A, dA, C, x0)
    errors = {
        "exopk_values": relative_error(exo.outputs[0], ref_values),
        "exopk_sensitivities": relative_error(exo.output_sensitivities[0], ref_sens),
        "lsoda_values": relative_error(lsoda_y, ref_values),
        "lsoda_sensitivities": relative_error(lsoda_s, ref_sens),
    }

    t_sim = median_seconds(lambda: evaluate(compiled, theta, TIMES_MIN, regimen), repeats)
    t_grad = median_seconds(lambda: evaluate(compiled, theta, TIMES_MIN, regimen, gradients=True),
                            repeats)
    t_lsoda = median_seconds(lambda: lsoda_values(A, C, x0), baseline_repeats)
    t_lsoda_grad = median_seconds(lambda: lsoda_sensitivities(A, dA, C, x0),
                                  max(3, baseline_repeats // 4))
    draws = np.repeat(theta, 100, axis=0)
    t_batch = median_seconds(lambda: evaluate(compiled, draws, TIMES_MIN, regimen),
                             max(5, repeats // 20)) / 100

    print(f"{'':28} {'exopk us':>10} {'LSODA us':>10} {'speedup':>8} {'exopk err':>10} {'LSODA err':>10}")
    print(f"{'simulate':28} {t_sim * 1e6:10.1f} {t_lsoda * 1e6:10.1f} {t_lsoda / t_sim:8.1f} "
          f"{errors['exopk_values']:10.2e} {errors['lsoda_values']:10.2e}")
    print(f"{'simulate with gradients':28} {t_grad * 1e6:10.1f} {t_lsoda_grad * 1e6:10.1f} "
          f"{t_lsoda_grad / t_grad:8.1f} {errors['exopk_sensitivities']:10.2e} "
          f"{errors['lsoda_sensitivities']:10.2e}")
    print(f"{'simulate, batch of 100 (each)':28} {t_batch * 1e6:10.1f}")

    print("\ncost against model size (chain models, 12 times, exact gradients for every rate)")
    print(f"{'compartments':>12} {'parameters':>10} {'simulate us':>12} {'gradient us':>12}")
    scaling = {}
    for size in (5, 10, 20, 40):
        chain = chain_model(size)
        c = compile_model(chain)
        th = c.nominal[None]
        reg = exopk.Regimen.bolus("iv", DOSE)
        s = median_seconds(lambda: evaluate(c, th, TIMES_MIN, reg), max(10, repeats // 3))
        g = median_seconds(lambda: evaluate(c, th, TIMES_MIN, reg, gradients=True),
                           max(10, repeats // 6))
        scaling[size] = {"us_per_simulate": s * 1e6, "us_per_gradient": g * 1e6}
        print(f"{size:>12} {len(th[0]):>10} {s * 1e6:12.1f} {g * 1e6:12.1f}")

    summary = {
        "model": "m5_intranasal",
        "simulate_speedup": round(t_lsoda / t_sim, 1),
        "gradient_speedup": round(t_lsoda_grad / t_grad, 1),
        "max_rel_error": max(errors["exopk_values"], errors["exopk_sensitivities"]),
        "us_per_simulate": round(t_sim * 1e6, 1),
        "us_per_gradient": round(t_grad * 1e6, 1),
        "us_per_simulate_in_batch_of_100": round(t_batch * 1e6, 1),
        "lsoda_us_per_simulate": round(t_lsoda * 1e6, 1),
        "lsoda_us_per_gradient": round(t_lsoda_grad * 1e6, 1),
        "errors": errors,
        "scaling": scaling,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
