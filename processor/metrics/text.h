/* text.h — the exposition buffer, shared by exposition.c (which writes it)
 * and server.c (which sends it). Internal to metrics/. */
#ifndef REGSTREAM_METRICS_TEXT_H
#define REGSTREAM_METRICS_TEXT_H

#include <stddef.h>

struct metrics_text {
  char *data; /* NUL-terminated */
  size_t len, cap;
  int failed; /* an allocation failed: the text is incomplete */
};

/* The text, malloc'd (the caller frees it), and its length; the buffer is
 * empty after. NULL after a failed allocation. */
char *metrics_text_take(struct metrics_text *t, size_t *len);

#endif
