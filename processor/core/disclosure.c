/* disclosure.c — see disclosure.h. */
#include "core/disclosure.h"

_Static_assert(ROLLUP_COLUMNS <= 32, "a suppression mask has a bit per column");

int disclosure_withheld(const uint32_t *counts, uint32_t min_cell) {
  return counts[ROLLUP_MEMBERS] >= 1 && counts[ROLLUP_MEMBERS] < min_cell;
}

uint32_t disclosure_group_mask(const uint64_t *counts, int k, uint64_t total, uint32_t given,
                               uint32_t min_cell) {
  if (min_cell <= 1 || k < 1 || k > 31)
    return given;
  uint64_t cell[32], sum = 0;
  for (int i = 0; i < k; i++) {
    cell[i] = counts[i];
    sum += counts[i];
  }
  int width = k;
  if (total > sum)
    cell[width++] = total - sum; /* the rest: bit k */
  uint32_t mask = given;
  int suppressed = 0, smallest = -1;
  for (int i = 0; i < width; i++) {
    if (cell[i] >= 1 && cell[i] < min_cell)
      mask |= 1u << i;
    if (mask & (1u << i))
      suppressed++;
  }
  if (suppressed != 1)
    return mask;
  for (int i = 0; i < width; i++)
    if (!(mask & (1u << i)) && cell[i] > 0 && (smallest < 0 || cell[i] < cell[smallest]))
      smallest = i;
  if (smallest >= 0)
    mask |= 1u << smallest;
  return mask;
}

/* The groups that sum to members: first column and width. */
static const struct {
  int first, width;
} sum_groups[] = {{ROLLUP_NOW, 4}, {ROLLUP_ACC, 4}, {ROLLUP_STATUS, 8}};

uint32_t disclosure_mask(const uint32_t *counts, uint32_t min_cell) {
  if (min_cell <= 1)
    return 0;
  uint32_t mask = 0;
  for (int c = ROLLUP_MEMBERS + 1; c < ROLLUP_COLUMNS; c++)
    if (counts[c] >= 1 && counts[c] < min_cell)
      mask |= 1u << c;
  for (unsigned g = 0; g < sizeof sum_groups / sizeof sum_groups[0]; g++) {
    int first = sum_groups[g].first, width = sum_groups[g].width;
    uint64_t cells[8], sum = 0;
    for (int i = 0; i < width; i++)
      sum += cells[i] = counts[first + i];
    uint32_t m = disclosure_group_mask(cells, width, sum, 0, min_cell);
    mask |= m << first;
  }
  return mask;
}
