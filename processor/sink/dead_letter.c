/* dead_letter.c — the door (counting per reason, then the back end) and
 * its file back end: one JSON object per rejected record,
 * {"reason":..., "source":{...}, "value_base64":..., "detail":...}, made
 * with jansson and gathered under a mutex in a buffer that util/fs writes
 * (the file is 0600: it holds the records). The Kafka back end is
 * dead_letter_kafka.c. */
#include "sink/dead_letter.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"

/* ---- the door ---- */

struct dead_letter {
  const dead_letter_backend *backend;
  void *ctx;
  _Atomic uint64_t counts[REASON_COUNT];
};

dead_letter *dead_letter_open(const dead_letter_backend *backend, void *ctx,
                              const uint64_t counts[REASON_COUNT]) {
  dead_letter *dl = calloc(1, sizeof *dl);
  if (!dl) {
    char ignored[8];
    backend->close(ctx, ignored, sizeof ignored);
    return NULL;
  }
  dl->backend = backend;
  dl->ctx = ctx;
  for (int r = 0; r < REASON_COUNT; r++)
    atomic_store(&dl->counts[r], counts ? counts[r] : 0);
  return dl;
}

int dead_letter_write(dead_letter *dl, reason why, const dead_letter_source *src,
                      const uint8_t *bytes, size_t len, const char *detail) {
  atomic_fetch_add_explicit(&dl->counts[why], 1, memory_order_relaxed);
  return dl->backend->write(dl->ctx, why, src, bytes, len, detail);
}

void dead_letter_counts(dead_letter *dl, uint64_t counts[REASON_COUNT]) {
  for (int r = 0; r < REASON_COUNT; r++)
    counts[r] = atomic_load(&dl->counts[r]);
}

int dead_letter_flush(dead_letter *dl, uint64_t *length) {
  if (!dl->backend->flush) {
    *length = 0;
    return 0;
  }
  return dl->backend->flush(dl->ctx, length);
}

int dead_letter_sync(dead_letter *dl) {
  return dl->backend->sync ? dl->backend->sync(dl->ctx) : 0;
}

int dead_letter_error(dead_letter *dl, char *err, size_t errlen) {
  if (dl->backend->error)
    return dl->backend->error(dl->ctx, err, errlen);
  snprintf(err, errlen, "cannot write the dead-letter output");
  return 0;
}

int dead_letter_close(dead_letter *dl, char *err, size_t errlen) {
  if (!dl)
    return 0;
  int rc = dl->backend->close(dl->ctx, err, errlen);
  free(dl);
  return rc;
}

/* ---- the file back end ---- */

/* Lines are gathered in buf and written with fs_write_all when it fills,
 * at a flush and at close; length counts the bytes handed to the OS. After
 * the first failure nothing more is written and error keeps its errno. */
enum { DL_BUFFER = 1 << 16 };

typedef struct dl_file {
  int fd;
  pthread_mutex_t lock;
  int error;             /* errno of the first failure, 0 while none */
  const char *failed_at; /* what failed: "write", "fsync" */
  uint64_t length;       /* bytes written to fd */
  size_t used;
  char buf[DL_BUFFER];
  char path[4096];
} dl_file;

/* Under the lock: write the buffer out. 0, or -1 (f->error set). */
static int drain(dl_file *f) {
  if (f->error)
    return -1;
  if (f->used && fs_write_all(f->fd, f->buf, f->used) < 0) {
    f->error = errno ? errno : EIO;
    f->failed_at = "write";
    return -1;
  }
  f->length += f->used;
  f->used = 0;
  return 0;
}

/* Under the lock: append len bytes. 0, or -1. */
static int put(dl_file *f, const char *data, size_t len) {
  if (f->error)
    return -1;
  if (f->used + len > sizeof f->buf && drain(f) < 0)
    return -1;
  if (len > sizeof f->buf) { /* a line longer than the buffer goes out at once */
    if (fs_write_all(f->fd, data, len) < 0) {
      f->error = errno ? errno : EIO;
      f->failed_at = "write";
      return -1;
    }
    f->length += len;
    return 0;
  }
  memcpy(f->buf + f->used, data, len);
  f->used += len;
  return 0;
}

static char *base64(const uint8_t *bytes, size_t len) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
  if (!out)
    return NULL;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)bytes[i] << 16;
    if (i + 1 < len)
      v |= (uint32_t)bytes[i + 1] << 8;
    if (i + 2 < len)
      v |= bytes[i + 2];
    *o++ = alphabet[(v >> 18) & 63];
    *o++ = alphabet[(v >> 12) & 63];
    *o++ = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
    *o++ = i + 2 < len ? alphabet[v & 63] : '=';
  }
  *o = 0;
  return out;
}

static int file_write(void *ctx, reason why, const dead_letter_source *src, const uint8_t *bytes,
                      size_t len, const char *detail) {
  dl_file *f = ctx;
  json_t *source = json_pack("{s:s, s:i, s:I}", "file", src->file, "file_index",
                             (json_int_t)src->file_index, "record", (json_int_t)src->record);
  if (src->record_count != 1)
    json_object_set_new(source, "records", json_integer(src->record_count));
  if (src->block >= 0)
    json_object_set_new(source, "block", json_integer(src->block));
  if (src->offset >= 0)
    json_object_set_new(source, "offset", json_integer(src->offset));
  /* A damaged region can be as large as the rest of its file: keep the first
   * DEAD_LETTER_MAX_BYTES here; length and the source's offset locate all of
   * them in the input, which still holds them. */
  if (len > DEAD_LETTER_MAX_BYTES) {
    json_object_set_new(source, "length", json_integer((json_int_t)len));
    json_object_set_new(source, "value_truncated", json_true());
    len = DEAD_LETTER_MAX_BYTES;
  }
  char *value = base64(bytes, len);
  json_t *line = json_pack("{s:s, s:o, s:s?, s:s?}", "reason", reason_code(why), "source", source,
                           "value_base64", value, "detail", detail);
  char *text = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  pthread_mutex_lock(&f->lock);
  int rc = -1;
  if (!text || !value) {
    if (!f->error) {
      f->error = ENOMEM;
      f->failed_at = "encode";
    }
  } else if (put(f, text, strlen(text)) == 0 && put(f, "\n", 1) == 0) {
    rc = 0;
  }
  pthread_mutex_unlock(&f->lock);
  free(text);
  free(value);
  json_decref(line);
  return rc;
}

static int file_flush(void *ctx, uint64_t *length) {
  dl_file *f = ctx;
  pthread_mutex_lock(&f->lock);
  int rc = drain(f);
  *length = f->length;
  pthread_mutex_unlock(&f->lock);
  return rc;
}

static int file_sync(void *ctx) {
  dl_file *f = ctx;
  pthread_mutex_lock(&f->lock);
  int failed = f->error != 0;
  pthread_mutex_unlock(&f->lock);
  if (failed)
    return -1;
  if (fs_fsync(f->fd) == 0)
    return 0;
  int e = errno;
  pthread_mutex_lock(&f->lock);
  if (!f->error) {
    f->error = e;
    f->failed_at = "fsync";
  }
  pthread_mutex_unlock(&f->lock);
  return -1;
}

static int file_error(void *ctx, char *err, size_t errlen) {
  dl_file *f = ctx;
  pthread_mutex_lock(&f->lock);
  int e = f->error;
  const char *what = f->failed_at;
  pthread_mutex_unlock(&f->lock);
  snprintf(err, errlen, "cannot %s dead-letter file %s: %s", what ? what : "write", f->path,
           strerror(e ? e : EIO));
  return e;
}

static int file_close(void *ctx, char *err, size_t errlen) {
  dl_file *f = ctx;
  pthread_mutex_lock(&f->lock);
  int rc = drain(f);
  pthread_mutex_unlock(&f->lock);
  if (rc == 0)
    rc = file_sync(f);
  if (close(f->fd) != 0 && rc == 0) {
    f->error = errno;
    f->failed_at = "close";
    rc = -1;
  }
  int e = rc < 0 ? file_error(f, err, errlen) : 0;
  pthread_mutex_destroy(&f->lock);
  free(f);
  errno = e;
  return rc;
}

static const dead_letter_backend file_backend = {file_write, file_flush, file_sync, file_close,
                                                 file_error};

/* The back end over fd, length bytes in. NULL when memory is short (fd
 * closed). */
static dead_letter *file_door(int fd, uint64_t length, const char *path,
                              const uint64_t counts[REASON_COUNT], char *err, size_t errlen) {
  dl_file *f = calloc(1, sizeof *f);
  if (!f) {
    close(fd);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  f->fd = fd;
  f->length = length;
  snprintf(f->path, sizeof f->path, "%s", path);
  pthread_mutex_init(&f->lock, NULL);
  dead_letter *dl = dead_letter_open(&file_backend, f, counts);
  if (!dl)
    snprintf(err, errlen, "out of memory");
  return dl;
}

/* It holds the records' bytes: private to its owner (fs_create_private). */
dead_letter *dead_letter_open_file(const char *path, char *err, size_t errlen) {
  int fd = fs_create_private(path, O_WRONLY | O_TRUNC);
  if (fd < 0) {
    int e = errno;
    snprintf(err, errlen, "cannot create dead-letter file %s: %s", path, strerror(e));
    errno = e;
    return NULL;
  }
  return file_door(fd, 0, path, NULL, err, errlen);
}

dead_letter *dead_letter_open_file_at(const char *path, uint64_t length,
                                      const uint64_t counts[REASON_COUNT], char *err,
                                      size_t errlen) {
  /* A missing file is refused (stat), not made again by the open. */
  struct stat st;
  if (stat(path, &st) < 0) {
    int e = errno;
    snprintf(err, errlen, "cannot reopen dead-letter file %s: %s", path, strerror(e));
    errno = e;
    return NULL;
  }
  if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < length) {
    snprintf(err, errlen,
             "dead-letter file %s holds %llu bytes, fewer than the %llu the snapshot recorded: it "
             "was changed or replaced since",
             path, (unsigned long long)st.st_size, (unsigned long long)length);
    errno = 0; /* not a failure: another file */
    return NULL;
  }
  /* Reopened to go on, so kept, and made 0600: what it holds already was
   * readable as it was, what comes now is not. */
  const char *step = "reopen";
  int fd = fs_create_private(path, O_WRONLY);
  if (fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size < length) {
    close(fd);
    snprintf(err, errlen, "dead-letter file %s was changed while it was reopened", path);
    errno = 0;
    return NULL;
  }
  if (fd >= 0 && (step = "cut back", fs_truncate(fd, (off_t)length) == 0) &&
      lseek(fd, (off_t)length, SEEK_SET) >= 0)
    return file_door(fd, length, path, counts, err, errlen);
  int e = errno;
  snprintf(err, errlen, "cannot %s dead-letter file %s: %s", step, path, strerror(e));
  if (fd >= 0)
    close(fd);
  errno = e;
  return NULL;
}
