/* bench_decode.c — decoder benchmark (not a test): ns/record of pm_decode on
 * the identity plan's fast path, of the plan interpreter on an evolved writer
 * schema (the reader schema plus a trailing string field), and of Avro C
 * 1.11.1's generic resolving reader (avro_resolved_writer + avro_value_read,
 * fields copied out into a pm_record), on N records (default 10 M) encoded
 * back to back in memory. Usage: bench-decode [N] */
#include <avro.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "avro/decode.h"

static uint64_t bench_rng = 12345;
static uint64_t bench_next(void) {
  uint64_t z = (bench_rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static pm_record bench_record(void) {
  pm_record r;
  memset(&r, 0, sizeof r);
  r.person_id = (int64_t)(bench_next() % 6000000) + 1;
  r.period = 200001 + (int32_t)(bench_next() % 20) * 100 + (int32_t)(bench_next() % 12);
  r.municipality = 101 + (int32_t)(bench_next() % 760);
  r.paid_hours = (float)(bench_next() % 2977) / 4.0f;
  r.visitation = (uint8_t)(bench_next() % VISITATION_COUNT);
  r.benefit = (uint8_t)(bench_next() % BENEFIT_COUNT);
  r.flags = (uint8_t)(bench_next() % 64);
  return r;
}

/* Decode all of [buf, buf+len) with plan; best of 3 runs, ns/record. */
static double bench_ours(const pm_plan *plan, const uint8_t *buf, size_t len, long n,
                         uint64_t *check) {
  double best = 1e30;
  for (int run = 0; run < 3; run++) {
    const uint8_t *p = buf, *end = buf + len;
    uint64_t sum = 0;
    long got = 0;
    double t0 = bench_now();
    pm_record r;
    while (p < end) {
      if (pm_decode(plan, &p, end, &r) != 0) {
        fprintf(stderr, "decode error at record %ld\n", got);
        exit(1);
      }
      sum += (uint64_t)r.person_id + (uint64_t)r.period + r.visitation + r.flags;
      got++;
    }
    double t = bench_now() - t0;
    if (got != n) {
      fprintf(stderr, "decoded %ld of %ld records\n", got, n);
      exit(1);
    }
    *check = sum;
    if (t < best)
      best = t;
  }
  return best * 1e9 / (double)n;
}

static double bench_avro_c(const uint8_t *buf, size_t len, long n, uint64_t *check) {
  avro_schema_t s;
  if (avro_schema_from_json_length(pm_reader_schema_json, strlen(pm_reader_schema_json), &s)) {
    fprintf(stderr, "%s\n", avro_strerror());
    exit(1);
  }
  avro_value_iface_t *resolver = avro_resolved_writer_new(s, s);
  avro_value_iface_t *cls = avro_generic_class_from_schema(s);
  avro_value_t dest, resolved;
  avro_generic_value_new(cls, &dest);
  avro_resolved_writer_new_value(resolver, &resolved);
  avro_resolved_writer_set_dest(&resolved, &dest);
  avro_reader_t mem = avro_reader_memory((const char *)buf, (int64_t)len);
  uint64_t sum = 0;
  double t0 = bench_now();
  for (long i = 0; i < n; i++) {
    if (avro_value_read(mem, &resolved) != 0) {
      fprintf(stderr, "Avro C: %s\n", avro_strerror());
      exit(1);
    }
    pm_record r;
    memset(&r, 0, sizeof r);
    avro_value_t f;
    int e = 0, b = 0;
    avro_value_get_by_index(&dest, 0, &f, NULL);
    avro_value_get_long(&f, &r.person_id);
    avro_value_get_by_index(&dest, 1, &f, NULL);
    avro_value_get_int(&f, &r.period);
    avro_value_get_by_index(&dest, 2, &f, NULL);
    avro_value_get_int(&f, &r.municipality);
    avro_value_get_by_index(&dest, 3, &f, NULL);
    avro_value_get_enum(&f, &e);
    r.visitation = (uint8_t)e;
    avro_value_get_by_index(&dest, 5, &f, NULL);
    avro_value_get_float(&f, &r.paid_hours);
    avro_value_get_by_index(&dest, 11, &f, NULL);
    avro_value_get_enum(&f, &e);
    r.benefit = (uint8_t)e;
    static const int bools[6] = {4, 6, 7, 8, 9, 10};
    for (int k = 0; k < 6; k++) {
      avro_value_get_by_index(&dest, (size_t)bools[k], &f, NULL);
      avro_value_get_boolean(&f, &b);
      r.flags |= (uint8_t)((b != 0) << k);
    }
    sum += (uint64_t)r.person_id + (uint64_t)r.period + r.visitation + r.flags;
  }
  double t = bench_now() - t0;
  *check = sum;
  avro_reader_free(mem);
  avro_value_decref(&resolved);
  avro_value_decref(&dest);
  avro_value_iface_decref(resolver);
  avro_value_iface_decref(cls);
  avro_schema_decref(s);
  return t * 1e9 / (double)n;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 10000000;
  if (n <= 0) {
    fprintf(stderr, "usage: bench-decode [records]\n");
    return 2;
  }
  /* the same records, encoded with the reader schema and with an evolved
   * writer schema (reader fields + a trailing string "source") */
  uint8_t *plain = malloc((size_t)n * PM_ENCODED_MAX);
  uint8_t *evolved = malloc((size_t)n * (PM_ENCODED_MAX + 8));
  if (!plain || !evolved) {
    fprintf(stderr, "out of memory\n");
    return 1;
  }
  size_t plain_len = 0, evolved_len = 0;
  for (long i = 0; i < n; i++) {
    pm_record r = bench_record();
    plain_len += pm_encode(&r, plain + plain_len);
    evolved_len += pm_encode(&r, evolved + evolved_len);
    evolved[evolved_len++] = 6; /* string of 3 bytes */
    memcpy(evolved + evolved_len, "dwh", 3);
    evolved_len += 3;
  }
  static const char evolved_schema[] =
      "{\"type\":\"record\",\"name\":\"PersonMonth\",\"namespace\":\"regstream\",\"fields\":["
      "{\"name\":\"person_id\",\"type\":\"long\"},{\"name\":\"period\",\"type\":\"int\"},"
      "{\"name\":\"municipality\",\"type\":\"int\"},"
      "{\"name\":\"visitation\",\"type\":{\"type\":\"enum\",\"name\":\"Visitation\","
      "\"symbols\":[\"UNKNOWN\",\"JOBPARAT\",\"AKTIVITETSPARAT\",\"UDDANNELSESPARAT\","
      "\"SELVFORSOERGENDE\",\"OEVRIG\"]}},"
      "{\"name\":\"enrolled\",\"type\":\"boolean\"},{\"name\":\"paid_hours\",\"type\":\"float\"},"
      "{\"name\":\"education\",\"type\":\"boolean\"},{\"name\":\"internship\",\"type\":\"boolean\"}"
      ","
      "{\"name\":\"wage_subsidy\",\"type\":\"boolean\"},{\"name\":\"flexjob\",\"type\":\"boolean\"}"
      ","
      "{\"name\":\"disability_pension\",\"type\":\"boolean\"},"
      "{\"name\":\"benefit\",\"type\":{\"type\":\"enum\",\"name\":\"Benefit\",\"symbols\":["
      "\"NONE\",\"KONTANTHJAELP\",\"INTEGRATIONSYDELSE\",\"UDDANNELSESHJAELP\","
      "\"RESSOURCEFORLOEB\",\"SYGEDAGPENGE\",\"LEDIGHEDSYDELSE\",\"DAGPENGE\",\"OTHER\"]}},"
      "{\"name\":\"source\",\"type\":\"string\"}]}";
  char err[256];
  pm_plan *identity =
      pm_plan_from_json(pm_reader_schema_json, strlen(pm_reader_schema_json), err, sizeof err);
  pm_plan *interp = pm_plan_from_json(evolved_schema, strlen(evolved_schema), err, sizeof err);
  if (!identity || !interp || !pm_plan_is_identity(identity) || pm_plan_is_identity(interp)) {
    fprintf(stderr, "plans: %s\n", err);
    return 1;
  }
  uint64_t c1, c2, c3;
  double fast = bench_ours(identity, plain, plain_len, n, &c1);
  double slow = bench_ours(interp, evolved, evolved_len, n, &c2);
  double avro_c = bench_avro_c(plain, plain_len, n, &c3);
  if (c1 != c2 || c1 != c3) {
    fprintf(stderr, "checksums differ: %llu %llu %llu\n", (unsigned long long)c1,
            (unsigned long long)c2, (unsigned long long)c3);
    return 1;
  }
  printf("bench-decode: %ld records, %.1f bytes/record (reader schema)\n", n,
         (double)plain_len / (double)n);
  printf("%-44s %10s %14s %8s\n", "decoder", "ns/record", "M records/s", "vs Avro C");
  printf("%-44s %10.2f %14.1f %7.1fx\n", "pm_decode, identity plan (fast path)", fast, 1e3 / fast,
         avro_c / fast);
  printf("%-44s %10.2f %14.1f %7.1fx\n", "pm_decode, evolved schema (interpreter)", slow,
         1e3 / slow, avro_c / slow);
  printf("%-44s %10.2f %14.1f %7.1fx\n", "Avro C 1.11.1 generic resolved reader", avro_c,
         1e3 / avro_c, 1.0);
  pm_plan_free(identity);
  pm_plan_free(interp);
  free(plain);
  free(evolved);
  return 0;
}
