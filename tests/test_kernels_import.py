"""Every compiled module imports (a missing npyrandom link only fails here, at import)."""

import importlib

import pytest

from fastml import _build_config


def test_kernel_list_is_not_empty():
    assert len(_build_config.KERNEL_MODULES) >= 2


@pytest.mark.parametrize("name", _build_config.KERNEL_MODULES)
def test_kernel_module_imports(name):
    mod = importlib.import_module(name)
    assert mod.__file__.endswith((".so", ".pyd"))


def test_stubs_and_marker_installed():
    import pathlib

    import fastml

    root = pathlib.Path(fastml.__file__).parent
    assert (root / "py.typed").exists()
    for name in _build_config.KERNEL_MODULES:
        stub = root / "_kernels" / (name.rsplit(".", 1)[1] + ".pyi")
        assert stub.exists(), stub
