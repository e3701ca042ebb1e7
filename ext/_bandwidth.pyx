"""Memory-bandwidth probe: the streams every kernel's speed is judged by.

`read_stream` reads an array once; `copy_stream` reads one array and writes
another. Both split the array statically over the threads, as the kernels
do. The read stream adds one double per 64-byte cache line: memory moves
whole lines, so every byte is read from DRAM, while the additions stay far
below the memory's pace (a sum of every element is bound by the latency of
its addition chain on one core and would under-report read bandwidth,
flattering every kernel compared with it).
"""
from cython.parallel cimport prange

cdef enum:
    LINE_DOUBLES = 8  # doubles per 64-byte cache line


def read_stream(const double[::1] a, int n_threads):
    cdef Py_ssize_t n_lines = a.shape[0] // LINE_DOUBLES, line
    cdef double s = 0.0
    for line in prange(n_lines, nogil=True, schedule="static", num_threads=n_threads):
        s += a[line * LINE_DOUBLES]
    return s


def copy_stream(const double[::1] a, double[::1] b, int n_threads):
    cdef Py_ssize_t i, n = a.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=n_threads):
        b[i] = a[i]
