/* decode.c — pm_decode: runs a resolution plan (plan.h) on raw Avro binary.
 *
 * The identity plan (writer schema == reader schema) takes a straight-line
 * path with inline varints and no bounds checks when at least
 * DECODE_WIRE_MAX bytes remain; everything else (evolved schemas, the last
 * records of a buffer) runs the op interpreter, which checks every byte.
 * Binary semantics follow Avro C 1.11.1: varints of at most 10 bytes (bits
 * beyond 64 dropped), ints range-checked when read (not when skipped),
 * booleans true for any nonzero byte, little-endian floats, negative
 * string/bytes lengths rejected, union indexes checked. Unlike Avro C, enum
 * indexes are range-checked and mapped by symbol name. A value that is
 * wrong but whole (an enum index or an int out of range) still lets the
 * decoder find the datum's end: PM_DECODE_BAD_VALUE, so a container block
 * loses only that record. */
#include <string.h>

#include "avro/plan.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "decode.c assumes a little-endian host (Avro floats are little-endian)"
#endif

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Largest reader-schema datum: 4 varints of 10 bytes, 6 booleans, a float,
 * an enum varint of 10 bytes. */
#define DECODE_WIRE_MAX 60

static inline int64_t decode_zigzag(uint64_t u) {
  return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* Varint with at least 10 readable bytes at p; NULL when longer than 10. */
static inline const uint8_t *decode_varint_fast(const uint8_t *p, uint64_t *out) {
  uint64_t b = p[0];
  if (LIKELY(b < 0x80)) {
    *out = b;
    return p + 1;
  }
  uint64_t r = b & 0x7f;
  for (unsigned i = 1; i < 10; i++) {
    b = p[i];
    r |= (b & 0x7f) << (7 * i);
    if (b < 0x80) {
      *out = r;
      return p + i + 1;
    }
  }
  return NULL;
}

/* Varint within [p, end); NULL when truncated or longer than 10 bytes. */
static inline const uint8_t *decode_varint(const uint8_t *p, const uint8_t *end, uint64_t *out) {
  if (LIKELY(end - p >= 10))
    return decode_varint_fast(p, out);
  uint64_t r = 0;
  for (unsigned i = 0; i < 10; i++) {
    if (p + i >= end)
      return NULL;
    uint64_t b = p[i];
    r |= (b & 0x7f) << (7 * i);
    if (b < 0x80) {
      *out = r;
      return p + i + 1;
    }
  }
  return NULL;
}

static inline float decode_float_bytes(const uint8_t *p) {
  float f;
  memcpy(&f, p, 4);
  return f;
}

/* The straight-line decoder for the reader schema; needs DECODE_WIRE_MAX
 * readable bytes at p. */
static inline const uint8_t *decode_identity_fast(const uint8_t *p, pm_record *out) {
  uint64_t u;
  int64_t v;
  if (UNLIKELY(!(p = decode_varint_fast(p, &u))))
    return NULL;
  out->person_id = decode_zigzag(u);
  if (UNLIKELY(!(p = decode_varint_fast(p, &u))))
    return NULL;
  v = decode_zigzag(u);
  if (UNLIKELY(v < INT32_MIN || v > INT32_MAX))
    return NULL;
  out->period = (int32_t)v;
  if (UNLIKELY(!(p = decode_varint_fast(p, &u))))
    return NULL;
  v = decode_zigzag(u);
  if (UNLIKELY(v < INT32_MIN || v > INT32_MAX))
    return NULL;
  out->municipality = (int32_t)v;
  if (UNLIKELY(!(p = decode_varint_fast(p, &u))))
    return NULL;
  v = decode_zigzag(u);
  if (UNLIKELY((uint64_t)v >= VISITATION_COUNT))
    return NULL;
  out->visitation = (uint8_t)v;
  unsigned flags = (p[0] != 0) * PM_ENROLLED;
  out->paid_hours = decode_float_bytes(p + 1);
  flags |= (p[5] != 0) * PM_EDUCATION;
  flags |= (p[6] != 0) * PM_INTERNSHIP;
  flags |= (p[7] != 0) * PM_WAGE_SUBSIDY;
  flags |= (p[8] != 0) * PM_FLEXJOB;
  flags |= (p[9] != 0) * PM_DISABILITY_PENSION;
  out->flags = (uint8_t)flags;
  out->reserved = 0;
  p += 10;
  if (UNLIKELY(!(p = decode_varint_fast(p, &u))))
    return NULL;
  v = decode_zigzag(u);
  if (UNLIKELY((uint64_t)v >= BENEFIT_COUNT))
    return NULL;
  out->benefit = (uint8_t)v;
  return p;
}

/* ---- the interpreter ---- */

static const uint8_t *decode_skip(const pm_plan *pl, uint32_t node, const uint8_t *p,
                                  const uint8_t *end, int depth);

/* Array or map blocks: count, [byte size when count < 0], items, ... 0. */
static const uint8_t *decode_skip_blocks(const pm_plan *pl, const skip_node *n, const uint8_t *p,
                                         const uint8_t *end, int depth) {
  const skip_node *item = &pl->nodes[n->a];
  int is_map = n->type == SK_MAP;
  int zero = item->zero_size && !is_map;
  for (;;) {
    uint64_t u;
    if (!(p = decode_varint(p, end, &u)))
      return NULL;
    int64_t count = decode_zigzag(u);
    if (count == 0)
      return p;
    if (count < 0) {
      /* Avro C negates (INT64_MIN stays negative: no items) and ignores the
       * byte size. */
      count = count == INT64_MIN ? 0 : -count;
      if (!(p = decode_varint(p, end, &u)))
        return NULL;
    }
    if (zero)
      continue;
    /* every item takes at least one byte */
    if ((uint64_t)count > (uint64_t)(end - p))
      return NULL;
    for (int64_t i = 0; i < count; i++) {
      if (is_map) {
        if (!(p = decode_varint(p, end, &u)))
          return NULL;
        int64_t len = decode_zigzag(u);
        if (len < 0 || len > end - p)
          return NULL;
        p += len;
      }
      if (!(p = decode_skip(pl, n->a, p, end, depth + 1)))
        return NULL;
    }
  }
}

static const uint8_t *decode_skip(const pm_plan *pl, uint32_t node, const uint8_t *p,
                                  const uint8_t *end, int depth) {
  const skip_node *n = &pl->nodes[node];
  uint64_t u;
  if (depth > PLAN_MAX_DEPTH)
    return NULL;
  switch ((skip_type)n->type) {
  case SK_NULL:
    return p;
  case SK_BOOL:
    return p < end ? p + 1 : NULL;
  case SK_VARINT:
    return decode_varint(p, end, &u);
  case SK_FLOAT:
    return end - p >= 4 ? p + 4 : NULL;
  case SK_DOUBLE:
    return end - p >= 8 ? p + 8 : NULL;
  case SK_BYTES: {
    if (!(p = decode_varint(p, end, &u)))
      return NULL;
    int64_t len = decode_zigzag(u);
    if (len < 0 || len > end - p)
      return NULL;
    return p + len;
  }
  case SK_FIXED:
    return (uint64_t)(end - p) >= n->a ? p + n->a : NULL;
  case SK_RECORD:
    for (uint32_t k = 0; k < n->b; k++)
      if (!(p = decode_skip(pl, pl->kids[n->a + k], p, end, depth + 1)))
        return NULL;
    return p;
  case SK_ARRAY:
  case SK_MAP:
    return decode_skip_blocks(pl, n, p, end, depth);
  case SK_UNION: {
    if (!(p = decode_varint(p, end, &u)))
      return NULL;
    int64_t idx = decode_zigzag(u);
    if (idx < 0 || idx >= (int64_t)n->b)
      return NULL;
    return decode_skip(pl, pl->kids[n->a + idx], p, end, depth + 1);
  }
  }
  return NULL;
}

/* Reads an Avro int (range-checked like Avro C's read_int). An int out of
 * range is a complete varint: the datum stays framed, so it sets *bad and
 * decoding goes on to find the datum's end. */
static inline const uint8_t *decode_int(const uint8_t *p, const uint8_t *end, int32_t *out,
                                        int *bad) {
  uint64_t u;
  if (!(p = decode_varint(p, end, &u)))
    return NULL;
  int64_t v = decode_zigzag(u);
  if (v < INT32_MIN || v > INT32_MAX) {
    *bad = 1;
    v = 0;
  }
  *out = (int32_t)v;
  return p;
}

/* One value op (not a union, not a skip). */
static inline __attribute__((always_inline)) const uint8_t *
decode_value(const pm_plan *pl, const plan_op *op, const uint8_t *p, const uint8_t *end,
             pm_record *out, int *bad) {
  uint64_t u;
  int32_t i32;
  switch ((plan_kind)op->kind) {
  case PK_LONG_PID:
    if (!(p = decode_varint(p, end, &u)))
      return NULL;
    out->person_id = decode_zigzag(u);
    return p;
  case PK_INT_PID:
    if (!(p = decode_int(p, end, &i32, bad)))
      return NULL;
    out->person_id = i32;
    return p;
  case PK_INT_PERIOD:
    if (!(p = decode_int(p, end, &i32, bad)))
      return NULL;
    out->period = i32;
    return p;
  case PK_INT_MUNI:
    if (!(p = decode_int(p, end, &i32, bad)))
      return NULL;
    out->municipality = i32;
    return p;
  case PK_INT_HOURS:
    if (!(p = decode_int(p, end, &i32, bad)))
      return NULL;
    out->paid_hours = (float)i32;
    return p;
  case PK_LONG_HOURS:
    if (!(p = decode_varint(p, end, &u)))
      return NULL;
    out->paid_hours = (float)decode_zigzag(u);
    return p;
  case PK_FLOAT_HOURS:
    if (end - p < 4)
      return NULL;
    out->paid_hours = decode_float_bytes(p);
    return p + 4;
  case PK_BOOL:
    if (p >= end)
      return NULL;
    out->flags |= (uint8_t)((*p != 0) * op->arg); /* branchless: flags are random */
    return p + 1;
  case PK_ENUM_VIS:
  case PK_ENUM_BEN: {
    if (!(p = decode_varint(p, end, &u)))
      return NULL;
    int64_t v = decode_zigzag(u);
    if (v < 0 || v >= (int64_t)op->n) {
      *bad = 1; /* a whole varint: the datum is still framed */
      return p;
    }
    uint8_t sym = pl->maps[op->arg + (uint32_t)v];
    if (op->kind == PK_ENUM_VIS)
      out->visitation = sym;
    else
      out->benefit = sym;
    return p;
  }
  case PK_UNION:
  case PK_FAIL:
  case PK_SKIP:
    break;
  }
  return NULL;
}

static int decode_interpret(const pm_plan *pl, const uint8_t **pos, const uint8_t *end,
                            pm_record *out) {
  const uint8_t *p = *pos;
  int bad = 0;
  *out = pl->init; /* flags 0: PK_BOOL only sets bits */
  const plan_op *op = pl->ops, *last = pl->ops + pl->nops;
  for (; op < last; op++) {
    if (op->kind == PK_SKIP) {
      p = decode_skip(pl, op->arg, p, end, 0);
    } else if (op->kind == PK_UNION) {
      uint64_t u;
      if (!(p = decode_varint(p, end, &u)))
        return -1;
      int64_t idx = decode_zigzag(u);
      if (idx < 0 || idx >= (int64_t)op->n)
        return -1;
      p = decode_value(pl, &pl->branches[op->arg + (uint32_t)idx], p, end, out, &bad);
    } else {
      p = decode_value(pl, op, p, end, out, &bad);
    }
    if (!p)
      return -1;
  }
  *pos = p;
  return bad ? PM_DECODE_BAD_VALUE : 0;
}

int pm_decode(const pm_plan *plan, const uint8_t **pos, const uint8_t *end, pm_record *out) {
  if (LIKELY(plan->identity) && LIKELY(end - *pos >= DECODE_WIRE_MAX)) {
    const uint8_t *p = decode_identity_fast(*pos, out);
    if (LIKELY(p != NULL)) {
      *pos = p;
      return 0;
    }
    /* Rare: let the interpreter tell a bad value from lost framing. */
  }
  return decode_interpret(plan, pos, end, out);
}

int pm_decode_exact(const pm_plan *plan, const uint8_t *data, size_t len, pm_record *out) {
  /* One record in a buffer of its own (a Kafka message) is shorter than the
   * fast path's margin: decode a zero-padded copy, then check the length. */
  if (LIKELY(plan->identity) && len < DECODE_WIRE_MAX) {
    uint8_t padded[DECODE_WIRE_MAX] = {0};
    memcpy(padded, data, len);
    const uint8_t *q = decode_identity_fast(padded, out);
    if (LIKELY(q != NULL) && q == padded + len)
      return 0;
    /* Bad, short or long: the interpreter on the original bytes decides. */
  }
  const uint8_t *p = data;
  const uint8_t *end = data + len;
  int rc = pm_decode(plan, &p, end, out);
  if (rc == PM_DECODE_LOST || p != end)
    return PM_DECODE_LOST;
  return rc;
}
