/* log.h — the one way a line reaches stderr: every message of the program
 * (progress, warnings, errors, summaries, librdkafka's own lines) goes
 * through log_msg/log_cmd/log_fields, which write it whole, in one write,
 * as text (the lines regstream always printed: "regstream: ...",
 * "regstream: warning: ...", "regstream COMMAND: ...") or, after
 * log_set_format(LOG_JSON), as one JSON object per line:
 *   {"time":"2026-12-02T10:00:00.123Z","level":"warn","component":"snapshot",
 *    "message":"...","fields":{...}}
 * Owns the format and the writing; what is said, and when, stays with the
 * callers. Safe on any thread. Not for the per-record path. */
#ifndef REGSTREAM_UTIL_LOG_H
#define REGSTREAM_UTIL_LOG_H

#include <jansson.h>

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;
typedef enum { LOG_TEXT, LOG_JSON } log_format;

/* Set once, before threads start (default LOG_TEXT). */
void log_set_format(log_format f);
log_format log_get_format(void);
/* "text" or "json" -> 0 and *out; anything else -> -1. */
int log_parse_format(const char *s, log_format *out);
const char *log_level_name(log_level l); /* "debug", "info", "warn", "error" */

/* A message of a part of the program (component: "kafka", "snapshot",
 * "replay", ...). Text: "regstream: " (+ "warning: " at LOG_WARN) + message. */
void log_msg(log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A message of a subcommand (command: "run", "export", ...), the component
 * in JSON. Text: "regstream COMMAND: " + message. */
void log_cmd(log_level level, const char *command, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* log_msg with structured fields for JSON (an object, taken over: it is
 * released here; NULL for none). Text shows the message only. */
void log_fields(log_level level, const char *component, json_t *fields, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* log_cmd with fields, as log_fields. */
void log_cmd_fields(log_level level, const char *command, json_t *fields, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A line that says its level its own way in text (librdkafka's
 * "librdkafka warning [FAC]: ..."): text: "regstream: " + text as it is (no
 * "warning: " added); JSON: message (NULL: text) with the fields (taken over). */
void log_text_json(log_level level, const char *component, json_t *fields, const char *text,
                   const char *message);
/* A JSON number for a field (json_real), or null for NaN and infinities
 * (which json_real refuses, and json_pack with them would fail whole):
 * for json_pack's "o". */
json_t *log_real(double v);

#endif
