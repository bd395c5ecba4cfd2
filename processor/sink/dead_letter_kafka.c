/* dead_letter_kafka.c — the Kafka back end of the dead-letter door: each
 * rejected message goes to the dead-letter topic with its original key and
 * value and the headers reason, source_topic, source_partition and
 * source_offset. It only enqueues on the run's producer (delivery failures
 * reach the run through the producer's delivery callback); flushing the
 * producer is the run's (kafka/run.c), as it also carries the rows. Built
 * into the Kafka library (regstream_kafka), so that file mode links no
 * librdkafka. */
#include "sink/dead_letter_kafka.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

enum { QUEUE_FULL_SECONDS = 60 };

typedef struct dl_topic {
  rd_kafka_t *producer;
  char *topic;
} dl_topic;

static int topic_write(void *ctx, reason why, const dead_letter_source *src, const uint8_t *bytes,
                       size_t len, const char *detail) {
  (void)detail;
  dl_topic *t = ctx;
  char partition[16], offset[24];
  snprintf(partition, sizeof partition, "%" PRId32, src->partition);
  snprintf(offset, sizeof offset, "%" PRId64, src->offset);
  rd_kafka_resp_err_t e;
  /* A queue that stays full for QUEUE_FULL_SECONDS means the brokers do not
   * take messages: the caller stops the run rather than wait for good. */
  double give_up = clock_seconds() + QUEUE_FULL_SECONDS;
  do {
    e = rd_kafka_producev(
        t->producer, RD_KAFKA_V_TOPIC(t->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(src->key, src->key_len), RD_KAFKA_V_VALUE((void *)bytes, len),
        RD_KAFKA_V_HEADER("reason", reason_code(why), -1),
        RD_KAFKA_V_HEADER("source_topic", src->topic, -1),
        RD_KAFKA_V_HEADER("source_partition", partition, -1),
        RD_KAFKA_V_HEADER("source_offset", offset, -1), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(t->producer, 10);
  } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL && clock_seconds() < give_up);
  return e ? -1 : 0;
}

static int topic_close(void *ctx, char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  dl_topic *t = ctx;
  free(t->topic);
  free(t);
  return 0;
}

static const dead_letter_backend topic_backend = {topic_write, NULL, NULL, topic_close, NULL};

dead_letter *dead_letter_open_topic(rd_kafka_t *producer, const char *topic) {
  dl_topic *t = calloc(1, sizeof *t);
  if (!t || !(t->topic = strdup(topic))) {
    free(t);
    return NULL;
  }
  t->producer = producer;
  return dead_letter_open(&topic_backend, t, NULL);
}
