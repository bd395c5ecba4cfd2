# tests/postgres.cmake — the PostgreSQL sink (SPEC §12) against a real
# PostgreSQL 15 server that each test starts and stops itself
# (tests/postgres_common.sh: initdb and pg_ctl on a private data dir and
# socket folder, a random port, never as root). Label postgres.

# Prints what core/disclosure.h withholds and suppresses, row by row.
add_executable(disclosure_rows ${CMAKE_CURRENT_SOURCE_DIR}/disclosure_rows.c)
target_link_libraries(disclosure_rows PRIVATE regstream_core)

# File mode --postgres (the table equals the CSV, replaced by a second run),
# --min-cell against an independent Python rule and disclosure_mask, the SQL
# views against `regstream report`, report --postgres, the one-line errors.
add_test(NAME postgres_sink COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/postgres_sink.sh ${CMAKE_BINARY_DIR})
set_tests_properties(postgres_sink PROPERTIES LABELS postgres TIMEOUT 300)
if(REGSTREAM_SANITIZE)
  set_tests_properties(postgres_sink PROPERTIES ENVIRONMENT REGSTREAM_SANITIZED=1)
endif()

# export --postgres [--follow] against a real local Kafka broker too:
# equals export --csv; kill -9 rounds of --follow while a Kafka-mode run
# publishes end equal to file mode with the offsets at the topic's end; a
# database down at start, stopped and crashed mid-follow is waited for.
add_test(NAME kafka_postgres COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/kafka_postgres.sh ${CMAKE_BINARY_DIR})
set_tests_properties(kafka_postgres PROPERTIES RUN_SERIAL TRUE LABELS "postgres;kafka" TIMEOUT 600)
if(REGSTREAM_SANITIZE)
  set_tests_properties(kafka_postgres PROPERTIES ENVIRONMENT REGSTREAM_SANITIZED=1)
endif()
