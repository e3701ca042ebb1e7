// cudasim: the part of CUDA's cuda_fp16.h that fastnorm's kernels use, for
// the host (GCC's _Float16 does the IEEE binary16 conversions).
#pragma once
#include <cstring>

struct __half {
    unsigned short x;
};

inline float __half2float(__half h)
{
    _Float16 f;
    std::memcpy(&f, &h, sizeof f);
    return static_cast<float>(f);
}

inline __half __float2half_rn(float v)  // round to nearest even, as CUDA's
{
    const _Float16 f = static_cast<_Float16>(v);
    __half h;
    std::memcpy(&h, &f, sizeof h);
    return h;
}

inline __half __float2half(float v) { return __float2half_rn(v); }
