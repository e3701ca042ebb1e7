"""The fused affine apply: y = (x - shift) * scale + offset.

One (shift, scale, offset) triple per column (`affine_cols`) or per row
(`affine_rows`), computed in float64 and stored in X's dtype. `out` may be X
itself (in-place): every element is read before it is written.
"""
from cython.parallel cimport prange

ctypedef fused floating:
    float
    double


def affine_cols(const floating[:, ::1] X, const double[::1] shift,
                const double[::1] scale, const double[::1] offset,
                floating[:, ::1] out, int n_threads):
    cdef Py_ssize_t n_rows = X.shape[0], n_cols = X.shape[1]
    cdef Py_ssize_t i, j
    cdef const floating* x
    cdef floating* y
    if n_cols == 0:
        return
    for i in prange(n_rows, nogil=True, schedule="static", num_threads=n_threads):
        x = &X[i, 0]
        y = &out[i, 0]
        for j in range(n_cols):
            y[j] = <floating> ((x[j] - shift[j]) * scale[j] + offset[j])


def affine_rows(const floating[:, ::1] X, const double[::1] shift,
                const double[::1] scale, const double[::1] offset,
                floating[:, ::1] out, int n_threads):
    cdef Py_ssize_t n_rows = X.shape[0], n_cols = X.shape[1]
    cdef Py_ssize_t i, j
    cdef const floating* x
    cdef floating* y
    cdef double sh, sc, off
    if n_cols == 0:
        return
    for i in prange(n_rows, nogil=True, schedule="static", num_threads=n_threads):
        x = &X[i, 0]
        y = &out[i, 0]
        sh = shift[i]
        sc = scale[i]
        off = offset[i]
        for j in range(n_cols):
            y[j] = <floating> ((x[j] - sh) * sc + off)
