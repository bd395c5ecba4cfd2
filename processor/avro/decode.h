/* decode.h — the specialised PersonMonth decoder and its resolution plans.
 *
 * Avro C parses a writer schema and checks it against the reader schema
 * (schemas/person_month.avsc, compiled in); from that we build, once per
 * writer schema, a flat plan: for every writer field, how to read or skip it
 * and where its value lands in a pm_record (field matching by name, int->long,
 * int/long->float promotion, enum symbols mapped by name with the reader
 * enum's default for unknown writer symbols, reader defaults for missing
 * fields, unions resolved per branch). pm_decode runs the plan on raw Avro
 * binary with no allocation; a plan for the reader schema itself takes a
 * straight-line fast path. tests/test_decode_differential.c proves it equal
 * to Avro C's generic decoder, malformed input included. */
#ifndef REGSTREAM_DECODE_H
#define REGSTREAM_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "avro/schemas.h"
#include "core/record.h"

typedef struct pm_plan pm_plan;

/* The reader schema JSON (schemas/person_month.avsc), NUL-terminated, is
 * pm_reader_schema_json from avro/schemas.h. */

/* Plan for a writer schema given as JSON text. Returns NULL and writes a
 * one-line reason to err when the schema does not parse or cannot be resolved
 * against the reader schema. */
pm_plan *pm_plan_from_json(const char *json, size_t len, char *err, size_t errlen);
void pm_plan_free(pm_plan *plan);
/* 1 when the plan is the reader schema itself (fast path), else 0. */
int pm_plan_is_identity(const pm_plan *plan);

/* Results of pm_decode besides 0 (decoded). */
enum {
  /* The bytes cannot be framed as a datum (truncated, varint longer than 10
   * bytes, union index out of range, negative length, a union branch that
   * cannot resolve): where the datum ends is unknown; *pos unspecified. */
  PM_DECODE_LOST = -1,
  /* The datum is whole but a value in it is not (an enum index or an int out
   * of range): *pos is advanced past it and *out holds every other value
   * (the bad one left at its default: the enum's default symbol, or 0). */
  PM_DECODE_BAD_VALUE = -2,
};

/* Decode one datum from [*pos, end). On success returns 0, fills *out and
 * advances *pos past the datum; else PM_DECODE_LOST or PM_DECODE_BAD_VALUE.
 * Never reads outside [*pos, end). Thread-safe: a plan is immutable after
 * creation. */
int pm_decode(const pm_plan *plan, const uint8_t **pos, const uint8_t *end, pm_record *out);

/* Decode exactly one datum filling [data, data+len): PM_DECODE_LOST also for
 * trailing bytes. */
int pm_decode_exact(const pm_plan *plan, const uint8_t *data, size_t len, pm_record *out);

/* Encode with the reader schema into buf (PM_ENCODED_MAX bytes suffice);
 * returns the encoded length. */
enum { PM_ENCODED_MAX = 64 };
size_t pm_encode(const pm_record *rec, uint8_t *buf);

#endif
