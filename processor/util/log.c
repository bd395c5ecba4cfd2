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

static void emit(log_level level, const char *component, const char *text_prefix, json_t *fields,
                 const char *fmt, va_list ap) {
  char msg[4096];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n > 0 && msg[n - 1] == '\n') /* callers' own newlines are ours to add */
    msg[--n] = 0;
  if (format == LOG_TEXT) {
    char line[4096 + 128];
    int len =
        snprintf(line, sizeof line, "%s%s%s\n", text_prefix,
                 level == LOG_WARN && !strcmp(text_prefix, "regstream: ") ? "warning: " : "", msg);
    if (len > (int)sizeof line - 1) {
      len = (int)sizeof line - 1;
      line[len - 1] = '\n';
    }
    write_line(line, (size_t)len);
    json_decref(fields);
    return;
  }
  char ts[48];
  now_rfc3339(ts, sizeof ts);
  json_t *o = json_object();
  json_object_set_new(o, "time", json_string(ts));
  json_object_set_new(o, "level", json_string(log_level_name(level)));
  json_object_set_new(o, "component", json_string(component ? component : "regstream"));
  json_object_set_new(o, "message", json_stringn(msg, n));
  if (fields)
    json_object_set_new(o, "fields", fields);
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  if (!s)
    return;
  size_t sl = strlen(s);
  s[sl] = '\n'; /* json_dumps' terminator becomes the newline */
  write_line(s, sl + 1);
  free(s);
}

void log_msg(log_level level, const char *component, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit(level, component, "regstream: ", NULL, fmt, ap);
  va_end(ap);
}

void log_cmd(log_level level, const char *command, const char *fmt, ...) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "regstream %s: ", command);
  va_list ap;
  va_start(ap, fmt);
  emit(level, command, prefix, NULL, fmt, ap);
  va_end(ap);
}

void log_fields(log_level level, const char *component, json_t *fields, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit(level, component, "regstream: ", fields, fmt, ap);
  va_end(ap);
}
