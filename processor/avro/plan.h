/* plan.h — internal to processor/avro: the layout of a resolution plan
 * (pm_plan), built by plan.c from a writer schema and run by decode.c.
 *
 * A plan is a flat list of ops, one per writer field, in writer order. Value
 * ops read one writer value and store it (converted) into a pm_record field;
 * union ops select a branch op by the union index; skip ops walk a tree of
 * skip nodes describing any Avro type the reader does not use. */
#ifndef REGSTREAM_AVRO_PLAN_H
#define REGSTREAM_AVRO_PLAN_H

#include <stdint.h>

#include "avro/decode.h"

/* What an op does; value ops are named writer-type_reader-target. */
typedef enum plan_kind {
  PK_LONG_PID,    /* long -> person_id */
  PK_INT_PID,     /* int -> person_id (int -> long promotion) */
  PK_INT_PERIOD,  /* int -> period */
  PK_INT_MUNI,    /* int -> municipality */
  PK_INT_HOURS,   /* int -> paid_hours (int -> float) */
  PK_LONG_HOURS,  /* long -> paid_hours (long -> float) */
  PK_FLOAT_HOURS, /* float -> paid_hours */
  PK_BOOL,        /* boolean -> flags bit `arg` */
  PK_ENUM_VIS,    /* enum -> visitation through map[arg .. arg+n) */
  PK_ENUM_BEN,    /* enum -> benefit through map[arg .. arg+n) */
  PK_UNION,       /* union index selects branch op branches[arg + i], i < n */
  PK_FAIL,        /* a union branch the reader cannot use: decode error */
  PK_SKIP,        /* skip a value described by skip node `arg` */
} plan_kind;

typedef struct plan_op {
  uint8_t kind; /* plan_kind */
  uint32_t n;   /* enum symbols / union branches */
  uint32_t arg;
} plan_op;

/* Skip nodes: the writer's types the reader ignores. */
typedef enum skip_type {
  SK_NULL,
  SK_BOOL,
  SK_VARINT, /* int, long, enum: Avro C skips them without range checks */
  SK_FLOAT,
  SK_DOUBLE,
  SK_BYTES,  /* bytes, string */
  SK_FIXED,  /* a = size */
  SK_RECORD, /* children kids[a .. a+b) */
  SK_ARRAY,  /* a = item node */
  SK_MAP,    /* a = value node */
  SK_UNION,  /* branches kids[a .. a+b) */
} skip_type;

typedef struct skip_node {
  uint8_t type;      /* skip_type */
  uint8_t zero_size; /* every value of this type is encoded in 0 bytes */
  uint32_t a, b;
} skip_node;

struct pm_plan {
  int identity;   /* writer schema is the reader schema, field for field */
  pm_record init; /* defaults for reader fields the writer lacks */
  plan_op *ops;   /* one per writer field */
  uint32_t nops;
  plan_op *branches; /* branch ops of PK_UNION */
  uint32_t nbranches;
  uint8_t *maps; /* enum maps: writer symbol index -> reader symbol index */
  uint32_t nmaps;
  skip_node *nodes;
  uint32_t nnodes;
  uint32_t *kids;
  uint32_t nkids;
};

/* Deepest nesting of skipped values we follow (recursive schemas). */
#define PLAN_MAX_DEPTH 256

#endif
