"""Eigenvalues, unit right eigenvectors and their inverse of a batch of small real matrices,
member by member in compiled code (numba).

For the diagonal blocks of block-triangular cores (:mod:`exopk.engine.triangular`; the
exchanging block of ``m4_brain`` and ``m5_intranasal`` has four compartments) LAPACK's ``geev``
through numpy's stacked ``eig`` costs 3.3 us per 4 x 4 matrix, most of it per-call work
(workspace queries, balancing, copies); the same algorithm written out for small matrices costs
0.9 us. The algorithm is EISPACK's: ``orthes`` (Householder reduction to Hessenberg form, the
transformations accumulated) and ``hqr2`` (Francis double-shift QR to real Schur form, then
back substitution for the eigenvectors), as translated in JAMA (public domain: J. Hicklin,
C. Moler, P. Webb et al., *JAMA: A Java Matrix Package*, NIST and The MathWorks, 2012,
https://math.nist.gov/javanumerics/jama/). No balancing: for rate matrices whose rates span
orders of magnitude it moved eigenvalues more than it helped (measured against 40-digit
eigenvalues: 1.9e-11 without, 1.1e-11 with, LAPACK 8.8e-12 at worst over 300 extreme prior-like
matrices; residuals ``||A V - V diag(lam)||`` of 3.5e-15 ``||A||`` without, 6e-12 with).

Eigenvectors are scaled to unit 2-norm; a complex pair is stored as ``lam``, ``conj(lam)``
(positive imaginary part first) with conjugate vectors, as LAPACK does. The inverse is an LU
factorisation with partial pivoting, in real arithmetic for members with a real spectrum;
a singular eigenvector matrix (a defective matrix) gives a NaN inverse. A member whose QR
iteration does not converge within ``30 k`` double steps, or with an entry that is not
finite, is flagged for LAPACK (which raises for the latter, as numpy's ``eig`` always did).
Divisions follow IEEE arithmetic, as in the original (a degenerate case ends in NaN, not an
exception).
Compiled by :func:`exopk.engine.kernels.compile_kernel` (cached on disk).
"""

from __future__ import annotations

import numpy as np

from exopk.engine.kernels import compile_kernel
from exopk.engine.lu_kernel import factor_blocks, solve_factored

__all__ = ["eigendecompose_small", "NOT_CONVERGED", "NOT_FINITE"]

EPS = 2.0 ** -52
NOT_CONVERGED, NOT_FINITE = 1, 2   # a member's status, left to LAPACK


@compile_kernel(ieee_division=True)
def _hessenberg(H, Q, ort):
    """Householder reduction of ``H`` (k, k) to upper Hessenberg form, in place (``orthes``);
    ``Q`` is set to the accumulated orthogonal transformation, ``ort`` (k,) is work space."""
    n = H.shape[0]
    high = n - 1
    for m in range(1, high):
        scale = 0.0
        for i in range(m, high + 1):
            scale += abs(H[i, m - 1])
        if scale != 0.0:
            h = 0.0
            for i in range(high, m - 1, -1):
                ort[i] = H[i, m - 1] / scale
                h += ort[i] * ort[i]
            g = np.sqrt(h)
            if ort[m] > 0:
                g = -g
            h = h - ort[m] * g
            ort[m] = ort[m] - g
            for j in range(m, n):
                f = 0.0
                for i in range(high, m - 1, -1):
                    f += ort[i] * H[i, j]
                f = f / h
                for i in range(m, high + 1):
                    H[i, j] -= f * ort[i]
            for i in range(0, high + 1):
                f = 0.0
                for j in range(high, m - 1, -1):
                    f += ort[j] * H[i, j]
                f = f / h
                for j in range(m, high + 1):
                    H[i, j] -= f * ort[j]
            ort[m] = scale * ort[m]
            H[m, m - 1] = scale * g
    for i in range(n):
        for j in range(n):
            Q[i, j] = 1.0 if i == j else 0.0
    for m in range(high - 1, 0, -1):
        if H[m, m - 1] != 0.0:
            for i in range(m + 1, high + 1):
                ort[i] = H[i, m - 1]
            for j in range(m, high + 1):
                g = 0.0
                for i in range(m, high + 1):
                    g += ort[i] * Q[i, j]
                g = (g / ort[m]) / H[m, m - 1]
                for i in range(m, high + 1):
                    Q[i, j] += g * ort[i]


@compile_kernel(ieee_division=True)
def _cdiv(xr, xi, yr, yi):
    """Real and imaginary parts of ``(xr + i xi) / (yr + i yi)`` (Smith's division)."""
    if abs(yr) > abs(yi):
        r = yi / yr
        d = yr + r * yi
        return (xr + r * xi) / d, (xi - r * xr) / d
    r = yr / yi
    d = yi + r * yr
    return (r * xr + xi) / d, (r * xi - xr) / d


@compile_kernel(ieee_division=True)
def _schur_vectors(H, V, d, e, max_iterations):
    """Eigenvalues ``d + i e`` and eigenvectors of the matrix whose Hessenberg form is ``H`` and
    whose accumulated transformation is ``V`` (``hqr2``).

    ``H`` is reduced to real Schur form by Francis double-shift QR steps and then overwritten
    by back substitution; ``V`` ends with the eigenvectors (not normalised), a complex pair's
    real and imaginary parts in adjacent columns (``e > 0`` first). Returns False when more
    than ``max_iterations`` QR steps are needed.
    """
    nn = H.shape[0]
    n = nn - 1
    low = 0
    high = nn - 1
    exshift = 0.0
    p = q = r = s = z = 0.0
    x = y = w = 0.0
    norm = 0.0
    for i in range(nn):
        for j in range(max(i - 1, 0), nn):
            norm += abs(H[i, j])
    iterations = 0
    it = 0
    while n >= low:
        l = n
        while l > low:
            s = abs(H[l - 1, l - 1]) + abs(H[l, l])
            if s == 0.0:
                s = norm
            if H[l, l - 1] == 0.0 or abs(H[l, l - 1]) < EPS * s:
                break
            l -= 1
        if l == n:
            H[n, n] = H[n, n] + exshift
            d[n] = H[n, n]
            e[n] = 0.0
            n -= 1
            it = 0
        elif l == n - 1:
            w = H[n, n - 1] * H[n - 1, n]
            p = (H[n - 1, n - 1] - H[n, n]) / 2.0
            q = p * p + w
            z = np.sqrt(abs(q))
            H[n, n] = H[n, n] + exshift
            H[n - 1, n - 1] = H[n - 1, n - 1] + exshift
            x = H[n, n]
            if q >= 0:
                z = p + z if p >= 0 else p - z
                d[n - 1] = x + z
                d[n] = d[n - 1]
                if z != 0.0:
                    d[n] = x - w / z
                e[n - 1] = 0.0
                e[n] = 0.0
                x = H[n, n - 1]
                s = abs(x) + abs(z)
                p = x / s
                q = z / s
                r = np.sqrt(p * p + q * q)
                p = p / r
                q = q / r
                for j in range(n - 1, nn):
                    z = H[n - 1, j]
                    H[n - 1, j] = q * z + p * H[n, j]
                    H[n, j] = q * H[n, j] - p * z
                for i in range(0, n + 1):
                    z = H[i, n - 1]
                    H[i, n - 1] = q * z + p * H[i, n]
                    H[i, n] = q * H[i, n] - p * z
                for i in range(low, high + 1):
                    z = V[i, n - 1]
                    V[i, n - 1] = q * z + p * V[i, n]
                    V[i, n] = q * V[i, n] - p * z
            else:
                d[n - 1] = x + p
                d[n] = x + p
                e[n - 1] = z
                e[n] = -z
            n = n - 2
            it = 0
        else:
            iterations += 1
            if iterations > max_iterations:
                return False
            x = H[n, n]
            y = 0.0
            w = 0.0
            if l < n:
                y = H[n - 1, n - 1]
                w = H[n, n - 1] * H[n - 1, n]
            if it == 10:
                exshift += x
                for i in range(low, n + 1):
                    H[i, i] -= x
                s = abs(H[n, n - 1]) + abs(H[n - 1, n - 2])
                x = y = 0.75 * s
                w = -0.4375 * s * s
            if it == 30:
                s = (y - x) / 2.0
                s = s * s + w
                if s > 0:
                    s = np.sqrt(s)
                    if y < x:
                        s = -s
                    s = x - w / ((y - x) / 2.0 + s)
                    for i in range(low, n + 1):
                        H[i, i] -= s
                    exshift += s
                    x = y = w = 0.964
            it += 1
            m = n - 2
            while m >= l:
                z = H[m, m]
                r = x - z
                s = y - z
                p = (r * s - w) / H[m + 1, m] + H[m, m + 1]
                q = H[m + 1, m + 1] - z - r - s
                r = H[m + 2, m + 1]
                s = abs(p) + abs(q) + abs(r)
                p = p / s
                q = q / s
                r = r / s
                if m == l:
                    break
                if abs(H[m, m - 1]) * (abs(q) + abs(r)) < EPS * (
                        abs(p) * (abs(H[m - 1, m - 1]) + abs(z) + abs(H[m + 1, m + 1]))):
                    break
                m -= 1
            for i in range(m + 2, n + 1):
                H[i, i - 2] = 0.0
                if i > m + 2:
                    H[i, i - 3] = 0.0
            for k in range(m, n):
                notlast = k != n - 1
                if k != m:
                    p = H[k, k - 1]
                    q = H[k + 1, k - 1]
                    r = H[k + 2, k - 1] if notlast else 0.0
                    x = abs(p) + abs(q) + abs(r)
                    if x == 0.0:
                        continue
                    p = p / x
                    q = q / x
                    r = r / x
                s = np.sqrt(p * p + q * q + r * r)
                if p < 0:
                    s = -s
                if s != 0:
                    if k != m:
                        H[k, k - 1] = -s * x
                    elif l != m:
                        H[k, k - 1] = -H[k, k - 1]
                    p = p + s
                    x = p / s
                    y = q / s
                    z = r / s
                    q = q / p
                    r = r / p
                    for j in range(k, nn):
                        p = H[k, j] + q * H[k + 1, j]
                        if notlast:
                            p = p + r * H[k + 2, j]
                            H[k + 2, j] = H[k + 2, j] - p * z
                        H[k, j] = H[k, j] - p * x
                        H[k + 1, j] = H[k + 1, j] - p * y
                    for i in range(0, min(n, k + 3) + 1):
                        p = x * H[i, k] + y * H[i, k + 1]
                        if notlast:
                            p = p + z * H[i, k + 2]
                            H[i, k + 2] = H[i, k + 2] - p * r
                        H[i, k] = H[i, k] - p
                        H[i, k + 1] = H[i, k + 1] - p * q
                    for i in range(low, high + 1):
                        p = x * V[i, k] + y * V[i, k + 1]
                        if notlast:
                            p = p + z * V[i, k + 2]
                            V[i, k + 2] = V[i, k + 2] - p * r
                        V[i, k] = V[i, k] - p
                        V[i, k + 1] = V[i, k + 1] - p * q
    if norm == 0.0:
        return True
    for n in range(nn - 1, -1, -1):
        p = d[n]
        q = e[n]
        if q == 0:
            l = n
            H[n, n] = 1.0
            for i in range(n - 1, -1, -1):
                w = H[i, i] - p
                r = 0.0
                for j in range(l, n + 1):
                    r = r + H[i, j] * H[j, n]
                if e[i] < 0.0:
                    z = w
                    s = r
                else:
                    l = i
                    if e[i] == 0.0:
                        if w != 0.0:
                            H[i, n] = -r / w
                        else:
                            H[i, n] = -r / (EPS * norm)
                    else:
                        x = H[i, i + 1]
                        y = H[i + 1, i]
                        q = (d[i] - p) * (d[i] - p) + e[i] * e[i]
                        t = (x * s - z * r) / q
                        H[i, n] = t
                        if abs(x) > abs(z):
                            H[i + 1, n] = (-r - w * t) / x
                        else:
                            H[i + 1, n] = (-s - y * t) / z
                    t = abs(H[i, n])
                    if (EPS * t) * t > 1:
                        for j in range(i, n + 1):
                            H[j, n] = H[j, n] / t
        elif q < 0:
            l = n - 1
            if abs(H[n, n - 1]) > abs(H[n - 1, n]):
                H[n - 1, n - 1] = q / H[n, n - 1]
                H[n - 1, n] = -(H[n, n] - p) / H[n, n - 1]
            else:
                H[n - 1, n - 1], H[n - 1, n] = _cdiv(0.0, -H[n - 1, n], H[n - 1, n - 1] - p, q)
            H[n, n - 1] = 0.0
            H[n, n] = 1.0
            for i in range(n - 2, -1, -1):
                ra = 0.0
                sa = 0.0
                for j in range(l, n + 1):
                    ra = ra + H[i, j] * H[j, n - 1]
                    sa = sa + H[i, j] * H[j, n]
                w = H[i, i] - p
                if e[i] < 0.0:
                    z = w
                    r = ra
                    s = sa
                else:
                    l = i
                    if e[i] == 0:
                        H[i, n - 1], H[i, n] = _cdiv(-ra, -sa, w, q)
                    else:
                        x = H[i, i + 1]
                        y = H[i + 1, i]
                        vr = (d[i] - p) * (d[i] - p) + e[i] * e[i] - q * q
                        vi = (d[i] - p) * 2.0 * q
                        if vr == 0.0 and vi == 0.0:
                            vr = EPS * norm * (abs(w) + abs(q) + abs(x) + abs(y) + abs(z))
                        H[i, n - 1], H[i, n] = _cdiv(x * r - z * ra + q * sa,
                                                     x * s - z * sa - q * ra, vr, vi)
                        if abs(x) > (abs(z) + abs(q)):
                            H[i + 1, n - 1] = (-ra - w * H[i, n - 1] + q * H[i, n]) / x
                            H[i + 1, n] = (-sa - w * H[i, n] - q * H[i, n - 1]) / x
                        else:
                            H[i + 1, n - 1], H[i + 1, n] = _cdiv(-r - y * H[i, n - 1],
                                                                 -s - y * H[i, n], z, q)
                    t = max(abs(H[i, n - 1]), abs(H[i, n]))
                    if (EPS * t) * t > 1:
                        for j in range(i, n + 1):
                            H[j, n - 1] = H[j, n - 1] / t
                            H[j, n] = H[j, n] / t
    for j in range(nn - 1, low - 1, -1):
        for i in range(low, high + 1):
            z = 0.0
            for k in range(low, min(j, high) + 1):
                z = z + V[i, k] * H[k, j]
            V[i, j] = z
    return True


@compile_kernel(ieee_division=True)
def _invert(M, inverse, lu, pivot, whole, unfed):
    """``inverse`` of ``M`` (k, k), real or complex, by LU with partial pivoting
    (:mod:`exopk.engine.lu_kernel`, one block ``whole`` = ``[0, k]``); NaN when a pivot is
    exactly zero. ``lu`` (k, k) is work space of ``M``'s type."""
    k = M.shape[0]
    for i in range(k):
        for j in range(k):
            lu[i, j] = M[i, j]
    if not factor_blocks(lu, whole, pivot):
        for i in range(k):
            for j in range(k):
                inverse[i, j] = np.nan
        return
    for i in range(k):
        for j in range(k):
            inverse[i, j] = 0
        inverse[i, i] = 1
    solve_factored(lu, whole, unfed, pivot, inverse)


@compile_kernel(ieee_division=True)
def eigendecompose_small(A, lam, V, V_inv, status):
    """Eigenvalues, unit right eigenvectors and their inverse of each member of ``A``.

    Parameters
    ----------
    A : ndarray (batch, k, k), float
    lam : ndarray (batch, k), complex
    V, V_inv : ndarray (batch, k, k), complex
        Written; members with a real spectrum have zero imaginary parts.
    status : ndarray of int8 (batch,)
        Written: 0, ``NOT_FINITE`` (an entry is NaN or infinite) or ``NOT_CONVERGED``; the
        outputs of such members are not set.
    """
    batch, k = A.shape[0], A.shape[1]
    H = np.empty((k, k))
    Q = np.empty((k, k))
    ort = np.empty(k)
    d = np.empty(k)
    e = np.empty(k)
    real_inverse = np.empty((k, k))
    real_lu = np.empty((k, k))
    complex_V = np.empty((k, k), dtype=np.complex128)
    complex_inverse = np.empty((k, k), dtype=np.complex128)
    complex_lu = np.empty((k, k), dtype=np.complex128)
    pivot = np.empty(k, dtype=np.int64)
    whole = np.array([0, k])                # the inverse's LU: one block, fed by none
    unfed = np.zeros(1, dtype=np.bool_)
    for b in range(batch):
        finite = True
        for i in range(k):
            for j in range(k):
                H[i, j] = A[b, i, j]
                if not np.isfinite(H[i, j]):
                    finite = False
        if not finite:
            status[b] = NOT_FINITE
            continue
        _hessenberg(H, Q, ort)
        if not _schur_vectors(H, Q, d, e, 30 * k):
            status[b] = NOT_CONVERGED
            continue
        status[b] = 0
        # eigenvalues, and the columns of Q scaled to unit 2-norm (a pair's two columns
        # together: the norm of its complex vector)
        real = True
        j = 0
        while j < k:
            pair = e[j] != 0.0
            width = 2 if pair else 1
            norm = 0.0
            for i in range(k):
                for c in range(j, j + width):
                    norm += Q[i, c] * Q[i, c]
            norm = np.sqrt(norm)
            for i in range(k):
                for c in range(j, j + width):
                    Q[i, c] = Q[i, c] / norm
            if pair:
                real = False
                lam[b, j] = complex(d[j], e[j])
                lam[b, j + 1] = complex(d[j + 1], e[j + 1])
            else:
                lam[b, j] = d[j]
            j += width
        if real:
            _invert(Q, real_inverse, real_lu, pivot, whole, unfed)
            for i in range(k):
                for j in range(k):
                    V[b, i, j] = Q[i, j]
                    V_inv[b, i, j] = real_inverse[i, j]
            continue
        j = 0
        while j < k:
            if e[j] == 0.0:
                for i in range(k):
                    complex_V[i, j] = Q[i, j]
                j += 1
            else:
                for i in range(k):
                    complex_V[i, j] = complex(Q[i, j], Q[i, j + 1])
                    complex_V[i, j + 1] = complex(Q[i, j], -Q[i, j + 1])
                j += 2
        _invert(complex_V, complex_inverse, complex_lu, pivot, whole, unfed)
        for i in range(k):
            for j in range(k):
                V[b, i, j] = complex_V[i, j]
                V_inv[b, i, j] = complex_inverse[i, j]
