/* demo.h — `regstream demo`: the whole Kafka path in one process on
 * librdkafka's in-process mock cluster, nothing to install: produce Avro
 * container files to a topic, run the Kafka mode to the end of the topic,
 * export the output topic to the rollup CSV, and write the report's figures
 * page (OUT.csv -> OUT.html, `report --html`) beside it. The embedded
 * default of the README's main-job command; never a proof of anything (the mock keeps about
 * 5 MiB per partition and silently drops older messages: keep inputs small). */
#ifndef REGSTREAM_DEMO_H
#define REGSTREAM_DEMO_H

#include "core/rules.h"

/* `regstream demo --input FILE.avro... --csv OUT.csv [--threads N] [rule
 * options]` */
typedef struct demo_options {
  const char *const *inputs;
  int input_count;
  const char *csv_path;
  int threads;
  rules_config rules; /* prepared */
} demo_options;

/* Exit status as main's: 0 done, 1 a step failed (said on stderr). */
int demo_run(const demo_options *o);

#endif
