/* cut.c — consistent cuts of a file-mode run, for snapshots. Finding and
 * loading a cut to resume from is file/resume.c's; the files are the
 * snapshot store's and the writing is the snapshotter's (state/).
 *
 * Snapshots (--snapshot-dir DIR, SPEC §6). A cut is taken at a block
 * sequence boundary S: the worker about to claim block S stops the walk
 * there instead (claims stay paused), the workers apply every block < S and
 * meet at S. The last to arrive flushes the dead-letter file (which then
 * holds exactly the rejects of blocks < S: nothing >= S was decoded) and
 * fills the cut's meta; each worker captures its own shard
 * (snapshot_capture, the short pause); when all have, the walk resumes and
 * the watcher thread (the one that started the workers) fsyncs the
 * dead-letter file and writes the images (snapshot_image_write), one cut
 * at a time, while the pipeline runs. Shard k of n writes "file.<k>of<n>";
 * meta.position is the records consumed before the cut, and meta.extra:
 *   [0]      REPLAY_SNAPSHOT_LAYOUT (this layout, version 1)
 *   [1]      hash of the input list: count, and per file the path as given,
 *            size and sync marker (resuming over other inputs is refused)
 *   [2]      S, blocks taken from the walk before the cut
 *   [3]      index of the file the walk was in
 *   [4..6]   ocf_position of the next block there: offset, block index and
 *            first record index in the file
 *   [7]      dead-letter file length in bytes at the cut
 *   [8..14]  rejected records per reason (REASON_UNDECODABLE..REASON_LATE)
 *   [15]     hash of the --dead-letter path as given (resuming would cut back
 *            another file: refused)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file/mode.h"
#include "state/store.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/stop.h"

/* ---- the failure policy for durable output ----
 *
 * A snapshot, the dead-letter file or the CSV that cannot be written (a
 * full disk, an I/O error, a permission) fails the run: one line naming the
 * file or folder and the errno text, what to do, and that the same command
 * then resumes from the newest complete cut (nothing half-written is
 * trusted: temporary files are never read, a snapshot is checked before it
 * is used, the dead-letter file is cut back to a cut's length). Going on
 * without snapshots would promise a resume that is not there. */

void cut_append_advice(const replay *rp, int e, char *err, size_t errlen) {
  size_t used = strlen(err);
  if (used >= errlen)
    return;
  if (rp->snapshot_dir)
    snprintf(err + used, errlen - used,
             "; %s, then rerun the same command: it resumes from the newest complete snapshot "
             "in %s",
             fs_remedy(e), rp->snapshot_dir);
  else
    snprintf(err + used, errlen - used, "; %s, then rerun the same command", fs_remedy(e));
}

void cut_fail_dead_letter(replay *rp, int locked) {
  char why[LATCH_REASON_MAX];
  int e = dead_letter_error(rp->dead, why, sizeof why);
  cut_append_advice(rp, e, why, sizeof why);
  if (locked)
    replay_fail_locked(rp, why);
  else
    replay_fail(rp, why);
}

/* Under lock, on a claim: is a snapshot cut due before the next block? */
int cut_due(replay *rp) {
  if (rp->cut.busy || rp->next_sequence == rp->cut.last_sequence)
    return 0;
  if (atomic_load(&rp->cut.wanted) || stop_requested())
    return 1;
  return rp->cfg->snapshots.records && atomic_load(&rp->records_seen) >= rp->cut.next_records;
}

/* Under lock: stop the walk before block next_sequence; the workers meet
 * there (take_cut). */
void cut_start(replay *rp) {
  rp->cut.file = rp->walk_file;
  rp->cut.position = ocf_tell(rp->inputs[rp->walk_file].reader);
  rp->cut.started = clock_seconds();
  atomic_store(&rp->cut.wanted, 0);
  atomic_store(&rp->cut.at, rp->next_sequence);
  atomic_fetch_add(&rp->generation, 1);
  pthread_cond_broadcast(&rp->changed);
}

/* Under lock, by the last worker to reach the cut: nothing is being decoded
 * or applied, so the dead-letter file holds exactly the rejects of the
 * blocks before the cut. */
static void fill_cut_meta(replay *rp) {
  snapshot_meta *m = &rp->cut.meta;
  memset(m, 0, sizeof *m);
  m->fingerprint = rp->fingerprint;
  m->position = (int64_t)atomic_load(&rp->records_seen);
  uint64_t *x = m->extra, dead_bytes = 0;
  x[X_LAYOUT] = REPLAY_SNAPSHOT_LAYOUT;
  x[X_INPUTS] = rp->inputs_hash;
  x[X_SEQUENCE] = rp->next_sequence;
  x[X_FILE] = (uint64_t)rp->cut.file;
  x[X_OFFSET] = rp->cut.position.offset;
  x[X_BLOCK] = rp->cut.position.block_index;
  x[X_RECORD] = rp->cut.position.first_record;
  if (dead_letter_flush(rp->dead, &dead_bytes) < 0)
    cut_fail_dead_letter(rp, 1);
  x[X_DEAD_BYTES] = dead_bytes;
  uint64_t rejected[REASON_COUNT];
  dead_letter_counts(rp->dead, rejected);
  for (int r = 1; r < REASON_COUNT; r++)
    x[X_REJECTED + r - 1] = rejected[r];
  x[X_DEAD_PATH] = rp->dead_path_hash;
}

/* Worker w has applied every block before the cut: meet the others, capture
 * the shard, wait until all have, and let the walk go on. */
void cut_take(replay *rp, unsigned w) {
  pthread_mutex_lock(&rp->lock);
  uint64_t epoch = rp->cut.epoch;
  if (++rp->cut.arrived == rp->workers) {
    rp->cut.quiet = clock_seconds();
    fill_cut_meta(rp);
    rp->cut.meta_ready = 1;
    pthread_cond_broadcast(&rp->changed);
  }
  while (!rp->cut.meta_ready && !replay_failed(rp))
    pthread_cond_wait(&rp->changed, &rp->lock);
  snapshot_meta meta = rp->cut.meta;
  pthread_mutex_unlock(&rp->lock);
  if (replay_failed(rp))
    return;

  /* Every worker has met here, so no month block is on its way: those
   * handed on before go into shard 0's image. */
  if (w == 0 && rp->workers > 1)
    replay_take_retired(rp);
  cut_shard_id(w, rp->workers, meta.shard_id);
  snapshot_image *img = snapshot_capture(&rp->shards[w], &meta);

  pthread_mutex_lock(&rp->lock);
  rp->cut.images[w] = img;
  if (++rp->cut.captured == rp->workers) {
    double now = clock_seconds();
    double pause = now - rp->cut.started, capture = now - rp->cut.quiet;
    rp->cut.count++;
    rp->cut.pause_sum += pause;
    rp->cut.capture_sum += capture;
    rp->cut.last_pause = pause;
    if (pause > rp->cut.pause_max)
      rp->cut.pause_max = pause;
    if (capture > rp->cut.capture_max)
      rp->cut.capture_max = capture;
    rp->cut.last_sequence = rp->next_sequence;
    rp->cut.last_time = now;
    rp->cut.next_records = (uint64_t)rp->cut.meta.position + rp->cfg->snapshots.records;
    rp->cut.arrived = rp->cut.captured = 0;
    rp->cut.meta_ready = 0;
    rp->cut.epoch++;
    rp->cut.busy = 1;
    atomic_store(&rp->cut.at, NO_CUT);
    atomic_fetch_add(&rp->generation, 1);
    pthread_cond_broadcast(&rp->changed);
    pthread_cond_signal(&rp->watch);
  }
  while (rp->cut.epoch == epoch && !replay_failed(rp))
    pthread_cond_wait(&rp->changed, &rp->lock);
  pthread_mutex_unlock(&rp->lock);
}

/* ---- the shards' names: "file.<k>of<n>" ---- */

void cut_shard_id(unsigned k, unsigned n, char id[SNAPSHOT_SHARD_ID_MAX]) {
  snprintf(id, SNAPSHOT_SHARD_ID_MAX, "file.%uof%u", k, n);
}

int cut_parse_shard_id(const char *id, unsigned *k, unsigned *n) {
  if (strncmp(id, "file.", 5) != 0)
    return -1;
  const char *p = id + 5;
  unsigned long v[2];
  for (int i = 0; i < 2; i++) {
    if (*p < '0' || *p > '9')
      return -1;
    v[i] = 0;
    while (*p >= '0' && *p <= '9' && v[i] <= REPLAY_MAX_THREADS)
      v[i] = v[i] * 10 + (unsigned long)(*p++ - '0');
    if (i == 0 && strncmp(p, "of", 2) != 0)
      return -1;
    p += i == 0 ? 2 : 0;
  }
  if (v[1] < 1 || v[1] > REPLAY_MAX_THREADS || v[0] >= v[1] || *p)
    return -1;
  *k = (unsigned)v[0];
  *n = (unsigned)v[1];
  return 0;
}

void cut_remove(const char *dir, unsigned keep_threads, uint64_t before) {
  if (!keep_threads) { /* the run is complete: every cut, and any temporary file */
    snapshot_store_remove_all(dir, "file.");
    return;
  }
  snapshot_entry *entries;
  size_t count;
  char err[256];
  if (snapshot_store_list(dir, "file.", &entries, &count, err, sizeof err) < 0)
    return;
  for (size_t i = 0; i < count; i++) {
    unsigned k, n;
    if (cut_parse_shard_id(entries[i].shard_id, &k, &n) < 0 || n == keep_threads ||
        (uint64_t)entries[i].position >= before)
      continue;
    snapshot_store_remove(dir, entries[i].shard_id, entries[i].position);
  }
  free(entries);
}

/* ---- writing a cut: the watcher submits, the snapshot writer writes ---- */

void cut_submit(replay *rp) {
  pthread_mutex_lock(&rp->lock);
  int missing = 0;
  for (unsigned w = 0; w < rp->workers; w++)
    missing |= rp->cut.images[w] == NULL;
  rp->cut.submitted = 1;
  rp->cut.written_n = 0;
  rp->cut.write_ok = !missing;
  rp->cut.synced = 0;
  rp->cut.bytes = 0;
  rp->cut.write_started = clock_seconds();
  if (missing)
    snprintf(rp->cut.write_error, sizeof rp->cut.write_error,
             "out of memory capturing a shard; rerun the same command (with fewer --threads or "
             "more memory)");
  pthread_mutex_unlock(&rp->lock);
  for (unsigned w = 0; w < rp->workers; w++) {
    snapshot_image *img = rp->cut.images[w];
    rp->cut.images[w] = NULL;
    if (missing) { /* none of it is written: a cut is all its shards or nothing */
      if (img)
        snapshot_image_free(img);
      cut_written(rp, NULL, 0, 0, 0, NULL);
    } else {
      snapshotter_submit(rp->cut.writer, img); /* may wait while the writer's queue is full */
    }
  }
}

/* Before each image: the snapshots name the dead-letter file's length, so
 * it is synced first (once per cut); after a failure the rest of the cut
 * is dropped. On the writer thread. */
int cut_gate(void *ctx) {
  replay *rp = ctx;
  pthread_mutex_lock(&rp->lock);
  int go = rp->cut.write_ok, sync = go && !rp->cut.synced;
  rp->cut.synced = 1;
  pthread_mutex_unlock(&rp->lock);
  if (sync && dead_letter_sync(rp->dead) < 0) {
    char why[sizeof rp->cut.write_error];
    int e = dead_letter_error(rp->dead, why, sizeof why);
    cut_append_advice(rp, e, why, sizeof why);
    pthread_mutex_lock(&rp->lock);
    rp->cut.write_ok = go = 0;
    snprintf(rp->cut.write_error, sizeof rp->cut.write_error, "%s", why);
    pthread_mutex_unlock(&rp->lock);
  }
  return go ? 0 : -1;
}

/* After each image of the cut (on the writer thread, errno as the store
 * left it; with meta NULL from cut_submit): once all are done the cut is
 * complete, or the run fails (a cut that cannot be written), and the next
 * one may start. */
void cut_written(void *ctx, const snapshot_meta *meta, int written, size_t bytes, double seconds,
                 const char *err) {
  int e = errno;
  (void)meta;
  (void)seconds;
  replay *rp = ctx;
  char why[sizeof rp->cut.write_error] = "";
  if (written < 0) {
    snprintf(why, sizeof why, "%s", err);
    cut_append_advice(rp, e, why, sizeof why);
  }
  pthread_mutex_lock(&rp->lock);
  rp->cut.bytes += bytes;
  if (written < 0 && rp->cut.write_ok) {
    rp->cut.write_ok = 0;
    snprintf(rp->cut.write_error, sizeof rp->cut.write_error, "%s", why);
  }
  int complete = ++rp->cut.written_n == rp->workers;
  int ok = rp->cut.write_ok;
  int64_t position = rp->cut.meta.position; /* no other cut starts while writer_busy */
  pthread_mutex_unlock(&rp->lock);
  if (!complete)
    return;
  if (ok) {
    cut_remove(rp->snapshot_dir, rp->workers, (uint64_t)position);
  } else {
    char why[LATCH_REASON_MAX];
    snprintf(why, sizeof why, "the snapshot at %lld records was not written: %s",
             (long long)position, rp->cut.write_error);
    replay_fail(rp, why);
  }
  pthread_mutex_lock(&rp->lock);
  rp->cut.written += (uint64_t)ok;
  if (ok) {
    rp->cut.last_written_at = position;
    rp->cut.last_written_time = clock_seconds();
    rp->cut.last_write_seconds = rp->cut.last_written_time - rp->cut.write_started;
    rp->cut.last_bytes = rp->cut.bytes;
  }
  rp->cut.snapshot_bytes += rp->cut.bytes;
  rp->cut.write_seconds += clock_seconds() - rp->cut.write_started;
  rp->cut.busy = 0;
  rp->cut.submitted = 0;
  pthread_cond_signal(&rp->watch);
  pthread_mutex_unlock(&rp->lock);
}
