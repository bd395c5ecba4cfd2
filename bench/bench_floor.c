/* bench_floor.c — bench-floor: the floor of issue 13 ("Replay near the memory
 * floor") that bench/replay.sh sets one regstream thread against, measured on
 * the same container file(s) the replay reads. Two figures, ns/record, best
 * of 3 passes each, one thread:
 *
 *   decode  the project's own OCF reader (ocf_open, ocf_next_block,
 *           ocf_block_decompress for non-null codecs, ocf_release as the
 *           replay releases blocks) and pm_decode with the file's plan; no
 *           validation, no state, only a sum of a few fields;
 *   state   the records' person ids, kept in input order from one untimed
 *           decode pass (valid records only: the ones regstream applies),
 *           looked up in the person map's own two tables, as its slots lie
 *           (16 bytes {u32 id, 12-byte state} for ids of 32 bits, 20 bytes
 *           {8-byte id, 12-byte state} for the others), sized and allocated
 *           by regstream's own personmap_init and pre-filled with every
 *           person (untimed); the timed loop hashes an id with
 *           personmap_hash, prefetches its slot PREFETCH ahead with
 *           personmap_prefetch as file/pipeline.c does, picks the table by
 *           the id's width as the map does, probes linearly and makes a
 *           tiny dependent change to the state (a 32-bit history shifted, a
 *           counter bumped).
 *
 * The files are read once with read(2) before anything is timed, so no pass
 * is a cold read. Output on stdout, one "name value" per line, for scripts;
 * progress on stderr. Usage: bench-floor INPUT.avro [INPUT2.avro ...] */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "avro/decode.h"
#include "avro/ocf.h"
#include "core/personmap.h"
#include "core/validate.h"

enum { PASSES = 3, PREFETCH = PERSONMAP_PREFETCH_AHEAD }; /* as regstream prefetches */

/* The map's slots (core/personmap.h) as the floor sees them. */
typedef struct floor_slot {
  uint32_t person_id;
  uint32_t history; /* shifted left once per record, the id's low bit ORed in */
  uint32_t records; /* bumped once per record */
  uint32_t rest;    /* the rest of a person_state's 12 bytes */
} floor_slot;
typedef struct floor_wide_slot {
  unsigned char person_id[8]; /* the int64 id, memcpy'd, as in person_wide_slot */
  uint32_t history, records, rest;
} floor_wide_slot;
_Static_assert(sizeof(floor_slot) == sizeof(person_slot), "a slot as large as regstream's");
_Static_assert(sizeof(floor_wide_slot) == sizeof(person_wide_slot),
               "a wide slot as large as regstream's");

/* The map's two tables. */
typedef struct floor_table {
  floor_slot *slots;
  floor_wide_slot *wide;
  size_t mask, wide_mask;
} floor_table;

static int64_t wide_id(const floor_wide_slot *s) {
  int64_t id;
  memcpy(&id, s->person_id, sizeof id);
  return id;
}

typedef struct floor_input {
  const char *path;
  pm_plan *plan;
  ocf_codec codec;
} floor_input;

static void die(const char *fmt, const char *what) {
  fputs("bench-floor: ", stderr);
  fprintf(stderr, fmt, what);
  fputc('\n', stderr);
  exit(1);
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static ocf_reader *open_reader(const char *path) {
  char err[512];
  ocf_reader *r = ocf_open(path, err, sizeof err);
  if (!r)
    die("%s", err);
  return r;
}

/* Pulls the file into the page cache. */
static void read_once(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    die("cannot open %s", path);
  static char buf[1 << 20];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    ;
  if (n < 0)
    die("cannot read %s", path);
  close(fd);
}

/* The records the file's framed blocks claim (no decoding). */
static uint64_t count_records(const char *path) {
  ocf_reader *r = open_reader(path);
  ocf_block b;
  uint64_t n = 0;
  while (ocf_next_block(r, &b))
    if (b.kind == OCF_BLOCK_OK)
      n += (uint64_t)b.count;
  ocf_close(r);
  return n;
}

/* One walk over in's blocks, decoding every record. With ids, the ids of the
 * valid records are appended at ids[*kept]. Returns the records decoded. */
static uint64_t walk(const floor_input *in, ocf_buf *buf, uint64_t *sum, int64_t *ids,
                     uint64_t *kept) {
  ocf_reader *r = open_reader(in->path);
  ocf_block b;
  uint64_t records = 0, s = 0;
  char err[512];
  while (ocf_next_block(r, &b)) {
    if (b.kind != OCF_BLOCK_OK)
      die("%s: a damaged region in the file (the floor wants an undamaged input)", in->path);
    const uint8_t *pos = b.data, *end = b.data + b.size;
    if (in->codec != OCF_CODEC_NULL) {
      if (ocf_block_decompress(r, &b, buf, err, sizeof err) < 0)
        die("%s", err);
      pos = buf->data;
      end = buf->data + buf->len;
    }
    pm_record rec;
    if (!ids) {
      for (int64_t i = 0; i < b.count; i++) {
        if (pm_decode(in->plan, &pos, end, &rec) == PM_DECODE_LOST)
          die("%s: a record that does not decode", in->path);
        s += (uint64_t)rec.person_id + (uint64_t)rec.period + rec.visitation + rec.flags;
      }
    } else {
      for (int64_t i = 0; i < b.count; i++) {
        if (pm_decode(in->plan, &pos, end, &rec) == PM_DECODE_LOST)
          die("%s: a record that does not decode", in->path);
        s += (uint64_t)rec.person_id + (uint64_t)rec.period + rec.visitation + rec.flags;
        if (validate_record(&rec) == REASON_OK)
          ids[(*kept)++] = rec.person_id;
      }
    }
    records += (uint64_t)b.count;
    ocf_release(r, b.file_offset + b.size);
  }
  ocf_close(r);
  *sum += s;
  return records;
}

/* The tables' memory: a person map's own, from personmap_init (each table
 * sized for its persons as the map ends after growing at 3/4 load,
 * allocated as core/personmap.c allocates its slot tables), so the floor's
 * tables live in the same kind of memory as regstream's. Only floor_slot
 * and floor_wide_slot lvalues touch the slots (the map's code writes none
 * before handing them over). */
static int slots_alloc(personmap *m, uint64_t narrow, uint64_t wide, floor_table *t) {
  if (personmap_init(m, (size_t)narrow, (size_t)wide) < 0)
    return -1;
  t->slots = (floor_slot *)(void *)m->slots;
  t->wide = (floor_wide_slot *)(void *)m->wide;
  t->mask = m->mask;
  t->wide_mask = m->wide_mask;
  return 0;
}
static void slots_free(personmap *m) {
  personmap_free(m);
}

/* Distinct ids (all > 0) of ids[0..n): a growing set, untimed. */
static int64_t *distinct_ids(const int64_t *ids, uint64_t n, size_t *cap_out, uint64_t *count) {
  size_t cap = 1024, c = 0;
  int64_t *set = calloc(cap, sizeof *set);
  for (uint64_t i = 0; set && i < n; i++) {
    size_t j = personmap_hash(ids[i]) & (cap - 1);
    while (set[j] && set[j] != ids[i])
      j = (j + 1) & (cap - 1);
    if (set[j])
      continue;
    set[j] = ids[i];
    if (++c * 4 <= cap * 3)
      continue;
    int64_t *bigger = calloc(cap * 2, sizeof *bigger);
    for (size_t k = 0; bigger && k < cap; k++) {
      if (!set[k])
        continue;
      size_t m = personmap_hash(set[k]) & (cap * 2 - 1);
      while (bigger[m])
        m = (m + 1) & (cap * 2 - 1);
      bigger[m] = set[k];
    }
    free(set);
    set = bigger;
    cap *= 2;
  }
  if (!set)
    die("%s", "out of memory counting persons");
  *cap_out = cap;
  *count = c;
  return set;
}

/* One timed pass of state updates over ids in input order. */
static double state_pass(const personmap *map, const floor_table *t, const int64_t *ids,
                         uint64_t n) {
  uint64_t ahead[PREFETCH]; /* the hashes of ids[i .. i+PREFETCH), by i % PREFETCH */
  for (uint64_t i = 0; i < PREFETCH && i < n; i++) {
    ahead[i] = personmap_hash(ids[i]);
    personmap_prefetch(map, ids[i], ahead[i]);
  }
  floor_slot *slots = t->slots;
  floor_wide_slot *wide = t->wide;
  size_t mask = t->mask, wide_mask = t->wide_mask;
  double t0 = now_seconds();
  for (uint64_t i = 0; i < n; i++) {
    uint64_t h = ahead[i % PREFETCH];
    if (i + PREFETCH < n) {
      uint64_t next = personmap_hash(ids[i + PREFETCH]);
      ahead[i % PREFETCH] = next;
      personmap_prefetch(map, ids[i + PREFETCH], next);
    }
    int64_t id = ids[i];
    uint32_t *history, *records;
    if (personmap_narrow(id)) {
      size_t j = h & mask;
      while (slots[j].person_id != (uint32_t)id)
        j = (j + 1) & mask;
      history = &slots[j].history;
      records = &slots[j].records;
    } else {
      size_t j = h & wide_mask;
      while (wide_id(&wide[j]) != id)
        j = (j + 1) & wide_mask;
      history = &wide[j].history;
      records = &wide[j].records;
    }
    *history = *history << 1 | (uint32_t)(id & 1);
    ++*records;
  }
  return now_seconds() - t0;
}

int main(int argc, char **argv) {
  if (argc < 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: bench-floor INPUT.avro [INPUT2.avro ...]\n");
    return 2;
  }
  int files = argc - 1;
  floor_input *in = calloc((size_t)files, sizeof *in);
  if (!in)
    die("%s", "out of memory");
  uint64_t claimed = 0;
  for (int f = 0; f < files; f++) {
    char err[512];
    ocf_reader *r = open_reader(argv[f + 1]);
    in[f].path = argv[f + 1];
    in[f].codec = ocf_reader_codec(r);
    in[f].plan = pm_plan_from_json(ocf_schema_json(r), ocf_schema_json_len(r), err, sizeof err);
    if (!in[f].plan)
      die("%s", err);
    ocf_close(r);
    read_once(in[f].path);
    claimed += count_records(in[f].path);
  }

  /* The ids, from one untimed decode pass. */
  int64_t *ids = malloc(sizeof *ids * (claimed ? claimed : 1));
  if (!ids)
    die("%s", "out of memory for the person ids");
  ocf_buf buf = {0};
  uint64_t records = 0, kept = 0, check = 0;
  for (int f = 0; f < files; f++)
    records += walk(&in[f], &buf, &check, ids, &kept);
  fprintf(stderr, "bench-floor: %" PRIu64 " records in %d file(s), %" PRIu64 " valid\n", records,
          files, kept);

  double best = 1e30;
  for (int p = 0; p < PASSES; p++) {
    uint64_t sum = 0, n = 0;
    double t0 = now_seconds();
    for (int f = 0; f < files; f++)
      n += walk(&in[f], &buf, &sum, NULL, NULL);
    double t = now_seconds() - t0;
    if (n != records || sum != check)
      die("%s", "a decode pass saw other records than the first");
    if (t < best)
      best = t;
  }
  double decode_ns = records ? best * 1e9 / (double)records : 0.0;
  fprintf(stderr, "bench-floor: decode %.2f ns/record (best of %d)\n", decode_ns, PASSES);

  /* The tables: every person in them before the timed loops. */
  size_t set_cap;
  uint64_t persons, wide = 0;
  int64_t *set = distinct_ids(ids, kept, &set_cap, &persons);
  for (size_t k = 0; k < set_cap; k++)
    wide += set[k] && !personmap_narrow(set[k]);
  personmap map;
  floor_table t;
  if (slots_alloc(&map, persons - wide, wide, &t) < 0)
    die("%s", "out of memory for the table");
  for (size_t k = 0; k < set_cap; k++) {
    int64_t id = set[k];
    if (!id)
      continue;
    uint64_t h = personmap_hash(id);
    if (personmap_narrow(id)) {
      size_t j = h & t.mask;
      while (t.slots[j].person_id)
        j = (j + 1) & t.mask;
      t.slots[j].person_id = (uint32_t)id;
    } else {
      size_t j = h & t.wide_mask;
      while (wide_id(&t.wide[j]))
        j = (j + 1) & t.wide_mask;
      memcpy(t.wide[j].person_id, &id, sizeof id);
    }
  }
  free(set);

  best = 1e30;
  for (int p = 0; p < PASSES; p++) {
    double s = state_pass(&map, &t, ids, kept);
    if (s < best)
      best = s;
  }
  double state_ns = kept ? best * 1e9 / (double)kept : 0.0;
  uint64_t updates = 0, state_check = 0;
  for (size_t j = 0; j <= t.mask; j++) {
    updates += t.slots[j].records;
    state_check += t.slots[j].history;
  }
  for (size_t j = 0; j <= t.wide_mask; j++) {
    updates += t.wide[j].records;
    state_check += t.wide[j].history;
  }
  if (updates != kept * PASSES)
    die("%s", "the state passes lost updates");
  fprintf(stderr, "bench-floor: state %.2f ns/record (best of %d), %" PRIu64 " persons\n", state_ns,
          PASSES, persons);

  printf("records %" PRIu64 "\n", records);
  printf("prefetch_ahead %d\n", PREFETCH);
  printf("state_records %" PRIu64 "\n", kept);
  printf("persons %" PRIu64 "\n", persons);
  printf("wide_persons %" PRIu64 "\n", wide);
  printf("table_slots %zu\n", t.mask + 1);
  printf("wide_table_slots %zu\n", t.wide_mask + 1);
  printf("table_bytes_per_person %.1f\n",
         persons ? (double)personmap_bytes(&map) / (double)persons : 0.0);
  printf("decode_ns_per_record %.2f\n", decode_ns);
  printf("state_ns_per_record %.2f\n", state_ns);
  printf("floor_ns_per_record %.2f\n", decode_ns + state_ns);
  printf("checksum %" PRIu64 "\n", check ^ state_check);

  slots_free(&map);
  free(ids);
  ocf_buf_free(&buf);
  for (int f = 0; f < files; f++)
    pm_plan_free(in[f].plan);
  free(in);
  return 0;
}
