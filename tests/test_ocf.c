/* test_ocf.c — Avro Object Container Files: our writer and reader round trip
 * for every codec; files written by Avro C's avro_file_writer (null, deflate,
 * snappy, lzma: the codecs Debian's Avro C 1.11.1 has) read by ours; ours read
 * by Avro C's avro_file_reader; damaged files (flipped sync marker, truncated
 * tail, garbage over a block, garbage between blocks) give DAMAGED regions
 * while every intact block is still read; corrupt compressed data and snappy
 * CRC mismatches fail decompression; ocf_tell/ocf_seek restart a walk at any
 * block (damaged regions included) exactly as the original walk went on;
 * ocf_open errors; ocf_drop_behind: released pages leave the page cache
 * (mincore) only for readers that drop behind, only when the inputs exceed
 * the room, and never for a file replaced since it was opened;
 * ocf_read_direct: walks past the page cache (blocking or polled, with
 * blocks held unreleased as the pipeline holds them, restarted by ocf_seek,
 * over damage and blocks longer than the ring) frame exactly what the
 * mapping frames, and a read that fails is OCF_FAILED, never bad data;
 * ocf_cgroup_memory_limit over made-up cgroup files (v1 and v2). Deterministic by seed;
 * files go to a per-process temp directory. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <avro.h>

#include "avro/decode.h"
#include "avro/ocf.h"
#include "avro/ocf_direct.h" /* ocf_ring_span */

static char tmpdir[256];

static uint64_t rng_state;
static uint64_t rng_next(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static pm_record random_record(void) {
  pm_record r;
  memset(&r, 0, sizeof r);
  r.person_id = (int64_t)(rng_next() % 6000000) + 1;
  r.period = 199001 + (int32_t)(rng_next() % 110) * 100 + (int32_t)(rng_next() % 12);
  r.municipality = 101 + (int32_t)(rng_next() % 800);
  r.paid_hours = (float)(rng_next() % 2977) / 4.0f;
  r.visitation = (uint8_t)(rng_next() % VISITATION_COUNT);
  r.benefit = (uint8_t)(rng_next() % BENEFIT_COUNT);
  r.flags = (uint8_t)(rng_next() % 64);
  return r;
}

static void path_of(char *buf, size_t n, const char *name) {
  snprintf(buf, n, "%s/%s", tmpdir, name);
}

static const char *const codec_names[] = {"null", "deflate", "snappy", "lzma", "xz", "zstandard"};

/* Write n random records with our writer; returns them (malloc'd). */
static pm_record *write_ours(const char *path, ocf_codec codec, int n, size_t block_bytes) {
  char err[256];
  pm_record *recs = malloc((size_t)n * sizeof *recs);
  ocf_writer *w =
      ocf_writer_open(path, pm_reader_schema_json, codec, 0, block_bytes, err, sizeof err);
  if (!w)
    fail_msg("ocf_writer_open: %s", err);
  for (int i = 0; i < n; i++) {
    uint8_t buf[PM_ENCODED_MAX];
    recs[i] = random_record();
    size_t len = pm_encode(&recs[i], buf);
    assert_int_equal(ocf_writer_append(w, buf, len, err, sizeof err), 0);
  }
  if (ocf_writer_close(w, err, sizeof err) != 0)
    fail_msg("ocf_writer_close: %s", err);
  return recs;
}

typedef struct read_result {
  long ok_blocks, damaged_blocks, records;
  size_t damaged_bytes;
  pm_record *recs; /* records of the OK blocks, in order */
  long cap;
} read_result;

/* Read a whole file with our reader; every OK block must decompress and
 * decode completely. */
static void read_ours(const char *path, read_result *res) {
  char err[256];
  memset(res, 0, sizeof *res);
  ocf_reader *r = ocf_open(path, err, sizeof err);
  if (!r)
    fail_msg("ocf_open: %s", err);
  pm_plan *plan = pm_plan_from_json(ocf_schema_json(r), ocf_schema_json_len(r), err, sizeof err);
  if (!plan)
    fail_msg("plan: %s", err);
  ocf_buf buf = {0};
  ocf_block b;
  uint64_t expect_index = 0;
  while (ocf_next_block(r, &b)) {
    assert_int_equal(b.index, expect_index++);
    if (b.kind == OCF_BLOCK_DAMAGED) {
      res->damaged_blocks++;
      res->damaged_bytes += b.size;
      assert_int_equal(b.count, -1);
      continue;
    }
    res->ok_blocks++;
    assert_int_equal(b.first_record, (uint64_t)res->records);
    if (ocf_block_decompress(r, &b, &buf, err, sizeof err) != 0)
      fail_msg("decompress block %llu: %s", (unsigned long long)b.index, err);
    const uint8_t *p = buf.data, *end = buf.data + buf.len;
    for (int64_t i = 0; i < b.count; i++) {
      if (res->records == res->cap) {
        res->cap = res->cap ? res->cap * 2 : 1024;
        res->recs = realloc(res->recs, (size_t)res->cap * sizeof *res->recs);
      }
      assert_int_equal(pm_decode(plan, &p, end, &res->recs[res->records]), 0);
      res->records++;
    }
    assert_ptr_equal(p, end);
  }
  ocf_buf_free(&buf);
  pm_plan_free(plan);
  ocf_close(r);
}

static void test_round_trip(void **state) {
  (void)state;
  for (int c = 0; c <= OCF_CODEC_ZSTANDARD; c++) {
    char path[512], name[64], err[256];
    snprintf(name, sizeof name, "rt_%s.avro", codec_names[c]);
    path_of(path, sizeof path, name);
    rng_state = 100 + (uint64_t)c;
    enum { N = 30000 };
    pm_record *recs = write_ours(path, (ocf_codec)c, N, 8192);
    ocf_reader *r = ocf_open(path, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(ocf_reader_codec(r), c);
    assert_string_equal(ocf_schema_json(r), pm_reader_schema_json);
    assert_int_equal(ocf_schema_json_len(r), strlen(pm_reader_schema_json));
    assert_int_equal(ocf_codec_from_name(codec_names[c]), c);
    assert_string_equal(ocf_codec_name((ocf_codec)c), codec_names[c]);
    ocf_close(r);
    read_result res;
    read_ours(path, &res);
    assert_int_equal(res.damaged_blocks, 0);
    assert_true(res.ok_blocks > 10);
    assert_int_equal(res.records, N);
    assert_memory_equal(res.recs, recs, N * sizeof *recs);
    free(res.recs);
    free(recs);
  }
  /* an empty file (no blocks) */
  char path[512], err[256];
  path_of(path, sizeof path, "empty.avro");
  ocf_writer *w =
      ocf_writer_open(path, pm_reader_schema_json, OCF_CODEC_DEFLATE, 0, 0, err, sizeof err);
  assert_non_null(w);
  assert_int_equal(ocf_writer_close(w, err, sizeof err), 0);
  read_result res;
  read_ours(path, &res);
  assert_int_equal(res.ok_blocks + res.damaged_blocks, 0);
}

/* ---- Avro C interop ---- */

static avro_schema_t reader_schema(void) {
  avro_schema_t s;
  assert_int_equal(
      avro_schema_from_json_length(pm_reader_schema_json, strlen(pm_reader_schema_json), &s), 0);
  return s;
}

static void set_value(avro_value_t *v, const pm_record *r) {
  avro_value_t f;
  avro_value_get_by_index(v, 0, &f, NULL);
  avro_value_set_long(&f, r->person_id);
  avro_value_get_by_index(v, 1, &f, NULL);
  avro_value_set_int(&f, r->period);
  avro_value_get_by_index(v, 2, &f, NULL);
  avro_value_set_int(&f, r->municipality);
  avro_value_get_by_index(v, 3, &f, NULL);
  avro_value_set_enum(&f, r->visitation);
  avro_value_get_by_index(v, 5, &f, NULL);
  avro_value_set_float(&f, r->paid_hours);
  avro_value_get_by_index(v, 11, &f, NULL);
  avro_value_set_enum(&f, r->benefit);
  static const int bool_fields[6] = {4, 6, 7, 8, 9, 10};
  for (int i = 0; i < 6; i++) {
    avro_value_get_by_index(v, (size_t)bool_fields[i], &f, NULL);
    avro_value_set_boolean(&f, (r->flags >> i) & 1);
  }
}

static pm_record get_value(avro_value_t *v) {
  pm_record r;
  memset(&r, 0, sizeof r);
  avro_value_t f;
  int e = 0, b = 0;
  avro_value_get_by_index(v, 0, &f, NULL);
  avro_value_get_long(&f, &r.person_id);
  avro_value_get_by_index(v, 1, &f, NULL);
  avro_value_get_int(&f, &r.period);
  avro_value_get_by_index(v, 2, &f, NULL);
  avro_value_get_int(&f, &r.municipality);
  avro_value_get_by_index(v, 3, &f, NULL);
  avro_value_get_enum(&f, &e);
  r.visitation = (uint8_t)e;
  avro_value_get_by_index(v, 5, &f, NULL);
  avro_value_get_float(&f, &r.paid_hours);
  avro_value_get_by_index(v, 11, &f, NULL);
  avro_value_get_enum(&f, &e);
  r.benefit = (uint8_t)e;
  static const int bool_fields[6] = {4, 6, 7, 8, 9, 10};
  for (int i = 0; i < 6; i++) {
    avro_value_get_by_index(v, (size_t)bool_fields[i], &f, NULL);
    avro_value_get_boolean(&f, &b);
    if (b)
      r.flags |= (uint8_t)(1u << i);
  }
  return r;
}

static const char *const avro_c_codecs[] = {"null", "deflate", "snappy", "lzma"};

static void test_avro_c_writes_we_read(void **state) {
  (void)state;
  for (size_t c = 0; c < sizeof avro_c_codecs / sizeof avro_c_codecs[0]; c++) {
    char path[512], name[64];
    snprintf(name, sizeof name, "avroc_%s.avro", avro_c_codecs[c]);
    path_of(path, sizeof path, name);
    unlink(path);
    avro_schema_t s = reader_schema();
    avro_file_writer_t fw;
    if (avro_file_writer_create_with_codec(path, s, &fw, avro_c_codecs[c], 16384) != 0)
      fail_msg("Avro C writer (%s): %s", avro_c_codecs[c], avro_strerror());
    avro_value_iface_t *cls = avro_generic_class_from_schema(s);
    avro_value_t v;
    avro_generic_value_new(cls, &v);
    enum { N = 20000 };
    pm_record *recs = malloc(N * sizeof *recs);
    rng_state = 200 + c;
    for (int i = 0; i < N; i++) {
      recs[i] = random_record();
      set_value(&v, &recs[i]);
      assert_int_equal(avro_file_writer_append_value(fw, &v), 0);
    }
    assert_int_equal(avro_file_writer_close(fw), 0);
    avro_value_decref(&v);
    avro_value_iface_decref(cls);
    avro_schema_decref(s);

    read_result res;
    read_ours(path, &res);
    assert_int_equal(res.damaged_blocks, 0);
    assert_true(res.ok_blocks > 1);
    assert_int_equal(res.records, N);
    assert_memory_equal(res.recs, recs, N * sizeof *recs);
    free(res.recs);
    free(recs);
  }
}

static void test_we_write_avro_c_reads(void **state) {
  (void)state;
  for (size_t c = 0; c < sizeof avro_c_codecs / sizeof avro_c_codecs[0]; c++) {
    char path[512], name[64];
    snprintf(name, sizeof name, "ours_%s.avro", avro_c_codecs[c]);
    path_of(path, sizeof path, name);
    rng_state = 300 + c;
    enum { N = 20000 };
    pm_record *recs = write_ours(path, (ocf_codec)ocf_codec_from_name(avro_c_codecs[c]), N, 4096);
    avro_file_reader_t fr;
    if (avro_file_reader(path, &fr) != 0)
      fail_msg("Avro C reader (%s): %s", avro_c_codecs[c], avro_strerror());
    avro_schema_t s = avro_file_reader_get_writer_schema(fr);
    avro_value_iface_t *cls = avro_generic_class_from_schema(s);
    avro_value_t v;
    avro_generic_value_new(cls, &v);
    int n = 0, rc;
    while ((rc = avro_file_reader_read_value(fr, &v)) == 0) {
      assert_true(n < N);
      pm_record got = get_value(&v);
      assert_memory_equal(&got, &recs[n], sizeof got);
      n++;
    }
    assert_int_equal(n, N);
    avro_value_decref(&v);
    avro_value_iface_decref(cls);
    avro_schema_decref(s);
    avro_file_reader_close(fr);
    free(recs);
  }
}

/* ---- damaged files ---- */

typedef struct layout {
  long nblocks;
  uint64_t off[512];  /* file offset of each block's header */
  uint64_t data[512]; /* file offset of each block's data */
  size_t size[512];   /* data size */
  int64_t count[512];
  size_t file_size;
} layout;

static uint8_t *load(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc(*n + 1);
  assert_int_equal(fread(b, 1, *n, f), *n);
  fclose(f);
  return b;
}

static void save(const char *path, const uint8_t *b, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(b, 1, n, f), n);
  fclose(f);
}

static size_t varint_len(int64_t v) {
  uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
  size_t n = 1;
  while (z > 0x7f) {
    z >>= 7;
    n++;
  }
  return n;
}

static void get_layout(const char *path, layout *l) {
  char err[256];
  memset(l, 0, sizeof *l);
  ocf_reader *r = ocf_open(path, err, sizeof err);
  assert_non_null(r);
  ocf_block b;
  while (ocf_next_block(r, &b)) {
    assert_int_equal(b.kind, OCF_BLOCK_OK);
    assert_true(l->nblocks < 512);
    l->data[l->nblocks] = b.file_offset;
    l->off[l->nblocks] = b.file_offset - varint_len(b.count) - varint_len((int64_t)b.size);
    l->size[l->nblocks] = b.size;
    l->count[l->nblocks] = b.count;
    l->nblocks++;
  }
  ocf_close(r);
  size_t n;
  free(load(path, &n));
  l->file_size = n;
}

/* Records of all blocks but those in [lost_from, lost_to]. */
static long records_except(const layout *l, long lost_from, long lost_to) {
  long n = 0;
  for (long i = 0; i < l->nblocks; i++)
    if (i < lost_from || i > lost_to)
      n += l->count[i];
  return n;
}

/* The intact blocks' records must be exactly the original ones. */
static void check_records(const read_result *res, const pm_record *orig, const layout *l,
                          long lost_from, long lost_to) {
  long k = 0, o = 0;
  for (long i = 0; i < l->nblocks; i++) {
    if (i >= lost_from && i <= lost_to) {
      o += l->count[i];
      continue;
    }
    for (int64_t j = 0; j < l->count[i]; j++, k++, o++)
      assert_memory_equal(&res->recs[k], &orig[o], sizeof(pm_record));
  }
  assert_int_equal(k, res->records);
}

static void damage_case(const char *tag, ocf_codec codec) {
  char path[512], bad[512], name[64];
  snprintf(name, sizeof name, "dmg_%s.avro", tag);
  path_of(path, sizeof path, name);
  snprintf(name, sizeof name, "dmg_%s_bad.avro", tag);
  path_of(bad, sizeof bad, name);
  rng_state = 400 + (uint64_t)codec;
  enum { N = 20000 };
  pm_record *orig = write_ours(path, codec, N, 4096);
  layout l;
  get_layout(path, &l);
  assert_true(l.nblocks >= 20);
  size_t n;
  uint8_t *file = load(path, &n);
  uint8_t *copy = malloc(n + 4096);
  read_result res;
  long k = l.nblocks / 2;

  /* 1. flipped sync marker after block k: only block k is lost */
  memcpy(copy, file, n);
  copy[l.data[k] + l.size[k] + 5] ^= 0x40;
  save(bad, copy, n);
  read_ours(bad, &res);
  assert_int_equal(res.damaged_blocks, 1);
  assert_int_equal(res.ok_blocks, l.nblocks - 1);
  assert_int_equal(res.records, records_except(&l, k, k));
  check_records(&res, orig, &l, k, k);
  free(res.recs);

  /* 2. truncated tail: the last block is cut in half */
  long last = l.nblocks - 1;
  size_t cut = (size_t)(l.data[last] + l.size[last] / 2);
  save(bad, file, cut);
  read_ours(bad, &res);
  assert_int_equal(res.damaged_blocks, 1);
  assert_int_equal(res.damaged_bytes, cut - l.off[last]);
  assert_int_equal(res.ok_blocks, l.nblocks - 1);
  check_records(&res, orig, &l, last, last);
  free(res.recs);
  /* ... and cut inside the final sync marker */
  save(bad, file, n - 3);
  read_ours(bad, &res);
  assert_int_equal(res.damaged_blocks, 1);
  check_records(&res, orig, &l, last, last);
  free(res.recs);

  /* 3. garbage over block k's header and the start of its data */
  memcpy(copy, file, n);
  for (size_t i = l.off[k]; i < l.data[k] + l.size[k] / 2; i++)
    copy[i] = (uint8_t)rng_next();
  save(bad, copy, n);
  read_ours(bad, &res);
  assert_int_equal(res.damaged_blocks, 1);
  assert_int_equal(res.damaged_bytes, l.off[k + 1] - l.off[k]);
  check_records(&res, orig, &l, k, k);
  free(res.recs);

  /* 4. a negative record count in block k's header */
  memcpy(copy, file, n);
  copy[l.off[k]] = 0x01; /* zigzag -1 */
  save(bad, copy, n);
  read_ours(bad, &res);
  assert_int_equal(res.damaged_blocks, 1);
  check_records(&res, orig, &l, k, k);
  free(res.recs);

  /* 5. garbage inserted between blocks k-1 and k: the resync point is the
   * sync marker after block k, so block k is lost with the garbage; all
   * blocks before and after are read */
  size_t ins = (size_t)l.off[k], glen = 37;
  memcpy(copy, file, ins);
  for (size_t i = 0; i < glen; i++)
    copy[ins + i] = (uint8_t)rng_next();
  memcpy(copy + ins + glen, file + ins, n - ins);
  save(bad, copy, n + glen);
  read_ours(bad, &res);
  assert_int_equal(res.damaged_blocks, 1);
  assert_int_equal(res.damaged_bytes, glen + l.off[k + 1] - l.off[k]);
  check_records(&res, orig, &l, k, k);
  free(res.recs);

  /* 6. damage inside the data only: framing is fine, decompression (or, for
   * the null codec, decoding) must notice */
  if (codec != OCF_CODEC_NULL) {
    memcpy(copy, file, n);
    for (size_t i = 0; i < 8; i++)
      copy[l.data[k] + l.size[k] / 3 + i] ^= 0x5a;
    save(bad, copy, n);
    char err[256];
    ocf_reader *r = ocf_open(bad, err, sizeof err);
    assert_non_null(r);
    ocf_buf buf = {0};
    ocf_block b;
    long failed = 0, blocks = 0;
    while (ocf_next_block(r, &b)) {
      assert_int_equal(b.kind, OCF_BLOCK_OK);
      blocks++;
      if (ocf_block_decompress(r, &b, &buf, err, sizeof err) != 0) {
        failed++;
        assert_int_equal((long)b.index, k);
        assert_true(strlen(err) > 0);
      }
    }
    /* deflate and lzma have no checksum of their own: corrupt data may still
     * inflate (to wrong bytes), and zstd frames carry no checksum by default;
     * snappy (CRC32) and xz (CRC64) must fail */
    if (codec == OCF_CODEC_SNAPPY || codec == OCF_CODEC_XZ)
      assert_int_equal(failed, 1);
    assert_int_equal(blocks, l.nblocks);
    ocf_buf_free(&buf);
    ocf_close(r);
  }
  free(copy);
  free(file);
  free(orig);
}

static void test_damaged(void **state) {
  (void)state;
  damage_case("null", OCF_CODEC_NULL);
  damage_case("deflate", OCF_CODEC_DEFLATE);
  damage_case("snappy", OCF_CODEC_SNAPPY);
  damage_case("lzma", OCF_CODEC_LZMA);
  damage_case("xz", OCF_CODEC_XZ);
  damage_case("zstandard", OCF_CODEC_ZSTANDARD);
}

/* ---- ocf_open errors ---- */

static void expect_open_error(const char *path, const char *needle) {
  char err[256] = "";
  ocf_reader *r = ocf_open(path, err, sizeof err);
  if (r)
    fail_msg("ocf_open(%s) succeeded", path);
  if (!strstr(err, needle))
    fail_msg("ocf_open(%s): '%s' lacks '%s'", path, err, needle);
  assert_null(strchr(err, '\n'));
}

static size_t put_bytes(uint8_t *p, const void *s, size_t n) {
  size_t k = 0;
  uint64_t z = (uint64_t)n << 1;
  while (z > 0x7f) {
    p[k++] = (uint8_t)(z | 0x80);
    z >>= 7;
  }
  p[k++] = (uint8_t)z;
  memcpy(p + k, s, n);
  return k + n;
}

static void test_open_errors(void **state) {
  (void)state;
  char path[512];
  path_of(path, sizeof path, "does_not_exist.avro");
  expect_open_error(path, "No such file");

  path_of(path, sizeof path, "bad_magic.avro");
  save(path, (const uint8_t *)"Obj\x02 not avro at all", 21);
  expect_open_error(path, "bad magic");
  path_of(path, sizeof path, "zero.avro");
  save(path, (const uint8_t *)"", 0);
  expect_open_error(path, "bad magic");

  uint8_t h[4096];
  size_t n = 0;
  memcpy(h, "Obj\x01", 4);
  n = 4;
  h[n++] = 4; /* two entries */
  n += put_bytes(h + n, "avro.schema", 11);
  n += put_bytes(h + n, pm_reader_schema_json, strlen(pm_reader_schema_json));
  n += put_bytes(h + n, "avro.codec", 10);
  size_t codec_at = n;
  n += put_bytes(h + n, "brotli", 6);
  h[n++] = 0;
  memset(h + n, 0xab, 16);
  n += 16;
  path_of(path, sizeof path, "unknown_codec.avro");
  save(path, h, n);
  expect_open_error(path, "unknown codec 'brotli'");

  /* the same header with codec "zstandard" opens; truncated, it does not */
  size_t m = codec_at + put_bytes(h + codec_at, "zstandard", 9);
  h[m++] = 0;
  memset(h + m, 0xab, 16);
  m += 16;
  path_of(path, sizeof path, "header_ok.avro");
  save(path, h, m);
  char err[256];
  ocf_reader *r = ocf_open(path, err, sizeof err);
  assert_non_null(r);
  assert_int_equal(ocf_reader_codec(r), OCF_CODEC_ZSTANDARD);
  ocf_block b;
  assert_int_equal(ocf_next_block(r, &b), 0);
  ocf_close(r);
  for (size_t cut = 5; cut < m; cut += 7) {
    path_of(path, sizeof path, "header_cut.avro");
    save(path, h, cut);
    expect_open_error(path, "broken container header");
  }

  /* no avro.schema; no avro.codec means null */
  n = 4;
  h[n++] = 2;
  n += put_bytes(h + n, "user.key", 8);
  n += put_bytes(h + n, "x", 1);
  h[n++] = 0;
  memset(h + n, 0xcd, 16);
  n += 16;
  path_of(path, sizeof path, "no_schema.avro");
  save(path, h, n);
  expect_open_error(path, "no avro.schema");
  n = 4;
  h[n++] = 2;
  n += put_bytes(h + n, "avro.schema", 11);
  n += put_bytes(h + n, "\"long\"", 6);
  h[n++] = 0;
  memset(h + n, 0xcd, 16);
  n += 16;
  path_of(path, sizeof path, "no_codec.avro");
  save(path, h, n);
  r = ocf_open(path, err, sizeof err);
  assert_non_null(r);
  assert_int_equal(ocf_reader_codec(r), OCF_CODEC_NULL);
  assert_string_equal(ocf_schema_json(r), "\"long\"");
  ocf_close(r);

  assert_int_equal(ocf_codec_from_name("brotli"), -1);
}

/* ---- ocf_tell / ocf_seek: a walk restarted at a told position ---- */

typedef struct walked {
  ocf_position before; /* ocf_tell before the block was framed */
  ocf_block block;     /* its data points into that walk's mapping: compare offsets */
} walked;

static long walk_all(const char *path, walked *out, long max, ocf_position *end) {
  char err[256];
  ocf_reader *r = ocf_open(path, err, sizeof err);
  if (!r)
    fail_msg("ocf_open: %s", err);
  size_t n;
  uint8_t *file = load(path, &n);
  assert_int_equal(ocf_file_size(r), n);
  /* every block ends with the sync marker, so the file does too */
  assert_memory_equal(ocf_sync_marker(r), file + n - 16, 16);
  free(file);
  long k = 0;
  ocf_position p = ocf_tell(r);
  ocf_block b;
  while (ocf_next_block(r, &b)) {
    assert_true(k < max);
    out[k].before = p;
    out[k].block = b;
    k++;
    p = ocf_tell(r);
  }
  *end = p;
  ocf_close(r);
  return k;
}

static void test_tell_seek(void **state) {
  (void)state;
  char path[512], bad[512], err[256];
  path_of(path, sizeof path, "seek.avro");
  path_of(bad, sizeof bad, "seek_bad.avro");
  rng_state = 900;
  free(write_ours(path, OCF_CODEC_DEFLATE, 6000, 2048));
  layout l;
  get_layout(path, &l);
  assert_true(l.nblocks >= 10);
  /* garbage over the header of block 3, and a flipped sync marker after
   * block 7: the walk has two damaged regions to restart at or after */
  size_t n;
  uint8_t *file = load(path, &n);
  for (size_t i = l.off[3]; i < l.off[3] + 6; i++)
    file[i] = 0xff;
  file[l.data[7] + l.size[7] + 3] ^= 0x11;
  save(bad, file, n);
  free(file);

  static walked all[600];
  ocf_position end;
  long total = walk_all(bad, all, 600, &end);
  long damaged = 0;
  for (long k = 0; k < total; k++)
    damaged += all[k].block.kind == OCF_BLOCK_DAMAGED;
  assert_int_equal(damaged, 2);
  assert_int_equal(end.offset, n);

  for (long k = 0; k <= total; k++) {
    ocf_reader *r = ocf_open(bad, err, sizeof err);
    assert_non_null(r);
    ocf_position at = k < total ? all[k].before : end;
    assert_int_equal(ocf_seek(r, &at, err, sizeof err), 0);
    long j = k;
    ocf_block b;
    while (ocf_next_block(r, &b)) {
      assert_true(j < total);
      const ocf_block *o = &all[j].block;
      assert_int_equal(b.kind, o->kind);
      assert_int_equal(b.index, o->index);
      assert_int_equal(b.first_record, o->first_record);
      assert_int_equal(b.file_offset, o->file_offset);
      assert_int_equal(b.size, o->size);
      assert_int_equal(b.count, o->count);
      j++;
    }
    assert_int_equal(j, total);
    ocf_position after = ocf_tell(r);
    assert_memory_equal(&after, &end, sizeof end);
    ocf_close(r);
  }

  /* outside the blocks: before the end of the header, past the end */
  ocf_reader *r = ocf_open(bad, err, sizeof err);
  assert_non_null(r);
  ocf_position p = all[0].before;
  p.offset--;
  assert_int_equal(ocf_seek(r, &p, err, sizeof err), -1);
  assert_non_null(strstr(err, "outside"));
  p.offset = n + 1;
  assert_int_equal(ocf_seek(r, &p, err, sizeof err), -1);
  /* a failed seek leaves the walk where it was */
  ocf_block b;
  assert_int_equal(ocf_next_block(r, &b), 1);
  assert_int_equal(b.index, 0);
  ocf_close(r);
}

/* The share of path's pages in the page cache (mincore of a mapping of it
 * that touches none). */
static double cached_share(const char *path) {
  int fd = open(path, O_RDONLY);
  assert_true(fd >= 0);
  off_t size = lseek(fd, 0, SEEK_END);
  void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
  assert_true(m != MAP_FAILED);
  size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = ((size_t)size + page - 1) / page;
  unsigned char *vec = malloc(pages);
  assert_int_equal(mincore(m, (size_t)size, vec), 0);
  size_t in = 0;
  for (size_t i = 0; i < pages; i++)
    in += vec[i] & 1;
  free(vec);
  munmap(m, (size_t)size);
  close(fd);
  return (double)in / (double)pages;
}

/* Open path (dropping behind when its size exceeds room), walk its blocks
 * and release them all. */
static ocf_reader *read_through(const char *path, uint64_t room, size_t *dropping) {
  char err[256];
  ocf_reader *r = ocf_open(path, err, sizeof err);
  assert_non_null(r);
  *dropping = ocf_drop_behind(&r, 1, room);
  ocf_block b;
  while (ocf_next_block(r, &b))
    ;
  ocf_release(r, ocf_file_size(r));
  return r;
}

static void test_drop_behind(void **state) {
  (void)state;
  char path[512], other[512];
  path_of(path, sizeof path, "drop.avro");
  path_of(other, sizeof other, "drop_other.avro");
  rng_state = 1000;
  free(write_ours(path, OCF_CODEC_NULL, 200000, 65536)); /* about 4 MB */
  free(write_ours(other, OCF_CODEC_NULL, 20000, 65536));
  int fd = open(path, O_RDONLY); /* written back: clean pages can be dropped */
  assert_true(fd >= 0);
  assert_int_equal(fsync(fd), 0);
  close(fd);
  assert_true(cached_share(path) > 0.9);

  /* room for the input: its pages stay cached */
  size_t dropping;
  ocf_reader *r = read_through(path, UINT64_MAX, &dropping);
  assert_int_equal(dropping, 0);
  ocf_close(r);
  assert_true(cached_share(path) > 0.9);

  /* no room: they leave the cache as they are released */
  r = read_through(path, 0, &dropping);
  assert_int_equal(dropping, 1);
  assert_int_equal(ocf_drop_behind(&r, 1, 0), 0); /* once per reader */
  assert_true(cached_share(path) < 0.1);
  ocf_close(r);

  /* a file replaced since it was opened is not the one being read */
  char err[256];
  r = ocf_open(path, err, sizeof err);
  assert_non_null(r);
  assert_int_equal(rename(other, path), 0);
  assert_int_equal(ocf_drop_behind(&r, 1, 0), 0);
  ocf_close(r);
}

/* ---- ocf_read_direct: the walk past the page cache, into the ring ---- */

typedef struct seen {
  ocf_block block; /* data compared through sum: it points into one walk's memory */
  uint64_t sum;    /* FNV-1a of the block's bytes */
} seen;

static uint64_t bytes_sum(const uint8_t *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

static void count_landed(void *arg) { /* after a poll found its bytes not yet read */
  atomic_fetch_add((_Atomic long *)arg, 1);
}

enum { HOLD_ALL = -1 };

/* Walk path from `from` (NULL: the start), reading past the page cache when
 * direct, with ocf_poll_block when poll. hold: how many blocks are kept
 * (not released) behind the walk, as the pipeline's slots keep them; a
 * poll that finds the ring full releases the oldest. HOLD_ALL: none is
 * released before the end (ocf_next_block must then frame in the mapping
 * rather than wait for ever). Returns the blocks, or -1 at OCF_FAILED with
 * the reason in why. */
static long walk_direct(const char *path, int direct, int poll, int hold, const ocf_position *from,
                        seen *out, long max, char *why, size_t whylen) {
  char err[256];
  ocf_reader *r = ocf_open(path, err, sizeof err);
  if (!r)
    fail_msg("ocf_open: %s", err);
  static _Atomic long landed;
  atomic_store(&landed, 0);
  if (direct) {
    assert_int_equal(ocf_drop_behind(&r, 1, 0), 1);
    assert_int_equal(ocf_read_direct(&r, 1, count_landed, (void *)&landed), 1);
    assert_int_equal(ocf_read_direct(&r, 1, count_landed, (void *)&landed), 0); /* once */
  }
  if (from)
    assert_int_equal(ocf_seek(r, from, err, sizeof err), 0);
  enum { HELD_MAX = 1024 };
  static uint64_t held[HELD_MAX]; /* block ends not yet released, oldest first */
  long k = 0, nheld = 0, first = 0, not_yet = 0;
  for (;;) {
    ocf_block b;
    int got = poll ? ocf_poll_block(r, &b) : ocf_next_block(r, &b);
    if (got == OCF_NOT_YET) {
      assert_true(poll);
      not_yet++;
      if (nheld > first) /* the ring may be full of held blocks: free one */
        ocf_release(r, held[first++]);
      else
        usleep(20);
      continue;
    }
    if (got == OCF_FAILED) {
      int e = ocf_failure(r, why, whylen);
      assert_true(e != 0);
      ocf_close(r);
      return -1;
    }
    if (got == OCF_END)
      break;
    assert_int_equal(got, OCF_GOT);
    assert_true(k < max);
    out[k].block = b;
    out[k].sum = bytes_sum(b.data, b.size);
    k++;
    uint64_t end = b.file_offset + b.size;
    if (hold == 0) {
      ocf_release(r, end);
    } else if (hold > 0) {
      assert_true(nheld < HELD_MAX);
      held[nheld++] = end;
      if (nheld - first > hold)
        ocf_release(r, held[first++]);
      if (first == nheld)
        first = nheld = 0;
    }
  }
  ocf_release(r, ocf_file_size(r));
  /* called after polls that came too early, and only then */
  if (direct && poll && not_yet > 0)
    assert_true(atomic_load(&landed) > 0);
  if (!poll)
    assert_int_equal(atomic_load(&landed), 0);
  ocf_close(r);
  /* more blocks held than the ring holds: some polls found it full */
  if (direct && poll && (uint64_t)hold * 65536 > 4u << 20) /* the ring */
    assert_true(not_yet > 0);
  return k;
}

static void expect_same_walk(const seen *a, long na, const seen *b, long nb) {
  assert_int_equal(na, nb);
  for (long k = 0; k < na; k++) {
    assert_int_equal(a[k].block.kind, b[k].block.kind);
    assert_int_equal(a[k].block.index, b[k].block.index);
    assert_int_equal(a[k].block.first_record, b[k].block.first_record);
    assert_int_equal(a[k].block.file_offset, b[k].block.file_offset);
    assert_int_equal(a[k].block.size, b[k].block.size);
    assert_int_equal(a[k].block.count, b[k].block.count);
    assert_int_equal(a[k].sum, b[k].sum);
  }
}

static void test_read_direct(void **state) {
  (void)state;
  char path[512], bad[512], big[512], why[400];
  path_of(path, sizeof path, "direct.avro");
  path_of(bad, sizeof bad, "direct_bad.avro");
  path_of(big, sizeof big, "direct_big.avro");
  rng_state = 1100;
  /* about 45 MB in 64 KiB blocks: the 4 MiB ring wraps many times */
  free(write_ours(path, OCF_CODEC_NULL, 2500000, 65536));
  size_t n;
  uint8_t *file = load(path, &n);
  assert_true(n > 40u << 20);
  /* damage: a flipped sync marker at 30 %, garbage over a block header at
   * 55 %, 5 MiB of garbage at 75 % (a damaged region the ring reads
   * through), and the last block cut in half */
  ocf_reader *r = ocf_open(path, why, sizeof why);
  assert_non_null(r);
  static seen ref[4096];
  uint64_t marks[3] = {n * 3 / 10, n * 55 / 100, n * 3 / 4}, mark_at[3] = {0}, last = 0;
  ocf_block b;
  int m = 0;
  while (ocf_next_block(r, &b) == OCF_GOT) {
    if (m < 3 && b.file_offset > marks[m])
      mark_at[m++] = b.file_offset;
    last = b.file_offset;
  }
  ocf_close(r);
  assert_int_equal(m, 3);
  file[mark_at[0] - 7] ^= 0x40; /* inside the sync marker before that block */
  memset(file + mark_at[1] - 2, 0xff, 6);
  for (size_t i = 0; i < 5u << 20; i++)
    file[mark_at[2] + i] = (uint8_t)rng_next();
  save(bad, file, (size_t)last + 100);
  free(file);

  static seen got[4096];
  long nref = walk_direct(bad, 0, 0, 0, NULL, ref, 4096, why, sizeof why);
  long damaged = 0;
  for (long k = 0; k < nref; k++)
    damaged += ref[k].block.kind == OCF_BLOCK_DAMAGED;
  assert_true(damaged >= 4);
  /* each block released at once; none released (the mapping frames the
   * blocks the ring has no room for); polled with 100 and 400 blocks held
   * (more than the ring holds: polls find it full) */
  expect_same_walk(ref, nref, got, walk_direct(bad, 1, 0, 0, NULL, got, 4096, why, sizeof why));
  expect_same_walk(ref, nref, got,
                   walk_direct(bad, 1, 0, HOLD_ALL, NULL, got, 4096, why, sizeof why));
  expect_same_walk(ref, nref, got, walk_direct(bad, 1, 1, 100, NULL, got, 4096, why, sizeof why));
  expect_same_walk(ref, nref, got, walk_direct(bad, 1, 1, 400, NULL, got, 4096, why, sizeof why));

  /* a walk restarted at a told position, past the first damage */
  r = ocf_open(bad, why, sizeof why);
  assert_non_null(r);
  long at = 0;
  ocf_position p = ocf_tell(r);
  while (ocf_next_block(r, &b) == OCF_GOT && b.file_offset < marks[1]) {
    at++;
    p = ocf_tell(r);
  }
  ocf_close(r);
  expect_same_walk(ref + at, nref - at, got,
                   walk_direct(bad, 1, 1, 64, &p, got, 4096, why, sizeof why));
  expect_same_walk(ref + at, nref - at, got,
                   walk_direct(bad, 1, 0, 0, &p, got, 4096, why, sizeof why));

  /* a block longer than the ring's span is framed in the mapping, the
   * shorter one after it in the ring */
  free(write_ours(big, OCF_CODEC_NULL, 300000, 5u << 20));
  nref = walk_direct(big, 0, 0, 0, NULL, ref, 4096, why, sizeof why);
  assert_int_equal(nref, 2);
  assert_true(ref[0].block.size > ocf_ring_span() && ref[1].block.size < ocf_ring_span());
  expect_same_walk(ref, nref, got, walk_direct(big, 1, 0, 0, NULL, got, 4096, why, sizeof why));
  expect_same_walk(ref, nref, got, walk_direct(big, 1, 1, 4, NULL, got, 4096, why, sizeof why));
}

/* A read that fails (REGSTREAM_FAULT, set in main: the second read of
 * faulty.avro fails with EIO) is OCF_FAILED, naming the file, the offset
 * and the error, after the blocks of the bytes read before it: never a
 * damaged region, never the end. */
static void test_read_direct_fails(void **state) {
  (void)state;
  char path[512], why[400];
  path_of(path, sizeof path, "faulty.avro");
  rng_state = 1200;
  free(write_ours(path, OCF_CODEC_NULL, 300000, 65536)); /* about 5 MB */
  static seen got[4096];
  assert_int_equal(walk_direct(path, 1, 0, 0, NULL, got, 4096, why, sizeof why), -1);
  assert_non_null(strstr(why, "faulty.avro"));
  assert_non_null(strstr(why, "offset 1048576")); /* the second 1 MiB read */
  assert_non_null(strstr(why, strerror(EIO)));
  /* the next walk's reads succeed: polled, it reads to the end */
  long k = walk_direct(path, 1, 1, 8, NULL, got, 4096, why, sizeof why);
  assert_true(k > 0);
  for (long i = 0; i < k; i++)
    assert_int_equal(got[i].block.kind, OCF_BLOCK_OK);
}

/* Writes text to dir/name, making the folders on the way. */
static void put(const char *dir, const char *name, const char *text) {
  char path[1024], cmd[1200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\"", path);
  assert_int_equal(system(cmd), 0);
  save(path, (const uint8_t *)text, strlen(text));
}

static void test_cgroup_memory_limit(void **state) {
  (void)state;
  char proc[512], sys[512];
  path_of(proc, sizeof proc, "cgroup");
  path_of(sys, sizeof sys, "sys");
  /* none readable */
  assert_true(ocf_cgroup_memory_limit(proc, sys) == UINT64_MAX);
  /* v2: the least of memory.max and memory.high, of the own cgroup and
   * those above it; "max" is no limit */
  put(tmpdir, "cgroup", "0::/system.slice/regstream.service\n");
  put(sys, "system.slice/regstream.service/memory.max", "2147483648\n");
  put(sys, "system.slice/regstream.service/memory.high", "max\n");
  assert_true(ocf_cgroup_memory_limit(proc, sys) == 2147483648u);
  put(sys, "system.slice/regstream.service/memory.high", "1610612736\n");
  assert_true(ocf_cgroup_memory_limit(proc, sys) == 1610612736u);
  put(sys, "system.slice/memory.max", "1073741824\n");
  assert_true(ocf_cgroup_memory_limit(proc, sys) == 1073741824u);
  put(sys, "memory.max", "536870912\n"); /* a container's own root */
  assert_true(ocf_cgroup_memory_limit(proc, sys) == 536870912u);
  /* v1: the memory controller's hierarchy, other controllers ignored */
  put(tmpdir, "cgroup", "4:memory:/jobs/replay\n3:cpu:/jobs/replay\n0::/\n");
  put(sys, "cpu/jobs/replay/memory.limit_in_bytes", "1\n");
  put(sys, "memory/jobs/replay/memory.limit_in_bytes", "9223372036854771712\n");
  put(sys, "memory/jobs/replay/memory.soft_limit_in_bytes", "9223372036854771712\n");
  put(sys, "memory/jobs/memory.limit_in_bytes", "3221225472\n");
  /* the v2 root's memory.max (536870912) still counts: "0::/" names it */
  assert_true(ocf_cgroup_memory_limit(proc, sys) == 536870912u);
  put(sys, "memory.max", "max\n");
  assert_true(ocf_cgroup_memory_limit(proc, sys) == 3221225472u);
}

static int setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "%s/regstream_test_ocf_XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
  /* Read once, at the first file-system call (util/fs.h): only faulty.avro's. */
  setenv("REGSTREAM_FAULT", "read:2:EIO:faulty.avro", 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_avro_c_writes_we_read),
      cmocka_unit_test(test_we_write_avro_c_reads),
      cmocka_unit_test(test_damaged),
      cmocka_unit_test(test_open_errors),
      cmocka_unit_test(test_tell_seek),
      cmocka_unit_test(test_drop_behind),
      cmocka_unit_test(test_read_direct),
      cmocka_unit_test(test_read_direct_fails),
      cmocka_unit_test(test_cgroup_memory_limit),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
