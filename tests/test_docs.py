"""The docstring examples and the README's usage block run and say what they claim."""

import doctest
import importlib
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("module", ["fastml.stats", "fastml.losses"])
def test_docstring_examples(module):
    result = doctest.testmod(
        importlib.import_module(module), optionflags=doctest.ELLIPSIS
    )
    assert result.attempted > 0 and result.failed == 0


def _readme_blocks():
    if not README.exists():
        return []
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    if not README.exists():
        pytest.skip("README.md not next to the tests")
    assert len(_readme_blocks()) >= 4


@pytest.mark.parametrize("index", range(len(_readme_blocks())))
def test_readme_python_block_runs(index):
    block = _readme_blocks()[index]
    try:
        exec(compile(block, f"README.md python block {index}", "exec"), {})
    except ModuleNotFoundError as exc:  # an optional peer used only for example data
        if exc.name != "sklearn":
            raise
        pytest.skip(f"README example needs {exc.name}")
