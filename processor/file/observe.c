/* observe.c — file mode's side of --metrics-listen: a replay's figures as
 * Prometheus families (the list is in README.md, "Metrics"), its liveness
 * and readiness. The listener and the text format are metrics/'s; this file
 * only reads what the run counts anyway (records_seen, the dead-letter
 * door's counts, the cuts under the run's lock) plus the workers' applied
 * tallies (mode.h: one cache line each, added once per block).
 *
 *   healthz  the watcher thread came round within HEALTH_STALE_SECONDS
 *   readyz   200 while the run goes on; 503 once it failed, is stopping
 *            or has finished (during --metrics-linger)
 *
 * The listener stops before the dead-letter file is closed (replay_metrics_finish,
 * after the workers): nothing it reads is freed under it. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "file/mode.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/stop.h"

enum { HEALTH_STALE_SECONDS = 60 };

int replay_metrics_open(replay *rp, char *err, size_t errlen) {
  metrics_address a;
  if (!rp->cfg->metrics_listen)
    return 0;
  if (metrics_parse_address(rp->cfg->metrics_listen, &a, err, errlen) < 0)
    return -1;
  rp->metrics = metrics_server_open(&a, err, errlen);
  return rp->metrics ? 0 : -1;
}

void replay_metrics_close(replay *rp) {
  metrics_server_close(rp->metrics);
  rp->metrics = NULL;
}

static void render(void *ctx, metrics_text *t) {
  replay *rp = ctx;
  uint64_t applied = 0;
  for (unsigned w = 0; w < rp->workers; w++)
    applied += atomic_load_explicit(&rp->tallies[w].applied, memory_order_relaxed);
  metrics_family(t, "regstream_records_read_total", "counter",
                 "Records read from the input files: applied or rejected.");
  metrics_u64(t, "regstream_records_read_total", atomic_load(&rp->records_seen), NULL);
  metrics_family(t, "regstream_records_applied_total", "counter",
                 "Records applied to the per-person state (valid and in time).");
  metrics_u64(t, "regstream_records_applied_total", applied, NULL);
  uint64_t rejected[REASON_COUNT];
  dead_letter_counts(rp->dead, rejected);
  metrics_family(t, "regstream_records_rejected_total", "counter",
                 "Records rejected to the dead-letter file, per reason code.");
  for (int r = 1; r < REASON_COUNT; r++)
    metrics_u64(t, "regstream_records_rejected_total", rejected[r], "reason",
                reason_code((reason)r), NULL);

  pthread_mutex_lock(&rp->lock);
  int files_done = rp->walk_file < rp->input_count ? rp->walk_file : rp->input_count;
  uint64_t cuts = rp->cut.written, last_bytes = rp->cut.last_bytes;
  double last_time = rp->cut.last_written_time, last_seconds = rp->cut.last_write_seconds;
  pthread_mutex_unlock(&rp->lock);
  metrics_family(t, "regstream_input_files", "gauge", "Input files of the run.");
  metrics_u64(t, "regstream_input_files", (uint64_t)rp->input_count, NULL);
  metrics_family(t, "regstream_input_files_done", "gauge",
                 "Input files read to their end (their records may still be being applied).");
  metrics_u64(t, "regstream_input_files_done", (uint64_t)files_done, NULL);
  if (!rp->snapshot_dir)
    return;
  metrics_family(t, "regstream_snapshots_written_total", "counter",
                 "Snapshot cuts written (every shard's snapshot at one input position).");
  metrics_u64(t, "regstream_snapshots_written_total", cuts, NULL);
  if (last_time == 0)
    return;
  metrics_family(t, "regstream_snapshot_age_seconds", "gauge",
                 "Seconds since the last snapshot cut was written.");
  metrics_f64(t, "regstream_snapshot_age_seconds", clock_seconds() - last_time, NULL);
  metrics_family(t, "regstream_snapshot_bytes", "gauge", "Bytes of the last snapshot cut.");
  metrics_u64(t, "regstream_snapshot_bytes", last_bytes, NULL);
  metrics_family(t, "regstream_snapshot_duration_seconds", "gauge",
                 "Seconds the last snapshot cut took to write (all its shards, synced).");
  metrics_f64(t, "regstream_snapshot_duration_seconds", last_seconds, NULL);
}

static int failed_reason(replay *rp, char *why, size_t len) {
  char reason[LATCH_REASON_MAX];
  latch_reason(&rp->failure, reason, sizeof reason);
  snprintf(why, len, "the run failed: %s", reason);
  return -1;
}

static int health(void *ctx, char *why, size_t len) {
  replay *rp = ctx;
  if (replay_failed(rp))
    return failed_reason(rp, why, len);
  if (atomic_load(&rp->finished))
    return 0;
  double idle = clock_seconds() - atomic_load_explicit(&rp->watch_heartbeat, memory_order_relaxed);
  if (idle > HEALTH_STALE_SECONDS) {
    snprintf(why, len, "the watcher thread has not come round for %.0f s", idle);
    return -1;
  }
  return 0;
}

static int ready(void *ctx, char *why, size_t len) {
  replay *rp = ctx;
  if (replay_failed(rp))
    return failed_reason(rp, why, len);
  if (atomic_load(&rp->finished)) {
    snprintf(why, len, "finished: the workers are done");
    return -1;
  }
  if (stop_requested()) {
    snprintf(why, len, "stopping");
    return -1;
  }
  return 0;
}

int replay_metrics_serve(replay *rp, char *err, size_t errlen) {
  if (!rp->metrics)
    return 0;
  atomic_store(&rp->watch_heartbeat, clock_seconds());
  metrics_source src = {rp, render, health, ready};
  return metrics_server_serve(rp->metrics, &src, err, errlen);
}

void replay_metrics_finish(replay *rp) {
  if (!rp->metrics)
    return;
  atomic_store(&rp->finished, 1);
  /* A signal cuts the lingering short: the second one would end the
   * process at once. */
  int linger = rp->cfg->metrics_linger_s;
  if (linger > 0 && !stop_requested() && !rp->cfg->quiet)
    log_msg(LOG_INFO, "replay", "input done; serving the final metrics for %d s more", linger);
  for (int i = 0; i < linger * 10 && !stop_requested(); i++) {
    struct timespec tenth = {0, 100 * 1000 * 1000};
    nanosleep(&tenth, NULL);
  }
  replay_metrics_close(rp);
}
