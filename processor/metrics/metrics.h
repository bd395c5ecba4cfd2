/* metrics.h — the door of the metrics room, for both modes: the HTTP
 * listener of --metrics-listen (libmicrohttpd, on threads of its own) with
 * its three endpoints, and the Prometheus text exposition format (version
 * 0.0.4: HELP and TYPE lines, label values escaped). What is measured, and
 * how a mode's threads count it, stay with the mode: it hands in a
 * metrics_source (a render callback writing its figures through
 * metrics_family/metrics_u64/metrics_f64, and health and readiness
 * callbacks), called on the listener's thread, never on a hot path. Nothing
 * about Kafka or files here.
 *
 *   GET /metrics   200, text/plain; version=0.0.4: regstream_build_info, then
 *                  the mode's families
 *   GET /healthz   200 "ok" while the mode's loops are alive, else 503 and
 *                  the reason (liveness)
 *   GET /readyz    200 "ok" when the mode says it is ready, else 503 and
 *                  the reason (readiness)
 *   anything else  404 (a method other than GET or HEAD: 405) */
#ifndef REGSTREAM_METRICS_H
#define REGSTREAM_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* The program's version (CMake's project version): regstream_build_info. */
extern const char metrics_version[];

/* ---- the address of --metrics-listen ---- */

/* [ADDR:]PORT: PORT alone binds 127.0.0.1 (never every interface unless
 * ADDR says 0.0.0.0 or [::]); ADDR an IPv4 address or a bracketed IPv6 one
 * ("[::1]:9464"). */
typedef struct metrics_address {
  char host[64]; /* numeric, without brackets */
  int ipv6;
  unsigned port; /* 1 to 65535 */
} metrics_address;

/* 0, or -1 with a one-line reason naming --metrics-listen. */
int metrics_parse_address(const char *text, metrics_address *out, char *err, size_t errlen);
/* "127.0.0.1:9464", "[::1]:9464" */
void metrics_address_format(const metrics_address *a, char *out, size_t len);

/* ---- the exposition being written ---- */

typedef struct metrics_text metrics_text;

/* Begin a family: its # HELP and # TYPE lines. type: "counter", "gauge",
 * "summary". */
void metrics_family(metrics_text *t, const char *name, const char *type, const char *help);
/* One sample: name (the family's, or with a suffix such as _sum), its value,
 * then label name and value pairs ended by NULL. Label values are escaped
 * here (backslash, double quote, newline). */
void metrics_u64(metrics_text *t, const char *name, uint64_t value, ...) __attribute__((sentinel));
void metrics_f64(metrics_text *t, const char *name, double value, ...) __attribute__((sentinel));

/* For tests: the text written so far (NUL-terminated; NULL after a failed
 * allocation), new and freed. */
metrics_text *metrics_text_new(void);
const char *metrics_text_get(const metrics_text *t);
void metrics_text_free(metrics_text *t);

/* ---- the listener ---- */

/* What a mode gives the listener; every callback runs on the listener's
 * thread (one at a time), and must neither block for long nor touch a
 * lock the per-record path takes. health and ready: 0 when fine, or -1
 * with a one-line reason in why. */
typedef struct metrics_source {
  void *ctx;
  void (*render)(void *ctx, metrics_text *t);
  int (*health)(void *ctx, char *why, size_t len);
  int (*ready)(void *ctx, char *why, size_t len);
} metrics_source;

typedef struct metrics_server metrics_server;

/* Bind and listen on the address (a startup error is clear: "cannot listen
 * on 127.0.0.1:9464 (--metrics-listen): address already in use ..."), but
 * serve nothing yet: connections wait in the backlog. NULL with a one-line
 * reason. */
metrics_server *metrics_server_open(const metrics_address *a, char *err, size_t errlen);
/* Serve src from now on, on the listener's own thread. 0, or -1 with a
 * reason. */
int metrics_server_serve(metrics_server *s, const metrics_source *src, char *err, size_t errlen);
/* Stop serving (waits for a request being answered), close, free. NULL:
 * nothing. After it no callback of the source runs. */
void metrics_server_close(metrics_server *s);

#endif
