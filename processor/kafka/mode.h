/* mode.h — the state of one Kafka-mode run, shared by the files of kafka/
 * (internal: nothing outside kafka/ includes it), grouped by concern:
 *
 *   run.c        kafka_run: set-up, the poll thread (rebalances, errors,
 *                trouble, progress), the end of stage 1, teardown
 *   client.c     librdkafka clients by role, with their defaults and
 *                callbacks; topics; metadata; log ends
 *   worker.c     the worker threads: take a batch, decode, apply to a shard,
 *                dead-letter rejects, take interval snapshots; hold a
 *                partition whose next message's schema is unavailable
 *   partials.c   partial rows and progress marks of a shard, published
 *   shards.c     one input partition's shard: opened (from its snapshot),
 *                snapshotted, freed
 *   snapshot_topic.c  the snapshot store on a compacted topic
 *                (--snapshot-topic): chunks, manifests, loading, pruning
 *   rebalance.c  the input consumer's rebalances: which shards exist; kept,
 *                revoked, handed over
 *   merger.c     the merge stage's thread and rebalances (librdkafka side)
 *   observe.c    what --metrics-listen shows: the figures, health, readiness
 *                (observe.h: the workers' counters)
 *   merge.c      the merge stage's state (pure), settle.c what --exit-at-eof
 *                waits for (pure), wire.c the formats of keys and marks
 *                (pure), gap.c whether an input message or end follows what
 *                was applied (pure): unit-tested without a broker
 *                (tests/test_app_kafka_*.c)
 *
 * Threads: the poll thread (kafka_run's), one merger thread, N workers,
 * librdkafka's own, and the snapshot writer. The shard table is the only
 * state workers and the poll thread share: workers hold its lock for
 * reading while they touch shards, rebalances (poll thread) for writing. */
#ifndef REGSTREAM_KAFKA_MODE_H
#define REGSTREAM_KAFKA_MODE_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "kafka/merge.h"
#include "kafka/observe.h"
#include "kafka/run.h"
#include "kafka/settle.h"
#include "sink/dead_letter.h"
#include "source/framing.h"
#include "source/schema_registry.h"
#include "state/shard.h"
#include "state/snapshotter.h"
#include "util/latch.h"

enum {
  MAX_PARTITIONS = WIRE_MAX_INPUTS, /* input partitions */
  TAKE_BATCH = 4096,                /* messages a worker takes from its queue at once */
  OUTPUT_PARTITIONS = 6,
  QUEUE_FULL_SECONDS = 60, /* a producer queue full this long: the brokers do not take rows */
  RETRY_IDS = 16,          /* schema ids a worker retries between two batches */
};

/* One input partition's state. Touched by its worker (under the table's
 * read lock) and by rebalances (under its write lock). */
typedef struct part_shard {
  int32_t partition;
  shard state;
  rollup sent;             /* the counters last published as partials */
  int64_t next_offset;     /* the input offset after the last one applied; -1 none yet */
  int64_t eof_offset;      /* the end of the log at its last end-of-partition event taken
                              (worker.c: none past a message not applied); -1 */
  int64_t marked;          /* the offset last published in a progress mark; -1 none */
  uint64_t since_snapshot; /* messages applied since the last snapshot (or load) */
  double next_snapshot;    /* when the next one is due, with a seconds interval */
  /* Held (worker.c): the message at next_offset has a writer schema that is
   * unavailable (registry down): neither it nor anything after it is
   * applied until a lookup of held_schema answers; the partition is paused
   * meanwhile and read again from next_offset. */
  int held;
  uint32_t held_schema;
  double held_since, retry_at, backoff; /* seconds */
  /* When it was assigned (clock_seconds), until its first message is
   * applied: the worker then says how long the partition waited. 0 after. */
  double assigned_at;
  /* The offset of the message or end-of-partition event that showed the
   * last gap (kafka/gap.h): read again from next_offset; the same offset
   * seen again is the log's own gap. */
  int64_t gap_at;
} part_shard;

typedef struct kafka_mode kafka_mode;

/* A message of a batch, decoded and validated before the batch is applied
 * (so that the person states of the next messages can be prefetched). */
typedef struct decoded {
  pm_record rec;
  uint64_t hash;      /* personmap_hash(rec.person_id) when why is REASON_OK */
  reason why;         /* or FRAMING_RETRY, or WORKER_NOT_DECODED (worker.c) */
  uint32_t schema_id; /* with FRAMING_RETRY */
} decoded;

/* A schema id a worker asks the registry for again, and the answer. */
typedef struct retry_lookup {
  uint32_t schema;
  schema_status status;
} retry_lookup;

/* A worker: the queue its partitions' queues are forwarded to, consumed in
 * batches by its thread. */
typedef struct worker {
  kafka_mode *km;
  unsigned index;
  pthread_t thread;
  rd_kafka_queue_t *queue;
  atomic_int stop;
  worker_counters counters; /* its own cache line: the listener reads them */
  double next_flush;
  /* Held partitions (worker-local, a hint for decoding: the shard's held
   * says); schema lookups due for them, made between batches without the
   * table lock, and their answers. */
  uint8_t held[MAX_PARTITIONS];
  int held_n; /* of held[] set */
  int retry_n;
  retry_lookup retry[RETRY_IDS];
  char last_error[512];
  decoded batch[TAKE_BATCH];
} worker;

/* The clients: one producer (rows, marks, dead letters), the input
 * consumer (group --group) and the merge consumer ("<group>.merge"). */
typedef struct kafka_clients {
  rd_kafka_t *producer, *consumer, *merger;
  int partials_partitions;
  int input_partitions; /* of --topic at the start (client_prepare_topics) */
  int unclosed;         /* a consumer could not leave its group (the brokers did not answer) */
  int merger_assigned;  /* the merge consumer had an assignment (merger.c), the input's:
                           shard_table.assignment_received (run.c's mode_free) */
  int joined[2];        /* input, merger: members under the cooperative protocol when
                           they began to close (run.c) */
} kafka_clients;

/* The input partitions' shards. */
typedef struct shard_table {
  /* Writers first: a revoke must not wait for a moment when no worker is
   * inside a batch. */
  pthread_rwlock_t lock;
  part_shard *shards[MAX_PARTITIONS];
  atomic_int at_eof[MAX_PARTITIONS]; /* set by the partition's worker */
  /* Revokes so far, and the count at each partition's last revoke: a worker
   * drops the messages of a batch taken before a revoke of their partition
   * (read under the read lock, written under the write lock). */
  _Atomic uint64_t revokes;
  uint64_t revoked_at[MAX_PARTITIONS];
  int assignment_received; /* poll thread only */
  /* Shards revoked (not lost) in the rebalance under way: one assigned to
   * us again goes on where it was instead of being rebuilt (the eager
   * protocol revokes every partition on every rebalance). Poll thread. */
  part_shard *parked[MAX_PARTITIONS];
} shard_table;

/* Broker trouble: librdkafka retries by itself; the run says so every
 * TROUBLE_REPORT_SECONDS and, with --exit-at-eof, gives up after
 * TROUBLE_GIVE_UP_SECONDS without progress. */
enum { TROUBLE_REPORT_SECONDS = 10, TROUBLE_GIVE_UP_SECONDS = 120 };
typedef struct trouble {
  pthread_mutex_t lock;
  double since, reported; /* first trouble, last report; 0: none yet */
  double latest;          /* the last trouble (readiness, observe.c) */
  char what[256];
  double progress_at;         /* poll thread: when progress was last seen */
  uint64_t progress_messages; /* poll thread: the count then */
} trouble;

/* Partitions held for an unavailable schema (worker.c sets, run.c says so
 * every REGISTRY_REPORT_SECONDS and, with --exit-at-eof, fails the run after
 * --registry-timeout). Under lock; held is read without it. */
enum { REGISTRY_REPORT_SECONDS = 10, RETRY_REPORT_MAX_SECONDS = 10 /* the longest backoff */ };
typedef struct registry_wait {
  pthread_mutex_t lock;
  atomic_int held;                /* partitions held now */
  int64_t offset[MAX_PARTITIONS]; /* where a held partition waits; -1 not held */
  uint32_t schema[MAX_PARTITIONS];
  double since[MAX_PARTITIONS];
  char error[512]; /* the last answer (no secret: schema_registry.c) */
  double reported;
} registry_wait;

/* Messages taken are counted per worker (worker_counters: kafka_messages). */
typedef struct kafka_stats {
  _Atomic uint64_t partials, totals, marks_read;
  _Atomic double first_message; /* when the first input message came */
  /* snapshots: the pauses they cost, and loads */
  pthread_mutex_t lock;
  uint64_t captures, loads;
  double pause_max, pause_total, load_seconds;
} kafka_stats;

struct kafka_mode {
  const kafka_run_options *opt;
  uint64_t fingerprint;
  kafka_clients clients;
  /* decoding input values */
  framing frame;
  pm_plan *plain_plan;
  schema_source *schemas;
  unsigned workers_n;
  worker *workers;
  shard_table table;
  merge_state *merge; /* the merger thread's */
  settle settle;
  dead_letter *dead;      /* onto --dead-letter-topic */
  snapshot_store *store;  /* --snapshot-dir or --snapshot-topic; NULL without snapshots */
  snapshotter *snapshots; /* its writer; NULL without snapshots */
  latch failure;          /* the first failure stops the run */
  trouble trouble;
  registry_wait waits;
  atomic_int stage1_done;
  kafka_stats stats;
  kafka_observe observe; /* --metrics-listen */
};

/* run.c */
static inline int kafka_failed(const kafka_mode *km) {
  return latch_failed(&km->failure);
}
void kafka_fail(kafka_mode *km, const char *why);
/* When e (a librdkafka call's error, NULL: none) is set, fail the run with
 * "what: its text", and destroy it. */
void kafka_fail_error(kafka_mode *km, rd_kafka_error_t *e, const char *what);
void kafka_trouble(kafka_mode *km, const char *what);
/* A cause no retry mends noted for client rk (kafka_cause) while the run
 * has not applied anything yet: 1 with the one-line reason in cause. */
int kafka_cause_fatal(kafka_mode *km, rd_kafka_t *rk, char *cause, size_t len);
/* How long to wait for the producer: once the run has failed, briefly
 * (what is lost is produced again after the restart, from the snapshots). */
int kafka_flush_timeout_ms(kafka_mode *km, int normal);

/* client.c */
typedef enum { CLIENT_PRODUCER, CLIENT_INPUT, CLIENT_MERGER } client_role;
rd_kafka_t *client_new(kafka_mode *km, client_role role, char *err, size_t errlen);
int client_subscribe(rd_kafka_t *rk, const char *topic, char *err, size_t errlen);
/* The input topic exists; the output, partials and dead-letter topics are
 * made when missing (the first two compacted). Sets the partition counts. */
int client_prepare_topics(kafka_mode *km, char *err, size_t errlen);
/* The ends of partitions parts[0..n) of topic, asked through the producer
 * (a consumer's connection may be holding a fetch). 0, or -1. */
int client_log_ends(kafka_mode *km, const char *topic, const int32_t *parts, int n, int64_t *ends);
/* Where the log of partition p of topic starts now (its low watermark:
 * above 0 once retention or DeleteRecords removed records). 0, or -1. */
int client_log_start(kafka_mode *km, const char *topic, int32_t p, int64_t *start);
/* Read partition p of topic again from offset (client rk): the seek also
 * makes librdkafka drop what it still holds of p. A failure fails the run
 * with "what: why". */
void client_seek(kafka_mode *km, rd_kafka_t *rk, const char *topic, int32_t p, int64_t offset,
                 const char *what);
/* Produce one row (or a tombstone: value NULL) with a copy of key and value;
 * waits while the queue is full; a failure fails the run. */
void client_produce(kafka_mode *km, const char *topic, int32_t partition, const char *key,
                    size_t klen, const uint8_t *value, size_t vlen);

/* worker.c */
void *worker_main(void *arg);

/* run.c: a partition held at offset for schema (error: why), released. */
void registry_wait_hold(kafka_mode *km, int32_t p, int64_t offset, uint32_t schema,
                        const char *error);
void registry_wait_error(kafka_mode *km, const char *error);
void registry_wait_release(kafka_mode *km, int32_t p);

/* partials.c */
void partials_publish(kafka_mode *km, part_shard *ps);
/* Every shard of worker w, then schedules the next flush. */
void partials_publish_worker(worker *w);

/* rebalance.c */
void rebalance_input(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                     rd_kafka_topic_partition_list_t *parts, void *opaque);
/* Every assigned partition is at its end (none assigned counts, once an
 * assignment came). Poll thread. */
int rebalance_all_at_eof(kafka_mode *km);
void rebalance_free_parked(kafka_mode *km);
/* "[0,3,5]" of the partitions of parts (NULL: "[]") into out (len >= 32);
 * "..." where out is full. For the rebalance lines of both groups. */
void partition_list_text(const rd_kafka_topic_partition_list_t *parts, char *out, size_t len);

/* shards.c */
/* A new shard for partition p: from its newest valid snapshot when there
 * is one, else empty from the beginning of the log. Sets *offset (where to
 * read from). NULL (the run failed) when refused or memory is short. */
part_shard *part_shard_open(kafka_mode *km, int32_t p, int64_t *offset);
void part_shard_free(part_shard *ps);
/* Snapshots of a shard: an interval one captured now if due (its worker),
 * or one written at once (revoke, shutdown). */
void shard_snapshot_if_due(kafka_mode *km, part_shard *ps, double now);
void shard_snapshot_now(kafka_mode *km, part_shard *ps);
/* Whether the snapshot writer has failed (wait: after writing everything
 * queued); a failure fails the run. */
void shard_snapshots_check(kafka_mode *km, int wait);

/* merger.c */
void merger_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *parts, void *opaque);
void *merger_main(void *arg);

#endif
