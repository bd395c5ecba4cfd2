/* rollup_codec.h — the output row of SPEC §4 on the wire: Avro binary of
 * schemas/rollup.avsc (period int, municipality int, visitation enum, 25
 * counters as long) and the message key "PERIOD,MUNICIPALITY,VISITATION"
 * (e.g. "202302,751,AKTIVITETSPARAT"). Decoding is strict: truncated input,
 * over-long varints, ints out of range, enum indexes out of range and
 * trailing bytes are all rejected. No allocation; thread-safe. */
#ifndef REGSTREAM_ROLLUP_CODEC_H
#define REGSTREAM_ROLLUP_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "avro/schemas.h"
#include "core/rollup.h"

/* A decoded (or to-be-encoded) row; counters in rollup_column_names order. */
typedef struct rollup_msg {
  int32_t period;
  int32_t municipality; /* official code */
  visitation visitation;
  int64_t counts[ROLLUP_COLUMNS];
} rollup_msg;

/* 2 ints (5 bytes each), an enum (1 byte), 25 longs (10 bytes each). */
enum { ROLLUP_ENCODED_MAX = 5 + 5 + 1 + ROLLUP_COLUMNS * 10 };

/* Encode into buf (ROLLUP_ENCODED_MAX bytes suffice); returns the length. */
size_t rollup_codec_encode(const rollup_msg *msg, uint8_t *buf);
/* The same from a row as rollup_each hands it out (uint32 counters). */
size_t rollup_codec_encode_row(const rollup_row_view *row, uint8_t *buf);
/* Decode exactly one datum filling [data, data+len); 0, or -1 when malformed. */
int rollup_codec_decode(const uint8_t *data, size_t len, rollup_msg *out);

/* Longest key: "-2147483648,-2147483648,UDDANNELSESPARAT" plus NUL. */
enum { ROLLUP_KEY_MAX = 48 };
/* Writes the key, NUL-terminated, into buf (ROLLUP_KEY_MAX bytes suffice);
 * returns its length without the NUL. */
size_t rollup_key_format(int32_t period, int32_t municipality, visitation v, char *buf);
/* Parses exactly len bytes of key (not NUL-terminated): two decimal ints
 * without sign or leading '+', and a visitation symbol. 0, or -1. */
int rollup_key_parse(const char *key, size_t len, int32_t *period, int32_t *municipality,
                     visitation *v);

#endif
