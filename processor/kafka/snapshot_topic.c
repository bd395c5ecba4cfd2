/* snapshot_topic.c — the snapshot store on a compacted topic (see
 * snapshot_topic.h for the keys, chunks and manifests): saving (encode,
 * chunks, acknowledgements, manifest), loading (read the shard's partition
 * from its start to its high watermark, newest generation first, falling
 * back past damaged ones), pruning with tombstones. What a snapshot holds
 * is state/snapshot.c's; when snapshots are taken is kafka/shards.c's and
 * the writer thread's (state/snapshotter.c). Nothing of a snapshot's
 * contents (personal data) is ever printed: messages name keys, sizes and
 * librdkafka's errors only.
 *
 * Threads: save runs on the snapshot writer thread or, for a revoke, on the
 * poll thread; load on the poll thread. One mutex guards what is known of
 * each partition's generations and the reader. */
#include "kafka/snapshot_topic.h"
#include "util/bytes.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "kafka/client.h"
#include "kafka/mode.h"
#include "util/clock.h"
#include "util/log.h"

enum {
  MANIFEST_VERSION = 1,
  READ_STALL_SECONDS = 60, /* a partition read that gets nothing this long fails */
  ACK_EXTRA_SECONDS = 30,  /* waited for acknowledgements beyond message.timeout.ms */
};

static const char chunk_magic[8] = {'R', 'G', 'S', 'T', 'S', 'C', 'H', 'K'};
static const char manifest_magic[8] = {'R', 'G', 'S', 'T', 'S', 'M', 'A', 'N'};

/* ---- codec ---- */

static uint32_t crc_of(const void *data, size_t len) {
  return (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), data, len);
}

size_t snaptopic_manifest_encode(const snaptopic_manifest *m, unsigned char *out) {
  size_t idlen = strnlen(m->shard_id, SNAPSHOT_SHARD_ID_MAX - 1);
  memcpy(out, manifest_magic, 8);
  put32(out + 8, MANIFEST_VERSION);
  put64(out + 12, m->gen);
  put64(out + 20, m->nonce);
  put32(out + 28, m->chunks);
  put64(out + 32, m->bytes);
  put32(out + 40, m->crc);
  put64(out + 44, (uint64_t)m->position);
  put64(out + 52, m->fingerprint);
  put64(out + 60, (uint64_t)m->written_unix_ms);
  put16(out + 68, (uint16_t)idlen);
  memcpy(out + 70, m->shard_id, idlen);
  put32(out + 70 + idlen, crc_of(out, 70 + idlen));
  return 74 + idlen;
}

int snaptopic_manifest_decode(const void *value, size_t len, snaptopic_manifest *m) {
  const unsigned char *p = value;
  if (len < 74 || memcmp(p, manifest_magic, 8) != 0 || get32(p + 8) != MANIFEST_VERSION)
    return -1;
  size_t idlen = get16(p + 68);
  if (idlen == 0 || idlen >= SNAPSHOT_SHARD_ID_MAX || len != 74 + idlen ||
      get32(p + 70 + idlen) != crc_of(p, 70 + idlen))
    return -1;
  memset(m, 0, sizeof *m);
  m->gen = get64(p + 12);
  m->nonce = get64(p + 20);
  m->chunks = get32(p + 28);
  m->bytes = get64(p + 32);
  m->crc = get32(p + 40);
  m->position = (int64_t)get64(p + 44);
  m->fingerprint = get64(p + 52);
  m->written_unix_ms = (int64_t)get64(p + 60);
  memcpy(m->shard_id, p + 70, idlen);
  m->shard_id[idlen] = 0;
  return m->chunks == 0 || m->position < 0 ? -1 : 0;
}

size_t snaptopic_key(int32_t partition, uint64_t gen, int64_t index, char *out) {
  int n = index < 0 ? snprintf(out, SNAPTOPIC_KEY_MAX, "%" PRId32 "/%" PRIu64 "/m", partition, gen)
                    : snprintf(out, SNAPTOPIC_KEY_MAX, "%" PRId32 "/%" PRIu64 "/%" PRId64,
                               partition, gen, index);
  return n < 0 ? 0 : (size_t)n;
}

/* A decimal number of at most 19 digits at *p (advanced), else -1. */
static int64_t number(const char **p, const char *end) {
  int64_t v = 0;
  int digits = 0;
  while (*p < end && **p >= '0' && **p <= '9' && digits < 19) {
    v = v * 10 + (**p - '0');
    (*p)++;
    digits++;
  }
  return digits ? v : -1;
}

int snaptopic_key_parse(const void *key, size_t len, int32_t *partition, uint64_t *gen,
                        int64_t *index) {
  const char *p = key, *end = p + len;
  if (!key)
    return -1;
  int64_t part = number(&p, end);
  if (part < 0 || part > INT32_MAX || p == end || *p++ != '/')
    return -1;
  int64_t g = number(&p, end);
  if (g < 0 || p == end || *p++ != '/')
    return -1;
  int64_t i;
  if (end - p == 1 && *p == 'm')
    i = -1, p++;
  else if ((i = number(&p, end)) < 0 || i > UINT32_MAX)
    return -1;
  if (p != end)
    return -1;
  *partition = (int32_t)part;
  *gen = (uint64_t)g;
  *index = i;
  return 0;
}

/* ---- the store ---- */

/* What is known of one generation in a partition: enough to number the
 * next one and to delete it. */
typedef struct known_gen {
  uint64_t gen;
  uint32_t chunks; /* keys "P/G/0" .. "P/G/chunks-1" may be live */
  int complete;    /* its manifest is live (acknowledged, or read) */
} known_gen;

typedef struct part_known {
  int read;         /* the partition was read (or written) since the store opened */
  uint64_t max_gen; /* the greatest generation seen in it, any key */
  int n, cap;
  known_gen *gens;
} part_known;

typedef struct topic_store {
  snapshot_store base;
  kafka_mode *km;
  char topic[256];
  char prefix[SNAPSHOT_SHARD_ID_MAX]; /* "kafka.<input topic>." */
  int partitions;                     /* of the snapshot topic */
  size_t chunk;                       /* payload bytes per chunk */
  int ack_seconds;                    /* longest wait for an acknowledgement */
  rd_kafka_t *producer, *reader;
  rd_kafka_topic_t *reader_topic;
  pthread_mutex_t lock; /* known[] and the reader */
  part_known known[MAX_PARTITIONS];
} topic_store;

/* Acknowledgements of one save's messages. Freed by the waiter once none is
 * pending (a wait that gives up leaves it: a late report may still come). */
typedef struct acks {
  atomic_int pending;
  atomic_int failed;
  char why[256];
} acks;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk, (void)opaque;
  acks *a = m->_private;
  if (!a)
    return; /* a tombstone: pruning is best effort */
  if (m->err && !atomic_exchange(&a->failed, 1))
    snprintf(a->why, sizeof a->why, "%s", rd_kafka_err2str(m->err));
  atomic_fetch_sub(&a->pending, 1); /* the last touch: the waiter may free it now */
}

/* The input partition of shard id "kafka.<topic>.<P>", or -1. */
static int32_t partition_of(const topic_store *ts, const char *shard_id) {
  size_t n = strlen(ts->prefix);
  if (strncmp(shard_id, ts->prefix, n) != 0)
    return -1;
  const char *p = shard_id + n, *end = p + strlen(p);
  int64_t v = number(&p, end);
  return v < 0 || p != end || v >= MAX_PARTITIONS ? -1 : (int32_t)v;
}

static int check_partition(const topic_store *ts, const char *shard_id, int32_t *p, char *err,
                           size_t errlen) {
  *p = partition_of(ts, shard_id);
  if (*p < 0) {
    snprintf(err, errlen, "snapshot topic %s: shard %s is not one of input topic %s", ts->topic,
             shard_id, ts->km->opt->topic);
    return -1;
  }
  if (*p >= ts->partitions) {
    snprintf(err, errlen,
             "snapshot topic %s has %d partitions, so input partition %" PRId32
             " has none: give it as many partitions as the input topic (or more)",
             ts->topic, ts->partitions, *p);
    return -1;
  }
  return 0;
}

static known_gen *known_find(part_known *k, uint64_t gen, int add) {
  for (int i = 0; i < k->n; i++)
    if (k->gens[i].gen == gen)
      return &k->gens[i];
  if (!add)
    return NULL;
  if (k->n == k->cap) {
    int cap = k->cap ? k->cap * 2 : 8;
    known_gen *g = realloc(k->gens, (size_t)cap * sizeof *g);
    if (!g)
      return NULL;
    k->gens = g;
    k->cap = cap;
  }
  known_gen *g = &k->gens[k->n++];
  memset(g, 0, sizeof *g);
  g->gen = gen;
  return g;
}

/* Produce one message (a copy; value NULL: a tombstone) to partition p,
 * waiting while the queue is full. 0, or -1 with librdkafka's reason. */
static int produce(topic_store *ts, int32_t p, const char *key, size_t klen, const void *value,
                   size_t vlen, acks *a, char *why, size_t whylen) {
  double give_up = clock_seconds() + ts->ack_seconds;
  for (;;) {
    if (a)
      atomic_fetch_add(&a->pending, 1);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        ts->producer, RD_KAFKA_V_TOPIC(ts->topic), RD_KAFKA_V_PARTITION(p),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, klen),
        RD_KAFKA_V_VALUE((void *)value, vlen), RD_KAFKA_V_OPAQUE(a), RD_KAFKA_V_END);
    if (!e)
      return 0;
    if (a)
      atomic_fetch_sub(&a->pending, 1);
    if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || clock_seconds() > give_up) {
      snprintf(why, whylen, "%s", rd_kafka_err2str(e));
      return -1;
    }
    rd_kafka_poll(ts->producer, 10);
  }
}

/* Wait until every message of a is acknowledged (or failed). 0, or -1 with
 * the first failure's reason. Frees a unless it gave up. */
static int wait_acks(topic_store *ts, acks *a, char *why, size_t whylen) {
  double give_up = clock_seconds() + ts->ack_seconds;
  while (atomic_load(&a->pending) > 0 && clock_seconds() < give_up)
    rd_kafka_poll(ts->producer, 20);
  if (atomic_load(&a->pending) > 0) {
    snprintf(why, whylen, "no acknowledgement within %d s", ts->ack_seconds);
    return -1; /* a is left: its reports may still come */
  }
  int rc = 0;
  if (atomic_load(&a->failed)) {
    snprintf(why, whylen, "%s", a->why);
    rc = -1;
  }
  free(a);
  return rc;
}

/* wait_acks for what was produced into a, also after a failed produce (a
 * must outlive its reports); *rc becomes -1 on any failure, with the first
 * reason kept in why. Returns *rc. */
static int wait_chunks(topic_store *ts, acks *a, int *rc, char *why, size_t whylen) {
  char acked_why[300];
  if (wait_acks(ts, a, acked_why, sizeof acked_why) < 0 && *rc == 0) {
    snprintf(why, whylen, "%s", acked_why);
    *rc = -1;
  }
  return *rc;
}

/* img encoded as the snapshot file's bytes, in memory (an anonymous file:
 * the encoder writes to a descriptor). 0, or -1 with a reason. */
static int encode(const snapshot_image *img, unsigned char **data, size_t *size, char *err,
                  size_t errlen) {
  *data = NULL;
  int fd = memfd_create("regstream-snapshot", MFD_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "snapshot of %s: memfd_create: %s", snapshot_image_meta(img)->shard_id,
             strerror(errno));
    return -1;
  }
  uint64_t bytes = 0;
  char why[400];
  if (snapshot_image_encode(img, fd, &bytes, why, sizeof why) < 0) {
    close(fd);
    snprintf(err, errlen, "%s", why);
    return -1;
  }
  unsigned char *buf = malloc(bytes ? bytes : 1);
  size_t got = 0;
  while (buf && got < bytes) {
    ssize_t r = pread(fd, buf + got, bytes - got, (off_t)got);
    if (r <= 0) {
      if (r < 0 && errno == EINTR)
        continue;
      free(buf);
      buf = NULL;
    } else {
      got += (size_t)r;
    }
  }
  close(fd);
  if (!buf) {
    snprintf(err, errlen, "snapshot of %s: out of memory or a read error holding %" PRIu64 " bytes",
             snapshot_image_meta(img)->shard_id, bytes);
    return -1;
  }
  *data = buf;
  *size = (size_t)bytes;
  return 0;
}

static uint64_t new_nonce(void) {
  uint64_t n = 0;
  if (getrandom(&n, sizeof n, 0) != (ssize_t)sizeof n)
    n = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid() ^ (uint64_t)(clock_seconds() * 1e9);
  return n;
}

struct gen_data;
static int read_partition(topic_store *ts, int32_t p, struct gen_data **out, int *out_n, char *err,
                          size_t errlen);

/* ---- saving ---- */

/* A save that is not acknowledged fails like a folder store's disk
 * failure: the writer keeps the failure and the run stops with it (a
 * snapshot that could not be written does not count, and going on would
 * lose at the next crash what it should have kept); the restart resumes
 * from the newest snapshot acknowledged before. The reason is broker
 * trouble, never bad data. */
static int topic_save(snapshot_store *st, const snapshot_image *img, size_t *bytes, char *err,
                      size_t errlen) {
  topic_store *ts = (topic_store *)st;
  const snapshot_meta *meta = snapshot_image_meta(img);
  int32_t p;
  if (check_partition(ts, meta->shard_id, &p, err, errlen) < 0)
    return -1;
  unsigned char *data;
  size_t size;
  if (encode(img, &data, &size, err, errlen) < 0)
    return -1;

  pthread_mutex_lock(&ts->lock);
  part_known *k = &ts->known[p];
  int rc = k->read ? 0 : read_partition(ts, p, NULL, NULL, err, errlen);
  uint64_t gen = ++k->max_gen;
  uint32_t chunks = size ? (uint32_t)((size + ts->chunk - 1) / ts->chunk) : 1;
  known_gen *g = rc < 0 ? NULL : known_find(k, gen, 1);
  if (g)
    g->chunks = chunks;
  else if (rc == 0)
    snprintf(err, errlen, "snapshot of %s: out of memory", meta->shard_id);
  pthread_mutex_unlock(&ts->lock);
  if (!g) {
    free(data);
    return -1;
  }

  uint64_t nonce = new_nonce();
  char key[SNAPTOPIC_KEY_MAX], why[300] = "";
  unsigned char *value = malloc(SNAPTOPIC_CHUNK_HEADER + ts->chunk);
  acks *a = calloc(1, sizeof *a);
  const char *step = "a chunk";
  rc = value && a ? 0 : -1;
  if (rc < 0)
    snprintf(why, sizeof why, "out of memory");
  for (uint32_t i = 0; rc == 0 && i < chunks; i++) {
    size_t at = (size_t)i * ts->chunk, n = size - at < ts->chunk ? size - at : ts->chunk;
    memcpy(value, chunk_magic, 8);
    put64(value + 8, gen);
    put64(value + 16, nonce);
    put32(value + 24, i);
    put32(value + 28, crc_of(data + at, n));
    memcpy(value + SNAPTOPIC_CHUNK_HEADER, data + at, n);
    size_t klen = snaptopic_key(p, gen, i, key);
    rc = produce(ts, p, key, klen, value, SNAPTOPIC_CHUNK_HEADER + n, a, why, sizeof why);
  }
  if (a && wait_chunks(ts, a, &rc, why, sizeof why) == 0) {
    /* every chunk is in: the manifest makes the snapshot exist */
    snaptopic_manifest m;
    memset(&m, 0, sizeof m);
    m.gen = gen;
    m.nonce = nonce;
    m.chunks = chunks;
    m.bytes = size;
    m.crc = crc_of(data, size);
    m.position = meta->position;
    m.fingerprint = meta->fingerprint;
    m.written_unix_ms = meta->written_unix_ms;
    snprintf(m.shard_id, sizeof m.shard_id, "%s", meta->shard_id);
    unsigned char mv[SNAPTOPIC_MANIFEST_MAX];
    size_t mlen = snaptopic_manifest_encode(&m, mv);
    size_t klen = snaptopic_key(p, gen, -1, key);
    step = "its manifest";
    if (!(a = calloc(1, sizeof *a))) {
      snprintf(why, sizeof why, "out of memory");
      rc = -1;
    } else {
      rc = produce(ts, p, key, klen, mv, mlen, a, why, sizeof why);
      wait_chunks(ts, a, &rc, why, sizeof why);
    }
  } else if (!a) {
    rc = -1;
  }
  free(value);
  free(data);
  if (rc < 0) {
    snprintf(err, errlen,
             "snapshot of %s to topic %s partition %" PRId32 " (generation %" PRIu64
             "): %s was not acknowledged: %s (are the brokers at %s reachable? rerun when they "
             "are: the snapshots acknowledged before keep the work)",
             meta->shard_id, ts->topic, p, gen, step, why, ts->km->opt->brokers);
    return -1;
  }
  pthread_mutex_lock(&ts->lock);
  if ((g = known_find(&ts->known[p], gen, 1)))
    g->complete = 1;
  pthread_mutex_unlock(&ts->lock);
  if (bytes)
    *bytes = size;
  return 0;
}

/* ---- pruning ---- */

static int by_gen_desc(const void *x, const void *y) {
  uint64_t a = ((const known_gen *)x)->gen, b = ((const known_gen *)y)->gen;
  return (a < b) - (a > b);
}

/* As the folder store: all but the newest SNAPSHOT_KEEP snapshots go, and
 * the leftovers of failed saves older than the newest snapshot; none at or
 * above generation floor goes (UINT64_MAX: no floor). Tombstones, the
 * manifest's first (a reader never sees a manifest whose chunks are gone),
 * not waited for: a lost one (a run killed before they were delivered)
 * leaves a generation that the next read finds and the next prune, after a
 * save or a load, deletes. */
static void prune_partition(topic_store *ts, int32_t p, uint64_t floor) {
  pthread_mutex_lock(&ts->lock);
  part_known *k = &ts->known[p];
  if (k->n > 1)
    qsort(k->gens, (size_t)k->n, sizeof *k->gens, by_gen_desc);
  uint64_t newest = 0;
  for (int i = 0; i < k->n && !newest; i++)
    if (k->gens[i].complete)
      newest = k->gens[i].gen;
  int kept = 0, left = 0, stopped = 0;
  char key[SNAPTOPIC_KEY_MAX], why[128];
  for (int i = 0; i < k->n; i++) {
    known_gen *g = &k->gens[i];
    int keep = g->complete ? kept++ < SNAPSHOT_KEEP || g->gen >= floor : g->gen > newest;
    size_t klen = snaptopic_key(p, g->gen, -1, key);
    /* a tombstone that cannot be queued: the rest stays known, and the
     * next prune tries again */
    if (keep || stopped ||
        (stopped = produce(ts, p, key, klen, NULL, 0, NULL, why, sizeof why) < 0)) {
      k->gens[left++] = *g;
      continue;
    }
    for (uint32_t c = 0; c < g->chunks; c++) {
      klen = snaptopic_key(p, g->gen, c, key);
      produce(ts, p, key, klen, NULL, 0, NULL, why, sizeof why);
    }
  }
  k->n = left;
  pthread_mutex_unlock(&ts->lock);
  rd_kafka_poll(ts->producer, 0);
}

static void topic_prune(snapshot_store *st, const char *shard_id) {
  topic_store *ts = (topic_store *)st;
  int32_t p = partition_of(ts, shard_id);
  if (p >= 0 && p < ts->partitions)
    prune_partition(ts, p, UINT64_MAX);
}

/* ---- reading a partition ---- */

typedef struct chunk_data {
  unsigned char *value;
  size_t len;
} chunk_data;

/* One generation as read: its manifest and the chunks' latest values. */
typedef struct gen_data {
  uint64_t gen;
  int manifest;     /* 1 read and whole, -1 read and damaged, 0 none (or tombstoned) */
  int pruned;       /* its manifest was tombstoned: its chunks are not kept */
  uint32_t highest; /* one past the greatest chunk index seen */
  snaptopic_manifest m;
  uint32_t cap;
  chunk_data *chunks;
} gen_data;

static void gens_free(gen_data *g, int n) {
  for (int i = 0; g && i < n; i++) {
    for (uint32_t c = 0; c < g[i].cap; c++)
      free(g[i].chunks[c].value);
    free(g[i].chunks);
  }
  free(g);
}

static void gen_drop_chunks(gen_data *g) {
  for (uint32_t c = 0; c < g->cap; c++) {
    free(g->chunks[c].value);
    g->chunks[c].value = NULL;
  }
}

/* One record of partition p: into gens (keep: hold chunk values). -1 when
 * memory is short. */
static int take(gen_data **gens, int *n, int *cap, const rd_kafka_message_t *m, int32_t p, int keep,
                uint64_t *max_gen) {
  int32_t part;
  uint64_t gen;
  int64_t index;
  if (snaptopic_key_parse(m->key, m->key_len, &part, &gen, &index) < 0 || part != p)
    return 0; /* not ours: ignored */
  if (gen > *max_gen)
    *max_gen = gen;
  gen_data *g = NULL;
  for (int i = 0; i < *n && !g; i++)
    if ((*gens)[i].gen == gen)
      g = &(*gens)[i];
  if (!g) {
    if (!m->payload)
      return 0; /* a tombstone of a generation already gone */
    if (*n == *cap) {
      int ncap = *cap ? *cap * 2 : 8;
      gen_data *grown = realloc(*gens, (size_t)ncap * sizeof *grown);
      if (!grown)
        return -1;
      *gens = grown;
      *cap = ncap;
    }
    g = &(*gens)[(*n)++];
    memset(g, 0, sizeof *g);
    g->gen = gen;
  }
  if (index < 0) {
    if (!m->payload) {
      g->manifest = 0;
      g->pruned = 1;
      gen_drop_chunks(g);
    } else {
      g->manifest = snaptopic_manifest_decode(m->payload, m->len, &g->m) == 0 ? 1 : -1;
      g->pruned = 0;
    }
    return 0;
  }
  uint32_t i = (uint32_t)index;
  if (m->payload && i >= g->highest)
    g->highest = i + 1;
  if (!keep || (g->pruned && m->payload))
    return 0;
  if (i >= g->cap) {
    if (!m->payload)
      return 0;
    uint32_t ncap = g->cap ? g->cap : 8;
    while (ncap <= i)
      ncap *= 2;
    chunk_data *grown = realloc(g->chunks, ncap * sizeof *grown);
    if (!grown)
      return -1;
    memset(grown + g->cap, 0, (ncap - g->cap) * sizeof *grown);
    g->chunks = grown;
    g->cap = ncap;
  }
  free(g->chunks[i].value);
  g->chunks[i].value = NULL;
  g->chunks[i].len = 0;
  if (m->payload) {
    if (!(g->chunks[i].value = malloc(m->len ? m->len : 1)))
      return -1;
    memcpy(g->chunks[i].value, m->payload, m->len);
    g->chunks[i].len = m->len;
  }
  return 0;
}

/* Read partition p of the topic from its start to its high watermark now,
 * through the reader (a simple consumer: no group), and note its generations in
 * known[p]. With out, the generations read, chunks held (free them with
 * gens_free). Under the lock. 0, or -1 with a reason. */
static int read_partition(topic_store *ts, int32_t p, gen_data **out, int *out_n, char *err,
                          size_t errlen) {
  const char *brokers = ts->km->opt->brokers;
  int64_t low = -1, high = -1;
  rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
  /* A topic just made, or a leader moving in a rebalance, answers "not
   * leader" for a moment: ask again for up to about 10 s. */
  for (int tries = 0; tries < 20; tries++) {
    e = rd_kafka_query_watermark_offsets(ts->producer, ts->topic, p, &low, &high, 10000);
    if (!e || e == RD_KAFKA_RESP_ERR__TIMED_OUT)
      break;
    struct timespec pause = {0, 500 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  if (e) {
    snprintf(err, errlen,
             "snapshot topic %s partition %" PRId32 ": cannot read where it ends: %s (are the "
             "brokers at %s reachable? rerun when they are)",
             ts->topic, p, rd_kafka_err2str(e), brokers);
    return -1;
  }
  gen_data *gens = NULL;
  int n = 0, cap = 0, rc = 0;
  uint64_t max_gen = ts->known[p].max_gen;
  if (high > low) {
    /* The simple consumer: a partition read from an offset, no group. */
    if (rd_kafka_consume_start(ts->reader_topic, p, low) < 0) {
      snprintf(err, errlen, "snapshot topic %s partition %" PRId32 ": cannot read it: %s",
               ts->topic, p, rd_kafka_err2str(rd_kafka_last_error()));
      return -1;
    }
    int64_t next = low;
    double stall = clock_seconds() + READ_STALL_SECONDS;
    char last[256] = "nothing came";
    while (next < high) {
      rd_kafka_message_t *m = rd_kafka_consume(ts->reader_topic, p, 200);
      if (!m) {
        if (clock_seconds() > stall) {
          snprintf(err, errlen,
                   "snapshot topic %s partition %" PRId32 ": read up to offset %" PRId64
                   " of %" PRId64 ", then nothing for %d s (%s; are the brokers at %s "
                   "reachable? rerun when they are)",
                   ts->topic, p, next, high, READ_STALL_SECONDS, last, brokers);
          rc = -1;
          break;
        }
        continue;
      }
      if (m->err) {
        snprintf(last, sizeof last, "%s", rd_kafka_message_errstr(m));
        int fatal = m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                    m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                    m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
                    m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET;
        rd_kafka_message_destroy(m);
        if (fatal) {
          snprintf(err, errlen, "snapshot topic %s partition %" PRId32 ": %s", ts->topic, p, last);
          rc = -1;
          break;
        }
        continue;
      }
      if (m->partition == p && m->offset >= next) {
        next = m->offset + 1;
        stall = clock_seconds() + READ_STALL_SECONDS;
        if (take(&gens, &n, &cap, m, p, out != NULL, &max_gen) < 0) {
          snprintf(err, errlen, "snapshot topic %s partition %" PRId32 ": out of memory reading it",
                   ts->topic, p);
          rc = -1;
        }
      }
      rd_kafka_message_destroy(m);
      if (rc < 0)
        break;
    }
    rd_kafka_consume_stop(ts->reader_topic, p);
  }
  if (rc == 0) {
    part_known *k = &ts->known[p];
    k->n = 0;
    k->read = 1;
    k->max_gen = max_gen;
    for (int i = 0; i < n && rc == 0; i++) {
      /* A manifest tombstoned is a generation pruned (its chunks'
       * tombstones follow it); chunks without a manifest are a save cut
       * short, to be pruned. */
      if (gens[i].pruned || (!gens[i].highest && gens[i].manifest == 0))
        continue;
      known_gen *g = known_find(k, gens[i].gen, 1);
      if (!g) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
        break;
      }
      g->chunks = gens[i].highest;
      if (gens[i].manifest == 1 && gens[i].m.chunks > g->chunks)
        g->chunks = gens[i].m.chunks;
      g->complete = gens[i].manifest != 0;
    }
  }
  if (rc < 0 || !out) {
    gens_free(gens, n);
    return rc;
  }
  *out = gens;
  *out_n = n;
  return 0;
}

/* ---- loading ---- */

/* Generation g's snapshot bytes, checked: every chunk there, of this
 * writer, whole, adding up to the manifest's size and checksum. NULL with a
 * reason (damage) in why, or with *memory set when memory is short. */
static unsigned char *assemble(const gen_data *g, size_t *size, int *memory, char *why,
                               size_t whylen) {
  const snaptopic_manifest *m = &g->m;
  *memory = 0;
  if (m->gen != g->gen) {
    snprintf(why, whylen, "its manifest is of generation %" PRIu64, m->gen);
    return NULL;
  }
  unsigned char *buf = malloc(m->bytes ? m->bytes : 1);
  if (!buf) {
    *memory = 1;
    snprintf(why, whylen, "out of memory for %" PRIu64 " bytes", m->bytes);
    return NULL;
  }
  size_t at = 0;
  for (uint32_t i = 0; i < m->chunks; i++) {
    const chunk_data *c = i < g->cap ? &g->chunks[i] : NULL;
    if (!c || !c->value) {
      snprintf(why, whylen, "chunk %" PRIu32 " of %" PRIu32 " is missing", i, m->chunks);
      goto damaged;
    }
    const unsigned char *v = c->value;
    size_t n = c->len - SNAPTOPIC_CHUNK_HEADER;
    if (c->len < SNAPTOPIC_CHUNK_HEADER || memcmp(v, chunk_magic, 8) != 0 ||
        get64(v + 8) != g->gen || get32(v + 24) != i) {
      snprintf(why, whylen, "chunk %" PRIu32 " of %" PRIu32 " is not one", i, m->chunks);
      goto damaged;
    }
    if (get64(v + 16) != m->nonce) {
      snprintf(why, whylen, "chunk %" PRIu32 " of %" PRIu32 " is of another writer", i, m->chunks);
      goto damaged;
    }
    if (get32(v + 28) != crc_of(v + SNAPTOPIC_CHUNK_HEADER, n)) {
      snprintf(why, whylen, "chunk %" PRIu32 " of %" PRIu32 ": checksum mismatch", i, m->chunks);
      goto damaged;
    }
    if (n > m->bytes - at) {
      snprintf(why, whylen, "the chunks hold more than the manifest's %" PRIu64 " bytes", m->bytes);
      goto damaged;
    }
    memcpy(buf + at, v + SNAPTOPIC_CHUNK_HEADER, n);
    at += n;
  }
  if (at != m->bytes) {
    snprintf(why, whylen, "the chunks hold %zu bytes, the manifest says %" PRIu64, at, m->bytes);
    goto damaged;
  }
  if (crc_of(buf, at) != m->crc) {
    snprintf(why, whylen, "checksum mismatch (the snapshot is damaged)");
    goto damaged;
  }
  *size = at;
  return buf;
damaged:
  free(buf);
  return NULL;
}

static int by_data_gen_desc(const void *x, const void *y) {
  uint64_t a = ((const gen_data *)x)->gen, b = ((const gen_data *)y)->gen;
  return (a < b) - (a > b);
}

static int topic_load(snapshot_store *st, const char *shard_id, uint64_t fingerprint, shard *s,
                      snapshot_meta *meta, char *err, size_t errlen) {
  topic_store *ts = (topic_store *)st;
  int32_t p;
  if (check_partition(ts, shard_id, &p, err, errlen) < 0)
    return -1;
  gen_data *gens = NULL;
  int n = 0;
  pthread_mutex_lock(&ts->lock);
  int rc = read_partition(ts, p, &gens, &n, err, errlen);
  pthread_mutex_unlock(&ts->lock);
  if (rc < 0)
    return -1;
  if (n > 1)
    qsort(gens, (size_t)n, sizeof *gens, by_data_gen_desc);
  uint64_t loaded = 0;
  for (int i = 0; i < n; i++) {
    gen_data *g = &gens[i];
    if (g->manifest == 0)
      continue; /* no snapshot (yet, or any more): chunks of a save that did not finish */
    char name[SNAPTOPIC_KEY_MAX + 300], why[384];
    snprintf(name, sizeof name, "%" PRId32 "/%" PRIu64 " in topic %s", p, g->gen, ts->topic);
    if (g->manifest < 0) {
      log_msg(LOG_WARN, "snapshot",
              "snapshot %s is unusable (its manifest is damaged); trying an older one", name);
      continue;
    }
    if (g->m.fingerprint != fingerprint) {
      snprintf(err, errlen,
               "snapshot %s: written with another configuration (fingerprint %016" PRIx64
               ", this run %016" PRIx64 "). Run with the rule options and reader schema that "
               "wrote it, or start afresh with a new --snapshot-topic",
               name, g->m.fingerprint, fingerprint);
      rc = -1;
      break;
    }
    if (strcmp(g->m.shard_id, shard_id) != 0) {
      snprintf(err, errlen,
               "snapshot %s holds shard %s, not %s: give each input topic a snapshot topic "
               "of its own",
               name, g->m.shard_id, shard_id);
      rc = -1;
      break;
    }
    size_t size = 0;
    int memory;
    unsigned char *data = assemble(g, &size, &memory, why, sizeof why);
    gen_drop_chunks(g);
    if (!data && memory) {
      snprintf(err, errlen, "snapshot %s: %s", name, why);
      rc = -1;
      break;
    }
    snapshot_read_kind kind = data
                                  ? snapshot_read_checked_mem(data, size, shard_id, g->m.position,
                                                              fingerprint, s, meta, why, sizeof why)
                                  : SNAPSHOT_READ_DAMAGED;
    free(data);
    if (kind == SNAPSHOT_READ_OK) {
      loaded = g->gen;
      rc = 1;
      break;
    }
    if (kind == SNAPSHOT_READ_DAMAGED) {
      log_msg(LOG_WARN, "snapshot", "snapshot %s is unusable (%s); trying an older one", name, why);
      continue;
    }
    if (kind == SNAPSHOT_READ_REFUSED)
      snprintf(err, errlen,
               "snapshot %s: %s. Run with the rule options and reader schema that wrote it, or "
               "start afresh with a new --snapshot-topic",
               name, why);
    else
      snprintf(err, errlen, "snapshot %s: %s", name, why);
    rc = -1;
    break;
  }
  gens_free(gens, n);
  /* Killed runs may have left generations their tombstones never reached:
   * a run that resumes and saves nothing new would keep them for ever. The
   * one loaded and all newer (damaged, or a save cut short) stay. */
  if (loaded)
    prune_partition(ts, p, loaded);
  return rc;
}

/* ---- opening and closing ---- */

static void topic_free(snapshot_store *st) {
  topic_store *ts = (topic_store *)st;
  if (ts->producer) {
    rd_kafka_flush(ts->producer, 10000); /* the last tombstones; best effort */
    rd_kafka_destroy(ts->producer);
  }
  if (ts->reader_topic)
    rd_kafka_topic_destroy(ts->reader_topic);
  if (ts->reader)
    rd_kafka_destroy(ts->reader);
  for (int p = 0; p < MAX_PARTITIONS; p++)
    free(ts->known[p].gens);
  pthread_mutex_destroy(&ts->lock);
  free(ts);
}

static const snapshot_store_ops topic_ops = {topic_save, topic_load, topic_prune, topic_free};

/* Every generation on all in-sync replicas, in order, once; the snapshot
 * is zstd-compressed already. */
static const char *const producer_defaults[] = {"enable.idempotence=true", "acks=all",
                                                "linger.ms=5", "compression.type=none",
                                                "message.timeout.ms=120000"};
static const char *const reader_defaults[] = {
    "enable.auto.commit=false", "enable.auto.offset.store=false", "enable.partition.eof=false",
    "auto.offset.reset=earliest", "fetch.wait.max.ms=50"};

/* The snapshot topic's settings: keys are never reused, so compaction only
 * ever removes what a tombstone deleted; a deleted generation stays
 * readable for min.compaction.lag.ms at least, closed segments (segment.ms)
 * get cleaned, and a chunk (512 KiB and its header) fits max.message.bytes. */
static const char *const topic_config[] = {
    "min.compaction.lag.ms", "600000",  "segment.ms", "3600000",
    "max.message.bytes",     "1048588", NULL};

static rd_kafka_t *new_client(topic_store *ts, rd_kafka_type_t type, char *err, size_t errlen) {
  const kafka_run_options *o = ts->km->opt;
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  const char *items[KAFKA_MAX_CONF];
  int n = 0;
  for (int i = 0; i < o->conf_count && n < KAFKA_MAX_CONF; i++)
    if (type == RD_KAFKA_PRODUCER || strncmp(o->conf[i], "group.", 6) != 0)
      items[n++] = o->conf[i]; /* the reader joins no group */
  int producer = type == RD_KAFKA_PRODUCER;
  const char *const *defaults = producer ? producer_defaults : reader_defaults;
  if (kafka_conf_apply(conf, o->brokers, defaults, 5, err, errlen) < 0 ||
      kafka_conf_apply(conf, NULL, items, n, err, errlen) < 0) {
    rd_kafka_conf_destroy(conf);
    return NULL;
  }
  if (producer) {
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    char v[64];
    size_t vlen = sizeof v;
    long max = 1000000, timeout = 120000;
    if (rd_kafka_conf_get(conf, "message.max.bytes", v, &vlen) == RD_KAFKA_CONF_OK)
      max = atol(v);
    vlen = sizeof v;
    if (rd_kafka_conf_get(conf, "message.timeout.ms", v, &vlen) == RD_KAFKA_CONF_OK)
      timeout = atol(v);
    /* A chunk, its header, key and the batch's framing within one request. */
    long chunk = max - 512 < SNAPTOPIC_CHUNK_MAX ? max - 512 : SNAPTOPIC_CHUNK_MAX;
    ts->chunk = (size_t)(chunk < 256 ? 256 : chunk);
    ts->ack_seconds = (int)(timeout / 1000) + ACK_EXTRA_SECONDS;
  }
  return kafka_client_new(type, conf, "client for the snapshot topic", err, errlen);
}

snapshot_store *snapshot_topic_open(kafka_mode *km, char *err, size_t errlen) {
  const kafka_run_options *o = km->opt;
  topic_store *ts = calloc(1, sizeof *ts);
  if (!ts) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  ts->base.ops = &topic_ops;
  ts->base.what = "--snapshot-topic";
  ts->km = km;
  pthread_mutex_init(&ts->lock, NULL);
  snprintf(ts->topic, sizeof ts->topic, "%s", o->snapshots.topic);
  snprintf(ts->prefix, sizeof ts->prefix, "kafka.%s.", o->topic);
  if (!strcmp(o->snapshots.topic, o->topic) || !strcmp(o->snapshots.topic, o->output_topic) ||
      !strcmp(o->snapshots.topic, o->partials_topic) ||
      !strcmp(o->snapshots.topic, o->dead_letter_topic)) {
    snprintf(err, errlen, "--snapshot-topic %s is one of the run's other topics: give it its own",
             o->snapshots.topic);
    goto fail;
  }
  if (!(ts->producer = new_client(ts, RD_KAFKA_PRODUCER, err, errlen)) ||
      !(ts->reader = new_client(ts, RD_KAFKA_CONSUMER, err, errlen)))
    goto fail;
  if (!(ts->reader_topic = rd_kafka_topic_new(ts->reader, ts->topic, NULL))) {
    snprintf(err, errlen, "snapshot topic %s: %s", ts->topic,
             rd_kafka_err2str(rd_kafka_last_error()));
    goto fail;
  }
  return &ts->base;
fail:
  topic_free(&ts->base);
  return NULL;
}

int snapshot_topic_prepare(snapshot_store *st, char *err, size_t errlen) {
  topic_store *ts = (topic_store *)st;
  const kafka_run_options *o = ts->km->opt;
  /* As many partitions as the input topic: shard P lives in partition P. */
  int inputs = ts->km->clients.input_partitions;
  int rf = o->replication_factor ? o->replication_factor : -1;
  kafka_topic_spec spec = {ts->topic, inputs, rf, 1, topic_config};
  int created;
  if (kafka_topic_ensure(ts->producer, o->brokers, &spec, NULL, &created, err, errlen) < 0)
    return -1;
  const rd_kafka_metadata_t *md =
      kafka_metadata_fetch(ts->producer, o->brokers, 10000, err, errlen);
  if (!md)
    return -1;
  const rd_kafka_metadata_topic_t *t = kafka_metadata_topic(md, ts->topic);
  ts->partitions = t && !t->err ? t->partition_cnt : 0;
  rd_kafka_metadata_destroy(md);
  if (ts->partitions < inputs) {
    snprintf(err, errlen,
             "snapshot topic %s has %d partitions, the input topic %s %d: shard P lives in "
             "partition P, so it needs at least as many (add partitions, or give another "
             "--snapshot-topic)",
             ts->topic, ts->partitions, o->topic, inputs);
    return -1;
  }
  if (created && !o->quiet)
    log_msg(LOG_INFO, "snapshot", "made snapshot topic %s (compacted, %d partitions)", ts->topic,
            ts->partitions);
  return 0;
}
