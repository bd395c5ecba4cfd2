/* produce.h — `regstream produce`: a loader that puts Avro container files
 * onto a Kafka topic, one PersonMonth per message, keyed by person_id
 * (decimal ASCII) so one person's records land in one partition, in order.
 *
 *   regstream produce --brokers B --topic T --input FILE.avro [FILE.avro ...]
 *                     [--partitions N] [--replication-factor R]
 *                     [--framing plain|confluent --schema-id ID]
 *                     [-X key=value]... [--keep-going] [--quiet]
 *
 * Each value is the record's datum bytes exactly as the file holds them (in
 * the file's writer schema), plain or Confluent-framed (0x00, 4-byte
 * big-endian --schema-id, datum). Records are decoded only to find the datum
 * boundaries and the key; they are not validated (that is the processor's
 * job, invalid records go through and become dead letters there). Bytes that
 * do not decode cannot be framed as records: the rest of that block (or a
 * damaged region) is reported on stderr and skipped with a count, and the
 * exit status is 1 if anything was skipped, unless --keep-going. All files
 * of one run must share one writer schema (a topic carries one plain schema
 * or one schema id). The topic is made with N partitions (default 6) when it
 * does not exist. Producer defaults for throughput: linger.ms=50,
 * batch.num.messages=100000, batch.size=4000000, compression.type=lz4,
 * enable.idempotence=true with acks=all (per-partition order with retries,
 * every record on all in-sync replicas before it counts), a 2M-message
 * queue, partitioner=murmur2_random (same partition as Java's producer for
 * the same key); -X overrides any of them. */
#ifndef REGSTREAM_PRODUCE_H
#define REGSTREAM_PRODUCE_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "kafka/client.h"
#include "source/framing.h"

typedef struct produce_options {
  const char *brokers;
  const char *topic;
  const char *const *inputs;
  int input_count;
  int partitions;         /* for a topic that does not exist; default 6 */
  int replication_factor; /* for a topic that does not exist; -1: the broker's default */
  framing_mode framing;
  int64_t schema_id;       /* FRAMING_CONFLUENT; -1 when not given */
  const char *const *conf; /* "key=value" from -X, applied last */
  int conf_count;
  int keep_going;
  int quiet;
} produce_options;

typedef struct produce_result {
  uint64_t records; /* produced and acknowledged */
  uint64_t skipped; /* records (or damaged regions) not produced */
  uint64_t bytes;   /* value bytes produced */
  double seconds;
  int created_topic;
} produce_result;

/* 0 when every readable record was produced and acknowledged (skips are
 * counted in res); -1 with a one-line reason (missing file, unreachable
 * broker, topic creation or delivery failure). */
int produce_run(const produce_options *o, produce_result *res, char *err, size_t errlen);

#endif
