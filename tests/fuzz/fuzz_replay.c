/* fuzz_replay.c — owned by the fuzzing work (tests/fuzz/): libFuzzer harness
 * for the whole file pipeline, replay_run (processor/replay.c). Input: byte 0
 * chooses the run (bits 0-1: 1-3 worker threads; bit 2: a project window;
 * bit 3: a shorter durable window; bit 4: the file given twice), the rest is
 * an Avro container file (in memory). Outputs go to a scratch directory.
 * Checks: replay_run returns 0 or -1 with a one-line reason, never crashes or
 * leaks; on success the CSV exists with the SPEC §4 header and the
 * dead-letter file holds one line per rejected record; and with more than one
 * thread the run must equal a one-thread run (return code, CSV bytes, counts:
 * SPEC says results are identical for every thread count). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file/replay.h"
#include "fuzz_common.h"

typedef struct outcome {
  int rc;
  replay_result res;
  char err[300];
  char *csv;
  size_t csv_len;
} outcome;

static replay_options cfg;
static const char *inputs[2];

static void run(const char *input, unsigned control, int threads, outcome *o) {
  char csv[300], dlq[300];
  memset(&cfg, 0, sizeof cfg);
  rules_config_default(&cfg.rules);
  if (control & 4) {
    cfg.rules.project_start = 201901;
    cfg.rules.project_end = 202112;
  }
  if (control & 8) {
    cfg.rules.durable_window_months = 4;
    cfg.rules.durable_run_months = 2;
  }
  char rule_err[200];
  FUZZ_CHECK(rules_config_prepare(&cfg.rules, rule_err, sizeof rule_err) == 0, rule_err);
  inputs[0] = inputs[1] = input;
  cfg.inputs = inputs;
  cfg.input_count = control & 16 ? 2 : 1;
  cfg.csv_path = fuzz_scratch_path("out.csv", csv, sizeof csv);
  cfg.dead_letter_path = fuzz_scratch_path("dead.jsonl", dlq, sizeof dlq);
  cfg.threads = threads;
  cfg.quiet = 1;
  remove(cfg.csv_path);
  memset(o->err, 'x', sizeof o->err);
  o->rc = replay_run(&cfg, &o->res, o->err, sizeof o->err);
  o->csv = NULL;
  o->csv_len = 0;
  if (o->rc != 0) {
    FUZZ_CHECK(o->rc == -1, "replay_run returned neither 0 nor -1");
    fuzz_check_err(o->err, sizeof o->err);
    return;
  }
  o->csv = fuzz_slurp(cfg.csv_path, &o->csv_len);
  FUZZ_CHECK(o->csv != NULL, "no CSV after a successful run");
  FUZZ_CHECK(strncmp(o->csv, "period,municipality,visitation,members,", 39) == 0,
             "CSV without its header");
  uint64_t rejected = 0;
  for (int i = 0; i < REASON_COUNT; i++)
    rejected += o->res.rejected[i];
  size_t dlq_len;
  char *dead = fuzz_slurp(cfg.dead_letter_path, &dlq_len);
  FUZZ_CHECK(dead != NULL, "no dead-letter file after a successful run");
  uint64_t lines = 0;
  for (size_t i = 0; i < dlq_len; i++)
    lines += dead[i] == '\n';
  free(dead);
  FUZZ_CHECK(lines == rejected, "dead-letter lines differ from the rejected count");
  FUZZ_CHECK(o->res.rejected[REASON_OK] == 0, "records rejected for reason ok");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  unsigned control = data[0];
  int threads = 1 + (int)(control & 3) % 3;
  const char *input = fuzz_file_with(data + 1, size - 1);
  outcome many, one;
  run(input, control, threads, &many);
  if (threads > 1) {
    run(input, control, 1, &one);
    FUZZ_CHECK(many.rc == one.rc, "the thread count changes whether the run succeeds");
    if (one.rc == 0) {
      FUZZ_CHECK(many.csv_len == one.csv_len && memcmp(many.csv, one.csv, one.csv_len) == 0,
                 "the thread count changes the CSV");
      FUZZ_CHECK(memcmp(many.res.rejected, one.res.rejected, sizeof one.res.rejected) == 0,
                 "the thread count changes the rejected counts");
      FUZZ_CHECK(many.res.records == one.res.records && many.res.rows == one.res.rows &&
                     many.res.corrected == one.res.corrected && many.res.persons == one.res.persons,
                 "the thread count changes the run's totals");
    } else {
      FUZZ_CHECK(strcmp(many.err, one.err) == 0, "the thread count changes the error");
    }
    free(one.csv);
  }
  free(many.csv);
  return 0;
}
