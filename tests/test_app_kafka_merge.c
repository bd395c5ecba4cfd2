/* test_app_kafka_merge.c — the merge stage's state (processor/kafka/merge.c),
 * no broker: partials of a row from several input partitions sum into one
 * total, a newer partial of (row, input partition) replaces the old one,
 * publish emits only changed totals and a tombstone for a row without
 * members, progress marks per (partials partition, input partition) and how
 * a partial or a foreign mark voids them, malformed messages change nothing,
 * reset, ownership, catching up per partition, a revoked partition
 * forgotten while the kept ones go on; and a differential run of random partials
 * against a trivial reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "avro/rollup_codec.h"
#include "core/rollup.h"
#include "kafka/merge.h"
#include "kafka/wire.h"

static const uint64_t fingerprint = 0x9e3779b97f4a7c15ull; /* high bit set */

/* ---- feeding and capturing ---- */

static merge_kind put_partial(merge_state *ms, int32_t q, int32_t period, int32_t mu, visitation v,
                              int32_t source, const int64_t counts[ROLLUP_COLUMNS]) {
  char key[WIRE_PARTIAL_KEY_MAX];
  size_t klen = wire_partial_key(period, mu, v, source, key);
  rollup_msg m = {period, mu, v, {0}};
  memcpy(m.counts, counts, sizeof m.counts);
  uint8_t value[ROLLUP_ENCODED_MAX];
  size_t vlen = rollup_codec_encode(&m, value);
  return merge_apply(ms, q, key, klen, value, vlen);
}

static merge_kind put_mark(merge_state *ms, int32_t q, int32_t source, int64_t covered,
                           uint64_t fp) {
  char key[WIRE_MARK_KEY_MAX];
  size_t klen = wire_mark_key(source, key);
  uint8_t value[WIRE_MARK_BYTES];
  wire_mark_value(covered, fp, value);
  return merge_apply(ms, q, key, klen, value, sizeof value);
}

/* counts[c] = base * (c + 1), members = base */
static void fill(int64_t counts[ROLLUP_COLUMNS], int64_t base) {
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    counts[c] = base * (c + 1);
}

typedef struct emitted {
  char key[ROLLUP_KEY_MAX];
  int tombstone;
  rollup_msg row; /* decoded value, when not a tombstone */
} emitted;

typedef struct capture {
  emitted *e;
  size_t n, cap;
} capture;

static void on_emit(void *ctx, const char *key, size_t klen, const uint8_t *value, size_t vlen) {
  capture *c = ctx;
  if (c->n == c->cap) {
    c->cap = c->cap ? 2 * c->cap : 16;
    c->e = realloc(c->e, c->cap * sizeof *c->e);
    assert_non_null(c->e);
  }
  emitted *e = &c->e[c->n++];
  memset(e, 0, sizeof *e);
  assert_true(klen < ROLLUP_KEY_MAX);
  memcpy(e->key, key, klen);
  /* a tombstone is exactly (NULL, 0); anything else decodes */
  if (!value || vlen == 0) {
    assert_null(value);
    assert_int_equal(vlen, 0);
    e->tombstone = 1;
    return;
  }
  assert_int_equal(rollup_codec_decode(value, vlen, &e->row), 0);
  char again[ROLLUP_KEY_MAX];
  rollup_key_format(e->row.period, e->row.municipality, e->row.visitation, again);
  assert_string_equal(again, e->key); /* the value is the key's row */
}

static uint64_t publish(merge_state *ms, capture *c) {
  c->n = 0;
  uint64_t n = merge_publish(ms, on_emit, c);
  assert_int_equal(n, c->n);
  return n;
}

static const emitted *find(const capture *c, const char *key) {
  const emitted *hit = NULL;
  for (size_t i = 0; i < c->n; i++)
    if (!strcmp(c->e[i].key, key)) {
      assert_null(hit); /* at most once per publication */
      hit = &c->e[i];
    }
  return hit;
}

static void assert_total(const emitted *e, int32_t period, int32_t mu, visitation v,
                         const int64_t want[ROLLUP_COLUMNS]) {
  assert_non_null(e);
  assert_false(e->tombstone);
  assert_int_equal(e->row.period, period);
  assert_int_equal(e->row.municipality, mu);
  assert_int_equal(e->row.visitation, v);
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    if (e->row.counts[c] != want[c])
      fail_msg("column %d (%s): %lld, want %lld", c, rollup_column_names[c],
               (long long)e->row.counts[c], (long long)want[c]);
}

/* One state and capture per test, made and freed by the test itself. */
typedef struct fixture {
  merge_state *ms;
  capture cap;
} fixture;

static fixture *fx_new(void) {
  fixture *f = calloc(1, sizeof *f);
  assert_non_null(f);
  f->ms = merge_new(fingerprint);
  assert_non_null(f->ms);
  return f;
}

static void fx_free(fixture *f) {
  merge_free(f->ms);
  free(f->cap.e);
  free(f);
}

/* Rows used below: all official codes. */
#define ROW_A 202302, 101, VISITATION_JOBPARAT
#define KEY_A "202302,101,JOBPARAT"
#define ROW_B 202302, 147, VISITATION_OEVRIG
#define KEY_B "202302,147,OEVRIG"
#define ROW_C 199001, 860, VISITATION_UNKNOWN
#define KEY_C "199001,860,UNKNOWN"

/* ---- totals ---- */

static void test_two_sources_sum(void **state) {
  (void)state;
  fixture *f = fx_new();
  int64_t a[ROLLUP_COLUMNS], b[ROLLUP_COLUMNS], want[ROLLUP_COLUMNS];
  fill(a, 3);
  fill(b, 1000);
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    want[c] = a[c] + b[c];
  int32_t q = wire_row_partition(ROW_A, 4);
  assert_int_equal(put_partial(f->ms, q, ROW_A, 0, a), MERGE_PARTIAL);
  assert_int_equal(put_partial(f->ms, q, ROW_A, 1, b), MERGE_PARTIAL);
  assert_int_equal(publish(f->ms, &f->cap), 1);
  assert_total(find(&f->cap, KEY_A), ROW_A, want);
  fx_free(f);
}

/* Large counters survive the sum and the codec. */
static void test_sum_large_counts(void **state) {
  (void)state;
  fixture *f = fx_new();
  int64_t a[ROLLUP_COLUMNS], b[ROLLUP_COLUMNS], want[ROLLUP_COLUMNS];
  for (int c = 0; c < ROLLUP_COLUMNS; c++) {
    a[c] = 4294967295ll + c;
    b[c] = (1ll << 40) + c * 7;
    want[c] = a[c] + b[c];
  }
  assert_int_equal(put_partial(f->ms, 0, ROW_B, 2, a), MERGE_PARTIAL);
  assert_int_equal(put_partial(f->ms, 0, ROW_B, 4095, b), MERGE_PARTIAL);
  assert_int_equal(publish(f->ms, &f->cap), 1);
  assert_total(find(&f->cap, KEY_B), ROW_B, want);
  fx_free(f);
}

static void test_unchanged_not_reemitted(void **state) {
  (void)state;
  fixture *f = fx_new();
  int64_t a[ROLLUP_COLUMNS], b[ROLLUP_COLUMNS];
  fill(a, 2);
  fill(b, 5);
  assert_int_equal(put_partial(f->ms, 1, ROW_A, 0, a), MERGE_PARTIAL);
  assert_int_equal(publish(f->ms, &f->cap), 1);
  assert_int_equal(publish(f->ms, &f->cap), 0); /* nothing changed since */
  /* the same partial again */
  assert_int_equal(put_partial(f->ms, 1, ROW_A, 0, a), MERGE_PARTIAL);
  assert_int_equal(publish(f->ms, &f->cap), 0);
  /* a different partial, then the original back: the total is unchanged */
  assert_int_equal(put_partial(f->ms, 1, ROW_A, 0, b), MERGE_PARTIAL);
  assert_int_equal(put_partial(f->ms, 1, ROW_A, 0, a), MERGE_PARTIAL);
  assert_int_equal(publish(f->ms, &f->cap), 0);
  /* changed: emitted again */
  assert_int_equal(put_partial(f->ms, 1, ROW_A, 0, b), MERGE_PARTIAL);
  assert_int_equal(publish(f->ms, &f->cap), 1);
  assert_total(find(&f->cap, KEY_A), ROW_A, b);
  fx_free(f);
}

/* Partials of two sources whose sum stays the same: no emission. */
static void test_same_total_other_split(void **state) {
  (void)state;
  fixture *f = fx_new();
  int64_t a[ROLLUP_COLUMNS], b[ROLLUP_COLUMNS], c3[ROLLUP_COLUMNS], c1[ROLLUP_COLUMNS];
  fill(a, 2);
  fill(b, 2);
  fill(c3, 3);
  fill(c1, 1);
  put_partial(f->ms, 0, ROW_A, 0, a);
  put_partial(f->ms, 0, ROW_A, 1, b);
  assert_int_equal(publish(f->ms, &f->cap), 1);
  put_partial(f->ms, 0, ROW_A, 0, c3);
  put_partial(f->ms, 0, ROW_A, 1, c1);
  assert_int_equal(publish(f->ms, &f->cap), 0);
  fx_free(f);
}

static void test_newer_partial_replaces(void **state) {
  (void)state;
  fixture *f = fx_new();
  int64_t old[ROLLUP_COLUMNS], newer[ROLLUP_COLUMNS], other[ROLLUP_COLUMNS], want[ROLLUP_COLUMNS];
  fill(old, 5);
  fill(newer, 3);
  fill(other, 100);
  put_partial(f->ms, 2, ROW_A, 0, old);
  put_partial(f->ms, 2, ROW_A, 1, other);
  assert_int_equal(publish(f->ms, &f->cap), 1);
  /* a smaller newer partial of source 0: the total goes down, not up */
  put_partial(f->ms, 2, ROW_A, 0, newer);
  assert_int_equal(publish(f->ms, &f->cap), 1);
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    want[c] = newer[c] + other[c];
  assert_total(find(&f->cap, KEY_A), ROW_A, want);
  /* two partials of source 0 before one publication: only the last counts */
  put_partial(f->ms, 2, ROW_A, 0, old);
  put_partial(f->ms, 2, ROW_A, 0, newer);
  put_partial(f->ms, 2, ROW_A, 0, old);
  assert_int_equal(publish(f->ms, &f->cap), 1);
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    want[c] = old[c] + other[c];
  assert_total(find(&f->cap, KEY_A), ROW_A, want);
  fx_free(f);
}

/* A partial read in another partials partition is still the same (row,
 * source): the row's total does not depend on q. */
static void test_partial_replaced_across_q(void **state) {
  (void)state;
  fixture *f = fx_new();
  int64_t a[ROLLUP_COLUMNS], b[ROLLUP_COLUMNS];
  fill(a, 4);
  fill(b, 6);
  put_partial(f->ms, 0, ROW_C, 3, a);
  put_partial(f->ms, 5, ROW_C, 3, b);
  assert_int_equal(publish(f->ms, &f->cap), 1);
  assert_total(find(&f->cap, KEY_C), ROW_C, b);
  fx_free(f);
}

static void test_only_changed_rows_emitted(void **state) {
  (void)state;
  fixture *f = fx_new();
  int64_t a[ROLLUP_COLUMNS], b[ROLLUP_COLUMNS], a2[ROLLUP_COLUMNS];
  fill(a, 1);
  fill(b, 2);
  fill(a2, 7);
  put_partial(f->ms, 0, ROW_A, 0, a);
  put_partial(f->ms, 0, ROW_B, 0, b);
  put_partial(f->ms, 0, ROW_C, 1, b);
  assert_int_equal(publish(f->ms, &f->cap), 3);
  assert_total(find(&f->cap, KEY_A), ROW_A, a);
  assert_total(find(&f->cap, KEY_B), ROW_B, b);
  assert_total(find(&f->cap, KEY_C), ROW_C, b);
  put_partial(f->ms, 0, ROW_A, 0, a2);
  put_partial(f->ms, 0, ROW_B, 0, b); /* same as before */
  assert_int_equal(publish(f->ms, &f->cap), 1);
  assert_total(find(&f->cap, KEY_A), ROW_A, a2);
  assert_null(find(&f->cap, KEY_B));
  fx_free(f);
}

static void test_tombstone_when_members_zero(void **state) {
  (void)state;
  fixture *f = fx_new();
  int64_t a[ROLLUP_COLUMNS], b[ROLLUP_COLUMNS], zero[ROLLUP_COLUMNS] = {0};
  fill(a, 2);
  fill(b, 9);
  put_partial(f->ms, 0, ROW_A, 0, a);
  put_partial(f->ms, 0, ROW_A, 1, b);
  assert_int_equal(publish(f->ms, &f->cap), 1);
  /* one source drops to zero: still a row, the other's counts */
  put_partial(f->ms, 0, ROW_A, 0, zero);
  assert_int_equal(publish(f->ms, &f->cap), 1);
  assert_total(find(&f->cap, KEY_A), ROW_A, b);
  /* the other too: a tombstone (NULL, 0), once */
  put_partial(f->ms, 0, ROW_A, 1, zero);
  assert_int_equal(publish(f->ms, &f->cap), 1);
  const emitted *e = find(&f->cap, KEY_A);
  assert_non_null(e);
  assert_true(e->tombstone);
  assert_int_equal(publish(f->ms, &f->cap), 0);
  put_partial(f->ms, 0, ROW_A, 1, zero);
  assert_int_equal(publish(f->ms, &f->cap), 0);
  /* members back: a row again */
  put_partial(f->ms, 0, ROW_A, 1, a);
  assert_int_equal(publish(f->ms, &f->cap), 1);
  assert_total(find(&f->cap, KEY_A), ROW_A, a);
  fx_free(f);
}

/* ---- marks ---- */

static void test_mark_offsets(void **state) {
  (void)state;
  fixture *f = fx_new();
  assert_int_equal(merge_mark(f->ms, 2, 1), -1); /* before any */
  assert_int_equal(put_mark(f->ms, 2, 1, 100, fingerprint), MERGE_MARK);
  assert_int_equal(merge_mark(f->ms, 2, 1), 100);
  assert_int_equal(merge_mark(f->ms, 2, 0), -1); /* another input partition */
  assert_int_equal(merge_mark(f->ms, 3, 1), -1); /* another partials partition */
  assert_int_equal(put_mark(f->ms, 2, 1, 250, fingerprint), MERGE_MARK);
  assert_int_equal(merge_mark(f->ms, 2, 1), 250); /* the latest */
  assert_int_equal(put_mark(f->ms, 3, WIRE_MAX_INPUTS - 1, (1ll << 40) + 1, fingerprint),
                   MERGE_MARK);
  assert_true(merge_mark(f->ms, 3, WIRE_MAX_INPUTS - 1) == (1ll << 40) + 1);
  assert_int_equal(put_mark(f->ms, MERGE_MAX_PARTIALS - 1, 0, 0, fingerprint), MERGE_MARK);
  assert_int_equal(merge_mark(f->ms, MERGE_MAX_PARTIALS - 1, 0), 0);
  /* out of range asks: none */
  assert_int_equal(merge_mark(f->ms, -1, 1), -1);
  assert_int_equal(merge_mark(f->ms, MERGE_MAX_PARTIALS, 1), -1);
  assert_int_equal(merge_mark(f->ms, 2, -1), -1);
  assert_int_equal(merge_mark(f->ms, 2, WIRE_MAX_INPUTS), -1);
  /* marks are not rows */
  assert_int_equal(publish(f->ms, &f->cap), 0);
  fx_free(f);
}

static void test_partial_voids_mark(void **state) {
  (void)state;
  fixture *f = fx_new();
  int64_t a[ROLLUP_COLUMNS];
  fill(a, 1);
  put_mark(f->ms, 2, 1, 100, fingerprint);
  put_mark(f->ms, 2, 0, 50, fingerprint);
  put_mark(f->ms, 3, 1, 70, fingerprint);
  /* a partial of input partition 1 in q 2: only (2, 1) is void */
  assert_int_equal(put_partial(f->ms, 2, ROW_A, 1, a), MERGE_PARTIAL);
  assert_int_equal(merge_mark(f->ms, 2, 1), -1);
  assert_int_equal(merge_mark(f->ms, 2, 0), 50);
  assert_int_equal(merge_mark(f->ms, 3, 1), 70);
  /* a partial of input partition 0 in another q does not void (2, 0) */
  assert_int_equal(put_partial(f->ms, 4, ROW_B, 0, a), MERGE_PARTIAL);
  assert_int_equal(merge_mark(f->ms, 2, 0), 50);
  /* a partial in a q without any mark yet */
  assert_int_equal(merge_mark(f->ms, 4, 0), -1);
  /* the next mark covers it again */
  put_mark(f->ms, 2, 1, 120, fingerprint);
  assert_int_equal(merge_mark(f->ms, 2, 1), 120);
  fx_free(f);
}

static void test_foreign_mark(void **state) {
  (void)state;
  fixture *f = fx_new();
  assert_int_equal(put_mark(f->ms, 0, 0, 100, fingerprint ^ 1), MERGE_FOREIGN);
  assert_int_equal(merge_mark(f->ms, 0, 0), -1);
  /* after a mark of this configuration, a foreign one counts as none */
  assert_int_equal(put_mark(f->ms, 0, 1, 100, fingerprint), MERGE_MARK);
  assert_int_equal(put_mark(f->ms, 0, 1, 200, 0), MERGE_FOREIGN);
  assert_int_equal(merge_mark(f->ms, 0, 1), -1);
  assert_int_equal(put_mark(f->ms, 0, 1, 300, fingerprint), MERGE_MARK);
  assert_int_equal(merge_mark(f->ms, 0, 1), 300);
  /* a state of another configuration treats ours as foreign */
  merge_state *other = merge_new(~fingerprint);
  assert_non_null(other);
  assert_int_equal(put_mark(other, 0, 1, 300, fingerprint), MERGE_FOREIGN);
  assert_int_equal(merge_mark(other, 0, 1), -1);
  merge_free(other);
  fx_free(f);
}

/* ---- malformed input ---- */

static void test_malformed_changes_nothing(void **state) {
  (void)state;
  fixture *f = fx_new();
  int64_t a[ROLLUP_COLUMNS], b[ROLLUP_COLUMNS];
  fill(a, 2);
  fill(b, 8);
  const int32_t q = 1;
  assert_int_equal(put_partial(f->ms, q, ROW_A, 0, a), MERGE_PARTIAL);
  assert_int_equal(put_mark(f->ms, q, 0, 100, fingerprint), MERGE_MARK);
  assert_int_equal(publish(f->ms, &f->cap), 1);

  char key[WIRE_PARTIAL_KEY_MAX], mkey[WIRE_MARK_KEY_MAX];
  size_t klen = wire_partial_key(ROW_A, 0, key), mklen = wire_mark_key(0, mkey);
  rollup_msg m = {ROW_A, {0}};
  memcpy(m.counts, b, sizeof m.counts);
  uint8_t value[ROLLUP_ENCODED_MAX + 1];
  size_t vlen = rollup_codec_encode(&m, value);
  value[vlen] = 0;
  uint8_t mark[WIRE_MARK_BYTES + 1] = {0};
  wire_mark_value(500, fingerprint, mark);

  struct {
    const char *what;
    int32_t q;
    const void *key;
    size_t klen;
    const void *value;
    size_t vlen;
  } bad[] = {
      {"partial, value truncated", q, key, klen, value, vlen - 1},
      {"partial, trailing byte", q, key, klen, value, vlen + 1},
      {"partial, NULL value", q, key, klen, NULL, 0},
      {"partial, empty value", q, key, klen, value, 0},
      {"partial, key without '@'", q, key, klen - 2, value, vlen},
      {"partial, bad municipality", q, "202302,102,JOBPARAT@0", 21, value, vlen},
      {"partial, bad period", q, "202313,101,JOBPARAT@0", 21, value, vlen},
      {"partial, P too large", q, "202302,101,JOBPARAT@4096", 24, value, vlen},
      {"partial, garbage key", q, "garbage@0", 9, value, vlen},
      {"partial, NULL key", q, NULL, 0, value, vlen},
      {"partial, q -1", -1, key, klen, value, vlen},
      {"partial, q too large", MERGE_MAX_PARTIALS, key, klen, value, vlen},
      {"mark, 15 bytes", q, mkey, mklen, mark, WIRE_MARK_BYTES - 1},
      {"mark, 17 bytes", q, mkey, mklen, mark, WIRE_MARK_BYTES + 1},
      {"mark, NULL value", q, mkey, mklen, NULL, 0},
      {"mark, bad digits", q, "@0x", 3, mark, WIRE_MARK_BYTES},
      {"mark, empty digits", q, "@", 1, mark, WIRE_MARK_BYTES},
      {"mark, q -1", -1, mkey, mklen, mark, WIRE_MARK_BYTES},
      {"mark, q too large", MERGE_MAX_PARTIALS, mkey, mklen, mark, WIRE_MARK_BYTES},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    merge_kind k = merge_apply(f->ms, bad[i].q, bad[i].key, bad[i].klen, bad[i].value, bad[i].vlen);
    if (k != MERGE_MALFORMED)
      fail_msg("%s: kind %d, want MERGE_MALFORMED", bad[i].what, (int)k);
    if (merge_mark(f->ms, q, 0) != 100)
      fail_msg("%s: mark now %lld", bad[i].what, (long long)merge_mark(f->ms, q, 0));
    if (publish(f->ms, &f->cap) != 0)
      fail_msg("%s: publish emitted", bad[i].what);
  }
  /* the row is still a's: b's partial counts once it arrives whole */
  assert_int_equal(put_partial(f->ms, q, ROW_A, 0, b), MERGE_PARTIAL);
  assert_int_equal(publish(f->ms, &f->cap), 1);
  assert_total(find(&f->cap, KEY_A), ROW_A, b);
  fx_free(f);
}

/* ---- assignment: reset, ownership, catching up ---- */

static void test_reset_forgets(void **state) {
  (void)state;
  fixture *f = fx_new();
  int64_t a[ROLLUP_COLUMNS];
  fill(a, 3);
  put_partial(f->ms, 0, ROW_A, 0, a);
  put_mark(f->ms, 0, 1, 10, fingerprint);
  merge_own(f->ms, 0);
  merge_own(f->ms, 9);
  merge_set_assigned(f->ms);
  int32_t parts[] = {0, 9};
  int64_t ends[] = {0, 0};
  merge_set_targets(f->ms, 2, parts, ends);
  assert_int_equal(merge_check_caught_up(f->ms, 2, parts, ends), 1);
  assert_int_equal(publish(f->ms, &f->cap), 1);

  merge_reset(f->ms);
  int32_t owned[MERGE_MAX_PARTIALS];
  assert_int_equal(merge_owned(f->ms, owned), 0);
  assert_int_equal(merge_mark(f->ms, 0, 1), -1);
  assert_false(merge_assigned(f->ms));
  assert_int_equal(merge_untargeted(f->ms, owned), 0);
  assert_int_equal(merge_behind(f->ms, owned), 0);
  assert_false(merge_caught_up(f->ms));
  assert_int_equal(publish(f->ms, &f->cap), 0); /* no rows left */
  /* the same partial re-read after the reset is published again */
  put_partial(f->ms, 0, ROW_A, 0, a);
  assert_int_equal(publish(f->ms, &f->cap), 1);
  assert_total(find(&f->cap, KEY_A), ROW_A, a);
  /* and a reset forgot the other sources too: only this one is summed */
  int64_t b[ROLLUP_COLUMNS];
  fill(b, 4);
  merge_reset(f->ms);
  put_partial(f->ms, 0, ROW_A, 1, b);
  assert_int_equal(publish(f->ms, &f->cap), 1);
  assert_total(find(&f->cap, KEY_A), ROW_A, b);
  fx_free(f);
}

static void test_owned_ascending(void **state) {
  (void)state;
  fixture *f = fx_new();
  int32_t parts[MERGE_MAX_PARTIALS];
  assert_int_equal(merge_owned(f->ms, parts), 0);
  static const int32_t own[] = {200, 3, 17, 3, 0, MERGE_MAX_PARTIALS - 1, -1, MERGE_MAX_PARTIALS};
  for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
    merge_own(f->ms, own[i]);
  static const int32_t want[] = {0, 3, 17, 200, MERGE_MAX_PARTIALS - 1};
  assert_int_equal(merge_owned(f->ms, parts), 5);
  assert_memory_equal(parts, want, sizeof want);
  /* all of them */
  for (int32_t q = 0; q < MERGE_MAX_PARTIALS; q++)
    merge_own(f->ms, q);
  assert_int_equal(merge_owned(f->ms, parts), MERGE_MAX_PARTIALS);
  for (int32_t q = 0; q < MERGE_MAX_PARTIALS; q++)
    assert_int_equal(parts[q], q);
  fx_free(f);
}

static void test_caught_up_needs_assignment_and_targets(void **state) {
  (void)state;
  fixture *f = fx_new();
  int32_t parts[] = {1, 4}, listed[MERGE_MAX_PARTIALS];
  int64_t ends[] = {10, 0}, far[] = {1000, 1000};
  assert_false(merge_assigned(f->ms));
  merge_own(f->ms, 1);
  merge_own(f->ms, 4);
  assert_int_equal(merge_untargeted(f->ms, listed), 2);
  assert_int_equal(merge_check_caught_up(f->ms, 2, parts, far), 0); /* no assignment */
  merge_set_targets(f->ms, 2, parts, ends);
  assert_int_equal(merge_untargeted(f->ms, listed), 0);
  assert_int_equal(merge_check_caught_up(f->ms, 2, parts, far), 0); /* still none */
  assert_false(merge_caught_up(f->ms));
  merge_set_assigned(f->ms);
  assert_true(merge_assigned(f->ms));
  assert_int_equal(merge_check_caught_up(f->ms, 2, parts, far), 1);
  assert_true(merge_caught_up(f->ms));
  assert_int_equal(merge_behind(f->ms, listed), 0);

  /* assigned but no targets */
  merge_reset(f->ms);
  merge_own(f->ms, 1);
  merge_own(f->ms, 4);
  merge_set_assigned(f->ms);
  assert_int_equal(merge_check_caught_up(f->ms, 2, parts, far), 0);
  assert_false(merge_caught_up(f->ms));
  /* targets of partitions not held are not taken */
  merge_reset(f->ms);
  merge_set_assigned(f->ms);
  merge_set_targets(f->ms, 2, parts, ends);
  merge_own(f->ms, 1);
  assert_int_equal(merge_untargeted(f->ms, listed), 1);
  assert_int_equal(merge_check_caught_up(f->ms, 2, parts, far), 0);
  /* holding none, an assignment received is caught up */
  merge_reset(f->ms);
  merge_set_assigned(f->ms);
  assert_true(merge_caught_up(f->ms));
  fx_free(f);
}

static void test_caught_up_positions(void **state) {
  (void)state;
  fixture *f = fx_new();
  int32_t parts[] = {1, 4, 7};
  int64_t ends[] = {10, 0, 3};
  merge_own(f->ms, 1);
  merge_own(f->ms, 4);
  merge_own(f->ms, 7);
  merge_set_assigned(f->ms);
  merge_set_targets(f->ms, 3, parts, ends);
  int64_t behind[] = {9, -1, 3};
  assert_int_equal(merge_check_caught_up(f->ms, 3, parts, behind), 0);
  int32_t listed[MERGE_MAX_PARTIALS];
  assert_int_equal(merge_behind(f->ms, listed), 1); /* 4 (target 0) and 7 are caught up */
  assert_int_equal(listed[0], 1);
  int64_t unknown[] = {10, -1, -1}; /* -1 with a positive target */
  assert_int_equal(merge_check_caught_up(f->ms, 1, parts + 2, unknown + 2), 0);
  assert_false(merge_caught_up(f->ms));
  int64_t at[] = {10, -1, 3}; /* target 0 needs no position */
  assert_int_equal(merge_check_caught_up(f->ms, 3, parts, at), 1);
  assert_true(merge_caught_up(f->ms));
  /* a yes is remembered, whatever the positions say later */
  assert_int_equal(merge_check_caught_up(f->ms, 3, parts, behind), 1);
  assert_true(merge_caught_up(f->ms));
  /* until the reset */
  merge_reset(f->ms);
  assert_false(merge_caught_up(f->ms));
  assert_int_equal(merge_check_caught_up(f->ms, 3, parts, at), 0);
  fx_free(f);
}

static void test_caught_up_past_target(void **state) {
  (void)state;
  fixture *f = fx_new();
  int32_t parts[] = {0, 2};
  int64_t ends[] = {5, 1ll << 40};
  merge_own(f->ms, 0);
  merge_own(f->ms, 2);
  merge_set_assigned(f->ms);
  merge_set_targets(f->ms, 2, parts, ends);
  int64_t just_below[] = {100, (1ll << 40) - 1};
  assert_int_equal(merge_check_caught_up(f->ms, 2, parts, just_below), 0);
  int64_t past[] = {6, (1ll << 40) + 5};
  assert_int_equal(merge_check_caught_up(f->ms, 2, parts, past), 1);
  fx_free(f);
}

/* ---- the cooperative protocol: partitions come and go one by one ---- */

/* Rows A and B of partials partitions 0 and 1 (as wire_row_partition would
 * put them), each summed from input partitions 0 and 1. */
static void two_partitions(fixture *f, int64_t base) {
  int64_t a0[ROLLUP_COLUMNS], a1[ROLLUP_COLUMNS], b0[ROLLUP_COLUMNS], b1[ROLLUP_COLUMNS];
  fill(a0, base), fill(a1, base + 1), fill(b0, base + 2), fill(b1, base + 3);
  put_partial(f->ms, 0, ROW_A, 0, a0);
  put_partial(f->ms, 0, ROW_A, 1, a1);
  put_partial(f->ms, 1, ROW_B, 0, b0);
  put_partial(f->ms, 1, ROW_B, 1, b1);
}

static void catch_up(fixture *f, int32_t q, int64_t end) {
  int32_t parts[] = {q};
  int64_t ends[] = {end};
  merge_set_targets(f->ms, 1, parts, ends);
  merge_check_caught_up(f->ms, 1, parts, ends);
}

static void test_new_partition_waits_kept_publish(void **state) {
  (void)state;
  fixture *f = fx_new();
  merge_own(f->ms, 0);
  merge_set_assigned(f->ms);
  catch_up(f, 0, 2);
  assert_true(merge_caught_up(f->ms));
  /* partition 1 assigned later: behind, so its rows wait */
  merge_own(f->ms, 1);
  assert_false(merge_caught_up(f->ms));
  assert_true(merge_partition_caught_up(f->ms, 0));
  assert_false(merge_partition_caught_up(f->ms, 1));
  assert_false(merge_partition_caught_up(f->ms, 2)); /* not held */
  int32_t listed[MERGE_MAX_PARTIALS];
  assert_int_equal(merge_untargeted(f->ms, listed), 1);
  assert_int_equal(listed[0], 1);
  two_partitions(f, 10);
  assert_int_equal(publish(f->ms, &f->cap), 1); /* A only: 0 is caught up */
  int64_t a[ROLLUP_COLUMNS];
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    a[c] = 10 * (c + 1) + 11 * (c + 1);
  assert_total(find(&f->cap, KEY_A), ROW_A, a);
  assert_null(find(&f->cap, KEY_B));
  /* owning it again changes nothing: still behind, its end still to ask */
  merge_own(f->ms, 1);
  assert_int_equal(merge_untargeted(f->ms, listed), 1);
  assert_int_equal(publish(f->ms, &f->cap), 0);
  /* once 1 is read to its end, B goes out (kept dirty meanwhile) */
  catch_up(f, 1, 2);
  assert_true(merge_caught_up(f->ms));
  assert_true(merge_partition_caught_up(f->ms, 1));
  assert_int_equal(publish(f->ms, &f->cap), 1);
  int64_t b[ROLLUP_COLUMNS];
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    b[c] = 12 * (c + 1) + 13 * (c + 1);
  assert_total(find(&f->cap, KEY_B), ROW_B, b);
  fx_free(f);
}

static void test_forget_drops_only_revoked(void **state) {
  (void)state;
  fixture *f = fx_new();
  merge_own(f->ms, 0);
  merge_own(f->ms, 1);
  merge_set_assigned(f->ms);
  catch_up(f, 0, 4);
  catch_up(f, 1, 4);
  two_partitions(f, 10);
  put_mark(f->ms, 0, 0, 50, fingerprint);
  put_mark(f->ms, 1, 0, 60, fingerprint);
  assert_int_equal(publish(f->ms, &f->cap), 2);

  merge_forget(f->ms, 1);
  assert_false(merge_owns(f->ms, 1));
  assert_true(merge_owns(f->ms, 0));
  int32_t owned[MERGE_MAX_PARTIALS];
  assert_int_equal(merge_owned(f->ms, owned), 1);
  assert_int_equal(merge_mark(f->ms, 1, 0), -1);
  assert_int_equal(merge_mark(f->ms, 0, 0), 50); /* kept */
  assert_true(merge_caught_up(f->ms));           /* the kept one stays caught up */
  assert_int_equal(publish(f->ms, &f->cap), 0);  /* nothing changed, B is gone */
  /* A's sources are kept: a newer partial of one of them sums with the other */
  int64_t a0[ROLLUP_COLUMNS], a1[ROLLUP_COLUMNS], want[ROLLUP_COLUMNS];
  fill(a0, 20);
  fill(a1, 11);
  put_partial(f->ms, 0, ROW_A, 0, a0);
  assert_int_equal(publish(f->ms, &f->cap), 1);
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    want[c] = a0[c] + a1[c];
  assert_total(find(&f->cap, KEY_A), ROW_A, want);

  /* 1 assigned back: read again from its beginning, B is published anew
   * once caught up (even with the same total as before: ever_sent is gone) */
  merge_own(f->ms, 1);
  assert_false(merge_caught_up(f->ms));
  int64_t b0[ROLLUP_COLUMNS], b1[ROLLUP_COLUMNS];
  fill(b0, 12);
  fill(b1, 13);
  put_partial(f->ms, 1, ROW_B, 0, b0);
  assert_int_equal(publish(f->ms, &f->cap), 0);
  put_partial(f->ms, 1, ROW_B, 1, b1);
  catch_up(f, 1, 2);
  assert_int_equal(publish(f->ms, &f->cap), 1);
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    want[c] = b0[c] + b1[c];
  assert_total(find(&f->cap, KEY_B), ROW_B, want);
  /* forgetting a partition never held, or out of range, changes nothing */
  merge_forget(f->ms, 7);
  merge_forget(f->ms, -1);
  merge_forget(f->ms, MERGE_MAX_PARTIALS);
  assert_int_equal(merge_owned(f->ms, owned), 2);
  assert_int_equal(publish(f->ms, &f->cap), 0);
  fx_free(f);
}

/* A row read from two partials partitions (the topic's partition count
 * changed): forgetting one keeps the other's partials and republishes. */
static void test_forget_row_across_q(void **state) {
  (void)state;
  fixture *f = fx_new();
  int64_t a0[ROLLUP_COLUMNS], a1[ROLLUP_COLUMNS];
  fill(a0, 3);
  fill(a1, 5);
  put_partial(f->ms, 0, ROW_A, 0, a0);
  put_partial(f->ms, 2, ROW_A, 1, a1);
  assert_int_equal(publish(f->ms, &f->cap), 1);
  merge_forget(f->ms, 2);
  assert_int_equal(publish(f->ms, &f->cap), 1);
  assert_total(find(&f->cap, KEY_A), ROW_A, a0);
  merge_forget(f->ms, 0);
  assert_int_equal(publish(f->ms, &f->cap), 0); /* gone: its next holder publishes it */
  fx_free(f);
}

/* ---- differential: random partials against a trivial reference ---- */

enum { DIFF_ROWS = 6, DIFF_SOURCES = 3, DIFF_OPS = 4000 };

static const struct {
  int32_t period, mu;
  visitation v;
} diff_rows[DIFF_ROWS] = {
    {202302, 101, VISITATION_JOBPARAT}, {202302, 147, VISITATION_JOBPARAT},
    {202302, 101, VISITATION_OEVRIG},   {202303, 101, VISITATION_JOBPARAT},
    {199001, 860, VISITATION_UNKNOWN},  {209912, 751, VISITATION_UDDANNELSESPARAT},
};

typedef struct reference {
  int have[DIFF_ROWS][DIFF_SOURCES];
  int64_t counts[DIFF_ROWS][DIFF_SOURCES][ROLLUP_COLUMNS];
  int ever_emitted[DIFF_ROWS];
  int64_t last[DIFF_ROWS][ROLLUP_COLUMNS]; /* zeros for a tombstone */
} reference;

static uint64_t rng_state;
static uint64_t rng_next(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Small values so that totals repeat; no members means an all-zero row (as
 * the rules produce: every other counter counts members). */
static void random_partial(int64_t counts[ROLLUP_COLUMNS]) {
  memset(counts, 0, ROLLUP_COLUMNS * sizeof counts[0]);
  if (rng_next() % 4 == 0)
    return;
  counts[ROLLUP_MEMBERS] = 1 + (int64_t)(rng_next() % 3);
  for (int c = 1; c < ROLLUP_COLUMNS; c++)
    counts[c] = (int64_t)(rng_next() % (uint64_t)(counts[ROLLUP_MEMBERS] + 1)) * (rng_next() % 2);
}

static int diff_row_of(const char *key) {
  for (int r = 0; r < DIFF_ROWS; r++) {
    char k[ROLLUP_KEY_MAX];
    rollup_key_format(diff_rows[r].period, diff_rows[r].mu, diff_rows[r].v, k);
    if (!strcmp(k, key))
      return r;
  }
  fail_msg("emitted a row never fed: %s", key);
  return -1;
}

static void reference_total(const reference *ref, int r, int64_t out[ROLLUP_COLUMNS]) {
  memset(out, 0, ROLLUP_COLUMNS * sizeof out[0]);
  for (int s = 0; s < DIFF_SOURCES; s++)
    if (ref->have[r][s])
      for (int c = 0; c < ROLLUP_COLUMNS; c++)
        out[c] += ref->counts[r][s][c];
}

static int row_touched(const reference *ref, int r) {
  for (int s = 0; s < DIFF_SOURCES; s++)
    if (ref->have[r][s])
      return 1;
  return 0;
}

/* After a publication: exactly the rows whose total differs from what was
 * last emitted (or never emitted) came out, each with the reference total
 * or a tombstone when it has no members. */
static void diff_check_publication(reference *ref, const capture *cap, uint64_t seed, int op) {
  int emitted_now[DIFF_ROWS] = {0};
  for (size_t i = 0; i < cap->n; i++) {
    int r = diff_row_of(cap->e[i].key);
    if (emitted_now[r]++)
      fail_msg("seed %llu op %d: row %d emitted twice", (unsigned long long)seed, op, r);
  }
  for (int r = 0; r < DIFF_ROWS; r++) {
    int64_t total[ROLLUP_COLUMNS];
    reference_total(ref, r, total);
    int changed = row_touched(ref, r) &&
                  (!ref->ever_emitted[r] || memcmp(total, ref->last[r], sizeof total) != 0);
    if (changed != emitted_now[r])
      fail_msg("seed %llu op %d: row %d %s", (unsigned long long)seed, op, r,
               changed ? "changed but not emitted" : "emitted but unchanged");
    if (!emitted_now[r])
      continue;
    for (size_t i = 0; i < cap->n; i++) {
      if (diff_row_of(cap->e[i].key) != r)
        continue;
      if (total[ROLLUP_MEMBERS] == 0) {
        if (!cap->e[i].tombstone)
          fail_msg("seed %llu op %d: row %d without members not a tombstone",
                   (unsigned long long)seed, op, r);
      } else {
        assert_total(&cap->e[i], diff_rows[r].period, diff_rows[r].mu, diff_rows[r].v, total);
      }
    }
    ref->ever_emitted[r] = 1;
    memcpy(ref->last[r], total, sizeof total);
  }
}

static void diff_run(uint64_t seed) {
  rng_state = seed;
  fixture *f = fx_new();
  reference *ref = calloc(1, sizeof *ref);
  assert_non_null(ref);
  for (int op = 0; op < DIFF_OPS; op++) {
    uint64_t what = rng_next() % 100;
    int r = (int)(rng_next() % DIFF_ROWS), s = (int)(rng_next() % DIFF_SOURCES);
    int32_t q = wire_row_partition(diff_rows[r].period, diff_rows[r].mu, diff_rows[r].v, 4);
    if (what < 60) { /* a new partial */
      int64_t counts[ROLLUP_COLUMNS];
      random_partial(counts);
      assert_int_equal(
          put_partial(f->ms, q, diff_rows[r].period, diff_rows[r].mu, diff_rows[r].v, s, counts),
          MERGE_PARTIAL);
      ref->have[r][s] = 1;
      memcpy(ref->counts[r][s], counts, sizeof counts);
    } else if (what < 70) { /* the current partial again */
      if (!ref->have[r][s])
        continue;
      assert_int_equal(put_partial(f->ms, q, diff_rows[r].period, diff_rows[r].mu, diff_rows[r].v,
                                   s, ref->counts[r][s]),
                       MERGE_PARTIAL);
    } else if (what < 75) { /* a mark: no row changes */
      assert_int_equal(put_mark(f->ms, q, s, op, fingerprint), MERGE_MARK);
    } else if (what < 78) { /* a truncated partial: no row changes */
      char key[WIRE_PARTIAL_KEY_MAX];
      size_t klen = wire_partial_key(diff_rows[r].period, diff_rows[r].mu, diff_rows[r].v, s, key);
      uint8_t value[ROLLUP_ENCODED_MAX];
      rollup_msg m = {diff_rows[r].period, diff_rows[r].mu, diff_rows[r].v, {0}};
      m.counts[ROLLUP_MEMBERS] = 1000 + op;
      size_t vlen = rollup_codec_encode(&m, value);
      assert_int_equal(merge_apply(f->ms, q, key, klen, value, vlen - 1), MERGE_MALFORMED);
    } else { /* publish */
      publish(f->ms, &f->cap);
      diff_check_publication(ref, &f->cap, seed, op);
    }
  }
  publish(f->ms, &f->cap);
  diff_check_publication(ref, &f->cap, seed, DIFF_OPS);
  /* the last emitted values are the reference totals of every touched row */
  for (int r = 0; r < DIFF_ROWS; r++) {
    if (!row_touched(ref, r))
      continue;
    int64_t total[ROLLUP_COLUMNS];
    reference_total(ref, r, total);
    assert_true(ref->ever_emitted[r]);
    assert_memory_equal(ref->last[r], total, sizeof total);
  }
  assert_int_equal(publish(f->ms, &f->cap), 0);
  free(ref);
  fx_free(f);
}

static void test_differential(void **state) {
  (void)state;
  static const uint64_t seeds[] = {1, 2, 3, 42, 20230201};
  for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
    diff_run(seeds[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_two_sources_sum),
      cmocka_unit_test(test_sum_large_counts),
      cmocka_unit_test(test_unchanged_not_reemitted),
      cmocka_unit_test(test_same_total_other_split),
      cmocka_unit_test(test_newer_partial_replaces),
      cmocka_unit_test(test_partial_replaced_across_q),
      cmocka_unit_test(test_only_changed_rows_emitted),
      cmocka_unit_test(test_tombstone_when_members_zero),
      cmocka_unit_test(test_mark_offsets),
      cmocka_unit_test(test_partial_voids_mark),
      cmocka_unit_test(test_foreign_mark),
      cmocka_unit_test(test_malformed_changes_nothing),
      cmocka_unit_test(test_reset_forgets),
      cmocka_unit_test(test_owned_ascending),
      cmocka_unit_test(test_caught_up_needs_assignment_and_targets),
      cmocka_unit_test(test_caught_up_positions),
      cmocka_unit_test(test_caught_up_past_target),
      cmocka_unit_test(test_new_partition_waits_kept_publish),
      cmocka_unit_test(test_forget_drops_only_revoked),
      cmocka_unit_test(test_forget_row_across_q),
      cmocka_unit_test(test_differential),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
