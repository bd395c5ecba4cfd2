/* pipeline.c — the file-mode block pipeline: container blocks -> decode ->
 * validate -> shard -> rules -> rollup, on N worker threads (the idea is
 * written atop file/replay.c). Here: the ring of block slots, claiming the
 * next block of the walk, decoding it, applying it to a worker's shard, and
 * the worker loop. Cuts (where the workers meet for a snapshot) are
 * file/cut.c's; the rules are core/'s.
 *
 * Threads: every function here runs on a worker, except replay_fail and
 * replay_wake_all (any thread). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file/mode.h"
#include "util/clock.h"
#include "util/stop.h"

void replay_fail_locked(replay *rp, const char *why) {
  latch_set(&rp->failure, why);
  atomic_fetch_add(&rp->generation, 1);
  pthread_cond_broadcast(&rp->changed);
}

void replay_fail(replay *rp, const char *why) {
  pthread_mutex_lock(&rp->lock);
  replay_fail_locked(rp, why);
  pthread_mutex_unlock(&rp->lock);
}

void replay_wake_all(replay *rp) {
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
    cut_fail_dead_letter(rp, 0);
}

/* Room for one more record in batch b (capacity doubled); -1 when memory
 * is short. Each batch grows to its own shard's share of the largest
 * blocks, not to whole blocks. */
static int batch_grow(shard_batch *b) {
  if (b->capacity > UINT32_MAX / 2)
    return -1;
  uint32_t cap = b->capacity ? 2 * b->capacity : 1024;
  pm_record *records = realloc(b->records, cap * sizeof *records);
  if (records)
    b->records = records;
  uint64_t *hashes = realloc(b->hashes, cap * sizeof *hashes);
  if (hashes)
    b->hashes = hashes;
  record_meta *meta = realloc(b->meta, cap * sizeof *meta);
  if (meta)
    b->meta = meta;
  if (!records || !hashes || !meta)
    return -1;
  b->capacity = cap;
  return 0;
}

/* Decompress and decode the block in s into its records; rejects go
 * straight to the sink. */
static void decode_records(replay *rp, block_slot *s) {
  const input *in = &rp->inputs[s->file_index];
  const ocf_block *raw = &s->raw;
  for (unsigned w = 0; w < rp->workers; w++)
    s->batches[w].count = 0;
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
  const uint8_t *pos = bytes, *end = bytes + len;
  const unsigned workers = rp->workers; /* not reloaded after each store */
  uint32_t counts[REPLAY_MAX_THREADS] = {0};
  int64_t i;
  for (i = 0; i < raw->count; i++) {
    const uint8_t *start = pos;
    /* The block's bytes, well ahead: the hardware's streams stop at each
     * 4 KiB page of the mapping, and the decoder's loads were its hottest
     * instructions with two workers (0.91-0.96x the wall time, farm-bench;
     * 256 and 2048 bytes ahead gained less). Past the end is harmless. */
    __builtin_prefetch(pos + INPUT_AHEAD, 0, 3);
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
    uint64_t hash = personmap_hash(rec.person_id);
    unsigned w = workers > 1 ? personmap_shard(hash, workers) : 0;
    shard_batch *b = &s->batches[w];
    uint32_t n = counts[w]++;
    if (n == b->capacity && batch_grow(b) < 0) { /* the batches stay empty */
      replay_fail(rp, "out of memory while decoding a block");
      return;
    }
    /* With several workers the batch's arrays were last read by another
     * one (its records of an earlier block): ask for their lines for
     * writing ahead, or each store waits for a line to come back from
     * another core. A prefetch past the end is harmless. */
    __builtin_prefetch(&b->records[n + STORE_AHEAD], 1, 3);
    __builtin_prefetch(&b->hashes[n + STORE_AHEAD], 1, 3);
    __builtin_prefetch(&b->meta[n + STORE_AHEAD], 1, 3);
    b->records[n] = rec;
    b->hashes[n] = hash;
    b->meta[n] = (record_meta){(uint32_t)i, (uint32_t)(start - bytes), (uint32_t)(pos - bytes)};
  }
  for (unsigned w = 0; w < workers; w++)
    s->batches[w].count = counts[w];
  if (pos < end)
    reject(rp, s, REASON_UNDECODABLE, (int64_t)raw->first_record + i, 0, pos, (size_t)(end - pos),
           "bytes left over after the block's last record");
  atomic_fetch_add(&rp->records_seen, (uint64_t)raw->count);
}

/* Apply shard w's records of block s, in order, prefetching ahead;
 * returns how many records of the block are shard w's. */
static uint32_t apply_block(replay *rp, block_slot *s, unsigned w) {
  shard *sh = &rp->shards[w];
  const shard_batch *b = &s->batches[w];
  uint32_t count = b->count;
  uint64_t applied = 0;
  for (uint32_t j = 0; j < count && j < PERSONMAP_PREFETCH_AHEAD; j++)
    personmap_prefetch(&sh->persons, b->records[j].person_id, b->hashes[j]);
  for (uint32_t j = 0; j < count; j++) {
    if (j + PERSONMAP_PREFETCH_AHEAD < count)
      personmap_prefetch(&sh->persons, b->records[j + PERSONMAP_PREFETCH_AHEAD].person_id,
                         b->hashes[j + PERSONMAP_PREFETCH_AHEAD]);
    int r = shard_apply(sh, &b->records[j], b->hashes[j]);
    applied += r >= 0 && r != RULES_LATE;
    if (r == RULES_LATE) {
      const record_meta *m = &b->meta[j];
      reject(rp, s, REASON_LATE, (int64_t)s->raw.first_record + m->index, 1, s->bytes + m->start,
             m->end - m->start, NULL);
    } else if (r < 0) {
      replay_fail(rp, "out of memory for person states");
      return count;
    }
  }
  _Atomic uint64_t *tally = &rp->tallies[w].applied; /* once per block, its only writer */
  atomic_store_explicit(tally, atomic_load_explicit(tally, memory_order_relaxed) + applied,
                        memory_order_relaxed);
  return count;
}

/* ---- month blocks on their way to shard 0 (replay.retired, mode.h) ---- */

void replay_take_retired(replay *rp) {
  pthread_mutex_lock(&rp->retired_lock);
  rollup_absorb(&rp->shards[0].counts, &rp->retired);
  atomic_store_explicit(&rp->retired_waiting, 0, memory_order_relaxed);
  pthread_mutex_unlock(&rp->retired_lock);
}

/* After each block worker w applied (`own` records of it): worker 0 takes
 * the blocks waiting; another, every rp->retire_records of its records,
 * hands on its idle ones. *since: the worker's records since its last look. */
static void pass_months(replay *rp, unsigned w, uint32_t own, uint64_t *since) {
  if (w == 0) {
    if (atomic_load_explicit(&rp->retired_waiting, memory_order_relaxed))
      replay_take_retired(rp);
    return;
  }
  if ((*since += own) < rp->retire_records)
    return;
  *since = 0;
  pthread_mutex_lock(&rp->retired_lock);
  if (rollup_take_idle(&rp->shards[w].counts, &rp->retired) > 0)
    atomic_store_explicit(&rp->retired_waiting, 1, memory_order_relaxed);
  pthread_mutex_unlock(&rp->retired_lock);
}

/* Claim the next block of the input and decode it. 1 when one was decoded. */
/* Under lock: no block after next_sequence is claimed; the workers apply
 * the ones claimed and end. */
static void end_walk(replay *rp) {
  rp->walk_done = 1;
  atomic_store(&rp->total_blocks, rp->next_sequence);
  atomic_fetch_add(&rp->generation, 1);
  pthread_cond_broadcast(&rp->changed);
}

static int claim_and_decode(replay *rp) {
  pthread_mutex_lock(&rp->lock);
  block_slot *s = &rp->ring[rp->next_sequence % rp->ring_size];
  if (rp->walk_done || (atomic_load(&s->tag) & 3) != SLOT_FREE ||
      atomic_load(&rp->cut.at) != NO_CUT) {
    pthread_mutex_unlock(&rp->lock);
    return 0;
  }
  if (rp->snapshot_dir && cut_due(rp)) {
    cut_start(rp);
    pthread_mutex_unlock(&rp->lock);
    return 0;
  }
  /* SIGINT/SIGTERM: the walk ends here, at a boundary whose cut is taken
   * (with snapshots: cut_due asked for it) or at once (without). */
  int stop = stop_requested();
  if (stop && (!rp->snapshot_dir || rp->next_sequence == rp->cut.last_sequence)) {
    rp->stopped = stop;
    end_walk(rp);
    pthread_mutex_unlock(&rp->lock);
    return 0;
  }
  ocf_block block;
  int got = OCF_END;
  while (rp->walk_file < rp->input_count &&
         (got = ocf_poll_block(rp->inputs[rp->walk_file].reader, &block)) == OCF_END)
    rp->walk_file++;
  if (got == OCF_NOT_YET) { /* read past the page cache: its landed callback wakes us */
    pthread_mutex_unlock(&rp->lock);
    return 0;
  }
  if (got == OCF_FAILED) {
    char why[LATCH_REASON_MAX];
    int e = ocf_failure(rp->inputs[rp->walk_file].reader, why, sizeof why);
    cut_append_advice(rp, e, why, sizeof why);
    replay_fail_locked(rp, why);
    pthread_mutex_unlock(&rp->lock);
    return 0;
  }
  if (rp->walk_file == rp->input_count) {
    end_walk(rp);
    pthread_mutex_unlock(&rp->lock);
    return 0;
  }
  uint64_t sequence = rp->next_sequence++;
  s->raw = block;
  s->file_index = rp->walk_file;
  atomic_store(&s->tag, sequence << 2 | SLOT_DECODING);
  pthread_mutex_unlock(&rp->lock);

  ocf_readahead(rp->inputs[s->file_index].reader, s->raw.file_offset);
  decode_records(rp, s);
  atomic_store_explicit(&s->tag, sequence << 2 | SLOT_READY, memory_order_release);
  replay_wake_all(rp);
  return 1;
}

static void work(replay *rp, unsigned w) {
  uint64_t next = rp->first_sequence; /* the next block sequence this worker applies */
  uint64_t since_look = 0;            /* its records since it last looked for idle months */
  for (;;) {
    uint64_t generation = atomic_load(&rp->generation);
    if (replay_failed(rp) || next >= atomic_load(&rp->total_blocks))
      return;
    if (next == atomic_load(&rp->cut.at)) {
      cut_take(rp, w);
      continue;
    }
    block_slot *s = &rp->ring[next % rp->ring_size];
    if (atomic_load_explicit(&s->tag, memory_order_acquire) == (next << 2 | SLOT_READY)) {
      uint32_t own = apply_block(rp, s, w);
      if (rp->workers > 1)
        pass_months(rp, w, own, &since_look);
      if (atomic_fetch_add(&s->done, 1) + 1 == rp->workers) {
        /* Blocks are freed in input order: all bytes before this one's end are done. */
        ocf_release(rp->inputs[s->file_index].reader, s->raw.file_offset + s->raw.size);
        atomic_store(&s->done, 0);
        atomic_store_explicit(&s->tag, next << 2 | SLOT_FREE, memory_order_release);
        replay_wake_all(rp);
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

void *replay_worker_main(void *arg) {
  worker *self = arg;
  replay *rp = self->rp;
  work(rp, self->index);
  pthread_mutex_lock(&rp->lock);
  rp->workers_done++;
  pthread_cond_signal(&rp->watch);
  pthread_mutex_unlock(&rp->lock);
  return NULL;
}
