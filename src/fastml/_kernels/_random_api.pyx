"""fastml/random.h's samplers as exported C functions, for callers without a compiler.

Each ``cdef api`` function below is in this module's ``__pyx_capi__``: a PyCapsule
holding its address, named by its C signature. ``fastml.sampling.ctypes_functions``
turns them into ctypes functions that numba (nopython mode), cffi or plain ctypes call
with the address of a numpy BitGenerator's ``bitgen_t``
(``bit_generator.ctypes.bit_generator``). Each is the header's inline function, so the
bits equal ``fastml.sampling``'s for the same state.
"""
from numpy.random cimport bitgen_t

from fastml.random cimport (
    FASTML_RANDOM_API_VERSION, fastml_open_double, fastml_standard_exponential,
    fastml_standard_exponential_f, fastml_standard_gamma, fastml_standard_normal,
    fastml_standard_normal_f,
)

API_VERSION = FASTML_RANDOM_API_VERSION


cdef api double standard_normal(bitgen_t *rng) noexcept nogil:
    return fastml_standard_normal(rng)


cdef api float standard_normal_f(bitgen_t *rng) noexcept nogil:
    return fastml_standard_normal_f(rng)


cdef api double standard_exponential(bitgen_t *rng) noexcept nogil:
    return fastml_standard_exponential(rng)


cdef api float standard_exponential_f(bitgen_t *rng) noexcept nogil:
    return fastml_standard_exponential_f(rng)


cdef api double standard_gamma(bitgen_t *rng, double shape) noexcept nogil:
    return fastml_standard_gamma(rng, shape)


cdef api double open_double(bitgen_t *rng) noexcept nogil:
    return fastml_open_double(rng)
