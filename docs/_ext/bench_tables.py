"""``.. benchmark-tables:: PATH``: tables from a saved pytest-benchmark JSON file.

The tables are built from the file at every docs build, never typed by hand: one table
per benchmark group (fastml and its peers on the same input), with the minimum and median
time of each implementation and the ratio ``peer minimum / fastml minimum`` (above 1:
fastml is faster). The file is produced by ``pytest --benchmark-json=PATH`` (the command
is on the benchmarks page).
"""

from __future__ import annotations

import json
import pathlib

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective


def _seconds(t: float) -> str:
    """A time with a unit that keeps 3 significant digits readable."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t / 1e-9:.3g} ns"


def _impl(bench: dict) -> str:
    """The implementation's name: the last dash-separated part of the test id."""
    return (
        bench["param"].rsplit("-", 1)[-1] if "-" in bench["param"] else bench["param"]
    )


def render(data: dict) -> list[str]:
    """reStructuredText lines for a pytest-benchmark result dict."""
    mi, ci = data["machine_info"], data.get("commit_info", {})
    cpu = mi.get("cpu", {})
    lines = [
        f"Run of {data['datetime'][:16].replace('T', ' ')} UTC on "
        f"{cpu.get('brand_raw', mi.get('machine', '?'))} ({cpu.get('count', '?')} cores), "
        f"Python {mi['python_version']}, pytest-benchmark {data['version']}, "
        f"commit ``{ci.get('id', '?')[:10]}``"
        + (" (with uncommitted changes)" if ci.get("dirty") else "")
        + ".",
        "",
    ]
    groups: dict[str, list[dict]] = {}
    for bench in data["benchmarks"]:
        groups.setdefault(bench["group"], []).append(bench)
    by_family: dict[str, list[str]] = {}
    for group, benches in groups.items():
        family = pathlib.Path(benches[0]["fullname"].split("::")[0]).stem
        by_family.setdefault(family.removeprefix("bench_"), []).append(group)
    for family, names in by_family.items():
        for group in names:
            benches = groups[group]
            ours = [b for b in benches if _impl(b) == "fastml"]
            base = ours[0]["stats"]["min"] if ours else None
            lines += [
                f".. list-table:: ``{family}``: {group}",
                "   :header-rows: 1",
                "   :widths: 30 20 20 10 20",
                "",
                "   * - implementation",
                "     - minimum",
                "     - median",
                "     - rounds",
                "     - time / fastml's",
            ]
            for b in sorted(benches, key=lambda b: b["stats"]["min"]):
                s = b["stats"]
                ratio = f"{s['min'] / base:.2f}x" if base else "n/a"
                lines += [
                    f"   * - {_impl(b)}",
                    f"     - {_seconds(s['min'])}",
                    f"     - {_seconds(s['median'])}",
                    f"     - {s['rounds']}",
                    f"     - {ratio}",
                ]
            lines.append("")
    return lines


class BenchmarkTables(SphinxDirective):
    """The directive: one required argument, the JSON path relative to the docs root."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        path = pathlib.Path(self.env.srcdir) / self.arguments[0]
        self.env.note_dependency(str(path))
        data = json.loads(path.read_text())
        container = nodes.container()
        self.state.nested_parse(StringList(render(data), str(path)), 0, container)
        return container.children


def setup(app):
    """Register the directive with Sphinx."""
    app.add_directive("benchmark-tables", BenchmarkTables)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
