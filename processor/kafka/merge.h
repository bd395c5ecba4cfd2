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

/* Forget everything: with the eager protocol, on every change of
 * assignment the state is rebuilt from the compacted partials (the
 * republished totals carry equal values). */
void merge_reset(merge_state *ms);
/* Partials partition q (0 .. MERGE_MAX_PARTIALS - 1) is held now, to be
 * caught up (below); one held already stays as it is. */
void merge_own(merge_state *ms, int32_t q);
/* Partials partition q was revoked (the cooperative protocol): its partial
 * rows, marks and catch-up are dropped, the other partitions' kept as they
 * are. A row all of whose partials came from q is gone (its new holder
 * publishes it); one with partials read from other partitions too (only
 * after the topic's partition count changed) is to be published again. */
void merge_forget(merge_state *ms, int32_t q);
int merge_owns(const merge_state *ms, int32_t q);
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
/* Sum the partials of every row changed since the last publication (and
 * not waiting for a partition held but not caught up) and emit those whose
 * total differs from what was last emitted. Returns the rows emitted. */
uint64_t merge_publish(merge_state *ms, merge_emit emit, void *ctx);

/* Catching up, per partition held: a row of partials partition q goes out
 * only once q has been read up to where it ended when it was assigned
 * (before, a re-read row could be summed from some of its sources only);
 * rows of the partitions caught up go on being published meanwhile
 * (merge_publish leaves the others dirty). merge_untargeted and
 * merge_behind list the held partitions without their end and not caught
 * up yet; merge_set_targets records those ends (ends[i] of held parts[i],
 * once per assignment of it); merge_check_caught_up compares positions[i]
 * (the next offset to read, or -1 unknown) of parts[i] (a target of 0 needs
 * none), remembers a yes per partition until it is revoked or reset, and
 * returns merge_caught_up: an assignment was received and every partition
 * held is caught up (none held counts). */
int merge_untargeted(const merge_state *ms, int32_t parts[MERGE_MAX_PARTIALS]);
/* Partition q is held and caught up. */
int merge_partition_caught_up(const merge_state *ms, int32_t q);
int merge_behind(const merge_state *ms, int32_t parts[MERGE_MAX_PARTIALS]);
void merge_set_targets(merge_state *ms, int n, const int32_t *parts, const int64_t *ends);
int merge_check_caught_up(merge_state *ms, int n, const int32_t *parts, const int64_t *positions);
int merge_caught_up(const merge_state *ms);

#endif
