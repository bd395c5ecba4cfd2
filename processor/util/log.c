/* log.c — see log.h. A line is formatted into one buffer and written with
 * one fwrite under stderr's own lock, so lines of different threads never
 * interleave. JSON is made by jansson (escaping included). */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static log_format format = LOG_TEXT;

void log_set_format(log_format f) {
  format = f;
}
log_format log_get_format(void) {
  return format;
}

int log_parse_format(const char *s, log_format *out) {
  if (!strcmp(s, "text"))
    *out = LOG_TEXT;
  else if (!strcmp(s, "json"))
    *out = LOG_JSON;
  else
    return -1;
  return 0;
}

const char *log_level_name(log_level l) {
  switch (l) {
  case LOG_DEBUG:
    return "debug";
  case LOG_INFO:
    return "info";
  case LOG_WARN:
    return "warn";
  case LOG_ERROR:
    return "error";
  }
  return "info";
}

static void write_line(const char *line, size_t len) {
  flockfile(stderr);
  fwrite(line, 1, len, stderr);
  funlockfile(stderr);
}

/* RFC 3339 in UTC with milliseconds. */
static void now_rfc3339(char *buf, size_t len) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char base[32];
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf, len, "%s.%03ldZ", base, ts.tv_nsec / 1000000);
}

/* One line: in text, text_prefix + ("warning: " when warn_word and LOG_WARN)
 * + text; in JSON, message (text when NULL) with the fields. Both are
 * formatted already; trailing newlines are dropped (the line gets one). */
static void emit(log_level level, const char *component, const char *text_prefix, int warn_word,
                 json_t *fields, char *text, const char *message) {
  size_t n = strlen(text);
  while (n > 0 && text[n - 1] == '\n') /* callers' own newlines are ours to add */
    text[--n] = 0;
  if (format == LOG_TEXT) {
    char line[4096 + 128];
    int len = snprintf(line, sizeof line, "%s%s%s\n", text_prefix,
                       warn_word && level == LOG_WARN ? "warning: " : "", text);
    if (len > (int)sizeof line - 1) {
      len = (int)sizeof line - 1;
      line[len - 1] = '\n';
    }
    write_line(line, (size_t)len);
    json_decref(fields);
    return;
  }
  if (message)
    n = strlen(message);
  else
    message = text;
  char ts[48];
  now_rfc3339(ts, sizeof ts);
  json_t *o = json_object();
  json_object_set_new(o, "time", json_string(ts));
  json_object_set_new(o, "level", json_string(log_level_name(level)));
  json_object_set_new(o, "component", json_string(component ? component : "regstream"));
  /* json_stringn refuses invalid UTF-8 (a path, a broker's text): then the
   * bytes above 0x7f are read as Latin-1, not dropped */
  json_t *m = json_stringn(message, n);
  if (!m) {
    char safe[4096 * 2];
    size_t o2 = 0;
    for (size_t i = 0; i < n && o2 + 3 < sizeof safe; i++) {
      unsigned char c = (unsigned char)message[i];
      if (c < 0x80) {
        safe[o2++] = (char)c;
      } else {
        safe[o2++] = (char)(0xc0 | c >> 6);
        safe[o2++] = (char)(0x80 | (c & 0x3f));
      }
    }
    m = json_stringn(safe, o2);
  }
  json_object_set_new(o, "message", m ? m : json_string("?"));
  if (fields)
    json_object_set_new(o, "fields", fields);
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
  json_decref(o);
  if (!s)
    return;
  size_t sl = strlen(s);
  s[sl] = '\n'; /* json_dumps' terminator becomes the newline */
  write_line(s, sl + 1);
  free(s);
}

#define FORMAT(msg, fmt)                                                                           \
  char msg[4096];                                                                                  \
  va_list ap;                                                                                      \
  va_start(ap, fmt);                                                                               \
  vsnprintf(msg, sizeof msg, fmt, ap);                                                             \
  va_end(ap)

void log_msg(log_level level, const char *component, const char *fmt, ...) {
  FORMAT(msg, fmt);
  emit(level, component, "regstream: ", 1, NULL, msg, NULL);
}

void log_cmd(log_level level, const char *command, const char *fmt, ...) {
  FORMAT(msg, fmt);
  char prefix[64];
  snprintf(prefix, sizeof prefix, "regstream %s: ", command);
  emit(level, command, prefix, 0, NULL, msg, NULL);
}

void log_fields(log_level level, const char *component, json_t *fields, const char *fmt, ...) {
  FORMAT(msg, fmt);
  emit(level, component, "regstream: ", 1, fields, msg, NULL);
}

void log_cmd_fields(log_level level, const char *command, json_t *fields, const char *fmt, ...) {
  FORMAT(msg, fmt);
  char prefix[64];
  snprintf(prefix, sizeof prefix, "regstream %s: ", command);
  emit(level, command, prefix, 0, fields, msg, NULL);
}

void log_text_json(log_level level, const char *component, json_t *fields, const char *text,
                   const char *message) {
  char line[4096];
  snprintf(line, sizeof line, "%s", text);
  emit(level, component, "regstream: ", 0, fields, line, message);
}

json_t *log_real(double v) {
  json_t *r = json_real(v); /* NULL for NaN and infinities */
  return r ? r : json_null();
}
