/* snapshot_fixture_writer.c — writes tests/data/snapshot-v1-16.snap (see
 * tests/snapshot_fixture.h): the fixture's records applied to one shard,
 * snapshot as shard "file.0of1" at position 5000, fingerprint of the default
 * rules. Not built by CMake: it was built against the tree of commit
 * cfd8c9a (the 16-byte person_state), from that tree's root after a build:
 *   cc -O2 -D_GNU_SOURCE -Iprocessor -Itests tests/snapshot_fixture_writer.c \
 *      -Wl,--start-group build/libregstream_state.a build/libregstream_core.a \
 *      build/libregstream_util.a build/libregstream_avro.a -Wl,--end-group \
 *      -ljansson -lzstd -lz -lm -lpthread -o /tmp/fixture-writer &&
 *   /tmp/fixture-writer DIR    (writes DIR/file.0of1.00000000000000005000.snap) */
#include <stdio.h>
#include <string.h>

#include "snapshot_fixture.h"
#include "state/snapshot.h"
#include "state/store.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: fixture-writer DIR\n");
    return 2;
  }
  rules_config rules;
  char err[512];
  rules_config_default(&rules);
  if (rules_config_prepare(&rules, err, sizeof err) < 0)
    return 1;
  shard s;
  if (shard_init(&s, &rules, 0) < 0)
    return 1;
  fixture_apply(&s, 0, FIXTURE_MONTHS);
  snapshot_meta m;
  memset(&m, 0, sizeof m);
  snprintf(m.shard_id, sizeof m.shard_id, "file.0of1");
  m.position = 5000;
  m.fingerprint = snapshot_fingerprint(&rules);
  if (snapshot_store_write_shard(argv[1], &s, &m, err, sizeof err) < 0) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  printf("%llu persons, %llu applied, %llu corrected, %llu late\n",
         (unsigned long long)s.persons.count, (unsigned long long)s.applied,
         (unsigned long long)s.corrected, (unsigned long long)s.late);
  shard_free(&s);
  return 0;
}
