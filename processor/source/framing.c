/* framing.c — Kafka message values (plain Avro or Confluent wire format) to
 * PersonMonth records, with SPEC §5 reasons for what cannot be decoded, and
 * FRAMING_RETRY for what cannot be decoded yet (its schema is unavailable).
 * Fetching schemas is schema_registry.c's. */
#include "source/framing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void framing_confluent_header(uint32_t id, uint8_t out[FRAMING_CONFLUENT_HEADER]) {
  out[0] = FRAMING_CONFLUENT_MAGIC;
  out[1] = (uint8_t)(id >> 24);
  out[2] = (uint8_t)(id >> 16);
  out[3] = (uint8_t)(id >> 8);
  out[4] = (uint8_t)id;
}

reason framing_decode(const framing *f, const uint8_t *value, size_t len, pm_record *out,
                      framing_result *info) {
  framing_result local;
  if (!info)
    info = &local;
  info->schema_id = 0;
  info->schema = SCHEMA_FOUND;
  if (!value || len == 0)
    return REASON_UNDECODABLE;
  const pm_plan *plan = f->plan;
  if (f->mode == FRAMING_CONFLUENT) {
    if (value[0] != FRAMING_CONFLUENT_MAGIC) {
      info->schema = SCHEMA_UNKNOWN;
      return REASON_SCHEMA;
    }
    if (len < FRAMING_CONFLUENT_HEADER)
      return REASON_UNDECODABLE;
    info->schema_id = (uint32_t)value[1] << 24 | (uint32_t)value[2] << 16 |
                      (uint32_t)value[3] << 8 | (uint32_t)value[4];
    plan = schema_source_lookup(f->schemas, info->schema_id, &info->schema, NULL, 0);
    if (!plan)
      return info->schema == SCHEMA_UNAVAILABLE ? FRAMING_RETRY : REASON_SCHEMA;
    value += FRAMING_CONFLUENT_HEADER;
    len -= FRAMING_CONFLUENT_HEADER;
  }
  return pm_decode_exact(plan, value, len, out) == 0 ? REASON_OK : REASON_UNDECODABLE;
}

pm_plan *framing_plan_from_file(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "cannot open schema file %s: %s", path, strerror(errno));
    return NULL;
  }
  char *text = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 8192;
      char *grown = realloc(text, cap);
      if (!grown) {
        free(text);
        fclose(f);
        snprintf(err, errlen, "out of memory reading %s", path);
        return NULL;
      }
      text = grown;
    }
    size_t n = fread(text + len, 1, 4096, f);
    len += n;
    if (n < 4096)
      break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(text);
    snprintf(err, errlen, "cannot read schema file %s", path);
    return NULL;
  }
  text[len] = '\0';
  char perr[300];
  pm_plan *plan = pm_plan_from_json(text, len, perr, sizeof perr);
  free(text);
  if (!plan)
    snprintf(err, errlen, "schema file %s: %s", path, perr);
  return plan;
}
