/* export.c — `regstream export`: the output topic's latest row per key, read
 * to the current end of every partition, written as the SPEC §4 CSV and/or
 * into a PostgreSQL table (sink/postgres.h); --follow keeps the table up to
 * date batch by batch, each batch one transaction with its offsets. */
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
#include "sink/postgres.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/stop.h"

/* The latest value per key: per month a block of ROLLUP_KEYS slots. */
typedef struct slot {
  int present;
  int dirty; /* --follow: changed in the batch in hand */
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
static int table_apply(table *t, const rd_kafka_message_t *m, export_result *res, slot **touched,
                       int *touched_month, int *touched_key, char *err, size_t errlen) {
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
  *touched = s;
  *touched_month = month;
  *touched_key = mi * VISITATION_COUNT + (int)vis;
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

/* ---------------------------------------------------------------- --follow */

/* The batch in hand: the latest value of each key changed since the last
 * commit (slots of a table of its own, listed in order of first change), and
 * per partition the position it reaches. */
typedef struct batch {
  table keys;
  int (*dirty)[2]; /* month, key */
  size_t count, cap;
  uint64_t messages;
  int64_t *pos, *stored; /* per partition: reached, and in the table (-1: none) */
  int partitions;
  double started;
} batch;

static int batch_mark(batch *b, slot *s, int month, int key) {
  if (s->dirty)
    return 0;
  if (b->count == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 1024;
    int(*grown)[2] = realloc(b->dirty, cap * sizeof *grown);
    if (!grown)
      return -1;
    b->dirty = grown;
    b->cap = cap;
  }
  s->dirty = 1;
  b->dirty[b->count][0] = month;
  b->dirty[b->count][1] = key;
  b->count++;
  return 0;
}

static int batch_pending(const batch *b) {
  if (b->count)
    return 1;
  for (int p = 0; p < b->partitions; p++)
    if (b->pos[p] != b->stored[p])
      return 1;
  return 0;
}

/* One transaction for the batch, tried again (reconnecting) while the
 * database is unavailable. 0 committed, 1 stopped by a signal before it
 * could be, -1 a failure that waiting does not mend. */
static int batch_commit(const export_options *o, pg_sink **pg, batch *b, int *clear_first,
                        export_result *res, char *err, size_t errlen) {
  pg_change *changes = calloc(b->count ? b->count : 1, sizeof *changes);
  uint32_t(*counts)[ROLLUP_COLUMNS] = calloc(b->count ? b->count : 1, sizeof *counts);
  pg_offset *offsets = calloc((size_t)b->partitions, sizeof *offsets);
  int rc = -1, count = 0;
  if (!changes || !counts || !offsets) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < b->count; i++) {
    int month = b->dirty[i][0], key = b->dirty[i][1];
    const slot *s = &b->keys.months[month][key];
    changes[i] = (pg_change){period_from_month(month), municipality_codes[key / VISITATION_COUNT],
                             key % VISITATION_COUNT, s->present, counts[i]};
    for (int c = 0; s->present && c < ROLLUP_COLUMNS; c++) {
      if (s->counts[c] < 0 || s->counts[c] > (int64_t)UINT32_MAX) {
        snprintf(err, errlen, "row %d,%d,%s: %s = %" PRId64 " is outside 0..4294967295",
                 changes[i].period, changes[i].municipality,
                 visitation_symbols[key % VISITATION_COUNT], rollup_column_names[c], s->counts[c]);
        goto done;
      }
      counts[i][c] = (uint32_t)s->counts[c];
    }
  }
  for (int p = 0; p < b->partitions; p++)
    if (b->pos[p] != b->stored[p])
      offsets[count++] = (pg_offset){p, b->pos[p]};
  for (;;) {
    int transient = 0;
    if (*pg && pg_apply(*pg, *clear_first, changes, b->count, o->min_cell, o->topic, offsets, count,
                        &transient, err, errlen) == 0)
      break;
    if (*pg && !transient)
      goto done;
    if (*pg)
      log_msg(LOG_WARN, "postgres", "%s; the batch (%zu keys, %llu messages) waits", err, b->count,
              (unsigned long long)b->messages);
    pg_close(*pg);
    *pg = NULL;
    if (stop_requested()) {
      rc = 1;
      goto done;
    }
    if (!(*pg = pg_open_wait(o->postgres, o->postgres_table, 0, err, errlen))) {
      rc = stop_requested() ? 1 : -1;
      goto done;
    }
  }
  /* Committed: the table reflects the batch; start the next one. */
  *clear_first = 0;
  res->batches++;
  res->changes += b->count;
  for (size_t i = 0; i < b->count; i++) {
    slot *s = &b->keys.months[b->dirty[i][0]][b->dirty[i][1]];
    s->dirty = 0;
    s->present = 0;
  }
  b->count = 0;
  b->messages = 0;
  for (int p = 0; p < b->partitions; p++)
    b->stored[p] = b->pos[p];
  rc = 0;
done:
  free(changes);
  free(counts);
  free(offsets);
  return rc;
}

/* Consumer errors that waiting does not mend. */
static int kafka_fatal(rd_kafka_resp_err_t e) {
  return e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
         e == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC || e == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
         e == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED;
}

enum { BATCH_MESSAGES = 20000 };
#define BATCH_SECONDS 1.0

static int export_follow(const export_options *o, rd_kafka_t *rk, int n, export_result *res,
                         char *err, size_t errlen) {
  int rc = -1, clear_first = 0, stored_rows = 0;
  batch b = {.partitions = n};
  rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
  b.pos = calloc((size_t)n, sizeof *b.pos);
  b.stored = calloc((size_t)n, sizeof *b.stored);
  pg_sink *pg = NULL;
  if (!b.pos || !b.stored) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  /* Where the table is: its stored offsets, read once connected. */
  for (;;) {
    if (!(pg = pg_open_wait(o->postgres, o->postgres_table, 0, err, errlen))) {
      if (stop_requested())
        rc = 1;
      goto done;
    }
    int transient = 0;
    if (pg_read_offsets(pg, o->topic, b.stored, n, &stored_rows, &transient, err, errlen) == 0)
      break;
    if (!transient)
      goto done;
    log_msg(LOG_WARN, "postgres", "%s; trying again", err);
    pg_close(pg);
    pg = NULL;
  }
  clear_first = stored_rows == 0;
  for (int p = 0; p < n; p++) {
    b.pos[p] = b.stored[p];
    rd_kafka_topic_partition_list_add(parts, o->topic, p)->offset =
        b.stored[p] >= 0 ? b.stored[p] : RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts);
  if (e) {
    snprintf(err, errlen, "assigning %s: %s", o->topic, rd_kafka_err2str(e));
    goto done;
  }
  if (!o->quiet)
    log_cmd(LOG_INFO, "export",
            "following %s (%d partition(s)) into %s, %s; SIGTERM or SIGINT ends it after the batch "
            "in hand",
            o->topic, n, pg_describe(pg),
            stored_rows ? "from the offsets stored with it"
                        : "from the beginning (no offsets stored: the table is emptied first)");
  double kafka_said = -1;
  b.started = clock_seconds();
  for (;;) {
    int stop = stop_requested();
    rd_kafka_message_t *m = stop ? NULL : rd_kafka_consumer_poll(rk, 100);
    if (m) {
      int p = m->partition;
      int failed = 0;
      if (p < 0 || p >= n)
        ;
      else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        b.pos[p] = m->offset;
      } else if (m->err) {
        if (kafka_fatal(m->err)) {
          snprintf(err, errlen, "reading %s: %s", o->topic, rd_kafka_message_errstr(m));
          failed = 1;
        } else if (kafka_said < 0 || clock_seconds() - kafka_said >= 10) {
          log_msg(LOG_WARN, "export", "reading %s: %s; trying again", o->topic,
                  rd_kafka_message_errstr(m));
          kafka_said = clock_seconds();
        }
      } else {
        slot *s;
        int month, key;
        res->messages++;
        b.messages++;
        failed = table_apply(&b.keys, m, res, &s, &month, &key, err, errlen) < 0;
        if (!failed && batch_mark(&b, s, month, key) < 0) {
          snprintf(err, errlen, "out of memory");
          failed = 1;
        }
        b.pos[p] = m->offset + 1;
      }
      rd_kafka_message_destroy(m);
      if (failed)
        goto done;
    }
    if (batch_pending(&b) && (stop || !m || b.messages >= BATCH_MESSAGES ||
                              clock_seconds() - b.started >= BATCH_SECONDS)) {
      int c = batch_commit(o, &pg, &b, &clear_first, res, err, errlen);
      if (c < 0)
        goto done;
      if (c > 0) {
        log_cmd(LOG_WARN, "export",
                "stopped before PostgreSQL took the last batch: %llu message(s) not applied; "
                "the next start reads them again from the stored offsets",
                (unsigned long long)b.messages);
        break;
      }
      b.started = clock_seconds();
    } else if (!batch_pending(&b))
      b.started = clock_seconds();
    if (stop)
      break;
  }
  rc = 0;
done:
  res->stopped_by = stop_requested();
  pg_close(pg);
  rd_kafka_topic_partition_list_destroy(parts);
  table_free(&b.keys);
  free(b.dirty);
  free(b.pos);
  free(b.stored);
  return rc < 0 ? -1 : 0;
}

int export_run(const export_options *o, export_result *res, char *err, size_t errlen) {
  memset(res, 0, sizeof *res);
  int rc = -1;
  table *t = calloc(1, sizeof *t);
  rd_kafka_t *rk = NULL;
  rd_kafka_topic_partition_list_t *parts = NULL;
  int64_t *high = NULL;
  int *done = NULL;
  pg_sink *pg = NULL;
  rollup totals;
  rollup_init(&totals);
  double started = clock_seconds();
  if (o->follow)
    stop_install(); /* from the start: a signal while connecting ends it cleanly too */
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
  if (!(rk = kafka_client_new(RD_KAFKA_CONSUMER, conf, "consumer", err, errlen)))
    goto done;
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
  if (o->follow) {
    rc = export_follow(o, rk, n, res, err, errlen);
    goto done;
  }
  /* The table there and of the right shape before reading (a refused login
   * fails here, not after the whole topic). */
  if (o->postgres &&
      !(pg = pg_open_wait(o->postgres, o->postgres_table, o->timeout_seconds, err, errlen)))
    goto done;
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
      slot *s;
      int month, key;
      failed = table_apply(t, m, res, &s, &month, &key, err, errlen) < 0;
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
  if (o->csv_path &&
      csv_write_rollup_min_cell(o->csv_path, &totals, o->min_cell, &res->rows, err, errlen) < 0)
    goto done;
  if (o->postgres) {
    pg_offset *offsets = calloc((size_t)n, sizeof *offsets);
    if (!offsets) {
      snprintf(err, errlen, "out of memory");
      goto done;
    }
    for (int p = 0; p < n; p++)
      offsets[p] = (pg_offset){p, high[p]};
    int replaced = -1;
    for (int attempt = 0; attempt < 2 && replaced < 0; attempt++) {
      int transient = 0;
      if (!pg &&
          !(pg = pg_open_wait(o->postgres, o->postgres_table, o->timeout_seconds, err, errlen)))
        break;
      replaced = pg_replace(pg, &totals, o->min_cell, o->topic, offsets, n, &res->postgres_rows,
                            &transient, err, errlen);
      if (replaced < 0 && !transient)
        break;
      if (replaced < 0) {
        log_msg(LOG_WARN, "postgres", "%s; trying again", err);
        pg_close(pg);
        pg = NULL;
      }
    }
    free(offsets);
    if (replaced < 0)
      goto done;
  }
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
  pg_close(pg);
  return rc;
}
