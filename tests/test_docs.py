"""The docstring examples and the README's usage block run and say what they claim."""

import doctest
import importlib
import pathlib
import pkgutil
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


# Every public module; a package's examples live in its concept files, all run here.
PUBLIC_MODULES = [
    "fastml.stats",
    "fastml.losses",
    "fastml.sampling",
    "fastml.mixture",
    "fastml.variational",
    "fastml.lda",
    "fastml.hmm",
    "fastml.lds",
    "fastml.graphical",
    "fastml.ep",
    "fastml.nn",
    "fastml.rbm",
]
# Examples each module had when its doctests were first run (a floor, so none is lost).
MIN_EXAMPLES = {"fastml.sampling": 41}


def _modules_of(name):
    module = importlib.import_module(name)
    yield module
    if hasattr(module, "__path__"):  # a package: its concept files too
        for info in pkgutil.iter_modules(module.__path__, name + "."):
            yield importlib.import_module(info.name)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_docstring_examples(name):
    attempted = 0
    for module in _modules_of(name):
        result = doctest.testmod(
            module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        )
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert attempted >= MIN_EXAMPLES.get(name, 1)


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
