/* fuzz_ocf.c — owned by the fuzzing work (tests/fuzz/): libFuzzer harness
 * for the container reader (processor/avro/ocf.c, codec.c). Input: a whole
 * Avro Object Container File, put in an in-memory file. ocf_open, then walk
 * every block, decompress each framed one and decode its records with the
 * plan of the file's writer schema (when it has one). Checks: the walk ends;
 * blocks come in order, numbered from 0, first_record counting the framed
 * blocks' records; every region (framed block or damaged bytes) lies inside
 * the file and the regions tile the file from the first block to its end
 * (nothing skipped silently, nothing twice); damaged regions are not empty and
 * do not decompress; decoded records are in range and decode alike with junk
 * after them (fuzz_check_decode); no leaks (LeakSanitizer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro/decode.h"
#include "avro/ocf.h"
#include "fuzz_common.h"

enum { SYNC = 16, MAX_BLOCK_HEADER = 20 /* two varints */ };

/* Decode up to count records from [bytes, bytes+len) as replay does: stop at
 * the first that does not decode. */
static void decode_records(const pm_plan *plan, const uint8_t *bytes, size_t len, int64_t count) {
  /* an exactly-sized copy, so that reads past the end are caught */
  uint8_t *copy = malloc(len ? len : 1);
  FUZZ_CHECK(copy != NULL, "out of memory");
  if (len)
    memcpy(copy, bytes, len);
  size_t pos = 0;
  for (int64_t i = 0; i < count && pos < len; i++) {
    size_t used = fuzz_check_decode(plan, copy + pos, len - pos);
    if (!used)
      break;
    pos += used;
  }
  free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file_with(data, size);
  char err[300];
  memset(err, 'x', sizeof err);
  ocf_reader *r = ocf_open(path, err, sizeof err);
  if (!r) {
    fuzz_check_err(err, sizeof err);
    return 0;
  }
  const char *schema = ocf_schema_json(r);
  size_t schema_len = ocf_schema_json_len(r);
  FUZZ_CHECK(schema != NULL && schema[schema_len] == '\0', "schema not NUL-terminated");
  FUZZ_CHECK(schema_len < size, "schema longer than the file");
  FUZZ_CHECK((unsigned)ocf_reader_codec(r) <= OCF_CODEC_ZSTANDARD, "unknown codec");
  pm_plan *plan = pm_plan_from_json(schema, schema_len, err, sizeof err);

  ocf_buf buf = {0};
  ocf_block b;
  uint64_t blocks = 0, records = 0, end_of_last = 0;
  while (ocf_next_block(r, &b)) {
    FUZZ_CHECK(blocks <= size, "the block walk does not end");
    FUZZ_CHECK(b.index == blocks, "block numbers not consecutive from 0");
    FUZZ_CHECK(b.first_record == records, "first_record is not the count of earlier records");
    FUZZ_CHECK(b.file_offset <= size && b.size <= size - b.file_offset, "region outside the file");
    FUZZ_CHECK(b.data != NULL, "region without data");
    if (b.kind == OCF_BLOCK_DAMAGED) {
      FUZZ_CHECK(b.size > 0, "empty damaged region");
      FUZZ_CHECK(b.count == -1, "damaged region with a count");
      if (blocks)
        FUZZ_CHECK(b.file_offset == end_of_last, "damaged region does not start where the last "
                                                 "region ended");
      FUZZ_CHECK(memcmp(b.data, data + b.file_offset, b.size) == 0, "region bytes not the file's");
      end_of_last = b.file_offset + b.size;
      FUZZ_CHECK(ocf_block_decompress(r, &b, &buf, err, sizeof err) < 0,
                 "a damaged region decompresses");
    } else {
      FUZZ_CHECK(b.kind == OCF_BLOCK_OK, "unknown block kind");
      FUZZ_CHECK(b.count >= 0, "negative record count");
      if (blocks)
        FUZZ_CHECK(b.file_offset >= end_of_last + 2 &&
                       b.file_offset <= end_of_last + MAX_BLOCK_HEADER,
                   "block does not start where the last region ended");
      FUZZ_CHECK(b.size + SYNC <= size - b.file_offset, "block and sync outside the file");
      FUZZ_CHECK(memcmp(b.data, data + b.file_offset, b.size) == 0, "block bytes not the file's");
      end_of_last = b.file_offset + b.size + SYNC;
      records += (uint64_t)b.count;
      memset(err, 'x', sizeof err);
      if (ocf_block_decompress(r, &b, &buf, err, sizeof err) == 0) {
        FUZZ_CHECK(buf.len <= buf.cap, "decompressed length beyond capacity");
        if (plan)
          decode_records(plan, buf.data, buf.len, b.count);
      } else {
        fuzz_check_err(err, sizeof err);
      }
    }
    blocks++;
  }
  if (blocks)
    FUZZ_CHECK(end_of_last == size, "the regions do not reach the end of the file");
  FUZZ_CHECK(ocf_next_block(r, &b) == 0, "blocks after the end");
  ocf_buf_free(&buf);
  pm_plan_free(plan);
  ocf_close(r);
  return 0;
}
