/* Software prefetch hints for kernels whose access pattern has more concurrent
 * streams than the hardware prefetchers track (e.g. the grid BP sweep). A hint only:
 * it never faults and compiles to nothing where the compiler offers no intrinsic. */
#ifndef FASTML_PREFETCH_H
#define FASTML_PREFETCH_H

#if defined(__GNUC__) || defined(__clang__)
#define fastml_prefetch_read(p) __builtin_prefetch((p), 0, 3)
#define fastml_prefetch_write(p) __builtin_prefetch((p), 1, 3)
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <xmmintrin.h>
#define fastml_prefetch_read(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#define fastml_prefetch_write(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#else
#define fastml_prefetch_read(p) ((void)(p))
#define fastml_prefetch_write(p) ((void)(p))
#endif

#endif
