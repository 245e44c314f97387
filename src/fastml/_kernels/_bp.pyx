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

The grid kernels (``grid_bp_sum``, ``grid_bp_max``) are the same equations specialised to a
4-connected H x W lattice with one pairwise table shared by all edges.
"""
from libc.math cimport log, fabs, INFINITY

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
    with nogil:
        while it < max_iter:
            it += 1
            delta = 0.0
            if not sequential:
                for e in range(g.E):
                    if _var_to_fac(&g, e, &mask[0], &m_fv[0], &m_vf[g.eoff[e]]) == 0.0:
                        _uniform_on(&mask[g.voff[g.evar[e]]], &m_vf[g.eoff[e]],
                                    g.card[g.evar[e]])
            for f in range(g.F):
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
# 4-connected grids (Ising/Potts): messages[i, j, d, :] is the message INTO pixel (i, j)
# from its neighbour on side d (0 left, 1 right, 2 up, 3 down), so a pixel's four
# incoming messages are contiguous; pair[a, b] couples the left (or upper) pixel's state a
# with the right (or lower) pixel's state b. Messages from outside the grid are constant
# (1, or 0 in log space) and never updated.

cdef inline void _grid_msg_sum(const double *h, const double *pair, idx_t K,
                               double potts_diag, double potts_off, bint potts,
                               double *out) noexcept nogil:
    """out(y) = sum_x h(x) pair[x, y], normalised to sum 1."""
    cdef idx_t x, y
    cdef double s = 0.0, hx, base, slope
    if potts:
        for x in range(K):
            s += h[x]
        # the message sums to s (K off + diag - off): normalise in the same pass
        base = s * (K * potts_off + potts_diag - potts_off)
        if base > 0.0:
            slope = (potts_diag - potts_off) / base
            base = potts_off * s / base
            for y in range(K):
                out[y] = base + slope * h[y]
            return
        for y in range(K):
            out[y] = 1.0 / K
        return
    else:
        for y in range(K):
            out[y] = 0.0
        for x in range(K):
            hx = h[x]
            for y in range(K):
                out[y] += hx * pair[x * K + y]
    s = 0.0
    for y in range(K):
        s += out[y]
    if s > 0.0:
        s = 1.0 / s
        for y in range(K):
            out[y] *= s
    else:
        for y in range(K):
            out[y] = 1.0 / K


cdef inline void _grid_msg_max(const double *h, const double *pair, idx_t K,
                               double potts_diag, double potts_off, bint potts,
                               double *out) noexcept nogil:
    """out(y) = max_x h(x) + pair[x, y] (log space), shifted to max 0."""
    cdef idx_t x, y
    cdef double mx = -INFINITY, hx
    if potts:
        for x in range(K):
            if h[x] > mx:
                mx = h[x]
        for y in range(K):
            out[y] = h[y] + potts_diag
            if mx + potts_off > out[y]:
                out[y] = mx + potts_off
    else:
        for y in range(K):
            out[y] = -INFINITY
        for x in range(K):
            hx = h[x]
            for y in range(K):
                if hx + pair[x * K + y] > out[y]:
                    out[y] = hx + pair[x * K + y]
    mx = -INFINITY
    for y in range(K):
        if out[y] > mx:
            mx = out[y]
    if mx == -INFINITY:
        mx = 0.0
    for y in range(K):
        out[y] -= mx


cdef inline double _potts_sum_update(const double *phi, const double *a,
                                     const double *b, const double *c, idx_t K,
                                     double potts_diag, double potts_off,
                                     double damping, const double *old,
                                     double *dst) noexcept nogil:
    """Fused Potts sum-product message: cavity h = phi a b c, message
    off sum(h) + (diag - off) h normalised in closed form, damped into ``dst``.

    Two interleaved accumulators for the sum and the change break the serial
    floating-point dependency chains (the loop is latency bound at K = 8 otherwise).
    Returns the largest change."""
    cdef idx_t x
    cdef double s0 = 0.0, s1 = 0.0, base, slope, v0, v1, d0 = 0.0, d1 = 0.0, ch
    cdef double keep = 1.0 - damping
    for x in range(0, K - 1, 2):
        s0 += phi[x] * a[x] * b[x] * c[x]
        s1 += phi[x + 1] * a[x + 1] * b[x + 1] * c[x + 1]
    if K % 2:
        s0 += phi[K - 1] * a[K - 1] * b[K - 1] * c[K - 1]
    s0 += s1
    base = s0 * (K * potts_off + potts_diag - potts_off)
    if base > 0.0:
        slope = keep * (potts_diag - potts_off) / base
        base = keep * potts_off * s0 / base
    else:
        slope = 0.0
        base = keep / K
    for x in range(0, K - 1, 2):
        v0 = base + slope * (phi[x] * a[x] * b[x] * c[x]) + damping * old[x]
        v1 = (base + slope * (phi[x + 1] * a[x + 1] * b[x + 1] * c[x + 1])
              + damping * old[x + 1])
        ch = fabs(v0 - old[x])
        if ch > d0:
            d0 = ch
        ch = fabs(v1 - old[x + 1])
        if ch > d1:
            d1 = ch
        dst[x] = v0
        dst[x + 1] = v1
    if K % 2:
        x = K - 1
        v0 = base + slope * (phi[x] * a[x] * b[x] * c[x]) + damping * old[x]
        ch = fabs(v0 - old[x])
        if ch > d0:
            d0 = ch
        dst[x] = v0
    return d0 if d0 > d1 else d1


cdef double _grid_sweep(const double *unary, const double *pair, const double *pair_t,
                        idx_t H, idx_t W, idx_t K, double potts_diag, double potts_off,
                        bint potts, bint is_max, double damping, const double *cur,
                        double *nxt, double *h, double *m, idx_t colour) noexcept nogil:
    """One flooding sweep: every message from ``cur``, damped, into ``nxt``.

    Pull order: pixel q gathers its four incoming messages from its neighbours' blocks
    and writes its own contiguous block of ``nxt`` (compared with its block of ``cur``
    for the change), so writes stream and reads stay within three rows. With
    ``colour`` 0 or 1 only the pixels with (i + j) % 2 == colour are updated, in place
    (``nxt`` may equal ``cur``: their neighbours all have the other colour).
    Returns the largest absolute change of a message."""
    cdef idx_t i, j, x, d, pi, pj, K4 = 4 * K
    cdef const double *phi
    cdef const double *src
    cdef const double *a
    cdef const double *b
    cdef const double *c
    cdef const double *pm
    cdef const double *old
    cdef double *dst
    cdef double delta = 0.0, val, ch, keep = 1.0 - damping, border
    border = 0.0 if is_max else 1.0
    cdef idx_t step = 1 if colour < 0 else 2
    for i in range(H):
        j = 0 if colour < 0 else (i + colour) % 2
        j -= step
        while j + step < W:
            j += step
            old = cur + (i * W + j) * K4
            dst = nxt + (i * W + j) * K4
            # slot d of q = (i, j) holds the message from neighbour p on side d; p's
            # cavity leaves out p's slot facing q (d ^ 1: left <-> right, up <-> down)
            for d in range(4):
                if d == 0:
                    pi, pj, pm = i, j - 1, pair
                elif d == 1:
                    pi, pj, pm = i, j + 1, pair_t
                elif d == 2:
                    pi, pj, pm = i - 1, j, pair
                else:
                    pi, pj, pm = i + 1, j, pair_t
                if pi < 0 or pi >= H or pj < 0 or pj >= W:
                    for x in range(K):
                        dst[d * K + x] = border
                    continue
                phi = unary + (pi * W + pj) * K
                src = cur + (pi * W + pj) * K4
                a = src + (((d ^ 1) + 1) & 3) * K
                b = src + (((d ^ 1) + 2) & 3) * K
                c = src + (((d ^ 1) + 3) & 3) * K
                if potts and not is_max:
                    ch = _potts_sum_update(phi, a, b, c, K, potts_diag, potts_off,
                                           damping, old + d * K, dst + d * K)
                    if ch > delta:
                        delta = ch
                    continue
                if is_max:
                    for x in range(K):
                        h[x] = phi[x] + a[x] + b[x] + c[x]
                    _grid_msg_max(h, pm, K, potts_diag, potts_off, potts, m)
                else:
                    for x in range(K):
                        h[x] = phi[x] * a[x] * b[x] * c[x]
                    _grid_msg_sum(h, pm, K, potts_diag, potts_off, potts, m)
                for x in range(K):
                    val = keep * m[x] + damping * old[d * K + x]
                    ch = fabs(val - old[d * K + x])
                    if ch > delta:
                        delta = ch
                    dst[d * K + x] = val
    return delta


cdef void _grid_beliefs(const double *unary, const double *msgs, idx_t H, idx_t W,
                        idx_t K, bint is_max, double *out) noexcept nogil:
    """b_p ∝ phi_p prod_d m_d (sum), or ln phi_p + sum_d m_d shifted to max 0 (max)."""
    cdef idx_t p, x, d
    cdef double *b
    cdef const double *inc
    for p in range(H * W):
        b = out + p * K
        inc = msgs + p * 4 * K
        for x in range(K):
            b[x] = unary[p * K + x]
            for d in range(4):
                if is_max:
                    b[x] += inc[d * K + x]
                else:
                    b[x] *= inc[d * K + x]
        if is_max:
            _normalise_max(b, K)
        else:
            _normalise_sum(b, K)


def grid_bp(const double[:, :, ::1] unary, const double[:, ::1] pair,
            const double[:, ::1] pair_t, double potts_diag, double potts_off, bint potts,
            bint is_max, idx_t max_iter, double tol, double damping,
            bint checkerboard, double[:, :, :, ::1] messages,
            double[:, :, :, ::1] spare, double[:, :, ::1] belief, double[::1] scratch):
    """Loopy BP on a 4-connected grid with one shared pairwise table.

    Flooding schedule (every message from the previous sweep's), or with
    ``checkerboard`` the red-black schedule of Felzenszwalb & Huttenlocher (2006,
    sec. 4): the grid is bipartite, so each sweep updates the messages into the pixels
    of one colour in place, then those into the other colour, from the newest values.

    Sum-product (``is_max=False``): ``unary`` and ``pair`` are potentials (positive,
    scaled), messages are normalised to sum 1 (PRML eq. 8.66 with eq. 8.69 folded in).
    Max-product (``is_max=True``): log potentials, messages in log space shifted to max 0
    (PRML eqs. 8.93-8.94). With ``potts`` the pairwise table is ``potts_diag`` on the
    diagonal and ``potts_off`` elsewhere, and each message costs O(K) instead of O(K^2):
    sum_x h(x) pair[x, y] = off sum_x h(x) + (diag - off) h(y), and
    max_x h(x) + pair[x, y] = max(h(y) + diag, max_x h(x) + off).
    Damping mixes the new message with the old one (in log space for max-product).

    Assumes: validated finite inputs. ``messages`` (H, W, 4, K) is initialised here
    (uniform; 1, or 0 for max-product, on the border slots, which stay constant);
    ``spare`` of the same shape needs no initialisation. Writes the final messages into ``messages`` and the beliefs (log-beliefs
    shifted to max 0 for max-product) into ``belief``. Returns (sweeps, last change).
    """
    cdef idx_t H = unary.shape[0], W = unary.shape[1], K = unary.shape[2], it = 0
    if (pair.shape[0] != K or pair.shape[1] != K or pair_t.shape[0] != K
            or pair_t.shape[1] != K or messages.shape[0] != H or messages.shape[1] != W
            or messages.shape[2] != 4 or messages.shape[3] != K
            or spare.shape[0] != H or spare.shape[1] != W or spare.shape[2] != 4
            or spare.shape[3] != K or belief.shape[0] != H or belief.shape[1] != W
            or belief.shape[2] != K or scratch.shape[0] < 2 * K or H * W * K == 0):
        raise ValueError("grid_bp: shape mismatch")
    cdef double delta = INFINITY, inner, border
    cdef double *cur = &messages[0, 0, 0, 0]
    cdef double *nxt = &spare[0, 0, 0, 0]
    cdef double *tmp
    cdef idx_t n = 4 * H * W * K, t, i, j, d, x
    cdef bint outside
    with nogil:
        inner = 0.0 if is_max else 1.0 / K
        border = 0.0 if is_max else 1.0
        for i in range(H):
            for j in range(W):
                for d in range(4):
                    outside = ((d == 0 and j == 0) or (d == 1 and j == W - 1)
                               or (d == 2 and i == 0) or (d == 3 and i == H - 1))
                    for x in range(K):
                        cur[((i * W + j) * 4 + d) * K + x] = border if outside else inner
        while it < max_iter:
            it += 1
            if checkerboard:
                delta = _grid_sweep(&unary[0, 0, 0], &pair[0, 0], &pair_t[0, 0], H, W,
                                    K, potts_diag, potts_off, potts, is_max, damping,
                                    cur, cur, &scratch[0], &scratch[K], 0)
                inner = _grid_sweep(&unary[0, 0, 0], &pair[0, 0], &pair_t[0, 0], H, W,
                                    K, potts_diag, potts_off, potts, is_max, damping,
                                    cur, cur, &scratch[0], &scratch[K], 1)
                if inner > delta:
                    delta = inner
            else:
                delta = _grid_sweep(&unary[0, 0, 0], &pair[0, 0], &pair_t[0, 0], H, W,
                                    K, potts_diag, potts_off, potts, is_max, damping,
                                    cur, nxt, &scratch[0], &scratch[K], -1)
                tmp = cur
                cur = nxt
                nxt = tmp
            if delta < tol:
                break
        if cur != &messages[0, 0, 0, 0]:
            for t in range(n):
                nxt[t] = cur[t]
            cur = nxt
        _grid_beliefs(&unary[0, 0, 0], cur, H, W, K, is_max, &belief[0, 0, 0])
    return it, delta
