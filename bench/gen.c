/* gen.c — regstream-gen: the synthetic PersonMonth generator.
 *
 * Writes Avro Object Container Files of regstream.PersonMonth (the reader
 * schema, encoded with pm_encode, written with the project's OCF writer) for
 * three profiles:
 *   kib       calibrated to the KIB evaluation report (SPEC §8): processing it
 *             with --project-start 201901 --project-end 202212 reproduces the
 *             report's headline shares at 2023-02 (see processor/report.c);
 *   national  a national-scale year (6 M persons x 12 months by default);
 *   random    small and nasty: every rule edge of SPEC §3 is frequent.
 * and, on top of any profile, stream faults: identical repeats, corrections,
 * late records and records with SPEC §5 value errors.
 *
 * Determinism: the records (their order and bytes) are a function of the
 * arguments alone; only the OCF sync markers differ between runs. Every
 * person-month of the national and random profiles is a pure function of
 * (seed, person, month), so order and file split never change the content;
 * kib persons are planned once (exact quotas, then per-person trajectories).
 * The faults are drawn from one sequential generator in stream order. */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "avro/decode.h"
#include "avro/ocf.h"
#include "avro/schemas.h"
#include "core/municipality.h"
#include "core/period.h"
#include "core/record.h"

/* ---------------------------------------------------------------- random */

static inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* xoshiro256**: the sequential stream (shuffles, faults, kib planning). */
typedef struct rng {
  uint64_t s[4];
} rng;

static void rng_seed(rng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) {
    x += 0x9e3779b97f4a7c15ull;
    r->s[i] = mix64(x);
  }
}

static inline uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

/* Uniform in [0, 1). */
static inline double unit(uint64_t h) {
  return (double)(h >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n) from the high 32 bits (multiply-shift). */
static inline uint32_t below(uint64_t h, uint32_t n) {
  return (uint32_t)(((h >> 32) * (uint64_t)n) >> 32);
}

static inline double rng_unit(rng *r) {
  return unit(rng_next(r));
}

static inline uint32_t rng_below(rng *r, uint32_t n) {
  return below(rng_next(r), n);
}

/* Uniform integer in [lo, hi] (lo when hi < lo). */
static inline int rng_range(rng *r, int lo, int hi) {
  return hi <= lo ? lo : lo + (int)rng_below(r, (uint32_t)(hi - lo + 1));
}

/* ---------------------------------------------------------------- options */

typedef enum profile { PROFILE_KIB, PROFILE_NATIONAL, PROFILE_RANDOM } profile;

typedef struct options {
  profile profile;
  uint64_t seed;
  const char *out;
  long long persons; /* 0 = the profile's default */
  int months;        /* 0 = default */
  int start_period;  /* 0 = default */
  int order_person;  /* --order person */
  double repeat_rate, correction_rate, late_rate, invalid_rate;
  ocf_codec codec;
  int files;
} options;

static void usage(FILE *f) {
  fputs("usage: regstream-gen --profile kib|national|random --seed N --out PREFIX_OR_FILE.avro\n"
        "         [--persons N] [--months N] [--start-period YYYYMM] [--order month|person]\n"
        "         [--repeat-rate R] [--correction-rate R] [--late-rate R] [--invalid-rate R]\n"
        "         [--codec null|deflate|snappy|lzma|xz|zstandard] [--files K]\n"
        "defaults: kib 1664 participants from 201801, 62 months; national 6000000 persons\n"
        "from 202301, 12 months; random 300 persons from 201901, 30 months; order month;\n"
        "rates 0; codec null; 1 file. --files K writes OUT with .avro replaced by .000.avro,\n"
        ".001.avro, ...\n",
        f);
}

static int parse_ll(const char *s, long long lo, long long hi, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi)
    return -1;
  *out = v;
  return 0;
}

static int parse_rate(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= 0.0 && v <= 1.0))
    return -1;
  *out = v;
  return 0;
}

static int parse_args(int argc, char **argv, options *o, char *err, size_t errlen) {
  memset(o, 0, sizeof *o);
  o->profile = (profile)-1;
  o->codec = OCF_CODEC_NULL;
  o->files = 1;
  int have_seed = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      exit(0);
    }
    if (strncmp(a, "--", 2) != 0) {
      snprintf(err, errlen, "unexpected argument '%s'", a);
      return -1;
    }
    if (i + 1 >= argc) {
      snprintf(err, errlen, "%s needs a value", a);
      return -1;
    }
    const char *v = argv[++i];
    long long n;
    int bad = 0;
    if (!strcmp(a, "--profile")) {
      if (!strcmp(v, "kib"))
        o->profile = PROFILE_KIB;
      else if (!strcmp(v, "national"))
        o->profile = PROFILE_NATIONAL;
      else if (!strcmp(v, "random"))
        o->profile = PROFILE_RANDOM;
      else
        bad = 1;
    } else if (!strcmp(a, "--seed")) {
      char *end;
      errno = 0;
      o->seed = strtoull(v, &end, 10);
      bad = errno || end == v || *end || v[0] == '-';
      have_seed = 1;
    } else if (!strcmp(a, "--out")) {
      o->out = v;
      bad = !*v;
    } else if (!strcmp(a, "--persons")) {
      bad = parse_ll(v, 1, 1000000000LL, &n) < 0;
      o->persons = n;
    } else if (!strcmp(a, "--months")) {
      bad = parse_ll(v, 1, PERIOD_MONTHS, &n) < 0;
      o->months = (int)n;
    } else if (!strcmp(a, "--start-period")) {
      bad = parse_ll(v, PERIOD_FIRST, PERIOD_LAST, &n) < 0 || !period_valid((int32_t)n);
      o->start_period = (int)n;
    } else if (!strcmp(a, "--order")) {
      if (!strcmp(v, "month"))
        o->order_person = 0;
      else if (!strcmp(v, "person"))
        o->order_person = 1;
      else
        bad = 1;
    } else if (!strcmp(a, "--repeat-rate")) {
      bad = parse_rate(v, &o->repeat_rate) < 0;
    } else if (!strcmp(a, "--correction-rate")) {
      bad = parse_rate(v, &o->correction_rate) < 0;
    } else if (!strcmp(a, "--late-rate")) {
      bad = parse_rate(v, &o->late_rate) < 0;
    } else if (!strcmp(a, "--invalid-rate")) {
      bad = parse_rate(v, &o->invalid_rate) < 0;
    } else if (!strcmp(a, "--codec")) {
      int c = ocf_codec_from_name(v);
      bad = c < 0;
      o->codec = (ocf_codec)c;
    } else if (!strcmp(a, "--files")) {
      bad = parse_ll(v, 1, 10000, &n) < 0;
      o->files = (int)n;
    } else {
      snprintf(err, errlen, "unknown option '%s' (try --help)", a);
      return -1;
    }
    if (bad) {
      snprintf(err, errlen, "bad value '%s' for %s", v, a);
      return -1;
    }
  }
  if ((int)o->profile < 0) {
    snprintf(err, errlen, "--profile kib|national|random is required");
    return -1;
  }
  if (!have_seed) {
    snprintf(err, errlen, "--seed N is required");
    return -1;
  }
  if (!o->out) {
    snprintf(err, errlen, "--out FILE.avro is required");
    return -1;
  }
  static const int default_start[] = {201801, 202301, 201901};
  static const int default_months[] = {62, 12, 30};
  static const long long default_persons[] = {1664, 6000000, 300};
  if (!o->start_period)
    o->start_period = default_start[o->profile];
  if (!o->months)
    o->months = default_months[o->profile];
  if (!o->persons)
    o->persons = default_persons[o->profile];
  if (period_to_month(o->start_period) + o->months > PERIOD_MONTHS) {
    snprintf(err, errlen, "%d months from %d run past %d", o->months, o->start_period, PERIOD_LAST);
    return -1;
  }
  if ((unsigned long long)o->persons * (unsigned long long)o->months > (1ull << 40)) {
    snprintf(err, errlen, "--persons x --months is too large");
    return -1;
  }
  return 0;
}

/* ---------------------------------------------------------------- shared record helpers */

typedef struct generator generator;

/* Largest float f with (double)f * 7 <= 18.5 * days: at or just below the
 * full-time boundary (exactly at it for 28 days: 74.0). */
static float full_time_at(int days) {
  double lim = 18.5 * days;
  float f = (float)(lim / 7.0);
  while ((double)f * 7.0 > lim)
    f = nextafterf(f, 0.0f);
  while ((double)nextafterf(f, INFINITY) * 7.0 <= lim)
    f = nextafterf(f, INFINITY);
  return f;
}

static inline double full_time_limit_hours(int days) {
  return 18.5 * days / 7.0;
}

/* A person id that no other index maps to: 1 + (i * odd mod 2^32). */
static inline int64_t scrambled_id(uint64_t i, uint32_t odd) {
  return 1 + (int64_t)(uint32_t)(i * odd);
}

/* ---------------------------------------------------------------- kib profile */

/* Calibration targets of SPEC §8 (shares of participants unless stated). */
#define KIB_AKT_SHARE 0.60
#define KIB_JOBPARAT_SHARE 0.25
#define KIB_SELV_SHARE 0.07
#define KIB_GOAL1 0.38
#define KIB_GOAL2 0.12
#define KIB_GOAL3 0.22
#define KIB_AKT_GOAL12 0.33
#define KIB_G1_FULL 0.47
#define KIB_G1_PARTIAL 0.20
#define KIB_G2_FULL 0.02
#define KIB_G2_PARTIAL 0.33
#define KIB_AARHUS_FULL 0.22
#define KIB_HVIDOVRE_FULL 0.11
#define KIB_EDU_EMP 0.32
#define KIB_FLEX 0.02
#define KIB_DP 0.05
#define KIB_BENEFIT 0.51
#define KIB_AKT_EDU_EMP 0.22
#define KIB_AKT_FLEX 0.03
#define KIB_AKT_DP 0.09

enum { KIB_MUNIS = 15, KIB_CELLS = 2 * KIB_MUNIS, KIB_SPELLS = 6 };

/* The 15 municipalities: size weight, share aktivitetsparat (fixed for the
 * report's five, a weight for the others), and relative propensities to
 * reach goal 1 or 2 (akt, others) and, within that, goal 1. The report's
 * range of goal 1+2 per municipality (36..55 %) comes out of these. */
static const struct kib_muni {
  int code;
  double size, akt_share;
  int fixed_share;
  double alpha, beta, gamma;
} kib_munis[KIB_MUNIS] = {
    {751, 130, 0.93, 1, 1.45, 1.10, 1.15}, /* Aarhus */
    {851, 100, 0.85, 1, 1.25, 1.00, 1.00}, /* Aalborg */
    {561, 85, 0.77, 1, 1.35, 1.00, 1.00},  /* Esbjerg */
    {167, 70, 0.91, 1, 1.08, 0.95, 1.00},  /* Hvidovre */
    {153, 65, 0.66, 1, 1.30, 1.00, 1.00},  /* Brøndby */
    {101, 260, 0.55, 0, 0.95, 1.00, 1.00}, /* København */
    {461, 180, 0.58, 0, 0.90, 1.00, 1.00}, /* Odense */
    {630, 95, 0.45, 0, 0.90, 0.95, 1.00},  /* Vejle */
    {615, 85, 0.48, 0, 1.00, 1.00, 1.00},  /* Horsens */
    {621, 114, 0.50, 0, 1.05, 0.99, 1.00}, /* Kolding */
    {730, 90, 0.55, 0, 0.90, 0.98, 1.00},  /* Randers */
    {657, 75, 0.42, 0, 0.85, 0.93, 1.00},  /* Herning */
    {740, 70, 0.45, 0, 0.95, 0.97, 1.00},  /* Silkeborg */
    {316, 125, 0.52, 0, 0.95, 1.00, 1.00}, /* Holbæk */
    {330, 120, 0.55, 0, 0.85, 0.96, 1.00}, /* Slagelse */
};
enum { KIB_AARHUS = 0, KIB_HVIDOVRE = 3 };

typedef enum kib_goal { KG_NONE = 0, KG_3, KG_2, KG_1 } kib_goal;
typedef enum kib_durable { KD_NONE = 0, KD_PARTIAL, KD_FULL } kib_durable;
typedef enum kib_status { KS_BENEFIT = 0, KS_EDU_EMP, KS_FLEX, KS_DP, KS_SELF } kib_status;
typedef enum spell_kind { SP_FULL, SP_PART, SP_EDU, SP_INTERN, SP_WAGESUB } spell_kind;

typedef struct spell {
  int16_t from, to; /* month indexes, inclusive */
  uint8_t kind;
} spell;

typedef struct kib_person {
  int64_t id;
  int32_t municipality, later_municipality;
  int16_t entry, exit; /* enrolled window (month indexes); member only */
  int16_t move_from;   /* later_municipality from this month */
  int16_t flex_from, dp_from, self_from, ben_from, vis_change_from; /* INT16_MAX: never */
  uint8_t member, cell, akt, visitation, pre_visitation, later_visitation;
  uint8_t goal, g1_edu, durable, status, base_benefit, nspells;
  spell spells[KIB_SPELLS];
} kib_person;

/* Month indexes of the calibration timeline. */
static int KM_H0, KM_P0, KM_W0, KM_P1, KM_END;

/* Largest-remainder apportionment of total among n cells in proportion to
 * weight[i], each at most cap[i] (cap may be NULL). Returns what could not be
 * placed (0 unless the caps bind). */
static long apportion(long total, const double *weight, const long *cap, int n, long *out) {
  enum { MAXN = 64 };
  int fixed[MAXN] = {0};
  for (int i = 0; i < n; i++)
    out[i] = 0;
  for (;;) {
    double w = 0;
    long placed = 0;
    for (int i = 0; i < n; i++) {
      if (fixed[i])
        placed += out[i];
      else if (weight[i] > 0)
        w += weight[i];
    }
    long left = total - placed;
    if (w <= 0 || left <= 0) {
      for (int i = 0; i < n; i++)
        if (!fixed[i])
          out[i] = 0;
      return left > 0 ? left : 0;
    }
    double rem[MAXN];
    long sum = 0;
    for (int i = 0; i < n; i++) {
      if (fixed[i])
        continue;
      double q = weight[i] > 0 ? (double)left * weight[i] / w : 0;
      out[i] = (long)floor(q);
      rem[i] = q - (double)out[i];
      sum += out[i];
    }
    while (sum < left) {
      int best = -1;
      for (int i = 0; i < n; i++)
        if (!fixed[i] && weight[i] > 0 && (best < 0 || rem[i] > rem[best]))
          best = i;
      out[best]++;
      rem[best] = -1;
      sum++;
    }
    int over = 0;
    for (int i = 0; i < n; i++)
      if (!fixed[i] && cap && out[i] > cap[i]) {
        out[i] = cap[i];
        fixed[i] = 1;
        over = 1;
      }
    if (!over)
      return 0;
  }
}

static void kib_add_spell(kib_person *p, int kind, int from, int to) {
  if (p->nspells < KIB_SPELLS && from <= to) {
    p->spells[p->nspells].from = (int16_t)from;
    p->spells[p->nspells].to = (int16_t)to;
    p->spells[p->nspells].kind = (uint8_t)kind;
    p->nspells++;
  }
}

static int kib_last_spell_end(const kib_person *p) {
  int end = -1;
  for (int i = 0; i < p->nspells; i++)
    if (p->spells[i].to > end)
      end = p->spells[i].to;
  return end;
}

static uint8_t kib_base_benefit(rng *r, int vis) {
  double u = rng_unit(r);
  switch (vis) {
  case VISITATION_AKTIVITETSPARAT:
    return u < 0.55   ? BENEFIT_KONTANTHJAELP
           : u < 0.75 ? BENEFIT_INTEGRATIONSYDELSE
           : u < 0.95 ? BENEFIT_RESSOURCEFORLOEB
                      : BENEFIT_SYGEDAGPENGE;
  case VISITATION_JOBPARAT:
    return u < 0.5   ? BENEFIT_KONTANTHJAELP
           : u < 0.7 ? BENEFIT_INTEGRATIONSYDELSE
                     : BENEFIT_DAGPENGE;
  case VISITATION_UDDANNELSESPARAT:
    return BENEFIT_UDDANNELSESHJAELP;
  case VISITATION_SELVFORSOERGENDE:
    return BENEFIT_NONE;
  default:
    return u < 0.4 ? BENEFIT_SYGEDAGPENGE : u < 0.6 ? BENEFIT_LEDIGHEDSYDELSE : BENEFIT_OTHER;
  }
}

/* Builds one participant's trajectory from its planned classes. The classes
 * decide what the rules will see at 2023-02 (SPEC §3, window 2022-09..2023-02,
 * project 2019-01..2022-12); everything else is free variation. */
static void kib_build_trajectory(rng *r, kib_person *p) {
  const int P0 = KM_P0, W0 = KM_W0, P1 = KM_P1, END = KM_END;
  int e;
  if (p->goal == KG_2 && p->durable == KD_FULL)
    e = P1; /* full-time 2022-09..11 before entry, part-time from entry */
  else if (p->goal == KG_1 && p->durable == KD_PARTIAL)
    e = rng_range(r, P0, P1 - 1);
  else
    e = rng_range(r, P0, P1);
  p->entry = (int16_t)e;
  int stay = rng_range(r, 5, 30);
  p->exit = (int16_t)(e + stay > P1 ? P1 : e + stay);
  p->flex_from = p->dp_from = p->self_from = p->ben_from = INT16_MAX;

  /* Some history in 2018, before anyone enters: never seen by the goals or
   * by a 2023-02 durable window. */
  if (rng_unit(r) < 0.25) {
    int a = rng_range(r, KM_H0, P0 - 1);
    kib_add_spell(p, rng_unit(r) < 0.3 ? SP_FULL : SP_PART, a, rng_range(r, a, P0 - 1));
  }
  int job_at_end = 0; /* non-durable persons employed at 2023-02 only */
  switch (p->goal) {
  case KG_1:
    if (p->durable == KD_FULL) {
      int s = rng_range(r, e, P1);
      if (s > e && rng_unit(r) < 0.3)
        kib_add_spell(p, SP_PART, rng_range(r, e, s - 1), s - 1);
      kib_add_spell(p, SP_FULL, s, END);
    } else if (p->durable == KD_PARTIAL) {
      int pstart = rng_range(r, e + 1, P1);
      if (p->g1_edu) {
        kib_add_spell(p, SP_EDU, rng_range(r, e, pstart - 1), pstart - 1);
      } else {
        int len = rng_range(r, 1, pstart - e < 2 ? pstart - e : 2);
        kib_add_spell(p, SP_FULL, pstart - len, pstart - 1);
      }
      kib_add_spell(p, SP_PART, pstart, END);
    } else if (p->g1_edu) {
      int a = rng_range(r, e, P1);
      int b = p->status == KS_EDU_EMP ? END : rng_range(r, a, a + 24 < P1 ? a + 24 : P1);
      kib_add_spell(p, SP_EDU, a, b);
    } else {
      int f, len;
      if (e <= W0 - 1) {
        f = rng_range(r, e, W0 - 1);
        len = rng_range(r, 1, W0 - f < 12 ? W0 - f : 12);
      } else {
        f = rng_range(r, e, P1);
        len = rng_range(r, 1, P1 - f + 1 < 2 ? P1 - f + 1 : 2);
      }
      kib_add_spell(p, SP_FULL, f, f + len - 1);
      job_at_end = p->status == KS_EDU_EMP;
    }
    break;
  case KG_2:
    if (p->durable == KD_FULL) {
      kib_add_spell(p, SP_FULL, W0, P1 - 1);
      kib_add_spell(p, SP_PART, P1, END);
    } else if (p->durable == KD_PARTIAL) {
      kib_add_spell(p, SP_PART, rng_range(r, e, P1), END);
    } else {
      int f, len;
      if (e <= W0 - 1) {
        f = rng_range(r, e, W0 - 1);
        len = rng_range(r, 1, W0 - f < 8 ? W0 - f : 8);
      } else {
        f = rng_range(r, e, P1);
        len = rng_range(r, 1, P1 - f + 1 < 2 ? P1 - f + 1 : 2);
      }
      kib_add_spell(p, SP_PART, f, f + len - 1);
      job_at_end = p->status == KS_EDU_EMP;
    }
    break;
  case KG_3: {
    int f = rng_range(r, e, P1);
    int len = rng_range(r, 1, P1 - f + 1 < 6 ? P1 - f + 1 : 6);
    int kind = rng_unit(r) < 0.6 ? SP_INTERN : SP_WAGESUB;
    kib_add_spell(p, kind, f, f + len - 1);
    int g = f + len + rng_range(r, 0, 3);
    if (g <= P1 && rng_unit(r) < 0.3)
      kib_add_spell(p, kind == SP_INTERN ? SP_WAGESUB : SP_INTERN, g,
                    rng_range(r, g, g + 5 < P1 ? g + 5 : P1));
    job_at_end = p->status == KS_EDU_EMP;
    break;
  }
  default:
    job_at_end = p->status == KS_EDU_EMP;
    break;
  }
  /* Employed at 2023-02 without being durable: a job of that month only
   * (2023-01 stays empty, so no run of three can form). */
  if (job_at_end)
    kib_add_spell(p, rng_unit(r) < 0.5 ? SP_FULL : SP_PART, END, END);

  int lo = kib_last_spell_end(p) + 1;
  if (lo < e + 1)
    lo = e + 1;
  if (lo > END)
    lo = END;
  switch (p->status) {
  case KS_FLEX:
    p->flex_from = (int16_t)rng_range(r, lo, END);
    break;
  case KS_DP:
    p->dp_from = (int16_t)rng_range(r, lo, END);
    break;
  case KS_SELF:
    p->self_from = (int16_t)rng_range(r, lo, END);
    break;
  case KS_BENEFIT:
    if (p->base_benefit == BENEFIT_NONE)
      p->ben_from = (int16_t)rng_range(r, lo, END);
    break;
  default:
    break;
  }
}

/* A person who never enrols: free trajectories, counted by no rollup row. */
static void kib_build_nonmember(rng *r, kib_person *p) {
  p->member = 0;
  p->entry = p->exit = -1;
  p->flex_from = p->dp_from = p->self_from = p->ben_from = INT16_MAX;
  p->visitation = p->pre_visitation = p->later_visitation =
      rng_unit(r) < 0.5 ? VISITATION_UNKNOWN : VISITATION_JOBPARAT;
  p->base_benefit = rng_unit(r) < 0.6 ? BENEFIT_NONE : BENEFIT_DAGPENGE;
  int t = KM_H0;
  while (t <= KM_END && p->nspells < KIB_SPELLS) {
    int len = rng_range(r, 1, 24);
    double u = rng_unit(r);
    if (u < 0.45)
      kib_add_spell(p, SP_FULL, t, t + len - 1 < KM_END ? t + len - 1 : KM_END);
    else if (u < 0.7)
      kib_add_spell(p, SP_PART, t, t + len - 1 < KM_END ? t + len - 1 : KM_END);
    t += len + rng_range(r, 0, 6);
  }
}

/* Plans the participants with exact quotas (largest remainder at every level,
 * so every headline share is hit up to rounding, whatever the seed), then the
 * non-members. Returns the array (participants + non-members, shuffled). */
static kib_person *kib_plan(uint64_t seed, long n_part, uint64_t *count_out, char *err,
                            size_t errlen) {
  KM_H0 = period_to_month(201801);
  KM_P0 = period_to_month(201901);
  KM_W0 = period_to_month(202209);
  KM_P1 = period_to_month(202212);
  KM_END = period_to_month(202302);
  rng r;
  rng_seed(&r, seed ^ 0x6b6962ull);

  long n_m[KIB_MUNIS], a_m[KIB_MUNIS];
  double w[KIB_CELLS];
  long cap[KIB_CELLS];
  for (int m = 0; m < KIB_MUNIS; m++)
    w[m] = kib_munis[m].size;
  apportion(n_part, w, NULL, KIB_MUNIS, n_m);

  /* Aktivitetsparate: the report's five at their shares, the rest spread. */
  long A = lround(KIB_AKT_SHARE * (double)n_part), a_fixed = 0;
  for (int m = 0; m < KIB_MUNIS; m++) {
    a_m[m] = 0;
    if (kib_munis[m].fixed_share) {
      a_m[m] = lround(kib_munis[m].akt_share * (double)n_m[m]);
      a_fixed += a_m[m];
    }
  }
  {
    long other[KIB_MUNIS];
    for (int m = 0; m < KIB_MUNIS; m++) {
      w[m] = kib_munis[m].fixed_share ? 0 : kib_munis[m].akt_share * (double)n_m[m];
      cap[m] = n_m[m];
    }
    apportion(A - a_fixed > 0 ? A - a_fixed : 0, w, cap, KIB_MUNIS, other);
    for (int m = 0; m < KIB_MUNIS; m++)
      if (!kib_munis[m].fixed_share)
        a_m[m] = other[m];
  }
  A = 0;
  for (int m = 0; m < KIB_MUNIS; m++)
    A += a_m[m];

  /* Cells: 2m = not aktivitetsparat, 2m+1 = aktivitetsparat. */
  long sz[KIB_CELLS], g12[KIB_CELLS], g1[KIB_CELLS], g3[KIB_CELLS];
  long f1[KIB_CELLS], p1[KIB_CELLS], f2[KIB_CELLS], p2[KIB_CELLS];
  for (int m = 0; m < KIB_MUNIS; m++) {
    sz[2 * m] = n_m[m] - a_m[m];
    sz[2 * m + 1] = a_m[m];
  }
  long G1 = lround(KIB_GOAL1 * (double)n_part), G2 = lround(KIB_GOAL2 * (double)n_part);
  long G3 = lround(KIB_GOAL3 * (double)n_part);
  long K = lround(KIB_AKT_GOAL12 * (double)A);
  {
    long tmp[KIB_MUNIS], capm[KIB_MUNIS];
    double wm[KIB_MUNIS];
    for (int m = 0; m < KIB_MUNIS; m++) {
      wm[m] = (double)a_m[m] * kib_munis[m].alpha;
      capm[m] = a_m[m];
    }
    apportion(K, wm, capm, KIB_MUNIS, tmp);
    for (int m = 0; m < KIB_MUNIS; m++)
      g12[2 * m + 1] = tmp[m];
    for (int m = 0; m < KIB_MUNIS; m++) {
      wm[m] = (double)(n_m[m] - a_m[m]) * kib_munis[m].beta;
      capm[m] = n_m[m] - a_m[m];
    }
    apportion(G1 + G2 - K > 0 ? G1 + G2 - K : 0, wm, capm, KIB_MUNIS, tmp);
    for (int m = 0; m < KIB_MUNIS; m++)
      g12[2 * m] = tmp[m];
  }
  for (int c = 0; c < KIB_CELLS; c++) {
    w[c] = (double)g12[c] * kib_munis[c / 2].gamma;
    cap[c] = g12[c];
  }
  apportion(G1, w, cap, KIB_CELLS, g1);
  for (int c = 0; c < KIB_CELLS; c++) {
    w[c] = (double)(sz[c] - g12[c]);
    cap[c] = sz[c] - g12[c];
  }
  apportion(G3, w, cap, KIB_CELLS, g3);

  /* Durable at 2023-02: Aarhus and Hvidovre at the report's shares of their
   * members, the rest of goal 1's full-time spread over the other cells. */
  {
    long fixed_total = 0, tmp[KIB_CELLS];
    for (int c = 0; c < KIB_CELLS; c++)
      f1[c] = 0;
    const int special[2] = {KIB_AARHUS, KIB_HVIDOVRE};
    const double share[2] = {KIB_AARHUS_FULL, KIB_HVIDOVRE_FULL};
    for (int s = 0; s < 2; s++) {
      int m = special[s];
      long want = lround(share[s] * (double)n_m[m]);
      for (int c = 0; c < KIB_CELLS; c++) {
        w[c] = c / 2 == m ? (double)g1[c] : 0;
        cap[c] = g1[c];
      }
      apportion(want, w, cap, KIB_CELLS, tmp);
      for (int c = 0; c < KIB_CELLS; c++) {
        f1[c] += tmp[c];
        fixed_total += tmp[c];
      }
    }
    for (int c = 0; c < KIB_CELLS; c++) {
      int m = c / 2;
      w[c] = m == KIB_AARHUS || m == KIB_HVIDOVRE ? 0 : (double)g1[c];
      cap[c] = g1[c];
    }
    long rest = lround(KIB_G1_FULL * (double)G1) - fixed_total;
    apportion(rest > 0 ? rest : 0, w, cap, KIB_CELLS, tmp);
    for (int c = 0; c < KIB_CELLS; c++)
      f1[c] += tmp[c];
  }
  for (int c = 0; c < KIB_CELLS; c++) {
    w[c] = (double)g1[c];
    cap[c] = g1[c] - f1[c];
  }
  apportion(lround(KIB_G1_PARTIAL * (double)G1), w, cap, KIB_CELLS, p1);
  for (int c = 0; c < KIB_CELLS; c++) {
    int m = c / 2;
    w[c] = m == KIB_AARHUS || m == KIB_HVIDOVRE ? 0 : (double)(g12[c] - g1[c]);
    cap[c] = g12[c] - g1[c];
  }
  long G2real = 0;
  for (int c = 0; c < KIB_CELLS; c++)
    G2real += g12[c] - g1[c];
  apportion(lround(KIB_G2_FULL * (double)G2real), w, cap, KIB_CELLS, f2);
  for (int c = 0; c < KIB_CELLS; c++) {
    w[c] = (double)(g12[c] - g1[c]);
    cap[c] = g12[c] - g1[c] - f2[c];
  }
  apportion(lround(KIB_G2_PARTIAL * (double)G2real), w, cap, KIB_CELLS, p2);

  uint64_t n_extra = (uint64_t)n_part / 8;
  uint64_t total = (uint64_t)n_part + n_extra;
  kib_person *ps = calloc(total, sizeof *ps);
  if (!ps) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }

  /* Visitations of the non-aktivitetsparate, exact globally. */
  long B = n_part - A;
  long J = lround(KIB_JOBPARAT_SHARE * (double)n_part);
  long S = lround(KIB_SELV_SHARE * (double)n_part);
  if (J > B)
    J = B;
  if (S > B - J)
    S = B - J;
  long O8 = B - J - S, U = lround((double)O8 / 3.0);
  uint8_t *labels = malloc((size_t)(B > 0 ? B : 1));
  if (!labels) {
    free(ps);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  for (long i = 0; i < B; i++)
    labels[i] = i < J           ? VISITATION_JOBPARAT
                : i < J + S     ? VISITATION_SELVFORSOERGENDE
                : i < J + S + U ? VISITATION_UDDANNELSESPARAT
                                : VISITATION_OEVRIG;
  for (long i = B - 1; i > 0; i--) {
    long j = (long)rng_below(&r, (uint32_t)(i + 1));
    uint8_t t = labels[i];
    labels[i] = labels[j];
    labels[j] = t;
  }

  long k = 0, lb = 0;
  for (int c = 0; c < KIB_CELLS; c++) {
    long g2c = g12[c] - g1[c];
    long n1 = g1[c] - f1[c] - p1[c], n2 = g2c - f2[c] - p2[c];
    long counts[8] = {f1[c], p1[c], n1, f2[c], p2[c], n2, g3[c], sz[c] - g12[c] - g3[c]};
    static const uint8_t goal_of[8] = {KG_1, KG_1, KG_1, KG_2, KG_2, KG_2, KG_3, KG_NONE};
    static const uint8_t dur_of[8] = {KD_FULL,    KD_PARTIAL, KD_NONE, KD_FULL,
                                      KD_PARTIAL, KD_NONE,    KD_NONE, KD_NONE};
    for (int kind = 0; kind < 8; kind++)
      for (long i = 0; i < counts[kind]; i++) {
        kib_person *p = &ps[k++];
        p->member = 1;
        p->cell = (uint8_t)c;
        p->akt = (uint8_t)(c & 1);
        p->municipality = kib_munis[c / 2].code;
        p->visitation = p->akt ? VISITATION_AKTIVITETSPARAT : labels[lb++];
        p->goal = goal_of[kind];
        p->durable = dur_of[kind];
        p->g1_edu = p->goal == KG_1 && p->durable != KD_FULL &&
                    rng_unit(&r) < (p->durable == KD_PARTIAL ? 0.3 : 0.55);
      }
  }
  free(labels);

  /* Status at 2023-02, exact per group (aktivitetsparat or not). Durable
   * persons are at work then; the rest of the quota prefers goal-1 students,
   * flex jobs and pensions prefer goals 3/none, self-support prefers the
   * selvforsørgende. */
  long N = n_part;
  long dp_akt = lround((0.05 + 0.09) / (1.0 / (double)N + 1.0 / (double)(A > 0 ? A : 1)));
  if (dp_akt > lround(KIB_AKT_DP * (double)A))
    dp_akt = lround(KIB_AKT_DP * (double)A);
  long flex_akt = lround(KIB_AKT_FLEX * (double)A);
  long ee_akt = lround(KIB_AKT_EDU_EMP * (double)A);
  long quota[2][5];
  quota[1][KS_EDU_EMP] = ee_akt;
  quota[1][KS_FLEX] = flex_akt;
  quota[1][KS_DP] = dp_akt;
  quota[0][KS_EDU_EMP] = lround(KIB_EDU_EMP * (double)N) - ee_akt;
  quota[0][KS_FLEX] = lround(KIB_FLEX * (double)N) - flex_akt;
  quota[0][KS_DP] = lround(KIB_DP * (double)N) - dp_akt;
  long self_total = N - lround(KIB_EDU_EMP * (double)N) - lround(KIB_FLEX * (double)N) -
                    lround(KIB_DP * (double)N) - lround(KIB_BENEFIT * (double)N);
  if (self_total < 0)
    self_total = 0;
  quota[1][KS_SELF] = lround(0.25 * (double)self_total);
  quota[0][KS_SELF] = self_total - quota[1][KS_SELF];
  for (int g = 0; g < 2; g++)
    for (int s = 1; s < 5; s++)
      if (quota[g][s] < 0)
        quota[g][s] = 0;

  long *idx = malloc(sizeof *idx * (size_t)(N > 0 ? N : 1));
  if (!idx) {
    free(ps);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  for (int g = 0; g < 2; g++) {
    long n = 0;
    for (long i = 0; i < N; i++)
      if (ps[i].akt == g)
        idx[n++] = i;
    for (long i = n - 1; i > 0; i--) {
      long j = (long)rng_below(&r, (uint32_t)(i + 1));
      long t = idx[i];
      idx[i] = idx[j];
      idx[j] = t;
    }
    long left[5];
    for (int s = 0; s < 5; s++)
      left[s] = quota[g][s];
    uint8_t *assigned = calloc((size_t)N, 1);
    if (!assigned) {
      free(idx);
      free(ps);
      snprintf(err, errlen, "out of memory");
      return NULL;
    }
    for (long i = 0; i < n; i++) {
      kib_person *p = &ps[idx[i]];
      p->status = KS_BENEFIT;
      if (p->durable != KD_NONE) {
        p->status = KS_EDU_EMP;
        assigned[idx[i]] = 1;
        left[KS_EDU_EMP]--;
      }
    }
    /* Passes: (status, preference). Preference 0 takes anyone unassigned. */
    static const struct {
      uint8_t status, pref;
    } passes[] = {{KS_EDU_EMP, 1}, {KS_EDU_EMP, 2}, {KS_EDU_EMP, 0}, {KS_DP, 3},  {KS_DP, 0},
                  {KS_FLEX, 3},    {KS_FLEX, 0},    {KS_SELF, 4},    {KS_SELF, 0}};
    for (size_t ps_i = 0; ps_i < sizeof passes / sizeof passes[0]; ps_i++) {
      int s = passes[ps_i].status, pref = passes[ps_i].pref;
      for (long i = 0; i < n && left[s] > 0; i++) {
        kib_person *p = &ps[idx[i]];
        if (assigned[idx[i]])
          continue;
        int ok = pref == 0 || (pref == 1 && p->goal == KG_1 && p->g1_edu) ||
                 (pref == 2 && (p->goal == KG_1 || p->goal == KG_2)) ||
                 (pref == 3 && (p->goal == KG_3 || p->goal == KG_NONE)) ||
                 (pref == 4 && p->visitation == VISITATION_SELVFORSOERGENDE);
        if (!ok)
          continue;
        p->status = (uint8_t)s;
        assigned[idx[i]] = 1;
        left[s]--;
      }
    }
    free(assigned);
  }
  free(idx);

  for (long i = 0; i < N; i++) {
    kib_person *p = &ps[i];
    rng pr;
    rng_seed(&pr, seed ^ mix64((uint64_t)i + 0x4b4942ull));
    p->base_benefit = kib_base_benefit(&pr, p->visitation);
    p->pre_visitation = rng_unit(&pr) < 0.2 ? VISITATION_UNKNOWN : p->visitation;
    kib_build_trajectory(&pr, p);
    /* After the enrolled window some move or are re-visited: the rollup
     * keeps them where they entered. */
    p->move_from = p->vis_change_from = INT16_MAX;
    p->later_municipality = p->municipality;
    p->later_visitation = p->visitation;
    if (rng_unit(&pr) < 0.05 && p->exit < KM_END) {
      p->move_from = (int16_t)rng_range(&pr, p->exit + 1, KM_END);
      p->later_municipality = kib_munis[rng_below(&pr, KIB_MUNIS)].code;
    }
    if (rng_unit(&pr) < 0.15 && p->exit < KM_END) {
      p->vis_change_from = (int16_t)rng_range(&pr, p->exit + 1, KM_END);
      p->later_visitation = (uint8_t)(1 + rng_below(&pr, VISITATION_COUNT - 1));
    }
  }
  for (uint64_t i = (uint64_t)N; i < total; i++) {
    rng pr;
    rng_seed(&pr, seed ^ mix64(i + 0x4b4942ull));
    kib_person *p = &ps[i];
    p->municipality = p->later_municipality = kib_munis[rng_below(&pr, KIB_MUNIS)].code;
    p->move_from = p->vis_change_from = INT16_MAX;
    kib_build_nonmember(&pr, p);
  }
  for (uint64_t i = total - 1; i > 0; i--) {
    uint64_t j = rng_below(&r, (uint32_t)(i + 1));
    kib_person t = ps[i];
    ps[i] = ps[j];
    ps[j] = t;
  }
  for (uint64_t i = 0; i < total; i++)
    ps[i].id = scrambled_id(i, 0x85ebca6bu) + 100000000;
  *count_out = total;
  return ps;
}

/* The record of kib person p in absolute month index m. */
static void kib_record(const kib_person *p, uint64_t key, int m, pm_record *rec) {
  uint64_t h = mix64(key ^ ((uint64_t)p->id * 0x9e3779b97f4a7c15ull) ^ (uint64_t)m);
  memset(rec, 0, sizeof *rec);
  rec->person_id = p->id;
  rec->period = period_from_month(m);
  rec->municipality = m >= p->move_from ? p->later_municipality : p->municipality;
  rec->visitation = m < p->entry              ? p->pre_visitation
                    : m >= p->vis_change_from ? p->later_visitation
                                              : p->visitation;
  if (p->member && m >= p->entry && m <= p->exit)
    rec->flags |= PM_ENROLLED;
  int benefit = p->base_benefit;
  if (m >= p->ben_from)
    benefit = BENEFIT_KONTANTHJAELP;
  if (m >= p->self_from)
    benefit = BENEFIT_NONE;
  float hours = 0;
  for (int i = 0; i < p->nspells; i++) {
    const spell *s = &p->spells[i];
    if (m < s->from || m > s->to)
      continue;
    switch (s->kind) {
    case SP_FULL:
      hours = 110.0f + (float)below(h, 5600) / 100.0f; /* 110..166 h */
      benefit = BENEFIT_NONE;
      break;
    case SP_PART:
      hours = 8.0f + (float)below(h >> 7, 5200) / 100.0f; /* 8..60 h */
      break;
    case SP_EDU:
      rec->flags |= PM_EDUCATION;
      benefit = BENEFIT_NONE;
      break;
    case SP_INTERN:
      rec->flags |= PM_INTERNSHIP;
      break;
    case SP_WAGESUB:
      rec->flags |= PM_WAGE_SUBSIDY;
      benefit = BENEFIT_NONE;
      break;
    }
  }
  if (m >= p->flex_from) {
    rec->flags |= PM_FLEXJOB;
    benefit = BENEFIT_NONE;
  }
  if (m >= p->dp_from) {
    rec->flags |= PM_DISABILITY_PENSION;
    benefit = BENEFIT_OTHER;
  }
  rec->paid_hours = hours;
  rec->benefit = (uint8_t)benefit;
}

/* ---------------------------------------------------------------- national profile */

/* Population of the 98 municipalities (hundreds, about 2023), in code order. */
static const uint16_t national_population[MUNICIPALITY_COUNT] = {
    6540, 1040, 490, 390, 150, 750, 700, 240, 300, 280,  540, 570,  570, 410,  240, 430, 170,
    410,  260,  410, 630, 520, 250, 570, 440, 510, 460,  620, 310,  900, 230,  410, 330, 720,
    370,  490,  360, 800, 230, 300, 290, 400, 840, 600,  450, 390,  390, 410,  520, 240, 320,
    2070, 590,  300, 120, 60,  550, 270, 740, 370, 1160, 35,  500,  430, 590,  520, 970, 950,
    1210, 900,  590, 190, 210, 430, 370, 490, 230, 990,  970, 37,   640, 3610, 420, 560, 470,
    200,  460,  430, 980, 370, 590, 360, 18,  300, 420,  380, 2210, 640,
};

enum { NC_FULL, NC_PART, NC_EDU, NC_FLEX, NC_DP, NC_PLACEMENT, NC_BENEFIT, NC_SELF, NC_COUNT };
/* Cumulative class shares (in 1/1000) and the chance of being enrolled. */
static const uint16_t national_class_cum[NC_COUNT] = {470, 550, 650, 670, 710, 730, 870, 1000};
static const uint16_t national_enrol_permille[NC_COUNT] = {6, 180, 60, 60, 10, 800, 680, 20};

typedef struct national_person {
  int64_t id;
  int municipality, municipality2, move_month;
  int cls, cls2, switch_month;
  int enrolled_from, enrolled_to; /* month offsets, enrolled_from > enrolled_to: never */
  int visitation, benefit, side_job;
} national_person;

static uint32_t national_cum[MUNICIPALITY_COUNT];

static void national_init(void) {
  uint32_t c = 0;
  for (int i = 0; i < MUNICIPALITY_COUNT; i++) {
    c += national_population[i];
    national_cum[i] = c;
  }
}

static int national_municipality(uint64_t h) {
  uint32_t x = below(h, national_cum[MUNICIPALITY_COUNT - 1]);
  int lo = 0, hi = MUNICIPALITY_COUNT - 1;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (national_cum[mid] > x)
      hi = mid;
    else
      lo = mid + 1;
  }
  return municipality_codes[lo];
}

static int national_class(uint64_t h) {
  uint32_t x = below(h, 1000);
  int c = 0;
  while (national_class_cum[c] <= x)
    c++;
  return c;
}

static void national_person_of(uint64_t key, uint64_t i, int months, national_person *p) {
  uint64_t h0 = mix64(key ^ (i * 0x9e3779b97f4a7c15ull + 0x6e6174ull));
  uint64_t h1 = mix64(h0 + 1), h2 = mix64(h0 + 2), h3 = mix64(h0 + 3);
  p->id = scrambled_id(i, 0x9e3779b1u);
  p->municipality = national_municipality(h1);
  p->move_month = (h1 & 0xff) < 3 ? (int)below(h2, (uint32_t)months) : months;
  p->municipality2 = p->move_month < months ? national_municipality(h3) : p->municipality;
  p->cls = national_class(h0);
  p->switch_month = (h2 & 0xff) < 38 ? 1 + (int)below(h3 << 8, (uint32_t)months) : months;
  p->cls2 = national_class(mix64(h0 + 4));
  uint32_t e = (uint32_t)(h3 & 0x3ff); /* 0..1023 */
  if (e < national_enrol_permille[p->cls] * 1024u / 1000u) {
    p->enrolled_from = (h2 >> 40) & 1 ? 0 : (int)below(h2 << 4, (uint32_t)months);
    p->enrolled_to =
        (h2 >> 41) % 10 == 0 ? p->enrolled_from + (int)below(h1 << 8, (uint32_t)months) : months;
  } else {
    p->enrolled_from = months;
    p->enrolled_to = -1;
  }
  uint32_t v = (uint32_t)((h1 >> 20) % 100);
  if (p->enrolled_from <= p->enrolled_to)
    p->visitation = v < 50   ? VISITATION_AKTIVITETSPARAT
                    : v < 80 ? VISITATION_JOBPARAT
                    : v < 88 ? VISITATION_UDDANNELSESPARAT
                    : v < 93 ? VISITATION_SELVFORSOERGENDE
                             : VISITATION_OEVRIG;
  else if (p->cls == NC_BENEFIT || p->cls == NC_PLACEMENT)
    p->visitation = v < 60   ? VISITATION_JOBPARAT
                    : v < 90 ? VISITATION_AKTIVITETSPARAT
                             : VISITATION_OEVRIG;
  else
    p->visitation = VISITATION_UNKNOWN;
  uint32_t b = (uint32_t)((h0 >> 20) % 100);
  p->benefit = b < 30   ? BENEFIT_KONTANTHJAELP
               : b < 55 ? BENEFIT_DAGPENGE
               : b < 70 ? BENEFIT_SYGEDAGPENGE
               : b < 78 ? BENEFIT_INTEGRATIONSYDELSE
               : b < 86 ? BENEFIT_UDDANNELSESHJAELP
               : b < 92 ? BENEFIT_RESSOURCEFORLOEB
               : b < 96 ? BENEFIT_LEDIGHEDSYDELSE
                        : BENEFIT_OTHER;
  p->side_job = (h0 >> 40) % 10 < 4;
}

static void national_record(uint64_t key, uint64_t i, int t, int first_month, int months,
                            pm_record *rec) {
  national_person p;
  national_person_of(key, i, months, &p);
  uint64_t hm = mix64(key ^ ((uint64_t)p.id * 0xd1b54a32d192ed03ull) ^ (uint64_t)t);
  memset(rec, 0, sizeof *rec);
  rec->person_id = p.id;
  rec->period = period_from_month(first_month + t);
  rec->municipality = t >= p.move_month ? p.municipality2 : p.municipality;
  rec->visitation = (uint8_t)p.visitation;
  if (t >= p.enrolled_from && t <= p.enrolled_to)
    rec->flags |= PM_ENROLLED;
  int cls = t >= p.switch_month ? p.cls2 : p.cls;
  float hours = 0;
  int benefit = BENEFIT_NONE;
  uint32_t noise = below(hm, 10000);
  switch (cls) {
  case NC_FULL:
    hours = noise < 200 ? 0.0f : 120.0f + (float)(noise % 5500) / 100.0f;
    break;
  case NC_PART:
    hours = 10.0f + (float)(noise % 6500) / 100.0f;
    break;
  case NC_EDU:
    rec->flags |= PM_EDUCATION;
    hours = p.side_job ? 8.0f + (float)(noise % 5200) / 100.0f : 0.0f;
    break;
  case NC_FLEX:
    rec->flags |= PM_FLEXJOB;
    break;
  case NC_DP:
    rec->flags |= PM_DISABILITY_PENSION;
    benefit = BENEFIT_OTHER;
    break;
  case NC_PLACEMENT:
    rec->flags |= (hm >> 50) & 1 ? PM_INTERNSHIP : PM_WAGE_SUBSIDY;
    benefit = p.benefit;
    break;
  case NC_BENEFIT:
    benefit = p.benefit;
    if (noise < 1000)
      hours = 5.0f + (float)(noise % 4000) / 100.0f;
    break;
  default:
    break;
  }
  rec->paid_hours = hours;
  rec->benefit = (uint8_t)benefit;
}

/* ---------------------------------------------------------------- random profile */

static const int random_municipalities[8] = {101, 860, 851, 751, 167, 153, 561, 147};

/* 1 with *rec filled when person i has a record in month offset t. */
static int random_record(uint64_t key, uint64_t i, int t, int first_month, int months,
                         pm_record *rec) {
  uint64_t h = mix64(key ^ (i * 0x9e3779b97f4a7c15ull + 0x726e64ull));
  uint64_t h2 = mix64(h + 1), h3 = mix64(h + 2);
  int first = (h & 1) ? 0 : (int)below(h2, (uint32_t)(months / 2 + 1));
  int last = (h >> 1) % 5 == 0 ? first + (int)below(h3, (uint32_t)(months - first)) : months - 1;
  if (t < first || t > last)
    return 0;
  uint64_t hm = mix64(h ^ ((uint64_t)(t + 1) * 0xd1b54a32d192ed03ull));
  if ((h >> 8) % 5 < 2) { /* gappy persons: single missing months and runs of them */
    if (hm % 5 == 0 && t != first)
      return 0;
    uint64_t hb = mix64(h ^ ((uint64_t)(t / 3 + 1000) * 0xd1b54a32d192ed03ull));
    if (hb % 7 == 0 && t != first)
      return 0;
  }
  memset(rec, 0, sizeof *rec);
  if (i == 0)
    rec->person_id = 1;
  else if (i == 1)
    rec->person_id = INT64_MAX;
  else if (i == 2)
    rec->person_id = (int64_t)1 << 31;
  else
    rec->person_id =
        (int64_t)(((i + 1) * 0x9e3779b97f4a7c15ull) & ((1ull << 62) - 1)) + ((int64_t)1 << 32);
  int month = first_month + t;
  rec->period = period_from_month(month);

  /* Enrolment: never, from the first month, late and staying (sometimes
   * leaving), or toggling month by month. */
  int mode = (int)((h >> 16) % 20);
  int entry = first + (int)below(mix64(h + 3), (uint32_t)(months - first));
  int leave = entry + (int)below(mix64(h + 4), (uint32_t)(months - entry + 1));
  int enrolled = mode < 4    ? 0
                 : mode < 8  ? 1
                 : mode < 12 ? t >= entry
                 : mode < 15 ? t >= entry && t < leave
                             : (hm >> 20) % 5 < 2;
  if (enrolled)
    rec->flags |= PM_ENROLLED;

  /* Municipality and visitation, changing after entry for some. */
  int move = first + (int)below(mix64(h + 5), (uint32_t)(months - first));
  int mi = (int)((h >> 24) % 8);
  if ((h >> 28) % 10 < 3 && t >= move)
    mi = (int)((h >> 32) % 8);
  rec->municipality = random_municipalities[mi];
  uint64_t hv = mix64(h ^ ((uint64_t)(t / 4 + 2000) * 0xd1b54a32d192ed03ull));
  rec->visitation = (uint8_t)((h >> 36) % 10 < 4 ? hv % VISITATION_COUNT : (h >> 40) % 6);

  /* Hours: a regime per three-month block (so durable runs form), full of
   * boundary values: exactly at the full-time limit (74.0 h in a 28-day
   * February), the floats just below and above it, zero, -0, tiny, 744. */
  int days = period_days(month);
  int offset = (int)((h >> 44) % 3);
  uint64_t hr = mix64(h ^ ((uint64_t)((t + offset) / 3 + 3000) * 0xd1b54a32d192ed03ull));
  int regime = (int)(hr % 100);
  if (regime >= 85)
    regime = (int)((hm >> 8) % 85);
  float at = full_time_at(days);
  float hours;
  uint32_t pick = (uint32_t)((hm >> 16) % 8);
  if (regime < 25) {
    hours = pick == 0 ? -0.0f : 0.0f;
  } else if (regime < 45) {
    hours = pick < 3   ? at
            : pick < 6 ? nextafterf(at, INFINITY)
            : pick < 7 ? nextafterf(at, 0.0f)
                       : (float)full_time_limit_hours(days);
  } else if (regime < 60) {
    hours = pick == 0 ? 744.0f : nextafterf(at, INFINITY) + (float)((hm >> 24) % 66000) / 100.0f;
  } else if (regime < 75) {
    hours = (float)((hm >> 24) % 7000) / 100.0f + 0.01f;
  } else {
    static const float tiny[4] = {FLT_TRUE_MIN, 1e-6f, 0.01f, 0.5f};
    hours = tiny[pick % 4];
  }
  rec->paid_hours = hours;

  /* Flags: every combination often (a quarter of the months draw all five
   * at random), otherwise persistent per block. */
  uint64_t hf = mix64(hm + 7);
  uint8_t flags = 0;
  if (hf % 4 == 0) {
    flags = (uint8_t)(((hf >> 8) & 0x1f) << 1);
  } else {
    if ((hr >> 8) % 5 == 0)
      flags |= PM_EDUCATION;
    if ((hr >> 12) % 6 == 0)
      flags |= PM_INTERNSHIP;
    if ((hr >> 16) % 6 == 0)
      flags |= PM_WAGE_SUBSIDY;
    if ((hr >> 20) % 9 == 0)
      flags |= PM_FLEXJOB;
    if ((hr >> 24) % 11 == 0)
      flags |= PM_DISABILITY_PENSION;
  }
  rec->flags |= flags;
  rec->benefit = (uint8_t)((hf >> 16) % BENEFIT_COUNT);
  return 1;
}

/* ---------------------------------------------------------------- the stream */

struct generator {
  options opt;
  int first_month;
  uint64_t key;
  uint64_t persons;
  kib_person *kib;
};

/* Person p's record in month offset t: 1, or 0 when the person has none. */
static int make_record(const generator *g, uint64_t p, int t, pm_record *rec) {
  switch (g->opt.profile) {
  case PROFILE_KIB:
    kib_record(&g->kib[p], g->key, g->first_month + t, rec);
    return 1;
  case PROFILE_NATIONAL:
    national_record(g->key, p, t, g->first_month, g->opt.months, rec);
    return 1;
  default:
    return random_record(g->key, p, t, g->first_month, g->opt.months, rec);
  }
}

enum { LATE_QUEUE = 1 << 16 };

typedef struct late_item {
  uint64_t due;
  pm_record rec;
} late_item;

typedef struct emitter {
  const generator *g;
  ocf_writer *w;
  int file, files;
  uint64_t file_records;
  uint64_t emitted, base, repeats, corrections, lates, invalids;
  uint64_t total_slots;
  rng r;
  late_item *queue;
  size_t q_head, q_len;
  double start, last_progress;
  int err_names_file; /* err already names the file (open failures) */
  char name[4200];
  char err[512];
} emitter;

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void file_name(const options *o, int k, char *out, size_t outlen) {
  if (o->files == 1) {
    snprintf(out, outlen, "%s", o->out);
    return;
  }
  size_t n = strlen(o->out);
  if (n >= 5 && !strcmp(o->out + n - 5, ".avro"))
    snprintf(out, outlen, "%.*s.%03d.avro", (int)(n - 5), o->out, k);
  else
    snprintf(out, outlen, "%s.%03d.avro", o->out, k);
}

static int emitter_open(emitter *e, int k) {
  file_name(&e->g->opt, k, e->name, sizeof e->name);
  e->w =
      ocf_writer_open(e->name, pm_reader_schema_json, e->g->opt.codec, 0, 0, e->err, sizeof e->err);
  e->file = k;
  e->file_records = 0;
  e->err_names_file = !e->w;
  return e->w ? 0 : -1;
}

static int emitter_close(emitter *e) {
  if (ocf_writer_close(e->w, e->err, sizeof e->err) < 0)
    return -1;
  e->w = NULL;
  fprintf(stderr, "regstream-gen: wrote %s (%" PRIu64 " records)\n", e->name, e->file_records);
  return 0;
}

static int emit(emitter *e, const pm_record *rec) {
  uint8_t buf[PM_ENCODED_MAX];
  size_t len = pm_encode(rec, buf);
  if (ocf_writer_append(e->w, buf, len, e->err, sizeof e->err) < 0)
    return -1;
  e->emitted++;
  e->file_records++;
  if ((e->emitted & 0xfffff) == 0) {
    double t = now_seconds();
    if (t - e->last_progress >= 3.0) {
      e->last_progress = t;
      fprintf(stderr, "regstream-gen: %" PRIu64 " records, %.1f M records/s\n", e->emitted,
              (double)e->emitted / (t - e->start) / 1e6);
    }
  }
  return 0;
}

/* Another valid value set for the same person-month (a correction, or an
 * altered late copy): hours, flags, enrolment, benefit, visitation or
 * municipality change, and it always differs from the original. */
static void alter_record(rng *r, pm_record *rec) {
  pm_record orig = *rec;
  int days = period_days(period_to_month(rec->period));
  int n = 1 + (int)rng_below(r, 3);
  for (int k = 0; k < n; k++) {
    switch (rng_below(r, 6)) {
    case 0: {
      float at = full_time_at(days);
      static const int choices = 5;
      switch (rng_below(r, (uint32_t)choices)) {
      case 0:
        rec->paid_hours = 0.0f;
        break;
      case 1:
        rec->paid_hours = at;
        break;
      case 2:
        rec->paid_hours = nextafterf(at, INFINITY);
        break;
      case 3:
        rec->paid_hours = (float)(rng_unit(r) * 744.0);
        break;
      default:
        rec->paid_hours = 0.01f;
        break;
      }
      break;
    }
    case 1:
      rec->flags ^= (uint8_t)(1u << (1 + rng_below(r, 5)));
      break;
    case 2:
      rec->flags ^= PM_ENROLLED;
      break;
    case 3:
      rec->benefit = (uint8_t)rng_below(r, BENEFIT_COUNT);
      break;
    case 4:
      rec->visitation = (uint8_t)rng_below(r, VISITATION_COUNT);
      break;
    default:
      rec->municipality = municipality_codes[rng_below(r, MUNICIPALITY_COUNT)];
      break;
    }
  }
  if (!memcmp(&orig, rec, sizeof orig))
    rec->flags ^= PM_EDUCATION;
}

/* One SPEC §5 value error, spread over person_id, period, municipality and
 * paid_hours; the record stays well-formed Avro. */
static void make_invalid(rng *r, pm_record *rec) {
  switch (rng_below(r, 4)) {
  case 0: {
    static const int64_t ids[4] = {0, -1, INT64_MIN, -123456789};
    uint32_t k = rng_below(r, 5);
    rec->person_id = k < 4 ? ids[k] : -rec->person_id;
    break;
  }
  case 1: {
    int year = rec->period / 100;
    int32_t periods[8] = {198912, 210001,  year * 100, year * 100 + 13,
                          0,      -202301, 99999999,   year * 100 + 99};
    rec->period = periods[rng_below(r, 8)];
    break;
  }
  case 2: {
    static const int32_t codes[7] = {0, 999, 102, -101, 100, 1000, 564};
    rec->municipality = codes[rng_below(r, 7)];
    break;
  }
  default: {
    float values[7] = {NAN,   -1.0f,    -FLT_TRUE_MIN, nextafterf(744.0f, INFINITY),
                       1e30f, INFINITY, -INFINITY};
    rec->paid_hours = values[rng_below(r, 7)];
    break;
  }
  }
}

static int late_drain(emitter *e, int all) {
  while (e->q_len && (all || e->queue[e->q_head].due <= e->emitted)) {
    late_item *it = &e->queue[e->q_head];
    e->q_head = (e->q_head + 1) % LATE_QUEUE;
    e->q_len--;
    if (emit(e, &it->rec) < 0)
      return -1;
    e->lates++;
  }
  return 0;
}

/* Schedules, some records later, a copy (half the time altered) of one of
 * person p's months before month offset t. */
static int late_schedule(emitter *e, uint64_t p, int t) {
  if (t == 0)
    return 0;
  pm_record rec;
  for (int tries = 0; tries < 8; tries++) {
    int span = t < 12 ? t : 12;
    int u = t - 1 - (int)rng_below(&e->r, (uint32_t)span);
    if (!make_record(e->g, p, u, &rec))
      continue;
    if (rng_unit(&e->r) < 0.5)
      alter_record(&e->r, &rec);
    if (e->q_len == LATE_QUEUE) { /* full: the oldest goes out now */
      late_item *it = &e->queue[e->q_head];
      e->q_head = (e->q_head + 1) % LATE_QUEUE;
      e->q_len--;
      if (emit(e, &it->rec) < 0)
        return -1;
      e->lates++;
    }
    late_item *it = &e->queue[(e->q_head + e->q_len) % LATE_QUEUE];
    it->due = e->emitted + 1 + rng_below(&e->r, 5000);
    it->rec = rec;
    e->q_len++;
    return 0;
  }
  return 0;
}

/* One (person, month) slot of the stream: the record, then its faults. */
static int slot(emitter *e, uint64_t p, int t, uint64_t s) {
  int want = (int)((s * (uint64_t)e->files) / e->total_slots);
  while (e->file < want) {
    if (emitter_close(e) < 0 || emitter_open(e, e->file + 1) < 0)
      return -1;
  }
  pm_record rec;
  if (!make_record(e->g, p, t, &rec))
    return 0;
  if (emit(e, &rec) < 0)
    return -1;
  e->base++;
  const options *o = &e->g->opt;
  if (o->repeat_rate > 0 && rng_unit(&e->r) < o->repeat_rate) {
    if (emit(e, &rec) < 0)
      return -1;
    e->repeats++;
  }
  if (o->correction_rate > 0 && rng_unit(&e->r) < o->correction_rate) {
    alter_record(&e->r, &rec);
    if (emit(e, &rec) < 0)
      return -1;
    e->corrections++;
  }
  if (o->late_rate > 0 && rng_unit(&e->r) < o->late_rate && late_schedule(e, p, t) < 0)
    return -1;
  if (o->invalid_rate > 0 && rng_unit(&e->r) < o->invalid_rate) {
    pm_record bad = rec;
    make_invalid(&e->r, &bad);
    if (emit(e, &bad) < 0)
      return -1;
    e->invalids++;
  }
  return e->q_len ? late_drain(e, 0) : 0;
}

static int run_stream(emitter *e) {
  const generator *g = e->g;
  uint64_t n = g->persons;
  int months = g->opt.months;
  if (g->opt.order_person) {
    uint64_t s = 0;
    for (uint64_t p = 0; p < n; p++)
      for (int t = 0; t < months; t++)
        if (slot(e, p, t, s++) < 0)
          return -1;
    return 0;
  }
  uint32_t *perm = malloc(sizeof *perm * n);
  if (!perm) {
    snprintf(e->err, sizeof e->err, "out of memory for %" PRIu64 " persons", n);
    return -1;
  }
  for (uint64_t i = 0; i < n; i++)
    perm[i] = (uint32_t)i;
  int rc = 0;
  for (int t = 0; t < months && rc == 0; t++) {
    rng sr;
    rng_seed(&sr, g->key ^ mix64((uint64_t)t + 0x7065726dull));
    for (uint64_t i = n - 1; i > 0; i--) {
      uint64_t j = (uint64_t)(((unsigned __int128)rng_next(&sr) * (i + 1)) >> 64);
      uint32_t tmp = perm[i];
      perm[i] = perm[j];
      perm[j] = tmp;
    }
    uint64_t base = (uint64_t)t * n;
    for (uint64_t j = 0; j < n; j++)
      if (slot(e, perm[j], t, base + j) < 0) {
        rc = -1;
        break;
      }
  }
  free(perm);
  return rc;
}

int main(int argc, char **argv) {
  generator g;
  char err[512];
  memset(&g, 0, sizeof g);
  if (parse_args(argc, argv, &g.opt, err, sizeof err) < 0) {
    fprintf(stderr, "regstream-gen: %s\n", err);
    return 2;
  }
  g.first_month = period_to_month(g.opt.start_period);
  g.key = mix64(g.opt.seed ^ 0x7265677374726561ull);
  g.persons = (uint64_t)g.opt.persons;
  static const char *const profile_names[] = {"kib", "national", "random"};
  double t0 = now_seconds();
  if (g.opt.profile == PROFILE_KIB) {
    g.kib = kib_plan(g.key, (long)g.opt.persons, &g.persons, err, sizeof err);
    if (!g.kib) {
      fprintf(stderr, "regstream-gen: %s\n", err);
      return 1;
    }
  } else if (g.opt.profile == PROFILE_NATIONAL) {
    national_init();
  }

  emitter e;
  memset(&e, 0, sizeof e);
  e.g = &g;
  e.files = g.opt.files;
  e.total_slots = g.persons * (uint64_t)g.opt.months;
  rng_seed(&e.r, g.key ^ 0x6661756c74ull);
  e.start = e.last_progress = t0;
  if (g.opt.late_rate > 0 && !(e.queue = malloc(sizeof *e.queue * LATE_QUEUE))) {
    fprintf(stderr, "regstream-gen: out of memory\n");
    return 1;
  }
  fprintf(stderr,
          "regstream-gen: profile %s, seed %" PRIu64 ", %" PRIu64
          " persons x %d months from %d, %s-major, codec %s, %d file(s)\n",
          profile_names[g.opt.profile], g.opt.seed, g.persons, g.opt.months, g.opt.start_period,
          g.opt.order_person ? "person" : "month", ocf_codec_name(g.opt.codec), g.opt.files);
  int rc = emitter_open(&e, 0);
  if (rc == 0)
    rc = run_stream(&e);
  if (rc == 0)
    rc = late_drain(&e, 1);
  while (rc == 0 && e.file < e.files - 1)
    rc = emitter_close(&e) < 0 || emitter_open(&e, e.file + 1) < 0 ? -1 : 0;
  if (rc == 0)
    rc = emitter_close(&e);
  else if (e.w) {
    char ignored[64];
    ocf_writer_close(e.w, ignored, sizeof ignored);
  }
  free(e.queue);
  free(g.kib);
  if (rc < 0) {
    if (e.err_names_file)
      fprintf(stderr, "regstream-gen: %s\n", e.err);
    else
      fprintf(stderr, "regstream-gen: %s: %s\n", e.name, e.err);
    return 1;
  }
  double secs = now_seconds() - t0;
  fprintf(stderr,
          "regstream-gen: %" PRIu64 " records (%" PRIu64 " base, %" PRIu64 " repeats, %" PRIu64
          " corrections, %" PRIu64 " late, %" PRIu64 " invalid) in %.2f s, %.2f M records/s\n",
          e.emitted, e.base, e.repeats, e.corrections, e.lates, e.invalids, secs,
          secs > 0 ? (double)e.emitted / secs / 1e6 : 0.0);
  return 0;
}
