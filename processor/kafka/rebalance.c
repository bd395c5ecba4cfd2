/* rebalance.c — the input consumer's rebalances: which shards this instance
 * holds. An assigned partition gets a shard (kept from the revoke just
 * before, or opened from its snapshot) and its queue is forwarded to its
 * worker's; a revoked one is published, snapshotted and handed over. Keep
 * shard contents out of this file (kafka/shards.c, kafka/worker.c).
 *
 * Thread: librdkafka calls rebalance_input on the poll thread (from
 * rd_kafka_consumer_poll); it takes the shard table's write lock, so no
 * worker is inside a shard while it runs. */
#include "kafka/mode.h"

void rebalance_free_parked(kafka_mode *km) {
  for (int p = 0; p < MAX_PARTITIONS; p++) {
    if (km->table.parked[p])
      part_shard_free(km->table.parked[p]);
    km->table.parked[p] = NULL;
  }
}

static void assign(kafka_mode *km, rd_kafka_topic_partition_list_t *parts) {
  shard_table *tb = &km->table;
  pthread_rwlock_wrlock(&tb->lock);
  for (int i = 0; i < parts->cnt; i++) {
    int32_t p = parts->elems[i].partition;
    if (p < 0 || p >= MAX_PARTITIONS)
      continue;
    if (tb->shards[p]) { /* still ours: go on where it is */
      parts->elems[i].offset =
          tb->shards[p]->next_offset >= 0 ? tb->shards[p]->next_offset : RD_KAFKA_OFFSET_BEGINNING;
      continue;
    }
    part_shard *ps = tb->parked[p];
    if (ps) { /* ours again in the same rebalance: nobody else had it since */
      tb->parked[p] = NULL;
      parts->elems[i].offset = ps->next_offset >= 0 ? ps->next_offset : RD_KAFKA_OFFSET_BEGINNING;
    } else {
      ps = part_shard_open(km, p, &parts->elems[i].offset);
    }
    if (!ps)
      continue;
    /* The partition's messages go straight to its worker's queue. */
    rd_kafka_queue_t *pq =
        rd_kafka_queue_get_partition(km->clients.consumer, parts->elems[i].topic, p);
    if (!pq) {
      kafka_fail(km, "cannot get a partition's queue from librdkafka");
    } else {
      rd_kafka_queue_forward(pq, km->workers[(unsigned)p % km->workers_n].queue);
      rd_kafka_queue_destroy(pq);
    }
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
  /* Ours must be in the log before the new owner publishes (the latest
   * partial of a row is the newest), and every dead letter before the
   * snapshots say their records are done. */
  if (rd_kafka_flush(km->clients.producer, kafka_flush_timeout_ms(km, 30000)) !=
      RD_KAFKA_RESP_ERR_NO_ERROR)
    kafka_fail(km, "partial rows or dead letters were not acknowledged within 30 s of a revoke "
                   "(are the brokers reachable? rerun when they are: the snapshots keep the "
                   "work, nothing is lost)");
  int failed = kafka_failed(km);
  for (int i = 0; i < parts->cnt; i++) {
    int32_t p = parts->elems[i].partition;
    if (p < 0 || p >= MAX_PARTITIONS || !tb->shards[p])
      continue;
    if (tb->shards[p]->held) {
      /* Held for an unavailable schema: whoever reads it next starts at the
       * held message and holds it again if need be. A pause outlives the
       * assignment in librdkafka: lift it, or the partition never fetches
       * again once it comes back. */
      rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_list_add(one, km->opt->topic, p);
      rd_kafka_resume_partitions(km->clients.consumer, one);
      rd_kafka_topic_partition_list_destroy(one);
      tb->shards[p]->held = 0;
      registry_wait_release(km, p);
    }
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

void rebalance_input(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                     rd_kafka_topic_partition_list_t *parts, void *opaque) {
  kafka_mode *km = opaque;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    assign(km, parts); /* sets every partition's starting offset */
    rd_kafka_assign(rk, parts);
  } else {
    revoke(km, parts, rd_kafka_assignment_lost(rk));
    rd_kafka_assign(rk, NULL);
  }
}

int rebalance_all_at_eof(kafka_mode *km) {
  for (int p = 0; p < MAX_PARTITIONS; p++)
    if (km->table.shards[p] && !atomic_load(&km->table.at_eof[p]))
      return 0;
  return km->table.assignment_received;
}
