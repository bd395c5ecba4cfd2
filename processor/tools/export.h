/* export.h — `regstream export`: the output topic (SPEC §4 Rollup rows, keyed
 * "PERIOD,MUNICIPALITY,VISITATION") read from the beginning to the current
 * end of every partition, latest value per key (a tombstone deletes the key),
 * written as the SPEC §4 CSV, atomically.
 *
 *   regstream export --brokers B --topic O --csv OUT.csv [-X key=value]...
 *                    [--timeout SECONDS] [--quiet] [--min-cell N]
 *   regstream export --brokers B --topic O --postgres CONNINFO [--table T]
 *                    [--csv OUT.csv] [--min-cell N] [--follow] ...
 *
 * Watermarks are queried first and every partition is assigned directly (no
 * consumer group join, no commits); reading stops when each partition
 * reaches the high watermark seen at the start. A message whose key or value
 * does not parse, a value whose (period, municipality, visitation) differs
 * from its key, or a counter outside 0..2^32-1 fails the export with the
 * message's partition and offset: the CSV is never written from bad data.
 *
 * --min-cell N (SPEC §12, core/disclosure.h): withheld rows are left out of
 * the CSV and the table, suppressed counts are empty fields / NULL.
 * --postgres (sink/postgres.h): without --follow, the rows read replace the
 * table's contents in one transaction that also stores the watermarks as
 * the table's offsets. With --follow (no --csv) it keeps consuming from the
 * stored offsets (the beginning when none are stored; then the table is
 * emptied in the first transaction) and applies each batch (about a second
 * or 20000 messages; at once when the topic is idle) in one transaction
 * together with the offsets it covers: upserts, deletes for tombstones,
 * members = 0 and withheld rows. Exactly once into the table whatever
 * moment the process dies at. A database that is down or restarting is
 * waited for (said every 10 s), never taken for bad data; SIGINT/SIGTERM
 * ends it after the batch in hand. */
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
  uint32_t min_cell;          /* --min-cell N; 0: off */
  const char *postgres;       /* --postgres CONNINFO, or NULL */
  const char *postgres_table; /* --table T (set with --postgres) */
  int follow;                 /* --follow: keep the table up to date until a signal */
} export_options;

typedef struct export_result {
  uint64_t messages;
  uint64_t tombstones;
  size_t keys;          /* live keys at the end */
  size_t rows;          /* CSV rows written (members > 0, not withheld) */
  size_t postgres_rows; /* without --follow: rows written to the table */
  uint64_t batches;     /* --follow: transactions committed */
  uint64_t changes;     /* --follow: keys upserted or deleted */
  int stopped_by;       /* --follow: the signal that ended it */
  int partitions;
  double seconds;
} export_result;

int export_run(const export_options *o, export_result *res, char *err, size_t errlen);

#endif
