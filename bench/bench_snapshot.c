/* bench_snapshot.c — bench-snapshot: the snapshot benchmark of issue 4.
 *
 * Builds one state shard from the `national` generator's records (the very
 * records `regstream-gen --profile national --seed S` writes: gen.c is
 * compiled in here and its record function called directly, month after
 * month, through validate_record and shard_apply as the pipeline does), and
 * measures for each size (default 1, 3 and 6 million persons, grown in place:
 * a person's state depends only on its own records) the snapshot's bytes per
 * person, the capture (the shard owner's pause), the write (encode,
 * compress, write, fsync, rename, prune) and the load into a fresh shard;
 * the loaded shard is checked equal to the original.
 *
 * With --variants it also measures, at the largest size, how well other
 * layouts of the same sorted persons compress (rows vs columns vs byte
 * planes vs bit planes, ids as varints vs byte planes) and the zstd levels
 * and worker counts for the chosen layout — the numbers behind the format's
 * choices (processor/snapshot.c).
 *
 *   bench-snapshot [--persons 1000000,3000000,6000000] [--months 12] [--seed 1]
 *                  [--runs 3] [--dir DIR] [--variants]
 *
 * Output: Markdown tables on stdout (bench/snapshot.sh puts them in
 * bench/results/snapshot.md). */
#define main regstream_gen_main
#include "gen.c"
#undef main

#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "core/validate.h"
#include "state/shard.h"
#include "state/snapshot.h"
#include "state/store.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what) {
  fprintf(stderr, "bench-snapshot: %s\n", what);
  exit(1);
}

/* Apply months of records of persons [from, to) to s. */
static void grow_shard(shard *s, uint64_t key, int first_month, int months, uint64_t from,
                       uint64_t to) {
  pm_record rec;
  for (int t = 0; t < months; t++)
    for (uint64_t p = from; p < to; p++) {
      national_record(key, p, t, first_month, months, &rec);
      if (validate_record(&rec) != REASON_OK)
        die("the generator made an invalid record");
      if (shard_apply(s, &rec, personmap_hash(rec.person_id)) < 0)
        die("out of memory applying records");
    }
}

static void check_equal(const shard *a, const shard *b) {
  if (a->persons.count != b->persons.count)
    die("loaded shard: person count differs");
  int64_t id;
  const person_state *sa;
  for (size_t at = 0; (sa = personmap_next(&a->persons, &at, &id));) {
    const person_state *sb = personmap_find(&b->persons, id, personmap_hash(id));
    if (!sb || memcmp(sa, sb, sizeof *sa) != 0)
      die("loaded shard: a person differs");
  }
  for (int m = 0; m < PERIOD_MONTHS; m++) {
    if ((a->counts.months[m] != NULL) != (b->counts.months[m] != NULL))
      die("loaded shard: rollup months differ");
    if (a->counts.months[m] && memcmp(a->counts.months[m], b->counts.months[m],
                                      ROLLUP_KEYS * ROLLUP_COLUMNS * sizeof(uint32_t)) != 0)
      die("loaded shard: rollup counters differ");
  }
  if (a->applied != b->applied || a->corrected != b->corrected || a->late != b->late)
    die("loaded shard: counts differ");
}

/* ---------------------------------------------------------------- layout variants */

/* A person as the snapshot file lays it out: the id and the 16 bytes of its
 * state planes (state/snapshot.c), not the 12 bytes of person_state in memory. */
typedef struct file_row {
  int64_t person_id;
  unsigned char state[16];
} file_row;

static void file_row_of(int64_t id, const person_state *st, file_row *r) {
  r->person_id = id;
  for (int b = 0; b < 4; b++) {
    r->state[b] = (unsigned char)(st->employed_bits >> (8 * b));
    r->state[4 + b] = (unsigned char)(st->fulltime_bits >> (8 * b));
  }
  r->state[8] = (unsigned char)st->latest_month;
  r->state[9] = (unsigned char)(st->latest_month >> 8);
  r->state[10] = (unsigned char)st->entry_municipality;
  r->state[11] = (unsigned char)st->entry;
  r->state[12] = (unsigned char)st->goals;
  r->state[13] = (unsigned char)st->latest_status;
  r->state[14] = r->state[15] = 0; /* reserved */
}

static int cmp_row(const void *a, const void *b) {
  int64_t x = ((const file_row *)a)->person_id, y = ((const file_row *)b)->person_id;
  return (x > y) - (x < y);
}

typedef struct buf {
  unsigned char *p;
  size_t len, cap;
} buf;

static void put(buf *b, const void *data, size_t len) {
  if (b->len + len > b->cap) {
    b->cap = (b->len + len) * 2;
    b->p = realloc(b->p, b->cap);
    if (!b->p)
      die("out of memory");
  }
  memcpy(b->p + b->len, data, len);
  b->len += len;
}

static void put_varint(buf *b, uint64_t v) {
  unsigned char t[10];
  size_t k = 0;
  while (v >= 0x80) {
    t[k++] = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  t[k++] = (unsigned char)v;
  put(b, t, k);
}

/* Byte j of field bytes [off, off+width) of every state, as planes. */
static void put_planes(buf *b, const file_row *s, size_t n, size_t off, size_t width) {
  unsigned char *col = malloc(n ? n : 1);
  for (size_t j = 0; j < width; j++) {
    for (size_t i = 0; i < n; i++)
      col[i] = s[i].state[off + j];
    put(b, col, n);
  }
  free(col);
}

/* Bit planes of a 32-bit field at off: plane k holds bit k of every person. */
static void put_bitplanes(buf *b, const file_row *s, size_t n, size_t off) {
  size_t bytes = (n + 7) / 8;
  unsigned char *plane = malloc(bytes ? bytes : 1);
  for (int k = 0; k < 32; k++) {
    memset(plane, 0, bytes);
    for (size_t i = 0; i < n; i++) {
      uint32_t v;
      memcpy(&v, s[i].state + off, 4);
      plane[i / 8] |= (unsigned char)(((v >> k) & 1) << (i % 8));
    }
    put(b, plane, bytes);
  }
  free(plane);
}

static void put_ids(buf *b, const file_row *s, size_t n, int planes) {
  if (!planes) {
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
      put_varint(b, (uint64_t)s[i].person_id - prev);
      prev = (uint64_t)s[i].person_id;
    }
    return;
  }
  /* Deltas as 8 byte planes (zero planes compress to nothing). */
  unsigned char *col = malloc(n ? n : 1);
  for (int j = 0; j < 8; j++) {
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
      col[i] = (unsigned char)(((uint64_t)s[i].person_id - prev) >> (8 * j));
      prev = (uint64_t)s[i].person_id;
    }
    put(b, col, n);
  }
  free(col);
}

typedef struct zres {
  size_t bytes;
  double ms;
} zres;

static zres zstd_measure(const buf *b, int level, int workers) {
  ZSTD_CCtx *c = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
  if (workers)
    if (ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_nbWorkers, workers)))
      die("this libzstd has no multithreading");
  size_t bound = ZSTD_compressBound(b->len);
  void *out = malloc(bound);
  double t0 = now_s();
  size_t r = ZSTD_compress2(c, out, bound, b->p, b->len);
  double ms = (now_s() - t0) * 1000;
  if (ZSTD_isError(r))
    die(ZSTD_getErrorName(r));
  free(out);
  ZSTD_freeCCtx(c);
  return (zres){r, ms};
}

static void variants(const shard *s) {
  size_t n = s->persons.count, k = 0;
  file_row *p = malloc(n * sizeof *p);
  if (!p)
    die("out of memory");
  int64_t id;
  const person_state *st;
  for (size_t at = 0; (st = personmap_next(&s->persons, &at, &id));)
    file_row_of(id, st, &p[k++]);
  qsort(p, n, sizeof *p, cmp_row);
  static const size_t fields[][2] = {{0, 4},  {4, 4},  {8, 2},  {10, 1},
                                     {11, 1}, {12, 1}, {13, 1}, {14, 2}};
  enum { V_ROWS, V_ROWS_DELTA, V_FIELDS, V_PLANES, V_PLANES_IDPLANES, V_BITPLANES, V_COUNT };
  static const char *names[V_COUNT] = {
      "rows: 24-byte rows (raw id + the 16 plane bytes of the state), sorted",
      "rows: varint id deltas, then 16-byte states",
      "columns: varint id deltas, each field a little-endian column",
      "byte planes: varint id deltas, 16 byte planes (the format)",
      "byte planes, id deltas as 8 byte planes too",
      "bit planes for the two histories, byte planes for the rest",
  };
  printf("\n### Layout variants at %zu persons (persons only, no rollup)\n\n", n);
  printf("| layout | raw B/person | zstd 1 B/person | zstd 3 B/person | zstd 9 B/person |\n");
  printf("|---|---|---|---|---|\n");
  for (int v = 0; v < V_COUNT; v++) {
    buf b = {0};
    switch (v) {
    case V_ROWS:
      put(&b, p, n * sizeof *p);
      break;
    case V_ROWS_DELTA:
      put_ids(&b, p, n, 0);
      for (size_t i = 0; i < n; i++)
        put(&b, p[i].state, sizeof p[i].state);
      break;
    case V_FIELDS:
      put_ids(&b, p, n, 0);
      for (size_t f = 0; f < sizeof fields / sizeof *fields; f++)
        for (size_t i = 0; i < n; i++)
          put(&b, p[i].state + fields[f][0], fields[f][1]);
      break;
    case V_PLANES:
    case V_PLANES_IDPLANES:
      put_ids(&b, p, n, v == V_PLANES_IDPLANES);
      put_planes(&b, p, n, 0, 16);
      break;
    case V_BITPLANES:
      put_ids(&b, p, n, 0);
      put_bitplanes(&b, p, n, 0);
      put_bitplanes(&b, p, n, 4);
      put_planes(&b, p, n, 8, 8);
      break;
    }
    zres z1 = zstd_measure(&b, 1, 0), z3 = zstd_measure(&b, 3, 0), z9 = zstd_measure(&b, 9, 0);
    printf("| %s | %.2f | %.3f | %.3f | %.3f |\n", names[v], (double)b.len / (double)n,
           (double)z1.bytes / (double)n, (double)z3.bytes / (double)n,
           (double)z9.bytes / (double)n);
    fflush(stdout);
    free(b.p);
  }

  /* The generator's ids are i * odd mod 2^32 + 1: sorted, their deltas take
   * three values and cost nothing. Ids spread at random over the same range
   * (as real ones would be) cost what their entropy says. */
  {
    uint64_t *ids = malloc(n * sizeof *ids), x = 0x243f6a8885a308d3ull;
    file_row *q = malloc(n * sizeof *q);
    if (!ids || !q)
      die("out of memory");
    for (size_t i = 0; i < n; i++) {
      x += 0x9e3779b97f4a7c15ull;
      ids[i] = 1 + (mix64(x) >> 32);
    }
    for (size_t i = 0; i < n; i++)
      q[i].person_id = (int64_t)ids[i];
    qsort(q, n, sizeof *q, cmp_row);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
      if (k == 0 || q[i].person_id != q[k - 1].person_id)
        q[k++] = q[i];
    buf gen = {0}, rnd = {0}, rndp = {0};
    put_ids(&gen, p, n, 0);
    put_ids(&rnd, q, k, 0);
    put_ids(&rndp, q, k, 1);
    zres zg = zstd_measure(&gen, 1, 0), zr = zstd_measure(&rnd, 1, 0),
         zp = zstd_measure(&rndp, 1, 0);
    printf("\nIds section alone, zstd 1: the generator's ids %.3f B/person; %zu ids uniformly "
           "random in [1, 2^32]: %.3f B/person as varints (%.2f raw), %.3f as 8 byte planes — "
           "real ids would add about that much.\n",
           (double)zg.bytes / (double)n, k, (double)zr.bytes / (double)k,
           (double)rnd.len / (double)k, (double)zp.bytes / (double)k);
    free(gen.p);
    free(rnd.p);
    free(rndp.p);
    free(q);
    free(ids);
  }

  /* Levels and workers for the format's layout. */
  buf b = {0};
  put_ids(&b, p, n, 0);
  put_planes(&b, p, n, 0, 16);
  printf("\n### zstd levels for the byte-plane layout at %zu persons (%.0f MB raw)\n\n", n,
         (double)b.len / 1e6);
  printf("| level | workers | B/person | compress ms (best of 3) |\n|---|---|---|---|\n");
  static const int levels[] = {-1, 1, 2, 3, 6};
  for (size_t l = 0; l < sizeof levels / sizeof *levels; l++)
    for (int w = 0; w <= 2; w += 2) {
      zres best = {0, 1e30};
      for (int r = 0; r < 3; r++) {
        zres z = zstd_measure(&b, levels[l], w);
        if (z.ms < best.ms)
          best = z;
      }
      printf("| %d | %d | %.3f | %.0f |\n", levels[l], w, (double)best.bytes / (double)n, best.ms);
      fflush(stdout);
    }
  free(b.p);
  free(p);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
  long long sizes[16] = {1000000, 3000000, 6000000};
  int nsizes = 3, months = 12, runs = 3, want_variants = 0;
  uint64_t seed = 1;
  const char *dir = "bench/data/snapshot";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--variants")) {
      want_variants = 1;
      continue;
    }
    if (!v) {
      fprintf(stderr, "bench-snapshot: %s needs a value (see the comment atop bench_snapshot.c)\n",
              a);
      return 2;
    }
    i++;
    if (!strcmp(a, "--persons")) {
      nsizes = 0;
      for (char *s = (char *)v; *s && nsizes < 16;) {
        char *end;
        sizes[nsizes++] = strtoll(s, &end, 10);
        if (end == s || sizes[nsizes - 1] <= 0 ||
            (nsizes > 1 && sizes[nsizes - 1] <= sizes[nsizes - 2])) {
          fprintf(stderr, "bench-snapshot: --persons wants ascending counts: %s\n", v);
          return 2;
        }
        s = *end == ',' ? end + 1 : end;
      }
    } else if (!strcmp(a, "--months"))
      months = atoi(v);
    else if (!strcmp(a, "--seed"))
      seed = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--runs"))
      runs = atoi(v);
    else if (!strcmp(a, "--dir"))
      dir = v;
    else {
      fprintf(stderr, "bench-snapshot: unknown option %s\n", a);
      return 2;
    }
  }
  if (months < 1 || months > 120 || runs < 1 || runs > 50) {
    fprintf(stderr, "bench-snapshot: --months 1..120, --runs 1..50\n");
    return 2;
  }

  rules_config rules;
  rules_config_default(&rules);
  char err[512];
  if (rules_config_prepare(&rules, err, sizeof err) < 0)
    die(err);
  national_init();
  uint64_t key = mix64(seed ^ 0x7265677374726561ull); /* as regstream-gen */
  int first_month = period_to_month(202301);

  shard s;
  if (shard_init(&s, &rules, 0) < 0)
    die("out of memory");
  printf("national profile, seed %" PRIu64 ", %d months from 202301; %d run(s) per measure "
         "(median, min in parentheses; CPU: the process's user + system time, zstd workers "
         "included); snapshot dir %s\n\n",
         seed, months, runs, dir);
  printf("| persons | records applied | map B/person | snapshot B/person | file MB | capture ms "
         "(the pause) | write ms | write CPU ms | load ms | load CPU ms |\n");
  printf("|---|---|---|---|---|---|---|---|---|---|\n");
  fflush(stdout);
  uint64_t done = 0;
  int64_t position = 0;
  for (int z = 0; z < nsizes; z++) {
    uint64_t n = (uint64_t)sizes[z];
    double t0 = now_s();
    grow_shard(&s, key, first_month, months, done, n);
    double build = now_s() - t0;
    done = n;
    fprintf(stderr, "bench-snapshot: %" PRIu64 " persons built in %.1f s\n", n, build);

    double cap[50], wr[50], ld[50], wrc[50], ldc[50];
    size_t bytes = 0;
    char shard_id[64];
    snprintf(shard_id, sizeof shard_id, "bench.%" PRIu64, n);
    snapshot_meta meta;
    for (int r = 0; r < runs; r++) {
      memset(&meta, 0, sizeof meta);
      snprintf(meta.shard_id, sizeof meta.shard_id, "%s", shard_id);
      meta.position = ++position;
      meta.fingerprint = 1;
      double a = now_s();
      snapshot_image *img = snapshot_capture(&s, &meta);
      double b = now_s(), bc = cpu_s();
      if (!img)
        die("out of memory capturing");
      if (snapshot_store_write(dir, img, &bytes, err, sizeof err) < 0)
        die(err);
      double c = now_s();
      wrc[r] = (cpu_s() - bc) * 1000;
      snapshot_image_free(img);
      cap[r] = (b - a) * 1000;
      wr[r] = (c - b) * 1000;
    }
    for (int r = 0; r < runs; r++) {
      shard t;
      if (shard_init(&t, &rules, 0) < 0)
        die("out of memory");
      snapshot_meta got;
      double a = now_s(), ac = cpu_s();
      int rc = snapshot_store_load_latest(dir, shard_id, 1, &t, &got, err, sizeof err);
      ld[r] = (now_s() - a) * 1000;
      ldc[r] = (cpu_s() - ac) * 1000;
      if (rc != 1)
        die(rc < 0 ? err : "no snapshot loaded");
      if (r == 0)
        check_equal(&s, &t);
      shard_free(&t);
    }
    double capmin = cap[0], wrmin = wr[0], ldmin = ld[0];
    for (int r = 1; r < runs; r++) {
      capmin = cap[r] < capmin ? cap[r] : capmin;
      wrmin = wr[r] < wrmin ? wr[r] : wrmin;
      ldmin = ld[r] < ldmin ? ld[r] : ldmin;
    }
    printf("| %.0f M | %" PRIu64 " | %.1f | **%.2f** | %.1f | %.1f (%.1f) | %.0f (%.0f) | %.0f | "
           "%.0f (%.0f) | %.0f |\n",
           (double)n / 1e6, s.applied + s.corrected + s.late,
           (double)personmap_bytes(&s.persons) / (double)n, (double)bytes / (double)n,
           (double)bytes / 1e6, median(cap, runs), capmin, median(wr, runs), wrmin,
           median(wrc, runs), median(ld, runs), ldmin, median(ldc, runs));
    fflush(stdout);
    if (z == nsizes - 1) {
      char path[PATH_MAX];
      snprintf(path, sizeof path, "%s/%s.%020lld.snap", dir, shard_id, (long long)position);
      printf("\n### `regstream snapshot inspect` of the %.0f M-person file\n\n```\n",
             (double)n / 1e6);
      fflush(stdout);
      if (snapshot_inspect(path, stdout, err, sizeof err) < 0)
        die(err);
      printf("```\n");
      fflush(stdout);
    }
  }
  if (want_variants)
    variants(&s);
  shard_free(&s);
  /* The bench's own files only. */
  for (int z = 0; z < nsizes; z++) {
    char path[PATH_MAX];
    for (int64_t p = 1; p <= position; p++) {
      snprintf(path, sizeof path, "%s/bench.%lld.%020lld.snap", dir, sizes[z], (long long)p);
      unlink(path);
    }
  }
  rmdir(dir); /* when nothing else is in it */
  return 0;
}
