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
"""
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free

ctypedef fused floating:
    float
    double

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


def moments(const floating[:, :, ::1] X, int n_threads, double[:, ::1] mean,
            double[:, ::1] m2):
    """mean[a, k] and m2[a, k] (sum of squared deviations) over X[a, :, k]."""
    cdef Py_ssize_t A = X.shape[0], B = X.shape[1], K = X.shape[2]
    cdef Py_ssize_t rows = _block_rows(B, K), nb = _ceil_div(B, rows)
    cdef Py_ssize_t item, a, blk, r0, r1, k
    cdef double n_a, n_b, n, delta
    cdef double* part
    if A == 0 or K == 0:
        return
    if B == 0:
        mean[:, :] = float("nan")
        m2[:, :] = float("nan")
        return
    part = <double*> malloc(2 * A * nb * K * sizeof(double))
    if part == NULL:
        raise MemoryError()
    for item in prange(A * nb, nogil=True, schedule="static", num_threads=n_threads):
        a = item // nb
        blk = item % nb
        r0 = blk * rows
        r1 = min(r0 + rows, B)
        if floating is float:
            block_moments_float(&X[a, r0, 0], r1 - r0, K, part + 2 * item * K,
                                part + (2 * item + 1) * K)
        else:
            block_moments_double(&X[a, r0, 0], r1 - r0, K, part + 2 * item * K,
                                 part + (2 * item + 1) * K)
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


def dot_sums(const floating[:, :, ::1] dY, const floating[:, :, ::1] X,
             const double[:, ::1] shift, int n_threads, double[:, ::1] sdy,
             double[:, ::1] sdyx):
    """sdy[a, k] = sum of dY[a, :, k]; sdyx[a, k] = sum of dY * (X - shift[a, k])."""
    cdef Py_ssize_t A = X.shape[0], B = X.shape[1], K = X.shape[2]
    cdef Py_ssize_t rows = _block_rows(B, K), nb = _ceil_div(B, rows)
    cdef Py_ssize_t item, a, blk, r0, r1, k
    cdef double* part
    if A == 0 or K == 0:
        return
    if B == 0:
        sdy[:, :] = 0.0
        sdyx[:, :] = 0.0
        return
    part = <double*> malloc(2 * A * nb * K * sizeof(double))
    if part == NULL:
        raise MemoryError()
    for item in prange(A * nb, nogil=True, schedule="static", num_threads=n_threads):
        a = item // nb
        r0 = (item % nb) * rows
        r1 = min(r0 + rows, B)
        if floating is float:
            block_dot_sums_float(&dY[a, r0, 0], &X[a, r0, 0], r1 - r0, K, &shift[a, 0],
                                 part + 2 * item * K, part + (2 * item + 1) * K)
        else:
            block_dot_sums_double(&dY[a, r0, 0], &X[a, r0, 0], r1 - r0, K, &shift[a, 0],
                                  part + 2 * item * K, part + (2 * item + 1) * K)
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


def affine(const floating[:, :, ::1] X, const double[:, ::1] shift,
           const double[:, ::1] scale, const double[:, ::1] offset, int n_threads,
           floating[:, :, ::1] out):
    """out[a, b, k] = (X[a, b, k] - shift[a, k]) * scale[a, k] + offset[a, k]."""
    cdef Py_ssize_t A = X.shape[0], B = X.shape[1], K = X.shape[2]
    cdef Py_ssize_t rows = _block_rows(B, K), nb = _ceil_div(B, rows)
    cdef Py_ssize_t item, a, r0, r1
    if A == 0 or B == 0 or K == 0:
        return
    for item in prange(A * nb, nogil=True, schedule="static", num_threads=n_threads):
        a = item // nb
        r0 = (item % nb) * rows
        r1 = min(r0 + rows, B)
        if floating is float:
            block_affine_float(&X[a, r0, 0], r1 - r0, K, &shift[a, 0], &scale[a, 0],
                               &offset[a, 0], &out[a, r0, 0])
        else:
            block_affine_double(&X[a, r0, 0], r1 - r0, K, &shift[a, 0], &scale[a, 0],
                                &offset[a, 0], &out[a, r0, 0])


def backward(const floating[:, :, ::1] dY, const floating[:, :, ::1] X,
             const double[:, ::1] shift, const double[:, ::1] p, const double[:, ::1] q,
             const double[:, ::1] r, int n_threads, floating[:, :, ::1] dX):
    """dX = dY * p[a, k] + (X - shift[a, k]) * q[a, k] + r[a, k]."""
    cdef Py_ssize_t A = X.shape[0], B = X.shape[1], K = X.shape[2]
    cdef Py_ssize_t rows = _block_rows(B, K), nb = _ceil_div(B, rows)
    cdef Py_ssize_t item, a, r0, r1
    if A == 0 or B == 0 or K == 0:
        return
    for item in prange(A * nb, nogil=True, schedule="static", num_threads=n_threads):
        a = item // nb
        r0 = (item % nb) * rows
        r1 = min(r0 + rows, B)
        if floating is float:
            block_backward_float(&dY[a, r0, 0], &X[a, r0, 0], r1 - r0, K, &shift[a, 0],
                                 &p[a, 0], &q[a, 0], &r[a, 0], &dX[a, r0, 0])
        else:
            block_backward_double(&dY[a, r0, 0], &X[a, r0, 0], r1 - r0, K, &shift[a, 0],
                                  &p[a, 0], &q[a, 0], &r[a, 0], &dX[a, r0, 0])


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
# Empty inputs go to the unfused kernels instead.

def fused_forward_nchw(const floating[:, :, ::1] X, Py_ssize_t n_count, Py_ssize_t c_count,
                       const floating[::1] weight, const floating[::1] bias, double eps,
                       int n_threads, floating[:, :, ::1] out, double[::1] mean,
                       double[::1] var):
    """Normalize each item of X by its own statistics, into out."""
    cdef Py_ssize_t N = X.shape[0], C = X.shape[1], S = X.shape[2]
    cdef Py_ssize_t items_c = C // c_count, n_items = (N // n_count) * items_c, i
    cdef const floating* w = NULL if weight is None else &weight[0]
    cdef const floating* b = NULL if bias is None else &bias[0]
    for i in prange(n_items, nogil=True, schedule="static", num_threads=n_threads):
        if floating is float:
            item_forward_float(&X[0, 0, 0], C, S, (i // items_c) * n_count, n_count,
                               (i % items_c) * c_count, c_count, w, b, eps, &out[0, 0, 0],
                               &mean[i], &var[i])
        else:
            item_forward_double(&X[0, 0, 0], C, S, (i // items_c) * n_count, n_count,
                                (i % items_c) * c_count, c_count, w, b, eps, &out[0, 0, 0],
                                &mean[i], &var[i])


def fused_backward_nchw(const floating[:, :, ::1] dY, const floating[:, :, ::1] X,
                        Py_ssize_t n_count, Py_ssize_t c_count, const floating[::1] weight,
                        const double[::1] mean, const double[::1] rstd, int n_threads,
                        floating[:, :, ::1] dX, double[::1] sdy, double[::1] sdyx):
    """dX of fused_forward_nchw; sdy/sdyx per (n, c) (n * C + c)."""
    cdef Py_ssize_t N = X.shape[0], C = X.shape[1], S = X.shape[2]
    cdef Py_ssize_t items_c = C // c_count, n_items = (N // n_count) * items_c, i
    cdef const floating* w = NULL if weight is None else &weight[0]
    for i in prange(n_items, nogil=True, schedule="static", num_threads=n_threads):
        if floating is float:
            item_backward_float(&dY[0, 0, 0], &X[0, 0, 0], C, S, (i // items_c) * n_count,
                                n_count, (i % items_c) * c_count, c_count, w, mean[i],
                                rstd[i], &dX[0, 0, 0], &sdy[0], &sdyx[0])
        else:
            item_backward_double(&dY[0, 0, 0], &X[0, 0, 0], C, S, (i // items_c) * n_count,
                                 n_count, (i % items_c) * c_count, c_count, w, mean[i],
                                 rstd[i], &dX[0, 0, 0], &sdy[0], &sdyx[0])


def fused_forward_nhwc(const floating[:, :, ::1] X, Py_ssize_t G, const floating[::1] weight,
                       const floating[::1] bias, double eps, int n_threads,
                       floating[:, :, ::1] out, double[:, ::1] mean, double[:, ::1] var):
    """Normalize each sample of channels-last X (N, S, C) per group of C/G channels."""
    cdef Py_ssize_t N = X.shape[0], S = X.shape[1], C = X.shape[2], n
    cdef Py_ssize_t rows = _block_rows(S, C)
    cdef const floating* w = NULL if weight is None else &weight[0]
    cdef const floating* b = NULL if bias is None else &bias[0]
    cdef double* scratch
    cdef int failed = 0
    cdef int* failed_p = &failed  # written through a pointer: shared by the threads
    with nogil:
        for n in prange(N, schedule="static", num_threads=n_threads):
            scratch = <double*> malloc(6 * C * sizeof(double))
            if scratch == NULL:
                failed_p[0] = 1
            else:
                if floating is float:
                    sample_forward_nhwc_float(&X[n, 0, 0], S, C, G, rows, w, b, eps,
                                              &out[n, 0, 0], &mean[n, 0], &var[n, 0], scratch)
                else:
                    sample_forward_nhwc_double(&X[n, 0, 0], S, C, G, rows, w, b, eps,
                                               &out[n, 0, 0], &mean[n, 0], &var[n, 0], scratch)
                free(scratch)
    if failed:
        raise MemoryError()


def fused_backward_nhwc(const floating[:, :, ::1] dY, const floating[:, :, ::1] X, Py_ssize_t G,
                        const floating[::1] weight, const double[:, ::1] mean,
                        const double[:, ::1] rstd, int n_threads, floating[:, :, ::1] dX,
                        double[:, ::1] sdy, double[:, ::1] sdyx):
    """dX of fused_forward_nhwc; sdy/sdyx per (n, c)."""
    cdef Py_ssize_t N = X.shape[0], S = X.shape[1], C = X.shape[2], n
    cdef const floating* w = NULL if weight is None else &weight[0]
    cdef double* scratch
    cdef int failed = 0
    cdef int* failed_p = &failed
    with nogil:
        for n in prange(N, schedule="static", num_threads=n_threads):
            scratch = <double*> malloc(4 * C * sizeof(double))
            if scratch == NULL:
                failed_p[0] = 1
            else:
                if floating is float:
                    sample_backward_nhwc_float(&dY[n, 0, 0], &X[n, 0, 0], S, C, G, w,
                                               &mean[n, 0], &rstd[n, 0], &dX[n, 0, 0],
                                               &sdy[n, 0], &sdyx[n, 0], scratch)
                else:
                    sample_backward_nhwc_double(&dY[n, 0, 0], &X[n, 0, 0], S, C, G, w,
                                                &mean[n, 0], &rstd[n, 0], &dX[n, 0, 0],
                                                &sdy[n, 0], &sdyx[n, 0], scratch)
                free(scratch)
    if failed:
        raise MemoryError()
