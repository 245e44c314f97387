"""The shared thread machinery (fastml._parallel): n_jobs, block order, errors."""

import threading
import time

import numpy as np
import pytest

from fastml import _parallel
from fastml._parallel import _Shares, block_bounds, effective_n_jobs, run_blocks


@pytest.mark.parametrize("bad", [0, -2, -10])
def test_n_jobs_out_of_range(bad):
    with pytest.raises(ValueError, match="n_jobs must be None"):
        effective_n_jobs(bad)


@pytest.mark.parametrize("bad", [1.5, "2", True, [2]])
def test_n_jobs_wrong_type(bad):
    with pytest.raises(TypeError, match="n_jobs must be None, -1 or a positive int"):
        effective_n_jobs(bad)


def test_n_jobs_values(monkeypatch):
    monkeypatch.setattr(_parallel, "cpu_count", lambda: 6)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert effective_n_jobs(None) == 6
    assert effective_n_jobs(-1) == 6
    assert effective_n_jobs(np.int64(3)) == 3
    assert effective_n_jobs(16) == 16  # more threads than CPUs is the user's call
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert effective_n_jobs(None) == 2  # OMP_NUM_THREADS caps the default
    assert effective_n_jobs(-1) == 6  # but not an explicit request
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")  # nested form: the outer level
    assert effective_n_jobs(None) == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")
    assert effective_n_jobs(None) == 6


def test_threadpoolctl_limits_the_default(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl", minversion="3.5")
    monkeypatch.setattr(_parallel, "cpu_count", lambda: 6)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    info = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "fastml"]
    assert len(info) == 1 and info[0]["num_threads"] == 6
    with threadpoolctl.threadpool_limits(limits=1):
        assert effective_n_jobs(None) == 1
    with threadpoolctl.threadpool_limits(limits=3, user_api="fastml"):
        assert effective_n_jobs(None) == 3
    assert effective_n_jobs(None) == 6


def test_block_bounds():
    assert block_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert block_bounds(8, 4) == [(0, 4), (4, 8)]
    assert block_bounds(0, 4) == []


@pytest.mark.parametrize("shares", [False, True])
@pytest.mark.parametrize("n_jobs", [1, 2, 3, 4])
def test_run_blocks_returns_block_order(n_jobs, shares):
    rng = np.random.default_rng(0)
    delays = rng.uniform(0, 2e-3, size=20)  # blocks finish out of order
    calls = []

    def fn(b, cancel):
        calls.append(b)
        time.sleep(delays[b])
        return b * b

    assert run_blocks(fn, 20, n_jobs, shares=shares) == [b * b for b in range(20)]
    assert sorted(calls) == list(range(20))  # every block exactly once


@pytest.mark.parametrize("n, t", [(1, 2), (2, 2), (7, 2), (10, 3), (5, 8)])
def test_shares_deal_contiguous_shares_then_help_from_the_far_end(n, t):
    """Brute force over one order of requests: thread 0 asks until it is told
    ``n``. It must get its own share in order, then the last untaken block of the
    share with the most left, every block once."""
    shares = _Shares(n, t)
    bounds = [n * i // t for i in range(t + 1)]
    got = []
    while (b := shares.take(0)) != n:
        got.append(b)
    expected = list(range(bounds[0], bounds[1]))
    left = [list(range(bounds[i], bounds[i + 1])) for i in range(1, t)]
    while any(left):
        most = max(left, key=len)  # first of the longest, as _Shares picks
        expected.append(most.pop())
    assert got == expected
    assert [shares.take(i) for i in range(t)] == [n] * t


def test_shares_give_each_thread_its_own_share_first():
    shares = _Shares(8, 2)
    assert [shares.take(1), shares.take(0), shares.take(1), shares.take(1)] == [
        4, 0, 5, 6,
    ]  # fmt: skip
    assert [shares.take(0) for _ in range(5)] == [1, 2, 3, 7, 8]
    assert shares.take(1) == 8


@pytest.mark.parametrize("shares", [False, True])
def test_run_blocks_uses_at_most_n_jobs_threads(shares):
    seen = set()
    lock = threading.Lock()
    busy = [0]
    peak = [0]

    def fn(b, cancel):
        with lock:
            seen.add(threading.get_ident())
            busy[0] += 1
            peak[0] = max(peak[0], busy[0])
        time.sleep(2e-3)
        with lock:
            busy[0] -= 1

    run_blocks(fn, 40, 2, shares=shares)
    assert peak[0] <= 2 and len(seen) <= 2
    assert threading.get_ident() in seen  # the caller works too


def test_run_blocks_propagates_the_first_error_and_cancels():
    started = []

    def fn(b, cancel):
        started.append(b)
        if b == 3:
            raise ValueError("block 3 failed")
        for _ in range(200):  # a kernel polling its cancel byte
            if cancel[0]:
                raise KeyboardInterrupt("cancelled: another thread was interrupted")
            time.sleep(1e-4)
        return b

    with pytest.raises(ValueError, match="block 3 failed"):
        run_blocks(fn, 100, 2)
    assert len(started) < 100  # the failure stopped the remaining blocks


def test_run_blocks_empty():
    assert run_blocks(lambda b, c: b, 0, 4) == []


def test_threadpoolctl_restore_leaves_no_stale_limit(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl", minversion="3.5")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with threadpoolctl.threadpool_limits(limits=1):
        pass
    monkeypatch.setattr(_parallel, "cpu_count", lambda: 64)  # e.g. a bigger machine
    assert effective_n_jobs(None) == 64


def test_threadpoolctl_nested_limits(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl", minversion="3.5")
    monkeypatch.setattr(_parallel, "cpu_count", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with threadpoolctl.threadpool_limits(limits=2):
        with threadpoolctl.threadpool_limits(limits=4):
            assert effective_n_jobs(None) == 4
        assert effective_n_jobs(None) == 2
    assert effective_n_jobs(None) == 8


def test_blas_limit_and_sklearn_style_limits_leave_the_default(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl", minversion="3.5")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = effective_n_jobs(None)
    with _parallel.blas_single_threaded():
        pass
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        pass
    with threadpoolctl.threadpool_limits(limits=1):
        pass
    assert _parallel._threadpool_limit is None
    assert effective_n_jobs(None) == before


def test_ctrl_c_while_waiting_for_the_other_threads():
    # The caller finishes its own block and waits for a pool thread still in a long
    # kernel; a Ctrl-C arriving during that wait must cancel the pool thread and raise
    # KeyboardInterrupt (not be swallowed while the loop goes on). A real SIGINT sent
    # to the main thread: it interrupts the wait (interrupt_main would only be seen
    # once the wait is over).
    import signal

    if not hasattr(signal, "pthread_kill"):
        pytest.skip("needs signal.pthread_kill (POSIX)")
    started = threading.Event()
    main = threading.get_ident()

    def fn(b, cancel):
        if threading.get_ident() == main:
            started.wait(5)  # let the pool thread take the other block
            return b
        started.set()
        t_end = time.perf_counter() + 20
        while time.perf_counter() < t_end:  # a kernel polling its cancel byte
            if cancel[0]:
                raise KeyboardInterrupt("cancelled: another thread was interrupted")
            time.sleep(1e-3)
        return b

    timer = threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGINT))
    t0 = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt) as info:
        run_blocks(fn, 2, 2)
    timer.join()
    assert time.perf_counter() - t0 < 5
    assert "cancelled" not in str(info.value)  # the caller's own interruption
    assert run_blocks(lambda b, c: b, 4, 2) == [0, 1, 2, 3]  # the pool works again


def test_nested_run_blocks_do_not_deadlock():
    # a block that itself calls run_blocks (e.g. an estimator inside another's block)
    # runs its inner blocks serially instead of waiting for busy pool threads
    def inner(b, cancel):
        return b

    def outer(b, cancel):
        return sum(run_blocks(inner, 5, 2)) + b

    done = []
    t = threading.Thread(target=lambda: done.append(run_blocks(outer, 8, 2)))
    t.start()
    t.join(20)
    assert not t.is_alive(), "nested run_blocks deadlocked"
    assert done == [[10 + b for b in range(8)]]
