/* disclosure.c — see disclosure.h. */
#include "core/disclosure.h"

_Static_assert(ROLLUP_COLUMNS <= 32, "a suppression mask has a bit per column");

int disclosure_withheld(const uint32_t *counts, uint32_t min_cell) {
  return counts[ROLLUP_MEMBERS] >= 1 && counts[ROLLUP_MEMBERS] < min_cell;
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
    int suppressed = 0, smallest = -1;
    for (int c = sum_groups[g].first; c < sum_groups[g].first + sum_groups[g].width; c++) {
      if (mask & (1u << c))
        suppressed++;
      else if (counts[c] > 0 && (smallest < 0 || counts[c] < counts[smallest]))
        smallest = c;
    }
    if (suppressed == 1 && smallest >= 0)
      mask |= 1u << smallest;
  }
  return mask;
}
