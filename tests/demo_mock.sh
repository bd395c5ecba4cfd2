#!/usr/bin/env bash
# tests/demo_mock.sh — `regstream demo` (produce, Kafka-mode run, export on
# librdkafka's in-process mock cluster, the README's embedded default) gives
# the same CSV as file mode, on a stream with repeats, corrections, late and
# invalid records, and writes the report's figures page beside the CSV.
# Only a check of the demo's wiring: the proof of the Kafka
# path is tests/kafka_run.sh against a real broker.
# Usage: tests/demo_mock.sh BUILD_DIR
set -uo pipefail
BUILD=$(cd "${1:?usage: demo_mock.sh BUILD_DIR}" && pwd)
TMP=$(mktemp -d /tmp/demo_mock.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
passed=0 failed=0
"$BUILD/bench/regstream-gen" --profile random --seed 21 --persons 800 --months 18 --repeat-rate 0.02 \
  --correction-rate 0.03 --late-rate 0.02 --invalid-rate 0.01 --out "$TMP/in.avro" 2>/dev/null
"$BUILD/regstream" run --input "$TMP/in.avro" --csv "$TMP/file.csv" --dead-letter "$TMP/f.jsonl" --quiet
if timeout 120 "$BUILD/regstream" demo --input "$TMP/in.avro" --csv "$TMP/demo.csv" --threads 2 \
  >"$TMP/demo.log" 2>&1 && cmp -s "$TMP/file.csv" "$TMP/demo.csv"; then
  passed=$((passed + 1))
  echo "ok: demo on the mock cluster equals file mode ($(wc -l <"$TMP/file.csv") lines)"
else
  failed=$((failed + 1))
  echo "FAIL: demo differs from file mode or failed: $(tail -3 "$TMP/demo.log" | tr '\n' ' ')"
fi
rejects=$(wc -l <"$TMP/f.jsonl")
if grep -q "($rejects rejected to dead-letters)" "$TMP/demo.log"; then
  passed=$((passed + 1))
  echo "ok: demo dead-lettered the same $rejects records"
else
  failed=$((failed + 1))
  echo "FAIL: demo rejects differ from file mode's $rejects: $(grep processed "$TMP/demo.log")"
fi
# ... and wrote the report's figures page beside its CSV, private, and said where last.
if [ -s "$TMP/demo.html" ] && [ "$(stat -c %a "$TMP/demo.html")" = 600 ] &&
  grep -q '</html>' "$TMP/demo.html" &&
  tail -1 "$TMP/demo.log" | grep -qF "wrote the report's figures as a page to $TMP/demo.html"; then
  passed=$((passed + 1))
  echo "ok: demo wrote the report page $TMP/demo.html (0600) and said so in its last line"
else
  failed=$((failed + 1))
  echo "FAIL: no report page beside the demo CSV, or not said: $(tail -1 "$TMP/demo.log")"
fi
echo "demo_mock: $passed passed, $failed failed"
[ "$failed" = 0 ]
