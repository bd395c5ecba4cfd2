#!/usr/bin/env bash
# tests/kafka_registry.sh — a Schema Registry outage is not bad data: Kafka
# mode (`regstream run --exit-at-eof --schema-registry URL`) against a real
# local Kafka 4.3.1 broker (deploy/kafka-local.sh) and tests/fake_registry.py.
# Registered by tests/kafka.cmake as the ctest kafka_registry (label kafka,
# RUN_SERIAL). Confluent-framed input: one stream's first half under schema
# id 42, a few records under id 99, which the registry does not know (404
# with error code 40403), the second half under id 44:
#   1. for ids 99 and 44 the registry answers 503 for a while, then times out
#      (sleeps past the client's 5 s timeout) for a while, then recovers, so
#      partitions are held in the middle of their logs; the url carries
#      user:password (checked by the registry). The run exits 0; the exported
#      rows equal file mode byte for byte; the dead-letter topic holds file
#      mode's dead letters per reason plus exactly the id-99 records as
#      reason schema, nothing else; stderr said what it waited for, and never
#      the password.
#   2. ids 42 found, then records under id 43 that the registry never serves
#      (503): with --registry-timeout 8 the run exits non-zero within the bound
#      with a one-line error saying what to do, the output topic holds no
#      totals (none that miss the held records), and the records before the
#      held ones flowed (file mode's dead letters, none for id 43).
# Usage: tests/kafka_registry.sh BUILD_DIR
set -uo pipefail

BUILD=$(cd "${1:?usage: kafka_registry.sh BUILD_DIR}" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEST_NAME=kafka_registry
NEEDED=("$BUILD/bench/regstream-gen")
pids=()
extra_cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done; }
# shellcheck source=tests/kafka_common.sh
. "$ROOT/tests/kafka_common.sh"

# fake_start NAME ARGS...: starts the fake registry, sets REG_PORT.
fake_start() {
  local name=$1
  shift
  python3 "$ROOT/tests/fake_registry.py" --schema "42=$ROOT/schemas/person_month.avsc" \
    --log "$TMP/$name.requests" "$@" >"$TMP/$name.port" 2>"$TMP/$name.err" &
  pids+=($!)
  local i
  for ((i = 0; i < 50; i++)); do
    REG_PORT=$(head -1 "$TMP/$name.port" 2>/dev/null)
    [ -n "$REG_PORT" ] && return 0
    sleep 0.1
  done
  bad "fake registry $name did not start: $(cat "$TMP/$name.err")"
  finish
}
# count TOPIC: messages in a topic (0 when it does not exist).
count() {
  timeout 60 "$ROOT/deploy/kafka-tool.sh" get-offsets --bootstrap-server "$B" --topic "$1" \
    2>/dev/null | awk -F: '{s += $NF} END {print s + 0}'
}
# reasons TOPIC N: "reason count" lines of the first N dead letters of TOPIC.
reasons() {
  timeout 60 "$ROOT/deploy/kafka-tool.sh" console-consumer --bootstrap-server "$B" --topic "$1" \
    --from-beginning --max-messages "$2" --timeout-ms 20000 --formatter-property print.headers=true \
    --formatter-property print.value=false 2>/dev/null |
    sed -n 's/.*reason:\([a-z_]*\).*/\1/p' | sort | uniq -c | awk '{print $2, $1}'
}

# One stream in two files (month-major): the first under id 42, which the
# registry always serves; then a few records under id 99 (unknown: 404 with
# 40403); then the second file under id 44, which the registry serves once
# its outage is over. So partitions are held in the middle of their logs.
"$BUILD/bench/regstream-gen" --profile random --seed 23 --persons 800 --months 24 \
  --repeat-rate 0.02 --correction-rate 0.03 --late-rate 0.02 --invalid-rate 0.01 --files 2 \
  --out "$TMP/in.avro" >"$TMP/gen.log" 2>&1 || { bad "regstream-gen failed"; finish; }
"$BUILD/bench/regstream-gen" --profile random --seed 24 --persons 5 --months 2 \
  --out "$TMP/few.avro" >>"$TMP/gen.log" 2>&1 || { bad "regstream-gen (few) failed"; finish; }
"$RS" run --input "$TMP/in.000.avro" "$TMP/in.001.avro" --csv "$TMP/file.csv" \
  --dead-letter "$TMP/file.jsonl" --quiet || { bad "file mode failed"; finish; }
"$RS" run --input "$TMP/in.000.avro" --csv "$TMP/first.csv" --dead-letter "$TMP/first.jsonl" \
  --quiet || { bad "file mode (first file) failed"; finish; }
file_rejects=$(wc -l <"$TMP/file.jsonl")
first_rejects=$(wc -l <"$TMP/first.jsonl")
ok "file mode: $(($(wc -l <"$TMP/file.csv") - 1)) rows, $file_rejects rejects ($first_rejects in the first file)"

timeout 60 "$RS" produce --brokers "$B" --topic pm --input "$TMP/in.000.avro" --partitions 6 \
  --framing confluent --schema-id 42 --quiet || { bad "produce (id 42) failed"; finish; }
before=$(count pm)
timeout 60 "$RS" produce --brokers "$B" --topic pm --input "$TMP/few.avro" \
  --framing confluent --schema-id 99 --quiet || { bad "produce (id 99) failed"; finish; }
unknown=$(($(count pm) - before))
[ "$unknown" -gt 0 ] || { bad "no records under the unknown id 99"; finish; }
timeout 60 "$RS" produce --brokers "$B" --topic pm --input "$TMP/in.001.avro" \
  --framing confluent --schema-id 44 --quiet || { bad "produce (id 44) failed"; finish; }
# The oracle: file mode's reasons, plus the id-99 records as reason schema.
sed -n 's/.*"reason":"\([a-z_]*\)".*/\1/p' "$TMP/file.jsonl" |
  { cat; for ((i = 0; i < unknown; i++)); do echo schema; done; } |
  sort | uniq -c | awk '{print $2, $1}' >"$TMP/want_reasons"
ok "input: $before records under id 42, $unknown under the unknown id 99, $(($(count pm) - before - unknown)) under id 44"

# 1. 503 for 10 s, then 15 s of requests slower than the client's 5 s
#    timeout, then answers; basic auth from the url.
fake_start outage --basic "reg:Pw-0f-registry" --script "503:10,sleep:15,ok" --sleep 6 \
  --script-ids 44,99 --schema "44=$ROOT/schemas/person_month.avsc"
started=$(date +%s)
if timeout 150 "$RS" run --brokers "$B" --topic pm --group g_outage --output-topic out_outage \
  --dead-letter-topic dlq_outage --exit-at-eof --flush-ms 200 --threads 2 \
  --schema-registry "http://reg:Pw-0f-registry@127.0.0.1:$REG_PORT" >"$TMP/outage.log" 2>&1; then
  ok "outage: run --exit-at-eof finished after $(($(date +%s) - started)) s"
else
  bad "outage: run failed: $(tail -2 "$TMP/outage.log" | tr '\n' ' ')"
fi
grep -q ' 503$' "$TMP/outage.requests" && grep -q ' 200$' "$TMP/outage.requests" &&
  ok "outage: the registry answered 503, then schemas ($(wc -l <"$TMP/outage.requests") requests)" ||
  bad "outage: the registry was not asked through its phases: $(sort "$TMP/outage.requests" | uniq -c | tr '\n' ' ')"
if grep -Eq 'offset [1-9][0-9]*\).* paused, waiting for schema id (44|99)' "$TMP/outage.log" &&
  grep -q 'unavailable (HTTP 503)' "$TMP/outage.log" && grep -q 'timed out' "$TMP/outage.log"; then
  ok "outage: stderr said what it waited for: $(grep -m1 'waiting for schema id' "$TMP/outage.log")"
else
  bad "outage: no waiting note with the 503 and the timeout in stderr: $(head -5 "$TMP/outage.log" | tr '\n' ' ')"
fi
if grep -q 'Pw-0f-registry' "$TMP/outage.log"; then
  bad "outage: the registry password was printed"
else
  grep -q '\[hidden\]@127.0.0.1' "$TMP/outage.log" && ok "outage: the url is shown with [hidden] credentials" ||
    bad "outage: the url is not shown masked"
fi
if export_equals outage out_outage "$TMP/file.csv"; then
  ok "outage: exported CSV equals file mode"
else
  bad "outage: exported CSV differs from file mode: $(diff "$TMP/file.csv" "$TMP/outage.csv" 2>&1 | head -3 | tr '\n' ' ')"
fi
want=$((file_rejects + unknown))
got=$(count dlq_outage)
reasons dlq_outage "$want" >"$TMP/got_reasons"
if [ "$got" = "$want" ] && cmp -s "$TMP/want_reasons" "$TMP/got_reasons"; then
  ok "outage: the dead letters are the oracle's ($got: $(tr '\n' ' ' <"$TMP/got_reasons"))"
else
  bad "outage: dead letters $got [$(tr '\n' ' ' <"$TMP/got_reasons")], want $want [$(tr '\n' ' ' <"$TMP/want_reasons")]"
fi
kill "${pids[@]}" 2>/dev/null
wait 2>/dev/null
pids=()

# 2. Schema id 43 never served: a run that must end ends within the bound,
#    having published no totals.
timeout 60 "$RS" produce --brokers "$B" --topic pm_down --input "$TMP/in.000.avro" --partitions 6 \
  --framing confluent --schema-id 42 --quiet &&
  timeout 60 "$RS" produce --brokers "$B" --topic pm_down --input "$TMP/few.avro" \
    --framing confluent --schema-id 43 --quiet || { bad "produce (pm_down) failed"; finish; }
fake_start down --down-ids 43
started=$(date +%s)
timeout 90 "$RS" run --brokers "$B" --topic pm_down --group g_down --output-topic out_down \
  --dead-letter-topic dlq_down --exit-at-eof --flush-ms 200 --threads 2 --registry-timeout 8 \
  --schema-registry "http://127.0.0.1:$REG_PORT" >"$TMP/down.log" 2>&1
rc=$?
took=$(($(date +%s) - started))
last=$(tail -1 "$TMP/down.log")
if [ $rc != 0 ] && [ $rc != 124 ] && [ $took -le 60 ]; then
  ok "registry down: run exited $rc after $took s"
else
  bad "registry down: run exited $rc after $took s: $last"
fi
case "$last" in
*"schema id 43 unavailable for 8 s"*"run the same command again"*) ok "registry down: one-line error: $last" ;;
*) bad "registry down: the last line is not the registry error: $last" ;;
esac
out=$(count out_down)
if [ "$out" = 0 ]; then
  ok "registry down: the output topic holds no totals"
else
  bad "registry down: the output topic holds $out totals that miss the held records"
fi
# Everything before the held records flowed: file mode's dead letters, none
# for the id-43 records.
dl=$(count dlq_down)
[ "$dl" = "$first_rejects" ] && ok "registry down: the records before the held ones were applied ($dl dead letters, as file mode)" ||
  bad "registry down: $dl dead letters, file mode has $first_rejects"
kill "${pids[@]}" 2>/dev/null
wait 2>/dev/null
pids=()
finish
