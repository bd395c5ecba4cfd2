/* ocf_writer.c — writes Avro Object Container Files: header (magic, metadata
 * map with avro.schema and avro.codec, random 16-byte sync marker), then
 * blocks of already-encoded datums compressed by codec.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "avro/codec.h"
#include "avro/ocf.h"

struct ocf_writer {
  FILE *f;
  ocf_codec codec;
  int level;
  size_t block_bytes;
  uint8_t sync[16];
  ocf_buf pending; /* encoded datums of the current block */
  int64_t pending_count;
  ocf_buf packed; /* compressed block */
  int failed;
};

static size_t writer_put_long(uint8_t *p, int64_t v) {
  uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
  size_t n = 0;
  while (z > 0x7f) {
    p[n++] = (uint8_t)(z | 0x80);
    z >>= 7;
  }
  p[n++] = (uint8_t)z;
  return n;
}

static int writer_write(ocf_writer *w, const void *p, size_t n, char *err, size_t errlen) {
  if (n && fwrite(p, 1, n, w->f) != n) {
    snprintf(err, errlen, "write failed: %s", strerror(errno));
    w->failed = 1;
    return -1;
  }
  return 0;
}

static int writer_write_long(ocf_writer *w, int64_t v, char *err, size_t errlen) {
  uint8_t b[10];
  return writer_write(w, b, writer_put_long(b, v), err, errlen);
}

static int writer_write_bytes(ocf_writer *w, const void *p, size_t n, char *err, size_t errlen) {
  if (writer_write_long(w, (int64_t)n, err, errlen) < 0)
    return -1;
  return writer_write(w, p, n, err, errlen);
}

static void writer_make_sync(uint8_t sync[16]) {
  FILE *u = fopen("/dev/urandom", "rb");
  if (u) {
    size_t got = fread(sync, 1, 16, u);
    fclose(u);
    if (got == 16)
      return;
  }
  /* Fallback: splitmix64 seeded from time, pid and an address. */
  uint64_t x = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)sync;
  for (int i = 0; i < 16; i += 8) {
    x += 0x9e3779b97f4a7c15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    memcpy(sync + i, &z, 8);
  }
}

ocf_writer *ocf_writer_open(const char *path, const char *schema_json, ocf_codec codec, int level,
                            size_t block_bytes, char *err, size_t errlen) {
  if ((unsigned)codec > OCF_CODEC_ZSTANDARD) {
    snprintf(err, errlen, "%s: unknown codec %d", path, (int)codec);
    return NULL;
  }
  ocf_writer *w = calloc(1, sizeof *w);
  if (!w) {
    snprintf(err, errlen, "%s: out of memory", path);
    return NULL;
  }
  w->f = fopen(path, "wb");
  if (!w->f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    free(w);
    return NULL;
  }
  w->codec = codec;
  w->level = level;
  w->block_bytes = block_bytes ? block_bytes : 64 * 1024;
  writer_make_sync(w->sync);
  const char *codec_name = ocf_codec_name(codec);
  if (writer_write(w, "Obj\x01", 4, err, errlen) < 0 || writer_write_long(w, 2, err, errlen) < 0 ||
      writer_write_bytes(w, "avro.schema", 11, err, errlen) < 0 ||
      writer_write_bytes(w, schema_json, strlen(schema_json), err, errlen) < 0 ||
      writer_write_bytes(w, "avro.codec", 10, err, errlen) < 0 ||
      writer_write_bytes(w, codec_name, strlen(codec_name), err, errlen) < 0 ||
      writer_write_long(w, 0, err, errlen) < 0 || writer_write(w, w->sync, 16, err, errlen) < 0) {
    fclose(w->f);
    free(w);
    return NULL;
  }
  return w;
}

static int writer_flush_block(ocf_writer *w, char *err, size_t errlen) {
  if (w->pending_count == 0)
    return 0;
  if (codec_compress(w->codec, w->level, w->pending.data, w->pending.len, &w->packed, err, errlen) <
      0) {
    w->failed = 1;
    return -1;
  }
  if (writer_write_long(w, w->pending_count, err, errlen) < 0 ||
      writer_write_bytes(w, w->packed.data, w->packed.len, err, errlen) < 0 ||
      writer_write(w, w->sync, 16, err, errlen) < 0)
    return -1;
  w->pending.len = 0;
  w->pending_count = 0;
  return 0;
}

int ocf_writer_append(ocf_writer *w, const uint8_t *datum, size_t len, char *err, size_t errlen) {
  if (w->failed) {
    snprintf(err, errlen, "writer failed earlier");
    return -1;
  }
  if (codec_buf_reserve(&w->pending, w->pending.len + len) < 0) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (len)
    memcpy(w->pending.data + w->pending.len, datum, len);
  w->pending.len += len;
  w->pending_count++;
  if (w->pending.len >= w->block_bytes)
    return writer_flush_block(w, err, errlen);
  return 0;
}

int ocf_writer_close(ocf_writer *w, char *err, size_t errlen) {
  if (!w)
    return 0;
  int rc = w->failed ? -1 : writer_flush_block(w, err, errlen);
  if (w->failed && rc == 0)
    rc = -1;
  if (fclose(w->f) != 0 && rc == 0) {
    snprintf(err, errlen, "close failed: %s", strerror(errno));
    rc = -1;
  }
  ocf_buf_free(&w->pending);
  ocf_buf_free(&w->packed);
  free(w);
  return rc;
}
