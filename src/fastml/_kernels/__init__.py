"""Compiled kernels of fastml (private: import the public modules instead).

Some kernel modules are also built for x86-64 with AVX2 + FMA (``<name>_avx2``, from the
same source). :func:`variant` returns that copy when this CPU (and OS) supports both, as
reported by numpy's own CPU detection, and the baseline module otherwise. Setting the
environment variable ``FASTML_DISABLE_SIMD=1`` forces the baseline modules.
"""

import importlib
import os
from types import ModuleType

from fastml import _build_config


def simd_supported() -> bool:
    """Whether this CPU runs the AVX2 + FMA builds (numpy's CPU feature detection)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy < 2
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as features
        except ImportError:
            return False
    return bool(features.get("AVX2") and features.get("FMA3"))


def _usable_variant(name: str) -> str | None:
    """The AVX2 + FMA build's module name if it was compiled and this CPU runs it."""
    fast = f"fastml._kernels.{name}_avx2"
    return fast if fast in _build_config.KERNEL_VARIANTS and simd_supported() else None


def simd_enabled() -> bool:
    """False when the environment variable ``FASTML_DISABLE_SIMD`` asks for the baseline
    code (set to anything but "" or "0")."""
    return os.environ.get("FASTML_DISABLE_SIMD", "") in ("", "0")


def variant(name: str) -> ModuleType:
    """The kernel module ``fastml._kernels.<name>``, or its AVX2 + FMA build when one was
    compiled, the CPU supports it and ``FASTML_DISABLE_SIMD`` is not set."""
    fast = _usable_variant(name)
    if fast and simd_enabled():
        return importlib.import_module(fast)
    return importlib.import_module(f"fastml._kernels.{name}")


def builds(name: str) -> list[ModuleType]:
    """Every build of kernel module ``name`` this CPU runs: the baseline one, then the
    AVX2 + FMA one when it was compiled and the CPU supports it (for tests that check
    the builds against each other)."""
    fast = _usable_variant(name)
    return [importlib.import_module(f"fastml._kernels.{name}")] + (
        [importlib.import_module(fast)] if fast else []
    )
