/* The dense collapsed-Gibbs draw of fastml._kernels._lda, in four float32 lanes.
 *
 * p_k = (n_kw + eta) A_k, A_k = (n_dk + alpha) / (n_k + V eta) (Griffiths & Steyvers
 * 2004, eq. 5), sampled by inverse CDF with the topics laid out in R = ceil(K / 4) rows
 * of 4 lanes: row r < R - 1 holds topics 4 r .. 4 r + 3; the last row holds topics
 * K - 4 .. K - 1 when K >= 4 (its first 4 R - K lanes repeat topics of row R - 2 and
 * carry A = 0, so every read stays inside the count row) and topics 0 .. K - 1 when
 * K < 4 (lanes past K carry A = 0). A (4 R floats, the "slots") is the document's
 * factor in that layout, rounded to float32.
 *
 * The four lanes are four independent chains of running sums (one vector addition per
 * row); the lane is found from the lanes' totals, then the row inside the lane by
 * counting, without branches, the lane's running sums (but its last) that are <= the
 * rest of u. All arithmetic is float32 with no fused multiply-add (the module is built
 * with -ffp-contract=off), so every compiler, and the numpy transcription in the
 * tests, gives the same bits.
 *
 * Store-to-load forwarding: a vector load right after a narrower store to some of its
 * bytes waits until the store reaches the cache. So the draw reads the word's count
 * row with the token still in it (the one is subtracted in registers), and A and the
 * count rows are written a whole row of 4 at a time (lda_a_set, lda_nw_add), which the
 * next row load receives forwarded (measured at K = 100: 153 ms a sweep against 195
 * with 64-bit scalar sums).
 *
 * GCC and Clang: vector extensions (SSE2 on x86-64, NEON on arm64). Other compilers:
 * the same operations lane by lane. */
#ifndef FASTML_LDA_DRAW_H
#define FASTML_LDA_DRAW_H

#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define LDA_INLINE static inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define LDA_INLINE static __forceinline
#else
#define LDA_INLINE static inline
#endif

#if defined(__GNUC__) || defined(__clang__)
typedef float lda_f4 __attribute__((vector_size(16)));
typedef int lda_i4 __attribute__((vector_size(16)));

static inline lda_f4 lda_loadf(const float *p) { lda_f4 v; memcpy(&v, p, 16); return v; }
static inline lda_i4 lda_loadi(const int *p) { lda_i4 v; memcpy(&v, p, 16); return v; }
static inline void lda_storef(float *p, lda_f4 v) { memcpy(p, &v, 16); }
static inline lda_f4 lda_splat(float x) { lda_f4 v = {x, x, x, x}; return v; }
static inline lda_i4 lda_iota(int base)
{
    const lda_i4 iota = {0, 1, 2, 3};
    lda_i4 b = {base, base, base, base};
    return b + iota;
}
/* (counts, minus one in the lane whose topic is k) + eta, times a */
static inline lda_f4 lda_mass(lda_i4 n, lda_i4 topic, int k, float eta, lda_f4 a)
{
    lda_i4 kk = {k, k, k, k};
    n += (lda_i4)(topic == kk); /* true is -1 */
    return (__builtin_convertvector(n, lda_f4) + lda_splat(eta)) * a;
}
static inline lda_f4 lda_add(lda_f4 a, lda_f4 b) { return a + b; }
static inline lda_f4 lda_set_lane(lda_f4 v, int lane, float x)
{
    lda_i4 ll = {lane, lane, lane, lane};
    lda_i4 m = (lda_i4)(lda_iota(0) == ll);
    return (lda_f4)(((lda_i4)v & ~m) | ((lda_i4)lda_splat(x) & m));
}
static inline lda_i4 lda_add_lane(lda_i4 n, int lane, int d)
{
    lda_i4 ll = {lane, lane, lane, lane}, dd = {d, d, d, d};
    return n + (dd & (lda_i4)(lda_iota(0) == ll));
}
/* keeps the compiler from turning the row search into a gather */
#define LDA_OPAQUE(x) __asm__("" : "+r"(x))
#else
typedef struct { float v[4]; } lda_f4;
typedef struct { int v[4]; } lda_i4;

static inline lda_f4 lda_loadf(const float *p) { lda_f4 r; memcpy(r.v, p, 16); return r; }
static inline lda_i4 lda_loadi(const int *p) { lda_i4 r; memcpy(r.v, p, 16); return r; }
static inline void lda_storef(float *p, lda_f4 v) { memcpy(p, v.v, 16); }
static inline lda_f4 lda_splat(float x)
{
    lda_f4 r; int j;
    for (j = 0; j < 4; j++) r.v[j] = x;
    return r;
}
static inline lda_i4 lda_iota(int base)
{
    lda_i4 r; int j;
    for (j = 0; j < 4; j++) r.v[j] = base + j;
    return r;
}
static inline lda_f4 lda_mass(lda_i4 n, lda_i4 topic, int k, float eta, lda_f4 a)
{
    lda_f4 r; int j;
    for (j = 0; j < 4; j++)
        r.v[j] = ((float)(n.v[j] - (topic.v[j] == k)) + eta) * a.v[j];
    return r;
}
static inline lda_f4 lda_add(lda_f4 a, lda_f4 b)
{
    int j;
    for (j = 0; j < 4; j++) a.v[j] += b.v[j];
    return a;
}
static inline lda_f4 lda_set_lane(lda_f4 v, int lane, float x) { v.v[lane] = x; return v; }
static inline lda_i4 lda_add_lane(lda_i4 n, int lane, int d) { n.v[lane] += d; return n; }
#define LDA_OPAQUE(x) ((void)0)
#endif

/* Rows of the layout at K topics, and the slot of topic k. */
static inline int lda_rows(int K) { return (K + 3) >> 2; }
static inline int lda_slot(int k, int K)
{
    int full = 4 * (lda_rows(K) - 1);
    return (k < full || K < 4) ? k : full + k - (K - 4);
}

/* A document's factors A_k = (nd[k] + alpha) inv_den[k], rounded to float32, in the
 * slots (repeated and padding lanes 0): the rows that hold topics in order in one loop
 * the compiler vectorises, then the last row. */
static inline void lda_a_fill(float *A, const int *nd, const double *inv_den,
                              double alpha, int K)
{
    const int full = 4 * (lda_rows(K) - 1), last = K >= 4 ? K - 4 : 0;
    int k, j;
    for (k = 0; k < full; k++)
        A[k] = (float)((nd[k] + alpha) * inv_den[k]);
    for (j = 0; j < 4; j++) {
        k = last + j;
        A[full + j] = (k < K && (k >= full || K < 4))
                          ? (float)((nd[k] + alpha) * inv_den[k]) : 0.0f;
    }
}

/* A[slot of k] = x, written as its whole row. */
static inline void lda_a_set(float *A, int slot, float x)
{
    float *row = A + (slot & ~3);
    lda_storef(row, lda_set_lane(lda_loadf(row), slot & 3, x));
}

/* nw[k] += d: as a whole row of 4 counts where topic k is in a row of its own (so
 * the draw's row loads receive it forwarded), else (the last row of a K that is not a
 * multiple of 4) alone. */
static inline void lda_nw_add(int *nw, int K, int k, int d)
{
    if (k < 4 * (lda_rows(K) - 1) || (K & 3) == 0) {
        int *row = nw + (k & ~3);
        lda_i4 n = lda_add_lane(lda_loadi(row), k & 3, d);
        memcpy(row, &n, 16);
    } else {
        nw[k] += d;
    }
}

/* Row r of the masses p_k = (nw[k] - [k == kout] + eta) A_k in the slots' layout. */
LDA_INLINE lda_f4 lda_row(const int *nw, const float *A, int r, int R, int K, int kout,
                          float eta)
{
    int base = r < R - 1 ? 4 * r : K - 4;
    if (K < 4) {
        int pad[4] = {0, 0, 0, 0};
        memcpy(pad, nw, 4 * (size_t)K);
        return lda_mass(lda_loadi(pad), lda_iota(0), kout, eta, lda_loadf(A));
    }
    return lda_mass(lda_loadi(nw + base), lda_iota(base), kout, eta, lda_loadf(A + 4 * r));
}

/* The topic whose interval holds u (in [0, 1)) times the total, from the lanes'
 * running sums cum (4 R floats) and totals s. */
LDA_INLINE int lda_search(const float *cum, lda_f4 s, int K, double u)
{
    const int R = lda_rows(K), last = K >= 4 ? K - 4 : 0;
    float T[4], o[4], x, rest;
    int r, lane, row;
    memcpy(T, &s, 16);
    o[0] = 0.0f;
    o[1] = T[0];
    o[2] = T[0] + T[1];
    o[3] = o[2] + T[2];
    x = (float)u * (o[2] + (T[2] + T[3]));
    lane = (o[1] <= x) + (o[2] <= x) + (o[3] <= x);
    rest = x - o[lane];
    row = 0;
    for (r = 0; r < R - 1; r++) {
        row += cum[4 * r + lane] <= rest;
        LDA_OPAQUE(row);
    }
    r = row < R - 1 ? 4 * row + lane : last + lane;
    return r < K ? r : K - 1;
}

/* Sample k from p_k = (nw[k] - [k == kout] + eta) A_k given u in [0, 1): nw is the
 * word's count row (K ints) with the token still in topic kout; cum (4 R floats)
 * receives the running sums. */
LDA_INLINE int lda_draw(const int *nw, const float *A, float *cum, int K, int kout,
                        float eta, double u)
{
    const int R = lda_rows(K);
    lda_f4 s = lda_splat(0.0f);
    int r;
    for (r = 0; r < R; r++) {
        s = lda_add(s, lda_row(nw, A, r, R, K, kout, eta));
        lda_storef(cum + 4 * r, s);
    }
    return lda_search(cum, s, K, u);
}

/* Two draws (of two chains) with their running sums in one loop. */
LDA_INLINE void lda_draw_pair(const int *nw, const float *A, float *cum, int kout,
                              double u, const int *nw2, const float *A2, float *cum2,
                              int kout2, double u2, int K, float eta, int *k, int *k2)
{
    const int R = lda_rows(K);
    lda_f4 s = lda_splat(0.0f), s2 = lda_splat(0.0f);
    int r;
    for (r = 0; r < R; r++) {
        s = lda_add(s, lda_row(nw, A, r, R, K, kout, eta));
        lda_storef(cum + 4 * r, s);
        s2 = lda_add(s2, lda_row(nw2, A2, r, R, K, kout2, eta));
        lda_storef(cum2 + 4 * r, s2);
    }
    *k = lda_search(cum, s, K, u);
    *k2 = lda_search(cum2, s2, K, u2);
}

#endif
