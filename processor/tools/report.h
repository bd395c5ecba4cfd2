/* report.h — the KIB evaluation report's headline measures (SPEC §8, report
 * section 3.1) computed from a rollup CSV (SPEC §4) at one period and set
 * beside the report's own figures: `regstream report`. */
#ifndef REGSTREAM_REPORT_H
#define REGSTREAM_REPORT_H

#include <stddef.h>
#include <stdio.h>

/* The report's measurement point: end of February 2023. */
enum { REPORT_DEFAULT_AT = 202302 };

/* `regstream report --csv ROLLUP.csv [--at YYYYMM] [--check [--tolerance
 * POINTS]]` */
typedef struct report_options {
  const char *csv_path;
  int at;           /* yyyymm */
  int check;        /* exit non-zero when a measure is off by more than tolerance */
  double tolerance; /* percentage points */
} report_options;

/* Prints the measures at at_period as an aligned table (measure, regstream,
 * report, difference in percentage points). 0, or -1 with a one-line reason
 * in err (missing file, bad header, malformed row, no rows for the period). */
int report_print(FILE *out, const char *csv_path, int at_period, char *err, size_t errlen);

/* The number of measures with a report figure that are more than
 * tolerance_points away from it (a measure that cannot be computed, e.g. a
 * municipality without members, counts as off), and then a one-line summary
 * naming them in err; 0 when all are within tolerance; -1 with a reason in
 * err when the CSV cannot be read as for report_print. */
int report_check(const char *csv_path, int at_period, double tolerance_points, char *err,
                 size_t errlen);

#endif
