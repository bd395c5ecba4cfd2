/* fuzz_config.c — owned by the fuzzing work (tests/fuzz/): libFuzzer harness
 * for the command line (processor/config.c). Input: the arguments after the
 * subcommand, separated by NUL bytes; they are parsed as `regstream run ...`
 * and then, from the same words, as `regstream report ...` (so a parse must
 * not depend on what an earlier parse left behind). File mode and Kafka mode
 * (--brokers) alike. Checks: -1 comes with a reason (not checked for being one
 * line: it may quote an argument verbatim); 0 comes with a complete, valid
 * configuration whose strings are the caller's own words; every
 * `--input=FILE` word (or an abbreviation of it) that is not itself another
 * option's value names an input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/config.h"
#include "fuzz_common.h"

enum { MAX_ARGS = 8192 };

static config cfg;

/* p is one of the words, or points inside one. */
static int inside_words(const char *p, const char *words, size_t len) {
  return p >= words && p <= words + len;
}

static int is_input(const char *p) {
  for (int i = 0; i < cfg.input_count; i++)
    if (cfg.inputs[i] == p)
      return 1;
  return 0;
}

static void check_run(int rc, char **argv, int argc, const char *words, size_t len, const char *err,
                      size_t errlen) {
  if (rc != 0) {
    FUZZ_CHECK(rc == -1, "config_parse_run returned neither 0 nor -1");
    fuzz_check_err_text(err, errlen);
    return;
  }
  FUZZ_CHECK(cfg.threads >= 1 && cfg.threads <= CONFIG_MAX_THREADS, "thread count");
  FUZZ_CHECK(cfg.kafka_conf_count >= 0 &&
                 cfg.kafka_conf_count <= (int)(sizeof cfg.kafka_conf / sizeof cfg.kafka_conf[0]),
             "-X count");
  for (int i = 0; i < cfg.kafka_conf_count; i++)
    FUZZ_CHECK(cfg.kafka_conf[i] && inside_words(cfg.kafka_conf[i], words, len), "-X not a word");
  char rule_err[200];
  rules_config copy = cfg.rules;
  FUZZ_CHECK(rules_config_prepare(&copy, rule_err, sizeof rule_err) == 0,
             "accepted rules that rules_config_prepare rejects");
  if (config_is_kafka(&cfg)) {
    /* Kafka mode: its topics, no file-mode outputs */
    FUZZ_CHECK(cfg.input_count == 0 && !cfg.csv_path && !cfg.dead_letter_path,
               "Kafka mode with file-mode options");
    const char *const need[] = {cfg.brokers, cfg.topic, cfg.group, cfg.output_topic,
                                cfg.dead_letter_topic};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
      FUZZ_CHECK(need[i] && inside_words(need[i], words, len), "Kafka mode option missing");
    FUZZ_CHECK(cfg.partials_topic != NULL, "no partials topic");
    FUZZ_CHECK(!!cfg.schema_file + !!cfg.schema_registry + !!cfg.schema_dir <= 1,
               "more than one schema source");
    return;
  }
  FUZZ_CHECK(cfg.input_count >= 1 && cfg.input_count <= CONFIG_MAX_INPUTS, "input count");
  for (int i = 0; i < cfg.input_count; i++)
    FUZZ_CHECK(cfg.inputs[i] && inside_words(cfg.inputs[i], words, len), "input not a word");
  FUZZ_CHECK(cfg.csv_path && inside_words(cfg.csv_path, words, len), "csv path");
  FUZZ_CHECK(cfg.dead_letter_path && inside_words(cfg.dead_letter_path, words, len),
             "dead-letter path");
  /* --input=FILE (or --inp=FILE ...): FILE is an input, unless the whole
   * word was the value of an option. */
  for (int i = 1; i < argc; i++) {
    const char *w = argv[i];
    const char *eq = strchr(w, '=');
    if (strncmp(w, "--i", 3) != 0 || !eq || (size_t)(eq - w - 2) > strlen("input") ||
        strncmp(w + 2, "input", (size_t)(eq - w - 2)) != 0)
      continue;
    if (w == cfg.csv_path || w == cfg.dead_letter_path || is_input(w))
      continue;
    /* after an option word without '=' it may be that option's value (and
     * overwritten since): no claim */
    if (strncmp(argv[i - 1], "--", 2) == 0 && !strchr(argv[i - 1], '='))
      continue;
    FUZZ_CHECK(is_input(eq + 1), "an --input=FILE word is not among the inputs");
  }
}

static void check_report(int rc, const char *words, size_t len, const char *err, size_t errlen) {
  if (rc != 0) {
    FUZZ_CHECK(rc == -1, "config_parse_report returned neither 0 nor -1");
    fuzz_check_err_text(err, errlen);
    return;
  }
  FUZZ_CHECK(cfg.csv_path && inside_words(cfg.csv_path, words, len), "csv path");
  FUZZ_CHECK(cfg.report_at >= 199001 && cfg.report_at <= 209912 && cfg.report_at % 100 >= 1 &&
                 cfg.report_at % 100 <= 12,
             "report month out of range");
  FUZZ_CHECK(!isnan(cfg.report_tolerance) && cfg.report_tolerance >= 0,
             "tolerance not a number of points");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* the words, NUL-terminated, in an exactly-sized buffer */
  char *words = malloc(size + 1);
  char **argv = malloc(sizeof *argv * (MAX_ARGS + 2));
  FUZZ_CHECK(words && argv, "out of memory");
  memcpy(words, data, size);
  words[size] = '\0';
  int argc = 1;
  argv[argc++] = words;
  for (size_t i = 0; i < size && argc <= MAX_ARGS; i++)
    if (words[i] == '\0')
      argv[argc++] = words + i + 1;
  if (size == 0)
    argc = 1;
  argv[argc] = NULL;
  char err[300];

  static char run[] = "run", report[] = "report";
  argv[0] = run;
  memset(err, 'x', sizeof err);
  int rc = config_parse_run(&cfg, argc, argv, err, sizeof err);
  check_run(rc, argv, argc, words, size, err, sizeof err);

  argv[0] = report;
  memset(err, 'x', sizeof err);
  rc = config_parse_report(&cfg, argc, argv, err, sizeof err);
  check_report(rc, words, size, err, sizeof err);

  free(argv);
  free(words);
  return 0;
}
