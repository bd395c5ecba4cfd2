/* kafka.c — librdkafka helpers shared by produce, export and the Kafka mode:
 * configuration items, the reachability check, topics made on demand. */
#include "kafka/kafka.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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
  for (double until = now_seconds() + 15; now_seconds() < until;) {
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
