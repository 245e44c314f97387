"""Threads over GIL-free kernels: the one home of fastml's parallel plumbing.

Every parallel estimator and function cuts its work into **blocks fixed by the problem
size** (rows, images, strips, sequences; never by the thread count), lets a pool of
threads run the compiled kernel on one block at a time, and merges the per-block results
**in block order**. Floating-point sums therefore happen in the same order whatever the
number of threads, and ``n_jobs=1`` and ``n_jobs=8`` give the same bits.

Why Python threads calling GIL-free kernels rather than OpenMP ``prange``: the kernels
already release the GIL and poll for Ctrl-C through a cancel byte that worker threads
watch (``_kernels/_interrupt.pxd``), the MCMC chains already run this way, and no OpenMP
runtime has to be bundled into the wheels, so fastml never loads a second libgomp/libomp
next to scikit-learn's or torch's and a process that forks after a fit (multiprocessing,
Dask's nanny) does not hang in the child. The cost is one Python call per block (a few
microseconds), negligible at the block sizes used (~1 ms of work or more).

The default thread count (``n_jobs=None``) is the number of CPUs this process may run on
(its affinity mask), capped by ``OMP_NUM_THREADS`` and by threadpoolctl: when
threadpoolctl is installed, fastml registers itself as a library there (user API
``"fastml"``), so ``threadpool_limits(1)`` and ``threadpool_info()`` see it. BLAS calls
made by a kernel inside a parallel region run single-threaded there (see
:func:`blas_single_threaded`).
"""

from __future__ import annotations

import contextlib
import itertools
import numbers
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

__all__ = [
    "blas_single_threaded",
    "block_bounds",
    "check_dask_array",
    "cpu_count",
    "dask_chunk_states",
    "dask_map_rows",
    "dask_reduce",
    "dask_scheduler_guard",
    "default_n_jobs",
    "effective_n_jobs",
    "is_dask_array",
    "run_blocks",
]

T = TypeVar("T")

# Set by threadpoolctl (through _FastmlController) or None: no limit.
_threadpool_limit: int | None = None


def cpu_count() -> int:
    """The number of CPUs this process may run on (its affinity mask when known)."""
    if hasattr(os, "process_cpu_count"):  # Python >= 3.13
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _omp_num_threads() -> int | None:
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    try:
        n = int(value)
    except ValueError:
        return None
    return n if n >= 1 else None


def default_n_jobs() -> int:
    """Threads used for ``n_jobs=None``: the usable CPUs, capped by ``OMP_NUM_THREADS``
    and by a threadpoolctl limit in force."""
    n = _default_without_threadpoolctl()
    if _threadpool_limit is not None:
        n = min(n, _threadpool_limit)
    return max(n, 1)


def _default_without_threadpoolctl() -> int:
    omp = _omp_num_threads()
    return cpu_count() if omp is None else min(cpu_count(), omp)


def effective_n_jobs(n_jobs: int | None, name: str = "n_jobs") -> int:
    """Validate ``n_jobs`` and return a thread count >= 1.

    ``None``: :func:`default_n_jobs`; ``-1``: every CPU this process may use
    (:func:`cpu_count`); ``k >= 1``: ``k`` threads.

    Raises
    ------
    TypeError
        ``n_jobs`` is not None or an int.
    ValueError
        ``n_jobs`` is 0 or below -1.
    """
    if n_jobs is None:
        return default_n_jobs()
    if isinstance(n_jobs, (bool, np.bool_)) or not isinstance(
        n_jobs, (numbers.Integral, np.integer)
    ):
        raise TypeError(
            f"{name} must be None, -1 or a positive int, got "
            f"{type(n_jobs).__name__} {n_jobs!r}"
        )
    n = int(n_jobs)
    if n == -1:
        return cpu_count()
    if n < 1:
        raise ValueError(
            f"{name} must be None (all usable CPUs), -1 (all CPUs) or a positive "
            f"number of threads, got {n}"
        )
    return n


def block_bounds(n: int, block: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of consecutive blocks of ``block`` items covering ``range(n)``
    (the last one shorter). Depends on ``n`` and ``block`` only."""
    return [(s, min(s + block, n)) for s in range(0, n, block)]


# --- the pool ----------------------------------------------------------------------
# One process-wide pool, grown on demand; its threads idle between calls. A child
# process made by fork does not inherit threads, so it starts without a pool.
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def _reset_pool_after_fork() -> None:
    global _pool, _pool_size, _pool_lock
    _pool, _pool_size, _pool_lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_pool_after_fork)


def _get_pool(n_workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < n_workers:
            old = _pool
            _pool = ThreadPoolExecutor(
                max_workers=n_workers, thread_name_prefix="fastml"
            )
            _pool_size = n_workers
            # The old pool is not shut down: a concurrent call may still be about to
            # submit to it. Once unreferenced it is collected and its threads exit.
            del old
        return _pool


_inside = threading.local()  # .blocks: this thread is running a block of run_blocks


class _Shares:
    """Blocks ``0 .. n - 1`` dealt to ``t`` threads: thread ``i`` takes the blocks of
    its share ``[n i / t, n (i + 1) / t)`` in order, then, when its share is done, the
    last block left in the share with the most blocks left (so a thread that runs
    slow, or is preempted, is helped from the far end of its share). ``take`` returns
    ``n`` when every block is taken."""

    def __init__(self, n: int, t: int) -> None:
        self.n = n
        self.lo = [n * i // t for i in range(t)]
        self.hi = [*self.lo[1:], n]
        self.lock = threading.Lock()

    def take(self, i: int) -> int:
        with self.lock:
            if self.lo[i] < self.hi[i]:
                self.lo[i] += 1
                return self.lo[i] - 1
            j = max(range(len(self.lo)), key=lambda j: self.hi[j] - self.lo[j])
            if self.lo[j] == self.hi[j]:
                return self.n
            self.hi[j] -= 1
            return self.hi[j]


def run_blocks(
    fn: Callable[[int, np.ndarray], T],
    n_blocks: int,
    n_jobs: int | None,
    *,
    shares: bool = False,
) -> list[T]:
    """Run ``fn(b, cancel)`` for every block ``b`` and return the results in block
    order.

    With one thread (or one block) the calling thread runs the blocks in order. With
    ``t > 1`` threads the calling thread and ``t - 1`` pool threads take blocks from a
    shared counter, so at most ``t`` threads are busy. With ``shares=True`` thread
    ``i`` first runs its own contiguous share of the blocks in order
    (:class:`_Shares`), so a caller whose consecutive calls give a block's data the
    same index keeps that data on one core: share 0 is the calling thread's, the others
    go to idle pool threads (with ``t = 2`` and a pool of one thread, always the same
    one; with more, any idle one). ``fn`` must only write to memory owned by its block;
    merging the results is the caller's, in block order.

    ``cancel`` is a one-byte array the kernels poll (``_kernels/_interrupt.pxd``): when
    one thread fails or the caller is interrupted (Ctrl-C, seen by the calling thread's
    kernel), it is set so every other block stops within milliseconds, and the first
    exception is re-raised once all threads are idle.
    """
    cancel = np.zeros(1, np.uint8)
    if n_blocks <= 0:
        return []
    threads = min(effective_n_jobs(n_jobs), n_blocks)
    if threads == 1 or getattr(_inside, "blocks", False):
        # one thread, or a call made from inside a block of another run_blocks (whose
        # threads are all busy): serial, so nested calls cannot wait on each other
        return [fn(b, cancel) for b in range(n_blocks)]
    results: list = [None] * n_blocks
    if shares:
        take = _Shares(n_blocks, threads).take
    else:
        counter = itertools.count()

        def take(i: int) -> int:
            return next(counter)

    errors: list[BaseException] = []

    def work(i: int) -> None:
        _inside.blocks = True
        try:
            while not cancel[0]:
                b = take(i)
                if b >= n_blocks:
                    return
                results[b] = fn(b, cancel)
        except BaseException as exc:
            cancel[0] = 1
            errors.append(exc)
        finally:
            _inside.blocks = False

    pool = _get_pool(threads - 1)
    futures = [pool.submit(work, i) for i in range(1, threads)]
    work(0)  # catches everything, so the waits below always run
    if errors:
        cancel[0] = 1
    # ``work`` never raises, so ``result()`` raises only when the caller is interrupted
    # (Ctrl-C) while it waits for the other threads: cancel them, keep waiting until
    # they have stopped (milliseconds), then re-raise the interruption.
    interrupted: BaseException | None = None
    for f in futures:
        while True:
            try:
                f.result()
                break
            except BaseException as exc:
                cancel[0] = 1
                if interrupted is None:
                    interrupted = exc
    if interrupted is not None:
        raise interrupted
    if errors:
        # The caller's own error (e.g. KeyboardInterrupt) wins over the "cancelled"
        # errors it provoked in the other threads.
        first = next((e for e in errors if "cancelled" not in str(e)), errors[0])
        raise first
    return results


# --- BLAS inside parallel regions ----------------------------------------------------


@contextlib.contextmanager
def blas_single_threaded(active: bool = True) -> Iterator[None]:
    """Keep BLAS single-threaded while fastml's threads run kernels that call it.

    Uses threadpoolctl when it is installed. Without it, the kernels' BLAS calls are
    small (a block of at most 512 rows against d x d factors), below the size at which
    OpenBLAS starts its own threads for d <= 22; larger d may then oversubscribe, which
    the README states.
    """
    controller = _blas_controller() if active else None
    if controller is None:
        yield
        return
    with controller.limit(limits=1):
        yield


_BLAS: list = []  # [the threadpoolctl controller of the loaded BLAS, or None]


def _blas_controller():
    """threadpoolctl's controller of the BLAS libraries, made once: a fresh
    ``threadpool_limits`` rescans every loaded library (~0.75 ms a call), this
    ~0.04 ms. The kernels' BLAS (scipy's, via ``scipy.linalg.cython_blas``) is loaded
    with the kernels, before the first call. None without threadpoolctl."""
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _BLAS.append(None)
        else:
            _BLAS.append(ThreadpoolController().select(user_api="blas"))
    return _BLAS[0]


# --- threadpoolctl integration --------------------------------------------------------


def _register_with_threadpoolctl() -> None:
    """Make ``threadpool_limits`` and ``threadpool_info`` see fastml's thread count.

    threadpoolctl finds libraries by the file names of loaded shared objects: fastml's
    is the (empty) compiled module ``_kernels/_fastml_threadpool``, imported with this
    one. The limit itself lives in this module.
    """
    threadpoolctl = sys.modules.get("threadpoolctl")
    if threadpoolctl is None:
        try:
            import threadpoolctl
        except ImportError:
            return
    if not hasattr(threadpoolctl, "register"):  # threadpoolctl < 3.5
        return

    class _FastmlController(threadpoolctl.LibController):
        user_api = "fastml"
        internal_api = "fastml"
        filename_prefixes = ("_fastml_threadpool",)

        def get_num_threads(self) -> int:
            return default_n_jobs()

        def set_num_threads(self, num_threads: int) -> None:
            # threadpoolctl restores a limit by setting back what get_num_threads
            # returned: a count no lower than the default without a limit means none.
            global _threadpool_limit
            _threadpool_limit = None
            if (
                num_threads is not None
                and int(num_threads) < _default_without_threadpoolctl()
            ):
                _threadpool_limit = max(int(num_threads), 1)

        def get_version(self) -> str:
            from fastml import __version__

            return __version__

        def set_additional_attributes(self) -> None:
            self.threading_layer = "python threads over GIL-free kernels"

    threadpoolctl.register(_FastmlController)


def thread_info() -> dict[str, object]:
    """What ``fastml info`` prints about threads."""
    return {
        "layer": "python threads over GIL-free kernels (no OpenMP runtime)",
        "cpus": cpu_count(),
        "default_n_jobs": default_n_jobs(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


# --- Dask: statistics per chunk on the workers, reduced in chunk order ------------------
# The one home of fastml's Dask plumbing (STYLE.md sec. 7b). An estimator that fits on a
# ``dask.array.Array`` writes a per-chunk function (the E-step and the sufficient
# statistics, with the same compiled kernels as in memory) and an associative merge of
# two statistics; :func:`dask_reduce` sends the current parameters to the workers once
# per call, runs the function next to each chunk and tree-reduces only the statistics,
# in chunk order, so a given chunking always gives the same bits. Nothing here imports
# dask at module level: ``import fastml`` never loads it.


def is_dask_array(x: object) -> bool:
    """True for a ``dask.array.Array`` (without importing dask if it is not loaded)."""
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(x, da.Array)


def check_dask_array(x, name: str = "X", *, ndim: int | None = None, whole_axes=()):
    """Check a dask array for :func:`dask_reduce`: ``ndim`` dimensions (any if None),
    known chunk sizes, a real numeric dtype, no empty axis; the axes in ``whole_axes``
    are rechunked into one chunk each (e.g. the features of a sample matrix, so every
    row is whole on one worker).

    Returns the (possibly rechunked) array and its kernel dtype (float32 stays float32,
    other numbers become float64).

    Raises
    ------
    ValueError
        Wrong ``ndim``, unknown chunk sizes (``nan`` in ``x.chunks``, e.g. after boolean
        indexing: call ``x.compute_chunk_sizes()``), an empty axis.
    TypeError
        A non-numeric or complex dtype.
    """
    from fastml._validation import float_dtype

    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {x.shape}")
    if any(c != c for axis in x.chunks for c in axis):  # nan: unknown size
        raise ValueError(
            f"{name} has unknown chunk sizes ({name}.chunks contains nan, e.g. after "
            f"boolean indexing); call {name}.compute_chunk_sizes() first"
        )
    dtype = float_dtype(x.dtype, name=name)
    if x.ndim == 0 or any(s < 1 for s in x.shape):
        raise ValueError(f"{name} must not be empty, got shape {x.shape}")
    if any(len(x.chunks[a]) > 1 for a in whole_axes):
        x = x.rechunk({a: -1 for a in whole_axes})
    return x, dtype


def _run_chunk(block, fn, where, name, args, extra=()):
    """``fn(block, *args, *extra)`` on a worker; errors name the chunk and where it
    lies."""
    try:
        return fn(block, *args, *extra)
    except (ValueError, FloatingPointError) as exc:
        raise type(exc)(f"{name} chunk {where}: {exc}") from exc


def _fold(combine, *parts):
    """Left fold of ``parts`` with ``combine``: the fixed order of the tree."""
    acc = parts[0]
    for p in parts[1:]:
        acc = combine(acc, p)
    return acc


def _compute(*graphs):
    """``dask.compute`` on the active scheduler (a ``distributed.Client`` if one is the
    default, else dask's local one), with a clear error when the client goes away."""
    import dask

    try:
        return dask.compute(*graphs)
    except Exception as exc:
        names = {cls.__name__ for cls in type(exc).__mro__}
        gone = bool(names & {"CancelledError", "CommClosedError"}) or (
            "closed" in str(exc).lower() and "client" in str(exc).lower()
        )
        if not gone:
            raise
        raise RuntimeError(
            "the Dask client or its scheduler went away during the computation "
            f"({type(exc).__name__}: {exc}); the fit was not completed. Keep the "
            "Client open until fit returns (e.g. `with Client(...) as client:` "
            "around the fit)"
        ) from exc


def dask_scheduler_guard() -> Callable[[], None]:
    """A function to call before each pass of an iterative fit: it raises RuntimeError
    once the Dask scheduler active now is no longer the active one. A
    ``distributed.Client`` closed between two passes would otherwise hand the rest of
    the fit to dask's local scheduler, silently (a client closed *during* a pass is
    caught by :func:`_compute`)."""
    from dask.base import get_scheduler

    first = get_scheduler()

    def check() -> None:
        if get_scheduler() != first:
            raise RuntimeError(
                "the Dask client or its scheduler went away during the fit; the fit "
                "was not completed. Keep the Client open until fit returns (e.g. "
                "`with Client(...) as client:` around the fit)"
            )

    return check


def dask_reduce(
    x,
    chunk_fn: Callable[..., T],
    combine: Callable[[T, T], T],
    *,
    args: tuple = (),
    chunk_args: Sequence[tuple] | None = None,
    name: str = "X",
    split_every: int = 8,
) -> T:
    """Run ``chunk_fn(chunk, *args, *chunk_args[i])`` on every chunk ``i`` of the dask
    array ``x`` and merge the results with ``combine`` in chunk order; return the merged
    value.

    ``args`` (the current parameters: small arrays) enter the graph once and go to each
    worker once, not per chunk; ``chunk_args`` (optional, one tuple per chunk in C order
    of the chunk grid, e.g. the lengths of the sequences a chunk holds) is small data
    that differs per chunk. ``chunk_fn`` receives the chunk as a numpy array, on the
    worker that holds it. Results are merged by a tree of fan-in ``split_every`` over the
    chunks in C order of the chunk grid (left folds of consecutive chunks), whose shape
    depends only on the chunking, so a given chunking gives the same bits on any
    scheduler and any number of workers; only the results travel, never the data. For
    row-wise statistics chunk ``x`` along axis 0 only (:func:`check_dask_array`). Runs on the
    active scheduler.

    Raises
    ------
    ValueError, FloatingPointError
        From ``chunk_fn``, prefixed with the chunk's grid index and its slices.
    RuntimeError
        The Dask client went away during the computation.
    """
    import dask

    if chunk_args is not None and len(chunk_args) != x.npartitions:
        raise ValueError(
            f"chunk_args has {len(chunk_args)} entries for {x.npartitions} chunks"
        )
    blocks = x.to_delayed().ravel()
    params = dask.delayed(args, pure=True)
    run = dask.delayed(_run_chunk, pure=True)
    level = [
        run(blk, chunk_fn, where, name, params, extra)
        for blk, where, extra in zip(blocks, *_chunk_calls(x, chunk_args), strict=True)
    ]
    return _compute(_tree(level, combine, split_every))[0]


def _chunk_calls(x, chunk_args):
    """Per chunk (C order of the chunk grid): the label errors name it by (its grid
    index and its slices) and its ``chunk_args`` tuple (``()`` without)."""
    starts = [np.concatenate([[0], np.cumsum(c)]).astype(int) for c in x.chunks]
    wheres, extras = [], []
    for k, idx in enumerate(np.ndindex(*x.numblocks)):
        span = ", ".join(f"{s[i]}:{s[i + 1]}" for s, i in zip(starts, idx, strict=True))
        wheres.append(f"{idx} ([{span}])")
        extras.append(() if chunk_args is None else tuple(chunk_args[k]))
    return wheres, extras


def _tree(level, combine, split_every):
    """The delayed merge of ``level`` by left folds of ``split_every`` consecutive
    results, level by level: its shape depends only on ``len(level)``."""
    import dask

    fold = dask.delayed(_fold, pure=True)
    while len(level) > 1:
        level = [
            fold(combine, *level[i : i + split_every])
            for i in range(0, len(level), split_every)
        ]
    return level[0]


def dask_map_rows(
    x,
    fn: Callable[..., np.ndarray],
    *,
    args: tuple = (),
    dtype,
    n_cols: int | None = None,
):
    """Lazy ``fn(chunk, *args)`` on every row chunk of ``x``: a dask array with the
    rows of ``x`` and ``n_cols`` columns (``None``: one value per row, 1-D)."""
    if n_cols is None:
        return x.map_blocks(fn, *args, drop_axis=1, dtype=dtype)
    return x.map_blocks(fn, *args, chunks=(x.chunks[0], (n_cols,)), dtype=dtype)


def dask_chunk_states(
    x,
    fn: Callable[..., tuple[object, T]],
    combine: Callable[[T, T], T],
    *,
    states: Sequence | None = None,
    args: tuple = (),
    chunk_args: Sequence[tuple] | None = None,
    name: str = "X",
    split_every: int = 8,
) -> tuple[list, T]:
    """One step of an iteration whose per-chunk state stays where it is computed.

    For every chunk ``i`` of the dask array ``x`` run
    ``state_i, stats_i = fn(s_i, *args, *chunk_args[i])``, where ``s_i`` is the chunk
    itself (``states=None``: the first step, which builds the states from the data) or
    ``states[i]`` (the states returned by the previous step). The new states are
    persisted (``dask.persist``): with a ``distributed.Client`` they stay in the memory
    of the workers that computed them, next to their chunks, and the next step runs
    there; with dask's local schedulers they are held in this process. Only the
    statistics travel: they are merged with ``combine`` by the tree of
    :func:`dask_reduce` (fan-in ``split_every``, chunk order), so a given chunking gives
    the same bits on any scheduler and any number of workers.

    ``fn`` may update ``s_i`` in place and return it: a step's input states are not
    used again (drop them; the returned list replaces them). ``args`` (small, e.g.
    the current global parameters) enter the graph once per step.

    Returns
    -------
    states : list of dask.delayed.Delayed
        The persisted states, one per chunk (C order of the chunk grid).
    stats : object
        The merged statistics.

    Raises
    ------
    ValueError, FloatingPointError
        From ``fn``, prefixed with the chunk's grid index and its slices.
    RuntimeError
        The Dask client went away during the step.
    """
    import dask

    n = x.npartitions
    for given, what in ((chunk_args, "chunk_args"), (states, "states")):
        if given is not None and len(given) != n:
            raise ValueError(f"{what} has {len(given)} entries for {n} chunks")
    inputs = x.to_delayed().ravel() if states is None else states
    run = dask.delayed(_run_chunk, pure=False, nout=2)  # fn may update its input
    try:
        params = _broadcast(args)
        new, level = [], []
        for s, where, extra in zip(inputs, *_chunk_calls(x, chunk_args), strict=True):
            state, stats = run(s, fn, where, name, params, extra)
            new.append(state)
            level.append(stats)
        # persist schedules (distributed: in the background); _compute waits
        *new, root = dask.persist(*new, _tree(level, combine, split_every))
        return new, _compute(root)[0]
    except RuntimeError:
        raise
    except Exception as exc:
        if states is None or not _states_lost(states):
            raise
        raise RuntimeError(
            "the Dask client that held the chunk states went away during the fit "
            f"({type(exc).__name__}: {exc}); the fit was not completed. Keep the "
            "Client open until fit returns"
        ) from exc


def _broadcast(args):
    """``args`` as a dask.delayed input of every chunk's task: with a
    ``distributed.Client`` as the active scheduler, scattered to every worker once (a
    V x K matrix in the task graph goes through the scheduler: ~0.1 s more per step
    at 1.6 MB, measured), else in the graph."""
    import dask
    from dask.base import get_scheduler

    distributed = sys.modules.get("distributed")
    client = getattr(get_scheduler(), "__self__", None)
    if distributed is not None and isinstance(client, distributed.Client):
        return dask.delayed(client.scatter([args], broadcast=True, hash=False)[0])
    return dask.delayed(args, pure=True)


def _states_lost(states) -> bool:
    """Whether a persisted state is a future of a client that is no longer running."""
    for s in states:
        for v in s.__dask_graph__().values():
            status = getattr(getattr(v, "client", None), "status", "running")
            if status not in ("running", "connecting"):
                return True
    return False


import fastml._kernels._fastml_threadpool  # noqa: E402, F401  (what threadpoolctl finds)

_register_with_threadpoolctl()
