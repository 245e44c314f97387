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


# ---------------------------------------------------------------------------------
# AVX2 + FMA builds (x86-64 only): picked by fastml._kernels.variant


def _simd_variants():
    from fastml._kernels import simd_supported

    if not _build_config.KERNEL_VARIANTS:
        pytest.skip("no AVX2 + FMA builds (not an x86-64 build)")
    if not simd_supported():
        pytest.skip("this CPU lacks AVX2 or FMA")
    return _build_config.KERNEL_VARIANTS


def test_simd_variants_match_their_baseline():
    for name in _simd_variants():
        fast = importlib.import_module(name)
        base = importlib.import_module(name.removesuffix("_avx2"))
        public = {n for n in dir(base) if not n.startswith("__")}
        assert public == {n for n in dir(fast) if not n.startswith("__")}


def test_variant_choice(monkeypatch):
    from fastml._kernels import variant

    _simd_variants()
    monkeypatch.delenv("FASTML_DISABLE_SIMD", raising=False)
    assert variant("_bp").__name__ == "fastml._kernels._bp_avx2"
    monkeypatch.setenv("FASTML_DISABLE_SIMD", "1")
    assert variant("_bp").__name__ == "fastml._kernels._bp"
    assert variant("_fastml_threadpool").__name__.endswith("_threadpool")  # no variant
    from fastml._kernels import builds

    names = ["fastml._kernels._bp", "fastml._kernels._bp_avx2"]
    assert [m.__name__ for m in builds("_bp")] == names  # the env var does not matter
    assert len(builds("_fastml_threadpool")) == 1


def test_simd_grid_kernel_agrees_with_baseline():
    # the AVX2 build contracts a * b + c into FMAs: same results to rounding
    import numpy as np

    from fastml.graphical import _grid

    _simd_variants()
    fast = importlib.import_module("fastml._kernels._bp_avx2")
    base = importlib.import_module("fastml._kernels._bp")
    rng = np.random.default_rng(5)
    H, W, K = 7, 9, 4
    results = []
    for mod in (base, fast):
        for potts, is_max in [(True, False), (False, False), (True, True)]:
            pair = np.eye(K) if potts else np.exp(rng.standard_normal((K, K)))
            lu = rng.standard_normal((H, W, K))
            unary = _grid._to_half_rows(np.exp(lu) if not is_max else lu, 1.0)
            if is_max:
                pair = np.log(pair + 1.0)
            hs = unary.shape[3]
            belief = np.empty((H, W, K))
            start = np.empty((4, 4, K, 2, hs))
            mod.grid_init(start, W, is_max)
            msgs = np.zeros((H, 4, K, 2, hs))
            mod.grid_flood_strip(
                unary, W, pair, pair.T.copy(), pair[0, 0], pair[0, 1], potts, is_max,
                0.2, msgs, np.zeros((2 * mod.GRID_FUSE, *msgs.shape[1:])), start, True,
                0, H, mod.GRID_FUSE, belief, True,
                np.zeros((2 * K + 3 + 24 * mod.GRID_FUSE * K) * hs),
                np.zeros(1, np.uint8),
            )  # fmt: skip
            results.append(belief)
        rng = np.random.default_rng(5)  # the same problems for the second module
    n = len(results) // 2
    for a, b in zip(results[:n], results[n:], strict=True):
        np.testing.assert_allclose(a, b, atol=1e-13, rtol=0)
