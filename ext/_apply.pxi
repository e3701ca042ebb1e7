"""Kernels that write an output array.

The fused affine apply y = (x - shift) * scale + offset, with one (shift,
scale, offset) triple per column (`affine_cols`) or per row (`affine_rows`),
computed in float64 and stored in X's dtype; `out` may be X itself
(in-place): every element is read before it is written. And the fused row
normalization `normalize_rows` (norm and divide in one sweep per row).
"""
from cython.parallel cimport prange
from libc.math cimport fabs, sqrt, INFINITY

ctypedef fused floating:
    float
    double


def affine_cols(const floating[:, ::1] X, const double[::1] shift,
                const double[::1] scale, const double[::1] offset,
                floating[:, ::1] out, int n_threads):
    """out = (X - shift) * scale + offset per column; returns the number of
    rows holding an infinity (so that transforms can refuse inf input, as
    scikit-learn does, without a separate pass)."""
    cdef Py_ssize_t n_rows = X.shape[0], n_cols = X.shape[1]
    cdef Py_ssize_t i, j
    cdef const floating* x
    cdef floating* y
    cdef floating n_inf_row
    cdef Py_ssize_t rows_with_inf = 0
    if n_cols == 0:
        return 0
    for i in prange(n_rows, nogil=True, schedule="static", num_threads=n_threads):
        x = &X[i, 0]
        y = &out[i, 0]
        n_inf_row = 0
        for j in range(n_cols):
            n_inf_row = n_inf_row + <floating> (fabs(x[j]) == INFINITY)
            y[j] = <floating> ((x[j] - shift[j]) * scale[j] + offset[j])
        if n_inf_row != 0:
            rows_with_inf += 1
    return rows_with_inf


def affine_rows(const floating[:, ::1] X, const double[::1] shift,
                const double[::1] scale, const double[::1] offset,
                floating[:, ::1] out, int n_threads):
    """out = (X - shift) * scale + offset per row; returns the number of rows
    holding an infinity."""
    cdef Py_ssize_t n_rows = X.shape[0], n_cols = X.shape[1]
    cdef Py_ssize_t i, j
    cdef const floating* x
    cdef floating* y
    cdef double sh, sc, off
    cdef floating n_inf_row
    cdef Py_ssize_t rows_with_inf = 0
    if n_cols == 0:
        return 0
    for i in prange(n_rows, nogil=True, schedule="static", num_threads=n_threads):
        x = &X[i, 0]
        y = &out[i, 0]
        sh = shift[i]
        sc = scale[i]
        off = offset[i]
        n_inf_row = 0
        for j in range(n_cols):
            n_inf_row = n_inf_row + <floating> (fabs(x[j]) == INFINITY)
            y[j] = <floating> ((x[j] - sh) * sc + off)
        if n_inf_row != 0:
            rows_with_inf += 1
    return rows_with_inf


def normalize_rows(const floating[:, ::1] X, int p, double threshold,
                   floating[:, ::1] out, double[::1] norms, int n_threads):
    """Fused row normalization: one read of X, one write of out.

    For each row, norms[i] = sum |x| (p=1) or sqrt(sum x^2) (p=2) in float64;
    the row is then divided by that norm rounded to X's dtype, or by 1 when
    that is under `threshold` (scikit-learn's zero-norm rule). The row is
    still in cache for the second sweep. `out` must not be X: a row whose
    norm is not finite is written too, and the caller raises afterwards.
    """
    cdef Py_ssize_t n_rows = X.shape[0], n_cols = X.shape[1]
    cdef Py_ssize_t i, j
    cdef const floating* x
    cdef floating* y
    cdef floating norm_t
    cdef double s, factor
    if n_cols == 0:
        return
    for i in prange(n_rows, nogil=True, schedule="static", num_threads=n_threads):
        x = &X[i, 0]
        y = &out[i, 0]
        s = 0.0
        if p == 1:
            for j in range(n_cols):
                s = s + fabs(x[j])
        else:
            for j in range(n_cols):
                s = s + <double> x[j] * x[j]
            s = sqrt(s)
        norms[i] = s
        norm_t = <floating> s
        factor = 1.0 / (<double> norm_t if norm_t >= threshold else 1.0)
        for j in range(n_cols):
            y[j] = <floating> (x[j] * factor)
