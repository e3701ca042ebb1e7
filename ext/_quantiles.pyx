"""Per-row quantiles with linear interpolation (NumPy's default 'linear' method).

Each row is copied into a per-thread buffer (NaNs dropped when ignore_nan)
and partially sorted with std::nth_element, one selection per quantile in
ascending order, each on the part left of the previous one.
"""
from cython.parallel cimport prange, parallel
from libc.stdlib cimport malloc, free
from libc.math cimport floor, NAN
from libcpp.algorithm cimport lower_bound, min_element, nth_element, sort

ctypedef fused floating:
    float
    double


cdef inline double _lerp(double a, double b, double t) noexcept nogil:
    # NumPy's _lerp: exact at both ends and monotonic
    cdef double diff = b - a
    return b - diff * (1.0 - t) if t >= 0.5 else a + diff * t


cdef void _row_quantiles(const floating* row, Py_ssize_t n, const double* qs,
                         Py_ssize_t n_q, bint ignore_nan, floating* buf,
                         double* out) noexcept nogil:
    cdef Py_ssize_t j, k, m = 0, lo, start = 0
    cdef double pos, lo_val, hi_val
    cdef floating v
    for j in range(n):
        v = row[j]
        if v == v:
            buf[m] = v
            m += 1
        elif not ignore_nan:
            m = -1
            break
    if m <= 0:  # a NaN without ignore_nan, or nothing left
        for k in range(n_q):
            out[k] = NAN
        return
    for k in range(n_q):
        pos = qs[k] * (m - 1)
        lo = <Py_ssize_t> floor(pos)
        if lo > m - 1:
            lo = m - 1
        nth_element(buf + start, buf + lo, buf + m)
        lo_val = buf[lo]
        hi_val = lo_val
        if lo + 1 < m and pos > lo:
            hi_val = min_element(buf + lo + 1, buf + m)[0]
        out[k] = _lerp(lo_val, hi_val, pos - lo)
        start = lo


def quantiles_rows(const floating[:, ::1] X, const double[::1] qs,
                   bint ignore_nan, int n_threads, double[:, ::1] out):
    """out[i, k] = quantile qs[k] (a fraction in [0, 1], ascending) of row i."""
    cdef Py_ssize_t n_rows = X.shape[0], n_cols = X.shape[1]
    cdef Py_ssize_t n_q = qs.shape[0], i
    cdef floating* buf
    if n_cols == 0 or n_rows == 0 or n_q == 0:
        out[:, :] = NAN
        return
    with nogil, parallel(num_threads=n_threads):
        buf = <floating*> malloc(n_cols * sizeof(floating))
        for i in prange(n_rows, schedule="static"):
            if buf != NULL:
                _row_quantiles(&X[i, 0], n_cols, &qs[0], n_q, ignore_nan, buf, &out[i, 0])
            else:  # out of memory: flagged by a NaN the caller checks for
                out[i, 0] = NAN
        free(buf)


cdef double _kth_with_zeros(floating* sorted_vals, Py_ssize_t n_neg, Py_ssize_t n_zeros,
                            Py_ssize_t k) noexcept nogil:
    """k-th smallest of the sorted explicit values merged with n_zeros zeros,
    which sit right after the n_neg negative values."""
    if k < n_neg:
        return sorted_vals[k]
    if k < n_neg + n_zeros:
        return 0.0
    return sorted_vals[k - n_zeros]


def quantiles_csc_cols(const floating[::1] data, const long long[::1] indptr,
                       Py_ssize_t n_rows, const double[::1] qs, int n_threads,
                       double[:, ::1] out):
    """out[j, k] = quantile qs[k] of column j of a CSC matrix, its implicit
    zeros included and its NaNs skipped (np.nanpercentile of the dense
    column), without building the dense column: the explicit values are
    sorted and the zeros counted in."""
    cdef Py_ssize_t n_cols = indptr.shape[0] - 1, n_q = qs.shape[0]
    cdef Py_ssize_t j, k, p, m, lo, n_neg, max_nnz = 0
    cdef Py_ssize_t n_explicit
    cdef double pos, lo_val, hi_val
    cdef floating v
    cdef floating* buf
    for j in range(n_cols):
        max_nnz = max(max_nnz, indptr[j + 1] - indptr[j])
    with nogil, parallel(num_threads=n_threads):
        buf = <floating*> malloc(max(1, max_nnz) * sizeof(floating))
        for j in prange(n_cols, schedule="dynamic"):
            if buf == NULL:  # out of memory: flagged by a NaN the caller checks for
                out[j, 0] = NAN
                continue
            n_explicit = 0
            for p in range(indptr[j], indptr[j + 1]):
                v = data[p]
                if v == v:
                    buf[n_explicit] = v
                    n_explicit = n_explicit + 1
            sort(buf, buf + n_explicit)
            n_neg = lower_bound(buf, buf + n_explicit, <floating> 0) - buf
            # m: non-NaN values of the column, implicit zeros included
            m = n_explicit + n_rows - (indptr[j + 1] - indptr[j])
            for k in range(n_q):
                if m == 0:
                    out[j, k] = NAN
                    continue
                pos = qs[k] * (m - 1)
                lo = <Py_ssize_t> floor(pos)
                if lo > m - 1:
                    lo = m - 1
                lo_val = _kth_with_zeros(buf, n_neg, m - n_explicit, lo)
                hi_val = _kth_with_zeros(buf, n_neg, m - n_explicit, lo + 1) \
                    if lo + 1 < m else lo_val
                out[j, k] = _lerp(lo_val, hi_val, pos - lo)
        free(buf)
