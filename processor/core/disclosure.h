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

/* The rule for one group of k (1..31) counts that sums to a published total
 * (a row's now_*, acc_*, status_*; a table of the report whose parts add up
 * to a shown figure): bit i for counts[i]. Every count c with
 * 1 <= c < min_cell is suppressed, and so is every cell in given (already
 * suppressed: unknown, or by another group the cell is in); when that makes
 * exactly one cell of the group suppressed, the smallest other non-zero one
 * (the first of equal ones) is suppressed too. When the counts sum to less
 * than total, the rest (total - sum, a part the reader can compute but is
 * not shown) takes part as a cell of its own, bit k, after the others: a
 * small rest counts as suppressed, and it can be the complement (given may
 * carry its bit from an earlier call). 0 is never suppressed unless given.
 * given unchanged when min_cell <= 1. disclosure_mask uses this for each of
 * its groups (with total the group's sum: no rest). */
uint32_t disclosure_group_mask(const uint64_t *counts, int k, uint64_t total, uint32_t given,
                               uint32_t min_cell);

#endif
