"""Test set-up: the tests import the installed fastml, never ``src/``.

At the end of a run, a summary says which optional oracle libraries were missing and how
many tests skipped for it (torch above all: it is not in the ``test`` extra, because a
plain ``torch`` requirement pulls a multi-GB CUDA build).
"""

import os
import pathlib
import re
import warnings
from collections import Counter

import numpy as np
import pytest

import fastml

# How to install each optional oracle whose absence skips tests.
_HOW = {
    "torch": "pip install torch==2.13.0 (the CPU build; see the README)",
    "matplotlib": 'pip install matplotlib (or pip install ".[docs]")',
}
_MISSING = re.compile(r"could not import '([\w.]+)'")


def pytest_report_header(config):
    where = pathlib.Path(fastml.__file__).resolve().parent
    return f"fastml {fastml.__version__} imported from {where}"


def missing_oracles(skipped_reports):
    """Counter of top-level module names whose failed import skipped a test."""
    counts = Counter()
    for report in skipped_reports:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        match = _MISSING.search(reason)
        if match:
            counts[match.group(1).split(".")[0]] += 1
    return counts


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    counts = missing_oracles(terminalreporter.stats.get("skipped", []))
    if not counts:
        return
    terminalreporter.section("optional oracles not installed")
    for module, n in sorted(counts.items()):
        how = _HOW.get(module, f"pip install {module}")
        terminalreporter.write_line(
            f"{n} test(s) skipped because {module} is not importable; "
            f"to run them: {how}"
        )


# ---- a real 2-process Dask cluster (test_dask.py, test_hmm_dask.py) -----------------


def _local_cluster(**kw):
    import dask.distributed

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dask.distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
            **kw,
        )


@pytest.fixture
def local_cluster():
    """``local_cluster(**kw)``: a new 2-worker LocalCluster (processes, 1 thread each)."""
    return _local_cluster


@pytest.fixture
def restore_environ():
    """distributed sets OMP_NUM_THREADS=1 (and the MKL/OpenBLAS ones) in this
    process's environment when it starts or restarts a worker; restore it so other
    tests see the real default thread count."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def cluster():
    """One LocalCluster per test module that asks for it."""
    saved = dict(os.environ)
    cl = _local_cluster()
    os.environ.clear()
    os.environ.update(saved)
    try:
        yield cl
    finally:
        cl.close()


@pytest.fixture
def close_client_mid_fit(cluster):
    """``close_client_mid_fit(fit, delay)``: run ``fit()`` on a thread with a new Client
    of the module's cluster as the default scheduler, close that Client after ``delay``
    seconds, and check the fit stops within 90 s with the RuntimeError saying the
    client went away (no hang, no fit finished on another scheduler)."""
    import threading
    import time

    import dask.distributed

    def check(fit, delay):
        out = {}

        def run():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fit()
            except BaseException as exc:  # reported to the test
                out["error"] = exc

        c = dask.distributed.Client(cluster)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        time.sleep(delay)
        c.close()
        t.join(90)
        assert not t.is_alive(), "the fit hung after the client closed"
        assert isinstance(out.get("error"), RuntimeError), out
        assert "client" in str(out["error"]) and "went away" in str(out["error"])

    return check


@pytest.fixture
def client(cluster):
    import dask.distributed

    with dask.distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="session")
def zipf_lda_corpus():
    """Make a small corpus from LDA's generative process with the model of
    ``bench/make_synthetic_corpus.py``: topics ``~ Dirichlet(0.05 V base)`` over a
    Zipf-like base measure (word rank r has weight ``1 / (r + 10)``), ``theta_d ~
    Dirichlet(alpha)``, documents of ``doc_len`` words. ``make(n_docs, K, V, doc_len,
    alpha=0.1, seed=0)`` returns the counts (n_docs, V) and the true topics (K, V)."""

    def make(n_docs, K, V, doc_len, alpha=0.1, seed=0):
        rng = np.random.default_rng(seed)
        base = 1.0 / (np.arange(V) + 10.0)
        beta = rng.dirichlet(0.05 * V * base / base.sum(), size=K)
        theta = rng.dirichlet(np.full(K, alpha), size=n_docs)
        X = np.stack([rng.multinomial(doc_len, t @ beta) for t in theta])
        return X, beta

    return make


@pytest.fixture(scope="session")
def matched_cosine():
    """``matched_cosine(learned, true)``: the mean cosine similarity of learned to true
    topics (rows) after the Hungarian matching that maximises it."""
    from scipy.optimize import linear_sum_assignment

    def score(learned, true):
        cos = (learned / np.linalg.norm(learned, axis=1, keepdims=True)) @ (
            true / np.linalg.norm(true, axis=1, keepdims=True)
        ).T
        r, c = linear_sum_assignment(-cos)
        return float(cos[r, c].mean())

    return score
