/* test_app_kafka_settle.c — when a reprocessing run is settled
 * (processor/kafka/settle.c over a merge_state), no broker: not while the
 * input ends are unknown or the merger has not caught up, not while holding
 * no partials partition, not while any held partition lacks a mark of this
 * configuration at or past an input partition's end (a partial after the
 * mark, a foreign mark, an end of 0 all count as missing), and what it
 * waits for in each case; settle_finish / settle_done. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "avro/rollup_codec.h"
#include "kafka/merge.h"
#include "kafka/settle.h"
#include "kafka/wire.h"

static const uint64_t fingerprint = 0xc0ffee0000000001ull;

static void put_mark(merge_state *ms, int32_t q, int32_t p, int64_t covered, uint64_t fp) {
  char key[WIRE_MARK_KEY_MAX];
  size_t klen = wire_mark_key(p, key);
  uint8_t value[WIRE_MARK_BYTES];
  wire_mark_value(covered, fp, value);
  merge_kind want = fp == fingerprint ? MERGE_MARK : MERGE_FOREIGN;
  assert_int_equal(merge_apply(ms, q, key, klen, value, sizeof value), want);
}

static void put_partial(merge_state *ms, int32_t q, int32_t p) {
  char key[WIRE_PARTIAL_KEY_MAX];
  size_t klen = wire_partial_key(202302, 101, VISITATION_JOBPARAT, p, key);
  rollup_msg m = {202302, 101, VISITATION_JOBPARAT, {0}};
  m.counts[ROLLUP_MEMBERS] = 1;
  uint8_t value[ROLLUP_ENCODED_MAX];
  size_t vlen = rollup_codec_encode(&m, value);
  assert_int_equal(merge_apply(ms, q, key, klen, value, vlen), MERGE_PARTIAL);
}

/* A merger holding partials partitions qs[0 .. n-1], caught up with them. */
static merge_state *caught_up_merger(int n, const int32_t *qs) {
  merge_state *ms = merge_new(fingerprint);
  assert_non_null(ms);
  int64_t ends[MERGE_MAX_PARTIALS] = {0};
  for (int i = 0; i < n; i++)
    merge_own(ms, qs[i]);
  merge_set_assigned(ms);
  merge_set_targets(ms, n, qs, ends);
  assert_int_equal(merge_check_caught_up(ms, n, qs, ends), 1);
  return ms;
}

static settle *settle_new(void) {
  settle *s = malloc(sizeof *s);
  assert_non_null(s);
  settle_init(s);
  return s;
}

static void test_init(void **state) {
  (void)state;
  settle *s = settle_new();
  assert_false(settle_ends_known(s));
  assert_false(settle_done(s));
  assert_int_equal(settle_waiting_for(s), SETTLE_WAITING_MERGE);
  free(s);
}

static void test_ends_unknown(void **state) {
  (void)state;
  settle *s = settle_new();
  int32_t qs[] = {0};
  merge_state *ms = caught_up_merger(1, qs);
  put_mark(ms, 0, 0, 100, fingerprint);
  assert_int_equal(settle_check(s, ms), 0);
  assert_int_equal(settle_waiting_for(s), SETTLE_WAITING_MERGE);
  int64_t ends[] = {10};
  settle_set_ends(s, 1, ends);
  assert_true(settle_ends_known(s));
  assert_int_equal(settle_check(s, ms), 1);
  merge_free(ms);
  free(s);
}

static void test_merger_not_caught_up(void **state) {
  (void)state;
  settle *s = settle_new();
  int64_t ends[] = {10, 20};
  settle_set_ends(s, 2, ends);
  merge_state *ms = merge_new(fingerprint);
  assert_non_null(ms);
  merge_own(ms, 3);
  put_mark(ms, 3, 0, 10, fingerprint);
  put_mark(ms, 3, 1, 20, fingerprint);
  /* every mark is there, but no assignment yet */
  assert_int_equal(settle_check(s, ms), 0);
  assert_int_equal(settle_waiting_for(s), SETTLE_WAITING_MERGE);
  /* assigned, targets known, behind them */
  merge_set_assigned(ms);
  int32_t qs[] = {3};
  int64_t target[] = {5}, behind[] = {4}, at[] = {5};
  merge_set_targets(ms, 1, qs, target);
  assert_int_equal(merge_check_caught_up(ms, 1, qs, behind), 0);
  assert_int_equal(settle_check(s, ms), 0);
  assert_int_equal(settle_waiting_for(s), SETTLE_WAITING_MERGE);
  assert_int_equal(merge_check_caught_up(ms, 1, qs, at), 1);
  assert_int_equal(settle_check(s, ms), 1);
  assert_int_equal(settle_waiting_for(s), SETTLE_WAITING_NOTHING);
  merge_free(ms);
  free(s);
}

static void test_holding_none(void **state) {
  (void)state;
  settle *s = settle_new();
  int64_t ends[] = {10};
  settle_set_ends(s, 1, ends);
  merge_state *ms = caught_up_merger(0, NULL);
  put_mark(ms, 0, 0, 10, fingerprint); /* read in a partition not held */
  assert_int_equal(settle_check(s, ms), 0);
  assert_int_equal(settle_waiting_for(s), SETTLE_WAITING_PARTIALS);
  merge_free(ms);
  free(s);
}

static void test_missing_mark(void **state) {
  (void)state;
  settle *s = settle_new();
  int64_t ends[] = {10, 20, 30};
  settle_set_ends(s, 3, ends);
  int32_t qs[] = {0, 2};
  merge_state *ms = caught_up_merger(2, qs);
  for (int p = 0; p < 3; p++)
    put_mark(ms, 0, p, ends[p], fingerprint);
  put_mark(ms, 2, 0, ends[0], fingerprint);
  put_mark(ms, 2, 2, ends[2], fingerprint);
  /* q 2 has no mark of input partition 1 */
  assert_int_equal(settle_check(s, ms), 0);
  assert_int_equal(settle_waiting_for(s), 1);
  /* one below the end */
  put_mark(ms, 2, 1, ends[1] - 1, fingerprint);
  assert_int_equal(settle_check(s, ms), 0);
  assert_int_equal(settle_waiting_for(s), 1);
  /* a mark of input partition 1 in a partition not held does not help */
  put_mark(ms, 1, 1, ends[1], fingerprint);
  assert_int_equal(settle_check(s, ms), 0);
  assert_int_equal(settle_waiting_for(s), 1);
  /* at the end */
  put_mark(ms, 2, 1, ends[1], fingerprint);
  assert_int_equal(settle_check(s, ms), 1);
  assert_int_equal(settle_waiting_for(s), SETTLE_WAITING_NOTHING);
  merge_free(ms);
  free(s);
}

static void test_marks_past_end(void **state) {
  (void)state;
  settle *s = settle_new();
  int64_t ends[] = {10, 20};
  settle_set_ends(s, 2, ends);
  int32_t qs[] = {5};
  merge_state *ms = caught_up_merger(1, qs);
  put_mark(ms, 5, 0, 11, fingerprint);
  put_mark(ms, 5, 1, 1ll << 40, fingerprint);
  assert_int_equal(settle_check(s, ms), 1);
  assert_int_equal(settle_waiting_for(s), SETTLE_WAITING_NOTHING);
  merge_free(ms);
  free(s);
}

static void test_partial_after_mark_unsettles(void **state) {
  (void)state;
  settle *s = settle_new();
  int64_t ends[] = {10, 20};
  settle_set_ends(s, 2, ends);
  int32_t qs[] = {0, 1};
  merge_state *ms = caught_up_merger(2, qs);
  for (int32_t q = 0; q < 2; q++)
    for (int p = 0; p < 2; p++)
      put_mark(ms, q, p, ends[p], fingerprint);
  assert_int_equal(settle_check(s, ms), 1);
  put_partial(ms, 1, 1); /* after the last mark of input partition 1 in q 1 */
  assert_int_equal(settle_check(s, ms), 0);
  assert_int_equal(settle_waiting_for(s), 1);
  put_mark(ms, 1, 1, ends[1] + 3, fingerprint);
  assert_int_equal(settle_check(s, ms), 1);
  assert_int_equal(settle_waiting_for(s), SETTLE_WAITING_NOTHING);
  merge_free(ms);
  free(s);
}

static void test_foreign_mark_counts_as_none(void **state) {
  (void)state;
  settle *s = settle_new();
  int64_t ends[] = {10};
  settle_set_ends(s, 1, ends);
  int32_t qs[] = {0};
  merge_state *ms = caught_up_merger(1, qs);
  put_mark(ms, 0, 0, 10, fingerprint);
  assert_int_equal(settle_check(s, ms), 1);
  put_mark(ms, 0, 0, 500, fingerprint ^ 0x8000000000000000ull);
  assert_int_equal(settle_check(s, ms), 0);
  assert_int_equal(settle_waiting_for(s), 0);
  merge_free(ms);
  free(s);
}

/* An empty input partition (end 0) still needs a mark: none is -1 < 0. */
static void test_end_zero_needs_mark(void **state) {
  (void)state;
  settle *s = settle_new();
  int64_t ends[] = {7, 0};
  settle_set_ends(s, 2, ends);
  int32_t qs[] = {4};
  merge_state *ms = caught_up_merger(1, qs);
  put_mark(ms, 4, 0, 7, fingerprint);
  assert_int_equal(settle_check(s, ms), 0);
  assert_int_equal(settle_waiting_for(s), 1);
  put_mark(ms, 4, 1, 0, fingerprint);
  assert_int_equal(settle_check(s, ms), 1);
  assert_int_equal(settle_waiting_for(s), SETTLE_WAITING_NOTHING);
  merge_free(ms);
  free(s);
}

/* The ends are copied: the caller's array may change afterwards. */
static void test_ends_copied(void **state) {
  (void)state;
  settle *s = settle_new();
  int64_t ends[] = {10};
  settle_set_ends(s, 1, ends);
  ends[0] = 1000;
  int32_t qs[] = {0};
  merge_state *ms = caught_up_merger(1, qs);
  put_mark(ms, 0, 0, 10, fingerprint);
  assert_int_equal(settle_check(s, ms), 1);
  merge_free(ms);
  free(s);
}

/* A reset of the merger (a new assignment) un-settles until it has caught
 * up again and re-read the marks. */
static void test_reset_unsettles(void **state) {
  (void)state;
  settle *s = settle_new();
  int64_t ends[] = {10};
  settle_set_ends(s, 1, ends);
  int32_t qs[] = {0};
  merge_state *ms = caught_up_merger(1, qs);
  put_mark(ms, 0, 0, 10, fingerprint);
  assert_int_equal(settle_check(s, ms), 1);
  merge_reset(ms);
  assert_int_equal(settle_check(s, ms), 0);
  assert_int_equal(settle_waiting_for(s), SETTLE_WAITING_MERGE);
  merge_own(ms, 0);
  merge_set_assigned(ms);
  int64_t zero[] = {0};
  merge_set_targets(ms, 1, qs, zero);
  assert_int_equal(merge_check_caught_up(ms, 1, qs, zero), 1);
  assert_int_equal(settle_check(s, ms), 0); /* the mark was forgotten */
  assert_int_equal(settle_waiting_for(s), 0);
  put_mark(ms, 0, 0, 10, fingerprint);
  assert_int_equal(settle_check(s, ms), 1);
  merge_free(ms);
  free(s);
}

static void test_finish_done(void **state) {
  (void)state;
  settle *s = settle_new();
  int64_t ends[] = {1};
  settle_set_ends(s, 1, ends);
  int32_t qs[] = {0};
  merge_state *ms = caught_up_merger(1, qs);
  put_mark(ms, 0, 0, 1, fingerprint);
  assert_false(settle_done(s));
  assert_int_equal(settle_check(s, ms), 1);
  assert_false(settle_done(s)); /* settled is not done: the totals go out first */
  settle_finish(s);
  assert_true(settle_done(s));
  merge_free(ms);
  free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_init),
      cmocka_unit_test(test_ends_unknown),
      cmocka_unit_test(test_merger_not_caught_up),
      cmocka_unit_test(test_holding_none),
      cmocka_unit_test(test_missing_mark),
      cmocka_unit_test(test_marks_past_end),
      cmocka_unit_test(test_partial_after_mark_unsettles),
      cmocka_unit_test(test_foreign_mark_counts_as_none),
      cmocka_unit_test(test_end_zero_needs_mark),
      cmocka_unit_test(test_ends_copied),
      cmocka_unit_test(test_reset_unsettles),
      cmocka_unit_test(test_finish_done),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
