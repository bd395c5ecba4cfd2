/* replay.h — file mode (SPEC §10): Avro container files in, rollup CSV and
 * dead-letter JSON Lines out, over any number of worker threads with results
 * identical for every thread count. */
#ifndef REGSTREAM_REPLAY_H
#define REGSTREAM_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "cli/config.h"
#include "core/validate.h"

typedef struct replay_result {
  uint64_t records;                /* records read, rejected ones included */
  uint64_t rejected[REASON_COUNT]; /* per reason */
  uint64_t corrected;              /* records that replaced a latest month */
  uint64_t persons;                /* distinct valid persons */
  uint64_t state_bytes;            /* bytes of the person maps */
  size_t rows;                     /* CSV rows written */
  double seconds;
} replay_result;

/* Run the replay described by cfg. 0 when all input was processed (rejected
 * records included), or -1 with a one-line reason. */
int replay_run(const config *cfg, replay_result *result, char *err, size_t errlen);

#endif
