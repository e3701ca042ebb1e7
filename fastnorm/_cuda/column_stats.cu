// Statistics of a C-contiguous (n_rows, n_cols) matrix: per-column moments
// (plain, NaN-ignoring, weighted by row), min/max and max-abs, and per-row
// moments (the GPU side of ext/_stats.pxi).
//
// Column statistics are a two-stage grid reduction. Stage 1 (*_partial): a
// 2-D grid, blockIdx.x a tile of blockDim.x columns and blockIdx.y a block
// of rows_per_block rows; blockDim.y threads share each column and are
// reduced in shared memory; one partial per (row block, column) at
// partial[blockIdx.y * n_cols + j]. Stage 2 (*_merge): one warp per column
// merges its row blocks in a fixed order, in double. rows_per_block depends
// on the shape only (_launch.py), so results are bitwise reproducible.
//
// Outputs are float64, as the CPU kernels': count, mean, M2 (sum of squared
// deviations) for moments; min, max (+inf, -inf for a column without a
// non-NaN value) and the count of non-NaN values for min/max; max |x| (-inf
// without a non-NaN value) for max-abs.
#include "common.cuh"

// Stage 1 of the column moments. weights (one per row, may be null) weight
// the rows; with ignore_nan, NaNs are skipped (count is the weight of the
// rest), otherwise a NaN makes its column's mean and M2 NaN.
template <typename T, typename A>
__global__ void __launch_bounds__(256)
col_moments_partial(const T* x, long long n_rows, long long n_cols, long long rows_per_block,
                    const A* weights, int ignore_nan, Moments<A>* partial)
{
    const long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long r0 = blockIdx.y * rows_per_block;
    const long long r1 = min(r0 + rows_per_block, n_rows);
    // every block of column j shifts by its first value (see common.cuh)
    const A shift = j < n_cols ? finite_or_zero(to_acc<A>(x[j])) : A(0);
    Moments<A> s = Moments<A>::zero();
    if (j < n_cols) s = column_moments(x, n_cols, j, r0, r1, weights, ignore_nan != 0, shift);
    s = reduce_over_y(s);
    s.mean += shift;  // large counts from here on: unshifted partials merge accurately
    if (threadIdx.y == 0 && j < n_cols) partial[blockIdx.y * n_cols + j] = s;
}

// Stage 2: count[j], mean[j], m2[j] from the n_blocks partials of column j.
template <typename T, typename A>
__global__ void __launch_bounds__(256)
col_moments_merge(const Moments<A>* partial, long long n_blocks, long long n_cols,
                  double* count, double* mean, double* m2)
{
    const long long j = warp_index();
    if (j >= n_cols) return;
    const Moments<double> s = warp_merge<Moments<double>>(n_blocks, [&](long long b) {
        const Moments<A> p = partial[b * n_cols + j];
        return Moments<double>{p.n, p.mean, p.m2};
    });
    if (threadIdx.x % 32 == 0) {
        count[j] = s.n;
        mean[j] = s.mean;
        m2[j] = s.m2;
    }
}

// Stage 1 of the NaN-ignoring column min/max (exact: A holds every T).
template <typename T, typename A>
__global__ void __launch_bounds__(256)
col_min_max_partial(const T* x, long long n_rows, long long n_cols, long long rows_per_block,
                    MinMax<A>* partial)
{
    const long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long r0 = blockIdx.y * rows_per_block;
    const long long r1 = min(r0 + rows_per_block, n_rows);
    MinMax<A> s = MinMax<A>::zero();
    if (j < n_cols)
        for (long long i = r0 + threadIdx.y; i < r1; i += blockDim.y) {
            const A v = to_acc<A>(x[i * n_cols + j]);
            // comparisons with NaN are false: NaNs are skipped
            if (v < s.mn) s.mn = v;
            if (v > s.mx) s.mx = v;
            s.n += v == v ? A(1) : A(0);
        }
    s = reduce_over_y(s);
    if (threadIdx.y == 0 && j < n_cols) partial[blockIdx.y * n_cols + j] = s;
}

template <typename T, typename A>
__global__ void __launch_bounds__(256)
col_min_max_merge(const MinMax<A>* partial, long long n_blocks, long long n_cols,
                  double* mn, double* mx, double* count)
{
    const long long j = warp_index();
    if (j >= n_cols) return;
    const MinMax<double> s = warp_merge<MinMax<double>>(n_blocks, [&](long long b) {
        const MinMax<A> p = partial[b * n_cols + j];
        return MinMax<double>{p.mn, p.mx, p.n};
    });
    if (threadIdx.x % 32 == 0) {
        mn[j] = s.mn;
        mx[j] = s.mx;
        count[j] = s.n;
    }
}

// Stage 1 of the NaN-ignoring column max |x|.
template <typename T, typename A>
__global__ void __launch_bounds__(256)
col_max_abs_partial(const T* x, long long n_rows, long long n_cols, long long rows_per_block,
                    Max1<A>* partial)
{
    const long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long r0 = blockIdx.y * rows_per_block;
    const long long r1 = min(r0 + rows_per_block, n_rows);
    Max1<A> s = Max1<A>::zero();
    if (j < n_cols)
        for (long long i = r0 + threadIdx.y; i < r1; i += blockDim.y) {
            const A v = fabs(to_acc<A>(x[i * n_cols + j]));
            if (v > s.m) s.m = v;  // false for NaN
        }
    s = reduce_over_y(s);
    if (threadIdx.y == 0 && j < n_cols) partial[blockIdx.y * n_cols + j] = s;
}

template <typename T, typename A>
__global__ void __launch_bounds__(256)
col_max_abs_merge(const Max1<A>* partial, long long n_blocks, long long n_cols, double* out)
{
    const long long j = warp_index();
    if (j >= n_cols) return;
    const Max1<double> s = warp_merge<Max1<double>>(n_blocks, [&](long long b) {
        return Max1<double>{partial[b * n_cols + j].m};
    });
    if (threadIdx.x % 32 == 0) out[j] = s.m;
}

// Per-row moments, launched row-shaped (_launch.row_shape): one warp or one
// block per row, 16-byte vectors of x when the row is aligned. weights (one
// per column, may be null) and ignore_nan as in col_moments_partial.
template <typename T, typename A>
__global__ void __launch_bounds__(1024, 1)
row_moments(const T* x, long long n_rows, long long n_cols, const A* weights, int ignore_nan,
            double* count, double* mean, double* m2)
{
    constexpr int V = Vec<T>::N;
    const long long row = row_index();
    if (row >= n_rows) return;
    const T* xr = x + row * n_cols;
    const long long nv = aligned16(xr) ? n_cols / V : 0;
    const int t = threadIdx.x, nt = blockDim.x;
    const A shift = finite_or_zero(to_acc<A>(xr[0]));

    Moments<A> s = Moments<A>::zero();
    for (long long i = t; i < nv; i += nt) {
        const Vec<T> xv = load_vec(xr + i * V);
        A v[V], w[V];
#pragma unroll
        for (int u = 0; u < V; ++u) {
            v[u] = to_acc<A>(xv.v[u]) - shift;
            w[u] = weights ? weights[i * V + u] : A(1);
            if (ignore_nan && v[u] != v[u]) v[u] = w[u] = A(0);
        }
        s = combine(s, chunk_moments(v, w));
    }
    for (long long i = nv * V + t; i < n_cols; i += nt) {
        A v[1] = {to_acc<A>(xr[i]) - shift}, w[1] = {weights ? weights[i] : A(1)};
        if (ignore_nan && v[0] != v[0]) v[0] = w[0] = A(0);
        s = combine(s, chunk_moments(v, w));
    }
    s = group_reduce(s);
    if (t == 0) {
        count[row] = s.n;
        mean[row] = s.n == A(0) ? s.mean : s.mean + shift;  // nothing seen: 0 (or NaN)
        m2[row] = s.m2;
    }
}
