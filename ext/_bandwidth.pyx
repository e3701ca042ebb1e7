"""Memory-bandwidth probe: the streams every kernel's speed is judged by.

`read_stream` reads an array once (a sum); `copy_stream` reads one array and
writes another. Both split the array statically over the threads, as the
kernels do.
"""
from cython.parallel cimport prange


def read_stream(const double[::1] a, int n_threads):
    cdef Py_ssize_t i, n = a.shape[0]
    cdef double s = 0.0
    for i in prange(n, nogil=True, schedule="static", num_threads=n_threads):
        s += a[i]
    return s


def copy_stream(const double[::1] a, double[::1] b, int n_threads):
    cdef Py_ssize_t i, n = a.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=n_threads):
        b[i] = a[i]
