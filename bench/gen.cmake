# gen.cmake — builds regstream-gen, the synthetic PersonMonth generator (bench/gen.c).
add_executable(regstream-gen ${CMAKE_CURRENT_SOURCE_DIR}/gen.c)
target_link_libraries(regstream-gen PRIVATE regstream_avro m)
