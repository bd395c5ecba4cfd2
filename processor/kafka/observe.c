/* observe.c — Kafka mode's side of --metrics-listen: the figures of a run
 * rendered as Prometheus families (the list is in README.md, "Metrics"),
 * and its liveness and readiness. The listener, its thread and the text
 * format are metrics/'s; the counting is where the work is done, cheaply:
 * workers in their own cache lines (observe.h), the rest once per
 * rebalance, snapshot or statistics interval. Keep the run's logic out of
 * this file: it only reads.
 *
 *   healthz  the poll thread and every worker came round within
 *            HEALTH_STALE_SECONDS (a stopping run is healthy);
 *   readyz   not failed, not stopping, an assignment received, and no
 *            broker trouble: librdkafka's statistics show a broker up and
 *            the group's coordinator up, and no trouble was reported since
 *            (without statistics: none in the last TROUBLE_READY_SECONDS).
 *
 * Threads: observe_stats and observe_rebalance_input run on the poll thread
 * (librdkafka serves both from rd_kafka_consumer_poll), observe_snapshot_done
 * on the snapshot writer or (snapshotter_write_now: revokes) the poll thread,
 * render/health/ready on the listener's thread. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/mode.h"
#include "util/clock.h"
#include "util/stop.h"

enum {
  HEALTH_STALE_SECONDS = 60,  /* a loop this long without coming round is stuck */
  TROUBLE_READY_SECONDS = 30, /* without statistics: how long trouble makes it unready */
  STATISTICS_MS = 1000,       /* statistics.interval.ms of the input consumer (-X wins) */
};

void observe_init(kafka_mode *km) {
  kafka_observe *o = &km->observe;
  pthread_mutex_init(&o->lock, NULL);
  for (int p = 0; p < WIRE_MAX_INPUTS; p++)
    o->lag[p] = -1;
}

int observe_open(kafka_mode *km, char *err, size_t errlen) {
  metrics_address a;
  if (!km->opt->metrics_listen)
    return 0;
  if (metrics_parse_address(km->opt->metrics_listen, &a, err, errlen) < 0)
    return -1;
  km->observe.server = metrics_server_open(&a, err, errlen);
  return km->observe.server ? 0 : -1;
}

void observe_free(kafka_mode *km) {
  metrics_server_close(km->observe.server); /* no callback runs after it */
  km->observe.server = NULL;
  pthread_mutex_destroy(&km->observe.lock);
}

uint64_t kafka_messages(kafka_mode *km) {
  uint64_t n = 0;
  for (unsigned i = 0; km->workers && i < km->workers_n; i++)
    n += atomic_load_explicit(&km->workers[i].counters.messages, memory_order_relaxed);
  return n;
}

/* ---- librdkafka's statistics ---- */

/* The input consumer's statistics (JSON, librdkafka's STATISTICS.md):
 * topics.<input>.partitions.<p>.consumer_lag (the internal partition -1
 * and unknown lags, -1, skipped), the brokers' states, cgrp.state. */
static int observe_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
  (void)rk;
  kafka_mode *km = opaque;
  kafka_observe *o = &km->observe;
  json_t *root = json_loadb(json, len, 0, NULL);
  if (!root)
    return 0; /* librdkafka frees json */
  int up = 0;
  const char *name;
  json_t *b;
  json_object_foreach(json_object_get(root, "brokers"), name, b) {
    const char *source = json_string_value(json_object_get(b, "source"));
    const char *state = json_string_value(json_object_get(b, "state"));
    if (source && (!strcmp(source, "internal") || !strcmp(source, "logical")))
      continue;
    up += state && !strcmp(state, "UP");
  }
  const char *group = json_string_value(json_object_get(json_object_get(root, "cgrp"), "state"));
  json_t *parts = json_object_get(json_object_get(json_object_get(root, "topics"), km->opt->topic),
                                  "partitions");
  double now = clock_seconds();
  pthread_mutex_lock(&o->lock);
  for (int p = 0; p < WIRE_MAX_INPUTS; p++)
    o->lag[p] = -1;
  json_t *part;
  json_object_foreach(parts, name, part) {
    char *end;
    long p = strtol(name, &end, 10);
    json_t *lag = json_object_get(part, "consumer_lag");
    if (*end || p < 0 || p >= WIRE_MAX_INPUTS || !json_is_integer(lag) ||
        json_integer_value(lag) < 0)
      continue;
    o->lag[p] = json_integer_value(lag);
  }
  o->stats_at = now;
  o->brokers_up = up;
  snprintf(o->group_state, sizeof o->group_state, "%s", group ? group : "");
  if (up > 0 && group && !strcmp(group, "up"))
    o->healthy_at = now;
  pthread_mutex_unlock(&o->lock);
  json_decref(root);
  return 0;
}

int observe_client_conf(kafka_mode *km, rd_kafka_conf_t *conf, char *err, size_t errlen) {
  if (!km->opt->metrics_listen)
    return 0;
  char interval[16], why[256];
  snprintf(interval, sizeof interval, "%d", STATISTICS_MS);
  if (rd_kafka_conf_set(conf, "statistics.interval.ms", interval, why, sizeof why) !=
      RD_KAFKA_CONF_OK) {
    snprintf(err, errlen, "statistics.interval.ms: %s", why);
    return -1;
  }
  rd_kafka_conf_set_stats_cb(conf, observe_stats);
  return 0;
}

/* ---- the assignment ---- */

void observe_rebalance_input(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *parts, void *opaque) {
  kafka_mode *km = opaque;
  kafka_observe *o = &km->observe;
  rebalance_input(rk, err, parts, opaque);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    atomic_fetch_add(&o->rebalances, 1);
    atomic_store(&o->assignment_seen, 1);
  }
  rd_kafka_topic_partition_list_t *now = NULL;
  if (rd_kafka_assignment(rk, &now) != RD_KAFKA_RESP_ERR_NO_ERROR || !now)
    return;
  unsigned char mine[WIRE_MAX_INPUTS] = {0};
  for (int i = 0; i < now->cnt; i++) {
    int32_t p = now->elems[i].partition;
    if (p >= 0 && p < WIRE_MAX_INPUTS && !strcmp(now->elems[i].topic, km->opt->topic))
      mine[p] = 1;
  }
  rd_kafka_topic_partition_list_destroy(now);
  for (int p = 0; p < WIRE_MAX_INPUTS; p++)
    atomic_store_explicit(&o->assigned[p], mine[p], memory_order_relaxed);
}

/* ---- snapshots ---- */

static void observe_snapshot(kafka_mode *km, int32_t p, size_t bytes, double seconds) {
  kafka_observe *o = &km->observe;
  if (p < 0 || p >= WIRE_MAX_INPUTS)
    return;
  pthread_mutex_lock(&o->lock);
  o->snapshots[p] = (observed_snapshot){clock_seconds(), seconds, bytes};
  o->snapshots_written++;
  pthread_mutex_unlock(&o->lock);
}

void observe_snapshot_done(void *ctx, const snapshot_meta *meta, int written, size_t bytes,
                           double seconds, const char *err) {
  (void)err; /* a failure fails the run (shard_snapshots_check) */
  kafka_mode *km = ctx;
  const char *dot = strrchr(meta->shard_id, '.'); /* "kafka.<topic>.<p>" */
  if (written != 1 || !dot)
    return;
  char *end;
  long p = strtol(dot + 1, &end, 10);
  if (!*end && end != dot + 1)
    observe_snapshot(km, (int32_t)p, bytes, seconds);
}

/* ---- the listener's callbacks ---- */

static void render(void *ctx, metrics_text *t) {
  kafka_mode *km = ctx;
  kafka_observe *o = &km->observe;
  const char *topic = km->opt->topic;
  char label[32];

  uint64_t applied = 0;
  for (unsigned i = 0; i < km->workers_n; i++)
    applied += atomic_load_explicit(&km->workers[i].counters.applied, memory_order_relaxed);
  metrics_family(t, "regstream_records_read_total", "counter",
                 "Input messages taken by the workers: applied or rejected.");
  metrics_u64(t, "regstream_records_read_total", kafka_messages(km), NULL);
  metrics_family(t, "regstream_records_applied_total", "counter",
                 "Input messages applied to the per-person state (valid and in time).");
  metrics_u64(t, "regstream_records_applied_total", applied, NULL);
  uint64_t rejected[REASON_COUNT];
  dead_letter_counts(km->dead, rejected);
  metrics_family(t, "regstream_records_rejected_total", "counter",
                 "Input messages rejected to the dead-letter topic, per reason code.");
  for (int r = 1; r < REASON_COUNT; r++)
    metrics_u64(t, "regstream_records_rejected_total", rejected[r], "reason",
                reason_code((reason)r), NULL);
  metrics_family(t, "regstream_worker_messages_total", "counter",
                 "Input messages taken, per worker thread.");
  for (unsigned i = 0; i < km->workers_n; i++) {
    snprintf(label, sizeof label, "%u", i);
    metrics_u64(t, "regstream_worker_messages_total",
                atomic_load_explicit(&km->workers[i].counters.messages, memory_order_relaxed),
                "worker", label, NULL);
  }

  int assigned = 0;
  for (int p = 0; p < WIRE_MAX_INPUTS; p++)
    assigned += atomic_load_explicit(&o->assigned[p], memory_order_relaxed);
  metrics_family(t, "regstream_assigned_partitions", "gauge",
                 "Input partitions assigned to this instance.");
  metrics_u64(t, "regstream_assigned_partitions", (uint64_t)assigned, NULL);
  metrics_family(t, "regstream_held_partitions", "gauge",
                 "Input partitions paused, waiting for a writer schema the registry does not "
                 "serve now.");
  metrics_u64(t, "regstream_held_partitions", (uint64_t)atomic_load(&km->waits.held), NULL);
  metrics_family(t, "regstream_rebalances_total", "counter",
                 "Partition assignments received by the input consumer.");
  metrics_u64(t, "regstream_rebalances_total", atomic_load(&o->rebalances), NULL);
  metrics_family(t, "regstream_rows_published_total", "counter",
                 "Rows published: partial rows (stage 1) and total rows (merge stage).");
  metrics_u64(t, "regstream_rows_published_total", atomic_load(&km->stats.partials), "kind",
              "partial", NULL);
  metrics_u64(t, "regstream_rows_published_total", atomic_load(&km->stats.totals), "kind", "total",
              NULL);
  metrics_family(t, "regstream_registry_failures_total", "counter",
                 "Schema Registry lookups that did not answer (unreachable, timed out, refused).");
  metrics_u64(t, "regstream_registry_failures_total",
              km->schemas ? schema_source_failures(km->schemas) : 0, NULL);

  double now = clock_seconds();
  pthread_mutex_lock(&o->lock);
  metrics_family(t, "regstream_consumer_lag", "gauge",
                 "Messages behind the end of the log per assigned input partition (librdkafka's "
                 "consumer_lag: from the committed offset).");
  for (int p = 0; p < WIRE_MAX_INPUTS; p++) {
    if (o->lag[p] < 0 || !atomic_load_explicit(&o->assigned[p], memory_order_relaxed))
      continue;
    snprintf(label, sizeof label, "%d", p);
    metrics_u64(t, "regstream_consumer_lag", (uint64_t)o->lag[p], "topic", topic, "partition",
                label, NULL);
  }
  static const char *const snapshot_names[3] = {"regstream_snapshot_age_seconds",
                                                "regstream_snapshot_bytes",
                                                "regstream_snapshot_duration_seconds"};
  static const char *const snapshot_help[3] = {
      "Seconds since the last snapshot of the partition written by this instance.",
      "Bytes of the last snapshot of the partition.",
      ("Seconds the last snapshot of the partition took to make durable (outputs flushed, "
       "encoded, written, synced).")};
  for (int k = 0; k < 3; k++) {
    metrics_family(t, snapshot_names[k], "gauge", snapshot_help[k]);
    for (int p = 0; p < WIRE_MAX_INPUTS; p++) {
      const observed_snapshot *s = &o->snapshots[p];
      if (s->at == 0 || !atomic_load_explicit(&o->assigned[p], memory_order_relaxed))
        continue;
      snprintf(label, sizeof label, "%d", p);
      double v = k == 0 ? now - s->at : k == 1 ? (double)s->bytes : s->seconds;
      metrics_f64(t, snapshot_names[k], v, "partition", label, NULL);
    }
  }
  metrics_family(t, "regstream_snapshots_written_total", "counter",
                 "Snapshots written by this instance (interval, revoke and shutdown ones).");
  metrics_u64(t, "regstream_snapshots_written_total", o->snapshots_written, NULL);
  pthread_mutex_unlock(&o->lock);
}

static int failed_reason(kafka_mode *km, char *why, size_t len) {
  char reason[LATCH_REASON_MAX];
  latch_reason(&km->failure, reason, sizeof reason);
  snprintf(why, len, "the run failed: %s", reason);
  return -1;
}

static int stopping(kafka_mode *km) {
  return stop_requested() || atomic_load(&km->stage1_done);
}

static int health(void *ctx, char *why, size_t len) {
  kafka_mode *km = ctx;
  if (kafka_failed(km))
    return failed_reason(km, why, len);
  if (stopping(km))
    return 0; /* the loops end by design */
  double now = clock_seconds();
  double idle = now - atomic_load_explicit(&km->observe.poll_heartbeat, memory_order_relaxed);
  if (idle > HEALTH_STALE_SECONDS) {
    snprintf(why, len, "the poll thread has not come round for %.0f s", idle);
    return -1;
  }
  for (unsigned i = 0; i < km->workers_n; i++) {
    idle = now - atomic_load_explicit(&km->workers[i].counters.heartbeat, memory_order_relaxed);
    if (idle > HEALTH_STALE_SECONDS) {
      snprintf(why, len, "worker %u has not come round for %.0f s", i, idle);
      return -1;
    }
  }
  return 0;
}

static int ready(void *ctx, char *why, size_t len) {
  kafka_mode *km = ctx;
  kafka_observe *o = &km->observe;
  const kafka_run_options *opt = km->opt;
  if (kafka_failed(km))
    return failed_reason(km, why, len);
  if (stopping(km)) {
    snprintf(why, len, "stopping");
    return -1;
  }
  if (!atomic_load(&o->assignment_seen)) {
    snprintf(why, len, "waiting for the first assignment of consumer group %s on %s", opt->group,
             opt->topic);
    return -1;
  }
  double now = clock_seconds();
  pthread_mutex_lock(&km->trouble.lock);
  double trouble_at = km->trouble.latest;
  char what[sizeof km->trouble.what];
  snprintf(what, sizeof what, "%s", km->trouble.what);
  pthread_mutex_unlock(&km->trouble.lock);
  pthread_mutex_lock(&o->lock);
  double stats_at = o->stats_at, healthy_at = o->healthy_at;
  int up = o->brokers_up;
  char group[sizeof o->group_state];
  snprintf(group, sizeof group, "%s", o->group_state);
  pthread_mutex_unlock(&o->lock);
  if (stats_at > 0) {
    if (up == 0) {
      snprintf(why, len, "broker trouble: no connection to any broker (brokers %s)", opt->brokers);
      return -1;
    }
    if (strcmp(group, "up")) {
      snprintf(why, len, "broker trouble: consumer group %s has no coordinator (state %s)",
               opt->group, group);
      return -1;
    }
    /* Trouble since the last sound statistics (a second's margin: they may
     * have been taken before the trouble was reported). */
    if (trouble_at > 0 && trouble_at > healthy_at - 1.0) {
      snprintf(why, len, "broker trouble: %s", what);
      return -1;
    }
  } else if (trouble_at > 0 && now - trouble_at < TROUBLE_READY_SECONDS) {
    snprintf(why, len, "broker trouble: %s", what);
    return -1;
  }
  return 0;
}

int observe_serve(kafka_mode *km, char *err, size_t errlen) {
  if (!km->observe.server)
    return 0;
  double now = clock_seconds();
  observe_poll_alive(&km->observe, now);
  for (unsigned i = 0; i < km->workers_n; i++) {
    double zero = 0; /* a worker that came round already keeps its own */
    atomic_compare_exchange_strong(&km->workers[i].counters.heartbeat, &zero, now);
  }
  metrics_source src = {km, render, health, ready};
  return metrics_server_serve(km->observe.server, &src, err, errlen);
}
