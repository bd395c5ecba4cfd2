/* snapshotter.h — the one background writer of snapshots, for both modes: a
 * thread that writes captured images (snapshot.h) into the snapshot store
 * (store.h), so that a shard's owner pauses only for snapshot_capture.
 * Images wait in a small queue; a newer image of a shard replaces an older
 * one still waiting, and a full queue makes the submitter wait (memory stays
 * bounded). */
#ifndef REGSTREAM_SNAPSHOTTER_H
#define REGSTREAM_SNAPSHOTTER_H

#include <stddef.h>
#include <stdint.h>

#include "state/store.h"

typedef struct snapshotter snapshotter;

typedef struct snapshotter_stats {
  uint64_t written;  /* snapshot files written */
  uint64_t bytes;    /* their bytes */
  double seconds;    /* spent writing them */
  uint64_t replaced; /* images dropped for a newer one of the same shard */
  uint64_t gated;    /* images dropped by the gate */
} snapshotter_stats;

/* Called on the writer thread before each image is written: 0 to write it,
 * -1 to drop it (e.g. the outputs of the records it covers could not be
 * made durable first). May be NULL. */
typedef int (*snapshotter_gate)(void *ctx);

/* Called on the writer thread after each image was handled: written 1 (bytes
 * long, in seconds), 0 dropped by the gate, -1 failed with the reason err.
 * May be NULL. */
typedef void (*snapshotter_done)(void *ctx, const snapshot_meta *meta, int written, size_t bytes,
                                 double seconds, const char *err);

/* Start the writer thread for dir. NULL when out of memory or threads. The
 * first failure is kept (snapshotter_check, snapshotter_drain) whether or
 * not done is given. */
snapshotter *snapshotter_start(const char *dir, snapshotter_gate gate, snapshotter_done done,
                               void *ctx);
/* The same for any store (a directory or a topic), which stays the
 * caller's: free it after snapshotter_stop. */
snapshotter *snapshotter_start_store(snapshot_store *store, snapshotter_gate gate,
                                     snapshotter_done done, void *ctx);

/* Queue img (ownership passes). Waits while the queue is full. */
void snapshotter_submit(snapshotter *sn, snapshot_image *img);

/* Wait until every queued image is written. 0, or -1 with the first write
 * failure's reason (then every later call fails too). */
int snapshotter_drain(snapshotter *sn, char *err, size_t errlen);

/* Without waiting: 0, or -1 with the first write failure's reason. */
int snapshotter_check(snapshotter *sn, char *err, size_t errlen);

/* Drop queued images of shard_id (its owner is about to write a newer one
 * itself), then wait for one of it being written right now. */
void snapshotter_forget(snapshotter *sn, const char *shard_id);

/* Write img (ownership passes) on the calling thread, at once, after
 * dropping the queued images of its shard (snapshotter_forget), without the
 * gate; counted and told to done as the writer thread's are, but a failure
 * is the caller's to handle (it is not kept). 0, or -1 with the reason. */
int snapshotter_write_now(snapshotter *sn, snapshot_image *img, char *err, size_t errlen);

snapshotter_stats snapshotter_get_stats(snapshotter *sn);

/* Drain, stop the thread, free. */
void snapshotter_stop(snapshotter *sn);

#endif
