"""The ``fastml`` command: ``fastml info`` and ``fastml demo [NAME ...] [--plot DIR]``."""

from __future__ import annotations

import argparse
import importlib
import os
import pathlib
import platform
import sys
import time
from typing import TextIO

from fastml import _build_config
from fastml._demo import DEMOS, get_demo, has_pictures

__all__ = ["main"]


def _info(out: TextIO) -> int:
    import numpy
    import scipy

    from fastml._parallel import thread_info

    threads = thread_info()
    rows = [
        ("fastml", _build_config.VERSION),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("numpy", numpy.__version__),
        ("scipy", scipy.__version__),
        ("platform", platform.platform()),
        ("compiler", _build_config.C_COMPILER),
        ("cython", _build_config.CYTHON_VERSION),
        (
            "buildtype",
            f"{_build_config.BUILDTYPE} (optimization -O{_build_config.OPTIMIZATION})",
        ),
        ("c_args", _build_config.C_ARGS or "(none)"),
        ("cython_args", _build_config.CYTHON_ARGS),
        ("bounds checks", "on (kernel_debug)" if _build_config.KERNEL_DEBUG else "off"),
        ("threads", f"{threads['layer']}"),
        (
            "n_jobs=None",
            f"{threads['default_n_jobs']} threads ({threads['cpus']} usable CPUs, "
            f"OMP_NUM_THREADS={threads['omp_num_threads'] or 'unset'})",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}", file=out)
    print("kernels:", file=out)
    failed = 0
    for name in _build_config.KERNEL_MODULES:
        try:
            importlib.import_module(name)
            status = "ok"
        except ImportError as exc:
            failed += 1
            status = f"FAILED: {exc}"
        print(f"  {name:<{width + 20}}{status}", file=out)
    if _build_config.KERNEL_VARIANTS:
        from fastml._kernels import simd_supported, variant

        print("AVX2 + FMA builds:", file=out)
        for name in _build_config.KERNEL_VARIANTS:
            base = name.rsplit(".", 1)[1].removesuffix("_avx2")
            if not simd_supported():
                status = "built, not used (this CPU lacks AVX2 or FMA)"
            elif variant(base).__name__ != name:
                status = "built, not used (FASTML_DISABLE_SIMD is set)"
            else:
                status = "in use"
            print(f"  {name:<{width + 20}}{status}", file=out)
    if not failed:
        from fastml.nn import _functional

        if _functional._DIRECT:
            status = "in use (Conv2d, stride 1)"
        elif _functional._conv.direct_available():
            status = "not used (FASTML_DISABLE_SIMD is set)"
        else:
            status = "not used (this CPU lacks AVX-512 F/VL, or not x86-64 GCC/Clang)"
        print(f"direct convolution kernels (AVX-512): {status}", file=out)
    return 1 if failed else 0


def _plot_dir(plot: str | None, err: TextIO) -> tuple[pathlib.Path | None, int]:
    """The directory pictures go to (created), or None; an exit status if it cannot be."""
    if plot is None:
        return None, 0
    try:
        import matplotlib
    except ImportError:
        print(
            "fastml demo --plot: matplotlib is not installed, so no pictures are "
            'written (pip install matplotlib, or pip install "fastml[docs]")',
            file=err,
        )
        return None, 0
    matplotlib.use("Agg")  # files only: no window, no display needed
    path = pathlib.Path(plot)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(
            f"fastml demo --plot: cannot use {plot!r} as a directory: {exc}", file=err
        )
        return None, 2
    return path, 0


def _demo(names: list[str], plot: str | None, out: TextIO, err: TextIO) -> int:
    unknown = [n for n in names if n not in DEMOS]
    if unknown:
        print(f"fastml demo: unknown demo(s): {', '.join(unknown)}", file=err)
        print("valid names:", file=err)
        for name, (_, desc) in DEMOS.items():
            print(f"  {name:<10} {desc}", file=err)
        return 2
    plot_dir, status = _plot_dir(plot, err)
    if status:
        return status
    for name in names or list(DEMOS):
        print(f"== {name}: {DEMOS[name][1]}", file=out)
        t0 = time.perf_counter()
        if plot_dir is not None and has_pictures(name):
            get_demo(name)(out, plot_dir)
        else:
            get_demo(name)(out)
            if plot_dir is not None:
                print("   (this demo has no picture)", file=out)
        print(f"   ({name} demo took {time.perf_counter() - t0:.2f} s)\n", file=out)
    return 0


def main(
    argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the command line; returns the exit status."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    parser = argparse.ArgumentParser(
        prog="fastml",
        description="Compiled kernels for probabilistic machine learning.",
    )
    parser.add_argument(
        "--version", action="version", version=f"fastml {_build_config.VERSION}"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, build flags and the compiled kernel modules")
    demo = sub.add_parser(
        "demo",
        help="run the demos (all, or the NAMEs given)",
        description="Demos: " + ", ".join(DEMOS),
    )
    demo.add_argument(
        "names", nargs="*", metavar="NAME", help=f"one of: {', '.join(DEMOS)}"
    )
    demo.add_argument(
        "--plot",
        metavar="DIR",
        help="also write each demo's pictures as PNG files into DIR (needs matplotlib)",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "info":
            return _info(out)
        return _demo(args.names, args.plot, out, err)
    except BrokenPipeError:  # e.g. `fastml demo | head`: stop quietly, as Unix tools do
        if out is sys.stdout:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
