/* ocf_direct.h — internal to avro/ (ocf.c): a container file read past the
 * page cache. One thread reads the file in order with O_DIRECT, a chunk at a
 * time, into a fixed ring of memory mapped twice back to back, so that any
 * span of bytes shorter than the ring is contiguous wherever it starts. The
 * walker asks for spans of file bytes (ocf_ring_get); the callers of
 * ocf_release say which bytes nobody reads any more, and only those are
 * read over. Resident memory is the ring's, whatever the file's size; pages
 * are neither added to the page cache nor faulted in and zeroed again.
 *
 * Framing blocks stays in ocf.c; what to read with it (inputs larger than
 * the cache room) is the caller's choice (ocf_read_direct).
 *
 * Threads: ocf_ring_get, ocf_ring_restart on the walker's thread (one at a
 * time); ocf_ring_release on any; the landed callback on the ring's own
 * reading thread, with no lock of the ring held. */
#ifndef REGSTREAM_OCF_DIRECT_H
#define REGSTREAM_OCF_DIRECT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct ocf_ring ocf_ring;

/* Open path (which must still be the file dev/ino) with O_DIRECT and make
 * the ring; one read at offset 0 checks that its file system reads that
 * way. NULL when it cannot (errno set): the caller reads as before. */
ocf_ring *ocf_ring_open(const char *path, dev_t dev, ino_t ino, uint64_t file_size,
                        void (*landed)(void *arg), void *arg);
/* Stops the reading thread and frees the ring. */
void ocf_ring_close(ocf_ring *g);

/* The longest span ocf_ring_get gives out. */
size_t ocf_ring_span(void);

enum {
  OCF_RING_READY = 0,   /* *bytes is the span's first byte */
  OCF_RING_NOT_YET = 1, /* being read, or waits for bytes to be released */
  OCF_RING_TOO_FAR = 2, /* (wait) cannot come before more bytes are released */
  OCF_RING_FAILED = 3   /* the read failed: ocf_ring_failure */
};
/* The file's bytes [from, to) (to - from <= ocf_ring_span(), from at or
 * after every byte not yet released): READY, or with wait == 0 NOT_YET
 * while they are on their way. With wait, blocks until they are read, or
 * returns TOO_FAR when that needs bytes released first. The reading thread
 * starts (at from) on the first call and after ocf_ring_restart. */
int ocf_ring_get(ocf_ring *g, uint64_t from, uint64_t to, int wait, const uint8_t **bytes);
/* The walk goes on elsewhere: the next ocf_ring_get starts reading anew
 * where it asks (nothing of the ring may be in use). */
void ocf_ring_restart(ocf_ring *g);
/* Nobody reads the file's bytes before end any more. */
void ocf_ring_release(ocf_ring *g, uint64_t end);
/* After FAILED: the errno of the failed read and a line saying what failed. */
int ocf_ring_failure(const ocf_ring *g, char *why, size_t len);

#endif
