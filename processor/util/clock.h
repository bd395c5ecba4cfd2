/* clock.h — the program's two clocks: monotonic seconds for intervals and
 * rates, and wall-clock milliseconds for what is written down (a snapshot's
 * time). Everything that measures or schedules asks here. */
#ifndef REGSTREAM_UTIL_CLOCK_H
#define REGSTREAM_UTIL_CLOCK_H

#include <stdint.h>

/* Seconds on CLOCK_MONOTONIC: only differences mean anything. */
double clock_seconds(void);

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t clock_unix_ms(void);

#endif
