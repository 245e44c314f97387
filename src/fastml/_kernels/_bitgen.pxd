# Access to the bitgen_t behind a numpy BitGenerator (shared/NUMPY_RANDOM_CAPI.md, sec. 3).
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid
from numpy.random cimport bitgen_t


cdef inline bitgen_t *get_bitgen(object bit_generator) except NULL:
    """Return the ``bitgen_t *`` of ``bit_generator`` (a ``Generator.bit_generator``).

    The pointer lives inside ``bit_generator``: the caller keeps that object referenced
    and holds ``bit_generator.lock`` while drawing.
    """
    capsule = bit_generator.capsule
    if not PyCapsule_IsValid(capsule, b"BitGenerator"):
        raise TypeError("expected a numpy BitGenerator (Generator.bit_generator)")
    return <bitgen_t *> PyCapsule_GetPointer(capsule, b"BitGenerator")
