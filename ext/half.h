/* 16-bit storage <-> float32, for the row kernels' 16-bit entry points
 * (_norms.pxi: layer_norm_fwd_16 / layer_norm_bwd_16), which convert a row
 * into a float scratch row, run the float body of row_norms_impl.h on it and
 * convert the result back. Two storage types, both held as uint16:
 *
 *   bfloat16: the upper half of a float32. To float: bits << 16 (exact).
 *             From float: round to nearest, ties to even; NaN stays NaN
 *             (quieted, sign and upper payload kept); overflow gives inf.
 *   float16:  IEEE binary16. In the x86-64-v3 build (which has F16C) the
 *             hardware converts (vcvtph2ps / vcvtps2ph, round to nearest
 *             even); the baseline build converts in software, integer-only
 *             (so -fassociative-math cannot touch it), with the same results:
 *             subnormals, inf, NaN, overflow to inf, ties to even.
 *
 * Element-wise loops, so no validation and no allocation here. */
#ifndef FASTNORM_HALF_H
#define FASTNORM_HALF_H

#include <stdint.h>
#include <string.h>
#include <Python.h>
#if defined(__F16C__) && defined(__AVX__)
#include <immintrin.h>
#define FASTNORM_F16C 1
#endif

/* ---------------------------------------------------------------- bfloat16 */

static inline float fastnorm_bf16_to_float(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint16_t fastnorm_float_to_bf16(float f)
{
    uint32_t u, rounded, quiet;
    memcpy(&u, &f, sizeof u);
    /* ties to even: add 0x7fff plus the lowest kept bit; a carry runs into
     * the exponent (the largest finite floats round to inf). No overflow of
     * u: NaNs, the only encodings above 0xff800000 in magnitude order, are
     * taken apart below. Branch-free so that the loop vectorizes. */
    rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    quiet = (u >> 16) | 0x0040u;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? quiet : rounded);
}

/* ----------------------------------------------------------------- float16 */

static inline float fastnorm_f16_to_float_soft(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
    float f;
    if (e == 0x1fu)          /* inf, NaN (payload kept) */
        u = sign | 0x7f800000u | (m << 13);
    else if (e != 0)         /* normal: rebias 15 -> 127 */
        u = sign | ((e + 112u) << 23) | (m << 13);
    else if (m == 0)         /* signed zero */
        u = sign;
    else {                   /* subnormal: m * 2^-24, exact in float */
        f = (float)m * 0x1p-24f;
        memcpy(&u, &f, sizeof u);
        u |= sign;
    }
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint16_t fastnorm_float_to_f16_soft(float f)
{
    uint32_t u, a, sign, h;
    memcpy(&u, &f, sizeof u);
    sign = (u >> 16) & 0x8000u;
    a = u & 0x7fffffffu;
    if (a > 0x7f800000u)                 /* NaN: quiet, upper payload kept */
        h = 0x7e00u | ((a >> 13) & 0x3ffu);
    else if (a >= 0x477ff000u)           /* >= 65520 (a tie that goes up to even) and inf */
        h = 0x7c00u;
    else if (a >= 0x38800000u) {         /* normal binary16: |f| >= 2^-14 */
        a += 0x0fffu + ((a >> 13) & 1u); /* ties to even at bit 13; carries into the exponent */
        h = (a - 0x38000000u) >> 13;     /* rebias 127 -> 15 */
    } else if (a > 0x33000000u) {        /* subnormal: 2^-25 < |f| < 2^-14 */
        uint32_t e = a >> 23;            /* 102 .. 112 */
        uint32_t m = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - e;       /* units of 2^-24: m >> shift, 14 .. 24 */
        uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        h = m >> shift;
        if (rem > half || (rem == half && (h & 1u)))
            h += 1u;                     /* 0x3ff + 1 is the smallest normal: right */
    } else                               /* |f| <= 2^-25 (a tie at 2^-25 goes to even: 0) */
        h = 0;
    return (uint16_t)(sign | h);
}

/* ------------------------------------------------------------ row helpers */

static void fastnorm_half_to_float(const uint16_t *restrict src, Py_ssize_t n, int bf16,
                                   float *restrict dst)
{
    Py_ssize_t j = 0;
    if (bf16) {
        for (j = 0; j < n; j++)
            dst[j] = fastnorm_bf16_to_float(src[j]);
        return;
    }
#ifdef FASTNORM_F16C
    for (; j + 8 <= n; j += 8)
        _mm256_storeu_ps(dst + j, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + j))));
    for (; j < n; j++)
        dst[j] = _cvtsh_ss(src[j]);
#else
    for (; j < n; j++)
        dst[j] = fastnorm_f16_to_float_soft(src[j]);
#endif
}

static void fastnorm_float_to_half(const float *restrict src, Py_ssize_t n, int bf16,
                                   uint16_t *restrict dst)
{
    Py_ssize_t j = 0;
    if (bf16) {
#ifdef __AVX2__
        /* 16 at a time: GCC's own vectorization of the loop below packs
         * 32 -> 16 bits slowly. Same arithmetic as fastnorm_float_to_bf16. */
        const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
        const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
        const __m256i inf = _mm256_set1_epi32(0x7f800000), qbit = _mm256_set1_epi32(0x0040);
        for (; j + 16 <= n; j += 16) {
            __m256i h[2];
            int k;
            for (k = 0; k < 2; k++) {
                __m256i u = _mm256_castps_si256(_mm256_loadu_ps(src + j + 8 * k));
                __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
                __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(bias, lsb)), 16);
                __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), qbit);
                __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
                h[k] = _mm256_blendv_epi8(r, q, nan);
            }
            /* both halves are < 2^16: the saturating pack is exact; it
             * interleaves 128-bit lanes, the permute puts them back */
            _mm256_storeu_si256((__m256i *)(dst + j),
                                _mm256_permute4x64_epi64(_mm256_packus_epi32(h[0], h[1]), 0xd8));
        }
#endif
        for (; j < n; j++)
            dst[j] = fastnorm_float_to_bf16(src[j]);
        return;
    }
#ifdef FASTNORM_F16C
    for (; j + 8 <= n; j += 8)
        _mm_storeu_si128((__m128i *)(dst + j),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + j), _MM_FROUND_TO_NEAREST_INT));
    for (; j < n; j++)
        dst[j] = _cvtss_sh(src[j], _MM_FROUND_TO_NEAREST_INT);
#else
    for (; j < n; j++)
        dst[j] = fastnorm_float_to_f16_soft(src[j]);
#endif
}

#endif
