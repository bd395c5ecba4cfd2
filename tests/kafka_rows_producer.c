/* kafka_rows_producer.c — test helper for tests/kafka_tools.sh: produces the
 * rows of a rollup CSV (SPEC §4) to a Kafka topic as Rollup upserts (key
 * "PERIOD,MUNICIPALITY,VISITATION", value Avro of schemas/rollup.avsc), the
 * way the processor's output stage will: for every row first an older value
 * (every counter + 7) and then the real one; plus, for a key not in the CSV, a value followed by a
 * tombstone, and a row with members = 0 (which an export must leave out).
 *
 *   kafka_rows_producer BROKERS TOPIC ROLLUP.csv
 *
 * Exit 0 when every message was acknowledged; prints "kafka_rows_producer: N
 * messages". */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro/rollup_codec.h"

static int failures;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  (void)opaque;
  if (m->err) {
    if (!failures++)
      fprintf(stderr, "kafka_rows_producer: delivery failed: %s\n", rd_kafka_err2str(m->err));
  }
}

static void row_send(rd_kafka_t *rk, rd_kafka_topic_t *rkt, const rollup_msg *row, int tombstone) {
  char key[ROLLUP_KEY_MAX];
  size_t klen = rollup_key_format(row->period, row->municipality, row->visitation, key);
  uint8_t value[ROLLUP_ENCODED_MAX];
  size_t vlen = tombstone ? 0 : rollup_codec_encode(row, value);
  while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, tombstone ? NULL : value,
                          vlen, key, klen, NULL) != 0)
    rd_kafka_poll(rk, 10);
}

static int parse_row(char *line, rollup_msg *row) {
  char *save = NULL, *tok = strtok_r(line, ",\n", &save);
  if (!tok)
    return -1;
  row->period = atoi(tok);
  if (!(tok = strtok_r(NULL, ",\n", &save)))
    return -1;
  row->municipality = atoi(tok);
  if (!(tok = strtok_r(NULL, ",\n", &save)))
    return -1;
  size_t len = strlen(tok);
  int32_t p, m;
  char key[ROLLUP_KEY_MAX + 40];
  snprintf(key, sizeof key, "0,0,%s", tok);
  if (rollup_key_parse(key, strlen(key), &p, &m, &row->visitation) < 0 || len == 0)
    return -1;
  for (int c = 0; c < ROLLUP_COLUMNS; c++) {
    if (!(tok = strtok_r(NULL, ",\n", &save)))
      return -1;
    row->counts[c] = strtoll(tok, NULL, 10);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: kafka_rows_producer BROKERS TOPIC ROLLUP.csv\n");
    return 2;
  }
  FILE *csv = fopen(argv[3], "r");
  if (!csv) {
    perror(argv[3]);
    return 1;
  }
  char why[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], why, sizeof why) ||
      rd_kafka_conf_set(conf, "enable.idempotence", "true", why, sizeof why) ||
      rd_kafka_conf_set(conf, "linger.ms", "5", why, sizeof why) ||
      rd_kafka_conf_set(conf, "message.timeout.ms", "30000", why, sizeof why)) {
    fprintf(stderr, "kafka_rows_producer: %s\n", why);
    return 1;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
  if (!rk) {
    fprintf(stderr, "kafka_rows_producer: %s\n", why);
    return 1;
  }
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, argv[2], NULL);
  char line[4096];
  uint64_t sent = 0;
  int lineno = 0;
  while (fgets(line, sizeof line, csv)) {
    if (lineno++ == 0)
      continue; /* header */
    rollup_msg row;
    if (parse_row(line, &row) < 0) {
      fprintf(stderr, "kafka_rows_producer: %s line %d does not parse\n", argv[3], lineno);
      return 1;
    }
    rollup_msg older = row;
    for (int c = 0; c < ROLLUP_COLUMNS; c++)
      older.counts[c] += 7;
    row_send(rk, rkt, &older, 0);
    row_send(rk, rkt, &row, 0);
    sent += 2;
  }
  fclose(csv);
  /* a key that comes and goes, and a row with no members */
  rollup_msg gone = {.period = 209912, .municipality = 101, .visitation = VISITATION_OEVRIG};
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    gone.counts[c] = 1;
  row_send(rk, rkt, &gone, 0);
  row_send(rk, rkt, &gone, 1);
  rollup_msg empty = {.period = 209911, .municipality = 101, .visitation = VISITATION_UNKNOWN};
  row_send(rk, rkt, &empty, 0);
  sent += 3;
  while (rd_kafka_outq_len(rk) > 0)
    rd_kafka_flush(rk, 1000);
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  printf("kafka_rows_producer: %" PRIu64 " messages\n", sent);
  return failures ? 1 : 0;
}
