/* snapshot_topic.h — the snapshot store on a compacted Kafka topic
 * (--snapshot-topic T), the alternative to a folder: the back end of
 * state/store.h's interface that keeps no files, so that instances on
 * different machines hand partitions over through Kafka alone.
 *
 * Input partition P's shard lives in partition P of T (T has at least as
 * many partitions as the input topic; regstream makes it when missing). A
 * snapshot (the bytes of state/snapshot.c's format, checksums and
 * configuration fingerprint included) is one generation G, a number above
 * every generation the partition held when it was read, written as
 *
 *   key "P/G/I"  chunk I (0 .. N-1) of the snapshot bytes: a 32-byte header
 *                (magic "RGSTSCHK", u64 G, u64 writer nonce, u32 I, u32
 *                CRC-32 of the payload) then at most 512 KiB of them
 *   key "P/G/m"  the manifest, produced only once every chunk is
 *                acknowledged (snaptopic_manifest below); its
 *                acknowledgement is the moment the snapshot exists
 *
 * Keys are never reused, so compaction never loses a generation that is
 * still wanted; older generations are deleted with tombstones (manifest
 * first, then chunks) once a newer one is acknowledged, keeping the newest
 * SNAPSHOT_KEEP as the folder store does, and again after a load (the one
 * loaded and all newer kept), for generations whose tombstones a killed run
 * never delivered. The codec of keys and manifests is here for the tests'
 * tools (tests/kafka_snapshot_topic_tool.c). */
#ifndef REGSTREAM_KAFKA_SNAPSHOT_TOPIC_H
#define REGSTREAM_KAFKA_SNAPSHOT_TOPIC_H

#include <stddef.h>
#include <stdint.h>

#include "state/store.h"

enum {
  SNAPTOPIC_CHUNK_MAX = 512 * 1024, /* payload bytes of a chunk, at most */
  SNAPTOPIC_CHUNK_HEADER = 32,
  SNAPTOPIC_MANIFEST_MAX = 80 + SNAPSHOT_SHARD_ID_MAX,
  SNAPTOPIC_KEY_MAX = 64,
};

/* The manifest record's value, little-endian:
 *   0  8  magic "RGSTSMAN"     8  4  u32 version (1)
 *   12 8  u64 generation       20 8  u64 writer nonce (its chunks carry it)
 *   28 4  u32 chunks N         32 8  u64 snapshot bytes (all chunks)
 *   40 4  u32 CRC-32 of them   44 8  i64 position (next input offset)
 *   52 8  u64 fingerprint      60 8  i64 written_unix_ms
 *   68 2  u16 L                70 L  shard id
 *   70+L 4  u32 CRC-32 of the bytes before it */
typedef struct snaptopic_manifest {
  uint64_t gen, nonce;
  uint32_t chunks;
  uint64_t bytes;
  uint32_t crc;
  int64_t position;
  uint64_t fingerprint;
  int64_t written_unix_ms;
  char shard_id[SNAPSHOT_SHARD_ID_MAX];
} snaptopic_manifest;

/* The value of m into out (SNAPTOPIC_MANIFEST_MAX bytes); its length. */
size_t snaptopic_manifest_encode(const snaptopic_manifest *m, unsigned char *out);
/* 0, or -1 when it is not a whole manifest of version 1 (damaged). */
int snaptopic_manifest_decode(const void *value, size_t len, snaptopic_manifest *m);
/* "P/G/I" or "P/G/m" (index -1) into out (SNAPTOPIC_KEY_MAX); its length. */
size_t snaptopic_key(int32_t partition, uint64_t gen, int64_t index, char *out);
/* The parts of a key: 0, or -1 when it has another shape. */
int snaptopic_key_parse(const void *key, size_t len, int32_t *partition, uint64_t *gen,
                        int64_t *index);

/* The topic store of a Kafka-mode run (kafka/mode.h), in two steps: open
 * starts its producer (acks=all, idempotent) and its reader (a partition
 * read from an offset, no group) without asking a broker anything;
 * prepare, once the input topic is known (client_prepare_topics), makes
 * the topic when missing (compacted, as many partitions as the input
 * topic) and checks it has enough. NULL / -1 with a one-line reason. */
struct kafka_mode;
snapshot_store *snapshot_topic_open(struct kafka_mode *km, char *err, size_t errlen);
int snapshot_topic_prepare(snapshot_store *st, char *err, size_t errlen);

#endif
