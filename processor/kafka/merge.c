/* merge.c — see merge.h: the latest partial per (row, input partition),
 * marks per (partials partition, input partition), totals summed and
 * compared with what was last published. Owns no Kafka client. */
#include "kafka/merge.h"

#include <stdlib.h>
#include <string.h>

#include "core/municipality.h"
#include "core/period.h"
#include "core/rollup.h"

typedef struct merge_source {
  int32_t partition;
  int32_t q; /* the partials partition it was last read from */
  int64_t counts[ROLLUP_COLUMNS];
} merge_source;

typedef struct merge_row {
  merge_source *sources;
  int count, capacity;
  int dirty, ever_sent;
  int64_t sent[ROLLUP_COLUMNS];
} merge_row;

struct merge_state {
  uint64_t fingerprint;
  merge_row *months[PERIOD_MONTHS]; /* ROLLUP_KEYS rows each, or NULL */
  /* marks[q][p]: the latest progress mark of input partition p read in
   * partials partition q (-1 none); NULL until q's first mark. */
  int64_t *marks[MERGE_MAX_PARTIALS];
  /* Per partials partition: held, and its catch-up (the end it had when
   * assigned, and whether it was read that far). */
  struct {
    uint8_t owned, have_target, caught_up;
    int64_t target;
  } part[MERGE_MAX_PARTIALS];
  int assigned; /* an assignment was received */
};

merge_state *merge_new(uint64_t fingerprint) {
  merge_state *ms = calloc(1, sizeof *ms);
  if (ms)
    ms->fingerprint = fingerprint;
  return ms;
}

void merge_reset(merge_state *ms) {
  for (int m = 0; m < PERIOD_MONTHS; m++) {
    if (!ms->months[m])
      continue;
    for (int k = 0; k < ROLLUP_KEYS; k++)
      free(ms->months[m][k].sources);
    free(ms->months[m]);
    ms->months[m] = NULL;
  }
  for (int q = 0; q < MERGE_MAX_PARTIALS; q++) {
    free(ms->marks[q]);
    ms->marks[q] = NULL;
  }
  memset(ms->part, 0, sizeof ms->part);
  ms->assigned = 0;
}

void merge_forget(merge_state *ms, int32_t q) {
  if (q < 0 || q >= MERGE_MAX_PARTIALS)
    return;
  for (int m = 0; m < PERIOD_MONTHS; m++) {
    if (!ms->months[m])
      continue;
    for (int k = 0; k < ROLLUP_KEYS; k++) {
      merge_row *r = &ms->months[m][k];
      int kept = 0;
      for (int i = 0; i < r->count; i++)
        if (r->sources[i].q != q)
          r->sources[kept++] = r->sources[i];
      if (kept == r->count)
        continue;
      r->count = kept;
      if (kept) { /* sources from other partitions (their count changed): a new sum */
        r->dirty = 1;
      } else { /* nothing of it is held: its next holder publishes it */
        free(r->sources);
        memset(r, 0, sizeof *r);
      }
    }
  }
  free(ms->marks[q]);
  ms->marks[q] = NULL;
  memset(&ms->part[q], 0, sizeof ms->part[q]);
}

void merge_free(merge_state *ms) {
  if (!ms)
    return;
  merge_reset(ms);
  free(ms);
}

void merge_own(merge_state *ms, int32_t q) {
  if (q < 0 || q >= MERGE_MAX_PARTIALS || ms->part[q].owned)
    return;
  memset(&ms->part[q], 0, sizeof ms->part[q]);
  ms->part[q].owned = 1;
}

int merge_owns(const merge_state *ms, int32_t q) {
  return q >= 0 && q < MERGE_MAX_PARTIALS && ms->part[q].owned;
}

void merge_set_assigned(merge_state *ms) {
  ms->assigned = 1;
}

int merge_assigned(const merge_state *ms) {
  return ms->assigned;
}

int merge_owned(const merge_state *ms, int32_t parts[MERGE_MAX_PARTIALS]) {
  int n = 0;
  for (int q = 0; q < MERGE_MAX_PARTIALS; q++)
    if (ms->part[q].owned)
      parts[n++] = q;
  return n;
}

int merge_untargeted(const merge_state *ms, int32_t parts[MERGE_MAX_PARTIALS]) {
  int n = 0;
  for (int q = 0; q < MERGE_MAX_PARTIALS; q++)
    if (ms->part[q].owned && !ms->part[q].have_target)
      parts[n++] = q;
  return n;
}

int merge_partition_caught_up(const merge_state *ms, int32_t q) {
  return merge_owns(ms, q) && ms->part[q].caught_up;
}

int merge_behind(const merge_state *ms, int32_t parts[MERGE_MAX_PARTIALS]) {
  int n = 0;
  for (int q = 0; q < MERGE_MAX_PARTIALS; q++)
    if (ms->part[q].owned && !ms->part[q].caught_up)
      parts[n++] = q;
  return n;
}

/* The mark slot of input partition p in partials partition q, created (as
 * "none") on first use; NULL when memory is short. */
static int64_t *mark_slot(merge_state *ms, int32_t q, int32_t p) {
  int64_t **row = &ms->marks[q];
  if (!*row) {
    if (!(*row = malloc(WIRE_MAX_INPUTS * sizeof **row)))
      return NULL;
    for (int i = 0; i < WIRE_MAX_INPUTS; i++)
      (*row)[i] = -1;
  }
  return &(*row)[p];
}

int64_t merge_mark(const merge_state *ms, int32_t q, int32_t p) {
  if (q < 0 || q >= MERGE_MAX_PARTIALS || p < 0 || p >= WIRE_MAX_INPUTS || !ms->marks[q])
    return -1;
  return ms->marks[q][p];
}

/* The partial of row r from input partition source, made on first use. */
static merge_source *row_source(merge_row *r, int32_t source) {
  for (int i = 0; i < r->count; i++)
    if (r->sources[i].partition == source)
      return &r->sources[i];
  if (r->count == r->capacity) {
    int cap = r->capacity ? r->capacity * 2 : 4;
    merge_source *grown = realloc(r->sources, (size_t)cap * sizeof *grown);
    if (!grown)
      return NULL;
    r->sources = grown;
    r->capacity = cap;
  }
  merge_source *s = &r->sources[r->count++];
  s->partition = source;
  return s;
}

merge_kind merge_apply(merge_state *ms, int32_t q, const void *key, size_t klen, const void *value,
                       size_t vlen) {
  int32_t source, period, municipality;
  visitation v;
  if (q < 0 || q >= MERGE_MAX_PARTIALS)
    return MERGE_MALFORMED;
  wire_kind kind = wire_parse_key(key, klen, &source, &period, &municipality, &v);
  if (kind == WIRE_BAD)
    return MERGE_MALFORMED;
  if (kind == WIRE_MARK) {
    int64_t covered;
    uint64_t fingerprint;
    int64_t *slot = mark_slot(ms, q, source);
    if (!slot || wire_mark_decode(value, vlen, &covered, &fingerprint) < 0)
      return MERGE_MALFORMED;
    int foreign = fingerprint != ms->fingerprint; /* a previous run with other rule options */
    *slot = foreign ? -1 : covered;
    return foreign ? MERGE_FOREIGN : MERGE_MARK;
  }
  rollup_msg row;
  if (!value || rollup_codec_decode(value, vlen, &row) < 0)
    return MERGE_MALFORMED;
  /* A partial after the last mark of its input partition: that mark no
   * longer covers what is held. */
  int64_t *mark = mark_slot(ms, q, source);
  if (!mark)
    return MERGE_MALFORMED;
  *mark = -1;
  int month = period_to_month(period);
  if (!ms->months[month] && !(ms->months[month] = calloc(ROLLUP_KEYS, sizeof(merge_row))))
    return MERGE_MALFORMED;
  merge_row *r = &ms->months[month][municipality_index(municipality) * VISITATION_COUNT + (int)v];
  merge_source *s = row_source(r, source);
  if (!s)
    return MERGE_MALFORMED;
  s->q = q;
  memcpy(s->counts, row.counts, sizeof s->counts);
  r->dirty = 1;
  return MERGE_PARTIAL;
}

/* A row with a source in a partition held but not caught up yet: its sum
 * may miss sources still to be read. */
static int waiting(const merge_state *ms, const merge_row *r) {
  for (int i = 0; i < r->count; i++)
    if (ms->part[r->sources[i].q].owned && !ms->part[r->sources[i].q].caught_up)
      return 1;
  return 0;
}

uint64_t merge_publish(merge_state *ms, merge_emit emit, void *ctx) {
  uint64_t emitted = 0;
  for (int month = 0; month < PERIOD_MONTHS; month++) {
    if (!ms->months[month])
      continue;
    for (int k = 0; k < ROLLUP_KEYS; k++) {
      merge_row *r = &ms->months[month][k];
      if (!r->dirty || waiting(ms, r))
        continue;
      r->dirty = 0;
      rollup_msg total = {period_from_month(month),
                          municipality_codes[k / VISITATION_COUNT],
                          (visitation)(k % VISITATION_COUNT),
                          {0}};
      for (int i = 0; i < r->count; i++)
        for (int c = 0; c < ROLLUP_COLUMNS; c++)
          total.counts[c] += r->sources[i].counts[c];
      if (r->ever_sent && !memcmp(total.counts, r->sent, sizeof r->sent))
        continue;
      memcpy(r->sent, total.counts, sizeof r->sent);
      r->ever_sent = 1;
      char key[ROLLUP_KEY_MAX];
      size_t klen = rollup_key_format(total.period, total.municipality, total.visitation, key);
      uint8_t value[ROLLUP_ENCODED_MAX];
      size_t vlen = total.counts[ROLLUP_MEMBERS] ? rollup_codec_encode(&total, value) : 0;
      emit(ctx, key, klen, vlen ? value : NULL, vlen);
      emitted++;
    }
  }
  return emitted;
}

void merge_set_targets(merge_state *ms, int n, const int32_t *parts, const int64_t *ends) {
  for (int i = 0; i < n; i++) {
    int32_t q = parts[i];
    if (!merge_owns(ms, q) || ms->part[q].have_target)
      continue;
    ms->part[q].target = ends[i];
    ms->part[q].have_target = 1;
  }
}

int merge_check_caught_up(merge_state *ms, int n, const int32_t *parts, const int64_t *positions) {
  for (int i = 0; ms->assigned && i < n; i++) {
    int32_t q = parts[i];
    if (!merge_owns(ms, q) || !ms->part[q].have_target || ms->part[q].caught_up)
      continue;
    int64_t pos = positions[i], target = ms->part[q].target;
    if (target <= 0 || (pos >= 0 && pos >= target))
      ms->part[q].caught_up = 1;
  }
  return merge_caught_up(ms);
}

int merge_caught_up(const merge_state *ms) {
  if (!ms->assigned)
    return 0;
  for (int q = 0; q < MERGE_MAX_PARTIALS; q++)
    if (ms->part[q].owned && !ms->part[q].caught_up)
      return 0;
  return 1;
}
