/* merger.c — stage 2's librdkafka side: a member of group "<group>.merge"
 * on the partials topic that feeds what it reads into its merge_state
 * (kafka/merge.c), publishes changed totals every --flush-ms (those of
 * the partitions it has caught up with), and with --exit-at-eof publishes
 * and ends stage 1 once settled (kafka/settle.c). Keep the arithmetic of totals and
 * marks out of this file: it is merge.c's, tested without a broker.
 *
 * Thread: merger_main on the merger thread; merger_rebalance is called by
 * librdkafka on the same thread (from rd_kafka_consumer_poll). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/client.h"
#include "kafka/mode.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/stop.h"

static void tell(kafka_mode *km, rd_kafka_resp_err_t err,
                 const rd_kafka_topic_partition_list_t *parts, const char *how) {
  if (km->opt->quiet)
    return;
  char list[600];
  partition_list_text(parts, list, sizeof list);
  int32_t held[MERGE_MAX_PARTIALS];
  int assigned = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
  log_msg(LOG_INFO, "kafka", "merge rebalance: assigned %s, revoked %s, kept %d (%s)",
          assigned ? list : "[]", assigned ? "[]" : list,
          merge_owned(km->merge, held) - (assigned ? parts->cnt : 0), how);
}

/* Eager (range, roundrobin): the merge state is rebuilt from the compacted
 * partials on every change of assignment: simple, and the republished
 * totals carry equal values. Cooperative (the default): only what moves
 * changes; a partition assigned is read from its beginning, and its rows
 * wait until it has been read to where it ended (caught_up below) while
 * those of the kept ones go on being published; one revoked is forgotten. */
/* Per partials partition held: the offset after the last message applied
 * (-1 none since its assignment), and the first offset after a gap (0
 * none). The merger thread's (merger_main and merger_rebalance). */
static int64_t next_at[MERGE_MAX_PARTIALS], gap_at[MERGE_MAX_PARTIALS];

static void positions_forget(const rd_kafka_topic_partition_list_t *parts) {
  for (int i = 0; parts && i < parts->cnt; i++) {
    int32_t q = parts->elems[i].partition;
    if (q >= 0 && q < MERGE_MAX_PARTIALS)
      next_at[q] = -1, gap_at[q] = 0;
  }
}

void merger_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *parts, void *opaque) {
  kafka_mode *km = opaque;
  positions_forget(parts);
  const char *protocol = rd_kafka_rebalance_protocol(rk);
  int cooperative = protocol && !strcmp(protocol, "COOPERATIVE");
  if (!cooperative)
    merge_reset(km->merge);
  rd_kafka_error_t *e = NULL;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    for (int i = 0; i < parts->cnt; i++) {
      parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
      merge_own(km->merge, parts->elems[i].partition);
    }
    merge_set_assigned(km->merge);
    km->clients.merger_assigned = 1;
    if (cooperative)
      e = rd_kafka_incremental_assign(rk, parts);
    else
      rd_kafka_assign(rk, parts);
  } else {
    /* Totals published before are delivered before the next owner's. */
    rd_kafka_flush(km->clients.producer, 10000);
    if (cooperative) {
      for (int i = 0; i < parts->cnt; i++)
        merge_forget(km->merge, parts->elems[i].partition);
      e = rd_kafka_incremental_unassign(rk, parts);
    } else {
      rd_kafka_assign(rk, NULL);
    }
  }
  kafka_fail_error(km, e, "the merge consumer cannot take a rebalance");
  tell(km, err, parts, cooperative ? "cooperative-sticky" : "eager");
}

/* 1 once the merger has read every partials partition it holds up to where
 * it ended when it was assigned: its end is asked once per assignment, the
 * positions of those behind each time. */
static int caught_up(kafka_mode *km) {
  merge_state *ms = km->merge;
  if (merge_caught_up(ms) || !merge_assigned(ms))
    return merge_caught_up(ms);
  int32_t parts[MERGE_MAX_PARTIALS];
  int n = merge_untargeted(ms, parts);
  if (n > 0) {
    int64_t ends[MERGE_MAX_PARTIALS];
    if (client_log_ends(km, km->opt->partials_topic, parts, n, ends) < 0) {
      kafka_trouble(km, "cannot read the ends of the partials topic"); /* asked again */
      return 0;
    }
    merge_set_targets(ms, n, parts, ends);
  }
  n = merge_behind(ms, parts);
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
/* A partition held and caught up is read at the head of its log, which
 * compaction has not touched: its offsets follow one another. A gap there
 * is messages librdkafka 2.0 did not deliver (it can lose the prefetched
 * messages of a partition kept through a cooperative rebalance): read
 * again from the last one applied; a gap seen again is the log's own. 1
 * when m is to be applied. */
static int in_order(kafka_mode *km, const rd_kafka_message_t *m) {
  int32_t q = m->partition;
  if (next_at[q] >= 0 && m->offset < next_at[q])
    return 0; /* read again after a seek: applied already */
  if (next_at[q] >= 0 && m->offset > next_at[q] && m->offset != gap_at[q] &&
      merge_partition_caught_up(km->merge, q)) {
    if (gap_at[q] <= next_at[q]) {
      log_msg(LOG_WARN, "kafka",
              "partials partition %" PRId32 ": offsets %" PRId64 " to %" PRId64
              " were not delivered; reading them again",
              q, next_at[q], m->offset - 1);
      gap_at[q] = m->offset;
      char what[80];
      snprintf(what, sizeof what, "partials partition %" PRId32 ": cannot read it again", q);
      client_seek(km, km->clients.merger, km->opt->partials_topic, q, next_at[q], what);
    }
    return 0;
  }
  next_at[q] = m->offset + 1;
  return 1;
}

static void apply(kafka_mode *km, const rd_kafka_message_t *m, int *foreign_warned) {
  if (!merge_owns(km->merge, m->partition))
    return; /* fetched before its revoke */
  if (!in_order(km, m))
    return;
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

/* A test hook: a merger slow to settle (behind on the partials, its host
 * busy) settles REGSTREAM_TEST_SETTLE_LATE_MS after it first could. 1
 * while held back; *first: when it first could (0: not yet). */
static int settle_held_back(double *first) {
  const char *late = getenv("REGSTREAM_TEST_SETTLE_LATE_MS");
  if (!late)
    return 0;
  if (*first == 0)
    *first = clock_seconds();
  return clock_seconds() - *first < atof(late) / 1000;
}

void *merger_main(void *arg) {
  kafka_mode *km = arg;
  const kafka_run_options *o = km->opt;
  int foreign_warned = 0;
  double first_settled = 0;
  for (int q = 0; q < MERGE_MAX_PARTIALS; q++)
    next_at[q] = -1, gap_at[q] = 0;
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
      if (settle_check(&km->settle, km->merge) && !settle_held_back(&first_settled)) {
        publish(km);
        settle_finish(&km->settle);
        /* Out of the merge group at once (the revoke is served by the
         * polls below): staying in it until stage 1 is done, it could be
         * given a partials partition of an instance not yet settled, and
         * with nothing more applied here, that partition's totals would go
         * out from nobody (seen with three instances). Left, what it holds
         * and anything moved to it meanwhile go to the instances still in
         * the group, each publishing what it holds when it settles. */
        rd_kafka_resp_err_t left = rd_kafka_unsubscribe(km->clients.merger);
        if (left) /* it leaves at its close, after stage 1, as before */
          log_msg(LOG_WARN, "kafka", "the merge consumer cannot leave its group before the end: %s",
                  rd_kafka_err2str(left));
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
      if (!o->exit_at_eof || (is_caught_up && settle_check(&km->settle, km->merge)))
        publish(km); /* the partitions not caught up keep their rows back */
      break;
    }
    /* Reprocessing publishes settled totals only: a run that fails (a schema
     * unavailable past --registry-timeout) leaves none that miss messages. */
    if (!o->exit_at_eof && merge_assigned(km->merge) && clock_seconds() >= next_publish) {
      publish(km);
      next_publish = clock_seconds() + o->flush_ms / 1000.0;
    }
  }
  return NULL;
}
