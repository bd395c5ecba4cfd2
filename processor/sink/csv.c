/* csv.c — writes merged rollup counters as the SPEC §4 CSV, atomically:
 * a temporary file next to it, fsync, rename, directory fsync, all through
 * util/fs. The CSV holds counts, not records: the usual mode (0666 less the
 * umask), unlike the dead-letter file and the snapshots. */
#include "sink/csv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/disclosure.h"
#include "util/fs.h"

enum { CSV_BUFFER = 1 << 16 };

typedef struct csv_out {
  int fd;
  size_t rows, used;
  uint32_t min_cell;
  int error; /* errno of the failed write, 0 while none */
  char buf[CSV_BUFFER];
} csv_out;

static int drain(csv_out *out) {
  if (!out->error && out->used && fs_write_all(out->fd, out->buf, out->used) < 0)
    out->error = errno ? errno : EIO;
  out->used = 0;
  return out->error ? -1 : 0;
}

/* Room for one more line, or -1 after a failed write. */
static int room(csv_out *out) {
  return out->used + CSV_LINE_MAX > sizeof out->buf ? drain(out) : (out->error ? -1 : 0);
}

size_t csv_format_row(char *line, size_t cap, const rollup_row_view *row, uint32_t min_cell) {
  if (disclosure_withheld(row->counts, min_cell))
    return 0;
  uint32_t mask = disclosure_mask(row->counts, min_cell);
  cap--; /* room for the newline */
  int n = snprintf(line, cap, "%d,%d,%s", row->period, row->municipality,
                   visitation_symbols[row->visitation]);
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    n += mask & (1u << c) ? snprintf(line + n, cap - (size_t)n, ",")
                          : snprintf(line + n, cap - (size_t)n, ",%u", row->counts[c]);
  line[n++] = '\n';
  return (size_t)n;
}

size_t csv_format_header(char *line, size_t cap) {
  cap--;
  int n = snprintf(line, cap, "period,municipality,visitation");
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    n += snprintf(line + n, cap - (size_t)n, ",%s", rollup_column_names[c]);
  line[n++] = '\n';
  return (size_t)n;
}

static int write_row(const rollup_row_view *row, void *ctx) {
  csv_out *out = ctx;
  if (room(out) < 0)
    return -1;
  size_t n = csv_format_row(out->buf + out->used, CSV_LINE_MAX, row, out->min_cell);
  out->used += n;
  out->rows += n > 0;
  return 0;
}

int csv_write_rollup(const char *path, const rollup *totals, size_t *rows, char *err,
                     size_t errlen) {
  return csv_write_rollup_min_cell(path, totals, 0, rows, err, errlen);
}

int csv_write_rollup_min_cell(const char *path, const rollup *totals, uint32_t min_cell,
                              size_t *rows, char *err, size_t errlen) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  csv_out *out = malloc(sizeof *out);
  if (!out) {
    snprintf(err, errlen, "writing %s: out of memory", path);
    return -1;
  }
  out->rows = out->used = 0;
  out->error = 0;
  out->min_cell = min_cell;
  out->fd = fs_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (out->fd < 0) {
    int e = errno;
    snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(e));
    free(out);
    errno = e;
    return -1;
  }
  const char *step = "write";
  out->used = csv_format_header(out->buf, CSV_LINE_MAX);
  int rc = rollup_each(totals, write_row, out) == 0 && drain(out) == 0 ? 0 : -1;
  int e = out->error;
  if (fs_commit(out->fd, rc == 0, tmp, path, &step) != 0 && rc == 0) {
    e = errno;
    rc = -1;
  }
  if (rc != 0) {
    snprintf(err, errlen, "writing %s failed (%s of %s): %s", path, step, tmp,
             strerror(e ? e : EIO));
    unlink(tmp);
    free(out);
    errno = e;
    return -1;
  }
  if (fs_fsync_parent(path) != 0) {
    /* It is complete and in place; only its durability is in doubt. */
    int e = errno;
    snprintf(err, errlen, "wrote %s, but cannot fsync its directory: %s", path, strerror(e));
    free(out);
    errno = e;
    return -1;
  }
  *rows = out->rows;
  free(out);
  return 0;
}
