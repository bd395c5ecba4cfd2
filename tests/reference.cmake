# tests/reference.cmake — the independent reference model (regstream-refmodel) and the small
# JSON-lines -> Avro container writer the hand-written edge cases use (regstream-test-writer).
# Both use only Avro C's generic API, never the project's decoder or core.
add_executable(regstream-refmodel ${CMAKE_CURRENT_SOURCE_DIR}/reference/refmodel.c)
target_compile_definitions(regstream-refmodel
  PRIVATE REFMODEL_SCHEMA_PATH="${CMAKE_SOURCE_DIR}/schemas/person_month.avsc")
target_link_libraries(regstream-refmodel PRIVATE PkgConfig::AVRO m)

add_executable(regstream-test-writer ${CMAKE_CURRENT_SOURCE_DIR}/reference/avro_write_json.c)
target_compile_definitions(regstream-test-writer
  PRIVATE TEST_WRITER_SCHEMA_PATH="${CMAKE_SOURCE_DIR}/schemas/person_month.avsc")
target_link_libraries(regstream-test-writer PRIVATE PkgConfig::AVRO PkgConfig::JANSSON m)
