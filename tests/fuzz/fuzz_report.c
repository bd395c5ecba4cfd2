/* fuzz_report.c — owned by the fuzzing work (tests/fuzz/): libFuzzer harness
 * for `regstream report` (processor/report.c). Input: a rollup CSV file (in
 * memory). report_print (to /dev/null) and report_check at the report's
 * measurement point; the tolerance comes from the file's length so that both
 * outcomes of the check are reached. Checks: -1 with a one-line reason, for
 * both calls alike (they share the loader); report_check's count is within
 * the number of measures and comes with a one-line summary when non-zero. */
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
  int printed = report_print(devnull, path, REPORT_DEFAULT_AT, err, sizeof err);
  if (printed != 0) {
    FUZZ_CHECK(printed == -1, "report_print returned neither 0 nor -1");
    fuzz_check_err(err, sizeof err);
  }
  memset(err, 'x', sizeof err);
  double tolerance = (double)(size % 7) * 10.0;
  int off = report_check(path, REPORT_DEFAULT_AT, tolerance, err, sizeof err);
  FUZZ_CHECK((off == -1) == (printed == -1), "report_check and report_print disagree on loading");
  FUZZ_CHECK(off >= -1 && off <= 48, "report_check count out of range");
  if (off != 0)
    fuzz_check_err(err, sizeof err);
  else
    FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL, "report_check left err unterminated");
  return 0;
}
