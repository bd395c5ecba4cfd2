/* latch.h — the first-failure latch: many threads may report a failure, the
 * first reason is kept and every later report is ignored; once set it stays
 * set. A run checks latch_failed (one relaxed atomic load: fine on a hot
 * path) and reports latch_reason at the end. Owns nothing else: waking
 * threads that wait on the failure is the caller's business. */
#ifndef REGSTREAM_UTIL_LATCH_H
#define REGSTREAM_UTIL_LATCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

enum { LATCH_REASON_MAX = 768 };

typedef struct latch {
  atomic_int failed;
  pthread_mutex_t lock; /* guards reason while it is written */
  char reason[LATCH_REASON_MAX];
} latch;

void latch_init(latch *l);
void latch_destroy(latch *l);

/* Record a failure: the first reason wins. Returns 1 when this call set the
 * latch, 0 when it was set already. Safe on any thread. */
int latch_set(latch *l, const char *reason);
/* latch_set with a printf-style reason. */
int latch_setf(latch *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline int latch_failed(const latch *l) {
  return atomic_load_explicit(&((latch *)l)->failed, memory_order_acquire);
}

/* Copy the reason into buf (empty when not failed). */
void latch_reason(latch *l, char *buf, size_t len);

#endif
