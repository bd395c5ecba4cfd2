/* latch.c — see latch.h. */
#include "util/latch.h"

#include <stdarg.h>
#include <stdio.h>

void latch_init(latch *l) {
  atomic_store(&l->failed, 0);
  l->reason[0] = 0;
  pthread_mutex_init(&l->lock, NULL);
}

void latch_destroy(latch *l) {
  pthread_mutex_destroy(&l->lock);
}

int latch_set(latch *l, const char *reason) {
  return latch_setf(l, "%s", reason);
}

int latch_setf(latch *l, const char *fmt, ...) {
  pthread_mutex_lock(&l->lock);
  int first = !atomic_load(&l->failed);
  if (first) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->reason, sizeof l->reason, fmt, ap);
    va_end(ap);
    atomic_store_explicit(&l->failed, 1, memory_order_release);
  }
  pthread_mutex_unlock(&l->lock);
  return first;
}

void latch_reason(latch *l, char *buf, size_t len) {
  pthread_mutex_lock(&l->lock);
  snprintf(buf, len, "%s", atomic_load(&l->failed) ? l->reason : "");
  pthread_mutex_unlock(&l->lock);
}
