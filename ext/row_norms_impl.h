/* Per-row bodies of layer_norm / rms_norm for one element type T; included
 * once per type by row_norms.h. In C for `restrict` and with the weight/bias
 * choices hoisted out of the element loops, so that every loop vectorizes.
 * Statistics in double; see _norms.pxi for the contracts. */

static void FASTNORM_FN(row_norm_fwd)(
        const T *restrict x, Py_ssize_t n, const T *restrict w, const T *restrict b,
        double eps, int rms, T *restrict y, double *mean_out, double *rstd_out)
{
    Py_ssize_t j;
    double mu = 0.0, q = 0.0, s = 0.0, r;
    if (!rms) {
        for (j = 0; j < n; j++)
            s += x[j];
        mu = s / n;
        s = 0.0;
    }
    for (j = 0; j < n; j++) {
        double d = (double)x[j] - mu;
        q += d * d;
        s += d;
    }
    if (!rms) {  /* corrected two-pass: the deviations' sum repairs the mean */
        mu += s / n;
        q -= s * s / n;
    }
    r = 1.0 / sqrt(q / n + eps);
    *mean_out = mu;
    *rstd_out = r;
#if FASTNORM_T_IS_FLOAT
    if (row_float_ok(mu, r, 0.0, 0.0)) {
        row_norm_out_float32(x, n, w, b, mu, r, y);
        return;
    }
#endif
    if (w && b)
        for (j = 0; j < n; j++) y[j] = (T)(((double)x[j] - mu) * r * w[j] + b[j]);
    else if (w)
        for (j = 0; j < n; j++) y[j] = (T)(((double)x[j] - mu) * r * w[j]);
    else if (b)
        for (j = 0; j < n; j++) y[j] = (T)(((double)x[j] - mu) * r + b[j]);
    else
        for (j = 0; j < n; j++) y[j] = (T)(((double)x[j] - mu) * r);
}

/* dx = r * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w (rms: no mean(g)) */
static void FASTNORM_FN(row_norm_bwd)(
        const T *restrict dy, const T *restrict x, Py_ssize_t n, const T *restrict w,
        double mu, double r, int rms, T *restrict dx)
{
    Py_ssize_t j;
    double sum_g = 0.0, sum_gx = 0.0, c1, c2;
    if (w) {
        for (j = 0; j < n; j++) {
            double g = (double)dy[j] * w[j];
            sum_g += g;
            sum_gx += g * (((double)x[j] - mu) * r);
        }
    } else {
        for (j = 0; j < n; j++) {
            double g = dy[j];
            sum_g += g;
            sum_gx += g * (((double)x[j] - mu) * r);
        }
    }
    c1 = rms ? 0.0 : sum_g / n;
    c2 = sum_gx / n;
#if FASTNORM_T_IS_FLOAT
    if (row_float_ok(mu, r, c1, c2)) {
        row_norm_dx_float32(dy, x, n, w, mu, r, c1, c2, dx);
        return;
    }
#endif
    if (w)
        for (j = 0; j < n; j++)
            dx[j] = (T)(r * ((double)dy[j] * w[j] - c1 - (((double)x[j] - mu) * r) * c2));
    else
        for (j = 0; j < n; j++)
            dx[j] = (T)(r * ((double)dy[j] - c1 - (((double)x[j] - mu) * r) * c2));
}

/* dw += dy * xhat, db += dy over one row */
static void FASTNORM_FN(row_norm_param_grads)(
        const T *restrict dy, const T *restrict x, Py_ssize_t n, double mu, double r,
        double *restrict dw, double *restrict db)
{
    Py_ssize_t j;
    for (j = 0; j < n; j++) {
        dw[j] += (double)dy[j] * (((double)x[j] - mu) * r);
        db[j] += dy[j];
    }
}
