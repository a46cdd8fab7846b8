"""Benchmark: exopk's exact linear engine against LSODA and a plain numpy prototype.

Every timed candidate runs in one process with BLAS pinned to one thread (threadpoolctl) and
cycles through a pool of parameter sets drawn from the model's priors, so no call reuses the
previous call's decomposition or expressions. Reported per call: CPU and wall medians over
repeated passes through the pool, with the CPU range over those passes.

Candidates on ``m5_intranasal`` (intranasal bolus, 12 times from 1 min to 48 h):

* exopk ``evaluate`` without and with exact sensitivities for every parameter;
* ``scipy.integrate.solve_ivp`` (LSODA, rtol 1e-8, atol 1e-10, analytic Jacobian) on the same
  system matrix, and on the augmented forward-sensitivity system for the gradients;
* a plain numpy prototype of exopk's maths (``np.linalg.eig``, one solve, ``exp``; for the
  gradients the same plus ``V^-1 dA V`` and the divided-difference eigen-derivative formula),
  the per-call floor of an eigendecomposition design;
* myokit's CVODES (rtol 1e-8, atol 1e-10; :mod:`cvodes`, the compiled ODE solver that chi
  runs) with forward sensitivities by the rate constants, when myokit and SUNDIALS are
  installed, else skipped with a message.

Baselines and prototype are given the assembled matrices for free (only their solve and output
product are timed); exopk's times include expressions, dose inputs and outputs. Accuracy is
measured against ``scipy.linalg.expm`` (values) and Van Loan block exponentials
(sensitivities): largest error relative to each output's (and each parameter's) peak over the
times, so an absolute tolerance (CVODES's) shows on the smallest sensitivities.

Then: gradients after ten intranasal boluses every 4 h (exopk against the prototype's
superposition of the doses in one array, and exopk's amounts and sensitivities against the
summed ``expm`` reference), batches of 1,000 distinct parameter sets (three, cycled; per-set
cost, and how many of the first batch's sets are ill-conditioned and solved with ``expm``), batches of 1,000 values of ``m2_mps`` on the
structured and the dense path beside numpy's stacked ``eig`` of the whole matrices and of their
cores, the posterior predictive of the shipped
``fits/iv_vs_intranasal.nc`` (``m5_intranasal``; every observation's prediction for each of its
4,000 draws, :meth:`LogPosterior.predictions_of_draws`, beside its floors: numpy's stacked
``eig`` of every system matrix those draws solve, and of their cores, and nothing else), the
saturable model
``m2_mps_saturable`` against LSODA and, where installed, CVODES at rtol 1e-8, 1e-10, 1e-12 and
1e-13 (the last two forward only, the last about as accurate as exopk; all checked against a
tight Radau reference; and exopk's resident memory over many gradients, which must stay flat
through a fit),
and the cost of exopk on chain models of 5 to 80 compartments (with its slope on a log-log
scale from 40 to 80).

The last line printed is one JSON object.

Usage: ``python benchmarks/solver.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import resource
import warnings
from pathlib import Path

import numpy as np
import scipy.linalg
from scipy.integrate import solve_ivp

import exopk
from exopk.engine import compile_model
from exopk.engine.simulation import evaluate, output_matrix
from exopk.errors import IllConditionedWarning
from exopk.model import Compartment, Model, Output, Parameter, Prior, Route, Transfer
from cvodes import cvodes_or_reason
from timing import cycle_seconds, one_blas_thread

FITS = Path(__file__).resolve().parent.parent / "fits"

TIMES_MIN = np.array([1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 240.0, 480.0, 720.0, 1440.0, 2160.0,
                      2880.0])
DOSE = 100.0
POOL = 32
BATCH = 1000
REPEATED_DOSES = 10


def prior_pool(model, size, seed):
    """``size`` parameter sets drawn from the priors (fixed parameters at their nominal value),
    clipped to the parameter bounds."""
    rng = np.random.default_rng(seed)
    compiled = compile_model(model)
    columns = [p.prior.sample(rng, size=size) if p.prior is not None and not p.fixed
               else np.full(size, p.value) for p in model.parameters]
    return np.clip(np.column_stack(columns), compiled.lower, compiled.upper)


def assembled(model, regimen, theta):
    """System matrix, its derivatives, output matrix and dose vector, as plain arrays."""
    compiled = compile_model(model)
    values, jacobian = compiled.evaluate_expressions(theta[None])
    system = compiled.linear_system
    A = system.matrix(values[:, compiled.rate_rows])[0]
    dA = system.matrix_derivative(jacobian[:, compiled.rate_rows, :])[0]
    C = output_matrix(compiled, values, regimen)[0]
    x0 = np.zeros(A.shape[0])
    states, rows = compiled.route_rows[regimen.doses[0].route]
    x0[states] = regimen.doses[0].amount * values[0, rows]
    return A, dA, C, x0


def lsoda_values(A, dA, C, x0):
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


def prototype_values(A, dA, C, x0):
    """``C V diag(exp(lam t)) V^-1 x0``: eig, one solve, exp."""
    lam, V = np.linalg.eig(A)
    c = np.linalg.solve(V, x0)
    return ((np.exp(np.outer(TIMES_MIN, lam)) * c) @ (C @ V).T).real


def prototype_sensitivities(A, dA, C, x0, times=TIMES_MIN):
    """Values and ``d/dp`` at ``times`` by the eigen-derivative (Daleckii-Krein) formula:
    ``dx = V ((V^-1 dA V) o K(t)) V^-1 x0`` with ``K_ik = (e^{lam_i t} - e^{lam_k t}) /
    (lam_i - lam_k)`` (``t e^{lam_i t}`` for equal eigenvalues)."""
    lam, V = np.linalg.eig(A)
    lu = scipy.linalg.lu_factor(V)
    c = scipy.linalg.lu_solve(lu, x0.astype(V.dtype))
    G = scipy.linalg.lu_solve(lu, (dA @ V).transpose(1, 0, 2).reshape(len(lam), -1)).reshape(
        len(lam), dA.shape[0], len(lam))                                       # (i, p, k)
    E = np.exp(np.outer(times, lam))                                       # (T, n)
    d = lam[:, None] - lam[None, :]
    equal = np.abs(d) <= 1e-9 * np.maximum(np.abs(lam[:, None]), np.abs(lam[None, :]))
    with np.errstate(divide="ignore", invalid="ignore"):
        K = np.where(equal, times[:, None, None] * E[:, :, None],
                     (E[:, :, None] - E[:, None, :]) / np.where(equal, 1.0, d))   # (T, i, k)
    CV = C @ V
    values = ((E * c) @ CV.T).real
    Y = K.transpose(1, 0, 2) @ (G * c).transpose(0, 2, 1)                      # (i, T, P)
    return values, (CV @ Y.transpose(1, 0, 2)).real


def prototype_repeated_sensitivities(A, dA, C, x0, dose_times, times=TIMES_MIN):
    """:func:`prototype_sensitivities` for the same bolus given at each of ``dose_times``:
    the superposition ``sum_d exp(A (t - t_d)) x0`` over the doses before ``t``, every dose and
    time in one array (the floor of repeated dosing in this design)."""
    lam, V = np.linalg.eig(A)
    lu = scipy.linalg.lu_factor(V)
    c = scipy.linalg.lu_solve(lu, x0.astype(V.dtype))
    G = scipy.linalg.lu_solve(lu, (dA @ V).transpose(1, 0, 2).reshape(len(lam), -1)).reshape(
        len(lam), dA.shape[0], len(lam))                                       # (i, p, k)
    tau = times[:, None] - np.asarray(dose_times)[None, :]                      # (T, D)
    given = tau >= 0
    tau = np.where(given, tau, 0.0)
    E = np.where(given[..., None], np.exp(tau[..., None] * lam), 0.0)          # (T, D, n)
    d = lam[:, None] - lam[None, :]
    equal = np.abs(d) <= 1e-9 * np.maximum(np.abs(lam[:, None]), np.abs(lam[None, :]))
    with np.errstate(divide="ignore", invalid="ignore"):
        K = np.where(equal, tau[..., None, None] * E[..., :, None],
                     (E[..., :, None] - E[..., None, :]) / np.where(equal, 1.0, d))
    K = K.sum(axis=1)                                                          # (T, i, k)
    CV = C @ V
    values = ((E.sum(axis=1) * c) @ CV.T).real
    Y = K.transpose(1, 0, 2) @ (G * c).transpose(0, 2, 1)                      # (i, T, P)
    return values, (CV @ Y.transpose(1, 0, 2)).real


def reference(A, dA, C, x0, times=TIMES_MIN):
    """Outputs and sensitivities from scipy.linalg.expm, independent of exopk's solver."""
    n, P = A.shape[0], dA.shape[0]
    values = np.array([C @ scipy.linalg.expm(A * t) @ x0 for t in times])
    sens = np.empty((len(times), C.shape[0], P))
    block = np.zeros((2 * n, 2 * n))
    block[:n, :n] = A
    block[n:, n:] = A
    for p in range(P):
        block[:n, n:] = dA[p]
        for i, t in enumerate(times):
            sens[i, :, p] = C @ (scipy.linalg.expm(block * t)[:n, n:] @ x0)
    return values, sens


def relative_error(result, ref):
    """Largest error relative to each output's (and parameter's) peak over the times; peaks
    below 1e-12 of the largest one count as that (outputs that stay at zero)."""
    peak = np.max(np.abs(ref), axis=0, keepdims=True)
    return float(np.max(np.abs(result - ref) / np.maximum(peak, 1e-12 * peak.max())))


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


def saturable_baseline(model, regimen, theta, *, gradients, method="LSODA", rtol=1e-8,
                       atol=1e-10):
    """``m2_mps_saturable`` as a plain numpy ODE for ``solve_ivp`` with an analytic Jacobian.

    Returns outputs (T, O) and, with ``gradients``, their sensitivities (T, O, P) from the
    forward-sensitivity system ``S' = J S + df/dp``.
    """
    compiled = compile_model(model)
    values, jacobian = compiled.evaluate_expressions(theta[None])
    values, jacobian = values[0], jacobian[0]
    A, dA, C, x0 = assembled(model, regimen, theta)
    n, P = A.shape[0], dA.shape[0]
    sat = [(s, d, values[v], values[k], values[vol], jacobian[v], jacobian[k], jacobian[vol])
           for s, d, v, k, vol in compiled.saturable]

    def parts(x):
        f, J = A @ x, A.copy()
        dfdp = dA @ x if gradients else None                                   # (P, n)
        for s, d, vmax, km, vol, dvmax, dkm, dvol in sat:
            # below zero amounts the flux continues as its tangent at 0 (as in exopk)
            c = x[s] / vol
            if c >= 0:
                flux, slope = vmax * c / (km + c), vmax * km / (km + c) ** 2   # slope: d flux / dc
                g, g_km = c / (km + c), -c / (km + c) ** 2
            else:
                flux, slope, g, g_km = vmax * c / km, vmax / km, c / km, -c / km ** 2
            f[s] -= flux
            f[d] += flux
            J[s, s] -= slope / vol
            J[d, s] += slope / vol
            if gradients:
                dflux = g * dvmax + vmax * g_km * dkm - slope * c / vol * dvol
                dfdp[:, s] -= dflux
                dfdp[:, d] += dflux
        return f, J, dfdp

    if not gradients:
        solution = solve_ivp(lambda t, x: parts(x)[0], (0.0, TIMES_MIN[-1]), x0, method=method,
                             t_eval=TIMES_MIN, rtol=rtol, atol=atol,
                             jac=lambda t, x: parts(x)[1])
        return (C @ solution.y).T, None

    def rhs(t, z):
        f, J, dfdp = parts(z[:n])
        S = z[n:].reshape(P, n)
        return np.concatenate([f, (S @ J.T + dfdp).reshape(-1)])

    def jac(t, z):
        # the sensitivity blocks' dependence on x (second derivatives) is left out: a
        # Newton-iteration Jacobian needs only to be close
        J = parts(z[:n])[1]
        return scipy.linalg.block_diag(*([J] * (1 + P)))

    z0 = np.concatenate([x0, np.zeros(n * P)])
    solution = solve_ivp(rhs, (0.0, TIMES_MIN[-1]), z0, method=method, t_eval=TIMES_MIN,
                         rtol=rtol, atol=atol, jac=jac)
    S = solution.y[n:].reshape(P, n, -1)
    return (C @ solution.y[:n]).T, np.einsum("on,pnt->top", C, S)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    with one_blas_thread():
        summary = run(repeats, saturable_pool=8 if args.quick else POOL)
    print(json.dumps(summary))


def run(repeats, saturable_pool):
    model = exopk.load_model(exopk.model_path("m5_intranasal"))
    regimen = exopk.Regimen.bolus("intranasal", DOSE)
    compiled = compile_model(model)
    pool = prior_pool(model, POOL, seed=1)
    arrays = [assembled(model, regimen, theta) for theta in pool]
    A, dA, C, _ = arrays[0]
    print(f"m5_intranasal: {A.shape[0]} compartments, {dA.shape[0]} parameters, "
          f"{C.shape[0]} outputs, {len(TIMES_MIN)} times from 1 min to 48 h, intranasal bolus; "
          f"{POOL} parameter sets from the priors, BLAS on one thread")

    cvodes, cvodes_message = cvodes_or_reason(compiled, regimen, TIMES_MIN)
    # accuracy on the first three sets of the pool (worst case over them)
    errors = {}
    for theta, parts in zip(pool[:3], arrays[:3]):
        ref_values, ref_sens = reference(*parts)
        exo = evaluate(compiled, theta[None], TIMES_MIN, regimen, gradients=True)
        proto_values, proto_sens = prototype_sensitivities(*parts)
        found = {
            "exopk_values": relative_error(exo.outputs[0], ref_values),
            "exopk_sensitivities": relative_error(exo.output_sensitivities[0], ref_sens),
            "prototype_values": relative_error(prototype_values(*parts), ref_values),
            "prototype_sensitivities": relative_error(proto_sens, ref_sens),
            "lsoda_values": relative_error(lsoda_values(*parts), ref_values),
            "lsoda_sensitivities": relative_error(lsoda_sensitivities(*parts), ref_sens),
        }
        if cvodes is not None:
            found["cvodes_values"] = relative_error(cvodes.outputs(theta), ref_values)
            found["cvodes_sensitivities"] = relative_error(cvodes.gradient(theta)[1], ref_sens)
        errors = {k: max(v, errors.get(k, 0.0)) for k, v in found.items()}

    t_sim = cycle_seconds(lambda th: evaluate(compiled, th[None], TIMES_MIN, regimen), pool,
                          repeats)
    t_grad = cycle_seconds(lambda th: evaluate(compiled, th[None], TIMES_MIN, regimen,
                                               gradients=True), pool, repeats)
    t_proto = cycle_seconds(lambda a: prototype_values(*a), arrays, repeats)
    t_proto_grad = cycle_seconds(lambda a: prototype_sensitivities(*a), arrays, repeats)
    t_lsoda = cycle_seconds(lambda a: lsoda_values(*a), arrays, max(1, repeats // 2))
    t_lsoda_grad = cycle_seconds(lambda a: lsoda_sensitivities(*a), arrays[:8], 1)
    rows = [("exopk forward", t_sim, errors["exopk_values"]),
            ("numpy prototype forward", t_proto, errors["prototype_values"]),
            ("LSODA rtol 1e-8 forward", t_lsoda, errors["lsoda_values"]),
            ("exopk gradient", t_grad, errors["exopk_sensitivities"]),
            ("numpy prototype gradient", t_proto_grad, errors["prototype_sensitivities"]),
            ("LSODA rtol 1e-8 sensitivities", t_lsoda_grad, errors["lsoda_sensitivities"])]
    cvodes_result = None
    if cvodes is not None:
        t_cvodes = cycle_seconds(cvodes.outputs, pool, max(1, repeats // 2))
        t_cvodes_grad = cycle_seconds(lambda th: cvodes.gradient(th), pool[:8], 1)
        rows += [("CVODES rtol 1e-8 forward", t_cvodes, errors["cvodes_values"]),
                 ("CVODES rtol 1e-8 sensitivities", t_cvodes_grad,
                  errors["cvodes_sensitivities"])]
        cvodes_result = {"forward_us": round(t_cvodes.cpu * 1e6, 1),
                         "gradient_us": round(t_cvodes_grad.cpu * 1e6, 1),
                         "forward_vs_exopk": round(t_cvodes.cpu / t_sim.cpu, 1),
                         "gradient_vs_exopk": round(t_cvodes_grad.cpu / t_grad.cpu, 1)}

    print(f"\nper call, us: CPU median [CPU range over {repeats} passes], wall median")
    print(f"{'':34} {'CPU us [range]':>22} {'wall us':>10} {'error':>9}")
    for label, timing, error in rows:
        print(f"{label:34} {str(timing):>33} {error:9.1e}")
    if cvodes is None:
        print(cvodes_message)
    print(f"exopk / prototype: forward {t_sim.cpu / t_proto.cpu:.2f}x, "
          f"gradient {t_grad.cpu / t_proto_grad.cpu:.2f}x (1.0 = the per-call floor)")
    print(f"LSODA / exopk: forward {t_lsoda.cpu / t_sim.cpu:.1f}x, "
          f"gradient {t_lsoda_grad.cpu / t_grad.cpu:.1f}x")
    if cvodes_result is not None:
        print(f"CVODES / exopk: forward {cvodes_result['forward_vs_exopk']}x, "
              f"gradient {cvodes_result['gradient_vs_exopk']}x")

    repeated = run_repeated(model, compiled, pool, arrays, repeats)

    # three distinct batches, cycled: a batch evaluated twice in a row would reuse the
    # expressions, matrices and decompositions kept for the last one
    batches = [prior_pool(model, BATCH, seed=seed) for seed in (2, 3, 4)]
    batch = batches[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", IllConditionedWarning)
        evaluate(compiled, batch, TIMES_MIN, regimen)
    ill = sum(int(str(w.message).split()[0]) for w in caught
              if issubclass(w.category, IllConditionedWarning))
    t_batch = cycle_seconds(lambda b: evaluate(compiled, b, TIMES_MIN, regimen), batches,
                            repeats)
    t_batch_grad = cycle_seconds(lambda b: evaluate(compiled, b, TIMES_MIN, regimen,
                                                    gradients=True), batches,
                                 max(1, repeats // 2))
    t_batch_100 = cycle_seconds(lambda b: evaluate(compiled, b, TIMES_MIN, regimen),
                                [batch[i:i + 100] for i in range(0, BATCH, 100)], repeats)
    print(f"\nbatch of {BATCH} distinct sets, per set: forward {t_batch.cpu / BATCH * 1e6:.1f} us, "
          f"gradient {t_batch_grad.cpu / BATCH * 1e6:.1f} us (CPU); {ill} of them ill-conditioned "
          "(solved with expm)")

    mps_batch = run_mps_batch(repeats)

    predictive = run_predictive(repeats)

    saturable = run_saturable(saturable_pool)

    print("\ncost against model size (chain models, 12 times, exact gradients for every rate)")
    print(f"{'compartments':>12} {'parameters':>10} {'simulate us':>12} {'gradient us':>12}")
    scaling = {}
    for size in (5, 10, 20, 40, 80):
        chain = chain_model(size)
        c = compile_model(chain)
        chain_pool = prior_pool(chain, POOL, seed=3)
        reg = exopk.Regimen.bolus("iv", DOSE)
        s = cycle_seconds(lambda th: evaluate(c, th[None], TIMES_MIN, reg), chain_pool, repeats)
        g = cycle_seconds(lambda th: evaluate(c, th[None], TIMES_MIN, reg, gradients=True),
                          chain_pool, max(1, repeats // 2))
        scaling[size] = {"us_per_simulate": round(s.cpu * 1e6, 1),
                         "us_per_gradient": round(g.cpu * 1e6, 1)}
        print(f"{size:>12} {chain_pool.shape[1]:>10} {s.cpu * 1e6:12.1f} {g.cpu * 1e6:12.1f}")
    # cost ~ n^slope from 40 to 80 compartments (an eigendecomposition alone has slope 3)
    slopes = {kind: round(float(np.log2(scaling[80][f"us_per_{kind}"]
                                        / scaling[40][f"us_per_{kind}"])), 2)
              for kind in ("simulate", "gradient")}
    print(f"cost ~ n^slope from 40 to 80 compartments: simulate {slopes['simulate']}, "
          f"gradient {slopes['gradient']}")

    return {
        "model": "m5_intranasal",
        "simulate_speedup": round(t_lsoda.cpu / t_sim.cpu, 1),
        "gradient_speedup": round(t_lsoda_grad.cpu / t_grad.cpu, 1),
        "max_rel_error": max(errors["exopk_values"], errors["exopk_sensitivities"]),
        "us_per_simulate": round(t_sim.cpu * 1e6, 1),
        "us_per_gradient": round(t_grad.cpu * 1e6, 1),
        "us_per_simulate_in_batch_of_100": round(t_batch_100.cpu / 100 * 1e6, 1),
        "lsoda_us_per_simulate": round(t_lsoda.cpu * 1e6, 1),
        "lsoda_us_per_gradient": round(t_lsoda_grad.cpu * 1e6, 1),
        "errors": errors,
        "scaling": scaling,
        "scaling_slope_40_to_80": slopes,
        "vs_floor_forward": round(t_sim.cpu / t_proto.cpu, 2),
        "vs_floor_gradient": round(t_grad.cpu / t_proto_grad.cpu, 2),
        "repeated_doses": repeated,
        "batch_us_per_set": round(t_batch.cpu / BATCH * 1e6, 2),
        "batch_gradient_us_per_set": round(t_batch_grad.cpu / BATCH * 1e6, 2),
        "batch_ill_conditioned_sets": ill,
        "m2_mps_batch_us_per_set": mps_batch["structured"],
        "m2_mps_batch_dense_us_per_set": mps_batch["dense"],
        "m2_mps_eig_floor_us_per_set": mps_batch["eig_floor"],
        "m2_mps_core_eig_floor_us_per_set": mps_batch["core_eig_floor"],
        "predictive_ms": predictive["ms"],
        "predictive_floor_ms": predictive["floor_ms"],
        "predictive_core_floor_ms": predictive["core_floor_ms"],
        "predictive_vs_floor": predictive["vs_floor"],
        "saturable_vs_lsoda": saturable["gradient_vs_lsoda"],
        "saturable_memory_kb_per_gradient": saturable["memory_growth_kb_per_gradient"],
        "saturable": saturable,
        "timings": {name: t.as_dict() for name, t in (
            ("exopk_forward", t_sim), ("exopk_gradient", t_grad), ("prototype_forward", t_proto),
            ("prototype_gradient", t_proto_grad), ("lsoda_forward", t_lsoda),
            ("lsoda_gradient", t_lsoda_grad))},
        "chi": cvodes_message,
        "cvodes": cvodes_result,
        "saturable_vs_cvodes": saturable["gradient_vs_cvodes"],
    }


def run_repeated(model, compiled, pool, arrays, repeats):
    """Gradients after ``REPEATED_DOSES`` intranasal boluses every 4 h (times as above): exopk
    against the prototype's superposition over the doses, and the error of exopk's amounts and
    their sensitivities against :func:`reference` summed over the doses."""
    regimen = exopk.Regimen.repeated("intranasal", DOSE, interval=240.0,
                                     count=REPEATED_DOSES)
    dose_times = [d.time for d in regimen.doses]
    error = 0.0
    for theta, (A, dA, C, x0) in zip(pool[:3], arrays[:3]):
        # amounts (outputs are normalised by the dose given so far)
        n = A.shape[0]
        ref_values = np.zeros((len(TIMES_MIN), n))
        ref_sens = np.zeros((len(TIMES_MIN), n, dA.shape[0]))
        for t_d in dose_times:
            shifted = TIMES_MIN - t_d
            given = shifted >= 0
            values, sens = reference(A, dA, np.eye(n), x0, shifted[given])
            ref_values[given] += values
            ref_sens[given] += sens
        exo = evaluate(compiled, theta[None], TIMES_MIN, regimen, gradients=True)
        # relative to the largest amount, and per parameter the largest sensitivity, over
        # times and compartments (a compartment's own peak can be a rounding-level number)
        error = max(error, relative_error(exo.amounts[0].reshape(-1, 1),
                                          ref_values.reshape(-1, 1)),
                    relative_error(exo.amount_sensitivities[0].reshape(-1, dA.shape[0]),
                                   ref_sens.reshape(-1, dA.shape[0])))
    t_exopk = cycle_seconds(lambda th: evaluate(compiled, th[None], TIMES_MIN, regimen,
                                                gradients=True), pool, repeats)
    t_floor = cycle_seconds(lambda a: prototype_repeated_sensitivities(*a, dose_times), arrays,
                            repeats)
    ratio = t_exopk.cpu / t_floor.cpu
    print(f"\n{REPEATED_DOSES} intranasal boluses every 4 h, gradient per call: exopk "
          f"{t_exopk}, numpy prototype {t_floor}: {ratio:.2f}x the floor; exopk's largest "
          f"error against the summed reference {error:.1e}")
    return {"us_per_gradient": round(t_exopk.cpu * 1e6, 1),
            "floor_us_per_gradient": round(t_floor.cpu * 1e6, 1),
            "vs_floor_gradient": round(ratio, 2), "max_rel_error": error}


def run_mps_batch(repeats):
    """Values of 1,000 prior draws of ``m2_mps`` after an IV bolus: the structured path (only
    the 6-compartment core decomposed, block by block: with organ release off, as in these
    draws, six blocks of one and no eigensolver) against the dense one, beside two floors:
    numpy's stacked ``eig`` of the whole 12 x 12 system matrices (the dense design's floor) and
    of the 6 x 6 cores alone (the floor of a core decomposed whole)."""
    model = exopk.load_model(exopk.model_path("m2_mps"))
    compiled = compile_model(model)
    regimen = exopk.Regimen.bolus("iv", DOSE)
    pools = [prior_pool(model, BATCH, seed=seed) for seed in (5, 6, 7)]
    blocks = compiled.linear_system.blocks
    matrices = [compiled.linear_system.matrix(compiled.evaluate_expressions(b)[0][
        :, compiled.rate_rows]) for b in pools]
    cores = [A[:, blocks.core[:, None], blocks.core[None, :]] for A in matrices]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        t_structured = cycle_seconds(lambda b: evaluate(compiled, b, TIMES_MIN, regimen), pools,
                                     repeats)
        t_dense = cycle_seconds(lambda b: evaluate(compiled, b, TIMES_MIN, regimen,
                                                   path="dense"), pools, repeats)
    t_eig = cycle_seconds(np.linalg.eig, matrices, repeats)
    t_core = cycle_seconds(np.linalg.eig, cores, repeats)
    result = {name: round(t.cpu / BATCH * 1e6, 2) for name, t in (
        ("structured", t_structured), ("dense", t_dense), ("eig_floor", t_eig),
        ("core_eig_floor", t_core))}
    print(f"\nm2_mps, batches of {BATCH} distinct prior draws, IV bolus, values at "
          f"{len(TIMES_MIN)} times, CPU us per set: structured {result['structured']}, dense "
          f"{result['dense']}; numpy's stacked eig of the 12 x 12 matrices alone "
          f"{result['eig_floor']}, of the 6 x 6 cores alone {result['core_eig_floor']} "
          "(target 5)")
    return result


def run_predictive(repeats):
    """Posterior predictive of the shipped ``iv_vs_intranasal`` fit, and its eig floor."""
    from exopk.inference.fit import prepare
    from exopk.inference.result import load_fit
    fit_file = FITS / "iv_vs_intranasal.toml"
    lp = prepare(fit_file).log_posterior
    posterior = load_fit(fit_file.with_suffix(".nc"))["posterior"].to_dataset()
    natural = np.stack([np.asarray(posterior[n].transpose("chain", "draw")).ravel()
                        for n in lp.natural_names()], axis=-1)
    phi = lp.coordinates.to_search(natural)
    # every parameter set the draws solve (one per draw and study group of each design)
    thetas = np.repeat(lp.base[None], len(phi), axis=0)
    thetas[:, lp._free_index] = lp.coordinates.to_model(phi)[:, :len(lp.free)]
    sets = np.concatenate([lp.hierarchy.parameters(thetas, phi, group.representatives)[0]
                           .reshape(-1, thetas.shape[1]) for group in lp._groups])
    compiled = lp.compiled
    values, _ = compiled.evaluate_expressions(compiled.parameter_matrix(sets))
    matrices = compiled.linear_system.matrix(values[:, compiled.rate_rows])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        t_pred = cycle_seconds(lp.predictions_of_draws, [phi], repeats)
    t_floor = cycle_seconds(np.linalg.eig, [matrices], repeats)
    core = compiled.linear_system.blocks.core
    t_core = cycle_seconds(np.linalg.eig, [matrices[:, core][:, :, core]], repeats)
    print(f"\nposterior predictive of fits/iv_vs_intranasal.nc: {len(phi)} draws, "
          f"{len(lp.observations)} observations, {len(matrices)} parameter sets of "
          f"{matrices.shape[1]} compartments solved: {t_pred.cpu * 1e3:.0f} ms CPU "
          f"[{t_pred.cpu_spread[0] * 1e3:.0f}-{t_pred.cpu_spread[1] * 1e3:.0f}]; numpy's stacked "
          f"eig of those matrices alone {t_floor.cpu * 1e3:.0f} ms "
          f"({t_pred.cpu / t_floor.cpu:.2f}x the floor; target 100 ms), of their "
          f"{len(core)}-compartment cores {t_core.cpu * 1e3:.0f} ms")
    return {"ms": round(t_pred.cpu * 1e3, 1), "floor_ms": round(t_floor.cpu * 1e3, 1),
            "core_floor_ms": round(t_core.cpu * 1e3, 1),
            "vs_floor": round(t_pred.cpu / t_floor.cpu, 2), "draws": len(phi),
            "parameter_sets": len(matrices)}


def resident_mb():
    """Resident memory of this process in MB (Linux ``/proc``; the peak elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * resource.getpagesize() / 1e6
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def run_saturable(size):
    """exopk on ``m2_mps_saturable`` against LSODA (rtol 1e-8), accuracy against Radau at
    rtol 1e-12 (values on every draw, sensitivities on the first two); a pool of ``size``
    prior draws, one pass each."""
    model = exopk.load_model(exopk.model_path("m2_mps_saturable"))
    regimen = exopk.Regimen.bolus("iv", DOSE)
    compiled = compile_model(model)
    pool = prior_pool(model, size, seed=4)
    errors = {}
    references = []
    # values against a reference on every draw, sensitivities on the first two (a Radau
    # solve with sensitivities takes seconds)
    for draw, theta in enumerate(pool):
        with_sensitivities = draw < 2
        ref_values, ref_sens = saturable_baseline(model, regimen, theta,
                                                  gradients=with_sensitivities,
                                                  method="Radau", rtol=1e-12, atol=1e-14)
        references.append((ref_values, ref_sens))
        # values from the forward call that is timed (without sensitivities in its error
        # test), sensitivities from the gradient call
        exo = evaluate(compiled, theta[None], TIMES_MIN, regimen)
        lsoda_v, lsoda_s = saturable_baseline(model, regimen, theta,
                                              gradients=with_sensitivities)
        found = {"exopk_values": relative_error(exo.outputs[0], ref_values),
                 "lsoda_values": relative_error(lsoda_v, ref_values)}
        if with_sensitivities:
            exo_grad = evaluate(compiled, theta[None], TIMES_MIN, regimen, gradients=True)
            found.update(exopk_sensitivities=relative_error(exo_grad.output_sensitivities[0],
                                                            ref_sens),
                         lsoda_sensitivities=relative_error(lsoda_s, ref_sens))
        for key, value in found.items():
            errors[key] = max(value, errors.get(key, 0.0))
    t_sim = cycle_seconds(lambda th: evaluate(compiled, th[None], TIMES_MIN, regimen), pool, 1)
    t_grad = cycle_seconds(lambda th: evaluate(compiled, th[None], TIMES_MIN, regimen,
                                               gradients=True), pool, 1)
    # resident memory over six more passes of gradients (a fit makes tens of thousands), after
    # three that settle the allocator's and the compiled kernels' working memory
    for _ in range(3):
        for theta in pool:
            evaluate(compiled, theta[None], TIMES_MIN, regimen, gradients=True)
    before = resident_mb()
    for _ in range(6):
        for theta in pool:
            evaluate(compiled, theta[None], TIMES_MIN, regimen, gradients=True)
    growth_kb = (resident_mb() - before) * 1e3 / (6 * len(pool))
    t_lsoda = cycle_seconds(lambda th: saturable_baseline(model, regimen, th, gradients=False),
                            pool, 1)
    t_lsoda_grad = cycle_seconds(lambda th: saturable_baseline(model, regimen, th,
                                                               gradients=True), pool, 1)
    print(f"\nm2_mps_saturable ({size} prior draws, one pass), per call CPU us and error "
          "against Radau rtol 1e-12:")
    print(f"  exopk forward  {t_sim.cpu * 1e6:10.0f} ({errors['exopk_values']:.1e})   "
          f"LSODA 1e-8 {t_lsoda.cpu * 1e6:10.0f} ({errors['lsoda_values']:.1e})")
    print(f"  exopk gradient {t_grad.cpu * 1e6:10.0f} ({errors['exopk_sensitivities']:.1e})   "
          f"LSODA 1e-8 {t_lsoda_grad.cpu * 1e6:10.0f} ({errors['lsoda_sensitivities']:.1e})")
    result = {}
    # CVODES at rtol 1e-8, 1e-10 (its sensitivities then take seconds a call: timed on four
    # draws), 1e-12 and 1e-13, about exopk's accuracy (forward only: its sensitivities at these
    # tolerances do not finish in minutes)
    for rtol, atol, timed, with_gradient in ((1e-8, 1e-10, pool, True),
                                             (1e-10, 1e-12, pool[:4], True),
                                             (1e-12, 1e-14, pool, False),
                                             (1e-13, 1e-15, pool, False)):
        cvodes, cvodes_message = cvodes_or_reason(compiled, regimen, TIMES_MIN, rtol=rtol,
                                                  atol=atol)
        if cvodes is None:
            print(f"  {cvodes_message}")
            break
        found = {"values": 0.0, "sensitivities": 0.0}
        for theta, (ref_values, ref_sens) in zip(pool, references):
            if with_gradient and ref_sens is not None:
                cvodes_v, cvodes_s = cvodes.gradient(theta)
                found["sensitivities"] = max(found["sensitivities"],
                                             relative_error(cvodes_s, ref_sens))
            else:
                cvodes_v = cvodes.outputs(theta)
            found["values"] = max(found["values"], relative_error(cvodes_v, ref_values))
        t_cvodes = cycle_seconds(cvodes.outputs, timed, 1)
        line = (f"  CVODES {rtol:.0e} forward {t_cvodes.cpu * 1e6:10.0f} "
                f"({found['values']:.1e})")
        ratios = f"CVODES / exopk forward {t_cvodes.cpu / t_sim.cpu:.2f}x"
        suffix = "" if rtol == 1e-8 else f"_rtol_{rtol:.0e}"
        errors[f"cvodes{suffix}_values"] = found["values"]
        result.update({f"cvodes{suffix}_forward_us": round(t_cvodes.cpu * 1e6, 1),
                       f"forward_vs_cvodes{suffix}": round(t_cvodes.cpu / t_sim.cpu, 2)})
        if with_gradient:
            t_cvodes_grad = cycle_seconds(cvodes.gradient, timed, 1)
            line += (f", gradient {t_cvodes_grad.cpu * 1e6:10.0f} "
                     f"({found['sensitivities']:.1e})")
            ratios += f", gradient {t_cvodes_grad.cpu / t_grad.cpu:.2f}x"
            errors[f"cvodes{suffix}_sensitivities"] = found["sensitivities"]
            result.update({
                f"cvodes{suffix}_gradient_us": round(t_cvodes_grad.cpu * 1e6, 1),
                f"gradient_vs_cvodes{suffix}": round(t_cvodes_grad.cpu / t_grad.cpu, 2)})
        print(f"{line}: {ratios} (target 5)")
    print(f"  resident memory over {6 * len(pool)} more exopk gradients: {growth_kb:+.1f} kB "
          "per call (scipy's solve_ivp LSODA kept about 100 kB per call of this size)")
    return {"forward_us": round(t_sim.cpu * 1e6, 1), "gradient_us": round(t_grad.cpu * 1e6, 1),
            "memory_growth_kb_per_gradient": round(growth_kb, 1),
            "lsoda_forward_us": round(t_lsoda.cpu * 1e6, 1),
            "lsoda_gradient_us": round(t_lsoda_grad.cpu * 1e6, 1),
            "forward_vs_lsoda": round(t_lsoda.cpu / t_sim.cpu, 2),
            "gradient_vs_lsoda": round(t_lsoda_grad.cpu / t_grad.cpu, 2),
            "forward_vs_cvodes": None, "gradient_vs_cvodes": None,
            **result, "errors": errors}


if __name__ == "__main__":
    main()
