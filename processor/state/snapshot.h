/* snapshot.h — the snapshot of one state shard (SPEC §6): its persons, its
 * rollup counters and where its input resumes, zstd-compressed, checksummed,
 * written atomically into a snapshot directory, the newest few kept. The
 * format is documented atop snapshot.c, the one file that owns it.
 *
 * A snapshot is taken in two steps so that the shard's owner pauses only for
 * a copy: snapshot_capture (on the owner's thread: copies the map and the
 * counters) and snapshot_image_write (any thread: sorts, encodes, compresses,
 * writes, fsyncs, renames, prunes). Files are named
 * "<shard_id>.<position, 20 digits>.snap", so the newest is the one with the
 * greatest position and a shard's files sort by age. */
#ifndef REGSTREAM_SNAPSHOT_H
#define REGSTREAM_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "state/shard.h"

enum {
  SNAPSHOT_FORMAT_VERSION = 1,
  SNAPSHOT_KEEP = 3,           /* files kept per shard */
  SNAPSHOT_SHARD_ID_MAX = 160, /* bytes of a shard id, NUL included */
  SNAPSHOT_EXTRA = 16,
};

/* Where and how often a run snapshots its shards (SPEC §6): every records
 * records, or (records 0) every seconds seconds. dir NULL: no snapshots. */
typedef struct snapshot_policy {
  const char *dir;
  uint64_t records;
  double seconds;
} snapshot_policy;

enum { SNAPSHOT_DEFAULT_SECONDS = 60 };

/* What a snapshot must agree with to be loaded: the rule options (as given)
 * and the reader schema, hashed. */
uint64_t snapshot_fingerprint(const rules_config *rules);

typedef struct snapshot_meta {
  uint32_t version;     /* SNAPSHOT_FORMAT_VERSION (set by the writer) */
  uint64_t fingerprint; /* snapshot_fingerprint() of the run that wrote it */
  /* "kafka.<topic>.<partition>" or "file.<k>of<n>": letters, digits, '.',
   * '_' and '-' only (it is a file name prefix). */
  char shard_id[SNAPSHOT_SHARD_ID_MAX];
  int64_t position;               /* Kafka: next input offset; file mode: records consumed */
  uint64_t extra[SNAPSHOT_EXTRA]; /* the mode's own resume data, opaque here */
  /* Set by snapshot_capture from the shard: */
  uint64_t persons;
  uint32_t months; /* rollup month blocks */
  uint64_t applied, corrected, late;
  int64_t written_unix_ms;
} snapshot_meta;

typedef struct snapshot_image snapshot_image;

/* Copy the shard's state and meta (persons, months and counts are filled
 * from s). The only step that must run on the shard's owner. NULL when
 * memory is short. */
snapshot_image *snapshot_capture(const shard *s, const snapshot_meta *meta);

/* Encode, compress, checksum and write img atomically into dir (temporary
 * file, fsync, rename, directory fsync); then delete all but the newest
 * SNAPSHOT_KEEP files of its shard. Safe on any thread, concurrently for
 * different shards. *bytes (may be NULL) gets the file size. 0, or -1 with
 * a one-line reason. */
int snapshot_image_write(const snapshot_image *img, const char *dir, size_t *bytes, char *err,
                         size_t errlen);
void snapshot_image_free(snapshot_image *img);
/* The meta an image was captured with (persons, months and counts filled). */
const snapshot_meta *snapshot_image_meta(const snapshot_image *img);

/* snapshot_capture + snapshot_image_write + snapshot_image_free. */
int snapshot_write(const shard *s, const snapshot_meta *meta, const char *dir, char *err,
                   size_t errlen);

/* Read and verify one snapshot file. With s non-NULL (a shard fresh from
 * shard_init) its persons, counters and counts are loaded into s. 0, or -1
 * with a reason (unreadable, truncated, bad checksum, unknown version). */
int snapshot_read(const char *path, shard *s, snapshot_meta *meta, char *err, size_t errlen);

/* Load the newest valid snapshot of shard_id from dir into s (fresh from
 * shard_init). A corrupt or truncated file is skipped with a warning on
 * stderr naming it, and the next older one is tried.
 *   1  loaded; meta filled
 *   0  none usable (no directory, no files, or all corrupt); s untouched
 *  -1  refused or failed, reason in err: a snapshot of another version or
 *      configuration (fingerprint differs), or memory short */
int snapshot_load_latest(const char *dir, const char *shard_id, uint64_t fingerprint, shard *s,
                         snapshot_meta *meta, char *err, size_t errlen);

/* `regstream snapshot inspect FILE`: header, counts, sizes, validity, as
 * text on out. 0 when the file is valid, else -1 with a reason in err. */
int snapshot_inspect(const char *path, FILE *out, char *err, size_t errlen);

#endif
