/* fuzz_config.c — owned by the fuzzing work (tests/fuzz/): libFuzzer harness
 * for the command line (processor/cli/options.c). Input: the arguments after the
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

#include "cli/options.h"
#include "fuzz_common.h"

enum { MAX_ARGS = 8192 };

static run_command run_cmd;
static report_options rep;

/* p is one of the words, or points inside one. */
static int inside_words(const char *p, const char *words, size_t len) {
  return p >= words && p <= words + len;
}

/* p is one of the items read from a --config file the words named. */
static int in_config_file(const char *p) {
  const config_file *cf = &run_cmd.words.config;
  for (int i = 0; i < cf->count; i++)
    if (cf->entries[i].item == p)
      return 1;
  return 0;
}

static int is_input(const char *p) {
  for (int i = 0; i < run_cmd.words.input_count; i++)
    if (run_cmd.words.inputs[i] == p)
      return 1;
  return 0;
}

static void check_run(int rc, char **argv, int argc, const char *words, size_t len, const char *err,
                      size_t errlen) {
  if (rc != 0) {
    FUZZ_CHECK(rc == -1, "options_parse_run returned neither 0 nor -1");
    fuzz_check_err_text(err, errlen);
    return;
  }
  FUZZ_CHECK(run_cmd.stream.threads >= 1 && run_cmd.stream.threads <= KAFKA_RUN_MAX_THREADS &&
                 run_cmd.file.threads == run_cmd.stream.threads,
             "thread count");
  const kafka_run_options *k = &run_cmd.stream;
  const replay_options *f = &run_cmd.file;
  FUZZ_CHECK(k->conf_count >= 0 && k->conf_count <= KAFKA_MAX_CONF, "-X count");
  for (int i = 0; i < k->conf_count; i++)
    FUZZ_CHECK(k->conf[i] && (inside_words(k->conf[i], words, len) || in_config_file(k->conf[i])),
               "-X item neither a word nor an item of the --config file");
  char rule_err[200];
  rules_config copy = k->rules;
  FUZZ_CHECK(rules_config_prepare(&copy, rule_err, sizeof rule_err) == 0,
             "accepted rules that rules_config_prepare rejects");
  if (run_cmd.kafka) {
    /* Kafka mode: its topics, no file-mode outputs */
    FUZZ_CHECK(run_cmd.words.input_count == 0 && !f->csv_path && !f->dead_letter_path,
               "Kafka mode with file-mode options");
    const char *const need[] = {k->brokers, k->topic, k->group, k->output_topic,
                                k->dead_letter_topic};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
      FUZZ_CHECK(need[i] && inside_words(need[i], words, len), "Kafka mode option missing");
    FUZZ_CHECK(k->partials_topic != NULL, "no partials topic");
    FUZZ_CHECK(!!k->schema_file + !!k->schema_registry + !!k->schema_dir <= 1,
               "more than one schema source");
    return;
  }
  FUZZ_CHECK(f->input_count >= 1 && f->input_count == run_cmd.words.input_count, "input count");
  FUZZ_CHECK(!memcmp(&f->rules, &k->rules, sizeof f->rules), "file mode rules differ");
  for (int i = 0; i < f->input_count; i++)
    FUZZ_CHECK(f->inputs[i] && inside_words(f->inputs[i], words, len), "input not a word");
  FUZZ_CHECK(f->csv_path && inside_words(f->csv_path, words, len), "csv path");
  FUZZ_CHECK(f->dead_letter_path && inside_words(f->dead_letter_path, words, len),
             "dead-letter path");
  /* --input=FILE (or --inp=FILE ...): FILE is an input, unless the whole
   * word was the value of an option. */
  for (int i = 1; i < argc; i++) {
    const char *w = argv[i];
    const char *eq = strchr(w, '=');
    if (strncmp(w, "--i", 3) != 0 || !eq || (size_t)(eq - w - 2) > strlen("input") ||
        strncmp(w + 2, "input", (size_t)(eq - w - 2)) != 0)
      continue;
    if (w == f->csv_path || w == f->dead_letter_path || is_input(w))
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
    FUZZ_CHECK(rc == -1, "options_parse_report returned neither 0 nor -1");
    fuzz_check_err_text(err, errlen);
    return;
  }
  /* --postgres (or an abbreviation of it) names the table instead */
  FUZZ_CHECK(rep.csv_path && (inside_words(rep.csv_path, words, len) ||
                              !strncmp(rep.csv_path, "PostgreSQL table ", 17)),
             "csv path");
  FUZZ_CHECK(rep.at >= 199001 && rep.at <= 209912 && rep.at % 100 >= 1 && rep.at % 100 <= 12,
             "report month out of range");
  FUZZ_CHECK(!isnan(rep.tolerance) && rep.tolerance >= 0, "tolerance not a number of points");
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
  int rc = options_parse_run(&run_cmd, argc, argv, err, sizeof err);
  check_run(rc, argv, argc, words, size, err, sizeof err);
  options_free(&run_cmd.words);

  argv[0] = report;
  memset(err, 'x', sizeof err);
  rc = options_parse_report(&rep, argc, argv, err, sizeof err);
  check_report(rc, words, size, err, sizeof err);

  free(argv);
  free(words);
  return 0;
}
