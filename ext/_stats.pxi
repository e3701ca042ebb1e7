"""Reduction kernels: moments, min/max and p-norms of a 2-D C-contiguous array.

`*_cols` kernels reduce over rows (one result per column); `*_rows` kernels
reduce over columns (one result per row).

Determinism: a column reduction splits the rows into blocks whose number and
size depend only on the shape, computes one partial result per block in
parallel and merges the blocks in block order afterwards; a row reduction
gives each row to one thread. Either way the result is bitwise the same for
any thread count.

Accuracy: moments accumulate in float64 and never use E[x^2] - E[x]^2. Each
sub-chunk of SUB_ELEMS elements is reduced with the corrected two-pass
algorithm and sub-chunks are merged with Chan's formula. A column sub-chunk
is read once, for its sums of squared deviations and of deviations about
the previous sub-chunk's mean, which give its mean and M2 exactly where its
own mean lies near that for its spread; a column where it does not (or an
inf or NaN) has the sub-chunk redone while it is in cache: a provisional
mean, then the deviations about that. Data far from zero (mean 1e8, std 1)
is first shifted by a rough mean of its first sub-chunk (a row that is one
sub-chunk: by its first finite value), so that the sub-chunk means Chan's
formula subtracts are small numbers with small absolute errors.

The mean comes out as two terms, shift + (mean - shift), the second exact
to a few ulps of the data's spread. The moments kernels add them (one
rounding at the mean's magnitude) unless given a `shift` array to return
the shift in; then the caller can keep the rounding error of that sum as
the low part of the mean (fastnorm._cpu.moments(mean_lo=True)).

float32 input: the provisional sums of a redone sub-chunk run in float32
(twice as wide as float64); near float32's maximum they can overflow, which
leaves them inf or NaN, so such a column's sub-chunk is summed again in
float64. Every finite float32 input thus gets float64 results.
"""
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free
from libc.math cimport fabs, INFINITY

ctypedef fused floating:
    float
    double

cdef enum:
    # Elements per in-cache sub-chunk (256 KiB of float64: fits the L2 cache).
    SUB_ELEMS = 32768
    # At least this many rows per sub-chunk: its per-column steps (the merge,
    # the correction, the next center) cost about as much per column as a
    # few rows' arithmetic, so with 16 rows 20000 x 4096 float32 ran at 40%
    # of the read bandwidth, with 64 at 58-70%. Past the L2 cache only a
    # redone sub-chunk (rare) is read twice from memory.
    MIN_SUB_ROWS = 64
    # At most this many row blocks per column reduction: enough for load
    # balance on 16+ threads, few enough that the partials stay O(n_cols).
    MAX_BLOCKS = 64


cdef inline Py_ssize_t _ceil_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return (a + b - 1) // b


cdef inline Py_ssize_t _sub_rows(Py_ssize_t n_cols) noexcept nogil:
    """Rows per in-cache sub-chunk: at least MIN_SUB_ROWS so that the
    per-sub-chunk merge stays cheap for wide arrays."""
    return max(MIN_SUB_ROWS, SUB_ELEMS // max(1, n_cols))


cdef Py_ssize_t _block_rows(Py_ssize_t n_rows, Py_ssize_t n_cols) noexcept nogil:
    """Rows per block: a whole number of sub-chunks, a function of the shape only."""
    cdef Py_ssize_t sub_rows = _sub_rows(n_cols)
    cdef Py_ssize_t n_subs = _ceil_div(n_rows, sub_rows)
    return _ceil_div(n_subs, MAX_BLOCKS) * sub_rows


cdef inline void _chan_merge(double* n_a, double* mean_a, double* m2_a,
                             double n_b, double mean_b, double m2_b) noexcept nogil:
    """Merge moments b into a (Chan, Golub & LeVeque): exact to rounding."""
    cdef double n, delta
    if n_b == 0:
        return
    if n_a[0] == 0:
        n_a[0] = n_b
        mean_a[0] = mean_b
        m2_a[0] = m2_b
        return
    n = n_a[0] + n_b
    delta = mean_b - mean_a[0]
    mean_a[0] = mean_a[0] + delta * (n_b / n)
    m2_a[0] = m2_a[0] + m2_b + delta * delta * (n_a[0] * (n_b / n))
    n_a[0] = n


# ---------------------------------------------------------------- moments ---

cdef void _shift_cols(const floating* X, Py_ssize_t n_cols, Py_ssize_t n_rows,
                      double* shift) noexcept nogil:
    """Per column, the mean of the finite values among rows [0, n_rows), or 0.

    Summed as deviations from the first finite value v0, so that a column of
    identical values gets exactly v0: then every x - shift is 0 and its M2
    is exactly 0 (a rounded mean would leave tiny equal deviations whose
    squares the corrected two-pass does not always cancel).
    """
    cdef Py_ssize_t i, j
    cdef double v, v0, s, c
    for j in range(n_cols):
        v0 = 0.0
        s = 0.0
        c = 0.0
        for i in range(n_rows):
            v = X[i * n_cols + j]
            if fabs(v) < INFINITY:  # finite (false for NaN)
                if c == 0:
                    v0 = v
                s = s + (v - v0)
                c = c + 1.0
        v = v0 + s / c if c > 0 else 0.0
        shift[j] = v if fabs(v) < INFINITY else 0.0


cdef void _nan_sub_moments_col(
        const floating* X, Py_ssize_t n_cols, Py_ssize_t j, Py_ssize_t a,
        Py_ssize_t b, const double* w, double shift,
        double* sub_n, double* sub_mean, double* sub_m2) noexcept nogil:
    """NaN-ignoring moments of column j - shift over rows [a, b) (the rare
    slow path)."""
    cdef Py_ssize_t i
    cdef double v, wi, n = 0.0, s = 0.0, q = 0.0, mean_j, d
    for i in range(a, b):
        v = X[i * n_cols + j] - shift
        if v == v:
            wi = 1.0 if w == NULL else w[i]
            n = n + wi
            s = s + wi * v
    mean_j = s / n if n != 0 else 0.0
    for i in range(a, b):
        v = X[i * n_cols + j] - shift
        if v == v:
            wi = 1.0 if w == NULL else w[i]
            d = v - mean_j
            q = q + wi * d * d
    sub_n[0] = n
    sub_mean[0] = mean_j
    sub_m2[0] = q


cdef extern from "moments_cols.h":
    # unweighted passes over rows [a, b): sum of x - K (in X's dtype per four
    # rows), and sums of (x - center)^2 and of x - center
    void shifted_sums_float(const float* X, Py_ssize_t n_cols, Py_ssize_t a, Py_ssize_t b,
                            const double* K, double* sum) noexcept nogil
    void shifted_sums_double(const double* X, Py_ssize_t n_cols, Py_ssize_t a, Py_ssize_t b,
                             const double* K, double* sum) noexcept nogil
    # the columns whose float32 sum overflowed (inf or NaN) summed again in
    # float64 (NaN ones left to the NaN-skipping path with skip_nan)
    void resum_non_finite_float(const float* X, Py_ssize_t n_cols, Py_ssize_t a,
                                Py_ssize_t b, const double* K, double* sum,
                                bint skip_nan) noexcept nogil
    void squared_deviations_float(const float* X, Py_ssize_t n_cols, Py_ssize_t a,
                                  Py_ssize_t b, const double* center,
                                  double* m2, double* dev) noexcept nogil
    void squared_deviations_double(const double* X, Py_ssize_t n_cols, Py_ssize_t a,
                                   Py_ssize_t b, const double* center,
                                   double* m2, double* dev) noexcept nogil
    # the corrected two-pass step after squared_deviations (dev: its sums
    # of x - center; becomes the count w_sum): mean - K and M2, exact
    void correct_to_mean(Py_ssize_t n_cols, double w_sum, const double* K,
                         const double* center, double* mean, double* m2,
                         double* dev) noexcept nogil
    # whether squared_deviations' sums about center give every column's M2
    # to a few ulps (its mean near center for its spread, all finite)
    bint near_center(Py_ssize_t n_cols, double w_sum, const double* m2,
                     const double* dev) noexcept nogil
    # the same step for a row's sub-chunk [a, b) (w may be NULL), for the
    # rare one whose shift lies far from its values: one more pass over it
    # for the deviations from center, then the exact mean - base and M2
    double row_corrected_mean_float(const float* x, Py_ssize_t a, Py_ssize_t b,
                                    const double* w, bint ignore_nan, double w_sum,
                                    double base, double center, double* m2) noexcept nogil
    double row_corrected_mean_double(const double* x, Py_ssize_t a, Py_ssize_t b,
                                     const double* w, bint ignore_nan, double w_sum,
                                     double base, double center, double* m2) noexcept nogil


cdef inline void _squared_deviations(
        const floating* X, Py_ssize_t n_cols, Py_ssize_t a, Py_ssize_t b,
        const double* center, double* m2, double* dev) noexcept nogil:
    if floating is float:
        squared_deviations_float(X, n_cols, a, b, center, m2, dev)
    else:
        squared_deviations_double(X, n_cols, a, b, center, m2, dev)


cdef void _moments_cols_block(
        const floating* X, Py_ssize_t n_cols, Py_ssize_t r0, Py_ssize_t r1,
        const double* w, bint ignore_nan, const double* K,
        double* acc_n, double* acc_mean, double* acc_m2,
        double* sub_n, double* sub_mean, double* sub_m2,
        double* center) noexcept nogil:
    """Moments of the columns of rows [r0, r1), shifted by K (acc_mean is the
    mean of x - K), into acc_*; sub_* and center are scratch.

    Each sub-chunk is summed as if it had no NaN (NaN propagates); with
    ignore_nan, only the columns whose sum came out NaN are redone with the
    NaN-skipping loop, so clean data pays nothing for NaN support.
    """
    cdef Py_ssize_t sub_rows = _sub_rows(n_cols)
    cdef Py_ssize_t a, b, i, j, n_redone
    cdef const floating* row
    cdef double wi, d, w_sum, inv_w, n_new, frac, cross
    # while no column had a NaN skipped, all columns share one count and the
    # Chan merge runs with shared factors: vectorized, no division per column
    cdef bint uniform = True
    cdef double n_common = 0.0
    for j in range(n_cols):
        acc_n[j] = 0.0
        acc_mean[j] = 0.0
        acc_m2[j] = 0.0
        center[j] = K[j]
    a = r0
    while a < r1:
        b = min(a + sub_rows, r1)
        for j in range(n_cols):
            sub_mean[j] = 0.0
            sub_m2[j] = 0.0
        if w == NULL:
            w_sum = <double> (b - a)
            # one read of the sub-chunk: the sums of the squared deviations
            # and of the deviations about center (the previous sub-chunk's
            # mean; at first K), which give its mean and M2 exactly (sub_n
            # doubles as the deviation sums, then gets its count back)
            _squared_deviations(X, n_cols, a, b, center, sub_m2, sub_n)
            if not near_center(n_cols, w_sum, sub_m2, sub_n):
                # some column's mean lies far from center for its spread (or
                # is not finite): its provisional mean, then the deviations
                # about that (the sub-chunk is in cache unless rows are wide)
                if floating is float:
                    shifted_sums_float(X, n_cols, a, b, K, sub_mean)
                    # an inf or NaN sum: float32 overflowed near its maximum
                    # (or the data holds inf/NaN): summed again in float64
                    resum_non_finite_float(X, n_cols, a, b, K, sub_mean, ignore_nan)
                else:
                    shifted_sums_double(X, n_cols, a, b, K, sub_mean)
                for j in range(n_cols):
                    sub_mean[j] = sub_mean[j] / w_sum
                    center[j] = sub_mean[j] + K[j]
                _squared_deviations(X, n_cols, a, b, center, sub_m2, sub_n)
            correct_to_mean(n_cols, w_sum, K, center, sub_mean, sub_m2, sub_n)
        else:
            w_sum = 0.0
            for i in range(a, b):
                row = X + i * n_cols
                wi = w[i]
                w_sum = w_sum + wi
                for j in range(n_cols):
                    sub_mean[j] += wi * (row[j] - K[j])
            inv_w = 1.0 / w_sum if w_sum != 0 else 0.0
            for j in range(n_cols):
                sub_n[j] = w_sum
                sub_mean[j] = sub_mean[j] * inv_w
            for i in range(a, b):
                row = X + i * n_cols
                wi = w[i]
                for j in range(n_cols):
                    d = row[j] - (sub_mean[j] + K[j])
                    sub_m2[j] += wi * (d * d)
        n_redone = 0
        if ignore_nan:
            for j in range(n_cols):
                if sub_mean[j] != sub_mean[j]:
                    _nan_sub_moments_col(X, n_cols, j, a, b, w, K[j],
                                         &sub_n[j], &sub_mean[j], &sub_m2[j])
                    n_redone = n_redone + 1
        if uniform and n_redone == 0:
            # _chan_merge with the factors it would compute for every column
            if w_sum != 0:
                n_new = n_common + w_sum
                frac = w_sum / n_new
                cross = n_common * frac
                for j in range(n_cols):
                    d = sub_mean[j] - acc_mean[j]
                    acc_mean[j] = sub_mean[j] if n_common == 0 else acc_mean[j] + d * frac
                    acc_m2[j] = sub_m2[j] if n_common == 0 else acc_m2[j] + sub_m2[j] + d * d * cross
                    acc_n[j] = n_new
                n_common = n_new
        else:
            uniform = False
            for j in range(n_cols):
                _chan_merge(&acc_n[j], &acc_mean[j], &acc_m2[j],
                            sub_n[j], sub_mean[j], sub_m2[j])
        # the next sub-chunk's center: this one's mean, where it has one
        for j in range(n_cols):
            d = sub_mean[j] + K[j]
            if fabs(d) < INFINITY:
                center[j] = d
        a = b


def moments_cols(const floating[:, ::1] X, const double[::1] weights,
                 bint ignore_nan, int n_threads,
                 double[::1] count, double[::1] mean, double[::1] m2,
                 double[::1] shift=None):
    """Per-column (count, mean, M2) of X; `weights` (one per row) may be None.

    With ignore_nan, NaNs are skipped (count is the weight of the rest);
    otherwise a NaN makes its column's mean and M2 NaN. Given `shift`, the
    kernel stores its shift there and leaves mean - shift in `mean`.
    """
    cdef Py_ssize_t n_rows = X.shape[0], n_cols = X.shape[1]
    cdef Py_ssize_t block_rows = _block_rows(n_rows, n_cols)
    cdef Py_ssize_t n_blocks = _ceil_div(n_rows, block_rows)
    cdef Py_ssize_t blk, j
    cdef const double* w = NULL if weights is None else &weights[0]
    cdef double* partial
    cdef double* blk_buf
    cdef double* K
    if n_rows == 0 or n_cols == 0:
        for j in range(n_cols):
            count[j] = 0.0
            mean[j] = 0.0
            m2[j] = 0.0
            if shift is not None:
                shift[j] = 0.0
        return
    # per block: 3 rows of results (n, mean, M2), then 4 rows of scratch;
    # then the shift shared by all blocks
    partial = <double*> malloc((7 * n_blocks + 1) * n_cols * sizeof(double))
    if partial == NULL:
        raise MemoryError()
    K = partial + 7 * n_blocks * n_cols
    _shift_cols(&X[0, 0], n_cols, min(n_rows, _sub_rows(n_cols)), K)
    for blk in prange(n_blocks, nogil=True, schedule="static", num_threads=n_threads):
        blk_buf = partial + 7 * blk * n_cols
        _moments_cols_block(
            &X[0, 0], n_cols, blk * block_rows, min((blk + 1) * block_rows, n_rows),
            w, ignore_nan, K,
            blk_buf, blk_buf + n_cols, blk_buf + 2 * n_cols,
            blk_buf + 3 * n_cols, blk_buf + 4 * n_cols, blk_buf + 5 * n_cols,
            blk_buf + 6 * n_cols)
    # merge the blocks in block order: independent of the thread count
    for j in range(n_cols):
        count[j] = 0.0
        mean[j] = 0.0
        m2[j] = 0.0
    for blk in range(n_blocks):
        for j in range(n_cols):
            _chan_merge(&count[j], &mean[j], &m2[j],
                        partial[(7 * blk) * n_cols + j],
                        partial[(7 * blk + 1) * n_cols + j],
                        partial[(7 * blk + 2) * n_cols + j])
    for j in range(n_cols):
        if shift is None:
            mean[j] = mean[j] + K[j]
        else:
            shift[j] = K[j]
    free(partial)


cdef void _moments_row(const floating* row, Py_ssize_t n, const double* w,
                       bint ignore_nan, double* out_n, double* out_mean,
                       double* out_m2, double* out_shift) noexcept nogil:
    """Moments of one contiguous row, sub-chunk by sub-chunk, in two passes
    (sum, then squared deviations from the sub-chunk's mean, both in float64);
    out_mean gets mean - out_shift (see the module docstring).

    The shift K is the mean of the first sub-chunk's finite values for a row
    longer than one sub-chunk, else the row's first finite value: a value of
    the data, so every x - K is at most the row's range and the mean's
    error a few ulps of the spread, not of the mean. Identical values give
    x - K = 0: M2 exactly 0 and the mean exact.

    The sums of x - K run in float64, so the only digits they lose are those
    of a K far from the values for their spread (a first value that is an
    outlier: then the mean could be off by ~1e-14 of itself, ~1e-12 of the
    spread). Such a sub-chunk, found by its provisional mean (K + sum / count)
    lying more than three spreads (standard deviations) from K, gets the
    corrected two-pass step (one more pass, from cache); other sub-chunks
    need not pay for it: there the sums of x - K are as good.
    """
    cdef Py_ssize_t a, b, j
    cdef double s, c, q, q_fix, v, d, wj, sub_mean, center, K = 0.0
    out_n[0] = 0.0
    out_mean[0] = 0.0
    out_m2[0] = 0.0
    if n > SUB_ELEMS:
        _shift_cols(row, 1, SUB_ELEMS, &K)
    else:
        for j in range(n):
            if fabs(row[j]) < INFINITY:  # finite (false for NaN)
                K = row[j]
                break
    out_shift[0] = K
    a = 0
    while a < n:
        b = min(a + SUB_ELEMS, n)
        s = 0.0
        c = 0.0
        q = 0.0
        if not ignore_nan:
            if w == NULL:
                for j in range(a, b):
                    s = s + (row[j] - K)
                c = <double> (b - a)
            else:
                for j in range(a, b):
                    s = s + w[j] * (row[j] - K)
                    c = c + w[j]
            sub_mean = s / c if c != 0 else 0.0
            center = K + sub_mean
            if w == NULL:
                for j in range(a, b):
                    d = row[j] - center
                    q = q + d * d
            else:
                for j in range(a, b):
                    d = row[j] - center
                    q = q + w[j] * (d * d)
        else:
            for j in range(a, b):
                v = row[j] - K
                wj = 1.0 if w == NULL else w[j]
                s = s + (wj * v if v == v else 0.0)
                c = c + (wj if v == v else 0.0)
            sub_mean = s / c if c != 0 else 0.0
            center = K + sub_mean
            for j in range(a, b):
                v = row[j]
                wj = 1.0 if w == NULL else w[j]
                d = v - center
                q = q + (wj * (d * d) if v == v else 0.0)
        if (sub_mean * sub_mean) * c > 9.0 * q:  # false for NaN (and c == 0)
            q_fix = q
            if n <= SUB_ELEMS:
                out_shift[0] = center  # the only sub-chunk: mean = center + ...
            if floating is float:
                sub_mean = row_corrected_mean_float(row, a, b, w, ignore_nan, c,
                                                    out_shift[0], center, &q_fix)
            else:
                sub_mean = row_corrected_mean_double(row, a, b, w, ignore_nan, c,
                                                     out_shift[0], center, &q_fix)
            q = q_fix
        _chan_merge(out_n, out_mean, out_m2, c, sub_mean, q)
        a = b


def moments_rows(const floating[:, ::1] X, const double[::1] weights,
                 bint ignore_nan, int n_threads,
                 double[::1] count, double[::1] mean, double[::1] m2,
                 double[::1] shift=None):
    """Per-row (count, mean, M2) of X; `weights` (one per column) may be None.

    Given `shift`, the kernel stores its shift per row there and leaves
    mean - shift in `mean` (see moments_cols).
    """
    cdef Py_ssize_t n_rows = X.shape[0], n_cols = X.shape[1]
    cdef Py_ssize_t i
    cdef const double* w = NULL if weights is None else &weights[0]
    cdef double* sh = NULL if shift is None or n_rows == 0 else &shift[0]
    cdef double base
    if n_cols == 0:
        for i in range(n_rows):
            count[i] = 0.0
            mean[i] = 0.0
            m2[i] = 0.0
            if sh != NULL:
                sh[i] = 0.0
        return
    for i in prange(n_rows, nogil=True, schedule="static", num_threads=n_threads):
        base = 0.0  # assigned here so that Cython makes it thread-private
        _moments_row(&X[i, 0], n_cols, w, ignore_nan, &count[i], &mean[i], &m2[i], &base)
        if sh != NULL:
            sh[i] = base
        else:
            mean[i] = mean[i] + base


# ---------------------------------------------------------------- min/max ---
# NaNs never win a comparison, so min/max below ignore them; `count` tells how
# many non-NaN values each column/row had (all-NaN and NaN-propagating
# semantics are the caller's choice).

cdef inline double _count_non_nan(const floating* x, Py_ssize_t n,
                                  Py_ssize_t stride) noexcept nogil:
    cdef Py_ssize_t k
    cdef double c = 0.0
    for k in range(n):
        c = c + (1.0 if x[k * stride] == x[k * stride] else 0.0)
    return c


cdef extern from "min_max_cols.h":
    # Per-column NaN-ignoring min, max and NaN count (in X's dtype) of rows
    # [r0, r1) into lo, hi, nan_seen. min/max are exact in X's dtype, which
    # runs twice as wide as float64 for float32; `x < m ? x : m` skips a NaN
    # x and is one SIMD min. nan_seen is inexact past 2**24 for float32 but
    # never returns to 0: it only tells which columns need an exact count.
    void min_max_cols_block_float(const float* X, Py_ssize_t n_cols, Py_ssize_t r0,
                                  Py_ssize_t r1, float* lo, float* hi,
                                  float* nan_seen) noexcept nogil
    void min_max_cols_block_double(const double* X, Py_ssize_t n_cols, Py_ssize_t r0,
                                   Py_ssize_t r1, double* lo, double* hi,
                                   double* nan_seen) noexcept nogil
    void min_max_row_float(const float* x, Py_ssize_t n, float* lo, float* hi,
                           float* nan_seen) noexcept nogil
    void min_max_row_double(const double* x, Py_ssize_t n, double* lo, double* hi,
                            double* nan_seen) noexcept nogil


cdef void _min_max_cols_block(
        const floating* X, Py_ssize_t n_cols, Py_ssize_t r0, Py_ssize_t r1,
        floating* lo, floating* hi, floating* nan_seen,
        double* mn, double* mx, double* count) noexcept nogil:
    """NaN-ignoring min/max and non-NaN count of the columns of rows [r0, r1);
    lo, hi, nan_seen are scratch in X's dtype."""
    cdef Py_ssize_t j
    if floating is float:
        min_max_cols_block_float(X, n_cols, r0, r1, lo, hi, nan_seen)
    else:
        min_max_cols_block_double(X, n_cols, r0, r1, lo, hi, nan_seen)
    for j in range(n_cols):
        mn[j] = lo[j]
        mx[j] = hi[j]
        if nan_seen[j] == 0:
            count[j] = <double> (r1 - r0)
        else:
            count[j] = _count_non_nan(X + r0 * n_cols + j, r1 - r0, n_cols)


def min_max_cols(const floating[:, ::1] X, int n_threads,
                 double[::1] mn, double[::1] mx, double[::1] count):
    """Per-column NaN-ignoring min and max, and the count of non-NaN values."""
    cdef Py_ssize_t n_rows = X.shape[0], n_cols = X.shape[1]
    cdef Py_ssize_t block_rows = _block_rows(n_rows, n_cols)
    cdef Py_ssize_t n_blocks = _ceil_div(n_rows, block_rows) if n_rows else 0
    cdef Py_ssize_t blk, j, k
    cdef double* partial
    cdef double* blk_buf
    cdef floating* scratch
    for j in range(n_cols):
        mn[j] = INFINITY
        mx[j] = -INFINITY
        count[j] = 0.0
    if n_blocks == 0 or n_cols == 0:
        return
    # per block: 3 rows of results (min, max, count), then 3 rows of scratch
    partial = <double*> malloc(6 * n_blocks * n_cols * sizeof(double))
    if partial == NULL:
        raise MemoryError()
    for blk in prange(n_blocks, nogil=True, schedule="static", num_threads=n_threads):
        blk_buf = partial + 6 * blk * n_cols
        scratch = <floating*> (blk_buf + 3 * n_cols)
        _min_max_cols_block(&X[0, 0], n_cols, blk * block_rows,
                            min((blk + 1) * block_rows, n_rows),
                            scratch, scratch + n_cols, scratch + 2 * n_cols,
                            blk_buf, blk_buf + n_cols, blk_buf + 2 * n_cols)
    for blk in range(n_blocks):
        for j in range(n_cols):
            k = 6 * blk * n_cols + j
            mn[j] = min(mn[j], partial[k])
            mx[j] = max(mx[j], partial[k + n_cols])
            count[j] += partial[k + 2 * n_cols]
    free(partial)


def min_max_rows(const floating[:, ::1] X, int n_threads,
                 double[::1] mn, double[::1] mx, double[::1] count):
    """Per-row NaN-ignoring min and max, and the count of non-NaN values."""
    cdef Py_ssize_t n_rows = X.shape[0], n_cols = X.shape[1]
    cdef Py_ssize_t i
    cdef const floating* row
    cdef floating lo, hi, nan_seen
    for i in prange(n_rows, nogil=True, schedule="static", num_threads=n_threads):
        row = &X[i, 0] if n_cols else NULL
        # assigned here so that Cython makes them thread-private (it cannot
        # see the writes through the pointers below)
        lo = 0
        hi = 0
        nan_seen = 0
        if floating is float:
            min_max_row_float(row, n_cols, &lo, &hi, &nan_seen)
        else:
            min_max_row_double(row, n_cols, &lo, &hi, &nan_seen)
        mn[i] = lo
        mx[i] = hi
        # as in the column kernel: count exactly only after a NaN
        count[i] = <double> n_cols if nan_seen == 0 else _count_non_nan(row, n_cols, 1)


# ------------------------------------------------------------------ norms ---
# Sum of |x| (p=1) or x^2 (p=2) in float64; NaN propagates.

def power_sums_cols(const floating[:, ::1] X, int p, int n_threads, double[::1] out):
    """Per-column sum of |x|**p for p in (1, 2)."""
    cdef Py_ssize_t n_rows = X.shape[0], n_cols = X.shape[1]
    cdef Py_ssize_t block_rows = _block_rows(n_rows, n_cols)
    cdef Py_ssize_t n_blocks = _ceil_div(n_rows, block_rows) if n_rows else 0
    cdef Py_ssize_t blk, i, j
    cdef const floating* row
    cdef double* acc
    cdef double* partial
    cdef double v
    for j in range(n_cols):
        out[j] = 0.0
    if n_blocks == 0 or n_cols == 0:
        return
    partial = <double*> malloc(n_blocks * n_cols * sizeof(double))
    if partial == NULL:
        raise MemoryError()
    for blk in prange(n_blocks, nogil=True, schedule="static", num_threads=n_threads):
        acc = partial + blk * n_cols
        for j in range(n_cols):
            acc[j] = 0.0
        for i in range(blk * block_rows, min((blk + 1) * block_rows, n_rows)):
            row = &X[i, 0]
            if p == 1:
                for j in range(n_cols):
                    acc[j] += fabs(row[j])
            else:
                for j in range(n_cols):
                    v = row[j]
                    acc[j] += v * v
    for blk in range(n_blocks):
        for j in range(n_cols):
            out[j] += partial[blk * n_cols + j]
    free(partial)


def power_sums_rows(const floating[:, ::1] X, int p, int n_threads, double[::1] out):
    """Per-row sum of |x|**p for p in (1, 2)."""
    cdef Py_ssize_t n_rows = X.shape[0], n_cols = X.shape[1]
    cdef Py_ssize_t i, j
    cdef const floating* row
    cdef double s, v
    for i in prange(n_rows, nogil=True, schedule="static", num_threads=n_threads):
        row = &X[i, 0] if n_cols else NULL
        s = 0.0
        if p == 1:
            for j in range(n_cols):
                s = s + fabs(row[j])
        else:
            for j in range(n_cols):
                v = row[j]
                s = s + v * v
        out[i] = s
