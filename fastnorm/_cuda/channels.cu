// Kernels of the channel norms (batch, group, instance, switchable norm and
// local response norm): the GPU side of ext/_channels.pxi and
// ext/channels_impl.h.
//
// The input is a C-contiguous (n_a, B, K) view whose statistics are per
// (a, k), reduced over B: NCHW (N, C, S) is (N*C, S, 1), channels-last
// (N, S, C) is (N, S, C). The front end composes per-channel, per-group or
// per-sample statistics from these per-(a, k) results.
//
// Reductions are two-stage, as the column statistics: stage 1 (*_partial)
// runs one block per (a, row block, tile of blockDim.x columns), flattened
// into a 1-D grid (blockIdx.x = (a * n_row_blocks + row_block) * n_tiles +
// tile) so that no grid dimension limits n_a; its partial for (a, row block,
// k) is at partial[(a * n_row_blocks + row_block) * K + k]. Stage 2
// (*_merge) merges a (a, k)'s row blocks in a fixed order, in double, one
// warp per (a, k). Outputs are float64 (n_a, K) arrays, as the CPU kernels'.
// Coefficient arrays (shift, scale, ...) are (n_a, K) in A.
#include "common.cuh"

// This block's a, row range [r0, r1) and column k in a flattened stage-1
// grid, and where its partial for column k goes.
struct ChannelTile {
    long long a, r0, r1, k, slot;
    __device__ ChannelTile(long long B, long long K, long long rows_per_block)
    {
        const long long n_tiles = (K + blockDim.x - 1) / blockDim.x;
        const long long n_row_blocks = (B + rows_per_block - 1) / rows_per_block;
        const long long tile = blockIdx.x % n_tiles, a_rb = blockIdx.x / n_tiles;
        a = a_rb / n_row_blocks;
        r0 = (a_rb % n_row_blocks) * rows_per_block;
        r1 = min(r0 + rows_per_block, B);
        k = tile * blockDim.x + threadIdx.x;
        slot = a_rb * K + k;
    }
};

// Stage 1 of the per-(a, k) moments (count, mean, M2) over B.
template <typename T, typename A>
__global__ void __launch_bounds__(256)
channel_moments_partial(const T* x, long long n_a, long long B, long long K,
                        long long rows_per_block, Moments<A>* partial)
{
    const ChannelTile c(B, K, rows_per_block);
    const T* xa = x + c.a * B * K;
    // every block of (a, k) shifts by its first value (see common.cuh)
    const A shift = c.k < K ? finite_or_zero(to_acc<A>(xa[c.k])) : A(0);
    Moments<A> s = Moments<A>::zero();
    if (c.k < K) s = column_moments(xa, K, c.k, c.r0, c.r1, (const A*)nullptr, false, shift);
    s = reduce_over_y(s);
    s.mean += shift;
    if (threadIdx.y == 0 && c.k < K) partial[c.slot] = s;
}

// Stage 2: mean[a, k] and m2[a, k] from the n_blocks row blocks of (a, k).
template <typename T, typename A>
__global__ void __launch_bounds__(256)
channel_moments_merge(const Moments<A>* partial, long long n_a, long long K, long long n_blocks,
                      double* mean, double* m2)
{
    const long long o = warp_index();
    if (o >= n_a * K) return;
    const long long a = o / K, k = o % K;
    const Moments<double> s = warp_merge<Moments<double>>(n_blocks, [&](long long b) {
        const Moments<A> p = partial[(a * n_blocks + b) * K + k];
        return Moments<double>{p.n, p.mean, p.m2};
    });
    if (threadIdx.x % 32 == 0) {
        mean[o] = s.mean;
        m2[o] = s.m2;
    }
}

// Stage 1 of the backward sums: (sum of dy, sum of dy * (x - shift[a, k])).
template <typename T, typename A>
__global__ void __launch_bounds__(256)
channel_dot_sums_partial(const T* dy, const T* x, long long n_a, long long B, long long K,
                         long long rows_per_block, const A* shift, Sum2<A>* partial)
{
    const ChannelTile c(B, K, rows_per_block);
    Sum2<A> s = Sum2<A>::zero();
    if (c.k < K) {
        const long long base = c.a * B * K + c.k;
        const A sh = shift[c.a * K + c.k];
        for (long long i = c.r0 + threadIdx.y; i < c.r1; i += blockDim.y) {
            const A g = to_acc<A>(dy[base + i * K]);
            s.a += g;
            s.b += g * (to_acc<A>(x[base + i * K]) - sh);
        }
    }
    s = reduce_over_y(s);
    if (threadIdx.y == 0 && c.k < K) partial[c.slot] = s;
}

// Stage 2: sdy[a, k] and sdyx[a, k].
template <typename T, typename A>
__global__ void __launch_bounds__(256)
channel_dot_sums_merge(const Sum2<A>* partial, long long n_a, long long K, long long n_blocks,
                       double* sdy, double* sdyx)
{
    const long long o = warp_index();
    if (o >= n_a * K) return;
    const long long a = o / K, k = o % K;
    const Sum2<double> s = warp_merge<Sum2<double>>(n_blocks, [&](long long b) {
        const Sum2<A> p = partial[(a * n_blocks + b) * K + k];
        return Sum2<double>{p.a, p.b};
    });
    if (threadIdx.x % 32 == 0) {
        sdy[o] = s.a;
        sdyx[o] = s.b;
    }
}

// y = (x - shift[a, k]) * scale[a, k] + offset[a, k]; elementwise
// (_launch.elementwise_shape); y may be x.
template <typename T, typename A>
__global__ void __launch_bounds__(256)
channel_affine(const T* x, long long n_a, long long B, long long K, const A* shift,
               const A* scale, const A* offset, T* y)
{
    map_abk<T, A>(x, nullptr, y, n_a, B, K, [&](A v, A, long long c) {
        return (v - shift[c]) * scale[c] + offset[c];
    });
}

// dx = dy * p[a, k] + (x - shift[a, k]) * q[a, k] + r[a, k]: the backward of
// every norm whose statistics are linear and quadratic means of x.
template <typename T, typename A>
__global__ void __launch_bounds__(256)
channel_backward(const T* dy, const T* x, long long n_a, long long B, long long K,
                 const A* shift, const A* p, const A* q, const A* r, T* dx)
{
    map_abk<T, A>(dy, x, dx, n_a, B, K, [&](A g, A v, long long c) {
        return g * p[c] + (v - shift[c]) * q[c] + r[c];
    });
}

// ------------------------------------------------- local response norm ---
// x is (N, C, S). base[n, c, s] = k + alpha / size * (sum of x^2 over the
// channels [c - size/2, c + (size-1)/2] clipped to [0, C)): zero padding,
// averaged over `size` as torch does. One thread per element, grid-stride;
// the window is re-read per element (from cache), which keeps every value
// exact (no running sums).

template <typename T, typename A>
__device__ __forceinline__ A lrn_base(const T* xs, long long C, long long S, long long c,
                                      long long size, A alpha, A k)
{
    const long long lo = size / 2, hi = (size - 1) / 2;
    const long long c0 = c - lo < 0 ? 0 : c - lo, c1 = c + hi >= C ? C - 1 : c + hi;
    A sum = A(0);
    for (long long cc = c0; cc <= c1; ++cc) {
        const A v = to_acc<A>(xs[cc * S]);
        sum += v * v;
    }
    return k + alpha / A(size) * sum;
}

// y = x / base^beta
template <typename T, typename A>
__global__ void __launch_bounds__(256)
lrn_forward(const T* x, long long N, long long C, long long S, long long size, double alpha,
            double beta, double k, T* y)
{
    const long long n_all = N * C * S;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n_all; i += stride) {
        const long long c = (i / S) % C;
        const T* xs = x + (i - c * S);  // &x[n, 0, s]
        const A b = lrn_base(xs, C, S, c, size, A(alpha), A(k));
        y[i] = from_acc<T>(to_acc<A>(x[i]) / pow(b, A(beta)));
    }
}

// dx_c = dy_c / d_c - (2 alpha beta / size) x_c * (sum of t_j over the
// channels j whose window holds c: [c - (size-1)/2, c + size/2]), with
// d_j = base_j^beta and t_j = dy_j x_j / (d_j base_j).
template <typename T, typename A>
__global__ void __launch_bounds__(256)
lrn_backward(const T* dy, const T* x, long long N, long long C, long long S, long long size,
             double alpha, double beta, double k, T* dx)
{
    const long long n_all = N * C * S;
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long lo = size / 2, hi = (size - 1) / 2;
    const A f = A(2.0 * alpha * beta / size);
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n_all; i += stride) {
        const long long c = (i / S) % C;
        const long long at = i - c * S;  // offset of x[n, 0, s]
        const T* xs = x + at;
        const long long j0 = c - hi < 0 ? 0 : c - hi, j1 = c + lo >= C ? C - 1 : c + lo;
        A acc = A(0);
        for (long long j = j0; j <= j1; ++j) {
            const A b = lrn_base(xs, C, S, j, size, A(alpha), A(k));
            acc += to_acc<A>(dy[at + j * S]) * to_acc<A>(xs[j * S]) / (pow(b, A(beta)) * b);
        }
        const A d = pow(lrn_base(xs, C, S, c, size, A(alpha), A(k)), A(beta));
        dx[i] = from_acc<T>(to_acc<A>(dy[i]) / d - f * to_acc<A>(x[i]) * acc);
    }
}
