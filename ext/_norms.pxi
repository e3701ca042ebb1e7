"""Row-normalization kernels of the deep-learning norms (layer_norm, rms_norm).

X is (n_rows, n) C-contiguous: each row is one normalized group. Forward
kernels write y and save (mean, rstd) per row in float64; backward kernels
take them back. Statistics accumulate in float64 with two passes over the
row while it is in cache, so mean 1e4 +- 1 in float32 keeps its variance.

The weight and bias gradients are column sums over rows: rows are split into
a fixed number of blocks (a function of the shape only), each block sums its
rows, and the blocks are added in order: bitwise the same for any thread
count.
"""
from cython.parallel cimport prange
from libc.math cimport sqrt
from libc.stdlib cimport calloc, free

ctypedef fused floating:
    float
    double

cdef enum:
    MAX_BLOCKS = 64


cdef inline Py_ssize_t _n_blocks(Py_ssize_t n_rows) noexcept nogil:
    return max(1, min(n_rows, <Py_ssize_t> MAX_BLOCKS))


def layer_norm_fwd(const floating[:, ::1] X, const floating[::1] weight,
                   const floating[::1] bias, double eps, bint rms, int n_threads,
                   floating[:, ::1] out, double[::1] mean, double[::1] rstd):
    """out = (x - mean) * rstd * weight + bias per row (rms: mean = 0 and
    rstd = 1 / sqrt(mean(x^2) + eps), no bias); weight/bias may be None."""
    cdef Py_ssize_t n_rows = X.shape[0], n = X.shape[1], i, j
    cdef const floating* x
    cdef floating* y
    cdef double s, q, d, mu, r
    cdef const floating* w = NULL if weight is None else &weight[0]
    cdef const floating* b = NULL if bias is None else &bias[0]
    if n == 0:
        return
    for i in prange(n_rows, nogil=True, schedule="static", num_threads=n_threads):
        x = &X[i, 0]
        y = &out[i, 0]
        mu = 0.0
        if not rms:
            s = 0.0
            for j in range(n):
                s = s + x[j]
            mu = s / n
        q = 0.0
        s = 0.0
        for j in range(n):
            d = x[j] - mu
            q = q + d * d
            s = s + d
        # corrected two-pass: the deviations' own sum repairs the rounding of
        # the first mean (mean 1e8 +- 1 keeps full float64 accuracy)
        if not rms:
            mu = mu + s / n
            q = q - s * s / n
        r = 1.0 / sqrt(q / n + eps)
        mean[i] = mu
        rstd[i] = r
        if w != NULL and b != NULL:
            for j in range(n):
                y[j] = <floating> ((x[j] - mu) * r * w[j] + b[j])
        elif w != NULL:
            for j in range(n):
                y[j] = <floating> ((x[j] - mu) * r * w[j])
        elif b != NULL:
            for j in range(n):
                y[j] = <floating> ((x[j] - mu) * r + b[j])
        else:
            for j in range(n):
                y[j] = <floating> ((x[j] - mu) * r)


def layer_norm_bwd(const floating[:, ::1] dY, const floating[:, ::1] X,
                   const floating[::1] weight, const double[::1] mean,
                   const double[::1] rstd, bint rms, bint want_dw, bint want_db,
                   int n_threads, floating[:, ::1] dX, double[::1] dw, double[::1] db):
    """Gradients of layer_norm (rms_norm with rms=True) given the saved
    (mean, rstd): dX always, dw = sum dy * xhat and db = sum dy over rows
    when asked (float64)."""
    cdef Py_ssize_t n_rows = X.shape[0], n = X.shape[1], i, j, blk, n_blocks, r0, r1
    cdef Py_ssize_t rows_per_block
    cdef const floating* x
    cdef const floating* dy
    cdef floating* dx
    cdef const floating* w = NULL if weight is None else &weight[0]
    cdef double mu, r, g, xh, sum_g, sum_gx, c1, c2
    cdef double* partial
    cdef double* p
    if n == 0:
        return
    for i in prange(n_rows, nogil=True, schedule="static", num_threads=n_threads):
        x = &X[i, 0]
        dy = &dY[i, 0]
        dx = &dX[i, 0]
        mu = mean[i]
        r = rstd[i]
        sum_g = 0.0
        sum_gx = 0.0
        for j in range(n):
            g = dy[j] * (1.0 if w == NULL else <double> w[j])
            xh = (x[j] - mu) * r
            sum_g = sum_g + g
            sum_gx = sum_gx + g * xh
        # dx = r * (g - mean(g) - xhat * mean(g * xhat)); rms has no mean(g) term
        c1 = 0.0 if rms else sum_g / n
        c2 = sum_gx / n
        for j in range(n):
            g = dy[j] * (1.0 if w == NULL else <double> w[j])
            xh = (x[j] - mu) * r
            dx[j] = <floating> (r * (g - c1 - xh * c2))
    if not (want_dw or want_db):
        return
    n_blocks = _n_blocks(n_rows)
    rows_per_block = (n_rows + n_blocks - 1) // n_blocks
    partial = <double*> calloc(2 * n_blocks * n, sizeof(double))
    if partial == NULL:
        raise MemoryError()
    for blk in prange(n_blocks, nogil=True, schedule="static", num_threads=n_threads):
        p = partial + 2 * blk * n
        r0 = blk * rows_per_block
        r1 = min(r0 + rows_per_block, n_rows)
        for i in range(r0, r1):
            x = &X[i, 0]
            dy = &dY[i, 0]
            mu = mean[i]
            r = rstd[i]
            for j in range(n):
                p[j] += dy[j] * ((x[j] - mu) * r)
                p[n + j] += dy[j]
    for j in range(n):
        dw[j] = 0.0
        db[j] = 0.0
    for blk in range(n_blocks):
        for j in range(n):
            dw[j] += partial[2 * blk * n + j]
            db[j] += partial[2 * blk * n + n + j]
    free(partial)
