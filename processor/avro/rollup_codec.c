/* rollup_codec.c — Avro binary encoding/decoding of Rollup rows
 * (schemas/rollup.avsc) and their "PERIOD,MUNICIPALITY,VISITATION" keys. */
#include "avro/rollup_codec.h"

#include <stdio.h>
#include <string.h>

static uint8_t *encode_long(uint8_t *p, int64_t v) {
  uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
  while (u >= 0x80) {
    *p++ = (uint8_t)(u | 0x80);
    u >>= 7;
  }
  *p++ = (uint8_t)u;
  return p;
}

size_t rollup_codec_encode(const rollup_msg *msg, uint8_t *buf) {
  uint8_t *p = buf;
  p = encode_long(p, msg->period);
  p = encode_long(p, msg->municipality);
  p = encode_long(p, (int64_t)msg->visitation);
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    p = encode_long(p, msg->counts[c]);
  return (size_t)(p - buf);
}

size_t rollup_codec_encode_row(const rollup_row_view *row, uint8_t *buf) {
  rollup_msg msg = {
      .period = row->period, .municipality = row->municipality, .visitation = row->visitation};
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    msg.counts[c] = row->counts[c];
  return rollup_codec_encode(&msg, buf);
}

/* A zigzag long within [*pos, end): 0, or -1 when truncated or longer than
 * 64 bits (more than 10 bytes, or a 10th byte above 1). */
static int decode_long(const uint8_t **pos, const uint8_t *end, int64_t *out) {
  const uint8_t *p = *pos;
  uint64_t u = 0;
  for (unsigned i = 0; i < 10; i++) {
    if (p >= end)
      return -1;
    uint64_t b = *p++;
    if (i == 9 && b > 1)
      return -1;
    u |= (b & 0x7f) << (7 * i);
    if (b < 0x80) {
      *out = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
      *pos = p;
      return 0;
    }
  }
  return -1;
}

static int decode_int(const uint8_t **pos, const uint8_t *end, int32_t *out) {
  int64_t v;
  if (decode_long(pos, end, &v) < 0 || v < INT32_MIN || v > INT32_MAX)
    return -1;
  *out = (int32_t)v;
  return 0;
}

int rollup_codec_decode(const uint8_t *data, size_t len, rollup_msg *out) {
  const uint8_t *p = data, *end = data + len;
  int32_t vis;
  if (!data || decode_int(&p, end, &out->period) < 0 ||
      decode_int(&p, end, &out->municipality) < 0 || decode_int(&p, end, &vis) < 0 || vis < 0 ||
      vis >= VISITATION_COUNT)
    return -1;
  out->visitation = (visitation)vis;
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    if (decode_long(&p, end, &out->counts[c]) < 0)
      return -1;
  return p == end ? 0 : -1;
}

size_t rollup_key_format(int32_t period, int32_t municipality, visitation v, char *buf) {
  const char *sym = (unsigned)v < VISITATION_COUNT ? visitation_symbols[v] : "?";
  int n = snprintf(buf, ROLLUP_KEY_MAX, "%d,%d,%s", (int)period, (int)municipality, sym);
  return n < 0 ? 0 : (size_t)n;
}

/* Digits up to the next comma: 0 with *out, or -1. */
static int parse_uint(const char **pos, const char *end, int32_t *out) {
  const char *p = *pos;
  int64_t v = 0;
  if (p >= end || *p < '0' || *p > '9')
    return -1;
  while (p < end && *p >= '0' && *p <= '9') {
    v = v * 10 + (*p++ - '0');
    if (v > INT32_MAX)
      return -1;
  }
  if (p >= end || *p != ',')
    return -1;
  *out = (int32_t)v;
  *pos = p + 1;
  return 0;
}

int rollup_key_parse(const char *key, size_t len, int32_t *period, int32_t *municipality,
                     visitation *v) {
  const char *p = key, *end = key + len;
  if (!key || parse_uint(&p, end, period) < 0 || parse_uint(&p, end, municipality) < 0)
    return -1;
  size_t rest = (size_t)(end - p);
  for (int s = 0; s < VISITATION_COUNT; s++)
    if (strlen(visitation_symbols[s]) == rest && memcmp(visitation_symbols[s], p, rest) == 0) {
      *v = (visitation)s;
      return 0;
    }
  return -1;
}
