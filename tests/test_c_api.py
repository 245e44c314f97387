"""The public C API (``fastml/random.h``, ``fastml/random.pxd``, ``fastml.get_include()``,
``fastml.sampling.ctypes_functions``) used as a downstream project would use it.

Each downstream build runs once per session in a temporary directory, against the
installed fastml (only ``fastml.get_include()`` and ``numpy.get_include()`` are used):
a Cython extension built with meson, the same with setuptools, a plain C (and C++)
shared library loaded with ctypes, and a numba function. Oracle: every draw equals, bit
for bit, ``fastml.sampling`` with the same seed, and the caller's Generator continues
from where the downstream draws stopped.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import numpy as np
import pytest

import fastml
from fastml import sampling as S

N = 20_003  # odd, and long enough that tails and wedges of both ziggurats are hit

# The downstream Cython module: every fill of the header, on Generator.bit_generator.
PYX = """
from cpython.pycapsule cimport PyCapsule_GetPointer
from numpy.random cimport bitgen_t
from fastml.random cimport (
    FASTML_RANDOM_API_VERSION, fastml_gamma_fill, fastml_standard_exponential_fill,
    fastml_standard_exponential_fill_f, fastml_standard_gamma,
    fastml_standard_normal_fill, fastml_standard_normal_fill_f,
    fastml_uniform_open_fill,
)

API_VERSION = FASTML_RANDOM_API_VERSION


cdef bitgen_t *_rng(object bit_generator) except NULL:
    return <bitgen_t *> PyCapsule_GetPointer(bit_generator.capsule, "BitGenerator")


def normal(object bit_generator, double[::1] out):
    cdef bitgen_t *rng = _rng(bit_generator)
    with bit_generator.lock, nogil:
        fastml_standard_normal_fill(rng, out.shape[0], &out[0])


def normal_f(object bit_generator, float[::1] out):
    cdef bitgen_t *rng = _rng(bit_generator)
    with bit_generator.lock, nogil:
        fastml_standard_normal_fill_f(rng, out.shape[0], &out[0])


def exponential(object bit_generator, double[::1] out):
    cdef bitgen_t *rng = _rng(bit_generator)
    with bit_generator.lock, nogil:
        fastml_standard_exponential_fill(rng, out.shape[0], &out[0])


def exponential_f(object bit_generator, float[::1] out):
    cdef bitgen_t *rng = _rng(bit_generator)
    with bit_generator.lock, nogil:
        fastml_standard_exponential_fill_f(rng, out.shape[0], &out[0])


def gamma(object bit_generator, double shape, double scale, double[::1] out):
    cdef bitgen_t *rng = _rng(bit_generator)
    with bit_generator.lock, nogil:
        fastml_gamma_fill(rng, shape, scale, out.shape[0], &out[0])


def standard_gamma(object bit_generator, double shape, double[::1] out):
    cdef bitgen_t *rng = _rng(bit_generator)
    cdef Py_ssize_t i
    with bit_generator.lock, nogil:
        for i in range(out.shape[0]):
            out[i] = fastml_standard_gamma(rng, shape)


def uniform_open(object bit_generator, double[::1] out):
    cdef bitgen_t *rng = _rng(bit_generator)
    with bit_generator.lock, nogil:
        fastml_uniform_open_fill(rng, out.shape[0], &out[0])
"""

# The meson project a downstream package would write (as the README shows).
MESON_BUILD = """
project('fmdown', 'c', 'cython', meson_version: '>=1.4.0')
py = import('python').find_installation(pure: false)
incdir_numpy = run_command(py, ['-c', 'import numpy; print(numpy.get_include())'],
                           check: true).stdout().strip()
incdir_fastml = run_command(py, ['-c', 'import fastml; print(fastml.get_include())'],
                            check: true).stdout().strip()
py.extension_module('fmdown_meson', 'fmdown_meson.pyx',
  include_directories: include_directories(incdir_numpy, incdir_fastml),
  cython_args: ['-I', incdir_fastml])
"""

SETUP_PY = """
import fastml, numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

ext = Extension("fmdown_setuptools", ["fmdown_setuptools.pyx"],
                include_dirs=[numpy.get_include(), fastml.get_include()])
setup(name="fmdown", ext_modules=cythonize([ext], include_path=[fastml.get_include()]))
"""

# Plain C (compiled as C and as C++): thin exported wrappers over the header (prefixed:
# libm declares a gamma()).
C_SOURCE = """
#include "fastml/random.h"

#ifdef __cplusplus
extern "C" {
#endif
int fmdown_api_version(void) { return FASTML_RANDOM_API_VERSION; }
void fmdown_normal(bitgen_t *rng, ptrdiff_t n, double *out) {
    fastml_standard_normal_fill(rng, n, out);
}
void fmdown_normal_f(bitgen_t *rng, ptrdiff_t n, float *out) {
    fastml_standard_normal_fill_f(rng, n, out);
}
void fmdown_exponential(bitgen_t *rng, ptrdiff_t n, double *out) {
    fastml_standard_exponential_fill(rng, n, out);
}
void fmdown_exponential_f(bitgen_t *rng, ptrdiff_t n, float *out) {
    fastml_standard_exponential_fill_f(rng, n, out);
}
void fmdown_gamma(bitgen_t *rng, double shape, double scale, ptrdiff_t n, double *out) {
    fastml_gamma_fill(rng, shape, scale, n, out);
}
void fmdown_uniform_open(bitgen_t *rng, ptrdiff_t n, double *out) {
    fastml_uniform_open_fill(rng, n, out);
}
#ifdef __cplusplus
}
#endif
"""


def _run(cmd, cwd, env=None):
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        pytest.fail(f"{cmd} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")


def _load(name, directory):
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    path = os.path.join(directory, name + suffix)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _needs(*modules):
    for m in modules:
        pytest.importorskip(m, reason=f"downstream build needs {m} (the test extra)")


@pytest.fixture(scope="module")
def meson_ext(tmp_path_factory):
    _needs("mesonbuild", "Cython")
    if shutil.which("ninja") is None and importlib.util.find_spec("ninja") is None:
        pytest.skip("meson needs ninja")
    d = tmp_path_factory.mktemp("meson_downstream")
    (d / "meson.build").write_text(MESON_BUILD)
    (d / "fmdown_meson.pyx").write_text(PYX)
    # the venv's bin first: meson looks for ninja (and cython) on PATH
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    env = {**os.environ, "PATH": path}
    meson = [sys.executable, "-m", "mesonbuild.mesonmain"]
    _run([*meson, "setup", "build"], d, env)
    _run([*meson, "compile", "-C", "build"], d, env)
    return _load("fmdown_meson", d / "build")


@pytest.fixture(scope="module")
def setuptools_ext(tmp_path_factory):
    _needs("setuptools", "Cython")
    d = tmp_path_factory.mktemp("setuptools_downstream")
    (d / "setup.py").write_text(SETUP_PY)
    (d / "fmdown_setuptools.pyx").write_text(PYX)
    _run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], d)
    return _load("fmdown_setuptools", d)


def _compiler(lang):
    names = ["cc", "gcc", "clang"] if lang == "c" else ["c++", "g++", "clang++"]
    for name in names:
        if shutil.which(name):
            return name
    pytest.skip(f"no {lang} compiler on PATH")


class _CLib:
    """A plain C/C++ shared library over the header, called through ctypes."""

    def __init__(self, path):
        self.lib = ctypes.CDLL(str(path))
        self.API_VERSION = self.lib.fmdown_api_version()

    def _fill(self, fn, bit_generator, out, *args):
        f = getattr(self.lib, "fmdown_" + fn)
        ptr = ctypes.c_void_p(out.ctypes.data)
        with bit_generator.lock:
            f(
                bit_generator.ctypes.bit_generator,
                *args,
                ctypes.c_ssize_t(out.size),
                ptr,
            )

    def __getattr__(self, fn):
        if fn == "gamma":
            return lambda bg, shape, scale, out: self._fill(
                "gamma", bg, out, ctypes.c_double(shape), ctypes.c_double(scale)
            )
        return lambda bg, out: self._fill(fn, bg, out)


def _build_c_lib(lang, d):
    if os.name != "posix":
        pytest.skip("the plain C build uses a POSIX cc")
    cc = _compiler(lang)
    src = d / ("fmdown.c" if lang == "c" else "fmdown.cpp")
    src.write_text(C_SOURCE)
    std = "-std=c99" if lang == "c" else "-std=c++11"
    lib = d / "libfmdown.so"
    _run(
        [cc, std, "-O2", "-Wall", "-Werror", "-fPIC", "-shared",
         "-I", np.get_include(), "-I", fastml.get_include(),
         str(src), "-o", str(lib), "-lm"],
        d,
    )  # fmt: skip
    return _CLib(lib)


@pytest.fixture(scope="module")
def c_lib(tmp_path_factory):
    return _build_c_lib("c", tmp_path_factory.mktemp("c_downstream"))


@pytest.fixture(scope="module")
def cxx_lib(tmp_path_factory):
    return _build_c_lib("c++", tmp_path_factory.mktemp("cxx_downstream"))


@pytest.fixture(params=["meson", "setuptools", "c", "c++"])
def downstream(request):
    fixtures = {"meson": "meson_ext", "setuptools": "setuptools_ext", "c": "c_lib"}
    return request.getfixturevalue(fixtures.get(request.param, "cxx_lib"))


def test_get_include_is_the_installed_package():
    inc = fastml.get_include()
    assert os.path.dirname(inc) == os.path.dirname(os.path.abspath(fastml.__file__))
    for f in ("random.h", "ziggurat_tables.h", "random.pxd"):
        assert os.path.isfile(os.path.join(inc, "fastml", f)), f


def test_api_version_matches(downstream):
    # the header version the module was compiled with is the installed fastml's
    assert downstream.API_VERSION == S.C_API_VERSION >= 1


# (downstream fill, dtype, the fastml.sampling call that must give the same bits)
CASES = {
    "normal": (np.float64, lambda seed: S.standard_normal(N, random_state=seed)),
    "normal_f": (
        np.float32,
        lambda seed: S.standard_normal(N, dtype=np.float32, random_state=seed),
    ),
    "exponential": (np.float64, lambda seed: S.standard_exponential(N, random_state=seed)),
    "exponential_f": (
        np.float32,
        lambda seed: S.standard_exponential(N, dtype=np.float32, random_state=seed),
    ),
    "uniform_open": (np.float64, lambda seed: S.inverse_cdf(lambda u: u, N, random_state=seed)),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(CASES))
def test_fill_equals_fastml_sampling(downstream, kind):
    dtype, reference = CASES[kind]
    g = np.random.default_rng(2024)
    out = np.empty(N, dtype=dtype)
    getattr(downstream, kind)(g.bit_generator, out)
    assert out.tobytes() == reference(2024).tobytes()  # same seed: same bits
    # the Generator moved on by exactly what was drawn: the next fastml draws continue
    # the stream of one fastml call of twice the length
    nxt = reference(g)
    whole = np.random.default_rng(2024)
    reference(whole)
    assert nxt.tobytes() == reference(whole).tobytes()


@pytest.mark.parametrize(("shape", "scale"), [(0.3, 2.0), (1.0, 1.0), (7.5, 0.5)])
def test_gamma_equals_fastml_sampling(downstream, shape, scale):
    g = np.random.default_rng(7)
    out = np.empty(N)
    downstream.gamma(g.bit_generator, shape, scale, out)
    ref = S.gamma(shape, scale, N, random_state=7)
    assert out.tobytes() == ref.tobytes()


def test_standard_gamma_scalar_equals_fill(meson_ext):
    # one fastml_standard_gamma call per value = gamma(shape, 1.0) of fastml.sampling
    for shape in (0.2, 3.0):
        out = np.empty(5000)
        meson_ext.standard_gamma(np.random.default_rng(3).bit_generator, shape, out)
        assert out.tobytes() == S.gamma(shape, 1.0, 5000, random_state=3).tobytes()


def test_ctypes_functions_equal_fastml_sampling():
    f = S.ctypes_functions()
    bg = np.random.default_rng(11).bit_generator
    with bg.lock:
        x = np.array(
            [f["standard_normal"](bg.ctypes.bit_generator) for _ in range(2000)]
        )
        xf = np.array(
            [f["standard_normal_f"](bg.ctypes.bit_generator) for _ in range(2000)],
            dtype=np.float32,
        )
        e = np.array(
            [f["standard_exponential"](bg.ctypes.bit_generator) for _ in range(2000)]
        )
        ga = np.array(
            [f["standard_gamma"](bg.ctypes.bit_generator, 0.7) for _ in range(2000)]
        )
    ref = np.random.default_rng(11)
    assert x.tobytes() == S.standard_normal(2000, random_state=ref).tobytes()
    assert (
        xf.tobytes()
        == S.standard_normal(2000, dtype=np.float32, random_state=ref).tobytes()
    )
    assert e.tobytes() == S.standard_exponential(2000, random_state=ref).tobytes()
    assert ga.tobytes() == S.gamma(0.7, 1.0, 2000, random_state=ref).tobytes()


def test_numba_calls_the_c_api():
    numba = pytest.importorskip("numba")
    f = S.ctypes_functions()
    normal, expo, gamma = (
        f["standard_normal"],
        f["standard_exponential"],
        f["standard_gamma"],
    )

    @numba.njit
    def draw(addr, n, shape):  # the README's example
        out = np.empty((3, n))
        for i in range(n):
            out[0, i] = normal(addr)
        for i in range(n):
            out[1, i] = expo(addr)
        for i in range(n):
            out[2, i] = gamma(addr, shape)
        return out

    g = np.random.default_rng(5)
    with g.bit_generator.lock:
        out = draw(g.bit_generator.ctypes.bit_generator.value, 3000, 2.5)
    ref = np.random.default_rng(5)
    assert out[0].tobytes() == S.standard_normal(3000, random_state=ref).tobytes()
    assert out[1].tobytes() == S.standard_exponential(3000, random_state=ref).tobytes()
    assert out[2].tobytes() == S.gamma(2.5, 1.0, 3000, random_state=ref).tobytes()
    assert g.random() == ref.random()  # the Generator advanced exactly as far


def test_ctypes_functions_reject_a_wrong_signature(monkeypatch):
    # a compiled module exporting another signature (mixed installs) is refused clearly
    from fastml.sampling import _c_api

    capi = dict(_c_api._random_api.__pyx_capi__)
    capi["standard_normal"] = capi["standard_gamma"]  # "double (bitgen_t *, double)"
    monkeypatch.setattr(_c_api._random_api, "__pyx_capi__", capi)
    _c_api.ctypes_functions.cache_clear()
    try:
        with pytest.raises(RuntimeError, match=r"expected 'double \(bitgen_t \*\)'"):
            _c_api.ctypes_functions()
    finally:
        _c_api.ctypes_functions.cache_clear()


def test_header_compiles_without_python_headers(tmp_path):
    # the header needs only numpy's bitgen.h: an executable with no Python at all,
    # driving the ziggurat with a hand-written bitgen_t (a splitmix64 counter)
    if os.name != "posix":
        pytest.skip("POSIX cc")
    cc = _compiler("c")
    src = tmp_path / "main.c"
    src.write_text(
        textwrap.dedent(
            """
            #include <stdio.h>
            #include "fastml/random.h"
            static uint64_t sm(void *st) {
                uint64_t z = (*(uint64_t *)st += 0x9E3779B97F4A7C15ULL);
                z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
                z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
                return z ^ (z >> 31);
            }
            static uint32_t sm32(void *st) { return (uint32_t)(sm(st) >> 32); }
            static double smd(void *st) { return (sm(st) >> 11) * (1.0 / 9007199254740992.0); }
            int main(void) {
                uint64_t s = 42;
                bitgen_t rng = {&s, sm, sm32, smd, sm};
                double m = 0.0, v = 0.0, x;
                int i, n = 1000000;
                for (i = 0; i < n; i++) { x = fastml_standard_normal(&rng); m += x; v += x * x; }
                printf("%.6f %.6f\\n", m / n, v / n);
                return 0;
            }
            """
        )
    )
    _run([cc, "-std=c99", "-O2", "-I", np.get_include(), "-I", fastml.get_include(),
          str(src), "-o", str(tmp_path / "main"), "-lm"], tmp_path)  # fmt: skip
    res = subprocess.run(
        [str(tmp_path / "main")], capture_output=True, text=True, check=True
    )
    mean, second = map(float, res.stdout.split())
    # 1e6 N(0,1) draws: mean has sd 1e-3, the second moment sd sqrt(2)e-3; 5 sd bounds
    # (false-alarm rate < 1e-6)
    assert abs(mean) < 5e-3 and abs(second - 1) < 7.1e-3
