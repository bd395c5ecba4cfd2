/* municipality.h — official municipality codes and their dense index 0..97. */
#ifndef REGSTREAM_MUNICIPALITY_H
#define REGSTREAM_MUNICIPALITY_H

#include <stdint.h>

enum { MUNICIPALITY_COUNT = 98 };

extern const int16_t municipality_codes[MUNICIPALITY_COUNT]; /* ascending */
extern const char *const municipality_names[MUNICIPALITY_COUNT];

/* Dense index (0..97, in code order) of an official code, or -1. */
int municipality_index(int32_t code);

#endif
