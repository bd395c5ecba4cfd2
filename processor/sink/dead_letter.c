/* dead_letter.c — the dead-letter file: one JSON object per rejected record,
 * {"reason":..., "source":{...}, "value_base64":..., "detail":...}, written
 * with jansson under a mutex, counted per reason. */
#include "sink/dead_letter.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct dead_letter {
  FILE *file;
  int fd; /* fileno(file), for dead_letter_sync */
  pthread_mutex_t lock;
  uint64_t counts[REASON_COUNT];
  int failed;
  char path[4096];
};

dead_letter *dead_letter_open_file(const char *path, char *err, size_t errlen) {
  dead_letter *dl = calloc(1, sizeof *dl);
  if (!dl) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  dl->file = fopen(path, "w");
  if (!dl->file) {
    snprintf(err, errlen, "cannot create dead-letter file %s: %s", path, strerror(errno));
    free(dl);
    return NULL;
  }
  dl->fd = fileno(dl->file);
  snprintf(dl->path, sizeof dl->path, "%s", path);
  pthread_mutex_init(&dl->lock, NULL);
  return dl;
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
  dead_letter *dl = calloc(1, sizeof *dl);
  if (!dl) {
    snprintf(err, errlen, "out of memory");
    close(fd);
    return NULL;
  }
  if (ftruncate(fd, (off_t)length) != 0 || lseek(fd, (off_t)length, SEEK_SET) < 0 ||
      !(dl->file = fdopen(fd, "w"))) {
    snprintf(err, errlen, "cannot resume dead-letter file %s: %s", path, strerror(errno));
    close(fd);
    free(dl);
    return NULL;
  }
  dl->fd = fd;
  memcpy(dl->counts, counts, sizeof dl->counts);
  snprintf(dl->path, sizeof dl->path, "%s", path);
  pthread_mutex_init(&dl->lock, NULL);
  return dl;
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

int dead_letter_write(dead_letter *dl, reason why, const dead_letter_source *src,
                      const uint8_t *bytes, size_t len, const char *detail) {
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
  pthread_mutex_lock(&dl->lock);
  dl->counts[why]++;
  if (!text || !value || fputs(text, dl->file) < 0 || fputc('\n', dl->file) < 0)
    dl->failed = 1;
  int rc = dl->failed ? -1 : 0;
  pthread_mutex_unlock(&dl->lock);
  free(text);
  free(value);
  json_decref(line);
  return rc;
}

void dead_letter_counts(dead_letter *dl, uint64_t counts[REASON_COUNT]) {
  pthread_mutex_lock(&dl->lock);
  memcpy(counts, dl->counts, sizeof dl->counts);
  pthread_mutex_unlock(&dl->lock);
}

int dead_letter_flush(dead_letter *dl, uint64_t *length) {
  pthread_mutex_lock(&dl->lock);
  off_t at = -1;
  if (!dl->failed && fflush(dl->file) == 0)
    at = ftello(dl->file);
  if (at < 0)
    dl->failed = 1;
  pthread_mutex_unlock(&dl->lock);
  if (at < 0)
    return -1;
  *length = (uint64_t)at;
  return 0;
}

int dead_letter_sync(dead_letter *dl) {
  return fsync(dl->fd) == 0 ? 0 : -1;
}

int dead_letter_close(dead_letter *dl, char *err, size_t errlen) {
  int rc = dl->failed ? -1 : 0;
  if (fflush(dl->file) != 0 || fsync(fileno(dl->file)) != 0)
    rc = -1;
  if (fclose(dl->file) != 0)
    rc = -1;
  if (rc < 0)
    snprintf(err, errlen, "writing dead-letter file %s failed: %s", dl->path,
             errno ? strerror(errno) : "write error");
  pthread_mutex_destroy(&dl->lock);
  free(dl);
  return rc;
}
