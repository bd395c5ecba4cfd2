/* rules.c — SPEC §3 over a 12-byte person_state: month level, status, cohort
 * entry, accumulated goal in the project window, durable windows, gaps,
 * corrections of the latest month (retract, then re-apply) and late records.
 *
 * Every month m >= entry of a member adds one contribution to row
 * (m, entry municipality, entry visitation). The latest month's contribution
 * can always be rebuilt from the state (its level, status, accumulated goal and
 * the bit histories), so a correction subtracts exactly what was added. */
#include "core/rules.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/municipality.h"
#include "core/period.h"

/* Every value the rules store fits its bit-field in person_state (rules.h). */
_Static_assert(PERIOD_MONTHS <= 1 << 11, "latest_month is 11 bits");
_Static_assert(MUNICIPALITY_COUNT <= 1 << 7, "entry_municipality is 7 bits");
_Static_assert(VISITATION_COUNT <= 8, "the entry visitation is bits 0-2 of entry");
_Static_assert(STATUS_COUNT <= 8, "latest_status is 3 bits");

enum {
  ENTRY_VISITATION = 0x07,
  ENTRY_MEMBER = 0x08,
  ENTRY_IN_LATEST = 0x10,
};

void rules_config_default(rules_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->full_time_weekly_hours = 18.5;
  cfg->durable_window_months = 6;
  cfg->durable_run_months = 3;
}

static void fill_class_table(rules_config *cfg);

/* 1 when x has a run of at least `run` consecutive set bits. */
static int has_run(uint32_t x, int run) {
  for (int i = 1; i < run && x; i++)
    x &= x >> 1;
  return x != 0;
}

int rules_config_prepare(rules_config *cfg, char *err, unsigned errlen) {
  if (!isfinite(cfg->full_time_weekly_hours) || cfg->full_time_weekly_hours < 0 ||
      cfg->full_time_weekly_hours > 168) {
    snprintf(err, errlen, "full-time-weekly-hours must be between 0 and 168, got %g",
             cfg->full_time_weekly_hours);
    return -1;
  }
  if (cfg->durable_window_months < 1 || cfg->durable_window_months > RULES_MAX_WINDOW_MONTHS) {
    snprintf(err, errlen, "durable-window-months must be between 1 and %d, got %d",
             RULES_MAX_WINDOW_MONTHS, cfg->durable_window_months);
    return -1;
  }
  if (cfg->durable_run_months < 1 || cfg->durable_run_months > cfg->durable_window_months) {
    snprintf(err, errlen,
             "durable-run-months must be between 1 and durable-window-months (%d), got %d",
             cfg->durable_window_months, cfg->durable_run_months);
    return -1;
  }
  if (cfg->project_start && !period_valid(cfg->project_start)) {
    snprintf(err, errlen, "project-start must be a month YYYYMM in 199001..209912, got %d",
             cfg->project_start);
    return -1;
  }
  if (cfg->project_end && !period_valid(cfg->project_end)) {
    snprintf(err, errlen, "project-end must be a month YYYYMM in 199001..209912, got %d",
             cfg->project_end);
    return -1;
  }
  if (cfg->project_start && cfg->project_end && cfg->project_start > cfg->project_end) {
    snprintf(err, errlen, "project-start %d is after project-end %d", cfg->project_start,
             cfg->project_end);
    return -1;
  }
  for (int month = 0; month < PERIOD_MONTHS; month++)
    cfg->full_time_limit[month] = cfg->full_time_weekly_hours * period_days(month);
  cfg->project_first_month = cfg->project_start ? period_to_month(cfg->project_start) : 0;
  cfg->project_last_month =
      cfg->project_end ? period_to_month(cfg->project_end) : PERIOD_MONTHS - 1;
  fill_class_table(cfg);
  cfg->window_mask = (uint32_t)((1ull << cfg->durable_window_months) - 1);
  if (cfg->durable_window_months <= RULES_RUN_TABLE_BITS)
    for (uint32_t x = 0; x <= cfg->window_mask; x++)
      cfg->run_table[x] = (uint8_t)has_run(x, cfg->durable_run_months);
  return 0;
}

/* SPEC §3: weekly hours above the limit, evaluated exactly in double. */
static int full_time_in(const rules_config *cfg, float paid_hours, int month) {
  return (double)paid_hours * 7 > cfg->full_time_limit[month];
}

int rules_full_time(const rules_config *cfg, const pm_record *rec) {
  return full_time_in(cfg, rec->paid_hours, period_to_month(rec->period));
}

static goal level_of(const pm_record *rec, int full_time) {
  if ((rec->flags & PM_EDUCATION) || full_time)
    return GOAL_1;
  if (rec->paid_hours > 0)
    return GOAL_2;
  if (rec->flags & (PM_INTERNSHIP | PM_WAGE_SUBSIDY))
    return GOAL_3;
  return GOAL_NONE;
}

static status status_of(const pm_record *rec, int full_time) {
  if (rec->flags & PM_EDUCATION)
    return STATUS_EDUCATION;
  if (full_time)
    return STATUS_EMPLOYED_FULL;
  if (rec->paid_hours > 0)
    return STATUS_EMPLOYED_PART;
  if (rec->flags & PM_FLEXJOB)
    return STATUS_FLEXJOB;
  if (rec->flags & PM_DISABILITY_PENSION)
    return STATUS_DISABILITY_PENSION;
  if (rec->flags & (PM_INTERNSHIP | PM_WAGE_SUBSIDY))
    return STATUS_COMPANY_PLACEMENT;
  if (rec->benefit != BENEFIT_NONE)
    return STATUS_ON_BENEFIT;
  return STATUS_SELF_SUPPORTING;
}

/* What level_of and status_of read of a month, as 8 bits: full-time (bit
 * 0), paid hours (1), a benefit (2), the flags but enrolment (3-7). */
enum {
  CLASS_FLAGS = PM_EDUCATION | PM_INTERNSHIP | PM_WAGE_SUBSIDY | PM_FLEXJOB | PM_DISABILITY_PENSION
};
_Static_assert(CLASS_FLAGS == 0x3e, "the flags of a class are bits 1-5");
static inline unsigned class_of(const pm_record *rec, int full_time) {
  return (unsigned)full_time | (unsigned)(rec->paid_hours > 0) << 1 |
         (unsigned)(rec->benefit != BENEFIT_NONE) << 2 | (rec->flags & CLASS_FLAGS) << 2u;
}

static void fill_class_table(rules_config *cfg) {
  for (unsigned c = 0; c < 256; c++) {
    pm_record rec = {.paid_hours = (c & 2) ? 1.0f : 0.0f,
                     .benefit = (c & 4) ? BENEFIT_NONE + 1 : BENEFIT_NONE,
                     .flags = (uint8_t)((c >> 2) & CLASS_FLAGS)};
    int full_time = (int)(c & 1);
    cfg->class_table[c] = (uint8_t)(level_of(&rec, full_time) << 3 | status_of(&rec, full_time));
  }
}

goal rules_level(const rules_config *cfg, const pm_record *rec) {
  return (goal)(cfg->class_table[class_of(rec, rules_full_time(cfg, rec))] >> 3);
}

status rules_status(const rules_config *cfg, const pm_record *rec) {
  return (status)(cfg->class_table[class_of(rec, rules_full_time(cfg, rec))] & 7);
}

durable rules_durable(const rules_config *cfg, uint32_t employed_bits, uint32_t fulltime_bits) {
  uint32_t full = fulltime_bits & cfg->window_mask, employed = employed_bits & cfg->window_mask;
  if (cfg->durable_window_months <= RULES_RUN_TABLE_BITS)
    return cfg->run_table[full]       ? DURABLE_FULL
           : cfg->run_table[employed] ? DURABLE_PARTIAL
                                      : DURABLE_NONE;
  if (has_run(full, cfg->durable_run_months))
    return DURABLE_FULL;
  if (has_run(employed, cfg->durable_run_months))
    return DURABLE_PARTIAL;
  return DURABLE_NONE;
}

/* Column offset of a goal inside a goal group (goal1, goal2, goal3, none). */
static inline int goal_column(goal g) {
  return 3 - (int)g;
}

/* Add delta (1, or UINT32_MAX to subtract one) for the latest month of st. */
static void contribute(const rules_config *cfg, const person_state *st, uint32_t delta,
                       rollup *out) {
  uint32_t *row =
      rollup_row(out, st->latest_month, st->entry_municipality, st->entry & ENTRY_VISITATION);
  goal now = (goal)((st->goals >> 4) & 3), acc = (goal)(st->goals & 3);
  row[ROLLUP_MEMBERS] += delta;
  row[ROLLUP_NOW + goal_column(now)] += delta;
  row[ROLLUP_ACC + goal_column(acc)] += delta;
  /* Without a branch (durability is as random as the persons): a month
   * not durable adds 0. */
  static const uint8_t durable_column[3] = {
      [DURABLE_NONE] = ROLLUP_DURABLE_FULL,
      [DURABLE_FULL] = ROLLUP_DURABLE_FULL,
      [DURABLE_PARTIAL] = ROLLUP_DURABLE_PARTIAL,
  };
  durable d = rules_durable(cfg, st->employed_bits, st->fulltime_bits);
  row[durable_column[d] + goal_column(acc)] += d == DURABLE_NONE ? 0 : delta;
  row[ROLLUP_STATUS + st->latest_status] += delta;
}

/* A month with no record between two of the person's records (SPEC §3 gaps). */
static const pm_record empty_month = {0};

/* Append month `month` with record rec as the person's new latest month. */
static void push_month(const rules_config *cfg, person_state *st, int month, const pm_record *rec,
                       rollup *out) {
  int full_time = full_time_in(cfg, rec->paid_hours, month);
  unsigned class = cfg->class_table[class_of(rec, full_time)];
  goal level = (goal)(class >> 3);
  /* The new state is made in a copy and stored whole: the bit-fields of its
   * third word stored one by one are stores of several widths, and the word
   * read back after them waits for them all (a store-forwarding stall: the
   * hottest instruction of this function, a quarter of its time, by perf). */
  person_state s = *st;
  goal acc_before = (goal)(s.goals & 3), acc = acc_before;
  uint8_t entry = s.entry & (uint8_t)~ENTRY_IN_LATEST;

  s.employed_bits = (s.employed_bits << 1) | (rec->paid_hours > 0);
  s.fulltime_bits = (s.fulltime_bits << 1) | (uint32_t)full_time;
  if (!(entry & ENTRY_MEMBER) && (rec->flags & PM_ENROLLED)) {
    entry = (uint8_t)(rec->visitation | ENTRY_MEMBER | ENTRY_IN_LATEST);
    s.entry_municipality = (uint8_t)municipality_index(rec->municipality);
  }
  if ((entry & ENTRY_MEMBER) && month >= cfg->project_first_month &&
      month <= cfg->project_last_month && level > acc)
    acc = level;
  s.entry = entry;
  s.goals = (uint8_t)(acc | (acc_before << 2) | (level << 4));
  s.latest_status = class & 7;
  s.latest_month = (uint16_t)month;
  *st = s;
  if (entry & ENTRY_MEMBER)
    contribute(cfg, st, 1, out);
}

/* Undo the latest month: its contribution and its effect on the state. */
static void retract_latest(const rules_config *cfg, person_state *st, rollup *out) {
  if (st->entry & ENTRY_MEMBER)
    contribute(cfg, st, UINT32_MAX, out);
  person_state s = *st; /* stored whole, as in push_month */
  s.employed_bits >>= 1;
  s.fulltime_bits >>= 1;
  s.goals = (uint8_t)((s.goals >> 2) & 3);
  if (s.entry & ENTRY_IN_LATEST)
    s.entry = 0;
  *st = s;
}

void rules_first(const rules_config *cfg, person_state *st, const pm_record *rec, rollup *out) {
  memset(st, 0, sizeof *st);
  push_month(cfg, st, period_to_month(rec->period), rec, out);
}

rules_result rules_apply(const rules_config *cfg, person_state *st, const pm_record *rec,
                         rollup *out) {
  int month = period_to_month(rec->period);
  if (month < st->latest_month)
    return RULES_LATE;
  if (month == st->latest_month) {
    retract_latest(cfg, st, out);
    push_month(cfg, st, month, rec, out);
    return RULES_CORRECTED;
  }
  for (int gap = st->latest_month + 1; gap < month; gap++)
    push_month(cfg, st, gap, &empty_month, out);
  push_month(cfg, st, month, rec, out);
  return RULES_APPLIED;
}
