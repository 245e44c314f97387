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
    if benchmark is not None:
        benchmark.extra_info["threads"] = 1
        benchmark.extra_info["blas"] = sorted(
            {f"{p['internal_api']}:{p['num_threads']}" for p in threadpool_info()}
        )
    yield
