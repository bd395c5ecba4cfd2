/* store.h — the snapshot store: the one place that knows where snapshot
 * files live and what they are called. A directory holds, per shard id,
 *
 *   <shard_id>.<position, 20 digits>.snap          a snapshot (state/snapshot.h)
 *   .<shard_id>.<position>.snap.tmp.<unique>       one being written (a dot
 *                                                  file: listings ignore it)
 *
 * so a shard's files sort by position and the newest has the greatest. A
 * shard's files are recognised by exact length and shape, so "kafka.t.1"
 * never claims "kafka.t.10.…". Writing is atomic: temporary file, fsync,
 * rename, directory fsync; then all but the newest SNAPSHOT_KEEP snapshots
 * of the shard are deleted, and so are its temporary files left by a crash.
 * What a shard id means (kafka.<topic>.<partition>, file.<k>of<n>) is the
 * modes'.
 *
 * The same three steps (save, load the newest valid, prune) have another
 * back end in Kafka mode, the compacted topic of --snapshot-topic
 * (kafka/snapshot_topic.c): snapshot_store below is the interface both
 * implement, and the snapshot writer (snapshotter.h) and the Kafka mode's
 * shards use only it. */
#ifndef REGSTREAM_STATE_STORE_H
#define REGSTREAM_STATE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "state/snapshot.h"

enum { SNAPSHOT_KEEP = 3 }; /* snapshots kept per shard */

/* Write img into dir (made when missing) atomically, then prune its shard.
 * Safe on any thread, concurrently for different shards. *bytes (may be
 * NULL) gets the file size. Snapshots, their temporary files (0600) and
 * the folders made for them (0700) are private to their owner. 0, or -1
 * with a one-line reason (errno: the failure's). */
int snapshot_store_write(const char *dir, const snapshot_image *img, size_t *bytes, char *err,
                         size_t errlen);
/* Capture s with meta and write it (snapshot_capture + snapshot_store_write). */
int snapshot_store_write_shard(const char *dir, const shard *s, const snapshot_meta *meta,
                               char *err, size_t errlen);

/* Load the newest valid snapshot of shard_id from dir into s (fresh from
 * shard_init). A damaged or truncated file is skipped with a warning on
 * stderr naming it, and the next older one is tried.
 *   1  loaded; meta filled
 *   0  none usable (no directory, no files, or all damaged); s untouched
 *  -1  refused or failed, reason in err: a snapshot of another version or
 *      configuration (fingerprint differs), or memory short */
int snapshot_store_load_latest(const char *dir, const char *shard_id, uint64_t fingerprint,
                               shard *s, snapshot_meta *meta, char *err, size_t errlen);

/* The path of shard_id's snapshot at position in dir. */
void snapshot_store_path(const char *dir, const char *shard_id, int64_t position, char *path,
                         size_t len);

/* One snapshot in a directory. */
typedef struct snapshot_entry {
  char shard_id[SNAPSHOT_SHARD_ID_MAX];
  int64_t position;
} snapshot_entry;

/* The snapshots in dir whose shard id starts with prefix, in no order;
 * *entries is malloc'd (free it), *count their number. A missing directory
 * has none. 0, or -1 with a reason. */
int snapshot_store_list(const char *dir, const char *prefix, snapshot_entry **entries,
                        size_t *count, char *err, size_t errlen);

/* Delete shard_id's snapshot at position. Best effort. */
void snapshot_store_remove(const char *dir, const char *shard_id, int64_t position);
/* Delete every snapshot and temporary file of the shards whose id starts
 * with prefix. Best effort. */
void snapshot_store_remove_all(const char *dir, const char *prefix);

/* ---- the store interface: a directory (here) or a topic (kafka/) ---- */

typedef struct snapshot_store snapshot_store;
typedef struct snapshot_store_ops {
  /* Encode img and keep it durably: 0 once it exists (the directory's
   * rename, the topic's acknowledged manifest), *bytes its size; -1 with a
   * one-line reason (nothing of the snapshot's contents in it). */
  int (*save)(snapshot_store *st, const snapshot_image *img, size_t *bytes, char *err,
              size_t errlen);
  /* As snapshot_store_load_latest: 1 loaded, 0 none usable (damaged ones
   * warned about and skipped), -1 refused (another configuration) or
   * failed, reason in err. */
  int (*load_latest)(snapshot_store *st, const char *shard_id, uint64_t fingerprint, shard *s,
                     snapshot_meta *meta, char *err, size_t errlen);
  /* Drop all but the newest SNAPSHOT_KEEP snapshots of shard_id and the
   * leftovers of failed saves. Best effort. */
  void (*prune)(snapshot_store *st, const char *shard_id);
  void (*free)(snapshot_store *st);
} snapshot_store_ops;
struct snapshot_store {
  const snapshot_store_ops *ops;
  const char *what; /* "--snapshot-dir" or "--snapshot-topic", for messages */
};

/* The directory back end on dir (a copy is kept). NULL when memory is short. */
snapshot_store *snapshot_store_dir(const char *dir);
/* Save img, then prune its shard (both back ends do it in this order). */
int snapshot_store_save(snapshot_store *st, const snapshot_image *img, size_t *bytes, char *err,
                        size_t errlen);
int snapshot_store_load(snapshot_store *st, const char *shard_id, uint64_t fingerprint, shard *s,
                        snapshot_meta *meta, char *err, size_t errlen);
void snapshot_store_free(snapshot_store *st);

#endif
