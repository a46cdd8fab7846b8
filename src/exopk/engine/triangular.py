"""Eigendecompositions of block lower-triangular system matrices, block by block.

EV models are mostly one-way between groups of compartments: plasma feeds the organs that take
vesicles up and keep them, an intranasal depot feeds plasma and brain and gets nothing back.
Group the compartments into the strongly connected components of the transfers whose rate is
nonzero somewhere in a batch, upstream groups first; then ``A`` is block lower triangular,
``A_IJ = 0`` when block ``J`` comes after block ``I``. Its eigenvalues are those of the diagonal
blocks: a block of one compartment has its diagonal entry, only blocks that exchange need LAPACK.
The eigenvectors follow by block substitution. For an eigenvalue ``lam`` of block ``K`` with
block eigenvector ``u`` (``A_KK u = lam u``), the right eigenvector is zero upstream of ``K``,
``u`` on ``K`` and downstream::

    v_I = (lam - A_II)^-1 sum_{K <= J < I} A_IJ v_J

The left eigenvector (a row of ``V^-1``) starts from the row of ``V_K^-1`` that belongs to ``u``,
is zero downstream of ``K`` and upstream::

    w_J = (sum_{J < I <= K} w_I A_IJ) (lam - A_JJ)^-1

``(lam - A_II)^-1`` is a division for a block of one and goes through the block's own
decomposition otherwise. ``w v = 1`` by construction, so the rows form ``V^-1`` without an
inverse. The cost follows the largest block that exchanges, not the number of compartments.

Columns are scaled to unit 2-norm, as LAPACK's are, so that the condition numbers mean what
those of :func:`exopk.engine.eigen.eigendecompose` mean. Two equal eigenvalues of connected
blocks make ``A`` defective or nearly so: the substitution divides by a zero or tiny difference,
and the condition number becomes infinite or large, as it does for LAPACK's eigenvectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.csgraph import connected_components

from exopk.engine.eigen import condition_number, eigendecompose

__all__ = ["BlockOrder", "block_triangular_eigendecompose"]


@dataclass(frozen=True)
class BlockOrder:
    """The strongly connected blocks of a transfer pattern, upstream first.

    Attributes
    ----------
    blocks : tuple of ndarray of int
        Compartment indices of each block, in an order in which the matrix is block lower
        triangular.
    coupled : frozenset of (int, int)
        Pairs ``(I, J)``, ``I`` after ``J``, of blocks with a transfer from ``J`` into ``I``.

    Examples
    --------
    Plasma (0) feeds liver (1) and exchanges with brain (2):

    >>> import numpy as np
    >>> from exopk.engine.triangular import BlockOrder
    >>> flows = np.zeros((3, 3), dtype=bool)          # flows[i, j]: a transfer from j into i
    >>> flows[1, 0] = flows[2, 0] = flows[0, 2] = True
    >>> order = BlockOrder.of(flows)
    >>> [block.tolist() for block in order.blocks], sorted(order.coupled)
    ([[0, 2], [1]], [(1, 0)])
    """

    blocks: tuple
    coupled: frozenset

    @classmethod
    def of(cls, flows: np.ndarray) -> "BlockOrder":
        """The blocks of ``flows`` (n, n), ``flows[i, j]`` true when something moves from
        ``j`` into ``i``; ties in the order go to the block with the smallest index."""
        flows = np.array(flows, dtype=bool)
        np.fill_diagonal(flows, False)
        count, label = connected_components(flows.T, directed=True, connection="strong")
        members = [np.flatnonzero(label == b) for b in range(count)]
        into = {b: {int(label[j]) for i in members[b] for j in np.flatnonzero(flows[i])} - {b}
                for b in range(count)}
        order, placed = [], set()
        while len(order) < count:
            ready = min((b for b in range(count) if b not in placed and into[b] <= placed),
                        key=lambda b: members[b][0])
            order.append(ready)
            placed.add(ready)
        position = {b: p for p, b in enumerate(order)}
        coupled = frozenset((position[b], position[a]) for b in range(count) for a in into[b])
        return cls(tuple(members[b] for b in order), coupled)

    @property
    def trivial(self) -> bool:
        """True when everything is one block (nothing to gain over a whole decomposition)."""
        return len(self.blocks) == 1


def block_triangular_eigendecompose(A: np.ndarray, order: BlockOrder):
    """Eigenvalues, unit right eigenvectors, their inverse and a condition number, for each
    member of a batch of matrices that are block lower triangular in ``order``.

    The same quantities as :func:`exopk.engine.eigen.eigendecompose` (eigenvalues in another
    order), from the diagonal blocks' decompositions and block substitution (module docstring).

    Parameters
    ----------
    A : ndarray (batch, n, n)
    order : BlockOrder
        Of a pattern that holds every nonzero off-diagonal entry of ``A``.

    Returns
    -------
    lam : ndarray (batch, n), real when every member's eigenvalues are real, else complex
    V, V_inv : ndarray (batch, n, n)
    condition : ndarray (batch,)
        ``||V||_1 ||V^-1||_1``; infinite where the substitution breaks down (a defective
        matrix).
    """
    batch = A.shape[0]
    blocks = order.blocks
    diagonal = [_block_decomposition(A[:, b[:, None], b[None, :]]) for b in blocks]
    dtype = np.result_type(*(lam for lam, _, _ in diagonal))
    starts = np.cumsum([0] + [len(b) for b in blocks])
    columns = [slice(starts[k], starts[k + 1]) for k in range(len(blocks))]
    n = int(starts[-1])
    # built in block order (rows and columns), then the rows of V and the columns of V^-1 are
    # put back in compartment order
    V = np.zeros((batch, n, n), dtype)
    W = np.zeros((batch, n, n), dtype)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for k, (lam_k, V_k, W_k) in enumerate(diagonal):
            V[:, columns[k], columns[k]] = V_k
            W[:, columns[k], columns[k]] = W_k
            reached = {k}
            for i in range(k + 1, len(blocks)):
                sources = [j for j in sorted(reached) if (i, j) in order.coupled]
                if not sources:
                    continue
                total = sum(A[:, blocks[i][:, None], blocks[j][None, :]] @ V[:, columns[j],
                                                                               columns[k]]
                            for j in sources)
                V[:, columns[i], columns[k]] = _solve_shifted(diagonal[i], lam_k, total)
                reached.add(i)
            reaching = {k}
            for j in range(k - 1, -1, -1):
                targets = [i for i in sorted(reaching) if (i, j) in order.coupled]
                if not targets:
                    continue
                total = sum(W[:, columns[k], columns[i]] @ A[:, blocks[i][:, None],
                                                             blocks[j][None, :]]
                            for i in targets)
                W[:, columns[k], columns[j]] = _solve_shifted_left(diagonal[j], lam_k, total)
                reaching.add(j)
        norms = np.sqrt((np.abs(V) ** 2).sum(axis=1))                             # (B, n)
        V /= norms[:, None, :]
        W *= norms[:, :, None]
    condition = condition_number(V, W)
    compartments = np.concatenate(blocks)
    back = np.empty(n, dtype=int)
    back[compartments] = np.arange(n)
    lam = np.concatenate([lam for lam, _, _ in diagonal], axis=1)
    return lam, V[:, back, :], W[:, :, back], condition


def _block_decomposition(A_block):
    """``(lam, V, V^-1)`` of a diagonal block: its entry and ones for a block of one, else
    :func:`~exopk.engine.eigen.eigendecompose` (its condition is that of the whole, later)."""
    if A_block.shape[1] == 1:
        one = np.ones_like(A_block)
        return A_block[:, 0, :], one, one
    lam, V, V_inv, _ = eigendecompose(A_block)
    return lam, V, V_inv


def _solve_shifted(block, lam, total):
    """``(lam_m - A_II)^-1 total[:, :, m]`` for every column ``m`` (``lam`` (B, k), ``total``
    (B, i, k)), through block ``I``'s decomposition ``(mu, V_I, V_I^-1)``."""
    mu, V_I, W_I = block
    if V_I.shape[1] == 1:
        return total / (lam[:, None, :] - mu[:, :, None])
    return V_I @ ((W_I @ total) / (lam[:, None, :] - mu[:, :, None]))


def _solve_shifted_left(block, lam, total):
    """``total[:, m, :] (lam_m - A_JJ)^-1`` for every row ``m`` (``total`` (B, k, j))."""
    mu, V_J, W_J = block
    if V_J.shape[1] == 1:
        return total / (lam[:, :, None] - mu[:, None, :])
    return ((total @ V_J) / (lam[:, :, None] - mu[:, None, :])) @ W_J
