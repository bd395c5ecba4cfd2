/* report_source.h — where `regstream report` reads its rows: the rollup CSV
 * named by --csv, or, after report_source_postgres (--postgres CONNINFO
 * [--table T]), that PostgreSQL table read back as the same CSV
 * (sink/postgres.h: COPY ... ORDER BY period, municipality, visitation, CSV
 * with header). The report's reader stays the one CSV reader. */
#ifndef REGSTREAM_REPORT_SOURCE_H
#define REGSTREAM_REPORT_SOURCE_H

#include <stddef.h>
#include <stdio.h>

/* From now on report_source_open reads this table (the strings must live
 * on); name is then only the name the report prints. */
void report_source_postgres(const char *conninfo, const char *table);

/* The rows as CSV text, open for reading from the start: the file name, or
 * the table set above. NULL with a one-line reason. */
FILE *report_source_open(const char *name, char *err, size_t errlen);

#endif
