"""Generate ``saturable_engine_reference.json``: amounts of compartment systems with
Michaelis-Menten transfers, and their derivatives by every parameter, computed in 70-digit
arithmetic (mpmath) and accurate to about 1e-30, independent of exopk's solver.

The system is ``x' = A x + sum_j (e_target_j - e_source_j) vmax_j c_j / (km_j + c_j) + w(t)``
with ``c_j = x[source_j] / volume_j``, a bolus at time 0, a zero-order infusion ``w`` from 0 to
``infusion_end`` and a second bolus at ``second_bolus_time``. It is integrated by its Taylor
series (order ``ORDER``; the coefficients of the quotient ``r = c / (km + c)`` follow from
``r (km + c) = c``), in equal steps no longer than ``1 / (2 rho)`` inside each interval
between doses and observation times (``rho`` bounds the Jacobian's norm: outflow rates plus
``vmax / (km volume)``), at ``DIGITS`` digits. Each case is solved a second time with
twice the order; the two must agree to ``AGREEMENT`` relative to the largest amount (the
series of the saturable terms converge geometrically, not like an exponential's: at order 40
and steps of ``1 / rho`` they agreed only to 1e-24).

Derivatives by every parameter (each rate constant, then ``vmax, km, volume`` of each
saturable transfer) are central differences with relative step ``1e-20`` on the same step
sequence (the numerical solution is a smooth function of the parameters): truncation error
about 1e-40, rounding about 1e-50; their accuracy is that of the solutions.

Usage: ``python make_saturable_engine_reference.py`` (several minutes; writes the JSON next to
it). With gmpy2 installed, mpmath runs about three times faster.
"""

import json
import math
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import mpmath

DIGITS = 70
ORDER = 40
AGREEMENT = mpmath.mpf("1e-30")
TIMES = [0.5, 5.0, 30.0, 60.0, 120.0, 300.0, 1440.0]
INFUSION_END = 60.0
SECOND_BOLUS_TIME = 240.0
DIFFERENCE_STEP = mpmath.mpf("1e-20")

# 0 plasma, 1 liver, 2 spleen, 3 rest, 4 free label, 5 eliminated (a sink)
TRANSFERS = [(0, 1), (1, 0), (0, 2), (2, 0), (0, 3), (3, 0), (1, 4), (2, 4), (4, 5), (0, 5)]
RATES = [0.05, 0.002, 0.01, 0.004, 0.08, 0.03, 0.006, 0.01, 0.02, 0.003]
SATURABLE = [(0, 1), (0, 2)]          # plasma -> liver and plasma -> spleen

CASES = {
    # peak plasma concentration (100 ug in 1.5 mL) about Km: the fluxes are half saturated
    "half_saturated": {"vmax": [5.0, 1.0], "km": [50.0, 80.0], "volume": [1.5, 1.5],
                       "bolus": [100.0, 0, 0, 0, 0, 0], "second_bolus": [50.0, 0, 0, 0, 0, 0],
                       "infusion_rate": [0.5, 0, 0, 0, 0, 0]},
    # peak concentration 33 times Km_liver: the liver flux runs near Vmax until plasma is
    # depleted, then turns first order
    "saturated": {"vmax": [2.0, 0.5], "km": [2.0, 20.0], "volume": [1.5, 1.5],
                  "bolus": [100.0, 0, 0, 0, 0, 0], "second_bolus": [100.0, 0, 0, 0, 0, 0],
                  "infusion_rate": [1.0, 0, 0, 0, 0, 0]},
}


def taylor_step(x, h, rates, vmax, km, volume, w, order):
    """The state after a step ``h`` from ``x`` by the Taylor series of order ``order``."""
    n = len(x)
    coefficients = [list(x)]
    quotients = [[] for _ in SATURABLE]              # coefficients of r_j = c_j / (km_j + c_j)
    concentrations = [[] for _ in SATURABLE]
    for k in range(order):
        xk = coefficients[k]
        f = [mpmath.mpf(0)] * n if k else list(w)
        for (s, t), rate in zip(TRANSFERS, rates):
            flow = rate * xk[s]
            f[s] -= flow
            f[t] += flow
        for j, (s, t) in enumerate(SATURABLE):
            c, r = concentrations[j], quotients[j]
            c.append(xk[s] / volume[j])
            # r (km + c) = c:  r_k (km + c_0) = c_k - sum_{i=1..k} c_i r_{k-i}
            history = mpmath.fdot(c[1:k + 1], r[k - 1::-1]) if k else 0
            rk = (c[k] - history) / (km[j] + c[0])
            r.append(rk)
            flow = vmax[j] * rk
            f[s] -= flow
            f[t] += flow
        coefficients.append([v / (k + 1) for v in f])
    result = list(coefficients[order])
    for k in range(order - 1, -1, -1):
        result = [a * h + b for a, b in zip(result, coefficients[k])]
    return result


def solve(rates, vmax, km, volume, case, refine=1):
    """Amounts at ``TIMES``: one list per time. ``refine`` multiplies the order."""
    rho = max(sum(r for (s, _), r in zip(TRANSFERS, rates) if s == state)
              for state in range(len(case["bolus"])))
    rho += max(v / (k * vol) for v, k, vol in zip(vmax, km, volume))
    events = sorted(set(TIMES) | {0.0, INFUSION_END, SECOND_BOLUS_TIME})
    x = [mpmath.mpf(v) for v in case["bolus"]]
    infusion = [mpmath.mpf(v) for v in case["infusion_rate"]]
    zero = [mpmath.mpf(0)] * len(x)
    out = {}
    for start, end in zip(events[:-1], events[1:]):
        length = mpmath.mpf(end) - mpmath.mpf(start)
        steps = math.ceil(float(2 * length * rho))
        h = length / steps
        w = infusion if start < INFUSION_END else zero
        for _ in range(steps):
            x = taylor_step(x, h, rates, vmax, km, volume, w, refine * ORDER)
        if end == SECOND_BOLUS_TIME:
            x = [a + mpmath.mpf(b) for a, b in zip(x, case["second_bolus"])]
        if end in TIMES:
            out[end] = x
    return [out[t] for t in TIMES]


def parameters_of(case):
    """Every parameter: the rate constants, then vmax, km, volume of each saturable transfer."""
    values = list(RATES)
    for j in range(len(SATURABLE)):
        values += [case["vmax"][j], case["km"][j], case["volume"][j]]
    return [mpmath.mpf(v) for v in values]


def solve_parameters(p, case, refine=1):
    m = len(RATES)
    saturable = [p[m + 3 * j: m + 3 * j + 3] for j in range(len(SATURABLE))]
    return solve(p[:m], [s[0] for s in saturable], [s[1] for s in saturable],
                 [s[2] for s in saturable], case, refine)


def derivative(case, i):
    """Central difference of the amounts by parameter ``i``: [time][state]."""
    mpmath.mp.dps = DIGITS
    p = parameters_of(case)
    step = DIFFERENCE_STEP * p[i]
    up, down = list(p), list(p)
    up[i] += step
    down[i] -= step
    x_up = solve_parameters(up, case)
    x_down = solve_parameters(down, case)
    return [[(a - b) / (2 * step) for a, b in zip(ru, rd)] for ru, rd in zip(x_up, x_down)]


def main():
    out = {"description": __doc__.split("\n\n")[0], "digits": DIGITS, "order": ORDER,
           "order_doubled_agreement": float(AGREEMENT),
           "times": TIMES, "infusion_end": INFUSION_END,
           "second_bolus_time": SECOND_BOLUS_TIME,
           "sources": [s for s, _ in TRANSFERS], "targets": [t for _, t in TRANSFERS],
           "rates": RATES, "saturable_sources": [s for s, _ in SATURABLE],
           "saturable_targets": [t for _, t in SATURABLE],
           "parameters": [f"rate {i}" for i in range(len(RATES))]
           + [f"{what} {j}" for j in range(len(SATURABLE)) for what in ("vmax", "km", "volume")],
           "cases": {}}
    for name, case in CASES.items():
        mpmath.mp.dps = DIGITS
        p = parameters_of(case)
        amounts = solve_parameters(p, case)
        check = solve_parameters(p, case, refine=2)
        scale = max(abs(v) for row in amounts for v in row)
        difference = max(abs(a - b) for ra, rb in zip(amounts, check) for a, b in zip(ra, rb))
        print(f"{name}: order doubled: largest change {float(difference / scale):.1e}",
              flush=True)
        assert difference < AGREEMENT * scale
        with ProcessPoolExecutor() as pool:               # [parameter][time][state]
            sensitivities = list(pool.map(derivative, [case] * len(p), range(len(p))))
        out["cases"][name] = {
            "vmax": case["vmax"], "km": case["km"], "volume": case["volume"],
            "bolus": case["bolus"], "second_bolus": case["second_bolus"],
            "infusion_rate": case["infusion_rate"],
            "amounts": [[float(v) for v in row] for row in amounts],
            # [time][state][parameter]
            "sensitivities": [[[float(sensitivities[i][t][s]) for i in range(len(p))]
                               for s in range(len(case["bolus"]))] for t in range(len(TIMES))]}
    path = Path(__file__).with_name("saturable_engine_reference.json")
    path.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
