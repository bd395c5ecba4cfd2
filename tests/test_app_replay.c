/* test_app_replay.c — the file-mode pipeline end to end on small files made
 * here: results identical for 1..4 threads, every rejected record in the
 * dead-letter file with its reason and source (invalid values, late months,
 * an undecodable record inside a block, a damaged block), records after the
 * damage still counted (also where the ring of block slots has wrapped),
 * and clean one-line errors for bad inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "avro/decode.h"
#include "avro/ocf.h"
#include "avro/schemas.h"
#include "cli/options.h"
#include "file/replay.h"

static char dir[256];

/* A path inside the test's directory; each call gets a buffer of its own
 * (a test makes far fewer paths than there are buffers). */
static const char *path_in(const char *name) {
  static char paths[64][512];
  static int used;
  assert_true(used < 64);
  char *p = paths[used++];
  snprintf(p, sizeof paths[0], "%s/%s", dir, name);
  return p;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = calloc(1, (size_t)n + 1);
  assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  return text;
}

static int count_lines_with(const char *text, const char *needle) {
  int n = 0;
  for (const char *line = text; *line;) {
    const char *eol = strchr(line, '\n');
    size_t len = eol ? (size_t)(eol - line) : strlen(line);
    char *copy = strndup(line, len);
    if (strstr(copy, needle))
      n++;
    free(copy);
    line += len + (eol ? 1 : 0);
  }
  return n;
}

static pm_record person_month(int64_t id, int32_t period, float hours, int enrolled) {
  pm_record r = {0};
  r.person_id = id;
  r.period = period;
  r.municipality = 101;
  r.paid_hours = hours;
  r.visitation = VISITATION_JOBPARAT;
  r.benefit = BENEFIT_KONTANTHJAELP;
  r.flags = enrolled ? PM_ENROLLED : 0;
  return r;
}

static void append(ocf_writer *w, const pm_record *r) {
  uint8_t buf[PM_ENCODED_MAX];
  char err[200];
  size_t n = pm_encode(r, buf);
  assert_int_equal(ocf_writer_append(w, buf, n, err, sizeof err), 0);
}

/* 40 persons x 6 months month-major, with one invalid municipality, one late
 * record, and (in the damaged variant) a garbage datum mid-stream. */
static void write_input(const char *path, ocf_codec codec, int garbage) {
  char err[200];
  ocf_writer *w = ocf_writer_open(path, pm_reader_schema_json, codec, 0, 256, err, sizeof err);
  assert_non_null(w);
  for (int32_t month = 1; month <= 6; month++) {
    for (int64_t id = 1; id <= 40; id++) {
      pm_record r = person_month(id * 1000003, 202300 + month, (float)(id * month % 50) * 4.0f,
                                 month >= (int)(id % 4) + 1);
      append(w, &r);
    }
    if (month == 3) {
      pm_record bad = person_month(5, 202303, 10, 1);
      bad.municipality = 999;
      append(w, &bad);
      pm_record late = person_month(7 * 1000003, 202301, 100, 1);
      append(w, &late);
      if (garbage) {
        static const uint8_t junk[12] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                         0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
        assert_int_equal(ocf_writer_append(w, junk, sizeof junk, err, sizeof err), 0);
      }
    }
  }
  assert_int_equal(ocf_writer_close(w, err, sizeof err), 0);
}

static int run(const char **inputs, int n, int threads, const char *csv, const char *dlq,
               replay_result *res, char *err, size_t errlen) {
  replay_options cfg;
  memset(&cfg, 0, sizeof cfg);
  rules_config_default(&cfg.rules);
  char rule_err[100];
  assert_int_equal(rules_config_prepare(&cfg.rules, rule_err, sizeof rule_err), 0);
  cfg.inputs = inputs;
  cfg.input_count = n;
  cfg.csv_path = csv;
  cfg.dead_letter_path = dlq;
  cfg.threads = threads;
  cfg.quiet = 1;
  int rc = replay_run(&cfg, res, err, errlen);
  if (rc != 0)
    fprintf(stderr, "replay_run: %s\n", err);
  return rc;
}

static void test_thread_counts_agree(void **unused) {
  (void)unused;
  const char *input = path_in("clean.avro");
  write_input(input, OCF_CODEC_DEFLATE, 0);
  char err[512];
  replay_result res;
  assert_int_equal(
      run(&input, 1, 1, path_in("one.csv"), path_in("one.jsonl"), &res, err, sizeof err), 0);
  assert_int_equal(res.records, 6 * 40 + 2);
  assert_int_equal(res.rejected[REASON_MUNICIPALITY], 1);
  assert_int_equal(res.rejected[REASON_LATE], 1);
  assert_int_equal(res.persons, 40);
  char *expected = slurp(path_in("one.csv"));
  const char *header = "period,municipality,visitation,members,now_goal1,";
  assert_true(strncmp(expected, header, strlen(header)) == 0);
  assert_int_equal(count_lines_with(expected, ",101,JOBPARAT,"), 6);
  for (int threads = 2; threads <= 4; threads++) {
    assert_int_equal(
        run(&input, 1, threads, path_in("n.csv"), path_in("n.jsonl"), &res, err, sizeof err), 0);
    char *got = slurp(path_in("n.csv"));
    assert_string_equal(got, expected);
    free(got);
    char *dlq = slurp(path_in("n.jsonl"));
    assert_int_equal(count_lines_with(dlq, "\"reason\":\"late\""), 1);
    assert_int_equal(count_lines_with(dlq, "\"reason\":\"municipality\""), 1);
    free(dlq);
  }
  free(expected);
}

static void test_damage_is_dead_lettered(void **unused) {
  (void)unused;
  const char *input = path_in("damaged.avro");
  write_input(input, OCF_CODEC_NULL, 1);
  char err[512];
  replay_result res;
  assert_int_equal(run(&input, 1, 2, path_in("d.csv"), path_in("d.jsonl"), &res, err, sizeof err),
                   0);
  char *dlq = slurp(path_in("d.jsonl"));
  assert_int_equal(count_lines_with(dlq, "\"reason\":\"undecodable\""), 1);
  assert_int_equal(count_lines_with(dlq, "\"file_index\":0"), 3);
  assert_int_equal(res.rejected[REASON_UNDECODABLE], 1);
  /* Months after the damaged block are still counted. */
  char *csv = slurp(path_in("d.csv"));
  assert_int_equal(count_lines_with(csv, "202306,101,JOBPARAT,"), 1);
  free(csv);
  free(dlq);

  /* Overwrite bytes in the middle of the file: a damaged region, the rest read. */
  FILE *f = fopen(input, "r+b");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, size * 3 / 4, SEEK_SET);
  for (int i = 0; i < 64; i++)
    fputc(0xee, f);
  fclose(f);
  assert_int_equal(run(&input, 1, 3, path_in("e.csv"), path_in("e.jsonl"), &res, err, sizeof err),
                   0);
  assert_true(res.rejected[REASON_UNDECODABLE] >= 2);
  csv = slurp(path_in("e.csv"));
  assert_int_equal(count_lines_with(csv, "202306,101,JOBPARAT,"), 1);
  free(csv);
}

/* Sorted lines of a file: the dead letters as a multiset (their order across
 * threads is not defined). */
static int by_string(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *sorted_lines(const char *path) {
  char *text = slurp(path);
  size_t n = 0, cap = 64, len = strlen(text);
  char **lines = malloc(cap * sizeof *lines);
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    if (n == cap)
      lines = realloc(lines, (cap *= 2) * sizeof *lines);
    lines[n++] = line;
  }
  qsort(lines, n, sizeof *lines, by_string);
  char *out = calloc(1, len + 2), *at = out;
  for (size_t i = 0; i < n; i++)
    at += sprintf(at, "%s\n", lines[i]);
  free(lines);
  free(text);
  return out;
}

/* A damaged region in a file of more blocks than the ring holds: its slot
 * was used before, and no worker applies that earlier block's records again
 * (a stale shard grouping did: its records came out as late dead letters
 * with more threads only). Every thread count gives the one-thread run's
 * counts, CSV and dead letters. */
static void test_damage_after_the_ring_wraps(void **unused) {
  (void)unused;
  const char *input = path_in("long.avro");
  char err[512];
  ocf_writer *w =
      ocf_writer_open(input, pm_reader_schema_json, OCF_CODEC_NULL, 0, 256, err, sizeof err);
  assert_non_null(w);
  for (int32_t month = 1; month <= 12; month++)
    for (int64_t id = 1; id <= 400; id++) {
      pm_record r = person_month(id * 7919, 202300 + month, (float)(id * month % 50) * 4.0f,
                                 month >= (int)(id % 4) + 1);
      append(w, &r);
    }
  assert_int_equal(ocf_writer_close(w, err, sizeof err), 0);
  FILE *f = fopen(input, "r+b");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  assert_true(size / 256 > 4 * 32 * 3); /* more blocks than 3 workers' rings, several laps */
  fseek(f, size * 3 / 4, SEEK_SET);
  for (int i = 0; i < 600; i++)
    fputc(0xee, f);
  fclose(f);

  replay_result one, res;
  assert_int_equal(run(&input, 1, 1, path_in("w1.csv"), path_in("w1.jsonl"), &one, err, sizeof err),
                   0);
  assert_true(one.rejected[REASON_UNDECODABLE] >= 1);
  assert_int_equal(one.rejected[REASON_LATE], 0);
  char *csv = slurp(path_in("w1.csv")), *dlq = sorted_lines(path_in("w1.jsonl"));
  for (int threads = 2; threads <= 4; threads++) {
    assert_int_equal(
        run(&input, 1, threads, path_in("wn.csv"), path_in("wn.jsonl"), &res, err, sizeof err), 0);
    assert_int_equal(res.records, one.records);
    for (int why = 0; why < REASON_COUNT; why++)
      assert_int_equal(res.rejected[why], one.rejected[why]);
    assert_int_equal(res.corrected, one.corrected);
    char *got = slurp(path_in("wn.csv")), *got_dlq = sorted_lines(path_in("wn.jsonl"));
    assert_string_equal(got, csv);
    assert_string_equal(got_dlq, dlq);
    free(got);
    free(got_dlq);
  }
  free(csv);
  free(dlq);
}

static void test_clean_errors(void **unused) {
  (void)unused;
  char err[512];
  replay_result res;
  const char *missing = path_in("missing.avro");
  assert_int_equal(run(&missing, 1, 1, path_in("x.csv"), path_in("x.jsonl"), &res, err, sizeof err),
                   -1);
  assert_non_null(strstr(err, "missing.avro"));
  assert_null(strchr(err, '\n'));

  /* A writer schema that cannot be read as PersonMonth (person_id a string). */
  const char *bad_schema =
      "{\"type\":\"record\",\"name\":\"PersonMonth\",\"namespace\":\"regstream\",\"fields\":["
      "{\"name\":\"person_id\",\"type\":\"string\"}]}";
  const char *input = path_in("incompatible.avro");
  ocf_writer *w = ocf_writer_open(input, bad_schema, OCF_CODEC_NULL, 0, 0, err, sizeof err);
  assert_non_null(w);
  assert_int_equal(ocf_writer_close(w, err, sizeof err), 0);
  assert_int_equal(run(&input, 1, 1, path_in("y.csv"), path_in("y.jsonl"), &res, err, sizeof err),
                   -1);
  assert_non_null(strstr(err, "incompatible.avro"));

  /* An unwritable dead-letter path. */
  const char *clean = path_in("clean2.avro");
  write_input(clean, OCF_CODEC_NULL, 0);
  assert_int_equal(
      run(&clean, 1, 1, path_in("z.csv"), "/nonexistent/dir/dlq.jsonl", &res, err, sizeof err), -1);
  assert_non_null(strstr(err, "/nonexistent/dir/dlq.jsonl"));
}

/* options_parse_run, freeing what an earlier parse into c collected. */
static int parse_run(run_command *c, int argc, char **argv, char *err, size_t errlen) {
  options_free(&c->words);
  return options_parse_run(c, argc, argv, err, errlen);
}

static void test_config_errors(void **unused) {
  (void)unused;
  static run_command cfg;
  char err[300];
  char *unknown[] = {"run",   "--input",       "a.avro",  "--csv",
                     "o.csv", "--dead-letter", "d.jsonl", "--bogus"};
  assert_int_equal(parse_run(&cfg, 8, unknown, err, sizeof err), -1);
  assert_non_null(strstr(err, "--bogus"));
  char *threads[] = {"run",           "--input", "a.avro",    "--csv", "o.csv",
                     "--dead-letter", "d.jsonl", "--threads", "0"};
  assert_int_equal(parse_run(&cfg, 9, threads, err, sizeof err), -1);
  char *run_months[] = {"run",   "--input",       "a.avro",  "--csv",
                        "o.csv", "--dead-letter", "d.jsonl", "--durable-run-months",
                        "9"};
  assert_int_equal(parse_run(&cfg, 9, run_months, err, sizeof err), -1);
  char *many[] = {"run",   "--input",       "a.avro",  "b.avro",          "c.avro", "--csv",
                  "o.csv", "--dead-letter", "d.jsonl", "--project-start", "201901"};
  assert_int_equal(parse_run(&cfg, 11, many, err, sizeof err), 0);
  assert_int_equal(cfg.file.input_count, 3);
  assert_string_equal(cfg.file.inputs[2], "c.avro");
  assert_int_equal(cfg.file.rules.project_start, 201901);
  char *no_csv[] = {"run", "--input", "a.avro", "--dead-letter", "d.jsonl"};
  assert_int_equal(parse_run(&cfg, 5, no_csv, err, sizeof err), -1);
  options_free(&cfg.words);
}

int main(void) {
  snprintf(dir, sizeof dir, "%s/test_app_replay.XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(dir))
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_thread_counts_agree),
      cmocka_unit_test(test_damage_is_dead_lettered),
      cmocka_unit_test(test_damage_after_the_ring_wraps),
      cmocka_unit_test(test_clean_errors),
      cmocka_unit_test(test_config_errors),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return failed;
}
