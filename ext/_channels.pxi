"""Kernels of the channel norms: batch, group, instance and switchable norm,
normalize and local response norm.

Every input is viewed as a C-contiguous 3-D array X (A, B, K) whose
statistics are per (a, k), reduced over B (DESIGN.md section 3):
NCHW (N, C, S) is (N*C, S, 1), channels-last (N, S, C) is (N, S, C). The
front end composes these per-(a, k) results into per-channel, per-group or
per-sample statistics with a few NumPy operations on small arrays.

Work is split into items (a, block of B rows); a block's size depends on
the shape only and its partial results are merged in a fixed order, so the
results are bitwise the same for any thread count. The bodies are in
channels_impl.h.

16-bit storage (the kernels of batch, group and instance norm, typed
`storage`): X, dY, out and dX may hold bfloat16 (bfloat16=True) or float16
bits as uint16, beside float32 weight and bias. Each block, item or sample
is converted into float32 scratch (per thread, in cache), the float body
runs on it and its result is rounded back (channels_half.h): the statistics
are the float32 kernels' own, bit for bit.
"""
from cython.parallel cimport prange, threadid
from libc.stdlib cimport malloc, free

ctypedef fused floating:
    float
    double

ctypedef unsigned short bits16  # bfloat16 or float16 storage

ctypedef fused storage:
    float
    double
    bits16

cdef extern from "channels.h":
    void block_moments_float(const float* x, Py_ssize_t rows, Py_ssize_t cols,
                             double* mean, double* m2) noexcept nogil
    void block_moments_double(const double* x, Py_ssize_t rows, Py_ssize_t cols,
                              double* mean, double* m2) noexcept nogil
    void block_dot_sums_float(const float* dy, const float* x, Py_ssize_t rows,
                              Py_ssize_t cols, const double* shift, double* sdy,
                              double* sdyx) noexcept nogil
    void block_dot_sums_double(const double* dy, const double* x, Py_ssize_t rows,
                               Py_ssize_t cols, const double* shift, double* sdy,
                               double* sdyx) noexcept nogil
    void block_affine_float(const float* x, Py_ssize_t rows, Py_ssize_t cols,
                            const double* shift, const double* scale,
                            const double* offset, float* y) noexcept nogil
    void block_affine_double(const double* x, Py_ssize_t rows, Py_ssize_t cols,
                             const double* shift, const double* scale,
                             const double* offset, double* y) noexcept nogil
    void block_backward_float(const float* dy, const float* x, Py_ssize_t rows,
                              Py_ssize_t cols, const double* shift, const double* p,
                              const double* q, const double* r, float* dx) noexcept nogil
    void block_backward_double(const double* dy, const double* x, Py_ssize_t rows,
                               Py_ssize_t cols, const double* shift, const double* p,
                               const double* q, const double* r, double* dx) noexcept nogil
    void block_power_sums_float(const float* x, Py_ssize_t rows, Py_ssize_t cols, int p,
                                double* out) noexcept nogil
    void block_power_sums_double(const double* x, Py_ssize_t rows, Py_ssize_t cols, int p,
                                 double* out) noexcept nogil
    void lrn_forward_float(const float* x, Py_ssize_t C, Py_ssize_t S, Py_ssize_t s0,
                           Py_ssize_t s1, Py_ssize_t size, double alpha, double beta,
                           double k, double* base, float* y) noexcept nogil
    void lrn_forward_double(const double* x, Py_ssize_t C, Py_ssize_t S, Py_ssize_t s0,
                            Py_ssize_t s1, Py_ssize_t size, double alpha, double beta,
                            double k, double* base, double* y) noexcept nogil
    void lrn_backward_float(const float* dy, const float* x, Py_ssize_t C, Py_ssize_t S,
                            Py_ssize_t s0, Py_ssize_t s1, Py_ssize_t size, double alpha,
                            double beta, double k, double* base, double* t,
                            float* dx) noexcept nogil
    void lrn_backward_double(const double* dy, const double* x, Py_ssize_t C, Py_ssize_t S,
                             Py_ssize_t s0, Py_ssize_t s1, Py_ssize_t size, double alpha,
                             double beta, double k, double* base, double* t,
                             double* dx) noexcept nogil

    void item_forward_float(const float* x, Py_ssize_t C, Py_ssize_t S, Py_ssize_t n0,
                            Py_ssize_t n_count, Py_ssize_t c0, Py_ssize_t c_count,
                            const float* w, const float* b, double eps, float* y,
                            double* mean, double* var) noexcept nogil
    void item_forward_double(const double* x, Py_ssize_t C, Py_ssize_t S, Py_ssize_t n0,
                             Py_ssize_t n_count, Py_ssize_t c0, Py_ssize_t c_count,
                             const double* w, const double* b, double eps, double* y,
                             double* mean, double* var) noexcept nogil
    void item_backward_float(const float* dy, const float* x, Py_ssize_t C, Py_ssize_t S,
                             Py_ssize_t n0, Py_ssize_t n_count, Py_ssize_t c0,
                             Py_ssize_t c_count, const float* w, double mu, double r,
                             float* dx, double* sdy, double* sdyx) noexcept nogil
    void item_backward_double(const double* dy, const double* x, Py_ssize_t C, Py_ssize_t S,
                              Py_ssize_t n0, Py_ssize_t n_count, Py_ssize_t c0,
                              Py_ssize_t c_count, const double* w, double mu, double r,
                              double* dx, double* sdy, double* sdyx) noexcept nogil
    void sample_forward_nhwc_float(const float* x, Py_ssize_t S, Py_ssize_t C, Py_ssize_t G,
                                   Py_ssize_t block_rows, const float* w, const float* b,
                                   double eps, float* y, double* mean, double* var,
                                   double* scratch) noexcept nogil
    void sample_forward_nhwc_double(const double* x, Py_ssize_t S, Py_ssize_t C, Py_ssize_t G,
                                    Py_ssize_t block_rows, const double* w, const double* b,
                                    double eps, double* y, double* mean, double* var,
                                    double* scratch) noexcept nogil
    void sample_backward_nhwc_float(const float* dy, const float* x, Py_ssize_t S,
                                    Py_ssize_t C, Py_ssize_t G, const float* w,
                                    const double* mean, const double* rstd, float* dx,
                                    double* sdy, double* sdyx, double* scratch) noexcept nogil
    void sample_backward_nhwc_double(const double* dy, const double* x, Py_ssize_t S,
                                     Py_ssize_t C, Py_ssize_t G, const double* w,
                                     const double* mean, const double* rstd, double* dx,
                                     double* sdy, double* sdyx, double* scratch) noexcept nogil

cdef extern from "channels_half.h":
    void block_moments_half(const unsigned short* x, Py_ssize_t rows, Py_ssize_t cols,
                            int bf16, float* scratch, double* mean, double* m2) noexcept nogil
    void block_dot_sums_half(const unsigned short* dy, const unsigned short* x,
                             Py_ssize_t rows, Py_ssize_t cols, const double* shift, int bf16,
                             float* scratch, double* sdy, double* sdyx) noexcept nogil
    void block_affine_half(const unsigned short* x, Py_ssize_t rows, Py_ssize_t cols,
                           const double* shift, const double* scale, const double* offset,
                           int bf16, float* scratch, unsigned short* y) noexcept nogil
    void block_backward_half(const unsigned short* dy, const unsigned short* x,
                             Py_ssize_t rows, Py_ssize_t cols, const double* shift,
                             const double* p, const double* q, const double* r, int bf16,
                             float* scratch, unsigned short* dx) noexcept nogil
    void item_forward_half(const unsigned short* x, Py_ssize_t C, Py_ssize_t S, Py_ssize_t n0,
                           Py_ssize_t n_count, Py_ssize_t c0, Py_ssize_t c_count,
                           const float* w, const float* b, double eps, int bf16,
                           double* scratch, unsigned short* y, double* mean,
                           double* var) noexcept nogil
    void item_backward_half(const unsigned short* dy, const unsigned short* x, Py_ssize_t C,
                            Py_ssize_t S, Py_ssize_t n0, Py_ssize_t n_count, Py_ssize_t c0,
                            Py_ssize_t c_count, const float* w, double mu, double r, int bf16,
                            double* scratch, unsigned short* dx, double* sdy,
                            double* sdyx) noexcept nogil
    void sample_forward_nhwc_half(const unsigned short* x, Py_ssize_t S, Py_ssize_t C,
                                  Py_ssize_t G, Py_ssize_t block_rows, const float* w,
                                  const float* b, double eps, int bf16, double* scratch,
                                  unsigned short* y, double* mean, double* var) noexcept nogil
    void sample_backward_nhwc_half(const unsigned short* dy, const unsigned short* x,
                                   Py_ssize_t S, Py_ssize_t C, Py_ssize_t G, const float* w,
                                   const double* mean, const double* rstd, int bf16,
                                   double* scratch, unsigned short* dx, double* sdy,
                                   double* sdyx) noexcept nogil

cdef enum:
    # Elements per block: 256 KiB of float64, so that a block stays in the
    # L2 cache between the two passes of the moments.
    BLOCK_ELEMS = 32768
    # Spatial positions per local-response-norm item.
    LRN_CHUNK = 256


cdef inline Py_ssize_t _block_rows(Py_ssize_t n_rows, Py_ssize_t n_cols) noexcept nogil:
    return max(1, min(n_rows, BLOCK_ELEMS // max(1, n_cols)))


cdef inline Py_ssize_t _ceil_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return (a + b - 1) // b


cdef double* _scratch(int n_threads, Py_ssize_t per_thread) except NULL:
    """per_thread doubles for each of n_threads threads (thread t's start at
    t * per_thread), for the 16-bit kernels' float32 conversions."""
    cdef double* buf = <double*> malloc(max(1, n_threads) * max(1, per_thread) * sizeof(double))
    if buf == NULL:
        raise MemoryError()
    return buf


cdef inline Py_ssize_t _doubles(Py_ssize_t floats) noexcept nogil:
    return (floats + 1) // 2


cdef const void* _param(object p, bint is_double) except? NULL:
    """The data of a weight or bias (None: NULL): C-contiguous float64 beside
    float64 input, float32 beside float32 and 16-bit input."""
    cdef const double[::1] d
    cdef const float[::1] f
    if p is None:
        return NULL
    if is_double:
        d = p
        return &d[0]
    f = p
    return &f[0]


def moments(const storage[:, :, ::1] X, int n_threads, double[:, ::1] mean,
            double[:, ::1] m2, bint bfloat16=False):
    """mean[a, k] and m2[a, k] (sum of squared deviations) over X[a, :, k]."""
    cdef Py_ssize_t A = X.shape[0], B = X.shape[1], K = X.shape[2]
    cdef Py_ssize_t rows = _block_rows(B, K), nb = _ceil_div(B, rows)
    cdef Py_ssize_t item, a, blk, r0, r1, k, stride = _doubles(rows * K)
    cdef double n_a, n_b, n, delta
    cdef double* part
    cdef double* scratch = NULL
    if A == 0 or K == 0:
        return
    if B == 0:
        mean[:, :] = float("nan")
        m2[:, :] = float("nan")
        return
    if storage is bits16:
        scratch = _scratch(n_threads, stride)
    part = <double*> malloc(2 * A * nb * K * sizeof(double))
    if part == NULL:
        free(scratch)
        raise MemoryError()
    for item in prange(A * nb, nogil=True, schedule="static", num_threads=n_threads):
        a = item // nb
        blk = item % nb
        r0 = blk * rows
        r1 = min(r0 + rows, B)
        if storage is float:
            block_moments_float(&X[a, r0, 0], r1 - r0, K, part + 2 * item * K,
                                part + (2 * item + 1) * K)
        elif storage is double:
            block_moments_double(&X[a, r0, 0], r1 - r0, K, part + 2 * item * K,
                                 part + (2 * item + 1) * K)
        else:
            block_moments_half(&X[a, r0, 0], r1 - r0, K, bfloat16,
                               <float*> (scratch + threadid() * stride), part + 2 * item * K,
                               part + (2 * item + 1) * K)
    free(scratch)
    # Chan's merge of the blocks of each (a, k), in block order
    for a in prange(A, nogil=True, schedule="static", num_threads=n_threads):
        for k in range(K):
            mean[a, k] = part[2 * a * nb * K + k]
            m2[a, k] = part[(2 * a * nb + 1) * K + k]
        for blk in range(1, nb):
            n_a = blk * rows
            n_b = min(rows, B - n_a)
            n = n_a + n_b
            item = a * nb + blk
            for k in range(K):
                delta = part[2 * item * K + k] - mean[a, k]
                mean[a, k] = mean[a, k] + delta * (n_b / n)
                m2[a, k] = m2[a, k] + part[(2 * item + 1) * K + k] + delta * delta * (n_a * (n_b / n))
    free(part)


def dot_sums(const storage[:, :, ::1] dY, const storage[:, :, ::1] X,
             const double[:, ::1] shift, int n_threads, double[:, ::1] sdy,
             double[:, ::1] sdyx, bint bfloat16=False):
    """sdy[a, k] = sum of dY[a, :, k]; sdyx[a, k] = sum of dY * (X - shift[a, k])."""
    cdef Py_ssize_t A = X.shape[0], B = X.shape[1], K = X.shape[2]
    cdef Py_ssize_t rows = _block_rows(B, K), nb = _ceil_div(B, rows)
    cdef Py_ssize_t item, a, blk, r0, r1, k, stride = _doubles(2 * rows * K)
    cdef double* part
    cdef double* scratch = NULL
    if A == 0 or K == 0:
        return
    if B == 0:
        sdy[:, :] = 0.0
        sdyx[:, :] = 0.0
        return
    if storage is bits16:
        scratch = _scratch(n_threads, stride)
    part = <double*> malloc(2 * A * nb * K * sizeof(double))
    if part == NULL:
        free(scratch)
        raise MemoryError()
    for item in prange(A * nb, nogil=True, schedule="static", num_threads=n_threads):
        a = item // nb
        r0 = (item % nb) * rows
        r1 = min(r0 + rows, B)
        if storage is float:
            block_dot_sums_float(&dY[a, r0, 0], &X[a, r0, 0], r1 - r0, K, &shift[a, 0],
                                 part + 2 * item * K, part + (2 * item + 1) * K)
        elif storage is double:
            block_dot_sums_double(&dY[a, r0, 0], &X[a, r0, 0], r1 - r0, K, &shift[a, 0],
                                  part + 2 * item * K, part + (2 * item + 1) * K)
        else:
            block_dot_sums_half(&dY[a, r0, 0], &X[a, r0, 0], r1 - r0, K, &shift[a, 0],
                                bfloat16, <float*> (scratch + threadid() * stride),
                                part + 2 * item * K, part + (2 * item + 1) * K)
    free(scratch)
    for a in prange(A, nogil=True, schedule="static", num_threads=n_threads):
        for k in range(K):
            sdy[a, k] = 0.0
            sdyx[a, k] = 0.0
        for blk in range(nb):
            item = a * nb + blk
            for k in range(K):
                sdy[a, k] += part[2 * item * K + k]
                sdyx[a, k] += part[(2 * item + 1) * K + k]
    free(part)


def affine(const storage[:, :, ::1] X, const double[:, ::1] shift,
           const double[:, ::1] scale, const double[:, ::1] offset, int n_threads,
           storage[:, :, ::1] out, bint bfloat16=False):
    """out[a, b, k] = (X[a, b, k] - shift[a, k]) * scale[a, k] + offset[a, k]."""
    cdef Py_ssize_t A = X.shape[0], B = X.shape[1], K = X.shape[2]
    cdef Py_ssize_t rows = _block_rows(B, K), nb = _ceil_div(B, rows)
    cdef Py_ssize_t item, a, r0, r1, stride = _doubles(2 * rows * K)
    cdef double* scratch = NULL
    if A == 0 or B == 0 or K == 0:
        return
    if storage is bits16:
        scratch = _scratch(n_threads, stride)
    for item in prange(A * nb, nogil=True, schedule="static", num_threads=n_threads):
        a = item // nb
        r0 = (item % nb) * rows
        r1 = min(r0 + rows, B)
        if storage is float:
            block_affine_float(&X[a, r0, 0], r1 - r0, K, &shift[a, 0], &scale[a, 0],
                               &offset[a, 0], &out[a, r0, 0])
        elif storage is double:
            block_affine_double(&X[a, r0, 0], r1 - r0, K, &shift[a, 0], &scale[a, 0],
                                &offset[a, 0], &out[a, r0, 0])
        else:
            block_affine_half(&X[a, r0, 0], r1 - r0, K, &shift[a, 0], &scale[a, 0],
                              &offset[a, 0], bfloat16, <float*> (scratch + threadid() * stride),
                              &out[a, r0, 0])
    free(scratch)


def backward(const storage[:, :, ::1] dY, const storage[:, :, ::1] X,
             const double[:, ::1] shift, const double[:, ::1] p, const double[:, ::1] q,
             const double[:, ::1] r, int n_threads, storage[:, :, ::1] dX,
             bint bfloat16=False):
    """dX = dY * p[a, k] + (X - shift[a, k]) * q[a, k] + r[a, k]."""
    cdef Py_ssize_t A = X.shape[0], B = X.shape[1], K = X.shape[2]
    cdef Py_ssize_t rows = _block_rows(B, K), nb = _ceil_div(B, rows)
    cdef Py_ssize_t item, a, r0, r1, stride = _doubles(3 * rows * K)
    cdef double* scratch = NULL
    if A == 0 or B == 0 or K == 0:
        return
    if storage is bits16:
        scratch = _scratch(n_threads, stride)
    for item in prange(A * nb, nogil=True, schedule="static", num_threads=n_threads):
        a = item // nb
        r0 = (item % nb) * rows
        r1 = min(r0 + rows, B)
        if storage is float:
            block_backward_float(&dY[a, r0, 0], &X[a, r0, 0], r1 - r0, K, &shift[a, 0],
                                 &p[a, 0], &q[a, 0], &r[a, 0], &dX[a, r0, 0])
        elif storage is double:
            block_backward_double(&dY[a, r0, 0], &X[a, r0, 0], r1 - r0, K, &shift[a, 0],
                                  &p[a, 0], &q[a, 0], &r[a, 0], &dX[a, r0, 0])
        else:
            block_backward_half(&dY[a, r0, 0], &X[a, r0, 0], r1 - r0, K, &shift[a, 0],
                                &p[a, 0], &q[a, 0], &r[a, 0], bfloat16,
                                <float*> (scratch + threadid() * stride), &dX[a, r0, 0])
    free(scratch)


def power_sums(const floating[:, :, ::1] X, int p, int n_threads, double[:, ::1] out):
    """out[a, k] = sum of X[a, :, k]^2 (p=2), of |X| (p=1), or max |X| (p=0)."""
    cdef Py_ssize_t A = X.shape[0], B = X.shape[1], K = X.shape[2]
    cdef Py_ssize_t rows = _block_rows(B, K), nb = _ceil_div(B, rows)
    cdef Py_ssize_t item, a, blk, r0, r1, k
    cdef double v
    cdef double* part
    if A == 0 or K == 0:
        return
    out[:, :] = 0.0
    if B == 0:
        return
    part = <double*> malloc(A * nb * K * sizeof(double))
    if part == NULL:
        raise MemoryError()
    for item in prange(A * nb, nogil=True, schedule="static", num_threads=n_threads):
        a = item // nb
        r0 = (item % nb) * rows
        r1 = min(r0 + rows, B)
        if floating is float:
            block_power_sums_float(&X[a, r0, 0], r1 - r0, K, p, part + item * K)
        else:
            block_power_sums_double(&X[a, r0, 0], r1 - r0, K, p, part + item * K)
    for a in prange(A, nogil=True, schedule="static", num_threads=n_threads):
        for blk in range(nb):
            item = a * nb + blk
            for k in range(K):
                v = part[item * K + k]
                if p != 0:
                    out[a, k] += v
                elif v > out[a, k] or v != v:
                    out[a, k] = v
    free(part)


def lrn_forward(const floating[:, :, ::1] X, Py_ssize_t size, double alpha, double beta,
                double k, int n_threads, floating[:, :, ::1] out):
    """Local response norm across the channels of X (N, C, S) into out."""
    cdef Py_ssize_t N = X.shape[0], C = X.shape[1], S = X.shape[2]
    cdef Py_ssize_t nb = _ceil_div(S, LRN_CHUNK), item, n, s0, s1
    cdef double* scratch
    cdef int failed = 0
    cdef int* failed_p = &failed  # written through a pointer: shared by the threads
    if N == 0 or C == 0 or S == 0:
        return
    with nogil:
        for item in prange(N * nb, schedule="static", num_threads=n_threads):
            scratch = <double*> malloc(C * LRN_CHUNK * sizeof(double))
            n = item // nb
            s0 = (item % nb) * LRN_CHUNK
            s1 = min(s0 + LRN_CHUNK, S)
            if scratch != NULL:
                if floating is float:
                    lrn_forward_float(&X[n, 0, 0], C, S, s0, s1, size, alpha, beta, k,
                                      scratch, &out[n, 0, 0])
                else:
                    lrn_forward_double(&X[n, 0, 0], C, S, s0, s1, size, alpha, beta, k,
                                       scratch, &out[n, 0, 0])
                free(scratch)
            else:
                failed_p[0] = 1
    if failed:
        raise MemoryError()


def lrn_backward(const floating[:, :, ::1] dY, const floating[:, :, ::1] X, Py_ssize_t size,
                 double alpha, double beta, double k, int n_threads, floating[:, :, ::1] dX):
    """Input gradient of lrn_forward."""
    cdef Py_ssize_t N = X.shape[0], C = X.shape[1], S = X.shape[2]
    cdef Py_ssize_t nb = _ceil_div(S, LRN_CHUNK), item, n, s0, s1
    cdef double* scratch
    cdef int failed = 0
    cdef int* failed_p = &failed  # written through a pointer: shared by the threads
    if N == 0 or C == 0 or S == 0:
        return
    with nogil:
        for item in prange(N * nb, schedule="static", num_threads=n_threads):
            scratch = <double*> malloc(2 * C * LRN_CHUNK * sizeof(double))
            n = item // nb
            s0 = (item % nb) * LRN_CHUNK
            s1 = min(s0 + LRN_CHUNK, S)
            if scratch != NULL:
                if floating is float:
                    lrn_backward_float(&dY[n, 0, 0], &X[n, 0, 0], C, S, s0, s1, size,
                                       alpha, beta, k, scratch, scratch + C * LRN_CHUNK,
                                       &dX[n, 0, 0])
                else:
                    lrn_backward_double(&dY[n, 0, 0], &X[n, 0, 0], C, S, s0, s1, size,
                                        alpha, beta, k, scratch, scratch + C * LRN_CHUNK,
                                        &dX[n, 0, 0])
                free(scratch)
            else:
                failed_p[0] = 1
    if failed:
        raise MemoryError()


# ---------------------------------------------- fused, in-cache variants ---
# Statistics and apply in one visit of each item (see channels_impl.h): the
# NCHW item is n_count samples x c_count channels of X (N, C, S) (batch norm
# N x 1, group norm 1 x C/G, instance norm 1 x 1); the channels-last item is
# one sample of X (N, S, C) with G groups. The forward returns each item's
# mean and biased variance (n-major); the backward takes (mean, rstd).
# Empty inputs go to the unfused kernels instead. On 16-bit storage the whole
# item (sample) is converted into the thread's scratch: the caller keeps
# these for items that fit in cache.

def fused_forward_nchw(const storage[:, :, ::1] X, Py_ssize_t n_count, Py_ssize_t c_count,
                       weight, bias, double eps, int n_threads, storage[:, :, ::1] out,
                       double[::1] mean, double[::1] var, bint bfloat16=False):
    """Normalize each item of X by its own statistics, into out."""
    cdef Py_ssize_t N = X.shape[0], C = X.shape[1], S = X.shape[2]
    cdef Py_ssize_t items_c = C // c_count, n_items = (N // n_count) * items_c, i
    cdef Py_ssize_t stride = _doubles(2 * n_count * c_count * S)
    cdef const void* w = _param(weight, storage is double)
    cdef const void* b = _param(bias, storage is double)
    cdef double* scratch = NULL
    if storage is bits16:
        scratch = _scratch(n_threads, stride)
    for i in prange(n_items, nogil=True, schedule="static", num_threads=n_threads):
        if storage is float:
            item_forward_float(&X[0, 0, 0], C, S, (i // items_c) * n_count, n_count,
                               (i % items_c) * c_count, c_count, <const float*> w,
                               <const float*> b, eps, &out[0, 0, 0], &mean[i], &var[i])
        elif storage is double:
            item_forward_double(&X[0, 0, 0], C, S, (i // items_c) * n_count, n_count,
                                (i % items_c) * c_count, c_count, <const double*> w,
                                <const double*> b, eps, &out[0, 0, 0], &mean[i], &var[i])
        else:
            item_forward_half(&X[0, 0, 0], C, S, (i // items_c) * n_count, n_count,
                              (i % items_c) * c_count, c_count, <const float*> w,
                              <const float*> b, eps, bfloat16, scratch + threadid() * stride,
                              &out[0, 0, 0], &mean[i], &var[i])
    free(scratch)


def fused_backward_nchw(const storage[:, :, ::1] dY, const storage[:, :, ::1] X,
                        Py_ssize_t n_count, Py_ssize_t c_count, weight,
                        const double[::1] mean, const double[::1] rstd, int n_threads,
                        storage[:, :, ::1] dX, double[::1] sdy, double[::1] sdyx,
                        bint bfloat16=False):
    """dX of fused_forward_nchw; sdy/sdyx per (n, c) (n * C + c)."""
    cdef Py_ssize_t N = X.shape[0], C = X.shape[1], S = X.shape[2]
    cdef Py_ssize_t items_c = C // c_count, n_items = (N // n_count) * items_c, i
    cdef Py_ssize_t stride = 2 * n_count * c_count + _doubles(3 * n_count * c_count * S)
    cdef const void* w = _param(weight, storage is double)
    cdef double* scratch = NULL
    if storage is bits16:
        scratch = _scratch(n_threads, stride)
    for i in prange(n_items, nogil=True, schedule="static", num_threads=n_threads):
        if storage is float:
            item_backward_float(&dY[0, 0, 0], &X[0, 0, 0], C, S, (i // items_c) * n_count,
                                n_count, (i % items_c) * c_count, c_count, <const float*> w,
                                mean[i], rstd[i], &dX[0, 0, 0], &sdy[0], &sdyx[0])
        elif storage is double:
            item_backward_double(&dY[0, 0, 0], &X[0, 0, 0], C, S, (i // items_c) * n_count,
                                 n_count, (i % items_c) * c_count, c_count, <const double*> w,
                                 mean[i], rstd[i], &dX[0, 0, 0], &sdy[0], &sdyx[0])
        else:
            item_backward_half(&dY[0, 0, 0], &X[0, 0, 0], C, S, (i // items_c) * n_count,
                               n_count, (i % items_c) * c_count, c_count, <const float*> w,
                               mean[i], rstd[i], bfloat16, scratch + threadid() * stride,
                               &dX[0, 0, 0], &sdy[0], &sdyx[0])
    free(scratch)


def fused_forward_nhwc(const storage[:, :, ::1] X, Py_ssize_t G, weight, bias, double eps,
                       int n_threads, storage[:, :, ::1] out, double[:, ::1] mean,
                       double[:, ::1] var, bint bfloat16=False):
    """Normalize each sample of channels-last X (N, S, C) per group of C/G channels."""
    cdef Py_ssize_t N = X.shape[0], S = X.shape[1], C = X.shape[2], n
    cdef Py_ssize_t rows = _block_rows(S, C)
    cdef Py_ssize_t stride = 6 * C + (_doubles(2 * S * C) if storage is bits16 else 0)
    cdef const void* w = _param(weight, storage is double)
    cdef const void* b = _param(bias, storage is double)
    cdef double* scratch = _scratch(n_threads, stride)
    cdef double* s
    for n in prange(N, nogil=True, schedule="static", num_threads=n_threads):
        s = scratch + threadid() * stride
        if storage is float:
            sample_forward_nhwc_float(&X[n, 0, 0], S, C, G, rows, <const float*> w,
                                      <const float*> b, eps, &out[n, 0, 0], &mean[n, 0],
                                      &var[n, 0], s)
        elif storage is double:
            sample_forward_nhwc_double(&X[n, 0, 0], S, C, G, rows, <const double*> w,
                                       <const double*> b, eps, &out[n, 0, 0], &mean[n, 0],
                                       &var[n, 0], s)
        else:
            sample_forward_nhwc_half(&X[n, 0, 0], S, C, G, rows, <const float*> w,
                                     <const float*> b, eps, bfloat16, s, &out[n, 0, 0],
                                     &mean[n, 0], &var[n, 0])
    free(scratch)


def fused_backward_nhwc(const storage[:, :, ::1] dY, const storage[:, :, ::1] X, Py_ssize_t G,
                        weight, const double[:, ::1] mean, const double[:, ::1] rstd,
                        int n_threads, storage[:, :, ::1] dX, double[:, ::1] sdy,
                        double[:, ::1] sdyx, bint bfloat16=False):
    """dX of fused_forward_nhwc; sdy/sdyx per (n, c)."""
    cdef Py_ssize_t N = X.shape[0], S = X.shape[1], C = X.shape[2], n
    cdef Py_ssize_t stride = 4 * C + (_doubles(3 * S * C) if storage is bits16 else 0)
    cdef const void* w = _param(weight, storage is double)
    cdef double* scratch = _scratch(n_threads, stride)
    cdef double* s
    for n in prange(N, nogil=True, schedule="static", num_threads=n_threads):
        s = scratch + threadid() * stride
        if storage is float:
            sample_backward_nhwc_float(&dY[n, 0, 0], &X[n, 0, 0], S, C, G, <const float*> w,
                                       &mean[n, 0], &rstd[n, 0], &dX[n, 0, 0], &sdy[n, 0],
                                       &sdyx[n, 0], s)
        elif storage is double:
            sample_backward_nhwc_double(&dY[n, 0, 0], &X[n, 0, 0], S, C, G,
                                        <const double*> w, &mean[n, 0], &rstd[n, 0],
                                        &dX[n, 0, 0], &sdy[n, 0], &sdyx[n, 0], s)
        else:
            sample_backward_nhwc_half(&dY[n, 0, 0], &X[n, 0, 0], S, C, G, <const float*> w,
                                      &mean[n, 0], &rstd[n, 0], bfloat16, s, &dX[n, 0, 0],
                                      &sdy[n, 0], &sdyx[n, 0])
    free(scratch)
