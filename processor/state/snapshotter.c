/* snapshotter.c — the background writer of snapshot images: a bounded queue
 * guarded by one mutex (touched once per snapshot, never per record) and one
 * thread that encodes, compresses and writes through the snapshot store
 * (store.h: a directory or a topic, the same for this file). What a
 * snapshot holds and where it goes are snapshot.c's and the store's. */
#include "state/snapshotter.h"
#include "util/clock.h"
#include "util/latch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { QUEUE_MAX = 8 };

struct snapshotter {
  snapshot_store *store;
  int owned; /* store made by snapshotter_start, freed with it */
  snapshotter_gate gate;
  snapshotter_done done;
  void *gate_ctx;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t changed;
  snapshot_image *queue[QUEUE_MAX];
  int count;
  const snapshot_image *writing; /* taken from the queue, being written */
  int stop;
  latch failure; /* the first write failure */
  snapshotter_stats stats;
};

/* Write img through the store (any thread), count it and tell done. */
static int write_one(snapshotter *sn, const snapshot_image *img, char *err, size_t errlen) {
  size_t bytes = 0;
  double started = clock_seconds();
  int rc = snapshot_store_save(sn->store, img, &bytes, err, errlen);
  double took = clock_seconds() - started;
  if (sn->done)
    sn->done(sn->gate_ctx, snapshot_image_meta(img), rc < 0 ? -1 : 1, bytes, took,
             rc < 0 ? err : NULL);
  if (rc == 0) {
    pthread_mutex_lock(&sn->lock);
    sn->stats.written++;
    sn->stats.bytes += bytes;
    sn->stats.seconds += took;
    pthread_mutex_unlock(&sn->lock);
  }
  return rc;
}

static void *writer_main(void *arg) {
  snapshotter *sn = arg;
  pthread_mutex_lock(&sn->lock);
  for (;;) {
    while (sn->count == 0 && !sn->stop)
      pthread_cond_wait(&sn->changed, &sn->lock);
    if (sn->count == 0)
      break;
    snapshot_image *img = sn->queue[0];
    memmove(sn->queue, sn->queue + 1, (size_t)(sn->count - 1) * sizeof *sn->queue);
    sn->count--;
    sn->writing = img;
    pthread_cond_broadcast(&sn->changed);
    pthread_mutex_unlock(&sn->lock);

    char err[512];
    int gated = sn->gate && sn->gate(sn->gate_ctx) < 0;
    int rc = gated ? 0 : write_one(sn, img, err, sizeof err);
    if (gated && sn->done)
      sn->done(sn->gate_ctx, snapshot_image_meta(img), 0, 0, 0, NULL);

    pthread_mutex_lock(&sn->lock);
    sn->writing = NULL; /* freed under the lock: snapshotter_forget reads it */
    snapshot_image_free(img);
    if (rc < 0)
      latch_set(&sn->failure, err);
    else if (gated)
      sn->stats.gated++;
    pthread_cond_broadcast(&sn->changed);
  }
  pthread_mutex_unlock(&sn->lock);
  return NULL;
}

snapshotter *snapshotter_start(const char *dir, snapshotter_gate gate, snapshotter_done done,
                               void *ctx) {
  snapshot_store *store = snapshot_store_dir(dir);
  snapshotter *sn = store ? snapshotter_start_store(store, gate, done, ctx) : NULL;
  if (!sn) {
    snapshot_store_free(store);
    return NULL;
  }
  sn->owned = 1;
  return sn;
}

snapshotter *snapshotter_start_store(snapshot_store *store, snapshotter_gate gate,
                                     snapshotter_done done, void *ctx) {
  snapshotter *sn = calloc(1, sizeof *sn);
  if (!sn)
    return NULL;
  sn->store = store;
  sn->gate = gate;
  sn->done = done;
  sn->gate_ctx = ctx;
  pthread_mutex_init(&sn->lock, NULL);
  pthread_cond_init(&sn->changed, NULL);
  latch_init(&sn->failure);
  if (pthread_create(&sn->thread, NULL, writer_main, sn) != 0) {
    pthread_mutex_destroy(&sn->lock);
    pthread_cond_destroy(&sn->changed);
    latch_destroy(&sn->failure);
    free(sn);
    return NULL;
  }
  return sn;
}

static int same_shard(const snapshot_image *a, const char *shard_id) {
  return strcmp(snapshot_image_meta(a)->shard_id, shard_id) == 0;
}

void snapshotter_submit(snapshotter *sn, snapshot_image *img) {
  const char *id = snapshot_image_meta(img)->shard_id;
  pthread_mutex_lock(&sn->lock);
  for (int i = 0; i < sn->count; i++) {
    if (same_shard(sn->queue[i], id)) {
      snapshot_image_free(sn->queue[i]); /* a newer image of it supersedes this one */
      sn->queue[i] = img;
      sn->stats.replaced++;
      pthread_mutex_unlock(&sn->lock);
      return;
    }
  }
  while (sn->count == QUEUE_MAX)
    pthread_cond_wait(&sn->changed, &sn->lock);
  sn->queue[sn->count++] = img;
  pthread_cond_broadcast(&sn->changed);
  pthread_mutex_unlock(&sn->lock);
}

int snapshotter_drain(snapshotter *sn, char *err, size_t errlen) {
  pthread_mutex_lock(&sn->lock);
  while (sn->count > 0 || sn->writing)
    pthread_cond_wait(&sn->changed, &sn->lock);
  pthread_mutex_unlock(&sn->lock);
  return snapshotter_check(sn, err, errlen);
}

int snapshotter_check(snapshotter *sn, char *err, size_t errlen) {
  if (!latch_failed(&sn->failure))
    return 0;
  latch_reason(&sn->failure, err, errlen);
  return -1;
}

void snapshotter_forget(snapshotter *sn, const char *shard_id) {
  pthread_mutex_lock(&sn->lock);
  int kept = 0;
  for (int i = 0; i < sn->count; i++) {
    if (same_shard(sn->queue[i], shard_id))
      snapshot_image_free(sn->queue[i]);
    else
      sn->queue[kept++] = sn->queue[i];
  }
  sn->count = kept;
  while (sn->writing && same_shard(sn->writing, shard_id))
    pthread_cond_wait(&sn->changed, &sn->lock);
  pthread_cond_broadcast(&sn->changed);
  pthread_mutex_unlock(&sn->lock);
}

int snapshotter_write_now(snapshotter *sn, snapshot_image *img, char *err, size_t errlen) {
  snapshotter_forget(sn, snapshot_image_meta(img)->shard_id);
  int rc = write_one(sn, img, err, errlen);
  snapshot_image_free(img);
  return rc;
}

snapshotter_stats snapshotter_get_stats(snapshotter *sn) {
  pthread_mutex_lock(&sn->lock);
  snapshotter_stats s = sn->stats;
  pthread_mutex_unlock(&sn->lock);
  return s;
}

void snapshotter_stop(snapshotter *sn) {
  if (!sn)
    return;
  pthread_mutex_lock(&sn->lock);
  sn->stop = 1;
  pthread_cond_broadcast(&sn->changed);
  pthread_mutex_unlock(&sn->lock);
  pthread_join(sn->thread, NULL);
  pthread_mutex_destroy(&sn->lock);
  pthread_cond_destroy(&sn->changed);
  latch_destroy(&sn->failure);
  if (sn->owned)
    snapshot_store_free(sn->store);
  free(sn);
}
