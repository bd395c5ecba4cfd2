/* settle.c — see settle.h. Owns no Kafka client: the ends are taken by the
 * poll thread (kafka/run.c), the marks are read by the merger
 * (kafka/merger.c) into its merge_state. */
#include "kafka/settle.h"

void settle_init(settle *s) {
  s->input_partitions = 0;
  atomic_store(&s->ends_known, 0);
  atomic_store(&s->settled, 0);
  atomic_store(&s->waiting_for, SETTLE_WAITING_MERGE);
}

void settle_set_ends(settle *s, int n, const int64_t *ends) {
  s->input_partitions = n;
  for (int p = 0; p < n; p++)
    s->input_ends[p] = ends[p];
  atomic_store(&s->ends_known, 1); /* publishes the ends to the merger thread */
}

int settle_ends_known(const settle *s) {
  return atomic_load(&((settle *)s)->ends_known);
}

int settle_check(settle *s, const merge_state *ms) {
  atomic_store(&s->waiting_for, SETTLE_WAITING_MERGE);
  if (!settle_ends_known(s) || !merge_caught_up(ms))
    return 0;
  int32_t parts[MERGE_MAX_PARTIALS];
  int held = merge_owned(ms, parts);
  for (int i = 0; i < held; i++) {
    for (int p = 0; p < s->input_partitions; p++) {
      if (merge_mark(ms, parts[i], p) < s->input_ends[p]) {
        atomic_store(&s->waiting_for, p);
        return 0;
      }
    }
  }
  /* Holding none, it waits for a partition (as other instances leave)
   * rather than leave first and hand its input partitions over. */
  atomic_store(&s->waiting_for, held ? SETTLE_WAITING_NOTHING : SETTLE_WAITING_PARTIALS);
  return held > 0;
}

void settle_finish(settle *s) {
  atomic_store(&s->settled, 1);
}

int settle_done(const settle *s) {
  return atomic_load(&((settle *)s)->settled);
}

int settle_waiting_for(const settle *s) {
  return atomic_load(&((settle *)s)->waiting_for);
}
