# Cython declarations of fastml/random.h: fastml's samplers on numpy's bitgen_t.
#
#     from fastml.random cimport fastml_standard_normal
#
# Needs fastml.get_include() on Cython's include path (cython -I, or meson's
# include_directories) and numpy.get_include() plus fastml.get_include() on the C
# compiler's. The functions are inline C: nothing to link, nothing imported at run time.
# Hold bit_generator.lock while drawing (see the header for the stability rules).
from numpy.random cimport bitgen_t


cdef extern from "fastml/random.h" nogil:
    enum: FASTML_RANDOM_API_VERSION

    double fastml_next_double(bitgen_t *rng)
    double fastml_open_double(bitgen_t *rng)
    float fastml_next_float(bitgen_t *rng)
    float fastml_open_float(bitgen_t *rng)

    double fastml_standard_normal(bitgen_t *rng)
    float fastml_standard_normal_f(bitgen_t *rng)
    double fastml_standard_exponential(bitgen_t *rng)
    float fastml_standard_exponential_f(bitgen_t *rng)
    double fastml_gamma_mt(bitgen_t *rng, double d, double c)
    double fastml_standard_gamma(bitgen_t *rng, double shape)

    void fastml_standard_normal_fill(bitgen_t *rng, Py_ssize_t n, double *out)
    void fastml_standard_normal_fill_f(bitgen_t *rng, Py_ssize_t n, float *out)
    void fastml_standard_exponential_fill(bitgen_t *rng, Py_ssize_t n, double *out)
    void fastml_standard_exponential_fill_f(bitgen_t *rng, Py_ssize_t n, float *out)
    void fastml_gamma_fill(bitgen_t *rng, double shape, double scale, Py_ssize_t n,
                           double *out)
    void fastml_uniform_open_fill(bitgen_t *rng, Py_ssize_t n, double *out)
