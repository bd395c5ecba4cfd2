/* snapshot.c — the snapshot file format of one state shard (SPEC §6): its
 * writer (capture, encode, compress into an open file) and its reader
 * (verify, decode), side by side. Where snapshot files live, what they are
 * called, the atomic rename, pruning and falling back to an older file are
 * the snapshot store's (state/store.c).
 *
 * ---------------------------------------------------------------------------
 * FILE FORMAT, version 1. All integers little-endian, no padding, no structs
 * written as they lie in memory.
 *
 *   offset      size  field
 *   0           8     magic "RGSTSNAP"
 *   8           4     u32 format version (1)
 *   12          4     u32 H: header bytes, up to and including the header CRC
 *   16          8     u64 fingerprint (config_fingerprint of the writer)
 *   24          8     i64 position (>= 0: next input offset / records consumed)
 *   32          8     u64 persons n
 *   40          4     u32 months M (rollup month blocks present)
 *   44          2     u16 state bytes per person in the planes (16: the
 *                     format's, not sizeof(person_state), which is 12)
 *   46          2     u16 rollup keys per month (ROLLUP_KEYS, 588)
 *   48          2     u16 rollup columns per key (ROLLUP_COLUMNS, 25)
 *   50          2     u16 S: payload sections (11)
 *   52          2     u16 E: extra words (SNAPSHOT_EXTRA, 16)
 *   54          2     u16 flags (0; a reader refuses bits it does not know)
 *   56          8     u64 applied
 *   64          8     u64 corrected
 *   72          8     u64 late
 *   80          8     i64 written_unix_ms (when the state was captured)
 *   88          8     u64 R: payload bytes before compression
 *   96          8     u64 C: payload bytes in the file (one zstd frame)
 *   104         8*S   u64 raw bytes of each payload section (they add up to R)
 *   104+8S      8*E   u64 extra[E] (the mode's own resume data, opaque here)
 *   104+8S+8E   2     u16 L: shard id bytes          (offset 320 in version 1)
 *   106+8S+8E   L     shard id (letters, digits, '.', '_', '-'; no NUL)
 *   H-4         4     u32 CRC-32 (zlib) of bytes [0, H-4); H = 326 + L
 *   H           C     zstd frame of the payload (content size and zstd's own
 *                     XXH64 content checksum in the frame)
 *   H+C         4     u32 CRC-32 (zlib) of bytes [0, H+C): the whole file
 *   file size = H + C + 4 exactly.
 *
 * Every later version keeps the first 16 bytes (magic, version, H) and the
 * header CRC at H-4, so a reader can tell "another version" (refused: the
 * user must act) from "damaged" (skipped: an older snapshot is used). The
 * header CRC is checked before the version, so a flipped version bit reads
 * as damage, not as another version. Layout constants (state bytes, rollup
 * keys and columns, section and extra word counts) that differ from this
 * build's are refused like another version.
 *
 * PAYLOAD, before compression: the sections in this order, back to back.
 * Persons are sorted by person_id; column j holds byte j of every person
 * ("byte planes"): a column of low bytes of 6 M bit histories is mostly the
 * same few values and zstd squeezes it far better than interleaved 16-byte
 * records (measured in bench/results/snapshot.md).
 *   0  ids             n LEB128 varints: id[0], then id[i] - id[i-1] (>= 1)
 *   1  employed_bits   4n: plane of bits 0-7 of all persons, then 8-15, ...
 *   2  fulltime_bits   4n: the same
 *   3  latest_month    2n: low bytes, then high bytes
 *   4  entry_municipality  n
 *   5  entry           n
 *   6  goals           n
 *   7  latest_status   n
 *   8  reserved        2n: low bytes, then high bytes (always 0)
 *   9  months          2M: u16 month indexes (period.h), strictly ascending
 *  10  counters        4 * M * K, K = keys * columns: for byte b = 0..3, for
 *                      counter c = 0..K-1 (key-major as in a month block), for
 *                      month j = 0..M-1: byte b of counter c in month j. A
 *                      counter's months lie side by side (mostly equal) and
 *                      the high planes are nearly all zeros.
 * A reader checks every section length against n and M, that the ids
 * section decodes to exactly n strictly increasing positive ids, and that
 * the state fields the rules use as indexes are in range (latest_month,
 * entry_municipality, the entry visitation, latest_status): a loaded state
 * can never send the rules outside the rollup. The state in memory is
 * narrower than its planes (rules.h): a reader also refuses what it could
 * not hold and no writer ever wrote (entry bits 5-7, goals bits 6-7, a
 * reserved value other than 0).
 *
 * ---------------------------------------------------------------------------
 *
 * Capture copies only the persons out of the map (personmap_export:
 * branch-free compaction of its two tables, at memory speed) and the month
 * blocks; sorting (one MSD radix pass into cache-sized buckets, then LSD
 * radix within each), column encoding and compression (zstd level 1, two
 * workers for big payloads) happen in snapshot_image_encode. Loading
 * decompresses into one buffer, sizes the map's tables for their persons
 * once and inserts in home-slot order (cache-local). Numbers:
 * bench/results/snapshot.md. */
#include "state/snapshot.h"
#include "util/bytes.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>
#include <zstd.h>

#include "avro/schemas.h"
#include "core/fnv.h"
#include "core/municipality.h"
#include "core/period.h"
#include "util/clock.h"
#include "util/fs.h"

/* ------------------------------------------------------------------ format constants */

static const unsigned char snap_magic[8] = {'R', 'G', 'S', 'T', 'S', 'N', 'A', 'P'};

enum {
  SECTION_IDS = 0,
  SECTION_EMPLOYED,
  SECTION_FULLTIME,
  SECTION_LATEST_MONTH,
  SECTION_ENTRY_MUNICIPALITY,
  SECTION_ENTRY,
  SECTION_GOALS,
  SECTION_LATEST_STATUS,
  SECTION_RESERVED,
  SECTION_MONTHS,
  SECTION_COUNTERS,
  SECTIONS
};

static const char *const section_names[SECTIONS] = {
    "ids",     "employed_bits", "fulltime_bits", "latest_month", "entry_municipality",
    "entry",   "goals",         "latest_status", "reserved",     "months",
    "counters"};

/* Byte planes of a person's state: plane p of person i is at column p. A
 * format constant (header offset 44), whatever person_state's size. */
enum { STATE_PLANES = 16 };
/* First plane of each state section (sections 1..8), and one past the last. */
static const int section_first_plane[SECTIONS] = {0, 0, 4, 8, 10, 11, 12, 13, 14, 16, 16};

enum {
  OFF_SECTIONS = 104,                                        /* the section lengths */
  OFF_EXTRA = OFF_SECTIONS + 8 * SECTIONS,                   /* the extra words */
  HEADER_FIXED = OFF_EXTRA + 8 * SNAPSHOT_EXTRA,             /* the shard id length */
  HEADER_MAX = HEADER_FIXED + 2 + SNAPSHOT_SHARD_ID_MAX + 4, /* a bound for any H */
  BLOCK_COUNTERS = ROLLUP_KEYS * ROLLUP_COLUMNS,
  /* zstd: level 1 keeps 6 M persons well under a second (bench/results/snapshot.md);
   * two workers once the payload is big enough for them to pay off. */
  ZSTD_LEVEL = 1,
  ZSTD_WORKERS = 2,
  ZSTD_MT_MIN_BYTES = 8 << 20,
};

/* What went wrong while reading (snapshot_read_kind, snapshot.h). */
typedef snapshot_read_kind read_kind;
#define READ_OK SNAPSHOT_READ_OK
#define READ_CORRUPT SNAPSHOT_READ_DAMAGED
#define READ_REFUSED SNAPSHOT_READ_REFUSED
#define READ_FAILED SNAPSHOT_READ_FAILED

/* ------------------------------------------------------------------ small helpers */

static uint32_t crc_of(const void *data, size_t len) {
  return (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), data, len);
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static const char *errno_text(int e, char *buf, size_t len) {
  /* _GNU_SOURCE: the GNU strerror_r, thread-safe, returns the text. */
  return strerror_r(e, buf, len);
}

/* Shard ids are file name prefixes: [A-Za-z0-9._-]+, not starting with '.'. */
int snapshot_shard_id_valid(const char *id) {
  size_t len = strnlen(id, SNAPSHOT_SHARD_ID_MAX);
  if (len == 0 || len >= SNAPSHOT_SHARD_ID_MAX || id[0] == '.')
    return 0;
  for (size_t i = 0; i < len; i++) {
    char c = id[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-'))
      return 0;
  }
  return 1;
}

/* ------------------------------------------------------------------ fingerprint */

uint64_t snapshot_fingerprint(const rules_config *r) {
  char text[256];
  /* Only what changes the state a record leaves behind: the rule options
   * (as given, before derivation) and the reader schema. */
  int n = snprintf(text, sizeof text, "rules/1 full=%.17g window=%d run=%d start=%d end=%d|",
                   r->full_time_weekly_hours, r->durable_window_months, r->durable_run_months,
                   (int)r->project_start, (int)r->project_end);
  uint64_t h = fnv1a64(FNV1A64_INIT, text, (size_t)n);
  return fnv1a64(h, pm_reader_schema_json, strlen(pm_reader_schema_json));
}

/* ------------------------------------------------------------------ capture */

struct snapshot_image {
  snapshot_meta meta;
  person_entry *persons; /* meta.persons persons, in map order */
  uint16_t month_index[PERIOD_MONTHS];
  uint32_t *counters; /* meta.months blocks of BLOCK_COUNTERS, in month order */
};

snapshot_image *snapshot_capture(const shard *s, const snapshot_meta *meta) {
  snapshot_image *img = calloc(1, sizeof *img);
  if (!img)
    return NULL;
  img->meta = *meta;
  img->meta.version = SNAPSHOT_FORMAT_VERSION;
  img->meta.persons = s->persons.count;
  img->meta.applied = s->applied;
  img->meta.corrected = s->corrected;
  img->meta.late = s->late;
  img->meta.written_unix_ms = clock_unix_ms();

  /* One spare entry: the branch-free copy stores every slot and only
   * advances past persons, so the last store may land at [count]. */
  size_t n = s->persons.count;
  img->persons = malloc((n + 1) * sizeof *img->persons);
  if (!img->persons) {
    free(img);
    return NULL;
  }
  if (personmap_export(&s->persons, img->persons, n) != n) {
    /* a map whose count disagrees with its slots: refuse to copy it */
    free(img->persons);
    free(img);
    return NULL;
  }

  uint32_t months = 0;
  for (int m = 0; m < PERIOD_MONTHS; m++)
    if (s->counts.months[m])
      img->month_index[months++] = (uint16_t)m;
  img->meta.months = months;
  img->counters = malloc((months ? months : 1) * (size_t)BLOCK_COUNTERS * sizeof(uint32_t));
  if (!img->counters) {
    free(img->persons);
    free(img);
    return NULL;
  }
  for (uint32_t j = 0; j < months; j++)
    memcpy(img->counters + (size_t)j * BLOCK_COUNTERS, s->counts.months[img->month_index[j]],
           BLOCK_COUNTERS * sizeof(uint32_t));
  return img;
}

void snapshot_image_free(snapshot_image *img) {
  if (!img)
    return;
  free(img->persons);
  free(img->counters);
  free(img);
}

const snapshot_meta *snapshot_image_meta(const snapshot_image *img) {
  return &img->meta;
}

/* ------------------------------------------------------------------ encoding */

enum { RADIX_BITS = 11, RADIX = 1 << RADIX_BITS };

static void insertion_sort(person_entry *a, size_t n) {
  for (size_t i = 1; i < n; i++) {
    person_entry x = a[i];
    size_t j = i;
    for (; j > 0 && a[j - 1].person_id > x.person_id; j--)
      a[j] = a[j - 1];
    a[j] = x;
  }
}

/* Sort a[0, n) by the low `bits` bits of id - lo (the higher bits are equal):
 * LSD radix, RADIX_BITS per pass, b scratch of n slots. */
static void lsd_sort(person_entry *a, person_entry *b, size_t n, uint64_t lo, int bits) {
  if (n < 64) {
    insertion_sort(a, n);
    return;
  }
  person_entry *src = a, *dst = b;
  size_t count[RADIX];
  for (int shift = 0; shift < bits; shift += RADIX_BITS) {
    memset(count, 0, sizeof count);
    for (size_t i = 0; i < n; i++)
      count[(((uint64_t)src[i].person_id - lo) >> shift) & (RADIX - 1)]++;
    size_t sum = 0;
    for (int d = 0; d < RADIX; d++) {
      size_t c = count[d];
      count[d] = sum;
      sum += c;
    }
    for (size_t i = 0; i < n; i++)
      dst[count[(((uint64_t)src[i].person_id - lo) >> shift) & (RADIX - 1)]++] = src[i];
    person_entry *t = src;
    src = dst;
    dst = t;
  }
  if (src != a)
    memcpy(a, src, n * sizeof *a);
}

/* A copy of the image's persons sorted by id; NULL when memory is short.
 * One MSD pass on the top RADIX_BITS significant bits of id - min scatters
 * them into buckets of a few thousand (for evenly spread ids), each then
 * sorted by LSD radix while it sits in cache. */
static person_entry *sorted_entries(const person_entry *p, size_t n) {
  person_entry *a = malloc((n ? n : 1) * sizeof *a);
  if (!a || n == 0)
    return a;
  uint64_t lo = (uint64_t)p[0].person_id, hi = lo;
  for (size_t i = 1; i < n; i++) {
    uint64_t id = (uint64_t)p[i].person_id;
    lo = id < lo ? id : lo;
    hi = id > hi ? id : hi;
  }
  uint64_t range = hi - lo;
  int bits = range ? 64 - __builtin_clzll(range) : 0;
  int shift = bits > RADIX_BITS ? bits - RADIX_BITS : 0;
  size_t *start = calloc(RADIX + 1, sizeof *start);
  if (!start) {
    free(a);
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    start[(((uint64_t)p[i].person_id - lo) >> shift) + 1]++;
  size_t biggest = 0;
  for (int d = 0; d < RADIX; d++) {
    biggest = start[d + 1] > biggest ? start[d + 1] : biggest;
    start[d + 1] += start[d];
  }
  size_t *next = malloc(RADIX * sizeof *next);
  person_entry *b = shift ? malloc((biggest ? biggest : 1) * sizeof *b) : NULL;
  if (!next || (shift && !b)) {
    free(next);
    free(b);
    free(start);
    free(a);
    return NULL;
  }
  memcpy(next, start, RADIX * sizeof *next);
  for (size_t i = 0; i < n; i++)
    a[next[((uint64_t)p[i].person_id - lo) >> shift]++] = p[i];
  if (shift)
    for (int d = 0; d < RADIX; d++)
      lsd_sort(a + start[d], b, start[d + 1] - start[d], lo, shift);
  free(b);
  free(next);
  free(start);
  return a;
}

static size_t varint_put(unsigned char *p, uint64_t v) {
  size_t k = 0;
  while (v >= 0x80) {
    p[k++] = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  p[k++] = (unsigned char)v;
  return k;
}

/* The person's state as its 16 byte planes (the layout atop this file). */
static void state_planes(const person_state *st, unsigned char out[STATE_PLANES]) {
  for (int b = 0; b < 4; b++) {
    out[b] = (unsigned char)(st->employed_bits >> (8 * b));
    out[4 + b] = (unsigned char)(st->fulltime_bits >> (8 * b));
  }
  out[8] = (unsigned char)st->latest_month;
  out[9] = (unsigned char)(st->latest_month >> 8);
  out[10] = (unsigned char)st->entry_municipality;
  out[11] = (unsigned char)st->entry;
  out[12] = (unsigned char)st->goals;
  out[13] = (unsigned char)st->latest_status;
  out[14] = 0; /* reserved */
  out[15] = 0;
}

/* 1 when the planes hold a state the rules can use and person_state can
 * hold (the checks atop this file). */
static int planes_valid(const unsigned char in[STATE_PLANES]) {
  return get16(in + 8) < PERIOD_MONTHS && in[10] < MUNICIPALITY_COUNT && in[11] < 32 &&
         (in[11] & 7) < VISITATION_COUNT && in[12] < 64 && in[13] < STATUS_COUNT &&
         get16(in + 14) == 0;
}

/* The state of valid planes. */
static void state_from_planes(person_state *st, const unsigned char in[STATE_PLANES]) {
  memset(st, 0, sizeof *st);
  st->employed_bits = get32(in);
  st->fulltime_bits = get32(in + 4);
  st->latest_month = get16(in + 8);
  st->entry_municipality = in[10];
  st->entry = in[11];
  st->goals = in[12];
  st->latest_status = in[13];
}

/* The payload in three pieces, compressed one after the other into one
 * frame: the ids (their length is known only once encoded), the state
 * planes, and the months with the counters. */
typedef struct payload {
  unsigned char *ids, *planes, *tail;
  size_t ids_len, planes_len, tail_len;
  uint64_t len[SECTIONS];
  uint64_t raw; /* sum of len */
} payload;

static void payload_free(payload *pl) {
  free(pl->ids);
  free(pl->planes);
  free(pl->tail);
  pl->ids = pl->planes = pl->tail = NULL;
}

/* Encode the image's sections. 0; -1 when memory is short; -2 when an id is
 * not positive or not unique (a damaged map: refused, not written). */
static int encode_payload(const snapshot_image *img, payload *out) {
  size_t n = img->meta.persons, months = img->meta.months;
  memset(out, 0, sizeof *out);
  person_entry *sorted = sorted_entries(img->persons, n);
  size_t counter_bytes = months * (size_t)BLOCK_COUNTERS * 4;
  out->ids = malloc(n * 10 + 1);
  out->planes = malloc(n * STATE_PLANES + 1);
  out->tail = malloc(months * 2 + counter_bytes + 1);
  if (!sorted || !out->ids || !out->planes || !out->tail) {
    free(sorted);
    payload_free(out);
    return -1;
  }
  unsigned char *ids = out->ids, *planes = out->planes;
  size_t id_len = 0;
  uint64_t prev = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t id = (uint64_t)sorted[i].person_id;
    if (sorted[i].person_id <= 0 || (i && id == prev)) { /* no reader would take it */
      free(sorted);
      payload_free(out);
      return -2;
    }
    id_len += varint_put(ids + id_len, id - prev);
    prev = id;
    unsigned char b[STATE_PLANES];
    state_planes(&sorted[i].state, b);
    for (int q = 0; q < STATE_PLANES; q++)
      planes[(size_t)q * n + i] = b[q];
  }
  free(sorted);
  unsigned char *p = out->tail;
  for (size_t j = 0; j < months; j++)
    put16(p + 2 * j, img->month_index[j]);
  p += 2 * months;
  for (int b = 0; b < 4; b++)
    for (size_t c = 0; c < BLOCK_COUNTERS; c++)
      for (size_t j = 0; j < months; j++)
        *p++ = (unsigned char)(img->counters[j * BLOCK_COUNTERS + c] >> (8 * b));
  out->ids_len = id_len;
  out->planes_len = n * STATE_PLANES;
  out->tail_len = months * 2 + counter_bytes;
  out->len[SECTION_IDS] = id_len;
  for (int sct = SECTION_EMPLOYED; sct <= SECTION_RESERVED; sct++)
    out->len[sct] =
        (uint64_t)(section_first_plane[sct + 1] - section_first_plane[sct]) * (uint64_t)n;
  out->len[SECTION_MONTHS] = 2 * (uint64_t)months;
  out->len[SECTION_COUNTERS] = counter_bytes;
  out->raw = 0;
  for (int sct = 0; sct < SECTIONS; sct++)
    out->raw += out->len[sct];
  return 0;
}

/* ------------------------------------------------------------------ header */

typedef struct header {
  snapshot_meta meta;
  uint32_t header_bytes;
  uint16_t state_bytes, keys, columns, sections, extra_words, flags;
  uint64_t raw, compressed;
  uint64_t len[SECTIONS];
} header;

static uint32_t header_size_for(const char *shard_id) {
  return (uint32_t)(HEADER_FIXED + 2 + strlen(shard_id) + 4);
}

/* Serialise h (with h->header_bytes set) into out[header_bytes], CRC included. */
static void header_put(const header *h, unsigned char *out) {
  memset(out, 0, h->header_bytes);
  memcpy(out, snap_magic, 8);
  put32(out + 8, SNAPSHOT_FORMAT_VERSION);
  put32(out + 12, h->header_bytes);
  put64(out + 16, h->meta.fingerprint);
  put64(out + 24, (uint64_t)h->meta.position);
  put64(out + 32, h->meta.persons);
  put32(out + 40, h->meta.months);
  put16(out + 44, STATE_PLANES);
  put16(out + 46, ROLLUP_KEYS);
  put16(out + 48, ROLLUP_COLUMNS);
  put16(out + 50, SECTIONS);
  put16(out + 52, SNAPSHOT_EXTRA);
  put16(out + 54, 0);
  put64(out + 56, h->meta.applied);
  put64(out + 64, h->meta.corrected);
  put64(out + 72, h->meta.late);
  put64(out + 80, (uint64_t)h->meta.written_unix_ms);
  put64(out + 88, h->raw);
  put64(out + 96, h->compressed);
  for (int i = 0; i < SECTIONS; i++)
    put64(out + OFF_SECTIONS + 8 * i, h->len[i]);
  for (int i = 0; i < SNAPSHOT_EXTRA; i++)
    put64(out + OFF_EXTRA + 8 * i, h->meta.extra[i]);
  size_t id_len = strlen(h->meta.shard_id);
  put16(out + HEADER_FIXED, (uint16_t)id_len);
  memcpy(out + HEADER_FIXED + 2, h->meta.shard_id, id_len);
  put32(out + h->header_bytes - 4, crc_of(out, h->header_bytes - 4));
}

/* Parse and check the header of a file of `size` bytes whose first
 * min(size, HEADER_MAX) bytes are p. READ_OK, or a kind with a reason. */
static read_kind header_get(const unsigned char *p, size_t size, header *h, char *err,
                            size_t errlen) {
  memset(h, 0, sizeof *h);
  if (size < 16) {
    if (size >= 8 && memcmp(p, snap_magic, 8) != 0) {
      set_err(err, errlen, "not a regstream snapshot (bad magic)");
      return READ_CORRUPT;
    }
    set_err(err, errlen, "truncated: %zu bytes, shorter than a snapshot header", size);
    return READ_CORRUPT;
  }
  if (memcmp(p, snap_magic, 8) != 0) {
    set_err(err, errlen, "not a regstream snapshot (bad magic)");
    return READ_CORRUPT;
  }
  uint32_t version = get32(p + 8), hb = get32(p + 12);
  h->meta.version = version;
  h->header_bytes = hb;
  if (hb < 20 || hb > HEADER_MAX) {
    set_err(err, errlen, "corrupt header: header length %" PRIu32 " out of range", hb);
    return READ_CORRUPT;
  }
  if (size < hb) {
    set_err(err, errlen, "truncated: %zu bytes, the header alone needs %" PRIu32, size, hb);
    return READ_CORRUPT;
  }
  if (get32(p + hb - 4) != crc_of(p, hb - 4)) {
    set_err(err, errlen, "header checksum mismatch (the header is damaged)");
    return READ_CORRUPT;
  }
  if (version != SNAPSHOT_FORMAT_VERSION) {
    set_err(err, errlen, "format version %" PRIu32 ", this regstream reads version %d", version,
            SNAPSHOT_FORMAT_VERSION);
    return READ_REFUSED;
  }
  if (hb < HEADER_FIXED + 2 + 4) {
    set_err(err, errlen, "corrupt header: header length %" PRIu32 " too short", hb);
    return READ_CORRUPT;
  }
  h->meta.fingerprint = get64(p + 16);
  h->meta.position = (int64_t)get64(p + 24);
  h->meta.persons = get64(p + 32);
  h->meta.months = get32(p + 40);
  h->state_bytes = get16(p + 44);
  h->keys = get16(p + 46);
  h->columns = get16(p + 48);
  h->sections = get16(p + 50);
  h->extra_words = get16(p + 52);
  h->flags = get16(p + 54);
  h->meta.applied = get64(p + 56);
  h->meta.corrected = get64(p + 64);
  h->meta.late = get64(p + 72);
  h->meta.written_unix_ms = (int64_t)get64(p + 80);
  h->raw = get64(p + 88);
  h->compressed = get64(p + 96);
  if (h->state_bytes != STATE_PLANES || h->keys != ROLLUP_KEYS || h->columns != ROLLUP_COLUMNS ||
      h->sections != SECTIONS || h->extra_words != SNAPSHOT_EXTRA || h->flags != 0) {
    set_err(err, errlen,
            "written for another state layout (state %u bytes, rollup %u x %u, %u sections, %u "
            "extra words, flags %#x; this regstream: %u bytes, %u x %u, %u sections, %u extra "
            "words, flags 0)",
            h->state_bytes, h->keys, h->columns, h->sections, h->extra_words, h->flags,
            STATE_PLANES, ROLLUP_KEYS, ROLLUP_COLUMNS, SECTIONS, SNAPSHOT_EXTRA);
    return READ_REFUSED;
  }
  for (int i = 0; i < SECTIONS; i++)
    h->len[i] = get64(p + OFF_SECTIONS + 8 * i);
  for (int i = 0; i < SNAPSHOT_EXTRA; i++)
    h->meta.extra[i] = get64(p + OFF_EXTRA + 8 * i);
  uint16_t id_len = get16(p + HEADER_FIXED);
  if (id_len == 0 || id_len >= SNAPSHOT_SHARD_ID_MAX ||
      (uint64_t)HEADER_FIXED + 2 + id_len + 4 != hb) {
    set_err(err, errlen, "corrupt header: shard id length %u does not fit the header", id_len);
    return READ_CORRUPT;
  }
  memcpy(h->meta.shard_id, p + HEADER_FIXED + 2, id_len);
  h->meta.shard_id[id_len] = '\0';
  if (!snapshot_shard_id_valid(h->meta.shard_id)) {
    set_err(err, errlen, "corrupt header: shard id with characters a shard id cannot have");
    return READ_CORRUPT;
  }
  if (h->meta.position < 0) {
    set_err(err, errlen, "corrupt header: negative position");
    return READ_CORRUPT;
  }
  /* Lengths: everything but the ids section follows from n and M. */
  uint64_t n = h->meta.persons, months = h->meta.months;
  if (n > (UINT64_C(1) << 40) || months > PERIOD_MONTHS) {
    set_err(err, errlen, "corrupt header: %" PRIu64 " persons, %" PRIu64 " months", n, months);
    return READ_CORRUPT;
  }
  uint64_t sum = 0;
  for (int sct = 0; sct < SECTIONS; sct++) {
    uint64_t want;
    if (sct == SECTION_IDS)
      want = h->len[sct];
    else if (sct == SECTION_MONTHS)
      want = 2 * months;
    else if (sct == SECTION_COUNTERS)
      want = 4 * months * BLOCK_COUNTERS;
    else
      want = (uint64_t)(section_first_plane[sct + 1] - section_first_plane[sct]) * n;
    if (h->len[sct] != want || (sct == SECTION_IDS && (want < n || want > 10 * n))) {
      set_err(err, errlen,
              "corrupt header: section %s is %" PRIu64 " bytes, %" PRIu64 " persons and %" PRIu64
              " months need %s%" PRIu64,
              section_names[sct], h->len[sct], n, months, sct == SECTION_IDS ? "at least " : "",
              sct == SECTION_IDS ? n : want);
      return READ_CORRUPT;
    }
    sum += h->len[sct];
  }
  if (sum != h->raw) {
    set_err(err, errlen, "corrupt header: sections add up to %" PRIu64 " bytes, not %" PRIu64, sum,
            h->raw);
    return READ_CORRUPT;
  }
  if (h->compressed > UINT64_MAX / 2 || (uint64_t)size != hb + h->compressed + 4) {
    if ((uint64_t)size < hb + h->compressed + 4)
      set_err(err, errlen, "truncated: %zu bytes, the header says %" PRIu64, size,
              hb + h->compressed + 4);
    else
      set_err(err, errlen, "%zu bytes, the header says %" PRIu64 " (trailing bytes)", size,
              hb + h->compressed + 4);
    return READ_CORRUPT;
  }
  return READ_OK;
}

/* ------------------------------------------------------------------ writing */

/* Compress the payload as one zstd frame into fd; *crc and *written advance. */
static int compress_to(int fd, const payload *pl, uint32_t *crc, uint64_t *written, char *err,
                       size_t errlen) {
  ZSTD_CCtx *cctx = ZSTD_createCCtx();
  size_t out_cap = 1 << 20;
  unsigned char *out = malloc(out_cap);
  int rc = -1;
  char eb[128];
  if (!cctx || !out) {
    set_err(err, errlen, "out of memory for compression");
    goto done;
  }
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, ZSTD_LEVEL);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  if (pl->raw >= ZSTD_MT_MIN_BYTES)
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, ZSTD_WORKERS); /* an error without MT: fine */
  ZSTD_CCtx_setPledgedSrcSize(cctx, pl->raw);
  const unsigned char *piece[3] = {pl->ids, pl->planes, pl->tail};
  size_t piece_len[3] = {pl->ids_len, pl->planes_len, pl->tail_len};
  for (int k = 0; k < 3; k++) {
    ZSTD_EndDirective mode = k == 2 ? ZSTD_e_end : ZSTD_e_continue;
    ZSTD_inBuffer in = {piece[k], piece_len[k], 0};
    for (;;) {
      ZSTD_outBuffer ob = {out, out_cap, 0};
      size_t left = ZSTD_compressStream2(cctx, &ob, &in, mode);
      if (ZSTD_isError(left)) {
        set_err(err, errlen, "zstd: %s", ZSTD_getErrorName(left));
        goto done;
      }
      if (ob.pos) {
        if (fs_write_all(fd, out, ob.pos) < 0) {
          set_err(err, errlen, "write: %s", errno_text(errno, eb, sizeof eb));
          goto done;
        }
        *crc = (uint32_t)crc32_z(*crc, out, ob.pos);
        *written += ob.pos;
      }
      if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
        break;
    }
  }
  rc = 0;
done:
  ZSTD_freeCCtx(cctx);
  free(out);
  return rc;
}

int snapshot_image_encode(const snapshot_image *img, int fd, uint64_t *bytes, char *err,
                          size_t errlen) {
  const snapshot_meta *m = &img->meta;
  char eb[128];
  if (!snapshot_shard_id_valid(m->shard_id)) {
    set_err(err, errlen,
            "snapshot: shard id '%.*s' is not a file name prefix (letters, digits, "
            "'.', '_', '-'; not starting with '.')",
            SNAPSHOT_SHARD_ID_MAX - 1, m->shard_id);
    return -1;
  }
  if (m->position < 0) {
    set_err(err, errlen, "snapshot of %s: negative position %lld", m->shard_id,
            (long long)m->position);
    return -1;
  }
  payload pl;
  int encoded = encode_payload(img, &pl);
  if (encoded < 0) {
    if (encoded == -2)
      set_err(err, errlen, "snapshot of %s: a person id below 1 or twice in the map", m->shard_id);
    else
      set_err(err, errlen, "snapshot of %s: out of memory encoding %" PRIu64 " persons",
              m->shard_id, m->persons);
    return -1;
  }
  header h;
  memset(&h, 0, sizeof h);
  h.meta = *m;
  h.header_bytes = header_size_for(m->shard_id);
  h.raw = pl.raw;
  memcpy(h.len, pl.len, sizeof h.len);
  unsigned char hdr[HEADER_MAX];
  uint32_t payload_crc = (uint32_t)crc32_z(0L, Z_NULL, 0);
  uint64_t compressed = 0;
  memset(hdr, 0, sizeof hdr);
  /* The header goes first as zeros and is written over at the end, when
   * the compressed size and the checksums are known. */
  if (fs_write_all(fd, hdr, h.header_bytes) < 0) {
    set_err(err, errlen, "write: %s", errno_text(errno, eb, sizeof eb));
    payload_free(&pl);
    return -1;
  }
  int rc = compress_to(fd, &pl, &payload_crc, &compressed, err, errlen);
  payload_free(&pl);
  if (rc < 0)
    return -1;
  h.compressed = compressed;
  header_put(&h, hdr);
  uint32_t file_crc =
      (uint32_t)crc32_combine(crc_of(hdr, h.header_bytes), payload_crc, (z_off_t)compressed);
  unsigned char trailer[4];
  put32(trailer, file_crc);
  if (fs_write_all(fd, trailer, 4) < 0 || fs_pwrite_all(fd, hdr, h.header_bytes, 0) < 0) {
    set_err(err, errlen, "write: %s", errno_text(errno, eb, sizeof eb));
    return -1;
  }
  *bytes = h.header_bytes + compressed + 4;
  return 0;
}

/* ------------------------------------------------------------------ reading */

/* The whole file in memory. READ_OK, or READ_CORRUPT (unreadable) /
 * READ_FAILED (memory) with a reason. */
static read_kind slurp(const char *path, unsigned char **data, size_t *size, char *err,
                       size_t errlen) {
  char eb[128];
  *data = NULL;
  *size = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    set_err(err, errlen, "cannot open: %s", errno_text(errno, eb, sizeof eb));
    return READ_CORRUPT;
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    set_err(err, errlen, "not a regular file");
    close(fd);
    return READ_CORRUPT;
  }
  size_t cap = (size_t)st.st_size, len = 0;
  unsigned char *buf = malloc(cap + 1);
  if (!buf) {
    close(fd);
    set_err(err, errlen, "out of memory reading %zu bytes", cap);
    return READ_FAILED;
  }
  for (;;) {
    if (len == cap) { /* grew since fstat: read on */
      unsigned char probe;
      ssize_t r = read(fd, &probe, 1);
      if (r == 0)
        break;
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        goto io_error;
      unsigned char *nb = realloc(buf, cap * 2 + 2);
      if (!nb) {
        free(buf);
        close(fd);
        set_err(err, errlen, "out of memory reading the file");
        return READ_FAILED;
      }
      buf = nb;
      buf[len++] = probe;
      cap = cap * 2 + 1;
      continue;
    }
    ssize_t r = read(fd, buf + len, cap - len);
    if (r == 0)
      break;
    if (r < 0) {
      if (errno == EINTR)
        continue;
      goto io_error;
    }
    len += (size_t)r;
  }
  close(fd);
  *data = buf;
  *size = len;
  return READ_OK;
io_error:
  set_err(err, errlen, "read: %s", errno_text(errno, eb, sizeof eb));
  free(buf);
  close(fd);
  return READ_CORRUPT;
}

/* Decompress the payload frame into a buffer of exactly h->raw bytes. The
 * buffer grows with the output, so a lying header cannot make it allocate
 * more than about twice what the frame really holds. */
static read_kind decompress(const unsigned char *src, const header *h, unsigned char **out,
                            char *err, size_t errlen) {
  *out = NULL;
  unsigned long long content = ZSTD_getFrameContentSize(src, h->compressed);
  if (content == ZSTD_CONTENTSIZE_ERROR) {
    set_err(err, errlen, "payload is not a zstd frame");
    return READ_CORRUPT;
  }
  if (content != ZSTD_CONTENTSIZE_UNKNOWN && content != h->raw) {
    set_err(err, errlen, "payload frame holds %llu bytes, the header says %" PRIu64, content,
            h->raw);
    return READ_CORRUPT;
  }
  if (h->raw > SIZE_MAX / 2) {
    set_err(err, errlen, "payload of %" PRIu64 " bytes does not fit in memory", h->raw);
    return READ_CORRUPT;
  }
  ZSTD_DCtx *dctx = ZSTD_createDCtx();
  size_t cap = h->raw < (1 << 20) ? (size_t)h->raw : (size_t)1 << 20;
  unsigned char *buf = malloc(cap ? cap : 1);
  read_kind kind = READ_FAILED;
  if (!dctx || !buf) {
    set_err(err, errlen, "out of memory for decompression");
    goto fail;
  }
  ZSTD_inBuffer in = {src, (size_t)h->compressed, 0};
  ZSTD_outBuffer ob = {buf, cap, 0};
  for (;;) {
    size_t r = ZSTD_decompressStream(dctx, &ob, &in);
    if (ZSTD_isError(r)) {
      set_err(err, errlen, "payload: zstd: %s", ZSTD_getErrorName(r));
      kind = READ_CORRUPT;
      goto fail;
    }
    if (r == 0) /* frame complete */
      break;
    if (ob.pos == ob.size) {
      if (ob.size == h->raw) {
        /* Full, frame not done: is there more output than the header says? */
        unsigned char probe;
        ZSTD_outBuffer pb = {&probe, 1, 0};
        r = ZSTD_decompressStream(dctx, &pb, &in);
        if (ZSTD_isError(r) || pb.pos) {
          set_err(err, errlen, "payload: %s",
                  ZSTD_isError(r) ? ZSTD_getErrorName(r) : "more bytes than the header says");
          kind = READ_CORRUPT;
          goto fail;
        }
        if (r == 0)
          break;
        if (in.pos == in.size) {
          set_err(err, errlen, "payload: zstd frame truncated");
          kind = READ_CORRUPT;
          goto fail;
        }
        continue;
      }
      size_t ncap = ob.size * 2 < h->raw ? ob.size * 2 : (size_t)h->raw;
      unsigned char *nb = realloc(buf, ncap);
      if (!nb) {
        set_err(err, errlen, "out of memory for a %" PRIu64 "-byte payload", h->raw);
        goto fail;
      }
      buf = nb;
      ob.dst = buf;
      ob.size = ncap;
    } else if (in.pos == in.size) {
      set_err(err, errlen, "payload: zstd frame truncated");
      kind = READ_CORRUPT;
      goto fail;
    }
  }
  if (in.pos != in.size || ob.pos != h->raw) {
    set_err(err, errlen, "payload: %zu bytes after its zstd frame, %zu decoded of %" PRIu64,
            in.size - in.pos, ob.pos, h->raw);
    kind = READ_CORRUPT;
    goto fail;
  }
  ZSTD_freeDCtx(dctx);
  *out = buf;
  return READ_OK;
fail:
  ZSTD_freeDCtx(dctx);
  free(buf);
  return kind;
}

/* The insertion buckets of decode_payload over a map's two tables: the
 * compact table's first, then the wide table's. */
typedef struct bucketing {
  size_t mask, wide_mask, narrow_buckets;
  int shift, wide_shift;
} bucketing;

static int bucket_shift(size_t mask) {
  int lg = __builtin_ctzll((unsigned long long)mask + 1);
  return lg > 11 ? lg - 11 : 0;
}

static bucketing bucketing_of(const personmap *pm) {
  bucketing b = {pm->mask, pm->wide_mask, 0, bucket_shift(pm->mask), bucket_shift(pm->wide_mask)};
  b.narrow_buckets = (pm->mask + 1) >> b.shift;
  return b;
}

/* The bucket of id's home slot. */
static size_t bucket_of(const bucketing *b, int64_t id) {
  uint64_t h = personmap_hash(id);
  return personmap_narrow(id) ? (h & b->mask) >> b->shift
                              : b->narrow_buckets + ((h & b->wide_mask) >> b->wide_shift);
}

/* Decode a decompressed payload; with pm and r non-NULL fill them (pm
 * zeroed, not initialised: it is sized here; r empty). READ_OK, or
 * READ_CORRUPT / READ_FAILED with a reason. */
static read_kind decode_payload(const header *h, const unsigned char *data, personmap *pm,
                                rollup *r, char *err, size_t errlen) {
  size_t n = (size_t)h->meta.persons, months = h->meta.months;
  const unsigned char *ids = data, *ids_end = data + h->len[SECTION_IDS];
  const unsigned char *planes = ids_end;
  const unsigned char *month_list = planes + (size_t)STATE_PLANES * n;
  const unsigned char *counters = month_list + 2 * months;

  /* Ids: n varints, strictly increasing positive int64, exactly filling the section. */
  int64_t *idv = malloc((n ? n : 1) * sizeof *idv);
  if (!idv) {
    set_err(err, errlen, "out of memory for %zu person ids", n);
    return READ_FAILED;
  }
  const unsigned char *p = ids;
  uint64_t prev = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t v = 0;
    int shift = 0;
    for (;;) {
      if (p == ids_end || shift > 63) {
        set_err(err, errlen, "ids: person %zu: %s", i,
                p == ids_end ? "section ends inside a number" : "number too long");
        free(idv);
        return READ_CORRUPT;
      }
      unsigned char c = *p++;
      if (shift == 63 && c > 1) {
        set_err(err, errlen, "ids: person %zu: number too long", i);
        free(idv);
        return READ_CORRUPT;
      }
      v |= (uint64_t)(c & 0x7f) << shift;
      shift += 7;
      if (!(c & 0x80))
        break;
    }
    if (v == 0 || v > (uint64_t)INT64_MAX - prev) {
      set_err(err, errlen, "ids: person %zu: %s", i,
              v == 0 ? "id not above the previous one" : "id beyond 2^63");
      free(idv);
      return READ_CORRUPT;
    }
    prev += v;
    idv[i] = (int64_t)prev;
  }
  if (p != ids_end) {
    set_err(err, errlen, "ids: %zu bytes left after %zu persons", (size_t)(ids_end - p), n);
    free(idv);
    return READ_CORRUPT;
  }
  int last = -1;
  for (size_t j = 0; j < months; j++) {
    int m = get16(month_list + 2 * j);
    if (m <= last || m >= PERIOD_MONTHS) {
      set_err(err, errlen, "months: month index %d after %d (ascending, below %d)", m, last,
              PERIOD_MONTHS);
      free(idv);
      return READ_CORRUPT;
    }
    last = m;
  }

  /* With a map to fill, it is sized once for the persons of each of its
   * tables, and the persons are inserted in the order of their home slots,
   * by coarse buckets (at most 2048 a table, 2^shift slots each: 64 KB of a
   * 2^23-slot compact table): each bucket's inserts then stay in cache
   * instead of hopping over the whole table. Any order gives the same map;
   * this one is about twice as fast for millions. The states are checked on
   * the way, all before the map is touched. */
  size_t *next = NULL, buckets = 0;
  person_entry *order = NULL;
  bucketing bk = {0};
  if (pm) {
    size_t wide = 0;
    for (size_t i = 0; i < n; i++)
      wide += !personmap_narrow(idv[i]);
    if (personmap_init(pm, n - wide, wide) < 0) {
      free(idv);
      set_err(err, errlen, "out of memory for %zu persons", n);
      return READ_FAILED;
    }
    bk = bucketing_of(pm);
    buckets = bk.narrow_buckets + ((pm->wide_mask + 1) >> bk.wide_shift);
    next = calloc(buckets + 1, sizeof *next);
    order = malloc((n ? n : 1) * sizeof *order);
    if (!next || !order) {
      free(next);
      free(order);
      free(idv);
      set_err(err, errlen, "out of memory for %zu persons", n);
      return READ_FAILED;
    }
    for (size_t i = 0; i < n; i++)
      next[bucket_of(&bk, idv[i]) + 1]++;
    for (size_t k = 0; k < buckets; k++)
      next[k + 1] += next[k];
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char b[STATE_PLANES];
    for (int q = 0; q < STATE_PLANES; q++)
      b[q] = planes[(size_t)q * n + i];
    if (!planes_valid(b)) {
      set_err(err, errlen,
              "person %" PRId64 ": state out of range (month %u, municipality %u, entry %#x, "
              "goals %#x, status %u, reserved %u)",
              idv[i], (unsigned)get16(b + 8), b[10], b[11], b[12], b[13], (unsigned)get16(b + 14));
      free(next);
      free(order);
      free(idv);
      return READ_CORRUPT;
    }
    if (pm) {
      person_entry *o = &order[next[bucket_of(&bk, idv[i])]++];
      o->person_id = idv[i];
      state_from_planes(&o->state, b);
    }
  }
  if (!pm) {
    free(idv);
    return READ_OK;
  }
  free(next);
  free(idv);
  for (size_t i = 0; i < n; i++) {
    int created;
    person_state *st =
        personmap_upsert(pm, order[i].person_id, personmap_hash(order[i].person_id), &created);
    if (!st) {
      set_err(err, errlen, "out of memory for %zu persons", n);
      free(order);
      return READ_FAILED;
    }
    *st = order[i].state;
  }
  free(order);
  size_t kc = (size_t)BLOCK_COUNTERS * months;
  for (size_t j = 0; j < months; j++) {
    uint32_t *block = calloc(BLOCK_COUNTERS, sizeof *block);
    if (!block) {
      set_err(err, errlen, "out of memory for rollup counters");
      return READ_FAILED;
    }
    for (size_t c = 0; c < BLOCK_COUNTERS; c++) {
      size_t at = c * months + j;
      block[c] = (uint32_t)counters[at] | (uint32_t)counters[kc + at] << 8 |
                 (uint32_t)counters[2 * kc + at] << 16 | (uint32_t)counters[3 * kc + at] << 24;
    }
    r->months[get16(month_list + 2 * j)] = block;
  }
  return READ_OK;
}

typedef struct read_info {
  header h;
  size_t file_bytes;
  int file_read; /* file_bytes is the file's size */
  int header_ok; /* h.meta holds a checked header */
} read_info;

/* Read, verify and (with s) load one file. With want non-NULL, a file that
 * holds another shard id or position than want's is damaged; with
 * fingerprint non-NULL a different fingerprint is refused; both before the
 * payload is decoded. */
static read_kind read_snapshot(const char *path, const unsigned char *mem, size_t mem_size,
                               const snapshot_meta *want, const uint64_t *fingerprint, shard *s,
                               read_info *info, unsigned char **payload_out, char *err,
                               size_t errlen) {
  memset(info, 0, sizeof *info);
  if (payload_out)
    *payload_out = NULL;
  unsigned char *data = NULL;
  size_t size = mem_size;
  read_kind kind = READ_OK;
  if (path)
    kind = slurp(path, &data, &size, err, errlen);
  if (kind != READ_OK)
    return kind;
  const unsigned char *bytes = path ? data : mem; /* data: ours to free (NULL from memory) */
  info->file_bytes = size;
  info->file_read = 1;
  header *h = &info->h;
  kind = header_get(bytes, size, h, err, errlen);
  if (kind != READ_OK) {
    free(data);
    return kind;
  }
  info->header_ok = 1;
  if (want &&
      (strcmp(h->meta.shard_id, want->shard_id) != 0 || h->meta.position != want->position)) {
    /* Copied or renamed by hand? It is not what its name says: not trusted. */
    set_err(err, errlen, "it holds shard %s at position %lld, not what its name says",
            h->meta.shard_id, (long long)h->meta.position);
    free(data);
    return READ_CORRUPT;
  }
  if (fingerprint && h->meta.fingerprint != *fingerprint) {
    set_err(err, errlen,
            "written with another configuration (fingerprint %016" PRIx64 ", this run %016" PRIx64
            ")",
            h->meta.fingerprint, *fingerprint);
    free(data);
    return READ_REFUSED;
  }
  size_t hb = h->header_bytes, cb = (size_t)h->compressed;
  uint32_t crc = crc_of(bytes, hb + cb);
  if (get32(bytes + hb + cb) != crc) {
    set_err(err, errlen, "checksum mismatch (the file is damaged)");
    free(data);
    return READ_CORRUPT;
  }
  unsigned char *raw;
  kind = decompress(bytes + hb, h, &raw, err, errlen);
  free(data);
  if (kind != READ_OK)
    return kind;

  personmap pm;
  rollup r;
  rollup_init(&r);
  memset(&pm, 0, sizeof pm);
  kind = decode_payload(h, raw, s ? &pm : NULL, s ? &r : NULL, err, errlen);
  if (payload_out && kind == READ_OK)
    *payload_out = raw;
  else
    free(raw);
  if (kind != READ_OK) {
    personmap_free(&pm);
    rollup_free(&r);
    return kind;
  }
  if (s) {
    personmap_free(&s->persons);
    rollup_free(&s->counts);
    s->persons = pm;
    s->counts = r;
    s->applied = h->meta.applied;
    s->corrected = h->meta.corrected;
    s->late = h->meta.late;
  }
  return READ_OK;
}

int snapshot_read(const char *path, shard *s, snapshot_meta *meta, char *err, size_t errlen) {
  read_info info;
  char why[384];
  read_kind kind = read_snapshot(path, NULL, 0, NULL, NULL, s, &info, NULL, why, sizeof why);
  if (kind != READ_OK) {
    set_err(err, errlen, "snapshot %s: %s", path, why);
    return -1;
  }
  if (meta)
    *meta = info.h.meta;
  return 0;
}

/* A checked read from path or, when path is NULL, from data[0..size). */
static snapshot_read_kind read_checked(const char *path, const unsigned char *data, size_t size,
                                       const char *shard_id, int64_t position, uint64_t fingerprint,
                                       shard *s, snapshot_meta *meta, char *err, size_t errlen) {
  read_info info;
  snapshot_meta want;
  memset(&want, 0, sizeof want);
  snprintf(want.shard_id, sizeof want.shard_id, "%s", shard_id);
  want.position = position;
  read_kind kind =
      read_snapshot(path, data, size, &want, &fingerprint, s, &info, NULL, err, errlen);
  if (kind == READ_OK && meta)
    *meta = info.h.meta;
  return kind;
}

snapshot_read_kind snapshot_read_checked(const char *path, const char *shard_id, int64_t position,
                                         uint64_t fingerprint, shard *s, snapshot_meta *meta,
                                         char *err, size_t errlen) {
  return read_checked(path, NULL, 0, shard_id, position, fingerprint, s, meta, err, errlen);
}

snapshot_read_kind snapshot_read_checked_mem(const unsigned char *data, size_t size,
                                             const char *shard_id, int64_t position,
                                             uint64_t fingerprint, shard *s, snapshot_meta *meta,
                                             char *err, size_t errlen) {
  return read_checked(NULL, data, size, shard_id, position, fingerprint, s, meta, err, errlen);
}

/* ------------------------------------------------------------------ inspect */

static void print_time(FILE *out, int64_t ms) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  char buf[64];
  if (gmtime_r(&t, &tm) && strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm))
    fprintf(out, "%s.%03dZ", buf, (int)(ms % 1000 < 0 ? 0 : ms % 1000));
  else
    fprintf(out, "?");
}

int snapshot_inspect(const char *path, FILE *out, char *err, size_t errlen) {
  read_info info;
  char why[384];
  unsigned char *raw = NULL;
  double t0 = clock_seconds();
  read_kind kind = read_snapshot(path, NULL, 0, NULL, NULL, NULL, &info, &raw, why, sizeof why);
  double secs = clock_seconds() - t0;
  const header *h = &info.h;
  const snapshot_meta *m = &h->meta;
  if (info.file_read)
    fprintf(out, "file         %s (%zu bytes)\n", path, info.file_bytes);
  else
    fprintf(out, "file         %s\n", path);
  if (info.header_ok) {
    fprintf(out, "format       version %" PRIu32 ", header %" PRIu32 " bytes\n", m->version,
            h->header_bytes);
    fprintf(out, "shard        %s\n", m->shard_id);
    fprintf(out, "position     %lld\n", (long long)m->position);
    fprintf(out, "fingerprint  %016" PRIx64 "\n", m->fingerprint);
    fprintf(out, "captured     ");
    print_time(out, m->written_unix_ms);
    fprintf(out, " (unix ms %lld)\n", (long long)m->written_unix_ms);
    fprintf(out, "persons      %" PRIu64 "\n", m->persons);
    fprintf(out, "months       %" PRIu32, m->months);
    if (raw && m->months) {
      const unsigned char *ml = raw + h->raw - h->len[SECTION_COUNTERS] - h->len[SECTION_MONTHS];
      fprintf(out, " (%d..%d)", (int)period_from_month(get16(ml)),
              (int)period_from_month(get16(ml + 2 * (m->months - 1))));
    }
    fprintf(out, "\n");
    fprintf(out, "records      %" PRIu64 " applied, %" PRIu64 " corrected, %" PRIu64 " late\n",
            m->applied, m->corrected, m->late);
    fprintf(out, "extra       ");
    for (int i = 0; i < SNAPSHOT_EXTRA; i++)
      fprintf(out, " %" PRIu64, m->extra[i]);
    fprintf(out, "\n");
    fprintf(out, "payload      %" PRIu64 " bytes, zstd %" PRIu64 " bytes (%.1fx)", h->raw,
            h->compressed, h->compressed ? (double)h->raw / (double)h->compressed : 0.0);
    if (m->persons)
      fprintf(out, ", %.2f file bytes per person", (double)info.file_bytes / (double)m->persons);
    fprintf(out, "\n");
    fprintf(out, "sections     raw bytes%s\n", raw ? " / alone with zstd at the same level" : "");
    const unsigned char *sp = raw;
    for (int sct = 0; sct < SECTIONS; sct++) {
      fprintf(out, "  %-20s %12" PRIu64, section_names[sct], h->len[sct]);
      if (raw) {
        size_t bound = ZSTD_compressBound((size_t)h->len[sct]);
        void *buf = malloc(bound ? bound : 1);
        if (buf) {
          size_t c = ZSTD_compress(buf, bound, sp, (size_t)h->len[sct], ZSTD_LEVEL);
          if (!ZSTD_isError(c)) {
            fprintf(out, " %12zu", c);
            if (m->persons && sct <= SECTION_RESERVED)
              fprintf(out, "  %.3f B/person", (double)c / (double)m->persons);
          }
          free(buf);
        }
        sp += h->len[sct];
      }
      fprintf(out, "\n");
    }
  }
  free(raw);
  if (kind != READ_OK) {
    fprintf(out, "valid        no: %s\n", why);
    set_err(err, errlen, "snapshot %s: %s", path, why);
    return -1;
  }
  fprintf(out, "valid        yes (verified and decoded in %.3f s)\n", secs);
  return 0;
}
