/* client.c — librdkafka clients. For every Kafka client of the program
 * (produce, export, the Kafka mode): configuration items, the reachability
 * check, topics made on demand (client.h). For the Kafka mode's run (mode.h):
 * its three clients by role with their defaults and callbacks, its topics,
 * log ends and row production. What the clients' messages mean stays with
 * the worker, partials and merger files. */
#include "kafka/client.h"
#include "kafka/mode.h"
#include "util/clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* librdkafka's own log lines and error events (broker down, retries) would
 * break the one-line error rule: the tools report what failed themselves.
 * Only critical log lines get through. */
static void kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  (void)rk;
  if (level <= 2)
    fprintf(stderr, "regstream: librdkafka %s: %s\n", fac, buf);
}

static void kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  (void)rk;
  (void)err;
  (void)reason;
  (void)opaque;
}

int kafka_conf_apply(rd_kafka_conf_t *conf, const char *brokers, const char *const *items,
                     int count, char *err, size_t errlen) {
  char why[512];
  rd_kafka_conf_set_log_cb(conf, kafka_log);
  rd_kafka_conf_set_error_cb(conf, kafka_error);
  if (brokers &&
      rd_kafka_conf_set(conf, "bootstrap.servers", brokers, why, sizeof why) != RD_KAFKA_CONF_OK) {
    snprintf(err, errlen, "bootstrap.servers: %s", why);
    return -1;
  }
  for (int i = 0; i < count; i++) {
    const char *eq = strchr(items[i], '=');
    if (!eq || eq == items[i]) {
      snprintf(err, errlen, "-X needs key=value, got '%s'", items[i]);
      return -1;
    }
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)(eq - items[i]), items[i]);
    if (rd_kafka_conf_set(conf, key, eq + 1, why, sizeof why) != RD_KAFKA_CONF_OK) {
      snprintf(err, errlen, "-X %s: %s", items[i], why);
      return -1;
    }
  }
  return 0;
}

int kafka_conf_check(const char *const *items, int count, char *err, size_t errlen) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  int rc = kafka_conf_apply(conf, NULL, items, count, err, errlen);
  rd_kafka_conf_destroy(conf);
  return rc;
}

const rd_kafka_metadata_t *kafka_metadata_fetch(rd_kafka_t *rk, const char *brokers, int timeout_ms,
                                                char *err, size_t errlen) {
  const rd_kafka_metadata_t *md = NULL;
  rd_kafka_resp_err_t rc = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
  if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
    snprintf(err, errlen, "cannot reach Kafka at %s within %d s: %s", brokers, timeout_ms / 1000,
             rd_kafka_err2str(rc));
    return NULL;
  }
  return md;
}

const rd_kafka_metadata_topic_t *kafka_metadata_topic(const rd_kafka_metadata_t *md,
                                                      const char *topic) {
  for (int i = 0; i < md->topic_cnt; i++)
    if (!strcmp(md->topics[i].topic, topic))
      return &md->topics[i];
  return NULL;
}

static int create_topic(rd_kafka_t *rk, const kafka_topic_spec *o, char *err, size_t errlen) {
  char why[512];
  rd_kafka_NewTopic_t *nt =
      rd_kafka_NewTopic_new(o->name, o->partitions, o->replication_factor, why, sizeof why);
  if (!nt) {
    snprintf(err, errlen, "cannot create topic %s: %s", o->name, why);
    return -1;
  }
  if (o->compacted &&
      rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact") != RD_KAFKA_RESP_ERR_NO_ERROR) {
    snprintf(err, errlen, "cannot create topic %s: cleanup.policy rejected", o->name);
    rd_kafka_NewTopic_destroy(nt);
    return -1;
  }
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(ao, 10000, why, sizeof why);
  rd_kafka_AdminOptions_set_request_timeout(ao, 15000, why, sizeof why);
  rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 20000);
  int rc = 0;
  if (!ev) {
    snprintf(err, errlen, "creating topic %s timed out", o->name);
    rc = -1;
  } else if (rd_kafka_event_error(ev)) {
    snprintf(err, errlen, "creating topic %s: %s", o->name, rd_kafka_event_error_string(ev));
    rc = -1;
  } else {
    size_t n;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; i++) {
      rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
      if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        const char *msg = rd_kafka_topic_result_error_string(res[i]);
        snprintf(err, errlen, "creating topic %s: %s", o->name, msg ? msg : rd_kafka_err2str(e));
        rc = -1;
      }
    }
  }
  if (ev)
    rd_kafka_event_destroy(ev);
  rd_kafka_AdminOptions_destroy(ao);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_queue_destroy(q);
  return rc;
}

/* Makes the topic unless it exists; then waits until every partition has a
 * leader. */
int kafka_topic_ensure(rd_kafka_t *rk, const char *brokers, const kafka_topic_spec *o,
                       const char *note_prefix, int *created, char *err, size_t errlen) {
  const rd_kafka_metadata_t *md = kafka_metadata_fetch(rk, brokers, 10000, err, errlen);
  if (!md)
    return -1;
  const rd_kafka_metadata_topic_t *t = kafka_metadata_topic(md, o->name);
  int exists = t && t->err == RD_KAFKA_RESP_ERR_NO_ERROR && t->partition_cnt > 0;
  if (exists && t->partition_cnt != o->partitions && note_prefix)
    fprintf(stderr, "%s: topic %s exists with %d partitions; using them\n", note_prefix, o->name,
            t->partition_cnt);
  rd_kafka_metadata_destroy(md);
  *created = 0;
  if (exists)
    return 0;
  if (create_topic(rk, o, err, errlen) < 0)
    return -1;
  *created = 1;
  for (double until = clock_seconds() + 15; clock_seconds() < until;) {
    md = kafka_metadata_fetch(rk, brokers, 5000, err, errlen);
    if (!md)
      return -1;
    t = kafka_metadata_topic(md, o->name);
    int ready = t && t->err == 0 && t->partition_cnt > 0;
    for (int p = 0; ready && p < t->partition_cnt; p++)
      ready = t->partitions[p].err == 0 && t->partitions[p].leader >= 0;
    rd_kafka_metadata_destroy(md);
    if (ready)
      return 0;
    struct timespec pause = {0, 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  snprintf(err, errlen, "topic %s was created but has no leaders after 15 s", o->name);
  return -1;
}

int kafka_conf_add(const char **items, int *count, const char *item, char *err, size_t errlen) {
  if (*count == KAFKA_MAX_CONF) {
    snprintf(err, errlen, "too many -X options (at most %d)", KAFKA_MAX_CONF);
    return -1;
  }
  if (!strchr(item, '=') || item[0] == '=') {
    snprintf(err, errlen, "-X needs key=value, got '%s'", item);
    return -1;
  }
  if (kafka_conf_check(&item, 1, err, errlen) < 0)
    return -1;
  items[(*count)++] = item;
  return 0;
}

/* ---- the Kafka mode's clients ---- */

/* Every row and dead letter must reach the broker: one that librdkafka gave
 * up on (message.timeout.ms) stops the run, whose restart sends it again. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  if (!m->err)
    return;
  char why[400];
  snprintf(why, sizeof why,
           "a message to %s was not delivered: %s (restart when the brokers "
           "are reachable; nothing is lost)",
           rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
  kafka_fail(opaque, why);
}

/* The input consumer's error events (all brokers down, transport): trouble
 * reported while librdkafka retries; a fatal one (e.g. a fenced static
 * member) stops the run. */
static void on_consumer_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char fatal[300], why[500];
    rd_kafka_fatal_error(rk, fatal, sizeof fatal);
    snprintf(why, sizeof why, "fatal Kafka error: %s", fatal);
    kafka_fail(opaque, why);
    return;
  }
  kafka_trouble(opaque, reason);
}

/* librdkafka (2.0) stops fetching a partition whose local queue holds
 * queued.min.messages (100000 by default), so the next fetch may name only
 * partitions at their end, which the broker holds for fetch.wait.max.ms
 * (500 ms by default) while the paused ones drain. A deeper queue (still
 * bounded by queued.max.messages.kbytes) and a 50 ms hold took the
 * reprocessing rate from 0.4 to 1.4-1.8 M messages/s here
 * (bench/results/kafka.md), at 20 idle fetches a second. A subscription
 * to a topic the broker's metadata does not show yet (the partials topic
 * just created) is looked at again on the next refresh: 10 s, not 5 min. */
static const char *const consumer_defaults[] = {
    "enable.partition.eof=true",         "auto.offset.reset=earliest",
    "fetch.max.bytes=52428800",          "max.partition.fetch.bytes=4194304",
    "queued.max.messages.kbytes=262144", "fetch.wait.max.ms=50",
    "queued.min.messages=1000000",       "topic.metadata.refresh.interval.ms=10000"};
/* Every row, mark and dead letter on all in-sync replicas, in order, once. */
static const char *const producer_defaults[] = {"linger.ms=20", "compression.type=lz4",
                                                "enable.idempotence=true", "acks=all",
                                                "queue.buffering.max.messages=1000000"};

rd_kafka_t *client_new(kafka_mode *km, client_role role, char *err, size_t errlen) {
  const kafka_run_options *o = km->opt;
  rd_kafka_type_t type = role == CLIENT_PRODUCER ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER;
  const char *const *defaults = role == CLIENT_PRODUCER ? producer_defaults : consumer_defaults;
  int n = role == CLIENT_PRODUCER ? 5 : 8;
  char merge_group[600];
  snprintf(merge_group, sizeof merge_group, "%s.merge", o->group);
  const char *group = role == CLIENT_INPUT ? o->group : role == CLIENT_MERGER ? merge_group : NULL;
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  char why[512];
  if (kafka_conf_apply(conf, o->brokers, defaults, n, err, errlen) < 0 ||
      (group && rd_kafka_conf_set(conf, "group.id", group, why, sizeof why) != RD_KAFKA_CONF_OK) ||
      /* The input resumes at a snapshot's offset: one outside the log is an
       * error to report (the worker), never a silent jump. */
      (role == CLIENT_INPUT && rd_kafka_conf_set(conf, "auto.offset.reset", "error", why,
                                                 sizeof why) != RD_KAFKA_CONF_OK) ||
      kafka_conf_apply(conf, NULL, o->conf, o->conf_count, err, errlen) < 0) {
    if (group && !err[0])
      snprintf(err, errlen, "group.id: %s", why);
    rd_kafka_conf_destroy(conf);
    return NULL;
  }
  if (role == CLIENT_INPUT) {
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_input);
    rd_kafka_conf_set_error_cb(conf, on_consumer_error);
  } else if (role == CLIENT_MERGER) {
    rd_kafka_conf_set_rebalance_cb(conf, merger_rebalance);
  } else {
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  }
  rd_kafka_conf_set_opaque(conf, km);
  rd_kafka_t *rk = rd_kafka_new(type, conf, why, sizeof why);
  if (!rk) {
    snprintf(err, errlen, "cannot start a Kafka client: %s", why);
    rd_kafka_conf_destroy(conf);
    return NULL;
  }
  if (type == RD_KAFKA_CONSUMER)
    rd_kafka_poll_set_consumer(rk);
  return rk;
}

int client_subscribe(rd_kafka_t *rk, const char *topic, char *err, size_t errlen) {
  rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(t, topic, RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, t);
  rd_kafka_topic_partition_list_destroy(t);
  if (e) {
    snprintf(err, errlen, "cannot subscribe to %s: %s", topic, rd_kafka_err2str(e));
    return -1;
  }
  return 0;
}

int client_prepare_topics(kafka_mode *km, char *err, size_t errlen) {
  const kafka_run_options *o = km->opt;
  rd_kafka_t *rk = km->clients.producer;
  const rd_kafka_metadata_t *md = kafka_metadata_fetch(rk, o->brokers, 10000, err, errlen);
  if (!md)
    return -1;
  const rd_kafka_metadata_topic_t *t = kafka_metadata_topic(md, o->topic);
  int inputs = t && !t->err ? t->partition_cnt : 0;
  rd_kafka_metadata_destroy(md);
  if (inputs > MAX_PARTITIONS) {
    snprintf(err, errlen, "input topic %s has %d partitions; at most %d are supported", o->topic,
             inputs, MAX_PARTITIONS);
    return -1;
  }
  if (inputs <= 0) {
    snprintf(err, errlen,
             "input topic %s does not exist at %s (create it, e.g. with regstream "
             "produce)",
             o->topic, o->brokers);
    return -1;
  }
  int rf = o->replication_factor ? o->replication_factor : -1;
  const kafka_topic_spec specs[] = {{o->partials_topic, OUTPUT_PARTITIONS, rf, 1},
                                    {o->output_topic, OUTPUT_PARTITIONS, rf, 1},
                                    {o->dead_letter_topic, OUTPUT_PARTITIONS, rf, 0}};
  for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
    int created;
    if (kafka_topic_ensure(rk, o->brokers, &specs[i], NULL, &created, err, errlen) < 0)
      return -1;
  }
  md = kafka_metadata_fetch(rk, o->brokers, 10000, err, errlen);
  if (!md)
    return -1;
  t = kafka_metadata_topic(md, o->partials_topic);
  int partials = t && !t->err ? t->partition_cnt : 0;
  rd_kafka_metadata_destroy(md);
  if (partials <= 0 || partials > MERGE_MAX_PARTIALS) {
    snprintf(err, errlen, "partials topic %s has %d partitions (1 to %d are supported)",
             o->partials_topic, partials, MERGE_MAX_PARTIALS);
    return -1;
  }
  km->clients.partials_partitions = partials;
  return 0;
}

/* In one request per broker, through the producer: a consumer's connection
 * may be holding a fetch for fetch.wait.max.ms, and a broker answers a
 * connection in order. */
int client_log_ends(kafka_mode *km, const char *topic, const int32_t *parts, int n, int64_t *ends) {
  if (n == 0)
    return 0;
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n);
  for (int i = 0; i < n; i++) /* a timestamp of -1: the latest offset */
    rd_kafka_topic_partition_list_add(list, topic, parts[i])->offset = RD_KAFKA_OFFSET_END;
  int ok =
      rd_kafka_offsets_for_times(km->clients.producer, list, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR;
  for (int i = 0; ok && i < list->cnt; i++) {
    ok = !list->elems[i].err && list->elems[i].offset >= 0;
    ends[i] = list->elems[i].offset;
  }
  rd_kafka_topic_partition_list_destroy(list);
  return ok ? 0 : -1;
}

void client_produce(kafka_mode *km, const char *topic, int32_t partition, const char *key,
                    size_t klen, const uint8_t *value, size_t vlen) {
  rd_kafka_resp_err_t e;
  do {
    e = rd_kafka_producev(km->clients.producer, RD_KAFKA_V_TOPIC(topic),
                          RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)value, vlen),
                          RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(km->clients.producer, 10);
    /* A full queue drains as the brokers acknowledge; once the run has
     * failed (they stopped answering) nothing more needs to leave. */
  } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL && !kafka_failed(km));
  if (e && !kafka_failed(km))
    kafka_fail(km, "cannot produce rollup rows to Kafka");
}

int client_log_start(kafka_mode *km, const char *topic, int32_t p, int64_t *start) {
  int64_t low = -1, high = -1;
  rd_kafka_resp_err_t e =
      rd_kafka_query_watermark_offsets(km->clients.producer, topic, p, &low, &high, 10000);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR || low < 0)
    return -1;
  *start = low;
  return 0;
}
