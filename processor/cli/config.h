/* config.h — the command line of every subcommand, parsed into one struct,
 * validated, with a one-line error for anything wrong. */
#ifndef REGSTREAM_CONFIG_H
#define REGSTREAM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/rules.h"

enum { CONFIG_MAX_INPUTS = 4096, CONFIG_MAX_THREADS = 64, CONFIG_SNAPSHOT_SECONDS = 60 };

typedef struct config {
  /* run, file mode */
  const char *inputs[CONFIG_MAX_INPUTS];
  int input_count;
  const char *csv_path;
  const char *dead_letter_path;
  int threads;
  int quiet;       /* no progress lines */
  int progress_ms; /* between progress lines; default 2000 */
  rules_config rules;
  /* run, both modes: snapshots (SPEC §6), off without --snapshot-dir */
  const char *snapshot_dir;
  uint64_t snapshot_records; /* --snapshot-interval N: every N records per shard, or */
  double snapshot_seconds;   /* --snapshot-interval Ns (default CONFIG_SNAPSHOT_SECONDS) */
  /* run, Kafka mode (--brokers given) */
  const char *brokers;
  const char *topic;
  const char *group;
  const char *output_topic;
  const char *partials_topic; /* default: output_topic + ".partials" */
  const char *dead_letter_topic;
  const char *schema_file;     /* plain framing with this writer schema */
  const char *schema_registry; /* Confluent framing, schemas by id over REST */
  const char *schema_dir;      /* Confluent framing, schemas by id from <id>.avsc */
  const char *kafka_conf[64];  /* -X key=value, applied last (KAFKA_MAX_CONF) */
  int kafka_conf_count;
  int exit_at_eof;
  int flush_ms; /* how often changed rows are published; default 1000 */
  char partials_topic_buf[512];
  /* report */
  int report_at;    /* yyyymm */
  int report_check; /* exit non-zero when a measure is off by more than tolerance */
  double report_tolerance;
} config;

static inline int config_is_kafka(const config *cfg) {
  return cfg->brokers != NULL;
}

/* A whole number in [min, max] spelled exactly by text. 0, or -1. */
int config_parse_long(const char *text, long min, long max, long *out);
/* config_parse_long for the value of --option, in [min, max] units (e.g.
 * "milliseconds", "a number"); -1 with "--option needs UNIT from MIN to
 * MAX, got 'TEXT'" in err. */
int config_option_long(const char *option, const char *unit, const char *text, long min, long max,
                       long *out, char *err, size_t errlen);

/* Parse `regstream run ...` (argv[0] is "run"): file mode with --input, Kafka
 * mode with --brokers. 0, or -1 with a reason. */
int config_parse_run(config *cfg, int argc, char **argv, char *err, size_t errlen);
/* What a snapshot must agree with to be loaded: the rule options and the
 * reader schema, hashed. */
uint64_t config_fingerprint(const config *cfg);

/* Parse `regstream report ...` (argv[0] is "report"). */
int config_parse_report(config *cfg, int argc, char **argv, char *err, size_t errlen);

#endif
