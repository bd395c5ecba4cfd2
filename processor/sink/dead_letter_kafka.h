/* dead_letter_kafka.h — the dead-letter door over a topic (see
 * dead_letter_kafka.c). */
#ifndef REGSTREAM_DEAD_LETTER_KAFKA_H
#define REGSTREAM_DEAD_LETTER_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "sink/dead_letter.h"

/* Rejected messages onto topic through producer (which must outlive the
 * door). NULL when memory is short. */
dead_letter *dead_letter_open_topic(rd_kafka_t *producer, const char *topic);

#endif
