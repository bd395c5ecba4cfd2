/* plan.c — resolution plans: parses a writer schema with Avro C and resolves
 * it against the reader schema (schemas/person_month.avsc) by the Avro
 * specification's rules: fields matched by name; promotions int->long,
 * int/long->float; enum symbols matched by name, unknown writer symbols
 * taking the reader enum's default; reader defaults for fields the writer
 * lacks; writer unions resolved branch by branch (a branch the reader cannot
 * use fails at read time); writer fields the reader ignores become skip
 * programs for any Avro type. Names of records and enums are not compared
 * (lenient on names, strict on types). */
#include <avro.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro/plan.h"

/* The reader schema's fields, in order (checked against pm_reader_schema_json
 * by plan_check_reader). kind: what the reader field is. */
typedef enum rkind { RK_LONG, RK_INT, RK_FLOAT, RK_BOOL, RK_ENUM } rkind;

typedef struct reader_field {
  const char *name;
  rkind kind;
  int has_default;
  uint8_t default_value; /* for enums: the reader symbol index */
  uint8_t bit;           /* for booleans: the PM_* bit */
  plan_kind int_kind;    /* op when the writer gives an int */
} reader_field;

enum { READER_FIELDS = 12, RF_VISITATION = 3, RF_BENEFIT = 11 };

static const reader_field reader_fields[READER_FIELDS] = {
    {"person_id", RK_LONG, 0, 0, 0, PK_INT_PID},
    {"period", RK_INT, 0, 0, 0, PK_INT_PERIOD},
    {"municipality", RK_INT, 0, 0, 0, PK_INT_MUNI},
    {"visitation", RK_ENUM, 1, VISITATION_UNKNOWN, 0, 0},
    {"enrolled", RK_BOOL, 0, 0, PM_ENROLLED, 0},
    {"paid_hours", RK_FLOAT, 0, 0, 0, PK_INT_HOURS},
    {"education", RK_BOOL, 0, 0, PM_EDUCATION, 0},
    {"internship", RK_BOOL, 0, 0, PM_INTERNSHIP, 0},
    {"wage_subsidy", RK_BOOL, 0, 0, PM_WAGE_SUBSIDY, 0},
    {"flexjob", RK_BOOL, 0, 0, PM_FLEXJOB, 0},
    {"disability_pension", RK_BOOL, 0, 0, PM_DISABILITY_PENSION, 0},
    {"benefit", RK_ENUM, 1, BENEFIT_OTHER, 0, 0},
};

typedef struct builder {
  pm_plan *plan;
  uint32_t cap_ops, cap_branches, cap_maps, cap_nodes, cap_kids;
  /* named types already turned into skip nodes (recursion, reuse) */
  avro_schema_t *memo_schema;
  uint32_t *memo_node;
  uint32_t nmemo, cap_memo;
  char *err;
  size_t errlen;
  int failed;
} builder;

static void plan_fail(builder *b, const char *fmt, ...) {
  if (b->failed)
    return;
  b->failed = 1;
  va_list ap;
  va_start(ap, fmt);
  if (b->err && b->errlen)
    vsnprintf(b->err, b->errlen, fmt, ap);
  va_end(ap);
}

/* Grow *arr (element size sz) to hold one more than *n; index of the slot. */
static int plan_push(builder *b, void **arr, uint32_t *n, uint32_t *cap, size_t sz) {
  if (*n == *cap) {
    uint32_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, (size_t)ncap * sz);
    if (!p) {
      plan_fail(b, "out of memory building a plan");
      return -1;
    }
    *arr = p;
    *cap = ncap;
  }
  return (int)(*n)++;
}

static avro_schema_t plan_deref(avro_schema_t s) {
  while (s && is_avro_link(s))
    s = avro_schema_link_target(s);
  return s;
}

static int plan_add_op(builder *b, plan_op op) {
  int i = plan_push(b, (void **)&b->plan->ops, &b->plan->nops, &b->cap_ops, sizeof(plan_op));
  if (i >= 0)
    b->plan->ops[i] = op;
  return i;
}

/* ---- skip nodes ---- */

static int64_t plan_skip_node(builder *b, avro_schema_t s);

static int64_t plan_new_node(builder *b, uint8_t type, uint32_t a, uint32_t c) {
  int i =
      plan_push(b, (void **)&b->plan->nodes, &b->plan->nnodes, &b->cap_nodes, sizeof(skip_node));
  if (i < 0)
    return -1;
  b->plan->nodes[i] = (skip_node){type, 0, a, c};
  return i;
}

/* Node for each of n child schemas, stored contiguously in kids. */
static int64_t plan_skip_children(builder *b, int64_t node, avro_schema_t s, size_t n,
                                  int is_union) {
  uint32_t first = b->plan->nkids;
  for (size_t i = 0; i < n; i++)
    if (plan_push(b, (void **)&b->plan->kids, &b->plan->nkids, &b->cap_kids, sizeof(uint32_t)) < 0)
      return -1;
  for (size_t i = 0; i < n; i++) {
    avro_schema_t c = is_union ? avro_schema_union_branch(s, (int)i)
                               : avro_schema_record_field_get_by_index(s, (int)i);
    int64_t k = plan_skip_node(b, c);
    if (k < 0)
      return -1;
    b->plan->kids[first + i] = (uint32_t)k;
  }
  b->plan->nodes[node].a = first;
  b->plan->nodes[node].b = (uint32_t)n;
  return node;
}

static int64_t plan_skip_node(builder *b, avro_schema_t s) {
  s = plan_deref(s);
  if (!s) {
    plan_fail(b, "writer schema has a dangling type reference");
    return -1;
  }
  for (uint32_t i = 0; i < b->nmemo; i++)
    if (b->memo_schema[i] == s)
      return b->memo_node[i];
  switch (avro_typeof(s)) {
  case AVRO_NULL:
    return plan_new_node(b, SK_NULL, 0, 0);
  case AVRO_BOOLEAN:
    return plan_new_node(b, SK_BOOL, 0, 0);
  case AVRO_INT32:
  case AVRO_INT64:
  case AVRO_ENUM:
    return plan_new_node(b, SK_VARINT, 0, 0);
  case AVRO_FLOAT:
    return plan_new_node(b, SK_FLOAT, 0, 0);
  case AVRO_DOUBLE:
    return plan_new_node(b, SK_DOUBLE, 0, 0);
  case AVRO_STRING:
  case AVRO_BYTES:
    return plan_new_node(b, SK_BYTES, 0, 0);
  case AVRO_FIXED: {
    int64_t size = avro_schema_fixed_size(s);
    if (size < 0 || size > UINT32_MAX) {
      plan_fail(b, "writer schema has a fixed type of size %lld", (long long)size);
      return -1;
    }
    return plan_new_node(b, SK_FIXED, (uint32_t)size, 0);
  }
  case AVRO_ARRAY:
  case AVRO_MAP: {
    int is_array = avro_typeof(s) == AVRO_ARRAY;
    int64_t node = plan_new_node(b, is_array ? SK_ARRAY : SK_MAP, 0, 0);
    if (node < 0)
      return -1;
    int64_t item =
        plan_skip_node(b, is_array ? avro_schema_array_items(s) : avro_schema_map_values(s));
    if (item < 0)
      return -1;
    b->plan->nodes[node].a = (uint32_t)item;
    return node;
  }
  case AVRO_RECORD:
  case AVRO_UNION: {
    int is_union = avro_typeof(s) == AVRO_UNION;
    int64_t node = plan_new_node(b, is_union ? SK_UNION : SK_RECORD, 0, 0);
    if (node < 0)
      return -1;
    if (!is_union) { /* named: memoise before the fields, for recursion */
      int m =
          plan_push(b, (void **)&b->memo_schema, &b->nmemo, &b->cap_memo, sizeof(avro_schema_t));
      if (m < 0)
        return -1;
      uint32_t *mn = realloc(b->memo_node, (size_t)b->cap_memo * sizeof(uint32_t));
      if (!mn) {
        plan_fail(b, "out of memory building a plan");
        return -1;
      }
      b->memo_node = mn;
      b->memo_schema[m] = s;
      b->memo_node[m] = (uint32_t)node;
    }
    size_t n = is_union ? avro_schema_union_size(s) : avro_schema_record_size(s);
    return plan_skip_children(b, node, s, n, is_union);
  }
  default:
    plan_fail(b, "writer schema has a type Avro C cannot describe (%s)", avro_schema_type_name(s));
    return -1;
  }
}

/* Mark nodes whose values always take 0 bytes (least fixpoint). */
static void plan_mark_zero_size(pm_plan *p) {
  int changed = 1;
  while (changed) {
    changed = 0;
    for (uint32_t i = 0; i < p->nnodes; i++) {
      skip_node *n = &p->nodes[i];
      if (n->zero_size)
        continue;
      int zero = 0;
      if (n->type == SK_NULL || (n->type == SK_FIXED && n->a == 0))
        zero = 1;
      else if (n->type == SK_RECORD) {
        zero = 1;
        for (uint32_t k = 0; k < n->b; k++)
          if (!p->nodes[p->kids[n->a + k]].zero_size)
            zero = 0;
      }
      if (zero) {
        n->zero_size = 1;
        changed = 1;
      }
    }
  }
}

/* ---- value ops ---- */

static const char *plan_type_name(avro_schema_t s) {
  return avro_schema_type_name(s);
}

/* The op reading writer (non-union) schema s into reader field rf, or a
 * PK_FAIL op when the types are incompatible (*why explains). */
static plan_op plan_value_op(builder *b, int rf, avro_schema_t s, const char **why) {
  const reader_field *r = &reader_fields[rf];
  plan_op op = {PK_FAIL, 0, 0};
  avro_type_t t = avro_typeof(s);
  *why = NULL;
  switch (r->kind) {
  case RK_LONG:
    if (t == AVRO_INT64)
      op.kind = PK_LONG_PID;
    else if (t == AVRO_INT32)
      op.kind = PK_INT_PID;
    break;
  case RK_INT:
    if (t == AVRO_INT32)
      op.kind = (uint8_t)r->int_kind;
    break;
  case RK_FLOAT:
    if (t == AVRO_FLOAT)
      op.kind = PK_FLOAT_HOURS;
    else if (t == AVRO_INT64)
      op.kind = PK_LONG_HOURS;
    else if (t == AVRO_INT32)
      op.kind = PK_INT_HOURS;
    break;
  case RK_BOOL:
    if (t == AVRO_BOOLEAN) {
      op.kind = PK_BOOL;
      op.arg = r->bit;
    }
    break;
  case RK_ENUM:
    if (t == AVRO_ENUM) {
      const char *const *symbols = rf == RF_VISITATION ? visitation_symbols : benefit_symbols;
      int nr = rf == RF_VISITATION ? VISITATION_COUNT : BENEFIT_COUNT;
      int nw = avro_schema_enum_number_of_symbols(s);
      if (nw <= 0) {
        *why = "enum without symbols";
        return op;
      }
      uint32_t first = b->plan->nmaps;
      for (int i = 0; i < nw; i++) {
        int m = plan_push(b, (void **)&b->plan->maps, &b->plan->nmaps, &b->cap_maps, 1);
        if (m < 0)
          return op;
        const char *sym = avro_schema_enum_get(s, i);
        uint8_t to = r->default_value;
        for (int k = 0; k < nr; k++)
          if (sym && strcmp(sym, symbols[k]) == 0)
            to = (uint8_t)k;
        b->plan->maps[m] = to;
      }
      op.kind = rf == RF_VISITATION ? PK_ENUM_VIS : PK_ENUM_BEN;
      op.n = (uint32_t)nw;
      op.arg = first;
    }
    break;
  }
  if (op.kind == PK_FAIL)
    *why = plan_type_name(s);
  return op;
}

static const char *plan_reader_type(int rf) {
  switch (reader_fields[rf].kind) {
  case RK_LONG:
    return "long";
  case RK_INT:
    return "int";
  case RK_FLOAT:
    return "float";
  case RK_BOOL:
    return "boolean";
  case RK_ENUM:
    return rf == RF_VISITATION ? "enum Visitation" : "enum Benefit";
  }
  return "?";
}

/* Op for writer field schema s feeding reader field rf. */
static void plan_field(builder *b, int rf, avro_schema_t s) {
  const char *why;
  s = plan_deref(s);
  if (avro_typeof(s) != AVRO_UNION) {
    plan_op op = plan_value_op(b, rf, s, &why);
    if (op.kind == PK_FAIL && !b->failed)
      plan_fail(b, "field '%s': writer type %s cannot be read as %s", reader_fields[rf].name, why,
                plan_reader_type(rf));
    plan_add_op(b, op);
    return;
  }
  size_t n = avro_schema_union_size(s);
  uint32_t first = b->plan->nbranches;
  int usable = 0;
  for (size_t i = 0; i < n; i++)
    if (plan_push(b, (void **)&b->plan->branches, &b->plan->nbranches, &b->cap_branches,
                  sizeof(plan_op)) < 0)
      return;
  for (size_t i = 0; i < n; i++) {
    avro_schema_t br = plan_deref(avro_schema_union_branch(s, (int)i));
    plan_op op = {PK_FAIL, 0, 0};
    if (br && avro_typeof(br) != AVRO_UNION)
      op = plan_value_op(b, rf, br, &why);
    usable += op.kind != PK_FAIL;
    b->plan->branches[first + i] = op;
  }
  if (!usable)
    plan_fail(b, "field '%s': no branch of the writer union can be read as %s",
              reader_fields[rf].name, plan_reader_type(rf));
  plan_add_op(b, (plan_op){PK_UNION, (uint32_t)n, first});
}

/* The writer schema is the reader schema field for field (fast path). */
static int plan_is_identity(avro_schema_t w) {
  if (avro_schema_record_size(w) != READER_FIELDS)
    return 0;
  static const avro_type_t types[READER_FIELDS] = {
      AVRO_INT64,   AVRO_INT32,   AVRO_INT32,   AVRO_ENUM,    AVRO_BOOLEAN, AVRO_FLOAT,
      AVRO_BOOLEAN, AVRO_BOOLEAN, AVRO_BOOLEAN, AVRO_BOOLEAN, AVRO_BOOLEAN, AVRO_ENUM};
  for (int i = 0; i < READER_FIELDS; i++) {
    const char *name = avro_schema_record_field_name(w, i);
    avro_schema_t f = plan_deref(avro_schema_record_field_get_by_index(w, i));
    if (!name || strcmp(name, reader_fields[i].name) != 0 || !f || avro_typeof(f) != types[i])
      return 0;
    if (types[i] == AVRO_ENUM) {
      const char *const *symbols = i == RF_VISITATION ? visitation_symbols : benefit_symbols;
      int nr = i == RF_VISITATION ? VISITATION_COUNT : BENEFIT_COUNT;
      if (avro_schema_enum_number_of_symbols(f) != nr)
        return 0;
      for (int k = 0; k < nr; k++) {
        const char *sym = avro_schema_enum_get(f, k);
        if (!sym || strcmp(sym, symbols[k]) != 0)
          return 0;
      }
    }
  }
  return 1;
}

static void plan_build(builder *b, avro_schema_t w) {
  pm_plan *p = b->plan;
  if (avro_typeof(w) != AVRO_RECORD) {
    plan_fail(b, "writer schema is a %s, not a record", avro_schema_type_name(w));
    return;
  }
  int seen[READER_FIELDS] = {0};
  size_t nf = avro_schema_record_size(w);
  for (size_t i = 0; i < nf && !b->failed; i++) {
    const char *name = avro_schema_record_field_name(w, (int)i);
    avro_schema_t fs = avro_schema_record_field_get_by_index(w, (int)i);
    int rf = -1;
    for (int k = 0; k < READER_FIELDS && name; k++)
      if (strcmp(name, reader_fields[k].name) == 0)
        rf = k;
    if (rf >= 0 && !seen[rf]) {
      seen[rf] = 1;
      plan_field(b, rf, fs);
    } else {
      int64_t node = plan_skip_node(b, fs);
      if (node >= 0)
        plan_add_op(b, (plan_op){PK_SKIP, 0, (uint32_t)node});
    }
  }
  memset(&p->init, 0, sizeof p->init);
  for (int k = 0; k < READER_FIELDS && !b->failed; k++) {
    if (seen[k])
      continue;
    if (!reader_fields[k].has_default) {
      plan_fail(b, "writer schema has no field '%s' and the reader schema gives it no default",
                reader_fields[k].name);
      return;
    }
    if (k == RF_VISITATION)
      p->init.visitation = reader_fields[k].default_value;
    else if (k == RF_BENEFIT)
      p->init.benefit = reader_fields[k].default_value;
  }
  if (!b->failed) {
    plan_mark_zero_size(p);
    p->identity = plan_is_identity(w);
  }
}

pm_plan *pm_plan_from_json(const char *json, size_t len, char *err, size_t errlen) {
  avro_schema_t w = NULL;
  if (err && errlen)
    err[0] = '\0';
  if (avro_schema_from_json_length(json, len, &w) != 0 || !w) {
    const char *why = avro_strerror();
    size_t n = strcspn(why, "\n");
    if (err && errlen)
      snprintf(err, errlen, "writer schema does not parse: %.*s", (int)n, why);
    return NULL;
  }
  pm_plan *p = calloc(1, sizeof *p);
  builder b = {.plan = p, .err = err, .errlen = errlen};
  if (!p)
    plan_fail(&b, "out of memory building a plan");
  else
    plan_build(&b, w);
  free(b.memo_schema);
  free(b.memo_node);
  avro_schema_decref(w);
  if (b.failed) {
    pm_plan_free(p);
    return NULL;
  }
  return p;
}

void pm_plan_free(pm_plan *plan) {
  if (!plan)
    return;
  free(plan->ops);
  free(plan->branches);
  free(plan->maps);
  free(plan->nodes);
  free(plan->kids);
  free(plan);
}

int pm_plan_is_identity(const pm_plan *plan) {
  return plan->identity;
}
