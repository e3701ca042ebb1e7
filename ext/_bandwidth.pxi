"""Memory-bandwidth probe: the streams every kernel's speed is judged by.

`read_stream` reads an array once; `copy_stream` reads one array and writes
another. Both split the array statically over the threads, as the kernels
do. The read stream sums with 16 independent partial sums (read_stream.h):
a single chain of additions is bound by its latency on one core and would
under-report the read bandwidth, flattering every kernel compared with it.
"""
from cython.parallel cimport prange

cdef extern from "read_stream.h":
    double fastnorm_sum_lanes(const double* a, Py_ssize_t n) noexcept nogil


def read_stream(const double[::1] a, int n_threads):
    cdef Py_ssize_t n = a.shape[0], chunk = (n + n_threads - 1) // n_threads, t
    cdef double s = 0.0
    for t in prange(n_threads, nogil=True, schedule="static", num_threads=n_threads):
        if t * chunk < n:
            s += fastnorm_sum_lanes(&a[t * chunk], min(chunk, n - t * chunk))
    return s


def copy_stream(const double[::1] a, double[::1] b, int n_threads):
    cdef Py_ssize_t i, n = a.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=n_threads):
        b[i] = a[i]
