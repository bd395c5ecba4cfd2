/* report_measures.h — inside `regstream report`: the loaded rollup and the
 * one computation of each measure, shared by the text table (report.c) and
 * the HTML page (report_html.c). Not for other rooms: their interface is
 * report.h.
 *
 * The data: every period of the rollup, summed per (municipality,
 * visitation); under --min-cell N the rows are first put through
 * core/disclosure.h: a withheld row is left out of every sum, a suppressed
 * count is REPORT_SUPPRESSED and makes every sum it enters REPORT_SUPPRESSED,
 * and a share of such a sum (numerator or denominator) is
 * REPORT_SHARE_SUPPRESSED (shown ".."). */
#ifndef REGSTREAM_REPORT_MEASURES_H
#define REGSTREAM_REPORT_MEASURES_H

#include <stddef.h>
#include <stdint.h>

#include "core/municipality.h"
#include "core/period.h"
#include "core/record.h"
#include "core/rollup.h"
#include "tools/report.h"

typedef uint64_t report_count;
/* A sum with a suppressed term (under --min-cell). */
#define REPORT_SUPPRESSED UINT64_MAX
/* A share of a suppressed sum. Shares are percentages >= 0 or NAN (cannot
 * be computed: nobody in the denominator). */
#define REPORT_SHARE_SUPPRESSED (-1.0)

typedef report_count report_block[MUNICIPALITY_COUNT][VISITATION_COUNT][ROLLUP_COLUMNS];

struct report_data {
  report_block *month[PERIOD_MONTHS]; /* sums of the rows of that month, or NULL */
  int first, last;                    /* month indexes of the rollup's months (-1: none) */
  int at;                             /* month index of the measurement point */
  int at_period;                      /* yyyymm */
  uint32_t min_cell;                  /* 0: off */
  size_t rows, withheld;              /* published and withheld rows at the measurement point */
  size_t withheld_all;                /* rows withheld over all months */
  uint32_t rows_in[PERIOD_MONTHS], withheld_in[PERIOD_MONTHS]; /* the same per month */
  const char *source;                                          /* what was read, for the heading */
};

/* One rollup row into d (every source calls this per row it reads):
 * period yyyymm, official municipality code, enum visitation, the
 * ROLLUP_COLUMNS counts. Applies d->min_cell (withheld rows are counted and
 * left out). 0, or -1 when the key is invalid. */
int report_add_row(report_data *d, int32_t period, int32_t code, int visitation,
                   const uint32_t *counts);

/* Visitation sets, as bit masks of enum visitation. */
#define REPORT_VIS(v) (1u << (v))
#define REPORT_VIS_ALL ((1u << VISITATION_COUNT) - 1)
/* The report's "øvrig ydelse": øvrig and uddannelsesparat (education order). */
#define REPORT_VIS_OEVRIG (REPORT_VIS(VISITATION_OEVRIG) | REPORT_VIS(VISITATION_UDDANNELSESPARAT))

/* Goal groups, as the rollup's column groups order them. */
enum { REPORT_GOAL1 = 0, REPORT_GOAL2, REPORT_GOAL3, REPORT_GOAL_NONE, REPORT_GOALS };

/* a + b, suppressed when either is. */
report_count report_plus(report_count a, report_count b);

/* Column c (ROLLUP_*) at month index month summed over municipality index m
 * (-1: all) and the visitations in vmask. 0 for a month without rows. */
report_count report_sum(const report_data *d, int month, int m, unsigned vmask, int c);

/* Column c over the municipalities with the given codes (0-terminated). */
report_count report_sum_codes(const report_data *d, int month, const int *codes, unsigned vmask,
                              int c);

/* 100 * part / whole; NAN when whole is 0; REPORT_SHARE_SUPPRESSED when
 * either is suppressed. */
double report_share(report_count part, report_count whole);
int report_share_suppressed(double share);

/* Counts the measures and figures share, over municipality codes (NULL:
 * all) and visitations: */
report_count report_members(const report_data *d, int month, const int *codes, unsigned vmask);
/* acc_goal1 + acc_goal2: reached goal 1 or 2 */
report_count report_goal12(const report_data *d, int month, const int *codes, unsigned vmask);
/* durable_full_* (full 1) or durable_partial_* (full 0) over all goal groups */
report_count report_durable_all(const report_data *d, int month, const int *codes, unsigned vmask,
                                int full);
/* status education + employed full + employed part */
report_count report_edu_or_employed(const report_data *d, int month, const int *codes,
                                    unsigned vmask);

/* The measures of the text table, in its order. */
typedef enum measure_id {
  M_VIS_AKT,
  M_VIS_JOB,
  M_VIS_SELV,
  M_VIS_OEVRIG,
  M_VIS_UDD_OF_OEVRIG,
  M_GOAL1,
  M_GOAL2,
  M_GOAL3,
  M_GOAL12,
  M_GOAL12_AKT,
  M_GOAL12_LOWEST,
  M_GOAL12_HIGHEST,
  M_DUR_G1_FULL,
  M_DUR_G1_PART,
  M_DUR_G2_FULL,
  M_DUR_G2_PART,
  M_DUR_G3_FULL,
  M_DUR_G3_PART,
  M_AARHUS_FULL,
  M_HVIDOVRE_FULL,
  M_AKT_FIVE, /* 5 measures: the report's five municipalities, report_five order */
  M_ST_EDU_EMP = M_AKT_FIVE + 5,
  M_ST_FLEX,
  M_ST_DP,
  M_ST_BENEFIT,
  M_ST_SELF,
  M_ST_PLACEMENT,
  M_AKT_ST_EDU_EMP,
  M_AKT_ST_FLEX,
  M_AKT_ST_DP,
  M_COUNT
} measure_id;

enum { REPORT_LABEL_LEN = 96, REPORT_SECTION_LEN = 80 };

typedef struct measure {
  const char *section; /* starts a section of the table when non-NULL */
  char label[REPORT_LABEL_LEN];
  double value;  /* percent; NAN: cannot be computed; REPORT_SHARE_SUPPRESSED */
  double report; /* percent; NAN when the report gives no figure */
  /* what the share is of (for the page's tables): numerator and
   * denominator, and the municipality (index, or -1) of an extreme */
  report_count part, whole;
  int municipality;
} measure;

typedef struct report_measures {
  measure m[M_COUNT];
  char sections[5][REPORT_SECTION_LEN];
} report_measures;

/* All measures of d at its measurement point. */
void report_compute(const report_data *d, report_measures *out);

/* The report's five municipalities with the highest aktivitetsparat share
 * (figure 5), in the report's order; Esbjerg/Fanø is one project. */
typedef struct report_municipality_set {
  const char *name;
  int codes[3]; /* 0-terminated */
  double akt_report;
} report_municipality_set;
extern const report_municipality_set report_five[5];

/* Number formats shared by the table and the page: a share "%.1f" (one
 * decimal), "n/a" or ".."; a count in decimal or "..". buf of 32. */
const char *report_format_share(char *buf, size_t len, double share);
const char *report_format_count(char *buf, size_t len, report_count n);

#endif
