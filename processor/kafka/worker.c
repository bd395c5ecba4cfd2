/* worker.c — the Kafka mode's worker threads. A worker consumes its queue
 * (the queues of the input partitions it owns, partition % threads, are
 * forwarded to it) in batches: it decodes and validates the whole batch
 * first, then applies it to the partitions' shards with each person's
 * slot prefetched PERSONMAP_PREFETCH_AHEAD messages ahead, dead-letters rejects,
 * takes interval snapshots and publishes its partials every --flush-ms.
 * No lock per message: the shard table's read lock is taken once per batch.
 * Rebalances (which shards exist) are kafka/rebalance.c's; what partials
 * look like is kafka/partials.c's.
 *
 * A message whose writer schema is unavailable (framing_decode answers
 * FRAMING_RETRY: the registry is down, times out, refuses the credentials)
 * is not bad data: it is neither applied nor dead-lettered, and its
 * partition is held: paused on the consumer, every later message and
 * end-of-partition event of it dropped (order per partition is everything),
 * its next_offset left at the held message, so that no snapshot or progress
 * mark claims it. The worker looks the id up again with backoff
 * (RETRY_FIRST_SECONDS doubling to RETRY_MAX_SECONDS), between batches and
 * without the table lock; once the registry answers (found, or definitely
 * unknown: then it is dead-lettered as bad data) the partition is sought
 * back to next_offset and resumed. Other partitions keep flowing. run.c says
 * what is held every 10 s and ends a --exit-at-eof run after
 * --registry-timeout.
 *
 * Thread: each worker_main runs on its own thread (named rs-workerN); it
 * touches only the shards of its own partitions. It pauses, seeks and
 * resumes only its own partitions, under the table's read lock, so never
 * while a rebalance (poll thread, write lock) changes the assignment. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kafka/gap.h"
#include "kafka/mode.h"
#include "util/clock.h"
#include "util/log.h"

/* The why of a message of a held partition that was not decoded. */
#define NOT_DECODED ((reason)(REASON_COUNT + 1))

enum { RETRY_FIRST_MS = 500, RETRY_MAX_MS = RETRY_REPORT_MAX_SECONDS * 1000 };

/* Decode and validate a data message of a batch: pure, no shard touched. */
static void decode_message(const kafka_mode *km, const rd_kafka_message_t *m, decoded *d) {
  framing_result info;
  d->why = framing_decode(&km->frame, m->payload, m->len, &d->rec, &info);
  if (d->why == FRAMING_RETRY) {
    d->schema_id = info.schema_id;
    return;
  }
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
    personmap_prefetch(&ps->state.persons, d->rec.person_id, d->hash);
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

/* Pause (or resume) input partition p on the consumer. A failure is
 * harmless: a held partition's messages are dropped anyway. */
static void pause_partition(kafka_mode *km, int32_t p, int pause) {
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, km->opt->topic, p);
  if (pause)
    rd_kafka_pause_partitions(km->clients.consumer, list);
  else
    rd_kafka_resume_partitions(km->clients.consumer, list);
  rd_kafka_topic_partition_list_destroy(list);
}

static void hint_set(worker *w, int32_t p, int held) {
  if (w->held[p] == held)
    return;
  w->held[p] = (uint8_t)held;
  w->held_n += held ? 1 : -1;
}

/* Message m's schema is unavailable: hold its partition at m. */
static void hold(kafka_mode *km, worker *w, part_shard *ps, const rd_kafka_message_t *m,
                 uint32_t schema) {
  double now = clock_seconds();
  ps->held = 1;
  ps->held_schema = schema;
  ps->held_since = now;
  ps->backoff = RETRY_FIRST_MS / 1000.0;
  ps->retry_at = now + ps->backoff;
  /* Everything before m was applied (messages come in offset order). */
  if (ps->next_offset < m->offset)
    ps->next_offset = m->offset;
  hint_set(w, ps->partition, 1);
  pause_partition(km, ps->partition, 1);
  registry_wait_hold(km, ps->partition, m->offset, schema, w->last_error);
}

/* The first message of a partition since it was assigned: said once. */
static void first_applied(kafka_mode *km, part_shard *ps, int64_t offset) {
  if (!km->opt->quiet)
    log_msg(LOG_INFO, "kafka",
            "partition %" PRId32 ": first message applied (offset %" PRId64
            "), %.0f ms after its assignment",
            ps->partition, offset, (clock_seconds() - ps->assigned_at) * 1000);
  ps->assigned_at = 0;
}

/* The offset of the next message of ps to apply: the one after the last
 * applied or, before any, where it starts (its snapshot's offset, set as
 * next_offset when it is opened, or else 0: part_shard_open checked that its
 * log starts there). */
static int64_t expected_offset(const part_shard *ps) {
  return ps->next_offset >= 0 ? ps->next_offset : 0;
}

/* Apply message m (of a partition below MAX_PARTITIONS), decoded as d. 2
 * when it was applied, 1 dead-lettered, 0 not ours to apply, -1 when
 * messages before it are missing (read the partition again). */
static int process_message(kafka_mode *km, worker *w, const rd_kafka_message_t *m, decoded *d) {
  part_shard *ps = km->table.shards[m->partition];
  if (!ps)
    return 0; /* a message of a partition revoked meanwhile */
  if (m->offset < ps->next_offset)
    return 0; /* fetched before a revoke and applied already (or in the snapshot) */
  if (ps->held)
    return 0; /* after a message waiting for its schema: read again from it */
  /* Messages before it not delivered (gap.h says how librdkafka 2.0 loses
   * them): read again from next_offset. */
  int64_t expect = expected_offset(ps);
  gap_verdict gap = kafka_failed(km) ? GAP_TAKE : gap_check(expect, &ps->gap_at, m->offset, 0);
  if (gap == GAP_NEW)
    log_msg(LOG_WARN, "kafka",
            "input partition %" PRId32 ": offsets %" PRId64 " to %" PRId64
            " were not delivered; reading them again",
            ps->partition, expect, m->offset - 1);
  if (gap != GAP_TAKE)
    return -1;
  if (d->why == NOT_DECODED) /* the hint was stale (the shard changed hands) */
    decode_message(km, m, d);
  if (d->why == FRAMING_RETRY) { /* not bad data: this and what follows waits */
    hold(km, w, ps, m, d->schema_id);
    return 0;
  }
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
  if (ps->assigned_at != 0) /* how long an assigned partition waited (kafka/rebalance.c) */
    first_applied(km, ps, m->offset);
  return why == REASON_OK ? 2 : 1;
}

/* An end-of-partition event at offset end for ps: 1 when messages before
 * it were not applied (it is not the end yet: read them again), else 0.
 *
 * The cause of a --exit-at-eof run that ended some rows off with the
 * cooperative protocol (kafka_run's two instances): librdkafka 2.0 dropped
 * the last messages of a kept partition from a batch taken during a
 * rebalance (gap.h), and the next thing the worker took of it was its end.
 * Taken as such, it set at_eof and eof_offset past what the shard had
 * applied; the progress mark then covered eof_offset (partials.c), the
 * merge stage saw the partition done to its end, and settled without
 * those messages. No message came after them to show the gap. The eager
 * protocol assigns every partition anew at our own next offset, where
 * nothing is skipped. */
static int eof_early(kafka_mode *km, part_shard *ps, int64_t end) {
  int64_t expect = expected_offset(ps);
  gap_verdict gap = kafka_failed(km) ? GAP_TAKE : gap_check(expect, &ps->gap_at, end, 1);
  if (gap == GAP_NEW)
    log_msg(LOG_WARN, "kafka",
            "input partition %" PRId32 ": offsets %" PRId64 " to %" PRId64
            " were not delivered; reading them again (its end came first)",
            ps->partition, expect, end - 1);
  return gap != GAP_TAKE;
}

/* A message or event of the worker's queue: partition EOF, an error, or a
 * message to apply. Returns 1 when m was dropped because its partition was
 * revoked while the batch was being taken (the caller re-reads the
 * partition if it is ours again) or because messages before it were not
 * delivered (gap.h: the caller reads them again), else 0. Counts a message applied or
 * dead-lettered in *taken, one applied also in *applied. */
static int worker_take(worker *w, rd_kafka_message_t *m, decoded *d, uint64_t taken_after,
                       uint64_t *taken, uint64_t *applied) {
  kafka_mode *km = w->km;
  shard_table *tb = &km->table;
  int32_t p = m->partition;
  int known = p >= 0 && p < MAX_PARTITIONS;
  if (known && tb->revoked_at[p] > taken_after)
    return 1; /* perhaps fetched before the revoke: not ours to apply */
  if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    if (known && tb->shards[p] && tb->shards[p]->held)
      return 0; /* not at its end: a message before it is waiting */
    if (known && tb->shards[p] && eof_early(km, tb->shards[p], m->offset))
      return 1; /* messages before the end are missing: the caller reads them again */
    if (known && tb->shards[p])
      tb->shards[p]->eof_offset = m->offset;
    if (known)
      atomic_store(&tb->at_eof[p], 1);
  } else if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
    char why[600];
    snprintf(why, sizeof why,
             "partition %" PRId32 ": %s. The offset to resume at is not in the log (the topic "
             "was recreated, or retention removed records a snapshot had not seen): remove that "
             "partition's snapshots (--snapshot-dir, or a new --snapshot-topic) to rebuild it from "
             "the log",
             p, rd_kafka_message_errstr(m));
    kafka_fail(km, why);
  } else if (m->err) {
    kafka_trouble(km, rd_kafka_message_errstr(m));
  } else if (known) {
    if (atomic_load_explicit(&tb->at_eof[p], memory_order_relaxed))
      atomic_store(&tb->at_eof[p], 0);
    int r = process_message(km, w, m, d);
    if (r < 0)
      return 1; /* after a gap: the caller reads the partition again */
    *taken += r > 0;
    *applied += r == 2;
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
  char what[80];
  snprintf(what, sizeof what, "partition %" PRId32 ": cannot read it again after a rebalance", p);
  client_seek(km, km->clients.consumer, km->opt->topic, p,
              ps->next_offset >= 0 ? ps->next_offset : RD_KAFKA_OFFSET_BEGINNING, what);
}

/* Held partition ps may go on: read it again from the held message. */
static void release(kafka_mode *km, worker *w, part_shard *ps) {
  int32_t p = ps->partition;
  worker_refetch(km, p); /* seek first: nothing fetched past the held message survives */
  pause_partition(km, p, 0);
  ps->held = 0;
  hint_set(w, p, 0);
  registry_wait_release(km, p);
  if (!km->opt->quiet)
    log_fields(LOG_INFO, "registry",
               json_pack("{s:I,s:i,s:I}", "schema_id", (json_int_t)ps->held_schema, "partition",
                         (int)p, "offset", (json_int_t)ps->next_offset),
               "schema id %" PRIu32 " answered: input partition %" PRId32
               " resumes at offset %" PRId64,
               ps->held_schema, p, ps->next_offset);
}

/* Between batches, without the table lock: the lookups due (a registry
 * that times out may take --registry's timeout per id). */
static void retries_run(worker *w) {
  kafka_mode *km = w->km;
  for (int k = 0; k < w->retry_n; k++) {
    char err[512];
    if (!schema_source_lookup(km->schemas, w->retry[k].schema, &w->retry[k].status, err,
                              sizeof err) &&
        w->retry[k].status == SCHEMA_UNAVAILABLE)
      registry_wait_error(km, err);
  }
}

/* After a batch, under the read lock: held partitions whose id answered
 * go on, the others back off; the lookups due next; hints of shards that
 * changed hands dropped. */
static void retries_apply(worker *w) {
  kafka_mode *km = w->km;
  shard_table *tb = &km->table;
  if (w->held_n == 0 && w->retry_n == 0)
    return;
  double now = clock_seconds();
  /* The answers of the lookups just run; the list fills anew below. */
  int done = w->retry_n;
  retry_lookup answers[RETRY_IDS];
  memcpy(answers, w->retry, (size_t)done * sizeof *answers);
  w->retry_n = 0;
  for (int p = (int)w->index; p < MAX_PARTITIONS; p += (int)km->workers_n) {
    part_shard *ps = tb->shards[p];
    if (!ps || !ps->held) {
      if (w->held[p]) { /* not held (any more): revoked, or a new shard */
        hint_set(w, p, 0);
        registry_wait_release(km, p);
        if (ps)
          pause_partition(km, p, 0);
      }
      continue;
    }
    hint_set(w, p, 1); /* a parked held shard assigned again */
    for (int k = 0; k < done; k++) {
      if (answers[k].schema != ps->held_schema)
        continue;
      if (answers[k].status != SCHEMA_UNAVAILABLE) {
        release(km, w, ps);
      } else {
        ps->backoff =
            ps->backoff * 2 < RETRY_MAX_MS / 1000.0 ? ps->backoff * 2 : RETRY_MAX_MS / 1000.0;
        ps->retry_at = now + ps->backoff;
      }
      break;
    }
    if (!ps->held || now < ps->retry_at)
      continue;
    int k = 0;
    while (k < w->retry_n && w->retry[k].schema != ps->held_schema)
      k++;
    if (k == w->retry_n && w->retry_n < RETRY_IDS)
      w->retry[w->retry_n++].schema = ps->held_schema;
  }
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
    retries_run(w);
    /* Messages of a partition come in offset order, its EOF after them. */
    uint64_t revokes = atomic_load(&tb->revokes);
    ssize_t n = rd_kafka_consume_batch_queue(w->queue, 50, taken, TAKE_BATCH);
    int stopping = atomic_load(&w->stop);
    for (ssize_t i = 0; i < n; i++) {
      int32_t p = taken[i]->partition;
      if (taken[i]->err)
        continue;
      if (p >= 0 && p < MAX_PARTITIONS && w->held[p]) {
        w->batch[i].why = NOT_DECODED; /* held: dropped, unless the hint is stale */
        continue;
      }
      decode_message(km, taken[i], &w->batch[i]);
      if (w->batch[i].why == FRAMING_RETRY && p >= 0 && p < MAX_PARTITIONS) {
        /* the rest of p waits too: no need to decode it */
        hint_set(w, p, 1);
        schema_status st;
        schema_source_lookup(km->schemas, w->batch[i].schema_id, &st, w->last_error,
                             sizeof w->last_error);
      }
    }
    pthread_rwlock_rdlock(&tb->lock);
    int32_t dropped = -1; /* a partition with dropped messages (rare: -2 several) */
    int saw_eof = 0;
    uint64_t taken_n = 0, applied = 0; /* added to the worker's counters once per batch */
    for (ssize_t i = 0; i < n && i < PERSONMAP_PREFETCH_AHEAD; i++)
      prefetch_message(km, taken[i], &w->batch[i]);
    for (ssize_t i = 0; i < n; i++) {
      if (i + PERSONMAP_PREFETCH_AHEAD < n)
        prefetch_message(km, taken[i + PERSONMAP_PREFETCH_AHEAD],
                         &w->batch[i + PERSONMAP_PREFETCH_AHEAD]);
      saw_eof |= taken[i]->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
      if (worker_take(w, taken[i], &w->batch[i], revokes, &taken_n, &applied))
        dropped = dropped == -1 || dropped == taken[i]->partition ? taken[i]->partition : -2;
      rd_kafka_message_destroy(taken[i]);
    }
    worker_counters_add(&w->counters, taken_n, applied, clock_seconds());
    if (dropped >= 0) {
      worker_refetch(km, dropped);
    } else if (dropped == -2) {
      for (int p = (int)w->index; p < MAX_PARTITIONS; p += (int)km->workers_n)
        worker_refetch(km, p);
    }
    retries_apply(w); /* after the batch: its messages of a released partition were dropped */
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
