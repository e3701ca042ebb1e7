/* The elementwise loops of the float32 row norms (the forward's output and
 * the backward's dx) in float arithmetic: twice as wide as double, and with
 * no conversions, which made them half of a row's time. Statistics stay in
 * double (row_norms_impl.h); these take them as doubles.
 *
 * Accuracy: mu is split in two floats, mu_hi + mu_lo. x - mu_hi is exact
 * where x is near mu (Sterbenz), which is where cancellation would hurt, so
 * an output is within a few float ulps of the double computation's even for
 * mean 1e8 and std 1. That split only works if the compiler keeps
 * (x - mu_hi) - mu_lo as written: the build's -fassociative-math would fold
 * it into x - (mu_hi + mu_lo) = x - (float)mu, so these functions are
 * compiled without it. row_float_ok() sends scales where float arithmetic
 * could overflow or lose tiny values to the double loops. */
#ifndef FASTNORM_ROW_NORMS_FLOAT32_H
#define FASTNORM_ROW_NORMS_FLOAT32_H
#include <math.h>
#include <Python.h>

#if defined(__clang__)
#define FASTNORM_KEEP_ORDER
#define FASTNORM_KEEP_ORDER_BODY _Pragma("clang fp reassociate(off)")
#elif defined(__GNUC__)
#define FASTNORM_KEEP_ORDER __attribute__((optimize("no-associative-math")))
#define FASTNORM_KEEP_ORDER_BODY
#else
#define FASTNORM_KEEP_ORDER
#define FASTNORM_KEEP_ORDER_BODY
#endif

static inline int row_float_ok(double mu, double r, double c1, double c2)
{
    return r >= 1e-30 && r <= 1e30 && fabs(mu) <= 1e30 && fabs(c1) <= 1e30 && fabs(c2) <= 1e30;
}

FASTNORM_KEEP_ORDER
static void row_norm_out_float32(const float *restrict x, Py_ssize_t n,
                                 const float *restrict w, const float *restrict b,
                                 double mu, double r, float *restrict y)
{
    FASTNORM_KEEP_ORDER_BODY
    const float mu_hi = (float)mu, mu_lo = (float)(mu - mu_hi), rf = (float)r;
    Py_ssize_t j;
    if (w && b)
        for (j = 0; j < n; j++) y[j] = ((x[j] - mu_hi) - mu_lo) * (rf * w[j]) + b[j];
    else if (w)
        for (j = 0; j < n; j++) y[j] = ((x[j] - mu_hi) - mu_lo) * (rf * w[j]);
    else if (b)
        for (j = 0; j < n; j++) y[j] = ((x[j] - mu_hi) - mu_lo) * rf + b[j];
    else
        for (j = 0; j < n; j++) y[j] = ((x[j] - mu_hi) - mu_lo) * rf;
}

/* dx = r * (dy * w - c1 - xhat * c2), xhat = (x - mu) * r */
FASTNORM_KEEP_ORDER
static void row_norm_dx_float32(const float *restrict dy, const float *restrict x, Py_ssize_t n,
                                const float *restrict w, double mu, double r, double c1,
                                double c2, float *restrict dx)
{
    FASTNORM_KEEP_ORDER_BODY
    const float mu_hi = (float)mu, mu_lo = (float)(mu - mu_hi), rf = (float)r;
    const float c1f = (float)c1, c2f = (float)c2;
    Py_ssize_t j;
    if (w)
        for (j = 0; j < n; j++)
            dx[j] = rf * (dy[j] * w[j] - c1f - (((x[j] - mu_hi) - mu_lo) * rf) * c2f);
    else
        for (j = 0; j < n; j++)
            dx[j] = rf * (dy[j] - c1f - (((x[j] - mu_hi) - mu_lo) * rf) * c2f);
}
#endif
