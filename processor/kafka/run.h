/* run.h — Kafka mode of `regstream run`: PersonMonth messages from a
 * consumer-group topic in, rollup rows as upserts on an output topic out,
 * rejected messages on a dead-letter topic. The design is written atop
 * kafka/run.c; the files of kafka/ are listed in kafka/mode.h. */
#ifndef REGSTREAM_KAFKA_RUN_H
#define REGSTREAM_KAFKA_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "core/rules.h"
#include "core/validate.h"
#include "source/schema_registry.h"
#include "state/snapshot.h"

enum { KAFKA_RUN_MAX_THREADS = 64 };

/* What a Kafka-mode run is asked to do (filled by cli/options.c or by the
 * demo). */
typedef struct kafka_run_options {
  const char *brokers;
  const char *topic;
  const char *group;
  const char *output_topic;
  const char *partials_topic; /* the command line's default: output_topic + ".partials" */
  const char *dead_letter_topic;
  const char *schema_file;        /* plain framing with this writer schema */
  const char *schema_registry;    /* Confluent framing, schemas by id over REST */
  schema_source_options registry; /* timeouts, TLS and credentials for schema_registry */
  const char *schema_dir;         /* Confluent framing, schemas by id from <id>.avsc */
  const char *const *conf;        /* librdkafka "key=value" items (-X), applied last */
  int conf_count;
  int replication_factor; /* of the topics it creates; 0 or -1: the broker's default */
  int exit_at_eof;
  int registry_timeout_s;    /* --exit-at-eof: end the run when a schema stays unavailable
                                this long; 0 = 300 */
  int flush_ms;              /* how often changed rows are published */
  int threads;               /* worker threads, 1 to KAFKA_RUN_MAX_THREADS */
  int quiet;                 /* no progress lines */
  int progress_ms;           /* between progress lines */
  rules_config rules;        /* prepared (rules_config_prepare) */
  snapshot_policy snapshots; /* off when snapshots.dir is NULL */

  const char *metrics_listen; /* --metrics-listen [ADDR:]PORT (metrics/metrics.h); NULL: off */
} kafka_run_options;

typedef struct kafka_run_result {
  uint64_t messages;               /* input messages processed */
  uint64_t rejected[REASON_COUNT]; /* per reason */
  uint64_t partials;               /* partial rows published */
  uint64_t totals;                 /* total rows published */
  double seconds;
  double seconds_from_first; /* from the first input message on (no group join) */
  double seconds_input;      /* from the first message until all input was applied and settled */
  /* with snapshots */
  uint64_t snapshots_written, snapshot_bytes;      /* by the writer thread */
  uint64_t snapshot_captures;                      /* interval snapshots captured */
  double snapshot_pause_max, snapshot_pause_total; /* seconds shards paused to capture */
  uint64_t snapshot_loads;                         /* shards resumed from a snapshot */
  double snapshot_load_seconds;
} kafka_run_result;

/* Run until SIGINT/SIGTERM, or with o->exit_at_eof until every assigned
 * input partition has reached the end of its log and every total is
 * published. 0, or -1 with a one-line reason. */
int kafka_run(const kafka_run_options *o, kafka_run_result *result, char *err, size_t errlen);

#endif
