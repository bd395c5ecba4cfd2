/* report_measures.h — inside `regstream report`: the loaded rollup and the
 * one computation of each measure, shared by the text table (report.c) and
 * the HTML page (report_html.c). Not for other rooms: their interface is
 * report.h.
 *
 * The data: every period of the rollup, summed per (municipality,
 * visitation), exactly as read: the sums are exact unless the input already
 * carries suppressed counts (empty fields of a CSV written under --min-cell
 * upstream): such a count is REPORT_SUPPRESSED (unknown) and makes every sum
 * it enters REPORT_SUPPRESSED, and a share of such a sum is
 * REPORT_SHARE_SUPPRESSED (shown "..").
 *
 * Disclosure control (--min-cell N, SPEC §12) is applied to what is SHOWN,
 * not to the input rows: report_published below holds every count the page
 * and the text table show (keyed by what it sums), the groups of shown cells
 * that add up to a shown total, and the shares; report_pub_settle applies
 * the rule to them (core/disclosure.h's disclosure_group_mask for each
 * group), and both outputs show a count or share through it. */
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
  size_t rows;                        /* rows at the measurement point */
  uint32_t rows_in[PERIOD_MONTHS];    /* the same per month */
  size_t unknown_cells;               /* empty (already suppressed) counts read, all months */
  const char *source;                 /* what was read, for the heading */
};

/* One rollup row into d (every source calls this per row it reads):
 * period yyyymm, official municipality code, enum visitation, the
 * ROLLUP_COLUMNS counts; bit c of unknown: column c was suppressed upstream
 * (an empty field: the count is not known). The row is added exactly:
 * --min-cell applies to what is shown. 0, -1 when the key is invalid, -2
 * out of memory. */
int report_add_row(report_data *d, int32_t period, int32_t code, int visitation,
                   const uint32_t *counts, uint32_t unknown);

/* 1 when the input carried suppressed counts (then a sum with one is "..",
 * whatever --min-cell). */
int report_presuppressed(const report_data *d);

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

/* All measures of d at its measurement point, exact (before the rule;
 * report_pub_measure gives what is shown). The lowest and the highest
 * municipality of goal 1 or 2 are chosen among those whose share can be
 * shown (members and goal 1+2 not in [1, N)). */
void report_compute(const report_data *d, report_measures *out);

/* ------------------------------------------------ what is shown (published) */

/* A shown count: the sum of the rollup columns in cols (bit c: column c) at
 * month over the visitations in vis and the municipalities codes
 * (0-terminated, ascending; {0}: all). */
typedef struct report_key {
  uint32_t cols;
  unsigned vis;
  int codes[3];
  int month;
} report_key;

enum { REPORT_GROUP_MAX = 12 };

typedef struct report_shown_cell {
  report_key key;
  report_count value; /* exact, or REPORT_SUPPRESSED when unknown */
  int suppressed;
} report_shown_cell;

typedef struct report_shown_group {
  int total, k, rest; /* rest: the parts sum to less than total (a part not shown) */
  int parts[REPORT_GROUP_MAX];
  uint32_t mask; /* bits of parts (and bit k: the rest) suppressed so far */
} report_shown_group;

typedef struct report_published {
  const report_data *d;
  report_shown_cell *cell;
  size_t ncell, capcell;
  report_shown_group *group;
  size_t ngroup, capgroup;
  int (*share)[2]; /* numerator, denominator cell */
  size_t nshare, capshare;
  int settled, failed;            /* failed: out of memory (then everything is "..") */
  int num[M_COUNT], den[M_COUNT]; /* the cells of each measure on the page, -1 */
  size_t suppressed;              /* cells shown as ".." */
} report_published;

void report_pub_init(report_published *t, const report_data *d);
void report_pub_free(report_published *t);
/* The cell of key k (found, or added with its value). -1 out of memory. */
int report_pub_cell(report_published *t, const report_key *k);
/* Before settling: parts (k of them, <= REPORT_GROUP_MAX) sum to total (rest
 * 0) or to less (rest 1); a share num / den is shown. Ignored once settled. */
void report_pub_group(report_published *t, int total, const int *parts, int k, int rest);
void report_pub_share(report_published *t, int num, int den);
/* Applies the rule (SPEC §12) with d->min_cell to every cell:
 *   - an unknown count is suppressed;
 *   - a count c with 1 <= c < N is suppressed;
 *   - a unit withheld: every numerator of a share whose denominator is
 *     1 <= n < N, and every part of a group whose total is, is suppressed
 *     (0 too: the unit shows nothing);
 *   - in each group, disclosure_group_mask: a single suppressed cell (the
 *     rest counting as a cell) makes the smallest other non-zero one
 *     suppressed; repeated over the groups, in the order they were given,
 *     until nothing changes (a cell in two groups is suppressed in both). */
void report_pub_settle(report_published *t);
/* The count cell i shows: its value, or REPORT_SUPPRESSED (".."). */
report_count report_pub_shown(const report_published *t, int i);
/* The share shown for num / den (report_share of what they show). */
double report_pub_share_shown(const report_published *t, int num, int den);
/* The measure's value as shown (through its cells on the page). */
double report_pub_measure(const report_published *t, const report_measures *r, int id);

/* Builds t for d: lays the page out once (report_html.c, output discarded)
 * so that every shown cell, group and share is known, then settles. The
 * text table and the page both show through it. 0, or -1 out of memory. */
int report_publish(const report_data *d, const report_measures *r, report_published *t);

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
