/* validate.c — SPEC §5 value checks and the reason codes of rejected records. */
#include "core/validate.h"

#include <math.h>

#include "core/municipality.h"
#include "core/period.h"

static const char *const reason_codes[REASON_COUNT] = {
    "ok", "undecodable", "schema", "person_id", "period", "municipality", "paid_hours", "late"};

const char *reason_code(reason r) {
  return (unsigned)r < REASON_COUNT ? reason_codes[r] : "unknown";
}

reason validate_record(const pm_record *rec) {
  if (rec->person_id <= 0)
    return REASON_PERSON_ID;
  if (!period_valid(rec->period))
    return REASON_PERIOD;
  if (municipality_index(rec->municipality) < 0)
    return REASON_MUNICIPALITY;
  /* NaN fails both comparisons, so test for the valid range. */
  if (!(rec->paid_hours >= 0.0f && rec->paid_hours <= 744.0f))
    return REASON_PAID_HOURS;
  return REASON_OK;
}
