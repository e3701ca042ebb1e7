/* Block bodies of the channel norms (batch, group, instance, switchable,
 * normalize) for one element type T; included once per type by channels.h.
 *
 * A block is `rows` rows of `cols` contiguous values (leading dimension
 * cols); every statistic is per column, reduced over the block's rows. With
 * cols == 1 (the NCHW view, where a block is a piece of one contiguous
 * channel) the column loops would not vectorize, so each body has a
 * contiguous-vector branch. Statistics in double; see _channels.pxi. */

/* mean[j], m2[j] of column j over the block: the corrected two-pass, the
 * block being small enough to stay in cache between the passes. */
static void FASTNORM_FN(block_moments)(
        const T *restrict x, Py_ssize_t rows, Py_ssize_t cols,
        double *restrict mean, double *restrict m2)
{
    Py_ssize_t i, j;
    if (cols == 1) {
        double s = 0.0, q = 0.0, d_sum = 0.0, mu;
        for (i = 0; i < rows; i++)
            s += x[i];
        mu = s / rows;
        for (i = 0; i < rows; i++) {
            double d = (double)x[i] - mu;
            q += d * d;
            d_sum += d;
        }
        mean[0] = mu + d_sum / rows;
        m2[0] = q - d_sum * d_sum / rows;
        return;
    }
    /* the provisional mean, four rows per sweep (summed in T: the second
     * pass corrects it exactly; an overflow of T is redone below) */
    for (j = 0; j < cols; j++)
        mean[j] = 0.0;
    for (i = 0; i + 4 <= rows; i += 4) {
        const T *restrict xi = x + i * cols;
        for (j = 0; j < cols; j++)
            mean[j] += (double)((xi[j] + xi[j + cols]) + (xi[j + 2 * cols] + xi[j + 3 * cols]));
    }
    for (; i < rows; i++)
        for (j = 0; j < cols; j++)
            mean[j] += x[i * cols + j];
    if (sizeof(T) < sizeof(double)) {
        /* an inf or NaN sum: float32 overflowed near its maximum (or the
         * data holds inf/NaN): that column again in double, so that every
         * finite input gets float64 statistics */
        for (j = 0; j < cols; j++)
            if (!(fabs(mean[j]) < INFINITY)) {
                double s = 0.0;
                for (i = 0; i < rows; i++)
                    s += x[i * cols + j];
                mean[j] = s;
            }
    }
    for (j = 0; j < cols; j++) {
        mean[j] /= rows;
        m2[j] = 0.0;
    }
    {
        /* squared deviations, four rows per sweep; their plain sum (kept on
         * the stack for 64 columns at a time) repairs the provisional mean */
        double dev[64];
        Py_ssize_t j0, j1;
        for (j0 = 0; j0 < cols; j0 += 64) {
            j1 = j0 + 64 < cols ? j0 + 64 : cols;
            for (j = j0; j < j1; j++)
                dev[j - j0] = 0.0;
            for (i = 0; i + 4 <= rows; i += 4) {
                const T *restrict xi = x + i * cols;
                for (j = j0; j < j1; j++) {
                    double c = mean[j];
                    double d0 = (double)xi[j] - c, d1 = (double)xi[j + cols] - c;
                    double d2 = (double)xi[j + 2 * cols] - c, d3 = (double)xi[j + 3 * cols] - c;
                    m2[j] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3);
                    dev[j - j0] += (d0 + d1) + (d2 + d3);
                }
            }
            for (; i < rows; i++) {
                const T *restrict xi = x + i * cols;
                for (j = j0; j < j1; j++) {
                    double d = (double)xi[j] - mean[j];
                    m2[j] += d * d;
                    dev[j - j0] += d;
                }
            }
            for (j = j0; j < j1; j++) {
                mean[j] += dev[j - j0] / rows;
                m2[j] -= dev[j - j0] * dev[j - j0] / rows;
            }
        }
    }
}

/* sdy[j] = sum of dy, sdyx[j] = sum of dy * (x - shift[j]) over the block */
static void FASTNORM_FN(block_dot_sums)(
        const T *restrict dy, const T *restrict x, Py_ssize_t rows, Py_ssize_t cols,
        const double *restrict shift, double *restrict sdy, double *restrict sdyx)
{
    Py_ssize_t i, j;
    if (cols == 1) {
        double c = shift[0], a = 0.0, b = 0.0;
        for (i = 0; i < rows; i++) {
            a += dy[i];
            b += (double)dy[i] * ((double)x[i] - c);
        }
        sdy[0] = a;
        sdyx[0] = b;
        return;
    }
    for (j = 0; j < cols; j++) {
        sdy[j] = 0.0;
        sdyx[j] = 0.0;
    }
    /* four rows per sweep: the sums live in memory (one per column), and
     * loading and storing them for every row was most of this loop's time */
    for (i = 0; i + 4 <= rows; i += 4) {
        const T *restrict dyi = dy + i * cols, *restrict xi = x + i * cols;
        for (j = 0; j < cols; j++) {
            const double c = shift[j];
            const double g0 = dyi[j], g1 = dyi[j + cols];
            const double g2 = dyi[j + 2 * cols], g3 = dyi[j + 3 * cols];
            sdy[j] += (g0 + g1) + (g2 + g3);
            sdyx[j] += (g0 * ((double)xi[j] - c) + g1 * ((double)xi[j + cols] - c))
                       + (g2 * ((double)xi[j + 2 * cols] - c)
                          + g3 * ((double)xi[j + 3 * cols] - c));
        }
    }
    for (; i < rows; i++) {
        const T *restrict dyi = dy + i * cols, *restrict xi = x + i * cols;
        for (j = 0; j < cols; j++) {
            sdy[j] += dyi[j];
            sdyx[j] += (double)dyi[j] * ((double)xi[j] - shift[j]);
        }
    }
}

/* y = (x - shift[j]) * scale[j] + offset[j] */
static void FASTNORM_FN(block_affine)(
        const T *restrict x, Py_ssize_t rows, Py_ssize_t cols,
        const double *restrict shift, const double *restrict scale,
        const double *restrict offset, T *restrict y)
{
    Py_ssize_t i, j;
    if (cols == 1) {
        double c = shift[0], s = scale[0], o = offset[0];
        for (i = 0; i < rows; i++)
            y[i] = (T)(((double)x[i] - c) * s + o);
        return;
    }
    for (i = 0; i < rows; i++) {
        const T *restrict xi = x + i * cols;
        T *restrict yi = y + i * cols;
        for (j = 0; j < cols; j++)
            yi[j] = (T)(((double)xi[j] - shift[j]) * scale[j] + offset[j]);
    }
}

/* dx = dy * p[j] + (x - shift[j]) * q[j] + r[j]: every backward of a norm
 * whose statistics are linear and quadratic means of x has this form. */
static void FASTNORM_FN(block_backward)(
        const T *restrict dy, const T *restrict x, Py_ssize_t rows, Py_ssize_t cols,
        const double *restrict shift, const double *restrict p,
        const double *restrict q, const double *restrict r, T *restrict dx)
{
    Py_ssize_t i, j;
    if (cols == 1) {
        double c = shift[0], a = p[0], b = q[0], o = r[0];
        for (i = 0; i < rows; i++)
            dx[i] = (T)((double)dy[i] * a + ((double)x[i] - c) * b + o);
        return;
    }
    for (i = 0; i < rows; i++) {
        const T *restrict dyi = dy + i * cols, *restrict xi = x + i * cols;
        T *restrict dxi = dx + i * cols;
        for (j = 0; j < cols; j++)
            dxi[j] = (T)((double)dyi[j] * p[j] + ((double)xi[j] - shift[j]) * q[j] + r[j]);
    }
}

/* out[j] = sum of x^2 (p == 2), of |x| (p == 1) or max |x| (p == 0, the
 * infinity norm) over the block */
static void FASTNORM_FN(block_power_sums)(
        const T *restrict x, Py_ssize_t rows, Py_ssize_t cols, int p,
        double *restrict out)
{
    Py_ssize_t i, j;
    for (j = 0; j < cols; j++)
        out[j] = 0.0;
    for (i = 0; i < rows; i++) {
        const T *restrict xi = x + i * cols;
        if (p == 2)
            for (j = 0; j < cols; j++) out[j] += (double)xi[j] * xi[j];
        else if (p == 1)
            for (j = 0; j < cols; j++) out[j] += fabs((double)xi[j]);
        else
            for (j = 0; j < cols; j++) {
                double a = fabs((double)xi[j]);
                out[j] = (a > out[j] || a != a) ? a : out[j];  /* NaN wins */
            }
    }
}

/* base[c, s] = k + alpha * (mean of x^2 over the window of channel c) for
 * the spatial positions [s0, s1) of one NCHW sample x (C, S); base is
 * (C, s1 - s0). The window of c is [c - size/2, c + (size-1)/2] with zero
 * padding, averaged over `size` (as torch, which counts the padding). */
static void FASTNORM_FN(lrn_base)(
        const T *restrict x, Py_ssize_t C, Py_ssize_t S, Py_ssize_t s0, Py_ssize_t s1,
        Py_ssize_t size, double alpha, double k, double *restrict base)
{
    Py_ssize_t c, cc, s, n = s1 - s0;
    Py_ssize_t lo = size / 2, hi = (size - 1) / 2;
    for (c = 0; c < C; c++) {
        Py_ssize_t a = c - lo < 0 ? 0 : c - lo, b = c + hi >= C ? C - 1 : c + hi;
        double *restrict bc = base + c * n;
        for (s = 0; s < n; s++)
            bc[s] = 0.0;
        for (cc = a; cc <= b; cc++) {
            const T *restrict xc = x + cc * S + s0;
            for (s = 0; s < n; s++)
                bc[s] += (double)xc[s] * xc[s];
        }
        for (s = 0; s < n; s++)
            bc[s] = k + alpha / size * bc[s];
    }
}

/* y = x / base^beta over the positions [s0, s1) of one sample */
static void FASTNORM_FN(lrn_forward)(
        const T *restrict x, Py_ssize_t C, Py_ssize_t S, Py_ssize_t s0, Py_ssize_t s1,
        Py_ssize_t size, double alpha, double beta, double k,
        double *restrict base, T *restrict y)
{
    Py_ssize_t c, s, n = s1 - s0;
    FASTNORM_FN(lrn_base)(x, C, S, s0, s1, size, alpha, k, base);
    for (c = 0; c < C; c++) {
        const T *restrict xc = x + c * S + s0;
        const double *restrict bc = base + c * n;
        T *restrict yc = y + c * S + s0;
        for (s = 0; s < n; s++)
            yc[s] = (T)((double)xc[s] / pow(bc[s], beta));
    }
}

/* dx over the positions [s0, s1) of one sample. With d_c = base_c^beta:
 *   dx_i = dy_i / d_i - (2 alpha beta / size) x_i * sum of t_c
 * over the channels c whose window holds i, t_c = dy_c x_c / (d_c base_c).
 * base and t are scratch, (C, s1 - s0) each. */
static void FASTNORM_FN(lrn_backward)(
        const T *restrict dy, const T *restrict x, Py_ssize_t C, Py_ssize_t S,
        Py_ssize_t s0, Py_ssize_t s1, Py_ssize_t size, double alpha, double beta,
        double k, double *restrict base, double *restrict t, T *restrict dx)
{
    Py_ssize_t c, cc, s, n = s1 - s0;
    Py_ssize_t lo = size / 2, hi = (size - 1) / 2;
    double f = 2.0 * alpha * beta / size;
    FASTNORM_FN(lrn_base)(x, C, S, s0, s1, size, alpha, k, base);
    for (c = 0; c < C; c++) {
        const T *restrict dyc = dy + c * S + s0, *restrict xc = x + c * S + s0;
        double *restrict bc = base + c * n, *restrict tc = t + c * n;
        for (s = 0; s < n; s++) {
            double d = pow(bc[s], beta);
            tc[s] = (double)dyc[s] * xc[s] / (d * bc[s]);
            bc[s] = d;
        }
    }
    for (c = 0; c < C; c++) {
        /* channel c lies in the windows of the channels [c - hi, c + lo] */
        Py_ssize_t a = c - hi < 0 ? 0 : c - hi, b = c + lo >= C ? C - 1 : c + lo;
        const T *restrict dyc = dy + c * S + s0, *restrict xc = x + c * S + s0;
        const double *restrict dc = base + c * n;
        T *restrict dxc = dx + c * S + s0;
        for (s = 0; s < n; s++) {
            double acc = 0.0;
            for (cc = a; cc <= b; cc++)
                acc += t[cc * n + s];
            dxc[s] = (T)((double)dyc[s] / dc[s] - f * xc[s] * acc);
        }
    }
}

/* ---- fused, in-cache kernels: statistics and apply in one visit ------------
 *
 * NCHW: x is (N, C, S), each (n, c) a contiguous segment of S values. An item
 * is the set of segments that share statistics: n_count samples from n0
 * times c_count channels from c0 (instance norm 1 x 1, group norm 1 x C/G,
 * batch norm N x 1). Its segments are read twice, the second time from
 * cache when the item fits there. w and b (per channel) may be NULL. */

static void FASTNORM_FN(item_forward)(
        const T *restrict x, Py_ssize_t C, Py_ssize_t S, Py_ssize_t n0, Py_ssize_t n_count,
        Py_ssize_t c0, Py_ssize_t c_count, const T *restrict w, const T *restrict b,
        double eps, T *restrict y, double *mean_out, double *var_out)
{
    Py_ssize_t n, c, s, count = n_count * c_count * S;
    double sum = 0.0, mu, q = 0.0, dev = 0.0, r;
    for (n = n0; n < n0 + n_count; n++)
        for (c = c0; c < c0 + c_count; c++) {
            const T *restrict seg = x + (n * C + c) * S;
            double t = 0.0;
            for (s = 0; s < S; s++)
                t += seg[s];
            sum += t;
        }
    mu = sum / count;
    for (n = n0; n < n0 + n_count; n++)
        for (c = c0; c < c0 + c_count; c++) {
            const T *restrict seg = x + (n * C + c) * S;
            double tq = 0.0, td = 0.0;
            for (s = 0; s < S; s++) {
                double d = (double)seg[s] - mu;
                tq += d * d;
                td += d;
            }
            q += tq;
            dev += td;
        }
    /* corrected two-pass: the deviations' sum repairs the mean */
    mu += dev / count;
    q -= dev * dev / count;
    r = 1.0 / sqrt(q / count + eps);
    *mean_out = mu;
    *var_out = q / count;
    for (n = n0; n < n0 + n_count; n++)
        for (c = c0; c < c0 + c_count; c++) {
            const T *restrict seg = x + (n * C + c) * S;
            T *restrict out = y + (n * C + c) * S;
            double scale = w ? r * w[c] : r, offset = b ? (double)b[c] : 0.0;
            for (s = 0; s < S; s++)
                out[s] = (T)(((double)seg[s] - mu) * scale + offset);
        }
}

/* item_forward also returns the item's (mean, biased variance): the caller
 * computes r = 1 / sqrt(var + eps) exactly as the kernel did.
 *
 * Backward of item_forward given its (mu, r): dx of every segment, and the
 * per-(n, c) sums sdy = sum dy and sdyx = sum dy * (x - mu) (for the weight
 * and bias gradients), indexed n * C + c. */
static void FASTNORM_FN(item_backward)(
        const T *restrict dy, const T *restrict x, Py_ssize_t C, Py_ssize_t S,
        Py_ssize_t n0, Py_ssize_t n_count, Py_ssize_t c0, Py_ssize_t c_count,
        const T *restrict w, double mu, double r, T *restrict dx,
        double *restrict sdy, double *restrict sdyx)
{
    Py_ssize_t n, c, s, count = n_count * c_count * S;
    double sum_g = 0.0, sum_gx = 0.0, q, o;
    for (n = n0; n < n0 + n_count; n++)
        for (c = c0; c < c0 + c_count; c++) {
            const T *restrict g = dy + (n * C + c) * S, *restrict seg = x + (n * C + c) * S;
            double a = 0.0, bsum = 0.0, wc = w ? (double)w[c] : 1.0;
            for (s = 0; s < S; s++) {
                a += g[s];
                bsum += (double)g[s] * ((double)seg[s] - mu);
            }
            sdy[n * C + c] = a;
            sdyx[n * C + c] = bsum;
            sum_g += wc * a;
            sum_gx += wc * bsum;
        }
    q = -r * r * r * sum_gx / count;
    o = -r * sum_g / count;
    for (n = n0; n < n0 + n_count; n++)
        for (c = c0; c < c0 + c_count; c++) {
            const T *restrict g = dy + (n * C + c) * S, *restrict seg = x + (n * C + c) * S;
            T *restrict out = dx + (n * C + c) * S;
            double p = w ? r * w[c] : r;
            for (s = 0; s < S; s++)
                out[s] = (T)((double)g[s] * p + ((double)seg[s] - mu) * q + o);
        }
}

/* Channels-last: one sample x (S, C), normalized per group of C / G
 * consecutive channels (instance norm: G = C). scratch holds 6 * C doubles.
 * The sample is read twice; the second time from the last-level cache when
 * it fits there. */
static void FASTNORM_FN(sample_forward_nhwc)(
        const T *restrict x, Py_ssize_t S, Py_ssize_t C, Py_ssize_t G,
        Py_ssize_t block_rows, const T *restrict w, const T *restrict b, double eps,
        T *restrict y, double *restrict mean_out, double *restrict var_out,
        double *restrict scratch)
{
    double *mean = scratch, *m2 = scratch + C, *bmean = scratch + 2 * C,
           *bm2 = scratch + 3 * C, *shift = scratch + 4 * C, *scale = scratch + 5 * C;
    Py_ssize_t r0, c, g, size = C / G;
    /* per-column moments: in-cache blocks merged in order (Chan) */
    for (r0 = 0; r0 < S; r0 += block_rows) {
        Py_ssize_t rows = S - r0 < block_rows ? S - r0 : block_rows;
        FASTNORM_FN(block_moments)(x + r0 * C, rows, C, r0 ? bmean : mean, r0 ? bm2 : m2);
        if (r0) {
            double n_a = (double)r0, n_b = (double)rows, n = n_a + n_b;
            for (c = 0; c < C; c++) {
                double delta = bmean[c] - mean[c];
                mean[c] += delta * (n_b / n);
                m2[c] += bm2[c] + delta * delta * (n_a * (n_b / n));
            }
        }
    }
    /* per group: merge its columns (equal counts S) */
    for (g = 0; g < G; g++) {
        double mu = 0.0, q = 0.0, r;
        for (c = g * size; c < (g + 1) * size; c++)
            mu += mean[c];
        mu /= size;
        for (c = g * size; c < (g + 1) * size; c++)
            q += m2[c] + S * (mean[c] - mu) * (mean[c] - mu);
        r = 1.0 / sqrt(q / ((double)S * size) + eps);
        mean_out[g] = mu;
        var_out[g] = q / ((double)S * size);
        for (c = g * size; c < (g + 1) * size; c++) {
            shift[c] = mu;
            scale[c] = w ? r * w[c] : r;
            bmean[c] = b ? (double)b[c] : 0.0;  /* the offsets */
        }
    }
    FASTNORM_FN(block_affine)(x, S, C, shift, scale, bmean, y);
}

/* Backward of sample_forward_nhwc given the per-group (mean, rstd): dx, and
 * the per-channel sdy, sdyx (shift: the group mean). scratch: 4 * C doubles. */
static void FASTNORM_FN(sample_backward_nhwc)(
        const T *restrict dy, const T *restrict x, Py_ssize_t S, Py_ssize_t C, Py_ssize_t G,
        const T *restrict w, const double *restrict mean, const double *restrict rstd,
        T *restrict dx, double *restrict sdy, double *restrict sdyx, double *restrict scratch)
{
    double *shift = scratch, *p = scratch + C, *q = scratch + 2 * C, *o = scratch + 3 * C;
    Py_ssize_t c, g, size = C / G;
    double count = (double)S * size;
    for (c = 0; c < C; c++)
        shift[c] = mean[c / size];
    FASTNORM_FN(block_dot_sums)(dy, x, S, C, shift, sdy, sdyx);
    for (g = 0; g < G; g++) {
        double sum_g = 0.0, sum_gx = 0.0, r = rstd[g];
        for (c = g * size; c < (g + 1) * size; c++) {
            double wc = w ? (double)w[c] : 1.0;
            sum_g += wc * sdy[c];
            sum_gx += wc * sdyx[c];
        }
        for (c = g * size; c < (g + 1) * size; c++) {
            p[c] = w ? r * w[c] : r;
            q[c] = -r * r * r * sum_gx / count;
            o[c] = -r * sum_g / count;
        }
    }
    FASTNORM_FN(block_backward)(dy, x, S, C, shift, p, q, o, dx);
}
