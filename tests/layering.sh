#!/usr/bin/env bash
# tests/layering.sh BUILD — the library graph of CMakeLists.txt holds in the
# objects, not only in the link lines: the rooms file mode is built from
# (util, core, avro, state, sink, metrics, file) call no Kafka client and no
# HTTP client, only metrics/ calls the HTTP server library (libmicrohttpd),
# only sink/postgres.c calls libpq, and the pure core calls no threads and
# opens no files.
set -euo pipefail
build=$1
passed=0
failed=0
check() { # NAME LIB REGEX: LIB has no undefined symbol matching REGEX
  local found
  found=$(nm -u "$build/libregstream_$2.a" | awk '{print $2}' | grep -E "$3" | sort -u | tr '\n' ' ' || true)
  if [ -z "$found" ]; then
    passed=$((passed + 1))
    echo "ok: $1"
  else
    failed=$((failed + 1))
    echo "FAIL: $1: $found"
  fi
}
for lib in util core avro state sink metrics file; do
  check "regstream_$lib calls no librdkafka or libcurl" "$lib" '^(rd_kafka_|curl_)'
done
for lib in util core avro state sink file source kafka app; do
  check "regstream_$lib calls no libmicrohttpd (metrics/ owns the listener)" "$lib" '^MHD_'
done
for lib in util core avro state metrics file source kafka app; do
  check "regstream_$lib calls no libpq (sink/postgres.c owns the connection)" "$lib" '^PQ'
done
found=$(nm -A -u "$build/libregstream_sink.a" | awk '$NF ~ /^PQ/ {print $1}' | grep -v 'postgres\.c\.o' | sort -u || true)
if [ -z "$found" ]; then
  passed=$((passed + 1))
  echo "ok: in regstream_sink only postgres.c calls libpq"
else
  failed=$((failed + 1))
  echo "FAIL: libpq called from $found"
fi
check "regstream_core calls no threads" core '^pthread_'
check "regstream_core opens no files or sockets" core '^(fopen|open|open64|socket|opendir|mkdir|unlink|rename)$'
echo "layering: $passed passed, $failed failed"
[ "$failed" = 0 ]
