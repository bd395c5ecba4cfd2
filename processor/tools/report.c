/* report.c — the KIB evaluation report's headline measures from a rollup CSV.
 *
 * Reads the SPEC §4 CSV, sums the rows of one period by entry visitation and
 * entry municipality, and derives the figures of the report's section 3.1
 * (SPEC §8): entry visitation shares, accumulated goals over the project,
 * durable employment by goal, the aktivitetsparat share of the five named
 * municipalities, and status at the measurement point. Loading is I/O; each
 * measure is a small pure function of the sums. */
#include "tools/report.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/municipality.h"
#include "core/record.h"
#include "core/rollup.h"
#include "tools/report_source.h"

/* Counter columns (after period, municipality, visitation), SPEC §4 order. */
enum {
  COL_MEMBERS = ROLLUP_MEMBERS,
  COL_ACC_G1 = ROLLUP_ACC,
  COL_ACC_G2,
  COL_ACC_G3,
  COL_FULL_G1 = ROLLUP_DURABLE_FULL,
  COL_FULL_G2,
  COL_FULL_G3,
  COL_FULL_NONE,
  COL_PART_G1 = ROLLUP_DURABLE_PARTIAL,
  COL_PART_G2,
  COL_PART_G3,
  COL_PART_NONE,
  COL_ST_EDUCATION = ROLLUP_STATUS,
  COL_ST_FULL,
  COL_ST_PART,
  COL_ST_FLEX,
  COL_ST_DP,
  COL_ST_PLACEMENT,
  COL_ST_BENEFIT,
  COL_ST_SELF,
};

typedef uint64_t counts[ROLLUP_COLUMNS];

/* The rows of one period, summed per (municipality, visitation). */
typedef struct report_data {
  counts cell[MUNICIPALITY_COUNT][VISITATION_COUNT];
  size_t rows;
} report_data;

enum { MAX_MEASURES = 48, LABEL_LEN = 96 };

typedef struct measure {
  const char *section; /* starts a section when non-NULL */
  char label[LABEL_LEN];
  double value;  /* percent; NAN when it cannot be computed */
  double report; /* percent; NAN when the report gives no figure */
} measure;

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

/* One data row into data when its period is at_period. 0, or -1 (malformed). */
static int parse_row(char *line, int at_period, report_data *data) {
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
  if (parse_u64(field[0], field_end[0], &period) < 0 ||
      parse_u64(field[1], field_end[1], &code) < 0 || code > 999)
    return -1;
  int m = municipality_index((int32_t)code);
  int v = visitation_of(field[2], (size_t)(field_end[2] - field[2]));
  if (m < 0 || v < 0)
    return -1;
  counts row;
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    if (parse_u64(field[3 + c], field_end[3 + c], &row[c]) < 0)
      return -1;
  if (period != (uint64_t)at_period)
    return 0;
  for (int c = 0; c < ROLLUP_COLUMNS; c++)
    data->cell[m][v][c] += row[c];
  data->rows++;
  return 0;
}

static report_data *report_load(const char *csv_path, int at_period, char *err, size_t errlen) {
  FILE *f = report_source_open(csv_path, err, errlen); /* --csv, or --postgres */
  if (!f)
    return NULL;
  report_data *data = calloc(1, sizeof *data);
  char want[1024], line[1024];
  if (!data || expected_header(want, sizeof want) < 0) {
    snprintf(err, errlen, "out of memory");
    fclose(f);
    free(data);
    return NULL;
  }
  if (!fgets(line, sizeof line, f)) {
    snprintf(err, errlen, "%s: empty file, no header", csv_path);
    goto fail;
  }
  strip_eol(line);
  if (strcmp(line, want) != 0) {
    snprintf(err, errlen, "%s: bad header (not a SPEC section 4 rollup CSV)", csv_path);
    goto fail;
  }
  for (long lineno = 2; fgets(line, sizeof line, f); lineno++) {
    size_t n = strlen(line);
    if (n == sizeof line - 1 && line[n - 1] != '\n') {
      snprintf(err, errlen, "%s:%ld: line too long", csv_path, lineno);
      goto fail;
    }
    strip_eol(line);
    if (!line[0])
      continue;
    if (parse_row(line, at_period, data) < 0) {
      snprintf(err, errlen, "%s:%ld: malformed row", csv_path, lineno);
      goto fail;
    }
  }
  if (ferror(f)) {
    snprintf(err, errlen, "%s: read error", csv_path);
    goto fail;
  }
  fclose(f);
  if (data->rows == 0) {
    snprintf(err, errlen, "%s: no rows for period %d", csv_path, at_period);
    free(data);
    return NULL;
  }
  return data;
fail:
  fclose(f);
  free(data);
  return NULL;
}

/* ---------------------------------------------------------------- arithmetic */

static double percent(uint64_t part, uint64_t whole) {
  return whole ? 100.0 * (double)part / (double)whole : NAN;
}

/* Column c summed over the cells selected by municipality (-1: all) and
 * visitation (-1: all). */
static uint64_t sum_col(const report_data *d, int m, int v, int c) {
  uint64_t s = 0;
  for (int i = 0; i < MUNICIPALITY_COUNT; i++) {
    if (m >= 0 && i != m)
      continue;
    for (int j = 0; j < VISITATION_COUNT; j++)
      if (v < 0 || j == v)
        s += d->cell[i][j][c];
  }
  return s;
}

/* Column c over the municipalities with the given codes (0-terminated). */
static uint64_t sum_codes(const report_data *d, const int *codes, int v, int c) {
  uint64_t s = 0;
  for (; *codes; codes++) {
    int m = municipality_index(*codes);
    if (m >= 0)
      s += sum_col(d, m, v, c);
  }
  return s;
}

static uint64_t durable_full_all(const report_data *d, int m, int v) {
  return sum_col(d, m, v, COL_FULL_G1) + sum_col(d, m, v, COL_FULL_G2) +
         sum_col(d, m, v, COL_FULL_G3) + sum_col(d, m, v, COL_FULL_NONE);
}

static uint64_t goal12(const report_data *d, int m, int v) {
  return sum_col(d, m, v, COL_ACC_G1) + sum_col(d, m, v, COL_ACC_G2);
}

static uint64_t edu_or_employed(const report_data *d, int v) {
  return sum_col(d, -1, v, COL_ST_EDUCATION) + sum_col(d, -1, v, COL_ST_FULL) +
         sum_col(d, -1, v, COL_ST_PART);
}

/* Lowest (want_max 0) or highest goal 1+2 share among municipalities with
 * members; *which gets the municipality index. */
static double goal12_extreme(const report_data *d, int want_max, int *which) {
  double best = NAN;
  *which = -1;
  for (int m = 0; m < MUNICIPALITY_COUNT; m++) {
    uint64_t members = sum_col(d, m, -1, COL_MEMBERS);
    if (!members)
      continue;
    double s = percent(goal12(d, m, -1), members);
    if (*which < 0 || (want_max ? s > best : s < best)) {
      best = s;
      *which = m;
    }
  }
  return best;
}

static measure *add(measure *ms, int *n, const char *section, const char *label, double value,
                    double report) {
  measure *x = &ms[(*n)++];
  x->section = section;
  snprintf(x->label, sizeof x->label, "%s", label);
  x->value = value;
  x->report = report;
  return x;
}

/* All measures, in table order. Returns how many. */
static int compute_measures(const report_data *d, int at_period, measure *ms,
                            char sections[3][64]) {
  int n = 0;
  const int AKT = VISITATION_AKTIVITETSPARAT;
  uint64_t members = sum_col(d, -1, -1, COL_MEMBERS);
  uint64_t akt = sum_col(d, -1, AKT, COL_MEMBERS);
  uint64_t oevrig = sum_col(d, -1, VISITATION_OEVRIG, COL_MEMBERS) +
                    sum_col(d, -1, VISITATION_UDDANNELSESPARAT, COL_MEMBERS);

  add(ms, &n, "Entry visitation (share of participants)", "aktivitetsparat", percent(akt, members),
      60);
  add(ms, &n, NULL, "jobparat", percent(sum_col(d, -1, VISITATION_JOBPARAT, COL_MEMBERS), members),
      25);
  add(ms, &n, NULL, "selvforsørgende",
      percent(sum_col(d, -1, VISITATION_SELVFORSOERGENDE, COL_MEMBERS), members), 7);
  add(ms, &n, NULL, "øvrig ydelse (øvrig + uddannelsesparat)", percent(oevrig, members), 8);
  add(ms, &n, NULL, "  of these uddannelsesparat (education order)",
      percent(sum_col(d, -1, VISITATION_UDDANNELSESPARAT, COL_MEMBERS), oevrig), 33);

  uint64_t g1 = sum_col(d, -1, -1, COL_ACC_G1), g2 = sum_col(d, -1, -1, COL_ACC_G2);
  uint64_t g3 = sum_col(d, -1, -1, COL_ACC_G3);
  add(ms, &n, "Accumulated goal over the project (share of participants)", "goal 1 reached",
      percent(g1, members), 38);
  add(ms, &n, NULL, "goal 2 reached", percent(g2, members), 12);
  add(ms, &n, NULL, "goal 3 reached", percent(g3, members), 22);
  add(ms, &n, NULL, "goal 1 or 2", percent(g1 + g2, members), 50);
  add(ms, &n, NULL, "goal 1 or 2, aktivitetsparate", percent(goal12(d, -1, AKT), akt), 33);
  int lo_m, hi_m;
  double lo = goal12_extreme(d, 0, &lo_m), hi = goal12_extreme(d, 1, &hi_m);
  char label[LABEL_LEN];
  snprintf(label, sizeof label, "goal 1 or 2, lowest municipality (%s)",
           lo_m >= 0 ? municipality_names[lo_m] : "-");
  add(ms, &n, NULL, label, lo, 36);
  snprintf(label, sizeof label, "goal 1 or 2, highest municipality (%s)",
           hi_m >= 0 ? municipality_names[hi_m] : "-");
  add(ms, &n, NULL, label, hi, 55);

  snprintf(sections[0], 64, "Durable employment at %04d-%02d (share of goal group)",
           at_period / 100, at_period % 100);
  add(ms, &n, sections[0], "goal 1: durable full-time",
      percent(sum_col(d, -1, -1, COL_FULL_G1), g1), 47);
  add(ms, &n, NULL, "goal 1: durable part-time", percent(sum_col(d, -1, -1, COL_PART_G1), g1), 20);
  add(ms, &n, NULL, "goal 2: durable full-time", percent(sum_col(d, -1, -1, COL_FULL_G2), g2), 2);
  add(ms, &n, NULL, "goal 2: durable part-time", percent(sum_col(d, -1, -1, COL_PART_G2), g2), 33);
  add(ms, &n, NULL, "goal 3: durable full-time", percent(sum_col(d, -1, -1, COL_FULL_G3), g3), 0);
  add(ms, &n, NULL, "goal 3: durable part-time", percent(sum_col(d, -1, -1, COL_PART_G3), g3), 0);
  static const int aarhus[] = {751, 0}, hvidovre[] = {167, 0};
  int ma = municipality_index(751), mh = municipality_index(167);
  add(ms, &n, NULL, "Aarhus: durable full-time (share of members)",
      percent(durable_full_all(d, ma, -1), sum_codes(d, aarhus, -1, COL_MEMBERS)), 22);
  add(ms, &n, NULL, "Hvidovre: durable full-time (share of members)",
      percent(durable_full_all(d, mh, -1), sum_codes(d, hvidovre, -1, COL_MEMBERS)), 11);

  static const struct {
    const char *name;
    int codes[3];
    double report;
  } five[5] = {{"Brøndby", {153, 0, 0}, 66},
               {"Esbjerg/Fanø", {561, 563, 0}, 77},
               {"Aalborg", {851, 0, 0}, 85},
               {"Hvidovre", {167, 0, 0}, 91},
               {"Aarhus", {751, 0, 0}, 93}};
  for (int i = 0; i < 5; i++)
    add(ms, &n,
        i == 0 ? "Aktivitetsparat share of entries, the report's five municipalities" : NULL,
        five[i].name,
        percent(sum_codes(d, five[i].codes, AKT, COL_MEMBERS),
                sum_codes(d, five[i].codes, -1, COL_MEMBERS)),
        five[i].report);

  snprintf(sections[1], 64, "Status at %04d-%02d, all participants", at_period / 100,
           at_period % 100);
  add(ms, &n, sections[1], "education or employment", percent(edu_or_employed(d, -1), members), 32);
  add(ms, &n, NULL, "flex job", percent(sum_col(d, -1, -1, COL_ST_FLEX), members), 2);
  add(ms, &n, NULL, "disability pension", percent(sum_col(d, -1, -1, COL_ST_DP), members), 5);
  add(ms, &n, NULL, "on benefit", percent(sum_col(d, -1, -1, COL_ST_BENEFIT), members), 51);
  add(ms, &n, NULL, "self-supporting (the rest)", percent(sum_col(d, -1, -1, COL_ST_SELF), members),
      10);
  add(ms, &n, NULL, "company placement (no report figure)",
      percent(sum_col(d, -1, -1, COL_ST_PLACEMENT), members), NAN);

  snprintf(sections[2], 64, "Status at %04d-%02d, aktivitetsparate", at_period / 100,
           at_period % 100);
  add(ms, &n, sections[2], "education or employment", percent(edu_or_employed(d, AKT), akt), 22);
  add(ms, &n, NULL, "flex job", percent(sum_col(d, -1, AKT, COL_ST_FLEX), akt), 3);
  add(ms, &n, NULL, "disability pension", percent(sum_col(d, -1, AKT, COL_ST_DP), akt), 9);
  return n;
}

static int off(const measure *x, double tolerance) {
  if (isnan(x->report))
    return 0;
  return isnan(x->value) || fabs(x->value - x->report) > tolerance;
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

static void print_measure(FILE *out, const measure *x) {
  fputs("  ", out);
  put_padded(out, x->label, LABEL_WIDTH);
  if (isnan(x->value))
    fprintf(out, "%9s  ", "n/a");
  else
    fprintf(out, "%7.1f %%", x->value);
  if (isnan(x->report))
    fprintf(out, "%9s", "-");
  else
    fprintf(out, "%6.0f %%", x->report);
  if (isnan(x->value) || isnan(x->report))
    fprintf(out, "%12s\n", "-");
  else {
    double diff = x->value - x->report;
    fprintf(out, "%+12.1f\n", fabs(diff) < 0.05 ? 0.0 : diff);
  }
}

int report_print(FILE *out, const char *csv_path, int at_period, char *err, size_t errlen) {
  report_data *d = report_load(csv_path, at_period, err, errlen);
  if (!d)
    return -1;
  measure ms[MAX_MEASURES];
  char sections[3][64];
  int n = compute_measures(d, at_period, ms, sections);
  int municipalities = 0;
  for (int m = 0; m < MUNICIPALITY_COUNT; m++)
    municipalities += sum_col(d, m, -1, COL_MEMBERS) > 0;
  fprintf(out,
          "KIB evaluation (2023), headline measures at %04d-%02d from %s\n"
          "%llu participants in %d municipalities (%zu rollup rows)\n\n",
          at_period / 100, at_period % 100, csv_path,
          (unsigned long long)sum_col(d, -1, -1, COL_MEMBERS), municipalities, d->rows);
  put_padded(out, "measure", LABEL_WIDTH + 2);
  fprintf(out, "%9s%8s%12s\n", "regstream", "report", "diff (pts)");
  for (int i = 0; i < n; i++) {
    if (ms[i].section)
      fprintf(out, "%s\n", ms[i].section);
    print_measure(out, &ms[i]);
  }
  free(d);
  return ferror(out) ? (snprintf(err, errlen, "write error"), -1) : 0;
}

int report_check(const char *csv_path, int at_period, double tolerance_points, char *err,
                 size_t errlen) {
  report_data *d = report_load(csv_path, at_period, err, errlen);
  if (!d)
    return -1;
  measure ms[MAX_MEASURES];
  char sections[3][64];
  int n = compute_measures(d, at_period, ms, sections);
  free(d);
  int bad = 0;
  size_t used = 0;
  if (errlen)
    err[0] = 0;
  for (int i = 0; i < n; i++) {
    if (!off(&ms[i], tolerance_points))
      continue;
    bad++;
    if (used < errlen) {
      const char *label = ms[i].label + strspn(ms[i].label, " ");
      int k = snprintf(err + used, errlen - used, "%s%s %.1f vs %.0f", used ? "; " : "", label,
                       ms[i].value, ms[i].report);
      if (k > 0)
        used += (size_t)k;
    }
  }
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
