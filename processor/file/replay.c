/* replay.c — the file-mode pipeline: container blocks -> decode -> validate
 * -> shard -> rules -> rollup, on N worker threads.
 *
 * The idea: every worker is both a decoder and a shard owner. Blocks travel
 * through a ring of slots, each tagged (sequence << 2 | state). A worker with
 * nothing to apply claims the next block of the input (the walk over the files
 * is the only locked step, once per block), decompresses and decodes it into
 * its slot and marks it READY. Every worker applies every READY block in
 * sequence order, taking only the records of its own persons (hash of
 * person_id), so each person's months are applied in input order by one
 * thread, and results do not depend on the thread count. The last worker to
 * finish a slot frees it for the block R sequences later. Rejects go to the
 * dead-letter sink as they are found: invalid or undecodable ones while
 * decoding, late ones while applying.
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
 * On start the newest complete cut is loaded (all n shards at one position,
 * their extras equal; a corrupt or inconsistent one falls back to an older
 * cut with a warning): with another --threads the old shards' persons are
 * re-inserted by hash and their counters summed. The dead-letter file is cut
 * back to the recorded length, and the walk seeks to the recorded block. A
 * run that completes deletes its file-mode snapshots (a finished replay has
 * nothing to resume; a new run over the same DIR starts afresh). */
#include "file/replay.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "avro/decode.h"
#include "avro/ocf.h"
#include "core/fnv.h"
#include "sink/csv.h"
#include "sink/dead_letter.h"
#include "state/shard.h"
#include "state/snapshot.h"
#include "util/clock.h"

enum { SLOT_FREE = 0, SLOT_DECODING = 1, SLOT_READY = 2 };
enum { APPLY_CHUNK = 256, PREFETCH_DISTANCE = 8 };

/* meta.extra of a file-mode snapshot (see the top of this file). */
enum {
  X_LAYOUT = 0,
  X_INPUTS = 1,
  X_SEQUENCE = 2,
  X_FILE = 3,
  X_OFFSET = 4,
  X_BLOCK = 5,
  X_RECORD = 6,
  X_DEAD_BYTES = 7,
  X_REJECTED = 8, /* + reason - 1 */
  X_DEAD_PATH = 15,
};
_Static_assert(X_REJECTED + REASON_COUNT - 1 <= X_DEAD_PATH, "rejected counts fit in extra");
_Static_assert((int)X_DEAD_PATH < (int)SNAPSHOT_EXTRA, "the layout fits in extra");
#define REPLAY_SNAPSHOT_LAYOUT 0x525346494c450001ull /* "RSFILE", version 1 */
#define NO_CUT UINT64_MAX

typedef struct record_meta {
  uint32_t index;      /* record number inside the block */
  uint32_t start, end; /* its bytes inside the decoded block */
} record_meta;

typedef struct block_slot {
  _Atomic uint64_t tag; /* sequence << 2 | SLOT_* */
  atomic_uint done;     /* workers that have applied it */
  int file_index;
  ocf_block raw;
  ocf_buf inflated;
  const uint8_t *bytes; /* what the records were decoded from */
  uint32_t count, capacity;
  pm_record *records;
  uint64_t *hashes;
  record_meta *meta;
} block_slot;

typedef struct input {
  ocf_reader *reader;
  pm_plan *plan;
} input;

typedef struct replay {
  const replay_options *cfg;
  unsigned workers;
  input *inputs;
  int input_count;
  shard *shards;
  dead_letter *dead;
  block_slot *ring;
  unsigned ring_size;

  pthread_mutex_t lock; /* the walk over the input, waiting and failure */
  pthread_cond_t changed;
  _Atomic uint64_t generation; /* bumped (under lock) on every slot change */
  int walk_file;
  uint64_t next_sequence;
  int walk_done;
  _Atomic uint64_t total_blocks; /* UINT64_MAX until the walk has ended */

  _Atomic uint64_t records_seen;
  _Atomic int failed;
  char failure[512];

  /* Snapshots; snapshot_dir NULL: none, and none of this is used. */
  const char *snapshot_dir;
  uint64_t fingerprint, inputs_hash, dead_path_hash;
  uint64_t first_sequence; /* where the workers start (a resumed cut's S) */
  _Atomic uint64_t cut_at; /* S of the cut being taken, NO_CUT when none */
  _Atomic int cut_wanted;  /* set by the watcher: the seconds interval is up */
  /* under lock: */
  uint64_t next_cut_records;  /* the records interval: cut when records_seen reaches it */
  uint64_t last_cut_sequence; /* no second cut at the same boundary */
  double last_cut_time;       /* when the last cut was released (or the run began) */
  int cut_file;               /* the walk's state at the cut */
  ocf_position cut_position;
  unsigned cut_arrived, cut_captured;
  int cut_meta_ready;
  uint64_t cut_epoch; /* bumped when a cut is released */
  snapshot_meta cut_meta;
  snapshot_image **cut_images; /* [workers]: captured, waiting for the watcher */
  int writer_busy;             /* images of the last cut not yet written */
  double cut_started, cut_quiet;
  unsigned workers_done;
  pthread_cond_t watch; /* signalled when a cut is captured or a worker ends */
  /* statistics, under lock */
  uint64_t cuts, cuts_written, snapshot_bytes;
  double pause_sum, pause_max, capture_sum, capture_max, write_seconds, last_pause;
  double load_seconds; /* finding and loading the cut resumed from */
} replay;

static void fail_locked(replay *rp, const char *fmt, const char *what) {
  if (!atomic_load(&rp->failed)) {
    snprintf(rp->failure, sizeof rp->failure, fmt, what);
    atomic_store(&rp->failed, 1);
  }
  atomic_fetch_add(&rp->generation, 1);
  pthread_cond_broadcast(&rp->changed);
}

static void fail(replay *rp, const char *fmt, const char *what) {
  pthread_mutex_lock(&rp->lock);
  fail_locked(rp, fmt, what);
  pthread_mutex_unlock(&rp->lock);
}

static void wake_all(replay *rp) {
  pthread_mutex_lock(&rp->lock);
  atomic_fetch_add(&rp->generation, 1);
  pthread_cond_broadcast(&rp->changed);
  pthread_mutex_unlock(&rp->lock);
}

static void reject(replay *rp, const block_slot *s, reason why, int64_t record, int64_t count,
                   const uint8_t *bytes, size_t len, const char *detail) {
  const input *in = &rp->inputs[s->file_index];
  dead_letter_source src = {.file = ocf_path(in->reader),
                            .file_index = s->file_index,
                            .record = record,
                            .record_count = count,
                            .block = count == 1 ? -1 : (int64_t)s->raw.index,
                            .offset = count == 1 ? -1 : (int64_t)s->raw.file_offset};
  if (dead_letter_write(rp->dead, why, &src, bytes, len, detail) < 0)
    fail(rp, "%s", "cannot write the dead-letter output; stopping so that nothing is lost");
}

static int reserve(block_slot *s, size_t n) {
  if (n <= s->capacity)
    return 0;
  size_t cap = s->capacity ? s->capacity : 1024;
  while (cap < n)
    cap *= 2;
  pm_record *records = realloc(s->records, cap * sizeof *records);
  if (records)
    s->records = records;
  uint64_t *hashes = realloc(s->hashes, cap * sizeof *hashes);
  if (hashes)
    s->hashes = hashes;
  record_meta *meta = realloc(s->meta, cap * sizeof *meta);
  if (meta)
    s->meta = meta;
  if (!records || !hashes || !meta)
    return -1;
  s->capacity = (uint32_t)cap;
  return 0;
}

/* Decompress and decode the block in s; rejects go straight to the sink. */
static void decode_block(replay *rp, block_slot *s) {
  const input *in = &rp->inputs[s->file_index];
  const ocf_block *raw = &s->raw;
  s->count = 0;
  if (raw->kind == OCF_BLOCK_DAMAGED) {
    reject(rp, s, REASON_UNDECODABLE, (int64_t)raw->first_record, -1, raw->data, raw->size,
           "bytes that do not frame as a container block (bad block header or sync marker)");
    return;
  }
  const uint8_t *bytes = raw->data;
  size_t len = raw->size;
  if (ocf_reader_codec(in->reader) != OCF_CODEC_NULL) {
    char err[256];
    if (ocf_block_decompress(in->reader, raw, &s->inflated, err, sizeof err) < 0) {
      reject(rp, s, REASON_UNDECODABLE, (int64_t)raw->first_record, raw->count, raw->data,
             raw->size, err);
      atomic_fetch_add(&rp->records_seen, (uint64_t)raw->count);
      return;
    }
    bytes = s->inflated.data;
    len = s->inflated.len;
  }
  s->bytes = bytes;
  /* A record takes at least one byte: a larger count cannot be true. */
  size_t claimed = (size_t)raw->count < len ? (size_t)raw->count : len;
  if (reserve(s, claimed) < 0) {
    fail(rp, "%s", "out of memory while decoding a block");
    return;
  }
  const uint8_t *pos = bytes, *end = bytes + len;
  int64_t i;
  for (i = 0; i < raw->count; i++) {
    const uint8_t *start = pos;
    pm_record rec;
    int decoded = pm_decode(in->plan, &pos, end, &rec);
    if (decoded == PM_DECODE_BAD_VALUE) {
      reject(rp, s, REASON_UNDECODABLE, (int64_t)raw->first_record + i, 1, start,
             (size_t)(pos - start), "a value out of range (enum index or int)");
      continue;
    }
    if (decoded < 0) {
      char detail[200];
      snprintf(detail, sizeof detail,
               "record %lld of the block does not decode; it and the %lld after it in the block "
               "are kept here together (no record boundary can be found past it)",
               (long long)i, (long long)(raw->count - i - 1));
      reject(rp, s, REASON_UNDECODABLE, (int64_t)raw->first_record + i, raw->count - i, start,
             (size_t)(end - start), detail);
      pos = end;
      break;
    }
    reason why = validate_record(&rec);
    if (why != REASON_OK) {
      reject(rp, s, why, (int64_t)raw->first_record + i, 1, start, (size_t)(pos - start), NULL);
      continue;
    }
    uint32_t n = s->count++;
    s->records[n] = rec;
    s->hashes[n] = personmap_hash(rec.person_id);
    s->meta[n] = (record_meta){(uint32_t)i, (uint32_t)(start - bytes), (uint32_t)(pos - bytes)};
  }
  if (pos < end)
    reject(rp, s, REASON_UNDECODABLE, (int64_t)raw->first_record + i, 0, pos, (size_t)(end - pos),
           "bytes left over after the block's last record");
  atomic_fetch_add(&rp->records_seen, (uint64_t)raw->count);
}

/* Apply the records of shard w in block s, in order, prefetching ahead. */
static void apply_block(replay *rp, block_slot *s, unsigned w) {
  shard *sh = &rp->shards[w];
  uint32_t own[APPLY_CHUNK];
  for (uint32_t base = 0; base < s->count; base += APPLY_CHUNK) {
    uint32_t limit = s->count - base < APPLY_CHUNK ? s->count - base : APPLY_CHUNK, k = 0;
    for (uint32_t i = base; i < base + limit; i++)
      if (personmap_shard(s->hashes[i], rp->workers) == w)
        own[k++] = i;
    for (uint32_t j = 0; j < k; j++) {
      if (j + PREFETCH_DISTANCE < k)
        personmap_prefetch(&sh->persons, s->hashes[own[j + PREFETCH_DISTANCE]]);
      uint32_t i = own[j];
      int r = shard_apply(sh, &s->records[i], s->hashes[i]);
      if (r == RULES_LATE) {
        const record_meta *m = &s->meta[i];
        reject(rp, s, REASON_LATE, (int64_t)s->raw.first_record + m->index, 1, s->bytes + m->start,
               m->end - m->start, NULL);
      } else if (r < 0) {
        fail(rp, "%s", "out of memory for person states");
        return;
      }
    }
  }
}

/* Under lock, on a claim: is a snapshot cut due before the next block? */
static int cut_due(replay *rp) {
  if (rp->writer_busy || rp->next_sequence == rp->last_cut_sequence)
    return 0;
  if (atomic_load(&rp->cut_wanted))
    return 1;
  return rp->cfg->snapshots.records && atomic_load(&rp->records_seen) >= rp->next_cut_records;
}

/* Under lock: stop the walk before block next_sequence; the workers meet
 * there (take_cut). */
static void start_cut(replay *rp) {
  rp->cut_file = rp->walk_file;
  rp->cut_position = ocf_tell(rp->inputs[rp->walk_file].reader);
  rp->cut_started = clock_seconds();
  atomic_store(&rp->cut_wanted, 0);
  atomic_store(&rp->cut_at, rp->next_sequence);
  atomic_fetch_add(&rp->generation, 1);
  pthread_cond_broadcast(&rp->changed);
}

/* Claim the next block of the input and decode it. 1 when one was decoded. */
static int claim_and_decode(replay *rp) {
  pthread_mutex_lock(&rp->lock);
  block_slot *s = &rp->ring[rp->next_sequence % rp->ring_size];
  if (rp->walk_done || (atomic_load(&s->tag) & 3) != SLOT_FREE ||
      atomic_load(&rp->cut_at) != NO_CUT) {
    pthread_mutex_unlock(&rp->lock);
    return 0;
  }
  if (rp->snapshot_dir && cut_due(rp)) {
    start_cut(rp);
    pthread_mutex_unlock(&rp->lock);
    return 0;
  }
  ocf_block block;
  while (rp->walk_file < rp->input_count &&
         !ocf_next_block(rp->inputs[rp->walk_file].reader, &block))
    rp->walk_file++;
  if (rp->walk_file == rp->input_count) {
    rp->walk_done = 1;
    atomic_store(&rp->total_blocks, rp->next_sequence);
    atomic_fetch_add(&rp->generation, 1);
    pthread_cond_broadcast(&rp->changed);
    pthread_mutex_unlock(&rp->lock);
    return 0;
  }
  uint64_t sequence = rp->next_sequence++;
  s->raw = block;
  s->file_index = rp->walk_file;
  atomic_store(&s->tag, sequence << 2 | SLOT_DECODING);
  pthread_mutex_unlock(&rp->lock);

  decode_block(rp, s);
  atomic_store_explicit(&s->tag, sequence << 2 | SLOT_READY, memory_order_release);
  wake_all(rp);
  return 1;
}

/* Under lock, by the last worker to reach the cut: nothing is being decoded
 * or applied, so the dead-letter file holds exactly the rejects of the
 * blocks before the cut. */
static void fill_cut_meta(replay *rp) {
  snapshot_meta *m = &rp->cut_meta;
  memset(m, 0, sizeof *m);
  m->fingerprint = rp->fingerprint;
  m->position = (int64_t)atomic_load(&rp->records_seen);
  uint64_t *x = m->extra, dead_bytes = 0;
  x[X_LAYOUT] = REPLAY_SNAPSHOT_LAYOUT;
  x[X_INPUTS] = rp->inputs_hash;
  x[X_SEQUENCE] = rp->next_sequence;
  x[X_FILE] = (uint64_t)rp->cut_file;
  x[X_OFFSET] = rp->cut_position.offset;
  x[X_BLOCK] = rp->cut_position.block_index;
  x[X_RECORD] = rp->cut_position.first_record;
  if (dead_letter_flush(rp->dead, &dead_bytes) < 0)
    fail_locked(rp, "%s", "cannot write the dead-letter output; stopping so that nothing is lost");
  x[X_DEAD_BYTES] = dead_bytes;
  uint64_t rejected[REASON_COUNT];
  dead_letter_counts(rp->dead, rejected);
  for (int r = 1; r < REASON_COUNT; r++)
    x[X_REJECTED + r - 1] = rejected[r];
  x[X_DEAD_PATH] = rp->dead_path_hash;
}

/* Worker w has applied every block before the cut: meet the others, capture
 * the shard, wait until all have, and let the walk go on. */
static void take_cut(replay *rp, unsigned w) {
  pthread_mutex_lock(&rp->lock);
  uint64_t epoch = rp->cut_epoch;
  if (++rp->cut_arrived == rp->workers) {
    rp->cut_quiet = clock_seconds();
    fill_cut_meta(rp);
    rp->cut_meta_ready = 1;
    pthread_cond_broadcast(&rp->changed);
  }
  while (!rp->cut_meta_ready && !atomic_load(&rp->failed))
    pthread_cond_wait(&rp->changed, &rp->lock);
  snapshot_meta meta = rp->cut_meta;
  pthread_mutex_unlock(&rp->lock);
  if (atomic_load(&rp->failed))
    return;

  snprintf(meta.shard_id, sizeof meta.shard_id, "file.%uof%u", w, rp->workers);
  snapshot_image *img = snapshot_capture(&rp->shards[w], &meta);

  pthread_mutex_lock(&rp->lock);
  rp->cut_images[w] = img;
  if (++rp->cut_captured == rp->workers) {
    double now = clock_seconds();
    double pause = now - rp->cut_started, capture = now - rp->cut_quiet;
    rp->cuts++;
    rp->pause_sum += pause;
    rp->capture_sum += capture;
    rp->last_pause = pause;
    if (pause > rp->pause_max)
      rp->pause_max = pause;
    if (capture > rp->capture_max)
      rp->capture_max = capture;
    rp->last_cut_sequence = rp->next_sequence;
    rp->last_cut_time = now;
    rp->next_cut_records = (uint64_t)rp->cut_meta.position + rp->cfg->snapshots.records;
    rp->cut_arrived = rp->cut_captured = 0;
    rp->cut_meta_ready = 0;
    rp->cut_epoch++;
    rp->writer_busy = 1;
    atomic_store(&rp->cut_at, NO_CUT);
    atomic_fetch_add(&rp->generation, 1);
    pthread_cond_broadcast(&rp->changed);
    pthread_cond_signal(&rp->watch);
  }
  while (rp->cut_epoch == epoch && !atomic_load(&rp->failed))
    pthread_cond_wait(&rp->changed, &rp->lock);
  pthread_mutex_unlock(&rp->lock);
}

typedef struct worker {
  replay *rp;
  unsigned index;
  pthread_t thread;
} worker;

static void work(replay *rp, unsigned w) {
  uint64_t next = rp->first_sequence; /* the next block sequence this worker applies */
  for (;;) {
    uint64_t generation = atomic_load(&rp->generation);
    if (atomic_load(&rp->failed) || next >= atomic_load(&rp->total_blocks))
      return;
    if (next == atomic_load(&rp->cut_at)) {
      take_cut(rp, w);
      continue;
    }
    block_slot *s = &rp->ring[next % rp->ring_size];
    if (atomic_load_explicit(&s->tag, memory_order_acquire) == (next << 2 | SLOT_READY)) {
      apply_block(rp, s, w);
      if (atomic_fetch_add(&s->done, 1) + 1 == rp->workers) {
        /* Blocks are freed in input order: all bytes before this one's end are done. */
        ocf_release(rp->inputs[s->file_index].reader, s->raw.file_offset + s->raw.size);
        atomic_store(&s->done, 0);
        atomic_store_explicit(&s->tag, next << 2 | SLOT_FREE, memory_order_release);
        wake_all(rp);
      }
      next++;
      continue;
    }
    if (claim_and_decode(rp))
      continue;
    pthread_mutex_lock(&rp->lock);
    while (atomic_load(&rp->generation) == generation)
      pthread_cond_wait(&rp->changed, &rp->lock);
    pthread_mutex_unlock(&rp->lock);
  }
}

static void *worker_main(void *arg) {
  worker *self = arg;
  replay *rp = self->rp;
  work(rp, self->index);
  pthread_mutex_lock(&rp->lock);
  rp->workers_done++;
  pthread_cond_signal(&rp->watch);
  pthread_mutex_unlock(&rp->lock);
  return NULL;
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
  return 0;
}

static void close_replay(replay *rp) {
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
    free(s->records);
    free(s->hashes);
    free(s->meta);
  }
  free(rp->ring);
  for (unsigned w = 0; rp->shards && w < rp->workers; w++)
    shard_free(&rp->shards[w]);
  free(rp->shards);
  for (unsigned w = 0; rp->cut_images && w < rp->workers; w++)
    if (rp->cut_images[w])
      snapshot_image_free(rp->cut_images[w]);
  free(rp->cut_images);
  pthread_mutex_destroy(&rp->lock);
  pthread_cond_destroy(&rp->changed);
  pthread_cond_destroy(&rp->watch);
}

/* ---------------------------------------------------------------- snapshot files */

/* What identifies the input list: its length and, per file in order, the
 * path as given (it is in every dead letter), the size and the sync marker. */
static uint64_t hash_inputs(const replay *rp) {
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

/* "file.<k>of<n>.<20 digits>.snap" -> k, n, position; 0, or -1. */
static int parse_snapshot_name(const char *name, unsigned *k, unsigned *n, uint64_t *position) {
  if (strncmp(name, "file.", 5) != 0)
    return -1;
  const char *p = name + 5;
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
  if (v[1] < 1 || v[1] > REPLAY_MAX_THREADS || v[0] >= v[1] || *p++ != '.')
    return -1;
  uint64_t pos = 0;
  for (int i = 0; i < 20; i++, p++) {
    if (*p < '0' || *p > '9')
      return -1;
    pos = pos * 10 + (uint64_t)(*p - '0');
  }
  if (strcmp(p, ".snap") != 0)
    return -1;
  *k = (unsigned)v[0];
  *n = (unsigned)v[1];
  *position = pos;
  return 0;
}

static void snapshot_path(char *buf, size_t len, const char *dir, unsigned k, unsigned n,
                          uint64_t position) {
  snprintf(buf, len, "%s/file.%uof%u.%020llu.snap", dir, k, n, (unsigned long long)position);
}

/* Delete the file-mode snapshots in dir: with keep_threads 0 all of them
 * and their temporary files (the run is complete), else those of another thread count older than
 * before (a complete cut of keep_threads shards at before supersedes them). */
static void remove_snapshots(const char *dir, unsigned keep_threads, uint64_t before) {
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    unsigned k, n;
    uint64_t position;
    char path[4400];
    /* with the snapshots, temporary files a killed writer left behind:
     * ".file.<k>of<n>.<position>.snap.tmp.<unique>" (snapshot.c) */
    if (!keep_threads && !strncmp(e->d_name, ".file.", 6) && strstr(e->d_name, ".snap.tmp.")) {
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      unlink(path);
      continue;
    }
    if (parse_snapshot_name(e->d_name, &k, &n, &position) < 0)
      continue;
    if (keep_threads && (n == keep_threads || position >= before))
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
}

/* The watcher: write the images of the last cut, the dead-letter file
 * synced first (the snapshots name its length). */
static void write_cut(replay *rp, int64_t position) {
  double t0 = clock_seconds();
  char err[400] = "";
  int ok = 1;
  size_t total = 0;
  if (dead_letter_sync(rp->dead) < 0) {
    snprintf(err, sizeof err, "cannot fsync the dead-letter file: %s", strerror(errno));
    ok = 0;
  }
  for (unsigned w = 0; w < rp->workers; w++) {
    snapshot_image *img = rp->cut_images[w];
    rp->cut_images[w] = NULL;
    if (ok && !img) {
      snprintf(err, sizeof err, "out of memory capturing shard %u", w);
      ok = 0;
    }
    size_t bytes = 0;
    if (ok && snapshot_image_write(img, rp->snapshot_dir, &bytes, err, sizeof err) < 0)
      ok = 0;
    total += bytes;
    if (img)
      snapshot_image_free(img);
  }
  if (ok)
    remove_snapshots(rp->snapshot_dir, rp->workers, (uint64_t)position);
  else
    fprintf(stderr,
            "regstream: warning: the snapshot at %lld records was not written (%s); the run goes "
            "on\n",
            (long long)position, err);
  pthread_mutex_lock(&rp->lock);
  rp->cuts_written += (uint64_t)ok;
  rp->snapshot_bytes += total;
  rp->write_seconds += clock_seconds() - t0;
  pthread_mutex_unlock(&rp->lock);
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
  for (size_t i = 0; i <= old->persons.mask; i++) {
    const person_slot *p = &old->persons.slots[i];
    if (!p->person_id)
      continue;
    uint64_t hash = personmap_hash(p->person_id);
    int created;
    person_slot *slot = personmap_upsert(&rp->shards[personmap_shard(hash, rp->workers)].persons,
                                         p->person_id, hash, &created);
    if (!slot)
      return -1;
    slot->state = p->state;
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
    snapshot_path(path, sizeof path, dir, k, c->threads, c->position);
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
    snprintf(expected_id, sizeof expected_id, "file.%uof%u", k, c->threads);
    if (snapshot_read(path, into, &m, why, sizeof why) < 0) {
      fprintf(stderr, "regstream: warning: snapshot %s is unusable (%s); trying an older one\n",
              path, why);
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
      fprintf(stderr,
              "regstream: warning: snapshot %s does not agree with its name or with shard 0 of "
              "its cut; trying an older one\n",
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
  DIR *d = opendir(dir);
  if (!d) {
    if (errno == ENOENT && mkdir(dir, 0777) == 0)
      return 0;
    snprintf(err, errlen, "snapshot directory %s: %s", dir, strerror(errno));
    return -1;
  }
  cut_candidate *cuts = NULL;
  size_t count = 0, cap = 0;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d)) != NULL) {
    unsigned k, n;
    uint64_t position;
    if (parse_snapshot_name(e->d_name, &k, &n, &position) < 0)
      continue;
    size_t i = 0;
    while (i < count && (cuts[i].threads != n || cuts[i].position != position))
      i++;
    if (i == count) {
      if (count == cap) {
        cap = cap ? 2 * cap : 16;
        cut_candidate *grown = realloc(cuts, cap * sizeof *cuts);
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
  closedir(d);
  if (rc == 0 && count)
    qsort(cuts, count, sizeof *cuts, newer_first);
  for (size_t i = 0; rc == 0 && i < count; i++) {
    const cut_candidate *c = &cuts[i];
    uint64_t all = c->threads == 64 ? UINT64_MAX : (1ull << c->threads) - 1;
    if (c->shards != all) {
      fprintf(stderr,
              "regstream: warning: the snapshot cut at %llu records in %s has %d of its %u "
              "shards (a stop cut it short); trying an older one\n",
              (unsigned long long)c->position, dir, __builtin_popcountll(c->shards), c->threads);
      continue;
    }
    rc = load_cut(rp, c, meta, err, errlen);
    *threads = c->threads;
  }
  if (rc == 0 && count)
    fprintf(stderr, "regstream: warning: no usable snapshot in %s; starting from the beginning\n",
            dir);
  /* An incomplete cut never completes (its writer is gone), and it would
   * count among its shards' newest few: drop it. */
  for (size_t i = 0; rc >= 0 && i < count; i++) {
    const cut_candidate *c = &cuts[i];
    uint64_t all = c->threads == 64 ? UINT64_MAX : (1ull << c->threads) - 1;
    for (unsigned k = 0; c->shards != all && k < c->threads; k++)
      if (c->shards >> k & 1) {
        char path[4400];
        snapshot_path(path, sizeof path, dir, k, c->threads, c->position);
        unlink(path);
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
  if (!rp->dead) {
    snprintf(err, errlen,
             "cannot resume from the snapshots in %s: %s; remove %s/file.*.snap to "
             "start over",
             rp->snapshot_dir, why, rp->snapshot_dir);
    return -1;
  }
  rp->walk_file = file;
  rp->next_sequence = rp->first_sequence = rp->last_cut_sequence = x[X_SEQUENCE];
  atomic_store(&rp->records_seen, (uint64_t)m->position);
  time_t written = (time_t)(m->written_unix_ms / 1000);
  struct tm tm;
  char when[64] = "?";
  if (localtime_r(&written, &tm))
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
  fprintf(stderr,
          "regstream: resuming from the snapshot at %lld records (file %d of %d, block %llu), "
          "written %s by %llu thread(s), loaded in %.2f s; %llu dead letters kept\n",
          (long long)m->position, file + 1, rp->input_count, (unsigned long long)at.block_index,
          when, (unsigned long long)threads, rp->load_seconds, (unsigned long long)dead);
  return 0;
}

/* ---------------------------------------------------------------- running */

static void print_progress(replay *rp, double started, uint64_t resumed_at) {
  uint64_t seen = atomic_load(&rp->records_seen);
  pthread_mutex_lock(&rp->lock);
  int file = rp->walk_file < rp->input_count ? rp->walk_file + 1 : rp->input_count;
  uint64_t cuts = rp->cuts;
  double pause = rp->last_pause;
  pthread_mutex_unlock(&rp->lock);
  double now = clock_seconds();
  char snaps[128] = "";
  if (rp->snapshot_dir && cuts)
    snprintf(snaps, sizeof snaps, "; %llu snapshot(s), last pause %.1f ms",
             (unsigned long long)cuts, pause * 1e3);
  fprintf(stderr, "regstream: %.1f M records read (file %d of %d), %.2f M records/s%s\n",
          (double)seen / 1e6, file, rp->input_count,
          (double)(seen - resumed_at) / 1e6 / (now - started), snaps);
}

/* Waits for the workers, printing a progress line every few seconds; with
 * snapshots, also asks for cuts (seconds interval) and writes them. */
static void watch_workers(replay *rp, worker *workers, unsigned running, double started) {
  double last_print = started;
  uint64_t resumed_at = atomic_load(&rp->records_seen);
  pthread_mutex_lock(&rp->lock);
  while (rp->workers_done < running) {
    if (rp->writer_busy) {
      int64_t position = rp->cut_meta.position; /* no other cut starts while writer_busy */
      pthread_mutex_unlock(&rp->lock);
      write_cut(rp, position);
      pthread_mutex_lock(&rp->lock);
      rp->writer_busy = 0;
      continue;
    }
    double now = clock_seconds();
    if (rp->snapshot_dir && rp->cfg->snapshots.seconds > 0 &&
        now - rp->last_cut_time >= rp->cfg->snapshots.seconds)
      atomic_store(&rp->cut_wanted, 1);
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
  /* A cut released as the run failed: still worth keeping to resume from. */
  if (rp->writer_busy && atomic_load(&rp->failed))
    write_cut(rp, rp->cut_meta.position);
}

int replay_run(const replay_options *cfg, replay_result *result, char *err, size_t errlen) {
  replay rp = {0};
  rp.cfg = cfg;
  rp.workers = (unsigned)cfg->threads;
  rp.ring_size = 4 * rp.workers + 4;
  atomic_store(&rp.total_blocks, UINT64_MAX);
  atomic_store(&rp.cut_at, NO_CUT);
  pthread_mutex_init(&rp.lock, NULL);
  pthread_cond_init(&rp.changed, NULL);
  pthread_cond_init(&rp.watch, NULL);
  memset(result, 0, sizeof *result);
  double started = clock_seconds();

  int rc = open_inputs(&rp, err, errlen);
  if (rc == 0) {
    rp.ring = calloc(rp.ring_size, sizeof *rp.ring);
    rp.shards = calloc(rp.workers, sizeof *rp.shards);
    rp.cut_images = calloc(rp.workers, sizeof *rp.cut_images);
    if (!rp.ring || !rp.shards || !rp.cut_images) {
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
    rp.inputs_hash = hash_inputs(&rp);
    rp.dead_path_hash = fnv1a64(FNV1A64_INIT, cfg->dead_letter_path, strlen(cfg->dead_letter_path));
    rp.last_cut_time = started;
    snapshot_meta meta;
    double load_started = clock_seconds();
    unsigned threads = 0;
    int found = find_cut(&rp, &meta, &threads, err, errlen);
    rp.load_seconds = clock_seconds() - load_started;
    if (found < 0 || (found == 1 && resume_from(&rp, &meta, threads, err, errlen) < 0))
      rc = -1;
    rp.next_cut_records = atomic_load(&rp.records_seen) + cfg->snapshots.records;
  }
  if (rc == 0 && !rp.dead) {
    rp.dead = dead_letter_open_file(cfg->dead_letter_path, err, errlen);
    if (!rp.dead)
      rc = -1;
  }
  if (rc < 0) {
    close_replay(&rp);
    return -1;
  }

  worker *workers = calloc(rp.workers, sizeof *workers);
  unsigned running = 0;
  if (!workers)
    fail(&rp, "%s", "out of memory");
  for (; workers && running < rp.workers; running++) {
    workers[running] = (worker){&rp, running, 0};
    if (pthread_create(&workers[running].thread, NULL, worker_main, &workers[running]) != 0) {
      fail(&rp, "%s", "cannot start a worker thread");
      break;
    }
  }
  watch_workers(&rp, workers, running, started);
  free(workers);

  char close_err[300];
  dead_letter_counts(rp.dead, result->rejected);
  if (dead_letter_close(rp.dead, close_err, sizeof close_err) < 0)
    fail(&rp, "%s", close_err);
  if (atomic_load(&rp.failed)) {
    snprintf(err, errlen, "%s", rp.failure);
    close_replay(&rp);
    return -1;
  }

  /* Totals are the sum of the shards' counters. */
  rollup totals;
  rollup_init(&totals);
  for (unsigned w = 0; w < rp.workers; w++) {
    rollup_merge(&totals, &rp.shards[w].counts);
    result->corrected += rp.shards[w].corrected;
    result->persons += rp.shards[w].persons.count;
    result->state_bytes += personmap_bytes(&rp.shards[w].persons);
  }
  rc = csv_write_rollup(cfg->csv_path, &totals, &result->rows, err, errlen);
  rollup_free(&totals);
  result->records = atomic_load(&rp.records_seen);
  result->seconds = clock_seconds() - started;
  if (rc == 0 && rp.snapshot_dir) {
    /* The CSV and the dead letters are complete and synced: nothing to resume. */
    remove_snapshots(rp.snapshot_dir, 0, 0);
    if (!cfg->quiet && rp.cuts)
      fprintf(stderr,
              "regstream: %llu snapshot cut(s) of %u shard(s): pause mean %.1f ms, max %.1f ms "
              "(capture max %.1f ms); %llu written, %.1f MB in %.2f s; removed at the end\n",
              (unsigned long long)rp.cuts, rp.workers, rp.pause_sum / (double)rp.cuts * 1e3,
              rp.pause_max * 1e3, rp.capture_max * 1e3, (unsigned long long)rp.cuts_written,
              (double)rp.snapshot_bytes / 1e6, rp.write_seconds);
  }
  close_replay(&rp);
  return rc;
}
