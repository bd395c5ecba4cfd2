/* postgres.c — the PostgreSQL sink (see postgres.h): connection, the two
 * tables (made, checked), the replace of file mode and `export`, the
 * transactions of `export --follow` with their offsets, and the table read
 * back as CSV for `report`. libpq stays in this file; the disclosure rule
 * and the CSV line format come from core/disclosure.h and sink/csv.h, so the
 * table holds exactly what the CSV would. */
#include "sink/postgres.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/disclosure.h"
#include "sink/csv.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/stop.h"

enum { NAME_MAX_LEN = 63, COPY_CHUNK = 1 << 16, COLS = 3 + ROLLUP_COLUMNS };

struct pg_sink {
  PGconn *conn;
  char table[2 * NAME_MAX_LEN + 2];    /* as given: [schema.]name */
  char offsets[2 * NAME_MAX_LEN + 20]; /* [schema.]regstream_offsets */
  char password[512];                  /* to scrub from messages */
  char describe[600];
  int prepared;
};

/* ---------------------------------------------------------------- texts */

/* Replaces every occurrence of secret in s (in place, s of size cap) by
 * "[hidden]" (left to right, never looking into what it put there). */
static void hide(char *s, size_t cap, const char *secret) {
  size_t n = strlen(secret);
  if (n == 0)
    return;
  char *copy = strdup(s);
  if (!copy) {
    snprintf(s, cap, "[message hidden]");
    return;
  }
  size_t o = 0;
  for (const char *p = copy; *p && o + 1 < cap;) {
    if (!strncmp(p, secret, n)) {
      o += (size_t)snprintf(s + o, cap - o, "[hidden]");
      if (o >= cap)
        o = cap - 1;
      p += n;
    } else {
      s[o++] = *p++;
    }
  }
  s[o] = 0;
  free(copy);
}

/* libpq's message as one line, without the password (of the connection
 * string, or PGPASSWORD), into out. */
static void one_line(char *out, size_t cap, const char *msg, const char *password) {
  size_t o = 0;
  int space = 0;
  for (const char *p = msg ? msg : ""; *p && o + 1 < cap; p++) {
    if (isspace((unsigned char)*p)) {
      space = o > 0;
      continue;
    }
    if (space && o + 2 < cap)
      out[o++] = ' ';
    space = 0;
    out[o++] = *p;
  }
  out[o] = 0;
  if (password)
    hide(out, cap, password);
  const char *env = getenv("PGPASSWORD");
  if (env)
    hide(out, cap, env);
}

/* The password of a connection string, or "" (also when it does not parse). */
static void password_of(const char *conninfo, char *out, size_t cap) {
  out[0] = 0;
  char *errmsg = NULL;
  PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg);
  PQfreemem(errmsg);
  if (!opts)
    return;
  for (PQconninfoOption *o = opts; o->keyword; o++)
    if (!strcmp(o->keyword, "password") && o->val)
      snprintf(out, cap, "%s", o->val);
  PQconninfoFree(opts);
}

static int valid_name(const char *s, size_t n) {
  if (n == 0 || n > NAME_MAX_LEN || !(islower((unsigned char)s[0]) || s[0] == '_'))
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
      return 0;
  return 1;
}

int pg_check_options(const char *conninfo, const char *table, char *err, size_t errlen) {
  char *errmsg = NULL;
  PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg);
  PQfreemem(errmsg); /* it may quote the string, password and all: never shown */
  if (!opts) {
    snprintf(err, errlen,
             "--postgres needs a connection string as libpq takes it (key=value pairs such as "
             "'host=/run/postgresql dbname=bi', or a postgresql:// URI); this one does not parse");
    return -1;
  }
  PQconninfoFree(opts);
  const char *dot = strchr(table, '.');
  if (dot ? !valid_name(table, (size_t)(dot - table)) || !valid_name(dot + 1, strlen(dot + 1))
          : !valid_name(table, strlen(table))) {
    snprintf(err, errlen,
             "--table needs NAME or SCHEMA.NAME of lower-case letters, digits and '_' (at most "
             "%d each), got '%.80s'",
             NAME_MAX_LEN, table);
    return -1;
  }
  return 0;
}

/* ---------------------------------------------------------------- errors */

/* SQLSTATEs worth trying again: connection exceptions (08), the server
 * shutting down or starting (57P01..57P03), serialization failures and
 * deadlocks (40001, 40P01), insufficient resources (53: disk full, too many
 * connections), system errors (58). */
static int transient_state(const char *state) {
  if (!state)
    return 0;
  return !strncmp(state, "08", 2) || !strncmp(state, "57P0", 4) || !strcmp(state, "40001") ||
         !strcmp(state, "40P01") || !strncmp(state, "53", 2) || !strncmp(state, "58", 2);
}

/* A failed statement: the reason into err, *transient set; returns -1. */
static int statement_failed(pg_sink *pg, PGresult *r, const char *what, int *transient, char *err,
                            size_t errlen) {
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  char msg[700];
  one_line(msg, sizeof msg,
           r && PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r) : PQerrorMessage(pg->conn),
           pg->password);
  *transient = PQstatus(pg->conn) != CONNECTION_OK || transient_state(state);
  if (state && !strcmp(state, "42501"))
    snprintf(err, errlen,
             "PostgreSQL refused %s on %s: %s (grant the user CREATE on the schema, or make the "
             "tables beforehand and grant SELECT, INSERT, UPDATE, DELETE on %s and %s)",
             what, pg->describe, msg, pg->table, pg->offsets);
  else
    snprintf(err, errlen, "%s%s on %s failed: %s", *transient ? "PostgreSQL unavailable: " : "",
             what, pg->describe, msg);
  if (r)
    PQclear(r);
  return -1;
}

/* Runs sql (no parameters); 0, or -1 as statement_failed. */
static int exec(pg_sink *pg, const char *sql, const char *what, int *transient, char *err,
                size_t errlen) {
  PGresult *r = PQexec(pg->conn, sql);
  ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
    return statement_failed(pg, r, what, transient, err, errlen);
  PQclear(r);
  return 0;
}

static int exec_params(pg_sink *pg, const char *stmt, int n, const char *const *values,
                       const char *what, int *transient, char *err, size_t errlen) {
  PGresult *r = PQexecPrepared(pg->conn, stmt, n, values, NULL, NULL, 0);
  ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
    return statement_failed(pg, r, what, transient, err, errlen);
  PQclear(r);
  return 0;
}

static void rollback(pg_sink *pg) {
  if (PQstatus(pg->conn) == CONNECTION_OK && PQtransactionStatus(pg->conn) != PQTRANS_IDLE)
    PQclear(PQexec(pg->conn, "ROLLBACK"));
}

/* Notices (WARNING and up: client_min_messages) as our own lines. */
static void on_notice(void *arg, const char *message) {
  char line[700];
  one_line(line, sizeof line, message, arg);
  log_msg(LOG_WARN, "postgres", "%s", line);
}

/* ---------------------------------------------------------------- tables */

static int append(char *buf, size_t cap, size_t *used, const char *fmt, const char *a) {
  int n = snprintf(buf + *used, cap - *used, fmt, a);
  if (n < 0 || (size_t)n >= cap - *used)
    return -1;
  *used += (size_t)n;
  return 0;
}

/* CREATE TABLE IF NOT EXISTS of the rollup table. */
static void create_sql(const pg_sink *pg, char *sql, size_t cap) {
  size_t u = 0;
  append(sql, cap, &u, "CREATE TABLE IF NOT EXISTS %s (period integer NOT NULL, ", pg->table);
  append(sql, cap, &u, "%s",
         "municipality integer NOT NULL, visitation text COLLATE \"C\" NOT NULL");
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    append(sql, cap, &u, ", %s bigint", rollup_column_names[c]);
  append(sql, cap, &u, "%s", ", PRIMARY KEY (period, municipality, visitation))");
}

/* The table's columns and primary key against SPEC §12. */
static int check_shape(pg_sink *pg, int *transient, char *err, size_t errlen) {
  const char *values[1] = {pg->table};
  PGresult *r = PQexecParams(pg->conn,
                             "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM "
                             "pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 "
                             "AND NOT a.attisdropped ORDER BY a.attnum",
                             1, NULL, values, NULL, NULL, 0);
  if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
    return statement_failed(pg, r, "reading the table's columns", transient, err, errlen);
  int n = PQntuples(r);
  for (int i = 0; i < COLS || i < n; i++) {
    const char *want = i == 0 ? "period" : i == 1 ? "municipality" : i == 2 ? "visitation" : NULL;
    if (i >= 3 && i < COLS)
      want = rollup_column_names[i - 3];
    const char *name = i < n ? PQgetvalue(r, i, 0) : NULL;
    const char *type = i < n ? PQgetvalue(r, i, 1) : NULL;
    int type_ok = type && (i == 2  ? !strcmp(type, "text")
                           : i < 2 ? !strcmp(type, "integer") || !strcmp(type, "bigint")
                                   : !strcmp(type, "bigint"));
    if (!want || !name || strcmp(name, want) != 0 || !type_ok) {
      snprintf(err, errlen,
               "table %s is not the rollup table of SPEC §12: column %d is %s%s%s, want %s %s "
               "(the SPEC §4 columns in order; drop the table or choose another --table)",
               pg->table, i + 1, name ? name : "missing", type ? " " : "", type ? type : "",
               want ? want : "no column",
               !want    ? ""
               : i == 2 ? "text"
               : i < 2  ? "integer"
                        : "bigint");
      PQclear(r);
      *transient = 0;
      return -1;
    }
  }
  PQclear(r);
  r = PQexecParams(pg->conn,
                   "SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM pg_index i CROSS JOIN "
                   "unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) JOIN pg_attribute "
                   "a ON a.attrelid = i.indrelid AND a.attnum = k.attnum WHERE i.indrelid = "
                   "to_regclass($1) AND i.indisprimary",
                   1, NULL, values, NULL, NULL, 0);
  if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
    return statement_failed(pg, r, "reading the table's primary key", transient, err, errlen);
  const char *key = PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : "";
  if (strcmp(key, "period,municipality,visitation") != 0) {
    snprintf(err, errlen,
             "table %s is not the rollup table of SPEC §12: its primary key is (%s), want "
             "(period, municipality, visitation) (drop the table or choose another --table)",
             pg->table, key[0] ? key : "none");
    PQclear(r);
    *transient = 0;
    return -1;
  }
  PQclear(r);
  return 0;
}

static int prepare(pg_sink *pg, const char *name, const char *sql, int *transient, char *err,
                   size_t errlen) {
  PGresult *r = PQprepare(pg->conn, name, sql, 0, NULL);
  if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
    return statement_failed(pg, r, "preparing a statement", transient, err, errlen);
  PQclear(r);
  return 0;
}

static int prepare_all(pg_sink *pg, int *transient, char *err, size_t errlen) {
  char sql[4096];
  size_t u = 0;
  append(sql, sizeof sql, &u, "INSERT INTO %s VALUES ($1, $2, $3", pg->table);
  for (int c = 0; c < ROLLUP_COLUMNS; c++) {
    char p[16];
    snprintf(p, sizeof p, "%d", c + 4);
    append(sql, sizeof sql, &u, ", $%s", p);
  }
  append(sql, sizeof sql, &u, "%s",
         ") ON CONFLICT (period, municipality, visitation) DO UPDATE SET ");
  for (int c = 0; c < ROLLUP_COLUMNS; c++) {
    append(sql, sizeof sql, &u, c ? ", %s" : "%s", rollup_column_names[c]);
    append(sql, sizeof sql, &u, " = EXCLUDED.%s", rollup_column_names[c]);
  }
  if (prepare(pg, "rs_upsert", sql, transient, err, errlen) < 0)
    return -1;
  u = 0;
  append(sql, sizeof sql, &u,
         "DELETE FROM %s WHERE period = $1 AND municipality = $2 AND visitation = $3", pg->table);
  if (prepare(pg, "rs_delete", sql, transient, err, errlen) < 0)
    return -1;
  u = 0;
  append(sql, sizeof sql, &u, "INSERT INTO %s VALUES ($1, $2, $3, $4) ", pg->offsets);
  append(sql, sizeof sql, &u, "%s",
         "ON CONFLICT (tbl, topic, \"partition\") DO UPDATE SET next_offset = "
         "EXCLUDED.next_offset");
  if (prepare(pg, "rs_offset", sql, transient, err, errlen) < 0)
    return -1;
  u = 0;
  append(sql, sizeof sql, &u, "SELECT \"partition\", next_offset FROM %s ", pg->offsets);
  append(sql, sizeof sql, &u, "%s", "WHERE tbl = $1 AND topic = $2");
  if (prepare(pg, "rs_offsets_read", sql, transient, err, errlen) < 0)
    return -1;
  u = 0;
  append(sql, sizeof sql, &u, "DELETE FROM %s WHERE tbl = $1", pg->offsets);
  return prepare(pg, "rs_offsets_forget", sql, transient, err, errlen);
}

/* ---------------------------------------------------------------- connect */

/* A refused login or a wrong setting, as opposed to a server that is not
 * there (yet): libpq's connection errors carry no SQLSTATE, so by text. */
static int login_refused(const char *msg) {
  static const char *const marks[] = {"authentication failed", "pg_hba.conf",
                                      "does not exist",        "permission denied",
                                      "no password supplied",  "password is required",
                                      "certificate",           "invalid",
                                      "unsupported",           "too many connections for role"};
  for (size_t i = 0; i < sizeof marks / sizeof *marks; i++)
    if (strstr(msg, marks[i]))
      return 1;
  return 0;
}

/* 1 in *missing when no relation has that name. 0, or -1. */
static int table_missing(pg_sink *pg, const char *name, int *missing, int *transient, char *err,
                         size_t errlen) {
  const char *values[1] = {name};
  PGresult *r =
      PQexecParams(pg->conn, "SELECT to_regclass($1) IS NULL", 1, NULL, values, NULL, NULL, 0);
  if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
    return statement_failed(pg, r, "looking the table up", transient, err, errlen);
  *missing = PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  return 0;
}

/* pg_open; create 0: for reading only (nothing made, no statements
 * prepared; a missing table is an error). */
static pg_sink *open_sink(const char *conninfo, const char *table, int create, int *transient,
                          char *err, size_t errlen) {
  *transient = 0;
  if (pg_check_options(conninfo, table, err, errlen) < 0)
    return NULL;
  pg_sink *pg = calloc(1, sizeof *pg);
  if (!pg) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  snprintf(pg->table, sizeof pg->table, "%s", table);
  const char *dot = strchr(table, '.');
  snprintf(pg->offsets, sizeof pg->offsets, "%.*sregstream_offsets",
           dot ? (int)(dot - table) + 1 : 0, table);
  password_of(conninfo, pg->password, sizeof pg->password);
  static const char *const keys[] = {"connect_timeout", "dbname", "fallback_application_name",
                                     NULL};
  const char *values[] = {"10", conninfo, "regstream", NULL};
  pg->conn = PQconnectdbParams(keys, values, 1);
  if (!pg->conn || PQstatus(pg->conn) != CONNECTION_OK) {
    char msg[700];
    one_line(msg, sizeof msg, pg->conn ? PQerrorMessage(pg->conn) : "out of memory", pg->password);
    if (pg->conn && login_refused(msg))
      snprintf(err, errlen,
               "PostgreSQL refused the connection: %s (check the user, password and database in "
               "--postgres, ~/.pgpass or PGPASSWORD, and the server's pg_hba.conf)",
               msg);
    else {
      *transient = 1;
      snprintf(err, errlen, "PostgreSQL unavailable: %s", msg);
    }
    pg_close(pg);
    return NULL;
  }
  PQsetNoticeProcessor(pg->conn, on_notice, pg->password);
  snprintf(pg->describe, sizeof pg->describe, "table %s at %s:%s/%s", pg->table, PQhost(pg->conn),
           PQport(pg->conn), PQdb(pg->conn));
  char sql[4096];
  create_sql(pg, sql, sizeof sql);
  char offsets_sql[512];
  snprintf(
      offsets_sql, sizeof offsets_sql,
      "CREATE TABLE IF NOT EXISTS %s (tbl text NOT NULL, topic text NOT NULL, \"partition\" "
      "integer NOT NULL, next_offset bigint NOT NULL, PRIMARY KEY (tbl, topic, \"partition\"))",
      pg->offsets);
  int missing = 0, offsets_missing = 0;
  if (exec(pg, "SET client_min_messages = warning", "setting up the session", transient, err,
           errlen) < 0 ||
      table_missing(pg, pg->table, &missing, transient, err, errlen) < 0 ||
      table_missing(pg, pg->offsets, &offsets_missing, transient, err, errlen) < 0)
    goto fail;
  if (missing && !create) {
    snprintf(err, errlen,
             "%s does not exist (regstream run --postgres or export --postgres make it)",
             pg->describe);
    goto fail;
  }
  /* CREATE only what is missing: IF NOT EXISTS alone would ask for CREATE on
   * the schema even when the table is there. */
  if ((missing && exec(pg, sql, "creating the table", transient, err, errlen) < 0) ||
      (create && offsets_missing &&
       exec(pg, offsets_sql, "creating the offsets table", transient, err, errlen) < 0) ||
      check_shape(pg, transient, err, errlen) < 0 ||
      (create && prepare_all(pg, transient, err, errlen) < 0)) {
  fail:
    pg_close(pg);
    return NULL;
  }
  return pg;
}

pg_sink *pg_open(const char *conninfo, const char *table, int *transient, char *err,
                 size_t errlen) {
  return open_sink(conninfo, table, 1, transient, err, errlen);
}

static void nap(double seconds) {
  struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stop_requested())
    ;
}

static pg_sink *open_wait(const char *conninfo, const char *table, int create, int max_wait_s,
                          char *err, size_t errlen) {
  double start = clock_seconds(), said = -1, delay = 0.5;
  for (;;) {
    int transient = 0;
    pg_sink *pg = open_sink(conninfo, table, create, &transient, err, errlen);
    if (pg) {
      if (said >= 0)
        log_msg(LOG_INFO, "postgres", "PostgreSQL is back after %.0f s: %s",
                clock_seconds() - start, pg->describe);
      return pg;
    }
    if (!transient)
      return NULL;
    double now = clock_seconds();
    if (max_wait_s > 0 && now - start >= max_wait_s) {
      char why[700];
      snprintf(why, sizeof why, "%s", err);
      snprintf(err, errlen, "gave up after %d s: %s", max_wait_s, why);
      return NULL;
    }
    if (said < 0 || now - said >= 10) {
      log_msg(LOG_WARN, "postgres", "%s; trying again (waiting %.0f s so far)", err, now - start);
      said = now;
    }
    /* Sleep the backoff, but wake for the next "every 10 s" line. */
    double until = now + delay;
    if (until > said + 10)
      until = said + 10;
    while (clock_seconds() < until && !stop_requested())
      nap(0.1);
    if (stop_requested()) {
      char why[700];
      snprintf(why, sizeof why, "%s", err);
      snprintf(err, errlen, "stopped while waiting for PostgreSQL: %s", why);
      return NULL;
    }
    delay = delay * 2 > 5 ? 5 : delay * 2;
  }
}

pg_sink *pg_open_wait(const char *conninfo, const char *table, int max_wait_s, char *err,
                      size_t errlen) {
  return open_wait(conninfo, table, 1, max_wait_s, err, errlen);
}

void pg_close(pg_sink *pg) {
  if (!pg)
    return;
  if (pg->conn)
    PQfinish(pg->conn);
  memset(pg->password, 0, sizeof pg->password);
  free(pg);
}

const char *pg_describe(const pg_sink *pg) {
  return pg->describe;
}

/* ---------------------------------------------------------------- writing */

static int store_offsets(pg_sink *pg, const char *topic, const pg_offset *offsets, int count,
                         int *transient, char *err, size_t errlen) {
  for (int i = 0; i < count; i++) {
    char part[16], next[24];
    snprintf(part, sizeof part, "%" PRId32, offsets[i].partition);
    snprintf(next, sizeof next, "%" PRId64, offsets[i].next_offset);
    const char *v[4] = {pg->table, topic, part, next};
    if (exec_params(pg, "rs_offset", 4, v, "storing the topic offsets", transient, err, errlen) < 0)
      return -1;
  }
  return 0;
}

typedef struct copy_ctx {
  pg_sink *pg;
  uint32_t min_cell;
  size_t used, rows;
  int failed;
  char buf[COPY_CHUNK];
} copy_ctx;

static int copy_flush(copy_ctx *c) {
  if (c->used && PQputCopyData(c->pg->conn, c->buf, (int)c->used) != 1)
    c->failed = 1;
  c->used = 0;
  return c->failed ? -1 : 0;
}

static int copy_row(const rollup_row_view *row, void *ctx) {
  copy_ctx *c = ctx;
  if (c->used + CSV_LINE_MAX > sizeof c->buf && copy_flush(c) < 0)
    return -1;
  size_t n = csv_format_row(c->buf + c->used, CSV_LINE_MAX, row, c->min_cell);
  c->used += n;
  c->rows += n > 0;
  return 0;
}

int pg_replace(pg_sink *pg, const rollup *totals, uint32_t min_cell, const char *topic,
               const pg_offset *offsets, int count, size_t *rows, int *transient, char *err,
               size_t errlen) {
  *transient = 0;
  char sql[300];
  const char *forget[1] = {pg->table};
  if (exec(pg, "BEGIN", "starting a transaction", transient, err, errlen) < 0)
    goto fail;
  snprintf(sql, sizeof sql, "DELETE FROM %s", pg->table);
  if (exec(pg, sql, "emptying the table", transient, err, errlen) < 0 ||
      exec_params(pg, "rs_offsets_forget", 1, forget, "forgetting the topic offsets", transient,
                  err, errlen) < 0)
    goto fail;
  snprintf(sql, sizeof sql, "COPY %s FROM STDIN (FORMAT csv)", pg->table);
  PGresult *r = PQexec(pg->conn, sql);
  if (!r || PQresultStatus(r) != PGRES_COPY_IN) {
    statement_failed(pg, r, "COPY into the table", transient, err, errlen);
    goto fail;
  }
  PQclear(r);
  copy_ctx *c = malloc(sizeof *c);
  if (!c) {
    PQputCopyEnd(pg->conn, "out of memory");
    PQclear(PQgetResult(pg->conn));
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  c->pg = pg;
  c->min_cell = min_cell;
  c->used = c->rows = 0;
  c->failed = 0;
  rollup_each(totals, copy_row, c);
  copy_flush(c);
  int failed = c->failed;
  *rows = c->rows;
  free(c);
  if (PQputCopyEnd(pg->conn, failed ? "sending the rows failed" : NULL) != 1)
    failed = 1;
  r = PQgetResult(pg->conn);
  if (failed || !r || PQresultStatus(r) != PGRES_COMMAND_OK) {
    statement_failed(pg, r, "COPY into the table", transient, err, errlen);
    while ((r = PQgetResult(pg->conn)) != NULL)
      PQclear(r);
    goto fail;
  }
  PQclear(r);
  while ((r = PQgetResult(pg->conn)) != NULL)
    PQclear(r);
  if (topic && store_offsets(pg, topic, offsets, count, transient, err, errlen) < 0)
    goto fail;
  if (exec(pg, "COMMIT", "committing", transient, err, errlen) < 0)
    goto fail;
  return 0;
fail:
  rollback(pg);
  return -1;
}

int pg_read_offsets(pg_sink *pg, const char *topic, int64_t *next, int partitions, int *stored,
                    int *transient, char *err, size_t errlen) {
  *transient = 0;
  *stored = 0;
  for (int p = 0; p < partitions; p++)
    next[p] = -1;
  const char *v[2] = {pg->table, topic};
  PGresult *r = PQexecPrepared(pg->conn, "rs_offsets_read", 2, v, NULL, NULL, 0);
  if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
    return statement_failed(pg, r, "reading the topic offsets", transient, err, errlen);
  *stored = PQntuples(r);
  for (int i = 0; i < *stored; i++) {
    long p = strtol(PQgetvalue(r, i, 0), NULL, 10);
    if (p >= 0 && p < partitions)
      next[p] = strtoll(PQgetvalue(r, i, 1), NULL, 10);
  }
  PQclear(r);
  return 0;
}

int pg_apply(pg_sink *pg, int clear_first, const pg_change *changes, size_t n, uint32_t min_cell,
             const char *topic, const pg_offset *offsets, int count, int *transient, char *err,
             size_t errlen) {
  *transient = 0;
  if (exec(pg, "BEGIN", "starting a transaction", transient, err, errlen) < 0)
    goto fail;
  if (clear_first) {
    char sql[300];
    snprintf(sql, sizeof sql, "DELETE FROM %s", pg->table);
    const char *forget[1] = {pg->table};
    if (exec(pg, sql, "emptying the table", transient, err, errlen) < 0 ||
        exec_params(pg, "rs_offsets_forget", 1, forget, "forgetting the topic offsets", transient,
                    err, errlen) < 0)
      goto fail;
  }
  for (size_t i = 0; i < n; i++) {
    const pg_change *ch = &changes[i];
    char text[COLS][24];
    const char *v[COLS];
    snprintf(text[0], sizeof text[0], "%" PRId32, ch->period);
    snprintf(text[1], sizeof text[1], "%" PRId32, ch->municipality);
    v[0] = text[0];
    v[1] = text[1];
    v[2] = visitation_symbols[ch->visitation];
    int live =
        ch->present && ch->counts[ROLLUP_MEMBERS] > 0 && !disclosure_withheld(ch->counts, min_cell);
    if (!live) {
      if (exec_params(pg, "rs_delete", 3, v, "deleting a row", transient, err, errlen) < 0)
        goto fail;
      continue;
    }
    uint32_t mask = disclosure_mask(ch->counts, min_cell);
    for (int c = 0; c < ROLLUP_COLUMNS; c++) {
      snprintf(text[3 + c], sizeof text[3 + c], "%" PRIu32, ch->counts[c]);
      v[3 + c] = mask & (1u << c) ? NULL : text[3 + c];
    }
    if (exec_params(pg, "rs_upsert", COLS, v, "upserting a row", transient, err, errlen) < 0)
      goto fail;
  }
  if (store_offsets(pg, topic, offsets, count, transient, err, errlen) < 0 ||
      exec(pg, "COMMIT", "committing", transient, err, errlen) < 0)
    goto fail;
  return 0;
fail:
  rollback(pg);
  return -1;
}

/* ---------------------------------------------------------------- reading */

FILE *pg_read_rollup_csv(const char *conninfo, const char *table, char *err, size_t errlen) {
  pg_sink *pg = open_wait(conninfo, table, 0, 30, err, errlen);
  if (!pg)
    return NULL;
  FILE *f = tmpfile();
  if (!f) {
    snprintf(err, errlen, "cannot make a temporary file: %s", strerror(errno));
    pg_close(pg);
    return NULL;
  }
  char sql[400];
  snprintf(sql, sizeof sql,
           "COPY (SELECT * FROM %s ORDER BY period, municipality, visitation) TO STDOUT (FORMAT "
           "csv, HEADER)",
           pg->table);
  int transient;
  PGresult *r = PQexec(pg->conn, sql);
  if (!r || PQresultStatus(r) != PGRES_COPY_OUT) {
    statement_failed(pg, r, "reading the table", &transient, err, errlen);
    goto fail;
  }
  PQclear(r);
  char *buf;
  int n;
  while ((n = PQgetCopyData(pg->conn, &buf, 0)) > 0) {
    size_t w = fwrite(buf, 1, (size_t)n, f);
    PQfreemem(buf);
    if (w != (size_t)n) {
      snprintf(err, errlen, "writing a temporary file: %s", strerror(errno));
      goto fail;
    }
  }
  r = PQgetResult(pg->conn);
  if (n != -1 || !r || PQresultStatus(r) != PGRES_COMMAND_OK) {
    statement_failed(pg, r, "reading the table", &transient, err, errlen);
    goto fail;
  }
  PQclear(r);
  if (fflush(f) != 0 || fseek(f, 0, SEEK_SET) != 0) {
    snprintf(err, errlen, "rewinding a temporary file: %s", strerror(errno));
    goto fail;
  }
  pg_close(pg);
  return f;
fail:
  fclose(f);
  pg_close(pg);
  return NULL;
}
