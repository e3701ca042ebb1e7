/* Per-row bodies of layer_norm / rms_norm for one element type T; included
 * once per type by row_norms.h. In C for `restrict` and with the weight/bias
 * choices hoisted out of the element loops, so that every loop vectorizes.
 * Statistics in double; see _norms.pxi for the contracts. */

/* Rows in AVX builds keep their sums in 4 vectors of 4 doubles, 16
 * independent lanes: a single accumulator is a chain of dependent adds
 * (~4 cycles each) which bounded short float64 rows (rows of 768 values:
 * 1.5x faster, of 1024: 1.8x). Written with vector types because GCC's
 * vectorizer turned the same loops over 16-element arrays into a slower
 * interleaved form; for float32 rows, with the prefetch every 16 values,
 * it reduced its vectors to one sum every 16 values (a third of the
 * forward's statistics pass). The float32 backward keeps the plain loops:
 * converting 4 floats to a 4-double vector made it slower (its SSE2 build
 * 1.4x slower). The lanes are fixed, so a row's result does not depend on
 * alignment or threads. */
/* The deviation pass prefetches the next row (the n values after x; a
 * prefetch past the end of an array does not fault), so that memory keeps
 * streaming while the passes that work from cache run (the output pass, a
 * second statistics pass) and the next row's first pass reads from cache.
 * ROW_PREFETCH_NEXT(x, n, j): the lines of the next row that match
 * elements [j, j + ROW_LANES) of this one. */
#ifndef ROW_PREFETCH_NEXT
#define ROW_LANES 16
#define ROW_PREFETCH_NEXT(x, n, j) do { \
        const char *next_ = (const char *)((x) + (n) + (j)); \
        Py_ssize_t b_; \
        for (b_ = 0; b_ < (Py_ssize_t)(ROW_LANES * sizeof(*(x))); b_ += 64) \
            __builtin_prefetch(next_ + b_, 0, 3); \
    } while (0)
#endif

#if defined(__AVX__) && !defined(ROW_V4D_DEFINED)
#define ROW_V4D_DEFINED
typedef double row_v4d __attribute__((vector_size(32)));
static inline double row_v4d_total(const row_v4d a[4])
{
    const row_v4d v = (a[0] + a[1]) + (a[2] + a[3]);
    return (v[0] + v[1]) + (v[2] + v[3]);
}
#endif

/* The plain loops: float32 rows, SSE2 builds, and the tails of the lanes. */

/* sum of x */
static inline double FASTNORM_FN(row_sum_plain)(const T *restrict x, Py_ssize_t n)
{
    double s = 0.0;
    Py_ssize_t j;
    for (j = 0; j < n; j++)
        s += x[j];
    return s;
}

/* sum of d and of d * d, d = x - mu */
static inline void FASTNORM_FN(row_dev_sums_plain)(const T *restrict x, Py_ssize_t n, double mu,
                                                   double *sum_d, double *sum_dd)
{
    double s = 0.0, q = 0.0;
    Py_ssize_t j0, j;
    for (j0 = 0; j0 < n; j0 += ROW_LANES) {
        const Py_ssize_t j1 = j0 + ROW_LANES < n ? j0 + ROW_LANES : n;
        ROW_PREFETCH_NEXT(x, n, j0);
        for (j = j0; j < j1; j++) {
            const double d = (double)x[j] - mu;
            s += d;
            q += d * d;
        }
    }
    *sum_d = s;
    *sum_dd = q;
}

/* sum of g and of g * xhat, g = dy * w (dy when w is NULL), xhat = (x - mu) * r;
 * with dw and db (else NULL) also the row's parameter gradients, dw += dy * xhat
 * and db += dy, in the same pass (see row_norm_bwd) */
#define ROW_GRAD_SUMS_LOOP(G) \
    for (j = 0; j < n; j++) { \
        const double xhat = ((double)x[j] - mu) * r, g = (G); \
        s += g; \
        q += g * xhat; \
        if (dw) { \
            dw[j] += (double)dy[j] * xhat; \
            db[j] += dy[j]; \
        } \
    }
static inline void FASTNORM_FN(row_grad_sums_plain)(const T *restrict dy, const T *restrict x,
                                                    Py_ssize_t n, const T *restrict w, double mu,
                                                    double r, double *sum_g, double *sum_gx,
                                                    double *restrict dw, double *restrict db)
{
    double s = 0.0, q = 0.0;
    Py_ssize_t j;
    if (w)
        ROW_GRAD_SUMS_LOOP((double)dy[j] * w[j])
    else
        ROW_GRAD_SUMS_LOOP((double)dy[j])
    *sum_g = s;
    *sum_gx = q;
}
#undef ROW_GRAD_SUMS_LOOP

#if defined(__AVX__)
typedef T FASTNORM_FN(row_v4) __attribute__((vector_size(4 * sizeof(T))));

/* 4 values from x (any alignment) as doubles */
static inline row_v4d FASTNORM_FN(row_load4)(const T *x)
{
    FASTNORM_FN(row_v4) v;
    memcpy(&v, x, sizeof v);
    return __builtin_convertvector(v, row_v4d);
}

/* sum of x */
static inline double FASTNORM_FN(row_sum_lanes)(const T *restrict x, Py_ssize_t n)
{
    row_v4d acc[4] = {{0.0}};
    Py_ssize_t j = 0, k;
    for (; j + ROW_LANES <= n; j += ROW_LANES)
        for (k = 0; k < 4; k++)
            acc[k] += FASTNORM_FN(row_load4)(x + j + 4 * k);
    return FASTNORM_FN(row_sum_plain)(x + j, n - j) + row_v4d_total(acc);
}

/* sum of d and of d * d, d = x - mu */
static inline void FASTNORM_FN(row_dev_sums_lanes)(const T *restrict x, Py_ssize_t n, double mu,
                                                   double *sum_d, double *sum_dd)
{
    row_v4d acc_d[4] = {{0.0}}, acc_dd[4] = {{0.0}};
    const row_v4d mu4 = {mu, mu, mu, mu};
    double s = 0.0, q = 0.0;
    Py_ssize_t j = 0, k;
    for (; j + ROW_LANES <= n; j += ROW_LANES) {
        ROW_PREFETCH_NEXT(x, n, j);
        for (k = 0; k < 4; k++) {
            const row_v4d d = FASTNORM_FN(row_load4)(x + j + 4 * k) - mu4;
            acc_d[k] += d;
            acc_dd[k] += d * d;
        }
    }
    FASTNORM_FN(row_dev_sums_plain)(x + j, n - j, mu, &s, &q);
    *sum_d = s + row_v4d_total(acc_d);
    *sum_dd = q + row_v4d_total(acc_dd);
}

/* the forward's statistics: the lanes */
#define ROW_STAT_SUMS(name) FASTNORM_FN(name##_lanes)
#else
#define ROW_STAT_SUMS(name) FASTNORM_FN(name##_plain)
#endif

#if defined(__AVX__) && !FASTNORM_T_IS_FLOAT
/* row_grad_sums_plain in the lanes */
static inline void FASTNORM_FN(row_grad_sums_lanes)(const T *restrict dy, const T *restrict x,
                                                    Py_ssize_t n, const T *restrict w, double mu,
                                                    double r, double *sum_g, double *sum_gx,
                                                    double *restrict dw, double *restrict db)
{
    row_v4d acc_g[4] = {{0.0}}, acc_gx[4] = {{0.0}};
    const row_v4d mu4 = {mu, mu, mu, mu}, r4 = {r, r, r, r};
    double s = 0.0, q = 0.0;
    Py_ssize_t j = 0, k;
    for (; j + ROW_LANES <= n; j += ROW_LANES)
        for (k = 0; k < 4; k++) {
            const row_v4d dy4 = FASTNORM_FN(row_load4)(dy + j + 4 * k);
            const row_v4d xhat = (FASTNORM_FN(row_load4)(x + j + 4 * k) - mu4) * r4;
            const row_v4d g = w ? dy4 * FASTNORM_FN(row_load4)(w + j + 4 * k) : dy4;
            acc_g[k] += g;
            acc_gx[k] += g * xhat;
            if (dw) {  /* (T is double here: row_load4 reads dw and db as they are) */
                const row_v4d dw4 = FASTNORM_FN(row_load4)(dw + j + 4 * k) + dy4 * xhat;
                const row_v4d db4 = FASTNORM_FN(row_load4)(db + j + 4 * k) + dy4;
                memcpy(dw + j + 4 * k, &dw4, sizeof dw4);
                memcpy(db + j + 4 * k, &db4, sizeof db4);
            }
        }
    FASTNORM_FN(row_grad_sums_plain)(dy + j, x + j, n - j, w ? w + j : NULL, mu, r, &s, &q,
                                     dw ? dw + j : NULL, dw ? db + j : NULL);
    *sum_g = s + row_v4d_total(acc_g);
    *sum_gx = q + row_v4d_total(acc_gx);
}

/* the backward's sums: the lanes for float64 */
#define ROW_GRAD_SUMS(name) FASTNORM_FN(name##_lanes)
#else
#define ROW_GRAD_SUMS(name) FASTNORM_FN(name##_plain)
#endif

static void FASTNORM_FN(row_norm_fwd)(
        const T *restrict x, Py_ssize_t n, const T *restrict w, const T *restrict b,
        double eps, int rms, T *restrict y, double *mean_out, double *rstd_out)
{
    Py_ssize_t j;
    /* (multiplications by 1/n: a chain of divisions was a third of a short row's time) */
    const double inv_n = 1.0 / n;
    double mu = 0.0, q = 0.0, s = 0.0, r;
    if (!rms) {
        /* One pass over the row for the sums of the deviations and their
         * squares about its first value, enough where the mean lies near
         * it (near_center.h). Otherwise the provisional mean, then the
         * deviations about it, from the row now in cache. */
        mu = (double)x[0];
        ROW_STAT_SUMS(row_dev_sums)(x, n, mu, &s, &q);
        if (!sums_near_center(s * (s * inv_n), q)) {
            mu = ROW_STAT_SUMS(row_sum)(x, n) * inv_n;
            ROW_STAT_SUMS(row_dev_sums)(x, n, mu, &s, &q);
        }
        /* corrected two-pass: the deviations' sum repairs the mean */
        mu += s * inv_n;
        q -= s * s * inv_n;
    } else {
        ROW_STAT_SUMS(row_dev_sums)(x, n, mu, &s, &q);
    }
    r = 1.0 / sqrt(q * inv_n + eps);
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

/* dx = r * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w (rms: no mean(g));
 * with dw and db (else NULL) also dw += dy * xhat and db += dy over the row.
 * The parameter gradients need only the saved mu and r, so they are summed
 * in the first pass, which waits on memory for dy and x, rather than in a
 * third pass from cache (a third of the float32 time at 1 thread). */
static void FASTNORM_FN(row_norm_bwd)(
        const T *restrict dy, const T *restrict x, Py_ssize_t n, const T *restrict w,
        double mu, double r, int rms, T *restrict dx, double *restrict dw, double *restrict db)
{
    Py_ssize_t j;
    double sum_g = 0.0, sum_gx = 0.0, c1, c2;
    ROW_GRAD_SUMS(row_grad_sums)(dy, x, n, w, mu, r, &sum_g, &sum_gx, dw, db);
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

#undef ROW_STAT_SUMS
#undef ROW_GRAD_SUMS
