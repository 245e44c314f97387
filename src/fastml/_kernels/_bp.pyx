"""Message passing over discrete variables: sum-product, max-sum and loopy BP.

A factor graph arrives packed in one ``idx_t`` array (``graph``, built and validated by
``fastml.graphical``) plus the factor tables, which are stored twice: ``logtab`` (log
potentials, used by max-sum and the Bethe free energy) and ``ptab = exp(logtab - logmax)``
(each factor scaled so its largest entry is 1, used by sum-product). Messages live on the
edges (one edge = one variable slot of one factor) in flat arrays, each message normalised
(to sum 1, or to max 0 in log space) with its log normaliser accumulated separately, so
chains of 1e5 variables neither underflow nor overflow (PRML sec. 8.4.4, "normalised
messages").

Layout of ``graph`` (all offsets into ``graph`` itself):
``[V, F, E, max_arity, o_card, o_voff, o_fptr, o_evar, o_efac, o_estride, o_eoff, o_toff,
o_vptr, o_vedge, total_len, table_len, max_card]`` then the arrays ``card[V]``, ``voff[V+1]``
(per-variable state offsets), ``fptr[F+1]`` (edges of factor f are ``fptr[f]..fptr[f+1]``,
in the table's axis order), ``evar[E]``, ``efac[E]``, ``estride[E]`` (C-order stride of the
variable in its factor's table), ``eoff[E+1]`` (message offsets), ``toff[F+1]`` (table
offsets), ``vptr[V+1]`` and ``vedge[E]`` (edges of each variable).

The grid kernels (``grid_flood_strip``, ``grid_checkerboard_rows``) run the same
equations specialised to a 4-connected H x W lattice with one pairwise table shared by
all edges. They work on strips of rows so that ``fastml.graphical`` can run the
strips of one sweep on concurrent threads (``fastml._parallel.run_blocks``): every
strip writes only its own rows, and the results do not depend on how the strips are
scheduled.

The iterative kernels poll for Ctrl-C (``_interrupt.pxd``): ``loopy_bp`` before every
factor, the grid kernels before every row (and watch the ``cancel`` byte of the other
threads). On KeyboardInterrupt the messages hold the last values written and the
beliefs are not computed.
"""
from libc.math cimport log, fabs, INFINITY
from libc.string cimport memcpy

from fastml._kernels._interrupt cimport POLL_WORK, poll
from fastml._kernels._types cimport idx_t

cdef idx_t _HEADER = 17


cdef struct FG:
    idx_t V, F, E, max_arity, max_card
    const idx_t *card
    const idx_t *voff
    const idx_t *fptr
    const idx_t *evar
    const idx_t *efac
    const idx_t *estride
    const idx_t *eoff
    const idx_t *toff
    const idx_t *vptr
    const idx_t *vedge


cdef int _unpack(const idx_t[::1] graph, idx_t table_len, FG *g) except -1:
    """Point ``g`` into ``graph`` after O(1) checks of the header."""
    if graph.shape[0] < _HEADER or graph[14] != graph.shape[0]:
        raise ValueError("graph: malformed packed factor graph (header)")
    if graph[15] != table_len:
        raise ValueError(f"graph: tables have {table_len} entries, graph says {graph[15]}")
    cdef const idx_t *p = &graph[0]
    g.V = p[0]
    g.F = p[1]
    g.E = p[2]
    g.max_arity = p[3]
    g.max_card = p[16]
    g.card = p + p[4]
    g.voff = p + p[5]
    g.fptr = p + p[6]
    g.evar = p + p[7]
    g.efac = p + p[8]
    g.estride = p + p[9]
    g.eoff = p + p[10]
    g.toff = p + p[11]
    g.vptr = p + p[12]
    g.vedge = p + p[13]
    return 0


cdef inline double _normalise_sum(double *m, idx_t K) noexcept nogil:
    """Scale ``m`` to sum 1; return the old sum (0, m untouched, if it was 0)."""
    cdef idx_t x
    cdef double s = 0.0
    for x in range(K):
        s += m[x]
    if s <= 0.0:
        return 0.0
    cdef double inv = 1.0 / s
    for x in range(K):
        m[x] *= inv
    return s


cdef inline double _normalise_max(double *m, idx_t K) noexcept nogil:
    """Shift log-message ``m`` so its max is 0; return the old max (-inf if all -inf)."""
    cdef idx_t x
    cdef double mx = -INFINITY
    for x in range(K):
        if m[x] > mx:
            mx = m[x]
    if mx == -INFINITY:
        return mx
    for x in range(K):
        m[x] -= mx
    return mx


cdef double _var_to_fac(const FG *g, idx_t e, const double *mask, const double *m_fv,
                        double *out) noexcept nogil:
    """mu_{x->f}(x) = mask(x) prod_{g != f} mu_{g->x}(x) (PRML eq. 8.69), normalised.

    Returns the normaliser (0 if the message vanishes)."""
    cdef idx_t v = g.evar[e], K = g.card[v], x, j, ej
    cdef const double *mk = mask + g.voff[v]
    cdef const double *mj
    for x in range(K):
        out[x] = mk[x]
    for j in range(g.vptr[v], g.vptr[v + 1]):
        ej = g.vedge[j]
        if ej != e:
            mj = m_fv + g.eoff[ej]
            for x in range(K):
                out[x] *= mj[x]
    return _normalise_sum(out, K)


cdef double _fac_to_var(const FG *g, idx_t e, const double *ptab, const double *m_vf,
                        double *out, idx_t *cnt) noexcept nogil:
    """mu_{f->x}(x) = sum_{x_f \\ x} f(x_f) prod_{y != x} mu_{y->f}(y) (PRML eq. 8.66).

    Normalised to sum 1; returns the normaliser (of the scaled table, see module notes)."""
    cdef idx_t f = g.efac[e], e0 = g.fptr[f], k = g.fptr[f + 1] - g.fptr[f]
    cdef idx_t tgt = e - e0, K = g.card[g.evar[e]], x, y, j, t, c0, c1
    cdef idx_t size = g.toff[f + 1] - g.toff[f]
    cdef const double *tab = ptab + g.toff[f]
    cdef const double *m0
    cdef double val, acc
    for x in range(K):
        out[x] = 0.0
    if k == 1:
        for x in range(K):
            out[x] = tab[x]
    elif k == 2:
        c0 = g.card[g.evar[e0]]
        c1 = g.card[g.evar[e0 + 1]]
        if tgt == 0:
            m0 = m_vf + g.eoff[e0 + 1]
            for x in range(c0):
                acc = 0.0
                for y in range(c1):
                    acc += tab[x * c1 + y] * m0[y]
                out[x] = acc
        else:
            m0 = m_vf + g.eoff[e0]
            for y in range(c0):
                val = m0[y]
                if val != 0.0:
                    for x in range(c1):
                        out[x] += val * tab[y * c1 + x]
    else:
        for j in range(k):
            cnt[j] = 0
        for t in range(size):
            val = tab[t]
            if val != 0.0:
                for j in range(k):
                    if j != tgt:
                        val *= m_vf[g.eoff[e0 + j] + cnt[j]]
                out[cnt[tgt]] += val
            j = k - 1
            while j >= 0:
                cnt[j] += 1
                if cnt[j] < g.card[g.evar[e0 + j]]:
                    break
                cnt[j] = 0
                j -= 1
    return _normalise_sum(out, K)


cdef double _fac_to_var_max(const FG *g, idx_t e, const double *logtab, const double *m_vf,
                            double *out, idx_t *bp, idx_t *cnt) noexcept nogil:
    """mu_{f->x}(x) = max_{x_f \\ x} [ln f(x_f) + sum_{y != x} mu_{y->f}(y)] (PRML eq. 8.93).

    Log space, shifted to max 0; ``bp[x]`` gets the maximising table index (for the
    back-tracking of PRML eq. 8.101). Returns the shift."""
    cdef idx_t f = g.efac[e], e0 = g.fptr[f], k = g.fptr[f + 1] - g.fptr[f]
    cdef idx_t tgt = e - e0, K = g.card[g.evar[e]], x, j, t
    cdef idx_t size = g.toff[f + 1] - g.toff[f], t0 = g.toff[f]
    cdef const double *tab = logtab + t0
    cdef const double *m0
    cdef double val
    cdef idx_t y, c1
    for x in range(K):
        out[x] = -INFINITY
        bp[x] = t0
    if k == 2:
        c1 = g.card[g.evar[e0 + 1]]
        if tgt == 0:
            m0 = m_vf + g.eoff[e0 + 1]
            for x in range(K):
                for y in range(c1):
                    val = tab[x * c1 + y] + m0[y]
                    if val > out[x]:
                        out[x] = val
                        bp[x] = t0 + x * c1 + y
        else:
            m0 = m_vf + g.eoff[e0]
            for y in range(size // c1):
                for x in range(c1):
                    val = tab[y * c1 + x] + m0[y]
                    if val > out[x]:
                        out[x] = val
                        bp[x] = t0 + y * c1 + x
        return _normalise_max(out, K)
    for j in range(k):
        cnt[j] = 0
    for t in range(size):
        val = tab[t]
        if val != -INFINITY:
            for j in range(k):
                if j != tgt:
                    val += m_vf[g.eoff[e0 + j] + cnt[j]]
            x = cnt[tgt]
            if val > out[x]:
                out[x] = val
                bp[x] = t0 + t
        j = k - 1
        while j >= 0:
            cnt[j] += 1
            if cnt[j] < g.card[g.evar[e0 + j]]:
                break
            cnt[j] = 0
            j -= 1
    return _normalise_max(out, K)


cdef double _var_to_fac_max(const FG *g, idx_t e, const double *logmask,
                            const double *m_fv, double *out) noexcept nogil:
    """mu_{x->f}(x) = ln mask(x) + sum_{g != f} mu_{g->x}(x) (PRML eq. 8.94), shifted."""
    cdef idx_t v = g.evar[e], K = g.card[v], x, j, ej
    cdef const double *mk = logmask + g.voff[v]
    cdef const double *mj
    for x in range(K):
        out[x] = mk[x]
    for j in range(g.vptr[v], g.vptr[v + 1]):
        ej = g.vedge[j]
        if ej != e:
            mj = m_fv + g.eoff[ej]
            for x in range(K):
                out[x] += mj[x]
    return _normalise_max(out, K)


cdef void _var_beliefs(const FG *g, const double *mask, const double *m_fv,
                       double *out) noexcept nogil:
    """b(x) ∝ mask(x) prod_f mu_{f->x}(x) (PRML eq. 8.63), each normalised."""
    cdef idx_t v, x, j, K
    cdef double *b
    cdef const double *mj
    for v in range(g.V):
        K = g.card[v]
        b = out + g.voff[v]
        for x in range(K):
            b[x] = mask[g.voff[v] + x]
        for j in range(g.vptr[v], g.vptr[v + 1]):
            mj = m_fv + g.eoff[g.vedge[j]]
            for x in range(K):
                b[x] *= mj[x]
        _normalise_sum(b, K)


cdef void _fac_beliefs(const FG *g, const double *ptab, const double *m_vf, double *out,
                       idx_t *cnt) noexcept nogil:
    """b(x_f) ∝ f(x_f) prod_{x in f} mu_{x->f}(x) (PRML eq. 8.72), each normalised."""
    cdef idx_t f, t, j, e0, k, size, x, y, c1
    cdef double val
    cdef const double *tab
    cdef const double *m0
    cdef const double *m1
    cdef double *b
    for f in range(g.F):
        e0 = g.fptr[f]
        k = g.fptr[f + 1] - e0
        size = g.toff[f + 1] - g.toff[f]
        tab = ptab + g.toff[f]
        b = out + g.toff[f]
        if k == 1:
            m0 = m_vf + g.eoff[e0]
            for t in range(size):
                b[t] = tab[t] * m0[t]
        elif k == 2:
            m0 = m_vf + g.eoff[e0]
            m1 = m_vf + g.eoff[e0 + 1]
            c1 = g.card[g.evar[e0 + 1]]
            for x in range(size // c1):
                for y in range(c1):
                    b[x * c1 + y] = tab[x * c1 + y] * m0[x] * m1[y]
        else:
            for j in range(k):
                cnt[j] = 0
            for t in range(size):
                val = tab[t]
                if val != 0.0:
                    for j in range(k):
                        val *= m_vf[g.eoff[e0 + j] + cnt[j]]
                b[t] = val
                j = k - 1
                while j >= 0:
                    cnt[j] += 1
                    if cnt[j] < g.card[g.evar[e0 + j]]:
                        break
                    cnt[j] = 0
                    j -= 1
        _normalise_sum(b, size)


cdef inline void _scale(double s, double *prod, double *log_acc) noexcept nogil:
    """Multiply a normaliser into the running product, folding it into the log
    accumulator before it leaves [1e-250, 1e250] (one log per ~500 messages instead of
    one per message; the product's relative error grows like n eps, so ln Z's absolute
    error does too, instead of ln Z's magnitude times eps)."""
    prod[0] *= s
    if prod[0] < 1e-250 or prod[0] > 1e250:
        if prod[0] == 0.0:
            log_acc[0] = -INFINITY
            prod[0] = 1.0
        else:
            log_acc[0] += log(prod[0])
            prod[0] = 1.0


def tree_sum_product(const idx_t[::1] graph, const double[::1] ptab,
                     double log_offset, const double[::1] mask,
                     const idx_t[::1] sched_edge, const idx_t[::1] sched_to_var,
                     const idx_t[::1] roots, double[::1] m_vf, double[::1] m_fv,
                     double[::1] var_belief, idx_t[::1] scratch):
    """Exact sum-product on a forest (PRML sec. 8.4.4), normalised messages.

    ``sched_edge``/``sched_to_var`` list the messages of the leaves-to-root pass in order
    (edge id, and 1 for factor->variable, 0 for variable->factor); the root-to-leaves pass
    is the same list reversed with directions flipped. ``roots`` holds one variable per
    connected component. Every upward message's normaliser enters Z exactly once, so
    ln Z = log_offset + ln prod(upward normalisers) + sum_roots ln(root mass), the
    product kept in range by :func:`_scale`; ``log_offset`` = sum_f ln max f (the
    tables' scales, summed exactly by the caller). Accumulators are double.

    Assumes: graph packed and validated by ``fastml.graphical``, the schedule a valid
    tree schedule, ``mask`` in {0, 1}, ``scratch`` of length >= max arity.
    Writes messages and the normalised variable marginals (factor marginals follow from
    the messages, :func:`factor_beliefs`); returns ln Z = ln sum_x prod_f f(x_f) mask(x)
    (-inf if the evidence has probability zero; the marginals are then undefined).
    """
    cdef FG g
    _unpack(graph, ptab.shape[0], &g)
    cdef idx_t n = sched_edge.shape[0], i, e, v, j, x, K
    if (sched_to_var.shape[0] != n or mask.shape[0] != g.voff[g.V]
            or m_vf.shape[0] < g.eoff[g.E] + 1 or m_fv.shape[0] < g.eoff[g.E] + 1
            or var_belief.shape[0] != g.voff[g.V] or scratch.shape[0] < g.max_arity):
        raise ValueError("tree_sum_product: shape mismatch")
    cdef double log_z = 0.0, prod = 1.0, z
    cdef bint to_var
    with nogil:
        # leaves-to-root pass (normalisers into Z), then root-to-leaves, flipped
        for i in range(2 * n):
            if i < n:
                e = sched_edge[i]
                to_var = sched_to_var[i] != 0
            else:
                e = sched_edge[2 * n - 1 - i]
                to_var = sched_to_var[2 * n - 1 - i] == 0
            if to_var:
                z = _fac_to_var(&g, e, &ptab[0], &m_vf[0], &m_fv[g.eoff[e]], &scratch[0])
            else:
                z = _var_to_fac(&g, e, &mask[0], &m_fv[0], &m_vf[g.eoff[e]])
            if i < n:
                _scale(z, &prod, &log_z)
        for i in range(roots.shape[0]):
            v = roots[i]
            K = g.card[v]
            for x in range(K):
                var_belief[g.voff[v] + x] = mask[g.voff[v] + x]
            for j in range(g.vptr[v], g.vptr[v + 1]):
                e = g.vedge[j]
                for x in range(K):
                    var_belief[g.voff[v] + x] *= m_fv[g.eoff[e] + x]
            z = 0.0
            for x in range(K):
                z += var_belief[g.voff[v] + x]
            _scale(z, &prod, &log_z)
        log_z += log(prod) + log_offset
        _var_beliefs(&g, &mask[0], &m_fv[0], &var_belief[0])
    return log_z


def factor_beliefs(const idx_t[::1] graph, const double[::1] ptab,
                   const double[::1] m_vf, double[::1] fac_belief, idx_t[::1] scratch):
    """Factor marginals from variable->factor messages (PRML eq. 8.72), normalised.

    Assumes: messages from :func:`tree_sum_product` or :func:`loopy_bp`; ``scratch`` of
    length >= max arity.
    """
    cdef FG g
    _unpack(graph, ptab.shape[0], &g)
    if (m_vf.shape[0] < g.eoff[g.E] + 1 or fac_belief.shape[0] < ptab.shape[0]
            or scratch.shape[0] < g.max_arity):
        raise ValueError("factor_beliefs: shape mismatch")
    if g.F == 0:
        return
    with nogil:
        _fac_beliefs(&g, &ptab[0], &m_vf[0], &fac_belief[0], &scratch[0])


def tree_max_sum(const idx_t[::1] graph, const double[::1] logtab,
                 const double[::1] logmask, const idx_t[::1] sched_edge,
                 const idx_t[::1] sched_to_var, const idx_t[::1] roots,
                 double[::1] m_vf, double[::1] m_fv, idx_t[::1] backptr,
                 idx_t[::1] assignment, double[::1] work, idx_t[::1] scratch):
    """Exact max-sum on a forest with back-tracking (PRML sec. 8.4.5).

    The leaves-to-root pass of the schedule (as in :func:`tree_sum_product`) computes
    log-space messages (PRML eqs. 8.93-8.94), each shifted to max 0 (the shifts add up to
    the maximal score) and, for every factor->variable message, the maximising table
    index per state of the receiving variable. Each root takes its max-marginal argmax
    (PRML eq. 8.98); the schedule is then walked backwards and every factor's other
    variables are read off the stored index (PRML eq. 8.101).

    Assumes: as :func:`tree_sum_product`; ``logmask`` in {0, -inf}; ``work`` of length
    >= the largest cardinality.
    Writes ``assignment`` (state per variable); returns the maximal unnormalised log
    score max_x sum_f ln f(x_f) (-inf when no configuration has positive probability).
    """
    cdef FG g
    _unpack(graph, logtab.shape[0], &g)
    cdef idx_t n = sched_edge.shape[0], i, e, v, f, j, x, K, t, best
    if (sched_to_var.shape[0] != n or logmask.shape[0] != g.voff[g.V]
            or m_vf.shape[0] < g.eoff[g.E] + 1 or m_fv.shape[0] < g.eoff[g.E] + 1
            or backptr.shape[0] < g.eoff[g.E] + 1 or assignment.shape[0] != g.V
            or scratch.shape[0] < g.max_arity or work.shape[0] < g.max_card):
        raise ValueError("tree_max_sum: shape mismatch")
    cdef double score = 0.0, bmax
    cdef double *buf = &work[0]
    with nogil:
        for i in range(n):
            e = sched_edge[i]
            if sched_to_var[i]:
                score += _fac_to_var_max(&g, e, &logtab[0], &m_vf[0], &m_fv[g.eoff[e]],
                                         &backptr[g.eoff[e]], &scratch[0])
            else:
                score += _var_to_fac_max(&g, e, &logmask[0], &m_fv[0], &m_vf[g.eoff[e]])
        for i in range(roots.shape[0]):
            v = roots[i]
            K = g.card[v]
            for x in range(K):
                buf[x] = logmask[g.voff[v] + x]
            for j in range(g.vptr[v], g.vptr[v + 1]):
                e = g.vedge[j]
                for x in range(K):
                    buf[x] += m_fv[g.eoff[e] + x]
            best = 0
            bmax = buf[0]
            for x in range(1, K):
                if buf[x] > bmax:
                    bmax = buf[x]
                    best = x
            score += bmax
            assignment[v] = best
        for i in range(n - 1, -1, -1):
            if sched_to_var[i]:
                e = sched_edge[i]
                f = g.efac[e]
                t = backptr[g.eoff[e] + assignment[g.evar[e]]] - g.toff[f]
                for j in range(g.fptr[f], g.fptr[f + 1]):
                    if j != e:
                        assignment[g.evar[j]] = (t // g.estride[j]) % g.card[g.evar[j]]
    return score


def loopy_bp(const idx_t[::1] graph, const double[::1] ptab, const double[::1] mask,
             idx_t max_iter, double tol, double damping, bint sequential,
             double[::1] m_vf, double[::1] m_fv, double[::1] var_belief,
             double[::1] fac_belief, double[::1] tmp, idx_t[::1] scratch):
    """Loopy belief propagation (sum-product iterated on a graph with cycles).

    ``sequential=False`` is the flooding schedule: all variable->factor messages from the
    current factor->variable ones, then all factor->variable messages. ``sequential=True``
    visits factors in order and refreshes a factor's incoming messages just before its
    outgoing ones. New factor->variable messages are damped in probability space,
    ``mu <- (1 - damping) mu_new + damping mu_old``. Stops when the largest absolute
    change of a (normalised) factor->variable message is below ``tol``.

    Assumes: as :func:`tree_sum_product`; ``m_fv`` initialised (normalised),
    ``0 <= damping < 1``, ``tmp`` at least as long as the largest cardinality.
    Writes messages and beliefs; returns (iterations, last change).
    """
    cdef FG g
    _unpack(graph, ptab.shape[0], &g)
    if (mask.shape[0] != g.voff[g.V] or m_vf.shape[0] < g.eoff[g.E] + 1
            or m_fv.shape[0] < g.eoff[g.E] + 1 or var_belief.shape[0] != g.voff[g.V]
            or fac_belief.shape[0] < ptab.shape[0] + 1 or scratch.shape[0] < g.max_arity
            or tmp.shape[0] < g.max_card):
        raise ValueError("loopy_bp: shape mismatch")
    cdef idx_t it = 0, e, f, x, K
    cdef double delta = INFINITY, d, val
    cdef double *old
    cdef idx_t left = POLL_WORK
    with nogil:
        while it < max_iter:
            it += 1
            delta = 0.0
            poll(&left, 8 * g.eoff[g.E], NULL)
            if not sequential:
                for e in range(g.E):
                    if _var_to_fac(&g, e, &mask[0], &m_fv[0], &m_vf[g.eoff[e]]) == 0.0:
                        _uniform_on(&mask[g.voff[g.evar[e]]], &m_vf[g.eoff[e]],
                                    g.card[g.evar[e]])
            for f in range(g.F):
                poll(&left, 8 * (g.toff[f + 1] - g.toff[f]) * (g.fptr[f + 1] - g.fptr[f] + 1),
                     NULL)
                if sequential:
                    for e in range(g.fptr[f], g.fptr[f + 1]):
                        if _var_to_fac(&g, e, &mask[0], &m_fv[0], &m_vf[g.eoff[e]]) == 0.0:
                            _uniform_on(&mask[g.voff[g.evar[e]]], &m_vf[g.eoff[e]],
                                        g.card[g.evar[e]])
                for e in range(g.fptr[f], g.fptr[f + 1]):
                    K = g.card[g.evar[e]]
                    if _fac_to_var(&g, e, &ptab[0], &m_vf[0], &tmp[0], &scratch[0]) == 0.0:
                        _uniform_on(&mask[g.voff[g.evar[e]]], &tmp[0], K)
                    old = &m_fv[g.eoff[e]]
                    for x in range(K):
                        val = (1.0 - damping) * tmp[x] + damping * old[x]
                        d = fabs(val - old[x])
                        if d > delta:
                            delta = d
                        old[x] = val
            if delta < tol:
                break
        for e in range(g.E):
            if _var_to_fac(&g, e, &mask[0], &m_fv[0], &m_vf[g.eoff[e]]) == 0.0:
                _uniform_on(&mask[g.voff[g.evar[e]]], &m_vf[g.eoff[e]], g.card[g.evar[e]])
        _var_beliefs(&g, &mask[0], &m_fv[0], &var_belief[0])
        if g.F > 0:
            _fac_beliefs(&g, &ptab[0], &m_vf[0], &fac_belief[0], &scratch[0])
    return it, delta


cdef inline void _uniform_on(const double *mask, double *m, idx_t K) noexcept nogil:
    """Replace an all-zero message by the uniform distribution on the mask's support."""
    cdef idx_t x
    cdef double s = 0.0
    for x in range(K):
        s += mask[x]
    for x in range(K):
        m[x] = mask[x] / s


def bethe_free_energy(const idx_t[::1] graph, const double[::1] logtab,
                      const double[::1] var_belief, const double[::1] fac_belief):
    """Bethe free energy of beliefs (Yedidia, Freeman & Weiss 2005, eq. 25).

    F = sum_f sum_{x_f} b_f (ln b_f - ln f) - sum_i (d_i - 1) sum_{x_i} b_i ln b_i, with
    0 ln 0 = 0; -F equals ln Z at the BP fixed point of a tree.

    Assumes: beliefs normalised; ``b_f > 0`` only where ``f > 0``.
    """
    cdef FG g
    _unpack(graph, logtab.shape[0], &g)
    if var_belief.shape[0] != g.voff[g.V] or fac_belief.shape[0] != logtab.shape[0]:
        raise ValueError("bethe_free_energy: shape mismatch")
    cdef idx_t v, t, x
    cdef double energy = 0.0, b, ent
    with nogil:
        for t in range(logtab.shape[0]):
            b = fac_belief[t]
            if b > 0.0:
                energy += b * (log(b) - logtab[t])
        for v in range(g.V):
            ent = 0.0
            for x in range(g.voff[v], g.voff[v + 1]):
                b = var_belief[x]
                if b > 0.0:
                    ent += b * log(b)
            energy -= (g.vptr[v + 1] - g.vptr[v] - 1) * ent
    return energy


# ---------------------------------------------------------------------------------------
# 4-connected grids (Ising/Potts), laid out for SIMD across pixels. Each image row is
# split into its even and odd columns ("halves" of Wh = ceil(W / 2) pixels, stored hs >=
# Wh apart; pixel (i, j) is slot j // 2 of half j % 2), and every per-pixel quantity is
# stored label-major
# inside a row: unary[i, x, half, k], messages[i, d, x, half, k] (the message INTO the
# pixel from its neighbour on side d: 0 left, 1 right, 2 up, 3 down). So the messages of
# one direction and label for a run of pixels are contiguous, every loop below runs
# over pixels with unit stride (the compiler vectorises them), and the two colours of
# the chessboard are whole halves. pair[a, b] couples the left (or upper) pixel's state
# a with the right (or lower) pixel's state b. Messages from outside the grid are
# constant (1, or 0 in log space) and never written.

cdef inline void _cavity(const double *phi, const double *a, const double *b,
                         const double *c, idx_t rs, idx_t n, idx_t K, bint is_max,
                         double *h, double *acc) noexcept nogil:
    """h[x, k] = phi a b c (or the sum in log space) for n pixels; inputs have label
    stride ``rs``, h has label stride n. ``acc[k]`` gets sum_x h (max_x in log space)."""
    cdef idx_t x, k
    cdef double v
    for x in range(K):
        if is_max:
            for k in range(n):
                v = phi[x * rs + k] + a[x * rs + k] + b[x * rs + k] + c[x * rs + k]
                h[x * n + k] = v
                acc[k] = v if x == 0 or v > acc[k] else acc[k]
        else:
            for k in range(n):
                v = phi[x * rs + k] * a[x * rs + k] * b[x * rs + k] * c[x * rs + k]
                h[x * n + k] = v
                acc[k] = v if x == 0 else acc[k] + v


cdef inline void _potts_sum(idx_t n, idx_t K, double diag, double off, double keep,
                            double *base, double *scale) noexcept nogil:
    """Potts sum-product message m(y) = off S + (diag - off) h(y), S = sum_x h(x) (in
    ``scale`` on entry), normalised in closed form and damped:
    keep m / (S (K off + diag - off)) = base + scale h(y)."""
    cdef idx_t k
    cdef double c = K * off + diag - off, b0 = keep * off / c, uni = keep / K
    cdef double num = keep * (diag - off) / c
    # S = 0 (every cavity entry underflowed, so h = 0): the uniform message. Selects in
    # one loop, the division in another: a select feeding a division in one loop
    # becomes a branch, and the loop is not vectorised.
    for k in range(n):
        base[k] = b0 if scale[k] > 0.0 else uni
        scale[k] = scale[k] if scale[k] > 0.0 else 1.0
    for k in range(n):
        scale[k] = num / scale[k]


cdef inline void _general_sum(const double *h, const double *pm, idx_t n, idx_t K,
                              double keep, double *o, double *base,
                              double *scale) noexcept nogil:
    """o[y, k] = sum_x h[x, k] pm[x, y]; base 0 and scale keep / sum_y o (uniform if
    the sum is 0)."""
    cdef idx_t x, y, k
    cdef double p, uni
    for k in range(n * K):
        o[k] = 0.0
    for x in range(K):
        for y in range(K):
            p = pm[x * K + y]
            for k in range(n):
                o[y * n + k] += h[x * n + k] * p
    for k in range(n):
        scale[k] = 0.0
    for y in range(K):
        for k in range(n):
            scale[k] += o[y * n + k]
    uni = keep / K
    for k in range(n):  # a zero sum (o = 0) gives the uniform message; as in _potts_sum
        base[k] = 0.0 if scale[k] > 0.0 else uni
        scale[k] = scale[k] if scale[k] > 0.0 else 1.0
    for k in range(n):
        scale[k] = keep / scale[k]


cdef inline void _potts_max(double *h, idx_t n, idx_t K, double diag, double off,
                            double keep, double *base, double *scale) noexcept nogil:
    """Potts max-product message in log space, in place: h(y) <- max(h(y) + diag,
    M + off), M = max_x h(x) (in ``base`` on entry); its maximum M + max(diag, off) is
    subtracted through ``base`` (damped: base + scale h = keep (h - max))."""
    cdef idx_t x, k
    cdef double v, top = diag if diag > off else off
    for x in range(K):
        for k in range(n):
            v = h[x * n + k] + diag
            h[x * n + k] = v if v > base[k] + off else base[k] + off
    for k in range(n):
        base[k] = -keep * (base[k] + top)
        scale[k] = keep


cdef inline void _general_max(const double *h, const double *pm, idx_t n, idx_t K,
                              double keep, double *o, double *base,
                              double *scale) noexcept nogil:
    """o[y, k] = max_x h[x, k] + pm[x, y]; base = -keep max_y o, scale keep."""
    cdef idx_t x, y, k
    cdef double p, v
    for y in range(K):
        p = pm[y]
        for k in range(n):
            o[y * n + k] = h[k] + p
        for x in range(1, K):
            p = pm[x * K + y]
            for k in range(n):
                v = h[x * n + k] + p
                o[y * n + k] = v if v > o[y * n + k] else o[y * n + k]
    for k in range(n):
        base[k] = o[k]
    for y in range(1, K):
        for k in range(n):
            base[k] = o[y * n + k] if o[y * n + k] > base[k] else base[k]
    for k in range(n):
        base[k] = -keep * base[k]
        scale[k] = keep


cdef inline double _damp_store(const double *o, const double *base, const double *scale,
                               idx_t rs, idx_t n, idx_t K, double damping,
                               const double *old, double *dst, double *dk,
                               bint track) noexcept nogil:
    """dst[x, k] = base[k] + scale[k] o[x, k] + damping old[x, k] (base and scale carry
    the factor 1 - damping; ``old`` and ``dst`` have label stride ``rs`` and may be the
    same array). With ``track``, returns the largest change, kept per pixel in ``dk``
    so the loop stays vectorisable; else 0."""
    cdef idx_t x, k
    cdef double v, ch, delta = 0.0
    if not track and damping == 0.0:
        for x in range(K):
            for k in range(n):
                dst[x * rs + k] = base[k] + scale[k] * o[x * n + k]
        return 0.0
    if not track:
        for x in range(K):
            for k in range(n):
                dst[x * rs + k] = (base[k] + scale[k] * o[x * n + k]
                                   + damping * old[x * rs + k])
        return 0.0
    for x in range(K):
        for k in range(n):
            v = base[k] + scale[k] * o[x * n + k] + damping * old[x * rs + k]
            ch = fabs(v - old[x * rs + k])
            dk[k] = ch if x == 0 or ch > dk[k] else dk[k]
            dst[x * rs + k] = v
    for k in range(n):
        delta = dk[k] if dk[k] > delta else delta
    return delta


cdef double _grid_row(const double *unary, const double *pair, const double *pair_t,
                      idx_t i, idx_t H, idx_t W, idx_t hs, idx_t K, double potts_diag,
                      double potts_off, bint potts, bint is_max, double damping,
                      const double *up, const double *mid, const double *down,
                      double *dst, int halves, bint track,
                      double *scratch) noexcept nogil:
    """The new messages into the pixels of row i, one half-row and side d at a time:
    the messages into its pixels from their neighbours on side d, as a strip of vector
    operations over pixels.

    ``up``, ``mid`` and ``down`` are rows i - 1, i and i + 1 of the messages read (NULL
    outside the grid); ``mid`` is also the old value for damping. ``dst`` is row i of
    the messages written (may be ``mid``). ``halves`` is a bit mask of the halves
    updated (1 even columns, 2 odd). Messages from outside the grid are written as
    constants. ``scratch`` holds (2 K + 3) hs doubles. With ``track``, returns the
    largest absolute change of a message (else 0)."""
    cdef idx_t Wh = (W + 1) // 2, rs = 2 * hs, lab = K * 2 * hs
    cdef idx_t par, d, e, x, k, sp, t, so, cnt, lo, hi, n_t
    cdef idx_t n_half[2]
    cdef double delta = 0.0, ch, border = 0.0 if is_max else 1.0, keep = 1.0 - damping
    cdef double *h = scratch
    cdef double *o = scratch + K * hs
    cdef double *base = scratch + 2 * K * hs
    cdef double *scale = base + hs
    cdef double *dk = scale + hs
    cdef const double *pm
    cdef const double *src
    cdef const double *phi
    n_half[0] = Wh
    n_half[1] = W // 2
    for par in range(2):
        if not (halves >> par) & 1:
            continue
        n_t = n_half[par]
        for d in range(4):
            # the neighbours: a strip of row i - 1, i or i + 1 (src), half sp, from its
            # slot so; they send into the targets from slot t on, cnt of them; the
            # targets [lo, hi) have no neighbour on side d
            t = 0
            so = 0
            lo = 0
            hi = 0
            if d == 0:
                src, sp, pm = mid, 1 - par, pair
                phi = unary + i * K * rs
                cnt = n_t - 1 if par == 0 else n_t
                t = 1 if par == 0 else 0  # even j = 0 has no left neighbour
                hi = t
            elif d == 1:
                src, sp, pm = mid, 1 - par, pair_t
                phi = unary + i * K * rs
                cnt = n_half[1] if par == 0 else Wh - 1
                so = 0 if par == 0 else 1  # right of odd j = 2k + 1 is even slot k + 1
                lo = cnt
                hi = n_t
            elif d == 2:
                src, sp, pm, cnt = up, par, pair, n_t
                if up == NULL:
                    cnt = 0
                    hi = n_t
                else:
                    phi = unary + (i - 1) * K * rs
            else:
                src, sp, pm, cnt = down, par, pair_t, n_t
                if down == NULL:
                    cnt = 0
                    hi = n_t
                else:
                    phi = unary + (i + 1) * K * rs
            for x in range(K):
                for k in range(lo, hi):
                    dst[d * lab + x * rs + par * hs + k] = border
            if cnt <= 0:
                continue
            # the neighbour's cavity leaves out its slot facing this pixel (d ^ 1)
            e = d ^ 1
            src = src + sp * hs + so
            _cavity(phi + sp * hs + so, src + ((e + 1) & 3) * lab,
                    src + ((e + 2) & 3) * lab, src + ((e + 3) & 3) * lab, rs, cnt, K,
                    is_max, h, base if is_max else scale)
            if is_max and potts:
                _potts_max(h, cnt, K, potts_diag, potts_off, keep, base, scale)
            elif is_max:
                _general_max(h, pm, cnt, K, keep, o, base, scale)
            elif potts:
                _potts_sum(cnt, K, potts_diag, potts_off, keep, base, scale)
            else:
                _general_sum(h, pm, cnt, K, keep, o, base, scale)
            ch = _damp_store(h if potts else o, base, scale, rs, cnt, K, damping,
                             mid + d * lab + par * hs + t, dst + d * lab + par * hs + t,
                             dk, track)
            delta = ch if ch > delta else delta
    return delta


cdef inline const double *_row(const double *m, idx_t i, idx_t H,
                               idx_t row) noexcept nogil:
    """Row i of a message array, or NULL outside the grid."""
    return m + i * row if 0 <= i < H else NULL


cdef enum:
    _FUSE = 4  # flooding sweeps per pass over memory

GRID_FUSE = _FUSE  # most sweeps per grid_flood_strip call (the caller's scratch size)


cdef inline const double *_src_row(const double *msgs, const double *halo, idx_t k,
                                   idx_t a, idx_t b, idx_t depth, idx_t H,
                                   idx_t row) noexcept nogil:
    """Row k of the messages a flooding strip [a, b) starts from: its own rows in
    ``msgs``, the ``depth`` rows above and below it in ``halo`` (a copy taken before
    any strip wrote), NULL outside the grid."""
    if k < 0 or k >= H:
        return NULL
    if k < a:
        return halo + (k - (a - depth)) * row
    if k >= b:
        return halo + (depth + k - b) * row
    return msgs + k * row


cdef int _flood(const double *unary, const double *pair, const double *pair_t,
                idx_t H, idx_t W, idx_t hs, idx_t K, double potts_diag,
                double potts_off, bint potts, bint is_max, double damping,
                double *msgs, const double *halo, const double *start, idx_t a,
                idx_t b, idx_t depth, double *rings, double *belief, double *scratch,
                const unsigned char *cancel, double *delta) except -1 nogil:
    """``depth`` (1 .. _FUSE) flooding sweeps of the rows [a, b) of ``msgs`` (one
    strip), in place, in one pass over memory (temporal blocking). Sweep l (0-based)
    computes its row r - l as soon as sweep l - 1 has rows r - l - 1 .. r - l + 1;
    each sweep writes into its own ring of three rows (``rings``, ``depth`` of them),
    which stays in cache. Row k - 1 of ``msgs`` is last read by the first sweep's row
    k, so once the last sweep has row k, its row k - 1 is copied home.

    So that the strip's rows come out exact, sweep l also computes the
    ``depth - 1 - l`` rows on either side of the strip (ghost rows, which the
    neighbouring strip computes too): the first sweep reads rows [a - depth,
    b + depth), those outside the strip from ``halo`` (2 depth rows: the ``depth``
    rows above the strip, then the ``depth`` below, copied before any strip of this
    pass wrote). Only rows [a, b) of ``msgs`` are written, so strips run concurrently,
    in any order, with the same bits.

    With ``start`` (four template rows from ``_init_row``: interior, top, bottom, top
    and bottom) the first sweep starts from the uniform messages without reading
    ``msgs`` or ``halo``. With ``belief``, the beliefs of rows [a, b) are computed
    from the last sweep's rows while they are in cache. ``delta`` gets the last
    sweep's largest change. Polls ``cancel`` once per row pass."""
    cdef idx_t row = 4 * K * 2 * hs, r, k, lev, t
    cdef idx_t left = POLL_WORK, row_work = 64 * W * K * (1 if potts else K)
    cdef double ch
    cdef const double *ring
    cdef const double *mid
    cdef const double *up
    cdef const double *down
    cdef double *out
    delta[0] = 0.0
    for r in range(a - depth + 1 if a >= depth - 1 else 0, b + depth - 1):
        poll(&left, depth * row_work, cancel)
        for lev in range(depth):  # sweep lev computes its row r - lev
            k = r - lev
            if k < 0 or k >= H or k < a - (depth - 1 - lev) or k >= b + (depth - 1 - lev):
                continue
            if lev == 0 and start != NULL:
                up = start + ((k == 1) + 2 * (k - 1 == H - 1)) * row if k > 0 else NULL
                mid = start + ((k == 0) + 2 * (k == H - 1)) * row
                down = start + (2 * (k + 1 == H - 1)) * row if k + 1 < H else NULL
            elif lev == 0:
                up = _src_row(msgs, halo, k - 1, a, b, depth, H, row)
                mid = _src_row(msgs, halo, k, a, b, depth, H, row)
                down = _src_row(msgs, halo, k + 1, a, b, depth, H, row)
            else:
                ring = rings + (lev - 1) * 3 * row
                up = ring + ((k + 2) % 3) * row if k > 0 else NULL
                mid = ring + (k % 3) * row
                down = ring + ((k + 1) % 3) * row if k + 1 < H else NULL
            out = rings + lev * 3 * row
            ch = _grid_row(unary, pair, pair_t, k, H, W, hs, K, potts_diag, potts_off,
                           potts, is_max, damping, up, mid, down, out + (k % 3) * row, 3,
                           lev == depth - 1, scratch)
            if lev == depth - 1:
                delta[0] = ch if ch > delta[0] else delta[0]
                if belief != NULL:
                    _row_beliefs(unary + k * K * 2 * hs, out + (k % 3) * row, W, hs, K,
                                 is_max, belief + k * W * K, scratch)
                for t in range(k - 1 if k > a else a, k + 1 if k == b - 1 else k):
                    memcpy(msgs + t * row, out + (t % 3) * row, row * sizeof(double))
    return 0


cdef int _checkerboard(const double *unary, const double *pair, const double *pair_t,
                       idx_t H, idx_t W, idx_t hs, idx_t K, double potts_diag,
                       double potts_off, bint potts, bint is_max, double damping,
                       double *msgs, idx_t a, idx_t b, idx_t c1_lo, idx_t c1_hi,
                       bint colour0, double *scratch, const unsigned char *cancel,
                       double *delta) except -1 nogil:
    """Part of a red-black sweep, in place, in one pass over memory: for r in [a, b],
    the messages into the colour-0 pixels ((i + j) % 2 == 0) of row r (with
    ``colour0`` and r < b), then into the colour-1 pixels of row r - 1 if it lies in
    [c1_lo, c1_hi). Each half of the sweep reads only the messages into the other
    colour, so a colour-1 row is exact once the colour-0 rows next to it are new, and
    rows of one colour can be updated in any order, by any thread. ``delta`` gets the
    largest change. Polls ``cancel`` once per row."""
    cdef idx_t row = 4 * K * 2 * hs, r, k
    cdef idx_t left = POLL_WORK, row_work = 64 * W * K * (1 if potts else K)
    cdef double ch
    delta[0] = 0.0
    for r in range(a, b + 1):
        poll(&left, row_work, cancel)
        if colour0 and r < b:  # colour 0 in row r: the half with j % 2 == r % 2
            ch = _grid_row(unary, pair, pair_t, r, H, W, hs, K, potts_diag, potts_off,
                           potts, is_max, damping, _row(msgs, r - 1, H, row),
                           msgs + r * row, _row(msgs, r + 1, H, row), msgs + r * row,
                           1 << (r % 2), True, scratch)
            delta[0] = ch if ch > delta[0] else delta[0]
        k = r - 1
        if c1_lo <= k < c1_hi:  # colour 1 in row k: j % 2 == (k + 1) % 2
            ch = _grid_row(unary, pair, pair_t, k, H, W, hs, K, potts_diag, potts_off,
                           potts, is_max, damping, _row(msgs, k - 1, H, row),
                           msgs + k * row, _row(msgs, k + 1, H, row), msgs + k * row,
                           1 << ((k + 1) % 2), True, scratch)
            delta[0] = ch if ch > delta[0] else delta[0]
    return 0


cdef void _row_beliefs(const double *u, const double *m, idx_t W, idx_t hs, idx_t K,
                       bint is_max, double *out, double *scratch) noexcept nogil:
    """b ∝ phi prod_d m_d (sum), or ln phi + sum_d m_d shifted to max 0 (max), for one
    row (``u`` its unary, ``m`` its messages, in the kernel's layout), written out as
    (W, K). ``scratch`` holds (K + 1) 2 hs doubles."""
    cdef idx_t x, d, k, j, rs = 2 * hs
    cdef double *b = scratch
    cdef double *acc = scratch + K * rs
    for k in range(K * rs):
        b[k] = u[k]
    for d in range(4):
        for k in range(K * rs):
            if is_max:
                b[k] += m[d * K * rs + k]
            else:
                b[k] *= m[d * K * rs + k]
    for k in range(rs):
        acc[k] = b[k]
    for x in range(1, K):
        for k in range(rs):
            if is_max:
                acc[k] = b[x * rs + k] if b[x * rs + k] > acc[k] else acc[k]
            else:
                acc[k] += b[x * rs + k]
    for k in range(rs):
        if not is_max:
            acc[k] = 1.0 / acc[k] if acc[k] > 0.0 else 0.0
    for j in range(W):
        k = (j % 2) * hs + j // 2
        for x in range(K):
            if is_max:
                out[j * K + x] = b[x * rs + k] - acc[k]
            elif acc[k] > 0.0:
                out[j * K + x] = b[x * rs + k] * acc[k]
            else:
                out[j * K + x] = 1.0 / K


cdef void _init_row(double *m, bint top, bint bottom, idx_t W, idx_t hs, idx_t K,
                    double inner, double border) noexcept nogil:
    """One row of messages at the start: ``inner`` (uniform) everywhere but the slots
    from outside the grid (left of j = 0, right of j = W - 1, above the top row, below
    the bottom row), which hold ``border``."""
    cdef idx_t rs = 2 * hs, lab = K * 2 * hs, t, x
    for t in range(4 * lab):
        m[t] = inner
    for x in range(K):
        m[0 * lab + x * rs] = border  # left of j = 0
        # right of j = W - 1: in the odd half if W is even, else in the even half
        m[1 * lab + x * rs + (W - 1) % 2 * hs + (W - 1) // 2] = border
        for t in range(rs):
            if top:
                m[2 * lab + x * rs + t] = border
            if bottom:
                m[3 * lab + x * rs + t] = border


cdef int _check_grid(const double[:, :, :, ::1] unary, idx_t W,
                     const double[:, ::1] pair, const double[:, ::1] pair_t,
                     const double[:, :, :, :, ::1] messages, idx_t a, idx_t b,
                     idx_t scratch_len, idx_t scratch_need,
                     const unsigned char[::1] cancel) except -1:
    """O(1) shape agreement of the grid kernels' arguments (ValueError otherwise)."""
    cdef idx_t H = unary.shape[0], K = unary.shape[1], hs = unary.shape[3]
    if (unary.shape[2] != 2 or hs < (W + 1) // 2 or W < 1 or H * K == 0
            or pair.shape[0] != K or pair.shape[1] != K or pair_t.shape[0] != K
            or pair_t.shape[1] != K or messages.shape[0] != H
            or messages.shape[1] != 4 or messages.shape[2] != K
            or messages.shape[3] != 2 or messages.shape[4] != hs
            or not 0 <= a <= b <= H or scratch_len < scratch_need
            or cancel.shape[0] < 1):
        raise ValueError("grid kernel: shape mismatch")
    return 0


def grid_init(double[:, :, :, :, ::1] rows, idx_t W, bint is_max):
    """The start rows of the messages (uniform: 1 / K, or 0 for max-product; 1, or 0,
    on the slots from outside the grid, which stay constant): ``rows`` (4, 4, K, 2, hs)
    gets an interior row, a top row, a bottom row and a row both top and bottom."""
    cdef idx_t K = rows.shape[2], hs = rows.shape[4], t
    cdef idx_t row = 4 * K * 2 * hs
    if (rows.shape[0] != 4 or rows.shape[1] != 4 or rows.shape[3] != 2 or K < 1
            or W < 1 or hs < (W + 1) // 2):
        raise ValueError("grid_init: shape mismatch")
    cdef double *m = &rows[0, 0, 0, 0, 0]
    with nogil:
        for t in range(4):
            _init_row(m + t * row, t & 1, t & 2, W, hs, K, 0.0 if is_max else 1.0 / K,
                      0.0 if is_max else 1.0)


def grid_flood_strip(const double[:, :, :, ::1] unary, idx_t W, const double[:, ::1] pair,
                     const double[:, ::1] pair_t, double potts_diag, double potts_off,
                     bint potts, bint is_max, double damping,
                     double[:, :, :, :, ::1] messages, const double[:, :, :, :, ::1] halo,
                     const double[:, :, :, :, ::1] start, bint first, idx_t a, idx_t b,
                     idx_t depth, double[:, :, ::1] belief, bint beliefs,
                     double[::1] scratch, const unsigned char[::1] cancel):
    """``depth`` flooding sweeps of loopy BP on a 4-connected H x W grid with one
    shared pairwise table (every message from the previous sweep's), for the rows
    [a, b) of a strip, in place in ``messages``; the ``depth`` rows above and below
    the strip come from ``halo`` (see ``_flood``). Strips of one pass write disjoint
    rows and read the others' rows only from their halo copies, so they may run on
    concurrent threads.

    Sum-product (``is_max=False``): ``unary`` and ``pair`` are potentials (positive,
    scaled), messages are normalised to sum 1 (PRML eq. 8.66 with eq. 8.69 folded in).
    Max-product (``is_max=True``): log potentials, messages in log space shifted to max 0
    (PRML eqs. 8.93-8.94). With ``potts`` the pairwise table is ``potts_diag`` on the
    diagonal and ``potts_off`` elsewhere, and each message costs O(K) instead of O(K^2):
    sum_x h(x) pair[x, y] = off sum_x h(x) + (diag - off) h(y), and
    max_x h(x) + pair[x, y] = max(h(y) + diag, max_x h(x) + off).
    Damping mixes the new message with the old one (in log space for max-product).

    Layout (see the comment above ``_cavity``): ``unary`` (H, K, 2, hs) and the
    messages (H, 4, K, 2, hs), hs >= Wh = ceil(W / 2). Slots past the pixels (hs - Wh
    per half, one more in the odd half when W is odd) are padding: finite, never a
    neighbour. A little padding keeps label rows of a power-of-two width from all
    falling into the same cache sets.

    Assumes: validated finite inputs; 1 <= depth <= GRID_FUSE; ``halo`` (2 depth, 4,
    K, 2, hs) holds rows a - depth .. a - 1 then b .. b + depth - 1 of ``messages``
    (those inside the grid) as they were before this pass. With ``first`` the first
    sweep starts from ``start`` (:func:`grid_init`) and neither ``messages`` nor
    ``halo`` is read. With ``beliefs`` the beliefs of rows [a, b) (log-beliefs shifted
    to max 0 for max-product) are written into ``belief`` (H, W, K). ``scratch`` holds
    (2 K + 3) hs + 24 depth K hs doubles, finite (strip buffers and the rings of three
    rows, whose padding is copied into ``messages``). Returns the last sweep's largest
    message change in the strip.
    """
    cdef idx_t H = unary.shape[0], K = unary.shape[1], hs = unary.shape[3]
    cdef idx_t row = 4 * K * 2 * hs
    _check_grid(unary, W, pair, pair_t, messages, a, b, scratch.shape[0],
                (2 * K + 3) * hs + 3 * depth * row, cancel)
    if (belief.shape[0] != H or belief.shape[1] != W or belief.shape[2] != K
            or halo.shape[0] != 2 * depth or halo.shape[1] != 4 or halo.shape[2] != K
            or halo.shape[3] != 2 or halo.shape[4] != hs or start.shape[0] != 4
            or start.shape[1] != 4 or start.shape[2] != K or start.shape[3] != 2
            or start.shape[4] != hs or not 1 <= depth <= _FUSE):
        raise ValueError("grid_flood_strip: shape mismatch")
    cdef double delta = 0.0
    if a == b:
        return delta
    with nogil:
        _flood(&unary[0, 0, 0, 0], &pair[0, 0], &pair_t[0, 0], H, W, hs, K, potts_diag,
               potts_off, potts, is_max, damping, &messages[0, 0, 0, 0, 0],
               &halo[0, 0, 0, 0, 0], &start[0, 0, 0, 0, 0] if first else NULL, a, b,
               depth, &scratch[(2 * K + 3) * hs],
               &belief[0, 0, 0] if beliefs else NULL, &scratch[0], &cancel[0], &delta)
    return delta


def grid_checkerboard_rows(const double[:, :, :, ::1] unary, idx_t W,
                           const double[:, ::1] pair, const double[:, ::1] pair_t,
                           double potts_diag, double potts_off, bint potts, bint is_max,
                           double damping, double[:, :, :, :, ::1] messages, idx_t a,
                           idx_t b, idx_t c1_lo, idx_t c1_hi, bint colour0,
                           double[::1] scratch, const unsigned char[::1] cancel):
    """Part of one red-black sweep of loopy BP on the grid, in place (Felzenszwalb &
    Huttenlocher 2006, sec. 4): the grid is bipartite, so a sweep updates the messages
    into the pixels of one colour from the messages into the other, then those into
    the other colour from the newest values. Here: with ``colour0`` the messages into
    the colour-0 pixels ((i + j) % 2 == 0) of rows [a, b), and those into the colour-1
    pixels of rows [c1_lo, c1_hi), each row as soon as the colour-0 rows next to it
    are done (see ``_checkerboard``). Equations, potentials and layout as
    :func:`grid_flood_strip`.

    Calls that update disjoint rows of one colour may run on concurrent threads; a
    colour-1 row needs the colour-0 rows next to it from the same sweep first.

    Assumes: validated finite inputs; ``messages`` started from :func:`grid_init`'s
    rows; every colour-1 row in [c1_lo, c1_hi) has its colour-0 neighbour rows new
    (inside [a, b) or updated before); ``scratch`` holds (2 K + 3) hs doubles. Returns
    the largest message change.
    """
    cdef idx_t H = unary.shape[0], K = unary.shape[1], hs = unary.shape[3]
    _check_grid(unary, W, pair, pair_t, messages, a, b, scratch.shape[0],
                (2 * K + 3) * hs, cancel)
    if not 0 <= c1_lo <= c1_hi <= H:
        raise ValueError("grid_checkerboard_rows: rows out of range")
    cdef double delta = 0.0
    with nogil:
        _checkerboard(&unary[0, 0, 0, 0], &pair[0, 0], &pair_t[0, 0], H, W, hs, K,
                      potts_diag, potts_off, potts, is_max, damping,
                      &messages[0, 0, 0, 0, 0], a, b, c1_lo, c1_hi, colour0,
                      &scratch[0], &cancel[0], &delta)
    return delta


def grid_beliefs(const double[:, :, :, ::1] unary, idx_t W,
                 const double[:, :, :, :, ::1] messages, bint is_max, idx_t a, idx_t b,
                 double[:, :, ::1] belief, double[::1] scratch):
    """The beliefs of rows [a, b) of the grid from its messages: b ∝ phi prod_d m_d
    (sum-product, PRML eq. 8.63), or ln phi + sum_d m_d shifted to max 0 (max-product),
    written into ``belief`` (H, W, K). Layout as :func:`grid_flood_strip`.

    Assumes: ``scratch`` holds (K + 1) 2 hs doubles.
    """
    cdef idx_t H = unary.shape[0], K = unary.shape[1], hs = unary.shape[3], i
    cdef idx_t row = 4 * K * 2 * hs
    if (unary.shape[2] != 2 or hs < (W + 1) // 2 or W < 1 or messages.shape[0] != H
            or messages.shape[1] != 4 or messages.shape[2] != K
            or messages.shape[3] != 2 or messages.shape[4] != hs
            or belief.shape[0] != H or belief.shape[1] != W or belief.shape[2] != K
            or not 0 <= a <= b <= H or scratch.shape[0] < (K + 1) * 2 * hs):
        raise ValueError("grid_beliefs: shape mismatch")
    if a == b:
        return
    cdef const double *u = &unary[0, 0, 0, 0]
    cdef const double *m = &messages[0, 0, 0, 0, 0]
    cdef double *out = &belief[0, 0, 0]
    with nogil:
        for i in range(a, b):
            _row_beliefs(u + i * K * 2 * hs, m + i * row, W, hs, K, is_max,
                         out + i * W * K, &scratch[0])
