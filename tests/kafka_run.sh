#!/usr/bin/env bash
# tests/kafka_run.sh — the Kafka mode of `regstream run` against a real local
# Kafka 4.3.1 broker (deploy/kafka-local.sh on a free port, its own data dir,
# stopped on exit). Registered by tests/kafka.cmake as the ctest kafka_run
# (label kafka, RUN_SERIAL). On one generated stream with repeats,
# corrections, late and invalid records:
#   1. Kafka mode (--exit-at-eof) with 1 and with 2 worker threads, exported
#      with `regstream export`, equals the file-mode CSV byte for byte;
#   2. the dead-letter topic holds as many records as the file-mode dead-letter
#      file, per reason too (the reason header), with source headers;
#   3. Confluent framing with writer schemas from an <id>.avsc directory gives
#      the same CSV;
#   3b. an evolved writer schema (fields reordered, person_id as int, enum
#      symbols reordered plus one the reader lacks, an added field, benefit
#      removed) under its own schema id gives the file-mode CSV, which itself
#      equals the independent reference model's (Avro C's resolution);
#   4. two live instances in one consumer group converge to the same CSV and
#      both stop cleanly on SIGTERM; two --exit-at-eof instances in one group
#      (one joining later, slow fetches) leave the file-mode CSV once both exit;
#      so do three under the eager protocol, timed by test hooks so that the
#      last to settle loses partials partitions in a rebalance while another
#      settled instance is still running;
#   5. clean one-line errors: a missing input topic, an unreachable broker.
# Needs Java >= 17 and Maven (deploy/install-deps.sh --kafka): without them
# the test FAILS, it never skips.
# Usage: tests/kafka_run.sh BUILD_DIR
set -uo pipefail

BUILD=$(cd "${1:?usage: kafka_run.sh BUILD_DIR}" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEST_NAME=kafka_run
NEEDED=("$BUILD/bench/regstream-gen" "$BUILD/tests/regstream-test-writer" "$BUILD/tests/regstream-refmodel")
pids=()
extra_cleanup() { for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done; }
# shellcheck source=tests/kafka_common.sh
. "$ROOT/tests/kafka_common.sh"

"$BUILD/bench/regstream-gen" --profile random --seed 11 --persons 1500 --months 24 \
  --repeat-rate 0.02 --correction-rate 0.03 --late-rate 0.02 --invalid-rate 0.01 \
  --out "$TMP/in.avro" >"$TMP/gen.log" 2>&1 || { bad "regstream-gen failed"; finish; }
"$RS" run --input "$TMP/in.avro" --csv "$TMP/file.csv" --dead-letter "$TMP/file.jsonl" --quiet ||
  { bad "file mode failed"; finish; }
file_rejects=$(wc -l <"$TMP/file.jsonl")
ok "file mode: $(($(wc -l <"$TMP/file.csv") - 1)) rows, $file_rejects rejects"

timeout 60 "$RS" produce --brokers "$B" --topic pm --input "$TMP/in.avro" --partitions 6 --quiet ||
  { bad "produce failed"; finish; }
mkdir -p "$TMP/schemas"
cp "$ROOT/schemas/person_month.avsc" "$TMP/schemas/42.avsc"
timeout 60 "$RS" produce --brokers "$B" --topic pm_conf --input "$TMP/in.avro" --partitions 6 \
  --framing confluent --schema-id 42 --quiet || { bad "produce (Confluent) failed"; finish; }

# run_and_compare NAME ARGS...: Kafka mode to EOF, export, compare with file mode.
run_and_compare() {
  local name=$1
  shift
  if ! timeout 180 "$RS" run --brokers "$B" --group "g_$name" --output-topic "out_$name" \
    --dead-letter-topic "dlq_$name" --exit-at-eof --flush-ms 200 "$@" >"$TMP/$name.log" 2>&1; then
    bad "$name: run failed: $(tail -2 "$TMP/$name.log" | tr '\n' ' ')"
    return
  fi
  if ! timeout 60 "$RS" export --brokers "$B" --topic "out_$name" --csv "$TMP/$name.csv" \
    >"$TMP/$name.export.log" 2>&1; then
    bad "$name: export failed: $(tail -1 "$TMP/$name.export.log")"
    return
  fi
  if cmp -s "$TMP/file.csv" "$TMP/$name.csv"; then
    ok "$name: exported CSV equals file mode"
  else
    bad "$name: exported CSV differs from file mode: $(diff "$TMP/file.csv" "$TMP/$name.csv" | head -3 | tr '\n' ' ')"
  fi
  local dlq
  dlq=$(timeout 60 "$ROOT/deploy/kafka-tool.sh" get-offsets --bootstrap-server "$B" \
    --topic "dlq_$name" 2>/dev/null | awk -F: '{s += $NF} END {print s + 0}')
  if [ "$dlq" = "$file_rejects" ]; then
    ok "$name: dead-letter topic holds all $dlq rejects"
  else
    bad "$name: dead-letter topic holds $dlq records, file mode rejected $file_rejects"
  fi
}

run_and_compare one_thread --topic pm --threads 1
run_and_compare two_threads --topic pm --threads 2
run_and_compare confluent --topic pm_conf --threads 2 --schema-dir "$TMP/schemas"

# An evolved writer schema under its own id.
cat >"$TMP/schemas/43.avsc" <<'AVSC'
{"type": "record", "name": "PersonMonth", "namespace": "regstream", "fields": [
  {"name": "period", "type": "int"},
  {"name": "person_id", "type": "int"},
  {"name": "batch", "type": "long", "default": 0},
  {"name": "municipality", "type": "int"},
  {"name": "visitation", "type": {"type": "enum", "name": "Visitation", "default": "UNKNOWN",
    "symbols": ["OEVRIG", "NYVISITATION", "AKTIVITETSPARAT", "JOBPARAT", "UNKNOWN",
                "UDDANNELSESPARAT", "SELVFORSOERGENDE"]}},
  {"name": "enrolled", "type": "boolean"},
  {"name": "paid_hours", "type": "float"},
  {"name": "education", "type": "boolean"},
  {"name": "internship", "type": "boolean"},
  {"name": "wage_subsidy", "type": "boolean"},
  {"name": "flexjob", "type": "boolean"},
  {"name": "disability_pension", "type": "boolean"}]}
AVSC
python3 - "$TMP/evolved.jsonl" <<'PY'
import json, random, sys
rnd = random.Random(43)
syms = ["OEVRIG", "NYVISITATION", "AKTIVITETSPARAT", "JOBPARAT", "UNKNOWN", "UDDANNELSESPARAT",
        "SELVFORSOERGENDE"]
with open(sys.argv[1], "w") as out:
    for month in range(1, 13):
        for person in range(1, 121):
            out.write(json.dumps({
                "period": 202300 + month, "person_id": person * 7919, "batch": month * 1000 + person,
                "municipality": rnd.choice([101, 751, 851, 167]), "visitation": rnd.choice(syms),
                "enrolled": rnd.random() < 0.4, "paid_hours": rnd.choice([0.0, 10.0, 74.0, 81.5, 160.33]),
                "education": rnd.random() < 0.1, "internship": rnd.random() < 0.1,
                "wage_subsidy": rnd.random() < 0.05, "flexjob": rnd.random() < 0.05,
                "disability_pension": rnd.random() < 0.05}) + "\n")
PY
if "$BUILD/tests/regstream-test-writer" --out "$TMP/evolved.avro" --schema "$TMP/schemas/43.avsc" \
  <"$TMP/evolved.jsonl" 2>"$TMP/evolved.log" &&
  "$RS" run --input "$TMP/evolved.avro" --csv "$TMP/evolved_file.csv" --dead-letter "$TMP/evolved.jsonl.dlq" --quiet &&
  "$BUILD/tests/regstream-refmodel" --input "$TMP/evolved.avro" --csv "$TMP/evolved_ref.csv" \
    --rejects "$TMP/evolved_ref.rejects" 2>>"$TMP/evolved.log" &&
  cmp -s "$TMP/evolved_file.csv" "$TMP/evolved_ref.csv"; then
  ok "evolved writer schema: file mode equals the reference model ($(wc -l <"$TMP/evolved_file.csv") lines)"
  if timeout 60 "$RS" produce --brokers "$B" --topic pm_evolved --input "$TMP/evolved.avro" \
    --partitions 6 --framing confluent --schema-id 43 --quiet; then
    cp "$TMP/file.csv" "$TMP/file_main.csv"
    cp "$TMP/evolved_file.csv" "$TMP/file.csv"
    saved_rejects=$file_rejects
    file_rejects=0
    run_and_compare evolved --topic pm_evolved --threads 2 --schema-dir "$TMP/schemas"
    cp "$TMP/file_main.csv" "$TMP/file.csv"
    file_rejects=$saved_rejects
  else
    bad "produce (evolved) failed"
  fi
else
  bad "evolved writer schema: file mode and reference model differ or failed: $(tail -2 "$TMP/evolved.log" | tr '\n' ' ')"
fi

# Reasons per dead letter: the topic's reason headers against the file's reasons.
timeout 60 "$ROOT/deploy/kafka-tool.sh" console-consumer --bootstrap-server "$B" --topic dlq_two_threads \
  --from-beginning --max-messages "$file_rejects" --timeout-ms 20000 --formatter-property print.headers=true \
  --formatter-property print.value=false 2>/dev/null |
  sed -n 's/.*reason:\([a-z_]*\).*/\1/p' | sort | uniq -c | awk '{print $2, $1}' >"$TMP/topic_reasons"
sed -n 's/.*"reason":"\([a-z_]*\)".*/\1/p' "$TMP/file.jsonl" | sort | uniq -c |
  awk '{print $2, $1}' >"$TMP/file_reasons"
if [ -s "$TMP/file_reasons" ] && cmp -s "$TMP/topic_reasons" "$TMP/file_reasons"; then
  ok "dead-letter reasons per code equal file mode: $(tr '\n' ' ' <"$TMP/file_reasons")"
else
  bad "dead-letter reasons differ: topic [$(tr '\n' ' ' <"$TMP/topic_reasons")] file [$(tr '\n' ' ' <"$TMP/file_reasons")]"
fi
if timeout 60 "$ROOT/deploy/kafka-tool.sh" console-consumer --bootstrap-server "$B" --topic dlq_two_threads \
  --from-beginning --max-messages 1 --timeout-ms 20000 --formatter-property print.headers=true \
  --formatter-property print.value=false 2>/dev/null | grep -q 'source_topic:pm,source_partition:[0-5],source_offset:[0-9]'; then
  ok "dead letters carry source topic, partition and offset headers"
else
  bad "dead letters lack source headers"
fi

# Two live instances in one group: converge, then stop on SIGTERM.
for i in 1 2; do
  "$RS" run --brokers "$B" --topic pm --group g_pair --output-topic out_pair \
    --dead-letter-topic dlq_pair --flush-ms 200 --threads 2 >"$TMP/pair$i.log" 2>&1 &
  pids+=($!)
done
converges 120 pair out_pair "$TMP/file.csv" && ok "two instances in one group converge to the file-mode CSV" ||
  bad "two instances did not converge to the file-mode CSV within 120 s"
kill -TERM "${pids[@]}" 2>/dev/null
for pid in "${pids[@]}"; do
  if timeout 60 tail --pid="$pid" -f /dev/null; then :; fi
  wait "$pid"
  rc=$?
  [ $rc = 0 ] && ok "instance $pid stopped cleanly on SIGTERM" || bad "instance $pid exited $rc on SIGTERM: $(tail -2 "$TMP/pair1.log" "$TMP/pair2.log" | tr '\n' ' ')"
done
pids=()

# Two reprocessing instances (--exit-at-eof) in one group, the second joining
# a moment later, fetching slowly: the first to reach the end of its
# partitions must not settle the totals before the other's partials are in.
# Once both have exited, the output equals file mode.
# (Its own, larger input: long enough that the second instance joins in time.
# With 6000 persons the first instance once applied it all, 2.3 s, before the
# cooperative join's two rounds gave the second any partition.)
"$BUILD/bench/regstream-gen" --profile random --seed 12 --persons 30000 --months 24 \
  --repeat-rate 0.02 --correction-rate 0.03 --late-rate 0.02 --invalid-rate 0.01 \
  --out "$TMP/reprocess.avro" >/dev/null 2>&1 &&
  "$RS" run --input "$TMP/reprocess.avro" --csv "$TMP/reprocess_file.csv" \
    --dead-letter "$TMP/reprocess_file.jsonl" --quiet || bad "file mode (reprocess input) failed"
timeout 60 "$RS" produce --brokers "$B" --topic pm_small --input "$TMP/reprocess.avro" --partitions 6 \
  --quiet -X linger.ms=5 -X batch.num.messages=100 || bad "produce (small batches) failed"
# Heartbeats every 500 ms: the cooperative assignor (the default) hands
# partitions to a joining member in two rounds, each noticed at a heartbeat.
# Those rounds can drop the last messages of a kept partition from a batch
# being taken (librdkafka 2.0): the end of the partition then comes first,
# and is read as a gap, not as the end (kafka/gap.h); taken as the end it
# once left this case rows off.
THROTTLE=(-X message.max.bytes=1000 -X fetch.max.bytes=2048 -X max.partition.fetch.bytes=2048
  -X heartbeat.interval.ms=500)
for i in 1 2; do
  timeout 300 "$RS" run --brokers "$B" --topic pm_small --group g_reprocess --output-topic out_reprocess \
    --dead-letter-topic dlq_reprocess --flush-ms 200 --threads 2 --exit-at-eof "${THROTTLE[@]}" \
    >"$TMP/reprocess$i.log" 2>&1 &
  pids+=($!)
  # the second joins once the first applies messages (within 30 s)
  for ((t = 0; i == 1 && t < 300; t++)); do
    grep -q 'first message applied' "$TMP/reprocess$i.log" 2>/dev/null && break
    sleep 0.1
  done
done
both=0
for i in 0 1; do
  wait "${pids[$i]}" && both=$((both + 1))
done
pids=()
applied=$(sed -n 's/^regstream: \([0-9]*\) messages from.*/\1/p' "$TMP"/reprocess?.log | tr '\n' ' ')
if [ $both = 2 ] && [ "$(echo "$applied" | wc -w)" = 2 ] && ! echo " $applied" | grep -q ' 0 '; then
  ok "two --exit-at-eof instances in one group both applied messages and finished: $applied"
elif [ $both = 2 ]; then
  bad "two --exit-at-eof instances: not both took part (messages applied: $applied), so this checked one instance only"
else
  bad "two --exit-at-eof instances: $both of 2 exited 0: $(tail -n 2 "$TMP"/reprocess?.log | tr '\n' ' ')"
fi
if export_equals reprocess out_reprocess "$TMP/reprocess_file.csv"; then
  ok "two --exit-at-eof instances: the output equals file mode once both have exited"
else
  bad "two --exit-at-eof instances: the output differs from file mode: $(diff "$TMP/reprocess_file.csv" "$TMP/reprocess.csv" 2>&1 | head -3 | tr '\n' ' ')"
fi

# Three reprocessing instances, the eager protocol (range), the timing that
# once lost a partials partition's totals, made certain by the test hooks:
# a (client.id, so the range assignor's order is a, b, c: a holds partials
# 0-1, b 2-3, c 4-5) stays 12 s in its input group once settled, as with a
# slow disk; b settles 5 s after it could, as a busy host's merger; c leaves
# first. c's leave reassigns the merge group: with a still in it (so it was
# until stage 1 ended), partials 2 went to a, which applies nothing once
# settled, and out of b, which published without it: 983 rows missing in 5
# of 5 rounds. A settled merger leaves the merge group at once: b gets all.
three=0
pids=()
names=(a b c)
for i in 1 2 3; do
  hooks=()
  [ "$i" = 1 ] && hooks=(REGSTREAM_TEST_SETTLED_LINGER_MS=12000)
  [ "$i" = 2 ] && hooks=(REGSTREAM_TEST_SETTLE_LATE_MS=5000)
  env "${hooks[@]}" timeout 300 "$RS" run --brokers "$B" --topic pm_small --group g_three \
    --output-topic out_three --dead-letter-topic dlq_three --flush-ms 200 --threads 2 --exit-at-eof \
    "${THROTTLE[@]}" -X partition.assignment.strategy=range -X client.id="${names[i - 1]}" \
    >"$TMP/three$i.log" 2>&1 &
  pids+=($!)
  for ((t = 0; i < 3 && t < 300; t++)); do
    grep -q 'first message applied' "$TMP/three$i.log" 2>/dev/null && break
    sleep 0.1
  done
done
for pid in "${pids[@]}"; do
  wait "$pid" && three=$((three + 1))
done
pids=()
applied=$(sed -n 's/^regstream: \([0-9]*\) messages from.*/\1/p' "$TMP"/three?.log | tr '\n' ' ')
if [ $three != 3 ] || [ "$(echo "$applied" | wc -w)" != 3 ] || echo " $applied" | grep -q ' 0 '; then
  bad "three --exit-at-eof instances: $three of 3 exited 0, messages applied: $applied: $(tail -qn 1 "$TMP"/three?.log | tr '\n' ' ')"
elif [ "$(grep -c 'merge rebalance: assigned \[[0-9]' "$TMP/three2.log")" -lt 3 ]; then
  bad "three --exit-at-eof instances: b's merge assignment did not change again after c left, so this is not the case: $(grep 'merge rebalance' "$TMP/three2.log" | tr '\n' ' ')"
elif export_equals three out_three "$TMP/reprocess_file.csv"; then
  ok "three --exit-at-eof instances (eager; one slow to leave once settled, one slow to settle): the output equals file mode ($applied messages applied)"
else
  bad "three --exit-at-eof instances: $(diff "$TMP/reprocess_file.csv" "$TMP/three.csv" | grep -c '^<') rows missing or different against file mode"
fi

# Clean errors.
out=$(timeout 60 "$RS" run --brokers "$B" --topic no_such_topic --group g_err --output-topic out_err \
  --dead-letter-topic dlq_err --exit-at-eof 2>&1)
rc=$?
[ $rc = 1 ] && [ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q no_such_topic &&
  ok "missing input topic: one line, exit 1: $out" || bad "missing input topic: exit $rc: $out"
start=$(date +%s)
out=$(timeout 60 "$RS" run --brokers 127.0.0.1:1 --topic pm --group g_err --output-topic out_err \
  --dead-letter-topic dlq_err --exit-at-eof 2>&1)
rc=$?
took=$(($(date +%s) - start))
[ $rc = 1 ] && [ "$(echo "$out" | wc -l)" = 1 ] && [ $took -le 20 ] &&
  ok "unreachable broker: one line, exit 1 after ${took}s: $out" || bad "unreachable broker: exit $rc after ${took}s: $out"

finish
