"""Eigendecompositions of block lower-triangular system matrices, block by block.

EV models are mostly one-way between groups of compartments: plasma feeds the organs that take
vesicles up and keep them, an intranasal depot feeds plasma and brain and gets nothing back.
Group the compartments into the strongly connected components of the transfers whose rate is
nonzero somewhere in a batch, upstream groups first; then ``A`` is block lower triangular,
``A_IJ = 0`` when block ``J`` comes after block ``I``. Its eigenvalues are those of the diagonal
blocks: a block of one compartment has its diagonal entry, only blocks that exchange need an
eigensolver (compiled QR iterations for blocks of up to ``SMALL_BLOCK`` compartments,
:mod:`exopk.engine.small_eigen_kernel`; LAPACK beyond).
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

from exopk.engine.eigen import small_eigendecompose, stacked_eigendecompose

__all__ = ["BlockOrder", "block_triangular_eigendecompose"]

# diagonal blocks of up to this many compartments are decomposed by the compiled small-matrix
# kernel: on strongly connected rate matrices 0.30x LAPACK's time through numpy at 4 x 4, 0.58x
# at 10 x 10, 0.64x at 12 x 12
SMALL_BLOCK = 12


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

    @property
    def fed(self) -> set:
        """Positions of the blocks that receive a transfer from an earlier block."""
        return {i for i, _ in self.coupled}

    @property
    def feeding(self) -> set:
        """Positions of the blocks that send a transfer to a later block."""
        return {j for _, j in self.coupled}

    def arrange(self, A: np.ndarray):
        """``A`` (batch, n, n) permuted into block order, with the compartment of each
        position (n,) and the positions of each block (a list of slices)."""
        compartments = np.concatenate(self.blocks)
        starts = np.cumsum([0] + [len(b) for b in self.blocks])
        spans = [slice(starts[k], starts[k + 1]) for k in range(len(self.blocks))]
        return A[:, compartments[:, None], compartments[None, :]], compartments, spans


def block_triangular_eigendecompose(A: np.ndarray, order: BlockOrder):
    """Eigenvalues, unit right eigenvectors, their inverse and a condition number, for each
    member of a batch of matrices that are block lower triangular in ``order``.

    The same quantities as :func:`exopk.engine.eigen.eigendecompose` (eigenvalues in another
    order), from the diagonal blocks' decompositions and block substitution (module docstring),
    member by member in compiled code (:mod:`exopk.engine.substitution_kernel`). The matrices
    are permuted into block order once. Members whose blocks all have real spectra are
    substituted in real arithmetic (their vectors have zero imaginary parts), the others in
    complex arithmetic.

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
    from exopk.engine.substitution_kernel import substitute   # numba: imported on first use

    permuted, compartments, spans = order.arrange(A)
    diagonal = [_block_decomposition(permuted[:, span, span]) for span in spans]
    lam = np.concatenate([lam for lam, _, _ in diagonal], axis=1)
    back = np.empty(len(compartments), dtype=int)
    back[compartments] = np.arange(len(compartments))
    starts = np.array([span.start for span in spans] + [spans[-1].stop])
    fed = np.isin(np.arange(len(spans)), list(order.fed))
    feeding = np.isin(np.arange(len(spans)), list(order.feeding))
    diagonal_V = np.zeros(A.shape, lam.dtype)
    diagonal_W = np.zeros(A.shape, lam.dtype)
    for span, (_, V_k, W_k) in zip(spans, diagonal):
        diagonal_V[:, span, span] = V_k
        diagonal_W[:, span, span] = W_k
    V, W = np.empty((2,) + A.shape, dtype=lam.dtype)
    condition = np.empty(A.shape[0])
    real = ~lam.imag.any(axis=1) if np.iscomplexobj(lam) else None
    if real is None or not real.any():
        groups = [(np.arange(A.shape[0]), np.asarray)]
    else:   # members whose blocks all have real spectra in real (contiguous) arithmetic
        groups = [(np.flatnonzero(real), lambda x: np.ascontiguousarray(x.real)),
                  (np.flatnonzero(~real), np.asarray)]
    for rows, arithmetic in groups:
        if len(rows):
            substitute(permuted, arithmetic(lam), arithmetic(diagonal_V),
                       arithmetic(diagonal_W), starts, fed, feeding, rows, back, V, W, condition)
    return lam, V, W, condition


def _block_decomposition(A_block):
    """``(lam, V, V^-1)`` of a diagonal block: its entry and ones for a block of one,
    :func:`~exopk.engine.eigen.small_eigendecompose` for a block of up to
    ``SMALL_BLOCK`` compartments, else :func:`~exopk.engine.eigen.stacked_eigendecompose` (the
    condition number is that of the whole, later)."""
    if A_block.shape[1] == 1:
        one = np.ones_like(A_block)
        return A_block[:, 0, :], one, one
    if A_block.shape[1] <= SMALL_BLOCK:
        return small_eigendecompose(A_block)
    return stacked_eigendecompose(A_block)
