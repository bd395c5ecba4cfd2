/* bare_consume.c — the transport ceiling for bench/kafka.sh: a librdkafka
 * consumer-group member that reads a topic to the end of every partition
 * and does nothing with the messages (counts and destroys them), with the
 * same consumer settings as regstream's Kafka mode.
 *
 *   bench-bare-consume [--batch] [--threads N] BROKERS TOPIC GROUP [key=value ...]
 *       ->  "bare: N messages in S s (S2 s from the first message),
 *            R M/s (R2 M/s from the first message)"  (one line)
 * Without --threads one thread reads the consumer queue: with
 * rd_kafka_consumer_poll, or with --batch rd_kafka_consume_batch_queue
 * (batches of 4096, as regstream's workers take them).
 * --threads N (1-64): as regstream run --threads N: N reader threads, each
 * with a queue of its own (rd_kafka_queue_new); the rebalance callback
 * forwards every assigned partition's queue to queue (partition % N) before
 * rd_kafka_assign, and each thread reads its queue with
 * rd_kafka_consume_batch_queue (--batch) or rd_kafka_consume_queue (one
 * message at a time). The main thread keeps calling rd_kafka_consumer_poll
 * to serve the rebalances; a message or partition end reaching it is an
 * error (exit status 1). The first message is the earliest of any thread's.
 * Either way the run ends when every partition of TOPIC reported its end
 * (enable.partition.eof), or after 600 s.
 * key=value: more librdkafka settings, applied last (as regstream's -X). */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PARTITIONS 1024
#define MAX_THREADS 64
#define BATCH 4096

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One reader: a thread (or the main thread) and what it took. */
typedef struct {
  rd_kafka_t *rk;
  rd_kafka_queue_t *queue; /* NULL: rd_kafka_consumer_poll */
  int batch;               /* rd_kafka_consume_batch_queue on queue */
  uint64_t messages, ends; /* ends: partition ends it saw first */
  double first;            /* when it took its first message (0: none) */
  pthread_t thread;
} reader;

/* Set before any reader starts, read-only afterwards. */
static int partitions;
static double started;
static rd_kafka_queue_t *queues[MAX_THREADS]; /* --threads: the readers' queues */
static int queues_n;
/* Shared by the readers. finished is written once, by the reader that saw the
 * last partition end, and read after the threads are joined. */
static atomic_int at_end, eof[MAX_PARTITIONS];
static double finished;

/* Takes messages until every partition is at its end (or 600 s passed). */
static void *read_messages(void *arg) {
  reader *r = arg;
  rd_kafka_message_t *taken[BATCH];
  while (atomic_load(&at_end) < partitions && now_seconds() - started < 600) {
    ssize_t n;
    if (r->batch) {
      n = rd_kafka_consume_batch_queue(r->queue, 100, taken, BATCH);
    } else {
      taken[0] =
          r->queue ? rd_kafka_consume_queue(r->queue, 100) : rd_kafka_consumer_poll(r->rk, 100);
      n = taken[0] ? 1 : 0;
    }
    for (ssize_t i = 0; i < n; i++) {
      rd_kafka_message_t *m = taken[i];
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (m->partition >= 0 && m->partition < MAX_PARTITIONS &&
            !atomic_exchange(&eof[m->partition], 1)) {
          r->ends++;
          if (atomic_fetch_add(&at_end, 1) + 1 == partitions)
            finished = now_seconds();
        }
      } else if (!m->err) {
        if (!r->messages++)
          r->first = now_seconds();
      }
      rd_kafka_message_destroy(m);
    }
  }
  return NULL;
}

/* --threads: every assigned partition's messages go to its reader's queue. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
  (void)opaque;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    for (int i = 0; i < parts->cnt; i++) {
      int32_t p = parts->elems[i].partition;
      rd_kafka_queue_t *pq = rd_kafka_queue_get_partition(rk, parts->elems[i].topic, p);
      if (!pq) {
        fprintf(stderr, "bare: cannot get the queue of partition %" PRId32 "\n", p);
        continue;
      }
      rd_kafka_queue_forward(pq, queues[(unsigned)p % (unsigned)queues_n]);
      rd_kafka_queue_destroy(pq);
    }
    rd_kafka_assign(rk, parts);
  } else {
    rd_kafka_assign(rk, NULL);
  }
}

static int usage(void) {
  fprintf(stderr, "usage: bench-bare-consume [--batch] [--threads N] BROKERS TOPIC GROUP "
                  "[key=value ...]\n");
  return 2;
}

int main(int argc, char **argv) {
  int batch = 0, threads = 0; /* threads 0: no --threads, the consumer queue */
  while (argc > 1 && strncmp(argv[1], "--", 2) == 0) {
    if (strcmp(argv[1], "--batch") == 0) {
      batch = 1;
      argv++;
      argc--;
    } else if (strcmp(argv[1], "--threads") == 0 && argc > 2) {
      char *end;
      long n = strtol(argv[2], &end, 10);
      if (*end || n < 1 || n > MAX_THREADS)
        return usage();
      threads = (int)n;
      argv += 2;
      argc -= 2;
    } else {
      return usage();
    }
  }
  if (argc < 4)
    return usage();
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
  if (threads)
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) {
    fprintf(stderr, "bare: %s\n", err);
    return 1;
  }
  for (queues_n = 0; queues_n < threads; queues_n++)
    queues[queues_n] = rd_kafka_queue_new(rk);
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, argv[2], RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);

  const rd_kafka_metadata_t *md;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, argv[2], NULL);
  if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == 0) {
    partitions = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
  }
  rd_kafka_topic_destroy(rkt);
  if (partitions <= 0 || partitions > MAX_PARTITIONS) {
    fprintf(stderr, "bare: topic %s not found\n", argv[2]);
    return 1;
  }
  started = now_seconds();
  /* readers[0..threads-1]: the threads; readers[threads]: the main thread,
   * which with --threads only polls (serving the rebalances) */
  static reader readers[MAX_THREADS + 1];
  for (int i = 0; i < threads; i++)
    readers[i] = (reader){.rk = rk, .queue = queues[i], .batch = batch};
  readers[threads] = (reader){.rk = rk, .batch = batch && !threads};
  if (readers[threads].batch)
    readers[threads].queue = rd_kafka_queue_get_consumer(rk);
  for (int i = 0; i < threads; i++)
    if (pthread_create(&readers[i].thread, NULL, read_messages, &readers[i])) {
      fprintf(stderr, "bare: cannot start a thread\n");
      return 1;
    }
  read_messages(&readers[threads]);
  for (int i = 0; i < threads; i++)
    pthread_join(readers[i].thread, NULL);
  uint64_t messages = 0;
  double first = 0, end = finished ? finished : now_seconds();
  for (int i = 0; i <= threads; i++) {
    messages += readers[i].messages;
    if (readers[i].first && (!first || readers[i].first < first))
      first = readers[i].first;
  }
  int stray = threads && (readers[threads].messages || readers[threads].ends);
  if (stray)
    fprintf(stderr,
            "bare: %" PRIu64 " messages and %" PRIu64 " partition ends reached the main thread, "
            "not a reader's queue\n",
            readers[threads].messages, readers[threads].ends);
  printf("bare: %" PRIu64 " messages in %.2f s (%.2f s from the first message), %.2f M/s "
         "(%.2f M/s from the first message)\n",
         messages, end - started, end - first, (double)messages / (end - started) / 1e6,
         first ? (double)messages / (end - first) / 1e6 : 0.0);
  if (readers[threads].queue)
    rd_kafka_queue_destroy(readers[threads].queue);
  rd_kafka_consumer_close(rk);
  for (int i = 0; i < queues_n; i++)
    rd_kafka_queue_destroy(queues[i]);
  rd_kafka_destroy(rk);
  return messages && !stray ? 0 : 1;
}
