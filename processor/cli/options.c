/* options.c — argv into each subcommand's options (see options.h). One
 * --input collector, one -X collector, one --config reader (the file's
 * librdkafka keys before the -X items, its schema.registry.* keys onto the
 * registry options), one unknown-option message and one whole-number message
 * serve every subcommand. Defaults are set here. */
#include "cli/options.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/period.h"
#include "kafka/client.h"
#include "metrics/metrics.h"
#include "sink/postgres.h"
#include "tools/report_source.h"
#include "util/log.h"

/* ---- values ---- */

/* A whole number in [min, max] spelled exactly by text. 0, or -1. */
static int parse_long(const char *text, long min, long max, long *out) {
  char *end;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno || end == text || *end || v < min || v > max)
    return -1;
  *out = v;
  return 0;
}

/* parse_long for the value of --option, in [min, max] units (e.g.
 * "milliseconds", "a number"); -1 with "--option needs UNIT from MIN to
 * MAX, got 'TEXT'" in err. */
static int option_long(const char *option, const char *unit, const char *text, long min, long max,
                       long *out, char *err, size_t errlen) {
  if (parse_long(text, min, max, out) == 0)
    return 0;
  snprintf(err, errlen, "--%s needs %s from %ld to %ld, got '%s'", option, unit, min, max, text);
  return -1;
}

static int option_int(const char *option, const char *unit, const char *text, long min, long max,
                      int *out, char *err, size_t errlen) {
  long v;
  if (option_long(option, unit, text, min, max, &v, err, errlen) < 0)
    return -1;
  *out = (int)v;
  return 0;
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

/* --snapshot-interval: N records, or Ns seconds. */
static int parse_interval(const char *text, snapshot_policy *sp) {
  size_t len = strlen(text);
  long v;
  if (len > 1 && text[len - 1] == 's') {
    char digits[32];
    if (len - 1 >= sizeof digits)
      return -1;
    memcpy(digits, text, len - 1);
    digits[len - 1] = 0;
    if (parse_long(digits, 1, 86400 * 365, &v) < 0)
      return -1;
    sp->seconds = (double)v;
    sp->records = 0;
    return 0;
  }
  if (parse_long(text, 1, LONG_MAX, &v) < 0)
    return -1;
  sp->records = (uint64_t)v;
  sp->seconds = 0;
  return 0;
}

/* ---- words of argv ---- */

void options_free(options_storage *s) {
  config_file_free(&s->config);
  free(s->inputs);
  s->inputs = NULL;
  s->input_count = s->input_capacity = 0;
}

static int add_input(options_storage *s, const char *path, char *err, size_t errlen) {
  if (s->input_count == s->input_capacity) {
    int cap = s->input_capacity ? s->input_capacity * 2 : 16;
    const char **grown = realloc(s->inputs, (size_t)cap * sizeof *grown);
    if (!grown) {
      snprintf(err, errlen, "out of memory for %d input files", cap);
      return -1;
    }
    s->inputs = grown;
    s->input_capacity = cap;
  }
  s->inputs[s->input_count++] = path;
  return 0;
}

/* --input takes one or more files: its argument and the following words up
 * to the next option (a word starting with '-'). Called by getopt_long's
 * loop right after it returned --input. */
static int take_inputs(options_storage *s, int argc, char **argv, char *err, size_t errlen) {
  if (optarg == argv[optind - 1])
    optind--;                                     /* a word of its own: read it in the loop below */
  else if (add_input(s, optarg, err, errlen) < 0) /* --input=FILE, --inp=FILE, ... */
    return -1;
  while (optind < argc && argv[optind][0] != '-')
    if (add_input(s, argv[optind++], err, errlen) < 0)
      return -1;
  return 0;
}

/* getopt's own message names the option; ours repeats it as one line. */
static int unknown_option(char **argv, char *err, size_t errlen) {
  snprintf(err, errlen, "unknown or incomplete option '%s' (see 'regstream help')",
           argv[optind - 1]);
  return -1;
}

static int no_arguments_left(int argc, char **argv, char *err, size_t errlen) {
  if (optind < argc) {
    snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
    return -1;
  }
  return 0;
}

static void getopt_reset(void) {
  optind = 0; /* 0, not 1: also resets getopt's position inside a cluster like -xyz */
  opterr = 0;
}

/* ---- options shared by subcommands ---- */

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
  OPT_REGISTRY_TIMEOUT,
  OPT_FLUSH_MS,
  OPT_PROGRESS_MS,
  OPT_SNAPSHOT_DIR,
  OPT_SNAPSHOT_INTERVAL,
  OPT_SNAPSHOT_TOPIC,
  OPT_PARTITIONS,
  OPT_REPLICATION,
  OPT_FRAMING,
  OPT_SCHEMA_ID,
  OPT_KEEP_GOING,
  OPT_TIMEOUT,
  OPT_CONFIG,
  OPT_LOG_FORMAT,
  OPT_METRICS_LISTEN,
  OPT_METRICS_LINGER,
  OPT_HTML,
  OPT_MIN_CELL,
  OPT_POSTGRES,
  OPT_TABLE,
  OPT_FOLLOW,
};

/* --min-cell N (SPEC §12): a whole number >= 1. */
static int parse_min_cell(const char *text, uint32_t *out, char *err, size_t errlen) {
  long v;
  if (option_long("min-cell", "a whole number", text, 1, 1000000000, &v, err, errlen) < 0)
    return -1;
  *out = (uint32_t)v;
  return 0;
}

/* --postgres CONNINFO [--table T]: both checked (never echoing CONNINFO). */
static int check_postgres(const char *conninfo, const char **table, char *err, size_t errlen) {
  if (!conninfo) {
    if (*table) {
      snprintf(err, errlen, "--table goes with --postgres CONNINFO");
      return -1;
    }
    return 0;
  }
  if (!*table)
    *table = PG_DEFAULT_TABLE;
  return pg_check_options(conninfo, *table, err, errlen);
}

#define LOG_FORMAT_OPTION                                                                          \
  { "log-format", required_argument, NULL, OPT_LOG_FORMAT }

int options_log_format(const char *value, char *err, size_t errlen) {
  log_format f;
  if (value && log_parse_format(value, &f) == 0) {
    log_set_format(f);
    return 0;
  }
  if (value)
    snprintf(err, errlen, "--log-format is text or json, got '%s'", value);
  else
    snprintf(err, errlen, "--log-format needs a value: text or json");
  return -1;
}

/* --log-format, taken by every subcommand: 0 handled, -1 bad value, 1 not it. */
static int parse_log_option(int opt, char *err, size_t errlen) {
  if (opt != OPT_LOG_FORMAT)
    return 1;
  return options_log_format(optarg, err, errlen);
}

/* The rule options (SPEC §10), shared by every subcommand that applies the
 * rules: 0 handled, -1 bad value, 1 not a rule option. */
static int parse_rule_option(rules_config *rules, int opt, const char *arg, char *err,
                             size_t errlen) {
  long v;
  switch (opt) {
  case OPT_PROJECT_START:
  case OPT_PROJECT_END:
    if (parse_long(arg, 0, 999999, &v) < 0) {
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
    if (parse_long(arg, 0, INT_MAX, &v) < 0) {
      snprintf(err, errlen, "--%s needs a whole number, got '%s'",
               opt == OPT_WINDOW ? "durable-window-months" : "durable-run-months", arg);
      return -1;
    }
    *(opt == OPT_WINDOW ? &rules->durable_window_months : &rules->durable_run_months) = (int)v;
    return 0;
  }
  return 1;
}

static int prepare_rules(rules_config *rules, char *err, size_t errlen) {
  char rule_err[200];
  if (rules_config_prepare(rules, rule_err, sizeof rule_err) < 0) {
    snprintf(err, errlen, "%s", rule_err);
    return -1;
  }
  return 0;
}

/* What every Kafka client takes: --brokers, --topic, -X key=value, --quiet.
 * 0 handled, -1 bad value, 1 not one of them. */
static int parse_client_option(int opt, const char **brokers, const char **topic, int *quiet,
                               options_storage *w, char *err, size_t errlen) {
  switch (opt) {
  case OPT_LOG_FORMAT:
    return parse_log_option(opt, err, errlen);
  case OPT_BROKERS:
    *brokers = optarg;
    return 0;
  case OPT_TOPIC:
    *topic = optarg;
    return 0;
  case OPT_QUIET:
    *quiet = 1;
    return 0;
  case 'X':
    return kafka_conf_add(w->conf, &w->conf_count, optarg, err, errlen) < 0 ? -1 : 0;
  case OPT_CONFIG:
    if (w->config_path) {
      snprintf(err, errlen, "give --config once");
      return -1;
    }
    w->config_path = optarg;
    return 0;
  }
  return 1;
}

/* ---- --config FILE ---- */

/* The schema.registry.* keys and where they go (NULL: the URL). */
static const char **registry_field(schema_source_options *r, const char *key) {
  static const char *url;
  static const char *const names[] = {"url",
                                      "basic.auth.user.info",
                                      "bearer.auth.token",
                                      "ssl.ca.location",
                                      "ssl.certificate.location",
                                      "ssl.key.location",
                                      "ssl.key.password"};
  const char **fields[] = {&url,
                           &r->basic_auth_user_info,
                           &r->bearer_token,
                           &r->ca_location,
                           &r->certificate_location,
                           &r->key_location,
                           &r->key_password};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (!strcmp(key, names[i]))
      return fields[i];
  return NULL;
}

/* Reads --config (when given): its librdkafka items go before the -X items
 * (applied in that order, so -X wins: librdkafka keeps the last value set),
 * its schema.registry.* keys onto *registry and *registry_url (run; NULL for
 * produce and export, which take and ignore them; a URL given on the command
 * line wins). Warns when the file holds a secret and its group or others may
 * read it. 0, or -1 with a one-line reason. */
static int read_config(options_storage *w, const char **registry_url,
                       schema_source_options *registry, char *err, size_t errlen) {
  if (!w->config_path)
    return 0;
  unsigned mode = 0;
  if (config_file_read(&w->config, w->config_path, &mode, err, errlen) < 0)
    return -1;
  schema_source_options ignored = {0};
  if (!registry)
    registry = &ignored;
  const char *items[KAFKA_MAX_CONF];
  int count = 0, secret = 0;
  for (int i = 0; i < w->config.count; i++) {
    const config_entry *e = &w->config.entries[i];
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)e->key_len, e->item);
    secret |= kafka_conf_is_secret(e->item, e->key_len);
    static const char prefix[] = "schema.registry.";
    if (!strncmp(key, prefix, sizeof prefix - 1)) {
      const char **field = registry_field(registry, key + sizeof prefix - 1);
      if (!field) {
        snprintf(err, errlen,
                 "%s:%d: unknown key %s (the schema.registry.* keys are url, "
                 "basic.auth.user.info, bearer.auth.token, ssl.ca.location, "
                 "ssl.certificate.location, ssl.key.location, ssl.key.password)",
                 w->config_path, e->line, key);
        return -1;
      }
      if (!strcmp(key + sizeof prefix - 1, "url")) {
        if (registry_url && !*registry_url)
          *registry_url = e->value;
      } else {
        *field = e->value;
      }
      continue;
    }
    char where[600];
    snprintf(where, sizeof where, "%s:%d:", w->config_path, e->line);
    if (kafka_conf_check_item(e->item, where, err, errlen) < 0)
      return -1;
    if (count + w->conf_count == KAFKA_MAX_CONF) {
      snprintf(err, errlen, "%s: too many settings with the -X options (at most %d)",
               w->config_path, KAFKA_MAX_CONF);
      return -1;
    }
    items[count++] = e->item;
  }
  memmove(w->conf + count, w->conf, (size_t)w->conf_count * sizeof *w->conf);
  memcpy(w->conf, items, (size_t)count * sizeof *items);
  w->conf_count += count;
  snprintf(w->config_origin, sizeof w->config_origin, "--config %s", w->config_path);
  kafka_conf_origin(w->config_origin);
  if (secret && (mode & 077)) {
    char octal[16];
    snprintf(octal, sizeof octal, "%04o", mode);
    log_fields(LOG_WARN, "config", json_pack("{s:s,s:s}", "path", w->config_path, "mode", octal),
               "%s holds a secret and is readable by others (mode %s): chmod 600 %s",
               w->config_path, octal, w->config_path);
  }
  return 0;
}

/* What runs the rules on input files takes (run, demo): --input, --csv,
 * --threads and the rule options. 0 handled, -1 bad value, 1 not one of them. */
static int parse_replay_option(int opt, int argc, char **argv, options_storage *w, const char **csv,
                               int *threads, rules_config *rules, char *err, size_t errlen) {
  switch (opt) {
  case OPT_LOG_FORMAT:
    return parse_log_option(opt, err, errlen);
  case OPT_INPUT:
    return take_inputs(w, argc, argv, err, errlen);
  case OPT_CSV:
    *csv = optarg;
    return 0;
  case OPT_THREADS:
    return option_int("threads", "a number", optarg, 1, KAFKA_RUN_MAX_THREADS, threads, err,
                      errlen);
  }
  return parse_rule_option(rules, opt, optarg, err, errlen);
}

#define RULE_OPTIONS                                                                               \
  {"project-start", required_argument, NULL, OPT_PROJECT_START},                                   \
      {"project-end", required_argument, NULL, OPT_PROJECT_END},                                   \
      {"full-time-weekly-hours", required_argument, NULL, OPT_FULL_TIME},                          \
      {"durable-window-months", required_argument, NULL, OPT_WINDOW}, {                            \
    "durable-run-months", required_argument, NULL, OPT_RUN                                         \
  }

/* ---- run ---- */

int options_parse_run(run_command *c, int argc, char **argv, char *err, size_t errlen) {
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
      {"registry-timeout", required_argument, NULL, OPT_REGISTRY_TIMEOUT},
      {"flush-ms", required_argument, NULL, OPT_FLUSH_MS},
      {"progress-ms", required_argument, NULL, OPT_PROGRESS_MS},
      {"snapshot-dir", required_argument, NULL, OPT_SNAPSHOT_DIR},
      {"snapshot-interval", required_argument, NULL, OPT_SNAPSHOT_INTERVAL},
      {"snapshot-topic", required_argument, NULL, OPT_SNAPSHOT_TOPIC},
      {"config", required_argument, NULL, OPT_CONFIG},
      {"replication-factor", required_argument, NULL, OPT_REPLICATION},
      LOG_FORMAT_OPTION,
      {"metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN},
      {"metrics-linger", required_argument, NULL, OPT_METRICS_LINGER},
      {"postgres", required_argument, NULL, OPT_POSTGRES},
      {"table", required_argument, NULL, OPT_TABLE},
      {"min-cell", required_argument, NULL, OPT_MIN_CELL},
      RULE_OPTIONS,
      {NULL, 0, NULL, 0}};
  memset(c, 0, sizeof *c);
  replay_options *f = &c->file;
  kafka_run_options *k = &c->stream;
  options_storage *w = &c->words;
  /* What both modes take is parsed into the Kafka options and copied. */
  rules_config_default(&k->rules);
  k->threads = 1;
  k->flush_ms = 1000;
  k->progress_ms = 2000;
  getopt_reset();
  int opt;
  while ((opt = getopt_long(argc, argv, "+X:", options, NULL)) != -1) {
    int mine = parse_client_option(opt, &k->brokers, &k->topic, &k->quiet, w, err, errlen);
    if (mine > 0)
      mine = parse_replay_option(opt, argc, argv, w, &f->csv_path, &k->threads, &k->rules, err,
                                 errlen);
    if (mine <= 0) {
      if (mine < 0)
        return -1;
      continue;
    }
    switch (opt) {
    case OPT_GROUP:
      k->group = optarg;
      break;
    case OPT_OUTPUT_TOPIC:
      k->output_topic = optarg;
      break;
    case OPT_PARTIALS_TOPIC:
      k->partials_topic = optarg;
      break;
    case OPT_DEAD_LETTER_TOPIC:
      k->dead_letter_topic = optarg;
      break;
    case OPT_SCHEMA:
      k->schema_file = optarg;
      break;
    case OPT_SCHEMA_REGISTRY:
      k->schema_registry = optarg;
      break;
    case OPT_SCHEMA_DIR:
      k->schema_dir = optarg;
      break;
    case OPT_EXIT_AT_EOF:
      k->exit_at_eof = 1;
      break;
    case OPT_REGISTRY_TIMEOUT: /* seconds a schema may stay unavailable with --exit-at-eof */
      if (option_int("registry-timeout", "seconds", optarg, 1, 86400, &k->registry_timeout_s, err,
                     errlen) < 0)
        return -1;
      break;
    case OPT_FLUSH_MS:
      if (option_int("flush-ms", "milliseconds", optarg, 10, 3600000, &k->flush_ms, err, errlen) <
          0)
        return -1;
      break;
    case OPT_PROGRESS_MS:
      if (option_int("progress-ms", "milliseconds", optarg, 10, 3600000, &k->progress_ms, err,
                     errlen) < 0)
        return -1;
      break;
    case OPT_SNAPSHOT_DIR:
      k->snapshots.dir = optarg;
      break;
    case OPT_SNAPSHOT_TOPIC:
      k->snapshots.topic = optarg;
      break;
    case OPT_SNAPSHOT_INTERVAL:
      if (parse_interval(optarg, &k->snapshots) < 0) {
        snprintf(err, errlen,
                 "--snapshot-interval needs a number of records (e.g. 5000000) or of seconds "
                 "(e.g. 30s), got '%s'",
                 optarg);
        return -1;
      }
      break;
    case OPT_DEAD_LETTER:
      f->dead_letter_path = optarg;
      break;
    case OPT_REPLICATION:
      if (option_int("replication-factor", "a number", optarg, 1, 1000, &k->replication_factor, err,
                     errlen) < 0)
        return -1;
      break;
    case OPT_METRICS_LISTEN: {
      metrics_address address;
      if (metrics_parse_address(optarg, &address, err, errlen) < 0)
        return -1;
      k->metrics_listen = optarg;
      break;
    }
    case OPT_METRICS_LINGER:
      if (option_int("metrics-linger", "seconds", optarg, 0, 3600, &f->metrics_linger_s, err,
                     errlen) < 0)
        return -1;
      break;
    case OPT_POSTGRES:
      f->postgres = optarg;
      break;
    case OPT_TABLE:
      f->postgres_table = optarg;
      break;
    case OPT_MIN_CELL:
      if (parse_min_cell(optarg, &f->min_cell, err, errlen) < 0)
        return -1;
      break;
    default:
      return unknown_option(argv, err, errlen);
    }
  }
  if (no_arguments_left(argc, argv, err, errlen) < 0)
    return -1;
  c->kafka = k->brokers != NULL;
  if (c->kafka && (f->postgres || f->postgres_table || f->min_cell)) {
    snprintf(err, errlen,
             "--postgres, --table and --min-cell go with file mode (--input); Kafka mode's output "
             "topic stays exact: 'regstream export --postgres CONNINFO [--follow] [--min-cell N]' "
             "keeps a table from it");
    return -1;
  }
  if (check_postgres(f->postgres, &f->postgres_table, err, errlen) < 0)
    return -1;
  if (f->metrics_linger_s && (c->kafka || !k->metrics_listen)) {
    snprintf(err, errlen, "--metrics-linger goes with --metrics-listen in file mode (--input)");
    return -1;
  }
  if (w->config_path && !c->kafka) {
    snprintf(err, errlen, "--config goes with --brokers (Kafka mode)");
    return -1;
  }
  /* the command line's schema source wins over the file's URL */
  int schema_given = k->schema_file || k->schema_registry || k->schema_dir;
  const char *file_url = NULL;
  if (read_config(w, &file_url, &k->registry, err, errlen) < 0)
    return -1;
  if (!schema_given)
    k->schema_registry = file_url;
  k->conf = w->conf;
  k->conf_count = w->conf_count;
  if (c->kafka) {
    if (w->input_count || f->csv_path || f->dead_letter_path) {
      snprintf(err, errlen,
               "run takes either --input (file mode) or --brokers (Kafka mode), not both");
      return -1;
    }
    if (!k->topic || !k->group || !k->output_topic || !k->dead_letter_topic) {
      snprintf(err, errlen,
               "Kafka mode needs --topic, --group, --output-topic and --dead-letter-topic");
      return -1;
    }
    if (!!k->schema_file + !!k->schema_registry + !!k->schema_dir > 1) {
      snprintf(err, errlen, "give at most one of --schema, --schema-registry, --schema-dir");
      return -1;
    }
    if (!k->partials_topic) {
      snprintf(w->partials_topic, sizeof w->partials_topic, "%s.partials", k->output_topic);
      k->partials_topic = w->partials_topic;
    }
  } else {
    if (w->input_count == 0) {
      snprintf(err, errlen,
               "run needs --input FILE.avro [FILE.avro ...] (or --brokers for Kafka mode)");
      return -1;
    }
    if (!f->csv_path || !f->dead_letter_path) {
      snprintf(err, errlen, "run needs --csv OUT.csv and --dead-letter DLQ.jsonl");
      return -1;
    }
  }
  snapshot_policy *sp = &k->snapshots;
  if (sp->topic && !c->kafka) {
    snprintf(err, errlen,
             "--snapshot-topic goes with --brokers (Kafka mode); file mode keeps its snapshots "
             "in --snapshot-dir DIR");
    return -1;
  }
  if (sp->topic && sp->dir) {
    snprintf(err, errlen,
             "give either --snapshot-dir DIR or --snapshot-topic T (where snapshots are kept), "
             "not both");
    return -1;
  }
  if (sp->topic && !*sp->topic) {
    snprintf(err, errlen, "--snapshot-topic needs a topic name");
    return -1;
  }
  if ((sp->records || sp->seconds) && !sp->dir && !sp->topic) {
    snprintf(err, errlen, "--snapshot-interval needs --snapshot-dir DIR or --snapshot-topic T");
    return -1;
  }
  if ((sp->dir || sp->topic) && !sp->records && !sp->seconds)
    sp->seconds = SNAPSHOT_DEFAULT_SECONDS;
  if (prepare_rules(&k->rules, err, errlen) < 0)
    return -1;
  f->inputs = w->inputs;
  f->input_count = w->input_count;
  f->threads = k->threads;
  f->quiet = k->quiet;
  f->progress_ms = k->progress_ms;
  f->rules = k->rules;
  f->snapshots = k->snapshots;
  f->metrics_listen = k->metrics_listen;
  return 0;
}

/* ---- produce ---- */

int options_parse_produce(produce_command *c, int argc, char **argv, char *err, size_t errlen) {
  static const struct option options[] = {
      {"brokers", required_argument, NULL, OPT_BROKERS},
      {"topic", required_argument, NULL, OPT_TOPIC},
      {"input", required_argument, NULL, OPT_INPUT},
      {"partitions", required_argument, NULL, OPT_PARTITIONS},
      {"replication-factor", required_argument, NULL, OPT_REPLICATION},
      {"framing", required_argument, NULL, OPT_FRAMING},
      {"schema-id", required_argument, NULL, OPT_SCHEMA_ID},
      {"keep-going", no_argument, NULL, OPT_KEEP_GOING},
      {"quiet", no_argument, NULL, OPT_QUIET},
      {"config", required_argument, NULL, OPT_CONFIG},
      LOG_FORMAT_OPTION,
      {NULL, 0, NULL, 0}};
  memset(c, 0, sizeof *c);
  produce_options *o = &c->opt;
  options_storage *w = &c->words;
  o->partitions = 6;
  o->replication_factor = -1;
  o->framing = FRAMING_PLAIN;
  o->schema_id = -1;
  getopt_reset();
  int opt;
  long v;
  while ((opt = getopt_long(argc, argv, "+X:", options, NULL)) != -1) {
    int client = parse_client_option(opt, &o->brokers, &o->topic, &o->quiet, w, err, errlen);
    if (client <= 0) {
      if (client < 0)
        return -1;
      continue;
    }
    switch (opt) {
    case OPT_INPUT:
      if (take_inputs(w, argc, argv, err, errlen) < 0)
        return -1;
      break;
    case OPT_PARTITIONS:
      if (option_int("partitions", "a number", optarg, 1, 100000, &o->partitions, err, errlen) < 0)
        return -1;
      break;
    case OPT_REPLICATION:
      if (option_int("replication-factor", "a number", optarg, 1, 1000, &o->replication_factor, err,
                     errlen) < 0)
        return -1;
      break;
    case OPT_FRAMING:
      if (!strcmp(optarg, "plain"))
        o->framing = FRAMING_PLAIN;
      else if (!strcmp(optarg, "confluent"))
        o->framing = FRAMING_CONFLUENT;
      else {
        snprintf(err, errlen, "--framing is plain or confluent, got '%s'", optarg);
        return -1;
      }
      break;
    case OPT_SCHEMA_ID:
      if (option_long("schema-id", "a number", optarg, 0, INT32_MAX, &v, err, errlen) < 0)
        return -1;
      o->schema_id = v;
      break;
    case OPT_KEEP_GOING:
      o->keep_going = 1;
      break;
    default:
      return unknown_option(argv, err, errlen);
    }
  }
  if (no_arguments_left(argc, argv, err, errlen) < 0 || read_config(w, NULL, NULL, err, errlen) < 0)
    return -1;
  o->inputs = w->inputs;
  o->input_count = w->input_count;
  o->conf = w->conf;
  o->conf_count = w->conf_count;
  if (!o->brokers || !o->topic) {
    snprintf(err, errlen, "produce needs --brokers HOST:PORT and --topic NAME");
    return -1;
  }
  if (o->input_count == 0) {
    snprintf(err, errlen, "produce needs --input FILE.avro [FILE.avro ...]");
    return -1;
  }
  if (o->framing == FRAMING_CONFLUENT && o->schema_id < 0) {
    snprintf(err, errlen, "--framing confluent needs --schema-id ID");
    return -1;
  }
  if (o->framing == FRAMING_PLAIN && o->schema_id >= 0) {
    snprintf(err, errlen, "--schema-id goes with --framing confluent");
    return -1;
  }
  return 0;
}

/* ---- export ---- */

int options_parse_export(export_command *c, int argc, char **argv, char *err, size_t errlen) {
  static const struct option options[] = {{"brokers", required_argument, NULL, OPT_BROKERS},
                                          {"topic", required_argument, NULL, OPT_TOPIC},
                                          {"csv", required_argument, NULL, OPT_CSV},
                                          {"timeout", required_argument, NULL, OPT_TIMEOUT},
                                          {"quiet", no_argument, NULL, OPT_QUIET},
                                          {"config", required_argument, NULL, OPT_CONFIG},
                                          LOG_FORMAT_OPTION,
                                          {"postgres", required_argument, NULL, OPT_POSTGRES},
                                          {"table", required_argument, NULL, OPT_TABLE},
                                          {"follow", no_argument, NULL, OPT_FOLLOW},
                                          {"min-cell", required_argument, NULL, OPT_MIN_CELL},
                                          {NULL, 0, NULL, 0}};
  memset(c, 0, sizeof *c);
  export_options *o = &c->opt;
  options_storage *w = &c->words;
  o->timeout_seconds = 30;
  getopt_reset();
  int opt;
  while ((opt = getopt_long(argc, argv, "+X:", options, NULL)) != -1) {
    int client = parse_client_option(opt, &o->brokers, &o->topic, &o->quiet, w, err, errlen);
    if (client <= 0) {
      if (client < 0)
        return -1;
      continue;
    }
    switch (opt) {
    case OPT_CSV:
      o->csv_path = optarg;
      break;
    case OPT_TIMEOUT:
      if (option_int("timeout", "seconds", optarg, 1, 86400, &o->timeout_seconds, err, errlen) < 0)
        return -1;
      break;
    case OPT_POSTGRES:
      o->postgres = optarg;
      break;
    case OPT_TABLE:
      o->postgres_table = optarg;
      break;
    case OPT_FOLLOW:
      o->follow = 1;
      break;
    case OPT_MIN_CELL:
      if (parse_min_cell(optarg, &o->min_cell, err, errlen) < 0)
        return -1;
      break;
    default:
      return unknown_option(argv, err, errlen);
    }
  }
  if (no_arguments_left(argc, argv, err, errlen) < 0 || read_config(w, NULL, NULL, err, errlen) < 0)
    return -1;
  o->conf = w->conf;
  o->conf_count = w->conf_count;
  if (!o->brokers || !o->topic || (!o->csv_path && !o->postgres)) {
    snprintf(err, errlen,
             "export needs --brokers HOST:PORT, --topic NAME and --csv OUT.csv or --postgres "
             "CONNINFO");
    return -1;
  }
  if (o->follow && (!o->postgres || o->csv_path)) {
    snprintf(err, errlen, "--follow goes with --postgres CONNINFO (and without --csv)");
    return -1;
  }
  return check_postgres(o->postgres, &o->postgres_table, err, errlen);
}

/* ---- demo ---- */

int options_parse_demo(demo_command *c, int argc, char **argv, char *err, size_t errlen) {
  static const struct option options[] = {{"input", required_argument, NULL, OPT_INPUT},
                                          {"csv", required_argument, NULL, OPT_CSV},
                                          {"threads", required_argument, NULL, OPT_THREADS},
                                          LOG_FORMAT_OPTION,
                                          RULE_OPTIONS,
                                          {NULL, 0, NULL, 0}};
  memset(c, 0, sizeof *c);
  demo_options *o = &c->opt;
  options_storage *w = &c->words;
  rules_config_default(&o->rules);
  o->threads = 1;
  getopt_reset();
  int opt;
  while ((opt = getopt_long(argc, argv, "+", options, NULL)) != -1) {
    int mine =
        parse_replay_option(opt, argc, argv, w, &o->csv_path, &o->threads, &o->rules, err, errlen);
    if (mine != 0)
      return mine < 0 ? -1 : unknown_option(argv, err, errlen);
  }
  if (no_arguments_left(argc, argv, err, errlen) < 0)
    return -1;
  o->inputs = w->inputs;
  o->input_count = w->input_count;
  if (o->input_count == 0 || !o->csv_path) {
    snprintf(err, errlen, "demo needs --input FILE.avro [FILE.avro ...] and --csv OUT.csv");
    return -1;
  }
  return prepare_rules(&o->rules, err, errlen);
}

/* ---- report ---- */

int options_parse_report(report_options *o, int argc, char **argv, char *err, size_t errlen) {
  static const struct option options[] = {{"csv", required_argument, NULL, OPT_CSV},
                                          {"at", required_argument, NULL, OPT_AT},
                                          {"check", no_argument, NULL, OPT_CHECK},
                                          {"tolerance", required_argument, NULL, OPT_TOLERANCE},
                                          {"html", required_argument, NULL, OPT_HTML},
                                          {"min-cell", required_argument, NULL, OPT_MIN_CELL},
                                          LOG_FORMAT_OPTION,
                                          {"postgres", required_argument, NULL, OPT_POSTGRES},
                                          {"table", required_argument, NULL, OPT_TABLE},
                                          {NULL, 0, NULL, 0}};
  const char *postgres = NULL, *table = NULL;
  memset(o, 0, sizeof *o);
  o->at = REPORT_DEFAULT_AT;
  o->tolerance = 2.0;
  getopt_reset();
  int opt;
  long v;
  while ((opt = getopt_long(argc, argv, "+", options, NULL)) != -1) {
    switch (opt) {
    case OPT_CSV:
      o->csv_path = optarg;
      break;
    case OPT_AT:
      if (parse_long(optarg, 199001, 209912, &v) < 0 || !period_valid((int32_t)v)) {
        snprintf(err, errlen, "--at needs a month YYYYMM, got '%s'", optarg);
        return -1;
      }
      o->at = (int)v;
      break;
    case OPT_CHECK:
      o->check = 1;
      break;
    case OPT_POSTGRES:
      postgres = optarg;
      break;
    case OPT_TABLE:
      table = optarg;
      break;
    case OPT_HTML:
      o->html_path = optarg;
      break;
    case OPT_MIN_CELL:
      if (parse_long(optarg, 0, 1000000, &v) < 0) {
        snprintf(err, errlen, "--min-cell needs a count 0..1000000 (0: off), got '%s'", optarg);
        return -1;
      }
      o->min_cell = (uint32_t)v;
      break;
    case OPT_LOG_FORMAT:
      if (parse_log_option(opt, err, errlen) < 0)
        return -1;
      break;
    case OPT_TOLERANCE:
      /* !(x >= 0) also rejects NaN, which would pass every comparison */
      if (parse_double(optarg, &o->tolerance) < 0 || !(o->tolerance >= 0)) {
        snprintf(err, errlen, "--tolerance needs a number of percentage points, got '%s'", optarg);
        return -1;
      }
      break;
    default:
      return unknown_option(argv, err, errlen);
    }
  }
  if (no_arguments_left(argc, argv, err, errlen) < 0)
    return -1;
  if (!o->csv_path == !postgres) {
    snprintf(err, errlen, "report needs --csv ROLLUP.csv or --postgres CONNINFO (one of them)");
    return -1;
  }
  if (check_postgres(postgres, &table, err, errlen) < 0)
    return -1;
  if (postgres) { /* the rows come from the table; the report names it */
    static char name[200];
    snprintf(name, sizeof name, "PostgreSQL table %s", table);
    report_source_postgres(postgres, table);
    o->csv_path = name;
  }
  return 0;
}
