/* schemas.h — the project's Avro schemas, compiled in from schemas/ at build time
 * (processor/embed_schemas.cmake), so the .avsc files are the one source of truth. */
#ifndef REGSTREAM_SCHEMAS_H
#define REGSTREAM_SCHEMAS_H
extern const char pm_reader_schema_json[]; /* schemas/person_month.avsc */
extern const char rollup_schema_json[];    /* schemas/rollup.avsc */
#endif
