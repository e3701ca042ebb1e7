"""Kernels over the structure of scipy's CSR/CSC matrices (never densified).

Every kernel takes the (data, indices, indptr) buffers and the shape. The
implicit zeros count as values: a column's count includes them and its
mean and M2 see them, as scikit-learn's sparse statistics do. NaNs stored
explicitly are skipped.

Column reductions of CSR split the rows into at most MAX_BLOCKS blocks whose
size depends only on the shape and merge the per-block results in block
order, so results are bitwise the same for any thread count. CSC columns
are each reduced by one thread.
"""
from cython.parallel cimport prange
from libc.math cimport fabs, sqrt, NAN
from libc.stdlib cimport calloc, free

ctypedef fused floating:
    float
    double

ctypedef fused index_t:
    int
    long long

cdef enum:
    MAX_BLOCKS = 64
    MIN_BLOCK_ROWS = 1024


cdef inline Py_ssize_t _n_blocks(Py_ssize_t n_rows) noexcept nogil:
    cdef Py_ssize_t n = (n_rows + MIN_BLOCK_ROWS - 1) // MIN_BLOCK_ROWS
    return max(1, min(n, <Py_ssize_t> MAX_BLOCKS))


def col_moments(const floating[::1] data, const index_t[::1] indices,
                const index_t[::1] indptr, Py_ssize_t n_rows, Py_ssize_t n_cols,
                bint csc, const double[::1] weights, int n_threads,
                double[::1] count, double[::1] mean, double[::1] m2):
    """Per-column (count, mean, M2) with implicit zeros, NaN skipped.

    weights: one per row, or None. Two passes: weighted sums give the mean,
    then the corrected two-pass M2 = sum(w d^2) - sum(w d)^2 / W over
    d = x - mean, as scikit-learn's _csr_mean_variance_axis0. The implicit
    zeros (d = -mean) enter only when a column has fewer explicit entries
    than rows: their weight, total - explicit, is a difference of float sums
    whose rounding would otherwise give a constant column a variance.
    """
    cdef Py_ssize_t n_major = indptr.shape[0] - 1
    cdef Py_ssize_t j, i, k, blk, n_blocks, rows_per_block, r0, r1
    cdef double total_w = 0.0, v, wi, d
    # per block: sum, weight of NaN, weight of explicit entries, sum of w d^2, sum of w d
    cdef double* acc
    cdef double* a
    cdef Py_ssize_t* nnz   # per block: explicit entries (NaN included)
    cdef Py_ssize_t* z
    if weights is None:
        total_w = <double> n_rows
    else:
        for i in range(n_rows):
            total_w += weights[i]
    for j in range(n_cols):
        count[j] = 0.0
        mean[j] = 0.0
        m2[j] = 0.0
    if n_cols == 0:
        return
    if csc:
        for j in prange(n_cols, nogil=True, schedule="dynamic", num_threads=n_threads):
            _csc_col_moments(data, indices, indptr, j, n_rows, weights, total_w,
                             &count[j], &mean[j], &m2[j])
        return
    # CSR: pass 1 per block of rows, merged in block order
    n_blocks = _n_blocks(n_major)
    rows_per_block = (n_major + n_blocks - 1) // n_blocks
    acc = <double*> calloc(5 * n_blocks * n_cols, sizeof(double))
    nnz = <Py_ssize_t*> calloc(n_blocks * n_cols, sizeof(Py_ssize_t))
    if acc == NULL or nnz == NULL:
        free(acc)
        free(nnz)
        raise MemoryError()
    for blk in prange(n_blocks, nogil=True, schedule="static", num_threads=n_threads):
        a = acc + 5 * blk * n_cols
        z = nnz + blk * n_cols
        r0 = blk * rows_per_block
        r1 = min(r0 + rows_per_block, n_major)
        for i in range(r0, r1):
            wi = 1.0 if weights is None else weights[i]
            for k in range(indptr[i], indptr[i + 1]):
                j = indices[k]
                v = data[k]
                a[2 * n_cols + j] += wi
                z[j] += 1
                if v == v:
                    a[j] += wi * v
                else:
                    a[n_cols + j] += wi
    for blk in range(1, n_blocks):
        for j in range(3 * n_cols):
            acc[j] += acc[5 * blk * n_cols + j]
        for j in range(n_cols):
            nnz[j] += nnz[blk * n_cols + j]
    for j in range(n_cols):
        count[j] = total_w - acc[n_cols + j]
        mean[j] = acc[j] / count[j] if count[j] != 0 else 0.0
    # pass 2: deviations of the explicit values
    for blk in prange(n_blocks, nogil=True, schedule="static", num_threads=n_threads):
        a = acc + 5 * blk * n_cols
        for j in range(3 * n_cols, 5 * n_cols):
            a[j] = 0.0
        r0 = blk * rows_per_block
        r1 = min(r0 + rows_per_block, n_major)
        for i in range(r0, r1):
            wi = 1.0 if weights is None else weights[i]
            for k in range(indptr[i], indptr[i + 1]):
                v = data[k]
                if v == v:
                    d = v - mean[indices[k]]
                    a[3 * n_cols + indices[k]] += wi * d * d
                    a[4 * n_cols + indices[k]] += wi * d
    for j in range(n_cols):
        v = 0.0
        d = 0.0
        for blk in range(n_blocks):
            v = v + acc[5 * blk * n_cols + 3 * n_cols + j]
            d = d + acc[5 * blk * n_cols + 4 * n_cols + j]
        m2[j] = _corrected_m2(v, d, count[j], mean[j], total_w - acc[2 * n_cols + j],
                              nnz[j] < n_rows)
    free(acc)
    free(nnz)


cdef inline double _corrected_m2(double sq, double dev, double w, double mu,
                                 double zero_w, bint has_zeros) noexcept nogil:
    """M2 from the explicit values' sum(w d^2) and sum(w d), W = w, adding the
    implicit zeros (weight zero_w) only when the column has some."""
    if has_zeros:
        sq = sq + zero_w * mu * mu
        dev = dev - zero_w * mu
    if w == 0:
        return 0.0
    sq = sq - dev * dev / w
    return sq if sq > 0 else 0.0  # never below 0 by rounding


cdef void _csc_col_moments(const floating[::1] data, const index_t[::1] indices,
                           const index_t[::1] indptr, Py_ssize_t j, Py_ssize_t n_rows,
                           const double[::1] weights, double total_w,
                           double* count, double* mean, double* m2) noexcept nogil:
    cdef Py_ssize_t k
    cdef double s = 0.0, nan_w = 0.0, explicit_w = 0.0, q = 0.0, e = 0.0, v, wi, d, mu, n
    for k in range(indptr[j], indptr[j + 1]):
        v = data[k]
        wi = 1.0 if weights is None else weights[indices[k]]
        explicit_w = explicit_w + wi
        if v == v:
            s = s + wi * v
        else:
            nan_w = nan_w + wi
    n = total_w - nan_w
    mu = s / n if n != 0 else 0.0
    for k in range(indptr[j], indptr[j + 1]):
        v = data[k]
        if v == v:
            wi = 1.0 if weights is None else weights[indices[k]]
            d = v - mu
            q = q + wi * d * d
            e = e + wi * d
    count[0] = n
    mean[0] = mu
    m2[0] = _corrected_m2(q, e, n, mu, total_w - explicit_w,
                          indptr[j + 1] - indptr[j] < n_rows)


def col_max_abs(const floating[::1] data, const index_t[::1] indices,
                const index_t[::1] indptr, Py_ssize_t n_rows, Py_ssize_t n_cols,
                bint csc, int n_threads, double[::1] max_abs):
    """Per-column max |x| with implicit zeros, NaN skipped (NaN when a column
    holds only NaNs)."""
    cdef Py_ssize_t n_major = indptr.shape[0] - 1
    cdef Py_ssize_t j, i, k, blk, n_blocks, rows_per_block, r0, r1
    cdef double v, m, seen
    cdef double* acc   # per block: max |x|, number of non-NaN explicit values, explicit values
    cdef double* a
    if n_cols == 0:
        return
    if csc:
        for j in prange(n_cols, nogil=True, schedule="dynamic", num_threads=n_threads):
            m = 0.0
            seen = 0.0
            for k in range(indptr[j], indptr[j + 1]):
                v = fabs(data[k])
                m = v if v > m else m
                seen = seen + (1.0 if v == v else 0.0)
            # only NaNs and no implicit zero: undefined
            if seen == 0 and indptr[j + 1] - indptr[j] == n_rows and n_rows > 0:
                m = NAN
            max_abs[j] = m
        return
    n_blocks = _n_blocks(n_major)
    rows_per_block = (n_major + n_blocks - 1) // n_blocks
    acc = <double*> calloc(3 * n_blocks * n_cols, sizeof(double))
    if acc == NULL:
        raise MemoryError()
    for blk in prange(n_blocks, nogil=True, schedule="static", num_threads=n_threads):
        a = acc + 3 * blk * n_cols
        r0 = blk * rows_per_block
        r1 = min(r0 + rows_per_block, n_major)
        for i in range(r0, r1):
            for k in range(indptr[i], indptr[i + 1]):
                j = indices[k]
                v = fabs(data[k])
                a[j] = v if v > a[j] else a[j]
                a[n_cols + j] += 1.0 if v == v else 0.0
                a[2 * n_cols + j] += 1.0
    for j in range(n_cols):
        m = 0.0
        seen = 0.0
        v = 0.0
        for blk in range(n_blocks):
            m = max(m, acc[3 * blk * n_cols + j])
            seen = seen + acc[3 * blk * n_cols + n_cols + j]
            v = v + acc[3 * blk * n_cols + 2 * n_cols + j]
        max_abs[j] = NAN if seen == 0 and v == n_rows and n_rows > 0 else m
    free(acc)


def scale_cols(const floating[::1] data, const index_t[::1] indices,
               const index_t[::1] indptr, bint csc, const double[::1] factor,
               floating[::1] out, int n_threads):
    """out[k] = data[k] * factor[column of k] (out may be data)."""
    cdef Py_ssize_t n_major = indptr.shape[0] - 1
    cdef Py_ssize_t i, k
    cdef double f
    if csc:
        for i in prange(n_major, nogil=True, schedule="static", num_threads=n_threads):
            f = factor[i]
            for k in range(indptr[i], indptr[i + 1]):
                out[k] = <floating> (data[k] * f)
    else:
        for k in prange(data.shape[0], nogil=True, schedule="static", num_threads=n_threads):
            out[k] = <floating> (data[k] * factor[indices[k]])


def normalize_csr_rows(const floating[::1] data, const index_t[::1] indptr,
                       int norm, floating[::1] out, int n_threads):
    """Row normalization of CSR as scikit-learn's: norm 1 (l1), 2 (l2) or 0
    ('max': max |x|, scikit-learn's max(|min|, max) with the implicit zeros,
    which cannot change it); rows whose norm is 0 are copied unchanged.
    out may be data."""
    cdef Py_ssize_t n_rows = indptr.shape[0] - 1
    cdef Py_ssize_t i, k
    cdef double s, v
    for i in prange(n_rows, nogil=True, schedule="static", num_threads=n_threads):
        s = 0.0
        if norm == 1:
            for k in range(indptr[i], indptr[i + 1]):
                s = s + fabs(data[k])
        elif norm == 2:
            for k in range(indptr[i], indptr[i + 1]):
                v = data[k]
                s = s + v * v
            s = sqrt(s)
        else:
            for k in range(indptr[i], indptr[i + 1]):
                v = fabs(data[k])
                s = v if v > s else s
        if s == 0:
            s = 1.0
        for k in range(indptr[i], indptr[i + 1]):
            out[k] = <floating> (data[k] / s)
