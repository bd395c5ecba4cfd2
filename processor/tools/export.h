/* export.h — `regstream export`: the output topic (SPEC §4 Rollup rows, keyed
 * "PERIOD,MUNICIPALITY,VISITATION") read from the beginning to the current
 * end of every partition, latest value per key (a tombstone deletes the key),
 * written as the SPEC §4 CSV, atomically.
 *
 *   regstream export --brokers B --topic O --csv OUT.csv [-X key=value]...
 *                    [--timeout SECONDS] [--quiet]
 *
 * Watermarks are queried first and every partition is assigned directly (no
 * consumer group join, no commits); reading stops when each partition
 * reaches the high watermark seen at the start. A message whose key or value
 * does not parse, a value whose (period, municipality, visitation) differs
 * from its key, or a counter outside 0..2^32-1 fails the export with the
 * message's partition and offset: the CSV is never written from bad data. */
#ifndef REGSTREAM_EXPORT_H
#define REGSTREAM_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "tools/produce.h"

typedef struct export_options {
  const char *brokers;
  const char *topic;
  const char *csv_path;
  const char *const *conf; /* "key=value" from -X, applied last */
  int conf_count;
  int timeout_seconds; /* no progress for this long fails the export; default 30 */
  int quiet;
} export_options;

typedef struct export_result {
  uint64_t messages;
  uint64_t tombstones;
  size_t keys; /* live keys at the end */
  size_t rows; /* CSV rows written (members > 0) */
  int partitions;
  double seconds;
} export_result;

int export_run(const export_options *o, export_result *res, char *err, size_t errlen);

#endif
