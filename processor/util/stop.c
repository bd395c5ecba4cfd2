/* stop.c — see stop.h. */
#include "util/stop.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>

static atomic_int requested;

static void on_signal(int sig) {
  int none = 0;
  atomic_compare_exchange_strong(&requested, &none, sig);
  /* The next one, of either kind, ends the process (sigaction is
   * async-signal-safe). */
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGINT, &dfl, NULL);
  sigaction(SIGTERM, &dfl, NULL);
}

void stop_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESETHAND | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

int stop_requested(void) {
  return atomic_load(&requested);
}
