/* fuzz_schema.c — owned by the fuzzing work (tests/fuzz/): libFuzzer harness
 * for pm_plan_from_json (processor/avro/plan.c, on top of Avro C's schema
 * parser). Input: writer schema JSON text (not NUL-terminated: the exact
 * length is passed). On failure the reason must be one non-empty line; on
 * success a few fixed byte strings are decoded with the plan
 * (fuzz_check_decode), and a plan that claims to be the identity must decode
 * them exactly as the reader schema's plan does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro/decode.h"
#include "avro/schemas.h"
#include "fuzz_common.h"

static pm_plan *reader_plan;

typedef struct sample {
  uint8_t bytes[80];
  size_t len;
} sample;

static sample samples[8];
static int nsamples;

static void add_sample(const uint8_t *bytes, size_t len) {
  memcpy(samples[nsamples].bytes, bytes, len);
  samples[nsamples].len = len;
  nsamples++;
}

static void init(void) {
  char err[300];
  reader_plan =
      pm_plan_from_json(pm_reader_schema_json, strlen(pm_reader_schema_json), err, sizeof err);
  FUZZ_CHECK(reader_plan != NULL, err);
  pm_record r = {0};
  r.person_id = 123456789;
  r.period = 202302;
  r.municipality = 751;
  r.visitation = VISITATION_AKTIVITETSPARAT;
  r.paid_hours = 37.5f;
  r.flags = PM_ENROLLED | PM_FLEXJOB;
  r.benefit = BENEFIT_KONTANTHJAELP;
  uint8_t buf[PM_ENCODED_MAX];
  add_sample(buf, pm_encode(&r, buf));
  uint8_t fill[80];
  memset(fill, 0, sizeof fill);
  add_sample(fill, 70);
  add_sample(fill, 12);
  memset(fill, 0x02, sizeof fill);
  add_sample(fill, 24);
  add_sample(fill, 80);
  memset(fill, 0xff, sizeof fill);
  add_sample(fill, 20);
  static const uint8_t mixed[] = {0x02, 0x04, 0x80, 0x01, 0x06, 0x01, 0x00, 0x00, 0x80, 0x3f,
                                  0x00, 0x01, 0x00, 0x01, 0x00, 0x10, 0x03, 0x02, 0x00, 0x00};
  add_sample(mixed, sizeof mixed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!reader_plan)
    init();
  char err[256];
  memset(err, 'x', sizeof err);
  pm_plan *plan = pm_plan_from_json((const char *)data, size, err, sizeof err);
  if (!plan) {
    fuzz_check_err(err, sizeof err);
    return 0;
  }
  int identity = pm_plan_is_identity(plan);
  for (int i = 0; i < nsamples; i++) {
    /* an exactly-sized copy, so that reads past the end are caught */
    uint8_t *datum = malloc(samples[i].len);
    FUZZ_CHECK(datum != NULL, "out of memory");
    memcpy(datum, samples[i].bytes, samples[i].len);
    fuzz_check_decode(plan, datum, samples[i].len);
    if (identity) {
      pm_record a, b;
      const uint8_t *pa = datum, *pb = datum;
      int ra = pm_decode(plan, &pa, datum + samples[i].len, &a);
      int rb = pm_decode(reader_plan, &pb, datum + samples[i].len, &b);
      FUZZ_CHECK(ra == rb, "an identity plan decodes unlike the reader schema");
      if (ra == 0)
        FUZZ_CHECK(pa == pb && memcmp(&a, &b, sizeof a) == 0,
                   "an identity plan decodes unlike the reader schema");
    }
    free(datum);
  }
  pm_plan_free(plan);
  return 0;
}
