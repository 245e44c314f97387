/* Stride-2 gather for im2col (fastml._kernels._conv):
 *
 *     dst[k] = src[2 k],   0 <= k < n,
 *
 * reading src[0 .. 2 (n - 1)] and nothing else (so it may run up to the last element of
 * an array). Explicit SIMD where the compiler is told the ISA (x86-64: SSE2 always,
 * AVX2 in the _avx2 build), a plain loop elsewhere (compilers vectorise it for NEON
 * with ld2). A vector of V outputs loads src[2k .. 2k + V - 1] and src[2k + V - 1 ..
 * 2k + 2V - 2] (the second load starts one element early, so it ends on the last
 * element used) and keeps the even lanes of the first and the odd lanes of the second;
 * a ragged end is covered by one more vector overlapping the previous one.
 */
#ifndef FASTML_GATHER_H
#define FASTML_GATHER_H

#include <stddef.h>

#if defined(__AVX2__) || defined(__SSE2__) || defined(_M_X64) || \
    (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <immintrin.h>
#define FASTML_GATHER_SSE2 1
#endif

#if defined(__AVX2__)
static inline void fastml_gather2_f32_v(const float *s, float *d)
{
    __m256 a = _mm256_loadu_ps(s), b = _mm256_loadu_ps(s + 7);
    /* a: s0..s7, b: s7..s14 -> s0 s2 s8 s10 | s4 s6 s12 s14, then the 64-bit lanes */
    __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 2, 0));
    e = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e),
                                               _MM_SHUFFLE(3, 1, 2, 0)));
    _mm256_storeu_ps(d, e);
}
#define FASTML_GATHER_F32_V 8
#elif defined(FASTML_GATHER_SSE2)
static inline void fastml_gather2_f32_v(const float *s, float *d)
{
    __m128 a = _mm_loadu_ps(s), b = _mm_loadu_ps(s + 3); /* s0..s3, s3..s6 */
    _mm_storeu_ps(d, _mm_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 2, 0)));
}
#define FASTML_GATHER_F32_V 4
#endif

#if defined(__AVX2__)
static inline void fastml_gather2_f64_v(const double *s, double *d)
{
    __m256d a = _mm256_loadu_pd(s), b = _mm256_loadu_pd(s + 3); /* s0..s3, s3..s6 */
    __m256d e = _mm256_blend_pd(a, b, 0xA);                      /* s0 s4 s2 s6 */
    _mm256_storeu_pd(d, _mm256_permute4x64_pd(e, _MM_SHUFFLE(3, 1, 2, 0)));
}
#define FASTML_GATHER_F64_V 4
#elif defined(FASTML_GATHER_SSE2)
static inline void fastml_gather2_f64_v(const double *s, double *d)
{
    _mm_storeu_pd(d, _mm_loadh_pd(_mm_load_sd(s), s + 2));
}
#define FASTML_GATHER_F64_V 2
#endif

static inline void fastml_gather2_f32(const float *src, float *dst, ptrdiff_t n)
{
    ptrdiff_t k = 0;
#if defined(FASTML_GATHER_F32_V)
    const ptrdiff_t V = FASTML_GATHER_F32_V;
    if (n >= V) {
        for (; k + V <= n; k += V)
            fastml_gather2_f32_v(src + 2 * k, dst + k);
        if (k < n)
            fastml_gather2_f32_v(src + 2 * (n - V), dst + n - V);
        return;
    }
#endif
    for (; k < n; k++)
        dst[k] = src[2 * k];
}

static inline void fastml_gather2_f64(const double *src, double *dst, ptrdiff_t n)
{
    ptrdiff_t k = 0;
#if defined(FASTML_GATHER_F64_V)
    const ptrdiff_t V = FASTML_GATHER_F64_V;
    if (n >= V) {
        for (; k + V <= n; k += V)
            fastml_gather2_f64_v(src + 2 * k, dst + k);
        if (k < n)
            fastml_gather2_f64_v(src + 2 * (n - V), dst + n - V);
        return;
    }
#endif
    for (; k < n; k++)
        dst[k] = src[2 * k];
}

#endif
