/* test_app_snapshot.c — the snapshot format (processor/snapshot.c): a shard
 * with random persons, states and rollup months survives write + load
 * exactly (and keeps working: the same records applied afterwards give the
 * same state); dense, sparse, tiny and extreme id sets; an empty shard; every single flipped byte
 * and every truncation of a small snapshot is detected, and loading falls back to the previous
 * snapshot with a warning naming the file; all damaged gives 0 and an untouched shard; another
 * fingerprint or format version is refused with a one-line error; pruning keeps SNAPSHOT_KEEP
 * files; temporary files are ignored (and removed once older than the newest snapshot); shard ids
 * with a common prefix never mix; inspect; a snapshot written by an older build (the 16-byte
 * person_state) loads exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <zlib.h>
#include <zstd.h>

#include "core/municipality.h"
#include "core/period.h"
#include "state/shard.h"
#include "state/snapshot.h"
#include "state/store.h"

#include "snapshot_fixture.h"

static char dir[256];
static rules_config rules;

/* ------------------------------------------------------------ helpers */

static uint64_t rng_state = 0x1234567887654321ull;
static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static const char *path_in(const char *name, char *buf, size_t len) {
  snprintf(buf, len, "%s/%s", dir, name);
  return buf;
}

static void remove_tree(const char *path) {
  DIR *d = opendir(path);
  if (!d) {
    unlink(path);
    return;
  }
  struct dirent *e;
  char sub[1024];
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
    remove_tree(sub);
  }
  closedir(d);
  rmdir(path);
}

/* A fresh empty directory under the test's own. */
static const char *fresh_dir(const char *name, char *buf, size_t len) {
  path_in(name, buf, len);
  remove_tree(buf);
  return buf;
}

static int count_files(const char *d, const char *prefix) {
  DIR *dd = opendir(d);
  if (!dd)
    return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(dd)))
    if (!strncmp(e->d_name, prefix, strlen(prefix)))
      n++;
  closedir(dd);
  return n;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = calloc(1, (size_t)n + 1);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  if (len)
    *len = (size_t)n;
  return buf;
}

static void spit(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
}

/* stderr into a file while a call runs. */
static int saved_stderr = -1;
static char stderr_path[512];
static void capture_stderr(void) {
  snprintf(stderr_path, sizeof stderr_path, "%s/stderr.txt", dir);
  fflush(stderr);
  saved_stderr = dup(2);
  int fd = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  dup2(fd, 2);
  close(fd);
}
static char *captured_stderr(void) {
  fflush(stderr);
  dup2(saved_stderr, 2);
  close(saved_stderr);
  saved_stderr = -1;
  return slurp(stderr_path, NULL);
}

static person_state random_state(void) {
  person_state st;
  uint64_t a = rnd(), b = rnd();
  st.employed_bits = (uint32_t)a;
  st.fulltime_bits = (uint32_t)(a >> 32) & st.employed_bits;
  st.latest_month = (uint16_t)(b % PERIOD_MONTHS);
  st.entry_municipality = (uint8_t)((b >> 16) % MUNICIPALITY_COUNT);
  st.entry = (uint8_t)(((b >> 24) % VISITATION_COUNT) | (((b >> 28) & 3) << 3));
  st.goals = (uint8_t)((b >> 32) & 0x3f);
  st.latest_status = (uint8_t)((b >> 40) % STATUS_COUNT);
  return st;
}

/* A shard with n random persons (ids from small to near INT64_MAX) and
 * `months` random month blocks. */
static void random_shard(shard *s, size_t n, int months) {
  assert_int_equal(shard_init(s, &rules, 0), 0);
  for (size_t i = 0; i < n; i++) {
    int64_t id;
    switch (rnd() % 4) {
    case 0:
      id = (int64_t)(1 + rnd() % 1000000);
      break;
    case 1:
      id = (int64_t)(rnd() >> 1);
      break;
    case 2:
      id = INT64_MAX - (int64_t)(rnd() % 1000);
      break;
    default:
      id = (int64_t)(1 + (rnd() & 0xffffffffull));
    }
    if (id <= 0)
      id = 1;
    int created;
    person_state *st = personmap_upsert(&s->persons, id, personmap_hash(id), &created);
    assert_non_null(st);
    *st = random_state();
  }
  for (int k = 0; k < months; k++) {
    int m = (int)(rnd() % PERIOD_MONTHS);
    for (int j = 0; j < 200; j++) {
      uint32_t *row = rollup_row(&s->counts, m, (int)(rnd() % MUNICIPALITY_COUNT),
                                 (int)(rnd() % VISITATION_COUNT));
      uint32_t v = (uint32_t)rnd();
      row[rnd() % ROLLUP_COLUMNS] = (rnd() & 1) ? v : v % 100;
    }
  }
  s->applied = rnd() >> 20;
  s->corrected = rnd() >> 40;
  s->late = rnd() >> 50;
}

static snapshot_meta meta_for(const char *id, int64_t position, uint64_t fingerprint) {
  snapshot_meta m;
  memset(&m, 0, sizeof m);
  snprintf(m.shard_id, sizeof m.shard_id, "%s", id);
  m.position = position;
  m.fingerprint = fingerprint;
  for (int i = 0; i < SNAPSHOT_EXTRA; i++)
    m.extra[i] = (uint64_t)position * 1000 + (uint64_t)i;
  return m;
}

static void assert_shards_equal(const shard *a, const shard *b) {
  assert_int_equal(a->persons.count, b->persons.count);
  size_t seen = 0;
  int64_t id;
  const person_state *sa;
  for (size_t at = 0; (sa = personmap_next(&a->persons, &at, &id));) {
    const person_state *sb = personmap_find(&b->persons, id, personmap_hash(id));
    assert_non_null(sb);
    assert_memory_equal(sa, sb, sizeof *sa);
    seen++;
  }
  assert_int_equal(seen, b->persons.count);
  for (int m = 0; m < PERIOD_MONTHS; m++) {
    assert_int_equal(a->counts.months[m] != NULL, b->counts.months[m] != NULL);
    if (a->counts.months[m])
      assert_memory_equal(a->counts.months[m], b->counts.months[m],
                          ROLLUP_KEYS * ROLLUP_COLUMNS * sizeof(uint32_t));
  }
  assert_int_equal(a->applied, b->applied);
  assert_int_equal(a->corrected, b->corrected);
  assert_int_equal(a->late, b->late);
}

static void assert_meta_equal(const snapshot_meta *w, const snapshot_meta *r, const shard *s) {
  assert_int_equal(r->version, SNAPSHOT_FORMAT_VERSION);
  assert_int_equal(r->fingerprint, w->fingerprint);
  assert_string_equal(r->shard_id, w->shard_id);
  assert_int_equal(r->position, w->position);
  assert_memory_equal(r->extra, w->extra, sizeof w->extra);
  assert_int_equal(r->persons, s->persons.count);
  int months = 0;
  for (int m = 0; m < PERIOD_MONTHS; m++)
    months += s->counts.months[m] != NULL;
  assert_int_equal(r->months, (uint32_t)months);
  assert_int_equal(r->applied, s->applied);
  assert_int_equal(r->corrected, s->corrected);
  assert_int_equal(r->late, s->late);
  assert_true(r->written_unix_ms > 1600000000000ll);
}

static char snap_name[1024];
static const char *snap_path(const char *d, const char *id, int64_t pos) {
  snprintf(snap_name, sizeof snap_name, "%s/%s.%020lld.snap", d, id, (long long)pos);
  return snap_name;
}

/* ------------------------------------------------------------ tests */

static void round_trip(void **state) {
  (void)state;
  char d[512], err[512];
  fresh_dir("rt/nested/deeper", d, sizeof d); /* made by the writer, mkdir -p */
  shard a;
  random_shard(&a, 20000, 5);
  snapshot_meta w = meta_for("kafka.persons.3", 123456789, 0xfeedfacecafebeefull);
  assert_int_equal(snapshot_store_write_shard(d, &a, &w, err, sizeof err), 0);
  struct stat st;
  assert_int_equal(stat(snap_path(d, "kafka.persons.3", 123456789), &st), 0);
  assert_true(st.st_size > 0);

  shard b;
  assert_int_equal(shard_init(&b, &rules, 0), 0);
  snapshot_meta r;
  assert_int_equal(
      snapshot_store_load_latest(d, "kafka.persons.3", w.fingerprint, &b, &r, err, sizeof err), 1);
  assert_shards_equal(&a, &b);
  assert_meta_equal(&w, &r, &a);
  assert_ptr_equal(b.rules, &rules);

  /* snapshot_read: the same, and without a shard it only verifies. */
  shard c;
  assert_int_equal(shard_init(&c, &rules, 100), 0);
  assert_int_equal(snapshot_read(snap_name, &c, &r, err, sizeof err), 0);
  assert_shards_equal(&a, &c);
  assert_int_equal(snapshot_read(snap_name, NULL, NULL, err, sizeof err), 0);

  /* The loaded shard is a working shard: more persons go in. */
  for (int i = 0; i < 5000; i++) {
    int64_t id = (int64_t)(2000000 + i);
    int created;
    person_state *st = personmap_upsert(&b.persons, id, personmap_hash(id), &created);
    assert_non_null(st);
    assert_true(created);
  }
  assert_int_equal(b.persons.count, a.persons.count + 5000);
  shard_free(&a);
  shard_free(&b);
  shard_free(&c);
}

/* Real states from the rules: apply records, snapshot, load, apply the same
 * further records to both: identical. */
static void rules_continue_after_load(void **state) {
  (void)state;
  char d[512], err[512];
  fresh_dir("rules", d, sizeof d);
  shard a, b;
  assert_int_equal(shard_init(&a, &rules, 0), 0);
  static const int codes[] = {101, 147, 751, 851};
  pm_record rec;
  for (int month = 0; month < 24; month++) {
    for (int64_t p = 1; p <= 3000; p++) {
      if (month == 12 && p == 1) {
        assert_int_equal(snapshot_store_write_shard(
                             d, &a, &(snapshot_meta){.shard_id = "file.0of1", .position = 36000},
                             err, sizeof err),
                         0);
        assert_int_equal(shard_init(&b, &rules, 0), 0);
        assert_int_equal(snapshot_store_load_latest(d, "file.0of1", 0, &b, NULL, err, sizeof err),
                         1);
        assert_shards_equal(&a, &b);
      }
      uint64_t h = rnd();
      memset(&rec, 0, sizeof rec);
      rec.person_id = p * 7919;
      rec.period = period_from_month(period_to_month(202001) + month);
      rec.municipality = codes[h % 4];
      rec.visitation = (uint8_t)((h >> 8) % VISITATION_COUNT);
      rec.flags = (uint8_t)((h >> 16) & 3);
      rec.paid_hours = (float)((h >> 24) % 200);
      shard_apply(&a, &rec, personmap_hash(rec.person_id));
      if (month >= 12)
        shard_apply(&b, &rec, personmap_hash(rec.person_id));
    }
  }
  assert_shards_equal(&a, &b);
  shard_free(&a);
  shard_free(&b);
}

/* Ids packed close together (the sort's one-pass case), a handful (its
 * insertion sort), a shard of exactly one person, and the extremes 1 and
 * INT64_MAX side by side. */
static void id_layouts(void **state) {
  (void)state;
  char d[512], err[512];
  fresh_dir("ids", d, sizeof d);
  static const struct {
    int64_t first, step;
    int n;
  } layouts[] = {{1, 1, 3000}, {500, 3, 700}, {77, 1000, 10}, {42, 1, 1}, {1, 0, 0}};
  for (size_t k = 0; k < sizeof layouts / sizeof *layouts; k++) {
    shard a, b;
    assert_int_equal(shard_init(&a, &rules, 0), 0);
    for (int i = 0; i < layouts[k].n; i++) {
      int64_t id = layouts[k].first + layouts[k].step * i;
      int created;
      person_state *st = personmap_upsert(&a.persons, id, personmap_hash(id), &created);
      assert_non_null(st);
      *st = random_state();
    }
    if (layouts[k].n == 0) { /* the extremes */
      int64_t ids[] = {1, INT64_MAX, INT64_MAX - 1, 2};
      for (int i = 0; i < 4; i++) {
        int created;
        *personmap_upsert(&a.persons, ids[i], personmap_hash(ids[i]), &created) = random_state();
      }
    }
    snapshot_meta w = meta_for("file.0of1", (int64_t)k, 5);
    assert_int_equal(snapshot_store_write_shard(d, &a, &w, err, sizeof err), 0);
    assert_int_equal(shard_init(&b, &rules, 0), 0);
    assert_int_equal(snapshot_store_load_latest(d, "file.0of1", 5, &b, NULL, err, sizeof err), 1);
    assert_shards_equal(&a, &b);
    shard_free(&a);
    shard_free(&b);
  }
}

/* A snapshot written by regstream at commit cfd8c9a, when person_state was
 * 16 bytes in memory and the map one table of 24-byte slots
 * (tests/data/snapshot-v1-16.snap, tests/snapshot_fixture.h): it loads as
 * the very shard its records make today, ids on both sides of 2^32 in
 * their tables; it keeps working; and written again it is the same file
 * but for its time, its compressed size and its checksums (the payload the
 * same bytes). */
static void old_layout_snapshot_loads(void **state) {
  (void)state;
  char d[512], err[512];
  const char *old_path = REGSTREAM_SOURCE_DIR "/tests/data/snapshot-v1-16.snap";
  shard a, b;
  assert_int_equal(shard_init(&a, &rules, 0), 0);
  fixture_apply(&a, 0, FIXTURE_MONTHS);
  assert_int_equal(shard_init(&b, &rules, 0), 0);
  snapshot_meta m;
  assert_int_equal(snapshot_read(old_path, &b, &m, err, sizeof err), 0);
  assert_int_equal(b.persons.count, FIXTURE_PERSONS);
  assert_true(b.persons.wide_count > 100 && b.persons.wide_count < FIXTURE_PERSONS - 100);
  assert_non_null(personmap_find(&b.persons, (int64_t)UINT32_MAX, personmap_hash(UINT32_MAX)));
  assert_non_null(
      personmap_find(&b.persons, (int64_t)UINT32_MAX + 1, personmap_hash((int64_t)UINT32_MAX + 1)));
  assert_non_null(personmap_find(&b.persons, INT64_MAX, personmap_hash(INT64_MAX)));
  assert_true(a.applied > 4000 && a.corrected > 100 && a.late > 100);
  assert_shards_equal(&a, &b);

  /* Written again: the same header (but time and compressed size), the same payload. */
  fresh_dir("v1-16", d, sizeof d);
  assert_int_equal(snapshot_store_write_shard(d, &b, &m, err, sizeof err), 0);
  size_t old_len, new_len;
  unsigned char *o = (unsigned char *)slurp(old_path, &old_len);
  unsigned char *n = (unsigned char *)slurp(snap_path(d, "file.0of1", 5000), &new_len);
  assert_non_null(o);
  assert_non_null(n);
  uint32_t hb = o[12] | o[13] << 8 | o[14] << 16 | (uint32_t)o[15] << 24;
  assert_true(hb > 104 && hb < old_len && hb < new_len);
  assert_memory_equal(o, n, 80);                   /* magic .. months, state bytes 16 */
  assert_memory_equal(o + 88, n + 88, 8);          /* raw payload bytes */
  assert_memory_equal(o + 104, n + 104, hb - 108); /* sections, extra, shard id */
  unsigned long long raw = ZSTD_getFrameContentSize(o + hb, old_len - hb - 4);
  assert_true(raw > 0 && raw < (1u << 24));
  assert_int_equal(ZSTD_getFrameContentSize(n + hb, new_len - hb - 4), raw);
  unsigned char *po = malloc(raw), *pn = malloc(raw);
  assert_non_null(po);
  assert_non_null(pn);
  assert_int_equal(ZSTD_decompress(po, raw, o + hb, old_len - hb - 4), raw);
  assert_int_equal(ZSTD_decompress(pn, raw, n + hb, new_len - hb - 4), raw);
  assert_memory_equal(po, pn, raw);
  free(po);
  free(pn);
  free(o);
  free(n);

  /* The same records afterwards: the same shard. */
  fixture_apply(&a, FIXTURE_MONTHS, FIXTURE_MONTHS + 4);
  fixture_apply(&b, FIXTURE_MONTHS, FIXTURE_MONTHS + 4);
  assert_shards_equal(&a, &b);
  shard_free(&a);
  shard_free(&b);
}

static void empty_shard(void **state) {
  (void)state;
  char d[512], err[512];
  fresh_dir("empty", d, sizeof d);
  shard a, b;
  assert_int_equal(shard_init(&a, &rules, 0), 0);
  snapshot_meta w = meta_for("file.0of2", 0, 42);
  assert_int_equal(snapshot_store_write_shard(d, &a, &w, err, sizeof err), 0);
  assert_int_equal(shard_init(&b, &rules, 0), 0);
  snapshot_meta r;
  assert_int_equal(snapshot_store_load_latest(d, "file.0of2", 42, &b, &r, err, sizeof err), 1);
  assert_meta_equal(&w, &r, &a);
  assert_shards_equal(&a, &b);
  shard_free(&a);
  shard_free(&b);
}

static void nothing_to_load(void **state) {
  (void)state;
  char d[512], err[512] = "";
  shard b;
  assert_int_equal(shard_init(&b, &rules, 0), 0);
  fresh_dir("missing", d, sizeof d);
  assert_int_equal(snapshot_store_load_latest(d, "file.0of1", 1, &b, NULL, err, sizeof err), 0);
  assert_int_equal(mkdir(d, 0777), 0);
  assert_int_equal(snapshot_store_load_latest(d, "file.0of1", 1, &b, NULL, err, sizeof err), 0);
  /* Other files, other shards' snapshots and temporary files: still none. */
  char p[1024];
  snprintf(p, sizeof p, "%s/readme.txt", d);
  spit(p, "hi", 2);
  snprintf(p, sizeof p, "%s/file.0of1.snap", d);
  spit(p, "x", 1);
  snprintf(p, sizeof p, "%s/file.0of1.00000000000000000007.snap.bak", d);
  spit(p, "x", 1);
  assert_int_equal(snapshot_store_load_latest(d, "file.0of1", 1, &b, NULL, err, sizeof err), 0);
  assert_int_equal(b.persons.count, 0);
  shard_free(&b);
}

/* Flip each byte of a small snapshot in turn, and cut it at every length:
 * each is detected (read fails, never crashes) and load falls back to the
 * older snapshot with a warning; never a refusal. */
static void every_flip_and_cut_detected(void **state) {
  (void)state;
  char d[512], err[512];
  fresh_dir("flip", d, sizeof d);
  shard a, a2, b;
  random_shard(&a, 40, 2);
  random_shard(&a2, 30, 1);
  snapshot_meta w1 = meta_for("kafka.t.0", 100, 7), w2 = meta_for("kafka.t.0", 200, 7);
  assert_int_equal(snapshot_store_write_shard(d, &a, &w1, err, sizeof err), 0);
  assert_int_equal(snapshot_store_write_shard(d, &a2, &w2, err, sizeof err), 0);
  char newest[1024];
  snprintf(newest, sizeof newest, "%s", snap_path(d, "kafka.t.0", 200));
  size_t len;
  unsigned char *orig = (unsigned char *)slurp(newest, &len);
  assert_non_null(orig);
  assert_true(len > 300);

  for (size_t i = 0; i < len; i++) {
    unsigned char *copy = malloc(len);
    memcpy(copy, orig, len);
    copy[i] ^= (unsigned char)(1u << (i % 8));
    spit(newest, copy, len);
    free(copy);
    assert_int_equal(snapshot_read(newest, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, newest));
    assert_null(strchr(err, '\n'));
    if (i % 37 == 0 || i < 20 || i + 8 > len) { /* the whole load path on a sample */
      assert_int_equal(shard_init(&b, &rules, 0), 0);
      snapshot_meta r;
      capture_stderr();
      int rc = snapshot_store_load_latest(d, "kafka.t.0", 7, &b, &r, err, sizeof err);
      char *text = captured_stderr();
      assert_int_equal(rc, 1);
      assert_int_equal(r.position, 100);
      assert_shards_equal(&a, &b);
      assert_non_null(strstr(text, newest));
      assert_non_null(strstr(text, "warning"));
      free(text);
      shard_free(&b);
    }
  }
  for (size_t cut = 0; cut < len; cut++) {
    spit(newest, orig, cut);
    assert_int_equal(snapshot_read(newest, NULL, NULL, err, sizeof err), -1);
  }
  /* Bytes appended. */
  unsigned char *longer = malloc(len + 1);
  memcpy(longer, orig, len);
  longer[len] = 0;
  spit(newest, longer, len + 1);
  free(longer);
  assert_int_equal(snapshot_read(newest, NULL, NULL, err, sizeof err), -1);

  /* Truncated newest: fall back, with the reason in the warning. */
  spit(newest, orig, len / 2);
  assert_int_equal(shard_init(&b, &rules, 0), 0);
  capture_stderr();
  int rc = snapshot_store_load_latest(d, "kafka.t.0", 7, &b, NULL, err, sizeof err);
  char *text = captured_stderr();
  assert_int_equal(rc, 1);
  assert_non_null(strstr(text, "truncated"));
  free(text);
  assert_shards_equal(&a, &b);
  shard_free(&b);

  /* The original back: it loads again. */
  spit(newest, orig, len);
  assert_int_equal(shard_init(&b, &rules, 0), 0);
  assert_int_equal(snapshot_store_load_latest(d, "kafka.t.0", 7, &b, NULL, err, sizeof err), 1);
  assert_shards_equal(&a2, &b);
  shard_free(&b);
  free(orig);
  shard_free(&a);
  shard_free(&a2);
}

static void all_corrupt_gives_zero(void **state) {
  (void)state;
  char d[512], err[512];
  fresh_dir("allbad", d, sizeof d);
  shard a, b;
  random_shard(&a, 100, 1);
  for (int64_t pos = 1; pos <= 3; pos++) {
    snapshot_meta w = meta_for("kafka.t.5", pos, 9);
    assert_int_equal(snapshot_store_write_shard(d, &a, &w, err, sizeof err), 0);
    size_t len;
    char *data = slurp(snap_path(d, "kafka.t.5", pos), &len);
    data[len / 2] ^= 0x10;
    spit(snap_name, data, pos == 2 ? len : len - 1);
    free(data);
  }
  assert_int_equal(shard_init(&b, &rules, 0), 0);
  capture_stderr();
  int rc = snapshot_store_load_latest(d, "kafka.t.5", 9, &b, NULL, err, sizeof err);
  char *text = captured_stderr();
  assert_int_equal(rc, 0);
  for (int64_t pos = 1; pos <= 3; pos++)
    assert_non_null(strstr(text, snap_path(d, "kafka.t.5", pos)));
  free(text);
  assert_int_equal(b.persons.count, 0); /* untouched */
  for (int m = 0; m < PERIOD_MONTHS; m++)
    assert_null(b.counts.months[m]);
  shard_free(&a);
  shard_free(&b);
}

/* Rewrites the version field of a snapshot and fixes both checksums. */
static void set_version(const char *path, uint32_t version) {
  size_t len;
  unsigned char *data = (unsigned char *)slurp(path, &len);
  for (int i = 0; i < 4; i++)
    data[8 + i] = (unsigned char)(version >> (8 * i));
  uint32_t hb = data[12] | data[13] << 8 | data[14] << 16 | (uint32_t)data[15] << 24;
  uint32_t crc = (uint32_t)crc32(0, data, hb - 4);
  for (int i = 0; i < 4; i++)
    data[hb - 4 + i] = (unsigned char)(crc >> (8 * i));
  crc = (uint32_t)crc32(0, data, (uInt)(len - 4));
  for (int i = 0; i < 4; i++)
    data[len - 4 + i] = (unsigned char)(crc >> (8 * i));
  spit(path, data, len);
  free(data);
}

static void incompatible_refused(void **state) {
  (void)state;
  char d[512], err[512];
  fresh_dir("refuse", d, sizeof d);
  shard a, b;
  random_shard(&a, 50, 1);
  snapshot_meta w = meta_for("kafka.t.2", 10, 0x1111);
  assert_int_equal(snapshot_store_write_shard(d, &a, &w, err, sizeof err), 0);
  assert_int_equal(shard_init(&b, &rules, 0), 0);
  err[0] = '\0';
  assert_int_equal(snapshot_store_load_latest(d, "kafka.t.2", 0x2222, &b, NULL, err, sizeof err),
                   -1);
  assert_non_null(strstr(err, snap_path(d, "kafka.t.2", 10)));
  assert_non_null(strstr(err, "configuration"));
  assert_non_null(strstr(err, "--snapshot-dir"));
  assert_null(strchr(err, '\n'));
  assert_int_equal(b.persons.count, 0);
  /* An older, compatible one does not help: the newest decides. */
  snapshot_meta old = meta_for("kafka.t.2", 5, 0x2222);
  assert_int_equal(snapshot_store_write_shard(d, &a, &old, err, sizeof err), 0);
  assert_int_equal(snapshot_store_load_latest(d, "kafka.t.2", 0x2222, &b, NULL, err, sizeof err),
                   -1);

  /* Another format version, with intact checksums: refused too. */
  fresh_dir("refuse2", d, sizeof d);
  w.fingerprint = 0x2222;
  assert_int_equal(snapshot_store_write_shard(d, &a, &w, err, sizeof err), 0);
  set_version(snap_path(d, "kafka.t.2", 10), 2);
  assert_int_equal(snapshot_store_load_latest(d, "kafka.t.2", 0x2222, &b, NULL, err, sizeof err),
                   -1);
  assert_non_null(strstr(err, "version 2"));
  assert_null(strchr(err, '\n'));
  assert_int_equal(snapshot_read(snap_name, NULL, NULL, err, sizeof err), -1);
  /* Version 1 again: loads. */
  set_version(snap_name, 1);
  assert_int_equal(snapshot_store_load_latest(d, "kafka.t.2", 0x2222, &b, NULL, err, sizeof err),
                   1);
  assert_shards_equal(&a, &b);
  shard_free(&a);
  shard_free(&b);
}

static void pruning_keeps_newest(void **state) {
  (void)state;
  char d[512], err[512];
  fresh_dir("prune", d, sizeof d);
  shard a;
  random_shard(&a, 10, 0);
  int64_t positions[] = {5, 1000, 20, 99999999999ll, 7, 300};
  for (int i = 0; i < 6; i++) {
    snapshot_meta w = meta_for("kafka.t.1", positions[i], 3);
    assert_int_equal(snapshot_store_write_shard(d, &a, &w, err, sizeof err), 0);
  }
  assert_int_equal(SNAPSHOT_KEEP, 3);
  assert_int_equal(count_files(d, "kafka.t.1."), SNAPSHOT_KEEP);
  struct stat st;
  assert_int_equal(stat(snap_path(d, "kafka.t.1", 99999999999ll), &st), 0);
  assert_int_equal(stat(snap_path(d, "kafka.t.1", 1000), &st), 0);
  assert_int_equal(stat(snap_path(d, "kafka.t.1", 300), &st), 0);
  assert_int_equal(stat(snap_path(d, "kafka.t.1", 20), &st), -1);
  shard b;
  assert_int_equal(shard_init(&b, &rules, 0), 0);
  snapshot_meta r;
  assert_int_equal(snapshot_store_load_latest(d, "kafka.t.1", 3, &b, &r, err, sizeof err), 1);
  assert_int_equal(r.position, 99999999999ll);
  shard_free(&a);
  shard_free(&b);
}

static void temp_files_ignored(void **state) {
  (void)state;
  char d[512], err[512], p[1024];
  fresh_dir("temp", d, sizeof d);
  shard a, b;
  random_shard(&a, 30, 1);
  snapshot_meta w = meta_for("kafka.t.4", 50, 3);
  assert_int_equal(snapshot_store_write_shard(d, &a, &w, err, sizeof err), 0);
  /* A crash's leftovers: one below, one above the newest snapshot; and one
   * below that another instance is writing right now (fresh). */
  snprintf(p, sizeof p, "%s/.kafka.t.4.%020d.snap.tmp.123-0-1", d, 40);
  spit(p, "garbage", 7);
  struct timeval old[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
  assert_int_equal(utimes(p, old), 0);
  snprintf(p, sizeof p, "%s/.kafka.t.4.%020d.snap.tmp.123-0-2", d, 60);
  spit(p, "garbage", 7);
  snprintf(p, sizeof p, "%s/.kafka.t.4.%020d.snap.tmp.456-0-3", d, 45);
  spit(p, "garbage", 7);
  assert_int_equal(shard_init(&b, &rules, 0), 0);
  capture_stderr();
  int rc = snapshot_store_load_latest(d, "kafka.t.4", 3, &b, NULL, err, sizeof err);
  char *text = captured_stderr();
  assert_int_equal(rc, 1);
  assert_string_equal(text, ""); /* not even a warning */
  free(text);
  assert_shards_equal(&a, &b);
  assert_int_equal(count_files(d, ".kafka.t.4."), 3);
  /* The next write removes the stale leftovers older than the newest
   * snapshot, not the fresh one (another writer's, perhaps). */
  w.position = 55;
  assert_int_equal(snapshot_store_write_shard(d, &a, &w, err, sizeof err), 0);
  assert_int_equal(count_files(d, ".kafka.t.4."), 2);
  snprintf(p, sizeof p, "%s/.kafka.t.4.%020d.snap.tmp.456-0-3", d, 45);
  assert_int_equal(access(p, F_OK), 0);
  snprintf(p, sizeof p, "%s/.kafka.t.4.%020d.snap.tmp.123-0-2", d, 60);
  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  shard_free(&a);
  shard_free(&b);
}

static void common_prefix_shards_never_mix(void **state) {
  (void)state;
  char d[512], err[512];
  fresh_dir("prefix", d, sizeof d);
  static const char *ids[] = {"kafka.t.1", "kafka.t.10", "kafka.t", "kafka.t.1.0"};
  shard s[4], b;
  for (int i = 0; i < 4; i++) {
    random_shard(&s[i], 20 + (size_t)i, 1);
    for (int64_t pos = 1; pos <= 5; pos++) {
      /* Interleaved, and kafka.t.1's positions are always the greatest. */
      snapshot_meta w = meta_for(ids[i], pos * 10 + (i == 0 ? 100 : i), 1);
      assert_int_equal(snapshot_store_write_shard(d, &s[i], &w, err, sizeof err), 0);
    }
  }
  for (int i = 0; i < 4; i++) {
    assert_int_equal(shard_init(&b, &rules, 0), 0);
    snapshot_meta r;
    assert_int_equal(snapshot_store_load_latest(d, ids[i], 1, &b, &r, err, sizeof err), 1);
    assert_string_equal(r.shard_id, ids[i]);
    assert_int_equal(r.position, 50 + (i == 0 ? 100 : i));
    assert_shards_equal(&s[i], &b);
    shard_free(&b);
  }
  /* Each kept its own SNAPSHOT_KEEP files. */
  DIR *dd = opendir(d);
  int total = 0;
  struct dirent *e;
  while ((e = readdir(dd)))
    total += e->d_name[0] != '.';
  closedir(dd);
  assert_int_equal(total, 4 * SNAPSHOT_KEEP);
  /* A renamed file is not trusted as another shard's. */
  char from[1024], to[1024];
  snprintf(from, sizeof from, "%s", snap_path(d, "kafka.t.10", 51));
  snprintf(to, sizeof to, "%s", snap_path(d, "kafka.t.2", 51));
  assert_int_equal(rename(from, to), 0);
  assert_int_equal(shard_init(&b, &rules, 0), 0);
  capture_stderr();
  int rc = snapshot_store_load_latest(d, "kafka.t.2", 1, &b, NULL, err, sizeof err);
  char *text = captured_stderr();
  assert_int_equal(rc, 0);
  assert_non_null(strstr(text, "not what its name says"));
  free(text);
  shard_free(&b);
  for (int i = 0; i < 4; i++)
    shard_free(&s[i]);
}

static void bad_arguments(void **state) {
  (void)state;
  char d[512], err[512];
  fresh_dir("args", d, sizeof d);
  shard a;
  random_shard(&a, 3, 0);
  static const char *bad[] = {"", ".hidden", "a/b", "a b", "..", "x\ny"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    snapshot_meta w = meta_for(bad[i], 1, 1);
    err[0] = '\0';
    assert_int_equal(snapshot_store_write_shard(d, &a, &w, err, sizeof err), -1);
    assert_true(err[0] != '\0');
    assert_int_equal(snapshot_store_load_latest(d, bad[i], 1, &a, NULL, err, sizeof err), -1);
  }
  snapshot_meta w = meta_for("ok", -1, 1);
  assert_int_equal(snapshot_store_write_shard(d, &a, &w, err, sizeof err), -1);
  /* A directory that is a file. */
  char f[1024];
  path_in("plainfile", f, sizeof f);
  spit(f, "x", 1);
  w.position = 1;
  assert_int_equal(snapshot_store_write_shard(f, &a, &w, err, sizeof err), -1);
  assert_non_null(strstr(err, f));
  /* A map holding an id no reader would take is refused, nothing written. */
  int created;
  personmap_upsert(&a.persons, -5, personmap_hash(-5), &created);
  assert_int_equal(snapshot_store_write_shard(d, &a, &w, err, sizeof err), -1);
  assert_non_null(strstr(err, "person id"));
  assert_int_equal(count_files(d, "ok."), 0);
  assert_int_equal(count_files(d, ".ok."), 0);
  shard_free(&a);
}

static void inspect_prints_header(void **state) {
  (void)state;
  char d[512], err[512], out_path[1024];
  fresh_dir("inspect", d, sizeof d);
  shard a;
  random_shard(&a, 500, 2);
  snapshot_meta w = meta_for("kafka.persons.7", 4242, 0xabcdef);
  assert_int_equal(snapshot_store_write_shard(d, &a, &w, err, sizeof err), 0);
  path_in("inspect.txt", out_path, sizeof out_path);
  FILE *out = fopen(out_path, "w");
  assert_int_equal(snapshot_inspect(snap_path(d, "kafka.persons.7", 4242), out, err, sizeof err),
                   0);
  fclose(out);
  char *text = slurp(out_path, NULL);
  assert_non_null(strstr(text, "kafka.persons.7"));
  assert_non_null(strstr(text, "4242"));
  assert_non_null(strstr(text, "0000000000abcdef"));
  char line[64];
  snprintf(line, sizeof line, "persons      %zu\n", a.persons.count);
  assert_non_null(strstr(text, line));
  assert_non_null(strstr(text, "valid        yes"));
  free(text);
  size_t len;
  char *data = slurp(snap_name, &len);
  spit(snap_name, data, len - 10);
  free(data);
  out = fopen(out_path, "w");
  assert_int_equal(snapshot_inspect(snap_name, out, err, sizeof err), -1);
  fclose(out);
  text = slurp(out_path, NULL);
  assert_non_null(strstr(text, "valid        no"));
  assert_non_null(strstr(text, "truncated"));
  free(text);
  shard_free(&a);
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "%s/test_app_snapshot.d", REGSTREAM_BINARY_DIR);
  remove_tree(dir);
  mkdir(dir, 0777);
  rules_config_default(&rules);
  char err[200];
  return rules_config_prepare(&rules, err, sizeof err);
}

static int teardown(void **state) {
  (void)state;
  remove_tree(dir);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(round_trip),
      cmocka_unit_test(rules_continue_after_load),
      cmocka_unit_test(id_layouts),
      cmocka_unit_test(old_layout_snapshot_loads),
      cmocka_unit_test(empty_shard),
      cmocka_unit_test(nothing_to_load),
      cmocka_unit_test(every_flip_and_cut_detected),
      cmocka_unit_test(all_corrupt_gives_zero),
      cmocka_unit_test(incompatible_refused),
      cmocka_unit_test(pruning_keeps_newest),
      cmocka_unit_test(temp_files_ignored),
      cmocka_unit_test(common_prefix_shards_never_mix),
      cmocka_unit_test(bad_arguments),
      cmocka_unit_test(inspect_prints_header),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
