/* rollup.c — per-shard rollup counters: lazily made month blocks, merge, and
 * iteration in the output order of SPEC §4. */
#include "core/rollup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const rollup_column_names[ROLLUP_COLUMNS] = {
    "members",
    "now_goal1",
    "now_goal2",
    "now_goal3",
    "now_none",
    "acc_goal1",
    "acc_goal2",
    "acc_goal3",
    "acc_none",
    "durable_full_goal1",
    "durable_full_goal2",
    "durable_full_goal3",
    "durable_full_none",
    "durable_partial_goal1",
    "durable_partial_goal2",
    "durable_partial_goal3",
    "durable_partial_none",
    "status_education",
    "status_employed_full",
    "status_employed_part",
    "status_flexjob",
    "status_disability_pension",
    "status_company_placement",
    "status_on_benefit",
    "status_self_supporting",
};

/* Visitation enum values in alphabetical order of their symbols. */
static const visitation visitation_by_symbol[VISITATION_COUNT] = {
    VISITATION_AKTIVITETSPARAT,  VISITATION_JOBPARAT,         VISITATION_OEVRIG,
    VISITATION_SELVFORSOERGENDE, VISITATION_UDDANNELSESPARAT, VISITATION_UNKNOWN};

enum { BLOCK_COUNTERS = ROLLUP_KEYS * ROLLUP_COLUMNS };

void rollup_init(rollup *r) {
  memset(r, 0, sizeof *r);
}

void rollup_free(rollup *r) {
  for (int m = 0; m < PERIOD_MONTHS; m++)
    free(r->months[m]);
  memset(r, 0, sizeof *r);
}

static uint32_t *month_block(rollup *r, int month) {
  uint32_t *block = r->months[month];
  if (!block) {
    block = calloc(BLOCK_COUNTERS, sizeof *block);
    if (!block) {
      /* 59 KiB could not be had: nothing sensible is left to do. */
      fputs("regstream: out of memory for rollup counters\n", stderr);
      abort();
    }
    r->months[month] = block;
  }
  return block;
}

uint32_t *rollup_row(rollup *r, int month, int municipality_index, int visitation) {
  size_t key = (size_t)municipality_index * VISITATION_COUNT + (size_t)visitation;
  r->touched[month] = 1;
  return month_block(r, month) + key * ROLLUP_COLUMNS;
}

void rollup_merge(rollup *into, const rollup *from) {
  for (int m = 0; m < PERIOD_MONTHS; m++) {
    const uint32_t *src = from->months[m];
    if (!src)
      continue;
    uint32_t *dst = month_block(into, m);
    for (size_t i = 0; i < BLOCK_COUNTERS; i++)
      dst[i] += src[i];
  }
}

/* into's month += block, which is then into's or freed. */
static void put_block(rollup *into, int month, uint32_t *block) {
  uint32_t *dst = into->months[month];
  if (!dst) {
    into->months[month] = block;
    return;
  }
  for (size_t i = 0; i < BLOCK_COUNTERS; i++)
    dst[i] += block[i];
  free(block);
}

void rollup_absorb(rollup *into, rollup *from) {
  for (int m = 0; m < PERIOD_MONTHS; m++) {
    if (from->months[m])
      put_block(into, m, from->months[m]);
    from->months[m] = NULL;
  }
}

int rollup_take_idle(rollup *r, rollup *into) {
  int moved = 0;
  for (int m = 0; m < PERIOD_MONTHS; m++) {
    if (r->months[m] && !r->touched[m]) {
      put_block(into, m, r->months[m]);
      r->months[m] = NULL;
      moved++;
    }
  }
  memset(r->touched, 0, sizeof r->touched);
  return moved;
}

int rollup_each(const rollup *r, int (*visit)(const rollup_row_view *row, void *ctx), void *ctx) {
  for (int m = 0; m < PERIOD_MONTHS; m++) {
    const uint32_t *block = r->months[m];
    if (!block)
      continue;
    for (int mi = 0; mi < MUNICIPALITY_COUNT; mi++) {
      for (int v = 0; v < VISITATION_COUNT; v++) {
        visitation vis = visitation_by_symbol[v];
        const uint32_t *counts = block + ((size_t)mi * VISITATION_COUNT + vis) * ROLLUP_COLUMNS;
        if (counts[ROLLUP_MEMBERS] == 0)
          continue;
        rollup_row_view row = {period_from_month(m), municipality_codes[mi], vis, counts};
        int rc = visit(&row, ctx);
        if (rc)
          return rc;
      }
    }
  }
  return 0;
}
