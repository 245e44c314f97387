"""Latent Dirichlet allocation kernels: collapsed Gibbs sweeps and the variational E-step.

Collapsed Gibbs (Griffiths & Steyvers 2004): one sweep resamples every token's topic
from ``p(z_i = k | z_-i, w) ~ (n_kw + eta) / (n_k + V eta) * (n_dk + alpha)``
(G&S eq. 5), with the topic-word counts stored word-major (V, K) so one token touches
one contiguous row, and the reciprocal denominators ``1 / (n_k + V eta)`` cached for
``n_k - 1``, ``n_k`` and ``n_k + 1`` and shifted for the two topics a token moves
between (so no division waits in a draw's path). Uniforms come from the Generator's bit
generator (numpy's ``random_standard_uniform_fill``, the same stream as one
``random_standard_uniform`` per token), under its lock. The count rows a token will read
are prefetched a few tokens ahead. The dense draw runs in four float32 lanes
(``_lda_draw.h``); the sparse one in float64.

Variational EM (Blei, Ng & Jordan 2003, sec. 5.3-5.4, with the Dirichlet(eta) topic
prior of sec. 5.4 / Hoffman et al. 2010): per document, iterate
``gamma_dk = alpha + sum_w n_dw phi_dwk`` with
``phi_dwk ~ exp(E[log theta_dk] + E[log beta_kw])`` (Blei et al. eqs. 16-17) until the
mean absolute change of gamma drops below a tolerance, then add the document's
expected counts to the topic-word sufficient statistics.
"""
from libc.math cimport exp, fabs, lgamma, log

import numpy as np
from scipy.linalg.cython_blas cimport dgemv

from numpy.random cimport bitgen_t
from numpy.random.c_distributions cimport (
    random_standard_uniform,
    random_standard_uniform_fill,
)

from fastml._kernels._bitgen cimport get_bitgen
from fastml._kernels._interrupt cimport POLL_WORK, poll
from fastml._kernels._types cimport idx_t


cdef inline double _digamma(double x) noexcept nogil:
    """psi(x) for x > 0: recurrence psi(x) = psi(x + m) - sum_i 1 / (x + i) up to
    x + m >= 10 (the sum kept as one fraction, so one division), then the asymptotic
    series (truncation error below 3e-14)."""
    cdef double num = 0.0, den = 1.0, f, ix, r = 0.0
    if x < 10.0:
        while x < 10.0:
            num = num * x + den
            den *= x
            x += 1.0
        r = -num / den
    ix = 1.0 / x
    f = ix * ix
    return r + log(x) - 0.5 * ix - f * (1.0 / 12 - f * (1.0 / 120 - f * (
        1.0 / 252 - f * (1.0 / 240 - f * (1.0 / 132)))))


def digamma(const double[::1] x, double[::1] out):
    """Elementwise digamma (the kernels' own psi), for tests. Assumes ``x > 0``."""
    cdef idx_t i, n = x.shape[0]
    if out.shape[0] != n:
        raise ValueError("digamma: shape mismatch")
    with nogil:
        for i in range(n):
            out[i] = _digamma(x[i])


# ----------------------------------------------------------------- collapsed Gibbs

cdef inline int _search_cum(const double *cum, int n, double u) noexcept nogil:
    """How many of ``cum[:n]`` are <= ``u``: for non-decreasing ``cum``, the first k
    with ``cum[k] > u`` (n if none). Counted without branches, since a
    data-dependent loop exit would be mispredicted on most draws."""
    cdef int k, c = 0
    for k in range(n):
        c += cum[k] <= u
    return c


cdef extern from "_lda_draw.h" nogil:
    int lda_rows(int K)
    int lda_slot(int k, int K)
    void lda_a_set(float *A, int slot, float x)
    void lda_a_fill(float *A, const int *nd, const double *inv_den, double alpha, int K)
    void lda_nw_add(int *nw, int K, int k, int d)
    int lda_draw(const int *nw, const float *A, float *cum, int K, int kout, float eta,
                 double u)
    void lda_draw_pair(const int *nw, const float *A, float *cum, int kout, double u,
                       const int *nw2, const float *A2, float *cum2, int kout2,
                       double u2, int K, float eta, int *k, int *k2)


cdef extern from "_prefetch.h" nogil:
    void fastml_prefetch(const void *p)


cdef enum:
    AHEAD = 3  # how many tokens ahead the sweeps prefetch the count rows they read
    UBATCH = 64  # uniforms drawn per call of the bit generator's fill


cdef struct _Uniforms:
    double buf[UBATCH]
    int pos, n


cdef inline double _uniform(bitgen_t *rng, _Uniforms *us, idx_t left) noexcept nogil:
    """The next uniform of ``rng``'s stream, the same value in the same order as
    ``random_standard_uniform``, drawn ``UBATCH`` at a time (so the hot loop makes no
    call through the bit generator's pointer), but never more than the ``left`` tokens
    still to be drawn for need."""
    if us.pos == us.n:
        us.n = <int> (UBATCH if left > UBATCH else left)
        random_standard_uniform_fill(rng, us.n, us.buf)
        us.pos = 0
    us.pos += 1
    return us.buf[us.pos - 1]


cdef inline void _prefetch_row(const int *row, int n) noexcept nogil:
    """Prefetch the cache lines of ``row[:n]``."""
    cdef const char *c = <const char *> row
    cdef int j, nbytes = 4 * n
    for j in range(0, nbytes, 64):
        fastml_prefetch(c + j)
    fastml_prefetch(c + nbytes - 1)


cdef inline void _recip_init(double *inv_lo, double *inv_den, double *inv_hi,
                             const int *nk, double Veta, int K) noexcept nogil:
    """``1 / (n_k + V eta)`` for ``n_k - 1``, ``n_k`` and ``n_k + 1``."""
    cdef int k
    for k in range(K):
        inv_lo[k] = 1.0 / (nk[k] - 1 + Veta)
        inv_den[k] = 1.0 / (nk[k] + Veta)
        inv_hi[k] = 1.0 / (nk[k] + 1 + Veta)


cdef inline void _recip_down(double *inv_lo, double *inv_den, double *inv_hi, int k,
                             int nk, double Veta) noexcept nogil:
    """``n_k`` has just dropped to ``nk``: shift the three reciprocals down. The one
    division left computes the reciprocal that only a further decrement of topic
    ``k`` reads, so it is off the path to this token's draw."""
    inv_hi[k] = inv_den[k]
    inv_den[k] = inv_lo[k]
    inv_lo[k] = 1.0 / (nk - 1 + Veta)


cdef inline void _recip_up(double *inv_lo, double *inv_den, double *inv_hi, int k,
                           int nk, double Veta) noexcept nogil:
    """``n_k`` has just risen to ``nk``: shift the three reciprocals up."""
    inv_lo[k] = inv_den[k]
    inv_den[k] = inv_hi[k]
    inv_hi[k] = 1.0 / (nk + 1 + Veta)


cdef struct _DenseChain:
    # one block's dense sweep in progress: at token i of segment g - 1 (ends at hi);
    # end: the block's last token + 1; nd: the segment's document row; nk: the block's
    # topic totals; inv_lo/inv_den/inv_hi: 1 / (n_k - 1, n_k, n_k + 1 + V eta);
    # A: (n_dk + alpha) inv_den_k in float32, in the draw's slots (_lda_draw.h); cum:
    # the draw's running sums; k: the topic token i is taken out of
    bitgen_t *rng
    const idx_t *seg_doc
    const idx_t *seg_ptr
    idx_t g, S, i, hi, end
    int *nd
    int *nk
    double *inv_lo
    double *inv_den
    double *inv_hi
    float *A
    float *cum
    int k
    _Uniforms us


cdef inline int _dense_seek(_DenseChain *c, int *ndk, double alpha, int K, idx_t *left,
                            const unsigned char *cancel) except -1 nogil:
    """Past the end of a segment, open the next one with tokens (its document's
    ``A``); 1 if the block has tokens left, else 0. Polls for Ctrl-C per segment."""
    while c.i == c.hi:
        if c.g == c.S:
            return 0
        poll(left, 4 * (c.seg_ptr[c.g + 1] - c.seg_ptr[c.g] + 1) * K, cancel)
        c.nd = &ndk[c.seg_doc[c.g] * K]
        c.i = c.seg_ptr[c.g]
        c.hi = c.seg_ptr[c.g + 1]
        c.g += 1
        lda_a_fill(c.A, c.nd, c.inv_den, alpha, K)
    return 1


cdef inline int *_dense_take(_DenseChain *c, const int *words, const int *z, int *nwk,
                             double alpha, double Veta, int K) noexcept nogil:
    """Take token ``c.i`` (topic ``c.k``) out of its document's and topic's counts
    (and ``A``) before its draw; returns its word's ``n_wk`` row, which the draw reads
    with the token still in it. Prefetches the row of the token ``AHEAD`` places on
    in the block."""
    cdef idx_t i = c.i
    cdef int k = z[i]
    if i + AHEAD < c.end:
        _prefetch_row(&nwk[<idx_t> words[i + AHEAD] * K], K)
    c.k = k
    c.nd[k] -= 1
    c.nk[k] -= 1
    _recip_down(c.inv_lo, c.inv_den, c.inv_hi, k, c.nk[k], Veta)
    lda_a_set(c.A, lda_slot(k, K), <float> ((c.nd[k] + alpha) * c.inv_den[k]))
    return &nwk[<idx_t> words[i] * K]


cdef inline void _dense_put(_DenseChain *c, int *z, int *nw, int k, double alpha,
                            double Veta, int K) noexcept nogil:
    """Move token ``c.i`` from topic ``c.k`` to its drawn topic ``k`` and go to the
    next."""
    lda_nw_add(nw, K, c.k, -1)
    z[c.i] = k
    c.nd[k] += 1
    lda_nw_add(nw, K, k, 1)
    c.nk[k] += 1
    _recip_up(c.inv_lo, c.inv_den, c.inv_hi, k, c.nk[k], Veta)
    lda_a_set(c.A, lda_slot(k, K), <float> ((c.nd[k] + alpha) * c.inv_den[k]))
    c.i += 1


cdef inline void _dense_token(_DenseChain *c, const int *words, int *z, int *nwk,
                              double alpha, float eta, double Veta,
                              int K) noexcept nogil:
    """Resample token ``c.i`` with the dense draw (G&S eq. 5, ``lda_draw``) and move
    to the next."""
    cdef int *nw = _dense_take(c, words, z, nwk, alpha, Veta, K)
    cdef double u = _uniform(c.rng, &c.us, c.end - c.i)
    _dense_put(c, z, nw, lda_draw(nw, c.A, c.cum, K, c.k, eta, u), alpha, Veta, K)


cdef inline void _dense_token_pair(_DenseChain *a, _DenseChain *b, const int *words,
                                   int *z, int *nwk, double alpha, float eta,
                                   double Veta, int K) noexcept nogil:
    """:func:`_dense_token` for a token of block ``a`` and one of block ``b`` (disjoint
    in documents, words and totals), their draws' running sums in one loop
    (``lda_draw_pair``)."""
    cdef int ka, kb
    cdef int *nwa = _dense_take(a, words, z, nwk, alpha, Veta, K)
    cdef int *nwb = _dense_take(b, words, z, nwk, alpha, Veta, K)
    cdef double ua = _uniform(a.rng, &a.us, a.end - a.i)
    cdef double ub = _uniform(b.rng, &b.us, b.end - b.i)
    lda_draw_pair(nwa, a.A, a.cum, a.k, ua, nwb, b.A, b.cum, b.k, ub, K, eta, &ka, &kb)
    _dense_put(a, z, nwa, ka, alpha, Veta, K)
    _dense_put(b, z, nwb, kb, alpha, Veta, K)


cdef inline void _list_remove(int *lst, int *nnz, int k) noexcept nogil:
    """Remove topic ``k`` from the unordered list ``lst[:nnz]`` (swap with the last)."""
    cdef int j = 0, n = nnz[0] - 1
    while lst[j] != k:
        j += 1
    lst[j] = lst[n]
    nnz[0] = n


cdef inline void _tree_set(double *tree, int Kp, int k, double value) noexcept nogil:
    """F+tree (Yu et al. 2015): leaf ``Kp + k`` set and its change added to every sum
    above it. The log2(Kp) additions are independent of each other (recomputing each
    sum from its children would chain them through the stores); the round-off they
    leave in the sums lasts until the next :func:`_tree_build` (each word's tokens), and
    sums over padding leaves only are never touched, so they stay exactly 0."""
    cdef int i = Kp + k
    cdef double delta = value - tree[i]
    tree[i] = value
    i >>= 1
    while i >= 1:
        tree[i] += delta
        i >>= 1


cdef inline void _tree_build(double *tree, int Kp, int K, const int *nw,
                             const double *inv_den, double eta) noexcept nogil:
    """Leaves ``F_k = (n_kw + eta) / (n_k + V eta)`` (zero past K), then the sums."""
    cdef int k
    for k in range(K):
        tree[Kp + k] = (nw[k] + eta) * inv_den[k]
    for k in range(K, Kp):
        tree[Kp + k] = 0.0
    for k in range(Kp - 1, 0, -1):
        tree[k] = tree[2 * k] + tree[2 * k + 1]


cdef inline int _tree_sample(const double *tree, int Kp, double u) noexcept nogil:
    """The leaf where the running sum passes ``u`` in [0, tree[1]): O(log K)."""
    cdef int i = 1, right
    while i < Kp:  # branch-free steps (the direction is a coin flip for the CPU)
        i *= 2
        right = (u >= tree[i]) & (tree[i + 1] > 0.0)
        u -= right * tree[i]
        i += right
    return i - Kp


cdef inline int _two_chain_search(const double *cum, int n, double s1,
                                  double u) noexcept nogil:
    """For ``n >= 1`` running sums held as two chains (``cum[:h]`` ending at ``s1``,
    ``h = n / 2``, then ``cum[h:]`` from 0), the first index whose sum passes ``u``
    (at most ``n - 1``)."""
    cdef int h = n >> 1
    return _search_cum(cum, h, u) + _search_cum(cum + h, n - h - 1, u - s1)


cdef inline int _draw_word_major(double u, int use_tree, const int *nw, const int *nd,
                                 const int *wl, int wn, const int *dl, int dn,
                                 const double *inv_den, const double *tree, int Kp,
                                 double *rv, double *qv, double s_sum, double alpha,
                                 double eta, int K, double *masses) noexcept nogil:
    """One draw of ``p_k ~ (n_kw + eta)(n_dk + alpha) / (n_k + V eta)`` (G&S eq. 5),
    exactly, given ``u`` in [0, 1); ``masses`` (3,) receives the bucket totals.

    ``use_tree``: F+LDA split (Yu et al. 2015) ``p_k = n_dk F_k + alpha F_k`` with
    ``F_k = (n_kw + eta) / (n_k + V eta)``: the first term over the document's topics
    ``dl`` (O(K_d)), the second from the word's F+tree (O(log K)); masses
    ``(0, doc part, alpha * tree total)``.
    Else SparseLDA (Yao, Mimno & McCallum 2009): ``s_k = alpha eta / (n_k + V eta)``
    (cached total ``s_sum``), ``r_k = n_dk eta / (n_k + V eta)`` over ``dl`` and
    ``q_k = n_kw (n_dk + alpha) / (n_k + V eta)`` over the word's topics ``wl``
    (O(K_d + K_w)); masses ``(s, r, q)``.
    ``rv`` and ``qv`` receive the running sums of the r and q terms, each as two
    chains (the first half of the list, and the rest from 0: two independent chains
    of additions), searched without branches (:func:`_two_chain_search`); a ``u``
    that round-off puts past a bucket's last sum takes its last topic.
    """
    cdef int j, k, h
    cdef double c, r1 = 0.0, r2 = 0.0, q1 = 0.0, q2 = 0.0, r_sum, q_sum
    h = dn >> 1
    if use_tree:
        for j in range(h):  # the leaf is F_k
            k = dl[j]
            r1 += nd[k] * tree[Kp + k]
            rv[j] = r1
            k = dl[h + j]
            r2 += nd[k] * tree[Kp + k]
            rv[h + j] = r2
        if dn & 1:
            k = dl[dn - 1]
            r2 += nd[k] * tree[Kp + k]
            rv[dn - 1] = r2
        r_sum = r1 + r2
        masses[0] = 0.0
        masses[1] = r_sum
        masses[2] = alpha * tree[1]
        u *= r_sum + masses[2]
        if u >= r_sum or dn == 0:
            return _tree_sample(tree, Kp, (u - r_sum) / alpha)
    else:
        for j in range(h):
            k = dl[j]
            r1 += nd[k] * eta * inv_den[k]
            rv[j] = r1
            k = dl[h + j]
            r2 += nd[k] * eta * inv_den[k]
            rv[h + j] = r2
        if dn & 1:
            k = dl[dn - 1]
            r2 += nd[k] * eta * inv_den[k]
            rv[dn - 1] = r2
        for j in range(wn >> 1):
            k = wl[j]
            q1 += nw[k] * (nd[k] + alpha) * inv_den[k]
            qv[j] = q1
            k = wl[(wn >> 1) + j]
            q2 += nw[k] * (nd[k] + alpha) * inv_den[k]
            qv[(wn >> 1) + j] = q2
        if wn & 1:
            k = wl[wn - 1]
            q2 += nw[k] * (nd[k] + alpha) * inv_den[k]
            qv[wn - 1] = q2
        r_sum = r1 + r2
        q_sum = q1 + q2
        masses[0] = s_sum
        masses[1] = r_sum
        masses[2] = q_sum
        u *= s_sum + r_sum + q_sum
        if u < q_sum:
            return wl[_two_chain_search(qv, wn, q1, u)]
        u -= q_sum
        if u >= r_sum or dn == 0:
            u -= r_sum
            k = 0
            c = alpha * eta
            while True:
                u -= c * inv_den[k]
                if u < 0.0 or k == K - 1:
                    return k
                k += 1
    return dl[_two_chain_search(rv, dn, r1, u)]


cdef int _dense_chain(_DenseChain *c, object bit_generator, const idx_t[::1] seg_doc,
                      const idx_t[::1] seg_ptr, int[::1] nk, double[::1] scratch,
                      int K, double Veta) except -1:
    """Set up ``c`` for one block (its arguments checked)."""
    cdef idx_t S = seg_doc.shape[0]
    if (nk.shape[0] != K or seg_ptr.shape[0] != S + 1
            or scratch.shape[0] < gibbs_scratch_size(K, False)):
        raise ValueError("gibbs_sweep_blocks: shape mismatch")
    c.rng = get_bitgen(bit_generator)
    c.seg_doc = &seg_doc[0] if S > 0 else NULL
    c.seg_ptr = &seg_ptr[0]
    c.g = c.i = c.hi = 0
    c.S = S
    c.end = seg_ptr[S]
    c.nk = &nk[0]
    c.inv_lo = &scratch[0]
    c.inv_den = &scratch[K]
    c.inv_hi = &scratch[2 * K]
    c.A = <float *> &scratch[3 * K]
    c.cum = <float *> &scratch[3 * K + 2 * lda_rows(K)]
    c.us.pos = c.us.n = 0
    _recip_init(c.inv_lo, c.inv_den, c.inv_hi, c.nk, Veta, K)
    return 0


cdef int _dense_blocks(_DenseChain *a, _DenseChain *b, const int *words, int *z,
                       int *ndk, int *nwk, double alpha, double eta, double Veta,
                       int K, const unsigned char *cancel) except -1 nogil:
    """Sweep blocks ``a`` and ``b`` with their tokens interleaved (a, b, a, b, ...
    while both have tokens, then the rest of the longer one)."""
    cdef idx_t left = POLL_WORK, n, _t
    cdef float eta_f = <float> eta
    cdef int ra = _dense_seek(a, ndk, alpha, K, &left, cancel)
    cdef int rb = _dense_seek(b, ndk, alpha, K, &left, cancel)
    while ra and rb:
        n = min(a.hi - a.i, b.hi - b.i)
        for _t in range(n):
            _dense_token_pair(a, b, words, z, nwk, alpha, eta_f, Veta, K)
        ra = _dense_seek(a, ndk, alpha, K, &left, cancel)
        rb = _dense_seek(b, ndk, alpha, K, &left, cancel)
    if rb:
        a = b
        ra = rb
    while ra:
        for _t in range(a.hi - a.i):
            _dense_token(a, words, z, nwk, alpha, eta_f, Veta, K)
        ra = _dense_seek(a, ndk, alpha, K, &left, cancel)
    return 0


def gibbs_sweep_blocks(list bit_generators, const int[::1] words, int[::1] z,
                       list seg_docs, list seg_ptrs, int[:, ::1] ndk, int[:, ::1] nwk,
                       list nks, double alpha, double eta, list scratches,
                       const unsigned char[::1] cancel):
    """Dense collapsed Gibbs over one or two blocks of tokens, in place (G&S eq. 5).

    Block ``j`` is a list of segments: segment ``g`` holds tokens
    ``seg_ptrs[j][g]:seg_ptrs[j][g + 1]`` of document ``seg_docs[j][g]`` (word ids
    ``words``, topics ``z``); ``ndk`` (D, K) and ``nwk`` (V, K) are the counts, and
    ``nks[j]`` (K,) the block's own copy of the topic totals. A block reads and writes
    only the rows of ``ndk`` and ``nwk`` of its own documents and words and its own
    totals, so blocks with disjoint documents and words run concurrently; one block
    holding the whole corpus, document by document, is the serial sweep.

    Two blocks (disjoint in documents and words) are swept with their tokens
    interleaved, one of each in turn: each block's sweep is the same as alone (its
    draws depend on its own counts and stream only), and the second block's chain of
    dependent operations (each draw needs the counts the previous one left) fills the
    time the first one's waits on its latencies. The two draws' running sums are
    computed in one loop (``lda_draw_pair``), so both are in the CPU's window at
    once.

    ``bit_generators[j]`` (drawn under its lock, one uniform per token in token
    order) and ``scratches[j]`` (``gibbs_scratch_size(K, False)`` doubles) are block
    ``j``'s. Assumes: counts consistent with ``z``; ids in range; ``alpha, eta > 0``.
    Polls for Ctrl-C (and ``cancel[0]``) between segments; the counts always match
    ``z``.
    """
    cdef idx_t V = nwk.shape[0]
    cdef int K = <int> ndk.shape[1]
    cdef int n = len(bit_generators), j
    cdef double Veta = V * eta
    cdef _DenseChain ch[2]
    if (nwk.shape[1] != K or K < 1 or cancel.shape[0] < 1 or not 1 <= n <= 2
            or len(seg_docs) != n or len(seg_ptrs) != n or len(nks) != n
            or len(scratches) != n
            or n == 2 and bit_generators[0] is bit_generators[1]):
        raise ValueError("gibbs_sweep_blocks: shape mismatch")
    for j in range(n):
        _dense_chain(&ch[j], bit_generators[j], seg_docs[j], seg_ptrs[j], nks[j],
                     scratches[j], K, Veta)
    if n == 1:
        ch[1].S = ch[1].i = ch[1].hi = ch[1].g = 0
    locks = [bg.lock for bg in bit_generators]
    for lock in locks:
        lock.acquire()
    try:
        with nogil:
            _dense_blocks(&ch[0], &ch[1], &words[0], &z[0], &ndk[0, 0], &nwk[0, 0],
                          alpha, eta, Veta, K, &cancel[0])
    finally:
        for lock in locks:
            lock.release()


cdef inline int _tree_leaves(int K) noexcept nogil:
    cdef int Kp = 1
    while Kp < K:
        Kp *= 2
    return Kp


cpdef idx_t gibbs_scratch_size(int K, bint sparse) noexcept:
    """Doubles of ``scratch`` a block sweep needs at ``K`` topics (dense or sparse)."""
    if sparse:
        return 5 * K + 2 * _tree_leaves(K)
    return 3 * K + 4 * lda_rows(K)


def gibbs_sweep_block_sparse(object bit_generator, const idx_t[::1] docs, int[::1] z,
                             const idx_t[::1] seg_word, const idx_t[::1] seg_ptr,
                             int[:, ::1] ndk, int[:, ::1] nwk, int[::1] nk,
                             double alpha, double eta, double tree_work,
                             int[::1] word_topics, const idx_t[::1] word_ptr,
                             int[::1] word_nnz, int[::1] doc_topics,
                             const idx_t[::1] doc_lptr, int[::1] doc_nnz,
                             double[::1] scratch, const unsigned char[::1] cancel):
    """Sparse collapsed Gibbs over one block of tokens in word-major order, in place.

    Segment ``g`` holds tokens ``seg_ptr[g]:seg_ptr[g + 1]`` of word ``seg_word[g]``
    (their documents ``docs``, topics ``z``); counts and block ownership as in
    :func:`gibbs_sweep_block`. Every draw is exact (G&S eq. 5), by one of two splits
    (see ``_draw_word_major``): when the segment's tokens times the word's nonzero
    topics reach ``tree_work``, the word's F+tree is built once (O(K)) and each token
    costs O(K_d + log K) (F+LDA, Yu et al. 2015); otherwise SparseLDA's s/r/q buckets
    (Yao, Mimno & McCallum 2009), O(K_d + K_w). Each word's and each document's list
    of topics with nonzero count (``word_topics[word_ptr[w]:word_ptr[w] +
    word_nnz[w]]``, capacity ``word_ptr[w + 1] - word_ptr[w] >= min(K, n_w)``; the
    documents' likewise) is kept current, unordered.

    ``scratch`` has ``gibbs_scratch_size(K, True)`` doubles. The rows of ``n_dk`` and
    the topic lists of the documents ``AHEAD`` tokens on are prefetched.

    Assumes: counts and lists consistent with ``z``; ids in range; ``alpha, eta > 0``.
    Draws one uniform per token from ``bit_generator`` (under its lock), in token
    order. Polls for Ctrl-C (and ``cancel[0]``) between segments; the counts and
    lists always match ``z``.
    """
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t D = ndk.shape[0], V = nwk.shape[0], S = seg_word.shape[0], g, i, d
    cdef int K = <int> ndk.shape[1], Kp = _tree_leaves(K)
    cdef int w, k, use_tree
    cdef double Veta = V * eta, sab = alpha * eta, s_sum = 0.0
    cdef double masses[3]
    cdef double *inv_lo
    cdef double *inv_den
    cdef double *inv_hi
    cdef double *rv
    cdef double *qv
    cdef double *tree
    cdef int *nd
    cdef int *nw
    cdef int *wl
    cdef int *dl
    cdef int *wn
    cdef int *dn
    cdef idx_t end, d2
    if (nwk.shape[1] != K or nk.shape[0] != K or seg_ptr.shape[0] != S + 1
            or scratch.shape[0] < gibbs_scratch_size(K, True) or K < 1
            or cancel.shape[0] < 1
            or word_ptr.shape[0] != V + 1 or word_nnz.shape[0] != V
            or doc_lptr.shape[0] != D + 1 or doc_nnz.shape[0] != D):
        raise ValueError("gibbs_sweep_block_sparse: shape mismatch")
    inv_lo = &scratch[0]
    inv_den = &scratch[K]
    inv_hi = &scratch[2 * K]
    rv = &scratch[3 * K]
    qv = &scratch[4 * K]
    tree = &scratch[5 * K]
    end = seg_ptr[S]
    cdef _Uniforms us
    us.pos = us.n = 0
    cdef idx_t left = POLL_WORK
    with bit_generator.lock, nogil:
        _recip_init(inv_lo, inv_den, inv_hi, &nk[0], Veta, K)
        for k in range(K):
            s_sum += sab * inv_den[k]
        for g in range(S):
            w = <int> seg_word[g]
            nw = &nwk[w, 0]
            wl = &word_topics[word_ptr[w]]
            wn = &word_nnz[w]
            use_tree = (seg_ptr[g + 1] - seg_ptr[g]) * <double> wn[0] >= tree_work
            poll(&left, 60 * (seg_ptr[g + 1] - seg_ptr[g]) + 4 * K * use_tree + 4,
                 &cancel[0])
            if use_tree:
                _tree_build(tree, Kp, K, nw, inv_den, eta)
            for i in range(seg_ptr[g], seg_ptr[g + 1]):
                if i + AHEAD < end:
                    d2 = docs[i + AHEAD]
                    _prefetch_row(&ndk[d2, 0], K)
                    _prefetch_row(&doc_topics[doc_lptr[d2]],
                                  <int> (doc_lptr[d2 + 1] - doc_lptr[d2]))
                d = docs[i]
                nd = &ndk[d, 0]
                dl = &doc_topics[doc_lptr[d]]
                dn = &doc_nnz[d]
                k = z[i]
                s_sum -= sab * inv_den[k]
                nd[k] -= 1
                nw[k] -= 1
                nk[k] -= 1
                if nd[k] == 0:
                    _list_remove(dl, dn, k)
                if nw[k] == 0:
                    _list_remove(wl, wn, k)
                _recip_down(inv_lo, inv_den, inv_hi, k, nk[k], Veta)
                s_sum += sab * inv_den[k]
                if use_tree:
                    _tree_set(tree, Kp, k, (nw[k] + eta) * inv_den[k])
                k = _draw_word_major(_uniform(rng, &us, end - i), use_tree, nw, nd,
                                     wl, wn[0], dl, dn[0], inv_den, tree, Kp, rv, qv,
                                     s_sum, alpha, eta, K, masses)
                z[i] = k
                s_sum -= sab * inv_den[k]
                nd[k] += 1
                nw[k] += 1
                nk[k] += 1
                if nd[k] == 1:
                    dl[dn[0]] = k
                    dn[0] += 1
                if nw[k] == 1:
                    wl[wn[0]] = k
                    wn[0] += 1
                _recip_up(inv_lo, inv_den, inv_hi, k, nk[k], Veta)
                s_sum += sab * inv_den[k]
                if use_tree:
                    _tree_set(tree, Kp, k, (nw[k] + eta) * inv_den[k])


def sparse_topic_draws(object bit_generator, int w, int d, const int[:, ::1] ndk,
                       const int[:, ::1] nwk, const int[::1] nk, double alpha,
                       double eta, const int[::1] word_topics,
                       const int[::1] doc_topics, bint use_tree, idx_t n_draws,
                       idx_t[::1] counts_out, double[::1] masses_out):
    """``n_draws`` draws of the sparse conditional (F+tree or s/r/q buckets, as
    :func:`gibbs_sweep_block_sparse` makes them) for one token of word ``w`` in
    document ``d``, the token already removed from the counts; each draw is added to
    ``counts_out`` (K,) and the bucket totals go to ``masses_out`` (3,). For tests of
    the sampler against the dense conditional.

    ``word_topics`` and ``doc_topics`` list the word's and the document's topics with
    nonzero count. Assumes ids in range and ``alpha, eta > 0``.
    """
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t V = nwk.shape[0], _t
    cdef int K = <int> ndk.shape[1], k, Kp = _tree_leaves(K)
    cdef int wn = <int> word_topics.shape[0], dn = <int> doc_topics.shape[0]
    cdef double Veta = V * eta, s_sum = 0.0
    if (nwk.shape[1] != K or nk.shape[0] != K or counts_out.shape[0] != K
            or masses_out.shape[0] != 3 or K < 1 or not 0 <= w < V
            or not 0 <= d < ndk.shape[0] or wn > K or dn > K):
        raise ValueError("sparse_topic_draws: shape mismatch")
    buf = np.empty(3 * K + 2 * Kp)
    cdef double[::1] sc = buf
    cdef double *inv_den = &sc[0]
    cdef double *tree = &sc[3 * K]
    cdef const int *wl = &word_topics[0] if wn > 0 else NULL
    cdef const int *dl = &doc_topics[0] if dn > 0 else NULL
    with bit_generator.lock, nogil:
        for k in range(K):
            inv_den[k] = 1.0 / (nk[k] + Veta)
            s_sum += alpha * eta * inv_den[k]
        _tree_build(tree, Kp, K, &nwk[w, 0], inv_den, eta)
        for _t in range(n_draws):
            k = _draw_word_major(random_standard_uniform(rng), use_tree, &nwk[w, 0],
                                 &ndk[d, 0], wl, wn, dl, dn, inv_den, tree, Kp,
                                 &sc[K], &sc[2 * K], s_sum, alpha, eta, K,
                                 &masses_out[0])
            counts_out[k] += 1


def gibbs_fold_in(object bit_generator, const int[::1] words, const idx_t[::1] doc_ptr,
                  int[::1] z, int[:, ::1] ndk, const double[:, ::1] phi_wk,
                  double alpha, int n_iter, int burn_in, double[:, ::1] theta_sum,
                  double[::1] scratch):
    """Fold-in sampling of new documents with fixed topics ``phi_wk`` (V, K).

    Runs ``n_iter`` sweeps of ``p(z_i = k) ~ phi[w_i, k] (n_dk + alpha)`` over the new
    documents (topics never updated) and adds ``ndk`` after each sweep past
    ``burn_in`` into ``theta_sum`` (D, K). ``scratch`` has K doubles.

    Assumes: ``ndk`` consistent with ``z``; rows of ``phi_wk`` positive. Polls for
    Ctrl-C between documents (counts stay consistent with ``z``).
    """
    cdef bitgen_t *rng = get_bitgen(bit_generator)
    cdef idx_t D = ndk.shape[0], N = words.shape[0]
    cdef int K = <int> ndk.shape[1]
    cdef idx_t d, i
    cdef int w, k, it
    cdef double s
    cdef double *cum
    cdef int *nd
    cdef const double *ph
    if (phi_wk.shape[1] != K or z.shape[0] != N or doc_ptr.shape[0] != D + 1
            or theta_sum.shape[0] != D or theta_sum.shape[1] != K
            or scratch.shape[0] < K or K < 1):
        raise ValueError("gibbs_fold_in: shape mismatch")
    cum = &scratch[0]
    cdef idx_t left = POLL_WORK
    with bit_generator.lock, nogil:
        for it in range(n_iter):
            for d in range(D):
                poll(&left, 4 * (doc_ptr[d + 1] - doc_ptr[d] + 1) * K, NULL)
                nd = &ndk[d, 0]
                for i in range(doc_ptr[d], doc_ptr[d + 1]):
                    w = words[i]
                    ph = &phi_wk[w, 0]
                    nd[z[i]] -= 1
                    s = 0.0
                    for k in range(K):
                        s += ph[k] * (nd[k] + alpha)
                        cum[k] = s
                    k = _search_cum(cum, K - 1, random_standard_uniform(rng) * s)
                    z[i] = k
                    nd[k] += 1
            if it >= burn_in:
                for d in range(D):
                    for k in range(K):
                        theta_sum[d, k] += ndk[d, k]


def gibbs_loglik(const int[:, ::1] ndk, const idx_t[::1] nd, const int[:, ::1] nwk,
                 const int[::1] nk, double alpha, double eta):
    """Joint log-likelihood ``log p(w, z) = log p(w | z) + log p(z)``.

    Griffiths & Steyvers eqs. 2-3 with symmetric priors (Dirichlet-multinomial):
    ``K [lgamma(V eta) - V lgamma(eta)] + sum_k [sum_w lgamma(n_kw + eta)
    - lgamma(n_k + V eta)]`` plus the same for documents with ``alpha`` and K.
    Terms with zero counts cancel and are skipped.
    """
    cdef idx_t D = ndk.shape[0], V = nwk.shape[0], K = ndk.shape[1], d, w, k
    cdef double ll = 0.0, lg_eta, lg_alpha
    if nwk.shape[1] != K or nk.shape[0] != K or nd.shape[0] != D:
        raise ValueError("gibbs_loglik: shape mismatch")
    with nogil:
        lg_eta = lgamma(eta)
        lg_alpha = lgamma(alpha)
        ll += K * lgamma(V * eta)
        for k in range(K):
            ll -= lgamma(V * eta + nk[k])
        for w in range(V):
            for k in range(K):
                if nwk[w, k] > 0:
                    ll += lgamma(eta + nwk[w, k]) - lg_eta
        for d in range(D):
            ll += lgamma(K * alpha) - lgamma(K * alpha + nd[d])
            for k in range(K):
                if ndk[d, k] > 0:
                    ll += lgamma(alpha + ndk[d, k]) - lg_alpha
    return ll


# ------------------------------------------------------------------- variational

cdef inline void _exp_elog_theta(const double *gamma, int K, double *out,
                                 double *elog) noexcept nogil:
    """``elog_k = psi(gamma_k) - psi(sum gamma)`` and ``out_k = exp(elog_k)``."""
    cdef int k
    cdef double s = 0.0, ps
    for k in range(K):
        s += gamma[k]
    ps = _digamma(s)
    for k in range(K):
        elog[k] = _digamma(gamma[k]) - ps
        out[k] = exp(elog[k])


cdef double _doc_bound(const int *idx, const double *cnt, idx_t n, const double *gd,
                       double alpha, const double[:, ::1] eeb, int K, double *et,
                       double *el) noexcept nogil:
    """One document's ELBO terms at ``gd`` with optimal phi; leaves ``exp(E[log theta])``
    in ``et`` and ``E[log theta]`` in ``el``."""
    cdef idx_t p
    cdef int k
    cdef double b = 0.0, gs = 0.0, pn
    cdef const double *eb
    _exp_elog_theta(gd, K, et, el)
    for k in range(K):
        b += (alpha - gd[k]) * el[k] + lgamma(gd[k])
        gs += gd[k]
    b -= lgamma(gs)
    for p in range(n):
        eb = &eeb[idx[p], 0]
        pn = 1e-100
        for k in range(K):
            pn += et[k] * eb[k]
        b += cnt[p] * log(pn)
    return b


def estep_docs(const int[::1] indptr, const int[::1] indices, const double[::1] counts,
               const double[:, ::1] exp_elog_beta_wk, double alpha, double[:, ::1] gamma,
               int max_iter, double mean_change_tol,
               double[:, ::1] sstats_wk, double[:, ::1] scratch, int[::1] n_iter_out,
               double[:, ::1] gather, double[::1] cbuf, bint want_bound,
               const unsigned char[::1] cancel):
    """Variational E-step for every document (Blei, Ng & Jordan 2003, eqs. 16-17).

    Documents are CSR rows (``indptr``, word ids ``indices``, ``counts``);
    ``exp_elog_beta_wk`` (V, K) is ``exp(E[log beta_kw])``. phi is never stored: with
    ``phinorm_w = sum_k exp(E[log theta_k]) exp(E[log beta_kw])``,
    ``gamma_k = alpha + exp(E[log theta_k]) sum_w n_w exp(E[log beta_kw]) / phinorm_w``,
    iterated until the mean absolute change of gamma is below ``mean_change_tol``.

    ``gamma`` (D, K) holds the starting point and receives the result. When
    ``sstats_wk`` is (V, K) it receives
    ``sum_d n_dw exp(E[log theta_dk]) / phinorm_dw`` (times ``exp_elog_beta`` this is
    ``sum_d n_dw phi_dwk``, the M-step statistic). ``scratch`` is (4, K);
    ``n_iter_out`` (D,) gets each document's iteration count. ``gather`` (m, K) and
    ``cbuf`` (m,) are scratch with m >= the largest number of distinct words in a
    document: each document's rows of ``exp_elog_beta_wk`` are gathered once, and
    every iteration is then two GEMVs on that block.

    With ``want_bound`` (else 0 is returned, saving a pass over the words), returns
    the document part of the ELBO at the final gamma with optimal phi:
    ``sum_dw n_dw log phinorm_dw + sum_dk [(alpha - gamma_dk) E[log theta_dk]
    + lgamma(gamma_dk)] - sum_d lgamma(sum_k gamma_dk)`` (the caller adds the
    ``alpha``-only constants and the topic part).

    Assumes: CSR indices < V, counts >= 0, gamma > 0, alpha > 0. Polls for Ctrl-C and
    for ``cancel[0] != 0`` (one byte, set by another thread of
    ``fastml._parallel.run_blocks``) between documents (on KeyboardInterrupt, rows of
    ``gamma`` up to the current document are updated, the others untouched).
    """
    cdef idx_t D = gamma.shape[0], V = exp_elog_beta_wk.shape[0], d, j, p, p0, nw
    cdef int K = <int> gamma.shape[1], k, it
    cdef bint want_stats = sstats_wk.shape[0] == V
    cdef double *et
    cdef double *el
    cdef double *acc
    cdef double *gd
    cdef const double *eb
    cdef double c, change, g, bound = 0.0, one = 1.0, zero = 0.0
    cdef double *sk
    cdef int Ki = K, nwi, inc = 1
    cdef bint too_long = 0
    if (exp_elog_beta_wk.shape[1] != K or indptr.shape[0] != D + 1
            or indices.shape[0] != counts.shape[0] or scratch.shape[0] < 4
            or scratch.shape[1] != K or n_iter_out.shape[0] != D or K < 1
            or cancel.shape[0] != 1):
        raise ValueError("estep_docs: shape mismatch")
    if want_stats and sstats_wk.shape[1] != K:
        raise ValueError("estep_docs: sstats_wk must be (V, K)")
    if gather.shape[1] != K or cbuf.shape[0] < gather.shape[0] or gather.shape[0] < 1:
        raise ValueError("estep_docs: gather must be (m, K) and cbuf (m,), m >= 1")
    if counts.shape[0] > 0 and indptr[D] > counts.shape[0]:
        raise ValueError("estep_docs: indptr exceeds the number of entries")
    et = &scratch[0, 0]
    el = &scratch[1, 0]
    acc = &scratch[2, 0]
    cdef idx_t left = POLL_WORK
    with nogil:
        if want_stats:
            for j in range(V):
                for k in range(K):
                    sstats_wk[j, k] = 0.0
        for d in range(D):
            gd = &gamma[d, 0]
            p0 = indptr[d]
            nw = indptr[d + 1] - p0
            it = 0
            _exp_elog_theta(gd, K, et, el)
            if nw > gather.shape[0]:
                too_long = 1
                break
            # the document's rows of exp(E[log beta]): a contiguous (nw, K) block
            for p in range(nw):
                eb = &exp_elog_beta_wk[indices[p0 + p], 0]
                for k in range(K):
                    gather[p, k] = eb[k]
            nwi = <int> nw
            while it < max_iter and nw > 0:
                it += 1
                # phinorm = G et (GEMV), c = n / phinorm, acc = G^T c (GEMV)
                dgemv(b"T", &Ki, &nwi, &one, &gather[0, 0], &Ki, et, &inc, &zero,
                      &cbuf[0], &inc)
                for p in range(nw):
                    cbuf[p] = counts[p0 + p] / (cbuf[p] + 1e-100)
                dgemv(b"N", &Ki, &nwi, &one, &gather[0, 0], &Ki, &cbuf[0], &inc, &zero,
                      acc, &inc)
                change = 0.0
                for k in range(K):
                    g = alpha + et[k] * acc[k]
                    change += fabs(g - gd[k])
                    gd[k] = g
                _exp_elog_theta(gd, K, et, el)
                if change / K < mean_change_tol:
                    break
            n_iter_out[d] = it
            poll(&left, 4 * (it + 1) * (nw + 1) * K, &cancel[0])
            if want_bound and nw > 0:
                bound += _doc_bound(&indices[p0], &counts[p0], nw, gd, alpha,
                                    exp_elog_beta_wk, K, et, el)
            elif want_bound:  # empty document: no word terms (no pointer past the end)
                bound += _doc_bound(NULL, NULL, 0, gd, alpha, exp_elog_beta_wk, K, et, el)
            if want_stats and nw > 0:
                # phinorm at the final gamma (et is current), from the gathered block
                dgemv(b"T", &Ki, &nwi, &one, &gather[0, 0], &Ki, et, &inc, &zero,
                      &cbuf[0], &inc)
                for p in range(nw):
                    c = counts[p0 + p] / (cbuf[p] + 1e-100)
                    sk = &sstats_wk[indices[p0 + p], 0]
                    for k in range(K):
                        sk[k] += c * et[k]
    if too_long:
        raise ValueError("estep_docs: gather has fewer rows than a document's words")
    return bound
