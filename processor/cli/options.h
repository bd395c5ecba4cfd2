/* options.h — the command line of every subcommand, parsed into that
 * subcommand's own options struct (replay_options, kafka_run_options,
 * produce_options, export_options, report_options, demo_options), validated,
 * with a one-line error for anything wrong. The words collected from argv
 * (the --input files, the -X items) and the --config file's text live in an
 * options_storage beside the struct that points at them. What the options mean stays with the
 * subcommand that runs them. */
#ifndef REGSTREAM_CLI_OPTIONS_H
#define REGSTREAM_CLI_OPTIONS_H

#include <stddef.h>

#include "cli/config_file.h"
#include "file/replay.h"
#include "kafka/client.h"
#include "kafka/run.h"
#include "tools/demo.h"
#include "tools/export.h"
#include "tools/produce.h"
#include "tools/report.h"

/* Words of argv that options point at. */
typedef struct options_storage {
  const char **inputs; /* --input FILE ...: grown as needed */
  int input_count, input_capacity;
  const char *conf[KAFKA_MAX_CONF]; /* --config's librdkafka items, then -X key=value */
  int conf_count;
  const char *config_path;  /* --config FILE */
  config_file config;       /* its items (freed by options_free) */
  char config_origin[600];  /* "--config FILE" */
  char partials_topic[512]; /* the default "<output-topic>.partials" */
} options_storage;

void options_free(options_storage *s);

/* `regstream run ...` (argv[0] is "run"): file mode with --input, Kafka
 * mode with --brokers. */
typedef struct run_command {
  int kafka; /* --brokers given: stream is the run, else file */
  replay_options file;
  kafka_run_options stream;
  options_storage words;
} run_command;

/* Each: 0, or -1 with a one-line reason in err (then free nothing but the
 * storage, with options_free). argv[0] is the subcommand's name. */
int options_parse_run(run_command *c, int argc, char **argv, char *err, size_t errlen);

typedef struct produce_command {
  produce_options opt;
  options_storage words;
} produce_command;
int options_parse_produce(produce_command *c, int argc, char **argv, char *err, size_t errlen);

typedef struct export_command {
  export_options opt;
  options_storage words;
} export_command;
int options_parse_export(export_command *c, int argc, char **argv, char *err, size_t errlen);

typedef struct demo_command {
  demo_options opt;
  options_storage words;
} demo_command;
int options_parse_demo(demo_command *c, int argc, char **argv, char *err, size_t errlen);

int options_parse_report(report_options *o, int argc, char **argv, char *err, size_t errlen);

/* --log-format's value (every subcommand takes it, and main before the
 * subcommand): "text" or "json" sets the format of every line on stderr
 * (util/log.h); 0, or -1 with a one-line reason (NULL: the value missing). */
int options_log_format(const char *value, char *err, size_t errlen);

#endif
