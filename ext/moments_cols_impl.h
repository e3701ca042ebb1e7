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

/* m2[j] = sum over rows [a, b) of (x[i, j] - center[j])^2 and
 * dev[j] = sum of (x[i, j] - center[j]): with dev, the caller corrects the
 * provisional center to the exact mean (the corrected two-pass algorithm):
 * mean = center + dev / n, M2 = m2 - dev^2 / n. */
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
