"""Types that help: every public callable is annotated, and mypy --strict uses them.

``test_public_api_is_annotated`` walks ``__all__`` of every public module (classes
through their fastml base classes) and lists each parameter or return without an
annotation. ``test_mypy_*`` run ``mypy --strict`` on two user scripts in ``tests/typing``:
``ok_user.py`` exercises every public module and must pass; ``bad_user.py`` has planted
mistakes, each marked ``# E: <error code>``, and mypy must report exactly those lines.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

PUBLIC_MODULES = (
    "stats losses sampling mixture variational lda hmm lds graphical ep nn rbm".split()
)
HERE = Path(__file__).parent / "typing"


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
                        if attr.startswith("_") and attr not in ("__init__", "__call__"):
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
