# tests/kafka.cmake — Kafka-side tests: test_framing needs the app library
# (processor/source/), the Kafka tools integration test against a real local
# broker (label kafka), and its helper that produces rollup rows.
target_link_libraries(test_framing PRIVATE regstream_app)

# Produces the rows of a rollup CSV as upserts (older value, newer value),
# plus a tombstoned key and a members = 0 row: the input of `regstream export`.
add_executable(kafka_rows_producer ${CMAKE_CURRENT_SOURCE_DIR}/kafka_rows_producer.c)
target_link_libraries(kafka_rows_producer PRIVATE regstream_app)

# The Kafka tools against a real local broker (deploy/kafka-local.sh): produce
# (plain and Confluent), partition and order checks, export of rollup rows.
add_test(NAME kafka_tools
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/kafka_tools.sh ${CMAKE_BINARY_DIR})
set_tests_properties(kafka_tools PROPERTIES RUN_SERIAL TRUE LABELS kafka TIMEOUT 600)

# Checks a topic loaded by `regstream produce` against its container file.
add_executable(kafka_topic_check ${CMAKE_CURRENT_SOURCE_DIR}/kafka_topic_check.c)
target_link_libraries(kafka_topic_check PRIVATE regstream_app)

# The Kafka mode of `regstream run` against a real local broker: equals file
# mode (1 and 2 threads, Confluent framing, two instances), dead letters.
add_test(NAME kafka_run COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/kafka_run.sh ${CMAKE_BINARY_DIR})
set_tests_properties(kafka_run PROPERTIES RUN_SERIAL TRUE LABELS kafka TIMEOUT 900)

# The README's embedded default (regstream demo on the in-process mock
# cluster) equals file mode.
add_test(NAME demo_mock COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/demo_mock.sh ${CMAKE_BINARY_DIR})
set_tests_properties(demo_mock PROPERTIES TIMEOUT 300)

# Crash-exact state against a real local broker: kill -9 at random moments
# and restart from snapshots, a corrupted newest snapshot, an incompatible
# configuration, 1 -> 2 -> 1 instances, a broker restart mid-run.
add_test(NAME kafka_snapshot COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/kafka_snapshot.sh ${CMAKE_BINARY_DIR})
set_tests_properties(kafka_snapshot PROPERTIES RUN_SERIAL TRUE LABELS kafka TIMEOUT 900)

# A secured broker (deploy/kafka-local.sh start --sasl-ssl): the client
# properties it prints, produce/run/export over SASL_SSL equal file mode,
# a wrong password, an unknown CA, a hostname mismatch and a missing ACL are
# refused in one line naming the cause; a mistyped secret is masked.
add_test(NAME kafka_sasl COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/kafka_sasl.sh ${CMAKE_BINARY_DIR})
set_tests_properties(kafka_sasl PROPERTIES RUN_SERIAL TRUE LABELS kafka TIMEOUT 600)

# Schema Registry outages are not bad data (tests/fake_registry.py against a
# real local broker): a registry answering 503, then timing out, then
# recovering leaves the file-mode CSV and only the oracle's dead letters; one
# that stays down past --registry-timeout ends the run, no totals published.
add_test(NAME kafka_registry COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/kafka_registry.sh ${CMAKE_BINARY_DIR})
set_tests_properties(kafka_registry PROPERTIES RUN_SERIAL TRUE LABELS kafka TIMEOUT 400)

# A trimmed input log (records removed by retention or DeleteRecords) is
# refused unless a snapshot covers the removed part.
add_test(NAME kafka_trimmed COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/kafka_trimmed.sh ${CMAKE_BINARY_DIR})
set_tests_properties(kafka_trimmed PROPERTIES RUN_SERIAL TRUE LABELS kafka TIMEOUT 600)

# --metrics-listen: /metrics of a Kafka-mode run read with the real
# Prometheus parser (prometheus_client) against file mode and the dead-letter
# topic, consumer lag to 0, /readyz 503 while the broker is stopped and 200
# after, a port in use, loopback only; file mode's final figures.
add_test(NAME kafka_metrics COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/kafka_metrics.sh ${CMAKE_BINARY_DIR})
set_tests_properties(kafka_metrics PROPERTIES RUN_SERIAL TRUE LABELS kafka TIMEOUT 600)

# Looks into and damages a --snapshot-topic (its keys and manifests) for the
# test below.
add_executable(kafka_snapshot_topic_tool ${CMAKE_CURRENT_SOURCE_DIR}/kafka_snapshot_topic_tool.c)
target_link_libraries(kafka_snapshot_topic_tool PRIVATE regstream_app)

# The same crash-exact promises with --snapshot-topic and no snapshot folder:
# kill -9 at random moments, a damaged newest snapshot (a corrupt chunk, a
# missing chunk), another configuration refused, 1 -> 2 -> 1 instances in
# separate working directories handing partitions over through the topic.
add_test(NAME kafka_snapshot_topic
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/kafka_snapshot_topic.sh ${CMAKE_BINARY_DIR})
set_tests_properties(kafka_snapshot_topic PROPERTIES RUN_SERIAL TRUE LABELS kafka TIMEOUT 900)

# Rebalances that move only what moves: under a steady feed, 1 -> 3 -> 1
# instances with a rolling restart on the default cooperative-sticky
# assignor (only the moving partitions revoked, the kept ones applying on,
# the pause per partition measured and printed), then 1 -> 2 -> 1 on the
# eager range assignor; both exact against file mode.
add_test(NAME kafka_rolling COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/kafka_rolling.sh ${CMAKE_BINARY_DIR})
set_tests_properties(kafka_rolling PROPERTIES RUN_SERIAL TRUE LABELS kafka TIMEOUT 600)
