/* stream.c — Kafka mode: the same rules core fed from a topic, rollups out as
 * upserts, in two stages of one program.
 *
 * Stage 1, shards. A member of consumer group --group on --topic. Every
 * assigned input partition is one state shard (its persons and counters),
 * owned by worker (partition % threads): the partition's librdkafka queue is
 * forwarded to the worker's queue, which the worker consumes in batches;
 * the poll thread only serves rebalances and errors. Workers decode
 * (framing.c), validate, apply the rules and dead-letter rejects, with no
 * lock per message. A newly assigned partition starts from its newest valid
 * snapshot in --snapshot-dir and resumes at the offset recorded in it (the snapshot, not the
 * group's committed offset, is the truth), or without one from the beginning of its log:
 * correctness never depends on who held it before. Snapshots are taken every --snapshot-interval
 * (records or seconds) by capturing the shard on its worker (a copy: the only pause) and writing it
 * on the snapshotter thread, and synchronously when the partition is revoked or the instance stops,
 * before the partition is handed over. After a crash the messages past the snapshot's offset are
 * applied again: the same states and rows come out, while their dead letters are published again
 * (the dead-letter topic is at-least-once; its source headers identify duplicates). The group's
 * committed offsets (auto-committed as workers take messages) are for lag monitoring only. Every
 * --flush-ms each worker publishes the rows its shards changed as partial
 * rows on the partials topic: key "PERIOD,MUNICIPALITY,VISITATION@P" (P the
 * input partition), the partials partition chosen from the row key alone so
 * that all partials of a row meet in one place; compacted, that topic keeps
 * the latest partial of every (row, input partition). After them goes a
 * progress mark to every partials partition: key "@P", value the input
 * offset of P those partials cover and the configuration's fingerprint.
 *
 * Stage 2, merge. A member of group "<group>.merge" on the partials topic
 * keeps the latest partial per (row, input partition), sums them and
 * publishes changed totals on --output-topic, keyed
 * "PERIOD,MUNICIPALITY,VISITATION", each message the full row. Re-reading a
 * partial or re-publishing a total never changes a number, so restarts and
 * rebalances are safe; with any number of instances each row's total has one
 * owner (the merge member holding its partials partition). After a change
 * of assignment a merger publishes nothing until it has read its partitions
 * up to where they ended (a row half re-read is not a total).
 *
 * --exit-at-eof (reprocessing), with any number of instances: once every
 * partition of an instance is at the end of its log (or it has none), it
 * takes the ends of all input partitions and waits, still in the group,
 * until its merger is settled: in every partials partition it holds, the
 * last thing read of every input partition P is a mark of this
 * configuration at or past P's end (a partial read after a mark voids it;
 * marks are sent again while at the end). The partials held then are those
 * of the whole input under these rules, so the merger publishes its totals
 * at once and stage 1 stops. A merger holding no partials partition waits
 * for one. Between the revoke and the assignment of one rebalance a shard
 * is kept, so an instance that keeps a partition goes on where it was; one
 * that gets a partition of an instance that left resumes from that
 * instance's snapshot, or replays the partition (which cannot change the
 * totals already settled, only delay the others). */
#include "kafka/stream.h"

#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "avro/rollup_codec.h"
#include "kafka/kafka.h"
#include "state/shard.h"
#include "state/snapshot.h"
#include "state/snapshotter.h"
#include "source/framing.h"
#include "source/schema_registry.h"

enum {
  MAX_PARTITIONS = 4096,
  TAKE_BATCH = 4096, /* messages a worker takes from its queue at once */
  OUTPUT_PARTITIONS = 6,
  PREFETCH_DISTANCE = 8,    /* messages between a person's prefetch and its use */
  MERGE_MAX_PARTIALS = 256, /* partitions of the partials topic a merger can hold */
  MARK_BYTES = 16,          /* a progress mark's value: offset, fingerprint */
};

/* What a reprocessing instance at the end of its partitions waits for,
 * when not an input partition. */
enum { WAITING_NOTHING = -1, WAITING_MERGE = -2, WAITING_PARTIALS = -3 };

static atomic_int stop_requested;

static void on_signal(int sig) {
  (void)sig;
  atomic_store(&stop_requested, 1);
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One input partition's state. */
typedef struct part_shard {
  int32_t partition;
  shard state;
  rollup sent;             /* the counters last published as partials */
  int64_t next_offset;     /* the input offset after the last one applied; -1 none yet */
  int64_t eof_offset;      /* the end of the log at its last end-of-partition event; -1 */
  int64_t marked;          /* the offset last published in a progress mark; -1 none */
  uint64_t since_snapshot; /* messages applied since the last snapshot (or load) */
  double next_snapshot;    /* when the next one is due, with --snapshot-interval Ns */
} part_shard;

typedef struct stream stream;

/* A message of a batch, decoded and validated before the batch is applied
 * (so that the person states of the next messages can be prefetched). */
typedef struct decoded {
  pm_record rec;
  uint64_t hash; /* personmap_hash(rec.person_id) when why is REASON_OK */
  reason why;
} decoded;

/* A worker: the queue its partitions' queues are forwarded to, consumed in
 * batches by its thread. */
typedef struct worker {
  stream *st;
  unsigned index;
  pthread_t thread;
  rd_kafka_queue_t *queue;
  atomic_int stop;
  double next_flush;
  decoded batch[TAKE_BATCH]; /* taken[i] decoded: the data messages only */
} worker;

struct stream {
  const config *cfg;
  unsigned workers_n;
  worker *workers;
  framing frame;
  pm_plan *plain_plan;
  schema_source *schemas;
  rd_kafka_t *consumer, *merger, *producer;
  int partials_partitions;

  /* Workers hold it for reading while they touch shards; the poll thread
   * holds it for writing while a rebalance adds or drops shards. */
  pthread_rwlock_t shards_lock;
  part_shard *shards[MAX_PARTITIONS];
  atomic_int at_eof[MAX_PARTITIONS]; /* set by the partition's worker */
  /* Revokes so far, and the count at each partition's last revoke: a worker
   * drops the messages of a batch taken before a revoke of their partition
   * (read under the lock, written under the write lock). */
  _Atomic uint64_t revokes;
  uint64_t revoked_at[MAX_PARTITIONS];
  int assignment_received; /* poll thread only */
  /* Shards revoked (not lost) in the rebalance under way: one assigned to
   * us again goes on where it was instead of being rebuilt (the eager
   * protocol revokes every partition on every rebalance). Poll thread. */
  part_shard *parked[MAX_PARTITIONS];

  _Atomic double first_message; /* when the first input message came */

  /* --exit-at-eof with any number of instances: the ends of the input
   * partitions (taken once this instance is at the end of its own), and
   * whether the merge stage has seen every input partition's partials up to
   * them (see merge_settled). */
  int input_partitions;
  int64_t input_ends[MAX_PARTITIONS];
  atomic_int ends_known, settled;
  atomic_int waiting_for;      /* an input partition not yet settled, or WAITING_* */
  _Atomic uint64_t marks_read; /* progress marks the merge stage applied */

  atomic_int stage1_done;
  atomic_int failed;
  pthread_mutex_t fail_lock; /* also guards the trouble fields */
  char failure[512];
  double trouble_since, trouble_reported; /* first broker trouble; 0: none yet */
  double progress_at;                     /* poll thread: when messages last grew */
  uint64_t progress_messages;             /* poll thread: the count then */
  char trouble[256];

  _Atomic uint64_t messages, partials, totals;
  _Atomic uint64_t rejected[REASON_COUNT];

  /* Snapshots (--snapshot-dir): the writer thread, and the pauses they cost. */
  uint64_t fingerprint;
  snapshotter *snapshots;
  pthread_mutex_t pause_lock;
  uint64_t captures, loads;
  double pause_max, pause_total, load_seconds;
};

static void stream_fail(stream *st, const char *what) {
  pthread_mutex_lock(&st->fail_lock);
  if (!atomic_load(&st->failed))
    snprintf(st->failure, sizeof st->failure, "%s", what);
  atomic_store(&st->failed, 1);
  pthread_mutex_unlock(&st->fail_lock);
}

enum { TROUBLE_REPORT_SECONDS = 10, TROUBLE_GIVE_UP_SECONDS = 120 };

/* A consumer error other than a missing topic (broker down, transport):
 * librdkafka retries by itself; say so every TROUBLE_REPORT_SECONDS, and
 * remember since when there has been trouble without progress. */
static void stream_trouble(stream *st, const char *what) {
  double now = now_seconds();
  pthread_mutex_lock(&st->fail_lock);
  if (st->trouble_since == 0)
    st->trouble_since = now;
  snprintf(st->trouble, sizeof st->trouble, "%s", what);
  if (now - st->trouble_reported >= TROUBLE_REPORT_SECONDS) {
    fprintf(stderr,
            "regstream: Kafka: %s; retrying (check that the brokers at %s are up and "
            "reachable)\n",
            what, st->cfg->brokers);
    st->trouble_reported = now;
  }
  pthread_mutex_unlock(&st->fail_lock);
}

/* How long to wait for the producer: once the run has failed, briefly
 * (what is lost is produced again after the restart, from the snapshots). */
static int flush_timeout_ms(stream *st, int normal) {
  return atomic_load(&st->failed) ? 5000 : normal;
}

/* A snapshot says "everything before my offset is done", dead letters
 * included: they must be in the broker before it is written, or a crash
 * after it would lose them (the records are not read again). Flushes the
 * producer; 0 when everything produced so far was delivered. */
static int outputs_durable(void *opaque) {
  stream *st = opaque;
  if (rd_kafka_flush(st->producer, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    fprintf(stderr, "regstream: warning: a snapshot was skipped: the dead letters and rows before "
                    "it were not acknowledged within 60 s\n");
    return -1;
  }
  return atomic_load(&st->failed) ? -1 : 0; /* a delivery failed: stopping */
}

/* ---- stage 1: workers ---- */

static void dead_letter(stream *st, const rd_kafka_message_t *m, reason why) {
  char partition[16], offset[24];
  snprintf(partition, sizeof partition, "%" PRId32, m->partition);
  snprintf(offset, sizeof offset, "%" PRId64, m->offset);
  const char *code = reason_code(why);
  rd_kafka_resp_err_t e;
  do {
    e = rd_kafka_producev(st->producer, RD_KAFKA_V_TOPIC(st->cfg->dead_letter_topic),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
                          RD_KAFKA_V_HEADER("reason", code, -1),
                          RD_KAFKA_V_HEADER("source_topic", rd_kafka_topic_name(m->rkt), -1),
                          RD_KAFKA_V_HEADER("source_partition", partition, -1),
                          RD_KAFKA_V_HEADER("source_offset", offset, -1), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(st->producer, 10);
  } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
  if (e)
    stream_fail(st, "cannot produce to the dead-letter topic; stopping so that nothing is lost");
  atomic_fetch_add(&st->rejected[why], 1);
}

/* Decode and validate a data message of a batch: pure, no shard touched. */
static void decode_message(const stream *st, const rd_kafka_message_t *m, decoded *d) {
  d->why = framing_decode(&st->frame, m->payload, m->len, &d->rec, NULL);
  if (d->why == REASON_OK)
    d->why = validate_record(&d->rec);
  if (d->why == REASON_OK)
    d->hash = personmap_hash(d->rec.person_id);
}

/* Bring the person state a decoded message will touch into the cache.
 * Inlined by force: as a function of its own GCC deems it free of effects
 * (a prefetch only) and drops the calls. */
static inline __attribute__((always_inline)) void
prefetch_message(const stream *st, const rd_kafka_message_t *m, const decoded *d) {
  if (m->err || d->why != REASON_OK || m->partition < 0 || m->partition >= MAX_PARTITIONS)
    return;
  const part_shard *ps = st->shards[m->partition];
  if (ps)
    personmap_prefetch(&ps->state.persons, d->hash);
}

/* Apply message m (of a partition below MAX_PARTITIONS), decoded as d. 1
 * when it was taken (applied or dead-lettered), 0 when not ours to apply. */
static int process_message(stream *st, const rd_kafka_message_t *m, const decoded *d) {
  part_shard *ps = st->shards[m->partition];
  if (!ps)
    return 0; /* a message of a partition revoked meanwhile */
  if (m->offset < ps->next_offset)
    return 0; /* fetched before a revoke and applied already (or in the snapshot) */
  reason why = d->why;
  if (why == REASON_OK) {
    int r = shard_apply(&ps->state, &d->rec, d->hash);
    if (r < 0)
      stream_fail(st, "out of memory for person states");
    else if (r == RULES_LATE)
      why = REASON_LATE;
  }
  if (why != REASON_OK)
    dead_letter(st, m, why);
  /* A message that failed (memory, a dead letter refused) is not done: the
   * run stops, and no snapshot may say it was. */
  if (!atomic_load_explicit(&st->failed, memory_order_relaxed)) {
    ps->next_offset = m->offset + 1;
    ps->since_snapshot++; /* rejects too: their dead letters need not be sent again */
  }
  return 1;
}

static uint32_t row_partition(int32_t period, int32_t municipality, visitation v, int partitions) {
  uint64_t h = personmap_hash(((int64_t)period * 1000 + municipality) * 8 + (int64_t)v);
  return (uint32_t)(h % (uint64_t)partitions);
}

static void produce_row(stream *st, const char *topic, int32_t partition, const char *key,
                        size_t klen, const uint8_t *value, size_t vlen) {
  rd_kafka_resp_err_t e;
  do {
    e = rd_kafka_producev(st->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, klen),
                          RD_KAFKA_V_VALUE((void *)value, vlen), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(st->producer, 10);
  } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
  if (e)
    stream_fail(st, "cannot produce rollup rows to Kafka");
}

/* A progress mark: key "@P", value the big-endian input offset of P that
 * the partials published before it cover and the run's configuration
 * fingerprint (rule options, reader schema), sent to every partials
 * partition after those partials (the producer keeps a partition's order).
 * A merger counts a mark of P only if no partial of P came after it (see
 * merge_apply) and its fingerprint is the merger's own: then the partials
 * of P it holds are those of P's input up to the mark's offset, under the
 * same rules. force: send it even if unchanged (at the end of the input,
 * so that a stale mark of a previous owner cannot stay the last). */
static void publish_mark(stream *st, part_shard *ps, int force) {
  int64_t covered = ps->next_offset > ps->eof_offset ? ps->next_offset : ps->eof_offset;
  if (covered < 0 || (covered == ps->marked && !force))
    return;
  char key[16];
  size_t klen = (size_t)snprintf(key, sizeof key, "@%" PRId32, ps->partition);
  uint8_t value[MARK_BYTES];
  for (int i = 0; i < 8; i++) {
    value[i] = (uint8_t)((uint64_t)covered >> (56 - 8 * i));
    value[8 + i] = (uint8_t)(st->fingerprint >> (56 - 8 * i));
  }
  for (int q = 0; q < st->partials_partitions; q++)
    produce_row(st, st->cfg->partials_topic, q, key, klen, value, sizeof value);
  ps->marked = covered;
}

/* Publish the rows of ps that changed since they were last published. A
 * month block published for the first time by this owner goes out whole,
 * zero rows included: the topic may hold a previous owner's (or a crashed
 * run's) later value of a row that is zero here, and only a republication
 * of every row of the block makes it agree again. */
static void publish_partials(stream *st, part_shard *ps) {
  for (int month = 0; month < PERIOD_MONTHS; month++) {
    if (!ps->state.counts.months[month])
      continue;
    if (!ps->sent.months[month]) {
      size_t bytes = (size_t)ROLLUP_KEYS * ROLLUP_COLUMNS * sizeof(uint32_t);
      if (!(ps->sent.months[month] = malloc(bytes))) {
        stream_fail(st, "out of memory for published rows");
        return;
      }
      memset(ps->sent.months[month], 0xff, bytes); /* differs from every real row */
    }
    for (int mi = 0; mi < MUNICIPALITY_COUNT; mi++) {
      for (int v = 0; v < VISITATION_COUNT; v++) {
        const uint32_t *now = rollup_row(&ps->state.counts, month, mi, v);
        uint32_t *sent = rollup_row(&ps->sent, month, mi, v);
        if (!memcmp(now, sent, ROLLUP_COLUMNS * sizeof *now))
          continue;
        memcpy(sent, now, ROLLUP_COLUMNS * sizeof *now);
        rollup_row_view row = {period_from_month(month), municipality_codes[mi], (visitation)v,
                               now};
        char key[ROLLUP_KEY_MAX + 16];
        size_t klen = rollup_key_format(row.period, row.municipality, row.visitation, key);
        klen += (size_t)snprintf(key + klen, sizeof key - klen, "@%" PRId32, ps->partition);
        uint8_t value[ROLLUP_ENCODED_MAX];
        size_t vlen = rollup_codec_encode_row(&row, value);
        produce_row(st, st->cfg->partials_topic,
                    (int32_t)row_partition(row.period, row.municipality, row.visitation,
                                           st->partials_partitions),
                    key, klen, value, vlen);
        atomic_fetch_add(&st->partials, 1);
      }
    }
  }
  /* Reprocessing, at the end of the input: the mark again on every flush. */
  int p = ps->partition;
  publish_mark(st, ps, st->cfg->exit_at_eof && atomic_load(&st->at_eof[p]));
}

static void publish_worker_partials(worker *w) {
  stream *st = w->st;
  for (int p = (int)w->index; p < MAX_PARTITIONS; p += (int)st->workers_n)
    if (st->shards[p])
      publish_partials(st, st->shards[p]);
  w->next_flush = now_seconds() + st->cfg->flush_ms / 1000.0;
}

/* ---- stage 1: snapshots ---- */

static void snapshot_meta_of(const stream *st, const part_shard *ps, snapshot_meta *meta) {
  memset(meta, 0, sizeof *meta);
  meta->fingerprint = st->fingerprint;
  snprintf(meta->shard_id, sizeof meta->shard_id, "kafka.%s.%" PRId32, st->cfg->topic,
           ps->partition);
  meta->position = ps->next_offset;
}

/* Capture ps on its owner's thread and hand the image to the writer; the
 * capture is the only pause the shard sees. */
static void snapshot_capture_shard(stream *st, part_shard *ps) {
  snapshot_meta meta;
  snapshot_meta_of(st, ps, &meta);
  double started = now_seconds();
  snapshot_image *img = snapshot_capture(&ps->state, &meta);
  double pause = now_seconds() - started;
  if (!img) {
    stream_fail(st, "out of memory while capturing a snapshot");
    return;
  }
  snapshotter_submit(st->snapshots, img);
  ps->since_snapshot = 0;
  ps->next_snapshot = now_seconds() + st->cfg->snapshot_seconds;
  pthread_mutex_lock(&st->pause_lock);
  st->captures++;
  st->pause_total += pause;
  if (pause > st->pause_max)
    st->pause_max = pause;
  pthread_mutex_unlock(&st->pause_lock);
}

static void snapshot_if_due(stream *st, part_shard *ps, double now) {
  if (!st->snapshots || ps->since_snapshot == 0 || ps->next_offset < 0 || atomic_load(&st->failed))
    return;
  if (st->cfg->snapshot_records ? ps->since_snapshot >= st->cfg->snapshot_records
                                : now >= ps->next_snapshot)
    snapshot_capture_shard(st, ps);
}

/* Write ps's snapshot now and wait for it (revoke, shutdown). */
static void snapshot_now(stream *st, part_shard *ps) {
  if (!st->snapshots || ps->since_snapshot == 0 || ps->next_offset < 0)
    return;
  snapshot_meta meta;
  snapshot_meta_of(st, ps, &meta);
  snapshotter_forget(st->snapshots, meta.shard_id);
  char err[512];
  if (snapshot_write(&ps->state, &meta, st->cfg->snapshot_dir, err, sizeof err) < 0) {
    char why[700];
    snprintf(why, sizeof why, "cannot write a snapshot: %s", err);
    stream_fail(st, why);
    return;
  }
  ps->since_snapshot = 0;
}

/* A message or event of the worker's queue: partition EOF, an error, or a
 * message to apply. */
/* Returns 1 when m was dropped because its partition was revoked while the
 * batch was being taken (the caller re-reads the partition if it is ours
 * again), else 0. Counts a message applied or dead-lettered in *applied. */
static int worker_take(stream *st, rd_kafka_message_t *m, const decoded *d, uint64_t taken_after,
                       uint64_t *applied) {
  int32_t p = m->partition;
  int known = p >= 0 && p < MAX_PARTITIONS;
  if (known && st->revoked_at[p] > taken_after)
    return 1; /* perhaps fetched before the revoke: not ours to apply */
  if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    if (known && st->shards[p])
      st->shards[p]->eof_offset = m->offset;
    if (known)
      atomic_store(&st->at_eof[p], 1);
  } else if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
    char why[600];
    snprintf(why, sizeof why,
             "partition %" PRId32 ": %s. The offset to resume at is not in the log (the topic "
             "was recreated, or retention removed records a snapshot had not seen): remove that "
             "partition's snapshots from --snapshot-dir to rebuild it from the log",
             p, rd_kafka_message_errstr(m));
    stream_fail(st, why);
  } else if (m->err) {
    stream_trouble(st, rd_kafka_message_errstr(m));
  } else if (known) {
    if (atomic_load_explicit(&st->at_eof[p], memory_order_relaxed))
      atomic_store(&st->at_eof[p], 0);
    *applied += (uint64_t)process_message(st, m, d);
  }
  return 0;
}

/* Messages of partition p were dropped by worker_take; some may have been
 * fetched after p came back to us. Fetch p again from where its shard is:
 * the seek also makes librdkafka discard what it still holds of p. */
static void worker_refetch(stream *st, int32_t p) {
  part_shard *ps = st->shards[p];
  if (!ps)
    return; /* not ours: nothing to read again */
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, st->cfg->topic, p)->offset =
      ps->next_offset >= 0 ? ps->next_offset : RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_error_t *e = rd_kafka_seek_partitions(st->consumer, list, 5000);
  if (e || list->elems[0].err) {
    char why[400];
    snprintf(why, sizeof why, "partition %" PRId32 ": cannot read it again after a rebalance: %s",
             p, e ? rd_kafka_error_string(e) : rd_kafka_err2str(list->elems[0].err));
    stream_fail(st, why);
  }
  if (e)
    rd_kafka_error_destroy(e);
  rd_kafka_topic_partition_list_destroy(list);
}

static void *worker_main(void *arg) {
  worker *w = arg;
  stream *st = w->st;
  rd_kafka_message_t *taken[TAKE_BATCH];
  char name[16]; /* as top and perf show the thread */
  snprintf(name, sizeof name, "rs-worker%u", w->index);
  pthread_setname_np(pthread_self(), name);
  w->next_flush = now_seconds() + st->cfg->flush_ms / 1000.0;
  for (;;) {
    /* Messages of a partition come in offset order, its EOF after them. */
    uint64_t revokes = atomic_load(&st->revokes);
    ssize_t n = rd_kafka_consume_batch_queue(w->queue, 50, taken, TAKE_BATCH);
    int stopping = atomic_load(&w->stop);
    for (ssize_t i = 0; i < n; i++)
      if (!taken[i]->err)
        decode_message(st, taken[i], &w->batch[i]);
    pthread_rwlock_rdlock(&st->shards_lock);
    int32_t dropped = -1; /* a partition with dropped messages (rare: -2 several) */
    int saw_eof = 0;
    uint64_t applied = 0; /* added to the shared count once per batch */
    for (ssize_t i = 0; i < n && i < PREFETCH_DISTANCE; i++)
      prefetch_message(st, taken[i], &w->batch[i]);
    for (ssize_t i = 0; i < n; i++) {
      if (i + PREFETCH_DISTANCE < n)
        prefetch_message(st, taken[i + PREFETCH_DISTANCE], &w->batch[i + PREFETCH_DISTANCE]);
      saw_eof |= taken[i]->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
      if (worker_take(st, taken[i], &w->batch[i], revokes, &applied))
        dropped = dropped == -1 || dropped == taken[i]->partition ? taken[i]->partition : -2;
      rd_kafka_message_destroy(taken[i]);
    }
    if (applied)
      atomic_fetch_add(&st->messages, applied);
    if (dropped >= 0) {
      worker_refetch(st, dropped);
    } else if (dropped == -2) {
      for (int p = (int)w->index; p < MAX_PARTITIONS; p += (int)st->workers_n)
        worker_refetch(st, p);
    }
    if (n > 0 && atomic_load_explicit(&st->first_message, memory_order_relaxed) == 0) {
      double zero = 0;
      atomic_compare_exchange_strong(&st->first_message, &zero, now_seconds());
    }
    if (st->snapshots) { /* also when idle: a quiet shard's last changes get saved too */
      double now = now_seconds();
      for (int p = (int)w->index; p < MAX_PARTITIONS; p += (int)st->workers_n)
        if (st->shards[p])
          snapshot_if_due(st, st->shards[p], now);
    }
    /* Reprocessing: a partition at its end publishes (and marks) at once,
     * so that the merge stage can settle without waiting a flush interval. */
    if ((stopping || now_seconds() >= w->next_flush || (saw_eof && st->cfg->exit_at_eof)) &&
        !atomic_load(&st->failed))
      publish_worker_partials(w);
    pthread_rwlock_unlock(&st->shards_lock);
    if (stopping)
      return NULL;
  }
}

/* ---- stage 1: rebalances ---- */

static void part_shard_free(part_shard *ps) {
  shard_free(&ps->state);
  rollup_free(&ps->sent);
  free(ps);
}

static void parked_free(stream *st) {
  for (int p = 0; p < MAX_PARTITIONS; p++) {
    if (st->parked[p])
      part_shard_free(st->parked[p]);
    st->parked[p] = NULL;
  }
}

/* A new shard for partition p: from its newest valid snapshot when there is
 * one (the snapshot, not the group's committed offset, says where its input
 * resumes), else empty from the beginning of the log. Sets *offset. */
static part_shard *shard_open(stream *st, int32_t p, int64_t *offset) {
  part_shard *ps = calloc(1, sizeof *ps);
  if (!ps || shard_init(&ps->state, &st->cfg->rules, 0) < 0) {
    free(ps);
    stream_fail(st, "out of memory for a new shard");
    return NULL;
  }
  ps->partition = p;
  ps->next_offset = -1;
  ps->eof_offset = -1;
  ps->marked = -1;
  rollup_init(&ps->sent);
  *offset = RD_KAFKA_OFFSET_BEGINNING;
  if (!st->cfg->snapshot_dir)
    return ps;
  snapshot_meta meta;
  char id[SNAPSHOT_SHARD_ID_MAX], err[700];
  snprintf(id, sizeof id, "kafka.%s.%" PRId32, st->cfg->topic, p);
  double started = now_seconds();
  int loaded = snapshot_load_latest(st->cfg->snapshot_dir, id, st->fingerprint, &ps->state, &meta,
                                    err, sizeof err);
  double took = now_seconds() - started;
  if (loaded < 0) { /* refused: this shard must never run */
    stream_fail(st, err);
    part_shard_free(ps);
    return NULL;
  }
  if (loaded == 1) {
    ps->next_offset = meta.position;
    *offset = meta.position;
    st->loads++;
    st->load_seconds += took;
    if (!st->cfg->quiet)
      fprintf(stderr,
              "regstream: partition %" PRId32 " resumes at offset %" PRId64
              " from its snapshot (%" PRIu64 " persons, loaded in %.0f ms)\n",
              p, meta.position, meta.persons, took * 1000);
  }
  ps->next_snapshot = now_seconds() + st->cfg->snapshot_seconds;
  return ps;
}

static void shards_assign(stream *st, rd_kafka_topic_partition_list_t *parts) {
  pthread_rwlock_wrlock(&st->shards_lock);
  for (int i = 0; i < parts->cnt; i++) {
    int32_t p = parts->elems[i].partition;
    if (p < 0 || p >= MAX_PARTITIONS)
      continue;
    if (st->shards[p]) { /* still ours: go on where it is */
      parts->elems[i].offset =
          st->shards[p]->next_offset >= 0 ? st->shards[p]->next_offset : RD_KAFKA_OFFSET_BEGINNING;
      continue;
    }
    part_shard *ps = st->parked[p];
    if (ps) { /* ours again in the same rebalance: nobody else had it since */
      st->parked[p] = NULL;
      parts->elems[i].offset = ps->next_offset >= 0 ? ps->next_offset : RD_KAFKA_OFFSET_BEGINNING;
    } else {
      ps = shard_open(st, p, &parts->elems[i].offset);
    }
    if (!ps)
      continue;
    /* The partition's messages go straight to its worker's queue. */
    rd_kafka_queue_t *pq = rd_kafka_queue_get_partition(st->consumer, parts->elems[i].topic, p);
    if (!pq) {
      stream_fail(st, "cannot get a partition's queue from librdkafka");
    } else {
      rd_kafka_queue_forward(pq, st->workers[(unsigned)p % st->workers_n].queue);
      rd_kafka_queue_destroy(pq);
    }
    st->shards[p] = ps;
    atomic_store(&st->at_eof[p], 0);
  }
  parked_free(st); /* the ones that went to other instances */
  st->assignment_received = 1;
  pthread_rwlock_unlock(&st->shards_lock);
}

/* A revoked shard is published, snapshotted and dropped once no worker is
 * inside it (the write lock). Its messages still queued are not applied:
 * its snapshot says where they begin, and a later owner reads them again
 * (one of ours skips those below the shard's next offset). */
static void shards_revoke(stream *st, const rd_kafka_topic_partition_list_t *parts, int lost) {
  pthread_rwlock_wrlock(&st->shards_lock);
  uint64_t revoke = atomic_fetch_add(&st->revokes, 1) + 1;
  /* No worker is inside a shard now, so none can queue an image: after the
   * drain every interval snapshot taken so far is on disk. */
  char err[512];
  if (st->snapshots && snapshotter_drain(st->snapshots, err, sizeof err) < 0) {
    char why[700];
    snprintf(why, sizeof why, "cannot write a snapshot: %s", err);
    stream_fail(st, why);
  }
  /* After a failure nothing more leaves: a failed message must not reach
   * a snapshot or a partial row. A lost assignment (session timed out)
   * may have a new owner publishing already: ours would be older. Its
   * partials stay on the topic: the new owner loads our snapshot (or
   * rebuilds the same numbers) and republishes them, nothing double counts. */
  for (int i = 0; i < parts->cnt; i++) {
    int32_t p = parts->elems[i].partition;
    if (p >= 0 && p < MAX_PARTITIONS && st->shards[p] && !lost && !atomic_load(&st->failed))
      publish_partials(st, st->shards[p]);
  }
  /* Ours must be in the log before the new owner publishes (the latest
   * partial of a row is the newest), and every dead letter before the
   * snapshots say their records are done. */
  if (rd_kafka_flush(st->producer, flush_timeout_ms(st, 30000)) != RD_KAFKA_RESP_ERR_NO_ERROR)
    stream_fail(st, "partial rows or dead letters were not acknowledged within 30 s of a revoke "
                    "(are the brokers reachable? rerun when they are: the snapshots keep the "
                    "work, nothing is lost)");
  int failed = atomic_load(&st->failed);
  for (int i = 0; i < parts->cnt; i++) {
    int32_t p = parts->elems[i].partition;
    if (p < 0 || p >= MAX_PARTITIONS || !st->shards[p])
      continue;
    if (!failed)
      snapshot_now(st, st->shards[p]);
    if (!failed && !lost) /* kept until the assignment that follows */
      st->parked[p] = st->shards[p];
    else
      part_shard_free(st->shards[p]);
    st->shards[p] = NULL;
    st->revoked_at[p] = revoke;
  }
  pthread_rwlock_unlock(&st->shards_lock);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
  stream *st = opaque;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    shards_assign(st, parts); /* sets every partition's starting offset */
    rd_kafka_assign(rk, parts);
  } else {
    shards_revoke(st, parts, rd_kafka_assignment_lost(rk));
    rd_kafka_assign(rk, NULL);
  }
}

/* Every assigned partition (a shard: the poll thread alone adds and drops
 * them) is at its end (none assigned counts, once an assignment came: an
 * instance without partitions waits with the others). */
static int all_at_eof(stream *st) {
  for (int p = 0; p < MAX_PARTITIONS; p++)
    if (st->shards[p] && !atomic_load(&st->at_eof[p]))
      return 0;
  return st->assignment_received;
}

/* With --exit-at-eof a run must end: after broker trouble,
 * TROUBLE_GIVE_UP_SECONDS without a message applied fail it. */
static void trouble_check(stream *st, double now) {
  /* Progress: messages applied, or (waiting for other instances) marks read. */
  uint64_t messages = atomic_load(&st->messages) + atomic_load(&st->marks_read);
  if (st->progress_at == 0 || messages != st->progress_messages) {
    st->progress_at = now;
    st->progress_messages = messages;
  }
  /* librdkafka raises a lost broker once, then retries quietly: so the
   * test is "trouble was seen, and nothing was applied for so long" (with
   * a healthy broker a reprocessing run either applies or reaches its end). */
  pthread_mutex_lock(&st->fail_lock);
  int give_up = st->cfg->exit_at_eof && st->trouble_since != 0 &&
                now - st->progress_at >= TROUBLE_GIVE_UP_SECONDS;
  char why[600];
  if (give_up)
    snprintf(why, sizeof why,
             "no progress for %d s with --exit-at-eof: %s (snapshots and published rows are "
             "kept; rerun once the brokers at %s are reachable)",
             TROUBLE_GIVE_UP_SECONDS, st->trouble, st->cfg->brokers);
  pthread_mutex_unlock(&st->fail_lock);
  if (give_up)
    stream_fail(st, why);
}

/* The ends of partitions parts[0..n) of topic into ends, in one request per
 * broker, asked through the producer: a consumer's connection may be
 * holding a fetch for fetch.wait.max.ms, and a broker answers a connection
 * in order. 0, or -1. */
static int log_ends(stream *st, const char *topic, const int32_t *parts, int n, int64_t *ends) {
  if (n == 0)
    return 0;
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n);
  for (int i = 0; i < n; i++) /* a timestamp of -1: the latest offset */
    rd_kafka_topic_partition_list_add(list, topic, parts[i])->offset = RD_KAFKA_OFFSET_END;
  int ok = rd_kafka_offsets_for_times(st->producer, list, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR;
  for (int i = 0; ok && i < list->cnt; i++) {
    ok = !list->elems[i].err && list->elems[i].offset >= 0;
    ends[i] = list->elems[i].offset;
  }
  rd_kafka_topic_partition_list_destroy(list);
  return ok ? 0 : -1;
}

/* Takes the ends of the input partitions' logs, once this instance is at
 * the end of its own (--exit-at-eof). */
static void input_ends_take(stream *st) {
  /* Partitions may have been added since the start. */
  char err[300];
  const rd_kafka_metadata_t *md =
      kafka_metadata_fetch(st->producer, st->cfg->brokers, 5000, err, sizeof err);
  const rd_kafka_metadata_topic_t *t = md ? kafka_metadata_topic(md, st->cfg->topic) : NULL;
  int n = t && !t->err ? t->partition_cnt : 0;
  if (md)
    rd_kafka_metadata_destroy(md);
  if (n <= 0 || n > MAX_PARTITIONS) {
    stream_trouble(st, "cannot read the input topic's partitions");
    return;
  }
  st->input_partitions = n; /* read by the merge thread after ends_known */
  int32_t parts[MAX_PARTITIONS];
  for (int p = 0; p < st->input_partitions; p++)
    parts[p] = p;
  if (log_ends(st, st->cfg->topic, parts, st->input_partitions, st->input_ends) < 0) {
    stream_trouble(st, "cannot read the ends of the input partitions");
    return;
  }
  atomic_store(&st->ends_known, 1);
}

/* The poll thread: serves rebalances and consumer errors (the messages go
 * to the workers' queues) until stopped or, with --exit-at-eof, until every
 * assigned partition is at its end. */
static void poll_input(stream *st) {
  double last_progress = now_seconds(), started = last_progress, last_wait_note = started;
  while (!atomic_load(&stop_requested) && !atomic_load(&st->failed)) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(
        st->consumer, st->cfg->progress_ms < 100 ? st->cfg->progress_ms : 100);
    if (m) {
      if (m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
          m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        char why[300];
        snprintf(why, sizeof why, "input topic %s: %s", st->cfg->topic, rd_kafka_message_errstr(m));
        stream_fail(st, why);
      } else if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        stream_trouble(st, rd_kafka_message_errstr(m));
      } else if (!m->err) {
        /* Every assigned partition's queue is forwarded to a worker before
         * it is assigned: a message here would be applied out of order. */
        stream_fail(st, "internal error: a message bypassed its partition's worker queue");
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_poll(st->producer, 0); /* delivery reports */
    double now = now_seconds();
    if (st->cfg->exit_at_eof && all_at_eof(st)) {
      /* This instance's partitions are done; the run is when the merge
       * stage has every input partition's partials up to its end. Until
       * then it stays in the group, to take over partitions of an instance
       * that stops. */
      if (!atomic_load(&st->ends_known)) {
        input_ends_take(st);
      } else if (atomic_load(&st->settled)) {
        break;
      } else if (!st->cfg->quiet && now - last_wait_note >= 10) {
        int p = atomic_load(&st->waiting_for);
        if (p >= 0)
          fprintf(stderr,
                  "regstream: at the end of its partitions; waiting for input partition %d to "
                  "be processed to its end (offset %" PRId64 ") by the instance holding it\n",
                  p, st->input_ends[p]);
        else if (p == WAITING_PARTIALS)
          fprintf(stderr,
                  "regstream: at the end of its partitions; its merge stage holds no partition "
                  "of %s (more instances than its %d partitions): waiting for one\n",
                  st->cfg->partials_topic, st->partials_partitions);
        else
          fprintf(stderr,
                  "regstream: at the end of its partitions; waiting for the merge stage "
                  "to read the partials topic %s\n",
                  st->cfg->partials_topic);
        last_wait_note = now;
      }
    }
    trouble_check(st, now);
    char werr[512];
    if (st->snapshots && snapshotter_check(st->snapshots, werr, sizeof werr) < 0) {
      char why[700]; /* a full disk must not go unnoticed until the next revoke */
      snprintf(why, sizeof why, "cannot write a snapshot: %s", werr);
      stream_fail(st, why);
    }
    if (!st->cfg->quiet && now - last_progress >= st->cfg->progress_ms / 1000.0) {
      uint64_t done = atomic_load(&st->messages);
      if (done || st->assignment_received)
        fprintf(stderr, "regstream: %" PRIu64 " messages applied, %.2f M/s\n", done,
                (double)done / 1e6 / (now - started));
      else
        fprintf(stderr, "regstream: joining consumer group %s on %s\n", st->cfg->group,
                st->cfg->topic);
      last_progress = now;
    }
  }
}

/* ---- stage 2: merge ---- */

typedef struct merge_source {
  int32_t partition;
  int64_t counts[ROLLUP_COLUMNS];
} merge_source;

typedef struct merge_row {
  merge_source *sources;
  int count, capacity;
  int dirty, ever_sent;
  int64_t sent[ROLLUP_COLUMNS];
} merge_row;

/* The merge stage's state, rebuilt on every change of its assignment. */
typedef struct merge_state {
  stream *st;
  merge_row *months[PERIOD_MONTHS]; /* ROLLUP_KEYS rows each, or NULL */
  /* marks[q][p]: the latest progress mark of input partition p read in
   * partials partition q (-1 none); NULL until q's first mark. */
  int64_t *marks[MERGE_MAX_PARTIALS];
  int owned[MERGE_MAX_PARTIALS]; /* the partials partitions assigned */
  int assigned;                  /* an assignment was received */
  /* Totals go out only once the partials partitions have been read up to
   * where they ended when assigned (targets): before that a re-read row
   * could be summed from some of its sources only. */
  int have_targets, caught_up;
  int64_t targets[MERGE_MAX_PARTIALS];
  int foreign_warned; /* a mark of another configuration was reported */
} merge_state;

static void merge_clear(merge_state *ms) {
  for (int m = 0; m < PERIOD_MONTHS; m++) {
    if (!ms->months[m])
      continue;
    for (int k = 0; k < ROLLUP_KEYS; k++)
      free(ms->months[m][k].sources);
    free(ms->months[m]);
    ms->months[m] = NULL;
  }
  for (int q = 0; q < MERGE_MAX_PARTIALS; q++) {
    free(ms->marks[q]);
    ms->marks[q] = NULL;
    ms->owned[q] = 0;
  }
  ms->assigned = ms->have_targets = ms->caught_up = 0;
}

/* The mark slot of input partition p in partials partition q, created
 * (as "none") on first use; NULL when memory is short. */
static int64_t *merge_mark_slot(merge_state *ms, int32_t q, long p) {
  int64_t **row = &ms->marks[q];
  if (!*row) {
    if (!(*row = malloc(MAX_PARTITIONS * sizeof **row)))
      return NULL;
    for (int i = 0; i < MAX_PARTITIONS; i++)
      (*row)[i] = -1;
  }
  return &(*row)[p];
}

/* Apply a progress mark (key "@P"); -1 when malformed. A mark of another
 * configuration (a previous run with other rule options) counts as none. */
static int merge_mark(merge_state *ms, const rd_kafka_message_t *m) {
  char digits[16];
  size_t n = m->key_len - 1;
  if (n == 0 || n >= sizeof digits || m->len != MARK_BYTES || m->partition < 0 ||
      m->partition >= MERGE_MAX_PARTIALS)
    return -1;
  memcpy(digits, (const char *)m->key + 1, n);
  digits[n] = 0;
  char *end;
  long p = strtol(digits, &end, 10);
  if (*end || p < 0 || p >= MAX_PARTITIONS)
    return -1;
  int64_t *slot = merge_mark_slot(ms, m->partition, p);
  if (!slot)
    return -1;
  const uint8_t *v = m->payload;
  uint64_t offset = 0, fingerprint = 0;
  for (int i = 0; i < 8; i++) {
    offset = offset << 8 | v[i];
    fingerprint = fingerprint << 8 | v[8 + i];
  }
  if (fingerprint != ms->st->fingerprint) {
    if (!ms->foreign_warned)
      fprintf(stderr,
              "regstream: warning: partials topic %s holds rows of a run with other rule "
              "options or another reader schema; its totals may mix them in (after changing "
              "rule options, use a new --output-topic)\n",
              ms->st->cfg->partials_topic);
    ms->foreign_warned = 1;
    offset = (uint64_t)-1;
  }
  *slot = (int64_t)offset;
  atomic_fetch_add(&ms->st->marks_read, 1);
  return 0;
}

/* Apply one partial message; -1 when its key or value is malformed. */
static int merge_apply(merge_state *ms, const rd_kafka_message_t *m) {
  const char *key = m->key, *at = key ? memchr(key, '@', m->key_len) : NULL;
  if (at == key)
    return merge_mark(ms, m);
  int32_t period, municipality;
  visitation v;
  rollup_msg row;
  if (!at || rollup_key_parse(key, (size_t)(at - key), &period, &municipality, &v) < 0 ||
      rollup_codec_decode(m->payload, m->len, &row) < 0 || !period_valid(period))
    return -1;
  int mi = municipality_index(municipality);
  char digits[16];
  size_t ndigits = m->key_len - (size_t)(at + 1 - key);
  if (mi < 0 || ndigits == 0 || ndigits >= sizeof digits)
    return -1;
  memcpy(digits, at + 1, ndigits);
  digits[ndigits] = 0;
  char *end;
  long source = strtol(digits, &end, 10);
  if (*end || source < 0 || source >= MAX_PARTITIONS || m->partition < 0 ||
      m->partition >= MERGE_MAX_PARTIALS)
    return -1;
  /* A partial after the last mark of its input partition: that mark no
   * longer covers what is held (its publisher's next mark will). */
  int64_t *mark = merge_mark_slot(ms, m->partition, source);
  if (!mark)
    return -1;
  *mark = -1;
  int month = period_to_month(period);
  if (!ms->months[month] && !(ms->months[month] = calloc(ROLLUP_KEYS, sizeof(merge_row))))
    return -1;
  merge_row *r = &ms->months[month][mi * VISITATION_COUNT + (int)v];
  merge_source *s = NULL;
  for (int i = 0; i < r->count && !s; i++)
    if (r->sources[i].partition == source)
      s = &r->sources[i];
  if (!s) {
    if (r->count == r->capacity) {
      int cap = r->capacity ? r->capacity * 2 : 4;
      merge_source *grown = realloc(r->sources, (size_t)cap * sizeof *grown);
      if (!grown)
        return -1;
      r->sources = grown;
      r->capacity = cap;
    }
    s = &r->sources[r->count++];
    s->partition = (int32_t)source;
  }
  memcpy(s->counts, row.counts, sizeof s->counts);
  r->dirty = 1;
  return 0;
}

static void merge_publish(stream *st, merge_state *ms) {
  for (int month = 0; month < PERIOD_MONTHS; month++) {
    if (!ms->months[month])
      continue;
    for (int k = 0; k < ROLLUP_KEYS; k++) {
      merge_row *r = &ms->months[month][k];
      if (!r->dirty)
        continue;
      r->dirty = 0;
      rollup_msg total = {period_from_month(month),
                          municipality_codes[k / VISITATION_COUNT],
                          (visitation)(k % VISITATION_COUNT),
                          {0}};
      for (int i = 0; i < r->count; i++)
        for (int c = 0; c < ROLLUP_COLUMNS; c++)
          total.counts[c] += r->sources[i].counts[c];
      if (r->ever_sent && !memcmp(total.counts, r->sent, sizeof r->sent))
        continue;
      memcpy(r->sent, total.counts, sizeof r->sent);
      r->ever_sent = 1;
      char key[ROLLUP_KEY_MAX];
      size_t klen = rollup_key_format(total.period, total.municipality, total.visitation, key);
      uint8_t value[ROLLUP_ENCODED_MAX];
      /* A row without members is not a row (SPEC §4): a tombstone, which
       * also deletes any earlier value of the key from the compacted topic. */
      size_t vlen = total.counts[ROLLUP_MEMBERS] ? rollup_codec_encode(&total, value) : 0;
      produce_row(st, st->cfg->output_topic, RD_KAFKA_PARTITION_UA, key, klen, vlen ? value : NULL,
                  vlen);
      atomic_fetch_add(&st->totals, 1);
    }
  }
}

static void on_merge_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t *parts, void *opaque) {
  /* The merge state is rebuilt from the compacted partials on every change
   * of assignment: simple, and the republished totals carry equal values. */
  merge_state *ms = opaque;
  merge_clear(ms);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    for (int i = 0; i < parts->cnt; i++) {
      parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
      if (parts->elems[i].partition >= 0 && parts->elems[i].partition < MERGE_MAX_PARTIALS)
        ms->owned[parts->elems[i].partition] = 1;
    }
    ms->assigned = 1;
    rd_kafka_assign(rk, parts);
  } else {
    /* Totals published before are delivered before the next owner's. */
    rd_kafka_flush(ms->st->producer, 10000);
    rd_kafka_assign(rk, NULL);
  }
}

/* 1 once the merger has read its partials partitions up to where they ended
 * when they were assigned. */
static int merge_caught_up(stream *st, merge_state *ms) {
  if (ms->caught_up || !ms->assigned)
    return ms->caught_up;
  int32_t parts[MERGE_MAX_PARTIALS];
  int n = 0;
  for (int q = 0; q < MERGE_MAX_PARTIALS; q++)
    if (ms->owned[q])
      parts[n++] = q;
  if (!ms->have_targets) {
    int64_t ends[MERGE_MAX_PARTIALS];
    if (log_ends(st, st->cfg->partials_topic, parts, n, ends) < 0) {
      stream_trouble(st, "cannot read the ends of the partials topic"); /* asked again */
      return 0;
    }
    for (int i = 0; i < n; i++)
      ms->targets[parts[i]] = ends[i];
    ms->have_targets = 1;
  }
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
  for (int i = 0; i < n; i++)
    rd_kafka_topic_partition_list_add(list, st->cfg->partials_topic, parts[i]);
  int done = n == 0 || rd_kafka_position(st->merger, list) == RD_KAFKA_RESP_ERR_NO_ERROR;
  for (int i = 0; done && i < list->cnt; i++) {
    int64_t pos = list->elems[i].offset, target = ms->targets[list->elems[i].partition];
    if (target > 0 && (pos < 0 || pos < target))
      done = 0;
  }
  rd_kafka_topic_partition_list_destroy(list);
  return ms->caught_up = done;
}

/* --exit-at-eof: 1 when this merger holds a partials partition and, in every
 * one it holds, the last thing read of every input partition is a mark of
 * this configuration at or past the end of that input partition's log. The
 * partials it holds are then those of the whole input under these rules,
 * whichever instances published them, and so are its totals. */
static int merge_settled(stream *st, merge_state *ms) {
  atomic_store(&st->waiting_for, WAITING_MERGE);
  if (!atomic_load(&st->ends_known) || !merge_caught_up(st, ms))
    return 0;
  int held = 0;
  for (int q = 0; q < MERGE_MAX_PARTIALS; q++) {
    if (!ms->owned[q])
      continue;
    held++;
    for (int p = 0; p < st->input_partitions; p++) {
      if (!ms->marks[q] || ms->marks[q][p] < st->input_ends[p]) {
        atomic_store(&st->waiting_for, p);
        return 0;
      }
    }
  }
  /* Holding none, it waits for a partition (as other instances leave)
   * rather than leave first and hand its input partitions over. */
  atomic_store(&st->waiting_for, held ? WAITING_NOTHING : WAITING_PARTIALS);
  return held > 0;
}

static void *merge_main(void *arg) {
  stream *st = arg;
  merge_state *ms = rd_kafka_opaque(st->merger);
  double next_publish = now_seconds() + st->cfg->flush_ms / 1000.0;
  while (!atomic_load(&st->failed)) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(st->merger, 50);
    if (m) {
      if (!m->err && merge_apply(ms, m) < 0)
        fprintf(stderr,
                "regstream: ignoring a malformed partial row at %s [%" PRId32 "] @ %" PRId64 "\n",
                rd_kafka_topic_name(m->rkt), m->partition, m->offset);
      rd_kafka_message_destroy(m);
    }
    int caught_up = merge_caught_up(st, ms);
    int stage1_done = atomic_load(&st->stage1_done);
    if (st->cfg->exit_at_eof && !atomic_load(&stop_requested)) {
      /* Reprocessing: settled, the totals it holds are final: they go out
       * now, and stage 1 (waiting for this) stops. What is read after it
       * (another instance replaying a partition it took over) cannot
       * change them, so nothing more is applied. */
      if (merge_settled(st, ms)) {
        merge_publish(st, ms);
        atomic_store(&st->settled, 1);
        while (!atomic_load(&st->stage1_done) && !atomic_load(&st->failed)) {
          rd_kafka_message_t *rest = rd_kafka_consumer_poll(st->merger, 50);
          if (rest)
            rd_kafka_message_destroy(rest);
        }
        break;
      }
    } else if (stage1_done) {
      /* Stopping: totals of partitions read in full go out; the others are
       * left to their next owner. */
      if (caught_up)
        merge_publish(st, ms);
      break;
    }
    if (caught_up && now_seconds() >= next_publish) {
      merge_publish(st, ms);
      next_publish = now_seconds() + st->cfg->flush_ms / 1000.0;
    }
  }
  return NULL;
}

/* ---- setup ---- */

/* Every row and dead letter must reach the broker: one that librdkafka gave
 * up on (message.timeout.ms) stops the run, whose restart sends it again. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  if (!m->err)
    return;
  char why[400];
  snprintf(why, sizeof why,
           "a message to %s was not delivered: %s (restart when the brokers "
           "are reachable; nothing is lost)",
           rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
  stream_fail(opaque, why);
}

/* The input consumer's error events (all brokers down, transport): trouble
 * reported while librdkafka retries; a fatal one (e.g. a fenced static
 * member) stops the run. */
static void on_consumer_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char fatal[300], why[500];
    rd_kafka_fatal_error(rk, fatal, sizeof fatal);
    snprintf(why, sizeof why, "fatal Kafka error: %s", fatal);
    stream_fail(opaque, why);
    return;
  }
  stream_trouble(opaque, reason);
}

static rd_kafka_t *new_client(const config *cfg, rd_kafka_type_t type, const char *group,
                              void (*rebalance)(rd_kafka_t *, rd_kafka_resp_err_t,
                                                rd_kafka_topic_partition_list_t *, void *),
                              void *opaque, char *err, size_t errlen) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  /* librdkafka (2.0) stops fetching a partition whose local queue holds
   * queued.min.messages (100000 by default), so the next fetch may name only
   * partitions at their end, which the broker holds for fetch.wait.max.ms
   * (500 ms by default) while the paused ones drain. A deeper queue (still
   * bounded by queued.max.messages.kbytes) and a 50 ms hold took the
   * reprocessing rate from 0.4 to 1.4-1.8 M messages/s here
   * (bench/results/kafka.md), at 20 idle fetches a second. A subscription
   * to a topic the broker's metadata does not show yet (the partials topic
   * just created) is looked at again on the next refresh: 10 s, not 5 min. */
  static const char *const consumer_defaults[] = {
      "enable.partition.eof=true",         "auto.offset.reset=earliest",
      "fetch.max.bytes=52428800",          "max.partition.fetch.bytes=4194304",
      "queued.max.messages.kbytes=262144", "fetch.wait.max.ms=50",
      "queued.min.messages=1000000",       "topic.metadata.refresh.interval.ms=10000"};
  static const char *const producer_defaults[] = {"linger.ms=20", "compression.type=lz4",
                                                  "enable.idempotence=true",
                                                  "queue.buffering.max.messages=1000000"};
  const char *const *defaults = type == RD_KAFKA_CONSUMER ? consumer_defaults : producer_defaults;
  int n = type == RD_KAFKA_CONSUMER ? 8 : 4;
  char why[512];
  if (kafka_conf_apply(conf, cfg->brokers, defaults, n, err, errlen) < 0 ||
      (group && rd_kafka_conf_set(conf, "group.id", group, why, sizeof why) != RD_KAFKA_CONF_OK) ||
      /* The input resumes at a snapshot's offset: one outside the log is an
       * error to report (worker_take), never a silent jump. */
      (rebalance == on_rebalance && rd_kafka_conf_set(conf, "auto.offset.reset", "error", why,
                                                      sizeof why) != RD_KAFKA_CONF_OK) ||
      kafka_conf_apply(conf, NULL, cfg->kafka_conf, cfg->kafka_conf_count, err, errlen) < 0) {
    if (group && !err[0])
      snprintf(err, errlen, "group.id: %s", why);
    rd_kafka_conf_destroy(conf);
    return NULL;
  }
  if (rebalance)
    rd_kafka_conf_set_rebalance_cb(conf, rebalance);
  if (rebalance == on_rebalance) /* the input consumer; its opaque is the stream */
    rd_kafka_conf_set_error_cb(conf, on_consumer_error);
  if (type == RD_KAFKA_PRODUCER)
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_opaque(conf, opaque);
  rd_kafka_t *rk = rd_kafka_new(type, conf, why, sizeof why);
  if (!rk) {
    snprintf(err, errlen, "cannot start a Kafka client: %s", why);
    rd_kafka_conf_destroy(conf);
    return NULL;
  }
  if (type == RD_KAFKA_CONSUMER)
    rd_kafka_poll_set_consumer(rk);
  return rk;
}

static int subscribe(rd_kafka_t *rk, const char *topic, char *err, size_t errlen) {
  rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(t, topic, RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, t);
  rd_kafka_topic_partition_list_destroy(t);
  if (e) {
    snprintf(err, errlen, "cannot subscribe to %s: %s", topic, rd_kafka_err2str(e));
    return -1;
  }
  return 0;
}

/* The input topic exists; the output, partials and dead-letter topics are
 * made when missing (the first two compacted). */
static int prepare_topics(stream *st, char *err, size_t errlen) {
  const config *cfg = st->cfg;
  const rd_kafka_metadata_t *md =
      kafka_metadata_fetch(st->producer, cfg->brokers, 10000, err, errlen);
  if (!md)
    return -1;
  const rd_kafka_metadata_topic_t *t = kafka_metadata_topic(md, cfg->topic);
  int inputs = t && !t->err ? t->partition_cnt : 0;
  rd_kafka_metadata_destroy(md);
  if (inputs > MAX_PARTITIONS) {
    snprintf(err, errlen, "input topic %s has %d partitions; at most %d are supported", cfg->topic,
             inputs, MAX_PARTITIONS);
    return -1;
  }
  st->input_partitions = inputs;
  if (inputs <= 0) {
    snprintf(err, errlen,
             "input topic %s does not exist at %s (create it, e.g. with regstream "
             "produce)",
             cfg->topic, cfg->brokers);
    return -1;
  }
  const kafka_topic_spec specs[] = {{cfg->partials_topic, OUTPUT_PARTITIONS, 1, 1},
                                    {cfg->output_topic, OUTPUT_PARTITIONS, 1, 1},
                                    {cfg->dead_letter_topic, OUTPUT_PARTITIONS, 1, 0}};
  for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
    int created;
    if (kafka_topic_ensure(st->producer, cfg->brokers, &specs[i], NULL, &created, err, errlen) < 0)
      return -1;
  }
  md = kafka_metadata_fetch(st->producer, cfg->brokers, 10000, err, errlen);
  if (!md)
    return -1;
  t = kafka_metadata_topic(md, cfg->partials_topic);
  st->partials_partitions = t && !t->err ? t->partition_cnt : 0;
  rd_kafka_metadata_destroy(md);
  if (st->partials_partitions <= 0 || st->partials_partitions > MERGE_MAX_PARTIALS) {
    snprintf(err, errlen, "partials topic %s has %d partitions (1 to %d are supported)",
             cfg->partials_topic, st->partials_partitions, MERGE_MAX_PARTIALS);
    return -1;
  }
  return 0;
}

static int prepare_framing(stream *st, char *err, size_t errlen) {
  const config *cfg = st->cfg;
  if (cfg->schema_registry || cfg->schema_dir) {
    st->schemas = cfg->schema_registry
                      ? schema_source_open_registry(cfg->schema_registry, NULL, err, errlen)
                      : schema_source_open_dir(cfg->schema_dir, NULL, err, errlen);
    st->frame = (framing){FRAMING_CONFLUENT, NULL, st->schemas};
    return st->schemas ? 0 : -1;
  }
  st->plain_plan = cfg->schema_file ? framing_plan_from_file(cfg->schema_file, err, errlen)
                                    : pm_plan_from_json(pm_reader_schema_json,
                                                        strlen(pm_reader_schema_json), err, errlen);
  st->frame = (framing){FRAMING_PLAIN, st->plain_plan, NULL};
  return st->plain_plan ? 0 : -1;
}

static void close_stream(stream *st) {
  /* The workers' queues hold the consumer: they go first, or its
   * rd_kafka_destroy waits for them forever. */
  for (unsigned i = 0; st->workers && i < st->workers_n; i++)
    if (st->workers[i].queue)
      rd_kafka_queue_destroy(st->workers[i].queue);
  if (st->consumer)
    rd_kafka_destroy(st->consumer);
  if (st->merger) {
    merge_state *ms = rd_kafka_opaque(st->merger);
    rd_kafka_destroy(st->merger);
    merge_clear(ms);
    free(ms);
  }
  if (st->producer)
    rd_kafka_destroy(st->producer);
  for (int p = 0; p < MAX_PARTITIONS; p++)
    if (st->shards[p])
      part_shard_free(st->shards[p]);
  parked_free(st);
  free(st->workers);
  if (st->plain_plan)
    pm_plan_free(st->plain_plan);
  if (st->schemas)
    schema_source_free(st->schemas);
  snapshotter_stop(st->snapshots);
  pthread_rwlock_destroy(&st->shards_lock);
  pthread_mutex_destroy(&st->fail_lock);
  pthread_mutex_destroy(&st->pause_lock);
}

int stream_run(const config *cfg, stream_result *result, char *err, size_t errlen) {
  static stream st_storage;
  stream *st = &st_storage;
  memset(st, 0, sizeof *st);
  memset(result, 0, sizeof *result);
  err[0] = 0;
  st->cfg = cfg;
  st->workers_n = (unsigned)cfg->threads;
  /* Writers first: a revoke must not wait for a moment when no worker is
   * inside a batch. */
  pthread_rwlockattr_t lock_attr;
  pthread_rwlockattr_init(&lock_attr);
  pthread_rwlockattr_setkind_np(&lock_attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&st->shards_lock, &lock_attr);
  pthread_rwlockattr_destroy(&lock_attr);
  pthread_mutex_init(&st->fail_lock, NULL);
  pthread_mutex_init(&st->pause_lock, NULL);
  st->fingerprint = config_fingerprint(cfg);
  double started = now_seconds();

  char merge_group[600];
  snprintf(merge_group, sizeof merge_group, "%s.merge", cfg->group);
  merge_state *ms = calloc(1, sizeof *ms);
  if (ms)
    ms->st = st;
  atomic_store(&st->waiting_for, WAITING_MERGE);
  int rc = ms && prepare_framing(st, err, errlen) == 0 ? 0 : -1;
  if (rc == 0 && cfg->snapshot_dir &&
      !(st->snapshots = snapshotter_start(cfg->snapshot_dir, outputs_durable, st))) {
    snprintf(err, errlen, "cannot start the snapshot writer thread");
    rc = -1;
  }
  if (rc == 0 && !(st->producer = new_client(cfg, RD_KAFKA_PRODUCER, NULL, NULL, st, err, errlen)))
    rc = -1;
  if (rc == 0)
    rc = prepare_topics(st, err, errlen);
  if (rc == 0 && !(st->consumer = new_client(cfg, RD_KAFKA_CONSUMER, cfg->group, on_rebalance, st,
                                             err, errlen)))
    rc = -1;
  if (rc == 0 && !(st->merger = new_client(cfg, RD_KAFKA_CONSUMER, merge_group, on_merge_rebalance,
                                           ms, err, errlen)))
    rc = -1;
  else if (rc == 0)
    ms = NULL; /* owned by the merger now */
  free(ms);
  if (rc == 0 && (subscribe(st->consumer, cfg->topic, err, errlen) < 0 ||
                  subscribe(st->merger, cfg->partials_topic, err, errlen) < 0))
    rc = -1;
  st->workers = rc == 0 ? calloc(st->workers_n, sizeof *st->workers) : NULL;
  for (unsigned i = 0; st->workers && i < st->workers_n; i++)
    if (!(st->workers[i].queue = rd_kafka_queue_new(st->consumer)))
      rc = -1;
  if (rc == 0 && !st->workers) {
    snprintf(err, errlen, "out of memory");
    rc = -1;
  }
  if (rc < 0) {
    if (!err[0])
      snprintf(err, errlen, "out of memory");
    close_stream(st);
    return -1;
  }

  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  unsigned started_workers = 0;
  for (; started_workers < st->workers_n; started_workers++) {
    worker *w = &st->workers[started_workers];
    w->st = st;
    w->index = started_workers;
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
      stream_fail(st, "cannot start a worker thread");
      break;
    }
  }
  pthread_t merge_thread;
  int merging = pthread_create(&merge_thread, NULL, merge_main, st) == 0;
  if (!merging)
    stream_fail(st, "cannot start the merge thread");

  if (!atomic_load(&st->failed))
    poll_input(st);
  double input_done = now_seconds();

  /* Stage 1 ends: workers finish their batch and publish their partials;
   * what is still queued is left to the snapshots' offsets (or, without
   * snapshots, to the next owner's replay). */
  for (unsigned i = 0; i < started_workers; i++) {
    atomic_store(&st->workers[i].stop, 1);
    rd_kafka_queue_yield(st->workers[i].queue);
  }
  for (unsigned i = 0; i < started_workers; i++)
    pthread_join(st->workers[i].thread, NULL);
  rd_kafka_consumer_close(st->consumer); /* leaves the group (revokes, publishing partials) */
  if (rd_kafka_flush(st->producer, flush_timeout_ms(st, 60000)) != RD_KAFKA_RESP_ERR_NO_ERROR)
    stream_fail(st, "partial rows or dead letters were not acknowledged within 60 s");
  atomic_store(&st->stage1_done, 1);
  if (merging)
    pthread_join(merge_thread, NULL);
  rd_kafka_consumer_close(st->merger);
  if (rd_kafka_flush(st->producer, flush_timeout_ms(st, 60000)) != RD_KAFKA_RESP_ERR_NO_ERROR)
    stream_fail(st, "total rows were not acknowledged within 60 s");

  result->messages = atomic_load(&st->messages);
  for (int r = 0; r < REASON_COUNT; r++)
    result->rejected[r] = atomic_load(&st->rejected[r]);
  result->partials = atomic_load(&st->partials);
  result->totals = atomic_load(&st->totals);
  result->seconds = now_seconds() - started;
  double first = atomic_load(&st->first_message);
  result->seconds_from_first = first ? now_seconds() - first : 0;
  result->seconds_input = first ? input_done - first : 0;
  if (st->snapshots) {
    char werr[512];
    if (snapshotter_drain(st->snapshots, werr, sizeof werr) < 0) {
      char why[700];
      snprintf(why, sizeof why, "cannot write a snapshot: %s", werr);
      stream_fail(st, why);
    }
    snapshotter_stats ss = snapshotter_get_stats(st->snapshots);
    result->snapshots_written = ss.written;
    result->snapshot_bytes = ss.bytes;
    result->snapshot_captures = st->captures;
    result->snapshot_pause_max = st->pause_max;
    result->snapshot_pause_total = st->pause_total;
    result->snapshot_loads = st->loads;
    result->snapshot_load_seconds = st->load_seconds;
  }
  rc = atomic_load(&st->failed) ? -1 : 0;
  if (rc < 0)
    snprintf(err, errlen, "%s", st->failure);
  close_stream(st);
  return rc;
}
