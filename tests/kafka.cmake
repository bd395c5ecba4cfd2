# tests/kafka.cmake — Kafka-side tests: test_framing needs the app library
# (processor/source/), the Kafka tools integration test against a real local
# broker (label kafka), and its helper that produces rollup rows.
target_link_libraries(test_framing PRIVATE regstream_app)
