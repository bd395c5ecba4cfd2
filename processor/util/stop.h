/* stop.h — a stop asked for by SIGINT or SIGTERM. The first signal sets a
 * flag that the run's loops read and act on (finish the block or batch,
 * snapshot, publish, exit); the handler is then reset, so a second signal
 * ends the process at once (the default action). What a clean stop means is
 * each mode's. */
#ifndef REGSTREAM_UTIL_STOP_H
#define REGSTREAM_UTIL_STOP_H

/* Catch SIGINT and SIGTERM once each (SA_RESETHAND). */
void stop_install(void);
/* The signal that asked for a stop, or 0. Safe on any thread. */
int stop_requested(void);

#endif
