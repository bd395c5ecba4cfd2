/* report_source.c — see report_source.h. */
#include "tools/report_source.h"

#include <errno.h>
#include <string.h>

#include "sink/postgres.h"

static const char *source_conninfo, *source_table;

void report_source_postgres(const char *conninfo, const char *table) {
  source_conninfo = conninfo;
  source_table = table;
}

FILE *report_source_open(const char *name, char *err, size_t errlen) {
  if (source_conninfo)
    return pg_read_rollup_csv(source_conninfo, source_table, err, errlen);
  FILE *f = fopen(name, "r");
  if (!f)
    snprintf(err, errlen, "cannot open %s: %s", name, strerror(errno));
  return f;
}
