/* record.c — symbol names of the PersonMonth enums, in reader-schema order. */
#include "core/record.h"

const char *const visitation_symbols[VISITATION_COUNT] = {
    "UNKNOWN", "JOBPARAT", "AKTIVITETSPARAT", "UDDANNELSESPARAT", "SELVFORSOERGENDE", "OEVRIG"};

const char *const benefit_symbols[BENEFIT_COUNT] = {"NONE",
                                                    "KONTANTHJAELP",
                                                    "INTEGRATIONSYDELSE",
                                                    "UDDANNELSESHJAELP",
                                                    "RESSOURCEFORLOEB",
                                                    "SYGEDAGPENGE",
                                                    "LEDIGHEDSYDELSE",
                                                    "DAGPENGE",
                                                    "OTHER"};
