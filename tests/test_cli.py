import io
import subprocess
import sys

import pytest

from fastml import _build_config
from fastml._demo import DEMOS, fmt
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
    for key in (
        "numpy",
        "scipy",
        "compiler",
        "cython_args",
        "buildtype",
        "threads",
        "n_jobs=None",
    ):
        assert key in out
    for name in _build_config.KERNEL_VARIANTS:  # each AVX2 build, used or not and why
        line = next(ln for ln in out.splitlines() if name in ln)
        assert "in use" in line or "not used (" in line
    line = next(ln for ln in out.splitlines() if "direct convolution kernels" in ln)
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


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_demo_plot_writes_pngs_and_says_where(tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "new" / "dir"  # created, parents too
    code, out, err = run("demo", "ep", "lds", "stats", "--plot", str(target))
    assert code == 0 and err == ""
    written = sorted(p.name for p in target.iterdir())
    assert written == ["ep_clutter.png", "lds_smoothing.png"]
    for name in written:
        data = (target / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000  # a real picture
        assert f"   picture: {target / name}" in out.splitlines()
    stats_part = out.split("== stats:")[1]
    assert "(this demo has no picture)" in stats_part


def test_demo_without_plot_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run("demo", "ep")
    assert code == 0 and "picture:" not in out and list(tmp_path.iterdir()) == []


def test_demo_plot_without_matplotlib_says_so_and_runs(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    code, out, err = run("demo", "ep", "--plot", str(tmp_path / "pics"))
    assert code == 0
    assert "matplotlib is not installed" in err and "pip install" in err
    assert "picture:" not in out and "EP" in out
    assert not (tmp_path / "pics").exists()


def test_demo_plot_into_a_file_exits_2_naming_it(tmp_path):
    pytest.importorskip("matplotlib")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, out, err = run("demo", "ep", "--plot", str(blocker))
    assert code == 2 and out == ""
    assert f"cannot use {str(blocker)!r} as a directory" in err


def test_lds_demo_prints_small_variances_in_scientific_notation():
    _, out, _ = run("demo", "lds")
    line = next(ln for ln in out.splitlines() if "position noise var" in ln)
    learned = line.split("learned")[1].split("true")[0]
    # the true value is q dt^3 / 3 = 1.667e-4; rounding to 4 decimals printed [0. 0.]
    values = [float(v) for v in learned.strip(" []").split()]
    assert len(values) == 2 and all(1e-5 < v < 1e-2 for v in values)
    assert "e-04" in line and "true 1.667e-04" in line


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.7e-4, "1.700e-04"),
        (0.0, "0"),
        (0.25, "0.25"),
        (3.14159, "3.142"),
        (123456.0, "1.235e+05"),
        (-2.5e-7, "-2.500e-07"),
        ([0.95, 1.7e-4], "[0.95 1.700e-04]"),
    ],
)
def test_fmt_is_readable(value, text):
    assert fmt(value) == text


def test_matplotlib_is_imported_only_for_pictures():
    code = (
        "import sys, io, importlib; from fastml._demo import DEMOS; import fastml.cli; "
        "[importlib.import_module(m) for m, _ in DEMOS.values()]; "
        "fastml.cli.main(['demo', 'ep'], out=io.StringIO()); "
        "print('matplotlib' in sys.modules)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert r.stdout.strip() == "False"
