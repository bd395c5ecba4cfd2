/* codec.h — internal to processor/avro: block compression and decompression
 * for every OCF codec (null, deflate, snappy, lzma, xz, zstandard), shared by
 * the container reader (ocf.c) and writer (ocf_writer.c). All functions are
 * thread-safe: no state outside the caller's buffers. */
#ifndef REGSTREAM_AVRO_CODEC_H
#define REGSTREAM_AVRO_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "avro/ocf.h"

/* Largest decompressed block we accept (guards against decompression bombs). */
#define CODEC_MAX_BLOCK ((size_t)256 << 20)

/* Make room for at least cap bytes in b (content kept). 0 or -1 (no memory). */
int codec_buf_reserve(ocf_buf *b, size_t cap);

/* Compress [in, in+n) with codec c at level (0 = codec default) into out,
 * replacing its content. 0, or -1 with a reason in err. */
int codec_compress(ocf_codec c, int level, const uint8_t *in, size_t n, ocf_buf *out, char *err,
                   size_t errlen);

/* Decompress [in, in+n) into out, replacing its content. 0, or -1 with a
 * reason in err (corrupt data, snappy CRC mismatch, larger than
 * CODEC_MAX_BLOCK). */
int codec_decompress(ocf_codec c, const uint8_t *in, size_t n, ocf_buf *out, char *err,
                     size_t errlen);

#endif
