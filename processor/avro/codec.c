/* codec.c — the OCF block codecs on top of zlib, snappy, liblzma and zstd:
 * deflate is raw RFC 1951 (windowBits -15); snappy is a raw snappy block
 * followed by the big-endian CRC32 (zlib) of the uncompressed bytes; lzma is
 * Avro C's raw LZMA2 stream (lzma_raw_*, LZMA_PRESET_DEFAULT dictionary);
 * xz is an .xz stream; zstandard is one or more zstd frames. Also the codec
 * names and ocf_buf helpers. */
#include "avro/codec.h"

#include <lzma.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

static const char *const codec_names[] = {"null", "deflate", "snappy", "lzma", "xz", "zstandard"};

int ocf_codec_from_name(const char *name) {
  for (size_t i = 0; i < sizeof codec_names / sizeof codec_names[0]; i++)
    if (strcmp(name, codec_names[i]) == 0)
      return (int)i;
  return -1;
}

const char *ocf_codec_name(ocf_codec c) {
  if ((unsigned)c < sizeof codec_names / sizeof codec_names[0])
    return codec_names[c];
  return "?";
}

void ocf_buf_free(ocf_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

int codec_buf_reserve(ocf_buf *b, size_t cap) {
  if (b->cap >= cap)
    return 0;
  size_t ncap = b->cap ? b->cap : 4096;
  while (ncap < cap)
    ncap = ncap > SIZE_MAX / 2 ? cap : ncap * 2;
  uint8_t *p = realloc(b->data, ncap);
  if (!p)
    return -1;
  b->data = p;
  b->cap = ncap;
  return 0;
}

/* Grow out for a streaming decompressor: at least double, capped. */
static int codec_grow(ocf_buf *out, char *err, size_t errlen) {
  if (out->cap >= CODEC_MAX_BLOCK) {
    snprintf(err, errlen, "block decompresses to more than %zu bytes", CODEC_MAX_BLOCK);
    return -1;
  }
  size_t want = out->cap * 2;
  if (want > CODEC_MAX_BLOCK)
    want = CODEC_MAX_BLOCK;
  if (codec_buf_reserve(out, want) < 0) {
    snprintf(err, errlen, "out of memory decompressing a block");
    return -1;
  }
  return 0;
}

static size_t codec_initial_guess(size_t n) {
  size_t g = n < CODEC_MAX_BLOCK / 4 ? n * 4 : CODEC_MAX_BLOCK;
  return g < 65536 ? 65536 : g;
}

static uint32_t codec_crc32(const uint8_t *p, size_t n) {
  uLong crc = crc32(0, Z_NULL, 0);
  while (n > 0) {
    uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
    crc = crc32(crc, p, chunk);
    p += chunk;
    n -= chunk;
  }
  return (uint32_t)crc;
}

/* ---- deflate ---- */

static int codec_deflate(int level, const uint8_t *in, size_t n, ocf_buf *out, char *err,
                         size_t errlen) {
  z_stream s;
  memset(&s, 0, sizeof s);
  if (deflateInit2(&s, level > 0 ? level : Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    snprintf(err, errlen, "deflate: cannot initialise zlib");
    return -1;
  }
  size_t bound = deflateBound(&s, (uLong)n);
  if (codec_buf_reserve(out, bound) < 0) {
    deflateEnd(&s);
    snprintf(err, errlen, "deflate: out of memory");
    return -1;
  }
  s.next_in = (Bytef *)in;
  s.avail_in = (uInt)n;
  s.next_out = out->data;
  s.avail_out = (uInt)out->cap;
  int rc = deflate(&s, Z_FINISH);
  out->len = s.total_out;
  deflateEnd(&s);
  if (rc != Z_STREAM_END) {
    snprintf(err, errlen, "deflate: compression failed (%d)", rc);
    return -1;
  }
  return 0;
}

static int codec_inflate(const uint8_t *in, size_t n, ocf_buf *out, char *err, size_t errlen) {
  z_stream s;
  memset(&s, 0, sizeof s);
  if (inflateInit2(&s, -15) != Z_OK) {
    snprintf(err, errlen, "deflate: cannot initialise zlib");
    return -1;
  }
  if (out->cap < codec_initial_guess(n) && codec_buf_reserve(out, codec_initial_guess(n)) < 0) {
    inflateEnd(&s);
    snprintf(err, errlen, "deflate: out of memory");
    return -1;
  }
  out->len = 0;
  s.next_in = (Bytef *)in;
  for (;;) {
    size_t in_left = n - (size_t)((const uint8_t *)s.next_in - in);
    s.avail_in = in_left > UINT32_MAX ? UINT32_MAX : (uInt)in_left;
    size_t out_left = out->cap - out->len;
    s.next_out = out->data + out->len;
    s.avail_out = out_left > UINT32_MAX ? UINT32_MAX : (uInt)out_left;
    uInt before = s.avail_out;
    int rc = inflate(&s, Z_NO_FLUSH);
    out->len += before - s.avail_out;
    if (rc == Z_STREAM_END)
      break;
    if (rc == Z_OK || rc == Z_BUF_ERROR) {
      if (s.avail_out == 0) {
        if (codec_grow(out, err, errlen) < 0) {
          inflateEnd(&s);
          return -1;
        }
        continue;
      }
      if (s.avail_in == 0 && (const uint8_t *)s.next_in == in + n) {
        inflateEnd(&s);
        snprintf(err, errlen, "deflate: truncated data");
        return -1;
      }
      if (rc == Z_OK)
        continue;
    }
    inflateEnd(&s);
    snprintf(err, errlen, "deflate: corrupt data (%s)", s.msg ? s.msg : "zlib error");
    return -1;
  }
  inflateEnd(&s);
  return 0;
}

/* ---- snappy ---- */

static int codec_snappy_compress(const uint8_t *in, size_t n, ocf_buf *out, char *err,
                                 size_t errlen) {
  size_t outlen = snappy_max_compressed_length(n);
  if (codec_buf_reserve(out, outlen + 4) < 0) {
    snprintf(err, errlen, "snappy: out of memory");
    return -1;
  }
  if (snappy_compress((const char *)in, n, (char *)out->data, &outlen) != SNAPPY_OK) {
    snprintf(err, errlen, "snappy: compression failed");
    return -1;
  }
  uint32_t crc = codec_crc32(in, n);
  out->data[outlen] = (uint8_t)(crc >> 24);
  out->data[outlen + 1] = (uint8_t)(crc >> 16);
  out->data[outlen + 2] = (uint8_t)(crc >> 8);
  out->data[outlen + 3] = (uint8_t)crc;
  out->len = outlen + 4;
  return 0;
}

static int codec_snappy_decompress(const uint8_t *in, size_t n, ocf_buf *out, char *err,
                                   size_t errlen) {
  size_t outlen;
  if (n < 4) {
    snprintf(err, errlen, "snappy: block of %zu bytes has no CRC", n);
    return -1;
  }
  if (snappy_uncompressed_length((const char *)in, n - 4, &outlen) != SNAPPY_OK) {
    snprintf(err, errlen, "snappy: corrupt data (bad length)");
    return -1;
  }
  if (outlen > CODEC_MAX_BLOCK) {
    snprintf(err, errlen, "snappy: block decompresses to more than %zu bytes", CODEC_MAX_BLOCK);
    return -1;
  }
  if (codec_buf_reserve(out, outlen ? outlen : 1) < 0) {
    snprintf(err, errlen, "snappy: out of memory");
    return -1;
  }
  if (snappy_uncompress((const char *)in, n - 4, (char *)out->data, &outlen) != SNAPPY_OK) {
    snprintf(err, errlen, "snappy: corrupt data");
    return -1;
  }
  uint32_t crc = codec_crc32(out->data, outlen);
  const uint8_t *t = in + n - 4;
  uint32_t want = (uint32_t)t[0] << 24 | (uint32_t)t[1] << 16 | (uint32_t)t[2] << 8 | t[3];
  if (crc != want) {
    snprintf(err, errlen, "snappy: CRC32 mismatch");
    return -1;
  }
  out->len = outlen;
  return 0;
}

/* ---- lzma (raw LZMA2, Avro C) and xz ---- */

static int codec_lzma_filters(lzma_options_lzma *opt, lzma_filter filters[2], int level) {
  if (lzma_lzma_preset(opt, level > 0 && level <= 9 ? (uint32_t)level : LZMA_PRESET_DEFAULT))
    return -1;
  /* Readers (Avro C among them) decode with the default preset's dictionary. */
  lzma_options_lzma def;
  if (lzma_lzma_preset(&def, LZMA_PRESET_DEFAULT))
    return -1;
  if (opt->dict_size > def.dict_size)
    opt->dict_size = def.dict_size;
  filters[0].id = LZMA_FILTER_LZMA2;
  filters[0].options = opt;
  filters[1].id = LZMA_VLI_UNKNOWN;
  filters[1].options = NULL;
  return 0;
}

static int codec_lzma_run(lzma_stream *s, const char *name, const uint8_t *in, size_t n,
                          ocf_buf *out, int decoding, char *err, size_t errlen) {
  out->len = 0;
  s->next_in = in;
  s->avail_in = n;
  for (;;) {
    if (out->len == out->cap) {
      if (decoding ? codec_grow(out, err, errlen) < 0
                   : codec_buf_reserve(out, out->cap ? out->cap * 2 : 65536) < 0) {
        if (!decoding)
          snprintf(err, errlen, "%s: out of memory", name);
        return -1;
      }
    }
    s->next_out = out->data + out->len;
    s->avail_out = out->cap - out->len;
    size_t before = s->avail_out;
    lzma_ret rc = lzma_code(s, LZMA_FINISH);
    out->len += before - s->avail_out;
    if (rc == LZMA_STREAM_END)
      return 0;
    if (rc == LZMA_OK)
      continue;
    if (rc == LZMA_BUF_ERROR && s->avail_out == 0)
      continue;
    snprintf(err, errlen, "%s: %s (%d)", name,
             rc == LZMA_BUF_ERROR ? "truncated data" : "corrupt data", (int)rc);
    return -1;
  }
}

static int codec_lzma_code(ocf_codec c, int level, const uint8_t *in, size_t n, ocf_buf *out,
                           int decoding, char *err, size_t errlen) {
  const char *name = ocf_codec_name(c);
  lzma_stream s = LZMA_STREAM_INIT;
  lzma_options_lzma opt;
  lzma_filter filters[2];
  lzma_ret rc;
  if (c == OCF_CODEC_LZMA) {
    if (codec_lzma_filters(&opt, filters, decoding ? 0 : level) < 0) {
      snprintf(err, errlen, "%s: bad preset", name);
      return -1;
    }
    rc = decoding ? lzma_raw_decoder(&s, filters) : lzma_raw_encoder(&s, filters);
  } else {
    rc = decoding ? lzma_stream_decoder(&s, UINT64_MAX, 0)
                  : lzma_easy_encoder(&s, (uint32_t)(level > 0 && level <= 9 ? level : 6),
                                      LZMA_CHECK_CRC64);
  }
  if (rc != LZMA_OK) {
    snprintf(err, errlen, "%s: cannot initialise liblzma (%d)", name, (int)rc);
    return -1;
  }
  if (decoding && out->cap < codec_initial_guess(n) &&
      codec_buf_reserve(out, codec_initial_guess(n)) < 0) {
    lzma_end(&s);
    snprintf(err, errlen, "%s: out of memory", name);
    return -1;
  }
  int r = codec_lzma_run(&s, name, in, n, out, decoding, err, errlen);
  lzma_end(&s);
  return r;
}

/* ---- zstandard ---- */

static int codec_zstd_compress(int level, const uint8_t *in, size_t n, ocf_buf *out, char *err,
                               size_t errlen) {
  size_t bound = ZSTD_compressBound(n);
  if (codec_buf_reserve(out, bound) < 0) {
    snprintf(err, errlen, "zstandard: out of memory");
    return -1;
  }
  size_t r = ZSTD_compress(out->data, out->cap, in, n, level ? level : ZSTD_CLEVEL_DEFAULT);
  if (ZSTD_isError(r)) {
    snprintf(err, errlen, "zstandard: %s", ZSTD_getErrorName(r));
    return -1;
  }
  out->len = r;
  return 0;
}

/* Streaming, because Java's ZstdOutputStream does not record the content
 * size in the frame header; concatenated frames are accepted. */
static int codec_zstd_decompress(const uint8_t *in, size_t n, ocf_buf *out, char *err,
                                 size_t errlen) {
  ZSTD_DStream *ds = ZSTD_createDStream();
  if (!ds) {
    snprintf(err, errlen, "zstandard: out of memory");
    return -1;
  }
  unsigned long long hint = ZSTD_getFrameContentSize(in, n);
  size_t guess = codec_initial_guess(n);
  if (hint != ZSTD_CONTENTSIZE_UNKNOWN && hint != ZSTD_CONTENTSIZE_ERROR &&
      hint < CODEC_MAX_BLOCK && hint + 1 > guess)
    guess = (size_t)hint + 1;
  if (out->cap < guess && codec_buf_reserve(out, guess) < 0) {
    ZSTD_freeDStream(ds);
    snprintf(err, errlen, "zstandard: out of memory");
    return -1;
  }
  ZSTD_inBuffer ib = {in, n, 0};
  out->len = 0;
  size_t last = 1;
  int rc = 0;
  while (ib.pos < ib.size || last != 0) {
    if (out->len == out->cap && codec_grow(out, err, errlen) < 0) {
      rc = -1;
      break;
    }
    ZSTD_outBuffer ob = {out->data, out->cap, out->len};
    size_t before_in = ib.pos;
    last = ZSTD_decompressStream(ds, &ob, &ib);
    if (ZSTD_isError(last)) {
      snprintf(err, errlen, "zstandard: %s", ZSTD_getErrorName(last));
      rc = -1;
      break;
    }
    int progress = ob.pos != out->len || ib.pos != before_in;
    out->len = ob.pos;
    if (!progress && out->len < out->cap) {
      snprintf(err, errlen, "zstandard: truncated data");
      rc = -1;
      break;
    }
  }
  ZSTD_freeDStream(ds);
  return rc;
}

int codec_compress(ocf_codec c, int level, const uint8_t *in, size_t n, ocf_buf *out, char *err,
                   size_t errlen) {
  switch (c) {
  case OCF_CODEC_NULL:
    if (codec_buf_reserve(out, n ? n : 1) < 0) {
      snprintf(err, errlen, "null codec: out of memory");
      return -1;
    }
    if (n)
      memcpy(out->data, in, n);
    out->len = n;
    return 0;
  case OCF_CODEC_DEFLATE:
    return codec_deflate(level, in, n, out, err, errlen);
  case OCF_CODEC_SNAPPY:
    return codec_snappy_compress(in, n, out, err, errlen);
  case OCF_CODEC_LZMA:
  case OCF_CODEC_XZ:
    return codec_lzma_code(c, level, in, n, out, 0, err, errlen);
  case OCF_CODEC_ZSTANDARD:
    return codec_zstd_compress(level, in, n, out, err, errlen);
  }
  snprintf(err, errlen, "unknown codec %d", (int)c);
  return -1;
}

int codec_decompress(ocf_codec c, const uint8_t *in, size_t n, ocf_buf *out, char *err,
                     size_t errlen) {
  switch (c) {
  case OCF_CODEC_NULL:
    return codec_compress(c, 0, in, n, out, err, errlen);
  case OCF_CODEC_DEFLATE:
    return codec_inflate(in, n, out, err, errlen);
  case OCF_CODEC_SNAPPY:
    return codec_snappy_decompress(in, n, out, err, errlen);
  case OCF_CODEC_LZMA:
  case OCF_CODEC_XZ:
    return codec_lzma_code(c, 0, in, n, out, 1, err, errlen);
  case OCF_CODEC_ZSTANDARD:
    return codec_zstd_decompress(in, n, out, err, errlen);
  }
  snprintf(err, errlen, "unknown codec %d", (int)c);
  return -1;
}
