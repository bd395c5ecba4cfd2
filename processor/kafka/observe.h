/* observe.h — what Kafka mode shows on --metrics-listen (kafka/observe.c):
 * the counters workers keep in cache lines of their own, and the figures
 * the other threads leave for the listener (librdkafka's statistics, the
 * assignment, finished snapshots, heartbeats). Internal to kafka/ (mode.h
 * includes it). The HTTP side and the text format are metrics/'s.
 *
 * Hot path: a worker adds to its own worker_counters once per batch, with
 * relaxed loads and stores (it is their only writer: no atomic
 * read-modify-write, no lock, no syscall); the listener sums them with
 * relaxed loads. Everything else here changes at most once per rebalance,
 * snapshot or statistics interval. */
#ifndef REGSTREAM_KAFKA_OBSERVE_H
#define REGSTREAM_KAFKA_OBSERVE_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka/wire.h"
#include "metrics/metrics.h"
#include "state/snapshot.h"

/* A worker's counts (one writer: the worker), in a cache line of its own. */
typedef struct worker_counters {
  alignas(64) _Atomic uint64_t messages; /* taken: applied or dead-lettered */
  _Atomic uint64_t applied;              /* applied to a shard's state */
  _Atomic double heartbeat;              /* clock_seconds() after its last batch (or wait) */
} worker_counters;

/* The worker's batch: messages taken, of them applied. */
static inline void worker_counters_add(worker_counters *c, uint64_t messages, uint64_t applied,
                                       double now) {
  if (messages)
    atomic_store_explicit(&c->messages,
                          atomic_load_explicit(&c->messages, memory_order_relaxed) + messages,
                          memory_order_relaxed);
  if (applied)
    atomic_store_explicit(&c->applied,
                          atomic_load_explicit(&c->applied, memory_order_relaxed) + applied,
                          memory_order_relaxed);
  atomic_store_explicit(&c->heartbeat, now, memory_order_relaxed);
}

/* A partition's last snapshot written by this instance. */
typedef struct observed_snapshot {
  double at;      /* clock_seconds() when it was done; 0: none yet */
  double seconds; /* how long making it durable took */
  uint64_t bytes;
} observed_snapshot;

typedef struct kafka_observe {
  metrics_server *server; /* NULL without --metrics-listen */
  _Atomic double poll_heartbeat;
  _Atomic uint64_t rebalances;            /* assignments received */
  atomic_int assignment_seen;             /* one came at least once */
  atomic_uchar assigned[WIRE_MAX_INPUTS]; /* in the current assignment */
  /* From librdkafka's statistics of the input consumer (every
   * statistics.interval.ms) and the snapshot writers; under lock. */
  pthread_mutex_t lock;
  double stats_at;   /* when the last statistics came; 0: none yet */
  double healthy_at; /* the last statistics with a broker up and the group's coordinator up */
  int brokers_up;
  char group_state[32];
  int64_t lag[WIRE_MAX_INPUTS]; /* consumer_lag per partition, -1 unknown */
  observed_snapshot snapshots[WIRE_MAX_INPUTS];
  uint64_t snapshots_written;
} kafka_observe;

typedef struct kafka_mode kafka_mode;

/* Bind --metrics-listen (a port in use fails the start) before anything
 * else; serve once the threads run; closed by observe_free (first thing
 * mode_free does: no callback runs after it). 0, or -1 with err. */
void observe_init(kafka_mode *km);
int observe_open(kafka_mode *km, char *err, size_t errlen);
int observe_serve(kafka_mode *km, char *err, size_t errlen);
void observe_free(kafka_mode *km);

/* Input messages taken by the workers so far (applied or dead-lettered). */
uint64_t kafka_messages(kafka_mode *km);

/* The poll thread's heartbeat, once per loop. */
static inline void observe_poll_alive(kafka_observe *o, double now) {
  atomic_store_explicit(&o->poll_heartbeat, now, memory_order_relaxed);
}

/* client.c: the input consumer's statistics (statistics.interval.ms 1000
 * unless -X says otherwise) and stats callback, when metrics are on; set
 * before the -X items. 0, or -1 with err. */
int observe_client_conf(kafka_mode *km, rd_kafka_conf_t *conf, char *err, size_t errlen);
/* The input consumer's rebalance callback: rebalance_input, counted, and
 * the assignment noted. */
void observe_rebalance_input(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *parts, void *opaque);
/* A snapshot of an input partition made durable, in either store: the
 * snapshot writer's done callback, for interval snapshots and for those
 * written at once (a revoke, the stop: snapshotter_write_now). */
void observe_snapshot_done(void *ctx, const snapshot_meta *meta, int written, size_t bytes,
                           double seconds, const char *err);

#endif
