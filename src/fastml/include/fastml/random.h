/* fastml/random.h: fastml's samplers as inline C functions on numpy's bitgen_t.
 *
 * The public C API of fastml.sampling, for C, C++ and Cython (fastml/random.pxd beside
 * this file declares the same functions for cimport). fastml's compiled kernels include
 * this header too: a function here gives the same bits as the fastml.sampling call named
 * in its comment, for the same bit generator state.
 *
 * Build: add numpy.get_include() and fastml.get_include() to the include path. Nothing
 * to link: every function is static inline and the ziggurat tables are static const
 * arrays (fastml/ziggurat_tables.h), so the code is compiled into your module.
 *
 * Bit generator: a `bitgen_t *` from a numpy BitGenerator, e.g. in Cython
 * `PyCapsule_GetPointer(bit_generator.capsule, "BitGenerator")` or in Python
 * `bit_generator.ctypes.bit_generator.value`. Hold `bit_generator.lock` while drawing,
 * as numpy does. Drawing advances the BitGenerator (and any Generator sharing it).
 *
 * Stability: FASTML_RANDOM_API_VERSION changes when a function here is removed, changes
 * its signature, or changes the values it draws from a given bit stream; within one
 * version, functions are only added. A module built against this header carries its own
 * copy of the code, so it keeps running with any installed fastml; its draws equal
 * fastml.sampling's when fastml.sampling.C_API_VERSION equals the
 * FASTML_RANDOM_API_VERSION it was compiled with (check it at import).
 *
 * Algorithms: G. Marsaglia, W. W. Tsang, "The Ziggurat Method for Generating Random
 * Variables", J. Stat. Softw. 5(8), 2000 (256 layers, exact tail); "A Simple Method for
 * Generating Gamma Variables", ACM TOMS 26(3), 2000.
 */
#ifndef FASTML_RANDOM_H
#define FASTML_RANDOM_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "numpy/random/bitgen.h"
#include "ziggurat_tables.h"

#define FASTML_RANDOM_API_VERSION 1

#ifdef __cplusplus
extern "C" {
#endif

/* ---- uniforms from raw bits ------------------------------------------------------ */

/* U[0, 1) with 53 random bits: the bit generator's own next_double. */
static inline double fastml_next_double(bitgen_t *rng) {
    return rng->next_double(rng->state);
}

/* U(0, 1), open at both ends: (m + 1/2) 2^-53 for the top 53 bits m of one next_uint64
 * (fastml.sampling.inverse_cdf's uniforms). */
static inline double fastml_open_double(bitgen_t *rng) {
    return ((double)(int64_t)(rng->next_uint64(rng->state) >> 11) + 0.5)
           * (1.0 / 9007199254740992.0);
}

/* U[0, 1) in float32: the top 24 bits of one next_uint32, times 2^-24. */
static inline float fastml_next_float(bitgen_t *rng) {
    return (float)((double)(int32_t)(rng->next_uint32(rng->state) >> 8)
                   * (1.0 / 16777216.0));
}

/* U(0, 1] in float32: (m + 1) 2^-24 for the top 24 bits m of one next_uint32. */
static inline float fastml_open_float(bitgen_t *rng) {
    return (float)((double)((int32_t)(rng->next_uint32(rng->state) >> 8) + 1)
                   * (1.0 / 16777216.0));
}

/* ---- standard normal: ziggurat ---------------------------------------------------- */

/* |Z| given |Z| > r: Marsaglia's exact tail algorithm (x = -log(U1)/r, y = -log(U2)
 * until 2y > x^2; return r + x), U = 1 - next_double in (0, 1]. */
static inline double fastml_normal_tail(bitgen_t *rng) {
    double xx, yy;
    for (;;) {
        xx = -fastml_zig_nor_inv_r * log(1.0 - rng->next_double(rng->state));
        yy = -log(1.0 - rng->next_double(rng->state));
        if (yy + yy > xx * xx) return fastml_zig_nor_r + xx;
    }
}

/* One N(0, 1) draw, float64 (fastml.sampling.standard_normal, method="ziggurat").
 * One next_uint64 b: layer i = b & 255, j = (int64) b >> 11 (sign + 52 bits), x = j w_i,
 * accepted at once when |j| < k_i; else the tail (i = 0) or the wedge test. */
static inline double fastml_standard_normal(bitgen_t *rng) {
    uint64_t b, i;
    int64_t j, a;
    double x;
    for (;;) {
        b = rng->next_uint64(rng->state);
        i = b & 255;
        j = ((int64_t)b) >> 11;
        x = (double)j * fastml_zig_nor_w[i];
        a = j < 0 ? -j : j;
        if ((uint64_t)a < fastml_zig_nor_k[i]) return x;
        if (i == 0) {
            x = fastml_normal_tail(rng);
            return j < 0 ? -x : x;
        }
        /* wedge: y uniform in [f(x_i), f(x_{i-1})], accept under the curve */
        if (fastml_zig_nor_f[i] + rng->next_double(rng->state)
                * (fastml_zig_nor_f[i - 1] - fastml_zig_nor_f[i]) < exp(-0.5 * x * x))
            return x;
    }
}

/* float32 tail: as fastml_normal_tail with 24-bit uniforms in (0, 1]. */
static inline float fastml_normal_tail_f(bitgen_t *rng) {
    float xx, yy;
    for (;;) {
        xx = -fastml_zig_nor_inv_r32 * logf(fastml_open_float(rng));
        yy = -logf(fastml_open_float(rng));
        if (yy + yy > xx * xx) return fastml_zig_nor_r32 + xx;
    }
}

/* One N(0, 1) draw, float32 (standard_normal(dtype=float32)): one next_uint32,
 * i = b & 255, j = (int32) b >> 8 (sign + 23 bits), float32 tables and arithmetic. */
static inline float fastml_standard_normal_f(bitgen_t *rng) {
    uint32_t b, i;
    int32_t j, a;
    float x;
    for (;;) {
        b = rng->next_uint32(rng->state);
        i = b & 255;
        j = ((int32_t)b) >> 8;
        x = (float)j * fastml_zig_nor_w32[i];
        a = j < 0 ? -j : j;
        if ((uint32_t)a < fastml_zig_nor_k32[i]) return x;
        if (i == 0) {
            x = fastml_normal_tail_f(rng);
            return j < 0 ? -x : x;
        }
        if (fastml_zig_nor_f32[i] + fastml_next_float(rng)
                * (fastml_zig_nor_f32[i - 1] - fastml_zig_nor_f32[i])
            < expf((float)(-0.5 * x * x)))
            return x;
    }
}

/* ---- standard exponential: ziggurat ----------------------------------------------- */

/* One Exp(1) draw, float64 (standard_exponential, method="ziggurat"): unsigned 53-bit
 * m = b >> 11, layer i = b & 255; the tail beyond r is r + Exp(1) (memorylessness). */
static inline double fastml_standard_exponential(bitgen_t *rng) {
    uint64_t b, i, m;
    double x, shift = 0.0;
    for (;;) {
        b = rng->next_uint64(rng->state);
        i = b & 255;
        m = b >> 11;
        x = (double)(int64_t)m * fastml_zig_exp_w[i];
        if (m < fastml_zig_exp_k[i]) return shift + x;
        if (i == 0) {
            shift += fastml_zig_exp_r;
        } else if (fastml_zig_exp_f[i] + rng->next_double(rng->state)
                       * (fastml_zig_exp_f[i - 1] - fastml_zig_exp_f[i]) < exp(-x)) {
            return shift + x;
        }
    }
}

/* One Exp(1) draw, float32: m = b >> 8 of one next_uint32, float32 tables. */
static inline float fastml_standard_exponential_f(bitgen_t *rng) {
    uint32_t b, i, m;
    float x, shift = 0.0f;
    for (;;) {
        b = rng->next_uint32(rng->state);
        i = b & 255;
        m = b >> 8;
        x = (float)(int32_t)m * fastml_zig_exp_w32[i];
        if (m < fastml_zig_exp_k32[i]) return shift + x;
        if (i == 0) {
            shift += fastml_zig_exp_r32;
        } else if (fastml_zig_exp_f32[i] + fastml_next_float(rng)
                       * (fastml_zig_exp_f32[i - 1] - fastml_zig_exp_f32[i]) < expf(-x)) {
            return shift + x;
        }
    }
}

/* ---- gamma: Marsaglia & Tsang ----------------------------------------------------- */

/* Gamma(d + 1/3, 1) with c = 1/sqrt(9 d): x ~ N(0, 1) by the ziggurat, v = (1 + c x)^3
 * (x redrawn while v <= 0), u = fastml_open_double; accept d v when
 * u < 1 - 0.0331 x^4 or log u < x^2/2 + d (1 - v + log v). */
static inline double fastml_gamma_mt(bitgen_t *rng, double d, double c) {
    double x, v, u;
    for (;;) {
        do {
            x = fastml_standard_normal(rng);
            v = 1.0 + c * x;
        } while (!(v > 0.0));
        v = v * v * v;
        u = fastml_open_double(rng);
        if (u < 1.0 - 0.0331 * (x * x) * (x * x)) return d * v;
        if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) return d * v;
    }
}

/* n Gamma(shape, scale) draws into out (fastml.sampling.gamma): shape >= 1 draws
 * fastml_gamma_mt with d = shape - 1/3; shape < 1 draws G(shape + 1), then one
 * fastml_open_double u, and returns scale G u^(1/shape).
 * Assumes shape > 0 and scale > 0, both finite. */
static inline void fastml_gamma_fill(bitgen_t *rng, double shape, double scale,
                                     ptrdiff_t n, double *out) {
    double a = shape >= 1.0 ? shape : shape + 1.0;
    double d = a - 1.0 / 3.0;
    double c = 1.0 / sqrt(9.0 * d);
    double inv = 1.0 / shape;
    double g, u;
    ptrdiff_t i;
    for (i = 0; i < n; i++) {
        g = fastml_gamma_mt(rng, d, c);
        if (shape >= 1.0) {
            out[i] = scale * g;
        } else {
            u = fastml_open_double(rng);
            out[i] = scale * g * pow(u, inv);
        }
    }
}

/* One Gamma(shape, 1) draw: fastml_gamma_fill with scale 1 and n = 1 (same bits). */
static inline double fastml_standard_gamma(bitgen_t *rng, double shape) {
    double x;
    fastml_gamma_fill(rng, shape, 1.0, 1, &x);
    return x;
}

/* ---- fills of n values, in order -------------------------------------------------- */

static inline void fastml_standard_normal_fill(bitgen_t *rng, ptrdiff_t n, double *out) {
    ptrdiff_t i;
    for (i = 0; i < n; i++) out[i] = fastml_standard_normal(rng);
}

static inline void fastml_standard_normal_fill_f(bitgen_t *rng, ptrdiff_t n, float *out) {
    ptrdiff_t i;
    for (i = 0; i < n; i++) out[i] = fastml_standard_normal_f(rng);
}

static inline void fastml_standard_exponential_fill(bitgen_t *rng, ptrdiff_t n,
                                                    double *out) {
    ptrdiff_t i;
    for (i = 0; i < n; i++) out[i] = fastml_standard_exponential(rng);
}

static inline void fastml_standard_exponential_fill_f(bitgen_t *rng, ptrdiff_t n,
                                                      float *out) {
    ptrdiff_t i;
    for (i = 0; i < n; i++) out[i] = fastml_standard_exponential_f(rng);
}

/* n U(0, 1) draws, open at both ends (fastml_open_double). */
static inline void fastml_uniform_open_fill(bitgen_t *rng, ptrdiff_t n, double *out) {
    ptrdiff_t i;
    for (i = 0; i < n; i++) out[i] = fastml_open_double(rng);
}

#ifdef __cplusplus
}
#endif

#endif /* FASTML_RANDOM_H */
