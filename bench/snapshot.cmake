# snapshot.cmake — bench-snapshot: snapshot bytes per person, capture pause, write and load
# times for shards built from the national generator's records (bench_snapshot.c compiles
# gen.c in); driven by bench/snapshot.sh.
add_executable(bench-snapshot ${CMAKE_CURRENT_SOURCE_DIR}/bench_snapshot.c)
target_link_libraries(bench-snapshot PRIVATE regstream_app PkgConfig::ZSTD m)
