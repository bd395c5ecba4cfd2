/* fuzz_report.c — owned by the fuzzing work (tests/fuzz/): libFuzzer harness
 * for `regstream report` (processor/report.c). Input: a rollup CSV file (in
 * memory). report_load at the report's measurement point (every third input
 * under --min-cell 5), then report_print (to /dev/null) and report_check;
 * the tolerance comes from the file's length so that both outcomes of the
 * check are reached. Checks: a failed load gives a one-line reason;
 * report_check's count is within the number of measures and comes with a
 * one-line summary when non-zero. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "tools/report.h"

static FILE *devnull;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!devnull) {
    devnull = fopen("/dev/null", "w");
    FUZZ_CHECK(devnull != NULL, "cannot open /dev/null");
  }
  const char *path = fuzz_file_with(data, size);
  char err[400];
  memset(err, 'x', sizeof err);
  /* every third input under --min-cell 5 (the rule on what is shown) */
  report_options o = {.csv_path = path, .at = REPORT_DEFAULT_AT, .min_cell = size % 3 ? 0 : 5};
  report_data *d = report_load(&o, err, sizeof err);
  if (!d) {
    fuzz_check_err(err, sizeof err);
    return 0;
  }
  memset(err, 'x', sizeof err);
  int printed = report_print(devnull, d, err, sizeof err);
  FUZZ_CHECK(printed == 0, "report_print failed on /dev/null");
  memset(err, 'x', sizeof err);
  double tolerance = (double)(size % 7) * 10.0;
  int off = report_check(d, tolerance, err, sizeof err);
  FUZZ_CHECK(off >= 0 && off <= 48, "report_check count out of range");
  if (off != 0)
    fuzz_check_err(err, sizeof err);
  else
    FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL, "report_check left err unterminated");
  report_free(d);
  return 0;
}
