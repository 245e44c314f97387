/* Direct 2-D convolution at stride 1 for fastml._kernels._conv: the forward pass and the
 * weight gradient of one image, register-blocked with AVX-512, on zero-padded copies.
 *
 * Forward (cross-correlation, Goodfellow et al. 2016, eq. 9.4), on the padded image xp:
 *
 *     y[f, oh, ow] = b[f] + sum_t w[f, t] xp[off[t] + oh WP + ow],
 *
 * with taps t = (c kh + i) kw + j at offsets off[t] = (c HP + i) WP + j (HP, WP: the
 * padded height and row width). A tile is FB filters x one output row segment of NV
 * vectors: its FB x NV accumulators stay in registers while the taps stream by, each
 * tap NV unaligned loads of the padded row and one broadcast weight per filter (an
 * outer-product update, as in the GEMM micro-kernels of Goto & van de Geijn 2008, with
 * the im2col matrix never written: Chellapilla et al. 2006 form it, this reads it in
 * place). The input gradient of a stride-1 convolution is the same operation on the
 * output gradient padded by k - 1 - p, with the weights flipped and the channel axes
 * swapped (the adjoint), so it reuses the forward kernel.
 *
 * Weight gradient, with the pixels of the padded planes flattened (q = oh WP + ow):
 *
 *     dw[f, t] += sum_q gp[f, q] xp[off[t] + q],
 *
 * where gp is the output gradient laid out on the same row width WP, zero outside the
 * data: FW filters x JB taps of vector accumulators run over q, then are summed across
 * lanes.
 *
 * The kernels are compiled for AVX-512 (F, VL) through a target attribute, whatever the
 * flags of the file, and used only where the CPU and OS support it
 * (fml_conv_direct_available); elsewhere fastml keeps im2col + BLAS GEMM, which the
 * same loops with 256-bit vectors did not beat (measured 35-51 GFLOP/s against
 * OpenBLAS's ~60 on the benchmark's shapes; 137 with AVX-512). Buffers are padded so
 * that every vector load is in bounds (see the Cython callers in _conv.pyx).
 */
#ifndef FASTML_CONV_DIRECT_H
#define FASTML_CONV_DIRECT_H

#include <stddef.h>

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define FML_TARGET __attribute__((target("avx512f,avx512vl,avx2,fma")))
#define FML_FB 8 /* forward: filters per tile */
#define FML_NV 2 /* forward: vectors per row segment */
#define FML_FW 4 /* weight gradient: filters per tile */
#define FML_JB 6 /* weight gradient: taps per tile */
typedef float fml_v16f __attribute__((vector_size(64), aligned(4), may_alias));
typedef double fml_v8d __attribute__((vector_size(64), aligned(8), may_alias));

static inline int fml_conv_direct_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
}

#define FML_DEFINE_DIRECT(T, VT)                                                        \
/* y (F, OH, OW) from xp (taps read at off[t] + oh WP + ow, in bounds for ow <          \
 * round_up(OW, FML_NV VW)) and wp, the weights packed (ceil(F / FB), taps, FB) with    \
 * zeros for filters >= F. */                                                           \
FML_TARGET static void fml_conv_fwd_##T(const T *xp, ptrdiff_t WP, const ptrdiff_t *off,\
                                        ptrdiff_t taps, const T *wp, ptrdiff_t F,       \
                                        const T *bias, ptrdiff_t OH, ptrdiff_t OW, T *y)\
{                                                                                       \
    enum { VW = sizeof(VT) / sizeof(T), CH = FML_NV * VW };                             \
    const ptrdiff_t nfb = (F + FML_FB - 1) / FML_FB;                                    \
    ptrdiff_t fb0, oh, ow0, f, v, t, nf, nw;                                            \
    for (fb0 = 0; fb0 < nfb; fb0++) {                                                   \
        nf = F - fb0 * FML_FB < FML_FB ? F - fb0 * FML_FB : FML_FB;                     \
        for (oh = 0; oh < OH; oh++) {                                                   \
            for (ow0 = 0; ow0 < OW; ow0 += CH) {                                        \
                VT acc[FML_FB][FML_NV];                                                 \
                T out[FML_FB][CH];                                                      \
                const T *w = wp + fb0 * taps * FML_FB;                                  \
                const T *xr = xp + oh * WP + ow0;                                       \
                for (f = 0; f < FML_FB; f++)                                            \
                    for (v = 0; v < FML_NV; v++)                                        \
                        acc[f][v] = (VT){0};                                            \
                for (t = 0; t < taps; t++, w += FML_FB) {                               \
                    VT xv[FML_NV];                                                      \
                    for (v = 0; v < FML_NV; v++)                                        \
                        xv[v] = *(const VT *)(xr + off[t] + v * VW);                    \
                    for (f = 0; f < FML_FB; f++)                                        \
                        for (v = 0; v < FML_NV; v++)                                    \
                            acc[f][v] += xv[v] * w[f];                                  \
                }                                                                       \
                for (f = 0; f < FML_FB; f++)                                            \
                    for (v = 0; v < FML_NV; v++)                                        \
                        *(VT *)&out[f][v * VW] = acc[f][v];                             \
                nw = OW - ow0 < CH ? OW - ow0 : CH;                                     \
                for (f = 0; f < nf; f++) {                                              \
                    T *yr = y + ((fb0 * FML_FB + f) * OH + oh) * OW + ow0;              \
                    T b = bias ? bias[fb0 * FML_FB + f] : (T)0;                         \
                    for (t = 0; t < nw; t++)                                            \
                        yr[t] = out[f][t] + b;                                          \
                }                                                                       \
            }                                                                           \
        }                                                                               \
    }                                                                                   \
}                                                                                       \
                                                                                        \
/* dw[f, t] += sum_{q < NQ} gp[f GP + q] xp[off[t] + q] for f < F, t < taps; gp holds   \
 * round_up(F, FW) planes (zero beyond F), NQ is a multiple of the vector width, off    \
 * has round_up(taps, JB) entries (in-bounds offsets for the padding taps). */          \
FML_TARGET static void fml_conv_dw_##T(const T *xp, const ptrdiff_t *off,               \
                                       ptrdiff_t taps, const T *gp, ptrdiff_t GP,       \
                                       ptrdiff_t F, ptrdiff_t NQ, T *dw)                \
{                                                                                       \
    enum { VW = sizeof(VT) / sizeof(T) };                                               \
    ptrdiff_t f0, t0, q, f, t, l, nf, nt;                                               \
    for (f0 = 0; f0 < F; f0 += FML_FW) {                                                \
        nf = F - f0 < FML_FW ? F - f0 : FML_FW;                                         \
        for (t0 = 0; t0 < taps; t0 += FML_JB) {                                         \
            VT acc[FML_FW][FML_JB];                                                     \
            const T *xt[FML_JB];                                                        \
            nt = taps - t0 < FML_JB ? taps - t0 : FML_JB;                               \
            for (t = 0; t < FML_JB; t++)                                                \
                xt[t] = xp + off[t0 + t];                                               \
            for (f = 0; f < FML_FW; f++)                                                \
                for (t = 0; t < FML_JB; t++)                                            \
                    acc[f][t] = (VT){0};                                                \
            for (q = 0; q < NQ; q += VW) {                                              \
                VT gv[FML_FW];                                                          \
                for (f = 0; f < FML_FW; f++)                                            \
                    gv[f] = *(const VT *)(gp + (f0 + f) * GP + q);                      \
                for (t = 0; t < FML_JB; t++) {                                          \
                    VT xv = *(const VT *)(xt[t] + q);                                   \
                    for (f = 0; f < FML_FW; f++)                                        \
                        acc[f][t] += gv[f] * xv;                                        \
                }                                                                       \
            }                                                                           \
            for (f = 0; f < nf; f++)                                                    \
                for (t = 0; t < nt; t++) {                                              \
                    T lanes[VW], s = 0;                                                 \
                    *(VT *)lanes = acc[f][t];                                           \
                    for (l = 0; l < VW; l++)                                            \
                        s += lanes[l];                                                  \
                    dw[(f0 + f) * taps + t0 + t] += s;                                  \
                }                                                                       \
        }                                                                               \
    }                                                                                   \
}

FML_DEFINE_DIRECT(float, fml_v16f)
FML_DEFINE_DIRECT(double, fml_v8d)

#else /* no AVX-512 code on this compiler or architecture: never called */
#define FML_FB 1
#define FML_NV 1
#define FML_FW 1
#define FML_JB 1
static inline int fml_conv_direct_available(void) { return 0; }
#define FML_DEFINE_STUB(T)                                                              \
static void fml_conv_fwd_##T(const T *xp, ptrdiff_t WP, const ptrdiff_t *off,           \
                             ptrdiff_t taps, const T *wp, ptrdiff_t F, const T *bias,   \
                             ptrdiff_t OH, ptrdiff_t OW, T *y)                          \
{                                                                                       \
    (void)xp; (void)WP; (void)off; (void)taps; (void)wp; (void)F; (void)bias;           \
    (void)OH; (void)OW; (void)y;                                                        \
}                                                                                       \
static void fml_conv_dw_##T(const T *xp, const ptrdiff_t *off, ptrdiff_t taps,          \
                            const T *gp, ptrdiff_t GP, ptrdiff_t F, ptrdiff_t NQ, T *dw)\
{                                                                                       \
    (void)xp; (void)off; (void)taps; (void)gp; (void)GP; (void)F; (void)NQ; (void)dw;   \
}
FML_DEFINE_STUB(float)
FML_DEFINE_STUB(double)
#endif

/* Vector width in bytes of the direct kernels (64: AVX-512). */
#define FML_VBYTES 64

#endif
