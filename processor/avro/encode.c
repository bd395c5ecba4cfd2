/* encode.c — pm_encode: a pm_record as Avro binary with the reader schema
 * (schemas/person_month.avsc), fields in schema order. */
#include <string.h>

#include "avro/decode.h"

static uint8_t *encode_long(uint8_t *p, int64_t v) {
  uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
  while (z > 0x7f) {
    *p++ = (uint8_t)(z | 0x80);
    z >>= 7;
  }
  *p++ = (uint8_t)z;
  return p;
}

static uint8_t *encode_float(uint8_t *p, float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  p[0] = (uint8_t)u;
  p[1] = (uint8_t)(u >> 8);
  p[2] = (uint8_t)(u >> 16);
  p[3] = (uint8_t)(u >> 24);
  return p + 4;
}

size_t pm_encode(const pm_record *rec, uint8_t *buf) {
  uint8_t *p = buf;
  p = encode_long(p, rec->person_id);
  p = encode_long(p, rec->period);
  p = encode_long(p, rec->municipality);
  p = encode_long(p, rec->visitation);
  *p++ = (rec->flags & PM_ENROLLED) != 0;
  p = encode_float(p, rec->paid_hours);
  *p++ = (rec->flags & PM_EDUCATION) != 0;
  *p++ = (rec->flags & PM_INTERNSHIP) != 0;
  *p++ = (rec->flags & PM_WAGE_SUBSIDY) != 0;
  *p++ = (rec->flags & PM_FLEXJOB) != 0;
  *p++ = (rec->flags & PM_DISABILITY_PENSION) != 0;
  p = encode_long(p, rec->benefit);
  return (size_t)(p - buf);
}
