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
 * decoding, late ones while applying. */
#include "replay.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "avro/decode.h"
#include "avro/ocf.h"
#include "shard.h"
#include "sink/csv.h"
#include "sink/dead_letter.h"

enum { SLOT_FREE = 0, SLOT_DECODING = 1, SLOT_READY = 2 };
enum { APPLY_CHUNK = 256, PREFETCH_DISTANCE = 8 };

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
  const config *cfg;
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
} replay;

static void fail(replay *rp, const char *fmt, const char *what) {
  pthread_mutex_lock(&rp->lock);
  if (!atomic_load(&rp->failed)) {
    snprintf(rp->failure, sizeof rp->failure, fmt, what);
    atomic_store(&rp->failed, 1);
  }
  atomic_fetch_add(&rp->generation, 1);
  pthread_cond_broadcast(&rp->changed);
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
  dead_letter_source src = {ocf_path(in->reader),
                            s->file_index,
                            record,
                            count,
                            count == 1 ? -1 : (int64_t)s->raw.index,
                            count == 1 ? -1 : (int64_t)s->raw.file_offset};
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

/* Claim the next block of the input and decode it. 1 when one was decoded. */
static int claim_and_decode(replay *rp) {
  pthread_mutex_lock(&rp->lock);
  block_slot *s = &rp->ring[rp->next_sequence % rp->ring_size];
  if (rp->walk_done || (atomic_load(&s->tag) & 3) != SLOT_FREE) {
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

typedef struct worker {
  replay *rp;
  unsigned index;
  pthread_t thread;
} worker;

static void *worker_main(void *arg) {
  worker *self = arg;
  replay *rp = self->rp;
  uint64_t next = 0; /* the next block sequence this worker applies */
  for (;;) {
    uint64_t generation = atomic_load(&rp->generation);
    if (atomic_load(&rp->failed) || next >= atomic_load(&rp->total_blocks))
      return NULL;
    block_slot *s = &rp->ring[next % rp->ring_size];
    if (atomic_load_explicit(&s->tag, memory_order_acquire) == (next << 2 | SLOT_READY)) {
      apply_block(rp, s, self->index);
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

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_inputs(replay *rp, char *err, size_t errlen) {
  const config *cfg = rp->cfg;
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
  pthread_mutex_destroy(&rp->lock);
  pthread_cond_destroy(&rp->changed);
}

/* Waits for the workers, printing a progress line every few seconds. */
static void watch_progress(replay *rp, worker *workers, unsigned running, double started) {
  double last_print = started;
  for (unsigned w = 0; w < running; w++) {
    for (;;) {
      struct timespec deadline;
      clock_gettime(CLOCK_REALTIME, &deadline);
      deadline.tv_nsec += 200 * 1000 * 1000;
      if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
      }
      if (pthread_timedjoin_np(workers[w].thread, NULL, &deadline) == 0)
        break;
      double now = now_seconds();
      if (!rp->cfg->quiet && now - last_print >= 2.0) {
        uint64_t seen = atomic_load(&rp->records_seen);
        pthread_mutex_lock(&rp->lock);
        int file = rp->walk_file < rp->input_count ? rp->walk_file + 1 : rp->input_count;
        pthread_mutex_unlock(&rp->lock);
        fprintf(stderr, "regstream: %.1f M records read (file %d of %d), %.2f M records/s\n",
                (double)seen / 1e6, file, rp->input_count, (double)seen / 1e6 / (now - started));
        last_print = now;
      }
    }
  }
}

int replay_run(const config *cfg, replay_result *result, char *err, size_t errlen) {
  replay rp = {0};
  rp.cfg = cfg;
  rp.workers = (unsigned)cfg->threads;
  rp.ring_size = 4 * rp.workers + 4;
  atomic_store(&rp.total_blocks, UINT64_MAX);
  pthread_mutex_init(&rp.lock, NULL);
  pthread_cond_init(&rp.changed, NULL);
  memset(result, 0, sizeof *result);
  double started = now_seconds();

  int rc = open_inputs(&rp, err, errlen);
  if (rc == 0) {
    rp.ring = calloc(rp.ring_size, sizeof *rp.ring);
    rp.shards = calloc(rp.workers, sizeof *rp.shards);
    if (!rp.ring || !rp.shards) {
      snprintf(err, errlen, "out of memory");
      rc = -1;
    }
  }
  for (unsigned w = 0; rc == 0 && w < rp.workers; w++)
    if (shard_init(&rp.shards[w], &cfg->rules, 0) < 0) {
      snprintf(err, errlen, "out of memory");
      rc = -1;
    }
  if (rc == 0) {
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
  watch_progress(&rp, workers, running, started);
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
  result->seconds = now_seconds() - started;
  close_replay(&rp);
  return rc;
}
