/* kafka_snapshot_topic_tool.c — looks into and damages a --snapshot-topic
 * for tests/kafka_snapshot_topic.sh, with the key and manifest codec of
 * kafka/snapshot_topic.h:
 *
 *   list BROKERS TOPIC
 *       every live snapshot (latest value per key, tombstones applied):
 *       "snapshot P GEN POSITION CHUNKS BYTES", newest last per partition,
 *       then "live P KEYS" (keys with a value) per partition
 *   damage BROKERS TOPIC P corrupt|missing
 *       the newest snapshot of partition P made unusable: its first chunk
 *       produced again with a payload byte flipped (corrupt) or its last
 *       chunk deleted by a tombstone (missing); prints "GEN PREVIOUS_POSITION"
 *       (where the previous snapshot resumes), exit 1 when P has fewer than
 *       two snapshots
 *   leftover BROKERS TOPIC P N
 *       N more generations of partition P, each a whole copy of its newest
 *       snapshot (chunks and manifest under the next generation number): what
 *       runs killed before their pruning's tombstones were delivered leave;
 *       prints the newest copy's "GEN POSITION", exit 1 when P has none
 *
 * Reads a partition with the simple consumer up to its high watermark. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "kafka/snapshot_topic.h"

typedef struct rec {
  char key[SNAPTOPIC_KEY_MAX];
  unsigned char *value; /* NULL: tombstoned */
  size_t len;
} rec;

typedef struct part {
  rec *recs;
  int n, cap;
} part;

static rd_kafka_t *client(rd_kafka_type_t type, const char *brokers) {
  char why[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, why, sizeof why) ||
      (type == RD_KAFKA_PRODUCER &&
       rd_kafka_conf_set(conf, "acks", "all", why, sizeof why) != RD_KAFKA_CONF_OK)) {
    fprintf(stderr, "tool: %s\n", why);
    exit(2);
  }
  rd_kafka_t *rk = rd_kafka_new(type, conf, why, sizeof why);
  if (!rk) {
    fprintf(stderr, "tool: %s\n", why);
    exit(2);
  }
  return rk;
}

static void put(part *pt, const void *key, size_t klen, const void *value, size_t len) {
  if (klen >= SNAPTOPIC_KEY_MAX)
    return;
  rec *r = NULL;
  for (int i = 0; i < pt->n && !r; i++)
    if (strlen(pt->recs[i].key) == klen && !memcmp(pt->recs[i].key, key, klen))
      r = &pt->recs[i];
  if (!r) {
    if (pt->n == pt->cap) {
      pt->cap = pt->cap ? pt->cap * 2 : 64;
      pt->recs = realloc(pt->recs, (size_t)pt->cap * sizeof *pt->recs);
    }
    r = &pt->recs[pt->n++];
    memset(r, 0, sizeof *r);
    memcpy(r->key, key, klen);
  }
  free(r->value);
  r->value = NULL;
  r->len = 0;
  if (value) {
    r->value = malloc(len ? len : 1);
    memcpy(r->value, value, len);
    r->len = len;
  }
}

static void part_free(part *pt) {
  for (int i = 0; i < pt->n; i++)
    free(pt->recs[i].value);
  free(pt->recs);
}

static void read_part(rd_kafka_t *rk, rd_kafka_topic_t *rkt, const char *topic, int32_t p,
                      part *pt) {
  int64_t low, high;
  if (rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high, 10000)) {
    fprintf(stderr, "tool: no watermarks for %s/%d\n", topic, p);
    exit(2);
  }
  if (high <= low)
    return;
  rd_kafka_consume_start(rkt, p, low);
  int64_t next = low;
  int idle = 0;
  while (next < high && idle < 150) {
    rd_kafka_message_t *m = rd_kafka_consume(rkt, p, 200);
    if (!m) {
      idle++;
      continue;
    }
    if (!m->err && m->offset >= next) {
      next = m->offset + 1;
      idle = 0;
      put(pt, m->key, m->key_len, m->payload, m->len);
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consume_stop(rkt, p);
  if (next < high) {
    fprintf(stderr, "tool: read %s/%d only to %" PRId64 " of %" PRId64 "\n", topic, p, next, high);
    exit(2);
  }
}

/* The live manifests of pt, by generation ascending (selection sort: few). */
static int manifests(const part *pt, int32_t p, snaptopic_manifest *out, int max) {
  int n = 0;
  for (int i = 0; i < pt->n && n < max; i++) {
    int32_t kp;
    uint64_t gen;
    int64_t index;
    if (!pt->recs[i].value ||
        snaptopic_key_parse(pt->recs[i].key, strlen(pt->recs[i].key), &kp, &gen, &index) < 0 ||
        kp != p || index != -1 ||
        snaptopic_manifest_decode(pt->recs[i].value, pt->recs[i].len, &out[n]) < 0)
      continue;
    n++;
  }
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++)
      if (out[j].gen < out[i].gen) {
        snaptopic_manifest t = out[i];
        out[i] = out[j];
        out[j] = t;
      }
  return n;
}

static void send_one(rd_kafka_t *pr, const char *topic, int32_t p, const char *key,
                     const void *value, size_t len) {
  if (rd_kafka_producev(pr, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, strlen(key)),
                        RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_END)) {
    fprintf(stderr, "tool: produce failed\n");
    exit(2);
  }
}

/* leftover: copies of partition p's newest snapshot (ms[n - 1]) as the
 * next `copies` generations, chunks before their manifest. */
static int copy_newest(const char *brokers, const char *topic, int32_t p, part *pt,
                       const snaptopic_manifest *ms, int n, int copies) {
  if (n < 1 || copies < 1) {
    fprintf(stderr, "tool: partition %d has no snapshot\n", p);
    part_free(pt);
    return 1;
  }
  snaptopic_manifest m = ms[n - 1];
  uint64_t from = m.gen, gen = from;
  for (int i = 0; i < pt->n; i++) { /* above every generation the partition holds */
    int32_t kp;
    uint64_t g;
    int64_t index;
    if (!snaptopic_key_parse(pt->recs[i].key, strlen(pt->recs[i].key), &kp, &g, &index) && g > gen)
      gen = g;
  }
  rd_kafka_t *pr = client(RD_KAFKA_PRODUCER, brokers);
  char key[SNAPTOPIC_KEY_MAX];
  for (int c = 0; c < copies; c++) {
    m.gen = ++gen;
    for (uint32_t i = 0; i < m.chunks; i++) {
      snaptopic_key(p, from, i, key);
      const rec *chunk = NULL;
      for (int r = 0; r < pt->n && !chunk; r++)
        if (!strcmp(pt->recs[r].key, key) && pt->recs[r].value &&
            pt->recs[r].len >= SNAPTOPIC_CHUNK_HEADER)
          chunk = &pt->recs[r];
      if (!chunk) {
        fprintf(stderr, "tool: chunk %s not found\n", key);
        return 1;
      }
      unsigned char *value = malloc(chunk->len);
      memcpy(value, chunk->value, chunk->len);
      for (int b = 0; b < 8; b++) /* the header's generation, little-endian */
        value[8 + b] = (unsigned char)(m.gen >> (8 * b));
      snaptopic_key(p, m.gen, i, key);
      send_one(pr, topic, p, key, value, chunk->len);
      free(value);
    }
    if (rd_kafka_flush(pr, 30000)) {
      fprintf(stderr, "tool: produce failed\n");
      return 2;
    }
    unsigned char mv[SNAPTOPIC_MANIFEST_MAX];
    size_t mlen = snaptopic_manifest_encode(&m, mv);
    snaptopic_key(p, m.gen, -1, key);
    send_one(pr, topic, p, key, mv, mlen);
    if (rd_kafka_flush(pr, 30000)) {
      fprintf(stderr, "tool: produce failed\n");
      return 2;
    }
  }
  printf("%" PRIu64 " %" PRId64 "\n", m.gen, m.position);
  rd_kafka_destroy(pr);
  part_free(pt);
  return 0;
}

int main(int argc, char **argv) {
  int damage = argc == 6 && !strcmp(argv[1], "damage"),
      leftover = argc == 6 && !strcmp(argv[1], "leftover");
  if (!(argc == 4 && !strcmp(argv[1], "list")) && !damage && !leftover) {
    fprintf(stderr, "usage: kafka_snapshot_topic_tool list BROKERS TOPIC\n"
                    "       kafka_snapshot_topic_tool damage BROKERS TOPIC P corrupt|missing\n"
                    "       kafka_snapshot_topic_tool leftover BROKERS TOPIC P N\n");
    return 2;
  }
  const char *brokers = argv[2], *topic = argv[3];
  rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, brokers);
  const rd_kafka_metadata_t *md;
  if (rd_kafka_metadata(rk, 1, NULL, &md, 10000)) {
    fprintf(stderr, "tool: no metadata\n");
    return 2;
  }
  int parts = 0;
  for (int i = 0; i < md->topic_cnt; i++)
    if (!strcmp(md->topics[i].topic, topic))
      parts = md->topics[i].partition_cnt;
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  snaptopic_manifest ms[256];
  if (!strcmp(argv[1], "list")) {
    for (int32_t p = 0; p < parts; p++) {
      part pt = {0};
      read_part(rk, rkt, topic, p, &pt);
      int n = manifests(&pt, p, ms, 256);
      for (int i = 0; i < n; i++)
        printf("snapshot %d %" PRIu64 " %" PRId64 " %" PRIu32 " %" PRIu64 "\n", p, ms[i].gen,
               ms[i].position, ms[i].chunks, ms[i].bytes);
      int live = 0;
      for (int i = 0; i < pt.n; i++)
        live += pt.recs[i].value != NULL;
      printf("live %d %d\n", p, live);
      part_free(&pt);
    }
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return 0;
  }
  int32_t p = atoi(argv[4]);
  part pt = {0};
  read_part(rk, rkt, topic, p, &pt);
  int n = manifests(&pt, p, ms, 256);
  if (leftover)
    return copy_newest(brokers, topic, p, &pt, ms, n, atoi(argv[5]));
  if (n < 2) {
    fprintf(stderr, "tool: partition %d has %d snapshots\n", p, n);
    part_free(&pt);
    return 1;
  }
  const snaptopic_manifest *m = &ms[n - 1];
  char key[SNAPTOPIC_KEY_MAX];
  int missing = !strcmp(argv[5], "missing");
  snaptopic_key(p, m->gen, missing ? (int64_t)m->chunks - 1 : 0, key);
  const rec *chunk = NULL;
  for (int i = 0; i < pt.n && !chunk; i++)
    if (!strcmp(pt.recs[i].key, key) && pt.recs[i].value)
      chunk = &pt.recs[i];
  if (!chunk) {
    fprintf(stderr, "tool: chunk %s not found\n", key);
    part_free(&pt);
    return 1;
  }
  unsigned char *value = NULL;
  size_t len = 0;
  if (!missing) {
    len = chunk->len;
    value = malloc(len);
    memcpy(value, chunk->value, len);
    value[SNAPTOPIC_CHUNK_HEADER + (len - SNAPTOPIC_CHUNK_HEADER) / 2] ^= 0x5a;
  }
  rd_kafka_t *pr = client(RD_KAFKA_PRODUCER, brokers);
  send_one(pr, topic, p, key, value, len);
  if (rd_kafka_flush(pr, 30000)) {
    fprintf(stderr, "tool: produce failed\n");
    return 2;
  }
  printf("%" PRIu64 " %" PRId64 "\n", m->gen, ms[n - 2].position);
  rd_kafka_destroy(pr);
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  free(value);
  part_free(&pt);
  return 0;
}
