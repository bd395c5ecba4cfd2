/* replay.c — the file-mode pipeline: container blocks -> decode -> validate
 * -> shard -> rules -> rollup, on N worker threads.
 *
 * The idea: every worker is both a decoder and a shard owner. Blocks travel
 * through a ring of slots, each tagged (sequence << 2 | state). A worker with
 * nothing to apply claims the next block of the input (the walk over the files
 * is the only locked step, once per block), decompresses and decodes it into
 * its slot, scattering the valid records into one batch per shard (hash of
 * person_id), and marks it READY. Every worker applies every READY block in
 * sequence order, reading only its own shard's batch, so each person's
 * months are applied in input order by one thread, and results do not
 * depend on the thread count. The last worker to finish a slot frees it for
 * the block R sequences later. Rejects go to the dead-letter sink as they
 * are found: invalid or undecodable ones while decoding, late ones while
 * applying.
 *
 *
 * Snapshots: cuts (file/cut.c) and resuming from them (file/resume.c). */
#include "file/replay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fnv.h"
#include "file/mode.h"
#include "sink/csv.h"
#include "sink/postgres.h"
#include "state/store.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/stop.h"

static void ring_landed(void *arg) {
  replay_wake_all(arg);
}

static int open_inputs(replay *rp, char *err, size_t errlen) {
  const replay_options *cfg = rp->cfg;
  rp->inputs = calloc((size_t)cfg->input_count, sizeof *rp->inputs);
  if (!rp->inputs) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  rp->input_count = cfg->input_count;
  for (int f = 0; f < cfg->input_count; f++) {
    char why[300];
    input *in = &rp->inputs[f];
    in->reader = ocf_open(cfg->inputs[f], why, sizeof why);
    if (!in->reader) {
      snprintf(err, errlen, "%s", why); /* names the file already */
      return -1;
    }
    in->plan = pm_plan_from_json(ocf_schema_json(in->reader), ocf_schema_json_len(in->reader), why,
                                 sizeof why);
    if (!in->plan) {
      snprintf(err, errlen, "input %s: its writer schema cannot be read as PersonMonth: %s",
               cfg->inputs[f], why);
      return -1;
    }
  }
  ocf_reader **readers = malloc((size_t)cfg->input_count * sizeof *readers);
  if (readers) { /* else the page cache keeps what it reads: slower, no worse */
    for (int f = 0; f < cfg->input_count; f++)
      readers[f] = rp->inputs[f].reader;
    uint64_t room = ocf_cache_room();
    size_t n = (size_t)cfg->input_count;
    if (ocf_drop_behind(readers, n, room)) {
      /* Too large to stay in the page cache anyway: read past it, the
       * claim that found a block's bytes not yet read woken as they land. */
      size_t direct = ocf_read_direct(readers, n, ring_landed, rp);
      if (!cfg->quiet)
        log_msg(LOG_INFO, "replay",
                "the input is larger than %.1f GiB, half the memory this run may use: %s",
                (double)room / (1u << 30),
                direct == n ? "it is read past the page cache (O_DIRECT)"
                            : "its pages leave the page cache as they are read");
    }
    free(readers);
  }
  return 0;
}

static void close_replay(replay *rp) {
  replay_metrics_close(rp); /* first (closed already after a run that started) */
  for (int f = 0; f < rp->input_count; f++) {
    if (rp->inputs[f].plan)
      pm_plan_free(rp->inputs[f].plan);
    if (rp->inputs[f].reader)
      ocf_close(rp->inputs[f].reader);
  }
  free(rp->inputs);
  for (unsigned i = 0; rp->ring && i < rp->ring_size; i++) {
    block_slot *s = &rp->ring[i];
    ocf_buf_free(&s->inflated);
    for (unsigned w = 0; s->batches && w < rp->workers; w++) {
      free(s->batches[w].records);
      free(s->batches[w].hashes);
      free(s->batches[w].meta);
    }
    free(s->batches);
  }
  free(rp->ring);
  for (unsigned w = 0; rp->shards && w < rp->workers; w++)
    shard_free(&rp->shards[w]);
  free(rp->shards);
  for (unsigned w = 0; rp->cut.images && w < rp->workers; w++)
    if (rp->cut.images[w])
      snapshot_image_free(rp->cut.images[w]);
  free(rp->cut.images);
  snapshotter_stop(rp->cut.writer);
  free(rp->tallies);
  if (rp->dead) { /* a start that failed after the file was opened */
    char ignored[8];
    dead_letter_close(rp->dead, ignored, sizeof ignored);
  }
  latch_destroy(&rp->failure);
  pthread_mutex_destroy(&rp->lock);
  pthread_mutex_destroy(&rp->retired_lock);
  rollup_free(&rp->retired);
  pthread_cond_destroy(&rp->changed);
  pthread_cond_destroy(&rp->watch);
}

static void print_progress(replay *rp, double started, uint64_t resumed_at) {
  uint64_t seen = atomic_load(&rp->records_seen);
  pthread_mutex_lock(&rp->lock);
  int file = rp->walk_file < rp->input_count ? rp->walk_file + 1 : rp->input_count;
  uint64_t cuts = rp->cut.count;
  double pause = rp->cut.last_pause;
  pthread_mutex_unlock(&rp->lock);
  double now = clock_seconds();
  char snaps[128] = "";
  if (rp->snapshot_dir && cuts)
    snprintf(snaps, sizeof snaps, "; %llu snapshot(s), last pause %.1f ms",
             (unsigned long long)cuts, pause * 1e3);
  double rate = now > started ? (double)(seen - resumed_at) / (now - started) : 0.0;
  json_t *fields = json_pack("{s:I,s:i,s:i,s:o}", "records", (json_int_t)seen, "file", file,
                             "files", rp->input_count, "records_per_s", log_real(rate));
  if (fields && rp->snapshot_dir && cuts) {
    json_object_set_new(fields, "snapshots", json_integer((json_int_t)cuts));
    json_object_set_new(fields, "last_pause_seconds", log_real(pause));
  }
  log_fields(LOG_INFO, "replay", fields, "%.1f M records read (file %d of %d), %.2f M records/s%s",
             (double)seen / 1e6, file, rp->input_count, rate / 1e6, snaps);
}

/* Waits for the workers, printing a progress line every few seconds; with
 * snapshots, also asks for cuts (seconds interval) and hands their images
 * to the snapshot writer. Returns once the workers and the writer are done. */
static void watch_workers(replay *rp, worker *workers, unsigned running, double started) {
  double last_print = started;
  uint64_t resumed_at = atomic_load(&rp->records_seen);
  pthread_mutex_lock(&rp->lock);
  while (rp->workers_done < running) {
    if (rp->cut.busy && !rp->cut.submitted) {
      pthread_mutex_unlock(&rp->lock);
      cut_submit(rp);
      pthread_mutex_lock(&rp->lock);
      continue;
    }
    double now = clock_seconds();
    atomic_store_explicit(&rp->watch_heartbeat, now, memory_order_relaxed);
    if (rp->snapshot_dir && rp->cfg->snapshots.seconds > 0 &&
        now - rp->cut.last_time >= rp->cfg->snapshots.seconds)
      atomic_store(&rp->cut.wanted, 1);
    if (!rp->cfg->quiet && now - last_print >= rp->cfg->progress_ms / 1000.0) {
      pthread_mutex_unlock(&rp->lock);
      print_progress(rp, started, resumed_at);
      pthread_mutex_lock(&rp->lock);
      last_print = now;
      continue;
    }
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += (rp->cfg->progress_ms < 200 ? rp->cfg->progress_ms : 200) * 1000L * 1000;
    if (deadline.tv_nsec >= 1000000000) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&rp->watch, &rp->lock, &deadline);
  }
  pthread_mutex_unlock(&rp->lock);
  for (unsigned w = 0; w < running; w++)
    pthread_join(workers[w].thread, NULL);
  if (!rp->cut.writer)
    return;
  /* A cut released as the run failed or stopped: the one to resume from.
   * (The writer's callback clears busy: read it under the lock.) */
  pthread_mutex_lock(&rp->lock);
  int unsubmitted = rp->cut.busy && !rp->cut.submitted;
  pthread_mutex_unlock(&rp->lock);
  if (unsubmitted && (replay_failed(rp) || rp->stopped))
    cut_submit(rp);
  char ignored[8]; /* a cut not written has failed the run already (cut_written) */
  snapshotter_drain(rp->cut.writer, ignored, sizeof ignored);
}

/* --postgres: the server reachable, the table there (made) and of the
 * right shape before any work, waiting up to 30 s for a server that is down. */
static int replay_postgres_check(const replay_options *cfg, char *err, size_t errlen) {
  if (!cfg->postgres)
    return 0;
  pg_sink *pg = pg_open_wait(cfg->postgres, cfg->postgres_table, 30, err, errlen);
  pg_close(pg);
  return pg ? 0 : -1;
}

/* The final rows replace the table's contents in one transaction (tried a
 * second time after a transient failure). */
static int replay_postgres_write(const replay_options *cfg, const rollup *totals, size_t *rows,
                                 char *err, size_t errlen) {
  for (int attempt = 0;; attempt++) {
    pg_sink *pg = pg_open_wait(cfg->postgres, cfg->postgres_table, 30, err, errlen);
    if (!pg)
      return -1;
    int transient = 0;
    int rc = pg_replace(pg, totals, cfg->min_cell, NULL, NULL, 0, rows, &transient, err, errlen);
    pg_close(pg);
    if (rc == 0 || !transient || attempt == 1)
      return rc;
    log_msg(LOG_WARN, "postgres", "%s; trying again", err);
  }
}

int replay_run(const replay_options *cfg, replay_result *result, char *err, size_t errlen) {
  replay rp = {0};
  rp.cfg = cfg;
  rp.workers = (unsigned)cfg->threads;
  /* Every worker applies every block before its slot is free, so a worker
   * that the system takes off its core (another process, a page-cache
   * miss) holds the others back once they are a ring ahead: with several
   * workers, a ring of 32 blocks per worker (64 KiB blocks: about 5 ms of
   * work ahead at national-profile rates, about 140 KiB of batches a
   * slot). */
  rp.ring_size = rp.workers == 1 ? 4 : 32 * rp.workers;
  /* A worker other than 0 looks for month blocks it no longer touches
   * every 1 Mi of its records: a month of the national profile is 3 M
   * records a worker with 2 workers, and an input in person order touches
   * every month many times over in that many. The tests set it lower
   * (REGSTREAM_RETIRE_RECORDS), so that their small inputs move months. */
  rp.retire_records = 1u << 20;
  const char *retire = getenv("REGSTREAM_RETIRE_RECORDS");
  if (retire && strtoull(retire, NULL, 10) > 0)
    rp.retire_records = strtoull(retire, NULL, 10);
  atomic_store(&rp.total_blocks, UINT64_MAX);
  atomic_store(&rp.cut.at, NO_CUT);
  rp.cut.last_written_at = -1;
  pthread_mutex_init(&rp.lock, NULL);
  pthread_mutex_init(&rp.retired_lock, NULL);
  pthread_cond_init(&rp.changed, NULL);
  pthread_cond_init(&rp.watch, NULL);
  latch_init(&rp.failure);
  memset(result, 0, sizeof *result);
  double started = clock_seconds();
  stop_install(); /* a second SIGINT or SIGTERM ends the process at once */

  int rc = replay_postgres_check(cfg, err, errlen);
  if (rc == 0)
    rc = replay_metrics_open(&rp, err, errlen);
  if (rc == 0)
    rc = open_inputs(&rp, err, errlen);
  if (rc == 0) {
    rp.ring = calloc(rp.ring_size, sizeof *rp.ring);
    rp.shards = calloc_aligned(alignof(shard), rp.workers, sizeof *rp.shards);
    rp.cut.images = calloc(rp.workers, sizeof *rp.cut.images);
    rp.tallies = calloc_aligned(alignof(worker_tally), rp.workers, sizeof *rp.tallies);
    for (unsigned i = 0; rp.ring && i < rp.ring_size; i++)
      if (!(rp.ring[i].batches = calloc(rp.workers, sizeof *rp.ring[i].batches)))
        rc = -1;
    if (rc < 0 || !rp.ring || !rp.shards || !rp.cut.images || !rp.tallies) {
      snprintf(err, errlen, "out of memory");
      rc = -1;
    }
  }
  for (unsigned w = 0; rc == 0 && w < rp.workers; w++)
    if (shard_init(&rp.shards[w], &cfg->rules, 0) < 0) {
      snprintf(err, errlen, "out of memory");
      rc = -1;
    }
  if (rc == 0 && cfg->snapshots.dir) {
    rp.snapshot_dir = cfg->snapshots.dir;
    rp.fingerprint = snapshot_fingerprint(&cfg->rules);
    rp.inputs_hash = resume_hash_inputs(&rp);
    rp.dead_path_hash = fnv1a64(FNV1A64_INIT, cfg->dead_letter_path, strlen(cfg->dead_letter_path));
    rp.cut.last_time = started;
    if (resume_find(&rp, err, errlen) < 0)
      rc = -1;
    else if (!(rp.cut.writer = snapshotter_start(rp.snapshot_dir, cut_gate, cut_written, &rp))) {
      snprintf(err, errlen, "cannot start the snapshot writer thread");
      rc = -1;
    }
    rp.cut.next_records = atomic_load(&rp.records_seen) + cfg->snapshots.records;
  }
  if (rc == 0 && !rp.dead) {
    rp.dead = dead_letter_open_file(cfg->dead_letter_path, err, errlen);
    if (!rp.dead) {
      cut_append_advice(&rp, errno, err, errlen);
      rc = -1;
    }
  }
  if (rc < 0) {
    close_replay(&rp);
    return -1;
  }

  worker *workers = calloc(rp.workers, sizeof *workers);
  unsigned running = 0;
  if (!workers)
    replay_fail(&rp, "out of memory");
  for (; workers && running < rp.workers; running++) {
    workers[running] = (worker){&rp, running, 0};
    if (pthread_create(&workers[running].thread, NULL, replay_worker_main, &workers[running]) !=
        0) {
      replay_fail(&rp, "cannot start a worker thread");
      break;
    }
  }
  char why[600];
  if (!replay_failed(&rp) && replay_metrics_serve(&rp, why, sizeof why) < 0)
    replay_fail(&rp, why);
  watch_workers(&rp, workers, running, started);
  free(workers);
  replay_metrics_finish(&rp); /* the final figures, served --metrics-linger seconds more */

  char close_err[LATCH_REASON_MAX];
  dead_letter_counts(rp.dead, result->rejected);
  dead_letter *dead = rp.dead;
  rp.dead = NULL; /* closed here; close_replay closes it on the other paths */
  if (dead_letter_close(dead, close_err, sizeof close_err) < 0) {
    cut_append_advice(&rp, errno, close_err, sizeof close_err);
    replay_fail(&rp, close_err);
  }
  if (replay_failed(&rp)) {
    latch_reason(&rp.failure, err, errlen);
    close_replay(&rp);
    return -1;
  }
  result->records = atomic_load(&rp.records_seen);
  result->seconds = clock_seconds() - started;
  if (rp.stopped) { /* no CSV: the input was not processed to its end */
    result->stopped_by = rp.stopped;
    result->snapshot_written =
        rp.snapshot_dir && rp.cut.last_written_at == (int64_t)result->records;
    close_replay(&rp);
    return 1;
  }

  /* Totals are the sum of the shards' counters (and of the blocks retired
   * on their way to shard 0), moved rather than copied. */
  rollup totals;
  rollup_init(&totals);
  rollup_absorb(&totals, &rp.retired);
  for (unsigned w = 0; w < rp.workers; w++) {
    rollup_absorb(&totals, &rp.shards[w].counts);
    result->corrected += rp.shards[w].corrected;
    result->persons += rp.shards[w].persons.count;
    result->state_bytes += personmap_bytes(&rp.shards[w].persons);
  }
  rc = csv_write_rollup_min_cell(cfg->csv_path, &totals, cfg->min_cell, &result->rows, err, errlen);
  if (rc < 0)
    cut_append_advice(&rp, errno, err, errlen);
  else if (cfg->postgres)
    rc = replay_postgres_write(cfg, &totals, &result->postgres_rows, err, errlen);
  rollup_free(&totals);
  result->seconds = clock_seconds() - started;
  if (rc == 0 && rp.snapshot_dir) {
    /* The CSV and the dead letters are complete and synced: nothing to resume. */
    cut_remove(rp.snapshot_dir, 0, 0);
    if (!cfg->quiet && rp.cut.count)
      log_fields(LOG_INFO, "snapshot",
                 json_pack("{s:I,s:i,s:o,s:o,s:o,s:I,s:I,s:o}", "cuts", (json_int_t)rp.cut.count,
                           "shards", (int)rp.workers, "pause_mean_seconds",
                           log_real(rp.cut.pause_sum / (double)rp.cut.count), "pause_max_seconds",
                           log_real(rp.cut.pause_max), "capture_max_seconds",
                           log_real(rp.cut.capture_max), "written", (json_int_t)rp.cut.written,
                           "bytes", (json_int_t)rp.cut.snapshot_bytes, "write_seconds",
                           log_real(rp.cut.write_seconds)),
                 "%llu snapshot cut(s) of %u shard(s): pause mean %.1f ms, max %.1f ms (capture "
                 "max %.1f ms); %llu written, %.1f MB in %.2f s; removed at the end",
                 (unsigned long long)rp.cut.count, rp.workers,
                 rp.cut.pause_sum / (double)rp.cut.count * 1e3, rp.cut.pause_max * 1e3,
                 rp.cut.capture_max * 1e3, (unsigned long long)rp.cut.written,
                 (double)rp.cut.snapshot_bytes / 1e6, rp.cut.write_seconds);
  }
  close_replay(&rp);
  return rc;
}
