"""Partial-fraction weights of leaves fed by core modes, in compiled code (numba).

The weights that :mod:`exopk.engine.structured` puts on each core mode ``mu_m`` for a leaf of
rate ``a_l``: ``w[l, m] / (mu_m - a_l)`` with ``w[l, m] = (A_LC V)[l, m] (V^-1 x0)[m]``, zero for
the pairs closer than ``close`` times the larger of ``|mu_m|``, ``|a_l|`` and ``floor`` (those
are evaluated by a stable divided difference instead). As numpy expressions the weights,
separations and closeness are about ten passes over (batch, leaves, modes) arrays with their
temporaries; here one pass. The quotients and their sums over modes stay numpy's: a leaf's
remaining weight is that sum subtracted from the dose, a cancellation that carries their
rounding (numba's complex division and a sum in another order moved amounts by up to 1e-12
relative). Compiled by :func:`exopk.engine.kernels.compile_kernel` (cached on disk).
"""

from __future__ import annotations

import numpy as np

from exopk.engine.kernels import compile_kernel

__all__ = ["partial_fractions"]


@compile_kernel
def partial_fractions(lam, a_L, G_L, modes, close, floor, weight, separation, is_close):
    """Write the weights and mode-leaf separations of every member, with the close pairs'
    weight 0 and separation 1 (so that ``weight / separation`` is the partial-fraction
    coefficient, 0 for close pairs).

    Parameters
    ----------
    lam : ndarray (B, c)
        Core modes ``mu``, real or complex.
    a_L : ndarray (B, l)
        Leaf rates (the leaves' diagonal entries of ``A``).
    G_L, modes : ndarray (B, l, c), (B, c)
        ``A_LC V`` and ``V^-1 x0``: their products are the weights ``w``.
    close, floor : float
        A pair is close when ``|mu - a| < close * max(|mu|, |a|, floor)``.
    weight, separation : ndarray (B, l, c)
        Out: ``w`` and ``mu - a``; 0 and 1 for close pairs.
    is_close : ndarray of bool (B, l, c)
        Out: the close pairs.

    Returns
    -------
    bool
        Whether any pair is close.
    """
    B, n_leaves, n_modes = G_L.shape
    size = np.empty(n_modes)
    any_close = False
    for b in range(B):
        for m in range(n_modes):
            size[m] = abs(lam[b, m])
        for i in range(n_leaves):
            a = a_L[b, i]
            size_of_leaf = max(abs(a), floor)
            for m in range(n_modes):
                apart = lam[b, m] - a
                if abs(apart) < close * max(size[m], size_of_leaf):
                    weight[b, i, m] = 0.0
                    separation[b, i, m] = 1.0
                    is_close[b, i, m] = True
                    any_close = True
                else:
                    weight[b, i, m] = G_L[b, i, m] * modes[b, m]
                    separation[b, i, m] = apart
                    is_close[b, i, m] = False
    return any_close
