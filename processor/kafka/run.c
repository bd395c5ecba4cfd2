/* run.c — Kafka mode: the same rules core fed from a topic, rollups out as
 * upserts, in two stages of one program.
 *
 * Stage 1, shards. A member of consumer group --group on --topic. Every
 * assigned input partition is one state shard (its persons and counters),
 * owned by worker (partition % threads): the partition's librdkafka queue is
 * forwarded to the worker's queue, which the worker consumes in batches;
 * the poll thread only serves rebalances and errors. Workers decode
 * (framing.c), validate, apply the rules and dead-letter rejects, with no
 * lock per message. A newly assigned partition starts from its newest valid
 * snapshot in --snapshot-dir (or --snapshot-topic) and resumes at the offset recorded in it (the
 * snapshot, not the group's committed offset, is the truth), or without one from the beginning of
 * its log: correctness never depends on who held it before. Snapshots are taken every
 * --snapshot-interval (records or seconds) by capturing the shard on its worker (a copy: the only
 * pause) and writing it on the snapshotter thread, and synchronously when the partition is revoked
 * or the instance stops, before the partition is handed over. After a crash the messages past the
 * snapshot's offset are applied again: the same states and rows come out, while their dead letters
 * are published again (the dead-letter topic is at-least-once; its source headers identify
 * duplicates). The group's committed offsets (auto-committed as workers take messages) are for lag
 * monitoring only. Every
 * --flush-ms each worker publishes the rows its shards changed as partial
 * rows on the partials topic: key "PERIOD,MUNICIPALITY,VISITATION@P" (P the
 * input partition), the partials partition chosen from the row key alone so
 * that all partials of a row meet in one place; compacted, that topic keeps
 * the latest partial of every (row, input partition). After them goes a
 * progress mark to every partials partition: key "@P", value the input
 * offset of P those partials cover and the configuration's fingerprint.
 *
 * Stage 2, merge. A member of group "<group>.merge" on the partials topic
 * keeps the latest partial per (row, input partition), sums them and
 * publishes changed totals on --output-topic, keyed
 * "PERIOD,MUNICIPALITY,VISITATION", each message the full row. Re-reading a
 * partial or re-publishing a total never changes a number, so restarts and
 * rebalances are safe; with any number of instances each row's total has one
 * owner (the merge member holding its partials partition). After a change
 * of assignment a merger publishes nothing until it has read its partitions
 * up to where they ended (a row half re-read is not a total).
 *
 * --exit-at-eof (reprocessing), with any number of instances: once every
 * partition of an instance is at the end of its log (or it has none), it
 * takes the ends of all input partitions and waits, still in the group,
 * until its merger is settled: in every partials partition it holds, the
 * last thing read of every input partition P is a mark of this
 * configuration at or past P's end (a partial read after a mark voids it;
 * marks are sent again while at the end). The partials held then are those
 * of the whole input under these rules, so the merger publishes its totals
 * at once, leaves the merge group (what it held, and anything moved to it
 * meanwhile, goes to instances not yet settled, which publish what they
 * hold when they settle) and stage 1 stops. A merger holding no partials
 * partition waits for one. Between the revoke and the assignment of one
 * rebalance a shard is kept, so an instance that keeps a partition goes on
 * where it was; one that gets a partition of an instance that left resumes
 * from that instance's snapshot, or replays the partition (which cannot
 * change the totals already settled, only delay the others). */

#include "kafka/run.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "avro/schemas.h"
#include "kafka/client.h"
#include "kafka/mode.h"
#include "kafka/snapshot_topic.h"
#include "sink/dead_letter_kafka.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/stop.h"

void kafka_fail(kafka_mode *km, const char *why) {
  latch_set(&km->failure, why);
}

void kafka_fail_error(kafka_mode *km, rd_kafka_error_t *e, const char *what) {
  if (!e)
    return;
  latch_setf(&km->failure, "%s: %s", what, rd_kafka_error_string(e));
  rd_kafka_error_destroy(e);
}

/* A consumer error other than a missing topic (broker down, transport):
 * librdkafka retries by itself; say so every TROUBLE_REPORT_SECONDS, and
 * remember since when there has been trouble without progress. Unless a
 * client met what no retry mends (a refused login, an untrusted
 * certificate, a denied request: kafka_cause): that fails the run. */
int kafka_cause_fatal(kafka_mode *km, rd_kafka_t *rk, char *cause, size_t len) {
  if (kafka_cause(rk, km->opt->brokers, cause, len) == CAUSE_NONE)
    return 0;
  /* At start no retry mends it; once the run has worked, the same text may
   * be passing (a broker restarting mid-handshake): trouble, which
   * --exit-at-eof gives up on after TROUBLE_GIVE_UP_SECONDS. */
  if (kafka_messages(km) || atomic_load(&km->stats.marks_read))
    return 0;
  kafka_log_hold();
  return 1;
}

void kafka_trouble(kafka_mode *km, const char *what) {
  rd_kafka_t *clients[] = {km->clients.consumer, km->clients.producer, km->clients.merger};
  char cause[600];
  for (int i = 0; i < 3; i++)
    if (clients[i] && kafka_cause_fatal(km, clients[i], cause, sizeof cause)) {
      kafka_fail(km, cause);
      return;
    }
  double now = clock_seconds();
  trouble *t = &km->trouble;
  pthread_mutex_lock(&t->lock);
  if (t->since == 0)
    t->since = now;
  t->latest = now;
  snprintf(t->what, sizeof t->what, "%s", what);
  if (now - t->reported >= TROUBLE_REPORT_SECONDS) {
    log_fields(LOG_ERROR, "kafka",
               json_pack("{s:s,s:s}", "trouble", what, "brokers", km->opt->brokers),
               "Kafka: %s; retrying (check that the brokers at %s are up and reachable)", what,
               km->opt->brokers);
    t->reported = now;
  }
  pthread_mutex_unlock(&t->lock);
}

int kafka_flush_timeout_ms(kafka_mode *km, int normal) {
  return kafka_failed(km) ? 5000 : normal;
}

/* A snapshot says "everything before my offset is done", dead letters
 * included: they must be in the broker before it is written, or a crash
 * after it would lose them (the records are not read again). Flushes the
 * producer; 0 when everything produced so far was delivered. The snapshot
 * writer's gate, on its thread. */
static int outputs_durable(void *opaque) {
  kafka_mode *km = opaque;
  if (rd_kafka_flush(km->clients.producer, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    log_msg(LOG_WARN, "snapshot",
            "a snapshot was skipped: the dead letters and rows before it were not acknowledged "
            "within 60 s");
    return -1;
  }
  return kafka_failed(km) ? -1 : 0; /* a delivery failed: stopping */
}

/* ---- the poll thread ---- */

/* With --exit-at-eof a run must end: after broker trouble,
 * TROUBLE_GIVE_UP_SECONDS without a message applied fail it. */
static void trouble_check(kafka_mode *km, double now) {
  trouble *t = &km->trouble;
  /* Progress: messages applied, or (waiting for other instances) marks read. */
  uint64_t messages = kafka_messages(km) + atomic_load(&km->stats.marks_read);
  /* Partitions held for an unavailable schema are registry_check's (its
   * --registry-timeout), not broker trouble. */
  if (t->progress_at == 0 || messages != t->progress_messages || atomic_load(&km->waits.held) > 0) {
    t->progress_at = now;
    t->progress_messages = messages;
  }
  /* librdkafka raises a lost broker once, then retries quietly: so the
   * test is "trouble was seen, and nothing was applied for so long" (with
   * a healthy broker a reprocessing run either applies or reaches its end). */
  pthread_mutex_lock(&t->lock);
  int give_up =
      km->opt->exit_at_eof && t->since != 0 && now - t->progress_at >= TROUBLE_GIVE_UP_SECONDS;
  char why[600];
  if (give_up)
    snprintf(why, sizeof why,
             "no progress for %d s with --exit-at-eof: %s (snapshots and published rows are "
             "kept; rerun once the brokers at %s are reachable)",
             TROUBLE_GIVE_UP_SECONDS, t->what, km->opt->brokers);
  pthread_mutex_unlock(&t->lock);
  if (give_up)
    kafka_fail(km, why);
}

/* ---- partitions waiting for a schema (worker.c holds them) ---- */

void registry_wait_hold(kafka_mode *km, int32_t p, int64_t offset, uint32_t schema,
                        const char *error) {
  registry_wait *rw = &km->waits;
  pthread_mutex_lock(&rw->lock);
  if (rw->offset[p] < 0) {
    atomic_fetch_add(&rw->held, 1);
    rw->since[p] = clock_seconds();
    if (atomic_load(&rw->held) == 1)
      rw->reported = 0; /* a new outage: say so at once */
  }
  rw->offset[p] = offset;
  rw->schema[p] = schema;
  if (error && error[0])
    snprintf(rw->error, sizeof rw->error, "%s", error);
  pthread_mutex_unlock(&rw->lock);
}

void registry_wait_error(kafka_mode *km, const char *error) {
  pthread_mutex_lock(&km->waits.lock);
  snprintf(km->waits.error, sizeof km->waits.error, "%s", error);
  pthread_mutex_unlock(&km->waits.lock);
}

void registry_wait_release(kafka_mode *km, int32_t p) {
  registry_wait *rw = &km->waits;
  pthread_mutex_lock(&rw->lock);
  if (rw->offset[p] >= 0) {
    rw->offset[p] = -1;
    atomic_fetch_sub(&rw->held, 1);
  }
  pthread_mutex_unlock(&rw->lock);
}

/* "0 (offset 120), 3 (offset 77)" for the partitions held for schema id,
 * at most a few then "and N more". */
static void held_list(const registry_wait *rw, uint32_t schema, char *out, size_t cap) {
  size_t len = 0;
  int listed = 0, more = 0;
  out[0] = '\0';
  for (int p = 0; p < MAX_PARTITIONS; p++) {
    if (rw->offset[p] < 0 || rw->schema[p] != schema)
      continue;
    if (listed == 8) {
      more++;
      continue;
    }
    int n = snprintf(out + len, cap - len, "%s%d (offset %" PRId64 ")", listed ? ", " : "", p,
                     rw->offset[p]);
    if (n < 0 || (size_t)n >= cap - len)
      break;
    len += (size_t)n;
    listed++;
  }
  if (more)
    snprintf(out + len, cap - len, " and %d more", more);
}

/* Poll thread: while partitions are held, say every REGISTRY_REPORT_SECONDS
 * what they wait for; with --exit-at-eof, a schema unavailable for longer
 * than --registry-timeout fails the run (nothing that misses the held
 * messages has settled: their marks stop before them). */
static void registry_check(kafka_mode *km, double now) {
  registry_wait *rw = &km->waits;
  if (atomic_load(&rw->held) == 0)
    return;
  const kafka_run_options *o = km->opt;
  int timeout = o->registry_timeout_s > 0 ? o->registry_timeout_s : 300;
  pthread_mutex_lock(&rw->lock);
  int oldest = -1;
  for (int p = 0; p < MAX_PARTITIONS; p++)
    if (rw->offset[p] >= 0 && (oldest < 0 || rw->since[p] < rw->since[oldest]))
      oldest = p;
  if (oldest < 0) {
    pthread_mutex_unlock(&rw->lock);
    return;
  }
  uint32_t schema = rw->schema[oldest];
  char parts[600], why[1600];
  held_list(rw, schema, parts, sizeof parts);
  int others = atomic_load(&rw->held);
  for (int p = 0; p < MAX_PARTITIONS; p++)
    if (rw->offset[p] >= 0 && rw->schema[p] == schema)
      others--;
  char also[64] = "";
  if (others > 0)
    snprintf(also, sizeof also, " (and %d partitions waiting for other ids)", others);
  if (o->exit_at_eof && now - rw->since[oldest] >= timeout) {
    snprintf(why, sizeof why,
             "%s: schema id %" PRIu32 " unavailable for %d s (--registry-timeout) with "
             "--exit-at-eof; input partitions %s%s were not processed past those offsets and "
             "no totals were settled: make the registry at %s reachable (or raise "
             "--registry-timeout) and run the same command again",
             rw->error, schema, timeout, parts, also, schema_source_where(km->schemas));
    pthread_mutex_unlock(&rw->lock);
    kafka_fail(km, why);
    return;
  }
  if (now - rw->reported >= REGISTRY_REPORT_SECONDS) {
    log_fields(LOG_ERROR, "registry",
               json_pack("{s:s,s:s,s:I}", "error", rw->error, "partitions", parts, "schema_id",
                         (json_int_t)schema),
               "%s: input partitions %s%s paused, waiting for schema id %" PRIu32
               "; nothing after them is applied or dead-lettered; retrying with backoff up to "
               "every %d s%s",
               rw->error, parts, also, schema, RETRY_REPORT_MAX_SECONDS,
               o->exit_at_eof ? " (--registry-timeout ends this --exit-at-eof run)" : "");
    rw->reported = now;
  }
  pthread_mutex_unlock(&rw->lock);
}

/* Takes the ends of the input partitions' logs for the settle check, once
 * this instance is at the end of its own (--exit-at-eof). */
static void input_ends_take(kafka_mode *km) {
  /* Partitions may have been added since the start. */
  char err[300];
  const rd_kafka_metadata_t *md =
      kafka_metadata_fetch(km->clients.producer, km->opt->brokers, 5000, err, sizeof err);
  const rd_kafka_metadata_topic_t *t = md ? kafka_metadata_topic(md, km->opt->topic) : NULL;
  int n = t && !t->err ? t->partition_cnt : 0;
  if (md)
    rd_kafka_metadata_destroy(md);
  if (n <= 0 || n > MAX_PARTITIONS) {
    kafka_trouble(km, "cannot read the input topic's partitions");
    return;
  }
  int32_t parts[MAX_PARTITIONS];
  int64_t ends[MAX_PARTITIONS];
  for (int p = 0; p < n; p++)
    parts[p] = p;
  if (client_log_ends(km, km->opt->topic, parts, n, ends) < 0) {
    kafka_trouble(km, "cannot read the ends of the input partitions");
    return;
  }
  settle_set_ends(&km->settle, n, ends);
}

/* At the end of its partitions, waiting for the merge stage: say what for. */
static void print_waiting(kafka_mode *km) {
  const kafka_run_options *o = km->opt;
  int p = settle_waiting_for(&km->settle);
  if (p >= 0)
    log_fields(LOG_INFO, "kafka",
               json_pack("{s:i,s:I}", "waiting_for_partition", p, "end_offset",
                         (json_int_t)km->settle.input_ends[p]),
               "at the end of its partitions; waiting for input partition %d to be processed to "
               "its end (offset %" PRId64 ") by the instance holding it",
               p, km->settle.input_ends[p]);
  else if (p == SETTLE_WAITING_PARTIALS)
    log_fields(LOG_INFO, "kafka",
               json_pack("{s:s,s:i}", "partials_topic", o->partials_topic, "partials_partitions",
                         km->clients.partials_partitions),
               "at the end of its partitions; its merge stage holds no partition of %s (more "
               "instances than its %d partitions): waiting for one",
               o->partials_topic, km->clients.partials_partitions);
  else
    log_fields(LOG_INFO, "kafka", json_pack("{s:s}", "partials_topic", o->partials_topic),
               "at the end of its partitions; waiting for the merge stage to read the partials "
               "topic %s",
               o->partials_topic);
}

/* The poll thread: serves rebalances and consumer errors (the messages go
 * to the workers' queues) until stopped or, with --exit-at-eof, until the
 * merge stage is settled. */
static void poll_input(kafka_mode *km) {
  const kafka_run_options *o = km->opt;
  double last_progress = clock_seconds(), started = last_progress, last_wait_note = started;
  while (!stop_requested() && !kafka_failed(km)) {
    rd_kafka_message_t *m =
        rd_kafka_consumer_poll(km->clients.consumer, o->progress_ms < 100 ? o->progress_ms : 100);
    if (m) {
      char why[600];
      if (m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
          m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        snprintf(why, sizeof why, "input topic %s: %s", o->topic, rd_kafka_message_errstr(m));
        kafka_fail(km, why);
      } else if (kafka_denied(m->err, "read", o->topic, o->group, why, sizeof why) == 0) {
        kafka_fail(km, why); /* an ACL missing: no retry mends it */
      } else if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        kafka_trouble(km, rd_kafka_message_errstr(m));
      } else if (!m->err) {
        /* Every assigned partition's queue is forwarded to a worker before
         * it is assigned: a message here would be applied out of order. */
        kafka_fail(km, "internal error: a message bypassed its partition's worker queue");
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_poll(km->clients.producer, 0); /* delivery reports */
    double now = clock_seconds();
    observe_poll_alive(&km->observe, now);
    if (o->exit_at_eof && rebalance_all_at_eof(km)) {
      /* This instance's partitions are done; the run is when the merge
       * stage has every input partition's partials up to its end. Until
       * then it stays in the group, to take over partitions of an instance
       * that stops. */
      if (!settle_ends_known(&km->settle)) {
        input_ends_take(km);
      } else if (settle_done(&km->settle)) {
        break;
      } else if (!o->quiet && now - last_wait_note >= 10) {
        print_waiting(km);
        last_wait_note = now;
      }
    }
    trouble_check(km, now);
    registry_check(km, now);
    shard_snapshots_check(km, 0); /* a full disk must not go unnoticed until the next revoke */
    if (!o->quiet && now - last_progress >= o->progress_ms / 1000.0) {
      uint64_t done = kafka_messages(km);
      if (done || km->table.assignment_received)
        log_fields(LOG_INFO, "kafka",
                   json_pack("{s:I,s:o}", "messages", (json_int_t)done, "messages_per_s",
                             log_real((double)done / (now - started))),
                   "%" PRIu64 " messages applied, %.2f M/s", done,
                   (double)done / 1e6 / (now - started));
      else
        log_fields(LOG_INFO, "kafka", json_pack("{s:s,s:s}", "group", o->group, "topic", o->topic),
                   "joining consumer group %s on %s", o->group, o->topic);
      last_progress = now;
    }
  }
}

/* ---- set-up and teardown ---- */

/* How long leaving a group may take: the input consumer's revoke publishes
 * partials and flushes (up to 30 s) and writes snapshots. */
enum { CLOSE_INPUT_SECONDS = 60, CLOSE_MERGER_SECONDS = 20 };

/* Leave the group of consumer rk, serving its revoke, within seconds. 0, or
 * -1 when the brokers did not let it finish (librdkafka 2.0's
 * rd_kafka_consumer_close waits for them forever): the run then fails,
 * and the snapshots written so far keep the work. */
static int close_consumer(kafka_mode *km, rd_kafka_t *rk,
                          void (*rebalance)(rd_kafka_t *, rd_kafka_resp_err_t,
                                            rd_kafka_topic_partition_list_t *, void *),
                          int seconds, const char *what) {
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_error_t *e = q ? rd_kafka_consumer_close_queue(rk, q) : NULL;
  int closed = 0;
  if (q && !e) {
    double until = clock_seconds() + seconds;
    /* The revoke comes as an event, served by the client's rebalance
     * handler; what else arrives (messages and end-of-partition events
     * still on their way) is dropped (rd_kafka_queue_poll_callback would
     * abort on them). */
    while (!(closed = rd_kafka_consumer_closed(rk)) && clock_seconds() < until) {
      rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
      if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
        rebalance(rk, rd_kafka_event_error(ev),
                  (rd_kafka_topic_partition_list_t *)rd_kafka_event_topic_partition_list(ev), km);
      if (ev)
        rd_kafka_event_destroy(ev);
    }
  }
  if (e)
    rd_kafka_error_destroy(e);
  if (q)
    rd_kafka_queue_destroy(q);
  if (!closed) {
    latch_setf(&km->failure,
               "the %s could not leave its consumer group within %d s (are the brokers at %s "
               "reachable?); stopped without handing its partitions over: the snapshots "
               "written so far keep the work, rerun when the brokers answer",
               what, seconds, km->opt->brokers);
    km->clients.unclosed = 1;
  }
  return closed ? 0 : -1;
}

static int prepare_framing(kafka_mode *km, char *err, size_t errlen) {
  const kafka_run_options *o = km->opt;
  if (o->schema_registry || o->schema_dir) {
    km->schemas = o->schema_registry
                      ? schema_source_open_registry(o->schema_registry, &o->registry, err, errlen)
                      : schema_source_open_dir(o->schema_dir, NULL, err, errlen);
    km->frame = (framing){FRAMING_CONFLUENT, NULL, km->schemas};
    return km->schemas ? 0 : -1;
  }
  km->plain_plan = o->schema_file ? framing_plan_from_file(o->schema_file, err, errlen)
                                  : pm_plan_from_json(pm_reader_schema_json,
                                                      strlen(pm_reader_schema_json), err, errlen);
  km->frame = (framing){FRAMING_PLAIN, km->plain_plan, NULL};
  return km->plain_plan ? 0 : -1;
}

static kafka_mode *mode_new(const kafka_run_options *o) {
  kafka_mode *km = calloc(1, sizeof *km);
  if (!km)
    return NULL;
  km->opt = o;
  km->fingerprint = snapshot_fingerprint(&o->rules);
  km->workers_n = (unsigned)o->threads;
  pthread_rwlockattr_t lock_attr;
  pthread_rwlockattr_init(&lock_attr);
  pthread_rwlockattr_setkind_np(&lock_attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&km->table.lock, &lock_attr);
  pthread_rwlockattr_destroy(&lock_attr);
  latch_init(&km->failure);
  pthread_mutex_init(&km->trouble.lock, NULL);
  pthread_mutex_init(&km->waits.lock, NULL);
  for (int p = 0; p < MAX_PARTITIONS; p++)
    km->waits.offset[p] = -1;
  pthread_mutex_init(&km->stats.lock, NULL);
  settle_init(&km->settle);
  observe_init(km);
  return km;
}

/* Whether consumer rk is a member of its group under the cooperative
 * protocol: it had a JoinGroup answer (before that librdkafka says NONE).
 * Asked before its close too: once closed, the question may go unanswered
 * (NULL). */
static int joined_cooperative(rd_kafka_t *rk) {
  const char *protocol = rd_kafka_rebalance_protocol(rk);
  return protocol && !strcmp(protocol, "COOPERATIVE");
}

/* Whether consumer rk (closed) can be destroyed. librdkafka before 2.3
 * aborts in rd_kafka_destroy ("rd_kafka_sticky_assignor_state_destroy:
 * Assertion `assignor_state' failed"; its 2.3.0 changelog, #4381) when a
 * cooperative-sticky member joined its group but had no assignment yet: a
 * run stopped (SIGTERM, or the end of a reprocessing run) while a
 * rebalance was under way. Such a consumer is left to the process's exit
 * instead: it has left its group already (close_consumer) and holds
 * nothing to flush. assigned: its rebalance callback took an assignment
 * (then that state exists); joined: joined_cooperative before the close. */
static int destroy_safe(rd_kafka_t *rk, int assigned, int joined) {
  return assigned || rd_kafka_version() >= 0x02030000 || !(joined || joined_cooperative(rk));
}

static void mode_free(kafka_mode *km) {
  observe_free(km); /* first: the listener reads what follows */
  /* The workers' queues hold the consumer: they go first, or its
   * rd_kafka_destroy waits for them forever. */
  for (unsigned i = 0; km->workers && i < km->workers_n; i++)
    if (km->workers[i].queue)
      rd_kafka_queue_destroy(km->workers[i].queue);
  /* A consumer that could not leave its group is not asked to again. */
  int flags = km->clients.unclosed ? RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE : 0;
  if (km->clients.consumer &&
      destroy_safe(km->clients.consumer, km->table.assignment_received, km->clients.joined[0]))
    rd_kafka_destroy_flags(km->clients.consumer, flags);
  if (km->clients.merger &&
      destroy_safe(km->clients.merger, km->clients.merger_assigned, km->clients.joined[1]))
    rd_kafka_destroy_flags(km->clients.merger, flags);
  merge_free(km->merge);
  char ignored[8];
  dead_letter_close(km->dead, ignored, sizeof ignored);
  if (km->clients.producer)
    rd_kafka_destroy(km->clients.producer);
  for (int p = 0; p < MAX_PARTITIONS; p++)
    if (km->table.shards[p])
      part_shard_free(km->table.shards[p]);
  rebalance_free_parked(km);
  free(km->workers);
  if (km->plain_plan)
    pm_plan_free(km->plain_plan);
  if (km->schemas)
    schema_source_free(km->schemas);
  snapshotter_stop(km->snapshots);
  snapshot_store_free(km->store);
  pthread_rwlock_destroy(&km->table.lock);
  latch_destroy(&km->failure);
  pthread_mutex_destroy(&km->trouble.lock);
  pthread_mutex_destroy(&km->waits.lock);
  pthread_mutex_destroy(&km->stats.lock);
  free(km);
}

/* Clients, topics, subscriptions and worker queues. 0, or -1 with err. */
static int mode_open(kafka_mode *km, char *err, size_t errlen) {
  const kafka_run_options *o = km->opt;
  if (!(km->merge = merge_new(km->fingerprint))) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (prepare_framing(km, err, errlen) < 0)
    return -1;
  /* The topic store's clients are made before any broker answers, as the
   * run's own producer is: their notes on -X items of other roles stay
   * quiet. */
  if (o->snapshots.topic && !(km->store = snapshot_topic_open(km, err, errlen)))
    return -1;
  if (!(km->clients.producer = client_new(km, CLIENT_PRODUCER, err, errlen)) ||
      client_prepare_topics(km, err, errlen) < 0)
    return -1;
  if (o->snapshots.topic && snapshot_topic_prepare(km->store, err, errlen) < 0)
    return -1;
  if (o->snapshots.dir && !(km->store = snapshot_store_dir(o->snapshots.dir))) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (km->store && !(km->snapshots = snapshotter_start_store(km->store, outputs_durable,
                                                             observe_snapshot_done, km))) {
    snprintf(err, errlen, "cannot start the snapshot writer thread");
    return -1;
  }
  if (!(km->clients.consumer = client_new(km, CLIENT_INPUT, err, errlen)) ||
      !(km->clients.merger = client_new(km, CLIENT_MERGER, err, errlen)))
    return -1;
  if (!(km->dead = dead_letter_open_topic(km->clients.producer, o->dead_letter_topic))) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (client_subscribe(km->clients.consumer, o->topic, err, errlen) < 0 ||
      client_subscribe(km->clients.merger, o->partials_topic, err, errlen) < 0)
    return -1;
  /* aligned: each worker's counters have a cache line of their own */
  if (!(km->workers = calloc_aligned(alignof(worker), km->workers_n, sizeof *km->workers))) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  for (unsigned i = 0; i < km->workers_n; i++)
    if (!(km->workers[i].queue = rd_kafka_queue_new(km->clients.consumer))) {
      snprintf(err, errlen, "out of memory");
      return -1;
    }
  return 0;
}

static void fill_result(kafka_mode *km, kafka_run_result *result, double started,
                        double input_done) {
  result->messages = kafka_messages(km);
  dead_letter_counts(km->dead, result->rejected);
  result->partials = atomic_load(&km->stats.partials);
  result->totals = atomic_load(&km->stats.totals);
  double now = clock_seconds();
  result->seconds = now - started;
  double first = atomic_load(&km->stats.first_message);
  result->seconds_from_first = first ? now - first : 0;
  result->seconds_input = first ? input_done - first : 0;
  if (km->snapshots) {
    shard_snapshots_check(km, 1);
    snapshotter_stats ss = snapshotter_get_stats(km->snapshots);
    result->snapshots_written = ss.written;
    result->snapshot_bytes = ss.bytes;
    result->snapshot_captures = km->stats.captures;
    result->snapshot_pause_max = km->stats.pause_max;
    result->snapshot_pause_total = km->stats.pause_total;
    result->snapshot_loads = km->stats.loads;
    result->snapshot_load_seconds = km->stats.load_seconds;
  }
}

int kafka_run(const kafka_run_options *o, kafka_run_result *result, char *err, size_t errlen) {
  memset(result, 0, sizeof *result);
  err[0] = 0;
  double started = clock_seconds();
  kafka_mode *km = mode_new(o);
  if (!km) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (observe_open(km, err, errlen) < 0 || mode_open(km, err, errlen) < 0) {
    if (!err[0])
      snprintf(err, errlen, "out of memory");
    mode_free(km);
    return -1;
  }

  stop_install(); /* a second SIGINT or SIGTERM ends the process at once */
  unsigned started_workers = 0;
  for (; started_workers < km->workers_n; started_workers++) {
    worker *w = &km->workers[started_workers];
    w->km = km;
    w->index = started_workers;
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
      kafka_fail(km, "cannot start a worker thread");
      break;
    }
  }
  pthread_t merge_thread;
  int merging = pthread_create(&merge_thread, NULL, merger_main, km) == 0;
  if (!merging)
    kafka_fail(km, "cannot start the merge thread");
  char why[600];
  if (!kafka_failed(km) && observe_serve(km, why, sizeof why) < 0)
    kafka_fail(km, why);

  if (!kafka_failed(km))
    poll_input(km);
  double input_done = clock_seconds();
  /* A test hook: a settled instance that is slow to end stage 1 (its
   * snapshots on a slow disk, a slow broker) stays that much longer in the
   * input group, while the others settle and leave. */
  const char *linger = getenv("REGSTREAM_TEST_SETTLED_LINGER_MS");
  if (linger && settle_done(&km->settle)) {
    long ms = atol(linger);
    struct timespec pause = {ms / 1000, ms % 1000 * 1000000L};
    nanosleep(&pause, NULL);
  }

  /* Stage 1 ends: workers finish their batch and publish their partials;
   * what is still queued is left to the snapshots' offsets (or, without
   * snapshots, to the next owner's replay). */
  for (unsigned i = 0; i < started_workers; i++) {
    atomic_store(&km->workers[i].stop, 1);
    rd_kafka_queue_yield(km->workers[i].queue);
  }
  for (unsigned i = 0; i < started_workers; i++)
    pthread_join(km->workers[i].thread, NULL);
  /* Leaves the group (revokes, publishing partials). */
  km->clients.joined[0] = joined_cooperative(km->clients.consumer);
  close_consumer(km, km->clients.consumer, rebalance_input, CLOSE_INPUT_SECONDS, "input consumer");
  if (rd_kafka_flush(km->clients.producer, kafka_flush_timeout_ms(km, 60000)) !=
      RD_KAFKA_RESP_ERR_NO_ERROR)
    kafka_fail(km, "partial rows or dead letters were not acknowledged within 60 s");
  atomic_store(&km->stage1_done, 1);
  if (merging)
    pthread_join(merge_thread, NULL);
  km->clients.joined[1] = joined_cooperative(km->clients.merger);
  close_consumer(km, km->clients.merger, merger_rebalance, CLOSE_MERGER_SECONDS, "merge stage");
  if (rd_kafka_flush(km->clients.producer, kafka_flush_timeout_ms(km, 60000)) !=
      RD_KAFKA_RESP_ERR_NO_ERROR)
    kafka_fail(km, "total rows were not acknowledged within 60 s");

  fill_result(km, result, started, input_done);
  int rc = kafka_failed(km) ? -1 : 0;
  if (rc < 0)
    latch_reason(&km->failure, err, errlen);
  mode_free(km);
  return rc;
}
