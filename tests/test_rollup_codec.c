/* test_rollup_codec.c — the Rollup row codec (processor/avro/rollup_codec.c)
 * against Avro C 1.11.1's generic API: for random rows (edge values
 * included) our encoding must equal avro_value_write's byte for byte, Avro C
 * must read our bytes back to the same values, and our strict decoder must
 * round-trip them and reject every truncation, trailing bytes, over-long
 * varints, out-of-range ints and enum indexes. Also the message key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <avro.h>

#include "avro/rollup_codec.h"

static uint64_t rng_state = 42;
static uint64_t rng_next(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* A value biased towards varint length boundaries and extremes. */
static int64_t rng_long(void) {
  static const int64_t edges[] = {0,         1,         -1,        63,        64,     -64,
                                  -65,       127,       128,       8191,      8192,   4294967295,
                                  INT64_MAX, INT64_MIN, INT32_MAX, INT32_MIN, 1000000};
  switch (rng_next() % 4) {
  case 0:
    return edges[rng_next() % (sizeof edges / sizeof edges[0])];
  case 1:
    return (int64_t)(rng_next() % 100000);
  case 2:
    return (int64_t)(rng_next() >> (rng_next() % 64));
  default:
    return (int64_t)rng_next();
  }
}

static void random_msg(rollup_msg *m) {
  m->period = (int32_t)rng_long();
  m->municipality = (int32_t)rng_long();
  if (rng_next() % 2) {
    m->period = 199001 + (int32_t)(rng_next() % 1000);
    m->municipality = 101 + (int32_t)(rng_next() % 800);
  }
  m->visitation = (visitation)(rng_next() % VISITATION_COUNT);
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    m->counts[c] = rng_long();
}

static avro_schema_t rollup_schema(void) {
  avro_schema_t schema;
  assert_int_equal(
      avro_schema_from_json_length(rollup_schema_json, strlen(rollup_schema_json), &schema), 0);
  return schema;
}

/* Avro C's encoding of m. */
static size_t avro_c_encode(avro_value_iface_t *iface, const rollup_msg *m, uint8_t *buf,
                            size_t cap) {
  avro_value_t rec, field;
  assert_int_equal(avro_generic_value_new(iface, &rec), 0);
  assert_int_equal(avro_value_get_by_name(&rec, "period", &field, NULL), 0);
  assert_int_equal(avro_value_set_int(&field, m->period), 0);
  assert_int_equal(avro_value_get_by_name(&rec, "municipality", &field, NULL), 0);
  assert_int_equal(avro_value_set_int(&field, m->municipality), 0);
  assert_int_equal(avro_value_get_by_name(&rec, "visitation", &field, NULL), 0);
  assert_int_equal(avro_value_set_enum(&field, (int)m->visitation), 0);
  for (int c = 0; c < ROLLUP_COLUMNS; c++) {
    assert_int_equal(avro_value_get_by_name(&rec, rollup_column_names[c], &field, NULL), 0);
    assert_int_equal(avro_value_set_long(&field, m->counts[c]), 0);
  }
  avro_writer_t w = avro_writer_memory((char *)buf, (int64_t)cap);
  assert_int_equal(avro_value_write(w, &rec), 0);
  size_t n = (size_t)avro_writer_tell(w);
  avro_writer_free(w);
  avro_value_decref(&rec);
  return n;
}

/* Avro C reads bytes back into a rollup_msg. */
static void avro_c_decode(avro_value_iface_t *iface, const uint8_t *buf, size_t len,
                          rollup_msg *m) {
  avro_value_t rec, field;
  assert_int_equal(avro_generic_value_new(iface, &rec), 0);
  avro_reader_t r = avro_reader_memory((const char *)buf, (int64_t)len);
  assert_int_equal(avro_value_read(r, &rec), 0);
  avro_reader_free(r);
  int v = 0;
  assert_int_equal(avro_value_get_by_name(&rec, "period", &field, NULL), 0);
  assert_int_equal(avro_value_get_int(&field, &m->period), 0);
  assert_int_equal(avro_value_get_by_name(&rec, "municipality", &field, NULL), 0);
  assert_int_equal(avro_value_get_int(&field, &m->municipality), 0);
  assert_int_equal(avro_value_get_by_name(&rec, "visitation", &field, NULL), 0);
  assert_int_equal(avro_value_get_enum(&field, &v), 0);
  m->visitation = (visitation)v;
  for (int c = 0; c < ROLLUP_COLUMNS; c++) {
    assert_int_equal(avro_value_get_by_name(&rec, rollup_column_names[c], &field, NULL), 0);
    assert_int_equal(avro_value_get_long(&field, &m->counts[c]), 0);
  }
  avro_value_decref(&rec);
}

static void assert_msg_equal(const rollup_msg *a, const rollup_msg *b) {
  assert_int_equal(a->period, b->period);
  assert_int_equal(a->municipality, b->municipality);
  assert_int_equal(a->visitation, b->visitation);
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    assert_true(a->counts[c] == b->counts[c]);
}

static void test_encode_matches_avro_c(void **state) {
  (void)state;
  avro_schema_t schema = rollup_schema();
  avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
  assert_non_null(iface);
  for (int i = 0; i < 20000; i++) {
    rollup_msg m, back, theirs;
    random_msg(&m);
    uint8_t ours[ROLLUP_ENCODED_MAX], ref[1024];
    size_t n = rollup_codec_encode(&m, ours);
    assert_true(n <= ROLLUP_ENCODED_MAX);
    size_t rn = avro_c_encode(iface, &m, ref, sizeof ref);
    assert_int_equal(n, rn);
    assert_memory_equal(ours, ref, n);
    avro_c_decode(iface, ours, n, &theirs);
    assert_msg_equal(&m, &theirs);
    memset(&back, 0, sizeof back);
    assert_int_equal(rollup_codec_decode(ours, n, &back), 0);
    assert_msg_equal(&m, &back);
    /* every truncation and any trailing byte is rejected */
    for (size_t cut = 0; cut < n; cut++)
      assert_int_equal(rollup_codec_decode(ours, cut, &back), -1);
    ours[n] = 0;
    assert_int_equal(rollup_codec_decode(ours, n + 1, &back), -1);
  }
  avro_value_iface_decref(iface);
  avro_schema_decref(schema);
}

static void test_encode_row_view(void **state) {
  (void)state;
  uint32_t counts[ROLLUP_COLUMNS];
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    counts[c] = c == 3 ? UINT32_MAX : (uint32_t)(c * 1000);
  rollup_row_view row = {202302, 751, VISITATION_AKTIVITETSPARAT, counts};
  uint8_t buf[ROLLUP_ENCODED_MAX];
  size_t n = rollup_codec_encode_row(&row, buf);
  rollup_msg m;
  assert_int_equal(rollup_codec_decode(buf, n, &m), 0);
  assert_int_equal(m.period, 202302);
  assert_int_equal(m.municipality, 751);
  assert_int_equal(m.visitation, VISITATION_AKTIVITETSPARAT);
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    assert_true(m.counts[c] == (int64_t)counts[c]);
}

static void test_decode_rejects_malformed(void **state) {
  (void)state;
  rollup_msg m = {0}, out;
  uint8_t buf[ROLLUP_ENCODED_MAX + 16];
  size_t n = rollup_codec_encode(&m, buf); /* all zeros: 28 bytes of 0x00 */
  assert_int_equal(n, 28);
  assert_int_equal(rollup_codec_decode(buf, n, &out), 0);
  assert_int_equal(rollup_codec_decode(NULL, 0, &out), -1);
  /* enum index 6 and -1 */
  buf[2] = 12;
  assert_int_equal(rollup_codec_decode(buf, n, &out), -1);
  buf[2] = 1;
  assert_int_equal(rollup_codec_decode(buf, n, &out), -1);
  buf[2] = 10; /* 5 = OEVRIG */
  assert_int_equal(rollup_codec_decode(buf, n, &out), 0);
  assert_int_equal(out.visitation, VISITATION_OEVRIG);
  /* period out of int range: zigzag 2^32 needs 5 bytes */
  uint8_t big[64] = {0x80, 0x80, 0x80, 0x80, 0x20};
  memset(big + 5, 0, sizeof big - 5);
  assert_int_equal(rollup_codec_decode(big, 5 + 27, &out), -1);
  /* an 11-byte varint and a 10-byte one with high bits in its last byte */
  uint8_t longv[64];
  memset(longv, 0, sizeof longv);
  memset(longv + 3, 0x80, 10);
  longv[13] = 0x00;
  assert_int_equal(rollup_codec_decode(longv, 3 + 11 + 24, &out), -1);
  memset(longv, 0, sizeof longv);
  memset(longv + 3, 0xff, 9);
  longv[12] = 0x02;
  assert_int_equal(rollup_codec_decode(longv, 3 + 10 + 24, &out), -1);
  longv[12] = 0x01; /* largest 64-bit zigzag: INT64_MIN */
  assert_int_equal(rollup_codec_decode(longv, 3 + 10 + 24, &out), 0);
  assert_true(out.counts[0] == INT64_MIN);
}

static void test_key(void **state) {
  (void)state;
  char key[ROLLUP_KEY_MAX];
  size_t n = rollup_key_format(202302, 751, VISITATION_AKTIVITETSPARAT, key);
  assert_string_equal(key, "202302,751,AKTIVITETSPARAT");
  assert_int_equal(n, strlen(key));
  int32_t p, mu;
  visitation v;
  assert_int_equal(rollup_key_parse(key, n, &p, &mu, &v), 0);
  assert_int_equal(p, 202302);
  assert_int_equal(mu, 751);
  assert_int_equal(v, VISITATION_AKTIVITETSPARAT);
  for (int s = 0; s < VISITATION_COUNT; s++) {
    n = rollup_key_format(199001, 101, (visitation)s, key);
    assert_int_equal(rollup_key_parse(key, n, &p, &mu, &v), 0);
    assert_int_equal(v, s);
  }
  static const char *const bad[] = {"",
                                    "202302",
                                    "202302,751",
                                    "202302,751,",
                                    "202302,751,aktivitetsparat",
                                    "202302,751,AKTIVITETSPARATX",
                                    "-202302,751,JOBPARAT",
                                    "+202302,751,JOBPARAT",
                                    "202302,,JOBPARAT",
                                    ",751,JOBPARAT",
                                    "202302;751;JOBPARAT",
                                    "99999999999,751,JOBPARAT",
                                    "202302, 751,JOBPARAT"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(rollup_key_parse(bad[i], strlen(bad[i]), &p, &mu, &v), -1);
  /* exactly len bytes: a prefix of a valid key is not that key */
  assert_int_equal(rollup_key_parse("202302,751,JOBPARAT", 18, &p, &mu, &v), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_encode_matches_avro_c),
      cmocka_unit_test(test_encode_row_view),
      cmocka_unit_test(test_decode_rejects_malformed),
      cmocka_unit_test(test_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
