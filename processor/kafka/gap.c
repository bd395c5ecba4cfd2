/* gap.c — see gap.h. Owns no Kafka client. */
#include "kafka/gap.h"

gap_verdict gap_check(int64_t expect, int64_t *gap_at, int64_t offset, int end) {
  if (offset <= expect || offset == *gap_at)
    return GAP_TAKE;
  /* *gap_at <= expect: the last gap was read again (or there was none). */
  int pending = *gap_at > expect;
  if (end) {
    if (pending)
      return GAP_READ_AGAIN; /* the end of a fetch that skipped messages before it */
  } else if (pending && *gap_at < offset) {
    return GAP_READ_AGAIN; /* after the first message past the gap: the same gap */
  }
  *gap_at = offset;
  return GAP_NEW;
}
