/* partials.c — a shard's partial rows and progress marks onto the partials
 * topic (stage 1's output, kafka/wire.h has their formats): the rows the
 * shard changed since they were last published, each to the partials
 * partition of its row, then a mark to every partials partition. The
 * producer keeps a partition's order, so a mark comes after the partials it
 * covers. Thread: the shard's worker, or the poll thread in a revoke (with
 * the table's write lock). */
#include <stdlib.h>
#include <string.h>

#include "kafka/mode.h"
#include "kafka/wire.h"
#include "util/clock.h"

/* A progress mark of ps: the input offset its partials published so far
 * cover, and this run's configuration fingerprint. A merger counts it only
 * if no partial of ps's partition came after it and the fingerprint is its
 * own (kafka/merge.c). force: send it even if unchanged (at the end of the
 * input, so that a stale mark of a previous owner cannot stay the last). */
static void publish_mark(kafka_mode *km, part_shard *ps, int force) {
  /* A held partition (worker.c) covers exactly what it applied: its
   * next_offset is the message waiting for its schema. */
  int64_t covered = ps->next_offset > ps->eof_offset || ps->held ? ps->next_offset : ps->eof_offset;
  if (covered < 0 || (covered == ps->marked && !force))
    return;
  char key[WIRE_MARK_KEY_MAX];
  size_t klen = wire_mark_key(ps->partition, key);
  uint8_t value[WIRE_MARK_BYTES];
  wire_mark_value(covered, km->fingerprint, value);
  for (int q = 0; q < km->clients.partials_partitions; q++)
    client_produce(km, km->opt->partials_topic, q, key, klen, value, sizeof value);
  ps->marked = covered;
}

/* A month block published for the first time by this owner goes out whole,
 * zero rows included: the topic may hold a previous owner's (or a crashed
 * run's) later value of a row that is zero here, and only a republication
 * of every row of the block makes it agree again. */
void partials_publish(kafka_mode *km, part_shard *ps) {
  for (int month = 0; month < PERIOD_MONTHS; month++) {
    if (!ps->state.counts.months[month])
      continue;
    if (!ps->sent.months[month]) {
      size_t bytes = (size_t)ROLLUP_KEYS * ROLLUP_COLUMNS * sizeof(uint32_t);
      if (!(ps->sent.months[month] = malloc(bytes))) {
        kafka_fail(km, "out of memory for published rows");
        return;
      }
      memset(ps->sent.months[month], 0xff, bytes); /* differs from every real row */
    }
    for (int mi = 0; mi < MUNICIPALITY_COUNT; mi++) {
      for (int v = 0; v < VISITATION_COUNT; v++) {
        const uint32_t *now = rollup_row(&ps->state.counts, month, mi, v);
        uint32_t *sent = rollup_row(&ps->sent, month, mi, v);
        if (!memcmp(now, sent, ROLLUP_COLUMNS * sizeof *now))
          continue;
        memcpy(sent, now, ROLLUP_COLUMNS * sizeof *now);
        rollup_row_view row = {period_from_month(month), municipality_codes[mi], (visitation)v,
                               now};
        char key[WIRE_PARTIAL_KEY_MAX];
        size_t klen =
            wire_partial_key(row.period, row.municipality, row.visitation, ps->partition, key);
        uint8_t value[ROLLUP_ENCODED_MAX];
        size_t vlen = rollup_codec_encode_row(&row, value);
        client_produce(km, km->opt->partials_topic,
                       wire_row_partition(row.period, row.municipality, row.visitation,
                                          km->clients.partials_partitions),
                       key, klen, value, vlen);
        atomic_fetch_add(&km->stats.partials, 1);
      }
    }
  }
  /* Reprocessing, at the end of the input: the mark again on every flush. */
  publish_mark(km, ps, km->opt->exit_at_eof && atomic_load(&km->table.at_eof[ps->partition]));
}

void partials_publish_worker(worker *w) {
  kafka_mode *km = w->km;
  for (int p = (int)w->index; p < MAX_PARTITIONS; p += (int)km->workers_n)
    if (km->table.shards[p])
      partials_publish(km, km->table.shards[p]);
  w->next_flush = clock_seconds() + km->opt->flush_ms / 1000.0;
}
