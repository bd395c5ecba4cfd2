/* report.c — the KIB evaluation report's headline measures from a rollup CSV.
 *
 * Reads the SPEC §4 CSV (load_csv: the one place that reads rows; every
 * row goes through report_add_row; an empty count field is a count
 * suppressed upstream, unknown here), sums the rows
 * of every period by entry visitation and entry municipality, and derives
 * the figures of the report's section 3.1 (SPEC §8): entry visitation
 * shares, accumulated goals over the project, durable employment by goal,
 * the aktivitetsparat share of the five named municipalities, and status at
 * the measurement point. Each measure is computed once, here
 * (report_compute), for the text table below and for the HTML page
 * (report_html.c, which draws them). Disclosure control (--min-cell) is
 * applied to what is shown: report_published (report_pub_*, below) holds
 * the shown cells, the groups of them that add up to a shown total and the
 * shares, and settles the rule over them once (report_publish lays the page
 * out to find them); the table and the page show through it. Loading is
 * I/O; each measure is a small pure function of the sums. */
#include "tools/report.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/disclosure.h"
#include "core/municipality.h"
#include "core/record.h"
#include "core/rollup.h"
#include "core/rules.h"
#include "tools/report_measures.h"
#include "tools/report_source.h"

/* ---------------------------------------------------------------- loading */

static int parse_u64(const char *s, const char *end, uint64_t *out) {
  if (s == end)
    return -1;
  uint64_t v = 0;
  for (; s < end; s++) {
    if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
      return -1;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  *out = v;
  return 0;
}

static void strip_eol(char *line) {
  size_t n = strlen(line);
  while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
    line[--n] = 0;
}

static int expected_header(char *buf, size_t len) {
  int n = snprintf(buf, len, "period,municipality,visitation");
  for (int c = 0; c < ROLLUP_COLUMNS && n > 0 && (size_t)n < len; c++)
    n += snprintf(buf + n, len - (size_t)n, ",%s", rollup_column_names[c]);
  return n > 0 && (size_t)n < len ? 0 : -1;
}

static int visitation_of(const char *s, size_t n) {
  for (int v = 0; v < VISITATION_COUNT; v++)
    if (strlen(visitation_symbols[v]) == n && !strncmp(visitation_symbols[v], s, n))
      return v;
  return -1;
}

int report_add_row(report_data *d, int32_t period, int32_t code, int visitation,
                   const uint32_t *counts, uint32_t unknown) {
  int m = municipality_index(code);
  if (!period_valid(period) || m < 0 || visitation < 0 || visitation >= VISITATION_COUNT)
    return -1;
  int month = period_to_month(period);
  if (!d->month[month]) {
    d->month[month] = calloc(1, sizeof(report_block));
    if (!d->month[month])
      return -2;
  }
  if (d->first < 0 || month < d->first)
    d->first = month;
  if (month > d->last)
    d->last = month;
  report_count *cell = (*d->month[month])[m][visitation];
  for (int c = 0; c < ROLLUP_COLUMNS; c++) {
    if (unknown & (1u << c))
      d->unknown_cells++;
    cell[c] = report_plus(cell[c], unknown & (1u << c) ? REPORT_SUPPRESSED : counts[c]);
  }
  d->rows_in[month]++;
  return 0;
}

int report_presuppressed(const report_data *d) {
  return d->unknown_cells > 0;
}

/* One data row into d. 0, -1 (malformed) or -2 (out of memory). */
static int parse_row(char *line, report_data *d) {
  const char *field[3 + ROLLUP_COLUMNS], *field_end[3 + ROLLUP_COLUMNS];
  int nf = 0;
  char *p = line;
  for (;;) {
    if (nf == 3 + ROLLUP_COLUMNS)
      return -1;
    field[nf] = p;
    char *comma = strchr(p, ',');
    field_end[nf] = comma ? comma : p + strlen(p);
    nf++;
    if (!comma)
      break;
    p = comma + 1;
  }
  if (nf != 3 + ROLLUP_COLUMNS)
    return -1;
  uint64_t period, code;
  if (parse_u64(field[0], field_end[0], &period) < 0 || period > PERIOD_LAST ||
      parse_u64(field[1], field_end[1], &code) < 0 || code > 999)
    return -1;
  int v = visitation_of(field[2], (size_t)(field_end[2] - field[2]));
  uint32_t row[ROLLUP_COLUMNS], unknown = 0;
  for (int c = 0; c < ROLLUP_COLUMNS; c++) {
    uint64_t x;
    if (field[3 + c] == field_end[3 + c]) { /* suppressed upstream (--min-cell) */
      row[c] = 0;
      unknown |= 1u << c;
      continue;
    }
    /* the rollup's counters are 32-bit */
    if (parse_u64(field[3 + c], field_end[3 + c], &x) < 0 || x > UINT32_MAX)
      return -1;
    row[c] = (uint32_t)x;
  }
  return report_add_row(d, (int32_t)period, (int32_t)code, v, row, unknown);
}

/* Every row of the CSV at path into d. 0, or -1 with a reason. */
static int load_csv(const char *path, report_data *d, char *err, size_t errlen) {
  FILE *f = report_source_open(path, err, errlen); /* --csv, or --postgres */
  if (!f)
    return -1;
  char want[1024], line[1024];
  if (expected_header(want, sizeof want) < 0) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  if (!fgets(line, sizeof line, f)) {
    snprintf(err, errlen, "%s: empty file, no header", path);
    goto fail;
  }
  strip_eol(line);
  if (strcmp(line, want) != 0) {
    snprintf(err, errlen, "%s: bad header (not a SPEC section 4 rollup CSV)", path);
    goto fail;
  }
  for (long lineno = 2; fgets(line, sizeof line, f); lineno++) {
    size_t n = strlen(line);
    if (n == sizeof line - 1 && line[n - 1] != '\n') {
      snprintf(err, errlen, "%s:%ld: line too long", path, lineno);
      goto fail;
    }
    strip_eol(line);
    if (!line[0])
      continue;
    int rc = parse_row(line, d);
    if (rc == -2) {
      snprintf(err, errlen, "out of memory");
      goto fail;
    }
    if (rc < 0) {
      snprintf(err, errlen, "%s:%ld: malformed row", path, lineno);
      goto fail;
    }
  }
  if (ferror(f)) {
    snprintf(err, errlen, "%s: read error", path);
    goto fail;
  }
  fclose(f);
  return 0;
fail:
  fclose(f);
  return -1;
}

void report_free(report_data *d) {
  if (!d)
    return;
  for (int i = 0; i < PERIOD_MONTHS; i++)
    free(d->month[i]);
  free(d);
}

report_data *report_load(const report_options *o, char *err, size_t errlen) {
  report_data *d = calloc(1, sizeof *d);
  if (!d) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  d->first = d->last = -1;
  d->min_cell = o->min_cell;
  d->at_period = o->at;
  d->source = o->csv_path;
  if (load_csv(o->csv_path, d, err, errlen) < 0) {
    report_free(d);
    return NULL;
  }
  if (o->at == 0) { /* the latest month with published rows */
    if (d->last < 0) {
      snprintf(err, errlen, "%s: no rows", o->csv_path);
      report_free(d);
      return NULL;
    }
    d->at_period = period_from_month(d->last);
  }
  if (!period_valid(d->at_period)) {
    snprintf(err, errlen, "no such month %d", d->at_period);
    report_free(d);
    return NULL;
  }
  d->at = period_to_month(d->at_period);
  d->rows = d->rows_in[d->at];
  if (d->rows == 0) {
    snprintf(err, errlen, "%s: no rows for period %d", o->csv_path, d->at_period);
    report_free(d);
    return NULL;
  }
  return d;
}

/* ---------------------------------------------------------------- arithmetic */

report_count report_plus(report_count a, report_count b) {
  return a == REPORT_SUPPRESSED || b == REPORT_SUPPRESSED ? REPORT_SUPPRESSED : a + b;
}

double report_share(report_count part, report_count whole) {
  if (part == REPORT_SUPPRESSED || whole == REPORT_SUPPRESSED)
    return REPORT_SHARE_SUPPRESSED;
  return whole ? 100.0 * (double)part / (double)whole : NAN;
}

int report_share_suppressed(double share) {
  return share == REPORT_SHARE_SUPPRESSED;
}

report_count report_sum(const report_data *d, int month, int m, unsigned vmask, int c) {
  if (month < 0 || month >= PERIOD_MONTHS || !d->month[month])
    return 0;
  const report_block *b = d->month[month];
  report_count s = 0;
  for (int i = 0; i < MUNICIPALITY_COUNT; i++) {
    if (m >= 0 && i != m)
      continue;
    for (int j = 0; j < VISITATION_COUNT; j++)
      if (vmask & REPORT_VIS(j))
        s = report_plus(s, (*b)[i][j][c]);
  }
  return s;
}

report_count report_sum_codes(const report_data *d, int month, const int *codes, unsigned vmask,
                              int c) {
  if (!codes)
    return report_sum(d, month, -1, vmask, c);
  report_count s = 0;
  for (; *codes; codes++) {
    int m = municipality_index(*codes);
    if (m >= 0)
      s = report_plus(s, report_sum(d, month, m, vmask, c));
  }
  return s;
}

report_count report_members(const report_data *d, int month, const int *codes, unsigned vmask) {
  return report_sum_codes(d, month, codes, vmask, ROLLUP_MEMBERS);
}

report_count report_goal12(const report_data *d, int month, const int *codes, unsigned vmask) {
  return report_plus(report_sum_codes(d, month, codes, vmask, ROLLUP_ACC + REPORT_GOAL1),
                     report_sum_codes(d, month, codes, vmask, ROLLUP_ACC + REPORT_GOAL2));
}

report_count report_durable_all(const report_data *d, int month, const int *codes, unsigned vmask,
                                int full) {
  int first = full ? ROLLUP_DURABLE_FULL : ROLLUP_DURABLE_PARTIAL;
  report_count s = 0;
  for (int g = 0; g < REPORT_GOALS; g++)
    s = report_plus(s, report_sum_codes(d, month, codes, vmask, first + g));
  return s;
}

report_count report_edu_or_employed(const report_data *d, int month, const int *codes,
                                    unsigned vmask) {
  report_count s = 0;
  for (int st = STATUS_EDUCATION; st <= STATUS_EMPLOYED_PART; st++)
    s = report_plus(s, report_sum_codes(d, month, codes, vmask, ROLLUP_STATUS + st));
  return s;
}

/* ---------------------------------------------------------------- what is shown */

void report_pub_init(report_published *t, const report_data *d) {
  memset(t, 0, sizeof *t);
  t->d = d;
  for (int i = 0; i < M_COUNT; i++)
    t->num[i] = t->den[i] = -1;
}

void report_pub_free(report_published *t) {
  free(t->cell);
  free(t->group);
  free(t->share);
  memset(t, 0, sizeof *t);
}

static int key_equal(const report_key *a, const report_key *b) {
  return a->cols == b->cols && a->vis == b->vis && a->month == b->month &&
         a->codes[0] == b->codes[0] && a->codes[1] == b->codes[1];
}

static report_count key_value(const report_data *d, const report_key *k) {
  report_count s = 0;
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    if (k->cols & (1u << c))
      s = report_plus(s, report_sum_codes(d, k->month, k->codes[0] ? k->codes : NULL, k->vis, c));
  return s;
}

static int small(const report_published *t, report_count n) {
  return t->d->min_cell > 1 && n >= 1 && n < t->d->min_cell; /* REPORT_SUPPRESSED is not */
}

static int grow(void **p, size_t *cap, size_t n, size_t size) {
  if (n < *cap)
    return 0;
  size_t want = *cap ? 2 * *cap : 64;
  void *q = realloc(*p, want * size);
  if (!q)
    return -1;
  *p = q;
  *cap = want;
  return 0;
}

int report_pub_cell(report_published *t, const report_key *k) {
  report_key key = *k;
  if (key.codes[0] && key.codes[1] && key.codes[1] < key.codes[0]) {
    int x = key.codes[0];
    key.codes[0] = key.codes[1];
    key.codes[1] = x;
  }
  key.codes[2] = 0;
  for (size_t i = 0; i < t->ncell; i++)
    if (key_equal(&t->cell[i].key, &key))
      return (int)i;
  if (grow((void **)&t->cell, &t->capcell, t->ncell, sizeof *t->cell) < 0) {
    t->failed = 1;
    return -1;
  }
  report_shown_cell *c = &t->cell[t->ncell];
  c->key = key;
  c->value = key_value(t->d, &key);
  /* a cell first asked for after settling (none should be) gets the
   * cell-wise part of the rule */
  c->suppressed = t->settled && (c->value == REPORT_SUPPRESSED || small(t, c->value));
  t->suppressed += (size_t)c->suppressed;
  return (int)t->ncell++;
}

void report_pub_group(report_published *t, int total, const int *parts, int k, int rest) {
  if (t->settled || total < 0 || k < 1 || k > REPORT_GROUP_MAX)
    return;
  for (int i = 0; i < k; i++)
    if (parts[i] < 0)
      return;
  if (grow((void **)&t->group, &t->capgroup, t->ngroup, sizeof *t->group) < 0) {
    t->failed = 1;
    return;
  }
  report_shown_group *g = &t->group[t->ngroup++];
  memset(g, 0, sizeof *g);
  g->total = total;
  g->k = k;
  g->rest = rest;
  memcpy(g->parts, parts, (size_t)k * sizeof *parts);
}

void report_pub_share(report_published *t, int num, int den) {
  if (t->settled || num < 0 || den < 0)
    return;
  if (grow((void **)&t->share, &t->capshare, t->nshare, sizeof *t->share) < 0) {
    t->failed = 1;
    return;
  }
  t->share[t->nshare][0] = num;
  t->share[t->nshare][1] = den;
  t->nshare++;
}

/* One group under the rule; 1 when a cell changed. */
static int settle_group(report_published *t, report_shown_group *g) {
  report_shown_cell *total = &t->cell[g->total];
  int changed = 0;
  if (small(t, total->value)) { /* the unit is withheld: all its parts */
    for (int i = 0; i < g->k; i++)
      if (!t->cell[g->parts[i]].suppressed) {
        t->cell[g->parts[i]].suppressed = 1;
        changed = 1;
      }
    return changed;
  }
  uint64_t counts[REPORT_GROUP_MAX], sum = 0;
  uint32_t given = g->mask;
  int unknown = total->value == REPORT_SUPPRESSED;
  for (int i = 0; i < g->k; i++) {
    const report_shown_cell *c = &t->cell[g->parts[i]];
    if (c->value == REPORT_SUPPRESSED)
      unknown = 1;
    counts[i] = c->value == REPORT_SUPPRESSED ? 0 : c->value;
    sum += counts[i];
    if (c->suppressed)
      given |= 1u << i;
  }
  /* the rest: total - sum when all is known; unknown (so not shown, as if
   * suppressed) when a part or the total is; none in a group without one */
  uint64_t with_total = sum;
  if (g->rest && !unknown && total->value > sum)
    with_total = total->value;
  else if (g->rest && unknown) {
    with_total = sum + 1; /* a rest of 1: small, so counted as suppressed */
    given |= 1u << g->k;
  }
  uint32_t mask = disclosure_group_mask(counts, g->k, with_total, given, t->d->min_cell);
  if (t->d->min_cell <= 1) /* the rule is off: only unknown cells are "..", no complements */
    mask = given;
  g->mask = mask & (1u << g->k); /* the rest's state, for the next round */
  for (int i = 0; i < g->k; i++)
    if ((mask & (1u << i)) && !t->cell[g->parts[i]].suppressed) {
      t->cell[g->parts[i]].suppressed = 1;
      changed = 1;
    }
  return changed;
}

void report_pub_settle(report_published *t) {
  for (size_t i = 0; i < t->ncell; i++) {
    report_shown_cell *c = &t->cell[i];
    c->suppressed = t->failed || c->value == REPORT_SUPPRESSED || small(t, c->value);
  }
  for (size_t i = 0; i < t->nshare; i++)
    if (small(t, t->cell[t->share[i][1]].value))
      t->cell[t->share[i][0]].suppressed = 1; /* the unit is withheld */
  for (int changed = 1; changed;) {
    changed = 0;
    for (size_t i = 0; i < t->ngroup; i++)
      changed |= settle_group(t, &t->group[i]);
  }
  t->suppressed = 0;
  for (size_t i = 0; i < t->ncell; i++)
    t->suppressed += (size_t)t->cell[i].suppressed;
  t->settled = 1;
}

report_count report_pub_shown(const report_published *t, int i) {
  if (i < 0 || (size_t)i >= t->ncell || t->cell[i].suppressed)
    return REPORT_SUPPRESSED;
  return t->cell[i].value;
}

double report_pub_share_shown(const report_published *t, int num, int den) {
  return report_share(report_pub_shown(t, num), report_pub_shown(t, den));
}

double report_pub_measure(const report_published *t, const report_measures *r, int id) {
  const measure *x = &r->m[id];
  if (t->num[id] >= 0 && t->den[id] >= 0)
    return report_pub_share_shown(t, t->num[id], t->den[id]);
  /* not on the page as cells (an extreme without a municipality): the
   * cell-wise rule on its own numbers */
  if (x->part == REPORT_SUPPRESSED || x->whole == REPORT_SUPPRESSED || small(t, x->part) ||
      small(t, x->whole))
    return REPORT_SHARE_SUPPRESSED;
  return x->value;
}

/* ---------------------------------------------------------------- measures */

const report_municipality_set report_five[5] = {{"Brøndby", {153, 0, 0}, 66},
                                                {"Esbjerg/Fanø", {561, 563, 0}, 77},
                                                {"Aalborg", {851, 0, 0}, 85},
                                                {"Hvidovre", {167, 0, 0}, 91},
                                                {"Aarhus", {751, 0, 0}, 93}};

static void set(report_measures *r, measure_id id, const char *section, const char *label,
                report_count part, report_count whole, double report) {
  measure *x = &r->m[id];
  x->section = section;
  snprintf(x->label, sizeof x->label, "%s", label);
  x->part = part;
  x->whole = whole;
  x->value = report_share(part, whole);
  x->report = report;
  x->municipality = -1;
}

/* The lowest (want_max 0) or highest goal 1+2 share among municipalities
 * with members into x; suppressed when any municipality's share is. */
static void goal12_extreme(const report_data *d, int want_max, measure *x) {
  double best = NAN;
  int which = -1, suppressed = 0;
  for (int m = 0; m < MUNICIPALITY_COUNT; m++) {
    int code[2] = {municipality_codes[m], 0};
    report_count members = report_members(d, d->at, code, REPORT_VIS_ALL);
    if (!members)
      continue;
    report_count g12 = report_goal12(d, d->at, code, REPORT_VIS_ALL);
    /* a municipality whose share the page cannot show is no extreme */
    if (d->min_cell > 1 &&
        ((members >= 1 && members < d->min_cell && members != REPORT_SUPPRESSED) ||
         (g12 >= 1 && g12 < d->min_cell)))
      continue;
    double s = report_share(g12, members);
    if (report_share_suppressed(s)) {
      suppressed = 1;
      continue;
    }
    if (which < 0 || (want_max ? s > best : s < best)) {
      best = s;
      which = m;
    }
  }
  x->municipality = suppressed ? -1 : which;
  snprintf(x->label, sizeof x->label, "goal 1 or 2, %s municipality (%s)",
           want_max ? "highest" : "lowest",
           suppressed   ? ".."
           : which >= 0 ? municipality_names[which]
                        : "-");
  if (suppressed) {
    x->part = x->whole = REPORT_SUPPRESSED;
    x->value = REPORT_SHARE_SUPPRESSED;
  } else if (which >= 0) {
    int code[2] = {municipality_codes[which], 0};
    x->part = report_goal12(d, d->at, code, REPORT_VIS_ALL);
    x->whole = report_members(d, d->at, code, REPORT_VIS_ALL);
    x->value = best;
  } else {
    x->part = x->whole = 0;
    x->value = NAN;
  }
}

void report_compute(const report_data *d, report_measures *r) {
  const int at = d->at, A = VISITATION_AKTIVITETSPARAT;
  const unsigned ALL = REPORT_VIS_ALL, AKT = REPORT_VIS(A);
  report_count members = report_members(d, at, NULL, ALL);
  report_count akt = report_members(d, at, NULL, AKT);
  report_count oevrig = report_members(d, at, NULL, REPORT_VIS_OEVRIG);
  const char *sec;

  sec = "Entry visitation (share of participants)";
  set(r, M_VIS_AKT, sec, "aktivitetsparat", akt, members, 60);
  set(r, M_VIS_JOB, NULL, "jobparat", report_members(d, at, NULL, REPORT_VIS(VISITATION_JOBPARAT)),
      members, 25);
  set(r, M_VIS_SELV, NULL, "selvforsørgende",
      report_members(d, at, NULL, REPORT_VIS(VISITATION_SELVFORSOERGENDE)), members, 7);
  set(r, M_VIS_OEVRIG, NULL, "øvrig ydelse (øvrig + uddannelsesparat)", oevrig, members, 8);
  set(r, M_VIS_UDD_OF_OEVRIG, NULL, "  of these uddannelsesparat (education order)",
      report_members(d, at, NULL, REPORT_VIS(VISITATION_UDDANNELSESPARAT)), oevrig, 33);

  report_count g[3];
  for (int k = 0; k < 3; k++)
    g[k] = report_sum(d, at, -1, ALL, ROLLUP_ACC + k);
  sec = "Accumulated goal over the project (share of participants)";
  set(r, M_GOAL1, sec, "goal 1 reached", g[0], members, 38);
  set(r, M_GOAL2, NULL, "goal 2 reached", g[1], members, 12);
  set(r, M_GOAL3, NULL, "goal 3 reached", g[2], members, 22);
  set(r, M_GOAL12, NULL, "goal 1 or 2", report_goal12(d, at, NULL, ALL), members, 50);
  set(r, M_GOAL12_AKT, NULL, "goal 1 or 2, aktivitetsparate", report_goal12(d, at, NULL, AKT), akt,
      33);
  set(r, M_GOAL12_LOWEST, NULL, "", 0, 0, 36);
  goal12_extreme(d, 0, &r->m[M_GOAL12_LOWEST]);
  set(r, M_GOAL12_HIGHEST, NULL, "", 0, 0, 55);
  goal12_extreme(d, 1, &r->m[M_GOAL12_HIGHEST]);

  snprintf(r->sections[0], REPORT_SECTION_LEN,
           "Durable employment at %04d-%02d (share of goal group)", d->at_period / 100,
           d->at_period % 100);
  static const double dur_report[3][2] = {{47, 20}, {2, 33}, {0, 0}};
  static const char *const dur_label[3][2] = {
      {"goal 1: durable full-time", "goal 1: durable part-time"},
      {"goal 2: durable full-time", "goal 2: durable part-time"},
      {"goal 3: durable full-time", "goal 3: durable part-time"}};
  for (int k = 0; k < 3; k++)
    for (int full = 1; full >= 0; full--)
      set(r, (measure_id)(M_DUR_G1_FULL + 2 * k + !full), k == 0 && full ? r->sections[0] : NULL,
          dur_label[k][!full],
          report_sum(d, at, -1, ALL, (full ? ROLLUP_DURABLE_FULL : ROLLUP_DURABLE_PARTIAL) + k),
          g[k], dur_report[k][!full]);
  static const int aarhus[] = {751, 0}, hvidovre[] = {167, 0};
  set(r, M_AARHUS_FULL, NULL, "Aarhus: durable full-time (share of members)",
      report_durable_all(d, at, aarhus, ALL, 1), report_members(d, at, aarhus, ALL), 22);
  set(r, M_HVIDOVRE_FULL, NULL, "Hvidovre: durable full-time (share of members)",
      report_durable_all(d, at, hvidovre, ALL, 1), report_members(d, at, hvidovre, ALL), 11);

  for (int i = 0; i < 5; i++)
    set(r, (measure_id)(M_AKT_FIVE + i),
        i == 0 ? "Aktivitetsparat share of entries, the report's five municipalities" : NULL,
        report_five[i].name, report_members(d, at, report_five[i].codes, AKT),
        report_members(d, at, report_five[i].codes, ALL), report_five[i].akt_report);

  snprintf(r->sections[1], REPORT_SECTION_LEN, "Status at %04d-%02d, all participants",
           d->at_period / 100, d->at_period % 100);
  set(r, M_ST_EDU_EMP, r->sections[1], "education or employment",
      report_edu_or_employed(d, at, NULL, ALL), members, 32);
  set(r, M_ST_FLEX, NULL, "flex job", report_sum(d, at, -1, ALL, ROLLUP_STATUS + STATUS_FLEXJOB),
      members, 2);
  set(r, M_ST_DP, NULL, "disability pension",
      report_sum(d, at, -1, ALL, ROLLUP_STATUS + STATUS_DISABILITY_PENSION), members, 5);
  set(r, M_ST_BENEFIT, NULL, "on benefit",
      report_sum(d, at, -1, ALL, ROLLUP_STATUS + STATUS_ON_BENEFIT), members, 51);
  set(r, M_ST_SELF, NULL, "self-supporting (the rest)",
      report_sum(d, at, -1, ALL, ROLLUP_STATUS + STATUS_SELF_SUPPORTING), members, 10);
  set(r, M_ST_PLACEMENT, NULL, "company placement (no report figure)",
      report_sum(d, at, -1, ALL, ROLLUP_STATUS + STATUS_COMPANY_PLACEMENT), members, NAN);

  snprintf(r->sections[2], REPORT_SECTION_LEN, "Status at %04d-%02d, aktivitetsparate",
           d->at_period / 100, d->at_period % 100);
  set(r, M_AKT_ST_EDU_EMP, r->sections[2], "education or employment",
      report_edu_or_employed(d, at, NULL, AKT), akt, 22);
  set(r, M_AKT_ST_FLEX, NULL, "flex job",
      report_sum(d, at, -1, AKT, ROLLUP_STATUS + STATUS_FLEXJOB), akt, 3);
  set(r, M_AKT_ST_DP, NULL, "disability pension",
      report_sum(d, at, -1, AKT, ROLLUP_STATUS + STATUS_DISABILITY_PENSION), akt, 9);
}

const char *report_format_share(char *buf, size_t len, double share) {
  if (report_share_suppressed(share))
    snprintf(buf, len, "..");
  else if (isnan(share))
    snprintf(buf, len, "n/a");
  else
    snprintf(buf, len, "%.1f", share);
  return buf;
}

const char *report_format_count(char *buf, size_t len, report_count n) {
  if (n == REPORT_SUPPRESSED)
    snprintf(buf, len, "..");
  else
    snprintf(buf, len, "%llu", (unsigned long long)n);
  return buf;
}

static int off(const measure *x, double value, double tolerance) {
  if (isnan(x->report))
    return 0;
  return isnan(value) || report_share_suppressed(value) || fabs(value - x->report) > tolerance;
}

/* ---------------------------------------------------------------- output */

/* Width in characters of UTF-8 text (continuation bytes do not count). */
static int text_width(const char *s) {
  int w = 0;
  for (; *s; s++)
    w += ((unsigned char)*s & 0xc0) != 0x80;
  return w;
}

static void put_padded(FILE *out, const char *s, int width) {
  fputs(s, out);
  for (int w = text_width(s); w < width; w++)
    fputc(' ', out);
}

enum { LABEL_WIDTH = 52 };

static void print_measure(FILE *out, const measure *x, double value) {
  fputs("  ", out);
  put_padded(out, x->label, LABEL_WIDTH);
  if (isnan(value) || report_share_suppressed(value))
    fprintf(out, "%9s  ", isnan(value) ? "n/a" : "..");
  else
    fprintf(out, "%7.1f %%", value);
  if (isnan(x->report))
    fprintf(out, "%9s", "-");
  else
    fprintf(out, "%6.0f %%", x->report);
  if (isnan(value) || report_share_suppressed(value) || isnan(x->report))
    fprintf(out, "%12s\n", "-");
  else {
    double diff = value - x->report;
    fprintf(out, "%+12.1f\n", fabs(diff) < 0.05 ? 0.0 : diff);
  }
}

int report_print(FILE *out, const report_data *d, char *err, size_t errlen) {
  report_measures r;
  report_compute(d, &r);
  report_published t;
  if (report_publish(d, &r, &t) < 0) {
    report_pub_free(&t);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  int municipalities = 0;
  for (int m = 0; m < MUNICIPALITY_COUNT; m++)
    municipalities += report_sum(d, d->at, m, REPORT_VIS_ALL, ROLLUP_MEMBERS) > 0;
  report_key k = {.cols = 1u << ROLLUP_MEMBERS, .vis = REPORT_VIS_ALL, .month = d->at};
  char members[32];
  report_format_count(members, sizeof members, report_pub_shown(&t, report_pub_cell(&t, &k)));
  fprintf(out,
          "KIB evaluation (2023), headline measures at %04d-%02d from %s\n"
          "%s participants in %d municipalities (%zu rollup rows)\n",
          d->at_period / 100, d->at_period % 100, d->source, members, municipalities, d->rows);
  if (report_presuppressed(d))
    fprintf(out,
            "the input already carries suppressed counts (%zu empty fields): a sum that "
            "includes one is unknown, shown as .., and so is a share of it\n",
            d->unknown_cells);
  if (d->min_cell > 1)
    fprintf(out,
            "--min-cell %u applied to what is shown: every figure is computed from the rows, "
            "then a count 1..%u is shown as .., and so is a share whose numerator or "
            "denominator is, a unit of fewer than %u, and the smallest other cell of a group "
            "adding up to a shown total that has only one such cell\n",
            (unsigned)d->min_cell, (unsigned)d->min_cell - 1, (unsigned)d->min_cell);
  fputc('\n', out);
  put_padded(out, "measure", LABEL_WIDTH + 2);
  fprintf(out, "%9s%8s%12s\n", "regstream", "report", "diff (pts)");
  for (int i = 0; i < M_COUNT; i++) {
    if (r.m[i].section)
      fprintf(out, "%s\n", r.m[i].section);
    print_measure(out, &r.m[i], report_pub_measure(&t, &r, i));
  }
  report_pub_free(&t);
  return ferror(out) ? (snprintf(err, errlen, "write error"), -1) : 0;
}

int report_check(const report_data *d, double tolerance_points, char *err, size_t errlen) {
  report_measures r;
  report_compute(d, &r);
  report_published t;
  int failed = report_publish(d, &r, &t) < 0;
  int bad = 0;
  size_t used = 0;
  if (errlen)
    err[0] = 0;
  for (int i = 0; i < M_COUNT; i++) {
    const measure *x = &r.m[i];
    double value = failed ? REPORT_SHARE_SUPPRESSED : report_pub_measure(&t, &r, i);
    if (!off(x, value, tolerance_points))
      continue;
    bad++;
    if (used < errlen) {
      const char *label = x->label + strspn(x->label, " ");
      char v[32];
      int k = snprintf(err + used, errlen - used, "%s%s %s vs %.0f", used ? "; " : "", label,
                       report_format_share(v, sizeof v, value), x->report);
      if (k > 0)
        used += (size_t)k;
    }
  }
  report_pub_free(&t);
  if (bad && errlen) {
    /* Prefix the count; keep what fits. */
    char *list = strdup(err);
    if (list) {
      snprintf(err, errlen, "%d measure(s) off by more than %.1f points: %s", bad, tolerance_points,
               list);
      free(list);
    }
  }
  return bad;
}
