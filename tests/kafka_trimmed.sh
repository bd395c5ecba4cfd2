#!/usr/bin/env bash
# tests/kafka_trimmed.sh — an input partition whose log no longer starts at
# offset 0 (retention or DeleteRecords removed records) cannot be replayed
# exactly: Kafka mode refuses it, naming topic, partition and offsets and
# what to do, and publishes nothing for it; a log trimmed only below the
# offset its snapshot resumes at is fine. Against a real local broker
# (tests/kafka_common.sh), records removed with kafka-delete-records.
# Usage: tests/kafka_trimmed.sh BUILD_DIR
set -uo pipefail

BUILD=$(cd "${1:?usage: kafka_trimmed.sh BUILD_DIR}" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEST_NAME=kafka_trimmed
NEEDED=("$BUILD/bench/regstream-gen")
# shellcheck source=tests/kafka_common.sh
. "$ROOT/tests/kafka_common.sh"
KT=$ROOT/deploy/kafka-tool.sh

"$BUILD/bench/regstream-gen" --profile random --seed 21 --persons 600 --months 12 --invalid-rate 0.01 \
  --out "$TMP/a.avro" >/dev/null 2>&1 || { bad "regstream-gen failed"; finish; }
"$BUILD/bench/regstream-gen" --profile random --seed 22 --persons 600 --months 12 --invalid-rate 0.01 \
  --out "$TMP/b.avro" >/dev/null 2>&1 || { bad "regstream-gen failed"; finish; }
"$RS" run --input "$TMP/a.avro" "$TMP/b.avro" --csv "$TMP/ab.csv" --dead-letter "$TMP/ab.jsonl" --quiet ||
  { bad "file mode failed"; finish; }

# end_offset TOPIC PARTITION: the log end offset.
end_offset() {
  timeout 60 "$KT" get-offsets --bootstrap-server "$B" --topic "$1" --partitions "$2" 2>/dev/null |
    awk -F: '{print $NF}'
}
# trim TOPIC PARTITION OFFSET: delete the records before OFFSET.
trim() {
  printf '{"partitions":[{"topic":"%s","partition":%d,"offset":%d}],"version":1}\n' "$1" "$2" "$3" \
    >"$TMP/trim.json"
  timeout 60 "$KT" delete-records --bootstrap-server "$B" --offset-json-file "$TMP/trim.json" \
    >"$TMP/trim.log" 2>&1
}
# run_kafka NAME TOPIC [ARGS...]: Kafka mode to the end; sets rc and secs.
run_kafka() {
  local name=$1 topic=$2 t0
  shift 2
  t0=$(date +%s)
  timeout 120 "$RS" run --brokers "$B" --topic "$topic" --group "g_$name" --output-topic "out_$name" \
    --dead-letter-topic "dlq_$name" --exit-at-eof --flush-ms 200 "$@" >"$TMP/$name.log" 2>&1
  rc=$?
  secs=$(($(date +%s) - t0))
}
# published TOPIC: records ever written to the topic (the sum of its end offsets).
published() {
  timeout 60 "$KT" get-offsets --bootstrap-server "$B" --topic "$1" 2>/dev/null |
    awk -F: '{s += $NF} END {print s + 0}'
}

# 1. No snapshot, the log of partition 2 trimmed: refused, nothing published.
timeout 60 "$RS" produce --brokers "$B" --topic pm --input "$TMP/a.avro" --partitions 6 --quiet ||
  { bad "produce failed"; finish; }
trim pm 2 5 || bad "delete-records failed: $(tail -2 "$TMP/trim.log")"
run_kafka plain pm
last=$(tail -1 "$TMP/plain.log")
# One line besides the notes of the group's rebalances (the join, and the
# revoke as the refused run leaves) and of partitions that began applying
# before the refusal.
said=$(grep -v '^regstream: \(merge \)\{0,1\}rebalance: ' "$TMP/plain.log" |
  grep -cv '^regstream: partition [0-9]*: first message applied ')
if [ "$rc" = 1 ] && [ "$secs" -le 60 ] && [ "$said" = 1 ] &&
  [[ "$last" == *"input topic pm partition 2 starts at offset 5"*"no snapshot covers it"*"regstream run --input"* ]]; then
  ok "trimmed partition without a snapshot refused in ${secs} s with one line: $last"
else
  bad "trimmed partition without a snapshot: exit $rc after ${secs} s: $(tr '\n' ' ' <"$TMP/plain.log")"
fi
n=$(published out_plain)
if [ "$n" = 0 ]; then ok "nothing published to the output topic"; else bad "$n totals published"; fi

# 2. A snapshot at the end of a.avro; b.avro added; the log trimmed past the
#    snapshot's offset: refused (the records between are gone).
timeout 60 "$RS" produce --brokers "$B" --topic pm2 --input "$TMP/a.avro" --partitions 6 --quiet ||
  { bad "produce failed"; finish; }
run_kafka snap1 pm2 --snapshot-dir "$TMP/snaps2"
[ "$rc" = 0 ] || bad "snap1: run failed: $(tail -2 "$TMP/snap1.log" | tr '\n' ' ')"
at=$(end_offset pm2 1)
timeout 60 "$RS" produce --brokers "$B" --topic pm2 --input "$TMP/b.avro" --quiet || bad "produce b failed"
trim pm2 1 $((at + 3)) || bad "delete-records failed"
run_kafka snap2 pm2 --snapshot-dir "$TMP/snaps2"
last=$(tail -1 "$TMP/snap2.log")
if [ "$rc" = 1 ] &&
  [[ "$last" == *"input topic pm2 partition 1 starts at offset $((at + 3))"*"its newest snapshot resumes at offset $at"* ]]; then
  ok "log trimmed past the snapshot's offset refused: $last"
else
  bad "log trimmed past the snapshot: exit $rc: $(tail -2 "$TMP/snap2.log" | tr '\n' ' ')"
fi
n=$(published out_snap2)
if [ "$n" = 0 ]; then ok "nothing published by the refused run"; else bad "$n totals published by the refused run"; fi

# 3. Trimmed only below the snapshot's offset: resumes, exact.
timeout 60 "$RS" produce --brokers "$B" --topic pm3 --input "$TMP/a.avro" --partitions 6 --quiet ||
  { bad "produce failed"; finish; }
run_kafka snap3 pm3 --snapshot-dir "$TMP/snaps3"
[ "$rc" = 0 ] || bad "snap3: run failed: $(tail -2 "$TMP/snap3.log" | tr '\n' ' ')"
at=$(end_offset pm3 0)
trim pm3 0 "$at" || bad "delete-records failed"
timeout 60 "$RS" produce --brokers "$B" --topic pm3 --input "$TMP/b.avro" --quiet || bad "produce b failed"
run_kafka snap3 pm3 --snapshot-dir "$TMP/snaps3"
if [ "$rc" = 0 ] && export_equals snap3 out_snap3 "$TMP/ab.csv"; then
  ok "log trimmed up to the snapshot's offset ($at): resumed, equals file mode"
else
  bad "log trimmed up to the snapshot: exit $rc: $(tail -2 "$TMP/snap3.log" | tr '\n' ' ')"
fi
# 4. Topics regstream creates take --replication-factor (default: the
#    broker's); more replicas than brokers is a one-line error at start.
timeout 60 "$RS" run --brokers "$B" --topic pm3 --group g_rf --output-topic out_rf \
  --dead-letter-topic dlq_rf --exit-at-eof --replication-factor 2 >"$TMP/rf.log" 2>&1
rc=$?
if [ "$rc" = 1 ] && [ "$(grep -c . "$TMP/rf.log")" = 1 ] && grep -qi "replication factor" "$TMP/rf.log"; then
  ok "--replication-factor 2 on one broker: $(cat "$TMP/rf.log")"
else
  bad "--replication-factor 2: exit $rc: $(tr '\n' ' ' <"$TMP/rf.log")"
fi
finish
