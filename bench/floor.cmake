# floor.cmake — bench-floor: the floor of issue 13 on a container file (bench_floor.c):
# ns/record of the decoder alone and of state updates in input order with prefetch;
# driven by bench/replay.sh.
add_executable(bench-floor ${CMAKE_CURRENT_SOURCE_DIR}/bench_floor.c)
target_link_libraries(bench-floor PRIVATE regstream_avro)
