// The fused affine apply of the scalers, out = (x - shift) * scale + offset
// over a C-contiguous (n_rows, n_cols) matrix, with one coefficient triple
// per column (affine_cols) or per row (affine_rows): the GPU side of
// ext/_apply.pxi. Computed in A, stored in T; out may be x (in place).
//
// Elementwise grid-stride kernels (_launch.elementwise_shape), 16-byte
// vectors when x and out are aligned. has_inf (may be null) is set to 1 when
// x holds an infinity, found on the way (transforms refuse inf input, as
// scikit-learn does); it is never cleared here.
#include "common.cuh"

template <typename T, typename A>
__device__ __forceinline__ void affine(const T* x, long long n_a, long long B, long long K,
                                       const A* shift, const A* scale, const A* offset, T* out,
                                       int* has_inf)
{
    bool inf_seen = false;
    map_abk<T, A>(x, nullptr, out, n_a, B, K, [&](A v, A, long long c) {
        inf_seen |= fabs(v) == inf_value<A>();
        return (v - shift[c]) * scale[c] + offset[c];
    });
    if (inf_seen && has_inf) *has_inf = 1;  // every writer writes the same value
}

// coefficients shift, scale, offset: one per column (n_cols)
template <typename T, typename A>
__global__ void __launch_bounds__(256)
affine_cols(const T* x, long long n_rows, long long n_cols, const A* shift, const A* scale,
            const A* offset, T* out, int* has_inf)
{
    // the (1, n_rows, n_cols) view: coefficient index k = column
    affine(x, 1, n_rows, n_cols, shift, scale, offset, out, has_inf);
}

// coefficients shift, scale, offset: one per row (n_rows)
template <typename T, typename A>
__global__ void __launch_bounds__(256)
affine_rows(const T* x, long long n_rows, long long n_cols, const A* shift, const A* scale,
            const A* offset, T* out, int* has_inf)
{
    // the (n_rows, n_cols, 1) view: coefficient index a = row
    affine(x, n_rows, n_cols, 1, shift, scale, offset, out, has_inf);
}
