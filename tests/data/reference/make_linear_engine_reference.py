"""Generate ``linear_engine_reference.json``: amounts and their derivatives with respect to every
rate constant, computed with 50-digit arithmetic (mpmath), independent of exopk's solver.

Each case is a linear compartment system given by transfers ``source -> target`` with rate
constants, a bolus at time 0 and a zero-order infusion from 0 to ``infusion_end``. With
``M = [[A, dA_k, 0], [0, A, u], [0, 0, 0]]`` (``dA_k`` the derivative of ``A`` by rate ``k``,
``u`` the infusion rate) the vector ``expm(M t) (0, x0, 1)`` holds the derivative by rate ``k``
and the amounts of a bolus ``x0`` plus an infusion running since 0; the infusion's end is its
superposition with the negative infusion from ``infusion_end``.

The areas ``int x dt`` and first moments ``int t x dt`` over ``[0, inf)`` of the bolus response
alone are ``-A_NN^-1 x0_N`` and ``A_NN^-2 x0_N`` on the compartments ``N`` that drain (sinks,
which never drain, have none: ``null``), from 50-digit LU solves.

Usage: ``python make_linear_engine_reference.py`` (about a minute; writes the JSON next to it).
"""

import json
from pathlib import Path

import mpmath
import numpy as np

mpmath.mp.dps = 50
TIMES = [0.5, 5.0, 30.0, 240.0, 1440.0]
INFUSION_END = 60.0


def m2_mps_like(seed=5):
    """Plasma, four MPS organs with uptake, release and degradation, a rest, free label."""
    rng = np.random.default_rng(seed)
    # 0 plasma, 1-4 liver/spleen/lung/kidney, 5 rest, 6 free label, 7 excreted (sink)
    transfers = []
    for organ in range(1, 6):
        transfers += [(0, organ), (organ, 0), (organ, 6)]
    transfers += [(6, 7), (0, 7)]
    rates = [float(v) for v in rng.lognormal(np.log(0.01), 1.5, size=len(transfers))]
    bolus = [100.0, 0, 0, 0, 0, 0, 0, 0]
    infusion = [0.5, 0, 0, 0, 0, 0, 0, 0]
    return transfers, rates, bolus, infusion


def one_way_mps():
    """Plasma (0) taken up by five organs (1-5) that never release, organs degrading to free
    label (6), cleared to a sink (7)."""
    transfers = [(0, organ) for organ in range(1, 6)] + [(organ, 6) for organ in range(1, 6)]
    transfers += [(6, 7), (0, 7)]
    uptake = [0.03, 0.008, 0.006, 0.002, 0.01]
    plasma_out = sum(uptake) + 0.004
    degradation = [plasma_out * (1 + 1e-3), 0.004, 0.02, 0.009, 0.0015]
    rates = uptake + degradation + [0.012, 0.004]
    return transfers, rates, [100.0, 0, 0, 0, 0, 0, 0, 0], [0.5, 0, 0, 0, 0, 0, 0, 0]


CASES = {
    # eight states with exchange: the shape of the shipped MPS models
    "mps_like": m2_mps_like(),
    # a one-way cycle 0 -> 1 -> 2 -> 0 with losses to a sink: complex eigenvalues
    "complex_cycle": ([(0, 1), (1, 2), (2, 0), (0, 3), (1, 3)], [1.0, 1.0, 1.0, 0.1, 0.05],
                      [10.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]),
    # three identical tissues exchanging with plasma: -0.15 is a double eigenvalue
    # (diagonalisable), the sink's 0 a simple one
    "repeated_eigenvalue": ([(0, 1), (0, 2), (0, 3), (1, 0), (2, 0), (3, 0), (1, 4), (2, 4),
                             (3, 4), (0, 4)],
                            [0.3, 0.3, 0.3, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.02],
                            [100.0, 0, 0, 0, 0], [1.0, 0, 0, 0, 0]),
    # depot -> central -> sink with equal rates: a defective (Jordan) double eigenvalue
    "defective": ([(0, 1), (1, 2)], [0.05, 0.05], [100.0, 0, 0], [1.0, 0, 0]),
    # the same with rates 1e-6 apart: distinct but nearly defective (eigenvector condition
    # number 4e6)
    "nearly_defective": ([(0, 1), (1, 2)], [0.05, 0.05 * (1 + 1e-6)], [100.0, 0, 0],
                         [1.0, 0, 0]),
    # rates 1e-4 apart: close eigenvalues, condition number 4e4
    "close_eigenvalues": ([(0, 1), (1, 2)], [0.05, 0.05 * (1 + 1e-4)], [100.0, 0, 0],
                          [1.0, 0, 0]),
    # plasma (0) -> organs 1-5 with no release: a one-way core, every block a single
    # compartment; the liver's (1) outflow 1e-3 apart from plasma's total outflow
    "one_way_mps": one_way_mps(),
    # a nasal depot (0) feeding plasma (1) and brain (3); plasma -> endothelium (2) -> brain
    # -> plasma, a one-way cycle (complex eigenvalues); plasma -> liver (4) -> label (5) ->
    # sink (6): one block that exchanges between single-compartment blocks
    "blocks_around_a_cycle": ([(0, 1), (0, 3), (1, 2), (2, 3), (3, 1), (1, 4), (4, 5), (5, 6),
                               (1, 6), (0, 6)],
                              [0.02, 0.005, 0.8, 0.6, 0.7, 0.05, 0.01, 0.03, 0.02, 0.004],
                              [100.0, 0, 0, 0, 0, 0, 0], [0.0, 1.0, 0, 0, 0, 0, 0]),
}


def structure(n, transfers, k):
    dA = mpmath.zeros(n, n)
    s, t = transfers[k]
    dA[s, s] -= 1
    dA[t, s] += 1
    return dA


def response(n, A, dA, x0, u, t):
    """Amounts and their derivative along ``dA`` at ``t`` for a bolus and an infusion from 0."""
    M = mpmath.zeros(2 * n + 1, 2 * n + 1)
    for i in range(n):
        for j in range(n):
            M[i, j] = A[i, j]
            M[n + i, n + j] = A[i, j]
            M[i, n + j] = dA[i, j]
        M[n + i, 2 * n] = u[i]
    z0 = mpmath.matrix([0] * n + list(x0) + [1])
    z = mpmath.expm(M * t) * z0
    return [z[n + i] for i in range(n)], [z[i] for i in range(n)]


def bolus_moments(A, x0, draining):
    """Area and first moment of every compartment's response to the bolus ``x0`` (None for
    the compartments that do not drain)."""
    N = sorted(draining)
    A_NN = mpmath.matrix([[A[i, j] for j in N] for i in N])
    area_N = -mpmath.lu_solve(A_NN, mpmath.matrix([x0[i] for i in N]))
    first_N = -mpmath.lu_solve(A_NN, area_N)
    area, first = [None] * len(x0), [None] * len(x0)
    for k, i in enumerate(N):
        area[i], first[i] = float(area_N[k]), float(first_N[k])
    return area, first


def main():
    out = {"description": __doc__.split("\n\n")[0], "times": TIMES, "infusion_end": INFUSION_END,
           "cases": {}}
    for name, (transfers, rates, bolus, infusion) in CASES.items():
        n = len(bolus)
        A = mpmath.zeros(n, n)
        for (s, t), r in zip(transfers, rates):
            A[s, s] -= mpmath.mpf(r)
            A[t, s] += mpmath.mpf(r)
        x0 = [mpmath.mpf(v) for v in bolus]
        u = [mpmath.mpf(v) for v in infusion]
        zero = [mpmath.mpf(0)] * n
        amounts = np.zeros((len(TIMES), n))
        sens = np.zeros((len(TIMES), n, len(rates)))
        for k in range(len(rates)):
            dA = structure(n, transfers, k)
            for i, t in enumerate(TIMES):
                x, dx = response(n, A, dA, x0, u, mpmath.mpf(t))
                if t > INFUSION_END:
                    x_off, dx_off = response(n, A, dA, zero, u, mpmath.mpf(t) - INFUSION_END)
                    x = [a - b for a, b in zip(x, x_off)]
                    dx = [a - b for a, b in zip(dx, dx_off)]
                amounts[i] = [float(v) for v in x]
                sens[i, :, k] = [float(v) for v in dx]
        area, first_moment = bolus_moments(A, x0, {s for s, _ in transfers})
        out["cases"][name] = {"sources": [s for s, _ in transfers],
                              "targets": [t for _, t in transfers], "rates": rates,
                              "bolus": bolus, "infusion_rate": infusion,
                              "amounts": amounts.tolist(), "sensitivities": sens.tolist(),
                              "bolus_area": area, "bolus_first_moment": first_moment}
        print(name, "done", flush=True)
    path = Path(__file__).with_name("linear_engine_reference.json")
    path.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
