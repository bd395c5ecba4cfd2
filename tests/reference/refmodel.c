/* refmodel.c — regstream-refmodel: the independent reference model of SPEC §3–§5.
 *
 * It owns nothing of the product and shares none of its code: it reads Avro container files
 * with Avro C's own generic API (file reader, writer schema, resolved writer against the reader
 * schema schemas/person_month.avsc), keeps for every person the plain list of its months
 * (index = month offset from its first record, gaps filled as empty months), and only at the end
 * computes every rule straight from its definition: entry month, month level L, status S,
 * accumulated goal G, durable employment D. Simplicity over speed: the differential test
 * (tests/differential.py) compares its CSV and its rejects with those of `regstream run`.
 *
 *   regstream-refmodel --input FILE.avro [FILE.avro ...] --csv OUT.csv --rejects REJECTS.txt
 *      [--project-start YYYYMM] [--project-end YYYYMM] [--full-time-weekly-hours X]
 *      [--durable-window-months N] [--durable-run-months N] [--schema person_month.avsc]
 *
 * REJECTS.txt: one line per rejected record, "<file_index> <record_index> <reason>", in input
 * order (file index = position in the --input list, record index from 0 within the file).
 *
 * Schema resolution: Avro C's resolved writer matches record fields by name and does the
 * numeric promotions, but it passes an enum's writer index through unchanged and refuses a
 * reader field missing from the writer even when it has a default. So this model maps enum
 * values by symbol name itself (writer symbol unknown to the reader -> the reader's default,
 * SPEC §2), and when Avro C refuses a writer schema it reads the writer's own generic value and
 * resolves it field by field (name match, promotions, defaults of SPEC §2).
 *
 * Exit status: 0 done; 1 I/O or schema failure; 2 bad command line. */
#include <avro.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef REFMODEL_SCHEMA_PATH
#define REFMODEL_SCHEMA_PATH "schemas/person_month.avsc"
#endif

/* ---- domain constants (SPEC §2, §3, §9) ---------------------------------------------------- */

static const char *const visitation_symbols[] = {
    "UNKNOWN", "JOBPARAT", "AKTIVITETSPARAT", "UDDANNELSESPARAT", "SELVFORSOERGENDE", "OEVRIG"};
enum { VISITATION_COUNT = 6, VISITATION_DEFAULT = 0 /* UNKNOWN */ };
enum { BENEFIT_NONE = 0, BENEFIT_COUNT = 9, BENEFIT_DEFAULT = 8 /* OTHER */ };

/* The 98 municipality codes of /work/shared/municipalities.csv (SPEC §9), ascending. */
static const int municipality_codes[] = {
    101, 147, 151, 153, 155, 157, 159, 161, 163, 165, 167, 169, 173, 175, 183, 185, 187,
    190, 201, 210, 217, 219, 223, 230, 240, 250, 253, 259, 260, 265, 269, 270, 306, 316,
    320, 326, 329, 330, 336, 340, 350, 360, 370, 376, 390, 400, 410, 420, 430, 440, 450,
    461, 479, 480, 482, 492, 510, 530, 540, 550, 561, 563, 573, 575, 580, 607, 615, 621,
    630, 657, 661, 665, 671, 706, 707, 710, 727, 730, 740, 741, 746, 751, 756, 760, 766,
    773, 779, 787, 791, 810, 813, 820, 825, 840, 846, 849, 851, 860};
enum { MUNICIPALITY_COUNT = (int)(sizeof municipality_codes / sizeof municipality_codes[0]) };

enum level { LEVEL_GOAL1, LEVEL_GOAL2, LEVEL_GOAL3, LEVEL_NONE }; /* column order of SPEC §4 */
enum status {
  STATUS_EDUCATION,
  STATUS_EMPLOYED_FULL,
  STATUS_EMPLOYED_PART,
  STATUS_FLEXJOB,
  STATUS_DISABILITY_PENSION,
  STATUS_COMPANY_PLACEMENT,
  STATUS_ON_BENEFIT,
  STATUS_SELF_SUPPORTING,
  STATUS_COUNT
};
enum durable { DURABLE_NONE, DURABLE_PARTIAL, DURABLE_FULL };

/* Column indexes of one rollup row (after period, municipality, visitation). */
enum {
  COL_MEMBERS = 0,
  COL_NOW = 1,
  COL_ACC = 5,
  COL_DURABLE_FULL = 9,
  COL_DURABLE_PARTIAL = 13,
  COL_STATUS = 17,
  COL_COUNT = 25
};

static const char csv_header[] =
    "period,municipality,visitation,members,"
    "now_goal1,now_goal2,now_goal3,now_none,"
    "acc_goal1,acc_goal2,acc_goal3,acc_none,"
    "durable_full_goal1,durable_full_goal2,durable_full_goal3,durable_full_none,"
    "durable_partial_goal1,durable_partial_goal2,durable_partial_goal3,durable_partial_none,"
    "status_education,status_employed_full,status_employed_part,status_flexjob,"
    "status_disability_pension,status_company_placement,status_on_benefit,status_self_supporting";

/* Periods: yyyymm in 199001..209912 <-> month offset 0..1319 from 1990-01. */
enum { FIRST_YEAR = 1990, LAST_YEAR = 2099, MONTH_COUNT = (LAST_YEAR - FIRST_YEAR + 1) * 12 };

static int period_valid(long long p) {
  if (p < 199001 || p > 209912)
    return 0;
  long long mo = p % 100;
  return mo >= 1 && mo <= 12;
}
static int period_to_offset(int p) {
  return (p / 100 - FIRST_YEAR) * 12 + (p % 100 - 1);
}
static int offset_to_period(int off) {
  return (FIRST_YEAR + off / 12) * 100 + off % 12 + 1;
}
static int days_in_month(int off) {
  static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int year = FIRST_YEAR + off / 12, month = off % 12;
  int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return days[month] + (month == 1 && leap);
}
static int municipality_index(long long code) {
  for (int i = 0; i < MUNICIPALITY_COUNT; i++)
    if (municipality_codes[i] == code)
      return i;
  return -1;
}

/* ---- configuration ----------------------------------------------------------------------- */

typedef struct {
  const char **inputs;
  int input_count;
  const char *csv_path, *rejects_path, *schema_path;
  int has_start, has_end;
  int project_start, project_end; /* month offsets */
  double full_time_weekly_hours;
  int window, run;
} options;

static options opt;

static void die(int code, const char *fmt, const char *arg) {
  fputs("regstream-refmodel: ", stderr);
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  exit(code);
}

static long long parse_integer(const char *name, const char *s) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end)
    die(2, "%s: not an integer", name);
  return v;
}

static void parse_options(int argc, char **argv) {
  opt.schema_path = REFMODEL_SCHEMA_PATH;
  opt.full_time_weekly_hours = 18.5;
  opt.window = 6;
  opt.run = 3;
  opt.inputs = calloc((size_t)argc, sizeof *opt.inputs);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--input") == 0) {
      while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
        opt.inputs[opt.input_count++] = argv[++i];
      continue;
    }
    if (i + 1 >= argc)
      die(2, "%s: missing value (or unknown option)", a);
    const char *v = argv[++i];
    if (strcmp(a, "--csv") == 0)
      opt.csv_path = v;
    else if (strcmp(a, "--rejects") == 0)
      opt.rejects_path = v;
    else if (strcmp(a, "--schema") == 0)
      opt.schema_path = v;
    else if (strcmp(a, "--project-start") == 0 || strcmp(a, "--project-end") == 0) {
      long long p = parse_integer(a, v);
      if (!period_valid(p))
        die(2, "%s: not a period yyyymm in 199001..209912", a);
      if (a[10] == 's') {
        opt.has_start = 1;
        opt.project_start = period_to_offset((int)p);
      } else {
        opt.has_end = 1;
        opt.project_end = period_to_offset((int)p);
      }
    } else if (strcmp(a, "--full-time-weekly-hours") == 0) {
      char *end;
      opt.full_time_weekly_hours = strtod(v, &end);
      if (end == v || *end || !isfinite(opt.full_time_weekly_hours) ||
          opt.full_time_weekly_hours < 0)
        die(2, "%s: not a number >= 0", a);
    } else if (strcmp(a, "--durable-window-months") == 0) {
      long long n = parse_integer(a, v);
      if (n < 1 || n > 120)
        die(2, "%s: must be 1..120", a);
      opt.window = (int)n;
    } else if (strcmp(a, "--durable-run-months") == 0) {
      long long n = parse_integer(a, v);
      if (n < 1 || n > 120)
        die(2, "%s: must be 1..120", a);
      opt.run = (int)n;
    } else
      die(2, "unknown option %s", a);
  }
  if (opt.input_count == 0 || !opt.csv_path || !opt.rejects_path)
    die(2, "%s", "usage: --input FILE.avro [FILE.avro ...] --csv OUT.csv --rejects REJECTS.txt");
  if (opt.has_start && opt.has_end && opt.project_start > opt.project_end)
    die(2, "%s", "--project-start must not be after --project-end");
  if (opt.run > opt.window)
    die(2, "%s", "--durable-run-months must not exceed --durable-window-months");
}

/* ---- persons: id -> plain list of months ------------------------------------------------- */

typedef struct {
  uint8_t present; /* a record (1) or a gap month (0) */
  uint8_t enrolled, education, internship, wage_subsidy, flexjob, disability_pension;
  uint8_t benefit, visitation;
  int municipality;
  float paid_hours;
} month;

typedef struct {
  long long id;
  int first; /* month offset of months[0] */
  int count, cap;
  month *months;
} person;

static person *persons;
static size_t person_count, person_cap;
static size_t *slots; /* open addressing: index+1 into persons, 0 = empty */
static size_t slot_cap;

static size_t hash_id(long long id) {
  uint64_t x = (uint64_t)id * 0x9E3779B97F4A7C15ull;
  return (size_t)(x ^ (x >> 29));
}

static void slots_grow(void) {
  size_t cap = slot_cap ? slot_cap * 2 : 1024;
  size_t *s = calloc(cap, sizeof *s);
  if (!s)
    die(1, "%s", "out of memory");
  for (size_t i = 0; i < person_count; i++) {
    size_t h = hash_id(persons[i].id) & (cap - 1);
    while (s[h])
      h = (h + 1) & (cap - 1);
    s[h] = i + 1;
  }
  free(slots);
  slots = s;
  slot_cap = cap;
}

static person *person_find(long long id, int create) {
  if (slot_cap == 0 || (person_count + 1) * 2 > slot_cap)
    slots_grow();
  size_t h = hash_id(id) & (slot_cap - 1);
  while (slots[h]) {
    if (persons[slots[h] - 1].id == id)
      return &persons[slots[h] - 1];
    h = (h + 1) & (slot_cap - 1);
  }
  if (!create)
    return NULL;
  if (person_count == person_cap) {
    person_cap = person_cap ? person_cap * 2 : 1024;
    persons = realloc(persons, person_cap * sizeof *persons);
    if (!persons)
      die(1, "%s", "out of memory");
  }
  person *p = &persons[person_count++];
  memset(p, 0, sizeof *p);
  p->id = id;
  slots[h] = person_count;
  return p;
}

/* ---- one decoded record and its validation (SPEC §5) ------------------------------------- */

typedef struct {
  long long person_id, period, municipality;
  int visitation, benefit; /* reader enum indexes; -1 = undecodable */
  int enrolled, education, internship, wage_subsidy, flexjob, disability_pension;
  float paid_hours;
} record;

static const char *validate(const record *r) {
  if (r->visitation < 0 || r->benefit < 0)
    return "undecodable";
  if (r->person_id <= 0)
    return "person_id";
  if (!period_valid(r->period))
    return "period";
  if (municipality_index(r->municipality) < 0)
    return "municipality";
  if (isnan(r->paid_hours) || r->paid_hours < 0 || r->paid_hours > 744)
    return "paid_hours";
  return NULL;
}

/* Returns NULL when accepted, "late" when earlier than the person's latest month. */
static const char *apply(const record *r) {
  int off = period_to_offset((int)r->period);
  person *p = person_find(r->person_id, 1);
  month m = {1,
             (uint8_t)r->enrolled,
             (uint8_t)r->education,
             (uint8_t)r->internship,
             (uint8_t)r->wage_subsidy,
             (uint8_t)r->flexjob,
             (uint8_t)r->disability_pension,
             (uint8_t)r->benefit,
             (uint8_t)r->visitation,
             (int)r->municipality,
             r->paid_hours};
  if (p->count == 0) {
    p->first = off;
  } else {
    int latest = p->first + p->count - 1;
    if (off < latest)
      return "late";
    if (off == latest) { /* a correction replaces the latest month */
      p->months[p->count - 1] = m;
      return NULL;
    }
  }
  int need = off - p->first + 1;
  if (need > p->cap) {
    int cap = p->cap ? p->cap : 4;
    while (cap < need)
      cap *= 2;
    p->months = realloc(p->months, (size_t)cap * sizeof *p->months);
    if (!p->months)
      die(1, "%s", "out of memory");
    p->cap = cap;
  }
  int last_municipality = p->count ? p->months[p->count - 1].municipality : m.municipality;
  while (p->count < need - 1) { /* gap months: empty, same municipality */
    month gap = {0};
    gap.benefit = BENEFIT_NONE;
    gap.municipality = last_municipality;
    p->months[p->count++] = gap;
  }
  p->months[p->count++] = m;
  return NULL;
}

/* ---- reading records with Avro C --------------------------------------------------------- */

static avro_schema_t reader_schema;

/* Any Avro number as long long / double (the promotions int->long->float->double). */
static int value_as_long(avro_value_t *v, long long *out) {
  switch (avro_value_get_type(v)) {
  case AVRO_INT32: {
    int32_t x;
    if (avro_value_get_int(v, &x))
      return -1;
    *out = x;
    return 0;
  }
  case AVRO_INT64: {
    int64_t x;
    if (avro_value_get_long(v, &x))
      return -1;
    *out = x;
    return 0;
  }
  default:
    return -1;
  }
}

static int value_as_float(avro_value_t *v, float *out) {
  switch (avro_value_get_type(v)) {
  case AVRO_FLOAT:
    return avro_value_get_float(v, out);
  case AVRO_INT32:
  case AVRO_INT64: {
    long long x;
    if (value_as_long(v, &x))
      return -1;
    *out = (float)x;
    return 0;
  }
  default:
    return -1;
  }
}

/* An enum value written with writer_enum's symbols -> index in reader_enum (by name); a writer
 * symbol unknown to the reader takes the reader's default; an index outside the writer's
 * symbols is undecodable (-1). */
static int enum_resolve(int writer_index, avro_schema_t writer_enum, avro_schema_t reader_enum,
                        int reader_default) {
  if (writer_index < 0 || writer_index >= avro_schema_enum_number_of_symbols(writer_enum))
    return -1;
  const char *symbol = avro_schema_enum_get(writer_enum, writer_index);
  if (!symbol)
    return -1;
  int r = avro_schema_enum_get_by_name(reader_enum, symbol);
  return r >= 0 ? r : reader_default;
}

typedef struct {
  avro_schema_t writer;
  int resolved; /* 1: Avro C's resolved writer fills a reader-schema value */
  avro_value_iface_t *value_class, *resolver;
  avro_value_t value, resolved_value;
} file_decoder;

static avro_schema_t field_schema(avro_schema_t record_schema, const char *name) {
  int i = avro_schema_record_field_get_index(record_schema, name);
  return i < 0 ? NULL : avro_schema_record_field_get_by_index(record_schema, i);
}

/* The field `name` of the value just read, or NULL when the writer has no such field. */
static int get_field(file_decoder *d, const char *name, avro_value_t *out) {
  if (!d->resolved && avro_schema_record_field_get_index(d->writer, name) < 0)
    return -1;
  return avro_value_get_by_name(&d->value, name, out, NULL) ? -2 : 0;
}

static int read_long_field(file_decoder *d, const char *name, long long *out) {
  avro_value_t f;
  if (get_field(d, name, &f) || value_as_long(&f, out))
    return -1;
  return 0;
}

static int read_bool_field(file_decoder *d, const char *name, int *out) {
  avro_value_t f;
  if (get_field(d, name, &f) || avro_value_get_type(&f) != AVRO_BOOLEAN ||
      avro_value_get_boolean(&f, out))
    return -1;
  *out = *out != 0;
  return 0;
}

static int read_enum_field(file_decoder *d, const char *name, int reader_default, int *out) {
  avro_value_t f;
  int rc = get_field(d, name, &f);
  if (rc == -1) { /* missing in the writer: the reader's default */
    *out = reader_default;
    return 0;
  }
  int writer_index;
  if (rc || avro_value_get_type(&f) != AVRO_ENUM || avro_value_get_enum(&f, &writer_index))
    return -1;
  avro_schema_t we = field_schema(d->writer, name), re = field_schema(reader_schema, name);
  if (!we || !re || !is_avro_enum(we))
    return -1;
  *out = enum_resolve(writer_index, we, re, reader_default);
  return 0;
}

static int decode_record(file_decoder *d, record *r) {
  memset(r, 0, sizeof *r);
  avro_value_t f;
  if (read_long_field(d, "person_id", &r->person_id) || read_long_field(d, "period", &r->period) ||
      read_long_field(d, "municipality", &r->municipality) ||
      read_enum_field(d, "visitation", VISITATION_DEFAULT, &r->visitation) ||
      read_bool_field(d, "enrolled", &r->enrolled) || get_field(d, "paid_hours", &f) ||
      value_as_float(&f, &r->paid_hours) || read_bool_field(d, "education", &r->education) ||
      read_bool_field(d, "internship", &r->internship) ||
      read_bool_field(d, "wage_subsidy", &r->wage_subsidy) ||
      read_bool_field(d, "flexjob", &r->flexjob) ||
      read_bool_field(d, "disability_pension", &r->disability_pension) ||
      read_enum_field(d, "benefit", BENEFIT_DEFAULT, &r->benefit))
    return -1;
  return 0;
}

static FILE *rejects_out;
static unsigned long long records_total, rejected_total;
static int files_resolved_by_avro_c, files_resolved_here;

static void read_file(int file_index, const char *path) {
  avro_file_reader_t reader;
  if (avro_file_reader(path, &reader))
    die(1, "cannot read Avro file: %s", path);
  file_decoder d = {0};
  d.writer = avro_file_reader_get_writer_schema(reader);
  d.resolver = avro_resolved_writer_new(d.writer, reader_schema);
  if (d.resolver) {
    d.resolved = 1;
    files_resolved_by_avro_c++;
    d.value_class = avro_generic_class_from_schema(reader_schema);
    if (!d.value_class || avro_generic_value_new(d.value_class, &d.value) ||
        avro_resolved_writer_new_value(d.resolver, &d.resolved_value))
      die(1, "Avro C: %s", avro_strerror());
    avro_resolved_writer_set_dest(&d.resolved_value, &d.value);
  } else { /* Avro C refuses it (e.g. a reader field with a default is missing): resolve here */
    files_resolved_here++;
    d.value_class = avro_generic_class_from_schema(d.writer);
    if (!d.value_class || avro_generic_value_new(d.value_class, &d.value))
      die(1, "Avro C: %s", avro_strerror());
  }
  for (long long index = 0;; index++) {
    int rc = avro_file_reader_read_value(reader, d.resolved ? &d.resolved_value : &d.value);
    if (rc == EOF)
      break;
    if (rc) {
      fprintf(stderr, "regstream-refmodel: %s: record %lld: %s\n", path, index, avro_strerror());
      die(1, "undecodable input the model cannot resynchronise after: %s", path);
    }
    record r;
    if (decode_record(&d, &r))
      die(1, "writer schema not resolvable to regstream.PersonMonth: %s", path);
    records_total++;
    const char *reason = validate(&r);
    if (!reason)
      reason = apply(&r);
    if (reason) {
      rejected_total++;
      fprintf(rejects_out, "%d %lld %s\n", file_index, index, reason);
    }
  }
  if (d.resolved) {
    avro_value_decref(&d.resolved_value);
    avro_value_iface_decref(d.resolver);
  }
  avro_value_decref(&d.value);
  avro_value_iface_decref(d.value_class);
  avro_schema_decref(d.writer); /* avro_file_reader_get_writer_schema gave a reference */
  avro_file_reader_close(reader);
}

static void load_reader_schema(void) {
  FILE *f = fopen(opt.schema_path, "rb");
  if (!f)
    die(1, "cannot open reader schema %s", opt.schema_path);
  char *text = NULL;
  size_t len = 0, cap = 0, n;
  char buf[4096];
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
    if (len + n + 1 > cap) {
      cap = (len + n + 1) * 2;
      text = realloc(text, cap);
      if (!text)
        die(1, "%s", "out of memory");
    }
    memcpy(text + len, buf, n);
    len += n;
  }
  fclose(f);
  if (!text || avro_schema_from_json_length(text, len, &reader_schema))
    die(1, "bad reader schema %s", opt.schema_path);
  free(text);
}

/* ---- the rules, from their definitions (SPEC §3) ----------------------------------------- */

static int employed(const month *m) {
  return m->paid_hours > 0;
}
static int full_time(const month *m, int off) {
  return (double)m->paid_hours * 7 > opt.full_time_weekly_hours * days_in_month(off);
}
static enum level month_level(const month *m, int off) {
  if (m->education || full_time(m, off))
    return LEVEL_GOAL1;
  if (employed(m))
    return LEVEL_GOAL2;
  if (m->internship || m->wage_subsidy)
    return LEVEL_GOAL3;
  return LEVEL_NONE;
}
static enum status month_status(const month *m, int off) {
  if (m->education)
    return STATUS_EDUCATION;
  if (employed(m) && full_time(m, off))
    return STATUS_EMPLOYED_FULL;
  if (employed(m))
    return STATUS_EMPLOYED_PART;
  if (m->flexjob)
    return STATUS_FLEXJOB;
  if (m->disability_pension)
    return STATUS_DISABILITY_PENSION;
  if (m->internship || m->wage_subsidy)
    return STATUS_COMPANY_PLACEMENT;
  if (m->benefit != BENEFIT_NONE)
    return STATUS_ON_BENEFIT;
  return STATUS_SELF_SUPPORTING;
}

/* D(m): the window m-(W-1)..m; months before the person's first record are not employed. */
static enum durable durable(const person *p, int off) {
  int run_full = 0, run_employed = 0, best_full = 0, best_employed = 0;
  for (int k = off - (opt.window - 1); k <= off; k++) {
    const month *m = k >= p->first ? &p->months[k - p->first] : NULL;
    run_full = m && full_time(m, k) ? run_full + 1 : 0;
    run_employed = m && employed(m) ? run_employed + 1 : 0;
    if (run_full > best_full)
      best_full = run_full;
    if (run_employed > best_employed)
      best_employed = run_employed;
  }
  if (best_full >= opt.run)
    return DURABLE_FULL;
  if (best_employed >= opt.run)
    return DURABLE_PARTIAL;
  return DURABLE_NONE;
}

/* The rollup: dense rows over [lo_month, hi_month] x municipality x visitation. */
static long long *rollup;
static int lo_month, hi_month;

static long long *row_of(int off, int municipality_i, int visitation) {
  size_t i =
      ((size_t)(off - lo_month) * MUNICIPALITY_COUNT + (size_t)municipality_i) * VISITATION_COUNT +
      (size_t)visitation;
  return rollup + i * COL_COUNT;
}

static void contribute(const person *p) {
  int e = -1;
  for (int i = 0; i < p->count; i++)
    if (p->months[i].present && p->months[i].enrolled) {
      e = i;
      break;
    }
  if (e < 0)
    return; /* never a member */
  int entry_municipality = municipality_index(p->months[e].municipality);
  int entry_visitation = p->months[e].visitation;
  int entry_off = p->first + e;
  int lo = entry_off;
  if (opt.has_start && opt.project_start > lo)
    lo = opt.project_start;
  for (int i = e; i < p->count; i++) {
    int off = p->first + i;
    const month *m = &p->months[i];
    /* G(m) = max L over months k with max(e, start) <= k <= min(m, end) */
    int hi = off;
    if (opt.has_end && opt.project_end < hi)
      hi = opt.project_end;
    enum level g = LEVEL_NONE;
    for (int k = lo; k <= hi; k++) {
      enum level l = month_level(&p->months[k - p->first], k);
      if (l < g)
        g = l;
    }
    long long *row = row_of(off, entry_municipality, entry_visitation);
    row[COL_MEMBERS]++;
    row[COL_NOW + month_level(m, off)]++;
    row[COL_ACC + g]++;
    enum durable dur = durable(p, off);
    if (dur == DURABLE_FULL)
      row[COL_DURABLE_FULL + g]++;
    else if (dur == DURABLE_PARTIAL)
      row[COL_DURABLE_PARTIAL + g]++;
    row[COL_STATUS + month_status(m, off)]++;
  }
}

static int visitation_by_symbol(const void *a, const void *b) {
  return strcmp(visitation_symbols[*(const int *)a], visitation_symbols[*(const int *)b]);
}

static void write_csv(void) {
  lo_month = MONTH_COUNT;
  hi_month = -1;
  for (size_t i = 0; i < person_count; i++) {
    const person *p = &persons[i];
    if (p->count == 0)
      continue;
    if (p->first < lo_month)
      lo_month = p->first;
    if (p->first + p->count - 1 > hi_month)
      hi_month = p->first + p->count - 1;
  }
  size_t months = hi_month >= lo_month ? (size_t)(hi_month - lo_month + 1) : 0;
  rollup = calloc(months * MUNICIPALITY_COUNT * VISITATION_COUNT * COL_COUNT + 1, sizeof *rollup);
  if (!rollup)
    die(1, "%s", "out of memory");
  for (size_t i = 0; i < person_count; i++)
    contribute(&persons[i]);

  int order[VISITATION_COUNT];
  for (int v = 0; v < VISITATION_COUNT; v++)
    order[v] = v;
  qsort(order, VISITATION_COUNT, sizeof order[0], visitation_by_symbol);

  FILE *out = fopen(opt.csv_path, "w");
  if (!out)
    die(1, "cannot write %s", opt.csv_path);
  fprintf(out, "%s\n", csv_header);
  for (int off = lo_month; off <= hi_month; off++)
    for (int mi = 0; mi < MUNICIPALITY_COUNT; mi++)
      for (int vi = 0; vi < VISITATION_COUNT; vi++) {
        const long long *row = row_of(off, mi, order[vi]);
        if (row[COL_MEMBERS] <= 0)
          continue;
        fprintf(out, "%d,%d,%s", offset_to_period(off), municipality_codes[mi],
                visitation_symbols[order[vi]]);
        for (int c = 0; c < COL_COUNT; c++)
          fprintf(out, ",%lld", row[c]);
        fputc('\n', out);
      }
  if (fclose(out))
    die(1, "cannot write %s", opt.csv_path);
}

int main(int argc, char **argv) {
  parse_options(argc, argv);
  load_reader_schema();
  rejects_out = fopen(opt.rejects_path, "w");
  if (!rejects_out)
    die(1, "cannot write %s", opt.rejects_path);
  for (int i = 0; i < opt.input_count; i++)
    read_file(i, opt.inputs[i]);
  if (fclose(rejects_out))
    die(1, "cannot write %s", opt.rejects_path);
  write_csv();
  fprintf(stderr,
          "regstream-refmodel: %llu records, %llu rejected, %zu persons; writer schemas resolved "
          "by Avro C in %d file(s), field by field in %d\n",
          records_total, rejected_total, person_count, files_resolved_by_avro_c,
          files_resolved_here);
  for (size_t i = 0; i < person_count; i++)
    free(persons[i].months);
  free(persons);
  free(slots);
  free(rollup);
  free(opt.inputs);
  avro_schema_decref(reader_schema);
  return 0;
}
