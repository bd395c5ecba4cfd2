/* snapshot.h — the snapshot of one state shard (SPEC §6): its persons, its
 * rollup counters and where its input resumes, zstd-compressed and
 * checksummed. The format is documented atop snapshot.c, the one file that
 * owns it; the files themselves (names, atomic writes, the newest few kept,
 * the newest valid one found) are the snapshot store's (state/store.h), and
 * writing them off the shard owner's thread is the snapshotter's.
 *
 * A snapshot is taken in two steps so that the shard's owner pauses only for
 * a copy: snapshot_capture (on the owner's thread: copies the map and the
 * counters) and writing the image (any thread: sorts, encodes, compresses). */
#ifndef REGSTREAM_SNAPSHOT_H
#define REGSTREAM_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "state/shard.h"

enum {
  SNAPSHOT_FORMAT_VERSION = 1,
  SNAPSHOT_SHARD_ID_MAX = 160, /* bytes of a shard id, NUL included */
  SNAPSHOT_EXTRA = 16,
};

/* Where and how often a run snapshots its shards (SPEC §6): every records
 * records, or (records 0) every seconds seconds. Into the folder dir or
 * (Kafka mode) the compacted topic topic, at most one of them; both NULL:
 * no snapshots. */
typedef struct snapshot_policy {
  const char *dir;
  const char *topic;
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

/* Sort, encode, compress and checksum img into fd, a new empty file open
 * for writing (it is written from its start; *bytes gets the file's size).
 * Safe on any thread, concurrently for different images. 0, or -1 with a
 * one-line reason (write errors with errno's text). */
int snapshot_image_encode(const snapshot_image *img, int fd, uint64_t *bytes, char *err,
                          size_t errlen);
void snapshot_image_free(snapshot_image *img);
/* The meta an image was captured with (persons, months and counts filled). */
const snapshot_meta *snapshot_image_meta(const snapshot_image *img);

/* Shard ids are file name prefixes: [A-Za-z0-9._-]+, not starting with '.'. */
int snapshot_shard_id_valid(const char *id);

/* Read and verify one snapshot file. With s non-NULL (a shard fresh from
 * shard_init) its persons, counters and counts are loaded into s. 0, or -1
 * with a reason (unreadable, truncated, bad checksum, unknown version). */
int snapshot_read(const char *path, shard *s, snapshot_meta *meta, char *err, size_t errlen);

typedef enum snapshot_read_kind {
  SNAPSHOT_READ_OK = 0,
  SNAPSHOT_READ_DAMAGED, /* unreadable, truncated, damaged: skip it, try an older one */
  SNAPSHOT_READ_REFUSED, /* another version, layout or configuration: stop */
  SNAPSHOT_READ_FAILED,  /* memory short: stop */
} snapshot_read_kind;

/* snapshot_read of a file that must hold shard_id at position (else it is
 * DAMAGED: copied or renamed by hand) written with fingerprint (else
 * REFUSED). The reason in err names neither the file nor the directory. */
snapshot_read_kind snapshot_read_checked(const char *path, const char *shard_id, int64_t position,
                                         uint64_t fingerprint, shard *s, snapshot_meta *meta,
                                         char *err, size_t errlen);

/* snapshot_read_checked of a snapshot held in memory (size bytes at data,
 * the same bytes as a file's), for a store that keeps no files. */
snapshot_read_kind snapshot_read_checked_mem(const unsigned char *data, size_t size,
                                             const char *shard_id, int64_t position,
                                             uint64_t fingerprint, shard *s, snapshot_meta *meta,
                                             char *err, size_t errlen);

/* `regstream snapshot inspect FILE`: header, counts, sizes, validity, as
 * text on out. 0 when the file is valid, else -1 with a reason in err. */
int snapshot_inspect(const char *path, FILE *out, char *err, size_t errlen);

#endif
