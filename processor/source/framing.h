/* framing.h — one Kafka message value -> one PersonMonth (SPEC §2), or the
 * SPEC §5 reason it cannot be one.
 *
 *   FRAMING_PLAIN:     the value is exactly one Avro datum of the configured
 *                      writer schema (one plan, from a schema file or the
 *                      reader schema itself).
 *   FRAMING_CONFLUENT: byte 0x00, a 4-byte big-endian schema id, exactly one
 *                      Avro datum of that writer schema (from a schema_source).
 *
 * Reasons: REASON_SCHEMA for a first byte other than 0x00 (checked first,
 * when there is a first byte), an unknown schema id or a schema that does not
 * resolve (framing_result.schema says which); REASON_UNDECODABLE for an empty
 * value, a Confluent frame shorter than 5 bytes, and bytes that are not
 * exactly one datum (truncated, bad varint/enum/union, trailing bytes).
 * Not a reason: FRAMING_RETRY when the writer schema is unavailable (the
 * registry is down, refuses the credentials, ...): the message is not bad
 * data and must neither be applied nor dead-lettered; decode it again later.
 * Thread-safe; no allocation and no lock once a schema id is known. */
#ifndef REGSTREAM_FRAMING_H
#define REGSTREAM_FRAMING_H

#include <stddef.h>
#include <stdint.h>

#include "avro/decode.h"
#include "core/validate.h"
#include "source/schema_registry.h"

typedef enum framing_mode { FRAMING_PLAIN = 0, FRAMING_CONFLUENT } framing_mode;

enum { FRAMING_CONFLUENT_HEADER = 5, FRAMING_CONFLUENT_MAGIC = 0x00 };

typedef struct framing {
  framing_mode mode;
  const pm_plan *plan;    /* FRAMING_PLAIN: the writer plan (not owned) */
  schema_source *schemas; /* FRAMING_CONFLUENT (not owned) */
} framing;

/* Details of a decode, for dead-letter output and counters. */
typedef struct framing_result {
  uint32_t schema_id;   /* FRAMING_CONFLUENT, when the header was read */
  schema_status schema; /* why a REASON_SCHEMA (SCHEMA_UNKNOWN for a bad magic) or a
                           FRAMING_RETRY (SCHEMA_UNAVAILABLE) happened */
} framing_result;

/* framing_decode's answer for a message whose schema is unavailable (the
 * source answered SCHEMA_UNAVAILABLE): outside the reasons (REASON_COUNT),
 * never a dead letter's reason or an index of per-reason counts. */
#define FRAMING_RETRY ((reason)REASON_COUNT)

/* REASON_OK with *out filled, REASON_SCHEMA / REASON_UNDECODABLE (bad data),
 * or FRAMING_RETRY (try later; info->schema_id says which id). info may be
 * NULL. */
reason framing_decode(const framing *f, const uint8_t *value, size_t len, pm_record *out,
                      framing_result *info);

/* Writes the 5-byte Confluent header for id into out. */
void framing_confluent_header(uint32_t id, uint8_t out[FRAMING_CONFLUENT_HEADER]);

/* A writer plan from an .avsc file (for FRAMING_PLAIN). NULL with a one-line
 * reason. */
pm_plan *framing_plan_from_file(const char *path, char *err, size_t errlen);

#endif
