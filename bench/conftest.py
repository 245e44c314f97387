"""Benchmark set-up: one thread for BLAS/OpenMP, recorded in every result.

Single-thread figures are the fair comparison between fastml and its peers. The thread
count is pinned before numpy loads its BLAS (environment variables) and again through
threadpoolctl, and each benchmark's ``extra_info`` records it.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import pytest  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

_LIMITER = threadpool_limits(limits=1)


@pytest.fixture(autouse=True)
def _record_threads(request):
    benchmark = request.node.funcargs.get("benchmark")
    if benchmark is not None and "all_cores" not in request.fixturenames:
        benchmark.extra_info["threads"] = 1
        benchmark.extra_info["blas"] = sorted(
            {f"{p['internal_api']}:{p['num_threads']}" for p in threadpool_info()}
        )
    yield


@pytest.fixture
def all_cores(request):
    """For the all-cores groups: lift the one-thread pin while the benchmark runs, so
    BLAS/OpenMP peers use their own default threading (every usable CPU), and record
    the CPU seconds spent per wall second (``cpu_per_wall``: ~2 on this 2-core machine
    when both cores really worked; lower means the second core was busy elsewhere or
    the code did not scale). fastml's ``n_jobs`` is set by each benchmark itself.
    """
    import time

    from fastml._parallel import cpu_count

    benchmark = request.node.funcargs.get("benchmark")
    n = cpu_count()
    with threadpool_limits(limits=n):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        yield n
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if benchmark is not None:
        benchmark.extra_info["threads"] = f"all ({n})"
        benchmark.extra_info["cpu_per_wall"] = (
            round(cpu / wall, 2) if wall > 0 else None
        )
