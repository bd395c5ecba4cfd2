/* period.h — calendar months: yyyymm periods, month indexes and days per month.
 *
 * Internally a month is an index counted from 1990-01 (0) to 2099-12 (1319),
 * so gaps and windows are plain integer arithmetic and fit in 16 bits. */
#ifndef REGSTREAM_PERIOD_H
#define REGSTREAM_PERIOD_H

#include <stdint.h>

enum {
  PERIOD_FIRST = 199001,
  PERIOD_LAST = 209912,
  PERIOD_MONTHS = (2099 - 1990 + 1) * 12 /* 1320 month indexes */
};

/* 1 when p is yyyymm with 1990 <= yyyy <= 2099 and 01 <= mm <= 12. */
static inline int period_valid(int32_t p) {
  int32_t month = p % 100;
  return p >= PERIOD_FIRST && p <= PERIOD_LAST && month >= 1 && month <= 12;
}

/* Month index of a valid period. */
static inline int period_to_month(int32_t p) {
  return (p / 100 - 1990) * 12 + (p % 100 - 1);
}

static inline int32_t period_from_month(int month) {
  return (int32_t)((1990 + month / 12) * 100 + month % 12 + 1);
}

/* Days in a month index (Gregorian leap years). */
static inline int period_days(int month) {
  static const uint8_t days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int year = 1990 + month / 12, m = month % 12;
  if (m == 1 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
    return 29;
  return days[m];
}

#endif
