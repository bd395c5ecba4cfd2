/* shards.c — one input partition's shard (part_shard) over its life: opened
 * from its newest valid snapshot (the snapshot, not the group's committed
 * offset, says where its input resumes) or empty from the beginning of the
 * log; snapshotted every --snapshot-interval by a capture on its worker
 * (the only pause) written by the snapshot writer thread, and at once when
 * it is revoked or the run stops; freed. Which shards exist is
 * kafka/rebalance.c's; where snapshots are kept is the snapshot store's
 * (state/store.h: a folder, or the topic of kafka/snapshot_topic.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka/mode.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

static void snapshot_failed(kafka_mode *km, const char *err);
static int replayable(kafka_mode *km, int32_t p, int64_t resume, int from_snapshot);

/* The snapshot shard id of input partition p: "kafka.<topic>.<p>". */
static void shard_id_of(const kafka_mode *km, int32_t p, char id[SNAPSHOT_SHARD_ID_MAX]) {
  snprintf(id, SNAPSHOT_SHARD_ID_MAX, "kafka.%s.%" PRId32, km->opt->topic, p);
}

static void meta_of(const kafka_mode *km, const part_shard *ps, snapshot_meta *meta) {
  memset(meta, 0, sizeof *meta);
  meta->fingerprint = km->fingerprint;
  shard_id_of(km, ps->partition, meta->shard_id);
  meta->position = ps->next_offset;
}

part_shard *part_shard_open(kafka_mode *km, int32_t p, int64_t *offset) {
  const kafka_run_options *o = km->opt;
  part_shard *ps = calloc_aligned(alignof(part_shard), 1, sizeof *ps); /* shard.h: aligned */
  if (!ps || shard_init(&ps->state, &o->rules, 0) < 0) {
    free(ps);
    kafka_fail(km, "out of memory for a new shard");
    return NULL;
  }
  ps->partition = p;
  ps->next_offset = -1;
  ps->eof_offset = -1;
  ps->marked = -1;
  rollup_init(&ps->sent);
  *offset = RD_KAFKA_OFFSET_BEGINNING;
  if (!km->store) {
    if (replayable(km, p, 0, 0) < 0) {
      part_shard_free(ps);
      return NULL;
    }
    return ps;
  }
  snapshot_meta meta;
  char id[SNAPSHOT_SHARD_ID_MAX], err[700];
  shard_id_of(km, p, id);
  double started = clock_seconds();
  int loaded =
      snapshot_store_load(km->store, id, km->fingerprint, &ps->state, &meta, err, sizeof err);
  double took = clock_seconds() - started;
  if (loaded < 0) { /* refused: this shard must never run */
    kafka_fail(km, err);
    part_shard_free(ps);
    return NULL;
  }
  if (replayable(km, p, loaded == 1 ? meta.position : 0, loaded == 1) < 0) {
    part_shard_free(ps);
    return NULL;
  }
  if (loaded == 1) {
    ps->next_offset = meta.position;
    *offset = meta.position;
    km->stats.loads++;
    km->stats.load_seconds += took;
    if (!o->quiet)
      log_fields(LOG_INFO, "snapshot",
                 json_pack("{s:i,s:I,s:I,s:o}", "partition", (int)p, "offset",
                           (json_int_t)meta.position, "persons", (json_int_t)meta.persons,
                           "load_seconds", log_real(took)),
                 "partition %" PRId32 " resumes at offset %" PRId64 " from its snapshot (%" PRIu64
                 " persons, loaded in %.0f ms)",
                 p, meta.position, meta.persons, took * 1000);
  }
  ps->next_snapshot = clock_seconds() + o->snapshots.seconds;
  return ps;
}

/* A partition can be replayed exactly only from a point its log still
 * holds: the offset its snapshot resumes at (resume), or offset 0 without
 * one. 0 when it can; else the run fails, having applied and published
 * nothing of it. */
static int replayable(kafka_mode *km, int32_t p, int64_t resume, int from_snapshot) {
  const kafka_run_options *o = km->opt;
  int64_t start;
  int asked = 0; /* a leader moving during the rebalance fails a query: ask again */
  while (client_log_start(km, o->topic, p, &start) < 0 && ++asked < 3) {
    struct timespec pause = {1, 0};
    nanosleep(&pause, NULL);
  }
  if (asked == 3) {
    latch_setf(&km->failure,
               "input topic %s partition %" PRId32 ": cannot read where its log starts (are the "
               "brokers at %s reachable? rerun when they are)",
               o->topic, p, o->brokers);
    return -1;
  }
  if (start <= resume)
    return 0;
  char where[160];
  if (from_snapshot)
    snprintf(where, sizeof where, "its newest snapshot resumes at offset %" PRId64, resume);
  else
    snprintf(where, sizeof where, "no snapshot covers it, so it would be replayed from offset 0");
  latch_setf(
      &km->failure,
      "input topic %s partition %" PRId32 " starts at offset %" PRId64 " (the records "
      "before it were removed by retention or DeleteRecords) but %s: it cannot be "
      "replayed exactly, and nothing is published for it. Restore this partition's "
      "snapshots (--snapshot-dir or --snapshot-topic), or reprocess from the container files with "
      "regstream run --input FILE.avro ...",
      o->topic, p, start, where);
  return -1;
}

void part_shard_free(part_shard *ps) {
  shard_free(&ps->state);
  rollup_free(&ps->sent);
  free(ps);
}

/* Capture ps on its owner's thread and hand the image to the writer. */
static void capture(kafka_mode *km, part_shard *ps) {
  snapshot_meta meta;
  meta_of(km, ps, &meta);
  double started = clock_seconds();
  snapshot_image *img = snapshot_capture(&ps->state, &meta);
  double pause = clock_seconds() - started;
  if (!img) {
    kafka_fail(km, "out of memory while capturing a snapshot");
    return;
  }
  snapshotter_submit(km->snapshots, img);
  ps->since_snapshot = 0;
  ps->next_snapshot = clock_seconds() + km->opt->snapshots.seconds;
  pthread_mutex_lock(&km->stats.lock);
  km->stats.captures++;
  km->stats.pause_total += pause;
  if (pause > km->stats.pause_max)
    km->stats.pause_max = pause;
  pthread_mutex_unlock(&km->stats.lock);
}

void shard_snapshot_if_due(kafka_mode *km, part_shard *ps, double now) {
  const snapshot_policy *sp = &km->opt->snapshots;
  if (!km->snapshots || ps->since_snapshot == 0 || ps->next_offset < 0 || kafka_failed(km))
    return;
  if (sp->records ? ps->since_snapshot >= sp->records : now >= ps->next_snapshot)
    capture(km, ps);
}

void shard_snapshot_now(kafka_mode *km, part_shard *ps) {
  if (!km->snapshots || ps->since_snapshot == 0 || ps->next_offset < 0)
    return;
  snapshot_meta meta;
  meta_of(km, ps, &meta);
  snapshot_image *img = snapshot_capture(&ps->state, &meta);
  if (!img) {
    kafka_fail(km, "out of memory while capturing a snapshot");
    return;
  }
  char err[512];
  if (snapshotter_write_now(km->snapshots, img, err, sizeof err) < 0) {
    snapshot_failed(km, err);
    return;
  }
  ps->since_snapshot = 0; /* img is the writer's now (freed there) */
}

/* A snapshot that could not be written stops the run, with either store:
 * what it should have kept would be lost at the next crash. (A topic that
 * does not acknowledge is broker trouble, not bad data: its message says
 * so, and the restart resumes from the snapshots acknowledged before.) */
static void snapshot_failed(kafka_mode *km, const char *err) {
  latch_setf(&km->failure, "cannot write a snapshot: %s", err);
}

void shard_snapshots_check(kafka_mode *km, int wait) {
  char err[512];
  if (km->snapshots && (wait ? snapshotter_drain(km->snapshots, err, sizeof err)
                             : snapshotter_check(km->snapshots, err, sizeof err)) < 0)
    snapshot_failed(km, err);
}
