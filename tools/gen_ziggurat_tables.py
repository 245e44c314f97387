"""Generate the ziggurat tables of fastml's normal and exponential samplers.

Writes ``src/fastml/include/fastml/ziggurat_tables.h`` (committed, installed with
``fastml/random.h``). Every number in the
header comes from the layer equations below, solved here in 60-digit arithmetic with
mpmath; nothing is copied from another implementation.

Layout (Marsaglia & Tsang, "The Ziggurat Method for Generating Random Variables",
J. Stat. Softw. 5(8), 2000). For a decreasing density ``f`` on [0, inf) (unnormalised:
``exp(-x^2/2)`` or ``exp(-x)``) and ``N`` layers of equal area ``v``:

- layer 0 is the base strip ``[0, v/f(r)] x [0, f(r)]``: the rectangle ``[0, r] x
  [0, f(r)]`` plus the tail ``x > r``, so ``v = r f(r) + int_r^inf f``;
- ``x_{N-1} = r`` and, going up, ``x_{i-1} = f^{-1}(v / x_i + f(x_i))``: layer ``i``
  (1 <= i < N) is the rectangle ``[0, x_i] x [f(x_i), f(x_{i-1})]`` of area ``v``;
- ``r`` is the root of ``x_0 = 0``, i.e. the top layer ``[0, x_1] x [f(x_1), 1]`` has
  area exactly ``v`` too.

Tables per density and precision (``B`` mantissa bits of the uniform integer: 52 for the
signed normal draw, 53 for the unsigned exponential one, 23/24 for float32):

- ``w[i] = x_i / 2^B`` (``w[0] = (v / f(r)) / 2^B``), so ``x = m * w[i]``;
- ``k[i] = floor(2^B x_{i-1} / x_i)`` (``k[0] = floor(2^B r f(r) / v)``, ``k[1] = 0``):
  ``m < k[i]`` means the point lies under the next layer up, hence under the curve;
- ``f[i] = f(x_i)`` with ``f[0] = 1`` (``x_0 = 0``), for the wedge test.

Usage::

    python tools/gen_ziggurat_tables.py [--layers 256] [--output PATH]
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import mpmath as mp

mp.mp.dps = 60

DEFAULT_OUTPUT = (
    Path(__file__).resolve().parent.parent
    / "src"
    / "fastml"
    / "include"
    / "fastml"
    / "ziggurat_tables.h"
)


class Density:
    """An unnormalised decreasing density on [0, inf) with its inverse and tail mass."""

    def __init__(self, name, f, finv, tail):
        self.name, self.f, self.finv, self.tail = name, f, finv, tail


NORMAL = Density(
    "nor",
    lambda x: mp.exp(-x * x / 2),
    lambda y: mp.sqrt(-2 * mp.log(y)),
    lambda r: mp.sqrt(mp.pi / 2) * mp.erfc(r / mp.sqrt(2)),
)
EXPONENTIAL = Density(
    "exp",
    lambda x: mp.exp(-x),
    lambda y: -mp.log(y),
    lambda r: mp.exp(-r),
)


def layers(dens: Density, r, n: int):
    """Return ``(v, xs, top)`` for base edge ``r``: ``xs[i] = x_i`` (i = 1..n-1) and
    ``top = v / x_1 + f(x_1)``, which equals 1 exactly at the right ``r``."""
    v = r * dens.f(r) + dens.tail(r)
    xs = [mp.mpf(0)] * n
    xs[n - 1] = r
    for i in range(n - 1, 1, -1):
        y = v / xs[i] + dens.f(xs[i])
        if y >= 1:  # r too small: the layers reach the top before x_1
            return v, None, mp.mpf(2)
        xs[i - 1] = dens.finv(y)
    return v, xs, v / xs[1] + dens.f(xs[1])


def solve_r(dens: Density, n: int, lo, hi):
    """Bisection for the ``r`` at which the top layer has area ``v`` (``top == 1``)."""
    lo, hi = mp.mpf(lo), mp.mpf(hi)
    # top(r) decreases in r: too small an r leaves too much area above x_1.
    assert layers(dens, lo, n)[2] > 1 > layers(dens, hi, n)[2], "bad bracket"
    for _ in range(220):
        mid = (lo + hi) / 2
        if layers(dens, mid, n)[2] > 1:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def tables(dens: Density, n: int, r, bits: int):
    v, xs, top = layers(dens, r, n)
    scale = mp.mpf(2) ** bits
    fr = dens.f(r)
    k = [int(mp.floor(scale * r * fr / v)), 0]
    w = [v / fr / scale, xs[1] / scale]
    f = [mp.mpf(1)] + [dens.f(xs[i]) for i in range(1, n)]
    for i in range(2, n):
        k.append(int(mp.floor(scale * xs[i - 1] / xs[i])))
        w.append(xs[i] / scale)
    return v, top, k, w, f


def fmt_float(x, digits: int) -> str:
    return mp.nstr(x, digits, min_fixed=1, max_fixed=0, strip_zeros=False)


def c_array(ctype: str, name: str, values, per_line: int) -> str:
    rows = [
        "    " + ", ".join(values[i : i + per_line])
        for i in range(0, len(values), per_line)
    ]
    return (
        f"static const {ctype} {name}[{len(values)}] = {{\n"
        + ",\n".join(rows)
        + "\n};\n"
    )


def emit(dens: Density, n: int, r, out: list[str]) -> None:
    name = dens.name
    signed = dens is NORMAL
    for prec, bits in (("", 52 if signed else 53), ("32", 23 if signed else 24)):
        v, top, k, w, f = tables(dens, n, r, bits)
        if prec == "":
            out.append(f"/* {name}: r = {fmt_float(r, 30)}, v = {fmt_float(v, 30)}")
            out.append(
                f"   (|top-layer area / v - 1| = {fmt_float(abs(top - 1), 3)}) */"
            )
            out.append(f"static const double fastml_zig_{name}_r = {fmt_float(r, 21)};")
            out.append(
                f"static const double fastml_zig_{name}_inv_r = {fmt_float(1 / r, 21)};"
            )
            out.append(
                f"static const float fastml_zig_{name}_r32 = {fmt_float(r, 9)}f;"
            )
            out.append(
                f"static const float fastml_zig_{name}_inv_r32 = {fmt_float(1 / r, 9)}f;\n"
            )
            out.append(
                c_array("uint64_t", f"fastml_zig_{name}_k", [f"{x}ULL" for x in k], 3)
            )
            out.append(
                c_array(
                    "double", f"fastml_zig_{name}_w", [fmt_float(x, 21) for x in w], 3
                )
            )
            out.append(
                c_array(
                    "double", f"fastml_zig_{name}_f", [fmt_float(x, 21) for x in f], 3
                )
            )
        else:
            out.append(
                c_array("uint32_t", f"fastml_zig_{name}_k32", [f"{x}U" for x in k], 6)
            )
            out.append(
                c_array(
                    "float",
                    f"fastml_zig_{name}_w32",
                    [fmt_float(x, 9) + "f" for x in w],
                    4,
                )
            )
            out.append(
                c_array(
                    "float",
                    f"fastml_zig_{name}_f32",
                    [fmt_float(x, 9) + "f" for x in f],
                    4,
                )
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--layers", type=int, default=256, help="number of layers (256)"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    n = args.layers
    if n < 8 or n & (n - 1):
        parser.error("--layers must be a power of two >= 8 (the index is a bit mask)")
    r_nor = solve_r(NORMAL, n, 1.5, 6.0)
    r_exp = solve_r(EXPONENTIAL, n, 3.0, 12.0)
    cmd = "python " + shlex.join(["tools/gen_ziggurat_tables.py", *sys.argv[1:]])
    out = [
        "/* Ziggurat tables for fastml/random.h (fastml's samplers on numpy's bitgen_t).",
        " *",
        " * GENERATED FILE - do not edit. Regenerate with:",
        f" *     {cmd}",
        " * (tools/gen_ziggurat_tables.py solves the layer equations of Marsaglia & Tsang 2000",
        " * in 60-digit arithmetic with mpmath; see its docstring for the layout.)",
        " *",
        f" * layers: {n}",
        f" * normal      exp(-x^2/2): r = {fmt_float(r_nor, 20)}",
        f" * exponential exp(-x):     r = {fmt_float(r_exp, 20)}",
        " */",
        "#ifndef FASTML_ZIGGURAT_TABLES_H",
        "#define FASTML_ZIGGURAT_TABLES_H",
        "#include <stdint.h>",
        "",
        f"#define FASTML_ZIG_LAYERS {n}",
        f"#define FASTML_ZIG_MASK {n - 1}",
        "",
    ]
    emit(NORMAL, n, r_nor, out)
    emit(EXPONENTIAL, n, r_exp, out)
    out.append("#endif /* FASTML_ZIGGURAT_TABLES_H */")
    args.output.write_text("\n".join(out) + "\n")
    print(
        f"wrote {args.output} (layers={n}, r_nor={float(r_nor)!r}, r_exp={float(r_exp)!r})"
    )


if __name__ == "__main__":
    main()
