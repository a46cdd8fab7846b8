"""BLAS on one thread while a fit runs.

The matrices of a fit are small (tens of states, a few parameter sets at a time), so a second
BLAS thread only adds synchronisation; with chains in parallel processes it oversubscribes the
cores, and on a busy machine a thread that waits for a descheduled partner turns a 24 x 24 matrix
exponential from about 0.15 ms into several milliseconds. :func:`one_blas_thread` limits every
loaded BLAS library (numpy's and scipy's may be distinct) for the duration of a ``with`` block
and restores the previous limits afterwards, so a program that calls :func:`exopk.fit` keeps its
own settings.
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits

__all__ = ["one_blas_thread"]


def one_blas_thread():
    """Every loaded BLAS library on one thread, from this call on.

    Used as a context manager, the previous limits come back at the end of the block.

    Examples
    --------
    >>> from threadpoolctl import threadpool_info
    >>> with one_blas_thread():
    ...     print({pool["num_threads"] for pool in threadpool_info()
    ...            if pool["user_api"] == "blas"})
    {1}
    """
    import scipy.linalg  # noqa: F401  (scipy's BLAS must be loaded to be limited)

    return threadpool_limits(limits=1, user_api="blas")
