/* ocf.h — Avro Object Container Files: reading blocks, writing files.
 *
 * The reader maps the file, parses its header (magic, metadata map with
 * avro.schema and avro.codec, 16-byte sync marker) and hands out raw blocks
 * one at a time; decompression is a separate, thread-safe call so that
 * workers can inflate blocks in parallel while one thread walks the file.
 * Codecs: null, deflate (raw RFC 1951, zlib), snappy (with its 4-byte CRC32
 * trailer), lzma (Avro C's raw LZMA2) and xz (an .xz stream, as Java, Python
 * and fastavro write), zstandard. A damaged block (bad count/size, wrong sync
 * marker) is reported as a damaged region and the reader resynchronises on
 * the next sync marker, so the caller can dead-letter the lost bytes and go
 * on. The writer is used by the generator, tests and tools. */
#ifndef REGSTREAM_OCF_H
#define REGSTREAM_OCF_H

#include <stddef.h>
#include <stdint.h>

typedef enum ocf_codec {
  OCF_CODEC_NULL = 0,
  OCF_CODEC_DEFLATE,
  OCF_CODEC_SNAPPY,
  OCF_CODEC_LZMA, /* Avro C's name: raw LZMA2 */
  OCF_CODEC_XZ,   /* xz stream */
  OCF_CODEC_ZSTANDARD,
} ocf_codec;

typedef struct ocf_reader ocf_reader;

typedef enum ocf_block_kind {
  OCF_BLOCK_OK = 0, /* a well-framed block: data/size/count valid */
  OCF_BLOCK_DAMAGED /* bytes that could not be framed as a block; data/size
                       are the skipped raw bytes, count is -1 */
} ocf_block_kind;

typedef struct ocf_block {
  ocf_block_kind kind;
  const uint8_t *data; /* raw (still compressed) block bytes inside the map */
  size_t size;
  int64_t count;         /* records the block claims to hold */
  uint64_t index;        /* block number in the file, from 0 */
  uint64_t first_record; /* index in the file of the block's first record
                            (counting the records of framed blocks only) */
  uint64_t file_offset;  /* offset of data in the file */
} ocf_block;

/* Open and parse the header. NULL with a one-line reason in err on a missing
 * file, a bad magic, a broken header or an unknown codec. */
ocf_reader *ocf_open(const char *path, char *err, size_t errlen);
void ocf_close(ocf_reader *r);
const char *ocf_path(const ocf_reader *r);
const char *ocf_schema_json(const ocf_reader *r); /* NUL-terminated */
size_t ocf_schema_json_len(const ocf_reader *r);
ocf_codec ocf_reader_codec(const ocf_reader *r);

/* What the walk's steps return. */
enum {
  OCF_FAILED = -1, /* reading the file failed (ocf_read_direct only): ocf_failure */
  OCF_END = 0,     /* no block after the last one */
  OCF_GOT = 1,     /* *out is the next block */
  OCF_NOT_YET = 2  /* (ocf_poll_block) its bytes are still being read */
};
/* Next block: OCF_GOT with *out filled, OCF_END at end of file. What cannot
 * be framed comes back as an OCF_BLOCK_DAMAGED region: bad bytes are never a
 * failure. OCF_FAILED only when the file cannot be read (ocf_read_direct),
 * never for its content. Waits for the bytes to be read. Not thread-safe
 * (one walker per reader). */
int ocf_next_block(ocf_reader *r, ocf_block *out);
/* The same without waiting: OCF_NOT_YET while the block's bytes are on
 * their way (or wait for bytes before them to be released); the landed
 * callback of ocf_read_direct says when to ask again. */
int ocf_poll_block(ocf_reader *r, ocf_block *out);
/* After OCF_FAILED: the errno of the read that failed, and a line naming
 * the file and the offset. */
int ocf_failure(const ocf_reader *r, char *why, size_t len);

/* Where a reader's walk stands: the next block's offset in the file (its
 * count varint, or the first byte of a damaged region), and the block and
 * record numbers it will get. A walk restarted at a position told by
 * ocf_tell frames exactly the blocks the original walk framed from there. */
typedef struct ocf_position {
  uint64_t offset;
  uint64_t block_index;
  uint64_t first_record;
} ocf_position;
ocf_position ocf_tell(const ocf_reader *r);
/* Continue the walk at p (from ocf_tell on a reader of the same file).
 * 0, or -1 with a reason when p is outside the file's blocks. */
int ocf_seek(ocf_reader *r, const ocf_position *p, char *err, size_t errlen);
/* The file's size and its 16-byte sync marker (random per written file):
 * with the size, what tells one container file from another. */
uint64_t ocf_file_size(const ocf_reader *r);
const uint8_t *ocf_sync_marker(const ocf_reader *r);

/* The caller is done with every byte before end_offset (a block's
 * file_offset + size): give those pages of the mapping back, so a long
 * replay's resident memory stays the size of its state, not of its input.
 * Pages go back in steps of a few MiB (the rest at the end of the file).
 * Thread-safe: any worker may release, in any order. */
void ocf_release(ocf_reader *r, uint64_t end_offset);

/* For inputs larger together than room (they cannot stay in the page cache
 * for the next run, and reading them through would push out everything
 * else, the kernel reclaiming page after page: a 31.6 GB replay then spent
 * 60 % more CPU per record), the pages ocf_release gives back from now on
 * also leave the page cache (posix_fadvise DONTNEED; each reader opens its
 * file again for that, and is left as it is when it cannot). Returns how
 * many readers drop behind. */
size_t ocf_drop_behind(ocf_reader *const *readers, size_t n, uint64_t room);
/* Readers that drop behind read their files past the page cache from now
 * on: O_DIRECT, in order, a chunk at a time, on a thread of their own, into
 * a ring of 4 MiB that ocf_release frees bytes of (what does not frame in
 * the ring, damaged regions or blocks longer than it, is framed in the
 * mapping as before). The page cache adds a copy, page faults, its own
 * readahead and reclaim: on this project's 2-core host it read 0.6-0.9 GB/s
 * where O_DIRECT reads 1.8. landed(arg), when not NULL, is called on that
 * thread (no lock of the reader held) when bytes arrive after an
 * ocf_poll_block returned OCF_NOT_YET, or the reading fails: the cue to
 * poll again. Returns how many readers read so; a file
 * system that refuses O_DIRECT leaves its reader as it was. */
size_t ocf_read_direct(ocf_reader *const *readers, size_t n, void (*landed)(void *arg), void *arg);
/* The room for ocf_drop_behind: half the memory this process may use, the
 * physical memory or less where its cgroups set a limit. Test hook: the
 * environment variable REGSTREAM_CACHE_ROOM (bytes) replaces it, so that
 * small inputs take the path of large ones. */
uint64_t ocf_cache_room(void);
/* The least memory limit (bytes) of the process's cgroups as proc_cgroup
 * (/proc/self/cgroup) names them, under sys_cgroup (/sys/fs/cgroup; tests
 * give other files): v2 memory.max and memory.high, v1 the memory
 * controller's limit_in_bytes and soft_limit_in_bytes; its own cgroup's and
 * those above it, as the page cache it fills counts against them all.
 * UINT64_MAX where none is set ("max") or none can be read. */
uint64_t ocf_cgroup_memory_limit(const char *proc_cgroup, const char *sys_cgroup);

/* Ask the kernel to read the file's bytes from offset on (a window of some
 * tens of MiB) into the page cache now, without waiting: the caller is about
 * to read them in order. Thread-safe; cheap when they are cached. */
void ocf_readahead(ocf_reader *r, uint64_t offset);

/* A growable buffer for decompressed block bytes, one per worker. */
typedef struct ocf_buf {
  uint8_t *data;
  size_t len, cap;
} ocf_buf;
void ocf_buf_free(ocf_buf *b);

/* Decompress a block's bytes into out (replacing its content). 0 on success;
 * -1 with a reason in err when the bytes do not decompress (or a snappy CRC
 * mismatches). Thread-safe for distinct out buffers. For the null codec it
 * copies; callers that want zero copy check ocf_reader_codec first. */
int ocf_block_decompress(const ocf_reader *r, const ocf_block *b, ocf_buf *out, char *err,
                         size_t errlen);

typedef struct ocf_writer ocf_writer;
/* Create path (truncating) with the given writer schema and codec; level is
 * the codec's compression level (0 = its default). block_bytes is the
 * uncompressed size at which a block is flushed (0 = 64 KiB). */
ocf_writer *ocf_writer_open(const char *path, const char *schema_json, ocf_codec codec, int level,
                            size_t block_bytes, char *err, size_t errlen);
/* Append one already-encoded datum. 0 or -1 (I/O error, reason in err). */
int ocf_writer_append(ocf_writer *w, const uint8_t *datum, size_t len, char *err, size_t errlen);
/* Flush the last block and close. 0 or -1. */
int ocf_writer_close(ocf_writer *w, char *err, size_t errlen);

/* Codec by its avro.codec name ("null", "deflate", ...); -1 if unknown. */
int ocf_codec_from_name(const char *name);
const char *ocf_codec_name(ocf_codec c);

#endif
