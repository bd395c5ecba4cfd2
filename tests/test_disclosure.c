/* test_disclosure.c — the disclosure rule (processor/core/disclosure.c,
 * SPEC §12 --min-cell): hand-made rows for each clause, and random rows
 * whose masks must hold the rule's properties (every count in [1, N)
 * suppressed, zeros published, no group that sums to members with exactly
 * one suppressed cell, each extra suppression the smallest other non-zero
 * cell of a group that had a single one); and the group helper the mask is
 * made of (disclosure_group_mask: given cells, the rest of a total). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/disclosure.h"

#define BIT(c) (1u << (c))

static void row_clear(uint32_t *r) {
  memset(r, 0, ROLLUP_COLUMNS * sizeof *r);
}

/* A consistent row: members split over now_*, acc_*, status_*. */
static void row_set(uint32_t *r, const uint32_t now[4], const uint32_t acc[4],
                    const uint32_t status[8]) {
  row_clear(r);
  uint32_t m = 0;
  for (int i = 0; i < 4; i++) {
    r[ROLLUP_NOW + i] = now[i];
    r[ROLLUP_ACC + i] = acc[i];
    m += now[i];
  }
  for (int i = 0; i < 8; i++)
    r[ROLLUP_STATUS + i] = status[i];
  r[ROLLUP_MEMBERS] = m;
}

static void off_publishes_everything(void **state) {
  (void)state;
  uint32_t r[ROLLUP_COLUMNS];
  row_set(r, (uint32_t[]){1, 0, 0, 1}, (uint32_t[]){2, 0, 0, 0},
          (uint32_t[]){1, 1, 0, 0, 0, 0, 0, 0});
  for (uint32_t n = 0; n <= 1; n++) {
    assert_false(disclosure_withheld(r, n));
    assert_int_equal(disclosure_mask(r, n), 0);
  }
}

static void small_rows_are_withheld(void **state) {
  (void)state;
  uint32_t r[ROLLUP_COLUMNS];
  row_clear(r);
  assert_false(disclosure_withheld(r, 5)); /* members 0: nothing to hide */
  for (uint32_t m = 1; m < 5; m++) {
    r[ROLLUP_MEMBERS] = m;
    assert_true(disclosure_withheld(r, 5));
  }
  r[ROLLUP_MEMBERS] = 5;
  assert_false(disclosure_withheld(r, 5));
  r[ROLLUP_MEMBERS] = 4000000000u;
  assert_false(disclosure_withheld(r, 5));
}

static void small_counts_and_their_complements(void **state) {
  (void)state;
  uint32_t r[ROLLUP_COLUMNS];
  /* now: two small cells (3 and 2) hide each other; acc: one small cell (4)
   * takes the smallest other non-zero one (16, not the zeros); status: one
   * small cell (1), the smallest other non-zero is 6 (first of two 6s). */
  row_set(r, (uint32_t[]){0, 3, 15, 2}, (uint32_t[]){4, 16, 0, 0},
          (uint32_t[]){1, 6, 0, 7, 0, 6, 0, 0});
  r[ROLLUP_DURABLE_FULL] = 2;    /* small: suppressed, no group */
  r[ROLLUP_DURABLE_PARTIAL] = 9; /* published */
  uint32_t want = BIT(ROLLUP_NOW + 1) | BIT(ROLLUP_NOW + 3) | BIT(ROLLUP_ACC + 0) |
                  BIT(ROLLUP_ACC + 1) | BIT(ROLLUP_STATUS + 0) | BIT(ROLLUP_STATUS + 1) |
                  BIT(ROLLUP_DURABLE_FULL);
  assert_int_equal(r[ROLLUP_MEMBERS], 20);
  assert_false(disclosure_withheld(r, 5));
  assert_int_equal(disclosure_mask(r, 5), want);
  /* N = 3: only the 1, the 2s; now has one small cell (2) and takes 3. */
  want = BIT(ROLLUP_NOW + 3) | BIT(ROLLUP_NOW + 1) | BIT(ROLLUP_STATUS + 0) |
         BIT(ROLLUP_STATUS + 1) | BIT(ROLLUP_DURABLE_FULL);
  assert_int_equal(disclosure_mask(r, 3), want);
}

static void large_counts_are_published(void **state) {
  (void)state;
  uint32_t r[ROLLUP_COLUMNS];
  row_set(r, (uint32_t[]){10, 20, 30, 40}, (uint32_t[]){25, 25, 25, 25},
          (uint32_t[]){50, 50, 0, 0, 0, 0, 0, 0});
  assert_int_equal(disclosure_mask(r, 5), 0);
  assert_int_equal(disclosure_mask(r, 10), 0);
  /* N = 11: 10 is small and alone in now; the next smallest is 20 */
  assert_int_equal(disclosure_mask(r, 11), BIT(ROLLUP_NOW) | BIT(ROLLUP_NOW + 1));
}

/* The group helper on its own: a table's parts and their shown total. */
static void group_helper(void **state) {
  (void)state;
  /* off: given passes through, nothing added */
  assert_int_equal(disclosure_group_mask((uint64_t[]){1, 2, 3}, 3, 6, 0, 1), 0);
  assert_int_equal(disclosure_group_mask((uint64_t[]){1, 2, 3}, 3, 6, BIT(1), 0), BIT(1));
  /* one small cell takes the smallest other non-zero one (the first of 7s) */
  assert_int_equal(disclosure_group_mask((uint64_t[]){9, 0, 3, 7, 7}, 5, 26, 0, 5),
                   BIT(2) | BIT(3));
  /* two small cells: nothing more */
  assert_int_equal(disclosure_group_mask((uint64_t[]){9, 1, 3, 7}, 4, 20, 0, 5), BIT(1) | BIT(2));
  /* nothing small: nothing */
  assert_int_equal(disclosure_group_mask((uint64_t[]){9, 5, 0, 7}, 4, 21, 0, 5), 0);
  /* a given cell (unknown, or by another group) counts as suppressed */
  assert_int_equal(disclosure_group_mask((uint64_t[]){9, 50, 6, 7}, 4, 72, BIT(1), 5),
                   BIT(1) | BIT(2));
  assert_int_equal(disclosure_group_mask((uint64_t[]){9, 50, 6, 7}, 4, 72, BIT(1) | BIT(3), 5),
                   BIT(1) | BIT(3));
  /* the rest (total - sum, not shown) takes part as bit k: a small rest
   * makes the smallest shown cell suppressed */
  assert_int_equal(disclosure_group_mask((uint64_t[]){40, 30, 20}, 3, 93, 0, 5), BIT(2) | BIT(3));
  /* a small shown cell can take the rest as its complement (nothing more
   * shown is lost), when the rest is the smallest */
  assert_int_equal(disclosure_group_mask((uint64_t[]){40, 2, 20}, 3, 70, 0, 5), BIT(1) | BIT(3));
  /* ... and a larger rest leaves the smallest shown one to go */
  assert_int_equal(disclosure_group_mask((uint64_t[]){40, 2, 20}, 3, 162, 0, 5), BIT(1) | BIT(2));
  /* the rest's bit given from an earlier call: two suppressed, nothing more */
  assert_int_equal(disclosure_group_mask((uint64_t[]){40, 2, 20}, 3, 70, BIT(3), 5),
                   BIT(1) | BIT(3));
  /* total = sum: no rest, as in a row */
  assert_int_equal(disclosure_group_mask((uint64_t[]){40, 2, 20}, 3, 62, 0, 5), BIT(1) | BIT(2));
  /* 0 is published, also as the only other cell */
  assert_int_equal(disclosure_group_mask((uint64_t[]){3, 0}, 2, 3, 0, 5), BIT(0));
  /* counts beyond 32 bits */
  assert_int_equal(
      disclosure_group_mask((uint64_t[]){6000000000ull, 4, 7000000000ull}, 3, 13000000004ull, 0, 5),
      BIT(0) | BIT(1));
}

/* disclosure_mask is the group helper on each group of the row: the same
 * masks, row by row. */
static void mask_is_the_helper_per_group(void **state) {
  (void)state;
  static const int groups[3][2] = {{ROLLUP_NOW, 4}, {ROLLUP_ACC, 4}, {ROLLUP_STATUS, 8}};
  uint32_t r[ROLLUP_COLUMNS];
  row_set(r, (uint32_t[]){0, 3, 15, 2}, (uint32_t[]){4, 16, 0, 0},
          (uint32_t[]){1, 6, 0, 7, 0, 6, 0, 0});
  uint32_t mask = disclosure_mask(r, 5);
  for (int g = 0; g < 3; g++) {
    uint64_t cells[8], sum = 0;
    for (int i = 0; i < groups[g][1]; i++)
      sum += cells[i] = r[groups[g][0] + i];
    uint32_t want = disclosure_group_mask(cells, groups[g][1], sum, 0, 5);
    assert_int_equal((mask >> groups[g][0]) & ((1u << groups[g][1]) - 1), want);
  }
}

static uint64_t rng_state = 7;
static uint32_t rng(uint32_t below) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return (uint32_t)((z ^ (z >> 31)) % below);
}

/* Split m over width cells, small parts likely. */
static void split(uint32_t *cells, int width, uint32_t m) {
  memset(cells, 0, (size_t)width * sizeof *cells);
  while (m) {
    uint32_t part = 1 + rng(m < 8 ? m : (rng(2) ? 8 : m));
    if (part > m)
      part = m;
    cells[rng((uint32_t)width)] += part;
    m -= part;
  }
}

static void random_rows_hold_the_rule(void **state) {
  (void)state;
  static const int groups[3][2] = {{ROLLUP_NOW, 4}, {ROLLUP_ACC, 4}, {ROLLUP_STATUS, 8}};
  for (int trial = 0; trial < 200000; trial++) {
    uint32_t n = rng(12), m = rng(60), r[ROLLUP_COLUMNS];
    row_clear(r);
    r[ROLLUP_MEMBERS] = m;
    for (int g = 0; g < 3; g++)
      split(r + groups[g][0], groups[g][1], m);
    for (int i = 0; i < 4; i++) { /* durable counts: within acc */
      uint32_t acc = r[ROLLUP_ACC + i];
      r[ROLLUP_DURABLE_FULL + i] = acc ? rng(acc + 1) : 0;
      uint32_t left = acc - r[ROLLUP_DURABLE_FULL + i];
      r[ROLLUP_DURABLE_PARTIAL + i] = left ? rng(left + 1) : 0;
    }
    assert_int_equal(disclosure_withheld(r, n), m >= 1 && m < n);
    uint32_t mask = disclosure_mask(r, n);
    if (n <= 1) {
      assert_int_equal(mask, 0);
      continue;
    }
    assert_false(mask & BIT(ROLLUP_MEMBERS));
    uint32_t primary = 0;
    for (int c = 1; c < ROLLUP_COLUMNS; c++) {
      if (r[c] == 0)
        assert_false(mask & BIT(c)); /* 0 is always published */
      if (r[c] >= 1 && r[c] < n) {
        assert_true(mask & BIT(c));
        primary |= BIT(c);
      }
    }
    uint32_t extra = mask & ~primary;
    for (int g = 0; g < 3; g++) {
      int first = groups[g][0], width = groups[g][1], in_primary = 0, in_mask = 0;
      uint32_t gextra = 0, smallest = UINT32_MAX;
      for (int c = first; c < first + width; c++) {
        in_primary += !!(primary & BIT(c));
        in_mask += !!(mask & BIT(c));
        gextra |= extra & BIT(c);
        if (!(primary & BIT(c)) && r[c] > 0 && r[c] < smallest)
          smallest = r[c];
      }
      if (m >= n) /* a published row: no lone suppressed cell */
        assert_true(in_mask == 0 || in_mask >= 2);
      if (in_primary == 1 && m >= n) {
        assert_int_equal(__builtin_popcount(gextra), 1);
        int c = __builtin_ctz(gextra);
        assert_int_equal(r[c], smallest);
        for (int d = first; d < c; d++) /* the first of equal ones */
          assert_false(!(primary & BIT(d)) && r[d] == smallest);
      } else {
        assert_int_equal(gextra, 0);
      }
    }
    /* durable columns are in no group: only their own small values */
    for (int c = ROLLUP_DURABLE_FULL; c < ROLLUP_STATUS; c++)
      assert_false(extra & BIT(c));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(off_publishes_everything),
      cmocka_unit_test(small_rows_are_withheld),
      cmocka_unit_test(small_counts_and_their_complements),
      cmocka_unit_test(large_counts_are_published),
      cmocka_unit_test(random_rows_hold_the_rule),
      cmocka_unit_test(group_helper),
      cmocka_unit_test(mask_is_the_helper_per_group),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
