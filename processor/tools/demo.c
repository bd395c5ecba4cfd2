/* demo.c — `regstream demo`: produce -> Kafka-mode run -> export, against a
 * mock Kafka cluster living inside this process (see demo.h). It reuses the
 * three real commands unchanged; only the brokers differ. */
#include "tools/demo.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <string.h>

#include "cli/config.h"
#include "tools/export.h"
#include "tools/produce.h"
#include "kafka/stream.h"

enum { DEMO_PARTITIONS = 6 };

int demo_main(int argc, char **argv) {
  static config cfg;
  char err[512];
  /* The options of file-mode run, minus the dead-letter file: parse them as
   * a run with a placeholder dead-letter path, then switch to Kafka mode. */
  char *args[CONFIG_MAX_INPUTS + 64];
  int n = 0;
  for (int i = 0; i < argc && n < (int)(sizeof args / sizeof *args) - 2; i++)
    args[n++] = argv[i];
  args[n++] = "--dead-letter";
  args[n++] = "/dev/null";
  if (config_parse_run(&cfg, n, args, err, sizeof err) < 0) {
    fprintf(stderr, "regstream demo: %s\n", err);
    return 2;
  }

  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
  rd_kafka_t *host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  rd_kafka_mock_cluster_t *mock = host ? rd_kafka_mock_cluster_new(host, 1) : NULL;
  if (!mock) {
    fprintf(stderr, "regstream demo: cannot start the in-process mock Kafka cluster: %s\n", err);
    if (host)
      rd_kafka_destroy(host);
    return 1;
  }
  const char *brokers = rd_kafka_mock_cluster_bootstraps(mock);
  /* librdkafka 2.0.2's mock cluster cannot create topics on request. */
  static const char *const topics[] = {"person-months", "rollups", "rollups.partials",
                                       "dead-letters"};
  for (size_t i = 0; i < sizeof topics / sizeof *topics; i++)
    rd_kafka_mock_topic_create(mock, topics[i], DEMO_PARTITIONS, 1);
  fprintf(stderr, "regstream demo: mock Kafka cluster at %s (in this process)\n", brokers);

  int rc = 0;
  static produce_options po;
  memset(&po, 0, sizeof po);
  po.brokers = brokers;
  po.topic = topics[0];
  for (int i = 0; i < cfg.input_count; i++)
    po.inputs[i] = cfg.inputs[i];
  po.input_count = cfg.input_count;
  po.partitions = DEMO_PARTITIONS;
  po.replication_factor = 1;
  po.framing = FRAMING_PLAIN;
  po.schema_id = -1;
  po.quiet = 1;
  produce_result pr;
  if (produce_run(&po, &pr, err, sizeof err) < 0) {
    fprintf(stderr, "regstream demo: produce: %s\n", err);
    rc = 1;
  } else {
    fprintf(stderr, "regstream demo: produced %llu records to %s\n", (unsigned long long)pr.records,
            po.topic);
  }

  if (rc == 0) {
    const char *csv = cfg.csv_path;
    cfg.input_count = 0;
    cfg.csv_path = NULL;
    cfg.dead_letter_path = NULL;
    cfg.brokers = brokers;
    cfg.topic = topics[0];
    cfg.group = "regstream-demo";
    cfg.output_topic = topics[1];
    cfg.partials_topic = topics[2];
    cfg.dead_letter_topic = topics[3];
    cfg.exit_at_eof = 1;
    cfg.flush_ms = 200;
    stream_result sr;
    if (stream_run(&cfg, &sr, err, sizeof err) < 0) {
      fprintf(stderr, "regstream demo: run: %s\n", err);
      rc = 1;
    } else {
      uint64_t rejected = 0;
      for (int r = 0; r < REASON_COUNT; r++)
        rejected += sr.rejected[r];
      fprintf(stderr,
              "regstream demo: processed %llu messages (%llu rejected to %s), published %llu "
              "total rows to %s\n",
              (unsigned long long)sr.messages, (unsigned long long)rejected, topics[3],
              (unsigned long long)sr.totals, topics[1]);
    }
    static export_options eo;
    memset(&eo, 0, sizeof eo);
    eo.brokers = brokers;
    eo.topic = topics[1];
    eo.csv_path = csv;
    eo.timeout_seconds = 30;
    eo.quiet = 1;
    export_result er;
    if (rc == 0 && export_run(&eo, &er, err, sizeof err) < 0) {
      fprintf(stderr, "regstream demo: export: %s\n", err);
      rc = 1;
    } else if (rc == 0) {
      fprintf(stderr, "regstream demo: exported %zu rows of %s to %s\n", er.rows, topics[1], csv);
    }
  }
  rd_kafka_mock_cluster_destroy(mock);
  rd_kafka_destroy(host);
  return rc;
}
