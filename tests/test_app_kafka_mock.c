/* test_app_kafka_mock.c — unit tests of the Kafka tools' client code against
 * librdkafka's in-process mock cluster (rdkafka_mock.h): option parsing of
 * produce and export (one-line errors), produce_run of a small container
 * file (plain and Confluent) counted back by a consumer, and export_run of
 * upserts and a tombstone. Not a proof against a real broker: that is
 * tests/kafka_tools.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <unistd.h>

#include "avro/ocf.h"
#include "avro/rollup_codec.h"
#include "cli/options.h"
#include "tools/export.h"
#include "tools/produce.h"

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static const char *bootstrap;
static char dir[64];

static int setup(void **state) {
  (void)state;
  char err[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
  mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!mock_rk)
    return -1;
  mock = rd_kafka_mock_cluster_new(mock_rk, 1);
  if (!mock)
    return -1;
  bootstrap = rd_kafka_mock_cluster_bootstraps(mock);
  snprintf(dir, sizeof dir, "/tmp/test_app_kafka_mock.XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  rd_kafka_mock_cluster_destroy(mock);
  rd_kafka_destroy(mock_rk);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* The parsers of cli/options.c into the tools' options (the words they
 * collect stay in these, freed before each parse). */
static produce_command produce_words;
static export_command export_words;

static int produce_parse(produce_options *o, int argc, char **argv, char *err, size_t errlen) {
  options_free(&produce_words.words);
  int rc = options_parse_produce(&produce_words, argc, argv, err, errlen);
  *o = produce_words.opt;
  return rc;
}

static int export_parse(export_options *o, int argc, char **argv, char *err, size_t errlen) {
  options_free(&export_words.words);
  int rc = options_parse_export(&export_words, argc, argv, err, errlen);
  *o = export_words.opt;
  return rc;
}

static int parse_produce(produce_options *o, char *err, size_t errlen, ...) {
  char *argv[32];
  int argc = 0;
  va_list ap;
  va_start(ap, errlen);
  for (char *a; (a = va_arg(ap, char *)) != NULL;)
    argv[argc++] = a;
  va_end(ap);
  argv[argc] = NULL;
  return produce_parse(o, argc, argv, err, errlen);
}

static void test_options(void **state) {
  (void)state;
  static produce_options o;
  static export_options e;
  char err[512];
  assert_int_equal(parse_produce(&o, err, sizeof err, "produce", "--brokers", "b:1", "--topic", "t",
                                 "--input", "a.avro", "b.avro", "--partitions", "12", "--framing",
                                 "confluent", "--schema-id", "42", "-X", "linger.ms=5",
                                 "--keep-going", NULL),
                   0);
  assert_int_equal(o.input_count, 2);
  assert_int_equal(o.partitions, 12);
  assert_int_equal(o.framing, FRAMING_CONFLUENT);
  assert_int_equal(o.schema_id, 42);
  assert_int_equal(o.conf_count, 1);
  assert_int_equal(o.keep_going, 1);
  assert_int_equal(parse_produce(&o, err, sizeof err, "produce", "--brokers", "b:1", "--topic", "t",
                                 "--input", "a.avro", NULL),
                   0);
  assert_int_equal(o.partitions, 6);
  assert_int_equal(o.framing, FRAMING_PLAIN);
  static const char *const bad[][12] = {
      {"produce", "--topic", "t", "--input", "a"},
      {"produce", "--brokers", "b", "--input", "a"},
      {"produce", "--brokers", "b", "--topic", "t"},
      {"produce", "--brokers", "b", "--topic", "t", "--input", "a", "--partitions", "0"},
      {"produce", "--brokers", "b", "--topic", "t", "--input", "a", "--framing", "json"},
      {"produce", "--brokers", "b", "--topic", "t", "--input", "a", "--framing", "confluent"},
      {"produce", "--brokers", "b", "--topic", "t", "--input", "a", "--schema-id", "3"},
      {"produce", "--brokers", "b", "--topic", "t", "--input", "a", "-X", "linger.ms"},
      {"produce", "--brokers", "b", "--topic", "t", "--input", "a", "-X", "no.such=1"},
      {"produce", "--brokers", "b", "--topic", "t", "--input", "a", "--what"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int argc = 0;
    while (argc < 12 && bad[i][argc])
      argc++;
    err[0] = '\0';
    assert_int_equal(produce_parse(&o, argc, (char **)bad[i], err, sizeof err), -1);
    assert_true(strlen(err) > 0 && !strchr(err, '\n'));
  }
  char *ok[] = {
      "export", "--brokers", "b", "--topic", "o", "--csv", "x.csv", "-X", "fetch.wait.max.ms=10",
      NULL};
  assert_int_equal(export_parse(&e, 9, ok, err, sizeof err), 0);
  assert_int_equal(e.conf_count, 1);
  char *missing[] = {"export", "--brokers", "b", "--topic", "o", NULL};
  assert_int_equal(export_parse(&e, 5, missing, err, sizeof err), -1);
  char *badx[] = {"export", "--brokers", "b", "--topic", "o", "--csv", "x", "-X", "x=1", NULL};
  assert_int_equal(export_parse(&e, 9, badx, err, sizeof err), -1);
}

/* A container file of n records, persons 1..n/4 with 4 months each. */
static void write_input(const char *path, int n) {
  char err[256];
  ocf_writer *w =
      ocf_writer_open(path, pm_reader_schema_json, OCF_CODEC_DEFLATE, 0, 4096, err, sizeof err);
  assert_non_null(w);
  for (int i = 0; i < n; i++) {
    pm_record r = {.person_id = 1 + i / 4,
                   .period = 202301 + i % 4,
                   .municipality = 101,
                   .paid_hours = 10.0f,
                   .benefit = BENEFIT_NONE,
                   .flags = PM_ENROLLED};
    uint8_t buf[PM_ENCODED_MAX];
    assert_int_equal(ocf_writer_append(w, buf, pm_encode(&r, buf), err, sizeof err), 0);
  }
  assert_int_equal(ocf_writer_close(w, err, sizeof err), 0);
}

static void test_produce(void **state) {
  (void)state;
  char path[128], err[512];
  snprintf(path, sizeof path, "%s/in.avro", dir);
  write_input(path, 4000);
  /* librdkafka 2.0.2's mock cluster has no CreateTopics: the topic is made
   * here, so this covers the "topic exists" path (creation is covered by
   * tests/kafka_tools.sh against a real broker) */
  assert_int_equal(rd_kafka_mock_topic_create(mock, "pm", 3, 1), 0);
  static produce_options o;
  char *argv[] = {"produce",      "--brokers", (char *)bootstrap, "--topic", "pm", "--input", path,
                  "--partitions", "3",         "--quiet",         NULL};
  assert_int_equal(produce_parse(&o, 10, argv, err, sizeof err), 0);
  produce_result res;
  if (produce_run(&o, &res, err, sizeof err) < 0)
    fail_msg("%s", err);
  assert_int_equal(res.records, 4000);
  assert_int_equal(res.skipped, 0);
  assert_int_equal(res.created_topic, 0);
  uint64_t plain_bytes = res.bytes;
  /* again, Confluent-framed, into the existing topic */
  char *argv2[] = {"produce", "--brokers", (char *)bootstrap, "--topic",     "pm", "--input",
                   path,      "--framing", "confluent",       "--schema-id", "9",  "--quiet",
                   NULL};
  assert_int_equal(produce_parse(&o, 12, argv2, err, sizeof err), 0);
  if (produce_run(&o, &res, err, sizeof err) < 0)
    fail_msg("%s", err);
  assert_int_equal(res.records, 4000);
  assert_int_equal(res.created_topic, 0);
  assert_int_equal(res.bytes, plain_bytes + 4000 * FRAMING_CONFLUENT_HEADER);
  /* a missing file fails before any connection */
  static const char *const missing[] = {"/nonexistent.avro"};
  o.inputs = missing;
  assert_int_equal(produce_run(&o, &res, err, sizeof err), -1);
  assert_non_null(strstr(err, "/nonexistent.avro"));
}

static void send_row(rd_kafka_t *rk, const rollup_msg *row, int tombstone) {
  char key[ROLLUP_KEY_MAX];
  size_t klen = rollup_key_format(row->period, row->municipality, row->visitation, key);
  uint8_t value[ROLLUP_ENCODED_MAX];
  size_t vlen = rollup_codec_encode(row, value);
  assert_int_equal(
      rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("rows"), RD_KAFKA_V_KEY(key, klen),
                        RD_KAFKA_V_VALUE((tombstone ? NULL : value), (tombstone ? 0 : vlen)),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
      0);
}

static void test_export(void **state) {
  (void)state;
  char err[512], csv[128];
  assert_int_equal(rd_kafka_mock_topic_create(mock, "rows", 2, 1), 0);
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  assert_non_null(rk);
  rollup_msg a = {.period = 202302, .municipality = 751, .visitation = VISITATION_JOBPARAT};
  rollup_msg b = {.period = 202301, .municipality = 101, .visitation = VISITATION_OEVRIG};
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    a.counts[c] = b.counts[c] = 5;
  send_row(rk, &a, 0);
  send_row(rk, &b, 0);
  a.counts[ROLLUP_MEMBERS] = 3; /* newer value */
  send_row(rk, &a, 0);
  rollup_msg gone = {.period = 202303, .municipality = 101, .visitation = VISITATION_UNKNOWN};
  gone.counts[ROLLUP_MEMBERS] = 1;
  send_row(rk, &gone, 0);
  send_row(rk, &gone, 1);
  assert_int_equal(rd_kafka_flush(rk, 10000), 0);
  rd_kafka_destroy(rk);

  snprintf(csv, sizeof csv, "%s/out.csv", dir);
  static export_options o;
  char *argv[] = {"export", "--brokers", (char *)bootstrap, "--topic", "rows",
                  "--csv",  csv,         "--quiet",         NULL};
  assert_int_equal(export_parse(&o, 8, argv, err, sizeof err), 0);
  export_result res;
  if (export_run(&o, &res, err, sizeof err) < 0)
    fail_msg("%s", err);
  assert_int_equal(res.messages, 5);
  assert_int_equal(res.tombstones, 1);
  assert_int_equal(res.rows, 2);
  FILE *f = fopen(csv, "r");
  assert_non_null(f);
  char line[1024];
  assert_non_null(fgets(line, sizeof line, f));
  assert_true(!strncmp(line, "period,municipality,visitation,members,", 39));
  assert_non_null(fgets(line, sizeof line, f));
  assert_true(!strncmp(line, "202301,101,OEVRIG,5,5,", 22));
  assert_non_null(fgets(line, sizeof line, f));
  assert_true(!strncmp(line, "202302,751,JOBPARAT,3,5,", 24));
  assert_null(fgets(line, sizeof line, f));
  fclose(f);

  /* the PersonMonth topic is no rollup topic: a clear failure */
  char *argv2[] = {"export", "--brokers", (char *)bootstrap, "--topic", "pm",
                   "--csv",  csv,         "--quiet",         NULL};
  assert_int_equal(export_parse(&o, 8, argv2, err, sizeof err), 0);
  assert_int_equal(export_run(&o, &res, err, sizeof err), -1);
  assert_non_null(strstr(err, "is not PERIOD,MUNICIPALITY,VISITATION"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_options),
      cmocka_unit_test(test_produce),
      cmocka_unit_test(test_export),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
