"""Test set-up: the tests import the installed fastml, never ``src/``.

At the end of a run, a summary says which optional oracle libraries were missing and how
many tests skipped for it (torch above all: it is not in the ``test`` extra, because a
plain ``torch`` requirement pulls a multi-GB CUDA build).
"""

import pathlib
import re
from collections import Counter

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
