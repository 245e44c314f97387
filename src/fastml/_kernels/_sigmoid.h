/* Logistic sigmoid over a row, written so that compilers vectorise it (no libm call):
 *
 *     x[j] <- sigmoid(a) = 1 / (1 + exp(-a)),   a = x[j] + bias[j],   0 <= j < n,
 *
 * as z = exp(-|a|) (never overflows) and sigmoid(a) = 1 / (1 + z) for a >= 0, z / (1 + z)
 * below. exp(y) = 2^k exp(r) with k = rint(y / ln 2) and r = y - k ln 2 (ln 2 split in
 * a high and a low part, Cody & Waite 1980), |r| <= ln(2) / 2; exp(r) by its Taylor
 * series (degree 13 in double, truncation < 4e-18; degree 7 in float, < 6e-9) in Horner
 * form; 2^k built in the exponent bits. k is rounded with the 1.5 * 2^52 (2^23) shift,
 * whose low mantissa bits then hold k. -|a| is clamped at -708 (-87 in float) so that
 * 2^k stays a normal number: sigmoid(a) saturates at exp(-708) ~ 3e-308 (1.6e-38 in
 * float) for a below that, instead of reaching denormals. Only selects, no branches,
 * in the loop (built with -fno-trapping-math, else GCC turns a select feeding arithmetic
 * into a branch). Measured error: within 3.4 ulp of the exact sigmoid (tests/test_rbm.py).
 * The exponent bits are built in unsigned arithmetic (wrap-around, defined for every
 * input): a NaN input gives a NaN output, as libm's expression does.
 *
 * Used where the compiler may emit AVX2 + FMA (the _avx2 builds): there it is about 2x
 * faster than libm's exp per element. With SSE2 only it is slower than glibc's exp, so
 * the baseline build keeps 1 / (1 + exp(-a)) from libm (FASTML_SIGMOID_POLY is 0).
 */
#ifndef FASTML_SIGMOID_H
#define FASTML_SIGMOID_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__)
#define FASTML_SIGMOID_POLY 1
#else
#define FASTML_SIGMOID_POLY 0
#endif

static inline double fastml_expneg_f64(double y) /* exp(y) for y <= 0 */
{
    const double shift = 6755399441055744.0; /* 1.5 * 2^52 */
    y = y < -708.0 ? -708.0 : y; /* y <= 0 here */
    double t = y * 1.4426950408889634 + shift;
    double k = t - shift;
    double r = (y - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    uint64_t bits; /* unsigned: a NaN's bits may be "negative", never shift those */
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - UINT64_C(0x4338000000000000) + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float fastml_expneg_f32(float y) /* exp(y) for y <= 0 */
{
    const float shift = 12582912.0f; /* 1.5 * 2^23 */
    y = y < -87.0f ? -87.0f : y; /* y <= 0 here */
    float t = y * 1.44269504f + shift;
    float k = t - shift;
    float r = (y - k * 0.693145752f) - k * 1.42860677e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - UINT32_C(0x4B400000) + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline void fastml_sigmoid_row_f64(double *x, const double *bias, ptrdiff_t n)
{
    if (!FASTML_SIGMOID_POLY) {
        for (ptrdiff_t j = 0; j < n; j++)
            x[j] = 1.0 / (1.0 + exp(-(x[j] + bias[j])));
        return;
    }
    for (ptrdiff_t j = 0; j < n; j++) {
        double a = x[j] + bias[j];
        double z = fastml_expneg_f64(-(a < 0.0 ? -a : a));
        double s = 1.0 / (1.0 + z);
        x[j] = a >= 0.0 ? s : z * s;
    }
}

static inline void fastml_sigmoid_row_f32(float *x, const float *bias, ptrdiff_t n)
{
    if (!FASTML_SIGMOID_POLY) { /* float32 math for float32 data */
        for (ptrdiff_t j = 0; j < n; j++)
            x[j] = 1.0f / (1.0f + expf(-(x[j] + bias[j])));
        return;
    }
    for (ptrdiff_t j = 0; j < n; j++) {
        float a = x[j] + bias[j];
        float z = fastml_expneg_f32(-(a < 0.0f ? -a : a));
        float s = 1.0f / (1.0f + z);
        x[j] = a >= 0.0f ? s : z * s;
    }
}

#endif
