/* bare_consume.c — the transport ceiling for bench/kafka.sh: a librdkafka
 * consumer-group member that reads a topic to the end of every partition
 * with rd_kafka_consumer_poll and does nothing with the messages, with the
 * same consumer settings as regstream's Kafka mode.
 *
 *   bench-bare-consume [--batch] BROKERS TOPIC GROUP [key=value ...]
 *       ->  "bare: N messages in S s, R M/s"
 * --batch: rd_kafka_consume_batch_queue on the consumer queue (batches of
 * 4096, as regstream's workers take them) instead of rd_kafka_consumer_poll.
 * key=value: more librdkafka settings, applied last (as regstream's -X). */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  int batch = argc > 1 && strcmp(argv[1], "--batch") == 0;
  if (batch) {
    argv++;
    argc--;
  }
  if (argc < 4) {
    fprintf(stderr, "usage: bench-bare-consume [--batch] BROKERS TOPIC GROUP [key=value ...]\n");
    return 2;
  }
  static const char *const settings[][2] = {{"enable.partition.eof", "true"},
                                            {"auto.offset.reset", "earliest"},
                                            {"fetch.max.bytes", "52428800"},
                                            {"max.partition.fetch.bytes", "4194304"},
                                            {"queued.max.messages.kbytes", "262144"},
                                            {"enable.auto.commit", "false"},
                                            {"fetch.wait.max.ms", "50"},
                                            {"queued.min.messages", "1000000"}};
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], err, sizeof err) ||
      rd_kafka_conf_set(conf, "group.id", argv[3], err, sizeof err)) {
    fprintf(stderr, "bare: %s\n", err);
    return 1;
  }
  for (size_t i = 0; i < sizeof settings / sizeof *settings; i++)
    rd_kafka_conf_set(conf, settings[i][0], settings[i][1], err, sizeof err);
  for (int i = 4; i < argc; i++) {
    char key[256];
    const char *eq = strchr(argv[i], '=');
    if (!eq || (size_t)(eq - argv[i]) >= sizeof key) {
      fprintf(stderr, "bare: expected key=value, got '%s'\n", argv[i]);
      return 2;
    }
    memcpy(key, argv[i], (size_t)(eq - argv[i]));
    key[eq - argv[i]] = 0;
    if (rd_kafka_conf_set(conf, key, eq + 1, err, sizeof err) != RD_KAFKA_CONF_OK) {
      fprintf(stderr, "bare: %s\n", err);
      return 2;
    }
  }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) {
    fprintf(stderr, "bare: %s\n", err);
    return 1;
  }
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, argv[2], RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);

  int eof[1024] = {0}, partitions = 0;
  const rd_kafka_metadata_t *md;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, argv[2], NULL);
  if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == 0) {
    partitions = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
  }
  rd_kafka_topic_destroy(rkt);
  if (partitions <= 0 || partitions > 1024) {
    fprintf(stderr, "bare: topic %s not found\n", argv[2]);
    return 1;
  }
  uint64_t messages = 0;
  int at_end = 0;
  double started = now_seconds(), first = 0;
  rd_kafka_queue_t *queue = batch ? rd_kafka_queue_get_consumer(rk) : NULL;
  static rd_kafka_message_t *taken[4096];
  while (at_end < partitions && now_seconds() - started < 600) {
    ssize_t n;
    if (batch) {
      n = rd_kafka_consume_batch_queue(queue, 100, taken, 4096);
    } else {
      taken[0] = rd_kafka_consumer_poll(rk, 100);
      n = taken[0] ? 1 : 0;
    }
    for (ssize_t i = 0; i < n; i++) {
      rd_kafka_message_t *m = taken[i];
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (m->partition < 1024 && !eof[m->partition]++)
          at_end++;
      } else if (!m->err) {
        if (!messages)
          first = now_seconds();
        messages++;
      }
      rd_kafka_message_destroy(m);
    }
  }
  if (queue)
    rd_kafka_queue_destroy(queue);
  double end = now_seconds();
  printf("bare: %" PRIu64 " messages in %.2f s (%.2f s from the first message), %.2f M/s "
         "(%.2f M/s from the first message)\n",
         messages, end - started, end - first, (double)messages / (end - started) / 1e6,
         first ? (double)messages / (end - first) / 1e6 : 0.0);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return messages ? 0 : 1;
}
