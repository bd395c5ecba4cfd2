/* rollup.h — SPEC §4 counters keyed by (month, entry municipality, entry visitation).
 *
 * One shard's counters: per month a dense block of 98 x 6 rows of 25 uint32
 * counters (59 KiB), made on first touch, so a year of months costs under a
 * megabyte and the hot path is one indexed add into a block that stays in
 * cache while a month streams by. Totals of several shards are their sum
 * (rollup_merge). Rows come out in CSV order: period, municipality code,
 * visitation symbol (alphabetical). */
#ifndef REGSTREAM_ROLLUP_H
#define REGSTREAM_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#include "core/municipality.h"
#include "core/period.h"
#include "core/record.h"

/* Counter columns, in SPEC §4 order after (period, municipality, visitation).
 * Each goal group is ordered goal1, goal2, goal3, none. */
enum {
  ROLLUP_MEMBERS = 0,
  ROLLUP_NOW = 1,              /* 4 columns */
  ROLLUP_ACC = 5,              /* 4 */
  ROLLUP_DURABLE_FULL = 9,     /* 4 */
  ROLLUP_DURABLE_PARTIAL = 13, /* 4 */
  ROLLUP_STATUS = 17,          /* 8, in enum status order */
  ROLLUP_COLUMNS = 25,
  ROLLUP_KEYS = MUNICIPALITY_COUNT * VISITATION_COUNT
};

extern const char *const rollup_column_names[ROLLUP_COLUMNS];

typedef struct rollup {
  uint32_t *months[PERIOD_MONTHS]; /* ROLLUP_KEYS * ROLLUP_COLUMNS each, or NULL */
  uint8_t touched[PERIOD_MONTHS];  /* a row of the month was asked for since rollup_take_idle */
} rollup;

void rollup_init(rollup *r);
void rollup_free(rollup *r);

/* The counters of one row, made (zeroed) on first touch. */
uint32_t *rollup_row(rollup *r, int month, int municipality_index, int visitation);

/* into += from, row by row. */
void rollup_merge(rollup *into, const rollup *from);

/* into += from, leaving from empty: a month block into lacks is moved, not
 * copied, so the sum of several shards costs no more memory than they do. */
void rollup_absorb(rollup *into, rollup *from);

/* Moves (as rollup_absorb) into `into` the month blocks of r that no row
 * was asked for since the last call, and starts the next such interval;
 * returns how many moved. Counters are sums modulo 2^32, so a block moved
 * and made again later (a straggler, a correction subtracting one) still
 * sums exactly. A month seen in every interval never moves. */
int rollup_take_idle(rollup *r, rollup *into);

/* A row as it is written out. */
typedef struct rollup_row_view {
  int32_t period;
  int32_t municipality; /* official code */
  visitation visitation;
  const uint32_t *counts; /* ROLLUP_COLUMNS */
} rollup_row_view;

/* Calls visit for each row with members > 0, in CSV order; stops early and
 * returns the callback's value when it is non-zero, else returns 0. */
int rollup_each(const rollup *r, int (*visit)(const rollup_row_view *row, void *ctx), void *ctx);

#endif
