"""The API reference documents every public name, and every public name has a docstring.

The reference pages (docs/api/<module>.rst) list their names by hand for autosummary;
this test compares each list with the module's ``__all__``, so a name added to a module
without its page (or a page naming something that no longer exists) fails here.
"""

import importlib
import inspect
import pathlib
import pkgutil
import re

import pytest

import fastml

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"


# Every public module: each non-underscore submodule of fastml but the command line.
PUBLIC_MODULES = sorted(
    info.name
    for info in pkgutil.iter_modules(fastml.__path__, "fastml.")
    if not info.name.rsplit(".", 1)[1].startswith("_") and info.name != "fastml.cli"
)


def test_every_family_module_is_found():
    families = (
        "stats losses sampling mixture variational lda hmm lds graphical ep nn rbm"
    )
    assert {f"fastml.{m}" for m in families.split()} <= set(PUBLIC_MODULES)


def _autosummary_names(text):
    """Entries of every ``.. autosummary::`` block of an rst page, and ``autodata`` names."""
    names = re.findall(r"^\.\. autodata:: (\w+)$", text, flags=re.M)
    for block in re.findall(
        r"^\.\. autosummary::\n((?:[ \t]+.*\n|\n)+)", text, flags=re.M
    ):
        for line in block.splitlines():
            entry = line.strip()
            if entry and not entry.startswith(":"):
                names.append(entry)
    return names


def _public_members(cls):
    """(name, object) of the public methods and properties of a class defined in fastml."""
    for klass in cls.__mro__:
        if not klass.__module__.startswith("fastml"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_"):
                continue
            fn = value.fget if isinstance(value, property) else value
            fn = getattr(fn, "__func__", fn)
            if inspect.isfunction(fn) or isinstance(value, property):
                yield f"{klass.__qualname__}.{name}", fn


def test_autosummary_parser_reads_entries_and_skips_options():
    text = ".. autosummary::\n   :toctree: generated/\n\n   Foo\n   bar\n\nNext para\n"
    assert _autosummary_names(text) == ["Foo", "bar"]
    assert _autosummary_names(".. autodata:: X_Y\n   :no-value:\n") == ["X_Y"]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_api_page_lists_exactly_the_public_names(name):
    page = DOCS / "api" / f"{name.removeprefix('fastml.')}.rst"
    if not DOCS.exists():
        pytest.skip("docs/ not next to the tests")
    assert page.exists(), f"no API page {page.name} for {name}"
    text = page.read_text()
    assert f".. currentmodule:: {name}\n" in text
    documented = _autosummary_names(text)
    assert len(documented) == len(set(documented)), "a name is listed twice"
    public = importlib.import_module(name).__all__
    assert sorted(documented) == sorted(public)


def test_api_index_links_every_module_page():
    if not DOCS.exists():
        pytest.skip("docs/ not next to the tests")
    index = (DOCS / "api" / "index.rst").read_text()
    for name in PUBLIC_MODULES:
        assert re.search(rf"^   {name.removeprefix('fastml.')}$", index, flags=re.M), (
            name
        )


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_name_and_method_has_a_docstring(name):
    module = importlib.import_module(name)
    assert inspect.getdoc(module)
    missing = []
    for public in module.__all__:
        obj = getattr(module, public)
        if not (obj.__doc__ or "").strip():
            missing.append(public)
        if inspect.isclass(obj):
            missing += [
                q for q, fn in _public_members(obj) if not (fn.__doc__ or "").strip()
            ]
    assert missing == []


def test_help_of_the_package_names_every_public_module():
    for name in PUBLIC_MODULES:
        assert f":mod:`{name}`" in fastml.__doc__
