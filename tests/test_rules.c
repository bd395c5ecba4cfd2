/* test_rules.c — unit tests of every rule of SPEC §3 on the pure core:
 * month level and status, the 18.5-hour boundary with float inputs, leap
 * Februaries, durable windows and their edges, gaps, cohort entry,
 * corrections (including ones that undo or move an entry), identical
 * repeats, late records, the project window, validation order; and the
 * person map's two tables (ids of 32 bits and wider), their growth, walk
 * and bulk copy. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/municipality.h"
#include "core/period.h"
#include "core/personmap.h"
#include "core/rollup.h"
#include "core/rules.h"
#include "core/validate.h"

enum { AARHUS = 751, AALBORG = 851 };

static pm_record rec(int32_t period, float hours, uint8_t flags) {
  pm_record r = {0};
  r.person_id = 42;
  r.period = period;
  r.municipality = AARHUS;
  r.paid_hours = hours;
  r.visitation = VISITATION_AKTIVITETSPARAT;
  r.benefit = BENEFIT_KONTANTHJAELP;
  r.flags = flags;
  return r;
}

static rules_config config(void) {
  rules_config cfg;
  char err[200];
  rules_config_default(&cfg);
  assert_int_equal(rules_config_prepare(&cfg, err, sizeof err), 0);
  return cfg;
}

/* The row (period, municipality code, visitation), or NULL when untouched. */
static const uint32_t *row(rollup *r, int32_t period, int code, visitation v) {
  int month = period_to_month(period);
  if (!r->months[month])
    return NULL;
  return rollup_row(r, month, municipality_index(code), v);
}

static uint32_t column(rollup *r, int32_t period, int code, visitation v, int c) {
  const uint32_t *counts = row(r, period, code, v);
  return counts ? counts[c] : 0;
}

/* Members of the default (Aarhus, aktivitetsparat) row. */
static uint32_t at(rollup *r, int32_t period, int c) {
  return column(r, period, AARHUS, VISITATION_AKTIVITETSPARAT, c);
}

static void test_full_time_boundary(void **unused) {
  (void)unused;
  rules_config cfg = config();
  /* February 2023 has 28 days: 74 h is exactly 18.5 h/week: part-time. */
  pm_record r = rec(202302, 74.0f, 0);
  assert_false(rules_full_time(&cfg, &r));
  assert_int_equal(rules_level(&cfg, &r), GOAL_2);
  assert_int_equal(rules_status(&cfg, &r), STATUS_EMPLOYED_PART);
  r.paid_hours = nextafterf(74.0f, 1000.0f);
  assert_true(rules_full_time(&cfg, &r));
  assert_int_equal(rules_level(&cfg, &r), GOAL_1);
  /* Leap February 2024 (29 days): boundary 76.642857... h. */
  r = rec(202402, 76.642857f, 0);
  assert_int_equal(rules_full_time(&cfg, &r),
                   (double)76.642857f * 7 > 18.5 * 29); /* exactly as SPEC evaluates */
  r.paid_hours = 76.64f;
  assert_false(rules_full_time(&cfg, &r));
  r.paid_hours = 76.65f;
  assert_true(rules_full_time(&cfg, &r));
  /* 74 h in February 2024 is part-time, but in February 2023 it is not full-time either. */
  r = rec(202402, 74.5f, 0);
  assert_false(rules_full_time(&cfg, &r));
  r = rec(202302, 74.5f, 0);
  assert_true(rules_full_time(&cfg, &r));
  /* 31-day month: 81.92857 h is the boundary. */
  r = rec(202301, 81.9f, 0);
  assert_false(rules_full_time(&cfg, &r));
  r.paid_hours = 81.95f;
  assert_true(rules_full_time(&cfg, &r));
  /* eIndkomst full time, 160.33 h, is full-time in every month. */
  r = rec(202304, 160.33f, 0);
  assert_true(rules_full_time(&cfg, &r));
}

static void test_level_and_status_hierarchy(void **unused) {
  (void)unused;
  rules_config cfg = config();
  pm_record r = rec(202301, 0, PM_EDUCATION | PM_INTERNSHIP | PM_FLEXJOB);
  assert_int_equal(rules_level(&cfg, &r), GOAL_1);
  assert_int_equal(rules_status(&cfg, &r), STATUS_EDUCATION);
  r = rec(202301, 10, PM_INTERNSHIP);
  assert_int_equal(rules_level(&cfg, &r), GOAL_2);
  assert_int_equal(rules_status(&cfg, &r), STATUS_EMPLOYED_PART);
  r = rec(202301, 0, PM_WAGE_SUBSIDY | PM_FLEXJOB);
  assert_int_equal(rules_level(&cfg, &r), GOAL_3);
  assert_int_equal(rules_status(&cfg, &r), STATUS_FLEXJOB);
  r = rec(202301, 0, PM_DISABILITY_PENSION | PM_INTERNSHIP);
  assert_int_equal(rules_status(&cfg, &r), STATUS_DISABILITY_PENSION);
  r = rec(202301, 0, PM_INTERNSHIP);
  assert_int_equal(rules_status(&cfg, &r), STATUS_COMPANY_PLACEMENT);
  r = rec(202301, 0, 0);
  assert_int_equal(rules_level(&cfg, &r), GOAL_NONE);
  assert_int_equal(rules_status(&cfg, &r), STATUS_ON_BENEFIT);
  r.benefit = BENEFIT_NONE;
  assert_int_equal(rules_status(&cfg, &r), STATUS_SELF_SUPPORTING);
}

static void test_durable_windows(void **unused) {
  (void)unused;
  rules_config cfg = config();
  /* bit 0 = current month. */
  assert_int_equal(rules_durable(&cfg, 0x7, 0x7), DURABLE_FULL);
  assert_int_equal(rules_durable(&cfg, 0x7, 0x3), DURABLE_PARTIAL);
  assert_int_equal(rules_durable(&cfg, 0x5, 0x5), DURABLE_NONE);
  /* The run sits at the window's oldest edge (months m-5..m-3): counts. */
  assert_int_equal(rules_durable(&cfg, 0x38, 0x38), DURABLE_FULL);
  /* One month further back (m-6..m-4): only two months inside. */
  assert_int_equal(rules_durable(&cfg, 0x70, 0x70), DURABLE_NONE);
  /* Full-time months are employed months: full-time run beats partial. */
  assert_int_equal(rules_durable(&cfg, 0x3f, 0x15), DURABLE_PARTIAL);
  cfg.durable_run_months = 1;
  char err[100];
  assert_int_equal(rules_config_prepare(&cfg, err, sizeof err), 0);
  assert_int_equal(rules_durable(&cfg, 0x20, 0), DURABLE_PARTIAL);
  assert_int_equal(rules_durable(&cfg, 0x40, 0x40), DURABLE_NONE);
}

/* The durable test read from rules_config's run table (windows up to
 * RULES_RUN_TABLE_BITS months) and computed bit by bit (longer windows)
 * both equal a month-by-month count of the longest run inside the window,
 * for every window, every run length and random histories. */
static int longest_run(uint32_t bits, int window) {
  int best = 0, run = 0;
  for (int i = 0; i < window; i++) {
    run = (bits >> i) & 1 ? run + 1 : 0;
    best = run > best ? run : best;
  }
  return best;
}

static void test_durable_table_and_loop(void **unused) {
  (void)unused;
  uint64_t x = 88172645463325252ull;
  for (int window = 1; window <= RULES_MAX_WINDOW_MONTHS; window++)
    for (int run = 1; run <= window; run++) {
      rules_config cfg = config();
      cfg.durable_window_months = window;
      cfg.durable_run_months = run;
      char err[100];
      assert_int_equal(rules_config_prepare(&cfg, err, sizeof err), 0);
      for (int k = 0; k < 300; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t employed = (uint32_t)x, full = employed & (uint32_t)(x >> 32);
        durable want = longest_run(full, window) >= run       ? DURABLE_FULL
                       : longest_run(employed, window) >= run ? DURABLE_PARTIAL
                                                              : DURABLE_NONE;
        assert_int_equal(rules_durable(&cfg, employed, full), want);
      }
    }
}

static void test_entry_and_contributions(void **unused) {
  (void)unused;
  rules_config cfg = config();
  rollup out;
  rollup_init(&out);
  person_state st;
  /* Two months of history before entry: not members, no rows. */
  pm_record r = rec(202301, 100, 0);
  rules_first(&cfg, &st, &r, &out);
  r = rec(202302, 100, 0);
  assert_int_equal(rules_apply(&cfg, &st, &r, &out), RULES_APPLIED);
  assert_null(row(&out, 202302, AARHUS, VISITATION_AKTIVITETSPARAT));
  /* Entry in March, full-time third month in a row: durable full, goal 1. */
  r = rec(202303, 100, PM_ENROLLED);
  assert_int_equal(rules_apply(&cfg, &st, &r, &out), RULES_APPLIED);
  assert_int_equal(at(&out, 202303, ROLLUP_MEMBERS), 1);
  assert_int_equal(at(&out, 202303, ROLLUP_NOW + 0), 1);
  assert_int_equal(at(&out, 202303, ROLLUP_ACC + 0), 1);
  assert_int_equal(at(&out, 202303, ROLLUP_DURABLE_FULL + 0), 1);
  assert_int_equal(at(&out, 202303, ROLLUP_STATUS + STATUS_EMPLOYED_FULL), 1);
  /* April: moves to Aalborg, not enrolled, no hours: still a member of the
   * entry row, goal stays 1, now NONE, on benefit, durable still full. */
  r = rec(202304, 0, 0);
  r.municipality = AALBORG;
  r.visitation = VISITATION_JOBPARAT;
  rules_apply(&cfg, &st, &r, &out);
  assert_int_equal(at(&out, 202304, ROLLUP_MEMBERS), 1);
  assert_int_equal(at(&out, 202304, ROLLUP_NOW + 3), 1);
  assert_int_equal(at(&out, 202304, ROLLUP_ACC + 0), 1);
  assert_int_equal(at(&out, 202304, ROLLUP_DURABLE_FULL + 0), 1);
  assert_int_equal(at(&out, 202304, ROLLUP_STATUS + STATUS_ON_BENEFIT), 1);
  assert_int_equal(column(&out, 202304, AALBORG, VISITATION_JOBPARAT, ROLLUP_MEMBERS), 0);
  rollup_free(&out);
}

static void test_gap_months(void **unused) {
  (void)unused;
  rules_config cfg = config();
  rollup out;
  rollup_init(&out);
  person_state st;
  pm_record r = rec(202301, 100, PM_ENROLLED);
  rules_first(&cfg, &st, &r, &out);
  r = rec(202302, 100, 0);
  rules_apply(&cfg, &st, &r, &out);
  /* March and April missing: empty months (self-supporting, no hours). */
  r = rec(202305, 100, 0);
  rules_apply(&cfg, &st, &r, &out);
  for (int32_t p = 202303; p <= 202304; p++) {
    assert_int_equal(at(&out, p, ROLLUP_MEMBERS), 1);
    assert_int_equal(at(&out, p, ROLLUP_NOW + 3), 1);
    assert_int_equal(at(&out, p, ROLLUP_ACC + 0), 1);
    assert_int_equal(at(&out, p, ROLLUP_STATUS + STATUS_SELF_SUPPORTING), 1);
    assert_int_equal(at(&out, p, ROLLUP_DURABLE_FULL + 0) + at(&out, p, ROLLUP_DURABLE_PARTIAL + 0),
                     0);
  }
  /* The gap broke the run: May is not durable (Jan, Feb, May). */
  assert_int_equal(at(&out, 202305, ROLLUP_DURABLE_FULL + 0), 0);
  /* June, July: three in a row again. */
  r = rec(202306, 100, 0);
  rules_apply(&cfg, &st, &r, &out);
  r = rec(202307, 100, 0);
  rules_apply(&cfg, &st, &r, &out);
  assert_int_equal(at(&out, 202306, ROLLUP_DURABLE_FULL + 0), 0);
  assert_int_equal(at(&out, 202307, ROLLUP_DURABLE_FULL + 0), 1);
  rollup_free(&out);
}

static void test_corrections_and_repeats(void **unused) {
  (void)unused;
  rules_config cfg = config();
  rollup out, expect;
  rollup_init(&out);
  rollup_init(&expect);
  person_state st, st_expect;
  /* History: the same sequence with and without a correction must agree. */
  pm_record a = rec(202301, 100, PM_ENROLLED), b = rec(202302, 20, 0), b2 = rec(202302, 0, 0);
  rules_first(&cfg, &st, &a, &out);
  rules_apply(&cfg, &st, &b, &out);
  assert_int_equal(rules_apply(&cfg, &st, &b, &out), RULES_CORRECTED); /* identical repeat */
  assert_int_equal(rules_apply(&cfg, &st, &b2, &out), RULES_CORRECTED);
  rules_first(&cfg, &st_expect, &a, &expect);
  rules_apply(&cfg, &st_expect, &b2, &expect);
  assert_memory_equal(&st, &st_expect, sizeof st);
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    assert_int_equal(at(&out, 202302, c), at(&expect, 202302, c));
  /* Late: an earlier month changes nothing. */
  pm_record late = rec(202301, 0, 0);
  assert_int_equal(rules_apply(&cfg, &st, &late, &out), RULES_LATE);
  assert_memory_equal(&st, &st_expect, sizeof st);
  rollup_free(&out);
  rollup_free(&expect);
}

static void test_correction_undoes_entry(void **unused) {
  (void)unused;
  rules_config cfg = config();
  rollup out;
  rollup_init(&out);
  person_state st;
  pm_record a = rec(202301, 0, 0), b = rec(202302, 0, PM_EDUCATION | PM_ENROLLED);
  rules_first(&cfg, &st, &a, &out);
  rules_apply(&cfg, &st, &b, &out);
  assert_int_equal(at(&out, 202302, ROLLUP_MEMBERS), 1);
  assert_true(person_is_member(&st));
  /* The correction says she was not enrolled: no longer a member at all. */
  b.flags = PM_EDUCATION;
  rules_apply(&cfg, &st, &b, &out);
  assert_int_equal(at(&out, 202302, ROLLUP_MEMBERS), 0);
  assert_int_equal(at(&out, 202302, ROLLUP_ACC + 0), 0);
  assert_false(person_is_member(&st));
  /* Enrolled again in March; goal starts from March (education in Feb does not count). */
  pm_record c = rec(202303, 0, PM_ENROLLED);
  rules_apply(&cfg, &st, &c, &out);
  assert_int_equal(at(&out, 202303, ROLLUP_ACC + 3), 1);
  /* A correction of the entry month that moves the entry to Aalborg/jobparat. */
  c.municipality = AALBORG;
  c.visitation = VISITATION_JOBPARAT;
  rules_apply(&cfg, &st, &c, &out);
  assert_int_equal(at(&out, 202303, ROLLUP_MEMBERS), 0);
  assert_int_equal(column(&out, 202303, AALBORG, VISITATION_JOBPARAT, ROLLUP_MEMBERS), 1);
  rollup_free(&out);
}

static void test_project_window(void **unused) {
  (void)unused;
  rules_config cfg;
  char err[200];
  rules_config_default(&cfg);
  cfg.project_start = 202303;
  cfg.project_end = 202304;
  assert_int_equal(rules_config_prepare(&cfg, err, sizeof err), 0);
  rollup out;
  rollup_init(&out);
  person_state st;
  /* Education before the project: member, but accumulated goal is NONE. */
  pm_record r = rec(202302, 0, PM_ENROLLED | PM_EDUCATION);
  rules_first(&cfg, &st, &r, &out);
  assert_int_equal(at(&out, 202302, ROLLUP_ACC + 3), 1);
  assert_int_equal(at(&out, 202302, ROLLUP_NOW + 0), 1);
  r = rec(202303, 0, PM_INTERNSHIP);
  rules_apply(&cfg, &st, &r, &out);
  assert_int_equal(at(&out, 202303, ROLLUP_ACC + 2), 1);
  r = rec(202304, 10, 0);
  rules_apply(&cfg, &st, &r, &out);
  assert_int_equal(at(&out, 202304, ROLLUP_ACC + 1), 1);
  /* After the project end, education no longer raises the goal. */
  r = rec(202305, 0, PM_EDUCATION);
  rules_apply(&cfg, &st, &r, &out);
  assert_int_equal(at(&out, 202305, ROLLUP_ACC + 1), 1);
  assert_int_equal(at(&out, 202305, ROLLUP_NOW + 0), 1);
  rollup_free(&out);
}

static void test_config_validation(void **unused) {
  (void)unused;
  rules_config cfg;
  char err[200];
  rules_config_default(&cfg);
  cfg.durable_run_months = 7;
  assert_int_equal(rules_config_prepare(&cfg, err, sizeof err), -1);
  rules_config_default(&cfg);
  cfg.project_start = 202313;
  assert_int_equal(rules_config_prepare(&cfg, err, sizeof err), -1);
  rules_config_default(&cfg);
  cfg.project_start = 202305;
  cfg.project_end = 202301;
  assert_int_equal(rules_config_prepare(&cfg, err, sizeof err), -1);
  rules_config_default(&cfg);
  cfg.durable_window_months = RULES_MAX_WINDOW_MONTHS + 1;
  assert_int_equal(rules_config_prepare(&cfg, err, sizeof err), -1);
}

static void test_validation_order(void **unused) {
  (void)unused;
  pm_record r = rec(202301, 10, 0);
  assert_int_equal(validate_record(&r), REASON_OK);
  r.person_id = 0;
  r.period = 202313;
  assert_int_equal(validate_record(&r), REASON_PERSON_ID);
  r.person_id = 1;
  assert_int_equal(validate_record(&r), REASON_PERIOD);
  r.period = 198912;
  assert_int_equal(validate_record(&r), REASON_PERIOD);
  r.period = 210001;
  assert_int_equal(validate_record(&r), REASON_PERIOD);
  r.period = 209912;
  r.municipality = 100;
  assert_int_equal(validate_record(&r), REASON_MUNICIPALITY);
  r.municipality = 101;
  r.paid_hours = -0.5f;
  assert_int_equal(validate_record(&r), REASON_PAID_HOURS);
  r.paid_hours = 744.01f;
  assert_int_equal(validate_record(&r), REASON_PAID_HOURS);
  r.paid_hours = NAN;
  assert_int_equal(validate_record(&r), REASON_PAID_HOURS);
  r.paid_hours = 744.0f;
  assert_int_equal(validate_record(&r), REASON_OK);
  assert_string_equal(reason_code(REASON_LATE), "late");
  assert_string_equal(reason_code(REASON_PAID_HOURS), "paid_hours");
}

static void test_periods(void **unused) {
  (void)unused;
  assert_int_equal(period_to_month(199001), 0);
  assert_int_equal(period_to_month(209912), PERIOD_MONTHS - 1);
  assert_int_equal(period_from_month(period_to_month(202402)), 202402);
  assert_int_equal(period_days(period_to_month(202402)), 29);
  assert_int_equal(period_days(period_to_month(202302)), 28);
  assert_int_equal(period_days(period_to_month(200002)), 29); /* divisible by 400 */
  assert_int_equal(period_days(period_to_month(209912)), 31);
  assert_int_equal(municipality_index(101), 0);
  assert_int_equal(municipality_index(102), -1);
  assert_int_equal(municipality_codes[MUNICIPALITY_COUNT - 1], 860);
}

static void test_personmap_growth(void **unused) {
  (void)unused;
  personmap m;
  assert_int_equal(personmap_init(&m, 0, 0), 0);
  for (int64_t id = 1; id <= 100000; id++) {
    int created;
    person_state *s = personmap_upsert(&m, id * 7919, personmap_hash(id * 7919), &created);
    assert_non_null(s);
    assert_true(created);
    s->latest_month = (uint16_t)(id % 1000);
  }
  assert_int_equal(m.count, 100000);
  assert_int_equal(m.wide_count, 0);
  for (int64_t id = 1; id <= 100000; id++) {
    person_state *s = personmap_find(&m, id * 7919, personmap_hash(id * 7919));
    assert_non_null(s);
    assert_int_equal(s->latest_month, id % 1000);
  }
  assert_null(personmap_find(&m, 3, personmap_hash(3)));
  /* 16-byte slots grown at 3/4 load: between 16/0.75 = 21.3 and 16/0.375 =
   * 42.7 bytes a person (and the empty wide table's 64 slots) */
  assert_true(personmap_bytes(&m) <= 100000 * 16 * 8 / 3 + 64 * 20);
  assert_int_equal(personmap_bytes(&m), (m.mask + 1) * 16 + (m.wide_mask + 1) * 20);
  personmap_free(&m);
  assert_int_equal(personmap_bytes(&m), 0);
  personmap_free(&m); /* freed twice: nothing */
}

/* A state that tells persons apart. */
static void mark(person_state *st, int64_t id) {
  uint64_t h = personmap_hash(id);
  st->employed_bits = (uint32_t)h;
  st->fulltime_bits = (uint32_t)(h >> 32);
  st->latest_month = (unsigned)(h % PERIOD_MONTHS);
}
static int marked(const person_state *st, int64_t id) {
  person_state want;
  memset(&want, 0, sizeof want);
  mark(&want, id);
  return st->employed_bits == want.employed_bits && st->fulltime_bits == want.fulltime_bits &&
         st->latest_month == want.latest_month;
}

/* The next id after *from whose home in a table of mask + 1 slots is
 * within `near` slots of its end or start (so that clusters wrap). */
static int64_t id_at_edge(int64_t *from, size_t mask, size_t near) {
  for (;;) {
    int64_t id = ++*from;
    size_t home = personmap_hash(id) & mask;
    if (home >= mask - near || home < near)
      return id;
  }
}

/* The compact table doubling in place (personmap.c grow, table_double:
 * realloc, then a mapping of its own, then mremap) against a list of the
 * ids put in: at every growth, with clusters that wrap around the table's
 * end made on purpose just before it (of more than 64 slots, set aside on
 * the heap; the other tests' growths set short ones aside on the stack),
 * every person is found with her own state, an absent one is not, and the
 * count is right. */
static void test_personmap_growth_in_place(void **unused) {
  (void)unused;
  enum { PERSONS = 700000 };
  int64_t *ids = malloc(PERSONS * sizeof *ids);
  assert_non_null(ids);
  personmap m;
  assert_int_equal(personmap_init(&m, 0, 0), 0);
  size_t n = 0, growths = 0, mask = m.mask, edge_left = 80;
  int64_t edge = 4250000000; /* edge ids from here, ordinary ones below */
  while (n < PERSONS) {
    /* once the table is 2/3 full, a wrapped cluster: 80 ids near the edge
     * at 1024 slots, 20 at every later size */
    int64_t id = edge_left && (m.count - m.wide_count) * 3 >= (m.mask + 1) * 2
                     ? (edge_left--, id_at_edge(&edge, m.mask, m.mask < 2048 ? 40 : 10))
                     : (int64_t)n * 6007 + 1;
    int created;
    person_state *st = personmap_upsert(&m, id, personmap_hash(id), &created);
    assert_non_null(st);
    if (!created)
      continue;
    mark(st, id);
    ids[n++] = id;
    if (m.mask == mask)
      continue;
    mask = m.mask;
    edge_left = 20;
    growths++;
    assert_int_equal(m.count, n);
    for (size_t i = 0; i < n; i++) {
      person_state *found = personmap_find(&m, ids[i], personmap_hash(ids[i]));
      assert_non_null(found);
      assert_true(marked(found, ids[i]));
    }
    assert_null(personmap_find(&m, 2, personmap_hash(2)));
  }
  assert_true(growths >= 10); /* 1024 slots to 2^20 */
  int64_t id;
  size_t walked = 0;
  for (size_t at = 0; personmap_next(&m, &at, &id);)
    walked++;
  assert_int_equal(walked, PERSONS);
  personmap_free(&m);
  free(ids);
}

/* Ids on both sides of 2^32: each is its own person (an id above UINT32_MAX
 * is never its low 32 bits), the compact table takes 1..UINT32_MAX only,
 * and every other id but 0 (even negative ones, which validation keeps
 * out) is kept exactly in the wide table. */
static void test_personmap_id_widths(void **unused) {
  (void)unused;
  static const int64_t ids[] = {1,
                                2,
                                (int64_t)UINT32_MAX - 1,
                                (int64_t)UINT32_MAX,
                                (int64_t)UINT32_MAX + 1,
                                (int64_t)UINT32_MAX + 2, /* 2^32 + 1: low bits 1 */
                                (int64_t)UINT32_MAX + 3, /* 2^32 + 2: low bits 2 */
                                (int64_t)1 << 33,
                                ((int64_t)7 << 32) + 42,
                                INT64_MAX - 1,
                                INT64_MAX,
                                -5,
                                INT64_MIN};
  enum { N = sizeof ids / sizeof *ids };
  assert_true(personmap_narrow((int64_t)UINT32_MAX));
  assert_false(personmap_narrow((int64_t)UINT32_MAX + 1));
  assert_false(personmap_narrow(INT64_MAX));
  assert_false(personmap_narrow(-1));
  personmap m;
  assert_int_equal(personmap_init(&m, 0, 0), 0);
  size_t narrow = 0;
  for (int i = 0; i < N; i++) {
    assert_null(personmap_find(&m, ids[i], personmap_hash(ids[i])));
    personmap_prefetch(&m, ids[i], personmap_hash(ids[i]));
    int created;
    person_state *st = personmap_upsert(&m, ids[i], personmap_hash(ids[i]), &created);
    assert_non_null(st);
    assert_true(created);
    for (int b = 0; b < 12; b++)
      assert_int_equal(((const unsigned char *)st)[b], 0);
    mark(st, ids[i]);
    narrow += personmap_narrow(ids[i]);
  }
  assert_int_equal(m.count, N);
  assert_int_equal(m.wide_count, N - narrow);
  assert_int_equal(narrow, 4);
  for (int i = 0; i < N; i++) {
    person_state *st = personmap_find(&m, ids[i], personmap_hash(ids[i]));
    assert_non_null(st);
    assert_true(marked(st, ids[i]));
    int created;
    assert_ptr_equal(personmap_upsert(&m, ids[i], personmap_hash(ids[i]), &created), st);
    assert_false(created);
  }
  assert_int_equal(m.count, N);
  static const int64_t absent[] = {
      3, (int64_t)UINT32_MAX - 2, ((int64_t)1 << 32) + 4, ((int64_t)3 << 32) + 1, INT64_MAX - 2,
      -6};
  for (size_t i = 0; i < sizeof absent / sizeof *absent; i++)
    assert_null(personmap_find(&m, absent[i], personmap_hash(absent[i])));
  personmap_free(&m);
}

/* Both tables grow (from 1024 and 64 slots), with ids of both widths
 * interleaved; every person is found with its own state, and the bytes
 * count both tables. */
static void test_personmap_both_grow(void **unused) {
  (void)unused;
  enum { PER_WIDTH = 60000 };
  personmap m;
  assert_int_equal(personmap_init(&m, 0, 0), 0);
  assert_int_equal(m.mask + 1, 1024);
  assert_int_equal(m.wide_mask + 1, 64);
  for (int64_t i = 1; i <= PER_WIDTH; i++) {
    int64_t pair[2] = {i * 65519 % ((int64_t)1 << 32), ((int64_t)1 << 32) + i * 65519};
    if (!pair[0])
      pair[0] = 1;
    for (int w = 0; w < 2; w++) {
      int created;
      person_state *st = personmap_upsert(&m, pair[w], personmap_hash(pair[w]), &created);
      assert_non_null(st);
      if (created)
        mark(st, pair[w]);
    }
  }
  assert_int_equal(m.wide_count, PER_WIDTH);
  assert_true(m.count - m.wide_count > PER_WIDTH - 10);
  assert_true(m.mask + 1 >= 131072 && m.wide_mask + 1 >= 131072);
  assert_true((m.count - m.wide_count) * 4 <= (m.mask + 1) * 3);
  assert_true(m.wide_count * 4 <= (m.wide_mask + 1) * 3);
  assert_int_equal(personmap_bytes(&m), (m.mask + 1) * 16 + (m.wide_mask + 1) * 20);
  for (int64_t i = 1; i <= PER_WIDTH; i++) {
    int64_t wide = ((int64_t)1 << 32) + i * 65519;
    person_state *st = personmap_find(&m, wide, personmap_hash(wide));
    assert_non_null(st);
    assert_true(marked(st, wide));
    int64_t narrow = i * 65519 % ((int64_t)1 << 32);
    if (narrow) {
      st = personmap_find(&m, narrow, personmap_hash(narrow));
      assert_non_null(st);
      assert_true(marked(st, narrow));
    }
    int64_t gone = wide + ((int64_t)1 << 40);
    assert_null(personmap_find(&m, gone, personmap_hash(gone)));
  }
  personmap_free(&m);
}

static int cmp_id(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* The walk and the bulk copy visit every person exactly once, both tables,
 * each with its own state; on an empty or freed map, none. */
static void test_personmap_walk(void **unused) {
  (void)unused;
  enum { N = 5000 };
  personmap m;
  int64_t id;
  size_t at = 0;
  assert_int_equal(personmap_init(&m, 0, 0), 0);
  assert_null(personmap_next(&m, &at, &id));
  person_entry one[1];
  assert_int_equal(personmap_export(&m, one, 0), 0);
  static int64_t ids[N], seen[N];
  for (int i = 0; i < N; i++) {
    uint64_t h = personmap_hash(i + 1000);
    ids[i] = i % 3 == 0   ? (int64_t)(1 + (h & 0xfffffffe))           /* narrow */
             : i % 3 == 1 ? (int64_t)((h >> 1) | ((uint64_t)1 << 32)) /* wide */
                          : (int64_t)UINT32_MAX - i;                  /* near the edge */
    int created;
    person_state *st = personmap_upsert(&m, ids[i], personmap_hash(ids[i]), &created);
    assert_non_null(st);
    assert_true(created);
    mark(st, ids[i]);
  }
  assert_int_equal(m.count, N);
  size_t n = 0;
  person_state *st;
  for (at = 0; (st = personmap_next(&m, &at, &id));) {
    assert_true(n < N);
    assert_ptr_equal(st, personmap_find(&m, id, personmap_hash(id)));
    assert_true(marked(st, id));
    seen[n++] = id;
  }
  assert_int_equal(n, N);
  assert_null(personmap_next(&m, &at, &id)); /* stays at the end */
  qsort(seen, N, sizeof *seen, cmp_id);
  qsort(ids, N, sizeof *ids, cmp_id);
  assert_memory_equal(seen, ids, sizeof ids);

  person_entry *out = malloc((N + 1) * sizeof *out);
  assert_non_null(out);
  assert_int_equal(personmap_export(&m, out, N), N);
  for (int i = 0; i < N; i++) {
    seen[i] = out[i].person_id;
    assert_true(marked(&out[i].state, out[i].person_id));
  }
  qsort(seen, N, sizeof *seen, cmp_id);
  assert_memory_equal(seen, ids, sizeof ids);
  /* Room for fewer than the map holds: it stops one past the room. */
  assert_int_equal(personmap_export(&m, out, N / 2), N / 2 + 1);
  free(out);

  personmap_free(&m);
  at = 0;
  assert_null(personmap_next(&m, &at, &id));
  assert_int_equal(personmap_export(&m, one, 0), 0);
}

/* Month blocks moved between shards (rollup_take_idle, rollup_absorb): a
 * month asked for in the interval stays, an idle one moves, a month made
 * again after it moved (a straggler subtracting one) still sums exactly,
 * and the moved sum equals the merged one. */
static void test_rollup_take_idle(void **state) {
  (void)state;
  rollup a, b, into, expect;
  rollup_init(&a);
  rollup_init(&b);
  rollup_init(&into);
  rollup_init(&expect);
  for (int m = 0; m < 3; m++) {
    rollup_row(&a, m, 5, VISITATION_JOBPARAT)[ROLLUP_MEMBERS] += 10u + (uint32_t)m;
    rollup_row(&b, m, 5, VISITATION_JOBPARAT)[ROLLUP_MEMBERS] += 1;
  }
  assert_int_equal(rollup_take_idle(&a, &into), 0); /* all three asked for */
  rollup_row(&a, 2, 5, VISITATION_JOBPARAT)[ROLLUP_NOW] += 7;
  assert_int_equal(rollup_take_idle(&a, &into), 2); /* months 0 and 1 */
  assert_null(a.months[0]);
  assert_null(a.months[1]);
  assert_non_null(a.months[2]);
  assert_int_equal(into.months[1][5 * VISITATION_COUNT * ROLLUP_COLUMNS +
                                  VISITATION_JOBPARAT * ROLLUP_COLUMNS + ROLLUP_MEMBERS],
                   11);
  /* A straggler: month 0 made again, one subtracted. */
  rollup_row(&a, 0, 5, VISITATION_JOBPARAT)[ROLLUP_MEMBERS] += UINT32_MAX;
  assert_int_equal(rollup_take_idle(&a, &into), 1); /* month 2, idle now; 0 was asked for */
  assert_non_null(a.months[0]);
  assert_int_equal(rollup_take_idle(&a, &into), 1); /* month 0 */
  for (int m = 0; m < PERIOD_MONTHS; m++)
    assert_null(a.months[m]);

  rollup_absorb(&into, &b); /* moves nothing new: adds into every month */
  for (int m = 0; m < PERIOD_MONTHS; m++)
    assert_null(b.months[m]);
  for (int m = 0; m < 3; m++) {
    rollup_row(&expect, m, 5, VISITATION_JOBPARAT)[ROLLUP_MEMBERS] += 11u + (uint32_t)m - (m == 0);
  }
  rollup_row(&expect, 2, 5, VISITATION_JOBPARAT)[ROLLUP_NOW] += 7;
  for (int m = 0; m < 3; m++)
    assert_memory_equal(into.months[m], expect.months[m],
                        ROLLUP_KEYS * ROLLUP_COLUMNS * sizeof(uint32_t));
  assert_null(into.months[3]);
  rollup_free(&into);
  rollup_free(&expect);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_time_boundary),
      cmocka_unit_test(test_level_and_status_hierarchy),
      cmocka_unit_test(test_durable_windows),
      cmocka_unit_test(test_durable_table_and_loop),
      cmocka_unit_test(test_entry_and_contributions),
      cmocka_unit_test(test_gap_months),
      cmocka_unit_test(test_corrections_and_repeats),
      cmocka_unit_test(test_correction_undoes_entry),
      cmocka_unit_test(test_project_window),
      cmocka_unit_test(test_config_validation),
      cmocka_unit_test(test_validation_order),
      cmocka_unit_test(test_periods),
      cmocka_unit_test(test_personmap_growth),
      cmocka_unit_test(test_personmap_growth_in_place),
      cmocka_unit_test(test_personmap_id_widths),
      cmocka_unit_test(test_personmap_both_grow),
      cmocka_unit_test(test_personmap_walk),
      cmocka_unit_test(test_rollup_take_idle),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
