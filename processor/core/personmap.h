/* personmap.h — person_id -> person_state, one map per shard: two
 * open-addressing tables behind one API (upsert, find, prefetch, a walk
 * over every person, a bulk copy for snapshots).
 *
 * The compact table holds the ids 1..UINT32_MAX — Danish CPR numbers
 * (DDMMYYSSSS <= 3112999999) and the generator's national and kib ids — in
 * 16-byte slots {u32 id, 12-byte state}: four to a cache line, never across
 * two. The wide table holds every other id (above UINT32_MAX; and negative
 * ones, which validation never lets through but the map keeps exactly, as
 * any id but 0) in 20-byte slots {the int64 id as 8 bytes, 12-byte state}.
 * Which table an id lives in is one branch on its width (personmap_narrow),
 * as predictable as the ids are alike. Each table is linear probing over a
 * power-of-two capacity, grown at 3/4 load; id 0 marks an empty slot.
 *
 * A person costs 16 / load bytes in the compact table: 21.3-42.7, and 22.4
 * at 6 M persons (2^23 slots, 71.5 % full); 20 / load in the wide one. A
 * lookup is usually one cache line. The caller hashes once (personmap_hash)
 * and uses the hash both to pick the shard (high bits) and to probe (low
 * bits), and can prefetch a slot ahead. Callers get states, never slots:
 * they walk the persons with personmap_next and copy them out with
 * personmap_export. */
#ifndef REGSTREAM_PERSONMAP_H
#define REGSTREAM_PERSONMAP_H

#include <stddef.h>
#include <stdint.h>

#include "core/rules.h"

/* A slot of the compact table. */
typedef struct person_slot {
  uint32_t person_id; /* 1..UINT32_MAX; 0: empty */
  person_state state;
} person_slot;

/* A slot of the wide table: the id as bytes (personmap.c memcpys it), so
 * that the slot is 4-byte aligned and 20 bytes, not 24. */
typedef struct person_wide_slot {
  unsigned char person_id[8]; /* an int64 id outside 1..UINT32_MAX; 0: empty */
  person_state state;
} person_wide_slot;

_Static_assert(sizeof(person_slot) == 16, "a compact slot is 16 bytes");
_Static_assert(sizeof(person_wide_slot) == 20, "a wide slot is 20 bytes");

typedef struct personmap {
  person_slot *slots;     /* the compact table */
  size_t mask;            /* its capacity - 1 */
  person_wide_slot *wide; /* the wide table */
  size_t wide_mask;       /* its capacity - 1 */
  size_t count;           /* persons stored, in both tables */
  size_t wide_count;      /* of them in the wide table */
} personmap;

/* A person as personmap_export copies it out. */
typedef struct person_entry {
  int64_t person_id;
  person_state state;
} person_entry;

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

/* 1 when person_id lives in the compact table. */
static inline int personmap_narrow(int64_t person_id) {
  return (uint64_t)person_id <= UINT32_MAX;
}

/* 0, or -1 when memory is short. narrow and wide are sizing hints: the
 * persons expected in each table (0 = small). */
int personmap_init(personmap *m, size_t narrow, size_t wide);
/* Frees the tables; the map is left zeroed (free again: nothing happens). */
void personmap_free(personmap *m);

/* How many records (messages) ahead of its use a caller prefetches a
 * person's slot: file mode, Kafka mode and bench-floor alike. 16, not 8:
 * the national year 0.92x the wall time with 1 file-mode worker and 0.88x
 * with 2 (farm-bench, 8 pairs each); 32 no better. */
enum { PERSONMAP_PREFETCH_AHEAD = 16 };

/* Bring the home slot of person_id (whose hash is hash) into the cache, and
 * the line after it (a probe often goes on past its home's line at 3/4
 * load: prefetching that line too made the national year 0.85x the time,
 * farm-bench): of the table it lives in, picked without a branch. Into the
 * first-level cache (locality 3; 1, the second level only, was 1.05-1.06x
 * the wall time of a national year with 1 and 2 workers, farm-bench). Inlined
 * by force: as a function of its own GCC finds it free of effects (a
 * prefetch only) and drops the calls, prefetches and all. */
static inline __attribute__((always_inline)) void
personmap_prefetch(const personmap *m, int64_t person_id, uint64_t hash) {
  const void *home = personmap_narrow(person_id) ? (const void *)&m->slots[hash & m->mask]
                                                 : (const void *)&m->wide[hash & m->wide_mask];
  const void *next = personmap_narrow(person_id)
                         ? (const void *)&m->slots[(hash + 4) & m->mask]
                         : (const void *)&m->wide[(hash + 4) & m->wide_mask];
  __builtin_prefetch(home, 1, 3);
  __builtin_prefetch(next, 1, 3);
}

/* The state of person_id (not 0); with *created set when it was not there
 * (its state is then zeroed). NULL only when a table had to grow and memory
 * was short. The pointer is good until the next upsert. */
person_state *personmap_upsert(personmap *m, int64_t person_id, uint64_t hash, int *created);

/* The state of person_id, or NULL. */
person_state *personmap_find(const personmap *m, int64_t person_id, uint64_t hash);

/* The persons one by one, each once, in table order; NULL after the last.
 *   int64_t id;
 *   person_state *st;
 *   for (size_t at = 0; (st = personmap_next(m, &at, &id));) ...
 * No upsert during the walk. */
person_state *personmap_next(const personmap *m, size_t *at, int64_t *person_id);

/* Copy the persons, in table order, into out, which has room for max + 1
 * (branch-free: every slot is stored, and only a person advances, so the
 * last store may land one past the last person). Copies at most max + 1;
 * returns how many it copied: m->count for a sound map and max = m->count. */
size_t personmap_export(const personmap *m, person_entry *out, size_t max);

/* Bytes the map holds (both tables' slots), for reports. */
size_t personmap_bytes(const personmap *m);

#endif
