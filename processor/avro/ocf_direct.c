/* ocf_direct.c — a container file read past the page cache, into a ring
 * (see ocf_direct.h). Owns the O_DIRECT descriptor, the ring's memory (a
 * memfd mapped twice back to back), its reading thread and the two marks
 * that bound it: fill (read up to here) and done (released up to here). The
 * thread reads the chunk at `at` only while at + CHUNK <= done + RING, so no
 * byte a walker or worker may still read is read over. Framing stays in
 * ocf.c; the choice of which files to read this way stays with the caller.
 *
 * Threads: the reading thread; the walker (ocf_ring_get, ocf_ring_restart,
 * ocf_ring_close, one at a time); releasing workers (ocf_ring_release). The
 * ring's bytes are handed over by fill (stored after the read, loaded
 * before use) and handed back by done. */
#include "avro/ocf_direct.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"

/* One read at a time reads 1.8 GB/s here with O_DIRECT (dd, 1 MiB reads;
 * 0.6 GB/s through the page cache). What a read costs besides the bytes
 * (the request's kick of the virtual disk, the thread's wake-ups and
 * context switches on the workers' cores) is paid per read: on the 20-year
 * history with 2 workers (farm-bench, 3 pairs each), a ring of 4 MiB read
 * in 1 MiB reads took 0.965x the wall time of 2 MiB in 256 KiB reads, its
 * system time 3.96 s against 6.79; 8 MiB in 2 MiB reads took 1.01x that of
 * 4 MiB in 1 MiB (noise). The ring is four reads long: the reading goes on while the
 * oldest byte still in use is less than 3 MiB (the span, the longest block
 * framed in the ring) behind the read's start. */
enum { RING = 4u << 20, CHUNK = 1u << 20, PROBE = 4096 };

struct ocf_ring {
  int fd;        /* O_DIRECT */
  uint8_t *ring; /* 2 * RING of address space, its second half the first again */
  uint64_t size; /* the file's */
  void (*landed)(void *arg);
  void *arg;
  pthread_mutex_t lock;
  pthread_cond_t filled; /* fill moved, or the reading failed (walker waits) */
  pthread_cond_t room;   /* done moved, or the reading is to end (reader waits) */
  pthread_t thread;
  int running;              /* the thread was started and not joined */
  int closing;              /* under lock: the thread is to end */
  uint64_t start;           /* where the thread began reading (set before it starts) */
  _Atomic uint64_t fill;    /* the file's bytes [start, fill) are in the ring */
  _Atomic uint64_t done;    /* nobody reads bytes before this any more */
  _Atomic uint64_t room_at; /* the reader waits for done to reach this; UINT64_MAX: it does not */
  _Atomic int failed;       /* errno of a failed read; why is written before */
  _Atomic int polled;       /* a poll found its bytes not yet read: call landed */
  char why[300];
};

size_t ocf_ring_span(void) {
  return RING - CHUNK;
}

/* Under lock: the reading has failed with errno e. */
static void ring_fail(ocf_ring *g, int e, const char *fmt, uint64_t at) {
  snprintf(g->why, sizeof g->why, fmt, (unsigned long long)at, strerror(e));
  atomic_store(&g->failed, e);
  pthread_cond_broadcast(&g->filled);
}

static void *ring_main(void *arg) {
  ocf_ring *g = arg;
  uint64_t at = g->start - g->start % CHUNK;
  pthread_mutex_lock(&g->lock);
  while (!g->closing && at < g->size) {
    if (at + CHUNK > atomic_load(&g->done) + RING) { /* wait for bytes to be released */
      atomic_store(&g->room_at, at + CHUNK - RING);
      if (at + CHUNK > atomic_load(&g->done) + RING && !g->closing)
        pthread_cond_wait(&g->room, &g->lock);
      atomic_store(&g->room_at, UINT64_MAX);
      continue;
    }
    pthread_mutex_unlock(&g->lock);
    /* Where the ring ends, the chunk runs on into the second mapping: the
     * same pages from the start. */
    ssize_t n = fs_pread(g->fd, g->ring + at % RING, CHUNK, (off_t)at);
    int e = errno;
    pthread_mutex_lock(&g->lock);
    if (n < 0) {
      ring_fail(g, e, "reading at offset %llu: %s", at);
      break;
    }
    /* Short only at the end of the file; a read of whole pages that stops
     * early goes on from there, anything else means the file changed. */
    if ((size_t)n < CHUNK && at + (uint64_t)n < g->size && (n == 0 || n % PROBE)) {
      ring_fail(g, EIO, "the file ended early, at offset %llu (%s: was it changed while read?)",
                at + (uint64_t)n);
      break;
    }
    at += (uint64_t)n;
    atomic_store_explicit(&g->fill, at < g->size ? at : g->size, memory_order_release);
    pthread_cond_broadcast(&g->filled);
    /* Only a poll that came too early is waiting to be called: each call
     * wakes the caller's threads. */
    if (g->landed && atomic_exchange(&g->polled, 0)) {
      pthread_mutex_unlock(&g->lock);
      g->landed(g->arg);
      pthread_mutex_lock(&g->lock);
    }
  }
  pthread_mutex_unlock(&g->lock);
  if (g->landed && atomic_load(&g->failed))
    g->landed(g->arg);
  return NULL;
}

static void ring_stop(ocf_ring *g) {
  if (!g->running)
    return;
  pthread_mutex_lock(&g->lock);
  g->closing = 1;
  pthread_cond_broadcast(&g->room);
  pthread_mutex_unlock(&g->lock);
  pthread_join(g->thread, NULL);
  g->running = 0;
  g->closing = 0;
}

ocf_ring *ocf_ring_open(const char *path, dev_t dev, ino_t ino, uint64_t file_size,
                        void (*landed)(void *arg), void *arg) {
  ocf_ring *g = calloc(1, sizeof *g);
  if (!g)
    return NULL;
  g->fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
  g->ring = MAP_FAILED;
  struct stat st;
  int mfd = -1;
  if (g->fd < 0 || fstat(g->fd, &st) < 0)
    goto fail;
  if (st.st_dev != dev || st.st_ino != ino) { /* replaced since it was opened */
    errno = ESTALE;
    goto fail;
  }
  if ((mfd = memfd_create("regstream-input-ring", MFD_CLOEXEC)) < 0 || ftruncate(mfd, RING) < 0)
    goto fail;
  g->ring =
      mmap(NULL, 2 * (size_t)RING, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (g->ring == MAP_FAILED ||
      mmap(g->ring, RING, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, mfd, 0) == MAP_FAILED ||
      mmap(g->ring + RING, RING, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, mfd, 0) ==
          MAP_FAILED)
    goto fail;
  close(mfd);
  mfd = -1;
  /* Some file systems open O_DIRECT but refuse the reads (EINVAL). */
  if (pread(g->fd, g->ring, PROBE, 0) < 0)
    goto fail;
  g->size = file_size;
  g->landed = landed;
  g->arg = arg;
  atomic_init(&g->room_at, UINT64_MAX);
  pthread_mutex_init(&g->lock, NULL);
  pthread_cond_init(&g->filled, NULL);
  pthread_cond_init(&g->room, NULL);
  return g;
fail:;
  int e = errno;
  if (mfd >= 0)
    close(mfd);
  if (g->ring != MAP_FAILED)
    munmap(g->ring, 2 * (size_t)RING);
  if (g->fd >= 0)
    close(g->fd);
  free(g);
  errno = e;
  return NULL;
}

void ocf_ring_close(ocf_ring *g) {
  if (!g)
    return;
  ring_stop(g);
  pthread_cond_destroy(&g->room);
  pthread_cond_destroy(&g->filled);
  pthread_mutex_destroy(&g->lock);
  munmap(g->ring, 2 * (size_t)RING);
  close(g->fd);
  free(g);
}

void ocf_ring_restart(ocf_ring *g) {
  ring_stop(g);
}

int ocf_ring_get(ocf_ring *g, uint64_t from, uint64_t to, int wait, const uint8_t **bytes) {
  if (!g->running) {
    g->start = from;
    atomic_store(&g->fill, from);
    atomic_store(&g->done, from);
    atomic_store(&g->failed, 0);
    int e = pthread_create(&g->thread, NULL, ring_main, g);
    if (e) {
      snprintf(g->why, sizeof g->why, "cannot start the reading thread: %s", strerror(e));
      atomic_store(&g->failed, e);
      return OCF_RING_FAILED;
    }
    g->running = 1;
  }
  for (;;) {
    if (atomic_load_explicit(&g->fill, memory_order_acquire) >= to) {
      *bytes = g->ring + from % RING;
      return OCF_RING_READY;
    }
    if (atomic_load(&g->failed))
      return OCF_RING_FAILED;
    if (!wait) {
      /* Ask to be called, then look again: the thread stores fill before
       * it looks at polled, so one of the two sees the other's store. */
      atomic_store(&g->polled, 1);
      if (atomic_load(&g->fill) >= to || atomic_load(&g->failed))
        continue;
      return OCF_RING_NOT_YET;
    }
    /* The thread reads on while at + CHUNK <= done + RING: up to here it
     * gets without more releases. */
    if (to > atomic_load(&g->done) + RING - CHUNK)
      return OCF_RING_TOO_FAR;
    pthread_mutex_lock(&g->lock);
    while (atomic_load(&g->fill) < to && !atomic_load(&g->failed))
      pthread_cond_wait(&g->filled, &g->lock);
    pthread_mutex_unlock(&g->lock);
  }
}

void ocf_ring_release(ocf_ring *g, uint64_t end) {
  uint64_t done = atomic_load_explicit(&g->done, memory_order_relaxed);
  while (done < end && !atomic_compare_exchange_weak(&g->done, &done, end))
    ;
  if (end >= atomic_load(&g->room_at)) {
    pthread_mutex_lock(&g->lock);
    pthread_cond_signal(&g->room);
    pthread_mutex_unlock(&g->lock);
  }
}

int ocf_ring_failure(const ocf_ring *g, char *why, size_t len) {
  snprintf(why, len, "%s", g->why);
  return atomic_load(&g->failed);
}
