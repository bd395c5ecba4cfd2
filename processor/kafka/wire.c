/* wire.c — see wire.h: partial-row keys, progress marks and the row
 * partition, each written beside its reader. */
#include "kafka/wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/municipality.h"
#include "core/period.h"
#include "core/personmap.h"

/* ---- keys: "ROW@P" and "@P" ---- */

size_t wire_partial_key(int32_t period, int32_t municipality, visitation v, int32_t input_partition,
                        char *out) {
  size_t n = rollup_key_format(period, municipality, v, out);
  return n + (size_t)snprintf(out + n, WIRE_PARTIAL_KEY_MAX - n, "@%" PRId32, input_partition);
}

size_t wire_mark_key(int32_t input_partition, char *out) {
  return (size_t)snprintf(out, WIRE_MARK_KEY_MAX, "@%" PRId32, input_partition);
}

/* The decimal input partition after '@': 1 to 15 digits, below
 * WIRE_MAX_INPUTS. 0, or -1. */
static int parse_partition(const char *digits, size_t n, int32_t *out) {
  if (n == 0 || n >= 16)
    return -1;
  long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (digits[i] < '0' || digits[i] > '9')
      return -1;
    v = v * 10 + (digits[i] - '0');
    if (v >= WIRE_MAX_INPUTS)
      return -1;
  }
  *out = (int32_t)v;
  return 0;
}

wire_kind wire_parse_key(const void *key, size_t len, int32_t *input_partition, int32_t *period,
                         int32_t *municipality, visitation *v) {
  const char *k = key, *at = k ? memchr(k, '@', len) : NULL;
  if (!at || parse_partition(at + 1, len - (size_t)(at + 1 - k), input_partition) < 0)
    return WIRE_BAD;
  if (at == k)
    return WIRE_MARK;
  if (rollup_key_parse(k, (size_t)(at - k), period, municipality, v) < 0 ||
      !period_valid(*period) || municipality_index(*municipality) < 0)
    return WIRE_BAD;
  return WIRE_PARTIAL;
}

/* ---- progress mark values ---- */

void wire_mark_value(int64_t covered, uint64_t fingerprint, uint8_t out[WIRE_MARK_BYTES]) {
  for (int i = 0; i < 8; i++) {
    out[i] = (uint8_t)((uint64_t)covered >> (56 - 8 * i));
    out[8 + i] = (uint8_t)(fingerprint >> (56 - 8 * i));
  }
}

int wire_mark_decode(const void *value, size_t len, int64_t *covered, uint64_t *fingerprint) {
  if (len != WIRE_MARK_BYTES || !value)
    return -1;
  const uint8_t *b = value;
  uint64_t offset = 0, fp = 0;
  for (int i = 0; i < 8; i++) {
    offset = offset << 8 | b[i];
    fp = fp << 8 | b[8 + i];
  }
  *covered = (int64_t)offset;
  *fingerprint = fp;
  return 0;
}

/* ---- where a row's partials meet ---- */

int32_t wire_row_partition(int32_t period, int32_t municipality, visitation v, int partitions) {
  uint64_t h = personmap_hash(((int64_t)period * 1000 + municipality) * 8 + (int64_t)v);
  return (int32_t)(h % (uint64_t)partitions);
}
