/* config.h — the command line of every subcommand, parsed into one struct,
 * validated, with a one-line error for anything wrong. */
#ifndef REGSTREAM_CONFIG_H
#define REGSTREAM_CONFIG_H

#include <stddef.h>

#include "core/rules.h"

enum { CONFIG_MAX_INPUTS = 4096, CONFIG_MAX_THREADS = 64 };

typedef struct config {
  /* run, file mode */
  const char *inputs[CONFIG_MAX_INPUTS];
  int input_count;
  const char *csv_path;
  const char *dead_letter_path;
  int threads;
  int quiet; /* no progress lines */
  rules_config rules;
  /* report */
  int report_at;    /* yyyymm */
  int report_check; /* exit non-zero when a measure is off by more than tolerance */
  double report_tolerance;
} config;

/* Parse `regstream run ...` (argv[0] is "run"). 0, or -1 with a reason. */
int config_parse_run(config *cfg, int argc, char **argv, char *err, size_t errlen);
/* Parse `regstream report ...` (argv[0] is "report"). */
int config_parse_report(config *cfg, int argc, char **argv, char *err, size_t errlen);

#endif
