/* mode.h — the state of one file-mode run, shared by the files of file/
 * (internal: nothing outside file/ includes it):
 *
 *   replay.c    replay_run: inputs, the workers, the watcher thread
 *               (progress, cut writing), the CSV, teardown
 *   pipeline.c  the block pipeline: the ring, claims of the next block,
 *               decoding, applying a block to a worker's shard
 *   cut.c       consistent cuts for snapshots: where the workers meet, the
 *               captures, the writes (the layout of meta.extra atop it)
 *   resume.c    finding and loading the newest complete cut, resuming
 *   observe.c   what --metrics-listen shows: the figures, health, readiness
 *
 * Threads: N workers (pipeline.c, cut.c), the watcher (the thread that
 * called replay_run) and the snapshot writer (the done callback of cut.c).
 * The walk over the input, cuts and failure go under lock; slots are
 * handed over through their atomic tags. */
#ifndef REGSTREAM_FILE_MODE_H
#define REGSTREAM_FILE_MODE_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "avro/decode.h"
#include "avro/ocf.h"
#include "file/replay.h"
#include "metrics/metrics.h"
#include "sink/dead_letter.h"
#include "state/shard.h"
#include "state/snapshotter.h"
#include "util/latch.h"

/* A ring slot's state, in the low bits of its tag. */
enum { SLOT_FREE = 0, SLOT_DECODING = 1, SLOT_READY = 2 };
/* How far ahead the decoder prefetches (file/pipeline.c): a batch's arrays
 * for writing (records) and the block's bytes (bytes). Person-map slots:
 * PERSONMAP_PREFETCH_AHEAD (core/personmap.h). */
enum { STORE_AHEAD = 32, INPUT_AHEAD = 1024 };

/* meta.extra of a file-mode snapshot (see the top of file/cut.c). */
enum {
  X_LAYOUT = 0,
  X_INPUTS = 1,
  X_SEQUENCE = 2,
  X_FILE = 3,
  X_OFFSET = 4,
  X_BLOCK = 5,
  X_RECORD = 6,
  X_DEAD_BYTES = 7,
  X_REJECTED = 8, /* + reason - 1 */
  X_DEAD_PATH = 15,
};
_Static_assert(X_REJECTED + REASON_COUNT - 1 <= X_DEAD_PATH, "rejected counts fit in extra");
_Static_assert((int)X_DEAD_PATH < (int)SNAPSHOT_EXTRA, "the layout fits in extra");
#define REPLAY_SNAPSHOT_LAYOUT 0x525346494c450001ull /* "RSFILE", version 1 */
#define NO_CUT UINT64_MAX

typedef struct record_meta {
  uint32_t index;      /* record number inside the block */
  uint32_t start, end; /* its bytes inside the decoded block */
} record_meta;

/* A block's records of one shard, in input order: what one worker applies
 * of the block. */
typedef struct shard_batch {
  uint32_t count, capacity;
  pm_record *records;
  uint64_t *hashes; /* personmap_hash of each record's person */
  record_meta *meta;
} shard_batch;

typedef struct block_slot {
  _Atomic uint64_t tag; /* sequence << 2 | SLOT_* */
  atomic_uint done;     /* workers that have applied it */
  int file_index;
  ocf_block raw;
  ocf_buf inflated;
  const uint8_t *bytes; /* what the records were decoded from */
  /* The block's valid records scattered by shard as they are decoded
   * (shard w's in batches[w]): each worker reads only its own records, one
   * after the other. */
  shard_batch *batches; /* [workers] */
} block_slot;

typedef struct input {
  ocf_reader *reader;
  pm_plan *plan;
} input;

/* The snapshot cuts of a run (file/cut.c): the one being taken, the one
 * being written, and their statistics. */
typedef struct replay_cut {
  _Atomic uint64_t at; /* S of the cut being taken, NO_CUT when none */
  _Atomic int wanted;  /* set by the watcher: the seconds interval is up */
  /* the rest under the run's lock: */
  uint64_t next_records;  /* the records interval: cut when records_seen reaches it */
  uint64_t last_sequence; /* no second cut at the same boundary */
  double last_time;       /* when the last cut was released (or the run began) */
  int file;               /* the walk's state at the cut */
  ocf_position position;
  unsigned arrived, captured; /* workers at the cut, and done capturing */
  int meta_ready;
  uint64_t epoch; /* bumped when a cut is released */
  snapshot_meta meta;
  double started, quiet;   /* when it was asked for, and when all workers met */
  snapshot_image **images; /* [workers]: captured, waiting for the watcher */
  /* writing, by the snapshotter */
  snapshotter *writer;
  int busy;              /* a cut is captured and not yet all written */
  int submitted;         /* its images went to the writer */
  unsigned written_n;    /* images of the cut the writer is done with */
  int write_ok;          /* all of them written so far */
  char write_error[700]; /* the first reason one was not */
  int synced;            /* the dead-letter file was synced for it */
  size_t bytes;
  double write_started;
  /* statistics */
  uint64_t count, written, snapshot_bytes;
  int64_t last_written_at; /* the position of the last cut written */
  double pause_sum, pause_max, capture_sum, capture_max, write_seconds, last_pause;
  double last_written_time, last_write_seconds; /* the last cut written (metrics) */
  uint64_t last_bytes;
} replay_cut;

/* A worker's count of records applied (one writer: the worker, once per
 * block, relaxed), in a cache line of its own: the metrics listener reads. */
typedef struct worker_tally {
  alignas(64) _Atomic uint64_t applied;
} worker_tally;

typedef struct replay {
  const replay_options *cfg;
  unsigned workers;
  input *inputs;
  int input_count;
  shard *shards;
  dead_letter *dead;
  block_slot *ring;
  unsigned ring_size;

  pthread_mutex_t lock; /* the walk over the input, waiting and failure */
  pthread_cond_t changed;
  _Atomic uint64_t generation; /* bumped (under lock) on every slot change */
  int walk_file;
  uint64_t next_sequence;
  int walk_done;
  int stopped; /* the signal that ended the walk before the end of the input, or 0 */
  _Atomic uint64_t total_blocks; /* UINT64_MAX until the walk has ended */

  _Atomic uint64_t records_seen;
  latch failure; /* the first failure stops the run */

  /* Snapshots; snapshot_dir NULL: none, and none of this is used. */
  const char *snapshot_dir;
  uint64_t fingerprint, inputs_hash, dead_path_hash;
  uint64_t first_sequence; /* where the workers start (a resumed cut's S) */
  double load_seconds;     /* finding and loading the cut resumed from */
  replay_cut cut;
  unsigned workers_done;
  pthread_cond_t watch; /* signalled when a cut is captured or a worker ends */

  /* More than one worker: month blocks that a shard other than 0 has not
   * touched for retire_records of its records (past months of an input in
   * month order), on their way to shard 0, which alone keeps every month;
   * so a long history's counters are held once, not once per worker
   * (file/pipeline.c). Under retired_lock; retired_waiting: some are. */
  uint64_t retire_records;
  pthread_mutex_t retired_lock;
  rollup retired;
  atomic_int retired_waiting;

  /* --metrics-listen (file/observe.c) */
  worker_tally *tallies;          /* [workers] */
  metrics_server *metrics;        /* NULL without it */
  _Atomic double watch_heartbeat; /* the watcher came round */
  atomic_int finished;            /* the workers are done */
} replay;

typedef struct worker {
  replay *rp;
  unsigned index;
  pthread_t thread;
} worker;

static inline int replay_failed(const replay *rp) {
  return latch_failed(&rp->failure);
}

/* pipeline.c */
/* Record the first failure and wake every waiting thread; _locked: with
 * rp->lock held. */
void replay_fail(replay *rp, const char *why);
void replay_fail_locked(replay *rp, const char *why);
void replay_wake_all(replay *rp);
void *replay_worker_main(void *arg);
/* Worker 0 (or, once the workers are done, the run): shard 0 takes the
 * month blocks waiting in replay.retired. */
void replay_take_retired(replay *rp);

/* cut.c */
/* The failure policy for durable output: append to err what to do about
 * errno e and that the same command then resumes; fail the run with the
 * dead-letter file's error (locked: rp->lock held). */
void cut_append_advice(const replay *rp, int e, char *err, size_t errlen);
void cut_fail_dead_letter(replay *rp, int locked);
/* Under lock, on a claim: is a cut due before the next block? */
int cut_due(replay *rp);
/* Under lock: stop the walk before block next_sequence. */
void cut_start(replay *rp);
/* Worker w has applied every block before the cut: meet, capture, go on. */
void cut_take(replay *rp, unsigned w);
/* The watcher: hand a captured cut's images to the writer. */
void cut_submit(replay *rp);
/* The snapshot writer's callback and gate for cut images. */
void cut_written(void *ctx, const snapshot_meta *meta, int written, size_t bytes, double seconds,
                 const char *err);
int cut_gate(void *ctx);
/* A file-mode shard id, "file.<k>of<n>" (shard k of n), and back (0, or
 * -1 when id is not one). */
void cut_shard_id(unsigned k, unsigned n, char id[SNAPSHOT_SHARD_ID_MAX]);
int cut_parse_shard_id(const char *id, unsigned *k, unsigned *n);
/* Delete file-mode snapshots in dir: with keep_threads 0 all of them and
 * their temporary files, else those of another thread count older than
 * before. */
void cut_remove(const char *dir, unsigned keep_threads, uint64_t before);

/* observe.c: bind (before anything else), serve (once the workers run),
 * and after the workers: keep serving --metrics-linger seconds, close. 0,
 * or -1 with err. */
int replay_metrics_open(replay *rp, char *err, size_t errlen);
int replay_metrics_serve(replay *rp, char *err, size_t errlen);
void replay_metrics_finish(replay *rp);
void replay_metrics_close(replay *rp);

/* resume.c */
uint64_t resume_hash_inputs(const replay *rp);
/* Find, load and continue from the newest complete, valid cut: 1 resumed,
 * 0 none (start from the beginning), -1 refused or failed (err). */
int resume_find(replay *rp, char *err, size_t errlen);

#endif
