/* report.h — the KIB evaluation report's headline measures (SPEC §8, report
 * section 3.1) computed from a rollup CSV (SPEC §4) at one period and set
 * beside the report's own figures: `regstream report`, as a text table and
 * as a self-contained HTML page of the report's figures (report_html.c). */
#ifndef REGSTREAM_REPORT_H
#define REGSTREAM_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The report's measurement point: end of February 2023. */
enum { REPORT_DEFAULT_AT = 202302 };

/* `regstream report --csv ROLLUP.csv [--at YYYYMM] [--check [--tolerance
 * POINTS]] [--html OUT.html] [--min-cell N]` */
typedef struct report_options {
  const char *csv_path;
  int at;                /* yyyymm; 0: the rollup's latest month */
  int check;             /* exit non-zero when a measure is off by more than tolerance */
  double tolerance;      /* percentage points */
  const char *html_path; /* also write the figures page here */
  uint32_t min_cell;     /* disclosure control of what is shown (SPEC §12); 0: off */
} report_options;

/* The rollup read for a report (opaque; report_measures.h inside). */
typedef struct report_data report_data;

/* Reads the rollup o names (o->csv_path) exactly (empty fields: counts
 * suppressed upstream, unknown; o->min_cell applies to what is shown, not
 * to the rows), and sets the measurement point (o->at, or the latest month when 0). NULL
 * with a one-line reason in err: missing file, bad header, malformed row, no
 * rows for the period. */
report_data *report_load(const report_options *o, char *err, size_t errlen);
void report_free(report_data *d);

/* Prints the measures as an aligned table (measure, regstream, report,
 * difference in percentage points). 0, or -1 with a reason (write error). */
int report_print(FILE *out, const report_data *d, char *err, size_t errlen);

/* The number of measures with a report figure that are more than
 * tolerance_points away from it (a measure that cannot be computed, e.g. a
 * municipality without members, or that is suppressed, counts as off), and
 * then a one-line summary naming them in err; 0 when all are within
 * tolerance. */
int report_check(const report_data *d, double tolerance_points, char *err, size_t errlen);

/* Writes the figures page (report_html.c) to path, private (0600), whole
 * or not at all. 0, or -1 with a reason in err. */
int report_write_html(const report_data *d, const char *path, char *err, size_t errlen);

#endif
