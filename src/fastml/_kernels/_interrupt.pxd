# Ctrl-C in long GIL-free loops (STYLE.md sec. 7b): the one mechanism every kernel uses.
#
# A kernel keeps a work budget (``idx_t left = POLL_WORK``) and calls
# ``poll(&left, work, cancel)`` once per unit of its outer loop, ``work`` being a rough
# cost of that unit in nanoseconds (about one per flop or per random draw). When the
# budget is spent (every ~4 ms of work, far below the 0.1 s of STYLE.md even if a cost
# is underestimated ten times), the kernel takes the GIL and runs Python's pending
# signal handlers: a Ctrl-C there raises KeyboardInterrupt, ``poll`` returns -1 and the
# kernel propagates it (``except -1``), leaving its outputs partly written. Python runs
# signal handlers only in the main thread, so a kernel running in a worker thread also
# watches ``cancel`` (a byte another thread sets to nonzero, or NULL for none): it is
# read with the GIL held, which orders it after the setter's write.
from cpython.exc cimport PyErr_CheckSignals

from fastml._kernels._types cimport idx_t


cdef enum:
    POLL_WORK = 1 << 22


cdef inline int _check(const unsigned char *cancel) except -1 nogil:
    with gil:
        PyErr_CheckSignals()
        if cancel != NULL and cancel[0] != 0:
            raise KeyboardInterrupt("cancelled: another thread was interrupted")
    return 0


cdef inline int poll(idx_t *left, idx_t work, const unsigned char *cancel) except -1 nogil:
    """Charge ``work`` to the budget ``left``; when spent, check for Ctrl-C (-1: raised)."""
    left[0] -= work
    if left[0] > 0:
        return 0
    left[0] = POLL_WORK
    return _check(cancel)
