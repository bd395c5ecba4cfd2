/* report_html.c — `regstream report --html OUT.html`: the evaluation
 * report's figures (section 3.1: figures 1, 2, 3, 4, 5, 7, 8, 9, 10) redrawn
 * from the rollup as one self-contained page, plus the monthly series a live
 * monitor wants (members, accumulated goal 1/2/3 and durable employment, for
 * all and per municipality).
 *
 * Owns the page: its HTML, CSS and inline SVG charts (no script, nothing
 * loaded from elsewhere) and the data tables beside each chart, whose cells
 * carry what they are machine-readably: a count cell names its columns,
 * visitations, municipalities and period (data-cols, data-vis, data-munis,
 * data-period); a share cell names its numerator and denominator cells
 * (data-num, data-den), its value (data-value) and, when it is a measure of
 * the text table, that measure (data-section, data-measure). The numbers
 * come from report.c: the text table's measures from report_compute (one
 * computation), every other value from the same sums (report_sum_codes) and
 * the same formats. Disclosure control (--min-cell) is applied to what the
 * page shows: the page is laid out twice, first into nothing to tell
 * report_published every shown cell, share and group of cells adding up to
 * a shown total (report_publish; the text table uses the same), then for
 * real, each count and share shown through it. The groups are in the page
 * too (hidden span.group: data-total, data-parts, data-rest), so that a
 * reader can check the rule. Written whole or not at all, 0600, through
 * util/fs. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/rules.h"
#include "tools/report.h"
#include "tools/report_measures.h"
#include "util/fs.h"

/* ---------------------------------------------------------------- page state */

typedef struct page {
  FILE *f;
  const report_data *d;
  const report_measures *r;
  report_published *t;             /* settled in the second pass */
  const char *section_of[M_COUNT]; /* the text table's section of each measure */
  int next_id;
} page;

static void esc(FILE *f, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '<':
      fputs("&lt;", f);
      break;
    case '>':
      fputs("&gt;", f);
      break;
    case '&':
      fputs("&amp;", f);
      break;
    case '"':
      fputs("&quot;", f);
      break;
    default:
      fputc(*s, f);
    }
  }
}

static const char *const month_da[12] = {"januar",    "februar", "marts",    "april",
                                         "maj",       "juni",    "juli",     "august",
                                         "september", "oktober", "november", "december"};

/* ------------------------------------------------------------- items: values */

/* One value of a figure: n / N of a selection (n_cols over n_vis, N_cols
 * over N_vis, both over codes), with the report's figure and the text
 * table's measure when it is one. */
typedef struct item {
  char label[96];     /* category */
  const char *series; /* NULL: one series */
  const char *n_cols, *N_cols;
  unsigned n_vis, N_vis;
  int codes[3]; /* 0-terminated; {0}: all municipalities */
  int month;
  double report;
  int measure;       /* measure_id, or -1 */
  int n_idx, N_idx;  /* their cells in p->t, -1: not a cell (an extreme without a municipality) */
  int n_dom, N_dom;  /* their table cells' ids on the page, once drawn */
  report_count n, N; /* as shown */
  double share;
} item;

/* The rollup columns named in cols (space-separated) as a bit mask. */
static uint32_t cols_mask(const char *cols) {
  uint32_t m = 0;
  const char *p = cols;
  while (*p) {
    size_t len = strcspn(p, " ");
    for (int c = 0; c < ROLLUP_COLUMNS; c++)
      if (strlen(rollup_column_names[c]) == len && !strncmp(rollup_column_names[c], p, len))
        m |= 1u << c;
    p += len;
    p += *p == ' ';
  }
  return m;
}

/* The shown cell of a selection (codes NULL or {0}: all municipalities). */
static int cell_of(const page *p, int month, const char *cols, const int *codes, unsigned vmask) {
  report_key k;
  memset(&k, 0, sizeof k);
  k.cols = cols_mask(cols);
  k.vis = vmask;
  k.month = month;
  for (int i = 0; codes && i < 2 && codes[i]; i++)
    k.codes[i] = codes[i];
  return report_pub_cell(p->t, &k);
}

/* n / N of a selection, registered as a share; the share shown. */
static double shown_share(const page *p, int month, const char *n_cols, const char *N_cols,
                          const int *codes, unsigned vmask) {
  int n = cell_of(p, month, n_cols, codes, vmask), N = cell_of(p, month, N_cols, codes, vmask);
  report_pub_share(p->t, n, N);
  return report_pub_share_shown(p->t, n, N);
}

static const char *const goal_acc_cols[3] = {"acc_goal1", "acc_goal2", "acc_goal3"};
static const char *const goal_full_cols[3] = {"durable_full_goal1", "durable_full_goal2",
                                              "durable_full_goal3"};
static const char *const goal_part_cols[3] = {"durable_partial_goal1", "durable_partial_goal2",
                                              "durable_partial_goal3"};
#define COLS_ACC12 "acc_goal1 acc_goal2"
#define COLS_FULL "durable_full_goal1 durable_full_goal2 durable_full_goal3 durable_full_none"
#define COLS_PART                                                                                  \
  "durable_partial_goal1 durable_partial_goal2 durable_partial_goal3 durable_partial_none"
#define COLS_EDU_EMP "status_education status_employed_full status_employed_part"

/* Fills n, N and share: from the measure when it is one, else from the
 * selection. */
static void item_eval(const page *p, item *it) {
  it->n_dom = it->N_dom = -1;
  if (it->measure >= 0)
    it->report = p->r->m[it->measure].report;
  if ((it->measure == M_GOAL12_LOWEST || it->measure == M_GOAL12_HIGHEST) &&
      p->r->m[it->measure].municipality < 0) {
    /* no municipality to show (none, or suppressed): the measure's own */
    const measure *m = &p->r->m[it->measure];
    it->n_idx = it->N_idx = -1;
    it->n = it->N = m->part == 0 && m->whole == 0 ? 0 : REPORT_SUPPRESSED;
    it->share = report_pub_measure(p->t, p->r, it->measure);
    return;
  }
  it->n_idx = cell_of(p, it->month, it->n_cols, it->codes, it->n_vis);
  it->N_idx = cell_of(p, it->month, it->N_cols, it->codes, it->N_vis);
  report_pub_share(p->t, it->n_idx, it->N_idx);
  if (it->measure >= 0 && !p->t->settled) {
    p->t->num[it->measure] = it->n_idx;
    p->t->den[it->measure] = it->N_idx;
  }
  it->n = report_pub_shown(p->t, it->n_idx);
  it->N = report_pub_shown(p->t, it->N_idx);
  it->share = report_pub_share_shown(p->t, it->n_idx, it->N_idx);
}

static item mk_at(const page *p, int month, const char *label, const char *series,
                  const char *n_cols, unsigned n_vis, const char *N_cols, unsigned N_vis,
                  const int *codes, int measure) {
  item it;
  memset(&it, 0, sizeof it);
  snprintf(it.label, sizeof it.label, "%s", label);
  it.series = series;
  it.n_cols = n_cols;
  it.N_cols = N_cols;
  it.n_vis = n_vis;
  it.N_vis = N_vis;
  for (int i = 0; codes && i < 2 && codes[i]; i++)
    it.codes[i] = codes[i];
  it.month = month;
  it.report = NAN;
  it.measure = measure;
  item_eval(p, &it);
  return it;
}

static item mk(const page *p, const char *label, const char *series, const char *n_cols,
               unsigned n_vis, const char *N_cols, unsigned N_vis, const int *codes, int measure) {
  return mk_at(p, p->d->at, label, series, n_cols, n_vis, N_cols, N_vis, codes, measure);
}

/* ------------------------------------------------------------- table cells */

static void vis_attr(FILE *f, unsigned vmask) {
  if (vmask == REPORT_VIS_ALL)
    return;
  fputs(" data-vis=\"", f);
  int first = 1;
  for (int v = 0; v < VISITATION_COUNT; v++)
    if (vmask & REPORT_VIS(v)) {
      fprintf(f, "%s%s", first ? "" : " ", visitation_symbols[v]);
      first = 0;
    }
  fputc('"', f);
}

static void munis_attr(FILE *f, const int *codes) {
  if (!codes || !codes[0])
    return;
  fputs(" data-munis=\"", f);
  for (int i = 0; codes[i]; i++)
    fprintf(f, "%s%d", i ? " " : "", codes[i]);
  fputc('"', f);
}

/* A count cell; its id. cols NULL: what it sums is not stated. */
static int count_cell(page *p, report_count n, const char *cols, unsigned vmask, const int *codes,
                      int month, const char *cls) {
  char buf[32];
  int id = p->next_id++;
  fprintf(p->f, "<td class=\"n%s%s%s\" id=\"c%d\" data-period=\"%d\"", cls ? " " : "",
          cls ? cls : "", n == REPORT_SUPPRESSED ? " supp" : "", id, (int)period_from_month(month));
  if (cols) {
    fprintf(p->f, " data-cols=\"%s\"", cols);
    vis_attr(p->f, vmask);
    munis_attr(p->f, codes);
  }
  fprintf(p->f, ">%s</td>", report_format_count(buf, sizeof buf, n));
  return id;
}

static void share_cell(page *p, double share, int num_id, int den_id, int measure) {
  char buf[32];
  report_format_share(buf, sizeof buf, share);
  fprintf(p->f, "<td class=\"share%s\" data-num=\"c%d\" data-den=\"c%d\" data-value=\"%s\"",
          report_share_suppressed(share) ? " supp" : "", num_id, den_id, buf);
  if (measure >= 0) {
    const char *label = p->r->m[measure].label;
    fputs(" data-section=\"", p->f);
    esc(p->f, p->section_of[measure]);
    fputs("\" data-measure=\"", p->f);
    esc(p->f, label + strspn(label, " "));
    fputc('"', p->f);
  }
  fprintf(p->f, ">%s</td>", buf);
}

static void item_cells(page *p, item *it) {
  const char *n_cols = it->n_cols, *N_cols = it->N_cols;
  if (it->n_idx < 0)
    n_cols = N_cols = NULL; /* no municipality (suppressed or none) */
  int a = count_cell(p, it->n, n_cols, it->n_vis, it->codes, it->month, NULL);
  int b = count_cell(p, it->N, N_cols, it->N_vis, it->codes, it->month, NULL);
  it->n_dom = a;
  it->N_dom = b;
  share_cell(p, it->share, a, b, it->measure);
  if (isnan(it->report))
    fputs("<td class=\"rep\">-</td>", p->f);
  else
    fprintf(p->f, "<td class=\"rep\">%.0f</td>", it->report);
}

static void data_table(page *p, item *items, int count, const char *caption) {
  FILE *f = p->f;
  fputs("<details class=\"data\"><summary>", f);
  esc(f, caption ? caption : "Tal bag figuren (numbers behind the figure)");
  fputs("</summary><table class=\"data\"><thead><tr><th>kategori</th><th>serie</th>"
        "<th>n</th><th>af N</th><th>andel %</th><th>rapport %</th></tr></thead><tbody>\n",
        f);
  for (int i = 0; i < count; i++) {
    fputs("<tr><td>", f);
    esc(f, items[i].label);
    fputs("</td><td>", f);
    esc(f, items[i].series ? items[i].series : "");
    fputs("</td>", f);
    item_cells(p, &items[i]);
    fputs("</tr>\n", f);
  }
  fputs("</tbody></table></details>\n", f);
}

/* A group of shown cells adding up to a shown total: the numerators of
 * items[first + i * step] (i < k) and the denominator of items[first]
 * (the total), with a rest (a part not shown) or without. Drawn after
 * data_table (the cells' ids). */
static void group(page *p, const item *items, int first, int step, int k, int rest) {
  int parts[REPORT_GROUP_MAX] = {0};
  if (k > REPORT_GROUP_MAX)
    return;
  for (int i = 0; i < k; i++)
    parts[i] = items[first + i * step].n_idx;
  report_pub_group(p->t, items[first].N_idx, parts, k, rest);
  fprintf(p->f, "<span class=\"group\" hidden data-total=\"c%d\" data-rest=\"%d\" data-parts=\"",
          items[first].N_dom, rest);
  for (int i = 0; i < k; i++)
    fprintf(p->f, "%sc%d", i ? " " : "", items[first + i * step].n_dom);
  fputs("\"></span>\n", p->f);
}

/* The same with the total another item's numerator (goal 1 + goal 2 =
 * goal 1 or 2). */
static void group_to(page *p, const item *total, const item *const *parts, int k) {
  int idx[REPORT_GROUP_MAX] = {0};
  for (int i = 0; i < k; i++)
    idx[i] = parts[i]->n_idx;
  report_pub_group(p->t, total->n_idx, idx, k, 0);
  fprintf(p->f, "<span class=\"group\" hidden data-total=\"c%d\" data-rest=\"0\" data-parts=\"",
          total->n_dom);
  for (int i = 0; i < k; i++)
    fprintf(p->f, "%sc%d", i ? " " : "", parts[i]->n_dom);
  fputs("\"></span>\n", p->f);
}

/* ------------------------------------------------------------- charts */

static const char *const palette[] = {"#0072B2", "#E69F00", "#009E73", "#CC79A7",
                                      "#56B4E9", "#D55E00", "#999999", "#F0E442"};
enum { PALETTE = sizeof palette / sizeof palette[0] };

enum { SVG_W = 800, LAB_W = 250, PLOT_W = 430, BAR_H = 15, BAR_GAP = 3, GROUP_GAP = 11 };

/* Characters of UTF-8 text (continuation bytes do not count). */
static int text_chars(const char *s) {
  int n = 0;
  for (; *s; s++)
    n += ((unsigned char)*s & 0xc0) != 0x80;
  return n;
}

static int shown(double share) {
  return !isnan(share) && !report_share_suppressed(share);
}

/* Legend swatches from x 10, wrapped to rows of the chart's width; draws
 * when f is not NULL. The number of rows. */
static int legend(FILE *f, const char *const *names, int count, int y) {
  int x = 10, rows = 1;
  for (int s = 0; s < count; s++) {
    int w = 26 + (int)(6.3 * (double)text_chars(names[s]));
    if (x > 10 && x + w > SVG_W) {
      x = 10;
      y += 18;
      rows++;
    }
    if (f) {
      fprintf(f,
              "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>"
              "<text x=\"%d\" y=\"%d\" class=\"lg\">",
              x, y, palette[s % PALETTE], x + 16, y + 10);
      esc(f, names[s]);
      fputs("</text>", f);
    }
    x += w;
  }
  return rows;
}

static void x_axis(FILE *f, int top, int bottom) {
  for (int t = 0; t <= 100; t += 20) {
    int x = LAB_W + t * PLOT_W / 100;
    fprintf(f,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"grid\"/>"
            "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%d %%</text>",
            x, top, x, bottom, x, bottom + 14, t);
  }
  fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>", LAB_W, bottom,
          LAB_W + PLOT_W, bottom);
  fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>", LAB_W, top, LAB_W,
          bottom);
}

/* A chart's <svg> of the page's width and this height, named for readers. */
static void chart_open(FILE *f, int height, const char *aria) {
  fprintf(f,
          "<svg class=\"chart\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" "
          "aria-label=\"",
          SVG_W, height, SVG_W, height);
  esc(f, aria);
  fputs("\">", f);
}

/* Horizontal bars: ncat categories of nser series each (items in category
 * order, series inside), 0..100 %, the value beside each bar and the
 * report's figure as a black mark with its number. */
static void bar_chart(page *p, const item *items, int ncat, int nser, const char *const *series,
                      const char *aria) {
  FILE *f = p->f;
  int top = nser > 1 ? 8 + 18 * legend(NULL, series, nser, 0) : 6;
  int group = nser * BAR_H + (nser - 1) * BAR_GAP;
  int bottom = top + ncat * group + (ncat - 1) * GROUP_GAP + 8;
  int height = bottom + 22;
  chart_open(f, height, aria);
  if (nser > 1)
    legend(f, series, nser, 4);
  x_axis(f, top - 2, bottom);
  for (int c = 0; c < ncat; c++) {
    int y0 = top + 4 + c * (group + GROUP_GAP);
    fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"cat\" text-anchor=\"end\">", LAB_W - 8,
            y0 + group / 2 + 4);
    esc(f, items[c * nser].label);
    fputs("</text>", f);
    for (int s = 0; s < nser; s++) {
      const item *it = &items[c * nser + s];
      int y = y0 + s * (BAR_H + BAR_GAP);
      char v[32];
      report_format_share(v, sizeof v, it->share);
      double w = shown(it->share) ? it->share * PLOT_W / 100.0 : 0;
      fprintf(f, "<g><title>");
      esc(f, it->label);
      if (it->series) {
        fputs(", ", f);
        esc(f, it->series);
      }
      fprintf(f, ": %s %%", v);
      if (!isnan(it->report))
        fprintf(f, " (rapporten: %.0f %%)", it->report);
      fprintf(f,
              "</title><rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\" "
              "class=\"bar\"/>",
              LAB_W, y, w, BAR_H, palette[(nser > 1 ? s : 0) % PALETTE]);
      double label_x = LAB_W + w;
      if (!isnan(it->report)) {
        double rx = LAB_W + it->report * PLOT_W / 100.0;
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"mark\"/>"
                "<path d=\"M%.1f %d l4 -4 l4 4 l-4 4 z\" class=\"markd\"/>",
                rx, y - 2, rx, y + BAR_H + 2, rx - 4, y + BAR_H / 2);
        if (rx + 4 > label_x)
          label_x = rx + 4;
      }
      fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"val\">%s", label_x + 5, y + BAR_H - 3, v);
      if (!isnan(it->report))
        fprintf(f, "<tspan class=\"rv\"> · rapport %.0f</tspan>", it->report);
      fputs("</text></g>", f);
    }
  }
  fputs("</svg>\n", f);
}

/* 100 % stacked bars, one per category (fig. 2). */
static void stacked_chart(page *p, const item *items, int ncat, int nser, const char *const *series,
                          const char *aria) {
  FILE *f = p->f;
  int top = 8 + 18 * legend(NULL, series, nser, 0), bar = 18, gap = 6;
  int bottom = top + ncat * (bar + gap) + 4;
  int height = bottom + 22;
  chart_open(f, height, aria);
  legend(f, series, nser, 4);
  x_axis(f, top - 2, bottom);
  for (int c = 0; c < ncat; c++) {
    int y = top + 4 + c * (bar + gap);
    fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"cat\" text-anchor=\"end\">", LAB_W - 8, y + 13);
    esc(f, items[c * nser].label);
    fputs("</text>", f);
    double x = LAB_W;
    for (int s = 0; s < nser; s++) {
      const item *it = &items[c * nser + s];
      if (!shown(it->share))
        continue;
      double w = it->share * PLOT_W / 100.0;
      char v[32];
      report_format_share(v, sizeof v, it->share);
      fprintf(f, "<g><title>");
      esc(f, it->label);
      fprintf(f, ", %s: %s %%</title>", it->series, v);
      fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>", x, y, w,
              bar, palette[s % PALETTE]);
      if (w >= 32)
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"in\" text-anchor=\"middle\">%s</text>",
                x + w / 2, y + 13, v);
      fputs("</g>", f);
      x += w;
    }
  }
  fputs("</svg>\n", f);
}

/* A "nice" axis maximum >= v: 1, 2, 2.5 or 5 times a power of ten. */
static double nice_max(double v) {
  if (!(v > 0))
    return 1;
  double e = pow(10, floor(log10(v)));
  static const double steps[] = {1, 2, 2.5, 5, 10};
  for (int i = 0; i < 5; i++)
    if (steps[i] * e >= v)
      return steps[i] * e;
  return 10 * e;
}

/* Lines over the months first..last; values[s * months + k], NAN or
 * REPORT_SHARE_SUPPRESSED for a gap. */
static void line_chart(page *p, int first, int months, const double *values, int nser,
                       const char *const *names, const char *unit, const char *aria) {
  FILE *f = p->f;
  const int L = 70, R = 200, T = 12, B = 36, H = 250;
  const int pw = SVG_W - L - R, ph = H - T - B;
  double vmax = 0;
  for (int i = 0; i < nser * months; i++)
    if (shown(values[i]) && values[i] > vmax)
      vmax = values[i];
  vmax = nice_max(vmax);
  chart_open(f, H, aria);
  for (int t = 0; t <= 5; t++) {
    double val = vmax * t / 5;
    int y = T + ph - t * ph / 5;
    fprintf(f,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"grid\"/>"
            "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"end\">%g%s</text>",
            L, y, L + pw, y, L - 6, y + 4, val, unit);
  }
#define XOF(k) (L + (months > 1 ? (double)(k)*pw / (months - 1) : pw / 2.0))
  for (int k = 0; k < months; k++) {
    int32_t per = period_from_month(first + k);
    if (per % 100 == 1 || (k == 0 && months < 13))
      fprintf(f,
              "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"grid\"/>"
              "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%d</text>",
              XOF(k), T, XOF(k), T + ph + 4, XOF(k), T + ph + 18, per / 100);
  }
  fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>", L, T + ph, L + pw,
          T + ph);
  fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>", L, T, L, T + ph);
  int at = p->d->at - first;
  if (at >= 0 && at < months)
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"atline\"/>"
            "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">måling %04d-%02d"
            "</text>",
            XOF(at), T, XOF(at), T + ph, XOF(at), T + ph + 32, p->d->at_period / 100,
            p->d->at_period % 100);
  for (int s = 0; s < nser; s++) {
    const double *v = values + s * months;
    int open = 0;
    for (int k = 0; k < months; k++) {
      if (!shown(v[k])) {
        if (open)
          fputs("\"/>", f);
        open = 0;
        continue;
      }
      if (!open)
        fprintf(f,
                "<polyline class=\"line\" fill=\"none\" stroke-width=\"2\" stroke=\"%s\" "
                "points=\"",
                palette[s % PALETTE]);
      fprintf(f, "%s%.1f,%.1f", open ? " " : "", XOF(k), T + ph - v[k] / vmax * ph);
      open = 1;
    }
    if (open)
      fputs("\"/>", f);
  }
  for (int s = 0; s < nser; s++) {
    int y = T + 8 + s * 18;
    fprintf(f,
            "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"4\" fill=\"%s\"/>"
            "<text x=\"%d\" y=\"%d\" class=\"lg\">",
            L + pw + 12, y - 4, palette[s % PALETTE], L + pw + 30, y + 1);
    esc(f, names[s]);
    fputs("</text>", f);
  }
#undef XOF
  fputs("</svg>\n", f);
}

/* A sparkline of months values (gaps at NAN / suppressed), 0..its maximum. */
static void sparkline(FILE *f, const double *v, int months) {
  const int W = 96, H = 22;
  double vmax = 0;
  for (int k = 0; k < months; k++)
    if (shown(v[k]) && v[k] > vmax)
      vmax = v[k];
  vmax = vmax > 0 ? vmax : 1;
  fprintf(f, "<svg class=\"spark\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\">", W, H, W, H);
  int open = 0;
  for (int k = 0; k < months; k++) {
    if (!shown(v[k])) {
      if (open)
        fputs("\"/>", f);
      open = 0;
      continue;
    }
    double x = months > 1 ? 1 + (double)k * (W - 2) / (months - 1) : W / 2.0;
    double y = H - 2 - v[k] / vmax * (H - 4);
    fprintf(f, "%s%.1f,%.1f", open ? " " : "<polyline points=\"", x, y);
    open = 1;
  }
  if (open)
    fputs("\"/>", f);
  fputs("</svg>", f);
}

/* ------------------------------------------------------------- figures */

static void figure_open(page *p, const char *id, const char *title, const char *subtitle) {
  fprintf(p->f, "<section class=\"fig\" id=\"%s\"><h2>", id);
  esc(p->f, title);
  fputs("</h2><p class=\"en\">", p->f);
  esc(p->f, subtitle);
  fputs("</p>\n", p->f);
}

static void figure_note(page *p, const char *note) {
  fputs("<p class=\"note\">", p->f);
  esc(p->f, note);
  fputs("</p>\n", p->f);
}

static void figure_close(page *p) {
  fputs("</section>\n", p->f);
}

/* The report's visitation categories (figures 1, 7). */
typedef struct vis_group {
  const char *name;
  unsigned vmask;
} vis_group;

static int vis_groups(const page *p, vis_group *out) {
  int n = 0;
  out[n++] = (vis_group){"aktivitetsparat", REPORT_VIS(VISITATION_AKTIVITETSPARAT)};
  out[n++] = (vis_group){"jobparat", REPORT_VIS(VISITATION_JOBPARAT)};
  out[n++] = (vis_group){"selvforsørgende", REPORT_VIS(VISITATION_SELVFORSOERGENDE)};
  out[n++] = (vis_group){"øvrig ydelse", REPORT_VIS_OEVRIG};
  if (report_members(p->d, p->d->at, NULL, REPORT_VIS(VISITATION_UNKNOWN)) > 0)
    out[n++] = (vis_group){"ukendt", REPORT_VIS(VISITATION_UNKNOWN)};
  return n;
}

static void fig1(page *p) {
  const unsigned ALL = REPORT_VIS_ALL;
  item it[6];
  int n = 0;
  it[n++] = mk(p, "aktivitetsparat", NULL, "members", REPORT_VIS(VISITATION_AKTIVITETSPARAT),
               "members", ALL, NULL, M_VIS_AKT);
  it[n++] = mk(p, "jobparat", NULL, "members", REPORT_VIS(VISITATION_JOBPARAT), "members", ALL,
               NULL, M_VIS_JOB);
  it[n++] = mk(p, "selvforsørgende", NULL, "members", REPORT_VIS(VISITATION_SELVFORSOERGENDE),
               "members", ALL, NULL, M_VIS_SELV);
  it[n++] =
      mk(p, "øvrig ydelse", NULL, "members", REPORT_VIS_OEVRIG, "members", ALL, NULL, M_VIS_OEVRIG);
  if (report_members(p->d, p->d->at, NULL, REPORT_VIS(VISITATION_UNKNOWN)) > 0)
    it[n++] = mk(p, "ukendt visitation", NULL, "members", REPORT_VIS(VISITATION_UNKNOWN), "members",
                 ALL, NULL, -1);
  it[n++] =
      mk(p, "heraf uddannelsespålæg", NULL, "members", REPORT_VIS(VISITATION_UDDANNELSESPARAT),
         "members", REPORT_VIS_OEVRIG, NULL, M_VIS_UDD_OF_OEVRIG);
  figure_open(p, "fig1",
              "Figur 1: Samlet fordeling af de deltagende kvinder i projektet i procent.",
              "Entry visitation of all participants (share of participants; the last bar: share "
              "of øvrig ydelse with an education order).");
  bar_chart(p, it, n, 1, NULL, "Figur 1");
  figure_note(p, "Rapporten (3.1.3): lidt mere end halvdelen aktivitetsparate (SPEC §8: ≈60 "
                 "pct.), ca. en fjerdedel jobparate, 7 pct. selvforsørgende, 8 pct. øvrig "
                 "ydelse, heraf ca. en tredjedel med uddannelsespålæg.");
  data_table(p, it, n, NULL);
  group(p, it, 0, 1, n - 1, 0); /* the categories add up to the participants */
  group(p, it, n - 1, 1, 1, 1); /* education order, and the rest of øvrig ydelse */
  figure_close(p);
}

/* Municipalities with members at the measurement point, in index order. */
static int present_municipalities(const page *p, int *out) {
  int n = 0;
  for (int m = 0; m < MUNICIPALITY_COUNT; m++)
    if (report_sum(p->d, p->d->at, m, REPORT_VIS_ALL, ROLLUP_MEMBERS) > 0)
      out[n++] = m;
  return n;
}

static void fig2(page *p) {
  int ms[MUNICIPALITY_COUNT];
  int nm = present_municipalities(p, ms);
  vis_group g[6];
  int ng = vis_groups(p, g);
  /* order: aktivitetsparat share, highest first (the report's five on top) */
  double akt[MUNICIPALITY_COUNT];
  for (int i = 0; i < nm; i++) {
    int code[2] = {municipality_codes[ms[i]], 0};
    report_count a = report_members(p->d, p->d->at, code, g[0].vmask);
    report_count all = report_members(p->d, p->d->at, code, REPORT_VIS_ALL);
    akt[i] = report_share(a, all);
    /* a share that cannot be shown (count in [1, N)) does not place its
     * municipality: those go last */
    if (p->d->min_cell > 1 &&
        ((a >= 1 && a < p->d->min_cell) || (all >= 1 && all < p->d->min_cell)))
      akt[i] = -2;
  }
  for (int i = 1; i < nm; i++)
    for (int j = i; j > 0 && akt[j] > akt[j - 1]; j--) {
      double t = akt[j];
      akt[j] = akt[j - 1];
      akt[j - 1] = t;
      int u = ms[j];
      ms[j] = ms[j - 1];
      ms[j - 1] = u;
    }
  item *it = calloc((size_t)(nm * ng) + 1, sizeof *it);
  if (!it)
    return;
  const char *names[6];
  for (int s = 0; s < ng; s++)
    names[s] = g[s].name;
  for (int i = 0; i < nm; i++) {
    int code[2] = {municipality_codes[ms[i]], 0};
    for (int s = 0; s < ng; s++)
      it[i * ng + s] = mk(p, municipality_names[ms[i]], g[s].name, "members", g[s].vmask, "members",
                          REPORT_VIS_ALL, code, -1);
  }
  figure_open(
      p, "fig2",
      "Figur 2: Kvindernes status ved indtrædelse i projektet fordelt på kommuner i procent.",
      "Entry visitation per municipality (share of the municipality's participants), the "
      "highest aktivitetsparat share first.");
  stacked_chart(p, it, nm, ng, names, "Figur 2");
  figure_note(p, "Rapporten (3.1.3, 3.1.5): fem kommuner havde hovedsageligt aktivitetsparate "
                 "kvinder: Brøndby 66, Esbjerg/Fanø 77, Aalborg 85, Hvidovre 91 og Aarhus 93 pct. "
                 "(se figur 5).");
  data_table(p, it, nm * ng, NULL);
  for (int i = 0; i < nm; i++)
    group(p, it, i * ng, 1, ng, 0); /* a municipality's categories add up to it */
  figure_close(p);
  free(it);
}

static void fig3(page *p) {
  const unsigned ALL = REPORT_VIS_ALL;
  item it[4];
  it[0] = mk(p, "mål 1 (uddannelse/beskæftigelse)", NULL, "acc_goal1", ALL, "members", ALL, NULL,
             M_GOAL1);
  it[1] = mk(p, "mål 2 (løntimer/deltid)", NULL, "acc_goal2", ALL, "members", ALL, NULL, M_GOAL2);
  it[2] =
      mk(p, "mål 3 (praktik/løntilskud)", NULL, "acc_goal3", ALL, "members", ALL, NULL, M_GOAL3);
  it[3] = mk(p, "mål 1 eller 2", NULL, COLS_ACC12, ALL, "members", ALL, NULL, M_GOAL12);
  figure_open(p, "fig3", "Figur 3: Projektets samlede målopfyldelse for mål 1-3 i procent.",
              "Accumulated goal over the project (share of participants): each participant counts "
              "once, at the highest goal reached.");
  bar_chart(p, it, 4, 1, NULL, "Figur 3");
  data_table(p, it, 4, NULL);
  group(p, it, 0, 1, 3, 1); /* goal 1, 2, 3 and none add up to the participants */
  const item *g12[2] = {&it[0], &it[1]};
  group_to(p, &it[3], g12, 2);
  figure_close(p);

  /* the text by figure 4: goal 1 or 2 per municipality, 36..55 % */
  int ms[MUNICIPALITY_COUNT];
  int nm = present_municipalities(p, ms);
  item *mi = calloc((size_t)nm + 2, sizeof *mi);
  if (!mi)
    return;
  const measure *lo = &p->r->m[M_GOAL12_LOWEST], *hi = &p->r->m[M_GOAL12_HIGHEST];
  for (int i = 0; i < nm; i++) {
    int code[2] = {municipality_codes[ms[i]], 0};
    mi[i] = mk(p, municipality_names[ms[i]], NULL, COLS_ACC12, ALL, "members", ALL, code, -1);
    if (ms[i] == lo->municipality)
      mi[i].report = lo->report;
    if (ms[i] == hi->municipality)
      mi[i].report = hi->report;
  }
  int lo_code[2] = {lo->municipality >= 0 ? municipality_codes[lo->municipality] : 0, 0};
  int hi_code[2] = {hi->municipality >= 0 ? municipality_codes[hi->municipality] : 0, 0};
  mi[nm] =
      mk(p, "laveste kommune", NULL, COLS_ACC12, ALL, "members", ALL, lo_code, M_GOAL12_LOWEST);
  mi[nm + 1] =
      mk(p, "højeste kommune", NULL, COLS_ACC12, ALL, "members", ALL, hi_code, M_GOAL12_HIGHEST);
  snprintf(mi[nm].label, sizeof mi[nm].label, "laveste kommune (%s)",
           lo->municipality >= 0 ? municipality_names[lo->municipality] : "..");
  snprintf(mi[nm + 1].label, sizeof mi[nm + 1].label, "højeste kommune (%s)",
           hi->municipality >= 0 ? municipality_names[hi->municipality] : "..");
  figure_open(p, "fig3b", "Mål 1 eller 2 fordelt på kommuner i procent (teksten til figur 4).",
              "Goal 1 or 2 reached per municipality (share of the municipality's participants); "
              "the report gives the range, 36 to 55 pct., marked at the lowest and the highest.");
  bar_chart(p, mi, nm, 1, NULL, "Mål 1 eller 2 pr. kommune");
  data_table(p, mi, nm + 2, NULL);
  figure_close(p);
  free(mi);
}

/* Durable employment by goal (figures 4 and 8). */
static void durable_by_goal(page *p, unsigned vmask, const char *id, const char *title,
                            const char *subtitle, const char *note, int with_measures) {
  static const char *const goal_name[3] = {"mål 1", "mål 2", "mål 3"};
  static const char *const series[2] = {"hel varig beskæftigelse", "delvis varig beskæftigelse"};
  item it[6];
  for (int k = 0; k < 3; k++) {
    it[2 * k] = mk(p, goal_name[k], series[0], goal_full_cols[k], vmask, goal_acc_cols[k], vmask,
                   NULL, with_measures ? M_DUR_G1_FULL + 2 * k : -1);
    it[2 * k + 1] = mk(p, goal_name[k], series[1], goal_part_cols[k], vmask, goal_acc_cols[k],
                       vmask, NULL, with_measures ? M_DUR_G1_PART + 2 * k : -1);
  }
  figure_open(p, id, title, subtitle);
  bar_chart(p, it, 3, 2, series, title);
  if (note)
    figure_note(p, note);
  data_table(p, it, 6, NULL);
  for (int k = 0; k < 3; k++) /* full, partial and neither add up to the goal group */
    group(p, it, 2 * k, 1, 2, 1);
  figure_close(p);
}

static void fig5(page *p) {
  static const char *const series[4] = {"aktivitetsparate ved indtræden", "mål 1 eller 2",
                                        "hel varig beskæftigelse", "delvis varig beskæftigelse"};
  const unsigned ALL = REPORT_VIS_ALL;
  item it[20];
  for (int i = 0; i < 5; i++) {
    const int *codes = report_five[i].codes;
    const char *name = report_five[i].name;
    it[4 * i] = mk(p, name, series[0], "members", REPORT_VIS(VISITATION_AKTIVITETSPARAT), "members",
                   ALL, codes, M_AKT_FIVE + i);
    it[4 * i + 1] = mk(p, name, series[1], COLS_ACC12, ALL, "members", ALL, codes, -1);
    int full_measure = !strcmp(name, "Aarhus")     ? M_AARHUS_FULL
                       : !strcmp(name, "Hvidovre") ? M_HVIDOVRE_FULL
                                                   : -1;
    it[4 * i + 2] = mk(p, name, series[2], COLS_FULL, ALL, "members", ALL, codes, full_measure);
    it[4 * i + 3] = mk(p, name, series[3], COLS_PART, ALL, "members", ALL, codes, -1);
  }
  char sub[300];
  snprintf(sub, sizeof sub,
           "The five municipalities with the highest aktivitetsparat share: that share, goal 1 "
           "or 2 reached, and durable full-time and part-time employment at %04d-%02d (shares of "
           "the municipality's participants).",
           p->d->at_period / 100, p->d->at_period % 100);
  figure_open(p, "fig5",
              "Figur 5: Målopfyldelse for mål 1-2 og hel eller delvis varig beskæftigelse 'for "
              "top 5' kommuner med størst andel aktivitetsparate.",
              sub);
  bar_chart(p, it, 5, 4, series, "Figur 5");
  figure_note(p, "Rapporten (3.1.5) giver andelen aktivitetsparate for de fem og varig "
                 "fuldtidsbeskæftigelse for Aarhus (22 pct.) og Hvidovre (11 pct.); "
                 "Esbjerg/Fanø er ét projekt (kommune 561 og 563).");
  data_table(p, it, 20, NULL);
  figure_close(p);
}

static void fig7(page *p) {
  static const char *const series[4] = {"mål 1", "mål 2", "mål 3", "mål 1 eller 2"};
  vis_group g[6];
  int ng = vis_groups(p, g);
  item it[24];
  for (int i = 0; i < ng; i++) {
    for (int k = 0; k < 3; k++)
      it[4 * i + k] = mk(p, g[i].name, series[k], goal_acc_cols[k], g[i].vmask, "members",
                         g[i].vmask, NULL, -1);
    it[4 * i + 3] = mk(p, g[i].name, series[3], COLS_ACC12, g[i].vmask, "members", g[i].vmask, NULL,
                       i == 0 ? M_GOAL12_AKT : -1);
  }
  figure_open(p, "fig7",
              "Figur 7: Projektets målopfyldelse fordelt på kvindernes visitationskategori ved "
              "deres indtrædelse i projektet i procent.",
              "Accumulated goal over the project by entry visitation (share of the category's "
              "participants).");
  bar_chart(p, it, ng, 4, series, "Figur 7");
  figure_note(p, "Rapporten (3.1.6): 33 pct. af de aktivitetsparate nåede mål 1 eller 2.");
  data_table(p, it, 4 * ng, NULL);
  for (int i = 0; i < ng; i++) { /* per category: goal 1, 2, 3, none; 1 + 2 */
    group(p, it, 4 * i, 1, 3, 1);
    const item *g12[2] = {&it[4 * i], &it[4 * i + 1]};
    group_to(p, &it[4 * i + 3], g12, 2);
  }
  figure_close(p);
}

/* Status at the measurement point (figures 9 and 10). */
static void status_figure(page *p, unsigned vmask, const char *id, const char *title,
                          const char *subtitle, const int *ids, const char *note) {
  static const struct {
    const char *name, *cols;
  } cat[6] = {{"uddannelse/hel eller delvis job", COLS_EDU_EMP},
              {"fleksjob", "status_flexjob"},
              {"førtidspension", "status_disability_pension"},
              {"virksomhedspraktik/løntilskud", "status_company_placement"},
              {"ledig på ydelse", "status_on_benefit"},
              {"selvforsørgende (resten)", "status_self_supporting"}};
  item it[6];
  for (int i = 0; i < 6; i++)
    it[i] = mk(p, cat[i].name, NULL, cat[i].cols, vmask, "members", vmask, NULL, ids[i]);
  figure_open(p, id, title, subtitle);
  bar_chart(p, it, 6, 1, NULL, title);
  figure_note(p, note);
  data_table(p, it, 6, NULL);
  group(p, it, 0, 1, 6, 0); /* the six categories add up to the participants */
  figure_close(p);
}

/* ------------------------------------------------------------- series */

typedef struct series_def {
  const char *name, *cols;
} series_def;

static const series_def share_series[5] = {
    {"mål 1 (akkumuleret)", "acc_goal1"},      {"mål 2 (akkumuleret)", "acc_goal2"},
    {"mål 3 (akkumuleret)", "acc_goal3"},      {"hel varig beskæftigelse", COLS_FULL},
    {"delvis varig beskæftigelse", COLS_PART},
};

/* The five series of a month (all municipalities or codes) as items. */
static void series_items(const page *p, int month, const int *codes, item *row) {
  for (int s = 0; s < 5; s++)
    row[s] = mk_at(p, month, share_series[s].name, NULL, share_series[s].cols, REPORT_VIS_ALL,
                   "members", REPORT_VIS_ALL, codes, -1);
}

/* A row's cells after its participants' cell den: n and share of each
 * series, then (hidden) its groups: goal 1, 2, 3 and none add up to the
 * participants, and so do durable full, partial and neither. */
static void series_cells(page *p, item *row, int den, const int *codes, int month,
                         const double *spark, int months) {
  for (int s = 0; s < 5; s++) {
    if (spark) {
      fputs("<td>", p->f);
      sparkline(p->f, spark + (1 + s) * months, months);
      fputs("</td>", p->f);
    }
    row[s].N_dom = den;
    row[s].n_dom = count_cell(p, row[s].n, share_series[s].cols, REPORT_VIS_ALL, codes, month,
                              spark ? "small" : NULL);
    share_cell(p, row[s].share, row[s].n_dom, den, -1);
  }
  fputs("<td class=\"grp\" hidden>", p->f);
  group(p, row, 0, 1, 3, 1);
  group(p, row, 3, 1, 2, 1);
  fputs("</td>", p->f);
}

/* Month by month values of the series for codes (NULL: all) into v
 * (months * 6: participants, then the five shares), as shown. */
static void series_values(const page *p, const int *codes, double *v, int months) {
  const report_data *d = p->d;
  for (int k = 0; k < months; k++) {
    int month = d->first + k;
    report_count members =
        report_pub_shown(p->t, cell_of(p, month, "members", codes, REPORT_VIS_ALL));
    v[k] = members == REPORT_SUPPRESSED ? REPORT_SHARE_SUPPRESSED : (double)members;
    for (int s = 0; s < 5; s++)
      v[(1 + s) * months + k] =
          shown_share(p, month, share_series[s].cols, "members", codes, REPORT_VIS_ALL);
  }
}

static void monthly(page *p) {
  const report_data *d = p->d;
  FILE *f = p->f;
  int months = d->last - d->first + 1;
  double *v = calloc((size_t)months * 6, sizeof *v);
  if (!v)
    return;
  series_values(p, NULL, v, months);
  fputs("<section class=\"fig\" id=\"series\"><h2>Månedlige serier: alle deltagere</h2>"
        "<p class=\"en\">Monthly series for a live monitor: members (participants who have "
        "entered), the shares who reached goal 1, 2 and 3 so far, and durable employment "
        "(the last six months), per month, all municipalities.</p>\n",
        f);
  static const char *const members_name[1] = {"deltagere"};
  line_chart(p, d->first, months, v, 1, members_name, "", "Deltagere pr. måned");
  const char *names[5];
  for (int s = 0; s < 5; s++)
    names[s] = share_series[s].name;
  line_chart(p, d->first, months, v + months, 5, names, " %", "Andele pr. måned");
  fputs("<details class=\"data\"><summary>Tal pr. måned (numbers per month)</summary>"
        "<table class=\"data\"><thead><tr><th>måned</th><th>deltagere</th>",
        f);
  for (int s = 0; s < 5; s++) {
    fputs("<th>n</th><th>", f);
    esc(f, share_series[s].name);
    fputs(" %</th>", f);
  }
  fputs("</tr></thead><tbody>\n", f);
  for (int k = 0; k < months; k++) {
    int month = d->first + k;
    int32_t per = period_from_month(month);
    fprintf(f, "<tr><td>%04d-%02d</td>", per / 100, per % 100);
    item row[5];
    series_items(p, month, NULL, row);
    int den = count_cell(p, row[0].N, "members", REPORT_VIS_ALL, NULL, month, NULL);
    series_cells(p, row, den, NULL, month, NULL, months);
    fputs("</tr>\n", f);
  }
  fputs("</tbody></table></details></section>\n", f);

  /* per municipality: sparklines, the value at the last month beside each */
  fprintf(f,
          "<section class=\"fig\" id=\"municipalities\"><h2>Månedlige serier pr. kommune</h2>"
          "<p class=\"en\">Per municipality of entry (those in the rollup): a sparkline per "
          "series from %04d-%02d to %04d-%02d (each scaled to its own maximum; a gap where the "
          "value is not shown), and the value in the last month with its count n.</p>\n"
          "<table class=\"muni\"><thead><tr><th>kommune</th><th colspan=\"2\">deltagere</th>",
          period_from_month(d->first) / 100, period_from_month(d->first) % 100,
          period_from_month(d->last) / 100, period_from_month(d->last) % 100);
  for (int s = 0; s < 5; s++) {
    fputs("<th colspan=\"3\">", f);
    esc(f, share_series[s].name);
    fputs(" %</th>", f);
  }
  fputs("</tr></thead><tbody>\n", f);
  for (int m = 0; m < MUNICIPALITY_COUNT; m++) {
    int code[2] = {municipality_codes[m], 0};
    int any = 0;
    for (int k = 0; k < months && !any; k++)
      any = report_members(d, d->first + k, code, REPORT_VIS_ALL) > 0;
    if (!any)
      continue;
    series_values(p, code, v, months);
    fputs("<tr><th class=\"mname\">", f);
    esc(f, municipality_names[m]);
    fprintf(f, " <span class=\"code\">%d</span></th><td>", code[0]);
    sparkline(f, v, months);
    fputs("</td>", f);
    item row[5];
    series_items(p, d->last, code, row);
    int den = count_cell(p, row[0].N, "members", REPORT_VIS_ALL, code, d->last, NULL);
    series_cells(p, row, den, code, d->last, v, months);
    fputs("</tr>\n", f);
  }
  fputs("</tbody></table></section>\n", f);
  free(v);
}

/* ------------------------------------------------------------- the page */

static const char css[] =
    "body{font-family:'DejaVu Sans',Arial,Helvetica,sans-serif;color:#222;margin:24px auto;"
    "max-width:1200px;padding:0 16px;line-height:1.4}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:0 0 2px}"
    "p.en{margin:0 0 8px;color:#555;font-size:13px;font-style:italic}"
    "p.meta{font-size:13px;color:#333}p.note{font-size:12px;color:#444;margin:4px 0}"
    "section.fig{border-top:1px solid #ccc;padding:14px 0 10px;break-inside:avoid;"
    "page-break-inside:avoid}"
    "svg.chart{display:block;max-width:100%;height:auto}"
    "svg text{font-family:'DejaVu Sans',Arial,Helvetica,sans-serif}"
    ".grid{stroke:#e3e3e3;stroke-width:1}.axis{stroke:#555;stroke-width:1}"
    ".tick{font-size:10px;fill:#555}.cat{font-size:11px;fill:#222}.lg{font-size:11px;fill:#222}"
    ".val{font-size:10px;fill:#222}.rv{fill:#000;font-weight:bold}.in{font-size:10px;fill:#fff}"
    ".mark{stroke:#000;stroke-width:2}.markd{fill:#000}"
    ".atline{stroke:#888;stroke-dasharray:4 3}"
    "details.data{font-size:12px;margin:4px 0}summary{cursor:pointer;color:#0b5394}"
    "table{border-collapse:collapse;font-size:12px}"
    "td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}"
    "table.data td:nth-child(2){text-align:left}"
    "table.muni{font-size:11px}table.muni td{padding:1px 4px}"
    "th.mname{text-align:left;font-weight:normal;white-space:nowrap}.code{color:#888}"
    "td.small{color:#777;font-size:10px}td.supp{color:#a00}"
    "svg.spark polyline{fill:none;stroke:#0072B2;stroke-width:1.5}"
    "footer{border-top:1px solid #ccc;margin-top:16px;font-size:12px;color:#333}"
    "@media print{body{margin:0;max-width:none}details.data{display:none}"
    "section.fig{padding:6px 0}}";

static int write_page(page *p) {
  const report_data *d = p->d;
  FILE *f = p->f;
  int at_y = d->at_period / 100, at_m = d->at_period % 100;
  report_key mk_members = {.cols = 1u << ROLLUP_MEMBERS, .vis = REPORT_VIS_ALL, .month = d->at};
  report_count members = report_pub_shown(p->t, report_pub_cell(p->t, &mk_members));
  char members_s[32];
  report_format_count(members_s, sizeof members_s, members);
  int ms[MUNICIPALITY_COUNT];
  int nm = present_municipalities(p, ms);
  fprintf(f,
          "<!DOCTYPE html>\n<html lang=\"da\"><head><meta charset=\"utf-8\">"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
          "<title>KIB-evalueringen, figurer fra regstream, ultimo %s %d</title>"
          "<style>%s</style></head><body>\n",
          month_da[at_m - 1], at_y, css);
  fprintf(f,
          "<header><h1>KIB-evalueringen (2023), afsnit 3.1: figurerne genberegnet fra "
          "rollup'en</h1><p class=\"en\">The evaluation report's figures redrawn by regstream "
          "from the rollup, measured at the end of %04d-%02d; the report's own figure is the "
          "black mark and its number beside each value.</p>\n<p class=\"meta\" "
          "id=\"meta\" data-period=\"%d\" data-members=\"%s\" data-municipalities=\"%d\" "
          "data-rows=\"%zu\" data-min-cell=\"%u\" data-input=\"%s\">Kilde: ",
          at_y, at_m, d->at_period, members_s, nm, d->rows, (unsigned)d->min_cell,
          report_presuppressed(d) ? "suppressed" : "exact");
  esc(f, d->source);
  fprintf(f,
          " · opgjort ultimo %s %d · %s deltagere i %d kommuner · %zu rollup-rækker i "
          "måneden",
          month_da[at_m - 1], at_y, members_s, nm, d->rows);
  if (report_presuppressed(d))
    fprintf(f,
            " · <b>input allerede diskretioneret</b> (%zu tomme felter): en sum med et ukendt "
            "tal vises som \"..\" (<a href=\"#fn-disclosure\">note</a>)",
            d->unknown_cells);
  if (d->min_cell > 1)
    fprintf(f,
            " · diskretionering --min-cell %u af de viste tal: %zu tal vist som \"..\" "
            "(<a href=\"#fn-disclosure\">note</a>)",
            (unsigned)d->min_cell, p->t->suppressed);
  fputs("</p></header>\n<main>\n", f);

  char title[240], sub[240];
  fig1(p);
  fig2(p);
  fig3(p);
  snprintf(sub, sizeof sub,
           "Durable employment at %04d-%02d (three consecutive months of employment within the "
           "last six) by accumulated goal (share of the goal group).",
           at_y, at_m);
  durable_by_goal(p, REPORT_VIS_ALL, "fig4",
                  "Figur 4: Andel af kvinder i hel eller delvis varig beskæftigelse fordelt på "
                  "kvindernes målopnåelse (mål 1-3) i projektperioden i procent.",
                  sub, NULL, 1);
  fig5(p);
  fig7(p);
  snprintf(sub, sizeof sub,
           "Aktivitetsparate at entry: durable employment at %04d-%02d by accumulated goal "
           "(share of the goal group).",
           at_y, at_m);
  durable_by_goal(p, REPORT_VIS(VISITATION_AKTIVITETSPARAT), "fig8",
                  "Figur 8: Andel af kvinder, som var aktivitetsparate ved deres indtræden i "
                  "projektet, der har været i hel eller delvis varig beskæftigelse fordelt på "
                  "kvindernes målopnåelse (mål 1-3) i procent.",
                  sub,
                  "Rapporten (3.1.6) giver ingen tal: de aktivitetsparate, der nåede mål 1, "
                  "opnår varig beskæftigelse i lige så høj grad som alle (figur 4).",
                  0);
  static const int all_ids[6] = {M_ST_EDU_EMP,   M_ST_FLEX,    M_ST_DP,
                                 M_ST_PLACEMENT, M_ST_BENEFIT, M_ST_SELF};
  snprintf(title, sizeof title,
           "Figur 9: Alle deltagende kvinder fordelt på aktiviteter ultimo %s %d i procent.",
           month_da[at_m - 1], at_y);
  snprintf(sub, sizeof sub, "All participants by status at %04d-%02d (share of participants).",
           at_y, at_m);
  status_figure(p, REPORT_VIS_ALL, "fig9", title, sub, all_ids,
                "Rapporten (3.1.7): 32 pct. i uddannelse eller hel eller delvis beskæftigelse, "
                "2 pct. i fleksjob, 5 pct. førtidspension, 51 pct. ledige på ydelse, resten "
                "selvforsørgende; virksomhedspraktik og løntilskud nævnes ikke.");
  /* figure 10's other three categories are no measures of the text table */
  static const int akt_ids[6] = {M_AKT_ST_EDU_EMP, M_AKT_ST_FLEX, M_AKT_ST_DP, -1, -1, -1};
  snprintf(title, sizeof title,
           "Figur 10: Kvinder, som ved deres indtræden i projektet var aktivitetsparate, fordelt "
           "på aktiviteter ultimo %s %d i procent.",
           month_da[at_m - 1], at_y);
  snprintf(sub, sizeof sub,
           "Aktivitetsparate at entry by status at %04d-%02d (share of the aktivitetsparate).",
           at_y, at_m);
  status_figure(p, REPORT_VIS(VISITATION_AKTIVITETSPARAT), "fig10", title, sub, akt_ids,
                "Rapporten (3.1.7): 22 pct. i beskæftigelsesaktiviteter (herunder uddannelse), "
                "3 pct. i fleksjob og 9 pct. førtidspension.");
  monthly(p);

  fputs("</main>\n<footer><p>Andele er 100 · n / N med én decimal, som i <code>regstream "
        "report</code>; rapportens tal er hele procent fra dens tekst (afsnit 3.1; figurerne i "
        "rapporten er billeder). Shares are 100 · n / N to one decimal, as in the text report; "
        "the report's figures are the whole percentages its text states. n/a: nobody in the "
        "denominator.</p>\n",
        f);
  if (d->min_cell > 1 || report_presuppressed(d)) {
    unsigned n = d->min_cell, n1 = d->min_cell ? d->min_cell - 1 : 0;
    fputs("<p id=\"fn-disclosure\">", f);
    if (report_presuppressed(d))
      fputs("Input: rollup'en er allerede diskretioneret (tomme felter, skrevet med --min-cell "
            "før rapporten): et undertrykt antal er ukendt, så en sum, der indeholder det, vises "
            "som \"..\", og det samme gør en andel af den. The input already carries suppressed "
            "counts (empty fields): a sum that includes one is unknown and shown as \"..\", and "
            "so is a share of it. ",
            f);
    else
      fputs("Input: præcise rækker; hvert tal er beregnet af dem, og reglen gælder de viste "
            "tal. The input rows are exact: every figure is computed from them, and the rule "
            "applies to what is shown. ",
            f);
    if (d->min_cell > 1)
      fprintf(f,
              "Diskretionering (--min-cell %u, SPEC §12) af de viste tal: et vist antal fra 1 "
              "til %u vises som \"..\"; en andel vises som \"..\", når dens tæller eller nævner "
              "er \"..\"; en enhed (en kommunes søjle eller række, en visitationskategori, en "
              "måned) med 1 til %u i nævneren tilbageholdes: alle dens tal vises som \"..\" "
              "(også 0); i hver gruppe af viste tal, der summerer til et vist total (figur 1, "
              "2, 3, 4, 7, 8, 9, 10 og de månedlige tabeller; en del, der ikke vises, tæller "
              "med som rest), gør ét undertrykt tal også det mindste andet tal forskelligt fra "
              "0 undertrykt, gentaget til intet ændres, og et tal, der vises flere steder, "
              "vises ens. Shown counts 1 ≤ c &lt; %u are \"..\"; a share is \"..\" when its "
              "numerator or denominator is; a unit whose denominator is 1 ≤ n &lt; %u is "
              "withheld (all its cells \"..\", 0 too); in each group of shown cells adding up "
              "to a shown total, a single suppressed cell (an unshown rest counting as a cell) "
              "makes the smallest other non-zero one suppressed too, repeated until nothing "
              "changes (the groups are in the page: span.group). %zu tal vist som \"..\".",
              n, n1, n1, n, n, p->t->suppressed);
    fputs("</p>\n", f);
  }
  fputs("<p>Skrevet af regstream (<code>regstream report --html</code>); siden henter intet "
        "udefra og bruger intet script.</p></footer>\n</body></html>\n",
        f);
  return ferror(f) ? -1 : 0;
}

/* The page into buf (malloc'd) through t; 0 or -1 (out of memory). */
static int lay_out(const report_data *d, const report_measures *r, report_published *t, char **buf,
                   size_t *len) {
  page p = {.d = d, .r = r, .t = t};
  const char *sec = "";
  for (int i = 0; i < M_COUNT; i++) {
    if (r->m[i].section)
      sec = r->m[i].section;
    p.section_of[i] = sec;
  }
  *buf = NULL;
  *len = 0;
  p.f = open_memstream(buf, len);
  if (!p.f)
    return -1;
  int bad = write_page(&p);
  if (fclose(p.f) != 0 || bad) {
    free(*buf);
    *buf = NULL;
    return -1;
  }
  return 0;
}

int report_publish(const report_data *d, const report_measures *r, report_published *t) {
  report_pub_init(t, d);
  char *buf;
  size_t len;
  int rc = lay_out(d, r, t, &buf, &len); /* first pass: what is shown */
  free(buf);
  report_pub_settle(t);
  return rc < 0 || t->failed ? -1 : 0;
}

int report_write_html(const report_data *d, const char *path, char *err, size_t errlen) {
  report_measures r;
  report_compute(d, &r);
  report_published t;
  char *buf = NULL;
  size_t len = 0;
  if (report_publish(d, &r, &t) < 0 || lay_out(d, &r, &t, &buf, &len) < 0 || t.failed) {
    report_pub_free(&t);
    free(buf);
    snprintf(err, errlen, "writing %s: out of memory", path);
    return -1;
  }
  report_pub_free(&t);
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  const char *step = "create";
  int fd = fs_create_private(tmp, O_WRONLY | O_TRUNC);
  int rc = fd < 0 ? -1 : 0, e = fd < 0 ? errno : 0;
  if (rc == 0 && fs_write_all(fd, buf, len) != 0) {
    step = "write";
    e = errno;
    rc = -1;
  }
  if (fd >= 0 && fs_commit(fd, rc == 0, tmp, path, &step) != 0 && rc == 0) {
    e = errno;
    rc = -1;
  }
  free(buf);
  if (rc != 0) {
    snprintf(err, errlen, "writing %s failed (%s of %s): %s; %s", path, step, tmp,
             strerror(e ? e : EIO), fs_remedy(e ? e : EIO));
    unlink(tmp);
    return -1;
  }
  if (fs_fsync_parent(path) != 0) {
    snprintf(err, errlen, "wrote %s, but cannot fsync its directory: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}
