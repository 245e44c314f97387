# Shared kernel types: the floating dtypes a kernel is compiled for, and the index type.

ctypedef fused real:
    float
    double

ctypedef Py_ssize_t idx_t
