/* test_app_kafka_gap.c — whether an input message or end-of-partition event
 * follows what the shard applied (processor/kafka/gap.c), no broker:
 * messages in order are taken; one past the next expected offset is a gap,
 * said once, and its first message is taken when it comes again right
 * after the re-read (the log's own gap); an end past the next expected
 * offset is a gap too (librdkafka 2.0 dropped the tail of a kept partition:
 * the case that left a two-instance --exit-at-eof run rows off), taken
 * when it comes again with nothing before it (transaction markers at the
 * end); an end while a gap is still to be read is not the end; a message
 * below the gap an end showed is a gap of its own, so no re-read repeats
 * forever; a partition without a snapshot expects offset 0 first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kafka/gap.h"

static void test_in_order(void **state) {
  (void)state;
  int64_t gap_at = 0;
  assert_int_equal(gap_check(0, &gap_at, 0, 0), GAP_TAKE);
  assert_int_equal(gap_check(41, &gap_at, 41, 0), GAP_TAKE);
  assert_int_equal(gap_check(100, &gap_at, 100, 1), GAP_TAKE); /* the end, all applied */
  assert_int_equal(gap_check(100, &gap_at, 90, 1), GAP_TAKE);  /* an older end */
  assert_int_equal(gap_at, 0);
}

static void test_message_gap(void **state) {
  (void)state;
  int64_t gap_at = 0;
  /* 14300 expected, 14400 delivered: read again, said once */
  assert_int_equal(gap_check(14300, &gap_at, 14400, 0), GAP_NEW);
  assert_int_equal(gap_at, 14400);
  assert_int_equal(gap_check(14300, &gap_at, 14401, 0), GAP_READ_AGAIN);
  /* the end in the same batch is not the end */
  assert_int_equal(gap_check(14300, &gap_at, 18054, 1), GAP_READ_AGAIN);
  assert_int_equal(gap_at, 14400);
  /* read again: the missing messages come, then the one after */
  assert_int_equal(gap_check(14300, &gap_at, 14300, 0), GAP_TAKE);
  assert_int_equal(gap_check(14400, &gap_at, 14400, 0), GAP_TAKE);
  /* a later gap is new again */
  assert_int_equal(gap_check(15000, &gap_at, 15002, 0), GAP_NEW);
}

static void test_log_own_gap(void **state) {
  (void)state;
  int64_t gap_at = 0;
  /* a transaction marker at 7: 8 comes after 6, also after the re-read */
  assert_int_equal(gap_check(7, &gap_at, 8, 0), GAP_NEW);
  assert_int_equal(gap_check(7, &gap_at, 8, 0), GAP_TAKE);
  assert_int_equal(gap_check(9, &gap_at, 9, 0), GAP_TAKE);
}

static void test_end_past_applied(void **state) {
  (void)state;
  int64_t gap_at = 0;
  /* applied to 17600, the end is 18054 and nothing came between */
  assert_int_equal(gap_check(17600, &gap_at, 18054, 1), GAP_NEW);
  assert_int_equal(gap_at, 18054);
  /* seen again right after the re-read: nothing before it (the log's own) */
  assert_int_equal(gap_check(17600, &gap_at, 18054, 1), GAP_TAKE);
  gap_at = 0;
  assert_int_equal(gap_check(17600, &gap_at, 18054, 1), GAP_NEW);
  /* or read again: the messages come, then the end */
  assert_int_equal(gap_check(17600, &gap_at, 17600, 0), GAP_TAKE);
  assert_int_equal(gap_check(18054, &gap_at, 18054, 1), GAP_TAKE);
}

static void test_end_then_lower_gap(void **state) {
  (void)state;
  int64_t gap_at = 0;
  /* the end showed a gap; the re-read's first message is past expect too
   * (the log's own gap below the end): a gap of its own, then taken */
  assert_int_equal(gap_check(50, &gap_at, 80, 1), GAP_NEW);
  assert_int_equal(gap_check(50, &gap_at, 51, 0), GAP_NEW);
  assert_int_equal(gap_at, 51);
  assert_int_equal(gap_check(50, &gap_at, 51, 0), GAP_TAKE);
  assert_int_equal(gap_check(52, &gap_at, 52, 0), GAP_TAKE);
  assert_int_equal(gap_check(80, &gap_at, 80, 1), GAP_TAKE);
}

static void test_first_message(void **state) {
  (void)state;
  /* no snapshot: the partition starts at 0 (its first messages dropped) */
  int64_t gap_at = 0;
  assert_int_equal(gap_check(0, &gap_at, 200, 0), GAP_NEW);
  assert_int_equal(gap_check(0, &gap_at, 0, 0), GAP_TAKE);
  /* an empty partition: its end is 0 */
  gap_at = 0;
  assert_int_equal(gap_check(0, &gap_at, 0, 1), GAP_TAKE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_in_order),           cmocka_unit_test(test_message_gap),
      cmocka_unit_test(test_log_own_gap),        cmocka_unit_test(test_end_past_applied),
      cmocka_unit_test(test_end_then_lower_gap), cmocka_unit_test(test_first_message),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
