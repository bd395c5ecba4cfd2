/* fuzz_snapshot.c — libFuzzer harness for the snapshot reader, snapshot_read
 * (processor/snapshot.c), on arbitrary bytes. Byte 0 picks how the rest
 * becomes a file (byte 0 % 3):
 *   0  as it is: magic, lengths, both CRC-32s and the zstd frame must all
 *      survive mutation, so this mostly exercises the checks in front;
 *   1  checksums repaired: the header CRC (at H-4, H read from bytes 12-15)
 *      and the whole-file CRC (last 4 bytes) are recomputed, so mutations
 *      reach the header fields and the zstd frame;
 *   2  payload given raw: the bytes after the H-byte header are the
 *      uncompressed payload; the harness compresses them (zstd level 1, as
 *      the writer does), sets R and C, the section lengths (all but the ids'
 *      follow from n and M; the ids' get the rest) and repairs both CRCs,
 *      so mutations reach the section decoders (ids, planes, months,
 *      counters) directly.
 * Repairing the checksums here, rather than a checksum-skipping switch in
 * snapshot.c, keeps the program free of test-only paths: the file the
 * reader sees is one a writer could have made.
 * Checks: snapshot_read returns 0 or -1 with a one-line reason naming the
 * file, never crashes or leaks; verifying alone (no shard) agrees with
 * loading, and so does snapshot_inspect; a loaded shard matches its meta
 * (persons, month blocks, counts) and holds only states the rules can use;
 * and written again (snapshot_write) and read back it is the same shard
 * with the same meta. Files claiming more than 100000 persons are skipped
 * (the map is sized for all of them once their ids are read, before their
 * states are; millions are the benchmark's, bench/bench_snapshot.c).
 *
 * Seeds (corpus/snapshot/seed-*): made by this file's seed writer,
 *   cc -DFUZZ_SNAPSHOT_SEEDS -D_GNU_SOURCE -Iprocessor -Itests/fuzz tests/fuzz/fuzz_snapshot.c \
 *      tests/fuzz/fuzz_common.c processor/snapshot.c processor/shard.c processor/core/\*.c \
 *      build/libregstream_avro.a -lavro -lzstd -lz -lm -o /tmp/snapseeds && \
 *      /tmp/snapseeds tests/fuzz/corpus/snapshot
 * (run from the repository root after a build). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "core/municipality.h"
#include "core/period.h"
#include "fuzz_common.h"
#include "state/snapshot.h"
#include "state/store.h"

static rules_config rules;

static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) {
  return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}
static void wr32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

/* Header length H of a candidate file, or 0 when it cannot be one. */
static size_t header_len(const uint8_t *f, size_t len) {
  if (len < 16)
    return 0;
  size_t h = rd32(f + 12);
  return h >= 20 && h + 4 <= len ? h : 0;
}

static void repair_crcs(uint8_t *f, size_t len) {
  size_t h = header_len(f, len);
  if (!h)
    return;
  wr32(f + h - 4, (uint32_t)crc32(0, f, (uInt)(h - 4)));
  wr32(f + len - 4, (uint32_t)crc32(0, f, (uInt)(len - 4)));
}

/* Mode 2: header + raw payload -> header + zstd frame + CRC; malloc'd. */
static uint8_t *compress_payload(const uint8_t *in, size_t len, size_t *out_len) {
  size_t h = len >= 16 ? rd32(in + 12) : 0;
  if (h < 104 || h > len)
    return NULL;
  size_t raw = len - h, bound = ZSTD_compressBound(raw);
  uint8_t *f = malloc(h + bound + 4);
  FUZZ_CHECK(f != NULL, "out of memory");
  memcpy(f, in, h);
  size_t c = ZSTD_compress(f + h, bound, in + h, raw, 1);
  FUZZ_CHECK(!ZSTD_isError(c), "zstd could not compress");
  wr64(f + 88, raw);
  wr64(f + 96, c);
  /* The section lengths follow from n and M (header offsets 32 and 40) but
   * the ids': set them all, the ids' to what is left, so that inserted or
   * erased payload bytes keep the file consistent and reach the decoders. */
  uint64_t n = rd64(in + 32), months = rd32(in + 40);
  if (h >= 104 + 8 * 11 && n <= 100000 && months <= PERIOD_MONTHS) {
    static const unsigned per_person[11] = {0, 4, 4, 2, 1, 1, 1, 1, 2, 0, 0};
    uint64_t fixed = 0, len[11];
    for (int i = 1; i < 11; i++) {
      len[i] = per_person[i] * n;
      if (i == 9)
        len[i] = 2 * months;
      if (i == 10)
        len[i] = 4 * months * ROLLUP_KEYS * ROLLUP_COLUMNS;
      fixed += len[i];
    }
    if (raw >= fixed) {
      len[0] = raw - fixed;
      for (int i = 0; i < 11; i++)
        wr64(f + 104 + 8 * i, len[i]);
    }
  }
  *out_len = h + c + 4;
  repair_crcs(f, *out_len);
  return f;
}

static int states_usable(const shard *s) {
  int64_t id;
  const person_state *p;
  size_t seen = 0;
  for (size_t at = 0; (p = personmap_next(&s->persons, &at, &id)); seen++) {
    /* latest_status is 3 bits: always below STATUS_COUNT (8). */
    if (id <= 0 || p->latest_month >= PERIOD_MONTHS ||
        p->entry_municipality >= MUNICIPALITY_COUNT || (p->entry & 7) >= VISITATION_COUNT)
      return 0;
    if (personmap_find(&s->persons, id, personmap_hash(id)) != p)
      return 0;
  }
  return seen == s->persons.count;
}

static int shards_equal(const shard *a, const shard *b) {
  if (a->persons.count != b->persons.count || a->applied != b->applied ||
      a->corrected != b->corrected || a->late != b->late)
    return 0;
  int64_t id;
  const person_state *p;
  for (size_t at = 0; (p = personmap_next(&a->persons, &at, &id));) {
    const person_state *q = personmap_find(&b->persons, id, personmap_hash(id));
    if (!q || memcmp(p, q, sizeof *p) != 0)
      return 0;
  }
  for (int m = 0; m < PERIOD_MONTHS; m++) {
    if ((a->counts.months[m] != NULL) != (b->counts.months[m] != NULL))
      return 0;
    if (a->counts.months[m] && memcmp(a->counts.months[m], b->counts.months[m],
                                      ROLLUP_KEYS * ROLLUP_COLUMNS * sizeof(uint32_t)) != 0)
      return 0;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  if (!rules.window_mask) {
    char rule_err[200];
    rules_config_default(&rules);
    FUZZ_CHECK(rules_config_prepare(&rules, rule_err, sizeof rule_err) == 0, rule_err);
  }
  int mode = data[0] % 3;
  size_t len = size - 1;
  uint8_t *file = NULL;
  if (mode == 2)
    file = compress_payload(data + 1, len, &len);
  if (!file) {
    file = malloc(len ? len : 1);
    FUZZ_CHECK(file != NULL, "out of memory");
    memcpy(file, data + 1, len);
    if (mode == 1)
      repair_crcs(file, len);
  }
  /* Millions of persons are the benchmark's business: here they would only
   * make runs slow and big (the map for n persons is allocated whole). */
  if (len >= 40) {
    uint64_t persons = 0;
    for (int i = 7; i >= 0; i--)
      persons = persons << 8 | file[32 + i];
    if (persons > 100000) {
      free(file);
      return 0;
    }
  }
  const char *path = fuzz_file_with(file, len);
  free(file);

  shard s;
  FUZZ_CHECK(shard_init(&s, &rules, 0) == 0, "out of memory");
  snapshot_meta meta;
  char err[512];
  memset(err, 'x', sizeof err);
  int rc = snapshot_read(path, &s, &meta, err, sizeof err);
  FUZZ_CHECK(rc == 0 || rc == -1, "snapshot_read returned neither 0 nor -1");
  char verr[512];
  int vrc = snapshot_read(path, NULL, NULL, verr, sizeof verr);
  FUZZ_CHECK(vrc == rc, "verifying alone and loading disagree");
  FILE *devnull = fopen("/dev/null", "w");
  FUZZ_CHECK(devnull != NULL, "no /dev/null");
  char ierr[512];
  int irc = snapshot_inspect(path, devnull, ierr, sizeof ierr);
  fclose(devnull);
  FUZZ_CHECK(irc == rc, "snapshot_inspect and snapshot_read disagree");
  if (rc != 0) {
    fuzz_check_err(err, sizeof err);
    FUZZ_CHECK(strstr(err, path) != NULL, "the reason does not name the file");
    FUZZ_CHECK(strcmp(err, verr) == 0, "verifying alone gives another reason");
    FUZZ_CHECK(s.persons.count == 0, "a failed read left persons in the shard");
    shard_free(&s);
    return 0;
  }
  FUZZ_CHECK(meta.version == SNAPSHOT_FORMAT_VERSION, "loaded another version");
  FUZZ_CHECK(meta.persons == s.persons.count, "persons differ from the meta");
  uint32_t months = 0;
  for (int m = 0; m < PERIOD_MONTHS; m++)
    months += s.counts.months[m] != NULL;
  FUZZ_CHECK(months == meta.months, "month blocks differ from the meta");
  FUZZ_CHECK(s.applied == meta.applied && s.corrected == meta.corrected && s.late == meta.late,
             "counts differ from the meta");
  FUZZ_CHECK(states_usable(&s), "a loaded state the rules cannot use, or a lost person");

  /* Written again and read back: the same shard and meta. */
  const char *dir = fuzz_scratch_dir();
  char werr[512];
  FUZZ_CHECK(snapshot_store_write_shard(dir, &s, &meta, werr, sizeof werr) == 0, werr);
  char again_path[700];
  snprintf(again_path, sizeof again_path, "%s/%s.%020lld.snap", dir, meta.shard_id,
           (long long)meta.position);
  shard t;
  FUZZ_CHECK(shard_init(&t, &rules, 0) == 0, "out of memory");
  snapshot_meta again;
  FUZZ_CHECK(snapshot_read(again_path, &t, &again, werr, sizeof werr) == 0, werr);
  FUZZ_CHECK(shards_equal(&s, &t), "written again and read back, the shard differs");
  FUZZ_CHECK(again.fingerprint == meta.fingerprint && again.position == meta.position &&
                 strcmp(again.shard_id, meta.shard_id) == 0 &&
                 memcmp(again.extra, meta.extra, sizeof meta.extra) == 0 &&
                 again.persons == meta.persons && again.months == meta.months,
             "written again and read back, the meta differs");
  remove(again_path);
  shard_free(&t);
  shard_free(&s);
  return 0;
}

#ifdef FUZZ_SNAPSHOT_SEEDS
/* The seed writer (see the comment at the top). */
static void put_seed(const char *dir, const char *name, int mode, const uint8_t *f, size_t len) {
  char path[600];
  snprintf(path, sizeof path, "%s/seed-%s", dir, name);
  FILE *o = fopen(path, "wb");
  FUZZ_CHECK(o != NULL, path);
  uint8_t m = (uint8_t)mode;
  fwrite(&m, 1, 1, o);
  fwrite(f, 1, len, o);
  fclose(o);
}

static uint8_t *written(const shard *s, const char *id, int64_t pos, size_t *len) {
  char path[700], err[512];
  const char *d = fuzz_scratch_dir();
  snapshot_meta m;
  memset(&m, 0, sizeof m);
  snprintf(m.shard_id, sizeof m.shard_id, "%s", id);
  m.position = pos;
  m.fingerprint = 0x5eed;
  m.extra[0] = 7;
  FUZZ_CHECK(snapshot_store_write_shard(d, s, &m, err, sizeof err) == 0, err);
  snprintf(path, sizeof path, "%s/%s.%020lld.snap", d, id, (long long)pos);
  return (uint8_t *)fuzz_slurp(path, len);
}

/* A valid file's header + its payload decompressed (for mode 2). */
static uint8_t *raw_form(const uint8_t *f, size_t len, size_t *out_len) {
  size_t h = rd32(f + 12);
  unsigned long long raw = ZSTD_getFrameContentSize(f + h, len - h - 4);
  uint8_t *o = malloc(h + raw + 1);
  memcpy(o, f, h);
  size_t r = ZSTD_decompress(o + h, raw, f + h, len - h - 4);
  FUZZ_CHECK(!ZSTD_isError(r) && r == raw, "cannot decompress a seed");
  *out_len = h + raw;
  return o;
}

static void add_persons(shard *s, int n, int64_t first, int64_t step) {
  for (int i = 0; i < n; i++) {
    int64_t id = first + step * i;
    int created;
    person_state *p = personmap_upsert(&s->persons, id, personmap_hash(id), &created);
    p->employed_bits = 0xfffu >> (i % 5);
    p->fulltime_bits = 0xff0u >> (i % 3);
    p->latest_month = (uint16_t)(396 + i % 12);
    p->entry_municipality = (uint8_t)(i % MUNICIPALITY_COUNT);
    p->entry = (uint8_t)((i % VISITATION_COUNT) | 8);
    p->goals = (uint8_t)(i % 64);
    p->latest_status = (uint8_t)(i % STATUS_COUNT);
  }
}

int main(int argc, char **argv) {
  FUZZ_CHECK(argc == 2, "usage: snapseeds DIR");
  rules_config_default(&rules);
  char e[200];
  rules_config_prepare(&rules, e, sizeof e);
  size_t len, rlen;
  shard s;

  shard_init(&s, &rules, 0);
  uint8_t *f = written(&s, "file.0of1", 0, &len);
  put_seed(argv[1], "empty", 0, f, len);
  uint8_t *r = raw_form(f, len, &rlen);
  put_seed(argv[1], "empty-raw", 2, r, rlen);
  free(f);
  free(r);

  add_persons(&s, 6, 1, 1);
  f = written(&s, "kafka.t.3", 1234, &len);
  put_seed(argv[1], "six", 0, f, len);
  put_seed(argv[1], "six-crc", 1, f, len);
  r = raw_form(f, len, &rlen);
  put_seed(argv[1], "six-raw", 2, r, rlen);
  free(f);
  free(r);

  add_persons(&s, 40, 1000003, 7919);
  s.applied = 480;
  s.corrected = 3;
  s.late = 1;
  uint32_t *row = rollup_row(&s.counts, 400, 5, 2);
  row[0] = 3;
  row[ROLLUP_NOW + 1] = 2;
  row = rollup_row(&s.counts, 401, 97, 5);
  row[0] = 70000;
  f = written(&s, "kafka.persons.11", 99999, &len);
  put_seed(argv[1], "months", 1, f, len);
  free(f);
  shard_free(&s);
  return 0;
}
#endif
