/* export.c — `regstream export`: the output topic's latest row per key, read
 * to the current end of every partition, written as the SPEC §4 CSV. */
#include "tools/export.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "avro/rollup_codec.h"
#include "core/municipality.h"
#include "core/period.h"
#include "sink/csv.h"
#include "util/clock.h"

/* The latest value per key: per month a block of ROLLUP_KEYS slots. */
typedef struct slot {
  int present;
  int64_t counts[ROLLUP_COLUMNS];
} slot;

typedef struct table {
  slot *months[PERIOD_MONTHS];
} table;

static void table_free(table *t) {
  for (int m = 0; m < PERIOD_MONTHS; m++)
    free(t->months[m]);
}

/* Applies one message. 0, or -1 with a reason naming partition and offset. */
static int table_apply(table *t, const rd_kafka_message_t *m, export_result *res, char *err,
                       size_t errlen) {
  int32_t period, code;
  visitation vis;
  int mi;
  if (!m->key || rollup_key_parse(m->key, m->key_len, &period, &code, &vis) < 0 ||
      !period_valid(period) || (mi = municipality_index(code)) < 0) {
    snprintf(err, errlen,
             "partition %d offset %" PRId64
             ": key '%.*s' is not PERIOD,MUNICIPALITY,VISITATION of a valid month and municipality",
             (int)m->partition, m->offset, m->key ? (int)(m->key_len > 60 ? 60 : m->key_len) : 0,
             m->key ? (const char *)m->key : "");
    return -1;
  }
  int month = period_to_month(period);
  if (!t->months[month] && !(t->months[month] = calloc(ROLLUP_KEYS, sizeof(slot)))) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  slot *s = &t->months[month][mi * VISITATION_COUNT + (int)vis];
  if (!m->payload) { /* tombstone */
    res->tombstones++;
    s->present = 0;
    return 0;
  }
  rollup_msg row;
  if (rollup_codec_decode(m->payload, m->len, &row) < 0) {
    snprintf(err, errlen, "partition %d offset %" PRId64 ": value is not a Rollup row",
             (int)m->partition, m->offset);
    return -1;
  }
  if (row.period != period || row.municipality != code || row.visitation != vis) {
    snprintf(err, errlen,
             "partition %d offset %" PRId64 ": value %d,%d,%s does not match its key '%.*s'",
             (int)m->partition, m->offset, row.period, row.municipality,
             visitation_symbols[row.visitation], (int)m->key_len, (const char *)m->key);
    return -1;
  }
  s->present = 1;
  memcpy(s->counts, row.counts, sizeof s->counts);
  return 0;
}

/* Into rollup counters (uint32): fails on a counter that does not fit. */
static int table_to_rollup(const table *t, rollup *r, export_result *res, char *err,
                           size_t errlen) {
  for (int month = 0; month < PERIOD_MONTHS; month++) {
    if (!t->months[month])
      continue;
    for (int k = 0; k < ROLLUP_KEYS; k++) {
      const slot *s = &t->months[month][k];
      if (!s->present)
        continue;
      res->keys++;
      for (int c = 0; c < ROLLUP_COLUMNS; c++)
        if (s->counts[c] < 0 || s->counts[c] > (int64_t)UINT32_MAX) {
          snprintf(err, errlen, "row %d,%d,%s: %s = %" PRId64 " is outside 0..4294967295",
                   period_from_month(month), municipality_codes[k / VISITATION_COUNT],
                   visitation_symbols[k % VISITATION_COUNT], rollup_column_names[c], s->counts[c]);
          return -1;
        }
      if (s->counts[ROLLUP_MEMBERS] == 0)
        continue; /* SPEC §4: rows with members > 0 */
      uint32_t *row = rollup_row(r, month, k / VISITATION_COUNT, k % VISITATION_COUNT);
      for (int c = 0; c < ROLLUP_COLUMNS; c++)
        row[c] = (uint32_t)s->counts[c];
    }
  }
  return 0;
}

int export_run(const export_options *o, export_result *res, char *err, size_t errlen) {
  memset(res, 0, sizeof *res);
  char why[512];
  int rc = -1;
  table *t = calloc(1, sizeof *t);
  rd_kafka_t *rk = NULL;
  rd_kafka_topic_partition_list_t *parts = NULL;
  int64_t *high = NULL;
  int *done = NULL;
  rollup totals;
  rollup_init(&totals);
  double started = clock_seconds();
  if (!t) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  static const char *const defaults[] = {
      "group.id=regstream-export", "enable.auto.commit=false",   "enable.auto.offset.store=false",
      "enable.partition.eof=true", "auto.offset.reset=earliest", "client.id=regstream-export"};
  if (kafka_conf_apply(conf, o->brokers, defaults, (int)(sizeof defaults / sizeof *defaults), err,
                       errlen) < 0 ||
      kafka_conf_apply(conf, NULL, o->conf, o->conf_count, err, errlen) < 0) {
    rd_kafka_conf_destroy(conf);
    goto done;
  }
  rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    snprintf(err, errlen, "cannot make a Kafka consumer: %s", why);
    goto done;
  }
  rd_kafka_poll_set_consumer(rk);
  const rd_kafka_metadata_t *md = kafka_metadata_fetch(rk, o->brokers, 10000, err, errlen);
  if (!md)
    goto done;
  const rd_kafka_metadata_topic_t *mt = kafka_metadata_topic(md, o->topic);
  if (!mt && kafka_topic_denied(rk, o->topic)) {
    kafka_denied(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, "read", o->topic, NULL, err,
                 errlen); /* a consumer's metadata request makes no topic */
    rd_kafka_metadata_destroy(md);
    goto done;
  } else if (!mt || mt->err || mt->partition_cnt <= 0) {
    snprintf(err, errlen, "topic %s: %s", o->topic,
             mt && mt->err ? rd_kafka_err2str(mt->err) : "does not exist");
    rd_kafka_metadata_destroy(md);
    goto done;
  }
  int n = mt->partition_cnt;
  res->partitions = n;
  rd_kafka_metadata_destroy(md);
  high = calloc((size_t)n, sizeof *high);
  done = calloc((size_t)n, sizeof *done);
  parts = rd_kafka_topic_partition_list_new(n);
  if (!high || !done) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  int remaining = 0;
  for (int p = 0; p < n; p++) {
    int64_t low;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, o->topic, p, &low, &high[p],
                                                             o->timeout_seconds * 1000);
    if (e) {
      snprintf(err, errlen, "watermarks of %s partition %d: %s", o->topic, p, rd_kafka_err2str(e));
      goto done;
    }
    done[p] = high[p] <= low;
    if (!done[p]) {
      remaining++;
      rd_kafka_topic_partition_list_add(parts, o->topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
  }
  if (remaining > 0) {
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts);
    if (e) {
      snprintf(err, errlen, "assigning %s: %s", o->topic, rd_kafka_err2str(e));
      goto done;
    }
  }
  double last_progress = clock_seconds();
  while (remaining > 0) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
    if (!m) {
      if (clock_seconds() - last_progress > o->timeout_seconds) {
        snprintf(err, errlen, "no progress reading %s for %d s (%d partition(s) not at their end)",
                 o->topic, o->timeout_seconds, remaining);
        goto done;
      }
      continue;
    }
    last_progress = clock_seconds();
    int p = m->partition;
    int failed = 0;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (p >= 0 && p < n && !done[p] && m->offset >= high[p]) {
        done[p] = 1;
        remaining--;
      }
    } else if (m->err) {
      snprintf(err, errlen, "reading %s: %s", o->topic, rd_kafka_message_errstr(m));
      failed = 1;
    } else if (p >= 0 && p < n && m->offset < high[p]) {
      res->messages++;
      failed = table_apply(t, m, res, err, errlen) < 0;
      if (!done[p] && m->offset + 1 >= high[p]) {
        done[p] = 1;
        remaining--;
      }
    }
    rd_kafka_message_destroy(m);
    if (failed)
      goto done;
  }
  if (table_to_rollup(t, &totals, res, err, errlen) < 0)
    goto done;
  if (csv_write_rollup(o->csv_path, &totals, &res->rows, err, errlen) < 0)
    goto done;
  res->seconds = clock_seconds() - started;
  rc = 0;
done:
  if (rk) {
    rd_kafka_assign(rk, NULL);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
  }
  if (parts)
    rd_kafka_topic_partition_list_destroy(parts);
  free(high);
  free(done);
  rollup_free(&totals);
  table_free(t);
  free(t);
  return rc;
}
