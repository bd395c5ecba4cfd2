/* postgres.h — the PostgreSQL sink (SPEC §12): the rollup table kept exact,
 * through libpq (the only room that links it; no librdkafka here).
 *
 * The table (default regstream_rollup, `--table [SCHEMA.]NAME`) holds the
 * SPEC §4 columns in order: period integer, municipality integer, visitation
 * text (collation "C", so ORDER BY is the CSV's byte order), every count
 * bigint (NULL: suppressed under --min-cell), primary key (period,
 * municipality, visitation). It is created when missing; a table of another
 * shape is an error naming the difference. Beside it, in the same schema,
 * regstream_offsets(tbl, topic, partition, next_offset) holds, per table and
 * topic partition, the next offset of the output topic that the table does
 * not yet reflect: written in the same transaction as the rows, so a
 * follower that is killed at any moment resumes exactly there.
 *
 * Failures come in two kinds: transient (the server is down, restarting, the
 * connection broke, a serialization failure: *transient = 1; try again) and
 * the others (login refused, permission denied, a wrong table: say what to do
 * and stop). No text here ever holds the password: libpq's messages are
 * scrubbed of it and of the connection string.
 *
 * Owns the SQL and the connection; what is in the rows (the rules, the
 * disclosure rule of core/disclosure.h) and when to retry stay with the
 * callers. */
#ifndef REGSTREAM_SINK_POSTGRES_H
#define REGSTREAM_SINK_POSTGRES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/rollup.h"

#define PG_DEFAULT_TABLE "regstream_rollup"

typedef struct pg_sink pg_sink;

/* 0 when conninfo is a connection string libpq takes (key=value ... or a
 * postgresql:// URI) and table a valid [schema.]name of lower-case letters,
 * digits and '_'; else -1 with a one-line reason (never the string itself). */
int pg_check_options(const char *conninfo, const char *table, char *err, size_t errlen);

/* Connects, makes the table and the offsets table when missing, checks their
 * shape. NULL with a reason on failure (*transient: 1 when trying again may
 * help). */
pg_sink *pg_open(const char *conninfo, const char *table, int *transient, char *err, size_t errlen);

/* pg_open, tried again on transient failures with backoff (0.5 s doubling to
 * 5 s), saying so every 10 s (log_msg, component "postgres"), for up to
 * max_wait_s seconds (0: until it works or stop_requested()). NULL on a
 * failure that is not transient, on the time running out or on a stop. */
pg_sink *pg_open_wait(const char *conninfo, const char *table, int max_wait_s, char *err,
                      size_t errlen);

void pg_close(pg_sink *pg);

/* "table T at HOST:PORT/DB" (for messages; no user, no password). */
const char *pg_describe(const pg_sink *pg);

/* A topic partition's next offset, for the offsets table. */
typedef struct pg_offset {
  int32_t partition;
  int64_t next_offset;
} pg_offset;

/* One transaction: the table's contents replaced by the rows of totals
 * (members > 0) under --min-cell min_cell (withheld rows left out,
 * suppressed counts NULL), the offsets of this table forgotten, then, when
 * topic is non-NULL, offsets[0..count) stored for it. *rows: rows written.
 * 0, or -1 with a reason and *transient. */
int pg_replace(pg_sink *pg, const rollup *totals, uint32_t min_cell, const char *topic,
               const pg_offset *offsets, int count, size_t *rows, int *transient, char *err,
               size_t errlen);

/* The stored next offsets of topic for this table: next[p] for p <
 * partitions (-1 where none is stored); *stored: how many rows there were
 * (0: the table has never followed this topic). 0, or -1. */
int pg_read_offsets(pg_sink *pg, const char *topic, int64_t *next, int partitions, int *stored,
                    int *transient, char *err, size_t errlen);

/* A change to one key: the full row (counts: ROLLUP_COLUMNS), or a delete
 * (present 0). A row with members 0, or withheld under min_cell, deletes. */
typedef struct pg_change {
  int32_t period;
  int32_t municipality;
  int visitation;
  int present;
  const uint32_t *counts;
} pg_change;

/* One transaction: (clear_first: every row of the table deleted first) the
 * changes applied (INSERT ... ON CONFLICT DO UPDATE, or DELETE), suppressed
 * counts NULL, and offsets[0..count) stored for topic. 0, or -1. */
int pg_apply(pg_sink *pg, int clear_first, const pg_change *changes, size_t n, uint32_t min_cell,
             const char *topic, const pg_offset *offsets, int count, int *transient, char *err,
             size_t errlen);

/* The table as the SPEC §4 CSV (header, rows ORDER BY period, municipality,
 * visitation; NULL counts as empty fields), in a temporary file rewound for
 * reading: what `regstream report` reads instead of --csv. Makes nothing
 * (a missing table is an error); SELECT is all it needs. NULL with a
 * reason (waits for a server that is down for up to 30 s). */
FILE *pg_read_rollup_csv(const char *conninfo, const char *table, char *err, size_t errlen);

#endif
