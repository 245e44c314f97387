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
    """Scale ``m`` to sum 1; return log of the old sum (-inf, m untouched, if it was 0)."""
    cdef idx_t x
    cdef double s = 0.0
    for x in range(K):
        s += m[x]
    if s <= 0.0:
        return -INFINITY
    cdef double inv = 1.0 / s
    for x in range(K):
        m[x] *= inv
    return log(s)


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

    Returns the log normaliser."""
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

    Normalised to sum 1; returns the log normaliser (scaled table, see module notes)."""
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
    cdef double val
    for x in range(K):
        out[x] = -INFINITY
        bp[x] = t0
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
    cdef idx_t f, t, j, e0, k, size
    cdef double val
    for f in range(g.F):
        e0 = g.fptr[f]
        k = g.fptr[f + 1] - e0
        size = g.toff[f + 1] - g.toff[f]
        for j in range(k):
            cnt[j] = 0
        for t in range(size):
            val = ptab[g.toff[f] + t]
            if val != 0.0:
                for j in range(k):
                    val *= m_vf[g.eoff[e0 + j] + cnt[j]]
            out[g.toff[f] + t] = val
            j = k - 1
            while j >= 0:
                cnt[j] += 1
                if cnt[j] < g.card[g.evar[e0 + j]]:
                    break
                cnt[j] = 0
                j -= 1
        _normalise_sum(out + g.toff[f], size)


def tree_sum_product(const idx_t[::1] graph, const double[::1] ptab,
                     const double[::1] logmax, const double[::1] mask,
                     const idx_t[::1] sched_edge, const idx_t[::1] sched_to_var,
                     const idx_t[::1] roots, double[::1] m_vf, double[::1] m_fv,
                     double[::1] var_belief, double[::1] fac_belief, double[::1] work,
                     idx_t[::1] scratch):
    """Exact sum-product on a forest (PRML sec. 8.4.4), normalised messages.

    ``sched_edge``/``sched_to_var`` list the messages of the leaves-to-root pass in order
    (edge id, and 1 for factor->variable, 0 for variable->factor); the root-to-leaves pass
    is the same list reversed with directions flipped. ``roots`` holds one variable per
    connected component. Accumulators are double.

    Assumes: graph packed and validated by ``fastml.graphical``, the schedule a valid
    tree schedule, ``mask`` in {0, 1}, ``work`` of length >= 2 E (log scales of the
    messages), ``scratch`` of length >= max arity.
    Writes messages and the normalised variable and factor marginals; returns
    ln Z = sum over components of ln sum_x prod_f f(x_f) mask(x) (-inf if the evidence has
    probability zero, in which case the marginals are undefined).
    """
    cdef FG g
    _unpack(graph, ptab.shape[0], &g)
    cdef idx_t n = sched_edge.shape[0], i, e, v, f, j, x, K
    if (sched_to_var.shape[0] != n or logmax.shape[0] != g.F
            or mask.shape[0] != g.voff[g.V] or m_vf.shape[0] < g.eoff[g.E] + 1
            or m_fv.shape[0] < g.eoff[g.E] + 1 or var_belief.shape[0] != g.voff[g.V]
            or fac_belief.shape[0] < ptab.shape[0] + 1 or scratch.shape[0] < g.max_arity
            or work.shape[0] < 2 * g.E + 1):
        raise ValueError("tree_sum_product: shape mismatch")
    cdef double *s_vf
    cdef double *s_fv
    cdef double log_z = 0.0, acc, z
    with nogil:
        s_vf = &work[0]
        s_fv = s_vf + g.E
        # leaves-to-root pass, then root-to-leaves with directions flipped
        for i in range(2 * n):
            if i < n:
                e = sched_edge[i]
                if sched_to_var[i]:
                    f = 1
                else:
                    f = 0
            else:
                e = sched_edge[2 * n - 1 - i]
                if sched_to_var[2 * n - 1 - i]:
                    f = 0
                else:
                    f = 1
            if f:
                acc = _fac_to_var(&g, e, &ptab[0], &m_vf[0], &m_fv[g.eoff[e]],
                                  &scratch[0]) + logmax[g.efac[e]]
                for j in range(g.fptr[g.efac[e]], g.fptr[g.efac[e] + 1]):
                    if j != e:
                        acc += s_vf[j]
                s_fv[e] = acc
            else:
                acc = _var_to_fac(&g, e, &mask[0], &m_fv[0], &m_vf[g.eoff[e]])
                v = g.evar[e]
                for j in range(g.vptr[v], g.vptr[v + 1]):
                    if g.vedge[j] != e:
                        acc += s_fv[g.vedge[j]]
                s_vf[e] = acc
        for i in range(roots.shape[0]):
            v = roots[i]
            K = g.card[v]
            for x in range(K):
                var_belief[g.voff[v] + x] = mask[g.voff[v] + x]
            for j in range(g.vptr[v], g.vptr[v + 1]):
                e = g.vedge[j]
                log_z += s_fv[e]
                for x in range(K):
                    var_belief[g.voff[v] + x] *= m_fv[g.eoff[e] + x]
            z = 0.0
            for x in range(K):
                z += var_belief[g.voff[v] + x]
            if z > 0.0:
                log_z += log(z)
            else:
                log_z = -INFINITY
        _var_beliefs(&g, &mask[0], &m_fv[0], &var_belief[0])
        if g.F > 0:
            _fac_beliefs(&g, &ptab[0], &m_vf[0], &fac_belief[0], &scratch[0])
    return log_z


def tree_max_sum(const idx_t[::1] graph, const double[::1] logtab,
                 const double[::1] logmask, const idx_t[::1] sched_edge,
                 const idx_t[::1] sched_to_var, const idx_t[::1] roots,
                 double[::1] m_vf, double[::1] m_fv, idx_t[::1] backptr,
                 idx_t[::1] assignment, double[::1] work, idx_t[::1] scratch):
    """Exact max-sum on a forest with back-tracking (PRML sec. 8.4.5).

    The leaves-to-root pass of the schedule (as in :func:`tree_sum_product`) computes
    log-space messages (PRML eqs. 8.93-8.94) and, for every factor->variable message, the
    maximising table index per state of the receiving variable. Each root takes its
    max-marginal argmax (PRML eq. 8.98); the schedule is then walked backwards and every
    factor's other variables are read off the stored index (PRML eq. 8.101).

    Assumes: as :func:`tree_sum_product`; ``logmask`` in {0, -inf}; ``work`` of length
    >= 2 E + the largest cardinality.
    Writes ``assignment`` (state per variable); returns the maximal unnormalised log
    score max_x sum_f ln f(x_f) (-inf when no configuration has positive probability).
    """
    cdef FG g
    _unpack(graph, logtab.shape[0], &g)
    cdef idx_t n = sched_edge.shape[0], i, e, v, f, j, x, K, t, best
    if (sched_to_var.shape[0] != n or logmask.shape[0] != g.voff[g.V]
            or m_vf.shape[0] < g.eoff[g.E] + 1 or m_fv.shape[0] < g.eoff[g.E] + 1
            or backptr.shape[0] < g.eoff[g.E] + 1 or assignment.shape[0] != g.V
            or scratch.shape[0] < g.max_arity or work.shape[0] < 2 * g.E + g.max_card):
        raise ValueError("tree_max_sum: shape mismatch")
    cdef double score = 0.0, acc, bmax
    cdef double *s_vf
    cdef double *s_fv
    cdef double *buf
    with nogil:
        s_vf = &work[0]
        s_fv = s_vf + g.E
        buf = s_fv + g.E
        for i in range(n):
            e = sched_edge[i]
            if sched_to_var[i]:
                f = g.efac[e]
                acc = _fac_to_var_max(&g, e, &logtab[0], &m_vf[0], &m_fv[g.eoff[e]],
                                      &backptr[g.eoff[e]], &scratch[0])
                for j in range(g.fptr[f], g.fptr[f + 1]):
                    if j != e:
                        acc += s_vf[j]
                s_fv[e] = acc
            else:
                acc = _var_to_fac_max(&g, e, &logmask[0], &m_fv[0], &m_vf[g.eoff[e]])
                v = g.evar[e]
                for j in range(g.vptr[v], g.vptr[v + 1]):
                    if g.vedge[j] != e:
                        acc += s_fv[g.vedge[j]]
                s_vf[e] = acc
        for i in range(roots.shape[0]):
            v = roots[i]
            K = g.card[v]
            for x in range(K):
                buf[x] = logmask[g.voff[v] + x]
            for j in range(g.vptr[v], g.vptr[v + 1]):
                e = g.vedge[j]
                score += s_fv[e]
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
                    if _var_to_fac(&g, e, &mask[0], &m_fv[0], &m_vf[g.eoff[e]]) == -INFINITY:
                        _uniform_on(&mask[g.voff[g.evar[e]]], &m_vf[g.eoff[e]],
                                    g.card[g.evar[e]])
            for f in range(g.F):
                if sequential:
                    for e in range(g.fptr[f], g.fptr[f + 1]):
                        if _var_to_fac(&g, e, &mask[0], &m_fv[0], &m_vf[g.eoff[e]]) == -INFINITY:
                            _uniform_on(&mask[g.voff[g.evar[e]]], &m_vf[g.eoff[e]],
                                        g.card[g.evar[e]])
                for e in range(g.fptr[f], g.fptr[f + 1]):
                    K = g.card[g.evar[e]]
                    if _fac_to_var(&g, e, &ptab[0], &m_vf[0], &tmp[0], &scratch[0]) == -INFINITY:
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
            if _var_to_fac(&g, e, &mask[0], &m_fv[0], &m_vf[g.eoff[e]]) == -INFINITY:
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
# 4-connected grids (Ising/Potts): messages[d, i, j, :] is the message INTO pixel (i, j)
# from its neighbour on side d (0 left, 1 right, 2 up, 3 down); pair[a, b] couples the
# left (or upper) pixel's state a with the right (or lower) pixel's state b. Messages
# from outside the grid are constant (1, or 0 in log space) and never updated.

cdef inline void _grid_msg_sum(const double *h, const double *pair,
                               idx_t K, double potts_diag, double potts_off,
                               bint potts, double *out) noexcept nogil:
    """out(y) = sum_x h(x) pair[x, y], normalised to sum 1."""
    cdef idx_t x, y
    cdef double s = 0.0, hx
    if potts:
        for x in range(K):
            s += h[x]
        for y in range(K):
            out[y] = potts_off * s + (potts_diag - potts_off) * h[y]
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


cdef inline void _grid_msg_max(const double *h, const double *pair,
                               idx_t K, double potts_diag, double potts_off,
                               bint potts, double *out) noexcept nogil:
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


cdef double _grid_sweep(const double *unary, const double *pair, const double *pair_t,
                        idx_t H, idx_t W, idx_t K, double potts_diag, double potts_off,
                        bint potts, bint is_max, double damping, const double *cur,
                        double *nxt, double *h, double *m) noexcept nogil:
    """One flooding sweep: every message from ``cur``, damped, into ``nxt``.

    Returns the largest absolute change of a message."""
    cdef idx_t i, j, x, d, src, q, plane = H * W * K
    cdef idx_t pix
    cdef const double *phi
    cdef double delta = 0.0, val, ch
    cdef const double *pm
    cdef const double *cin[4]
    for i in range(H):
        for j in range(W):
            pix = (i * W + j) * K
            phi = unary + pix
            for d in range(4):
                cin[d] = cur + d * plane + pix
            # d: direction of travel; 0 to the right (arrives from the left), 1 to the
            # left, 2 downwards (arrives from above), 3 upwards
            for d in range(4):
                if d == 0:
                    if j + 1 >= W:
                        continue
                    q = (i * W + j + 1) * K
                    src = 1
                elif d == 1:
                    if j == 0:
                        continue
                    q = (i * W + j - 1) * K
                    src = 0
                elif d == 2:
                    if i + 1 >= H:
                        continue
                    q = ((i + 1) * W + j) * K
                    src = 3
                else:
                    if i == 0:
                        continue
                    q = ((i - 1) * W + j) * K
                    src = 2
                # h = phi times the incoming messages except the one from q (side src)
                for x in range(K):
                    if is_max:
                        val = phi[x]
                        if src != 0:
                            val += cin[0][x]
                        if src != 1:
                            val += cin[1][x]
                        if src != 2:
                            val += cin[2][x]
                        if src != 3:
                            val += cin[3][x]
                    else:
                        val = phi[x]
                        if src != 0:
                            val *= cin[0][x]
                        if src != 1:
                            val *= cin[1][x]
                        if src != 2:
                            val *= cin[2][x]
                        if src != 3:
                            val *= cin[3][x]
                    h[x] = val
                if d == 0 or d == 2:
                    pm = pair
                else:
                    pm = pair_t
                if is_max:
                    _grid_msg_max(h, pm, K, potts_diag, potts_off, potts, m)
                else:
                    _grid_msg_sum(h, pm, K, potts_diag, potts_off, potts, m)
                # stored on q's side facing p: d=0 arrives from q's left (slot 0), ...
                pix = d * plane + q
                for x in range(K):
                    val = (1.0 - damping) * m[x] + damping * cur[pix + x]
                    ch = fabs(val - cur[pix + x])
                    if ch > delta:
                        delta = ch
                    nxt[pix + x] = val
    return delta


cdef void _grid_beliefs(const double *unary, const double *msgs, idx_t H, idx_t W,
                        idx_t K, bint is_max, double *out) noexcept nogil:
    """b_p ∝ phi_p prod_d m_d (sum), or ln phi_p + sum_d m_d shifted to max 0 (max)."""
    cdef idx_t p, x, d, plane = H * W * K
    cdef double *b
    for p in range(H * W):
        b = out + p * K
        for x in range(K):
            b[x] = unary[p * K + x]
            for d in range(4):
                if is_max:
                    b[x] += msgs[d * plane + p * K + x]
                else:
                    b[x] *= msgs[d * plane + p * K + x]
        if is_max:
            _normalise_max(b, K)
        else:
            _normalise_sum(b, K)


def grid_bp(const double[:, :, ::1] unary, const double[:, ::1] pair,
            const double[:, ::1] pair_t, double potts_diag, double potts_off, bint potts,
            bint is_max, idx_t max_iter, double tol, double damping,
            double[:, :, :, ::1] messages, double[:, :, :, ::1] spare,
            double[:, :, ::1] belief, double[::1] scratch):
    """Loopy BP on a 4-connected grid with one shared pairwise table, flooding schedule.

    Sum-product (``is_max=False``): ``unary`` and ``pair`` are potentials (positive,
    scaled), messages are normalised to sum 1 (PRML eq. 8.66 with eq. 8.69 folded in).
    Max-product (``is_max=True``): log potentials, messages in log space shifted to max 0
    (PRML eqs. 8.93-8.94). With ``potts`` the pairwise table is ``potts_diag`` on the
    diagonal and ``potts_off`` elsewhere, and each message costs O(K) instead of O(K^2):
    sum_x h(x) pair[x, y] = off sum_x h(x) + (diag - off) h(y), and
    max_x h(x) + pair[x, y] = max(h(y) + diag, max_x h(x) + off).
    Damping mixes the new message with the old one (in log space for max-product).

    Assumes: validated finite inputs; ``messages`` initialised (1 or 0 on the border
    slots, which are never written); ``spare`` a copy of ``messages``; ``scratch`` >= 2K.
    Writes the final messages into ``messages`` and the beliefs (log-beliefs shifted to
    max 0 for max-product) into ``belief``. Returns (sweeps, last change).
    """
    cdef idx_t H = unary.shape[0], W = unary.shape[1], K = unary.shape[2], it = 0
    if (pair.shape[0] != K or pair.shape[1] != K or pair_t.shape[0] != K
            or pair_t.shape[1] != K or messages.shape[0] != 4 or messages.shape[1] != H
            or messages.shape[2] != W or messages.shape[3] != K
            or spare.shape[0] != 4 or spare.shape[1] != H or spare.shape[2] != W
            or spare.shape[3] != K or belief.shape[0] != H or belief.shape[1] != W
            or belief.shape[2] != K or scratch.shape[0] < 2 * K or H * W * K == 0):
        raise ValueError("grid_bp: shape mismatch")
    cdef double delta = INFINITY
    cdef double *cur = &messages[0, 0, 0, 0]
    cdef double *nxt = &spare[0, 0, 0, 0]
    cdef double *tmp
    cdef idx_t n = 4 * H * W * K, t
    with nogil:
        while it < max_iter:
            it += 1
            delta = _grid_sweep(&unary[0, 0, 0], &pair[0, 0], &pair_t[0, 0], H, W, K,
                                potts_diag, potts_off, potts, is_max, damping, cur, nxt,
                                &scratch[0], &scratch[K])
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
