/* test_app_kafka_wire.c — the Kafka mode's partials-topic formats
 * (processor/kafka/wire.c), no broker: partial-row keys "ROW@P" and
 * progress-mark keys "@P" round trip and every malformed key is rejected,
 * mark values are 16 big-endian bytes (offset, fingerprint) and refuse a wrong
 * length, and the row partition is in range, deterministic, independent of
 * the input partition and spread over the partitions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/municipality.h"
#include "core/period.h"
#include "kafka/merge.h"
#include "kafka/wire.h"

static wire_kind parse_str(const char *key, int32_t *p, int32_t *period, int32_t *mu,
                           visitation *v) {
  return wire_parse_key(key, strlen(key), p, period, mu, v);
}

static void test_partial_key_format(void **state) {
  (void)state;
  char key[WIRE_PARTIAL_KEY_MAX];
  size_t n = wire_partial_key(202302, 101, VISITATION_JOBPARAT, 7, key);
  assert_string_equal(key, "202302,101,JOBPARAT@7");
  assert_int_equal(n, strlen(key));
  /* the longest: largest period, a long symbol, the largest partition */
  n = wire_partial_key(209912, 860, VISITATION_UDDANNELSESPARAT, WIRE_MAX_INPUTS - 1, key);
  assert_string_equal(key, "209912,860,UDDANNELSESPARAT@4095");
  assert_int_equal(n, strlen(key));
}

static void test_partial_key_round_trip(void **state) {
  (void)state;
  static const int32_t periods[] = {PERIOD_FIRST, 202302, 202312, PERIOD_LAST};
  static const int32_t munis[] = {101, 147, 751, 860};
  static const int32_t parts[] = {0, 1, 9, 10, 999, WIRE_MAX_INPUTS - 1};
  char key[WIRE_PARTIAL_KEY_MAX];
  for (size_t a = 0; a < sizeof periods / sizeof periods[0]; a++)
    for (size_t b = 0; b < sizeof munis / sizeof munis[0]; b++)
      for (int s = 0; s < VISITATION_COUNT; s++)
        for (size_t c = 0; c < sizeof parts / sizeof parts[0]; c++) {
          size_t n = wire_partial_key(periods[a], munis[b], (visitation)s, parts[c], key);
          int32_t p = -7, period = -7, mu = -7;
          visitation v = VISITATION_COUNT;
          assert_int_equal(wire_parse_key(key, n, &p, &period, &mu, &v), WIRE_PARTIAL);
          assert_int_equal(p, parts[c]);
          assert_int_equal(period, periods[a]);
          assert_int_equal(mu, munis[b]);
          assert_int_equal(v, s);
        }
}

static void test_mark_key_round_trip(void **state) {
  (void)state;
  static const int32_t parts[] = {0, 1, 10, 4000, WIRE_MAX_INPUTS - 1};
  char key[WIRE_MARK_KEY_MAX];
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    size_t n = wire_mark_key(parts[i], key);
    char expect[WIRE_MARK_KEY_MAX];
    snprintf(expect, sizeof expect, "@%d", (int)parts[i]);
    assert_string_equal(key, expect);
    assert_int_equal(n, strlen(key));
    int32_t p = -7, period, mu;
    visitation v;
    assert_int_equal(wire_parse_key(key, n, &p, &period, &mu, &v), WIRE_MARK);
    assert_int_equal(p, parts[i]);
  }
}

/* The key is exactly len bytes: no NUL needed, bytes after len ignored. */
static void test_parse_key_uses_len(void **state) {
  (void)state;
  int32_t p = -7, period, mu;
  visitation v;
  assert_int_equal(wire_parse_key("@4095", 3, &p, &period, &mu, &v), WIRE_MARK);
  assert_int_equal(p, 40);
  const char buf[] = {'@', '1', '2'}; /* not NUL-terminated */
  assert_int_equal(wire_parse_key(buf, sizeof buf, &p, &period, &mu, &v), WIRE_MARK);
  assert_int_equal(p, 12);
  const char *row = "202302,147,OEVRIG@3xyz";
  assert_int_equal(wire_parse_key(row, strlen(row) - 3, &p, &period, &mu, &v), WIRE_PARTIAL);
  assert_int_equal(p, 3);
  assert_int_equal(mu, 147);
  assert_int_equal(v, VISITATION_OEVRIG);
  /* '@' beyond len is not seen */
  assert_int_equal(wire_parse_key("@1", 0, &p, &period, &mu, &v), WIRE_BAD);
  assert_int_equal(wire_parse_key(row, 17, &p, &period, &mu, &v), WIRE_BAD);
  /* documented bounds: 1 to 15 digits */
  assert_int_equal(parse_str("@000000000000001", &p, &period, &mu, &v), WIRE_MARK);
  assert_int_equal(p, 1);
  assert_int_equal(parse_str("@0000000000000001", &p, &period, &mu, &v), WIRE_BAD);
}

static void test_parse_key_rejects(void **state) {
  (void)state;
  static const char *const bad[] = {
      "",
      "202302,101,JOBPARAT",     /* no '@' */
      "4",                       /* no '@' */
      "@",                       /* empty digits */
      "202302,101,JOBPARAT@",    /* empty digits */
      "@1a",                     /* non-digits */
      "@a1",                     /* non-digits */
      "@-1",                     /* sign */
      "@+1",                     /* sign */
      "@ 1",                     /* space */
      "@1 ",                     /* trailing space */
      "@1@2",                    /* a second '@' */
      "202302,101,JOBPARAT@1@2", /* a second '@' */
      "@4096",                   /* P >= WIRE_MAX_INPUTS */
      "@99999",
      "@99999999999999999999",
      "202302,101,JOBPARAT@4096",
      "202313,101,JOBPARAT@1", /* invalid periods */
      "202300,101,JOBPARAT@1",
      "198912,101,JOBPARAT@1",
      "210001,101,JOBPARAT@1",
      "2023,101,JOBPARAT@1",
      "202302,102,JOBPARAT@1", /* non-official municipality codes */
      "202302,0,JOBPARAT@1",
      "202302,100,JOBPARAT@1",
      "202302,861,JOBPARAT@1",
      "202302,999,JOBPARAT@1",
      "x@1", /* garbage before '@' */
      " @1",
      "202302,101@1",
      "202302,101,@1",
      "202302,101,jobparat@1",
      "202302,101,JOBPARAT @1",
      "202302,101,JOBPARATX@1",
      "+202302,101,JOBPARAT@1",
      "202302,101,JOBPARAT,@1",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int32_t p, period, mu;
    visitation v;
    if (parse_str(bad[i], &p, &period, &mu, &v) != WIRE_BAD)
      fail_msg("accepted key \"%s\"", bad[i]);
  }
  int32_t p, period, mu;
  visitation v;
  assert_int_equal(wire_parse_key(NULL, 0, &p, &period, &mu, &v), WIRE_BAD);
  /* every official code is accepted, its neighbours that are not official are not */
  char key[WIRE_PARTIAL_KEY_MAX];
  for (int32_t code = 0; code < 1000; code++) {
    snprintf(key, sizeof key, "202302,%d,JOBPARAT@0", (int)code);
    wire_kind want = municipality_index(code) >= 0 ? WIRE_PARTIAL : WIRE_BAD;
    assert_int_equal(parse_str(key, &p, &period, &mu, &v), want);
  }
  assert_true(municipality_index(101) >= 0 && municipality_index(147) >= 0);
}

static void test_mark_value_round_trip(void **state) {
  (void)state;
  static const int64_t offsets[] = {
      0, 1, 255, 256, 65535, INT32_MAX, 1ll << 32, (1ll << 40) + 12345, INT64_MAX - 1, INT64_MAX};
  static const uint64_t fps[] = {
      0, 1, 0x7fffffffffffffffull, 0x8000000000000000ull, 0xdeadbeefcafebabeull, UINT64_MAX};
  for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++)
    for (size_t j = 0; j < sizeof fps / sizeof fps[0]; j++) {
      uint8_t buf[WIRE_MARK_BYTES];
      wire_mark_value(offsets[i], fps[j], buf);
      int64_t covered = -7;
      uint64_t fp = 7;
      assert_int_equal(wire_mark_decode(buf, sizeof buf, &covered, &fp), 0);
      assert_true(covered == offsets[i]);
      assert_true(fp == fps[j]);
    }
}

static void test_mark_value_bytes(void **state) {
  (void)state;
  uint8_t buf[WIRE_MARK_BYTES];
  wire_mark_value(0x0102030405060708ll, 0x8899aabbccddeeffull, buf);
  static const uint8_t want[WIRE_MARK_BYTES] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                                0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
  assert_memory_equal(buf, want, sizeof want);
  wire_mark_value(300, 1, buf);
  static const uint8_t small[WIRE_MARK_BYTES] = {0, 0, 0, 0, 0, 0, 0x01, 0x2c,
                                                 0, 0, 0, 0, 0, 0, 0,    0x01};
  assert_memory_equal(buf, small, sizeof small);
}

static void test_mark_decode_wrong_length(void **state) {
  (void)state;
  uint8_t buf[WIRE_MARK_BYTES + 1];
  wire_mark_value(42, 99, buf);
  buf[WIRE_MARK_BYTES] = 0;
  int64_t covered = -7;
  uint64_t fp = 7;
  for (size_t len = 0; len <= WIRE_MARK_BYTES + 1; len++) {
    if (len == WIRE_MARK_BYTES)
      continue;
    assert_int_equal(wire_mark_decode(buf, len, &covered, &fp), -1);
  }
  assert_int_equal(wire_mark_decode(NULL, 0, &covered, &fp), -1);
  assert_int_equal(wire_mark_decode(NULL, WIRE_MARK_BYTES, &covered, &fp), -1);
  assert_int_equal(wire_mark_decode(buf, WIRE_MARK_BYTES, &covered, &fp), 0);
  assert_int_equal(covered, 42);
  assert_int_equal(fp, 99);
}

static void test_row_partition_in_range(void **state) {
  (void)state;
  static const int counts[] = {1, 2, 3, 7, 12, 64, MERGE_MAX_PARTIALS};
  for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
    for (int m = 0; m < PERIOD_MONTHS; m += 37)
      for (int mi = 0; mi < MUNICIPALITY_COUNT; mi++)
        for (int s = 0; s < VISITATION_COUNT; s++) {
          int32_t q = wire_row_partition(period_from_month(m), municipality_codes[mi],
                                         (visitation)s, counts[i]);
          assert_true(q >= 0 && q < counts[i]);
          if (counts[i] == 1)
            assert_int_equal(q, 0);
        }
}

/* The same row, whichever input partition's key it came in, goes to one
 * partials partition, and the same on every call. */
static void test_row_partition_same_row(void **state) {
  (void)state;
  char key[WIRE_PARTIAL_KEY_MAX];
  for (int mi = 0; mi < MUNICIPALITY_COUNT; mi += 7)
    for (int s = 0; s < VISITATION_COUNT; s++) {
      int32_t first = -1;
      for (int32_t p = 0; p < WIRE_MAX_INPUTS; p += 97) {
        size_t n = wire_partial_key(202302, municipality_codes[mi], (visitation)s, p, key);
        int32_t ip, period, mu;
        visitation v;
        assert_int_equal(wire_parse_key(key, n, &ip, &period, &mu, &v), WIRE_PARTIAL);
        int32_t q = wire_row_partition(period, mu, v, 12);
        if (first < 0)
          first = q;
        assert_int_equal(q, first);
        assert_int_equal(wire_row_partition(202302, municipality_codes[mi], (visitation)s, 12), q);
      }
    }
}

/* Many rows spread over the partitions: none empty, none far from the mean. */
static void test_row_partition_spread(void **state) {
  (void)state;
  static const int counts[] = {2, 3, 8, 12, 32};
  for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
    int n = counts[i];
    long hits[32] = {0}, rows = 0;
    for (int m = 0; m < 24; m++)
      for (int mi = 0; mi < MUNICIPALITY_COUNT; mi++)
        for (int s = 0; s < VISITATION_COUNT; s++) {
          hits[wire_row_partition(period_from_month(m + 396), municipality_codes[mi], (visitation)s,
                                  n)]++;
          rows++;
        }
    double mean = (double)rows / n;
    for (int q = 0; q < n; q++)
      if (hits[q] < 0.8 * mean || hits[q] > 1.2 * mean)
        fail_msg("partitions %d: partition %d has %ld of %ld rows", n, q, hits[q], rows);
  }
  /* rows of one month and visitation, differing only in municipality, do
   * not all land together (nor do those differing only in visitation) */
  int seen[12] = {0}, distinct = 0;
  for (int mi = 0; mi < MUNICIPALITY_COUNT; mi++) {
    int32_t q = wire_row_partition(202302, municipality_codes[mi], VISITATION_JOBPARAT, 12);
    distinct += !seen[q]++;
  }
  assert_true(distinct >= 10);
  memset(seen, 0, sizeof seen);
  distinct = 0;
  for (int s = 0; s < VISITATION_COUNT; s++) {
    int32_t q = wire_row_partition(202302, 101, (visitation)s, 12);
    distinct += !seen[q]++;
  }
  assert_true(distinct >= 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_partial_key_format),
      cmocka_unit_test(test_partial_key_round_trip),
      cmocka_unit_test(test_mark_key_round_trip),
      cmocka_unit_test(test_parse_key_uses_len),
      cmocka_unit_test(test_parse_key_rejects),
      cmocka_unit_test(test_mark_value_round_trip),
      cmocka_unit_test(test_mark_value_bytes),
      cmocka_unit_test(test_mark_decode_wrong_length),
      cmocka_unit_test(test_row_partition_in_range),
      cmocka_unit_test(test_row_partition_same_row),
      cmocka_unit_test(test_row_partition_spread),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
