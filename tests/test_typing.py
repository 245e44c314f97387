"""Types that help: every public callable is annotated, and mypy --strict uses them.

``test_public_api_is_annotated`` walks ``__all__`` of every public module (classes
through their fastml base classes) and lists each parameter or return without an
annotation. ``test_mypy_*`` run ``mypy --strict`` (one run, skipped when mypy is not
installed; CI installs it with the dev tools) on two user scripts in ``tests/typecheck``:
``ok_user.py`` exercises every public module and must pass; ``bad_user.py`` has planted
mistakes, each marked ``# E: <error code>``, and mypy must report exactly those lines.
``test_ok_user_runs`` executes ``ok_user.py``, whose run-time checks compare each
annotated type with the value really returned.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import runpy
import site
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import fastml

PUBLIC_MODULES = (
    "stats losses sampling mixture variational lda hmm lds graphical ep nn rbm".split()
)
HERE = Path(__file__).parent / "typecheck"


def _public_callables():
    """(qualified name, function) for every public function and method."""
    seen = set()
    for modname in PUBLIC_MODULES:
        module = importlib.import_module(f"fastml.{modname}")
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                yield f"fastml.{modname}.{name}", obj
            elif inspect.isclass(obj):
                for klass in inspect.getmro(obj):
                    if not klass.__module__.startswith("fastml"):
                        continue
                    for attr, value in vars(klass).items():
                        if attr.startswith("_") and attr not in (
                            "__init__",
                            "__call__",
                        ):
                            continue
                        if isinstance(value, (staticmethod, classmethod)):
                            value = value.__func__
                        elif isinstance(value, property):
                            value = value.fget
                        if not inspect.isfunction(value) or value in seen:
                            continue
                        seen.add(value)
                        yield f"fastml.{modname}.{name}.{attr}", value


def test_public_api_is_annotated():
    missing = []
    count = 0
    for qualname, func in _public_callables():
        count += 1
        sig = inspect.signature(func)
        names = [
            p.name
            for i, p in enumerate(sig.parameters.values())
            if p.annotation is inspect.Parameter.empty
            and not (i == 0 and p.name in ("self", "cls"))
        ]
        if sig.return_annotation is inspect.Signature.empty:
            names.append("return")
        if names:
            missing.append(f"{qualname}: {', '.join(names)}")
    assert count > 150  # the walk really found the public API
    assert not missing, "unannotated:\n" + "\n".join(missing)


def test_public_annotations_resolve():
    """Every annotation names something real (with ``from __future__ import
    annotations`` a misspelt name would only surface here or as a silent ``Any``)."""
    from fastml.graphical import FactorGraph
    from fastml.graphical._factor_graph import _Compiled

    # Imported under TYPE_CHECKING only by the modules that use them.
    type_checking_only = {"FactorGraph": FactorGraph, "_Compiled": _Compiled}
    failures = []
    for qualname, func in _public_callables():
        try:
            typing.get_type_hints(func, localns=type_checking_only)
        except Exception as exc:
            failures.append(f"{qualname}: {exc!r}")
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory):
    """{file name: {line: [error codes]}} and the exit status of one mypy run."""
    pytest.importorskip("mypy")
    env = dict(os.environ)
    root = Path(fastml.__file__).resolve().parents[1]
    if str(root) not in {str(Path(p).resolve()) for p in site.getsitepackages()}:
        # Editable install: its import hook is invisible to mypy, so point mypy at
        # the source tree (the compiled modules' .pyi stubs sit next to the .pyx).
        env["MYPYPATH"] = str(root)
    cache = tmp_path_factory.mktemp("mypy_cache")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "--no-error-summary", "--cache-dir", str(cache),
         str(HERE / "ok_user.py"), str(HERE / "bad_user.py")],
        capture_output=True, text=True, env=env, cwd=cache, timeout=600,
    )  # fmt: skip
    errors: dict[str, dict[int, list[str]]] = {"ok_user.py": {}, "bad_user.py": {}}
    pattern = re.compile(r"^(.*?):(\d+): error: .*\[([a-z-]+)\]$")
    for line in proc.stdout.splitlines():
        m = pattern.match(line)
        if m:
            lines = errors.setdefault(Path(m[1]).name, {})
            lines.setdefault(int(m[2]), []).append(m[3])
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr  # 2: mypy crashed
    return errors, proc


def test_mypy_accepts_typed_user_script(mypy_report):
    errors, proc = mypy_report
    assert errors["ok_user.py"] == {}, proc.stdout


def test_mypy_reports_planted_mistakes(mypy_report):
    errors, proc = mypy_report
    expected = {}
    source = (HERE / "bad_user.py").read_text().splitlines()
    for number, line in enumerate(source, start=1):
        m = re.search(r"# E: ([a-z-]+)", line)
        if m:
            expected[number] = [m[1]]
    assert len(expected) >= 20
    assert proc.returncode == 1
    assert errors["bad_user.py"] == expected, proc.stdout


def test_ok_user_runs():
    runpy.run_path(str(HERE / "ok_user.py"), run_name="__main__")
