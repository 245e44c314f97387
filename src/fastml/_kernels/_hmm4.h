/* HMM recursions for K = 4 states held in one AVX2 register (fastml._kernels._hmm).
 *
 * At small K a step of the forward, backward or Viterbi recursion is a chain of a few
 * dependent vector operations, so its latency, not its arithmetic, sets the speed. Here
 * the state vector never leaves a register, and everything that does not depend on the
 * previous step (emission lookups, scale factors, back-pointers, posteriors, expected
 * counts) is computed beside the chain.
 *
 * Products with the 4 x 4 transition matrix A use the four permutations j -> j ^ r
 * (r = 0..3, a Latin square: identity, swap within 128-bit halves, swap halves, reverse):
 *
 *     sum_i u(i) A_ij = sum_r u(j ^ r) A_{j ^ r, j}
 *
 * so u itself (no shuffle) and its in-half swap (1 cycle) enter first, the cross-half
 * permutations (3 cycles) in parallel, and the chain per step is two multiply-adds and
 * one add (13 cycles) instead of broadcasts, products and a tree of sums.
 *
 * Scaling (PRML eqs. 13.59-13.65 hold for any positive scale factors): the forward vector
 * is multiplied at step t by s_t = 2^k_t, chosen from the sum of the vector three steps
 * earlier and the factors applied since (k_t = -(E_{t-3} + k_{t-2} + k_{t-1}), E the
 * binary exponent of that sum), so s_t is known before step t starts and folds into the
 * emission column: no division, no log and no extra multiply in the chain. The sum then
 * stays in [2^(3 phi), 2), phi < 0 the binary log of the smallest per-step shrinkage of
 * the last three steps; powers of two make the rescaling exact and log p(X) is
 * ln 2 (sum of exponents) + log(last sum). A sum below DBL_MIN (three steps shrinking
 * by 2^-1020) is reported as an underflow, as the eager scaling reports one step's.
 *
 * Only built where the compiler targets AVX2 + FMA (the _avx2 modules, FASTML_HMM4 = 1);
 * elsewhere the names below are no-op macros that the kernels never reach
 * (FASTML_HMM4 = 0), using their generic loops instead.
 */
#ifndef FASTML_HMM4_H
#define FASTML_HMM4_H

#include <stddef.h>
#include <stdint.h>

/* Forward state carried between the chunks of one sequence (the kernel polls for
 * Ctrl-C between chunks): the current vector, the last three binary exponents of its
 * sum, the last two scale exponents, their running sum and the smallest sum seen. */
typedef struct {
    double u[4];
    int64_t e1, e2, e3, k1, k2, ksum;
    double smallest;
} fastml_hmm4_fwd;

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define FASTML_HMM4 1

static inline __m256d fastml_hmm4_p1(__m256d u) { return _mm256_permute_pd(u, 0x5); }
static inline __m256d fastml_hmm4_p2(__m256d u)
{
    return _mm256_permute4x64_pd(u, _MM_SHUFFLE(1, 0, 3, 2));
}
static inline __m256d fastml_hmm4_p3(__m256d u)
{
    return _mm256_permute4x64_pd(u, _MM_SHUFFLE(0, 1, 2, 3));
}

/* The sum of the lanes, in every lane. */
static inline __m256d fastml_hmm4_hsum(__m256d u)
{
    __m256d h = _mm256_add_pd(u, fastml_hmm4_p2(u));
    return _mm256_add_pd(h, fastml_hmm4_p1(h));
}

/* d_r[j] = M[j ^ r, j] (for forward products u M) or, with trans = 1, M[j, j ^ r]
 * (for products M v). */
static inline void fastml_hmm4_diags(const double *M, int trans, __m256d d[4])
{
    for (int r = 0; r < 4; r++) {
        double x[4];
        for (int j = 0; j < 4; j++)
            x[j] = trans ? M[4 * j + (j ^ r)] : M[4 * (j ^ r) + j];
        d[r] = _mm256_loadu_pd(x);
    }
}

static inline const double *fastml_hmm4_row(const double *tab, const ptrdiff_t *rows,
                                             ptrdiff_t t)
{
    return tab + 4 * (rows != NULL ? rows[t] : t);
}

/* Forward steps t = ta .. tb - 1 (PRML eq. 13.59 with the scaling above) from the state
 * in *st (the vector of step ta - 1). With alpha not NULL, row t - t0 of alpha gets the
 * scaled vector of step t and cscale[t - t0] its factor s_t. */
static void fastml_hmm4_forward(fastml_hmm4_fwd *st, const double *A, const double *tab,
                                const ptrdiff_t *rows, ptrdiff_t t0, ptrdiff_t ta,
                                ptrdiff_t tb, double *alpha, double *cscale)
{
    __m256d d[4];
    fastml_hmm4_diags(A, 0, d);
    __m256d u = _mm256_loadu_pd(st->u);
    __m256i e1 = _mm256_set1_epi64x(st->e1), e2 = _mm256_set1_epi64x(st->e2),
            e3 = _mm256_set1_epi64x(st->e3), k1 = _mm256_set1_epi64x(st->k1),
            k2 = _mm256_set1_epi64x(st->k2), ksum = _mm256_set1_epi64x(st->ksum);
    const __m256i bias = _mm256_set1_epi64x(1023);
    __m256d smallest = _mm256_set1_pd(st->smallest);
    for (ptrdiff_t t = ta; t < tb; t++) {
        __m256i k = _mm256_sub_epi64(_mm256_setzero_si256(),
                                     _mm256_add_epi64(e3, _mm256_add_epi64(k2, k1)));
        __m256d s = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(k, bias), 52));
        __m256d bs = _mm256_mul_pd(_mm256_loadu_pd(fastml_hmm4_row(tab, rows, t)), s);
        __m256d x = _mm256_fmadd_pd(fastml_hmm4_p2(u), _mm256_mul_pd(d[2], bs),
                                    _mm256_mul_pd(u, _mm256_mul_pd(d[0], bs)));
        __m256d y = _mm256_fmadd_pd(fastml_hmm4_p3(u), _mm256_mul_pd(d[3], bs),
                                    _mm256_mul_pd(fastml_hmm4_p1(u),
                                                  _mm256_mul_pd(d[1], bs)));
        u = _mm256_add_pd(x, y);
        __m256d sum = fastml_hmm4_hsum(u);
        /* NaN (only after an underflow already recorded) keeps the smallest sum */
        smallest = _mm256_min_pd(sum, smallest);
        e3 = e2;
        e2 = e1;
        e1 = _mm256_sub_epi64(_mm256_srli_epi64(_mm256_castpd_si256(sum), 52), bias);
        k2 = k1;
        k1 = k;
        ksum = _mm256_add_epi64(ksum, k);
        if (alpha != NULL) {
            _mm256_storeu_pd(alpha + 4 * (t - t0), u);
            _mm_store_sd(cscale + (t - t0), _mm256_castpd256_pd128(s));
        }
    }
    _mm256_storeu_pd(st->u, u);
    st->e1 = _mm256_extract_epi64(e1, 0);
    st->e2 = _mm256_extract_epi64(e2, 0);
    st->e3 = _mm256_extract_epi64(e3, 0);
    st->k1 = _mm256_extract_epi64(k1, 0);
    st->k2 = _mm256_extract_epi64(k2, 0);
    st->ksum = _mm256_extract_epi64(ksum, 0);
    st->smallest = _mm256_cvtsd_f64(smallest);
}

/* One backward step's products: beta_{t-1} = A (b_t s_t beta_t) (eq. 13.62) as
 * sum_r perm_r(beta) * f_r with f_r[i] = A[i, i ^ r] (b s)[i ^ r]; the four terms are
 * returned too (xi, eq. 13.65, is alpha_{t-1}(i) times them). */
static inline __m256d fastml_hmm4_back(__m256d beta, const __m256d e[4], __m256d bs,
                                       __m256d terms[4], int want_terms)
{
    __m256d f0 = _mm256_mul_pd(e[0], bs);
    __m256d f1 = _mm256_mul_pd(e[1], fastml_hmm4_p1(bs));
    __m256d f2 = _mm256_mul_pd(e[2], fastml_hmm4_p2(bs));
    __m256d f3 = _mm256_mul_pd(e[3], fastml_hmm4_p3(bs));
    if (want_terms) {
        terms[0] = _mm256_mul_pd(beta, f0);
        terms[1] = _mm256_mul_pd(fastml_hmm4_p1(beta), f1);
        terms[2] = _mm256_mul_pd(fastml_hmm4_p2(beta), f2);
        terms[3] = _mm256_mul_pd(fastml_hmm4_p3(beta), f3);
        return _mm256_add_pd(_mm256_add_pd(terms[0], terms[2]),
                             _mm256_add_pd(terms[1], terms[3]));
    }
    __m256d x = _mm256_fmadd_pd(fastml_hmm4_p2(beta), f2, _mm256_mul_pd(beta, f0));
    __m256d y = _mm256_fmadd_pd(fastml_hmm4_p3(beta), f3,
                                _mm256_mul_pd(fastml_hmm4_p1(beta), f1));
    return _mm256_add_pd(x, y);
}

/* Backward steps t = ta down to tb + 1 (ta > tb >= t0) from beta (beta-hat_ta, 4
 * doubles, updated to beta-hat_tb), with alpha-hat_t in row t - t0 of alpha and s_t in
 * cscale[t - t0] as the forward pass stored them. Rows t = ta .. tb + 1 of gamma get the
 * posteriors alpha-hat_t beta-hat_t / sum (eq. 13.64); gamma's row t may be alpha's row
 * t - t0 (read before it is written; row t - 1 is read for xi before its turn). Row
 * rows[t] of counts (row 0 with rows NULL) gets them added if counts is not NULL, and
 * xi (4 x 4, if not NULL) the expected transitions alpha-hat_{t-1}(i) A_ij b_t(j) s_t
 * beta-hat_t(j) summed over these steps (eq. 13.65). */
static void fastml_hmm4_backward(double *beta_io, const double *A, const double *tab,
                                 const ptrdiff_t *rows, ptrdiff_t t0, ptrdiff_t ta,
                                 ptrdiff_t tb, const double *alpha, const double *cscale,
                                 double *gamma, double *counts, double *xi)
{
    __m256d e[4], terms[4];
    __m256d x0 = _mm256_setzero_pd(), x1 = x0, x2 = x0, x3 = x0;
    fastml_hmm4_diags(A, 1, e);
    __m256d beta = _mm256_loadu_pd(beta_io);
    for (ptrdiff_t t = ta; t > tb; t--) {
        __m256d g = _mm256_mul_pd(_mm256_loadu_pd(alpha + 4 * (t - t0)), beta);
        g = _mm256_div_pd(g, fastml_hmm4_hsum(g));
        _mm256_storeu_pd(gamma + 4 * t, g);
        if (counts != NULL) {
            double *c = counts + 4 * (rows != NULL ? rows[t] : 0);
            _mm256_storeu_pd(c, _mm256_add_pd(_mm256_loadu_pd(c), g));
        }
        __m256d bs = _mm256_mul_pd(_mm256_loadu_pd(fastml_hmm4_row(tab, rows, t)),
                                   _mm256_broadcast_sd(cscale + (t - t0)));
        if (xi != NULL) {
            __m256d a = _mm256_loadu_pd(alpha + 4 * (t - 1 - t0));
            beta = fastml_hmm4_back(beta, e, bs, terms, 1);
            x0 = _mm256_fmadd_pd(a, terms[0], x0);
            x1 = _mm256_fmadd_pd(a, terms[1], x1);
            x2 = _mm256_fmadd_pd(a, terms[2], x2);
            x3 = _mm256_fmadd_pd(a, terms[3], x3);
        } else {
            beta = fastml_hmm4_back(beta, e, bs, terms, 0);
        }
    }
    _mm256_storeu_pd(beta_io, beta);
    if (xi != NULL) {
        double x[4][4];
        _mm256_storeu_pd(x[0], x0);
        _mm256_storeu_pd(x[1], x1);
        _mm256_storeu_pd(x[2], x2);
        _mm256_storeu_pd(x[3], x3);
        for (int r = 0; r < 4; r++)
            for (int i = 0; i < 4; i++)
                xi[4 * i + (i ^ r)] += x[r][i];
    }
}

/* Viterbi steps t = ta .. tb - 1 (PRML eq. 13.68 in logs) from delta (delta_{ta - 1}, 4
 * doubles, updated to delta_{tb - 1}):
 *
 *     delta_t(j) = max_i (delta_{t-1}(i) + LA_ij) + log b_t(j),
 *
 * the same sums and maxima as the generic loop, bit for bit (a maximum is exact in any
 * order). bp[t - t0] gets the back-pointers of step t, the lowest i reaching the
 * maximum for each j, as 4 i in bits 4 j .. 4 j + 3: the backtracking step is then
 * sh <- (bp[t] >> sh) & 15 with sh = 4 z_t (a shift and a mask per step). */
static void fastml_hmm4_viterbi(double *delta_io, const double *LA, const double *tab,
                                const ptrdiff_t *rows, ptrdiff_t t0, ptrdiff_t ta,
                                ptrdiff_t tb, uint16_t *bp)
{
    /* spread[n]: bit j of the 4-bit mask n moved to bit 4 j + 2 */
    static const uint16_t spread[16] = {
        0x0000, 0x0004, 0x0040, 0x0044, 0x0400, 0x0404, 0x0440, 0x0444,
        0x4000, 0x4004, 0x4040, 0x4044, 0x4400, 0x4404, 0x4440, 0x4444};
    const __m256d r0 = _mm256_loadu_pd(LA), r1 = _mm256_loadu_pd(LA + 4),
                  r2 = _mm256_loadu_pd(LA + 8), r3 = _mm256_loadu_pd(LA + 12);
    __m256d d = _mm256_loadu_pd(delta_io);
    for (ptrdiff_t t = ta; t < tb; t++) {
        __m256d s0 = _mm256_add_pd(_mm256_permute4x64_pd(d, 0x00), r0);
        __m256d s1 = _mm256_add_pd(_mm256_permute4x64_pd(d, 0x55), r1);
        __m256d s2 = _mm256_add_pd(_mm256_permute4x64_pd(d, 0xAA), r2);
        __m256d s3 = _mm256_add_pd(_mm256_permute4x64_pd(d, 0xFF), r3);
        __m256d m01 = _mm256_max_pd(s0, s1);
        __m256d m23 = _mm256_max_pd(s2, s3);
        /* strict > in the order i = 0, 1, 2, 3: ties keep the lower index */
        __m256d c1 = _mm256_cmp_pd(s1, s0, _CMP_GT_OQ);
        __m256d c2 = _mm256_cmp_pd(s2, m01, _CMP_GT_OQ);
        __m256d c3 = _mm256_cmp_pd(s3, _mm256_max_pd(m01, s2), _CMP_GT_OQ);
        __m256d lo = _mm256_or_pd(_mm256_andnot_pd(c2, c1), c3);
        __m256d hi = _mm256_or_pd(c2, c3);
        bp[t - t0] = (uint16_t)(spread[_mm256_movemask_pd(lo)] |
                                (spread[_mm256_movemask_pd(hi)] << 1));
        d = _mm256_add_pd(_mm256_max_pd(m01, m23),
                          _mm256_loadu_pd(fastml_hmm4_row(tab, rows, t)));
    }
    _mm256_storeu_pd(delta_io, d);
}

#else
#define FASTML_HMM4 0
/* Never called (FASTML_HMM4 = 0): the kernels take their generic loops. */
#define fastml_hmm4_forward(...) ((void)0)
#define fastml_hmm4_backward(...) ((void)0)
#define fastml_hmm4_viterbi(...) ((void)0)
#endif

#endif
