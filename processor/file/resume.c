/* resume.c — resuming a file-mode run from the newest complete cut in the
 * snapshot directory. Taking cuts is file/cut.c's.
 *
 * On start the newest complete cut is loaded (all n shards at one position,
 * their extras equal; a corrupt or inconsistent one falls back to an older
 * cut with a warning): with another --threads the old shards' persons are
 * re-inserted by hash and their counters summed. The dead-letter file is cut
 * back to the recorded length, and the walk seeks to the recorded block. A
 * run that completes deletes its file-mode snapshots (a finished replay has
 * nothing to resume; a new run over the same DIR starts afresh).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fnv.h"
#include "file/mode.h"
#include "state/store.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/log.h"

/* What identifies the input list: its length and, per file in order, the
 * path as given (it is in every dead letter), the size and the sync marker. */
uint64_t resume_hash_inputs(const replay *rp) {
  uint64_t h = fnv1a64(FNV1A64_INIT, "inputs/1", 8);
  uint64_t count = (uint64_t)rp->input_count;
  h = fnv1a64(h, &count, sizeof count);
  for (int f = 0; f < rp->input_count; f++) {
    const ocf_reader *r = rp->inputs[f].reader;
    const char *path = ocf_path(r);
    uint64_t size = ocf_file_size(r);
    h = fnv1a64(h, path, strlen(path) + 1);
    h = fnv1a64(h, &size, sizeof size);
    h = fnv1a64(h, ocf_sync_marker(r), 16);
  }
  return h;
}

/* The path of shard k of n's snapshot at position. */
static void cut_path(const replay *rp, unsigned k, unsigned n, uint64_t position, char *path,
                     size_t len) {
  char id[SNAPSHOT_SHARD_ID_MAX];
  cut_shard_id(k, n, id);
  snapshot_store_path(rp->snapshot_dir, id, (int64_t)position, path, len);
}

typedef struct cut_candidate {
  unsigned threads;
  uint64_t position;
  uint64_t shards; /* bit k: file.<k>of<threads> is there */
} cut_candidate;

static int newer_first(const void *a, const void *b) {
  const cut_candidate *x = a, *y = b;
  if (x->position != y->position)
    return x->position < y->position ? 1 : -1;
  return x->threads < y->threads ? -1 : x->threads > y->threads;
}

static int reset_shards(replay *rp) {
  int rc = 0;
  for (unsigned w = 0; w < rp->workers; w++) {
    shard_free(&rp->shards[w]);
    if (shard_init(&rp->shards[w], &rp->cfg->rules, 0) < 0)
      rc = -1;
  }
  return rc;
}

/* A shard of another thread count: its persons go to their shards of this
 * run by hash; its counters are summed into shard 0 (only sums are read). */
static int redistribute(replay *rp, const shard *old) {
  int64_t id;
  const person_state *st;
  for (size_t at = 0; (st = personmap_next(&old->persons, &at, &id));) {
    uint64_t hash = personmap_hash(id);
    int created;
    person_state *to = personmap_upsert(&rp->shards[personmap_shard(hash, rp->workers)].persons, id,
                                        hash, &created);
    if (!to)
      return -1;
    *to = *st;
  }
  shard *into = &rp->shards[0];
  rollup_merge(&into->counts, &old->counts);
  into->applied += old->applied;
  into->corrected += old->corrected;
  into->late += old->late;
  return 0;
}

/* Load the cut of c->threads shards at c->position into the shards. 1
 * loaded (*meta is shard 0's); 0 unusable, warned, shards reset; -1 refused
 * (another configuration or input), reason in err. */
static int load_cut(replay *rp, const cut_candidate *c, snapshot_meta *meta, char *err,
                    size_t errlen) {
  const char *dir = rp->snapshot_dir;
  int rc = 1;
  for (unsigned k = 0; k < c->threads && rc == 1; k++) {
    char path[4400], why[400];
    cut_path(rp, k, c->threads, c->position, path, sizeof path);
    shard old, *into = &rp->shards[k];
    if (c->threads != rp->workers) {
      if (shard_init(&old, &rp->cfg->rules, 0) < 0) {
        snprintf(err, errlen, "out of memory loading %s", path);
        rc = -1;
        break;
      }
      into = &old;
    }
    snapshot_meta m;
    char expected_id[SNAPSHOT_SHARD_ID_MAX];
    cut_shard_id(k, c->threads, expected_id);
    if (snapshot_read(path, into, &m, why, sizeof why) < 0) {
      log_fields(LOG_WARN, "snapshot", json_pack("{s:s,s:s}", "path", path, "why", why),
                 "snapshot %s is unusable (%s); trying an older one", path, why);
      rc = 0;
    } else if (m.fingerprint != rp->fingerprint) {
      snprintf(err, errlen,
               "snapshot %s was written with other rule options (or another reader schema) than "
               "this run's: rerun with the same options, or remove %s/file.*.snap to start over",
               path, dir);
      rc = -1;
    } else if (m.extra[X_LAYOUT] != REPLAY_SNAPSHOT_LAYOUT) {
      snprintf(err, errlen,
               "snapshot %s is not a file-mode snapshot this version can resume from: remove "
               "%s/file.*.snap to start over",
               path, dir);
      rc = -1;
    } else if (m.extra[X_INPUTS] != rp->inputs_hash) {
      snprintf(err, errlen,
               "snapshot %s was taken over other input files (the --input list, a path as given, "
               "or a file's size or content differ): rerun with the same --input list, or remove "
               "%s/file.*.snap to start over",
               path, dir);
      rc = -1;
    } else if (m.extra[X_DEAD_PATH] != rp->dead_path_hash) {
      snprintf(err, errlen,
               "snapshot %s was taken with another --dead-letter file than %s: rerun with the "
               "same one, or remove %s/file.*.snap to start over",
               path, rp->cfg->dead_letter_path, dir);
      rc = -1;
    } else if (m.position != (int64_t)c->position || strcmp(m.shard_id, expected_id) != 0 ||
               m.extra[X_FILE] >= (uint64_t)rp->input_count ||
               (k > 0 && (m.position != meta->position ||
                          memcmp(m.extra, meta->extra, sizeof m.extra) != 0))) {
      log_fields(LOG_WARN, "snapshot", json_pack("{s:s}", "path", path),
                 "snapshot %s does not agree with its name or with shard 0 of its cut; trying an "
                 "older one",
                 path);
      rc = 0;
    } else {
      if (k == 0)
        *meta = m;
      if (into == &old && redistribute(rp, &old) < 0) {
        snprintf(err, errlen, "out of memory loading %s", path);
        rc = -1;
      }
    }
    if (into == &old)
      shard_free(&old);
  }
  if (rc != 1 && reset_shards(rp) < 0 && rc == 0) {
    snprintf(err, errlen, "out of memory");
    rc = -1;
  }
  return rc;
}

/* Find and load the newest complete, valid cut in the snapshot directory
 * (made when missing). 1 loaded, *meta filled; 0 none (start from the
 * beginning); -1 refused or failed, reason in err. */
static int find_cut(replay *rp, snapshot_meta *meta, unsigned *threads, char *err, size_t errlen) {
  const char *dir = rp->snapshot_dir;
  snapshot_entry *entries;
  size_t found;
  if (snapshot_store_list(dir, "file.", &entries, &found, err, errlen) < 0)
    return -1;
  if (!found && fs_mkdirs_private(dir) < 0) { /* 0700: it will hold per-person state */
    int e = errno;
    snprintf(err, errlen, "cannot make snapshot directory %s: %s", dir, strerror(e));
    cut_append_advice(rp, e, err, errlen);
    return -1;
  }
  cut_candidate *cuts = NULL;
  size_t count = 0, cap = 0;
  int rc = 0;
  for (size_t f = 0; f < found; f++) {
    unsigned k, n;
    uint64_t position = (uint64_t)entries[f].position;
    if (cut_parse_shard_id(entries[f].shard_id, &k, &n) < 0)
      continue;
    size_t i = 0;
    while (i < count && (cuts[i].threads != n || cuts[i].position != position))
      i++;
    if (i == count) {
      if (count == cap) {
        cap = cap ? 2 * cap : 16;
        cut_candidate *grown = realloc(cuts, cap * sizeof *grown);
        if (!grown) {
          snprintf(err, errlen, "out of memory");
          rc = -1;
          break;
        }
        cuts = grown;
      }
      cuts[count++] = (cut_candidate){n, position, 0};
    }
    cuts[i].shards |= 1ull << k;
  }
  free(entries);
  if (rc == 0 && count)
    qsort(cuts, count, sizeof *cuts, newer_first);
  for (size_t i = 0; rc == 0 && i < count; i++) {
    const cut_candidate *c = &cuts[i];
    uint64_t all = c->threads == 64 ? UINT64_MAX : (1ull << c->threads) - 1;
    if (c->shards != all) {
      log_fields(LOG_WARN, "snapshot",
                 json_pack("{s:I,s:s,s:i,s:i}", "records", (json_int_t)c->position, "dir", dir,
                           "shards_present", __builtin_popcountll(c->shards), "shards",
                           (int)c->threads),
                 "the snapshot cut at %llu records in %s has %d of its %u shards (a stop cut it "
                 "short); trying an older one",
                 (unsigned long long)c->position, dir, __builtin_popcountll(c->shards), c->threads);
      continue;
    }
    rc = load_cut(rp, c, meta, err, errlen);
    *threads = c->threads;
  }
  if (rc == 0 && count)
    log_fields(LOG_WARN, "snapshot", json_pack("{s:s}", "dir", dir),
               "no usable snapshot in %s; starting from the beginning", dir);
  /* An incomplete cut never completes (its writer is gone), and it would
   * count among its shards' newest few: drop it. */
  for (size_t i = 0; rc >= 0 && i < count; i++) {
    const cut_candidate *c = &cuts[i];
    uint64_t all = c->threads == 64 ? UINT64_MAX : (1ull << c->threads) - 1;
    for (unsigned k = 0; c->shards != all && k < c->threads; k++)
      if (c->shards >> k & 1) {
        char id[SNAPSHOT_SHARD_ID_MAX];
        cut_shard_id(k, c->threads, id);
        snapshot_store_remove(rp->snapshot_dir, id, (int64_t)c->position);
      }
  }
  free(cuts);
  return rc;
}

/* Continue from a loaded cut of threads shards: the walk, the counts, the
 * dead-letter file. */
static int resume_from(replay *rp, const snapshot_meta *m, unsigned threads, char *err,
                       size_t errlen) {
  const uint64_t *x = m->extra;
  int file = (int)x[X_FILE];
  ocf_position at = {x[X_OFFSET], x[X_BLOCK], x[X_RECORD]};
  char why[400];
  if (ocf_seek(rp->inputs[file].reader, &at, why, sizeof why) < 0) {
    snprintf(err, errlen, "snapshot %s does not fit the input: %s", m->shard_id, why);
    return -1;
  }
  uint64_t rejected[REASON_COUNT] = {0}, dead = 0;
  for (int r = 1; r < REASON_COUNT; r++)
    dead += rejected[r] = x[X_REJECTED + r - 1];
  rp->dead = dead_letter_open_file_at(rp->cfg->dead_letter_path, x[X_DEAD_BYTES], rejected, why,
                                      sizeof why);
  if (!rp->dead && errno != 0 && errno != ENOENT) { /* a disk fault, not another file */
    int e = errno;
    snprintf(err, errlen, "%s", why);
    cut_append_advice(rp, e, err, errlen);
    return -1;
  }
  if (!rp->dead) {
    snprintf(err, errlen,
             "cannot resume from the snapshots in %s: %s; remove %s/file.*.snap to "
             "start over",
             rp->snapshot_dir, why, rp->snapshot_dir);
    return -1;
  }
  rp->walk_file = file;
  rp->next_sequence = rp->first_sequence = rp->cut.last_sequence = x[X_SEQUENCE];
  atomic_store(&rp->records_seen, (uint64_t)m->position);
  rp->cut.last_written_at = m->position; /* a stop right here leaves this cut to resume from */
  time_t written = (time_t)(m->written_unix_ms / 1000);
  struct tm tm;
  char when[64] = "?";
  if (localtime_r(&written, &tm))
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
  log_fields(
      LOG_INFO, "snapshot",
      json_pack("{s:I,s:i,s:i,s:I,s:I,s:I,s:o,s:I}", "records", (json_int_t)m->position, "file",
                file + 1, "files", rp->input_count, "block", (json_int_t)at.block_index,
                "written_unix_ms", (json_int_t)m->written_unix_ms, "threads", (json_int_t)threads,
                "load_seconds", log_real(rp->load_seconds), "dead_letters_kept", (json_int_t)dead),
      "resuming from the snapshot at %lld records (file %d of %d, block %llu), written %s "
      "by %llu thread(s), loaded in %.2f s; %llu dead letters kept",
      (long long)m->position, file + 1, rp->input_count, (unsigned long long)at.block_index, when,
      (unsigned long long)threads, rp->load_seconds, (unsigned long long)dead);
  return 0;
}

int resume_find(replay *rp, char *err, size_t errlen) {
  snapshot_meta meta;
  double load_started = clock_seconds();
  unsigned threads = 0;
  int found = find_cut(rp, &meta, &threads, err, errlen);
  rp->load_seconds = clock_seconds() - load_started;
  if (found == 1 && resume_from(rp, &meta, threads, err, errlen) < 0)
    return -1;
  return found;
}
