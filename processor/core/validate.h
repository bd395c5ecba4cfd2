/* validate.h — SPEC §5: the checks a decoded record must pass, and the reason
 * codes every rejected record carries (also for failures found elsewhere:
 * undecodable bytes, unknown schemas, late records). */
#ifndef REGSTREAM_VALIDATE_H
#define REGSTREAM_VALIDATE_H

#include "core/record.h"

typedef enum reason {
  REASON_OK = 0,
  REASON_UNDECODABLE,
  REASON_SCHEMA,
  REASON_PERSON_ID,
  REASON_PERIOD,
  REASON_MUNICIPALITY,
  REASON_PAID_HOURS,
  REASON_LATE,
  REASON_COUNT
} reason;

/* The code written in dead-letter output: "undecodable", "late", ... */
const char *reason_code(reason r);

/* The first failing check, in the order person_id, period, municipality,
 * paid_hours; REASON_OK when the record is valid. Lateness is not checked
 * here: it needs the person's state (rules_apply). */
reason validate_record(const pm_record *rec);

#endif
