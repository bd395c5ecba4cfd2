/* fuzz_decode.c — owned by the fuzzing work (tests/fuzz/): libFuzzer harness
 * for pm_decode / pm_decode_exact (processor/avro/decode.c). Input: byte 0
 * picks a writer schema — the reader schema (fast path) or one of the evolved
 * schemas of tests/test_decode_differential.c (interpreter: added fields of
 * every Avro type, removed enums, reordered and unknown symbols, promotions,
 * unions, reordered fields); the rest is one Avro datum. Checks (besides
 * AddressSanitizer/UBSan): records in range, and pm_decode, pm_decode_exact
 * and pm_decode with junk after the datum agree (fuzz_check_decode); for the
 * three schemas with the reader's wire layout, pm_decode also equals a small
 * independent reference decoder (result, length, record). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro/decode.h"
#include "avro/schemas.h"
#include "fuzz_common.h"

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
#define F_VIS(v) "{\"name\":\"visitation\",\"type\":" v "}"
#define F_ENROLLED "{\"name\":\"enrolled\",\"type\":\"boolean\"}"
#define F_HOURS "{\"name\":\"paid_hours\",\"type\":\"float\"}"
#define F_EDU "{\"name\":\"education\",\"type\":\"boolean\"}"
#define F_INTERN "{\"name\":\"internship\",\"type\":\"boolean\"}"
#define F_WAGE "{\"name\":\"wage_subsidy\",\"type\":\"boolean\"}"
#define F_FLEX "{\"name\":\"flexjob\",\"type\":\"boolean\"}"
#define F_DISAB "{\"name\":\"disability_pension\",\"type\":\"boolean\"}"
#define F_BEN(b) "{\"name\":\"benefit\",\"type\":" b "}"
#define RECORD(fields)                                                                             \
  "{\"type\":\"record\",\"name\":\"PersonMonth\",\"namespace\":\"regstream\",\"fields\":[" fields  \
  "]}"
#define STD_FIELDS(v, b)                                                                           \
  F_PID "," F_PERIOD "," F_MUNI "," F_VIS(v) "," F_ENROLLED "," F_HOURS "," F_EDU "," F_INTERN     \
                                             "," F_WAGE "," F_FLEX "," F_DISAB "," F_BEN(b)

/* Index 0 is the reader schema itself; the corpus (tests/fuzz/make_corpus.py)
 * encodes seeds in this order. */
static const char *const writer_schemas[] = {
    NULL, /* pm_reader_schema_json */
    RECORD(
        "{\"name\":\"source\",\"type\":\"string\",\"default\":\"\"}," F_PID ","
        "{\"name\":\"extra\",\"type\":{\"type\":\"record\",\"name\":\"Extra\",\"fields\":["
        "{\"name\":\"a\",\"type\":\"int\"},"
        "{\"name\":\"b\",\"type\":{\"type\":\"array\",\"items\":\"long\"}},"
        "{\"name\":\"c\",\"type\":{\"type\":\"map\",\"values\":\"double\"}},"
        "{\"name\":\"d\",\"type\":{\"type\":\"fixed\",\"name\":\"F3\",\"size\":3}},"
        "{\"name\":\"e\",\"type\":\"null\"}]}}," F_PERIOD "," F_MUNI "," F_VIS(
            VIS_STD) ","
                     "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}}"
                     "," F_ENROLLED "," F_HOURS ","
                     "{\"name\":\"note\",\"type\":[\"null\",\"string\",\"bytes\",{\"type\":"
                     "\"enum\","
                     "\"name\":\"Kind\",\"symbols\":[\"A\",\"B\",\"C\"]}]}," F_EDU "," F_INTERN
                     "," F_WAGE ","
                     "{\"name\":\"attrs\",\"type\":{\"type\":\"map\",\"values\":[\"null\",\"int\","
                     "\"Extra\",{\"type\":\"array\",\"items\":\"F3\"}]}}," F_FLEX "," F_DISAB
                     "," F_BEN(BEN_STD) ","
                                        "{\"name\":\"weight\",\"type\":\"double\"},"
                                        "{\"name\":\"flag\",\"type\":\"boolean\"},"
                                        "{\"name\":\"n\",\"type\":\"int\"},"
                                        "{\"name\":\"l\",\"type\":\"long\"},"
                                        "{\"name\":\"f\",\"type\":\"float\"},"
                                        "{\"name\":\"raw\",\"type\":\"bytes\"},"
                                        "{\"name\":\"empty\",\"type\":{\"type\":\"array\","
                                        "\"items\":{\"type\":\"record\","
                                        "\"name\":\"Nothing\",\"fields\":[{\"name\":\"z\",\"type\":"
                                        "\"null\"}]}}},"
                                        "{\"name\":\"chain\",\"type\":[\"null\",{\"type\":"
                                        "\"record\",\"name\":\"Node\","
                                        "\"fields\":[{\"name\":\"v\",\"type\":\"int\"},{\"name\":"
                                        "\"next\","
                                        "\"type\":[\"null\",\"Node\"]}]}]}"),
    RECORD(F_PID "," F_PERIOD "," F_MUNI "," F_ENROLLED "," F_HOURS "," F_EDU "," F_INTERN
                 "," F_WAGE "," F_FLEX "," F_DISAB),
    RECORD(STD_FIELDS(VIS_REV, BEN_REV)),
    RECORD(STD_FIELDS(VIS_EXTRA, BEN_EXTRA)),
    RECORD("{\"name\":\"person_id\",\"type\":\"int\"}," F_PERIOD "," F_MUNI
           "," F_VIS(VIS_STD) "," F_ENROLLED ",{\"name\":\"paid_hours\",\"type\":\"int\"}," F_EDU
                              "," F_INTERN "," F_WAGE "," F_FLEX "," F_DISAB "," F_BEN(BEN_STD)),
    RECORD(F_PID "," F_PERIOD "," F_MUNI "," F_VIS(
        VIS_STD) "," F_ENROLLED ",{\"name\":\"paid_hours\",\"type\":\"long\"}," F_EDU "," F_INTERN
                 "," F_WAGE "," F_FLEX "," F_DISAB "," F_BEN(BEN_STD)),
    RECORD("{\"name\":\"person_id\",\"type\":[\"null\",\"int\",\"long\"]},"
           "{\"name\":\"period\",\"type\":[\"int\",\"null\"]}," F_MUNI
           ",{\"name\":\"visitation\",\"type\":[\"null\"," VIS_STD "]}," F_ENROLLED
           ",{\"name\":\"paid_hours\",\"type\":[\"null\",\"float\"]}," F_EDU "," F_INTERN "," F_WAGE
           "," F_FLEX ",{\"name\":\"disability_pension\",\"type\":[\"boolean\","
           "\"string\"]},{\"name\":\"benefit\",\"type\":[" BEN_STD ",\"null\"]}"),
    RECORD(F_BEN(BEN_STD) "," F_FLEX "," F_HOURS "," F_PERIOD "," F_DISAB "," F_VIS(
        VIS_REV) "," F_PID "," F_EDU "," F_ENROLLED "," F_WAGE "," F_MUNI "," F_INTERN),
};
enum { NSCHEMAS = sizeof writer_schemas / sizeof writer_schemas[0] };

static pm_plan *plans[NSCHEMAS];

/* ---- an independent reference for the schemas with the reader's wire
 * layout (0: the reader schema, 3: reversed symbols, 4: extra symbols):
 * long, int, int, enum, boolean, float, 5 booleans, enum; semantics of
 * decode.h — varints of at most 10 bytes, an int out of range or an enum
 * index outside the writer's symbols is a bad value (the datum stays framed),
 * anything else that does not frame is lost; booleans true for any nonzero
 * byte; enum symbols mapped by name, unknown ones to the reader default. */
typedef struct wire_layout {
  int schema;
  int nvis, nben;
  const uint8_t *vis_map, *ben_map;
} wire_layout;

static const uint8_t vis_same[6] = {0, 1, 2, 3, 4, 5}, ben_same[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
static const uint8_t vis_rev[6] = {5, 4, 3, 2, 1, 0}, ben_rev[9] = {8, 7, 6, 5, 4, 3, 2, 1, 0};
/* UNKNOWN JOBPARAT NY_KATEGORI AKTIVITETSPARAT UDDANNELSESPARAT
 * SELVFORSOERGENDE OEVRIG ANDET; PENSION NONE .. OTHER BARSEL */
static const uint8_t vis_extra[8] = {0, 1, 0, 2, 3, 4, 5, 0};
static const uint8_t ben_extra[11] = {8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 8};

static const wire_layout layouts[] = {
    {0, 6, 9, vis_same, ben_same},
    {3, 6, 9, vis_rev, ben_rev},
    {4, 8, 11, vis_extra, ben_extra},
};

static int ref_varint(const uint8_t **p, const uint8_t *end, int64_t *v) {
  uint64_t r = 0;
  for (unsigned i = 0; i < 10; i++) {
    if (*p >= end)
      return -1;
    uint64_t b = *(*p)++;
    r |= (b & 0x7f) << (7 * i);
    if (b < 0x80) {
      *v = (int64_t)(r >> 1) ^ -(int64_t)(r & 1);
      return 0;
    }
  }
  return -1;
}

static int ref_decode(const wire_layout *L, const uint8_t *d, size_t len, size_t *used,
                      pm_record *out) {
  const uint8_t *p = d, *end = d + len;
  int64_t v;
  int bad = 0;
  memset(out, 0, sizeof *out);
  if (ref_varint(&p, end, &v) < 0)
    return PM_DECODE_LOST;
  out->person_id = v;
  for (int k = 0; k < 2; k++) {
    if (ref_varint(&p, end, &v) < 0)
      return PM_DECODE_LOST;
    if (v < INT32_MIN || v > INT32_MAX)
      bad = 1;
    else if (k == 0)
      out->period = (int32_t)v;
    else
      out->municipality = (int32_t)v;
  }
  if (ref_varint(&p, end, &v) < 0)
    return PM_DECODE_LOST;
  if (v < 0 || v >= L->nvis)
    bad = 1;
  else
    out->visitation = L->vis_map[v];
  if (end - p < 10)
    return PM_DECODE_LOST;
  static const uint8_t bits[6] = {PM_ENROLLED,     PM_EDUCATION, PM_INTERNSHIP,
                                  PM_WAGE_SUBSIDY, PM_FLEXJOB,   PM_DISABILITY_PENSION};
  out->flags = p[0] ? bits[0] : 0;
  memcpy(&out->paid_hours, p + 1, 4);
  for (int k = 1; k < 6; k++)
    out->flags |= p[4 + k] ? bits[k] : 0;
  p += 10;
  if (ref_varint(&p, end, &v) < 0)
    return PM_DECODE_LOST;
  if (v < 0 || v >= L->nben)
    bad = 1;
  else
    out->benefit = L->ben_map[v];
  *used = (size_t)(p - d);
  return bad ? PM_DECODE_BAD_VALUE : 0;
}

/* pm_decode against the reference, on the datum as given and with junk
 * after it (the fast path, for the reader schema). */
static void check_against_reference(const wire_layout *L, const uint8_t *d, size_t len) {
  pm_record want, got;
  size_t want_used = 0;
  int want_rc = ref_decode(L, d, len, &want_used, &want);
  const uint8_t *p = d;
  int rc = pm_decode(plans[L->schema], &p, d + len, &got);
  FUZZ_CHECK(rc == want_rc, "pm_decode result differs from the reference decoder");
  if (rc == PM_DECODE_LOST)
    return;
  FUZZ_CHECK((size_t)(p - d) == want_used, "pm_decode length differs from the reference decoder");
  if (rc == 0)
    FUZZ_CHECK(memcmp(&got, &want, sizeof got) == 0,
               "pm_decode record differs from the reference decoder");
}

static void make_plans(void) {
  for (int i = 0; i < NSCHEMAS; i++) {
    const char *json = i == 0 ? pm_reader_schema_json : writer_schemas[i];
    char err[300];
    plans[i] = pm_plan_from_json(json, strlen(json), err, sizeof err);
    if (!plans[i]) {
      fprintf(stderr, "fuzz_decode: writer schema %d has no plan: %s\n", i, err);
      abort();
    }
    FUZZ_CHECK(pm_plan_is_identity(plans[i]) == (i == 0), "identity flag unexpected");
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!plans[0])
    make_plans();
  if (size < 1)
    return 0;
  const pm_plan *plan = plans[data[0] % NSCHEMAS];
  /* data is an exactly-sized buffer: reads past its end are caught. */
  fuzz_check_decode(plan, data + 1, size - 1);
  for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++)
    if (layouts[i].schema == data[0] % NSCHEMAS)
      check_against_reference(&layouts[i], data + 1, size - 1);
  return 0;
}
