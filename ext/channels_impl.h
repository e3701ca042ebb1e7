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
    for (j = 0; j < cols; j++) {
        mean[j] = 0.0;
        m2[j] = 0.0;
    }
    for (i = 0; i < rows; i++)
        for (j = 0; j < cols; j++)
            mean[j] += x[i * cols + j];
    for (j = 0; j < cols; j++)
        mean[j] /= rows;
    {
        /* m2 holds the squared deviations; the deviations' sum (here in a
         * second accumulator per column, kept on the stack in chunks) repairs
         * the provisional mean. */
        double dev[64];
        Py_ssize_t j0, j1;
        for (j0 = 0; j0 < cols; j0 += 64) {
            j1 = j0 + 64 < cols ? j0 + 64 : cols;
            for (j = j0; j < j1; j++)
                dev[j - j0] = 0.0;
            for (i = 0; i < rows; i++) {
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
    for (i = 0; i < rows; i++) {
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
