/* Software prefetch (fastml._kernels._lda): ask for the cache line holding p ahead of
 * its use. A hint only: it never faults and does not change any result. GCC and Clang
 * builtin, SSE on MSVC x86, nothing elsewhere. */
#ifndef FASTML_PREFETCH_H
#define FASTML_PREFETCH_H

#if defined(__GNUC__) || defined(__clang__)
#define fastml_prefetch(p) __builtin_prefetch((const void *)(p), 0, 3)
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <xmmintrin.h>
#define fastml_prefetch(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#else
#define fastml_prefetch(p) ((void)(p))
#endif

#endif
