"""Pairwise Markov random fields on a grid (Ising / Potts and general pairwise tables)
with compiled loopy belief propagation (PRML sec. 8.3.3, 8.4.7).
"""

from __future__ import annotations

import threading
from typing import Literal

import numpy as np

from fastml._kernels import variant
from fastml._parallel import block_bounds, effective_n_jobs, run_blocks
from fastml._typing import ArrayLike, FloatArray
from fastml._validation import check_array, check_int, check_real
from fastml.graphical._factor_graph import FactorGraph

__all__ = ["GridBPResult", "PairwiseMRF"]


# The grid kernel runs its AVX2 + FMA build where the CPU has it (about 1.3x faster per
# sweep); the factor-graph kernels, whose loops run over a few states, stay on the
# baseline build, which is faster for them (tree marginals: 23 vs 33 us).
_bp_grid = variant("_bp")

# Rows per strip, the unit of work of one thread (fixed: strips depend on the grid
# only). A flooding strip also recomputes up to GRID_FUSE - 1 ghost rows on either side
# (see _bp._flood), 12 extra row-sweeps per 4 * 64 at the default fusion.
# At least 2: a red-black sweep updates the colour-1 rows on both sides of each
# boundary between strips once the strips are done, which must not overlap.
_STRIP_ROWS = 64

_local = threading.local()  # per-thread kernel scratch, reused across calls


def _thread_scratch(n: int) -> np.ndarray:
    """This thread's scratch buffer of at least ``n`` doubles (zero at first, always
    finite: the kernels read its padding slots)."""
    buf = getattr(_local, "scratch", None)
    if buf is None or buf.shape[0] < n:
        buf = _local.scratch = np.zeros(n)
    return buf


def _half_stride(W: int) -> int:
    """Slots per half-row in the grid kernel's layout: ceil(W / 2) plus 4 of padding, so
    that label rows 2^k doubles wide do not all map to the same cache sets."""
    return (W + 1) // 2 + 4


def _to_half_rows(a: np.ndarray, pad: float) -> np.ndarray:
    """(H, W, K) -> the grid kernel's layout (H, K, 2, hs): each row split into its even
    and odd columns, labels outermost; padding slots hold ``pad``."""
    H, W, K = a.shape
    hs = _half_stride(W)
    out = np.full((H, 2 * hs, K), pad)
    out[:, :W] = a  # column j is slot j // 2 of half j % 2
    return np.ascontiguousarray(out.reshape(H, hs, 2, K).transpose(0, 3, 2, 1))


class GridBPResult:
    """Loopy BP on a grid: ``beliefs`` (H, W, K) (normalised marginals for sum-product,
    max-marginal log-beliefs shifted to max 0 for max-product), ``labels`` (argmax per
    pixel), ``converged``, ``n_iter``, ``delta``."""

    def __init__(
        self, beliefs: FloatArray, converged: bool, n_iter: int, delta: float
    ) -> None:
        self.beliefs = beliefs
        self.converged = bool(converged)
        self.n_iter = int(n_iter)
        self.delta = float(delta)

    @property
    def labels(self) -> np.ndarray:
        """Most probable label per pixel (argmax of the beliefs), shape (H, W)."""
        return np.argmax(self.beliefs, axis=-1)

    def __repr__(self) -> str:
        return f"GridBPResult(converged={self.converged}, n_iter={self.n_iter})"


class PairwiseMRF:
    """A pairwise MRF on an H x W grid: one unary table per pixel and a pairwise table
    shared by all 4-neighbour edges (Ising for K = 2, Potts for K labels).

    p(x) ∝ prod_p phi_p(x_p) prod_{(p,q)} psi(x_p, x_q) (PRML eq. 8.39; the image
    de-noising model of PRML sec. 8.3.3), with psi(a, b) indexed by the left (or upper)
    pixel's label a and the right (or lower) pixel's label b.

    Parameters
    ----------
    log_unary : array_like, shape (H, W, K)
        ln phi_p(k), finite.
    log_pairwise : array_like, shape (K, K)
        ln psi(a, b), finite.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.graphical import PairwiseMRF
    >>> noisy = np.array([[0, 0, 1], [0, 1, 1], [0, 1, 1]])
    >>> mrf = PairwiseMRF.potts(np.where(np.eye(2)[noisy] > 0, 1.0, -1.0), 0.8)
    >>> mrf.loopy_belief_propagation(method="max").labels.shape
    (3, 3)
    """

    def __init__(self, log_unary: ArrayLike, log_pairwise: ArrayLike) -> None:
        u = check_array(log_unary, "log_unary", ndim=3, dtype=np.float64)
        p = check_array(log_pairwise, "log_pairwise", ndim=2, dtype=np.float64)
        K = u.shape[2]
        if p.shape != (K, K):
            raise ValueError(
                f"log_pairwise must have shape ({K}, {K}) for K={K} labels, got {p.shape}"
            )
        # private read-only copies: the scaled potentials are cached from them
        self.log_unary = np.array(u, copy=True)
        self.log_pairwise = np.array(p, copy=True)
        self.log_unary.flags.writeable = False
        self.log_pairwise.flags.writeable = False
        self._kernel_unary = {}  # per method, in the grid kernel's layout (cached)

    @classmethod
    def potts(cls, log_unary: ArrayLike, coupling: float) -> PairwiseMRF:
        """Potts model: ln psi(a, b) = coupling if a == b else 0 (Ising for K = 2)."""
        coupling = check_real(coupling, "coupling")
        u = check_array(log_unary, "log_unary", ndim=3, dtype=np.float64)
        return cls(u, coupling * np.eye(u.shape[2]))

    @property
    def shape(self) -> tuple[int, int]:
        """The grid's ``(height, width)``."""
        return self.log_unary.shape[:2]

    def to_factor_graph(self) -> FactorGraph:
        """The same model as a :class:`FactorGraph`; pixel (i, j) is variable i * W + j."""
        H, W, K = self.log_unary.shape
        fg = FactorGraph([K] * (H * W))
        idx = np.arange(H * W).reshape(H, W)
        fg.add_factors(idx.reshape(-1, 1), self.log_unary.reshape(H * W, K), log=True)
        pairs = np.concatenate(
            [
                np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], axis=1),
                np.stack([idx[:-1].ravel(), idx[1:].ravel()], axis=1),
            ]
        )
        if pairs.size:
            fg.add_factors(
                pairs, np.broadcast_to(self.log_pairwise, (len(pairs), K, K)), log=True
            )
        return fg

    def loopy_belief_propagation(
        self,
        max_iter: int = 100,
        tol: float = 1e-6,
        damping: float = 0.0,
        method: Literal["sum", "max"] = "sum",
        schedule: Literal["parallel", "checkerboard"] = "parallel",
        n_jobs: int | None = None,
    ) -> GridBPResult:
        """Loopy BP with the flooding schedule on the grid (compiled grid kernel).

        ``method="sum"`` gives approximate marginals (sum-product, PRML eqs. 8.66, 8.69),
        ``"max"`` max-marginals whose per-pixel argmax approximates the MAP labelling
        (max-product, PRML eqs. 8.93-8.94). A Potts pairwise table (constant diagonal,
        constant off-diagonal) is detected and each message then costs O(K), not O(K^2).

        Parameters
        ----------
        max_iter : int, default 100
        tol : float, default 1e-6
            Stop when no message entry changes by more than this. The flooding
            schedule runs up to four sweeps per pass over memory (temporal blocking:
            the intermediate sweeps live in a few cached rows), so it checks this
            after every fourth sweep and may run up to three sweeps past the first
            one that met it; ``n_iter`` counts every sweep run.
        damping : float in [0, 1), default 0
        method : {"sum", "max"}
        schedule : {"parallel", "checkerboard"}
            ``"parallel"`` is the flooding schedule (every message from the previous
            sweep). ``"checkerboard"`` updates the messages into the pixels of one
            colour of the chessboard, in place, then into the other from the newest
            values (Felzenszwalb & Huttenlocher 2006, sec. 4): a sweep costs the same
            and typically needs about half as many sweeps; same fixed points.
        n_jobs : int or None, default None
            Threads: None uses every CPU this process may use (capped by
            ``OMP_NUM_THREADS`` and threadpoolctl), -1 every CPU, k >= 1 k threads.
            The grid is cut into strips of 64 rows whatever the thread count, and
            each sweep runs its strips on the threads. Both schedules are exactly
            the sequential ones, so the result is bit-identical for every ``n_jobs``:
            a flooding strip reads only the previous sweep's messages (its own
            rows, and copies of the rows near its edges taken before the pass; it
            recomputes the few rows beyond its edges that its fused sweeps need),
            and a red-black sweep updates each colour from the other one only, so
            the colour-0 rows of all strips, then the colour-1 rows, may run in
            any order (the colour-1 rows at strip edges wait for the neighbouring
            strip's colour-0 rows). Ctrl-C stops every thread within milliseconds
            and raises KeyboardInterrupt.

        Returns
        -------
        GridBPResult

        Raises
        ------
        ValueError, TypeError
            Bad ``max_iter``, ``tol``, ``damping``, ``method``, ``schedule`` or
            ``n_jobs`` (0, below -1, or not an int).

        References
        ----------
        P. F. Felzenszwalb, D. P. Huttenlocher, "Efficient belief propagation for early
        vision", IJCV 70(1), 2006.
        """
        max_iter = check_int(max_iter, "max_iter", low=1)
        tol = check_real(tol, "tol", low=0.0)
        damping = check_real(damping, "damping", low=0.0, high=1.0, high_open=True)
        if method not in ("sum", "max"):
            raise ValueError(f"method must be 'sum' or 'max', got {method!r}")
        if schedule not in ("parallel", "checkerboard"):
            raise ValueError(
                f"schedule must be 'parallel' or 'checkerboard', got {schedule!r}"
            )
        n_jobs = effective_n_jobs(n_jobs)
        is_max = method == "max"
        H, W, K = self.log_unary.shape
        lp = self.log_pairwise
        off = lp[~np.eye(K, dtype=bool)]
        diag = np.diag(lp)
        potts = K == 1 or ((off == off[0]).all() and (diag == diag[0]).all())
        if method not in self._kernel_unary:
            u = self.log_unary
            if not is_max:  # potentials scaled to max 1 per pixel
                u = np.exp(u - u.max(axis=2, keepdims=True))
            self._kernel_unary[method] = _to_half_rows(u, 0.0 if is_max else 1.0)
        unary = self._kernel_unary[method]
        if is_max:
            pair = lp
            pd, po = float(diag[0]), float(off[0]) if K > 1 else 0.0
        else:
            pair = np.exp(lp - lp.max())
            pd = float(pair[0, 0])
            po = float(pair[0, 1]) if K > 1 else 0.0
        pair = np.ascontiguousarray(pair)
        model = (unary, W, pair, np.ascontiguousarray(pair.T), pd, po, bool(potts),
                 is_max, damping)  # fmt: skip
        hs = _half_stride(W)
        strips = block_bounds(H, _STRIP_ROWS)
        start = np.empty((4, 4, K, 2, hs))
        _bp_grid.grid_init(start, W, is_max)
        belief = np.empty((H, W, K))
        if schedule == "checkerboard":
            final = _start_messages(start, H, strips, n_jobs)
            n_iter, delta = _checkerboard(model, final, strips, max_iter, tol, n_jobs)
        else:
            n_iter, delta, final = _flood(
                model, start, belief, strips, max_iter, tol, n_jobs
            )
        if final is not None:  # beliefs not yet computed with the last sweep

            def beliefs(s, cancel):
                a, b = strips[s]
                _bp_grid.grid_beliefs(
                    unary,
                    W,
                    final,
                    is_max,
                    a,
                    b,
                    belief,
                    _thread_scratch(2 * (K + 1) * hs),
                )

            run_blocks(beliefs, len(strips), n_jobs)
        return GridBPResult(belief, delta < tol, n_iter, delta)


def _start_messages(start, H, strips, n_jobs):
    """The messages (H, 4, K, 2, hs) before the first sweep: every row a copy of the
    start row for its position (interior, top, bottom, both), strips on threads."""
    which = (np.arange(H) == 0) + 2 * (np.arange(H) == H - 1)
    msgs = np.empty((H, *start.shape[1:]))

    def fill(s, cancel):
        a, b = strips[s]
        np.take(start, which[a:b], axis=0, out=msgs[a:b])

    run_blocks(fill, len(strips), n_jobs)
    return msgs


def _flood(model, start, belief, strips, max_iter, tol, n_jobs):
    """Flooding sweeps in groups of up to GRID_FUSE fused sweeps (one pass over memory
    per group, in place, see ``_bp.grid_flood_strip``), strips on threads. Before each
    pass but the first, every strip copies the rows within GRID_FUSE of its edges (its
    halo, which its neighbours overwrite during the pass). Convergence is checked
    after each group: it stops once the last sweep changed no message by more than
    ``tol`` (at most ``GRID_FUSE - 1`` sweeps after the first such sweep) or after
    ``max_iter`` sweeps. Returns (sweeps, last change, the messages if the beliefs are
    still to compute)."""
    H, K, _, hs = model[0].shape
    msgs = np.empty((H, 4, K, 2, hs))  # every row is written by the first pass
    fuse = _bp_grid.GRID_FUSE
    need = (2 * K + 3) * hs + 3 * fuse * 4 * K * 2 * hs
    halos = [np.empty((2 * fuse, 4, K, 2, hs)) for _ in strips]
    it, delta, done = 0, np.inf, False
    while it < max_iter:
        depth = min(fuse, max_iter - it)
        done = it + depth == max_iter

        def copy_halo(s, cancel, depth=depth):
            a, b = strips[s]
            lo, hi = max(a - depth, 0), min(b + depth, H)
            halos[s][lo - a + depth : depth] = msgs[lo:a]
            halos[s][depth : depth + hi - b] = msgs[b:hi]

        def strip(s, cancel, first=it == 0, depth=depth, done=done):
            a, b = strips[s]
            return _bp_grid.grid_flood_strip(
                *model, msgs, halos[s][: 2 * depth], start, first, a, b, depth,
                belief, done, _thread_scratch(need), cancel,
            )  # fmt: skip

        if it > 0:
            run_blocks(copy_halo, len(strips), n_jobs)
        delta = max(run_blocks(strip, len(strips), n_jobs))
        it += depth
        if delta < tol:
            break
    return it, delta, None if done else msgs


def _checkerboard(model, msgs, strips, max_iter, tol, n_jobs):
    """Red-black sweeps in place. Per sweep: every strip updates the messages into its
    colour-0 rows and, as soon as their neighbours are done, its inner colour-1 rows
    (strips on threads); then the colour-1 rows on either side of each boundary
    between strips, whose neighbours belong to two strips. Returns (sweeps, last
    change)."""
    H, K, _, hs = model[0].shape
    need = (2 * K + 3) * hs
    edges = [a for a, _ in strips[1:]]  # first row of every strip but the first

    def inner(s, cancel):
        a, b = strips[s]
        lo, hi = a if a == 0 else a + 1, b if b == H else b - 1
        return _bp_grid.grid_checkerboard_rows(
            *model, msgs, a, b, lo, max(lo, hi), True, _thread_scratch(need), cancel
        )

    def boundary(e, cancel):
        r = edges[e]
        return _bp_grid.grid_checkerboard_rows(
            *model, msgs, r - 1, r + 1, r - 1, r + 1, False, _thread_scratch(need),
            cancel,
        )  # fmt: skip

    it, delta = 0, np.inf
    while it < max_iter:
        it += 1
        delta = max(
            run_blocks(inner, len(strips), n_jobs)
            + run_blocks(boundary, len(edges), n_jobs)
        )
        if delta < tol:
            break
    return it, delta
