/* personmap.h — person_id -> person_state, one map per shard.
 *
 * Open addressing with linear probing over 24-byte slots (id + 12-byte state
 * + 4 bytes of padding),
 * power-of-two capacity, grown at 3/4 load, so a person costs 24-48 bytes and
 * a lookup is usually one cache line. Ids are > 0; 0 marks an empty slot. The
 * caller hashes once (personmap_hash) and uses the hash both to pick the
 * shard (high bits) and to probe (low bits), and can prefetch a slot ahead. */
#ifndef REGSTREAM_PERSONMAP_H
#define REGSTREAM_PERSONMAP_H

#include <stddef.h>
#include <stdint.h>

#include "core/rules.h"

typedef struct person_slot {
  int64_t person_id;
  person_state state;
} person_slot;

_Static_assert(sizeof(person_slot) == 24, "a person costs 24 bytes per slot");

typedef struct personmap {
  person_slot *slots;
  size_t mask;  /* capacity - 1 */
  size_t count; /* persons stored */
} personmap;

/* A well-mixed 64-bit hash of a person id (splitmix64 finaliser). */
static inline uint64_t personmap_hash(int64_t person_id) {
  uint64_t x = (uint64_t)person_id;
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

/* Shard of a hash among n shards, from its high bits. */
static inline unsigned personmap_shard(uint64_t hash, unsigned n) {
  return (unsigned)(((hash >> 32) * (uint64_t)n) >> 32);
}

/* 0, or -1 when memory is short. expected is a sizing hint (0 = small). */
int personmap_init(personmap *m, size_t expected);
void personmap_free(personmap *m);

static inline void personmap_prefetch(const personmap *m, uint64_t hash) {
  __builtin_prefetch(&m->slots[hash & m->mask], 1, 1);
}

/* The slot of person_id; with *created set when it was not there (its state
 * is then zeroed). NULL only when the map had to grow and memory was short. */
person_slot *personmap_upsert(personmap *m, int64_t person_id, uint64_t hash, int *created);

/* The slot of person_id, or NULL. */
person_slot *personmap_find(const personmap *m, int64_t person_id, uint64_t hash);

/* Bytes the map holds (slots), for reports. */
size_t personmap_bytes(const personmap *m);

#endif
