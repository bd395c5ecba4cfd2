# bench-decode: ns/record of pm_decode (fast path, interpreter) vs Avro C's generic resolving reader.
add_executable(bench-decode ${CMAKE_CURRENT_SOURCE_DIR}/bench_decode.c)
target_link_libraries(bench-decode PRIVATE regstream_avro)
