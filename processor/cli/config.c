/* config.c — command-line options into one config struct; every bad option,
 * value or missing argument becomes a one-line error. */
#include "cli/config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/kafka.h"

#include "avro/schemas.h"
#include "core/fnv.h"
#include "core/period.h"

int config_parse_long(const char *text, long min, long max, long *out) {
  char *end;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno || end == text || *end || v < min || v > max)
    return -1;
  *out = v;
  return 0;
}

int config_option_long(const char *option, const char *unit, const char *text, long min, long max,
                       long *out, char *err, size_t errlen) {
  if (config_parse_long(text, min, max, out) == 0)
    return 0;
  snprintf(err, errlen, "--%s needs %s from %ld to %ld, got '%s'", option, unit, min, max, text);
  return -1;
}

static int parse_double(const char *text, double *out) {
  char *end;
  errno = 0;
  double v = strtod(text, &end);
  if (errno || end == text || *end)
    return -1;
  *out = v;
  return 0;
}

enum {
  OPT_INPUT = 256,
  OPT_CSV,
  OPT_DEAD_LETTER,
  OPT_THREADS,
  OPT_PROJECT_START,
  OPT_PROJECT_END,
  OPT_FULL_TIME,
  OPT_WINDOW,
  OPT_RUN,
  OPT_QUIET,
  OPT_AT,
  OPT_CHECK,
  OPT_TOLERANCE,
  OPT_BROKERS,
  OPT_TOPIC,
  OPT_GROUP,
  OPT_OUTPUT_TOPIC,
  OPT_PARTIALS_TOPIC,
  OPT_DEAD_LETTER_TOPIC,
  OPT_SCHEMA,
  OPT_SCHEMA_REGISTRY,
  OPT_SCHEMA_DIR,
  OPT_EXIT_AT_EOF,
  OPT_FLUSH_MS,
  OPT_PROGRESS_MS,
  OPT_SNAPSHOT_DIR,
  OPT_SNAPSHOT_INTERVAL,
};

/* --snapshot-interval: N records, or Ns seconds. */
static int parse_interval(const char *text, config *cfg) {
  size_t len = strlen(text);
  long v;
  if (len > 1 && text[len - 1] == 's') {
    char digits[32];
    if (len - 1 >= sizeof digits)
      return -1;
    memcpy(digits, text, len - 1);
    digits[len - 1] = 0;
    if (config_parse_long(digits, 1, 86400 * 365, &v) < 0)
      return -1;
    cfg->snapshot_seconds = (double)v;
    cfg->snapshot_records = 0;
    return 0;
  }
  if (config_parse_long(text, 1, LONG_MAX, &v) < 0)
    return -1;
  cfg->snapshot_records = (uint64_t)v;
  cfg->snapshot_seconds = 0;
  return 0;
}

/* Options shared by every mode that applies the rules (SPEC §10). */
static int parse_rule_option(rules_config *rules, int opt, const char *arg, char *err,
                             size_t errlen) {
  long v;
  switch (opt) {
  case OPT_PROJECT_START:
  case OPT_PROJECT_END:
    if (config_parse_long(arg, 0, 999999, &v) < 0) {
      snprintf(err, errlen, "--%s needs a month YYYYMM, got '%s'",
               opt == OPT_PROJECT_START ? "project-start" : "project-end", arg);
      return -1;
    }
    *(opt == OPT_PROJECT_START ? &rules->project_start : &rules->project_end) = (int32_t)v;
    return 0;
  case OPT_FULL_TIME:
    if (parse_double(arg, &rules->full_time_weekly_hours) < 0) {
      snprintf(err, errlen, "--full-time-weekly-hours needs a number, got '%s'", arg);
      return -1;
    }
    return 0;
  case OPT_WINDOW:
  case OPT_RUN:
    if (config_parse_long(arg, 0, INT_MAX, &v) < 0) {
      snprintf(err, errlen, "--%s needs a whole number, got '%s'",
               opt == OPT_WINDOW ? "durable-window-months" : "durable-run-months", arg);
      return -1;
    }
    *(opt == OPT_WINDOW ? &rules->durable_window_months : &rules->durable_run_months) = (int)v;
    return 0;
  }
  return 1; /* not a rule option */
}

#define RULE_OPTIONS                                                                               \
  {"project-start", required_argument, NULL, OPT_PROJECT_START},                                   \
      {"project-end", required_argument, NULL, OPT_PROJECT_END},                                   \
      {"full-time-weekly-hours", required_argument, NULL, OPT_FULL_TIME},                          \
      {"durable-window-months", required_argument, NULL, OPT_WINDOW}, {                            \
    "durable-run-months", required_argument, NULL, OPT_RUN                                         \
  }

static void config_defaults(config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  rules_config_default(&cfg->rules);
  cfg->threads = 1;
  cfg->flush_ms = 1000;
  cfg->progress_ms = 2000;
  cfg->report_tolerance = 2.0;
}

/* getopt's own message names the option; ours repeats it as one line. */
static void unknown_option(char **argv, char *err, size_t errlen) {
  snprintf(err, errlen, "unknown or incomplete option '%s' (see 'regstream help')",
           argv[optind - 1]);
}

static int add_input(config *cfg, const char *path, char *err, size_t errlen) {
  if (cfg->input_count == CONFIG_MAX_INPUTS) {
    snprintf(err, errlen, "too many input files (at most %d)", CONFIG_MAX_INPUTS);
    return -1;
  }
  cfg->inputs[cfg->input_count++] = path;
  return 0;
}

int config_parse_run(config *cfg, int argc, char **argv, char *err, size_t errlen) {
  static const struct option options[] = {
      {"input", required_argument, NULL, OPT_INPUT},
      {"csv", required_argument, NULL, OPT_CSV},
      {"dead-letter", required_argument, NULL, OPT_DEAD_LETTER},
      {"threads", required_argument, NULL, OPT_THREADS},
      {"quiet", no_argument, NULL, OPT_QUIET},
      {"brokers", required_argument, NULL, OPT_BROKERS},
      {"topic", required_argument, NULL, OPT_TOPIC},
      {"group", required_argument, NULL, OPT_GROUP},
      {"output-topic", required_argument, NULL, OPT_OUTPUT_TOPIC},
      {"partials-topic", required_argument, NULL, OPT_PARTIALS_TOPIC},
      {"dead-letter-topic", required_argument, NULL, OPT_DEAD_LETTER_TOPIC},
      {"schema", required_argument, NULL, OPT_SCHEMA},
      {"schema-registry", required_argument, NULL, OPT_SCHEMA_REGISTRY},
      {"schema-dir", required_argument, NULL, OPT_SCHEMA_DIR},
      {"exit-at-eof", no_argument, NULL, OPT_EXIT_AT_EOF},
      {"flush-ms", required_argument, NULL, OPT_FLUSH_MS},
      {"progress-ms", required_argument, NULL, OPT_PROGRESS_MS},
      {"snapshot-dir", required_argument, NULL, OPT_SNAPSHOT_DIR},
      {"snapshot-interval", required_argument, NULL, OPT_SNAPSHOT_INTERVAL},
      RULE_OPTIONS,
      {NULL, 0, NULL, 0}};
  config_defaults(cfg);
  optind = 0; /* 0, not 1: also resets getopt's position inside a cluster like -xyz */
  opterr = 0;
  int opt;
  long v;
  while ((opt = getopt_long(argc, argv, "+X:", options, NULL)) != -1) {
    switch (opt) {
    case 'X':
      if (kafka_conf_add(cfg->kafka_conf, &cfg->kafka_conf_count, optarg, err, errlen) < 0)
        return -1;
      break;
    case OPT_BROKERS:
      cfg->brokers = optarg;
      break;
    case OPT_TOPIC:
      cfg->topic = optarg;
      break;
    case OPT_GROUP:
      cfg->group = optarg;
      break;
    case OPT_OUTPUT_TOPIC:
      cfg->output_topic = optarg;
      break;
    case OPT_PARTIALS_TOPIC:
      cfg->partials_topic = optarg;
      break;
    case OPT_DEAD_LETTER_TOPIC:
      cfg->dead_letter_topic = optarg;
      break;
    case OPT_SCHEMA:
      cfg->schema_file = optarg;
      break;
    case OPT_SCHEMA_REGISTRY:
      cfg->schema_registry = optarg;
      break;
    case OPT_SCHEMA_DIR:
      cfg->schema_dir = optarg;
      break;
    case OPT_EXIT_AT_EOF:
      cfg->exit_at_eof = 1;
      break;
    case OPT_FLUSH_MS:
      if (config_option_long("flush-ms", "milliseconds", optarg, 10, 3600000, &v, err, errlen) < 0)
        return -1;
      cfg->flush_ms = (int)v;
      break;
    case OPT_PROGRESS_MS:
      if (config_option_long("progress-ms", "milliseconds", optarg, 10, 3600000, &v, err, errlen) <
          0)
        return -1;
      cfg->progress_ms = (int)v;
      break;
    case OPT_SNAPSHOT_DIR:
      cfg->snapshot_dir = optarg;
      break;
    case OPT_SNAPSHOT_INTERVAL:
      if (parse_interval(optarg, cfg) < 0) {
        snprintf(err, errlen,
                 "--snapshot-interval needs a number of records (e.g. 5000000) or of seconds "
                 "(e.g. 30s), got '%s'",
                 optarg);
        return -1;
      }
      break;
    case OPT_INPUT:
      /* --input takes one or more files: its argument and the following
       * words up to the next option. */
      if (optarg == argv[optind - 1])
        optind--; /* a word of its own: re-read it in the loop below */
      else if (add_input(cfg, optarg, err, errlen) < 0) /* --input=FILE, --inp=FILE, ... */
        return -1;
      while (optind < argc && strncmp(argv[optind], "--", 2) != 0)
        if (add_input(cfg, argv[optind++], err, errlen) < 0)
          return -1;
      break;
    case OPT_CSV:
      cfg->csv_path = optarg;
      break;
    case OPT_DEAD_LETTER:
      cfg->dead_letter_path = optarg;
      break;
    case OPT_THREADS:
      if (config_option_long("threads", "a number", optarg, 1, CONFIG_MAX_THREADS, &v, err,
                             errlen) < 0)
        return -1;
      cfg->threads = (int)v;
      break;
    case OPT_QUIET:
      cfg->quiet = 1;
      break;
    case '?':
      unknown_option(argv, err, errlen);
      return -1;
    default:
      if (parse_rule_option(&cfg->rules, opt, optarg, err, errlen))
        return -1;
    }
  }
  if (optind < argc) {
    snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
    return -1;
  }
  if (cfg->brokers) {
    if (cfg->input_count || cfg->csv_path || cfg->dead_letter_path) {
      snprintf(err, errlen,
               "run takes either --input (file mode) or --brokers (Kafka mode), not both");
      return -1;
    }
    if (!cfg->topic || !cfg->group || !cfg->output_topic || !cfg->dead_letter_topic) {
      snprintf(err, errlen,
               "Kafka mode needs --topic, --group, --output-topic and --dead-letter-topic");
      return -1;
    }
    if (!!cfg->schema_file + !!cfg->schema_registry + !!cfg->schema_dir > 1) {
      snprintf(err, errlen, "give at most one of --schema, --schema-registry, --schema-dir");
      return -1;
    }
    if (!cfg->partials_topic) {
      snprintf(cfg->partials_topic_buf, sizeof cfg->partials_topic_buf, "%s.partials",
               cfg->output_topic);
      cfg->partials_topic = cfg->partials_topic_buf;
    }
  } else {
    if (cfg->input_count == 0) {
      snprintf(err, errlen,
               "run needs --input FILE.avro [FILE.avro ...] (or --brokers for Kafka mode)");
      return -1;
    }
    if (!cfg->csv_path || !cfg->dead_letter_path) {
      snprintf(err, errlen, "run needs --csv OUT.csv and --dead-letter DLQ.jsonl");
      return -1;
    }
  }
  if ((cfg->snapshot_records || cfg->snapshot_seconds) && !cfg->snapshot_dir) {
    snprintf(err, errlen, "--snapshot-interval needs --snapshot-dir DIR");
    return -1;
  }
  if (cfg->snapshot_dir && !cfg->snapshot_records && !cfg->snapshot_seconds)
    cfg->snapshot_seconds = CONFIG_SNAPSHOT_SECONDS;
  char rule_err[200];
  if (rules_config_prepare(&cfg->rules, rule_err, sizeof rule_err) < 0) {
    snprintf(err, errlen, "%s", rule_err);
    return -1;
  }
  return 0;
}

uint64_t config_fingerprint(const config *cfg) {
  const rules_config *r = &cfg->rules;
  char text[256];
  /* Only what changes the state a record leaves behind: the rule options
   * (as given, before derivation) and the reader schema. */
  int n = snprintf(text, sizeof text, "rules/1 full=%.17g window=%d run=%d start=%d end=%d|",
                   r->full_time_weekly_hours, r->durable_window_months, r->durable_run_months,
                   (int)r->project_start, (int)r->project_end);
  uint64_t h = fnv1a64(FNV1A64_INIT, text, (size_t)n);
  return fnv1a64(h, pm_reader_schema_json, strlen(pm_reader_schema_json));
}

int config_parse_report(config *cfg, int argc, char **argv, char *err, size_t errlen) {
  static const struct option options[] = {{"csv", required_argument, NULL, OPT_CSV},
                                          {"at", required_argument, NULL, OPT_AT},
                                          {"check", no_argument, NULL, OPT_CHECK},
                                          {"tolerance", required_argument, NULL, OPT_TOLERANCE},
                                          {NULL, 0, NULL, 0}};
  config_defaults(cfg);
  cfg->report_at = 202302;
  optind = 0; /* 0, not 1: also resets getopt's position inside a cluster like -xyz */
  opterr = 0;
  int opt;
  long v;
  while ((opt = getopt_long(argc, argv, "+", options, NULL)) != -1) {
    switch (opt) {
    case OPT_CSV:
      cfg->csv_path = optarg;
      break;
    case OPT_AT:
      if (config_parse_long(optarg, 199001, 209912, &v) < 0 || !period_valid((int32_t)v)) {
        snprintf(err, errlen, "--at needs a month YYYYMM, got '%s'", optarg);
        return -1;
      }
      cfg->report_at = (int)v;
      break;
    case OPT_CHECK:
      cfg->report_check = 1;
      break;
    case OPT_TOLERANCE:
      /* !(x >= 0) also rejects NaN, which would pass every comparison */
      if (parse_double(optarg, &cfg->report_tolerance) < 0 || !(cfg->report_tolerance >= 0)) {
        snprintf(err, errlen, "--tolerance needs a number of percentage points, got '%s'", optarg);
        return -1;
      }
      break;
    default:
      unknown_option(argv, err, errlen);
      return -1;
    }
  }
  if (optind < argc) {
    snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
    return -1;
  }
  if (!cfg->csv_path) {
    snprintf(err, errlen, "report needs --csv ROLLUP.csv");
    return -1;
  }
  return 0;
}
