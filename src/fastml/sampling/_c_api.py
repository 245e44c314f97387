"""fastml's C samplers as ctypes functions, for numba, cffi and ctypes callers.

The compiled module :mod:`fastml._kernels._random_api` exports the inline functions of
``fastml/random.h`` through ``__pyx_capi__`` (one PyCapsule per function, named by its C
signature). :func:`ctypes_functions` checks those names and wraps the addresses.
"""

from __future__ import annotations

import ctypes
import functools

from fastml._kernels import _random_api

__all__ = ["C_API_VERSION", "ctypes_functions"]

#: ``FASTML_RANDOM_API_VERSION`` of the ``fastml/random.h`` this fastml was built with.
C_API_VERSION: int = _random_api.API_VERSION

_VOIDP = ctypes.c_void_p
# name: (C signature = capsule name, ctypes restype, ctypes argtypes)
_SIGNATURES = {
    "standard_normal": ("double (bitgen_t *)", ctypes.c_double, (_VOIDP,)),
    "standard_normal_f": ("float (bitgen_t *)", ctypes.c_float, (_VOIDP,)),
    "standard_exponential": ("double (bitgen_t *)", ctypes.c_double, (_VOIDP,)),
    "standard_exponential_f": ("float (bitgen_t *)", ctypes.c_float, (_VOIDP,)),
    "standard_gamma": (
        "double (bitgen_t *, double)",
        ctypes.c_double,
        (_VOIDP, ctypes.c_double),
    ),
    "open_double": ("double (bitgen_t *)", ctypes.c_double, (_VOIDP,)),
}


def _capsule_address(capsule: object, signature: str) -> int:
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype = ctypes.c_char_p
    get_name.argtypes = [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    name = get_name(capsule)
    if name != signature.encode():
        raise RuntimeError(
            f"fastml._kernels._random_api exports {name!r}, expected {signature!r}: "
            "the compiled module does not match this fastml's Python files; reinstall fastml"
        )
    return get_pointer(capsule, name)


@functools.cache
def ctypes_functions() -> dict[str, ctypes._CFuncPtr]:
    """The C samplers of ``fastml/random.h`` as ctypes functions.

    Each takes the address of a numpy BitGenerator's ``bitgen_t``
    (``bit_generator.ctypes.bit_generator``, or ``.value`` of it as an int) and
    returns one draw, the same bits as :mod:`fastml.sampling` gives for that state.
    numba calls them in nopython mode; cffi users can ``ffi.cast`` their addresses.

    Returns
    -------
    dict of str to ctypes function
        ``standard_normal``, ``standard_exponential`` (float64, ziggurat),
        ``standard_normal_f``, ``standard_exponential_f`` (float32 paths),
        ``standard_gamma`` (second argument: the shape, > 0) and ``open_double``
        (uniform on (0, 1)).

    Raises
    ------
    RuntimeError
        If the compiled module exports other signatures (a broken install that mixes
        fastml versions).

    Notes
    -----
    Hold ``bit_generator.lock`` around the calls when other threads may draw from the
    same bit generator. The functions do not check their argument: a pointer to
    anything but a live ``bitgen_t`` crashes the process. :data:`C_API_VERSION` is the
    version of the C header these functions were compiled from.

    Examples
    --------
    >>> import numpy as np
    >>> from fastml.sampling import ctypes_functions, standard_normal
    >>> normal = ctypes_functions()["standard_normal"]
    >>> bg = np.random.PCG64(7)
    >>> x = [normal(bg.ctypes.bit_generator) for _ in range(3)]
    >>> bool((np.array(x) == standard_normal(3, random_state=7)).all())
    True
    """
    capi = _random_api.__pyx_capi__
    out = {}
    for name, (signature, restype, argtypes) in _SIGNATURES.items():
        address = _capsule_address(capi[name], signature)
        out[name] = ctypes.CFUNCTYPE(restype, *argtypes)(address)
    return out
