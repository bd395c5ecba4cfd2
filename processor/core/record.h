/* record.h — the decoded PersonMonth (SPEC §2) as the pure core sees it.
 *
 * One fixed 24-byte struct, filled by the Avro decoder (avro/decode.c) from any
 * writer schema and consumed by validation and the rules. Enum values are the
 * reader schema's symbol indexes (schemas/person_month.avsc); the six booleans
 * are packed into one flags byte. */
#ifndef REGSTREAM_RECORD_H
#define REGSTREAM_RECORD_H

#include <stdint.h>

typedef enum visitation {
  VISITATION_UNKNOWN = 0,
  VISITATION_JOBPARAT,
  VISITATION_AKTIVITETSPARAT,
  VISITATION_UDDANNELSESPARAT,
  VISITATION_SELVFORSOERGENDE,
  VISITATION_OEVRIG,
  VISITATION_COUNT
} visitation;

typedef enum benefit {
  BENEFIT_NONE = 0,
  BENEFIT_KONTANTHJAELP,
  BENEFIT_INTEGRATIONSYDELSE,
  BENEFIT_UDDANNELSESHJAELP,
  BENEFIT_RESSOURCEFORLOEB,
  BENEFIT_SYGEDAGPENGE,
  BENEFIT_LEDIGHEDSYDELSE,
  BENEFIT_DAGPENGE,
  BENEFIT_OTHER,
  BENEFIT_COUNT
} benefit;

/* Bits of pm_record.flags. */
enum {
  PM_ENROLLED = 1u << 0,
  PM_EDUCATION = 1u << 1,
  PM_INTERNSHIP = 1u << 2,
  PM_WAGE_SUBSIDY = 1u << 3,
  PM_FLEXJOB = 1u << 4,
  PM_DISABILITY_PENSION = 1u << 5,
};

typedef struct pm_record {
  int64_t person_id;
  int32_t period;       /* yyyymm */
  int32_t municipality; /* official 3-digit code */
  float paid_hours;
  uint8_t visitation; /* enum visitation */
  uint8_t benefit;    /* enum benefit */
  uint8_t flags;      /* PM_* bits */
  uint8_t reserved;   /* always 0 */
} pm_record;

extern const char *const visitation_symbols[VISITATION_COUNT];
extern const char *const benefit_symbols[BENEFIT_COUNT];

#endif
