/* settle.h — when a reprocessing run (--exit-at-eof) is done, pure. Owns the
 * ends of the input partitions (taken once this instance is at the end of
 * its own) and what the merger still waits for. The merger is settled when
 * it holds a partials partition and, in every one it holds, the last thing
 * read of every input partition P is a mark of this configuration at or
 * past P's end: the partials it holds are then those of the whole input
 * under these rules, whichever instances published them, and so are its
 * totals.
 *
 * Threads: the poll thread sets the ends (settle_set_ends) and reads
 * settle_waiting_for and settle_done; the merger thread runs settle_check
 * and settle_finish. The fields shared between them are atomics. */
#ifndef REGSTREAM_KAFKA_SETTLE_H
#define REGSTREAM_KAFKA_SETTLE_H

#include <stdatomic.h>
#include <stdint.h>

#include "kafka/merge.h"

/* What a reprocessing instance at the end of its partitions waits for, when
 * not an input partition (settle_waiting_for). */
enum { SETTLE_WAITING_NOTHING = -1, SETTLE_WAITING_MERGE = -2, SETTLE_WAITING_PARTIALS = -3 };

typedef struct settle {
  int input_partitions;                /* written before ends_known is set */
  int64_t input_ends[WIRE_MAX_INPUTS]; /* likewise */
  atomic_int ends_known, settled;
  atomic_int waiting_for; /* an input partition not yet settled, or SETTLE_WAITING_* */
} settle;

void settle_init(settle *s);
/* The ends of input partitions 0 .. n-1 (n at most WIRE_MAX_INPUTS). */
void settle_set_ends(settle *s, int n, const int64_t *ends);
int settle_ends_known(const settle *s);

/* Whether merger ms (caught up with its partitions: merge_caught_up) is
 * settled; updates what it waits for. 0 while the ends are unknown. */
int settle_check(settle *s, const merge_state *ms);
/* The merger published its settled totals: stage 1 may stop. */
void settle_finish(settle *s);
int settle_done(const settle *s);
int settle_waiting_for(const settle *s);

#endif
