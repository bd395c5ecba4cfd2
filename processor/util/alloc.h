/* alloc.h — zeroed arrays of over-aligned types (structs that keep a cache
 * line of their own, which calloc does not promise to align). Pure,
 * header-only; freed with free(). */
#ifndef REGSTREAM_UTIL_ALLOC_H
#define REGSTREAM_UTIL_ALLOC_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* n zeroed elements of size bytes aligned to align (a power of two that
 * divides size, as alignof of the element type does), or NULL. */
static inline void *calloc_aligned(size_t align, size_t n, size_t size) {
  if (size && n > SIZE_MAX / size)
    return NULL;
  void *p = aligned_alloc(align, n * size);
  if (p)
    memset(p, 0, n * size);
  return p;
}

#endif
