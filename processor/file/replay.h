/* replay.h — file mode (SPEC §10): Avro container files in, rollup CSV and
 * dead-letter JSON Lines out, over any number of worker threads with results
 * identical for every thread count. */
#ifndef REGSTREAM_REPLAY_H
#define REGSTREAM_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "core/rules.h"
#include "core/validate.h"
#include "state/snapshot.h"

/* What a file-mode run is asked to do (filled by cli/options.c or a test). */
typedef struct replay_options {
  const char *const *inputs; /* container files, in input order */
  int input_count;
  const char *csv_path;
  const char *dead_letter_path;
  int threads;               /* workers, 1 to REPLAY_MAX_THREADS */
  int quiet;                 /* no progress lines */
  int progress_ms;           /* between progress lines (the command line's default: 2000) */
  rules_config rules;        /* prepared (rules_config_prepare) */
  snapshot_policy snapshots; /* off when snapshots.dir is NULL */

  const char *metrics_listen; /* --metrics-listen [ADDR:]PORT (metrics/metrics.h); NULL: off */
  int metrics_linger_s;       /* after the input: keep serving the final figures this long */

  uint32_t min_cell;          /* --min-cell N (SPEC §12) on the CSV and the table; 0: off */
  const char *postgres;       /* --postgres CONNINFO: the final rows also replace this table */
  const char *postgres_table; /* --table T (default regstream_rollup) */
} replay_options;

enum { REPLAY_MAX_THREADS = 64 };

typedef struct replay_result {
  uint64_t records;                /* records read, rejected ones included */
  uint64_t rejected[REASON_COUNT]; /* per reason */
  uint64_t corrected;              /* records that replaced a latest month */
  uint64_t persons;                /* distinct valid persons */
  uint64_t state_bytes;            /* bytes of the person maps */
  size_t rows;                     /* CSV rows written */
  size_t postgres_rows;            /* rows written to the PostgreSQL table (--postgres) */
  double seconds;
  int stopped_by;       /* SIGINT or SIGTERM when the run stopped early (replay_run's 1) */
  int snapshot_written; /* then: a snapshot at records was written to resume from */
} replay_result;

/* Run the replay described by o. 0 when all input was processed (rejected
 * records included); 1 when SIGINT or SIGTERM stopped it first (after the
 * block in hand and, with snapshots, a cut there: the same command resumes;
 * no CSV is written); -1 with a one-line reason. A second signal ends the
 * process at once. */
int replay_run(const replay_options *o, replay_result *result, char *err, size_t errlen);

#endif
