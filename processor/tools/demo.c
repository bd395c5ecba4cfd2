/* demo.c — `regstream demo`: produce -> Kafka-mode run -> export, against a
 * mock Kafka cluster living inside this process (see demo.h). It reuses the
 * three real commands unchanged; only the brokers differ; then it writes the
 * report's figures page (report --html) next to the CSV. Its options are
 * parsed by cli/options.c and filled into the three commands' own. */
#include "tools/demo.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <string.h>

#include "kafka/client.h"
#include "kafka/run.h"
#include "tools/export.h"
#include "tools/produce.h"
#include "tools/report.h"
#include "util/log.h"

enum { DEMO_PARTITIONS = 6 };

/* The report's figures page next to the CSV (OUT.csv -> OUT.html), at the
 * report's measurement point when the rollup has it, else at its latest
 * month. 0, or 1 (said). */
static int write_report_page(const char *csv_path) {
  char html[4096], err[512];
  size_t n = strlen(csv_path);
  if (n > 4 && !strcmp(csv_path + n - 4, ".csv"))
    snprintf(html, sizeof html, "%.*s.html", (int)(n - 4), csv_path);
  else
    snprintf(html, sizeof html, "%s.html", csv_path);
  report_options ro = {.csv_path = csv_path, .at = REPORT_DEFAULT_AT};
  report_data *d = report_load(&ro, err, sizeof err);
  if (!d) {
    ro.at = 0;
    d = report_load(&ro, err, sizeof err);
  }
  if (!d || report_write_html(d, html, err, sizeof err) < 0) {
    log_cmd(LOG_ERROR, "demo", "report page: %s", err);
    report_free(d);
    return 1;
  }
  report_free(d);
  log_cmd_fields(LOG_INFO, "demo", json_pack("{s:s}", "html", html),
                 "wrote the report's figures as a page to %s (open it in a browser)", html);
  return 0;
}

int demo_run(const demo_options *o) {
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
  /* its lines (none at log_level 0, but an error event) go the one way too */
  kafka_conf_apply(conf, NULL, NULL, 0, err, sizeof err);
  rd_kafka_t *host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  rd_kafka_mock_cluster_t *mock = host ? rd_kafka_mock_cluster_new(host, 1) : NULL;
  if (!mock) {
    log_cmd(LOG_ERROR, "demo", "cannot start the in-process mock Kafka cluster: %s", err);
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
  log_cmd_fields(LOG_INFO, "demo", json_pack("{s:s}", "brokers", brokers),
                 "mock Kafka cluster at %s (in this process)", brokers);

  int rc = 0;
  produce_options po = {.brokers = brokers,
                        .topic = topics[0],
                        .inputs = o->inputs,
                        .input_count = o->input_count,
                        .partitions = DEMO_PARTITIONS,
                        .replication_factor = 1,
                        .framing = FRAMING_PLAIN,
                        .schema_id = -1,
                        .quiet = 1};
  produce_result pr;
  if (produce_run(&po, &pr, err, sizeof err) < 0) {
    log_cmd(LOG_ERROR, "demo", "produce: %s", err);
    rc = 1;
  } else {
    log_cmd_fields(LOG_INFO, "demo",
                   json_pack("{s:I,s:s}", "records", (json_int_t)pr.records, "topic", po.topic),
                   "produced %llu records to %s", (unsigned long long)pr.records, po.topic);
  }

  if (rc == 0) {
    kafka_run_options ko = {.brokers = brokers,
                            .topic = topics[0],
                            .group = "regstream-demo",
                            .output_topic = topics[1],
                            .partials_topic = topics[2],
                            .dead_letter_topic = topics[3],
                            .exit_at_eof = 1,
                            .flush_ms = 200,
                            .threads = o->threads,
                            .progress_ms = 2000,
                            .rules = o->rules};
    kafka_run_result sr;
    if (kafka_run(&ko, &sr, err, sizeof err) < 0) {
      log_cmd(LOG_ERROR, "demo", "run: %s", err);
      rc = 1;
    } else {
      uint64_t rejected = 0;
      for (int r = 0; r < REASON_COUNT; r++)
        rejected += sr.rejected[r];
      log_cmd_fields(LOG_INFO, "demo",
                     json_pack("{s:I,s:I,s:s,s:I,s:s}", "messages", (json_int_t)sr.messages,
                               "rejected", (json_int_t)rejected, "dead_letter_topic", topics[3],
                               "totals", (json_int_t)sr.totals, "output_topic", topics[1]),
                     "processed %llu messages (%llu rejected to %s), published %llu total rows "
                     "to %s",
                     (unsigned long long)sr.messages, (unsigned long long)rejected, topics[3],
                     (unsigned long long)sr.totals, topics[1]);
    }
    export_options eo = {.brokers = brokers,
                         .topic = topics[1],
                         .csv_path = o->csv_path,
                         .timeout_seconds = 30,
                         .quiet = 1};
    export_result er;
    if (rc == 0 && export_run(&eo, &er, err, sizeof err) < 0) {
      log_cmd(LOG_ERROR, "demo", "export: %s", err);
      rc = 1;
    } else if (rc == 0) {
      log_cmd_fields(LOG_INFO, "demo",
                     json_pack("{s:I,s:s,s:s}", "rows", (json_int_t)er.rows, "topic", topics[1],
                               "csv", o->csv_path),
                     "exported %zu rows of %s to %s", er.rows, topics[1], o->csv_path);
      rc = write_report_page(o->csv_path);
    }
  }
  rd_kafka_mock_cluster_destroy(mock);
  rd_kafka_destroy(host);
  return rc;
}
