/* merge.h — the merge stage's state, pure: the latest partial row of every
 * (row, input partition) read from the partials partitions it holds, the
 * progress marks read there, and the totals last published. Fed plain
 * (partition, key, value) values; what it publishes goes out through a
 * callback. The librdkafka side (the consumer, its rebalances, log ends and
 * positions) is kafka/merger.c; what --exit-at-eof waits for is
 * kafka/settle.c.
 *
 * Thread: one merger thread owns a merge_state; nothing in it is locked. */
#ifndef REGSTREAM_KAFKA_MERGE_H
#define REGSTREAM_KAFKA_MERGE_H

#include <stddef.h>
#include <stdint.h>

#include "kafka/wire.h"

enum { MERGE_MAX_PARTIALS = 256 }; /* partitions of the partials topic a merger can hold */

typedef struct merge_state merge_state;

/* fingerprint: this run's configuration; marks of another count as none.
 * NULL when memory is short. */
merge_state *merge_new(uint64_t fingerprint);
void merge_free(merge_state *ms);

/* Forget everything: on every change of assignment the state is rebuilt
 * from the compacted partials (the republished totals carry equal values). */
void merge_reset(merge_state *ms);
/* Partials partition q (0 .. MERGE_MAX_PARTIALS - 1) is held now. */
void merge_own(merge_state *ms, int32_t q);
/* An assignment was received (merge_reset clears it). */
void merge_set_assigned(merge_state *ms);
int merge_assigned(const merge_state *ms);
/* The partials partitions held, ascending, into parts; their count. */
int merge_owned(const merge_state *ms, int32_t parts[MERGE_MAX_PARTIALS]);

typedef enum {
  MERGE_MALFORMED = -1, /* key or value does not parse, or memory is short */
  MERGE_PARTIAL = 0,    /* a partial row, kept */
  MERGE_MARK = 1,       /* a progress mark of this configuration */
  MERGE_FOREIGN = 2,    /* a mark of another configuration: counts as none */
} merge_kind;

/* Apply one message read from partials partition q. A partial read after
 * the last mark of its input partition voids that mark (its publisher's
 * next mark covers it). */
merge_kind merge_apply(merge_state *ms, int32_t q, const void *key, size_t klen, const void *value,
                       size_t vlen);

/* The offset of input partition p that the last thing read of it in
 * partials partition q covers: a mark's offset, or -1 (none, a foreign mark,
 * or a partial after the mark). */
int64_t merge_mark(const merge_state *ms, int32_t q, int32_t p);

/* A total row to publish: key "PERIOD,MUNICIPALITY,VISITATION"; value a
 * Rollup row, or NULL with vlen 0 for a row without members (a tombstone:
 * no zero rows for BI). A failure to send is the callback's to report. */
typedef void (*merge_emit)(void *ctx, const char *key, size_t klen, const uint8_t *value,
                           size_t vlen);
/* Sum the partials of every row changed since the last publication and
 * emit those whose total differs from what was last emitted. Returns the
 * rows emitted. */
uint64_t merge_publish(merge_state *ms, merge_emit emit, void *ctx);

/* Catching up after an assignment: totals go out only once the held
 * partitions have been read up to where they ended when assigned (before,
 * a re-read row could be summed from some of its sources only).
 * merge_set_targets records those ends (ends[i] of parts[i]);
 * merge_check_caught_up compares positions[i] (the next offset to read, or
 * -1 unknown) of parts[i] and remembers a yes until the next reset. */
int merge_has_targets(const merge_state *ms);
void merge_set_targets(merge_state *ms, int n, const int32_t *parts, const int64_t *ends);
int merge_check_caught_up(merge_state *ms, int n, const int32_t *parts, const int64_t *positions);
int merge_caught_up(const merge_state *ms);

#endif
