/* dead_letter.c — the door (counting per reason, then the back end) and
 * its file back end: one JSON object per rejected record,
 * {"reason":..., "source":{...}, "value_base64":..., "detail":...}, written
 * with jansson under a mutex. The Kafka back end is dead_letter_kafka.c. */
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

int dead_letter_close(dead_letter *dl, char *err, size_t errlen) {
  if (!dl)
    return 0;
  int rc = dl->backend->close(dl->ctx, err, errlen);
  free(dl);
  return rc;
}

/* ---- the file back end ---- */

typedef struct dl_file {
  FILE *file;
  int fd; /* fileno(file), for the sync */
  pthread_mutex_t lock;
  int failed;
  char path[4096];
} dl_file;

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
  if (!text || !value || fputs(text, f->file) < 0 || fputc('\n', f->file) < 0)
    f->failed = 1;
  int rc = f->failed ? -1 : 0;
  pthread_mutex_unlock(&f->lock);
  free(text);
  free(value);
  json_decref(line);
  return rc;
}

static int file_flush(void *ctx, uint64_t *length) {
  dl_file *f = ctx;
  pthread_mutex_lock(&f->lock);
  off_t at = -1;
  if (!f->failed && fflush(f->file) == 0)
    at = ftello(f->file);
  if (at < 0)
    f->failed = 1;
  pthread_mutex_unlock(&f->lock);
  if (at < 0)
    return -1;
  *length = (uint64_t)at;
  return 0;
}

static int file_sync(void *ctx) {
  dl_file *f = ctx;
  return fsync(f->fd) == 0 ? 0 : -1;
}

static int file_close(void *ctx, char *err, size_t errlen) {
  dl_file *f = ctx;
  int rc = f->failed ? -1 : 0;
  if (fflush(f->file) != 0 || fsync(fileno(f->file)) != 0)
    rc = -1;
  if (fclose(f->file) != 0)
    rc = -1;
  if (rc < 0)
    snprintf(err, errlen, "writing dead-letter file %s failed: %s", f->path,
             errno ? strerror(errno) : "write error");
  pthread_mutex_destroy(&f->lock);
  free(f);
  return rc;
}

static const dead_letter_backend file_backend = {file_write, file_flush, file_sync, file_close};

/* The back end over an open FILE. NULL when memory is short (file closed). */
static dead_letter *file_door(FILE *file, int fd, const char *path,
                              const uint64_t counts[REASON_COUNT], char *err, size_t errlen) {
  dl_file *f = calloc(1, sizeof *f);
  if (!f) {
    fclose(file);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  f->file = file;
  f->fd = fd;
  snprintf(f->path, sizeof f->path, "%s", path);
  pthread_mutex_init(&f->lock, NULL);
  dead_letter *dl = dead_letter_open(&file_backend, f, counts);
  if (!dl)
    snprintf(err, errlen, "out of memory");
  return dl;
}

dead_letter *dead_letter_open_file(const char *path, char *err, size_t errlen) {
  FILE *file = fopen(path, "w");
  if (!file) {
    snprintf(err, errlen, "cannot create dead-letter file %s: %s", path, strerror(errno));
    return NULL;
  }
  return file_door(file, fileno(file), path, NULL, err, errlen);
}

dead_letter *dead_letter_open_file_at(const char *path, uint64_t length,
                                      const uint64_t counts[REASON_COUNT], char *err,
                                      size_t errlen) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0) {
    snprintf(err, errlen, "cannot reopen dead-letter file %s: %s", path, strerror(errno));
    if (fd >= 0)
      close(fd);
    return NULL;
  }
  if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < length) {
    snprintf(err, errlen,
             "dead-letter file %s holds %llu bytes, fewer than the %llu the snapshot recorded: it "
             "was changed or replaced since",
             path, (unsigned long long)st.st_size, (unsigned long long)length);
    close(fd);
    return NULL;
  }
  FILE *file = NULL;
  if (ftruncate(fd, (off_t)length) != 0 || lseek(fd, (off_t)length, SEEK_SET) < 0 ||
      !(file = fdopen(fd, "w"))) {
    snprintf(err, errlen, "cannot resume dead-letter file %s: %s", path, strerror(errno));
    close(fd);
    return NULL;
  }
  return file_door(file, fd, path, counts, err, errlen);
}
