// Device helpers shared by every kernel family of fastnorm's GPU path.
//
// The loader pastes this file in place of each family's
// `#include "common.cuh"` line, so that NVRTC gets one self-contained source
// (and CuPy's kernel cache, keyed on the source text, sees edits here).
//
// Conventions:
// - T is the storage type (float, double, __half), A the accumulation type
//   (float for float and __half, double for double).
// - Sizes are long long: arrays may hold more than 2^31 elements.
// - Moments are (count, mean, M2) merged with Chan's formula, never
//   E[x^2] - E[x]^2, so data far from zero keeps its variance. The values
//   are first shifted by one of them (the first of the row or column): x - K
//   is exact for x near K, so that float accumulation keeps its precision
//   for data far from zero (mean 1e4, std 1 in float32).
// - Every reduction across threads has a fixed shape (a function of the
//   launch shape only), so results are bitwise reproducible.
#pragma once
#include <cuda_fp16.h>

// ------------------------------------------------------------ conversions ---

template <typename T>
struct Cvt {
    __device__ __forceinline__ static float up(T v) { return v; }
    __device__ __forceinline__ static T down(float v) { return static_cast<T>(v); }
};
template <>
struct Cvt<double> {
    __device__ __forceinline__ static double up(double v) { return v; }
    __device__ __forceinline__ static double down(double v) { return v; }
};
template <>
struct Cvt<__half> {
    __device__ __forceinline__ static float up(__half v) { return __half2float(v); }
    __device__ __forceinline__ static __half down(float v) { return __float2half_rn(v); }
};

// T -> A and A -> T (round to nearest)
template <typename A, typename T>
__device__ __forceinline__ A to_acc(T v) { return static_cast<A>(Cvt<T>::up(v)); }

template <typename T, typename A>
__device__ __forceinline__ T from_acc(A v) { return Cvt<T>::down(v); }

template <typename A>
__device__ __forceinline__ A inf_value() { return static_cast<A>(__int_as_float(0x7f800000)); }

// v if finite, else 0 (for NaN too)
template <typename A>
__device__ __forceinline__ A finite_or_zero(A v) { return fabs(v) < inf_value<A>() ? v : A(0); }

// ---------------------------------------------------------- vector access ---
// 16 bytes of T, loaded and stored as one 128-bit access when aligned.

template <typename T>
struct alignas(16) Vec {
    static constexpr int N = 16 / sizeof(T);
    T v[N];
};

__device__ __forceinline__ bool aligned16(const void* p)
{
    return (reinterpret_cast<unsigned long long>(p) & 15ull) == 0;
}

// true for a null (absent) optional array, which never blocks vector access
__device__ __forceinline__ bool aligned16_or_null(const void* p) { return p == nullptr || aligned16(p); }

template <typename T>
__device__ __forceinline__ Vec<T> load_vec(const T* p) { return *reinterpret_cast<const Vec<T>*>(p); }

template <typename T>
__device__ __forceinline__ void store_vec(T* p, const Vec<T>& v) { *reinterpret_cast<Vec<T>*>(p) = v; }

// --------------------------------------------------- mergeable statistics ---
// Each has zero() (the identity) and combine(a, b) (associative up to
// rounding; the callers fix the order).

template <typename A>
struct Moments {
    A n, mean, m2;
    __device__ static Moments zero() { return Moments{A(0), A(0), A(0)}; }
};

// An empty side (n == 0) adds nothing but the NaN it may carry: a NaN of
// weight 0, which propagates (unless ignored) like any NaN.
template <typename A>
__device__ __forceinline__ Moments<A> combine(const Moments<A>& a, const Moments<A>& b)
{
    if (b.n == A(0)) return b.mean == b.mean ? a : Moments<A>{a.n, b.mean, b.mean};
    if (a.n == A(0)) return a.mean == a.mean ? b : Moments<A>{b.n, a.mean, a.mean};
    A n = a.n + b.n, delta = b.mean - a.mean, f = b.n / n;
    return Moments<A>{n, a.mean + delta * f, a.m2 + b.m2 + delta * delta * (a.n * f)};
}

template <typename A>
struct Sum2 {
    A a, b;
    __device__ static Sum2 zero() { return Sum2{A(0), A(0)}; }
};

template <typename A>
__device__ __forceinline__ Sum2<A> combine(const Sum2<A>& x, const Sum2<A>& y)
{
    return Sum2<A>{x.a + y.a, x.b + y.b};
}

// NaN-ignoring min and max with the count of non-NaN values; an empty set is
// (+inf, -inf, 0). A NaN reaching combine (never produced by the kernels, but
// left by an unwritten partial) wins, so that it shows.
template <typename A>
struct MinMax {
    A mn, mx, n;
    __device__ static MinMax zero() { return MinMax{inf_value<A>(), -inf_value<A>(), A(0)}; }
};

template <typename A>
__device__ __forceinline__ A min_nan_wins(A a, A b) { return (b < a || b != b) ? b : a; }

template <typename A>
__device__ __forceinline__ A max_nan_wins(A a, A b) { return (b > a || b != b) ? b : a; }

template <typename A>
__device__ __forceinline__ MinMax<A> combine(const MinMax<A>& a, const MinMax<A>& b)
{
    return MinMax<A>{min_nan_wins(a.mn, b.mn), max_nan_wins(a.mx, b.mx), a.n + b.n};
}

template <typename A>
struct Max1 {
    A m;
    __device__ static Max1 zero() { return Max1{-inf_value<A>()}; }
};

template <typename A>
__device__ __forceinline__ Max1<A> combine(const Max1<A>& a, const Max1<A>& b)
{
    return Max1<A>{max_nan_wins(a.m, b.m)};
}

// Moments of a chunk held in registers: exact two-pass (mean, then squared
// deviations from it).
template <typename A, int N>
__device__ __forceinline__ Moments<A> chunk_moments(const A (&v)[N])
{
    A s = A(0);
#pragma unroll
    for (int u = 0; u < N; ++u) s += v[u];
    A m = s / A(N), q = A(0);
#pragma unroll
    for (int u = 0; u < N; ++u) q += (v[u] - m) * (v[u] - m);
    return Moments<A>{A(N), m, q};
}

// Weighted: w[u] == 0 drops v[u] (v[u] must then be finite).
template <typename A, int N>
__device__ __forceinline__ Moments<A> chunk_moments(const A (&v)[N], const A (&w)[N])
{
    A ws = A(0), s = A(0);
#pragma unroll
    for (int u = 0; u < N; ++u) {
        ws += w[u];
        s += w[u] * v[u];
    }
    if (ws == A(0)) return Moments<A>{A(0), s, s};  // s: 0, or NaN from a NaN of weight 0
    A m = s / ws, q = A(0);
#pragma unroll
    for (int u = 0; u < N; ++u) q += w[u] * (v[u] - m) * (v[u] - m);
    return Moments<A>{ws, m, q};
}

// ------------------------------------------------------------- shuffles ---

__device__ __forceinline__ float shfl_down(float v, int d) { return __shfl_down_sync(0xffffffffu, v, d); }
__device__ __forceinline__ double shfl_down(double v, int d) { return __shfl_down_sync(0xffffffffu, v, d); }
__device__ __forceinline__ float shfl0(float v) { return __shfl_sync(0xffffffffu, v, 0); }
__device__ __forceinline__ double shfl0(double v) { return __shfl_sync(0xffffffffu, v, 0); }

template <typename A>
__device__ __forceinline__ Moments<A> shfl_down(const Moments<A>& s, int d)
{
    return Moments<A>{shfl_down(s.n, d), shfl_down(s.mean, d), shfl_down(s.m2, d)};
}
template <typename A>
__device__ __forceinline__ Moments<A> shfl0(const Moments<A>& s)
{
    return Moments<A>{shfl0(s.n), shfl0(s.mean), shfl0(s.m2)};
}
template <typename A>
__device__ __forceinline__ Sum2<A> shfl_down(const Sum2<A>& s, int d)
{
    return Sum2<A>{shfl_down(s.a, d), shfl_down(s.b, d)};
}
template <typename A>
__device__ __forceinline__ Sum2<A> shfl0(const Sum2<A>& s) { return Sum2<A>{shfl0(s.a), shfl0(s.b)}; }
template <typename A>
__device__ __forceinline__ MinMax<A> shfl_down(const MinMax<A>& s, int d)
{
    return MinMax<A>{shfl_down(s.mn, d), shfl_down(s.mx, d), shfl_down(s.n, d)};
}
template <typename A>
__device__ __forceinline__ Max1<A> shfl_down(const Max1<A>& s, int d) { return Max1<A>{shfl_down(s.m, d)}; }

// ---------------------------------------------------------- thread roles ---

// Row-shaped launches (see _launch.py): block (32, 8) with one warp per row,
// or block (threads, 1) with one block per row.
__device__ __forceinline__ long long row_index()
{
    return (long long)blockIdx.x * blockDim.y + threadIdx.y;
}

// Merge launches: one warp per output, 1-D blocks.
__device__ __forceinline__ long long warp_index()
{
    return (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
}

// ----------------------------------------------------------- reductions ---

// Tree over the 32 lanes of a warp (all active); the result is in lane 0.
// A tree down to lane 0 (not a butterfly) so that one value comes out, not
// 32 that differ in the last bit.
template <typename S>
__device__ __forceinline__ S warp_reduce(S s)
{
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) s = combine(s, shfl_down(s, d));
    return s;
}

// Reduction over the threads threadIdx.x of one row group: a warp
// (blockDim.x == 32, several rows per block along y) or the whole block
// (blockDim.x a multiple of 32, blockDim.y == 1). Every thread of the group
// gets the result.
template <typename S>
__device__ __forceinline__ S group_reduce(S s)
{
    s = warp_reduce(s);
    if (blockDim.x <= 32) return shfl0(s);
    __shared__ S part[32];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads();  // the previous call's readers are done with part
    if (lane == 0) part[warp] = s;
    __syncthreads();
    if (warp == 0) {
        s = lane < (int)(blockDim.x / 32) ? part[lane] : S::zero();
        s = warp_reduce(s);
        if (lane == 0) part[0] = s;
    }
    __syncthreads();
    return part[0];
}

// Reduction over threadIdx.y for each threadIdx.x of a block of at most 256
// threads, blockDim.y a power of two; the result is valid where threadIdx.y == 0.
template <typename S>
__device__ __forceinline__ S reduce_over_y(S s)
{
    __shared__ S buf[256];
    const int tid = threadIdx.y * blockDim.x + threadIdx.x;
    buf[tid] = s;
    __syncthreads();
    for (int h = blockDim.y / 2; h > 0; h >>= 1) {
        if ((int)threadIdx.y < h) {
            s = combine(s, buf[tid + h * blockDim.x]);
            buf[tid] = s;
        }
        __syncthreads();
    }
    return s;
}

// Merge of items [0, n_items) by one warp: lane l takes l, l + 32, ... in
// turn, then a fixed tree; the result (in lane 0) depends on n_items only.
template <typename S, typename Get>
__device__ __forceinline__ S warp_merge(long long n_items, Get get)
{
    S s = S::zero();
    for (long long i = threadIdx.x % 32; i < n_items; i += 32) s = combine(s, get(i));
    return warp_reduce(s);
}

// Moments of column j - shift over rows [r0, r1) of a row-major matrix x
// with leading dimension ld, accumulated by the blockDim.y threads of one
// block column (thread ty takes rows r0 + ty, r0 + ty + blockDim.y, ...),
// four rows at a time: each chunk of four is reduced exactly in registers
// and merged (Chan). `w` (one weight per row, may be null) weights the rows;
// ignore_nan drops NaNs (their weight becomes 0).
template <typename T, typename A>
__device__ __forceinline__ Moments<A> column_moments(const T* x, long long ld, long long j,
                                                     long long r0, long long r1, const A* w,
                                                     bool ignore_nan, A shift)
{
    Moments<A> s = Moments<A>::zero();
    const long long step = blockDim.y;
    for (long long r = r0 + threadIdx.y; r < r1; r += 4 * step) {
        A v[4], wt[4];
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            const long long i = r + u * step;
            A xv = A(0), wv = A(0);
            if (i < r1) {
                xv = to_acc<A>(x[i * ld + j]) - shift;
                wv = w ? w[i] : A(1);
                if (ignore_nan && xv != xv) xv = wv = A(0);
            }
            v[u] = xv;
            wt[u] = wv;
        }
        s = combine(s, chunk_moments(v, wt));
    }
    return s;
}

// ------------------------------------------------------ elementwise maps ---

// Position (a, b, k) of an element of a C-contiguous (n_a, B, K) array,
// stepped element by element (no division per element).
struct Pos3 {
    long long a, b, k;
    __device__ Pos3(long long i, long long B, long long K)
    {
        k = i % K;
        const long long r = i / K;
        b = r % B;
        a = r / B;
    }
    __device__ void next(long long B, long long K)
    {
        if (++k == K) {
            k = 0;
            if (++b == B) {
                b = 0;
                ++a;
            }
        }
    }
    // index of the per-(a, k) coefficients
    __device__ long long coef(long long K) const { return a * K + k; }
};

// out[i] = f(in0[i], in1[i], c) over the elements of C-contiguous
// (n_a, B, K) arrays, c = a * K + k; in1 may be null (f then gets 0). A
// grid-stride loop over 16-byte vectors when every array is aligned, then a
// scalar tail; scalar throughout otherwise. out may be in0 (in place): each
// element is read before it is written, by the same thread.
template <typename T, typename A, typename F>
__device__ __forceinline__ void map_abk(const T* in0, const T* in1, T* out, long long n_a,
                                        long long B, long long K, F f)
{
    constexpr int V = Vec<T>::N;
    const long long n = n_a * B * K;
    const long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long stride = (long long)gridDim.x * blockDim.x;
    const bool vec = aligned16(in0) && aligned16_or_null(in1) && aligned16(out);
    const long long nv = vec ? n / V : 0;
    for (long long i = tid; i < nv; i += stride) {
        Pos3 p(i * V, B, K);
        const Vec<T> a = load_vec(in0 + i * V);
        Vec<T> b, o;
        if (in1) b = load_vec(in1 + i * V);
#pragma unroll
        for (int u = 0; u < V; ++u) {
            o.v[u] = from_acc<T>(f(to_acc<A>(a.v[u]), in1 ? to_acc<A>(b.v[u]) : A(0), p.coef(K)));
            p.next(B, K);
        }
        store_vec(out + i * V, o);
    }
    for (long long i = nv * V + tid; i < n; i += stride) {
        const Pos3 p(i, B, K);
        out[i] = from_acc<T>(f(to_acc<A>(in0[i]), in1 ? to_acc<A>(in1[i]) : A(0), p.coef(K)));
    }
}
