/* test_decode_differential.c — proves pm_decode equal to Avro C 1.11.1's
 * generic resolving decoder (avro_resolved_writer + avro_value_read), for the
 * reader schema and evolved writer schemas, on valid and malformed input.
 *
 * Oracle for one input (writer schema W, bytes E):
 *  1. avro_skip_data(W) must succeed and consume all of E (framing: varint
 *     lengths, string lengths, union indexes, truncation, trailing bytes).
 *     Only then is Avro C's resolver run: Avro C 1.11.1 does not bound-check
 *     union indexes when resolving (it indexes its branch array directly), so
 *     feeding it an out-of-range index would be undefined behaviour.
 *  2. Avro C resolves W against the reader schema (or, when W lacks a reader
 *     field with a default, against the reader schema without that field:
 *     Avro C 1.11.1 does not implement reader defaults) — the real read.
 *  3. The same bytes are resolved once more with the two enums replaced by
 *     "long" in both schemas (enum and long share the zigzag varint encoding),
 *     which yields the raw 64-bit writer enum index.
 * Documented differences from Avro C 1.11.1, where we follow the Avro spec:
 *  - Avro C does not map enum symbols by name: it stores the writer's index
 *    as the reader's index (so reordered or extra writer symbols come out
 *    wrong) and does not range-check it. We map by name, give unknown writer
 *    symbols the reader enum's default, and reject indexes outside the
 *    writer's symbol range. The test asserts both behaviours explicitly.
 *  - Avro C cannot resolve a writer lacking a reader field (no defaults); we
 *    use the reader default (visitation UNKNOWN, benefit OTHER).
 *  - Avro C 1.11.1 skips a string/bytes/map key of negative length as if it
 *    were empty, and takes a union index modulo 2^32 when skipping; we
 *    reject both as undecodable. A test-side framing walk (walk()) spots
 *    these cases.
 *  - Avro C 1.11.1 loops `count` times over arrays of zero-byte items (null)
 *    whatever the count; we skip them at once. Not exercised here: a garbage
 *    count would make Avro C spin for ages.
 * Every case is also decoded through pm_decode with random slack bytes after
 * the datum (the identity plan's unchecked fast path needs >= 60 bytes of
 * buffer): accepted-and-consumed-exactly must equal pm_decode_exact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <avro.h>

#include "avro/decode.h"

/* ---- deterministic PRNG (splitmix64) ---- */

static uint64_t rng_state;
static uint64_t rng_next(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static uint32_t rng_below(uint32_t n) {
  return (uint32_t)(rng_next() % n);
}

/* ---- schemas ---- */

#define VIS_SYMS                                                                                   \
  "\"UNKNOWN\",\"JOBPARAT\",\"AKTIVITETSPARAT\",\"UDDANNELSESPARAT\",\"SELVFORSOERGENDE\","        \
  "\"OEVRIG\""
#define BEN_SYMS                                                                                   \
  "\"NONE\",\"KONTANTHJAELP\",\"INTEGRATIONSYDELSE\",\"UDDANNELSESHJAELP\",\"RESSOURCEFORLOEB\","  \
  "\"SYGEDAGPENGE\",\"LEDIGHEDSYDELSE\",\"DAGPENGE\",\"OTHER\""
#define VIS_STD "{\"type\":\"enum\",\"name\":\"Visitation\",\"symbols\":[" VIS_SYMS "]}"
#define BEN_STD "{\"type\":\"enum\",\"name\":\"Benefit\",\"symbols\":[" BEN_SYMS "]}"
#define VIS_REV                                                                                    \
  "{\"type\":\"enum\",\"name\":\"Visitation\",\"symbols\":[\"OEVRIG\",\"SELVFORSOERGENDE\","       \
  "\"UDDANNELSESPARAT\",\"AKTIVITETSPARAT\",\"JOBPARAT\",\"UNKNOWN\"]}"
#define BEN_REV                                                                                    \
  "{\"type\":\"enum\",\"name\":\"Benefit\",\"symbols\":[\"OTHER\",\"DAGPENGE\","                   \
  "\"LEDIGHEDSYDELSE\",\"SYGEDAGPENGE\",\"RESSOURCEFORLOEB\",\"UDDANNELSESHJAELP\","               \
  "\"INTEGRATIONSYDELSE\",\"KONTANTHJAELP\",\"NONE\"]}"
#define VIS_EXTRA                                                                                  \
  "{\"type\":\"enum\",\"name\":\"Visitation\",\"symbols\":[\"UNKNOWN\",\"JOBPARAT\","              \
  "\"NY_KATEGORI\",\"AKTIVITETSPARAT\",\"UDDANNELSESPARAT\",\"SELVFORSOERGENDE\",\"OEVRIG\","      \
  "\"ANDET\"]}"
#define BEN_EXTRA                                                                                  \
  "{\"type\":\"enum\",\"name\":\"Benefit\",\"symbols\":[\"PENSION\"," BEN_SYMS ",\"BARSEL\"]}"

#define F_PID "{\"name\":\"person_id\",\"type\":\"long\"}"
#define F_PERIOD "{\"name\":\"period\",\"type\":\"int\"}"
#define F_MUNI "{\"name\":\"municipality\",\"type\":\"int\"}"
#define F_VIS "{\"name\":\"visitation\",\"type\":@V@}"
#define F_ENROLLED "{\"name\":\"enrolled\",\"type\":\"boolean\"}"
#define F_HOURS "{\"name\":\"paid_hours\",\"type\":\"float\"}"
#define F_EDU "{\"name\":\"education\",\"type\":\"boolean\"}"
#define F_INTERN "{\"name\":\"internship\",\"type\":\"boolean\"}"
#define F_WAGE "{\"name\":\"wage_subsidy\",\"type\":\"boolean\"}"
#define F_FLEX "{\"name\":\"flexjob\",\"type\":\"boolean\"}"
#define F_DISAB "{\"name\":\"disability_pension\",\"type\":\"boolean\"}"
#define F_BEN "{\"name\":\"benefit\",\"type\":@B@}"
#define RECORD(ns, fields)                                                                         \
  "{\"type\":\"record\",\"name\":\"PersonMonth\",\"namespace\":\"" ns "\",\"fields\":[" fields "]" \
  "}"

typedef struct schema_case {
  const char *name;
  const char *writer; /* template: @V@ and @B@ are the two enum types */
  const char *vis, *ben;
  int identity; /* expected pm_plan_is_identity */
} schema_case;

static const schema_case cases[] = {
    {"identity",
     RECORD("regstream", F_PID "," F_PERIOD "," F_MUNI "," F_VIS "," F_ENROLLED "," F_HOURS
                               "," F_EDU "," F_INTERN "," F_WAGE "," F_FLEX "," F_DISAB "," F_BEN),
     VIS_STD, BEN_STD, 1},
    {"added_fields",
     RECORD("regstream",
            "{\"name\":\"source\",\"type\":\"string\",\"default\":\"\"}," F_PID ","
            "{\"name\":\"extra\",\"type\":{\"type\":\"record\",\"name\":\"Extra\",\"fields\":["
            "{\"name\":\"a\",\"type\":\"int\"},"
            "{\"name\":\"b\",\"type\":{\"type\":\"array\",\"items\":\"long\"}},"
            "{\"name\":\"c\",\"type\":{\"type\":\"map\",\"values\":\"double\"}},"
            "{\"name\":\"d\",\"type\":{\"type\":\"fixed\",\"name\":\"F3\",\"size\":3}},"
            "{\"name\":\"e\",\"type\":\"null\"}]},"
            "\"default\":{\"a\":0,\"b\":[],\"c\":{},\"d\":\"abc\",\"e\":null}}," F_PERIOD "," F_MUNI
            "," F_VIS ","
            "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"},"
            "\"default\":[]}," F_ENROLLED "," F_HOURS ","
            "{\"name\":\"note\",\"type\":[\"null\",\"string\",\"bytes\",{\"type\":\"enum\","
            "\"name\":\"Kind\",\"symbols\":[\"A\",\"B\",\"C\"]}],\"default\":null}," F_EDU
            "," F_INTERN "," F_WAGE ","
            "{\"name\":\"attrs\",\"type\":{\"type\":\"map\",\"values\":[\"null\",\"int\","
            "\"Extra\",{\"type\":\"array\",\"items\":\"F3\"}]},\"default\":{}}," F_FLEX "," F_DISAB
            "," F_BEN ","
            "{\"name\":\"weight\",\"type\":\"double\",\"default\":1.0},"
            "{\"name\":\"flag\",\"type\":\"boolean\",\"default\":false},"
            "{\"name\":\"n\",\"type\":\"int\",\"default\":0},"
            "{\"name\":\"l\",\"type\":\"long\",\"default\":0},"
            "{\"name\":\"f\",\"type\":\"float\",\"default\":0},"
            "{\"name\":\"raw\",\"type\":\"bytes\",\"default\":\"\"},"
            "{\"name\":\"chain\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"Node\","
            "\"fields\":[{\"name\":\"v\",\"type\":\"int\"},{\"name\":\"next\","
            "\"type\":[\"null\",\"Node\"]}]}],\"default\":null}"),
     VIS_STD, BEN_STD, 0},
    {"removed_enums",
     RECORD("regstream", F_PID "," F_PERIOD "," F_MUNI "," F_ENROLLED "," F_HOURS "," F_EDU
                               "," F_INTERN "," F_WAGE "," F_FLEX "," F_DISAB),
     VIS_STD, BEN_STD, 0},
    {"reordered_symbols",
     RECORD("regstream", F_PID "," F_PERIOD "," F_MUNI "," F_VIS "," F_ENROLLED "," F_HOURS
                               "," F_EDU "," F_INTERN "," F_WAGE "," F_FLEX "," F_DISAB "," F_BEN),
     VIS_REV, BEN_REV, 0},
    {"unknown_symbols",
     RECORD("regstream", F_PID "," F_PERIOD "," F_MUNI "," F_VIS "," F_ENROLLED "," F_HOURS
                               "," F_EDU "," F_INTERN "," F_WAGE "," F_FLEX "," F_DISAB "," F_BEN),
     VIS_EXTRA, BEN_EXTRA, 0},
    {"int_promotions",
     RECORD("regstream", "{\"name\":\"person_id\",\"type\":\"int\"}," F_PERIOD "," F_MUNI "," F_VIS
                         "," F_ENROLLED ",{\"name\":\"paid_hours\",\"type\":\"int\"}," F_EDU
                         "," F_INTERN "," F_WAGE "," F_FLEX "," F_DISAB "," F_BEN),
     VIS_STD, BEN_STD, 0},
    {"long_hours",
     RECORD("regstream", F_PID "," F_PERIOD "," F_MUNI "," F_VIS "," F_ENROLLED
                               ",{\"name\":\"paid_hours\",\"type\":\"long\"}," F_EDU "," F_INTERN
                               "," F_WAGE "," F_FLEX "," F_DISAB "," F_BEN),
     VIS_STD, BEN_STD, 0},
    {"unions",
     RECORD("regstream", "{\"name\":\"person_id\",\"type\":[\"null\",\"int\",\"long\"]},"
                         "{\"name\":\"period\",\"type\":[\"int\",\"null\"]}," F_MUNI
                         ",{\"name\":\"visitation\",\"type\":[\"null\",@V@]}," F_ENROLLED
                         ",{\"name\":\"paid_hours\",\"type\":[\"null\",\"float\"]}," F_EDU
                         "," F_INTERN "," F_WAGE "," F_FLEX
                         ",{\"name\":\"disability_pension\",\"type\":[\"boolean\",\"string\"]},"
                         "{\"name\":\"benefit\",\"type\":[@B@,\"null\"]}"),
     VIS_STD, BEN_STD, 0},
    {"reordered_fields",
     RECORD("other.ns", F_BEN "," F_FLEX "," F_HOURS "," F_PERIOD "," F_DISAB "," F_VIS "," F_PID
                              "," F_EDU "," F_ENROLLED "," F_WAGE "," F_MUNI "," F_INTERN),
     VIS_REV, BEN_STD, 0},
};
enum { NCASES = sizeof cases / sizeof cases[0] };

/* Replace @V@ / @B@ in tmpl; returns a malloc'd string. */
static char *subst(const char *tmpl, const char *vis, const char *ben) {
  size_t cap = strlen(tmpl) + 2 * (strlen(vis) + strlen(ben)) + 1;
  char *out = malloc(cap), *o = out;
  for (const char *p = tmpl; *p;) {
    if (strncmp(p, "@V@", 3) == 0) {
      o += sprintf(o, "%s", vis);
      p += 3;
    } else if (strncmp(p, "@B@", 3) == 0) {
      o += sprintf(o, "%s", ben);
      p += 3;
    } else {
      *o++ = *p++;
    }
  }
  *o = '\0';
  return out;
}

/* Reader schema for Avro C: all 12 fields, or only those the writer has. */
static char *reader_json(avro_schema_t writer, const char *vis, const char *ben) {
  static const char *const fields[12] = {F_PID, F_PERIOD, F_MUNI, F_VIS,  F_ENROLLED, F_HOURS,
                                         F_EDU, F_INTERN, F_WAGE, F_FLEX, F_DISAB,    F_BEN};
  static const char *const names[12] = {
      "person_id", "period",     "municipality", "visitation", "enrolled",           "paid_hours",
      "education", "internship", "wage_subsidy", "flexjob",    "disability_pension", "benefit"};
  char buf[4096];
  size_t n = (size_t)snprintf(buf, sizeof buf,
                              "{\"type\":\"record\",\"name\":\"PersonMonth\",\"namespace\":"
                              "\"regstream\",\"fields\":[");
  int first = 1;
  for (int i = 0; i < 12; i++) {
    if (writer && avro_schema_record_field_get_index(writer, names[i]) < 0)
      continue;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", first ? "" : ",", fields[i]);
    first = 0;
  }
  snprintf(buf + n, sizeof buf - n, "]}");
  return subst(buf, vis, ben);
}

static avro_schema_t parse(const char *json) {
  avro_schema_t s = NULL;
  if (avro_schema_from_json_length(json, strlen(json), &s) != 0) {
    fail_msg("schema does not parse: %s\n%s", avro_strerror(), json);
  }
  return s;
}

/* ---- per-case Avro C machinery ---- */

typedef struct oracle {
  const schema_case *c;
  char *writer_json;
  avro_schema_t writer, shadow_writer, reader, shadow_reader;
  int projected; /* Avro C needed the reader without the missing fields */
  avro_value_iface_t *wclass, *rclass, *srclass, *resolver, *sresolver;
  avro_value_t wvalue, rvalue, srvalue, resolved, sresolved;
  avro_reader_t mem;
  pm_plan *plan;
  /* test-side enum maps: writer symbol index -> reader index (-1: absent) */
  int vis_map[64], ben_map[64];
  int vis_n, ben_n; /* writer symbol counts, 0 when the field is absent */
  /* counters */
  long accepted, rejected, enum_remapped, enum_range_diff, framing_diff, fast_checked;
} oracle;

static avro_schema_t enum_of(avro_schema_t s) {
  while (is_avro_link(s))
    s = avro_schema_link_target(s);
  if (is_avro_enum(s))
    return s;
  if (is_avro_union(s))
    for (size_t i = 0; i < avro_schema_union_size(s); i++) {
      avro_schema_t b = avro_schema_union_branch(s, (int)i);
      if (is_avro_enum(b))
        return b;
    }
  return NULL;
}

static int build_map(avro_schema_t writer, const char *field, const char *const *symbols, int nr,
                     int def, int *map) {
  /* (avro_schema_record_field_get crashes on a missing name in 1.11.1) */
  if (avro_schema_record_field_get_index(writer, field) < 0)
    return 0;
  avro_schema_t f = avro_schema_record_field_get(writer, field);
  avro_schema_t e = enum_of(f);
  assert_non_null(e);
  int n = avro_schema_enum_number_of_symbols(e);
  assert_true(n > 0 && n <= 64);
  for (int i = 0; i < n; i++) {
    map[i] = def;
    for (int k = 0; k < nr; k++)
      if (strcmp(avro_schema_enum_get(e, i), symbols[k]) == 0)
        map[i] = k;
  }
  return n;
}

static void oracle_init(oracle *o, const schema_case *c) {
  memset(o, 0, sizeof *o);
  o->c = c;
  o->writer_json = subst(c->writer, c->vis, c->ben);
  char *shadow_json = subst(c->writer, "\"long\"", "\"long\"");
  o->writer = parse(o->writer_json);
  o->shadow_writer = parse(shadow_json);
  free(shadow_json);

  char *rj = reader_json(NULL, VIS_STD, BEN_STD);
  o->reader = parse(rj);
  free(rj);
  o->resolver = avro_resolved_writer_new(o->writer, o->reader);
  if (!o->resolver) {
    /* Avro C 1.11.1 has no reader defaults: resolve the fields it has. */
    avro_schema_decref(o->reader);
    rj = reader_json(o->writer, VIS_STD, BEN_STD);
    o->reader = parse(rj);
    free(rj);
    o->resolver = avro_resolved_writer_new(o->writer, o->reader);
    o->projected = 1;
  }
  if (!o->resolver)
    fail_msg("Avro C cannot resolve case %s: %s", c->name, avro_strerror());
  rj = reader_json(o->projected ? o->writer : NULL, "\"long\"", "\"long\"");
  o->shadow_reader = parse(rj);
  free(rj);
  o->sresolver = avro_resolved_writer_new(o->shadow_writer, o->shadow_reader);
  if (!o->sresolver)
    fail_msg("Avro C cannot resolve shadow of %s: %s", c->name, avro_strerror());

  o->wclass = avro_generic_class_from_schema(o->writer);
  o->rclass = avro_generic_class_from_schema(o->reader);
  o->srclass = avro_generic_class_from_schema(o->shadow_reader);
  assert_int_equal(avro_generic_value_new(o->wclass, &o->wvalue), 0);
  assert_int_equal(avro_generic_value_new(o->rclass, &o->rvalue), 0);
  assert_int_equal(avro_generic_value_new(o->srclass, &o->srvalue), 0);
  assert_int_equal(avro_resolved_writer_new_value(o->resolver, &o->resolved), 0);
  assert_int_equal(avro_resolved_writer_new_value(o->sresolver, &o->sresolved), 0);
  avro_resolved_writer_set_dest(&o->resolved, &o->rvalue);
  avro_resolved_writer_set_dest(&o->sresolved, &o->srvalue);
  o->mem = avro_reader_memory("", 0);

  char err[256];
  o->plan = pm_plan_from_json(o->writer_json, strlen(o->writer_json), err, sizeof err);
  if (!o->plan)
    fail_msg("pm_plan_from_json(%s): %s", c->name, err);
  assert_int_equal(pm_plan_is_identity(o->plan), c->identity);

  o->vis_n = build_map(o->writer, "visitation", visitation_symbols, VISITATION_COUNT,
                       VISITATION_UNKNOWN, o->vis_map);
  o->ben_n =
      build_map(o->writer, "benefit", benefit_symbols, BENEFIT_COUNT, BENEFIT_OTHER, o->ben_map);
}

static void oracle_done(oracle *o) {
  print_message("  %-18s accepted %7ld rejected %7ld | enum remapped vs Avro C %6ld, enum index "
                "out of range (Avro C accepts) %5ld, negative length/truncated union index (Avro C "
                "accepts) %4ld | fast path "
                "checked %7ld\n",
                o->c->name, o->accepted, o->rejected, o->enum_remapped, o->enum_range_diff,
                o->framing_diff, o->fast_checked);
  pm_plan_free(o->plan);
  avro_reader_free(o->mem);
  avro_value_decref(&o->resolved);
  avro_value_decref(&o->sresolved);
  avro_value_decref(&o->wvalue);
  avro_value_decref(&o->rvalue);
  avro_value_decref(&o->srvalue);
  avro_value_iface_decref(o->resolver);
  avro_value_iface_decref(o->sresolver);
  avro_value_iface_decref(o->wclass);
  avro_value_iface_decref(o->rclass);
  avro_value_iface_decref(o->srclass);
  avro_schema_decref(o->writer);
  avro_schema_decref(o->shadow_writer);
  avro_schema_decref(o->reader);
  avro_schema_decref(o->shadow_reader);
  free(o->writer_json);
}

static int get_field(avro_value_t *rec, const char *name, avro_value_t *out) {
  return avro_value_get_by_name(rec, name, out, NULL) == 0;
}

/* Test-side framing walk of a writer datum, mirroring Avro C 1.11.1's
 * skipper (avro_skip_data), to spot the framing it accepts against the Avro
 * spec: a string/bytes/map-key length < 0 (avro_skip ignores len <= 0, so it
 * skips nothing; its reader would allocate len + 1 bytes and write before
 * the buffer) and a union index outside [0, n) whose low 32 bits are a valid
 * branch (its branch table lookup truncates the key). pm_decode rejects
 * both; *lenient is set when either was seen, and the walk goes on the way
 * Avro C does. Returns the end of the datum, or NULL when framing fails. */
static const uint8_t *walk_varint(const uint8_t *p, const uint8_t *end, int64_t *v) {
  uint64_t r = 0;
  for (int i = 0; i < 10; i++) {
    if (p >= end)
      return NULL;
    uint64_t b = *p++;
    r |= (b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      *v = (int64_t)(r >> 1) ^ -(int64_t)(r & 1);
      return p;
    }
  }
  return NULL;
}

static const uint8_t *walk(avro_schema_t s, const uint8_t *p, const uint8_t *end, int *lenient) {
  int64_t v;
  while (is_avro_link(s))
    s = avro_schema_link_target(s);
  switch (avro_typeof(s)) {
  case AVRO_NULL:
    return p;
  case AVRO_BOOLEAN:
    return p < end ? p + 1 : NULL;
  case AVRO_INT32:
  case AVRO_INT64:
  case AVRO_ENUM:
    return walk_varint(p, end, &v);
  case AVRO_FLOAT:
    return end - p >= 4 ? p + 4 : NULL;
  case AVRO_DOUBLE:
    return end - p >= 8 ? p + 8 : NULL;
  case AVRO_STRING:
  case AVRO_BYTES:
    if (!(p = walk_varint(p, end, &v)))
      return NULL;
    if (v < 0) {
      *lenient = 1;
      return p;
    }
    return v <= end - p ? p + v : NULL;
  case AVRO_FIXED:
    return avro_schema_fixed_size(s) <= end - p ? p + avro_schema_fixed_size(s) : NULL;
  case AVRO_RECORD:
    for (size_t i = 0; i < avro_schema_record_size(s) && p; i++)
      p = walk(avro_schema_record_field_get_by_index(s, (int)i), p, end, lenient);
    return p;
  case AVRO_UNION:
    if (!(p = walk_varint(p, end, &v)))
      return NULL;
    if (v < 0 || v >= (int64_t)avro_schema_union_size(s)) {
      int32_t low = (int32_t)(uint32_t)v;
      if (low < 0 || low >= (int32_t)avro_schema_union_size(s))
        return NULL;
      *lenient = 1;
      v = low;
    }
    return walk(avro_schema_union_branch(s, (int)v), p, end, lenient);
  case AVRO_ARRAY:
  case AVRO_MAP: {
    int is_map = avro_typeof(s) == AVRO_MAP;
    avro_schema_t item = is_map ? avro_schema_map_values(s) : avro_schema_array_items(s);
    for (;;) {
      int64_t count;
      if (!(p = walk_varint(p, end, &count)))
        return NULL;
      if (count == 0)
        return p;
      if (count < 0) {
        count = count == INT64_MIN ? 0 : -count;
        if (!(p = walk_varint(p, end, &v)))
          return NULL;
      }
      if (count > end - p) /* our schemas have no zero-size items */
        return NULL;
      for (int64_t i = 0; i < count; i++) {
        if (is_map && !(p = walk(avro_schema_string(), p, end, lenient)))
          return NULL;
        if (!(p = walk(item, p, end, lenient)))
          return NULL;
      }
    }
  }
  default:
    return NULL;
  }
}

/* Avro C's verdict on bytes; on acceptance fills *want (our expected record). */
static int oracle_expect(oracle *o, const uint8_t *buf, size_t len, pm_record *want) {
  /* 1. framing, with Avro C's skipper (bounds-checks union indexes) */
  avro_reader_memory_set_source(o->mem, (const char *)buf, (int64_t)len);
  if (avro_skip_data(o->mem, o->writer) != 0)
    return 0;
  char extra;
  if (avro_read(o->mem, &extra, 1) == 0)
    return 0; /* trailing bytes */
  int lenient = 0;
  const uint8_t *walked = walk(o->writer, buf, buf + len, &lenient);
  if (walked != buf + len) { /* otherwise Avro C and the walk disagree */
    char hex[3 * 128 + 1] = "";
    for (size_t i = 0; i < len && i < 128; i++)
      sprintf(hex + 3 * i, "%02x ", buf[i]);
    fail_msg("%s: Avro C skips %zu bytes, the test walk does not: %s", o->c->name, len, hex);
  }
  if (lenient) {
    o->framing_diff++; /* Avro C accepts this framing; documented difference */
    return 0;
  }
  /* 2. the real resolved read */
  avro_reader_memory_set_source(o->mem, (const char *)buf, (int64_t)len);
  int real = avro_value_read(o->mem, &o->resolved);
  /* 3. the shadow read: raw enum indexes */
  avro_reader_memory_set_source(o->mem, (const char *)buf, (int64_t)len);
  int shadow = avro_value_read(o->mem, &o->sresolved);
  assert_int_equal(real != 0, shadow != 0);
  if (real != 0)
    return 0;

  memset(want, 0, sizeof *want);
  avro_value_t f;
  int32_t i32 = 0; /* clang cannot see that avro_value_get_* sets them */
  int bv = 0;
  assert_true(get_field(&o->rvalue, "person_id", &f));
  assert_int_equal(avro_value_get_long(&f, &want->person_id), 0);
  assert_true(get_field(&o->rvalue, "period", &f));
  assert_int_equal(avro_value_get_int(&f, &i32), 0);
  want->period = i32;
  assert_true(get_field(&o->rvalue, "municipality", &f));
  assert_int_equal(avro_value_get_int(&f, &i32), 0);
  want->municipality = i32;
  assert_true(get_field(&o->rvalue, "paid_hours", &f));
  assert_int_equal(avro_value_get_float(&f, &want->paid_hours), 0);
  static const char *const bools[6] = {"enrolled",     "education", "internship",
                                       "wage_subsidy", "flexjob",   "disability_pension"};
  for (int i = 0; i < 6; i++) {
    assert_true(get_field(&o->rvalue, bools[i], &f));
    assert_int_equal(avro_value_get_boolean(&f, &bv), 0);
    if (bv)
      want->flags |= (uint8_t)(1u << i);
  }
  int ok = 1;
  struct {
    const char *name;
    int n;
    const int *map;
    uint8_t *dst;
    uint8_t def;
  } enums[2] = {{"visitation", o->vis_n, o->vis_map, &want->visitation, VISITATION_UNKNOWN},
                {"benefit", o->ben_n, o->ben_map, &want->benefit, BENEFIT_OTHER}};
  for (int e = 0; e < 2; e++) {
    if (enums[e].n == 0) {
      *enums[e].dst = enums[e].def; /* reader default */
      continue;
    }
    int64_t raw = 0;
    int avro_c = 0;
    assert_true(get_field(&o->srvalue, enums[e].name, &f));
    assert_int_equal(avro_value_get_long(&f, &raw), 0);
    assert_true(get_field(&o->rvalue, enums[e].name, &f));
    assert_int_equal(avro_value_get_enum(&f, &avro_c), 0);
    /* Avro C 1.11.1 passes the writer index through, unmapped, unchecked. */
    assert_int_equal(avro_c, (int)raw);
    if (raw < 0 || raw >= enums[e].n) {
      o->enum_range_diff++; /* Avro C accepted it; the spec makes it an error */
      ok = 0;
      continue;
    }
    *enums[e].dst = (uint8_t)enums[e].map[raw];
    if (*enums[e].dst != avro_c)
      o->enum_remapped++;
  }
  return ok;
}

static void check_bytes(oracle *o, const uint8_t *buf, size_t len) {
  pm_record want, got;
  int expect = oracle_expect(o, buf, len, &want);
  memset(&got, 0xa5, sizeof got);
  int rc = pm_decode_exact(o->plan, buf, len, &got);
  if ((rc == 0) != expect) {
    char hex[3 * 128 + 1] = "";
    for (size_t i = 0; i < len && i < 128; i++)
      sprintf(hex + 3 * i, "%02x ", buf[i]);
    fail_msg("%s: Avro C %s, pm_decode_exact %s, %zu bytes: %s", o->c->name,
             expect ? "accepts" : "rejects", rc == 0 ? "accepts" : "rejects", len, hex);
  }
  if (expect) {
    o->accepted++;
    if (memcmp(&want, &got, sizeof want) != 0)
      fail_msg("%s: values differ: want pid %lld period %d muni %d hours %a vis %d flags %x ben %d"
               " / got pid %lld period %d muni %d hours %a vis %d flags %x ben %d",
               o->c->name, (long long)want.person_id, want.period, want.municipality,
               (double)want.paid_hours, want.visitation, want.flags, want.benefit,
               (long long)got.person_id, got.period, got.municipality, (double)got.paid_hours,
               got.visitation, got.flags, got.benefit);
  } else {
    o->rejected++;
  }
  /* Same bytes inside a bigger buffer (fast path for the identity plan). */
  uint8_t big[512];
  if (len + 64 <= sizeof big) {
    memcpy(big, buf, len);
    for (size_t i = len; i < len + 64; i++)
      big[i] = (uint8_t)rng_next();
    const uint8_t *p = big;
    pm_record fast;
    int frc = pm_decode(o->plan, &p, big + len + 64, &fast);
    int fast_exact = frc == 0 && p == big + len;
    assert_int_equal(fast_exact, expect);
    if (expect)
      assert_memory_equal(&fast, &want, sizeof want);
    o->fast_checked++;
  }
}

/* ---- random datums through Avro C's generic API ---- */

static int64_t rand_long(void) {
  switch (rng_below(8)) {
  case 0:
    return (int64_t)rng_next();
  case 1:
    return rng_below(2) ? INT64_MAX : INT64_MIN;
  case 2:
    return (int64_t)rng_below(6000000) + 1;
  case 3:
    return -(int64_t)rng_below(1000);
  case 4:
    return (int64_t)(rng_next() >> rng_below(64));
  default:
    return (int64_t)rng_below(1u << rng_below(31));
  }
}

static int32_t rand_int(void) {
  switch (rng_below(6)) {
  case 0:
    return (int32_t)rng_next();
  case 1:
    return rng_below(2) ? INT32_MAX : INT32_MIN;
  case 2:
    return 199001 + (int32_t)rng_below(110) * 100 + (int32_t)rng_below(12);
  case 3:
    return 101 + (int32_t)rng_below(800);
  default:
    return (int32_t)rng_below(1u << rng_below(31)) - (int32_t)rng_below(3);
  }
}

static float rand_float(void) {
  uint32_t bits;
  float f;
  switch (rng_below(8)) {
  case 0:
    bits = (uint32_t)rng_next();
    memcpy(&f, &bits, 4);
    return f;
  case 1: {
    static const float specials[] = {0.0f, -0.0f, 744.0f, 744.5f, -1.0f, 1e30f, 1.5e-45f};
    return specials[rng_below(sizeof specials / sizeof specials[0])];
  }
  case 2:
    bits = 0x7fc00000u | (uint32_t)rng_below(1000); /* NaN payloads */
    memcpy(&f, &bits, 4);
    return f;
  default:
    return (float)rng_below(744 * 4) / 4.0f;
  }
}

static void fill(avro_value_t *v, int depth) {
  avro_schema_t s = avro_value_get_schema(v);
  switch (avro_value_get_type(v)) {
  case AVRO_NULL:
    avro_value_set_null(v);
    break;
  case AVRO_BOOLEAN:
    avro_value_set_boolean(v, (int)rng_below(2));
    break;
  case AVRO_INT32:
    avro_value_set_int(v, rand_int());
    break;
  case AVRO_INT64:
    avro_value_set_long(v, rand_long());
    break;
  case AVRO_FLOAT:
    avro_value_set_float(v, rand_float());
    break;
  case AVRO_DOUBLE:
    avro_value_set_double(v, (double)rand_long() / 3.0);
    break;
  case AVRO_STRING:
  case AVRO_BYTES: {
    char str[16];
    size_t n = rng_below(sizeof str - 1);
    for (size_t i = 0; i < n; i++)
      str[i] = (char)('a' + rng_below(26));
    str[n] = '\0';
    if (avro_value_get_type(v) == AVRO_STRING)
      avro_value_set_string_len(v, str, n + 1);
    else
      avro_value_set_bytes(v, str, n);
    break;
  }
  case AVRO_FIXED: {
    char b[64];
    size_t n = (size_t)avro_schema_fixed_size(s);
    for (size_t i = 0; i < n; i++)
      b[i] = (char)rng_next();
    avro_value_set_fixed(v, b, n);
    break;
  }
  case AVRO_ENUM:
    avro_value_set_enum(v, (int)rng_below((uint32_t)avro_schema_enum_number_of_symbols(s)));
    break;
  case AVRO_ARRAY: {
    size_t n = depth > 4 ? 0 : rng_below(4);
    for (size_t i = 0; i < n; i++) {
      avro_value_t child;
      avro_value_append(v, &child, NULL);
      fill(&child, depth + 1);
    }
    break;
  }
  case AVRO_MAP: {
    size_t n = depth > 4 ? 0 : rng_below(4);
    for (size_t i = 0; i < n; i++) {
      avro_value_t child;
      char key[16];
      snprintf(key, sizeof key, "k%u", rng_below(100));
      avro_value_add(v, key, &child, NULL, NULL);
      fill(&child, depth + 1);
    }
    break;
  }
  case AVRO_RECORD: {
    size_t n = 0;
    avro_value_get_size(v, &n);
    for (size_t i = 0; i < n; i++) {
      avro_value_t child;
      avro_value_get_by_index(v, i, &child, NULL);
      fill(&child, depth + 1);
    }
    break;
  }
  case AVRO_UNION: {
    avro_value_t branch;
    size_t n = avro_schema_union_size(s);
    /* deep down, branch 0 (null in our recursive types) ends the chain */
    int which = depth > 4 ? 0 : (int)rng_below((uint32_t)n);
    /* top-level unions mostly take a branch the reader can use */
    for (int tries = 0; depth == 1 && tries < 4 && rng_below(8) != 0; tries++) {
      avro_type_t t = avro_typeof(avro_schema_union_branch(s, which));
      if (t != AVRO_NULL && t != AVRO_STRING)
        break;
      which = (int)rng_below((uint32_t)n);
    }
    avro_value_set_branch(v, which, &branch);
    fill(&branch, depth + 1);
    break;
  }
  default:
    fail_msg("unexpected type");
  }
}

static size_t encode_random(oracle *o, uint8_t *buf, size_t cap) {
  avro_value_reset(&o->wvalue);
  fill(&o->wvalue, 0);
  avro_writer_t w = avro_writer_memory((const char *)buf, (int64_t)cap);
  assert_int_equal(avro_value_write(w, &o->wvalue), 0);
  size_t len = (size_t)avro_writer_tell(w);
  avro_writer_free(w);
  return len;
}

/* ---- the cases ---- */

static void mutate_and_check(oracle *o, const uint8_t *buf, size_t len) {
  uint8_t m[512];
  /* byte flips: 1..3 bytes, random values or single bits */
  for (int t = 0; t < 4; t++) {
    memcpy(m, buf, len);
    int k = 1 + (int)rng_below(3);
    for (int i = 0; i < k && len; i++) {
      size_t at = rng_below((uint32_t)len);
      if (rng_below(2))
        m[at] = (uint8_t)rng_next();
      else
        m[at] ^= (uint8_t)(1u << rng_below(8));
    }
    check_bytes(o, m, len);
  }
  /* one trailing byte */
  memcpy(m, buf, len);
  m[len] = (uint8_t)rng_next();
  check_bytes(o, m, len + 1);
  /* an inserted or deleted byte */
  if (len > 1) {
    size_t at = rng_below((uint32_t)len);
    memcpy(m, buf, at);
    memcpy(m + at, buf + at + 1, len - at - 1);
    check_bytes(o, m, len - 1);
    memcpy(m, buf, at);
    m[at] = (uint8_t)rng_next();
    memcpy(m + at + 1, buf + at, len - at);
    check_bytes(o, m, len + 1);
  }
}

static void run_case(void **state) {
  const schema_case *c = *state;
  oracle o;
  rng_state = 0x5eed0000u + (uint64_t)(c - cases);
  oracle_init(&o, c);
  uint8_t buf[512];
  enum { RECORDS = 4000, ALL_TRUNCATIONS = 1000 };
  for (int r = 0; r < RECORDS; r++) {
    size_t len = encode_random(&o, buf, sizeof buf - 70);
    check_bytes(&o, buf, len);
    if (r < ALL_TRUNCATIONS) {
      for (size_t k = 0; k < len; k++)
        check_bytes(&o, buf, k);
    } else {
      check_bytes(&o, buf, rng_below((uint32_t)len));
    }
    mutate_and_check(&o, buf, len);
  }
  /* random garbage, uniform and biased towards varint edge bytes */
  static const uint8_t edge[] = {0x00, 0x01, 0x02, 0x7f, 0x80, 0x81, 0xfe, 0xff};
  for (int g = 0; g < 10000; g++) {
    size_t len = rng_below(90);
    for (size_t i = 0; i < len; i++)
      buf[i] = g & 1 ? (uint8_t)rng_next() : edge[rng_below(sizeof edge)];
    check_bytes(&o, buf, len);
  }
  assert_true(o.accepted > RECORDS / 10);
  assert_true(o.rejected > RECORDS);
  oracle_done(&o);
}

/* ---- hand-made malformed inputs for the reader layout ---- */

/* Varint of v, padded with redundant continuation bytes to `width` bytes
 * (width 0: shortest). Avro C accepts padding up to 10 bytes in all. */
static size_t put_varint(uint8_t *p, uint64_t z, int width) {
  size_t n = 0;
  do {
    p[n] = (uint8_t)(z & 0x7f);
    z >>= 7;
    if (z || (int)n + 1 < width)
      p[n] |= 0x80;
    n++;
  } while (z || (int)n < width);
  return n;
}
static uint64_t zz(int64_t v) {
  return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

/* Reader-layout datum with raw values for every varint field. */
static size_t put_raw(uint8_t *b, int64_t pid, int64_t period, int64_t muni, int64_t vis,
                      int64_t ben, int width) {
  size_t n = 0;
  n += put_varint(b + n, zz(pid), width);
  n += put_varint(b + n, zz(period), width);
  n += put_varint(b + n, zz(muni), width);
  n += put_varint(b + n, zz(vis), width);
  b[n++] = 1;
  float h = 37.5f;
  memcpy(b + n, &h, 4);
  n += 4;
  for (int i = 0; i < 5; i++)
    b[n++] = (uint8_t)(i & 1 ? 0x02 : 0xff); /* nonzero is true */
  n += put_varint(b + n, zz(ben), width);
  return n;
}

static void test_handmade(void **state) {
  (void)state;
  oracle o;
  rng_state = 42;
  oracle_init(&o, &cases[0]);
  uint8_t b[256];
  static const int64_t enum_values[] = {
      0,         5,        6, 8, 9, -1, 100, INT32_MAX, (int64_t)1 << 32, ((int64_t)1 << 32) + 1,
      INT64_MIN, INT64_MAX};
  static const int64_t int_values[] = {
      0,         202001,   INT32_MAX, (int64_t)INT32_MAX + 1, INT32_MIN, (int64_t)INT32_MIN - 1,
      INT64_MAX, INT64_MIN};
  for (int width = 0; width <= 11; width++) {
    for (size_t e = 0; e < sizeof enum_values / sizeof enum_values[0]; e++)
      for (size_t i = 0; i < sizeof int_values / sizeof int_values[0]; i++) {
        size_t n = put_raw(b, int_values[i], int_values[(i + e) % 8], 101, enum_values[e],
                           enum_values[(e + i) % 12], width);
        check_bytes(&o, b, n);
      }
  }
  /* 10-byte varints whose 10th byte carries bits beyond 64 (Avro C drops
   * them), and 11-byte varints (an error). */
  uint8_t tail[128];
  size_t tail_len = put_raw(tail, 7, 202001, 101, 1, 1, 0) - 1; /* after a 1-byte person_id */
  for (int hi = 0; hi < 128; hi++) {
    size_t n = 0;
    b[n++] = 0x80 | 4;
    for (int i = 0; i < 8; i++)
      b[n++] = 0x80;
    b[n++] = (uint8_t)hi;
    memcpy(b + n, tail + 1, tail_len);
    n += tail_len;
    check_bytes(&o, b, n);
    b[9] |= 0x80; /* an 11th varint byte: error */
    check_bytes(&o, b, n);
  }
  oracle_done(&o);

  /* Union indexes out of range, and the null branch for a reader float. */
  oracle_init(&o, &cases[7]);
  for (int64_t idx = -3; idx <= 5; idx++) {
    size_t n = put_varint(b, zz(idx), 0); /* person_id union: null, int, long */
    n += put_varint(b + n, zz(7), 0);
    n += put_varint(b + n, 0, 0); /* period union: int */
    n += put_varint(b + n, zz(202001), 0);
    n += put_varint(b + n, zz(101), 0);
    n += put_varint(b + n, zz(1), 0); /* visitation union: enum */
    n += put_varint(b + n, zz(2), 0);
    b[n++] = 1;
    for (int64_t h = -1; h <= 2; h++) {
      size_t m = n + put_varint(b + n, zz(h), 0); /* paid_hours union: null, float */
      float f = 12.0f;
      memcpy(b + m, &f, 4);
      m += 4;
      for (int i = 0; i < 4; i++)
        b[m++] = 1;
      m += put_varint(b + m, 0, 0); /* disability_pension: boolean */
      b[m++] = 0;
      m += put_varint(b + m, 0, 0); /* benefit union: enum */
      m += put_varint(b + m, zz(3), 0);
      check_bytes(&o, b, m);
    }
  }
  oracle_done(&o);
}

/* ---- plans that must fail, and the reader schema itself ---- */

static void test_plan_errors(void **state) {
  (void)state;
  char err[256];
  static const char *const bad[] = {
      "{not json",
      "\"long\"",
      RECORD("regstream", "{\"name\":\"person_id\",\"type\":\"string\"}," F_PERIOD "," F_MUNI),
      RECORD("regstream", F_PID "," F_MUNI "," F_ENROLLED "," F_HOURS "," F_EDU "," F_INTERN
                                "," F_WAGE "," F_FLEX "," F_DISAB), /* no period */
      RECORD("regstream", F_PID "," F_PERIOD "," F_MUNI "," F_ENROLLED
                                ",{\"name\":\"paid_hours\",\"type\":\"double\"}," F_EDU "," F_INTERN
                                "," F_WAGE "," F_FLEX "," F_DISAB),
      RECORD("regstream",
             F_PID ",{\"name\":\"period\",\"type\":\"long\"}," F_MUNI "," F_ENROLLED "," F_HOURS
                   "," F_EDU "," F_INTERN "," F_WAGE "," F_FLEX "," F_DISAB),
      RECORD("regstream",
             F_PID "," F_PERIOD "," F_MUNI "," F_ENROLLED "," F_HOURS "," F_EDU "," F_INTERN
                   "," F_WAGE "," F_FLEX "," F_DISAB ",{\"name\":\"benefit\",\"type\":\"string\"}"),
      RECORD("regstream", F_PID "," F_PERIOD "," F_MUNI "," F_ENROLLED
                                ",{\"name\":\"paid_hours\",\"type\":[\"null\",\"string\"]}," F_EDU
                                "," F_INTERN "," F_WAGE "," F_FLEX "," F_DISAB),
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    pm_plan *p = pm_plan_from_json(bad[i], strlen(bad[i]), err, sizeof err);
    if (p)
      fail_msg("plan accepted bad schema %zu", i);
    assert_true(strlen(err) > 0);
    assert_null(strchr(err, '\n'));
  }
  pm_plan *p =
      pm_plan_from_json(pm_reader_schema_json, strlen(pm_reader_schema_json), err, sizeof err);
  assert_non_null(p);
  assert_int_equal(pm_plan_is_identity(p), 1);
  /* pm_encode -> pm_decode round trip through the fast path, many records
   * back to back */
  enum { N = 5000 };
  static uint8_t stream[N * PM_ENCODED_MAX];
  static pm_record recs[N];
  size_t len = 0;
  rng_state = 7;
  for (int i = 0; i < N; i++) {
    pm_record r = {rand_long(),
                   rand_int(),
                   rand_int(),
                   rand_float(),
                   (uint8_t)rng_below(VISITATION_COUNT),
                   (uint8_t)rng_below(BENEFIT_COUNT),
                   (uint8_t)rng_below(64),
                   0};
    recs[i] = r;
    len += pm_encode(&r, stream + len);
  }
  const uint8_t *pos = stream, *end = stream + len;
  for (int i = 0; i < N; i++) {
    pm_record got;
    assert_int_equal(pm_decode(p, &pos, end, &got), 0);
    assert_memory_equal(&got, &recs[i], sizeof got);
  }
  assert_ptr_equal(pos, end);
  pm_plan_free(p);
}

int main(void) {
  struct CMUnitTest tests[NCASES + 2];
  for (int i = 0; i < NCASES; i++)
    tests[i] = (struct CMUnitTest){cases[i].name, run_case, NULL, NULL, (void *)&cases[i]};
  tests[NCASES] = (struct CMUnitTest)cmocka_unit_test(test_handmade);
  tests[NCASES + 1] = (struct CMUnitTest)cmocka_unit_test(test_plan_errors);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
