/* wire.h — the Kafka mode's own message formats on the partials topic,
 * each encoder beside its decoder (Redis rdb.c style):
 *
 *   partial row   key "PERIOD,MUNICIPALITY,VISITATION@P", value a Rollup row
 *                 (avro/rollup_codec.h): input partition P's counters of
 *                 that row;
 *   progress mark key "@P", value 16 bytes: the big-endian input offset of P
 *                 that the partials published before it cover, then the
 *                 big-endian configuration fingerprint (snapshot_fingerprint);
 *   row partition the partials partition of a row, from the row key alone,
 *                 so that all partials of a row meet in one merger.
 *
 * Pure: bytes in, values out; no Kafka client here (kafka/partials.c sends,
 * kafka/merge.c reads). */
#ifndef REGSTREAM_KAFKA_WIRE_H
#define REGSTREAM_KAFKA_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "avro/rollup_codec.h"
#include "core/record.h"

enum {
  WIRE_MAX_INPUTS = 4096, /* input partitions a key may name: 0 .. WIRE_MAX_INPUTS - 1 */
  WIRE_MARK_BYTES = 16,
  WIRE_MARK_KEY_MAX = 16,
  WIRE_PARTIAL_KEY_MAX = ROLLUP_KEY_MAX + 16,
};

/* "PERIOD,MUNICIPALITY,VISITATION@P" into out (WIRE_PARTIAL_KEY_MAX bytes),
 * NUL-terminated; returns its length. */
size_t wire_partial_key(int32_t period, int32_t municipality, visitation v, int32_t input_partition,
                        char *out);
/* "@P" into out (WIRE_MARK_KEY_MAX bytes), NUL-terminated; its length. */
size_t wire_mark_key(int32_t input_partition, char *out);

typedef enum { WIRE_BAD = -1, WIRE_PARTIAL = 0, WIRE_MARK = 1 } wire_kind;

/* What a key of the partials topic is. A partial's row key fields are
 * filled (period valid, municipality an official code); both kinds fill
 * *input_partition (0 .. WIRE_MAX_INPUTS - 1). WIRE_BAD for anything else. */
wire_kind wire_parse_key(const void *key, size_t len, int32_t *input_partition, int32_t *period,
                         int32_t *municipality, visitation *v);

void wire_mark_value(int64_t covered, uint64_t fingerprint, uint8_t out[WIRE_MARK_BYTES]);
/* 0, or -1 when value is not WIRE_MARK_BYTES long. */
int wire_mark_decode(const void *value, size_t len, int64_t *covered, uint64_t *fingerprint);

/* The partials partition (0 .. partitions - 1) of a row. */
int32_t wire_row_partition(int32_t period, int32_t municipality, visitation v, int partitions);

#endif
