/* snapshot_fixture.h — the records behind tests/data/snapshot-v1-16.snap,
 * a snapshot of one shard written by regstream at commit cfd8c9a, when
 * person_state was 16 bytes in memory and the map one table of 24-byte
 * slots: test_app_snapshot.c loads that file and checks it equals a shard
 * the same records are applied to today (old snapshots load exactly), and
 * that written again it is the same file but for its time and checksums.
 *
 * 300 persons over 18 months from 202001: ids on both sides of 2^32 (1, 2,
 * 2^31, UINT32_MAX - 1, UINT32_MAX, UINT32_MAX + 1, UINT32_MAX + 2,
 * INT64_MAX - 1, INT64_MAX, then CPR-like and wide ids), with gaps,
 * enrolment, every flag, corrections and late records. Only what
 * every version of the state layer has (shard_init, shard_apply,
 * personmap_hash), so that the writer (tests/snapshot_fixture_writer.c)
 * builds against old trees too. */
#ifndef REGSTREAM_SNAPSHOT_FIXTURE_H
#define REGSTREAM_SNAPSHOT_FIXTURE_H

#include <stdint.h>
#include <string.h>

#include "core/period.h"
#include "state/shard.h"

enum { FIXTURE_PERSONS = 300, FIXTURE_MONTHS = 18, FIXTURE_FIRST_PERIOD = 202001 };

static uint64_t fixture_mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static int64_t fixture_id(int p) {
  static const int64_t fixed[] = {1,
                                  2,
                                  (int64_t)1 << 31,
                                  (int64_t)UINT32_MAX - 1,
                                  (int64_t)UINT32_MAX,
                                  (int64_t)UINT32_MAX + 1,
                                  (int64_t)UINT32_MAX + 2,
                                  INT64_MAX - 1,
                                  INT64_MAX};
  if (p < (int)(sizeof fixed / sizeof *fixed))
    return fixed[p];
  uint64_t h = fixture_mix((uint64_t)p);
  if (p % 2) /* CPR-like: DDMMYYSSSS, at most 3112999999 */
    return (int64_t)(101000000 + h % 3012000000u);
  return (int64_t)((h >> 2) | ((uint64_t)1 << 32)); /* wide */
}

/* Apply months [first, last) of the fixture's records to s. */
static void fixture_apply(shard *s, int first, int last) {
  static const int codes[] = {101, 147, 751, 851, 860, 461};
  for (int month = first; month < last; month++)
    for (int p = 0; p < FIXTURE_PERSONS; p++) {
      uint64_t h = fixture_mix((uint64_t)p * 1000 + (uint64_t)month);
      if (h % 7 == 0 && month) /* a gap */
        continue;
      pm_record rec;
      memset(&rec, 0, sizeof rec);
      rec.person_id = fixture_id(p);
      rec.period = period_from_month(period_to_month(FIXTURE_FIRST_PERIOD) + month);
      rec.municipality = codes[(h >> 4) % 6];
      rec.visitation = (uint8_t)((h >> 8) % VISITATION_COUNT);
      rec.benefit = (uint8_t)((h >> 12) % BENEFIT_COUNT);
      rec.flags = (uint8_t)((h >> 16) & 0x3f);
      if ((h >> 22) % 3 == 0)
        rec.flags &= (uint8_t)~PM_ENROLLED;
      rec.paid_hours = (h >> 24) % 4 == 0 ? 0.0f : (float)((h >> 28) % 200) + 0.25f;
      shard_apply(s, &rec, personmap_hash(rec.person_id));
      if (h % 11 == 0) { /* a correction of that month */
        rec.paid_hours = rec.paid_hours > 0 ? 0.0f : 160.5f;
        rec.flags ^= PM_EDUCATION;
        shard_apply(s, &rec, personmap_hash(rec.person_id));
      }
      if (h % 13 == 0 && month) { /* a late record: changes nothing */
        rec.period = period_from_month(period_to_month(rec.period) - 1);
        shard_apply(s, &rec, personmap_hash(rec.person_id));
      }
    }
}

#endif
