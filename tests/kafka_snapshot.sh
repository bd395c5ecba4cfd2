#!/usr/bin/env bash
# tests/kafka_snapshot.sh — crash-exact state (SPEC §6, issue 4) against a real
# local Kafka 4.3.1 broker (deploy/kafka-local.sh on a free port, its own data
# dir, stopped on exit). Registered by tests/kafka.cmake as the ctest
# kafka_snapshot (label kafka, RUN_SERIAL). On one generated stream with
# repeats, corrections, late and invalid records:
#   1. kill -9 at random moments ($REGSTREAM_KILL_TRIALS trials, default 12),
#      each restart resuming from the newest snapshots in --snapshot-dir, then
#      a last run to the end: the exported CSV equals the file-mode CSV (and so
#      an uninterrupted run), and the dead-letter topic holds every rejected
#      record (at least once: records after the snapshot's offset are re-read);
#   2. the newest snapshot of a partition corrupted: a warning naming it, the
#      previous one is used, and the result is still exact;
#   3. another rule configuration over the same snapshot dir: refused, exit 1,
#      one clear line;
#   4. 1 -> 2 -> 1 instances mid-stream sharing one snapshot dir (the second
#      half of the input produced while two run; then the first stops and the
#      second takes its partitions over from their revoke snapshots): the
#      output converges to the file-mode CSV of the whole input;
#   5. the broker stopped and restarted (same data dir) under a running
#      instance: it carries on and converges to the file-mode CSV.
# A longer soak: REGSTREAM_KILL_TRIALS=200 tests/kafka_snapshot.sh BUILD_DIR.
# Needs Java >= 17 and Maven (deploy/install-deps.sh --kafka): without them
# the test FAILS, it never skips.
# Usage: tests/kafka_snapshot.sh BUILD_DIR
set -uo pipefail

BUILD=$(cd "${1:?usage: kafka_snapshot.sh BUILD_DIR}" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEST_NAME=kafka_snapshot
NEEDED=("$BUILD/bench/regstream-gen")
TRIALS=${REGSTREAM_KILL_TRIALS:-12}
pids=()
extra_cleanup() { for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done; }
# shellcheck source=tests/kafka_common.sh
. "$ROOT/tests/kafka_common.sh"

persons=30000
if [ -n "${REGSTREAM_SANITIZED:-}" ]; then persons=6000; fi
"$BUILD/bench/regstream-gen" --profile random --seed 21 --persons $persons --months 24 \
  --repeat-rate 0.02 --correction-rate 0.03 --late-rate 0.02 --invalid-rate 0.01 --files 2 \
  --out "$TMP/in.avro" >"$TMP/gen.log" 2>&1 || { bad "regstream-gen failed"; finish; }
IN=("$TMP/in.000.avro" "$TMP/in.001.avro")
"$RS" run --input "${IN[@]}" --csv "$TMP/file.csv" --dead-letter "$TMP/file.jsonl" --quiet ||
  { bad "file mode failed"; finish; }
"$RS" run --input "${IN[0]}" --csv "$TMP/half.csv" --dead-letter "$TMP/half.jsonl" --quiet ||
  { bad "file mode (first half) failed"; finish; }
file_rejects=$(wc -l <"$TMP/file.jsonl")
records=$(grep -o '[0-9]* records' "$TMP/gen.log" | head -1)
ok "file mode: $(($(wc -l <"$TMP/file.csv") - 1)) rows, $file_rejects rejects ($records)"

timeout 120 "$RS" produce --brokers "$B" --topic pm --input "${IN[@]}" --partitions 4 --quiet ||
  { bad "produce failed"; finish; }

# Fast rejoins after a kill -9: static membership hands a restarted member
# its partitions back without waiting for the dead one's session to expire.
FAST=(-X group.instance.id=kill-test -X session.timeout.ms=6000 -X heartbeat.interval.ms=1000)

# export_equals NAME TOPIC EXPECTED.csv: 0 when the topic's latest rows equal it.
export_equals() {
  timeout 60 "$RS" export --brokers "$B" --topic "$2" --csv "$TMP/$1.csv" >"$TMP/$1.export.log" 2>&1 &&
    cmp -s "$3" "$TMP/$1.csv"
}

# dlq_distinct TOPIC: distinct (partition, offset) sources among its dead letters.
dlq_distinct() {
  timeout 90 "$ROOT/deploy/kafka-tool.sh" console-consumer --bootstrap-server "$B" --topic "$1" \
    --from-beginning --timeout-ms 15000 --formatter-property print.headers=true \
    --formatter-property print.value=false 2>/dev/null |
    sed -n 's/.*source_partition:\([0-9]*\),source_offset:\([0-9]*\).*/\1 \2/p' | sort -u | wc -l
}

# ---- 1. kill -9 at random moments, restart, finish ----
SNAP=$TMP/snap
run_args=(--brokers "$B" --topic pm --group g_kill --output-topic out_kill --dead-letter-topic dlq_kill
  --flush-ms 200 --threads 2 --snapshot-dir "$SNAP" --snapshot-interval 15000 --exit-at-eof "${FAST[@]}")
killed=0
finished_early=0
RANDOM=4242
t=0
# Until TRIALS runs were killed (a run may finish before its kill: it is
# counted apart, and at most TRIALS such runs are tolerated).
while [ $killed -lt "$TRIALS" ] && [ $finished_early -lt "$TRIALS" ]; do
  t=$((t + 1))
  "$RS" run "${run_args[@]}" >"$TMP/kill$t.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  # 0.2 to 3.2 s: from before the group is joined to well into processing.
  sleep "$((RANDOM % 3)).$((RANDOM % 10))$((RANDOM % 10))"
  sleep 0.2
  if kill -9 "$pid" 2>/dev/null; then
    killed=$((killed + 1))
  else
    finished_early=$((finished_early + 1))
  fi
  wait "$pid" 2>/dev/null
  pids=("${pids[@]/$pid/}")
done
resumed=$(grep -h 'resumes at offset' "$TMP"/kill*.log | wc -l)
snaps=$(find "$SNAP" -name '*.snap' | wc -l)
[ $killed -ge "$TRIALS" ] &&
  ok "kill -9: $killed runs killed at random moments ($finished_early finished first); $resumed shard resumptions from snapshots; $snaps snapshot files kept" ||
  bad "kill -9: only $killed of $TRIALS runs were killed before they finished"
[ "$resumed" -gt 0 ] && ok "restarts resumed from snapshots" || bad "no restart resumed from a snapshot"
if timeout 300 "$RS" run "${run_args[@]}" >"$TMP/final.log" 2>&1; then
  ok "the last run finished: $(grep -h 'snapshots:' "$TMP/final.log")"
else
  bad "the last run failed: $(tail -2 "$TMP/final.log" | tr '\n' ' ')"
fi
if export_equals kill out_kill "$TMP/file.csv"; then
  ok "after $killed kill -9 and restarts the exported CSV equals the file-mode CSV"
else
  bad "after kill -9 the exported CSV differs: $(diff "$TMP/file.csv" "$TMP/kill.csv" | head -3 | tr '\n' ' ')"
fi
distinct=$(dlq_distinct dlq_kill)
[ "$distinct" = "$file_rejects" ] &&
  ok "the dead-letter topic holds every one of the $file_rejects rejected records" ||
  bad "the dead-letter topic holds $distinct distinct rejected records, file mode $file_rejects"

# ---- 2. a corrupted newest snapshot ----
victim=$(find "$SNAP" -name 'kafka.pm.1.*.snap' | sort | tail -1)
if [ -n "$victim" ]; then
  size=$(stat -c %s "$victim")
  printf '\xff\xfe\xfd\xfc' | dd of="$victim" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
  if timeout 300 "$RS" run "${run_args[@]}" >"$TMP/corrupt.log" 2>&1 &&
    grep -q "$(basename "$victim")" "$TMP/corrupt.log" && export_equals corrupt out_kill "$TMP/file.csv"; then
    ok "corrupted newest snapshot: warned ($(grep -m1 "$(basename "$victim")" "$TMP/corrupt.log" | cut -c1-160)), fell back, CSV still equal"
  else
    bad "corrupted newest snapshot: $(tail -3 "$TMP/corrupt.log" | tr '\n' ' ')"
  fi
else
  bad "no snapshot of partition 1 to corrupt"
fi

# ---- 3. an incompatible configuration ----
out=$(timeout 120 "$RS" run "${run_args[@]}" --full-time-weekly-hours 20 --quiet 2>&1)
rc=$?
[ $rc = 1 ] && echo "$out" | grep -qi 'snapshot' && echo "$out" | grep -qi 'configuration' &&
  ok "another configuration over the same snapshots is refused: $out" ||
  bad "another configuration: exit $rc: $out"

# ---- 4. 1 -> 2 -> 1 instances mid-stream ----
timeout 60 "$RS" produce --brokers "$B" --topic pm2 --input "${IN[0]}" --partitions 4 --quiet ||
  bad "produce (first half) failed"
scale_args=(--brokers "$B" --topic pm2 --group g_scale --output-topic out_scale --dead-letter-topic dlq_scale
  --flush-ms 200 --threads 2 --snapshot-dir "$TMP/snap_scale" --snapshot-interval 2s
  -X session.timeout.ms=6000 -X heartbeat.interval.ms=1000)
"$RS" run "${scale_args[@]}" >"$TMP/scale_a.log" 2>&1 &
a=$!
pids+=("$a")
converged=0
for _ in $(seq 60); do
  sleep 1
  if export_equals half out_scale "$TMP/half.csv"; then converged=1; break; fi
done
[ $converged = 1 ] && ok "one instance: the first half converges" || bad "one instance: the first half did not converge"
"$RS" run "${scale_args[@]}" >"$TMP/scale_b.log" 2>&1 &
b=$!
pids+=("$b")
sleep 4
timeout 60 "$RS" produce --brokers "$B" --topic pm2 --input "${IN[1]}" --quiet || bad "produce (second half) failed"
sleep 3
kill -TERM "$a"
wait "$a"
rc=$?
[ $rc = 0 ] && ok "instance A stopped cleanly while B runs" || bad "instance A exited $rc"
converged=0
for _ in $(seq 90); do
  sleep 1
  if export_equals scale out_scale "$TMP/file.csv"; then converged=1; break; fi
done
took_over=$(grep -c 'resumes at offset' "$TMP/scale_b.log")
[ $converged = 1 ] && ok "1 -> 2 -> 1 instances: converges to the file-mode CSV (B resumed $took_over shard(s) from snapshots)" ||
  bad "1 -> 2 -> 1 instances did not converge: $(diff "$TMP/file.csv" "$TMP/scale.csv" | head -3 | tr '\n' ' ')"
[ "$took_over" -gt 0 ] && ok "B took partitions over from A's snapshots" || bad "B loaded no snapshot of A's partitions"
kill -TERM "$b"
wait "$b"
[ $? = 0 ] && ok "instance B stopped cleanly" || bad "instance B did not stop cleanly"
pids=()

# ---- 5. the broker restarted under a running instance ----
"$RS" run --brokers "$B" --topic pm --group g_restart --output-topic out_restart \
  --dead-letter-topic dlq_restart --flush-ms 200 --threads 2 --snapshot-dir "$TMP/snap_restart" \
  --snapshot-interval 2s >"$TMP/restart.log" 2>&1 &
c=$!
pids+=("$c")
sleep 3
"$ROOT/deploy/kafka-local.sh" stop --port "$PORT" --keep >"$TMP/broker-stop.log" 2>&1
sleep 3
B2=$(timeout 120 "$ROOT/deploy/kafka-local.sh" start --port "$PORT" --dir "$TMP/kafka" 2>"$TMP/broker-restart.log")
[ "$B2" = "$B" ] && ok "broker stopped and restarted on the same data" || bad "broker restart failed: $(tail -2 "$TMP/broker-restart.log" | tr '\n' ' ')"
converged=0
for _ in $(seq 120); do
  sleep 1
  if export_equals restart out_restart "$TMP/file.csv"; then converged=1; break; fi
done
[ $converged = 1 ] && ok "broker restart mid-run: converges to the file-mode CSV" ||
  bad "broker restart mid-run: did not converge: $(tail -2 "$TMP/restart.log" | tr '\n' ' ')"
kill -TERM "$c"
wait "$c"
[ $? = 0 ] && ok "instance stopped cleanly after the broker restart" || bad "instance exited non-zero after the broker restart: $(tail -2 "$TMP/restart.log" | tr '\n' ' ')"
pids=()

finish
