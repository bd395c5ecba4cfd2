#!/usr/bin/env bash
# tests/kafka_snapshot.sh — crash-exact state (SPEC §6, issue 4) against a real
# local Kafka 4.3.1 broker (deploy/kafka-local.sh on a free port, its own data
# dir, stopped on exit). Registered by tests/kafka.cmake as the ctest
# kafka_snapshot (label kafka, RUN_SERIAL). On one generated stream with
# repeats, corrections, late and invalid records:
#   1. kill -9 at random moments until $REGSTREAM_KILL_TRIALS kills (default
#      12) have landed mid-processing, in rounds of up to 4 kills, each restart
#      resuming from the newest snapshots in --snapshot-dir, each round ended
#      by a last run to the end: its exported CSV equals the file-mode CSV
#      (and so an uninterrupted run), and the dead-letter topic holds every
#      rejected record (at least once: records past a snapshot are re-read);
#   2. the newest snapshot of a partition corrupted: a warning naming it, the
#      partition resumes at the previous one's offset, the result still exact;
#   3. another rule configuration over the same snapshot dir: refused, exit 1,
#      one clear line, no snapshot written and no partial row published;
#   4. 1 -> 2 -> 1 instances mid-stream sharing one snapshot dir (the second
#      half of the input produced while two run; then the first stops and the
#      second takes its partitions over from their revoke snapshots): the
#      output converges to the file-mode CSV of the whole input;
#   5. the broker stopped and restarted (same data dir) under a running
#      instance, the second half produced after: it carries on through it
#      and converges to the file-mode CSV.
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
# shellcheck source=tests/kafka_kill_rounds.sh
. "$ROOT/tests/kafka_kill_rounds.sh"

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
records=$(sed -n 's/^regstream-gen: \([0-9]*\) records (.*/\1 records/p' "$TMP/gen.log")
ok "file mode: $(($(wc -l <"$TMP/file.csv") - 1)) rows, $file_rejects rejects ($records)"

# Small record batches (about 100 records), so that the killed runs' small
# fetches (THROTTLE below) take the topic in small pieces.
timeout 120 "$RS" produce --brokers "$B" --topic pm --input "${IN[@]}" --partitions 4 --quiet \
  -X linger.ms=5 -X batch.num.messages=100 || { bad "produce failed"; finish; }

# Fast rejoins after a kill -9: static membership hands a restarted member
# its partitions back without waiting for the dead one's session to expire.
FAST=(-X group.instance.id=kill-test -X session.timeout.ms=6000 -X heartbeat.interval.ms=1000)


# dlq_distinct TOPIC: distinct (partition, offset) sources among its dead letters.
dlq_distinct() {
  timeout 90 "$ROOT/deploy/kafka-tool.sh" console-consumer --bootstrap-server "$B" --topic "$1" \
    --from-beginning --timeout-ms 15000 --formatter-property print.headers=true \
    --formatter-property print.value=false 2>/dev/null |
    sed -n 's/.*source_partition:\([0-9]*\),source_offset:\([0-9]*\).*/\1 \2/p' | sort -u | wc -l
}

# ---- 1. kill -9 at random moments, restart, finish ----
# The rounds of tests/kafka_kill_rounds.sh, each with a snapshot folder of
# its own. Killed runs fetch in small pieces (-X fetch.max.bytes=2048: a few
# seconds for the whole topic).
total=$(echo "$records" | grep -o '^[0-9]*')
# About 10 snapshots per shard over the topic, whatever its size.
interval=$((total / 40 > 1000 ? total / 40 : 1000))
THROTTLE=(-X message.max.bytes=1000 -X fetch.max.bytes=2048 -X max.partition.fetch.bytes=2048)
# snap_sum DIR: the sum over partitions of their newest snapshot's position.
snap_sum() {
  find "$1" -name 'kafka.pm.*.snap' 2>/dev/null | sed 's/.*kafka\.pm\.\([0-9]*\)\.0*\([0-9][0-9]*\)\.snap$/\1 \2/' |
    sort -k1,1n -k2,2n | awk '{last[$1] = $2} END {s = 0; for (p in last) s += last[p]; print s}'
}
RANDOM=4242
round_store() {
  store=$TMP/snap$1
  store_args=(--snapshot-dir "$store")
}
launch() {
  local log=$1
  shift
  exec "$RS" run "$@" >"$log" 2>&1
}
kill_rounds "$total"
SNAP=$store
resumed=$(cat "$TMP"/kill*.log | grep -c 'resumes at offset')
[ $mid -ge "$TRIALS" ] &&
  ok "kill -9: $killed runs killed at random moments, $mid of them mid-processing (snapshots past the previous run's, short of the end); $resumed shard resumptions from snapshots" ||
  bad "kill -9: only $mid of $TRIALS kills landed mid-processing ($killed kills in $runs runs)"
[ "$resumed" -gt 0 ] && ok "restarts resumed from snapshots" || bad "no restart resumed from a snapshot"
[ $rounds_exact = $round ] &&
  ok "all $round rounds: after the kills and restarts the exported CSV equals the file-mode CSV" ||
  bad "only $rounds_exact of $round rounds ended exact"
distinct=$(dlq_distinct dlq_kill1)
[ "$distinct" = "$file_rejects" ] &&
  ok "the dead-letter topic of round 1 holds every one of the $file_rejects rejected records" ||
  bad "the dead-letter topic of round 1 holds $distinct distinct rejected records, file mode $file_rejects"
run_args=(--brokers "$B" --topic pm --group "g_kill$round" --output-topic "out_kill$round"
  --dead-letter-topic "dlq_kill$round" --flush-ms 200 --threads 2 --snapshot-dir "$SNAP"
  --snapshot-interval "$interval" --exit-at-eof "${FAST[@]}")
out_kill=out_kill$round

# ---- 2. a corrupted newest snapshot ----
victim=$(find "$SNAP" -name 'kafka.pm.1.*.snap' | sort | tail -1)
previous=$(find "$SNAP" -name 'kafka.pm.1.*.snap' | sort | tail -2 | head -1)
previous_at=$(basename "$previous" | sed 's/^kafka\.pm\.1\.0*\([0-9][0-9]*\)\.snap$/\1/')
if [ -n "$victim" ] && [ "$victim" != "$previous" ]; then
  size=$(stat -c %s "$victim")
  printf '\xff\xfe\xfd\xfc' | dd of="$victim" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
  if timeout 300 "$RS" run "${run_args[@]}" >"$TMP/corrupt.log" 2>&1 &&
    grep -q "$(basename "$victim")" "$TMP/corrupt.log" &&
    grep -q "partition 1 resumes at offset $previous_at " "$TMP/corrupt.log" &&
    export_equals corrupt "$out_kill" "$TMP/file.csv"; then
    ok "corrupted newest snapshot: warned ($(grep -m1 "$(basename "$victim")" "$TMP/corrupt.log" | cut -c1-120)), resumed from the previous one at offset $previous_at, CSV still equal"
  else
    bad "corrupted newest snapshot: $(tail -3 "$TMP/corrupt.log" | tr '\n' ' ')"
  fi
else
  bad "fewer than two snapshots of partition 1: nothing to corrupt and fall back from"
fi

# ---- 3. an incompatible configuration ----
# Refused, and nothing changes: no snapshot written, no partial published.
partials_end() {
  timeout 60 "$ROOT/deploy/kafka-tool.sh" get-offsets --bootstrap-server "$B" \
    --topic "$out_kill.partials" 2>/dev/null | awk -F: '{s += $NF} END {print s + 0}'
}
snaps_before=$(cd "$SNAP" && md5sum ./* | sort)
partials_before=$(partials_end)
out=$(timeout 120 "$RS" run "${run_args[@]}" --full-time-weekly-hours 20 --quiet 2>&1)
rc=$?
snaps_after=$(cd "$SNAP" && md5sum ./* | sort)
partials_after=$(partials_end)
[ $rc = 1 ] && echo "$out" | grep -qi 'snapshot' && echo "$out" | grep -qi 'configuration' &&
  ok "another configuration over the same snapshots is refused: $out" ||
  bad "another configuration: exit $rc: $out"
[ "$snaps_before" = "$snaps_after" ] && [ "$partials_before" = "$partials_after" ] &&
  ok "the refused run wrote no snapshot and published no partial row ($partials_after partials)" ||
  bad "the refused run changed the snapshots or published partials ($partials_before -> $partials_after)"

# ---- 4. 1 -> 2 -> 1 instances mid-stream ----
timeout 60 "$RS" produce --brokers "$B" --topic pm2 --input "${IN[0]}" --partitions 4 --quiet ||
  bad "produce (first half) failed"
scale_args=(--brokers "$B" --topic pm2 --group g_scale --output-topic out_scale --dead-letter-topic dlq_scale
  --flush-ms 200 --threads 2 --snapshot-dir "$TMP/snap_scale" --snapshot-interval 2s
  -X session.timeout.ms=6000 -X heartbeat.interval.ms=1000)
"$RS" run "${scale_args[@]}" >"$TMP/scale_a.log" 2>&1 &
a=$!
pids+=("$a")
converges 60 scale_half out_scale "$TMP/half.csv" && ok "one instance: the first half converges" || bad "one instance: the first half did not converge"
"$RS" run "${scale_args[@]}" >"$TMP/scale_b.log" 2>&1 &
b=$!
pids+=("$b")
sleep 4
timeout 60 "$RS" produce --brokers "$B" --topic pm2 --input "${IN[1]}" --quiet || bad "produce (second half) failed"
sleep 3
b_before=$(grep -c 'resumes at offset' "$TMP/scale_b.log")
kill -TERM "$a"
wait "$a"
rc=$?
[ $rc = 0 ] && ok "instance A stopped cleanly while B runs" || bad "instance A exited $rc"
converged=0
converges 90 scale out_scale "$TMP/file.csv" && converged=1
took_over=$(($(grep -c 'resumes at offset' "$TMP/scale_b.log") - b_before))
[ $converged = 1 ] && ok "1 -> 2 -> 1 instances: converges to the file-mode CSV" ||
  bad "1 -> 2 -> 1 instances did not converge: $(diff "$TMP/file.csv" "$TMP/scale.csv" | head -3 | tr '\n' ' ')"
[ "$took_over" -gt 0 ] && ok "when A stopped, B took $took_over partition(s) over from A's revoke snapshots ($b_before at the 1 -> 2 step)" ||
  bad "B loaded no snapshot of A's partitions when A stopped"
kill -TERM "$b"
wait "$b"
[ $? = 0 ] && ok "instance B stopped cleanly" || bad "instance B did not stop cleanly"
pids=()

# ---- 5. the broker restarted under a running instance ----
# The first half is processed, the broker stops and starts again on the
# same data, then the second half is produced: the same instance must go on
# through it and converge to the whole input's CSV.
timeout 60 "$RS" produce --brokers "$B" --topic pm3 --input "${IN[0]}" --partitions 4 --quiet ||
  bad "produce (pm3, first half) failed"
"$RS" run --brokers "$B" --topic pm3 --group g_restart --output-topic out_restart \
  --dead-letter-topic dlq_restart --flush-ms 200 --threads 2 --snapshot-dir "$TMP/snap_restart" \
  --snapshot-interval 2s >"$TMP/restart.log" 2>&1 &
c=$!
pids+=("$c")
# Only where the restart falls is at stake here, not how fast: say so, go on.
converges 60 restart_half out_restart "$TMP/half.csv" && echo "info: the first half converged before the broker restart" ||
  echo "info: the first half had not converged within 60 s before the broker restart: $(tail -3 "$TMP/restart.log" | tr '\n' ' ')"
"$ROOT/deploy/kafka-local.sh" stop --port "$PORT" --keep >"$TMP/broker-stop.log" 2>&1
sleep 3
B2=$(timeout 120 "$ROOT/deploy/kafka-local.sh" start --port "$PORT" --dir "$TMP/kafka" 2>"$TMP/broker-restart.log")
[ "$B2" = "$B" ] && ok "broker stopped and restarted on the same data" || bad "broker restart failed: $(tail -2 "$TMP/broker-restart.log" | tr '\n' ' ')"
timeout 120 "$RS" produce --brokers "$B" --topic pm3 --input "${IN[1]}" --quiet ||
  bad "produce (pm3, second half) after the broker restart failed"
converges 120 restart out_restart "$TMP/file.csv" && ok "broker restart mid-run: the running instance took the second half and converges to the file-mode CSV" ||
  bad "broker restart mid-run: did not converge: $(tail -2 "$TMP/restart.log" | tr '\n' ' ')"
kill -TERM "$c"
wait "$c"
[ $? = 0 ] && ok "instance stopped cleanly after the broker restart" || bad "instance exited non-zero after the broker restart: $(tail -2 "$TMP/restart.log" | tr '\n' ' ')"
consumed=$(sed -n 's/^regstream: \([0-9]*\) messages from.*/\1/p' "$TMP/restart.log")
[ "$consumed" = "$total" ] && ok "one instance consumed all $total messages across the broker restart" ||
  bad "the instance consumed ${consumed:-?} messages across the broker restart, the input has $total"
pids=()

finish
