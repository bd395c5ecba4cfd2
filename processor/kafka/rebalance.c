/* rebalance.c — the input consumer's rebalances: which shards this instance
 * holds. An assigned partition gets a shard (opened from its snapshot, or,
 * eager, kept from the revoke just before) and its queue is forwarded to
 * its worker's; a revoked one is published, snapshotted and handed over.
 * Keep shard contents out of this file (kafka/shards.c, kafka/worker.c).
 *
 * Two protocols, as librdkafka says (rd_kafka_rebalance_protocol):
 *   COOPERATIVE (cooperative-sticky, the default: client.c): a rebalance
 *     names only the partitions that move. Those assigned are opened and
 *     rd_kafka_incremental_assign'ed, those revoked handed over and
 *     rd_kafka_incremental_unassign'ed; the others (kept) go on applying:
 *     the table's write lock is held only to take shards in or out and,
 *     on a revoke, while the revoked ones' partials are flushed. Snapshots
 *     are loaded and written outside it.
 *   EAGER (range, roundrobin: -X partition.assignment.strategy=...): every
 *     rebalance revokes everything, under the write lock, and assigns
 *     anew; a shard revoked and assigned back in the same rebalance goes on
 *     where it was (parked).
 * Each rebalance event is told in one line: "rebalance: assigned [..],
 * revoked [..], kept N" (observe.c counts them for the metrics).
 *
 * Thread: librdkafka calls rebalance_input on the poll thread (from
 * rd_kafka_consumer_poll, or close_consumer in run.c), the only writer of
 * the shard table: it reads the table without the lock. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/mode.h"
#include "util/clock.h"
#include "util/log.h"

void rebalance_free_parked(kafka_mode *km) {
  for (int p = 0; p < MAX_PARTITIONS; p++) {
    if (km->table.parked[p])
      part_shard_free(km->table.parked[p]);
    km->table.parked[p] = NULL;
  }
}

static int held_count(const shard_table *tb) {
  int n = 0;
  for (int p = 0; p < MAX_PARTITIONS; p++)
    n += tb->shards[p] != NULL;
  return n;
}

static void tell(kafka_mode *km, const rd_kafka_topic_partition_list_t *assigned,
                 const rd_kafka_topic_partition_list_t *revoked, int kept, const char *how) {
  if (km->opt->quiet)
    return;
  char a[600], r[600];
  partition_list_text(assigned, a, sizeof a);
  partition_list_text(revoked, r, sizeof r);
  log_msg(LOG_INFO, "kafka", "rebalance: assigned %s, revoked %s, kept %d (%s)", a, r, kept, how);
}

/* The partition's messages go straight to its worker's queue (before it is
 * assigned: one on the consumer's own queue would be out of order). */
static void forward_queue(kafka_mode *km, const char *topic, int32_t p) {
  rd_kafka_queue_t *pq = rd_kafka_queue_get_partition(km->clients.consumer, topic, p);
  if (!pq) {
    kafka_fail(km, "cannot get a partition's queue from librdkafka");
    return;
  }
  rd_kafka_queue_forward(pq, km->workers[(unsigned)p % km->workers_n].queue);
  rd_kafka_queue_destroy(pq);
}

static int64_t resume_offset(const part_shard *ps) {
  return ps->next_offset >= 0 ? ps->next_offset : RD_KAFKA_OFFSET_BEGINNING;
}

/* A partition held for an unavailable schema, revoked: whoever reads it next
 * starts at the held message and holds it again if need be. A pause
 * outlives the assignment in librdkafka: lift it, or the partition never
 * fetches again once it comes back. */
static void unhold(kafka_mode *km, part_shard *ps) {
  if (!ps->held)
    return;
  rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(one, km->opt->topic, ps->partition);
  rd_kafka_resume_partitions(km->clients.consumer, one);
  rd_kafka_topic_partition_list_destroy(one);
  ps->held = 0;
  registry_wait_release(km, ps->partition);
}

/* Partials and dead letters of the revoked shards (published just before)
 * in the log before the new owner publishes (the latest partial of a row
 * is the newest), and before the snapshots say their records are done. */
static void flush_revoked(kafka_mode *km) {
  if (rd_kafka_flush(km->clients.producer, kafka_flush_timeout_ms(km, 30000)) !=
      RD_KAFKA_RESP_ERR_NO_ERROR)
    kafka_fail(km, "partial rows or dead letters were not acknowledged within 30 s of a revoke "
                   "(are the brokers reachable? rerun when they are: the snapshots keep the "
                   "work, nothing is lost)");
}

/* ---- eager ---- */

static void assign(kafka_mode *km, rd_kafka_topic_partition_list_t *parts) {
  shard_table *tb = &km->table;
  pthread_rwlock_wrlock(&tb->lock);
  for (int i = 0; i < parts->cnt; i++) {
    int32_t p = parts->elems[i].partition;
    if (p < 0 || p >= MAX_PARTITIONS)
      continue;
    if (tb->shards[p]) { /* still ours: go on where it is */
      parts->elems[i].offset = resume_offset(tb->shards[p]);
      continue;
    }
    part_shard *ps = tb->parked[p];
    if (ps) { /* ours again in the same rebalance: nobody else had it since */
      tb->parked[p] = NULL;
      parts->elems[i].offset = resume_offset(ps);
    } else {
      ps = part_shard_open(km, p, &parts->elems[i].offset);
    }
    if (!ps)
      continue;
    forward_queue(km, parts->elems[i].topic, p);
    ps->assigned_at = clock_seconds();
    tb->shards[p] = ps;
    atomic_store(&tb->at_eof[p], 0);
  }
  rebalance_free_parked(km); /* the ones that went to other instances */
  tb->assignment_received = 1;
  pthread_rwlock_unlock(&tb->lock);
}

/* A revoked shard is published, snapshotted and dropped once no worker is
 * inside it (the write lock). Its messages still queued are not applied:
 * its snapshot says where they begin, and a later owner reads them again
 * (one of ours skips those below the shard's next offset). */
static void revoke(kafka_mode *km, const rd_kafka_topic_partition_list_t *parts, int lost) {
  shard_table *tb = &km->table;
  pthread_rwlock_wrlock(&tb->lock);
  uint64_t revoke = atomic_fetch_add(&tb->revokes, 1) + 1;
  /* No worker is inside a shard now, so none can queue an image: after the
   * drain every interval snapshot taken so far is on disk. */
  shard_snapshots_check(km, 1);
  /* After a failure nothing more leaves: a failed message must not reach
   * a snapshot or a partial row. A lost assignment (session timed out)
   * may have a new owner publishing already: ours would be older. Its
   * partials stay on the topic: the new owner loads our snapshot (or
   * rebuilds the same numbers) and republishes them, nothing double counts. */
  for (int i = 0; i < parts->cnt; i++) {
    int32_t p = parts->elems[i].partition;
    if (p >= 0 && p < MAX_PARTITIONS && tb->shards[p] && !lost && !kafka_failed(km))
      partials_publish(km, tb->shards[p]);
  }
  flush_revoked(km);
  int failed = kafka_failed(km);
  for (int i = 0; i < parts->cnt; i++) {
    int32_t p = parts->elems[i].partition;
    if (p < 0 || p >= MAX_PARTITIONS || !tb->shards[p])
      continue;
    unhold(km, tb->shards[p]);
    if (!failed)
      shard_snapshot_now(km, tb->shards[p]);
    if (!failed && !lost) /* kept until the assignment that follows */
      tb->parked[p] = tb->shards[p];
    else
      part_shard_free(tb->shards[p]);
    tb->shards[p] = NULL;
    tb->revoked_at[p] = revoke;
  }
  pthread_rwlock_unlock(&tb->lock);
}

/* ---- cooperative ---- */

/* Only the partitions in parts are new: their shards are opened (snapshot
 * loads, log-start queries) while the workers go on with the kept ones,
 * then taken into the table under the write lock, then assigned. */
static void assign_incremental(kafka_mode *km, rd_kafka_t *rk,
                               rd_kafka_topic_partition_list_t *parts) {
  shard_table *tb = &km->table;
  int added = 0;
  part_shard **opened = calloc(parts->cnt > 0 ? (size_t)parts->cnt : 1, sizeof *opened);
  if (!opened) {
    kafka_fail(km, "out of memory in a rebalance");
  } else {
    for (int i = 0; i < parts->cnt; i++) {
      int32_t p = parts->elems[i].partition;
      if (p < 0 || p >= MAX_PARTITIONS)
        continue;
      if (tb->shards[p]) { /* ours already (librdkafka does not do that): go on */
        parts->elems[i].offset = resume_offset(tb->shards[p]);
        continue;
      }
      /* One not opened (the run failed: it is stopping) is still assigned
       * (the protocol wants the whole assignment taken), at its end: it
       * fetches nothing, and asks for no committed offset, of which there
       * is none (auto.offset.reset=error would report that as trouble, a
       * line more after the one that says why the run stops). */
      if (kafka_failed(km) || !(opened[i] = part_shard_open(km, p, &parts->elems[i].offset))) {
        parts->elems[i].offset = RD_KAFKA_OFFSET_END;
        continue;
      }
      forward_queue(km, parts->elems[i].topic, p);
    }
    double now = clock_seconds();
    pthread_rwlock_wrlock(&tb->lock);
    for (int i = 0; i < parts->cnt; i++) {
      if (!opened[i])
        continue;
      added++;
      int32_t p = opened[i]->partition;
      opened[i]->assigned_at = now;
      tb->shards[p] = opened[i];
      atomic_store(&tb->at_eof[p], 0);
    }
    tb->assignment_received = 1;
    pthread_rwlock_unlock(&tb->lock);
    free(opened);
  }
  kafka_fail_error(km, rd_kafka_incremental_assign(rk, parts),
                   "cannot take the partitions assigned in a rebalance");
  tell(km, parts, NULL, held_count(tb) - added, "cooperative-sticky");
}

/* Only the partitions in parts go: under the write lock (a worker inside a
 * batch finishes it first) their partials are published and flushed and
 * their shards taken out; the kept ones wait only for that. Then, without
 * the lock, each is snapshotted (its new owner resumes there) and freed,
 * and the partitions are unassigned. Lost ones (session timed out) publish
 * nothing and are not snapshotted, as in revoke. */
static void revoke_incremental(kafka_mode *km, rd_kafka_t *rk,
                               const rd_kafka_topic_partition_list_t *parts, int lost) {
  shard_table *tb = &km->table;
  double started = clock_seconds();
  part_shard **gone = calloc(parts->cnt > 0 ? (size_t)parts->cnt : 1, sizeof *gone);
  if (!gone)
    kafka_fail(km, "out of memory in a rebalance");
  pthread_rwlock_wrlock(&tb->lock);
  double locked = clock_seconds();
  uint64_t revoke = atomic_fetch_add(&tb->revokes, 1) + 1;
  /* A queued interval image of a revoked shard is dropped by its revoke
   * snapshot (snapshotter_forget); kept shards' images go on being written. */
  shard_snapshots_check(km, 0);
  for (int i = 0; i < parts->cnt; i++) {
    int32_t p = parts->elems[i].partition;
    if (p >= 0 && p < MAX_PARTITIONS && tb->shards[p] && !lost && !kafka_failed(km))
      partials_publish(km, tb->shards[p]);
  }
  if (!lost)
    flush_revoked(km);
  for (int i = 0; i < parts->cnt; i++) {
    int32_t p = parts->elems[i].partition;
    if (p < 0 || p >= MAX_PARTITIONS || !tb->shards[p])
      continue;
    unhold(km, tb->shards[p]);
    if (gone)
      gone[i] = tb->shards[p];
    else
      part_shard_free(tb->shards[p]);
    tb->shards[p] = NULL;
    tb->revoked_at[p] = revoke;
  }
  pthread_rwlock_unlock(&tb->lock);
  double paused = clock_seconds() - locked;
  for (int i = 0; gone && i < parts->cnt; i++) {
    if (!gone[i])
      continue;
    if (!lost && !kafka_failed(km))
      shard_snapshot_now(km, gone[i]);
    part_shard_free(gone[i]);
  }
  free(gone);
  /* Unassigned only now: librdkafka rejoins the group once it is, and the
   * new owner must find the snapshot. */
  kafka_fail_error(km, rd_kafka_incremental_unassign(rk, parts),
                   "cannot give up the partitions revoked in a rebalance");
  char how[160];
  snprintf(how, sizeof how, "cooperative-sticky%s; %.0f ms, kept partitions paused %.1f ms",
           lost ? ", lost" : "", (clock_seconds() - started) * 1000, paused * 1000);
  tell(km, NULL, parts, held_count(tb), how);
}

void rebalance_input(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                     rd_kafka_topic_partition_list_t *parts, void *opaque) {
  kafka_mode *km = opaque;
  const char *protocol = rd_kafka_rebalance_protocol(rk);
  int cooperative = protocol && !strcmp(protocol, "COOPERATIVE");
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    if (cooperative) {
      assign_incremental(km, rk, parts);
      return;
    }
    assign(km, parts); /* sets every partition's starting offset */
    rd_kafka_assign(rk, parts);
    tell(km, parts, NULL, 0, "eager");
  } else if (cooperative) {
    revoke_incremental(km, rk, parts, rd_kafka_assignment_lost(rk));
  } else {
    double started = clock_seconds();
    int lost = rd_kafka_assignment_lost(rk);
    revoke(km, parts, lost);
    rd_kafka_assign(rk, NULL);
    char how[120];
    snprintf(how, sizeof how, "eager%s: every partition stops; %.0f ms", lost ? ", lost" : "",
             (clock_seconds() - started) * 1000);
    tell(km, NULL, parts, 0, how);
  }
}

int rebalance_all_at_eof(kafka_mode *km) {
  for (int p = 0; p < MAX_PARTITIONS; p++)
    if (km->table.shards[p] && !atomic_load(&km->table.at_eof[p]))
      return 0;
  return km->table.assignment_received;
}

/* "[0,3,5]" of the partitions of parts into out (len >= 32). */
void partition_list_text(const rd_kafka_topic_partition_list_t *parts, char *out, size_t len) {
  size_t o = 0;
  out[o++] = '[';
  for (int i = 0; parts && i < parts->cnt; i++) {
    if (o + 20 >= len) {
      memcpy(out + o, "...", 3);
      o += 3;
      break;
    }
    int n = snprintf(out + o, len - o, "%s%" PRId32, i ? "," : "", parts->elems[i].partition);
    o += n > 0 ? (size_t)n : 0;
  }
  out[o++] = ']';
  out[o] = 0;
}
