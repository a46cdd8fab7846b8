"""LAPACK called from compiled code (numba), through the routines that scipy exports.

``scipy.linalg.cython_lapack`` exports the addresses of LAPACK's routines (the library that
``scipy.linalg.lapack`` calls). :func:`call_address` calls one of them from a numba kernel with
the addresses of its arguments, as Fortran expects them: every argument by reference, matrices
column-major. The addresses are an argument of the kernels, not constants in them, so the kernels
are cached on disk like the others (:mod:`exopk.engine.kernels`); from Python, a call through
``scipy.linalg.lapack`` costs a few microseconds of argument checks and array conversion for each
routine, as much as the arithmetic of a 12 x 12 factorisation.

``ADDRESSES`` holds the routines in the order of the indices below; :func:`address_of` gives
the address of an element of an array, for an argument that is one entry of a work array.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import get_cython_function_address, intrinsic

from exopk.engine.kernels import compile_kernel

__all__ = ["ADDRESSES", "DGEEV", "DGETRF", "DGECON", "DGETRS", "ZGETRF", "ZGECON", "ZGETRS",
           "address_of", "call_address"]

_ROUTINES = ("dgeev", "dgetrf", "dgecon", "dgetrs", "zgetrf", "zgecon", "zgetrs")
DGEEV, DGETRF, DGECON, DGETRS, ZGETRF, ZGECON, ZGETRS = range(len(_ROUTINES))
ADDRESSES = np.array([get_cython_function_address("scipy.linalg.cython_lapack", name)
                      for name in _ROUTINES], dtype=np.int64)
ADDRESSES.flags.writeable = False


@intrinsic
def call_address(typingctx, address, arguments):
    """Call the routine at ``address`` (an integer) with ``arguments``, a tuple of addresses
    (integers), each passed as a pointer; the routine returns nothing (a Fortran subroutine)."""
    count = len(arguments)

    def codegen(context, builder, signature, args):
        routine, pointers = args
        byte_pointer = ir.IntType(8).as_pointer()
        function = ir.FunctionType(ir.VoidType(), [byte_pointer] * count)
        builder.call(builder.inttoptr(routine, function.as_pointer()),
                     [builder.inttoptr(builder.extract_value(pointers, i), byte_pointer)
                      for i in range(count)])
        return context.get_dummy_value()

    return types.void(address, arguments), codegen


@compile_kernel
def address_of(array, index):
    """Address of element ``index`` of the contiguous one-dimensional ``array``."""
    return np.uint64(array.ctypes.data) + np.uint64(index * array.itemsize)
