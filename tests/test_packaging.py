"""The version lives in one place (meson.build) and everything else reads it; the
changelog exists."""

import importlib.metadata
import pathlib
import re

import pytest

import fastml

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _read(name):
    path = ROOT / name
    if not path.exists():
        pytest.skip(f"{name} not next to the tests")
    return path.read_text()


def test_meson_project_version_is_the_package_version():
    meson = _read("meson.build")
    match = re.search(r"project\('fastml'.*?version:\s*'([^']+)'", meson, flags=re.S)
    assert match, "no version in meson.build's project()"
    assert match.group(1) == fastml.__version__
    assert importlib.metadata.version("fastml") == fastml.__version__


def test_pyproject_takes_the_version_from_meson():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads(_read("pyproject.toml"))["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert {"sphinx", "numpydoc", "sphinx-gallery", "matplotlib"} <= {
        re.split(r"[<>=!~ ]", req)[0]
        for req in project["optional-dependencies"]["docs"]
    }
    for extra in ("test", "bench", "dev"):  # matplotlib stays optional
        assert not any(
            r.startswith("matplotlib") for r in project["optional-dependencies"][extra]
        )
    assert not any(r.startswith("matplotlib") for r in project["dependencies"])


def test_docs_read_the_version_from_the_package():
    conf = _read("docs/conf.py")
    assert re.search(r"^release = fastml\.__version__$", conf, flags=re.M)


def test_changelog_starts_with_this_version():
    headings = re.findall(r"^## (\S+)", _read("CHANGELOG.md"), flags=re.M)
    assert headings and headings[0] == fastml.__version__
