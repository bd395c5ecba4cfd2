/* csv.h — the rollup CSV of SPEC §4: header, then rows in (period,
 * municipality, visitation symbol) order, written to a temporary file and
 * renamed into place so a reader never sees half a file; under --min-cell N
 * (SPEC §12) withheld rows are left out and suppressed counts are empty. */
#ifndef REGSTREAM_CSV_H
#define REGSTREAM_CSV_H

#include <stddef.h>

#include "core/rollup.h"

/* The longest data line, with its newline. */
enum { CSV_LINE_MAX = 512 };

/* One data line of row into line (cap >= CSV_LINE_MAX), with its newline,
 * under --min-cell min_cell (0 or 1: exact; core/disclosure.h): the length,
 * or 0 when the row is withheld; a suppressed count is an empty field. */
size_t csv_format_row(char *line, size_t cap, const rollup_row_view *row, uint32_t min_cell);

/* The header line, with its newline: its length. */
size_t csv_format_header(char *line, size_t cap);

/* csv_write_rollup under --min-cell min_cell: withheld rows left out
 * (*rows counts the rows written), suppressed counts as empty fields. */
int csv_write_rollup_min_cell(const char *path, const rollup *totals, uint32_t min_cell,
                              size_t *rows, char *err, size_t errlen);

/* 0, or -1 with a one-line reason (errno: the failure's; OUT.tmp removed,
 * path untouched unless only the directory fsync failed). *rows gets the
 * number of rows written. The usual file mode: it holds counts, no records. */
int csv_write_rollup(const char *path, const rollup *totals, size_t *rows, char *err,
                     size_t errlen);

#endif
