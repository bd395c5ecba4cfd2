/* client.h — the small librdkafka helpers every Kafka client of the program
 * shares (produce, export, the Kafka mode of run): configuration from
 * "key=value" items, a reachability check, and topics made on demand. */
#ifndef REGSTREAM_KAFKA_CLIENT_H
#define REGSTREAM_KAFKA_CLIENT_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

enum { KAFKA_MAX_CONF = 64 };

/* Shared by every Kafka client of the program: set "key=value" items on conf
 * (and bootstrap.servers first). 0, or -1 with a one-line reason. */
int kafka_conf_apply(rd_kafka_conf_t *conf, const char *brokers, const char *const *items,
                     int count, char *err, size_t errlen);
/* Whether "key=value" items are valid librdkafka settings (for option
 * parsing: a bad -X is a bad command line). */
int kafka_conf_check(const char *const *items, int count, char *err, size_t errlen);
/* Metadata for all topics within timeout_ms: the broker is reachable. NULL
 * with "cannot reach Kafka at B: ..." in err. */
const rd_kafka_metadata_t *kafka_metadata_fetch(rd_kafka_t *rk, const char *brokers, int timeout_ms,
                                                char *err, size_t errlen);
/* The topic's entry in md, or NULL. */
const rd_kafka_metadata_topic_t *kafka_metadata_topic(const rd_kafka_metadata_t *md,
                                                      const char *topic);

/* Append one -X "key=value" item to items (KAFKA_MAX_CONF at most) after
 * checking it is a valid librdkafka setting. 0, or -1 with a one-line reason. */
int kafka_conf_add(const char **items, int *count, const char *item, char *err, size_t errlen);

/* A topic to make when it does not exist. */
typedef struct kafka_topic_spec {
  const char *name;
  int partitions;
  int replication_factor; /* -1: the broker's default (default.replication.factor) */
  int compacted;          /* cleanup.policy=compact: a keyed upsert topic */
} kafka_topic_spec;

/* Make the topic when missing and wait until every partition has a leader.
 * *created tells whether it was made. note_prefix, when not NULL, prefixes a
 * stderr note when the topic exists with another partition count. 0, or -1
 * with a one-line reason. */
int kafka_topic_ensure(rd_kafka_t *rk, const char *brokers, const kafka_topic_spec *spec,
                       const char *note_prefix, int *created, char *err, size_t errlen);

#endif
