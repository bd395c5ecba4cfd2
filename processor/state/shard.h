/* shard.h — one worker's share of the persons: their states, the rollup
 * counters they produce, and counts of what happened. Owned by exactly one
 * thread at a time, so nothing in it is locked. Persons are assigned to
 * shards by personmap_shard(personmap_hash(id), shards). */
#ifndef REGSTREAM_SHARD_H
#define REGSTREAM_SHARD_H

#include <stdalign.h>
#include <stdint.h>

#include "core/personmap.h"
#include "core/rollup.h"
#include "core/rules.h"

/* Aligned to a cache line and a whole number of lines long: the shards of
 * file mode lie side by side in one array, each written on every record by
 * its own worker (the counters below, counts.touched) and read on every
 * record (persons), and must not share a line with a neighbour's. Heap
 * copies come from calloc_aligned (util/alloc.h). */
typedef struct shard {
  alignas(64) const rules_config *rules;
  personmap persons;
  rollup counts;
  uint64_t applied, corrected, late;
} shard;

/* 0, or -1 when memory is short. expected_persons: a sizing hint, the
 * persons expected with ids of 32 bits (personmap_init). */
int shard_init(shard *s, const rules_config *rules, size_t expected_persons);
void shard_free(shard *s);

/* Apply one validated record whose hash is personmap_hash(rec->person_id).
 * Returns a rules_result, or -1 when memory is short. */
int shard_apply(shard *s, const pm_record *rec, uint64_t hash);

#endif
