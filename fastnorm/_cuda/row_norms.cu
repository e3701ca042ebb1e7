// Row norms: layer_norm and rms_norm over the rows of a C-contiguous
// (n_rows, n) array, forward and backward (the GPU side of ext/_norms.pxi).
//
// Row kernels are launched row-shaped (_launch.row_shape): one warp per row
// for n <= 1024, one block per row otherwise. A thread takes 16-byte vectors
// i = t, t + nt, ... of its row when every array is aligned at that row, then
// the scalar tail; the row is visited twice (statistics, then the output),
// the second time from L1/L2 where this warp or block just read it.
// __launch_bounds__(1024, 1): any block up to 1024 threads launches, and
// ptxas may use the 64 registers per thread that allows (no spills).
//
// The saved statistics mean and rstd are in A; rms_norm saves mean = 0. The
// weight and bias gradients are column sums over the rows: per-block
// partials, then a merge in a fixed order (deterministic), in double.
#include "common.cuh"

// The output of one element: ((x - mu) * r) * w + b, w and b optional.
template <typename A>
__device__ __forceinline__ A normalized(A xv, A mu, A r, bool has_w, A w, bool has_b, A b)
{
    A o = (xv - mu) * r;
    if (has_w) o *= w;
    if (has_b) o += b;
    return o;
}

// y = layer_norm(x) (rms: rms_norm) per row; weight and bias (n) may be null.
// mean[row], rstd[row] = the row's mean (0 for rms) and 1 / sqrt(var + eps).
template <typename T, typename A>
__global__ void __launch_bounds__(1024, 1)
layer_norm_fwd(const T* x, const T* weight, const T* bias, long long n_rows, long long n,
               double eps, int rms, T* y, A* mean, A* rstd)
{
    constexpr int V = Vec<T>::N;
    const long long row = row_index();
    if (row >= n_rows) return;  // a whole warp (warp per row) or none
    const T* xr = x + row * n;
    T* yr = y + row * n;
    const bool vec = aligned16(xr) && aligned16(yr) && aligned16_or_null(weight) &&
                     aligned16_or_null(bias);
    const long long nv = vec ? n / V : 0;  // vectors; [nv * V, n) is the scalar tail
    const int t = threadIdx.x, nt = blockDim.x;

    // statistics of x - shift (see common.cuh); mu is the shifted mean
    A shift = A(0), mu = A(0), var;
    if (rms) {
        A q = A(0);
        for (long long i = t; i < nv; i += nt) {
            const Vec<T> xv = load_vec(xr + i * V);
#pragma unroll
            for (int u = 0; u < V; ++u) {
                const A a = to_acc<A>(xv.v[u]);
                q += a * a;
            }
        }
        for (long long i = nv * V + t; i < n; i += nt) {
            const A a = to_acc<A>(xr[i]);
            q += a * a;
        }
        var = group_reduce(Sum2<A>{q, A(0)}).a / A(n);
    } else {
        shift = finite_or_zero(to_acc<A>(xr[0]));
        Moments<A> s = Moments<A>::zero();
        for (long long i = t; i < nv; i += nt) {
            const Vec<T> xv = load_vec(xr + i * V);
            A a[V];
#pragma unroll
            for (int u = 0; u < V; ++u) a[u] = to_acc<A>(xv.v[u]) - shift;
            s = combine(s, chunk_moments(a));
        }
        for (long long i = nv * V + t; i < n; i += nt)
            s = combine(s, Moments<A>{A(1), to_acc<A>(xr[i]) - shift, A(0)});
        s = group_reduce(s);
        mu = s.mean;
        var = s.m2 / A(n);
    }
    const A r = A(1) / sqrt(var + A(eps));
    if (t == 0) {
        mean[row] = mu + shift;
        rstd[row] = r;
    }

    // (x - shift) - mu rather than x - (mu + shift): exact centering of data
    // far from zero, whose rounded mean would be off by an ulp of the mean
    const bool has_w = weight != nullptr, has_b = bias != nullptr;
    for (long long i = t; i < nv; i += nt) {
        const Vec<T> xv = load_vec(xr + i * V);
        Vec<T> wv, bv, yv;
        if (has_w) wv = load_vec(weight + i * V);
        if (has_b) bv = load_vec(bias + i * V);
#pragma unroll
        for (int u = 0; u < V; ++u)
            yv.v[u] = from_acc<T>(normalized(to_acc<A>(xv.v[u]) - shift, mu, r,
                                             has_w, has_w ? to_acc<A>(wv.v[u]) : A(1),
                                             has_b, has_b ? to_acc<A>(bv.v[u]) : A(0)));
        store_vec(yr + i * V, yv);
    }
    for (long long i = nv * V + t; i < n; i += nt)
        yr[i] = from_acc<T>(normalized(to_acc<A>(xr[i]) - shift, mu, r,
                                       has_w, has_w ? to_acc<A>(weight[i]) : A(1),
                                       has_b, has_b ? to_acc<A>(bias[i]) : A(0)));
}

// dx of layer_norm_fwd (rms: rms_norm) given its saved mean and rstd:
// dx = r * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w, xhat = (x - mu) * r
// (rms: no mean(g) term). weight may be null.
template <typename T, typename A>
__global__ void __launch_bounds__(1024, 1)
layer_norm_bwd(const T* dy, const T* x, const T* weight, const A* mean, const A* rstd,
               long long n_rows, long long n, int rms, T* dx)
{
    constexpr int V = Vec<T>::N;
    const long long row = row_index();
    if (row >= n_rows) return;
    const T* gr = dy + row * n;
    const T* xr = x + row * n;
    T* dxr = dx + row * n;
    const bool vec = aligned16(gr) && aligned16(xr) && aligned16(dxr) && aligned16_or_null(weight);
    const long long nv = vec ? n / V : 0;
    const int t = threadIdx.x, nt = blockDim.x;
    const bool has_w = weight != nullptr;
    const A mu = mean[row], r = rstd[row];

    Sum2<A> s = Sum2<A>::zero();  // (sum of g, sum of g * xhat)
    for (long long i = t; i < nv; i += nt) {
        const Vec<T> gv = load_vec(gr + i * V), xv = load_vec(xr + i * V);
        Vec<T> wv;
        if (has_w) wv = load_vec(weight + i * V);
#pragma unroll
        for (int u = 0; u < V; ++u) {
            const A g = to_acc<A>(gv.v[u]) * (has_w ? to_acc<A>(wv.v[u]) : A(1));
            s.a += g;
            s.b += g * ((to_acc<A>(xv.v[u]) - mu) * r);
        }
    }
    for (long long i = nv * V + t; i < n; i += nt) {
        const A g = to_acc<A>(gr[i]) * (has_w ? to_acc<A>(weight[i]) : A(1));
        s.a += g;
        s.b += g * ((to_acc<A>(xr[i]) - mu) * r);
    }
    s = group_reduce(s);
    const A c1 = rms ? A(0) : s.a / A(n), c2 = s.b / A(n);

    for (long long i = t; i < nv; i += nt) {
        const Vec<T> gv = load_vec(gr + i * V), xv = load_vec(xr + i * V);
        Vec<T> wv, ov;
        if (has_w) wv = load_vec(weight + i * V);
#pragma unroll
        for (int u = 0; u < V; ++u) {
            const A g = to_acc<A>(gv.v[u]) * (has_w ? to_acc<A>(wv.v[u]) : A(1));
            ov.v[u] = from_acc<T>(r * (g - c1 - ((to_acc<A>(xv.v[u]) - mu) * r) * c2));
        }
        store_vec(dxr + i * V, ov);
    }
    for (long long i = nv * V + t; i < n; i += nt) {
        const A g = to_acc<A>(gr[i]) * (has_w ? to_acc<A>(weight[i]) : A(1));
        dxr[i] = from_acc<T>(r * (g - c1 - ((to_acc<A>(xr[i]) - mu) * r) * c2));
    }
}

// Stage 1 of the weight and bias gradients: for row block blockIdx.y
// (rows [r0, r0 + rows_per_block)) and column j, partial[blockIdx.y * n + j] =
// (sum of dy * xhat, sum of dy). Grid (ceil(n / blockDim.x), row blocks),
// blocks of 256 threads, blockDim.y a power of two.
template <typename T, typename A>
__global__ void __launch_bounds__(256)
layer_norm_param_grads_partial(const T* dy, const T* x, const A* mean, const A* rstd,
                               long long n_rows, long long n, long long rows_per_block,
                               Sum2<double>* partial)
{
    const long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long r0 = blockIdx.y * rows_per_block;
    const long long r1 = min(r0 + rows_per_block, n_rows);
    // summed in double: a thread may add many rows (all of them / blockDim.y
    // for the one row block of wide rows), which float would round away
    Sum2<double> s = Sum2<double>::zero();
    if (j < n)
        for (long long i = r0 + threadIdx.y; i < r1; i += blockDim.y) {
            const A g = to_acc<A>(dy[i * n + j]);
            s.a += (double)(g * ((to_acc<A>(x[i * n + j]) - mean[i]) * rstd[i]));
            s.b += (double)g;
        }
    s = reduce_over_y(s);
    if (threadIdx.y == 0 && j < n) partial[blockIdx.y * n + j] = s;
}

// Stage 2: dw[j] and db[j] (either may be null) = the sums of the n_blocks
// partials of column j, in double, one warp per column.
template <typename T, typename A>
__global__ void __launch_bounds__(256)
layer_norm_param_grads_merge(const Sum2<double>* partial, long long n_blocks, long long n,
                             double* dw, double* db)
{
    const long long j = warp_index();
    if (j >= n) return;  // a whole warp
    const Sum2<double> s = warp_merge<Sum2<double>>(n_blocks, [&](long long b) {
        return partial[b * n + j];
    });
    if (threadIdx.x % 32 == 0) {
        if (dw) dw[j] = s.a;
        if (db) db[j] = s.b;
    }
}
