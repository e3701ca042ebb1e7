/* Unweighted column passes of the moments kernel for one element type T;
 * included once per type by moments_cols.h. In C for `restrict`: the
 * compiler then vectorizes the column loop without a run-time aliasing
 * check on every row sweep. See _moments_cols_block in _stats.pxi. */

/* sum[j] = sum over rows [a, b) of (x[i, j] - K[j]) */
static void FASTNORM_FN(shifted_sums)(
        const T *restrict X, Py_ssize_t n_cols, Py_ssize_t a, Py_ssize_t b,
        const double *restrict K, double *restrict sum)
{
    Py_ssize_t i, j;
    for (j = 0; j < n_cols; j++)
        sum[j] = 0.0;
    for (i = a; i + 4 <= b; i += 4) {  /* four rows per sweep */
        const T *restrict x = X + i * n_cols;
        for (j = 0; j < n_cols; j++) {
            /* In X's dtype: for float32 twice as wide and no conversion per
             * element. Only the sub-chunk's provisional mean comes from
             * here; the squared-deviation pass below corrects it exactly. */
            T k = (T)K[j];
            sum[j] += (double)(((x[j] - k) + (x[j + n_cols] - k))
                               + ((x[j + 2 * n_cols] - k) + (x[j + 3 * n_cols] - k)));
        }
    }
    for (; i < b; i++) {
        const T *restrict x = X + i * n_cols;
        for (j = 0; j < n_cols; j++)
            sum[j] += (double)(x[j] - (T)K[j]);
    }
}

/* After shifted_sums: a column whose sum came out inf or NaN is summed
 * again in double (for float32, whose provisional sums can overflow near its
 * maximum; also an inf or NaN in the data, which gives the same result
 * again). With skip_nan, NaN sums are left to the caller's NaN-skipping
 * path, which redoes them in double anyway. Called once per redone
 * sub-chunk; in its own function so that the rare strided loop leaves the
 * caller's code as it was. */
static void FASTNORM_FN(resum_non_finite)(
        const T *restrict X, Py_ssize_t n_cols, Py_ssize_t a, Py_ssize_t b,
        const double *restrict K, double *restrict sum, int skip_nan)
{
    Py_ssize_t i, j;
    int any = 0;
    for (j = 0; j < n_cols; j++)  /* the common case: one vectorized test */
        any |= !(fabs(sum[j]) < INFINITY);
    if (!any)
        return;
    for (j = 0; j < n_cols; j++) {
        double s = sum[j];
        if (fabs(s) < INFINITY || (skip_nan && s != s))
            continue;
        s = 0.0;
        for (i = a; i < b; i++)
            s += (double)X[i * n_cols + j] - K[j];
        sum[j] = s;
    }
}

/* m2[j] = sum over rows [a, b) of (x[i, j] - center[j])^2 and
 * dev[j] = sum of (x[i, j] - center[j]): with dev, the caller corrects
 * center to the exact mean (the corrected two-pass algorithm):
 * mean = center + dev / n, M2 = m2 - dev^2 / n.
 * Each sweep of four rows reads ahead (read_ahead.h). */
static void FASTNORM_FN(squared_deviations)(
        const T *restrict X, Py_ssize_t n_cols, Py_ssize_t a, Py_ssize_t b,
        const double *restrict center, double *restrict m2, double *restrict dev)
{
    Py_ssize_t i, j;
    for (j = 0; j < n_cols; j++) {
        m2[j] = 0.0;
        dev[j] = 0.0;
    }
    for (i = a; i + 4 <= b; i += 4) {
        const T *restrict x = X + i * n_cols;
        READ_AHEAD(x, 4 * n_cols * (Py_ssize_t)sizeof(T));
        for (j = 0; j < n_cols; j++) {
            double c = center[j];
            double d0 = (double)x[j] - c, d1 = (double)x[j + n_cols] - c;
            double d2 = (double)x[j + 2 * n_cols] - c, d3 = (double)x[j + 3 * n_cols] - c;
            m2[j] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3);
            dev[j] += (d0 + d1) + (d2 + d3);
        }
    }
    for (; i < b; i++) {
        const T *restrict x = X + i * n_cols;
        for (j = 0; j < n_cols; j++) {
            double d = (double)x[j] - center[j];
            m2[j] += d * d;
            dev[j] += d;
        }
    }
}

/* The corrected two-pass step for one sub-chunk [a, b) of a row whose
 * provisional mean `center` came from sums of x - K with K far from the
 * values for their spread (those sums then lose digits): the sum of the
 * deviations from center (weights w, or NULL; NaNs skipped with ignore_nan;
 * w_sum: their total weight) gives the exact mean, returned minus base, and
 * corrects *m2 (the squares' sum about center) to the M2. Evaluated as
 * written (see moments_cols.h); four independent sums, which the compiler
 * vectorizes without reassociating anything. */
static double FASTNORM_FN(row_corrected_mean)(
        const T *restrict x, Py_ssize_t a, Py_ssize_t b, const double *restrict w,
        int ignore_nan, double w_sum, double base, double center, double *m2)
{
    Py_ssize_t j = a;
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, dev, d;
    if (w == NULL && !ignore_nan) {
        for (; j + 4 <= b; j += 4) {
            s0 += (double)x[j] - center;
            s1 += (double)x[j + 1] - center;
            s2 += (double)x[j + 2] - center;
            s3 += (double)x[j + 3] - center;
        }
    }
    for (; j < b; j++) {
        double v = (double)x[j];
        if (ignore_nan && v != v)
            continue;
        s0 += (w ? w[j] : 1.0) * (v - center);
    }
    dev = (s0 + s1) + (s2 + s3);
    d = dev / w_sum;
    if (!(fabs(d) < INFINITY))
        return center - base;
    *m2 = *m2 - dev * d;
    return (center - base) + d;
}
