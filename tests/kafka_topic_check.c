/* kafka_topic_check.c — test helper for tests/kafka_tools.sh: proves that a
 * topic loaded by `regstream produce` holds exactly the records of a
 * container file, each message keyed by its person_id, each person's records
 * in one partition and in the file's (period) order.
 *
 *   kafka_topic_check BROKERS TOPIC FILE.avro plain|SCHEMA_DIR
 *
 * With a SCHEMA_DIR the values are Confluent-framed and decoded through a
 * schema_source on that directory of <id>.avsc files. Reads every partition
 * from the beginning to its high watermark (no consumer group). Prints one
 * summary line; exit 0 when every check holds. */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro/ocf.h"
#include "source/framing.h"
#include "tools/produce.h"

typedef struct person {
  int64_t id;
  int32_t *periods; /* in file order */
  int count, seen, partition;
} person;

static person *people;
static size_t people_count, people_cap;

static int by_id(const void *a, const void *b) {
  int64_t x = ((const person *)a)->id, y = ((const person *)b)->id;
  return x < y ? -1 : x > y;
}

static person *find(int64_t id) {
  person key = {.id = id};
  return bsearch(&key, people, people_count, sizeof *people, by_id);
}

static int fail(const char *what) {
  fprintf(stderr, "kafka_topic_check: %s\n", what);
  return 1;
}

/* Reads the file: per person the periods in file order. */
static int load_file(const char *path, uint64_t *total) {
  char err[512];
  ocf_reader *r = ocf_open(path, err, sizeof err);
  if (!r)
    return fail(err);
  pm_plan *plan = pm_plan_from_json(ocf_schema_json(r), ocf_schema_json_len(r), err, sizeof err);
  if (!plan)
    return fail(err);
  ocf_block b;
  ocf_buf buf = {0};
  pm_record *recs = NULL;
  size_t n = 0, cap = 0;
  while (ocf_next_block(r, &b)) {
    if (b.kind != OCF_BLOCK_OK || ocf_block_decompress(r, &b, &buf, err, sizeof err) < 0)
      return fail("damaged input file");
    const uint8_t *pos = buf.data, *end = buf.data + buf.len;
    for (int64_t i = 0; i < b.count; i++) {
      if (n == cap && !(recs = realloc(recs, (cap = cap ? cap * 2 : 4096) * sizeof *recs)))
        return fail("out of memory");
      if (pm_decode(plan, &pos, end, &recs[n++]) < 0)
        return fail("undecodable record in the input file");
    }
  }
  *total = n;
  for (size_t i = 0; i < n; i++) {
    person *p = NULL;
    for (size_t j = people_count; j > 0 && !p; j--) /* usually the last few */
      if (people[j - 1].id == recs[i].person_id)
        p = &people[j - 1];
    if (!p && people_count) {
      qsort(people, people_count, sizeof *people, by_id);
      p = find(recs[i].person_id);
    }
    if (!p) {
      if (people_count == people_cap &&
          !(people = realloc(people,
                             (people_cap = people_cap ? people_cap * 2 : 1024) * sizeof *people)))
        return fail("out of memory");
      p = &people[people_count++];
      *p = (person){.id = recs[i].person_id, .partition = -1};
    }
    p->periods = realloc(p->periods, (size_t)(p->count + 1) * sizeof *p->periods);
    p->periods[p->count++] = recs[i].period;
  }
  qsort(people, people_count, sizeof *people, by_id);
  free(recs);
  ocf_buf_free(&buf);
  pm_plan_free(plan);
  ocf_close(r);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: kafka_topic_check BROKERS TOPIC FILE.avro plain|SCHEMA_DIR\n");
    return 2;
  }
  const char *brokers = argv[1], *topic = argv[2];
  char err[1024], msg[1200];
  uint64_t total = 0;
  if (load_file(argv[3], &total))
    return 1;
  framing f = {0};
  pm_plan *plain = NULL;
  schema_source *src = NULL;
  if (!strcmp(argv[4], "plain")) {
    f.mode = FRAMING_PLAIN;
    f.plan = plain =
        pm_plan_from_json(pm_reader_schema_json, strlen(pm_reader_schema_json), err, sizeof err);
  } else {
    f.mode = FRAMING_CONFLUENT;
    f.schemas = src = schema_source_open_dir(argv[4], NULL, err, sizeof err);
    if (!src)
      return fail(err);
  }
  static const char *const conf_items[] = {"group.id=kafka-topic-check",
                                           "enable.auto.commit=false"};
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (kafka_conf_apply(conf, brokers, conf_items, 2, err, sizeof err) < 0)
    return fail(err);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk)
    return fail(err);
  rd_kafka_poll_set_consumer(rk);
  const rd_kafka_metadata_t *md = kafka_metadata_fetch(rk, brokers, 10000, err, sizeof err);
  if (!md)
    return fail(err);
  const rd_kafka_metadata_topic_t *mt = kafka_metadata_topic(md, topic);
  if (!mt || mt->partition_cnt <= 0)
    return fail("topic not found");
  int np = mt->partition_cnt;
  rd_kafka_metadata_destroy(md);
  int64_t *high = calloc((size_t)np, sizeof *high);
  rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(np);
  int remaining = 0;
  for (int p = 0; p < np; p++) {
    int64_t low;
    if (rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high[p], 10000))
      return fail("watermarks");
    if (high[p] > low) {
      remaining++;
      rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
  }
  rd_kafka_assign(rk, parts);
  uint64_t seen = 0, errors = 0;
  int idle = 0;
  while (remaining > 0 && idle < 150) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
    if (!m) {
      idle++;
      continue;
    }
    idle = 0;
    if (m->err) {
      rd_kafka_message_destroy(m);
      continue;
    }
    seen++;
    pm_record rec;
    reason why = framing_decode(&f, m->payload, m->len, &rec, NULL);
    char key[24];
    int klen = why == REASON_OK ? snprintf(key, sizeof key, "%" PRId64, rec.person_id) : 0;
    person *p = why == REASON_OK ? find(rec.person_id) : NULL;
    const char *bad = NULL;
    if (why != REASON_OK)
      bad = "value does not decode";
    else if (!m->key || (size_t)klen != m->key_len || memcmp(key, m->key, (size_t)klen))
      bad = "key is not the person_id";
    else if (!p)
      bad = "person not in the file";
    else if (p->partition >= 0 && p->partition != m->partition)
      bad = "person in two partitions";
    else if (p->seen >= p->count || p->periods[p->seen] != rec.period)
      bad = "person's records out of file order";
    if (bad) {
      if (errors++ < 5) {
        snprintf(msg, sizeof msg, "partition %d offset %" PRId64 ": %s", (int)m->partition,
                 m->offset, bad);
        fail(msg);
      }
    } else {
      p->partition = m->partition;
      p->seen++;
    }
    if (m->offset + 1 >= high[m->partition])
      remaining--;
    rd_kafka_message_destroy(m);
  }
  size_t incomplete = 0;
  int used[1024] = {0};
  for (size_t i = 0; i < people_count; i++) {
    incomplete += people[i].seen != people[i].count;
    if (people[i].partition >= 0 && people[i].partition < 1024)
      used[people[i].partition] = 1;
  }
  int partitions_used = 0;
  for (int p = 0; p < 1024; p++)
    partitions_used += used[p];
  printf("kafka_topic_check: %s: %" PRIu64 " messages for %" PRIu64 " records, %zu persons over %d"
         " of %d partitions, %" PRIu64 " bad, %zu persons incomplete\n",
         topic, seen, total, people_count, partitions_used, np, errors, incomplete);
  rd_kafka_assign(rk, NULL);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  rd_kafka_topic_partition_list_destroy(parts);
  free(high);
  pm_plan_free(plain);
  schema_source_free(src);
  for (size_t i = 0; i < people_count; i++)
    free(people[i].periods);
  free(people);
  return seen == total && errors == 0 && incomplete == 0 && remaining == 0 ? 0 : 1;
}
