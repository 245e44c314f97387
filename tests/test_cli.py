import io
import subprocess
import sys

import pytest

from fastml import _build_config
from fastml._demo import DEMOS
from fastml.cli import main


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_info_lists_every_kernel_and_the_build():
    code, out, _ = run("info")
    assert code == 0
    for name in _build_config.KERNEL_MODULES:
        assert f"{name}" in out and "FAILED" not in out
    for key in ("numpy", "scipy", "compiler", "cython_args", "buildtype", "openmp"):
        assert key in out
    for name in _build_config.KERNEL_VARIANTS:  # each AVX2 build, used or not and why
        line = next(ln for ln in out.splitlines() if name in ln)
        assert "in use" in line or "not used (" in line


@pytest.mark.parametrize("name", list(DEMOS))
def test_each_demo_runs(name):
    code, out, _ = run("demo", name)
    assert code == 0
    assert out.startswith(f"== {name}:") and f"({name} demo took" in out


def test_unknown_demo_exits_2_with_valid_names():
    code, out, err = run("demo", "stats", "nope")
    assert code == 2 and out == ""
    assert "unknown demo(s): nope" in err
    for name in DEMOS:
        assert name in err


def test_console_script_and_module_entry_points():
    r = subprocess.run(
        [sys.executable, "-m", "fastml", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0 and r.stdout.strip() == f"fastml {_build_config.VERSION}"
    r = subprocess.run(
        [sys.executable, "-m", "fastml", "demo", "bogus"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 2 and "valid names" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "fastml"], capture_output=True, text=True, check=False
    )
    assert r.returncode == 2  # argparse: a sub-command is required
