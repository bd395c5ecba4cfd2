/* stream.h — Kafka mode of `regstream run`: PersonMonth messages from a
 * consumer-group topic in, rollup rows as upserts on an output topic out,
 * rejected messages on a dead-letter topic. See stream.c for the design. */
#ifndef REGSTREAM_STREAM_H
#define REGSTREAM_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "cli/config.h"
#include "core/validate.h"

typedef struct stream_result {
  uint64_t messages;               /* input messages processed */
  uint64_t rejected[REASON_COUNT]; /* per reason */
  uint64_t partials;               /* partial rows published */
  uint64_t totals;                 /* total rows published */
  double seconds;
  double seconds_from_first; /* from the first input message on (no group join) */
  double seconds_input;      /* from the first message until all input was applied and settled */
  /* with --snapshot-dir */
  uint64_t snapshots_written, snapshot_bytes;      /* by the writer thread */
  uint64_t snapshot_captures;                      /* interval snapshots captured */
  double snapshot_pause_max, snapshot_pause_total; /* seconds shards paused to capture */
  uint64_t snapshot_loads;                         /* shards resumed from a snapshot */
  double snapshot_load_seconds;
} stream_result;

/* Run until SIGINT/SIGTERM, or with cfg->exit_at_eof until every assigned
 * input partition has reached the end of its log and every total is
 * published. 0, or -1 with a one-line reason. */
int stream_run(const config *cfg, stream_result *result, char *err, size_t errlen);

#endif
