/* merger.c — stage 2's librdkafka side: a member of group "<group>.merge"
 * on the partials topic that feeds what it reads into its merge_state
 * (kafka/merge.c), publishes changed totals every --flush-ms once it has
 * caught up with its partitions, and with --exit-at-eof publishes and ends
 * stage 1 once settled (kafka/settle.c). Keep the arithmetic of totals and
 * marks out of this file: it is merge.c's, tested without a broker.
 *
 * Thread: merger_main on the merger thread; merger_rebalance is called by
 * librdkafka on the same thread (from rd_kafka_consumer_poll). */
#include <inttypes.h>
#include <stdio.h>

#include "kafka/client.h"
#include "kafka/mode.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/stop.h"

void merger_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *parts, void *opaque) {
  /* The merge state is rebuilt from the compacted partials on every change
   * of assignment: simple, and the republished totals carry equal values. */
  kafka_mode *km = opaque;
  merge_reset(km->merge);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    for (int i = 0; i < parts->cnt; i++) {
      parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
      merge_own(km->merge, parts->elems[i].partition);
    }
    merge_set_assigned(km->merge);
    rd_kafka_assign(rk, parts);
  } else {
    /* Totals published before are delivered before the next owner's. */
    rd_kafka_flush(km->clients.producer, 10000);
    rd_kafka_assign(rk, NULL);
  }
}

/* 1 once the merger has read its partials partitions up to where they ended
 * when they were assigned: their ends are asked once per assignment, the
 * positions each time. */
static int caught_up(kafka_mode *km) {
  merge_state *ms = km->merge;
  if (merge_caught_up(ms) || !merge_assigned(ms))
    return merge_caught_up(ms);
  int32_t parts[MERGE_MAX_PARTIALS];
  int n = merge_owned(ms, parts);
  if (!merge_has_targets(ms)) {
    int64_t ends[MERGE_MAX_PARTIALS];
    if (client_log_ends(km, km->opt->partials_topic, parts, n, ends) < 0) {
      kafka_trouble(km, "cannot read the ends of the partials topic"); /* asked again */
      return 0;
    }
    merge_set_targets(ms, n, parts, ends);
  }
  int64_t positions[MERGE_MAX_PARTIALS];
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
  for (int i = 0; i < n; i++)
    rd_kafka_topic_partition_list_add(list, km->opt->partials_topic, parts[i]);
  int known = n == 0 || rd_kafka_position(km->clients.merger, list) == RD_KAFKA_RESP_ERR_NO_ERROR;
  for (int i = 0; known && i < n; i++)
    positions[i] = list->elems[i].offset;
  rd_kafka_topic_partition_list_destroy(list);
  return known && merge_check_caught_up(ms, n, parts, positions);
}

static void emit_total(void *ctx, const char *key, size_t klen, const uint8_t *value, size_t vlen) {
  kafka_mode *km = ctx;
  client_produce(km, km->opt->output_topic, RD_KAFKA_PARTITION_UA, key, klen, value, vlen);
}

static void publish(kafka_mode *km) {
  atomic_fetch_add(&km->stats.totals, merge_publish(km->merge, emit_total, km));
}

/* One message of the partials topic into the merge state. */
static void apply(kafka_mode *km, const rd_kafka_message_t *m, int *foreign_warned) {
  merge_kind kind = merge_apply(km->merge, m->partition, m->key, m->key_len, m->payload, m->len);
  if (kind == MERGE_MALFORMED) {
    char line[600];
    snprintf(line, sizeof line, "ignoring a malformed partial row at %s [%" PRId32 "] @ %" PRId64,
             rd_kafka_topic_name(m->rkt), m->partition, m->offset);
    /* a warning whose text line never said "warning:" */
    log_text_json(LOG_WARN, "merge",
                  json_pack("{s:s,s:i,s:I}", "topic", rd_kafka_topic_name(m->rkt), "partition",
                            (int)m->partition, "offset", (json_int_t)m->offset),
                  line, NULL);
    return;
  }
  if (kind == MERGE_FOREIGN && !*foreign_warned) {
    log_fields(LOG_WARN, "merge", json_pack("{s:s}", "topic", km->opt->partials_topic),
               "partials topic %s holds rows of a run with other rule options or another reader "
               "schema; its totals may mix them in (after changing rule options, use a new "
               "--output-topic)",
               km->opt->partials_topic);
    *foreign_warned = 1;
  }
  if (kind == MERGE_MARK || kind == MERGE_FOREIGN)
    atomic_fetch_add(&km->stats.marks_read, 1);
}

void *merger_main(void *arg) {
  kafka_mode *km = arg;
  const kafka_run_options *o = km->opt;
  int foreign_warned = 0;
  double next_publish = clock_seconds() + o->flush_ms / 1000.0;
  while (!kafka_failed(km)) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(km->clients.merger, 50);
    if (m) {
      if (!m->err) {
        apply(km, m, &foreign_warned);
      } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        char why[600], group[600];
        snprintf(group, sizeof group, "%s.merge", o->group);
        if (kafka_denied(m->err, "read", o->partials_topic, group, why, sizeof why) == 0)
          kafka_fail(km, why); /* no retry mends a missing ACL */
        else
          kafka_trouble(km, rd_kafka_message_errstr(m));
      }
      rd_kafka_message_destroy(m);
    }
    int is_caught_up = caught_up(km);
    int stage1_done = atomic_load(&km->stage1_done);
    if (o->exit_at_eof && !stop_requested()) {
      /* Reprocessing: settled, the totals it holds are final: they go out
       * now, and stage 1 (waiting for this) stops. What is read after it
       * (another instance replaying a partition it took over) cannot
       * change them, so nothing more is applied. */
      if (settle_check(&km->settle, km->merge)) {
        publish(km);
        settle_finish(&km->settle);
        while (!atomic_load(&km->stage1_done) && !kafka_failed(km)) {
          rd_kafka_message_t *rest = rd_kafka_consumer_poll(km->clients.merger, 50);
          if (rest)
            rd_kafka_message_destroy(rest);
        }
        break;
      }
    } else if (stage1_done) {
      /* Stopping: totals of partitions read in full go out; the others are
       * left to their next owner. A reprocessing run stopped early
       * publishes only what settled: a total that misses input is none. */
      if (is_caught_up && (!o->exit_at_eof || settle_check(&km->settle, km->merge)))
        publish(km);
      break;
    }
    /* Reprocessing publishes settled totals only: a run that fails (a schema
     * unavailable past --registry-timeout) leaves none that miss messages. */
    if (!o->exit_at_eof && is_caught_up && clock_seconds() >= next_publish) {
      publish(km);
      next_publish = clock_seconds() + o->flush_ms / 1000.0;
    }
  }
  return NULL;
}
