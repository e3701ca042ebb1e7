"""Quantiles with linear interpolation (NumPy's default 'linear' method).

Two ways to find the k-th smallest values of a row or column:

- `quantiles_rows` (and short columns): the row is copied into a per-thread
  buffer (NaNs dropped when ignore_nan) and partially sorted with
  std::nth_element, one selection per quantile in ascending order, each on
  the part left of the previous one.

- `quantiles_cols` (long columns of a row-major array): bucket selection in
  streaming passes over the rows, 64 columns at a time, so X is read in
  order and never copied or gathered column by column (a strided gather
  reads a whole cache line per element). A row sample places 256 linear
  buckets per column over the range the wanted quantiles span; one pass
  counts each column's values per bucket, which says in which bucket each
  wanted rank lies and its rank inside; a second pass copies out the
  (order-preserving integer) keys of only those buckets, and nth_element on
  them gives the exact k-th value. A poor sample (or heavy duplicates) only
  makes the copied buckets bigger: the result stays exact.
"""
from cython.parallel cimport prange, parallel
from libc.stdlib cimport malloc, free
from libc.float cimport DBL_MAX
from libc.math cimport ceil, floor, isfinite, NAN
from libc.stdint cimport uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from libcpp.algorithm cimport lower_bound, min_element, nth_element, sort, unique
from cpython.mem cimport PyMem_RawMalloc, PyMem_RawFree

ctypedef fused floating:
    float
    double


cdef inline double _lerp(double a, double b, double t) noexcept nogil:
    # NumPy's _lerp: exact at both ends and monotonic
    cdef double diff = b - a
    return b - diff * (1.0 - t) if t >= 0.5 else a + diff * t


cdef inline double _linear_ranks(double q, Py_ssize_t m, Py_ssize_t* lo,
                                 Py_ssize_t* hi) noexcept nogil:
    """np.quantile's 'linear' method on m sorted values: the quantile is
    _lerp(value[lo], value[hi], weight); returns the weight. Taken exactly as
    NumPy takes them (hi = lo + 1 even at a whole position, weight pos + 1 at
    the end, where NumPy's index is -1), so that infinities and overflowing
    differences give NumPy's NaN where it gives one."""
    cdef double pos = q * (m - 1)
    if pos >= m - 1:
        lo[0] = m - 1
        hi[0] = m - 1
        return pos + 1
    lo[0] = <Py_ssize_t> floor(pos)
    hi[0] = lo[0] + 1
    return pos - lo[0]


cdef void _row_quantiles(const floating* row, Py_ssize_t n, Py_ssize_t stride,
                         const double* qs, Py_ssize_t n_q, bint ignore_nan, floating* buf,
                         double* out) noexcept nogil:
    """out[k] = quantile qs[k] (ascending) of row[0], row[stride], ... row[(n-1)*stride]."""
    cdef Py_ssize_t j, k, m = 0, lo, hi, start = 0
    cdef double t, lo_val
    cdef floating v
    for j in range(n):
        v = row[j * stride]
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
        t = _linear_ranks(qs[k], m, &lo, &hi)
        nth_element(buf + start, buf + lo, buf + m)
        lo_val = buf[lo]
        out[k] = _lerp(lo_val, min_element(buf + lo + 1, buf + m)[0] if hi > lo else lo_val, t)
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
                _row_quantiles(&X[i, 0], n_cols, 1, &qs[0], n_q, ignore_nan, buf, &out[i, 0])
            else:  # out of memory: flagged by a NaN the caller checks for
                out[i, 0] = NAN
        free(buf)


# ------------------------------------------------- bucket selection (columns) ---

ctypedef uint64_t key_t   # float32 keys use the low 32 bits

cdef enum:
    # linear buckets per column, plus one below and one above: the 64 columns'
    # counts (70 KB) stay in L2, where the increments are cheap
    N_BUCKETS = 256
    # A column's counts start HIST_STRIDE after the previous column's: the
    # N_BUCKETS + 2 counts rounded up to an odd number of 64-byte lines, so
    # that the columns' same buckets spread over the L1 cache sets.
    HIST_STRIDE = N_BUCKETS + 16
    N_SAMPLE = 4096        # rows sampled to place the buckets,
    SAMPLE_COLS = 16       # for so many columns at a time (512 KB)
    N_BLOCKS = 16          # row blocks of a pass (the threads' work items)


cdef inline key_t _key(floating v) noexcept nogil:
    """Order-preserving unsigned key: for non-NaN a, b, a < b iff key(a) < key(b)
    (and -0.0 just below 0.0). Positive values get the sign bit set, negative
    ones all bits flipped, so larger magnitudes sort lower."""
    cdef uint32_t b32
    cdef uint64_t b64
    if floating is float:
        memcpy(&b32, &v, 4)
        return b32 ^ ((<uint32_t> 0 - (b32 >> 31)) | <uint32_t> 0x80000000u)
    else:
        memcpy(&b64, &v, 8)
        return b64 ^ ((<uint64_t> 0 - (b64 >> 63)) | <uint64_t> 0x8000000000000000ull)


cdef inline double _key_value(key_t key, bint is_float) noexcept nogil:
    """The value whose key is `key` (the inverse of _key), as a double."""
    cdef uint32_t b32
    cdef uint64_t b64
    cdef float f
    cdef double d
    if is_float:
        b32 = <uint32_t> key
        b32 = b32 ^ <uint32_t> 0x80000000u if b32 >> 31 else ~b32
        memcpy(&f, &b32, 4)
        return f
    b64 = key ^ <uint64_t> 0x8000000000000000ull if key >> 63 else ~key
    memcpy(&d, &b64, 8)
    return d


cdef extern from *:
    """
    /* min(max(x, lo), hi) without a branch: GCC otherwise branches on x > lo,
       a coin toss when a good part of the values lies below lo. */
    #if defined(__SSE2__)
    #include <emmintrin.h>
    static inline double fastnorm_clamp(double x, double lo, double hi) {
        return _mm_cvtsd_f64(_mm_min_sd(_mm_max_sd(_mm_set_sd(x), _mm_set_sd(lo)),
                                        _mm_set_sd(hi)));
    }
    #else
    static inline double fastnorm_clamp(double x, double lo, double hi) {
        return x > lo ? (x < hi ? x : hi) : lo;
    }
    #endif
    """
    double fastnorm_clamp(double x, double lo, double hi) noexcept nogil


cdef inline Py_ssize_t _bucket(double v, double lo, double scale) noexcept nogil:
    """The bucket of v (not NaN): 1..N_BUCKETS linearly over
    [lo, lo + N_BUCKETS / scale), 0 below, N_BUCKETS + 1 above. Non-decreasing
    in v (every step rounds monotonically), so a bucket's values all lie
    between those of the buckets around it: ranks can be counted bucket by
    bucket."""
    return <Py_ssize_t> fastnorm_clamp((v - lo) * scale + 1.0, 0.0, N_BUCKETS + 1.0)


cdef void _place_buckets(const floating* X, Py_ssize_t ld, Py_ssize_t n_rows,
                         Py_ssize_t n_cols, double q_lo, double q_hi, int nt, double* sample,
                         Py_ssize_t* n_sample, double* lo, double* scale) noexcept nogil:
    """lo[c], scale[c]: column c's buckets, spread over the values between its
    q_lo and q_hi quantiles as N_SAMPLE evenly spaced rows estimate them (so
    that the wanted ranks fall in narrow buckets, and far tails and outliers
    in the two end buckets). Only speed depends on this: any finite lo and
    positive finite scale give exact results (and (v - lo) * scale is then
    never NaN, which would break the buckets' order). sample: room for
    N_SAMPLE values of SAMPLE_COLS columns, gathered row by row (a column at
    a time would touch a page per value on wide arrays)."""
    cdef Py_ssize_t n_s = min(n_rows, <Py_ssize_t> N_SAMPLE), c0, c, j, k, i_lo, i_hi
    cdef Py_ssize_t g, w
    cdef const floating* row
    cdef double v
    cdef double* col
    for g in range((n_cols + SAMPLE_COLS - 1) // SAMPLE_COLS):
        c0 = g * SAMPLE_COLS
        w = min(<Py_ssize_t> SAMPLE_COLS, n_cols - c0)
        memset(n_sample, 0, w * sizeof(Py_ssize_t))
        for j in range(n_s):
            row = X + (j * n_rows // n_s) * ld + c0
            for c in range(w):
                if row[c] == row[c]:
                    sample[c * N_SAMPLE + n_sample[c]] = row[c]
                    n_sample[c] += 1
        for c in prange(w, schedule="static", num_threads=nt):
            col = sample + c * N_SAMPLE
            k = n_sample[c]
            lo[c0 + c] = 0.0
            scale[c0 + c] = 1.0
            if k == 0:
                continue
            i_lo = <Py_ssize_t> (q_lo * (k - 1))
            i_hi = <Py_ssize_t> ceil(q_hi * (k - 1))
            nth_element(col, col + i_lo, col + k)
            v = col[i_lo]
            nth_element(col + i_lo, col + i_hi, col + k)
            if isfinite(v) and isfinite(col[i_hi]) and col[i_hi] > v:
                lo[c0 + c] = v
                scale[c0 + c] = N_BUCKETS / (col[i_hi] - v)
                if scale[c0 + c] == 0.0:  # the spread overflows (and inf * 0 is NaN)
                    scale[c0 + c] = N_BUCKETS / DBL_MAX
                if not isfinite(scale[c0 + c]):  # a subnormal spread
                    scale[c0 + c] = 1.0
            elif isfinite(v):
                lo[c0 + c] = v


cdef void _count(const floating* X, Py_ssize_t ld, Py_ssize_t r0, Py_ssize_t r1,
                 Py_ssize_t n_cols, const double* lo, const double* scale, uint32_t* hist,
                 uint32_t* nan_count) noexcept nogil:
    """Over rows r0..r1-1 of the n_cols columns at X (row length ld): count
    each column's values per bucket in hist (HIST_STRIDE apart), its NaNs in
    nan_count."""
    cdef Py_ssize_t i, c
    cdef const floating* row
    cdef floating v
    for i in range(r0, r1):
        row = X + i * ld
        for c in range(n_cols):
            v = row[c]
            if v == v:
                hist[c * HIST_STRIDE + _bucket(v, lo[c], scale[c])] += 1
            else:
                nan_count[c] += 1


cdef void _copy_out(const floating* X, Py_ssize_t ld, Py_ssize_t r0, Py_ssize_t r1,
                    Py_ssize_t n_cols, const double* lo, const double* scale,
                    const uint16_t* slot_of, const Py_ssize_t* slot_start, key_t* cand,
                    Py_ssize_t* pos, const Py_ssize_t* end) noexcept nogil:
    """Over rows r0..r1-1 of the n_cols columns at X: copy the key of each
    value in a slot (slot_of[c * HIST_STRIDE + bucket]: 1 + the slot's index
    among column c's slots, 0 for none) to cand[pos[slot]++], never past
    end[slot]."""
    cdef Py_ssize_t i, c, s
    cdef const floating* row
    cdef floating v
    for i in range(r0, r1):
        row = X + i * ld
        for c in range(n_cols):
            v = row[c]
            if v != v:
                continue
            s = slot_of[c * HIST_STRIDE + _bucket(v, lo[c], scale[c])]
            if s != 0:
                s += slot_start[c] - 1
                if pos[s] < end[s]:
                    cand[pos[s]] = _key(v)
                    pos[s] += 1


cdef Py_ssize_t _want_ranks(Py_ssize_t m, const double* qs, Py_ssize_t n_q,
                            Py_ssize_t* ranks) noexcept nogil:
    """The ranks the quantiles interpolate between among m values
    (_linear_ranks), sorted and distinct, in ranks; returns their number."""
    cdef Py_ssize_t k
    for k in range(n_q):
        _linear_ranks(qs[k], m, ranks + 2 * k, ranks + 2 * k + 1)
    sort(ranks, ranks + 2 * n_q)
    return unique(ranks, ranks + 2 * n_q) - ranks


cdef inline double _ranked(const Py_ssize_t* ranks, const key_t* keys, Py_ssize_t n,
                           Py_ssize_t rank, bint is_float) noexcept nogil:
    """The value of rank `rank`, one of ranks[:n] whose keys are keys[:n]."""
    return _key_value(keys[lower_bound(ranks, ranks + n, rank) - ranks], is_float)


cdef inline Py_ssize_t _group_size(const Py_ssize_t* slot_start, const Py_ssize_t* slot_count,
                                   Py_ssize_t c) noexcept nogil:
    """Keys in column c's slots."""
    cdef Py_ssize_t s, total = 0
    for s in range(slot_start[c], slot_start[c + 1]):
        total += slot_count[s]
    return total


cdef void _collect(const floating* X, Py_ssize_t ld, Py_ssize_t n_rows, Py_ssize_t g0,
                   Py_ssize_t g1, int nb, int nt, Py_ssize_t S, const double* lo,
                   const double* scale,
                   const Py_ssize_t* slot_start, const Py_ssize_t* slot_bucket,
                   const Py_ssize_t* slot_count, Py_ssize_t* slot_base,
                   const uint32_t* hist_t, Py_ssize_t hist_t_size, uint16_t* slot_of,
                   Py_ssize_t* bound, Py_ssize_t* pos, key_t* cand) noexcept nogil:
    """Copy the keys of columns g0..g1-1's slots to cand, slot after slot
    from cand[0] (slot s from slot_base[s]), each in row order: thread t
    row block t (of nb) fills bound[t*S + s] .. bound[(t+1)*S + s], the place
    its count of the histogram pass (hist_t, same blocks) leaves it;
    pos[t*S + s] ends where it stopped. nt threads take the blocks in turn."""
    cdef Py_ssize_t s, c, total = 0
    cdef int t
    memset(slot_of + g0 * HIST_STRIDE, 0, (g1 - g0) * HIST_STRIDE * sizeof(uint16_t))
    for c in range(g0, g1):
        for s in range(slot_start[c], slot_start[c + 1]):
            slot_of[c * HIST_STRIDE + slot_bucket[s]] = <uint16_t> (s - slot_start[c] + 1)
            slot_base[s] = total
            bound[s] = total
            for t in range(nb):
                pos[t * S + s] = bound[t * S + s]
                bound[(t + 1) * S + s] = bound[t * S + s] + hist_t[
                    t * hist_t_size + c * HIST_STRIDE + slot_bucket[s]]
            total += slot_count[s]
    for t in prange(nb, schedule="dynamic", num_threads=nt):
        _copy_out(X + g0, ld, n_rows * t // nb, n_rows * (t + 1) // nb, g1 - g0, lo + g0,
                  scale + g0, slot_of + g0 * HIST_STRIDE, slot_start + g0, cand, pos + t * S,
                  bound + (t + 1) * S)


cdef bint _filled(Py_ssize_t s, int nb, Py_ssize_t S, const Py_ssize_t* bound,
                  const Py_ssize_t* pos) noexcept nogil:
    """Whether every row block wrote exactly its share of slot s."""
    cdef int t
    for t in range(nb):
        if pos[t * S + s] != bound[(t + 1) * S + s]:
            return False
    return True


cdef void _gather_fallback(const floating* col, Py_ssize_t n_rows, Py_ssize_t stride,
                           const double* qs, Py_ssize_t n_q, bint ignore_nan,
                           double* out) noexcept nogil:
    """One column the slow way: gathered, then selected as a row."""
    cdef floating* buf = <floating*> malloc(n_rows * sizeof(floating))
    if buf == NULL:  # out of memory: flagged by a NaN the caller checks for
        out[0] = NAN
        return
    _row_quantiles(col, n_rows, stride, qs, n_q, ignore_nan, buf, out)
    free(buf)


def quantiles_cols(const floating[:, ::1] X, const double[::1] qs, bint ignore_nan,
                   int n_threads, double[:, ::1] out, Py_ssize_t min_rows):
    """out[j, k] = quantile qs[k] (a fraction in [0, 1], ascending) of column j.

    Columns of fewer than min_rows rows are gathered (strided) and selected
    as rows are. Longer ones, 64 at a time, in passes over the rows:
    1. place N_BUCKETS buckets per column over the wanted range (a row sample);
    2. count each column's values per bucket (histograms per row block);
    3. the counts say which bucket holds each wanted rank, and its rank
       inside: copy the keys of those buckets out (at most n_rows keys per
       pass, columns grouped to fit; a column alone always fits, its buckets
       being disjoint) and nth_element them.
    Extra memory: 8 bytes per row for the keys, ~70 KB of counts per thread.
    Every pass splits the rows into the same N_BLOCKS blocks, which the
    threads take in turn (a thread slowed by another process leaves its
    share to the others); the counts per block give each block its write
    positions, and nothing depends on the thread count.
    """
    cdef Py_ssize_t n_rows = X.shape[0], n_cols = X.shape[1], n_q = qs.shape[0]
    cdef Py_ssize_t R = 2 * n_q, T = min(n_cols, 64), w, tile, c0, g0, g1, c, k, u, j, s
    cdef Py_ssize_t n_slots, total, below, b, lo_r, hi_r
    cdef int nt = max(1, n_threads), t
    cdef bint is_float = floating is float
    cdef floating* buf
    cdef double weight
    if n_cols == 0:
        return
    if n_rows == 0 or n_q == 0:
        out[:, :] = NAN
        return
    if n_rows < max(min_rows, 1) or n_rows >= (<Py_ssize_t> 1 << 32):  # counts are 32-bit
        with nogil, parallel(num_threads=nt):
            buf = <floating*> malloc(n_rows * sizeof(floating))
            for c in prange(n_cols, schedule="dynamic"):
                if buf != NULL:
                    _row_quantiles(&X[0, c], n_rows, n_cols, &qs[0], n_q, ignore_nan, buf,
                                   &out[c, 0])
                else:  # out of memory: flagged by a NaN the caller checks for
                    out[c, 0] = NAN
            free(buf)
        return

    cdef int nb = <int> min(<Py_ssize_t> N_BLOCKS, n_rows)  # row blocks
    cdef Py_ssize_t cand_size = 0  # keys cand has room for, grown as needed up to n_rows
    # PyMem_Raw*: thread-safe without the GIL, and seen by tracemalloc
    cdef uint32_t* hist_t = <uint32_t*> PyMem_RawMalloc(nb * T * HIST_STRIDE * sizeof(uint32_t))
    cdef uint32_t* hist = <uint32_t*> PyMem_RawMalloc(T * HIST_STRIDE * sizeof(uint32_t))
    cdef uint32_t* nan_t = <uint32_t*> PyMem_RawMalloc(nb * T * sizeof(uint32_t))
    cdef double* sample = <double*> PyMem_RawMalloc(SAMPLE_COLS * N_SAMPLE * sizeof(double))
    cdef Py_ssize_t* n_sample = <Py_ssize_t*> PyMem_RawMalloc(SAMPLE_COLS * sizeof(Py_ssize_t))
    cdef double* lo = <double*> PyMem_RawMalloc(T * sizeof(double))
    cdef double* scale = <double*> PyMem_RawMalloc(T * sizeof(double))
    cdef Py_ssize_t* m = <Py_ssize_t*> PyMem_RawMalloc(T * sizeof(Py_ssize_t))
    # per column c: its distinct wanted ranks ranks[c*R : c*R + n_ranks[c]],
    # ascending; per rank: its slot, its rank inside the slot, then its key
    cdef Py_ssize_t* n_ranks = <Py_ssize_t*> PyMem_RawMalloc(T * sizeof(Py_ssize_t))
    cdef Py_ssize_t* ranks = <Py_ssize_t*> PyMem_RawMalloc(T * R * sizeof(Py_ssize_t))
    cdef Py_ssize_t* rank_slot = <Py_ssize_t*> PyMem_RawMalloc(T * R * sizeof(Py_ssize_t))
    cdef Py_ssize_t* rem = <Py_ssize_t*> PyMem_RawMalloc(T * R * sizeof(Py_ssize_t))
    cdef key_t* keys = <key_t*> PyMem_RawMalloc(T * R * sizeof(key_t))
    # per slot (a bucket holding wanted ranks): its bucket, size, keys' place
    cdef Py_ssize_t* slot_start = <Py_ssize_t*> PyMem_RawMalloc((T + 1) * sizeof(Py_ssize_t))
    cdef Py_ssize_t* slot_bucket = <Py_ssize_t*> PyMem_RawMalloc(T * R * sizeof(Py_ssize_t))
    cdef Py_ssize_t* slot_count = <Py_ssize_t*> PyMem_RawMalloc(T * R * sizeof(Py_ssize_t))
    cdef Py_ssize_t* slot_base = <Py_ssize_t*> PyMem_RawMalloc(T * R * sizeof(Py_ssize_t))
    cdef uint16_t* slot_of = <uint16_t*> PyMem_RawMalloc(T * HIST_STRIDE * sizeof(uint16_t))
    cdef Py_ssize_t S = T * R  # room for slots
    cdef Py_ssize_t* bound = <Py_ssize_t*> PyMem_RawMalloc((nb + 1) * S * sizeof(Py_ssize_t))
    cdef Py_ssize_t* pos = <Py_ssize_t*> PyMem_RawMalloc(nb * S * sizeof(Py_ssize_t))
    cdef key_t* cand = NULL
    try:
        if (hist_t == NULL or hist == NULL or nan_t == NULL or sample == NULL or n_sample == NULL or lo == NULL
                or scale == NULL or m == NULL or n_ranks == NULL or ranks == NULL
                or rank_slot == NULL or rem == NULL or keys == NULL or slot_start == NULL
                or slot_bucket == NULL or slot_count == NULL or slot_base == NULL or slot_of == NULL
                or bound == NULL or pos == NULL):
            raise MemoryError()
        with nogil:
            for tile in range((n_cols + T - 1) // T):
                c0 = tile * T
                w = min(T, n_cols - c0)  # this tile's width
                # 1. the buckets (a 2% margin: the sample's quantiles are within
                #    ~0.8% of the true ones, 3 standard errors)
                _place_buckets(&X[0, c0], n_cols, n_rows, w, max(0.0, qs[0] - 0.02),
                               min(1.0, qs[n_q - 1] + 0.02), nt, sample, n_sample, lo, scale)
                # 2. histograms per row block, then summed (integers: the same
                #    sums for any thread count)
                for t in prange(nb, schedule="dynamic", num_threads=nt):
                    memset(hist_t + t * T * HIST_STRIDE, 0, w * HIST_STRIDE * sizeof(uint32_t))
                    memset(nan_t + t * T, 0, w * sizeof(uint32_t))
                    _count(&X[0, c0], n_cols, n_rows * t // nb, n_rows * (t + 1) // nb, w,
                           lo, scale, hist_t + t * T * HIST_STRIDE, nan_t + t * T)
                memcpy(hist, hist_t, w * HIST_STRIDE * sizeof(uint32_t))
                for c in range(w):
                    m[c] = n_rows
                for t in range(nb):
                    for j in range(w * HIST_STRIDE):
                        if t > 0:
                            hist[j] += hist_t[t * T * HIST_STRIDE + j]
                    for c in range(w):
                        m[c] -= nan_t[t * T + c]
                # 3. the bucket of each wanted rank (the NaN count fixes the ranks);
                #    a column's distinct buckets are its slots
                n_slots = 0
                for c in range(w):
                    slot_start[c] = n_slots
                    n_ranks[c] = 0
                    if m[c] > 0 and (ignore_nan or m[c] == n_rows):
                        n_ranks[c] = _want_ranks(m[c], &qs[0], n_q, ranks + c * R)
                    below = 0
                    b = 0
                    for u in range(n_ranks[c]):  # ranks ascend: one walk up the buckets
                        j = c * R + u
                        while below + hist[c * HIST_STRIDE + b] <= ranks[j]:
                            below += hist[c * HIST_STRIDE + b]
                            b += 1
                        if n_slots == slot_start[c] or slot_bucket[n_slots - 1] != b:
                            slot_bucket[n_slots] = b
                            slot_count[n_slots] = hist[c * HIST_STRIDE + b]
                            n_slots += 1
                        rank_slot[j] = n_slots - 1
                        rem[j] = ranks[j] - below
                slot_start[w] = n_slots
                # copy the slots' keys out, as many columns per pass as n_rows keys hold
                g0 = 0
                while g0 < w:
                    total = 0
                    g1 = g0
                    while g1 < w and (g1 == g0 or total + _group_size(slot_start, slot_count, g1)
                                      <= n_rows):
                        total += _group_size(slot_start, slot_count, g1)
                        g1 += 1
                    if total > cand_size:
                        PyMem_RawFree(cand)
                        cand = <key_t*> PyMem_RawMalloc(total * sizeof(key_t))
                        cand_size = total if cand != NULL else 0
                    if cand == NULL:  # out of memory: gather these columns instead
                        for c in range(g0, g1):
                            n_ranks[c] = -1 if n_ranks[c] > 0 else 0
                        g0 = g1
                        continue
                    _collect(&X[0, c0], n_cols, n_rows, g0, g1, nb, nt, S, lo, scale,
                             slot_start, slot_bucket, slot_count, slot_base, hist_t,
                             T * HIST_STRIDE, slot_of, bound, pos, cand)
                    for c in range(g0, g1):
                        for u in range(n_ranks[c]):
                            j = c * R + u
                            s = rank_slot[j]
                            if not _filled(s, nb, S, bound, pos):
                                # the two passes bucketed differently (cannot happen
                                # with IEEE arithmetic): gather the column instead
                                n_ranks[c] = -1
                                break
                            k = slot_base[s]
                            nth_element(cand + k, cand + k + rem[j], cand + k + slot_count[s])
                            keys[j] = cand[k + rem[j]]
                    g0 = g1
                # interpolate as NumPy does
                for c in range(w):
                    if n_ranks[c] == 0:  # no values, or a NaN without ignore_nan
                        for k in range(n_q):
                            out[c0 + c, k] = NAN
                    elif n_ranks[c] < 0:
                        _gather_fallback(&X[0, c0 + c], n_rows, n_cols, &qs[0], n_q,
                                         ignore_nan, &out[c0 + c, 0])
                    else:
                        for k in range(n_q):
                            weight = _linear_ranks(qs[k], m[c], &lo_r, &hi_r)
                            out[c0 + c, k] = _lerp(
                                _ranked(ranks + c * R, keys + c * R, n_ranks[c], lo_r, is_float),
                                _ranked(ranks + c * R, keys + c * R, n_ranks[c], hi_r, is_float),
                                weight)
    finally:
        PyMem_RawFree(hist_t); PyMem_RawFree(hist); PyMem_RawFree(nan_t)
        PyMem_RawFree(sample); PyMem_RawFree(n_sample); PyMem_RawFree(lo); PyMem_RawFree(scale); PyMem_RawFree(m)
        PyMem_RawFree(n_ranks); PyMem_RawFree(ranks); PyMem_RawFree(rank_slot)
        PyMem_RawFree(rem); PyMem_RawFree(keys); PyMem_RawFree(slot_start)
        PyMem_RawFree(slot_bucket); PyMem_RawFree(slot_count); PyMem_RawFree(slot_base)
        PyMem_RawFree(slot_of)
        PyMem_RawFree(bound); PyMem_RawFree(pos); PyMem_RawFree(cand)


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
