# The bare librdkafka consumer: the transport ceiling bench/kafka.sh measures
# regstream's Kafka mode against.
pkg_check_modules(RDKAFKA REQUIRED IMPORTED_TARGET rdkafka)
add_executable(bench-bare-consume ${CMAKE_CURRENT_SOURCE_DIR}/bare_consume.c)
target_link_libraries(bench-bare-consume PRIVATE PkgConfig::RDKAFKA Threads::Threads)
# The same consumer with the program's allocator (jemalloc), so that the
# ceiling is taken with regstream's allocator too.
if(REGSTREAM_JEMALLOC)
  add_executable(bench-bare-consume-jemalloc ${CMAKE_CURRENT_SOURCE_DIR}/bare_consume.c)
  target_link_libraries(bench-bare-consume-jemalloc PRIVATE PkgConfig::RDKAFKA PkgConfig::JEMALLOC
                        Threads::Threads)
endif()
