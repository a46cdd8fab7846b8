"""``V^-1 dA_p V`` for every parameter, from the rank-one structure of each transfer (numba).

``dA_p = sum_j (d rate_j / dp) (e_target_j - e_source_j) e_source_j^T``, so
``(V^-1 dA_p V)[i, k] = sum_j (d rate_j / dp) (V^-1[i, target_j] - V^-1[i, source_j])
V[source_j, k]``: ``n^2`` multiply-adds per (transfer, parameter) pair with a nonzero rate
derivative, and nothing for the others. When each rate has its own parameter the cost is
``n^2 m``, not the ``n^2 m P`` of one dense product (no ``n^4`` term in models whose every
transfer is a parameter), and pairs with a zero derivative add no ``0 * inf``.
"""

from __future__ import annotations

from exopk.engine.kernels import compile_kernel

__all__ = ["similar_derivative"]


@compile_kernel
def similar_derivative(V, V_inv, rate_jacobian, sources, targets, G):
    """Fill ``G[b, i, p, k]`` with ``(V^-1 dA_p V)[i, k]`` of member ``b``.

    Parameters
    ----------
    V, V_inv : ndarray (batch, n, n)
        Eigenvectors and their inverse, real or complex.
    rate_jacobian : ndarray (batch, n_transfers, n_parameters)
        ``d rate_j / dp``.
    sources, targets : ndarray of int (n_transfers,)
        Each transfer's compartments.
    G : ndarray (batch, n, n_parameters, n)
        Output, zero on entry, of ``V``'s type.
    """
    batch, n, _ = V.shape
    transfers, parameters = rate_jacobian.shape[1], rate_jacobian.shape[2]
    for b in range(batch):
        for j in range(transfers):
            source, target = sources[j], targets[j]
            for p in range(parameters):
                slope = rate_jacobian[b, j, p]
                if slope == 0:
                    continue
                for i in range(n):
                    w = slope * (V_inv[b, i, target] - V_inv[b, i, source])
                    for k in range(n):
                        G[b, i, p, k] += w * V[b, source, k]
