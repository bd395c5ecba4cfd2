/* dead_letter.h — the one door rejected records go through (SPEC §5): each
 * with its original bytes, its source and a reason code, counted per reason
 * here. Behind the door a back end writes them: JSON Lines into a file
 * (dead_letter.c, file mode) or messages on a topic (dead_letter_kafka.c,
 * Kafka mode). Thread-safe: workers report rejects concurrently (rare, off
 * the hot path). */
#ifndef REGSTREAM_DEAD_LETTER_H
#define REGSTREAM_DEAD_LETTER_H

#include <stddef.h>
#include <stdint.h>

#include "core/validate.h"

typedef struct dead_letter dead_letter;

/* At most this many of a rejected item's bytes are copied into the output. */
enum { DEAD_LETTER_MAX_BYTES = 1 << 20 };

/* Where a rejected record came from, in either mode.
 * From a file (file non-NULL): file, file_index and record (index in the
 * file); block and offset locate bytes that could not be framed as records
 * (record_count then says how many records they held, or -1 when unknown).
 * From a topic (topic non-NULL): partition, offset (the message's) and the
 * message's key. */
typedef struct dead_letter_source {
  const char *file;
  int file_index;
  int64_t record;
  int64_t record_count; /* 1 for a single record */
  int64_t block;        /* -1 when not applicable */
  int64_t offset;       /* byte offset in the file (-1 when not applicable), or message offset */
  const char *topic;
  int32_t partition;
  const void *key;
  size_t key_len;
} dead_letter_source;

/* A back end: where the door writes. write gets the record as given to
 * dead_letter_write; flush (may be NULL: nothing buffered) tells how many
 * bytes are written; sync makes them durable; close frees ctx. 0, or -1.
 * error (may be NULL) says in one line what failed, after a -1, and
 * returns its errno (0: not known). */
typedef struct dead_letter_backend {
  int (*write)(void *ctx, reason why, const dead_letter_source *src, const uint8_t *bytes,
               size_t len, const char *detail);
  int (*flush)(void *ctx, uint64_t *length);
  int (*sync)(void *ctx);
  int (*close)(void *ctx, char *err, size_t errlen);
  int (*error)(void *ctx, char *err, size_t errlen);
} dead_letter_backend;

/* The door over a back end, counting from counts (NULL: zeros). NULL when
 * memory is short (ctx is then closed). */
dead_letter *dead_letter_open(const dead_letter_backend *backend, void *ctx,
                              const uint64_t counts[REASON_COUNT]);

/* The file back end: JSON Lines, created (truncated) at path, private to
 * its owner (0600: it holds the records' bytes). Written through util/fs
 * from a buffer of its own (flushed when full, by dead_letter_flush and at
 * close). */
dead_letter *dead_letter_open_file(const char *path, char *err, size_t errlen);
/* Resume a dead-letter file: keep its first length bytes (what a snapshot
 * recorded), drop anything after them, append from there, and start
 * counting from counts. NULL with a reason when the file is missing or
 * shorter than length (it was changed since: errno 0 or ENOENT; any other
 * errno is a failure to open or cut it back). */
dead_letter *dead_letter_open_file_at(const char *path, uint64_t length,
                                      const uint64_t counts[REASON_COUNT], char *err,
                                      size_t errlen);
/* detail: optional free text (why it could not be decoded). 0, or -1 on a
 * write error (then the run must fail: nothing may be lost). The record is
 * counted either way. */
int dead_letter_write(dead_letter *dl, reason why, const dead_letter_source *src,
                      const uint8_t *bytes, size_t len, const char *detail);
/* Rejected records so far, per reason (REASON_COUNT entries). */
void dead_letter_counts(dead_letter *dl, uint64_t counts[REASON_COUNT]);
/* Hand what was written to the OS and tell its length (the file back end):
 * with no writer active, exactly the bytes of the records reported so far.
 * 0, or -1 after a write error. */
int dead_letter_flush(dead_letter *dl, uint64_t *length);
/* fsync what was flushed (any thread, while others write). 0, or -1. */
int dead_letter_sync(dead_letter *dl);
/* After a -1 from write, flush or sync: what failed, in one line (names the
 * file and the errno text for the file back end); returns that errno (0:
 * not known). */
int dead_letter_error(dead_letter *dl, char *err, size_t errlen);
/* Flush, fsync and close (NULL: nothing). 0, or -1 with a reason (errno:
 * the failure's). */
int dead_letter_close(dead_letter *dl, char *err, size_t errlen);

#endif
