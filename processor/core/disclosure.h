/* disclosure.h — disclosure control for outputs meant for BI (SPEC §12,
 * --min-cell N): which rollup rows are withheld and which counts of a
 * published row are suppressed. Pure: the sinks (CSV, export, PostgreSQL,
 * the HTML report) ask here and write an empty field, NULL or ".." for a
 * suppressed count; the state, the snapshots and the Kafka output topic stay
 * exact and never ask.
 *
 * The rule, with N = min_cell (0 or 1: off):
 *   - a row with 1 <= members < N is withheld;
 *   - in a published row every count c with 1 <= c < N is suppressed;
 *   - in each group of the row that sums to members (now_*, acc_*,
 *     status_*), a single suppressed cell makes the smallest other non-zero
 *     cell of that group suppressed too (the first of equal ones, in column
 *     order), so that no suppressed count can be recomputed from its row;
 *   - 0 is always published. */
#ifndef REGSTREAM_CORE_DISCLOSURE_H
#define REGSTREAM_CORE_DISCLOSURE_H

#include <stdint.h>

#include "core/rollup.h"

/* 1 when the row (ROLLUP_COLUMNS counts) is withheld under min_cell. */
int disclosure_withheld(const uint32_t *counts, uint32_t min_cell);

/* The counts of a published row to suppress: bit i for column i of
 * ROLLUP_COLUMNS (members is bit 0 and never set). 0 when min_cell <= 1. */
uint32_t disclosure_mask(const uint32_t *counts, uint32_t min_cell);

#endif
