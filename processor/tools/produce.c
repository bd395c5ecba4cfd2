/* produce.c — `regstream produce`: Avro container files onto a Kafka topic,
 * keyed by person_id, plain or Confluent-framed; creates the topic. */
#include "tools/produce.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "avro/decode.h"
#include "avro/ocf.h"
#include "util/clock.h"
#include "util/log.h"

/* ---- producing ---- */

typedef struct delivery {
  uint64_t delivered;
  uint64_t failed;
  rd_kafka_resp_err_t first_error;
} delivery;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  delivery *d = opaque;
  if (m->err) {
    if (!d->failed++)
      d->first_error = m->err;
  } else {
    d->delivered++;
  }
}

static int ensure_topic(rd_kafka_t *rk, const produce_options *o, int *created, char *err,
                        size_t errlen) {
  kafka_topic_spec spec = {o->topic, o->partitions, o->replication_factor, 0, NULL};
  return kafka_topic_ensure(rk, o->brokers, &spec, o->quiet ? NULL : "produce", created, err,
                            errlen);
}

static size_t format_key(int64_t v, char *buf) {
  char tmp[24];
  size_t n = 0;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  size_t len = 0;
  if (v < 0)
    buf[len++] = '-';
  while (n)
    buf[len++] = tmp[--n];
  return len;
}

typedef struct producer {
  const produce_options *o;
  rd_kafka_t *rk;
  rd_kafka_topic_t *rkt;
  produce_result *res;
  uint8_t *frame; /* Confluent: header + datum */
  size_t frame_cap;
  uint64_t queued;
  double started, next_progress;
} producer;

static int produce_one(producer *p, const uint8_t *datum, size_t len, int64_t person_id, char *err,
                       size_t errlen) {
  char key[24];
  size_t klen = format_key(person_id, key);
  const uint8_t *value = datum;
  size_t vlen = len;
  if (p->o->framing == FRAMING_CONFLUENT) {
    if (len + FRAMING_CONFLUENT_HEADER > p->frame_cap) {
      size_t cap = (len + FRAMING_CONFLUENT_HEADER) * 2;
      uint8_t *grown = realloc(p->frame, cap);
      if (!grown) {
        snprintf(err, errlen, "out of memory");
        return -1;
      }
      p->frame = grown;
      p->frame_cap = cap;
      framing_confluent_header((uint32_t)p->o->schema_id, p->frame);
    }
    memcpy(p->frame + FRAMING_CONFLUENT_HEADER, datum, len);
    value = p->frame;
    vlen = len + FRAMING_CONFLUENT_HEADER;
  }
  while (rd_kafka_produce(p->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, (void *)value, vlen,
                          key, klen, NULL) != 0) {
    rd_kafka_resp_err_t e = rd_kafka_last_error();
    if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      snprintf(err, errlen, "producing to %s: %s", p->o->topic, rd_kafka_err2str(e));
      return -1;
    }
    rd_kafka_poll(p->rk, 5);
  }
  p->res->bytes += vlen;
  if ((++p->queued & 0x3fff) == 0) {
    rd_kafka_poll(p->rk, 0);
    double now = clock_seconds();
    if (now >= p->next_progress) {
      p->next_progress = now + 5;
      if (!p->o->quiet)
        log_cmd_fields(LOG_INFO, "produce",
                       json_pack("{s:I,s:o}", "records", (json_int_t)p->queued, "records_per_s",
                                 log_real((double)p->queued / (now - p->started))),
                       "%" PRIu64 " records queued, %.0f records/s", p->queued,
                       (double)p->queued / (now - p->started));
    }
  }
  return 0;
}

/* Produce every record of one file. Skips are counted and reported. */
static int produce_file(producer *p, ocf_reader *r, const pm_plan *plan, char *err, size_t errlen) {
  ocf_block b;
  ocf_buf buf = {0};
  int rc = 0;
  char why[512];
  while (rc == 0 && ocf_next_block(r, &b) == OCF_GOT) {
    ocf_readahead(r, b.file_offset);
    if (b.kind == OCF_BLOCK_DAMAGED) {
      p->res->skipped++;
      log_cmd_fields(LOG_WARN, "produce",
                     json_pack("{s:s,s:I,s:I}", "file", ocf_path(r), "bytes", (json_int_t)b.size,
                               "offset", (json_int_t)b.file_offset),
                     "%s: damaged region of %zu bytes at offset %" PRIu64 " skipped", ocf_path(r),
                     b.size, b.file_offset);
      continue;
    }
    const uint8_t *pos = b.data, *end = b.data + b.size;
    if (ocf_reader_codec(r) != OCF_CODEC_NULL) {
      if (ocf_block_decompress(r, &b, &buf, why, sizeof why) < 0) {
        p->res->skipped += (uint64_t)b.count;
        log_cmd_fields(LOG_WARN, "produce",
                       json_pack("{s:s,s:I,s:I,s:s}", "file", ocf_path(r), "block",
                                 (json_int_t)b.index, "records", (json_int_t)b.count, "why", why),
                       "%s: block %" PRIu64 " (%" PRId64 " records) skipped: %s", ocf_path(r),
                       b.index, b.count, why);
        continue;
      }
      pos = buf.data;
      end = buf.data + buf.len;
    }
    for (int64_t i = 0; i < b.count; i++) {
      const uint8_t *start = pos;
      pm_record rec;
      /* A whole datum with a bad value is loaded as it is: dead-lettering
       * it is the processor's job. Only lost framing skips. */
      if (pm_decode(plan, &pos, end, &rec) == PM_DECODE_LOST) {
        p->res->skipped += (uint64_t)(b.count - i);
        log_cmd_fields(LOG_WARN, "produce",
                       json_pack("{s:s,s:I,s:I}", "file", ocf_path(r), "record",
                                 (json_int_t)(b.first_record + (uint64_t)i), "skipped",
                                 (json_int_t)(b.count - i)),
                       "%s: record %" PRIu64 " does not decode; the %" PRId64
                       " record(s) left in its block skipped",
                       ocf_path(r), b.first_record + (uint64_t)i, b.count - i);
        pos = end;
        break;
      }
      if (produce_one(p, start, (size_t)(pos - start), rec.person_id, err, errlen) < 0) {
        rc = -1;
        break;
      }
    }
    if (rc == 0 && pos != end) {
      p->res->skipped++;
      log_cmd_fields(LOG_WARN, "produce",
                     json_pack("{s:s,s:I,s:I,s:I}", "file", ocf_path(r), "block",
                               (json_int_t)b.index, "bytes", (json_int_t)(end - pos), "records",
                               (json_int_t)b.count),
                     "%s: block %" PRIu64 " has %zu bytes after its %" PRId64 " records (skipped)",
                     ocf_path(r), b.index, (size_t)(end - pos), b.count);
    }
    ocf_release(r, b.file_offset + b.size);
  }
  ocf_buf_free(&buf);
  return rc;
}

/* 1 with a reason when the idempotent producer hit a fatal error. */
static int fatal_error_check(rd_kafka_t *rk, char *err, size_t errlen) {
  char why[512];
  rd_kafka_resp_err_t e = rd_kafka_fatal_error(rk, why, sizeof why);
  if (!e)
    return 0;
  snprintf(err, errlen, "Kafka producer failed: %s", why);
  return 1;
}

int produce_run(const produce_options *o, produce_result *res, char *err, size_t errlen) {
  memset(res, 0, sizeof *res);
  int rc = -1;
  char why[512];
  ocf_reader **readers = calloc((size_t)o->input_count, sizeof *readers);
  pm_plan *plan = NULL;
  rd_kafka_t *rk = NULL;
  rd_kafka_topic_t *rkt = NULL;
  delivery dr = {0};
  producer p = {.o = o, .res = res};
  if (!readers) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  /* every file opens, and they share one writer schema */
  for (int f = 0; f < o->input_count; f++) {
    readers[f] = ocf_open(o->inputs[f], why, sizeof why);
    if (!readers[f]) {
      snprintf(err, errlen, "%s", why);
      goto done;
    }
    if (f > 0 && (ocf_schema_json_len(readers[f]) != ocf_schema_json_len(readers[0]) ||
                  memcmp(ocf_schema_json(readers[f]), ocf_schema_json(readers[0]),
                         ocf_schema_json_len(readers[0])) != 0)) {
      snprintf(err, errlen,
               "%s has another writer schema than %s; a topic carries one: produce them "
               "separately",
               o->inputs[f], o->inputs[0]);
      goto done;
    }
  }
  ocf_drop_behind(readers, (size_t)o->input_count, ocf_cache_room());
  plan = pm_plan_from_json(ocf_schema_json(readers[0]), ocf_schema_json_len(readers[0]), why,
                           sizeof why);
  if (!plan) {
    snprintf(err, errlen, "%s: %s", o->inputs[0], why);
    goto done;
  }

  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  static const char *const defaults[] = {"linger.ms=50",
                                         "batch.num.messages=100000",
                                         "batch.size=4000000",
                                         "compression.type=lz4",
                                         "enable.idempotence=true",
                                         "acks=all",
                                         "queue.buffering.max.messages=2000000",
                                         "queue.buffering.max.kbytes=2097151",
                                         "message.timeout.ms=60000",
                                         "partitioner=murmur2_random",
                                         "client.id=regstream-produce"};
  if (kafka_conf_apply(conf, o->brokers, defaults, (int)(sizeof defaults / sizeof *defaults), err,
                       errlen) < 0 ||
      kafka_conf_apply(conf, NULL, o->conf, o->conf_count, err, errlen) < 0) {
    rd_kafka_conf_destroy(conf);
    goto done;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_opaque(conf, &dr);
  if (!(rk = kafka_client_new(RD_KAFKA_PRODUCER, conf, "producer", err, errlen)))
    goto done;
  if (ensure_topic(rk, o, &res->created_topic, err, errlen) < 0)
    goto done;
  rkt = rd_kafka_topic_new(rk, o->topic, NULL);
  if (!rkt) {
    snprintf(err, errlen, "topic %s: %s", o->topic, rd_kafka_err2str(rd_kafka_last_error()));
    goto done;
  }
  p.rk = rk;
  p.rkt = rkt;
  p.started = clock_seconds();
  p.next_progress = p.started + 5;
  for (int f = 0; f < o->input_count; f++)
    if (produce_file(&p, readers[f], plan, err, errlen) < 0)
      goto done;
  /* flush: wait for every acknowledgement (bounded by message.timeout.ms) */
  while (rd_kafka_outq_len(rk) > 0) {
    rd_kafka_flush(rk, 1000);
    if (fatal_error_check(rk, err, errlen))
      goto done;
  }
  res->seconds = clock_seconds() - p.started;
  res->records = dr.delivered;
  if (dr.failed) {
    snprintf(err, errlen, "%" PRIu64 " of %" PRIu64 " records were not delivered to %s: %s",
             dr.failed, dr.failed + dr.delivered, o->topic, rd_kafka_err2str(dr.first_error));
    goto done;
  }
  rc = 0;
done:
  if (rkt)
    rd_kafka_topic_destroy(rkt);
  if (rk) {
    if (rc < 0)
      rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_destroy(rk);
  }
  free(p.frame);
  pm_plan_free(plan);
  for (int f = 0; f < o->input_count; f++)
    if (readers[f])
      ocf_close(readers[f]);
  free(readers);
  return rc;
}
