/* fnv.h — FNV-1a, 64 bits: the fingerprints that tell whether a snapshot was
 * written with the same configuration and inputs. A fingerprint, not a
 * defence against anyone. */
#ifndef REGSTREAM_FNV_H
#define REGSTREAM_FNV_H

#include <stddef.h>
#include <stdint.h>

#define FNV1A64_INIT 0xcbf29ce484222325ull

static inline uint64_t fnv1a64(uint64_t h, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

#endif
