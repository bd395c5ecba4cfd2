/* exposition.c — the Prometheus text exposition format, version 0.0.4:
 *
 *   # HELP regstream_records_rejected_total Records rejected, per reason.
 *   # TYPE regstream_records_rejected_total counter
 *   regstream_records_rejected_total{reason="late"} 12
 *
 * written into a growing buffer. HELP text escapes backslash and newline,
 * label values also the double quote; floats print as the shortest form
 * that reads back (NaN, +Inf and -Inf by name). Names are the caller's (a
 * fixed set chosen in the modes). What the numbers are stays with them. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"
#include "metrics/text.h"

const char metrics_version[] = REGSTREAM_VERSION;

metrics_text *metrics_text_new(void) {
  metrics_text *t = calloc(1, sizeof *t);
  if (t && !(t->data = malloc(t->cap = 4096))) {
    free(t);
    return NULL;
  }
  if (t)
    t->data[0] = '\0';
  return t;
}

const char *metrics_text_get(const metrics_text *t) {
  return t->failed ? NULL : t->data;
}

void metrics_text_free(metrics_text *t) {
  if (t)
    free(t->data);
  free(t);
}

char *metrics_text_take(metrics_text *t, size_t *len) {
  if (t->failed)
    return NULL;
  char *d = t->data;
  *len = t->len;
  t->data = NULL;
  t->len = t->cap = 0;
  t->failed = 1;
  return d;
}

static void put(metrics_text *t, const char *s, size_t n) {
  if (t->failed)
    return;
  if (t->len + n + 1 > t->cap) {
    size_t cap = t->cap;
    while (t->len + n + 1 > cap)
      cap *= 2;
    char *grown = realloc(t->data, cap);
    if (!grown) {
      t->failed = 1;
      return;
    }
    t->data = grown;
    t->cap = cap;
  }
  memcpy(t->data + t->len, s, n);
  t->len += n;
  t->data[t->len] = '\0';
}

static void puts_(metrics_text *t, const char *s) {
  put(t, s, strlen(s));
}

/* s with backslash and newline escaped, and the double quote when quoted. */
static void put_escaped(metrics_text *t, const char *s, int quoted) {
  for (const char *run = s;; s++) {
    const char *esc = *s == '\\'            ? "\\\\"
                      : *s == '\n'          ? "\\n"
                      : *s == '"' && quoted ? "\\\""
                                            : NULL;
    if (!esc && *s)
      continue;
    put(t, run, (size_t)(s - run));
    if (!*s)
      return;
    puts_(t, esc);
    run = s + 1;
  }
}

void metrics_family(metrics_text *t, const char *name, const char *type, const char *help) {
  puts_(t, "# HELP ");
  puts_(t, name);
  puts_(t, " ");
  put_escaped(t, help, 0);
  puts_(t, "\n# TYPE ");
  puts_(t, name);
  puts_(t, " ");
  puts_(t, type);
  puts_(t, "\n");
}

static void sample_start(metrics_text *t, const char *name, va_list ap) {
  puts_(t, name);
  const char *key = va_arg(ap, const char *);
  if (!key)
    return;
  puts_(t, "{");
  for (int first = 1; key; key = va_arg(ap, const char *), first = 0) {
    const char *value = va_arg(ap, const char *);
    if (!first)
      puts_(t, ",");
    puts_(t, key);
    puts_(t, "=\"");
    put_escaped(t, value ? value : "", 1);
    puts_(t, "\"");
  }
  puts_(t, "}");
}

void metrics_u64(metrics_text *t, const char *name, uint64_t value, ...) {
  va_list ap;
  va_start(ap, value);
  sample_start(t, name, ap);
  va_end(ap);
  char digits[32];
  snprintf(digits, sizeof digits, " %" PRIu64 "\n", value);
  puts_(t, digits);
}

void metrics_f64(metrics_text *t, const char *name, double value, ...) {
  va_list ap;
  va_start(ap, value);
  sample_start(t, name, ap);
  va_end(ap);
  char digits[48];
  if (isnan(value))
    snprintf(digits, sizeof digits, " NaN\n");
  else if (isinf(value))
    snprintf(digits, sizeof digits, " %sInf\n", value > 0 ? "+" : "-");
  else
    snprintf(digits, sizeof digits, " %.15g\n", value);
  puts_(t, digits);
}
