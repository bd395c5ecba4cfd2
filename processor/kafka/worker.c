/* worker.c — the Kafka mode's worker threads. A worker consumes its queue
 * (the queues of the input partitions it owns, partition % threads, are
 * forwarded to it) in batches: it decodes and validates the whole batch
 * first, then applies it to the partitions' shards with each person's
 * slot prefetched PREFETCH_DISTANCE messages ahead, dead-letters rejects,
 * takes interval snapshots and publishes its partials every --flush-ms.
 * No lock per message: the shard table's read lock is taken once per batch.
 * Rebalances (which shards exist) are kafka/rebalance.c's; what partials
 * look like is kafka/partials.c's.
 *
 * Thread: each worker_main runs on its own thread (named rs-workerN); it
 * touches only the shards of its own partitions. */
#include <inttypes.h>
#include <stdio.h>

#include "kafka/mode.h"
#include "util/clock.h"

/* Decode and validate a data message of a batch: pure, no shard touched. */
static void decode_message(const kafka_mode *km, const rd_kafka_message_t *m, decoded *d) {
  d->why = framing_decode(&km->frame, m->payload, m->len, &d->rec, NULL);
  if (d->why == REASON_OK)
    d->why = validate_record(&d->rec);
  if (d->why == REASON_OK)
    d->hash = personmap_hash(d->rec.person_id);
}

/* Bring the person state a decoded message will touch into the cache.
 * Inlined by force: as a function of its own GCC deems it free of effects
 * (a prefetch only) and drops the calls. */
static inline __attribute__((always_inline)) void
prefetch_message(const kafka_mode *km, const rd_kafka_message_t *m, const decoded *d) {
  if (m->err || d->why != REASON_OK || m->partition < 0 || m->partition >= MAX_PARTITIONS)
    return;
  const part_shard *ps = km->table.shards[m->partition];
  if (ps)
    personmap_prefetch(&ps->state.persons, d->hash);
}

static void reject(kafka_mode *km, const rd_kafka_message_t *m, reason why) {
  dead_letter_source src = {.file = NULL,
                            .record = -1,
                            .record_count = 1,
                            .block = -1,
                            .offset = m->offset,
                            .topic = rd_kafka_topic_name(m->rkt),
                            .partition = m->partition,
                            .key = m->key,
                            .key_len = m->key_len};
  if (dead_letter_write(km->dead, why, &src, m->payload, m->len, NULL) < 0)
    kafka_fail(km, "cannot produce to the dead-letter topic; stopping so that nothing is lost");
}

/* Apply message m (of a partition below MAX_PARTITIONS), decoded as d. 1
 * when it was taken (applied or dead-lettered), 0 when not ours to apply. */
static int process_message(kafka_mode *km, const rd_kafka_message_t *m, const decoded *d) {
  part_shard *ps = km->table.shards[m->partition];
  if (!ps)
    return 0; /* a message of a partition revoked meanwhile */
  if (m->offset < ps->next_offset)
    return 0; /* fetched before a revoke and applied already (or in the snapshot) */
  reason why = d->why;
  if (why == REASON_OK) {
    int r = shard_apply(&ps->state, &d->rec, d->hash);
    if (r < 0)
      kafka_fail(km, "out of memory for person states");
    else if (r == RULES_LATE)
      why = REASON_LATE;
  }
  if (why != REASON_OK)
    reject(km, m, why);
  /* A message that failed (memory, a dead letter refused) is not done: the
   * run stops, and no snapshot may say it was. */
  if (!kafka_failed(km)) {
    ps->next_offset = m->offset + 1;
    ps->since_snapshot++; /* rejects too: their dead letters need not be sent again */
  }
  return 1;
}

/* A message or event of the worker's queue: partition EOF, an error, or a
 * message to apply. Returns 1 when m was dropped because its partition was
 * revoked while the batch was being taken (the caller re-reads the
 * partition if it is ours again), else 0. Counts a message applied or
 * dead-lettered in *applied. */
static int worker_take(kafka_mode *km, rd_kafka_message_t *m, const decoded *d,
                       uint64_t taken_after, uint64_t *applied) {
  shard_table *tb = &km->table;
  int32_t p = m->partition;
  int known = p >= 0 && p < MAX_PARTITIONS;
  if (known && tb->revoked_at[p] > taken_after)
    return 1; /* perhaps fetched before the revoke: not ours to apply */
  if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    if (known && tb->shards[p])
      tb->shards[p]->eof_offset = m->offset;
    if (known)
      atomic_store(&tb->at_eof[p], 1);
  } else if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
    char why[600];
    snprintf(why, sizeof why,
             "partition %" PRId32 ": %s. The offset to resume at is not in the log (the topic "
             "was recreated, or retention removed records a snapshot had not seen): remove that "
             "partition's snapshots from --snapshot-dir to rebuild it from the log",
             p, rd_kafka_message_errstr(m));
    kafka_fail(km, why);
  } else if (m->err) {
    kafka_trouble(km, rd_kafka_message_errstr(m));
  } else if (known) {
    if (atomic_load_explicit(&tb->at_eof[p], memory_order_relaxed))
      atomic_store(&tb->at_eof[p], 0);
    *applied += (uint64_t)process_message(km, m, d);
  }
  return 0;
}

/* Messages of partition p were dropped by worker_take; some may have been
 * fetched after p came back to us. Fetch p again from where its shard is:
 * the seek also makes librdkafka discard what it still holds of p. */
static void worker_refetch(kafka_mode *km, int32_t p) {
  part_shard *ps = km->table.shards[p];
  if (!ps)
    return; /* not ours: nothing to read again */
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, km->opt->topic, p)->offset =
      ps->next_offset >= 0 ? ps->next_offset : RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_error_t *e = rd_kafka_seek_partitions(km->clients.consumer, list, 5000);
  if (e || list->elems[0].err) {
    char why[400];
    snprintf(why, sizeof why, "partition %" PRId32 ": cannot read it again after a rebalance: %s",
             p, e ? rd_kafka_error_string(e) : rd_kafka_err2str(list->elems[0].err));
    kafka_fail(km, why);
  }
  if (e)
    rd_kafka_error_destroy(e);
  rd_kafka_topic_partition_list_destroy(list);
}

void *worker_main(void *arg) {
  worker *w = arg;
  kafka_mode *km = w->km;
  shard_table *tb = &km->table;
  const kafka_run_options *o = km->opt;
  rd_kafka_message_t *taken[TAKE_BATCH];
  char name[16]; /* as top and perf show the thread */
  snprintf(name, sizeof name, "rs-worker%u", w->index);
  pthread_setname_np(pthread_self(), name);
  w->next_flush = clock_seconds() + o->flush_ms / 1000.0;
  for (;;) {
    /* Messages of a partition come in offset order, its EOF after them. */
    uint64_t revokes = atomic_load(&tb->revokes);
    ssize_t n = rd_kafka_consume_batch_queue(w->queue, 50, taken, TAKE_BATCH);
    int stopping = atomic_load(&w->stop);
    for (ssize_t i = 0; i < n; i++)
      if (!taken[i]->err)
        decode_message(km, taken[i], &w->batch[i]);
    pthread_rwlock_rdlock(&tb->lock);
    int32_t dropped = -1; /* a partition with dropped messages (rare: -2 several) */
    int saw_eof = 0;
    uint64_t applied = 0; /* added to the shared count once per batch */
    for (ssize_t i = 0; i < n && i < PREFETCH_DISTANCE; i++)
      prefetch_message(km, taken[i], &w->batch[i]);
    for (ssize_t i = 0; i < n; i++) {
      if (i + PREFETCH_DISTANCE < n)
        prefetch_message(km, taken[i + PREFETCH_DISTANCE], &w->batch[i + PREFETCH_DISTANCE]);
      saw_eof |= taken[i]->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
      if (worker_take(km, taken[i], &w->batch[i], revokes, &applied))
        dropped = dropped == -1 || dropped == taken[i]->partition ? taken[i]->partition : -2;
      rd_kafka_message_destroy(taken[i]);
    }
    if (applied)
      atomic_fetch_add(&km->stats.messages, applied);
    if (dropped >= 0) {
      worker_refetch(km, dropped);
    } else if (dropped == -2) {
      for (int p = (int)w->index; p < MAX_PARTITIONS; p += (int)km->workers_n)
        worker_refetch(km, p);
    }
    if (n > 0 && atomic_load_explicit(&km->stats.first_message, memory_order_relaxed) == 0) {
      double zero = 0;
      atomic_compare_exchange_strong(&km->stats.first_message, &zero, clock_seconds());
    }
    if (km->snapshots) { /* also when idle: a quiet shard's last changes get saved too */
      double now = clock_seconds();
      for (int p = (int)w->index; p < MAX_PARTITIONS; p += (int)km->workers_n)
        if (tb->shards[p])
          shard_snapshot_if_due(km, tb->shards[p], now);
    }
    /* Reprocessing: a partition at its end publishes (and marks) at once,
     * so that the merge stage can settle without waiting a flush interval. */
    if ((stopping || clock_seconds() >= w->next_flush || (saw_eof && o->exit_at_eof)) &&
        !kafka_failed(km))
      partials_publish_worker(w);
    pthread_rwlock_unlock(&tb->lock);
    if (stopping)
      return NULL;
  }
}
