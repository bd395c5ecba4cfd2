/* csv.c — writes merged rollup counters as the SPEC §4 CSV, atomically. */
#include "sink/csv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct csv_out {
  FILE *file;
  size_t rows;
} csv_out;

static int write_row(const rollup_row_view *row, void *ctx) {
  csv_out *out = ctx;
  char line[512];
  int n = snprintf(line, sizeof line, "%d,%d,%s", row->period, row->municipality,
                   visitation_symbols[row->visitation]);
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    n += snprintf(line + n, sizeof line - (size_t)n, ",%u", row->counts[c]);
  line[n++] = '\n';
  out->rows++;
  return fwrite(line, 1, (size_t)n, out->file) == (size_t)n ? 0 : -1;
}

int csv_write_rollup(const char *path, const rollup *totals, size_t *rows, char *err,
                     size_t errlen) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  csv_out out = {fopen(tmp, "w"), 0};
  if (!out.file) {
    snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
    return -1;
  }
  int rc = fputs("period,municipality,visitation", out.file) < 0 ? -1 : 0;
  for (int c = 0; c < ROLLUP_COLUMNS && rc == 0; c++)
    rc = fprintf(out.file, ",%s", rollup_column_names[c]) < 0 ? -1 : 0;
  if (rc == 0)
    rc = fputc('\n', out.file) == EOF ? -1 : 0;
  if (rc == 0)
    rc = rollup_each(totals, write_row, &out);
  if (fflush(out.file) != 0 || fsync(fileno(out.file)) != 0)
    rc = -1;
  if (fclose(out.file) != 0)
    rc = -1;
  if (rc == 0 && rename(tmp, path) != 0)
    rc = -1;
  if (rc != 0) {
    snprintf(err, errlen, "writing %s failed: %s", path, strerror(errno));
    unlink(tmp);
    return -1;
  }
  *rows = out.rows;
  return 0;
}
