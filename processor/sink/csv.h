/* csv.h — the rollup CSV of SPEC §4: header, then rows in (period,
 * municipality, visitation symbol) order, written to a temporary file and
 * renamed into place so a reader never sees half a file. */
#ifndef REGSTREAM_CSV_H
#define REGSTREAM_CSV_H

#include <stddef.h>

#include "core/rollup.h"

/* 0, or -1 with a one-line reason (errno: the failure's; OUT.tmp removed,
 * path untouched unless only the directory fsync failed). *rows gets the
 * number of rows written. The usual file mode: it holds counts, no records. */
int csv_write_rollup(const char *path, const rollup *totals, size_t *rows, char *err,
                     size_t errlen);

#endif
