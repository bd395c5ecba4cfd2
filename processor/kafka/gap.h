/* gap.h — whether a message or an end-of-partition event of an input
 * partition follows what its shard applied, or comes after messages that
 * were not delivered (read the partition again), pure. The worker
 * (kafka/worker.c) asks it for every message and end-of-partition event;
 * unit-tested without a broker (tests/test_app_kafka_gap.c).
 *
 * Why messages go missing: librdkafka 2.0's batch consume
 * (rd_kafka_consume_batch_queue) moves a partition's application position
 * past the messages it takes from the queue before it returns them; when a
 * version barrier of that partition comes in the same call (a cooperative
 * rebalance pauses and resumes every partition of the assignment, the kept
 * ones too), it drops them from the batch, and the partition fetches on
 * from that position: they are never delivered. What comes next is the
 * message after them or, when they were the last of the log, the
 * end-of-partition event (reported anew after the barrier).
 *
 * Thread: the partition's worker. */
#ifndef REGSTREAM_KAFKA_GAP_H
#define REGSTREAM_KAFKA_GAP_H

#include <stdint.h>

typedef enum {
  GAP_TAKE = 0,       /* in order (or the log's own gap): apply it, or take the end */
  GAP_READ_AGAIN = 1, /* messages before it are missing: read again from expect */
  GAP_NEW = 2,        /* as GAP_READ_AGAIN, a gap not seen before (to be said once) */
} gap_verdict;

/* A message (end 0) or an end-of-partition event (end 1) at offset, of a
 * partition whose next message to apply is at expect (a message below it
 * is the caller's: applied already). *gap_at is the partition's gap state
 * (0 at first), the offset that showed the last gap: the same offset seen
 * again, right after the partition was read again from expect, is the
 * log's own gap (transaction markers, compaction) and is taken.
 *
 * A message past expect is a gap. So is an end past expect: taken as the
 * end it would say the partition is done while messages before it were
 * never applied (its progress mark would cover them, and a --exit-at-eof
 * run would settle without them). An end while a gap before it is still to
 * be read again is not the end either. A message below a gap still to be
 * read (one an end showed) is a gap of its own. */
gap_verdict gap_check(int64_t expect, int64_t *gap_at, int64_t offset, int end);

#endif
