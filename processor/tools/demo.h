/* demo.h — `regstream demo`: the whole Kafka path in one process on
 * librdkafka's in-process mock cluster, nothing to install: produce Avro
 * container files to a topic, run the Kafka mode to the end of the topic,
 * export the output topic to the rollup CSV. The embedded default of the
 * README's main-job command; never a proof of anything (the mock keeps about
 * 5 MiB per partition and silently drops older messages: keep inputs small). */
#ifndef REGSTREAM_DEMO_H
#define REGSTREAM_DEMO_H

/* `regstream demo --input FILE.avro... --csv OUT.csv [--threads N] [rule
 * options]`: exit status as main's. */
int demo_main(int argc, char **argv);

#endif
