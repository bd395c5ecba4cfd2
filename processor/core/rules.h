/* rules.h — SPEC §3: the domain rules over one person's stream of months.
 *
 * The idea: a person's whole history that the rules ever need fits in a
 * 12-byte person_state — two bit histories (employed, full-time) for the
 * durable window, the accumulated goal, cohort entry, and just enough of the
 * latest month (its level, status, the goal before it, whether entry happened
 * in it) to retract that month exactly when a correction replaces it.
 * rules_apply takes one validated record, updates the state and adds the
 * record's contribution (and any gap months') to the rollup counters. Pure:
 * no I/O, no threads, no allocation but the rollup's lazily made month blocks. */
#ifndef REGSTREAM_RULES_H
#define REGSTREAM_RULES_H

#include <stdint.h>

#include "core/period.h"
#include "core/record.h"
#include "core/rollup.h"

/* Goals ranked so that max() is "higher in the hierarchy" (mål 1 highest). */
typedef enum goal { GOAL_NONE = 0, GOAL_3 = 1, GOAL_2 = 2, GOAL_1 = 3 } goal;

typedef enum status {
  STATUS_EDUCATION = 0,
  STATUS_EMPLOYED_FULL,
  STATUS_EMPLOYED_PART,
  STATUS_FLEXJOB,
  STATUS_DISABILITY_PENSION,
  STATUS_COMPANY_PLACEMENT,
  STATUS_ON_BENEFIT,
  STATUS_SELF_SUPPORTING,
  STATUS_COUNT
} status;

typedef enum durable { DURABLE_NONE = 0, DURABLE_PARTIAL, DURABLE_FULL } durable;

enum { RULES_MAX_WINDOW_MONTHS = 31, RULES_RUN_TABLE_BITS = 12 };

typedef struct rules_config {
  double full_time_weekly_hours; /* default 18.5 */
  int durable_window_months;     /* default 6, 1..RULES_MAX_WINDOW_MONTHS */
  int durable_run_months;        /* default 3, 1..durable_window_months */
  int32_t project_start;         /* yyyymm, 0 = unbounded */
  int32_t project_end;           /* yyyymm, 0 = unbounded */
  /* Derived by rules_config_prepare: */
  double full_time_limit[PERIOD_MONTHS];       /* full_time_weekly_hours * days, by month index */
  int project_first_month, project_last_month; /* month indexes */
  uint32_t window_mask;
  /* With a window of at most RULES_RUN_TABLE_BITS months: run_table[x] is
   * 1 when x has a run of durable_run_months set bits (the durable test's
   * bit loop, done once here instead of once per record). */
  uint8_t run_table[1u << RULES_RUN_TABLE_BITS];
  /* A month's level and status by the few facts of its record they depend
   * on (rules.c's class_of): level << 3 | status, filled from the rules'
   * own definitions, so that a month is classified without a branch. */
  uint8_t class_table[256];
} rules_config;

/* Defaults of SPEC §3. */
void rules_config_default(rules_config *cfg);
/* Check ranges and fill the derived fields. 0, or -1 with a reason in err. */
int rules_config_prepare(rules_config *cfg, char *err, unsigned errlen);

/* 12 bytes: the two histories and one 32-bit word of bit-fields, each as
 * wide as its range (asserted in rules.c against PERIOD_MONTHS,
 * MUNICIPALITY_COUNT, VISITATION_COUNT and STATUS_COUNT). Bit-fields: no
 * address-of, and they are not the snapshot format (state/snapshot.c writes
 * each field on its own, as it did when they were whole bytes). */
typedef struct person_state {
  uint32_t employed_bits;          /* bit i: month (latest - i) had paid hours */
  uint32_t fulltime_bits;          /* bit i: month (latest - i) was full-time */
  unsigned latest_month : 11;      /* month index of the person's latest month, < 1320 */
  unsigned entry_municipality : 7; /* dense index < 98, valid when member */
  unsigned entry : 5;              /* bits 0-2 entry visitation, 3 member, 4 entered in latest */
  unsigned goals : 6; /* bits 0-1 accumulated goal, 2-3 goal before latest, 4-5 latest level */
  unsigned latest_status : 3; /* status of the latest month */
} person_state;

_Static_assert(sizeof(person_state) == 12, "person_state must stay 12 bytes");

typedef enum rules_result {
  RULES_APPLIED = 0, /* a new month (gap months filled before it) */
  RULES_CORRECTED,   /* replaced the latest month */
  RULES_LATE         /* earlier than the latest month: nothing changed */
} rules_result;

/* Month-level derivations of a single record (exposed for tests/tools). */
int rules_full_time(const rules_config *cfg, const pm_record *rec);
goal rules_level(const rules_config *cfg, const pm_record *rec);
status rules_status(const rules_config *cfg, const pm_record *rec);
/* D for the month whose bits are the low bits of the histories. */
durable rules_durable(const rules_config *cfg, uint32_t employed_bits, uint32_t fulltime_bits);

/* Start the state of a person whose first valid record is rec. */
void rules_first(const rules_config *cfg, person_state *st, const pm_record *rec, rollup *out);
/* Apply a later valid record of a known person. */
rules_result rules_apply(const rules_config *cfg, person_state *st, const pm_record *rec,
                         rollup *out);

static inline int person_is_member(const person_state *st) {
  return (st->entry >> 3) & 1;
}
static inline goal person_accumulated_goal(const person_state *st) {
  return (goal)(st->goals & 3);
}

#endif
