/* 16-bit storage entry points of the channel-norm bodies (channels_impl.h):
 * x, y, dy, dx are bfloat16 (bf16 != 0) or float16 bits held as uint16
 * (half.h). Each converts its block, item or sample into float32 scratch,
 * runs the float body on it and rounds the result back to 16 bits, so the
 * statistics are the float32 kernels' own, bit for bit, and so are the
 * outputs before their rounding: no per-type copy of the bodies.
 *
 * scratch: the block bodies take rows * cols floats per 16-bit operand and
 * output (moments 1, dot_sums 2, affine 2, backward 3). The item and sample
 * bodies take doubles first, then floats (see each); the caller sizes them
 * (_channels.pxi) and keeps them per thread, in cache. */
#ifndef FASTNORM_CHANNELS_HALF_H
#define FASTNORM_CHANNELS_HALF_H

#include "half.h"
#include "channels.h"

/* ------------------------------------------------------------- blocks --- */

static void block_moments_half(const uint16_t *x, Py_ssize_t rows, Py_ssize_t cols, int bf16,
                               float *scratch, double *mean, double *m2)
{
    fastnorm_half_to_float(x, rows * cols, bf16, scratch);
    block_moments_float(scratch, rows, cols, mean, m2);
}

static void block_dot_sums_half(const uint16_t *dy, const uint16_t *x, Py_ssize_t rows,
                                Py_ssize_t cols, const double *shift, int bf16,
                                float *scratch, double *sdy, double *sdyx)
{
    Py_ssize_t n = rows * cols;
    fastnorm_half_to_float(dy, n, bf16, scratch);
    fastnorm_half_to_float(x, n, bf16, scratch + n);
    block_dot_sums_float(scratch, scratch + n, rows, cols, shift, sdy, sdyx);
}

static void block_affine_half(const uint16_t *x, Py_ssize_t rows, Py_ssize_t cols,
                              const double *shift, const double *scale, const double *offset,
                              int bf16, float *scratch, uint16_t *y)
{
    Py_ssize_t n = rows * cols;
    fastnorm_half_to_float(x, n, bf16, scratch);
    block_affine_float(scratch, rows, cols, shift, scale, offset, scratch + n);
    fastnorm_float_to_half(scratch + n, n, bf16, y);
}

static void block_backward_half(const uint16_t *dy, const uint16_t *x, Py_ssize_t rows,
                                Py_ssize_t cols, const double *shift, const double *p,
                                const double *q, const double *r, int bf16, float *scratch,
                                uint16_t *dx)
{
    Py_ssize_t n = rows * cols;
    fastnorm_half_to_float(dy, n, bf16, scratch);
    fastnorm_half_to_float(x, n, bf16, scratch + n);
    block_backward_float(scratch, scratch + n, rows, cols, shift, p, q, r, scratch + 2 * n);
    fastnorm_float_to_half(scratch + 2 * n, n, bf16, dx);
}

/* -------------------------------------------------------- fused items --- */
/* An NCHW item (n_count samples x c_count channels from (n0, c0) of x
 * (N, C, S)) is n_count runs of c_count * S contiguous values: they are
 * gathered into a dense (n_count, c_count, S) float item, on which the float
 * body runs as on an input of c_count channels. */

static void item_gather_half(const uint16_t *x, Py_ssize_t C, Py_ssize_t S, Py_ssize_t n0,
                             Py_ssize_t n_count, Py_ssize_t c0, Py_ssize_t c_count, int bf16,
                             float *dst)
{
    Py_ssize_t n, len = c_count * S;
    for (n = 0; n < n_count; n++)
        fastnorm_half_to_float(x + ((n0 + n) * C + c0) * S, len, bf16, dst + n * len);
}

static void item_scatter_half(const float *src, Py_ssize_t C, Py_ssize_t S, Py_ssize_t n0,
                              Py_ssize_t n_count, Py_ssize_t c0, Py_ssize_t c_count, int bf16,
                              uint16_t *y)
{
    Py_ssize_t n, len = c_count * S;
    for (n = 0; n < n_count; n++)
        fastnorm_float_to_half(src + n * len, len, bf16, y + ((n0 + n) * C + c0) * S);
}

/* item_forward; scratch: 2 * n_count * c_count * S floats (as doubles: half that) */
static void item_forward_half(const uint16_t *x, Py_ssize_t C, Py_ssize_t S, Py_ssize_t n0,
                              Py_ssize_t n_count, Py_ssize_t c0, Py_ssize_t c_count,
                              const float *w, const float *b, double eps, int bf16,
                              double *scratch, uint16_t *y, double *mean_out, double *var_out)
{
    Py_ssize_t size = n_count * c_count * S;
    float *xs = (float *)scratch, *ys = xs + size;
    item_gather_half(x, C, S, n0, n_count, c0, c_count, bf16, xs);
    item_forward_float(xs, c_count, S, 0, n_count, 0, c_count, w ? w + c0 : NULL,
                       b ? b + c0 : NULL, eps, ys, mean_out, var_out);
    item_scatter_half(ys, C, S, n0, n_count, c0, c_count, bf16, y);
}

/* item_backward; scratch: 2 * n_count * c_count doubles, then
 * 3 * n_count * c_count * S floats */
static void item_backward_half(const uint16_t *dy, const uint16_t *x, Py_ssize_t C,
                               Py_ssize_t S, Py_ssize_t n0, Py_ssize_t n_count, Py_ssize_t c0,
                               Py_ssize_t c_count, const float *w, double mu, double r,
                               int bf16, double *scratch, uint16_t *dx, double *sdy,
                               double *sdyx)
{
    Py_ssize_t n, c, k = n_count * c_count, size = k * S;
    double *item_sdy = scratch, *item_sdyx = scratch + k;
    float *dys = (float *)(scratch + 2 * k), *xs = dys + size, *dxs = xs + size;
    item_gather_half(dy, C, S, n0, n_count, c0, c_count, bf16, dys);
    item_gather_half(x, C, S, n0, n_count, c0, c_count, bf16, xs);
    item_backward_float(dys, xs, c_count, S, 0, n_count, 0, c_count, w ? w + c0 : NULL, mu,
                        r, dxs, item_sdy, item_sdyx);
    item_scatter_half(dxs, C, S, n0, n_count, c0, c_count, bf16, dx);
    for (n = 0; n < n_count; n++)  /* the per-(n, c) sums at their place in (N, C) */
        for (c = 0; c < c_count; c++) {
            sdy[(n0 + n) * C + c0 + c] = item_sdy[n * c_count + c];
            sdyx[(n0 + n) * C + c0 + c] = item_sdyx[n * c_count + c];
        }
}

/* sample_forward_nhwc; scratch: 6 * C doubles, then 2 * S * C floats */
static void sample_forward_nhwc_half(const uint16_t *x, Py_ssize_t S, Py_ssize_t C,
                                     Py_ssize_t G, Py_ssize_t block_rows, const float *w,
                                     const float *b, double eps, int bf16, double *scratch,
                                     uint16_t *y, double *mean_out, double *var_out)
{
    float *xs = (float *)(scratch + 6 * C), *ys = xs + S * C;
    fastnorm_half_to_float(x, S * C, bf16, xs);
    sample_forward_nhwc_float(xs, S, C, G, block_rows, w, b, eps, ys, mean_out, var_out,
                              scratch);
    fastnorm_float_to_half(ys, S * C, bf16, y);
}

/* sample_backward_nhwc; scratch: 4 * C doubles, then 3 * S * C floats */
static void sample_backward_nhwc_half(const uint16_t *dy, const uint16_t *x, Py_ssize_t S,
                                      Py_ssize_t C, Py_ssize_t G, const float *w,
                                      const double *mean, const double *rstd, int bf16,
                                      double *scratch, uint16_t *dx, double *sdy,
                                      double *sdyx)
{
    float *dys = (float *)(scratch + 4 * C), *xs = dys + S * C, *dxs = xs + S * C;
    fastnorm_half_to_float(dy, S * C, bf16, dys);
    fastnorm_half_to_float(x, S * C, bf16, xs);
    sample_backward_nhwc_float(dys, xs, S, C, G, w, mean, rstd, dxs, sdy, sdyx, scratch);
    fastnorm_float_to_half(dxs, S * C, bf16, dx);
}

#endif
