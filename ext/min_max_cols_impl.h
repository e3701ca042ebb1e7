/* Body of the column min/max block kernel for one element type T; included
 * once per type by min_max_cols.h. Written in C for `restrict`: without it
 * the compiler cannot prove the scratch rows apart from X and does not
 * vectorize. See _min_max_cols_block in _stats.pxi for the contract. Each
 * sweep of four rows reads ahead (read_ahead.h). */
static void FASTNORM_FN(min_max_cols_block)(
        const T *restrict X, Py_ssize_t n_cols, Py_ssize_t r0, Py_ssize_t r1,
        T *restrict lo, T *restrict hi, T *restrict nan_seen)
{
    Py_ssize_t i, j;
    for (j = 0; j < n_cols; j++) {
        lo[j] = (T)INFINITY;
        hi[j] = (T)-INFINITY;
        nan_seen[j] = 0;
    }
    for (i = r0; i + 4 <= r1; i += 4) {  /* four rows per sweep */
        const T *restrict x = X + i * n_cols;
        READ_AHEAD(x, 4 * n_cols * (Py_ssize_t)sizeof(T));
        for (j = 0; j < n_cols; j++) {
            T a = x[j], b = x[j + n_cols], c = x[j + 2 * n_cols], d = x[j + 3 * n_cols];
            T m = lo[j];
            m = a < m ? a : m; m = b < m ? b : m; m = c < m ? c : m; m = d < m ? d : m;
            lo[j] = m;
            m = hi[j];
            m = a > m ? a : m; m = b > m ? b : m; m = c > m ? c : m; m = d > m ? d : m;
            hi[j] = m;
            nan_seen[j] += ((T)(a != a) + (T)(b != b)) + ((T)(c != c) + (T)(d != d));
        }
    }
    for (; i < r1; i++) {
        const T *restrict x = X + i * n_cols;
        for (j = 0; j < n_cols; j++) {
            T a = x[j];
            lo[j] = a < lo[j] ? a : lo[j];
            hi[j] = a > hi[j] ? a : hi[j];
            nan_seen[j] += (T)(a != a);
        }
    }
}

/* Row version: min, max and NaN count of one contiguous row x[0:n]. The
 * row is read as an (n / 8, 8) matrix by the column kernel above, whose
 * eight independent lanes vectorize (the compiler does not reorder IEEE
 * min/max reductions itself), then the lanes and the tail are folded in. */
static void FASTNORM_FN(min_max_row)(const T *restrict x, Py_ssize_t n,
                                     T *lo_out, T *hi_out, T *nan_out)
{
    T lo[8], hi[8], ns[8];
    Py_ssize_t j, k, n_main = n / 8;
    FASTNORM_FN(min_max_cols_block)(x, 8, 0, n_main, lo, hi, ns);
    for (k = 1; k < 8; k++) {
        lo[0] = lo[k] < lo[0] ? lo[k] : lo[0];
        hi[0] = hi[k] > hi[0] ? hi[k] : hi[0];
        ns[0] += ns[k];
    }
    for (j = 8 * n_main; j < n; j++) {
        T a = x[j];
        lo[0] = a < lo[0] ? a : lo[0];
        hi[0] = a > hi[0] ? a : hi[0];
        ns[0] += (T)(a != a);
    }
    *lo_out = lo[0];
    *hi_out = hi[0];
    *nan_out = ns[0];
}
