#!/usr/bin/env bash
# tests/kafka_snapshot_topic.sh — the promises of SPEC §6 with the state in
# Kafka only (--snapshot-topic, issue 11), against a real local Kafka 4.3.1
# broker (tests/kafka_common.sh). Every run works in a directory of its own
# and none has a snapshot folder. --snapshot-dir with --snapshot-topic, and
# --snapshot-topic in file mode, are usage errors (exit 2). On one generated
# stream with repeats, corrections, late and invalid records:
#   1. kill -9 at random moments until $REGSTREAM_KILL_TRIALS kills (default
#      6) have landed mid-processing, in rounds of up to 4 kills, each round
#      ended by a run to the end: its exported CSV equals the file-mode CSV;
#      the snapshot topic was made compacted with the input's 4 partitions,
#      holds at most 3 snapshots per partition (older ones tombstoned), and
#      the runs left no file behind them;
#   2. the newest snapshot of one partition with a corrupt chunk and that of
#      another with a missing chunk (tests/kafka_snapshot_topic_tool.c):
#      a warning naming each, both resume at the previous one's offset, the
#      result still exact;
#   3. another rule configuration over the same topic: refused, exit 1, one
#      clear line, nothing written to the snapshot topic, no partial row;
#   4. 1 -> 2 -> 1 instances mid-stream in separate working directories (the
#      second half produced while two run, then the first stops): the second
#      takes its partitions over from their snapshots in the topic, and the
#      output converges to the file-mode CSV of the whole input.
# A longer soak: REGSTREAM_KILL_TRIALS=100 tests/kafka_snapshot_topic.sh BUILD.
# Usage: tests/kafka_snapshot_topic.sh BUILD_DIR
set -uo pipefail

BUILD=$(cd "${1:?usage: kafka_snapshot_topic.sh BUILD_DIR}" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEST_NAME=kafka_snapshot_topic
TOOL=$BUILD/tests/kafka_snapshot_topic_tool
NEEDED=("$BUILD/bench/regstream-gen" "$TOOL")
TRIALS=${REGSTREAM_KILL_TRIALS:-6}
pids=()
extra_cleanup() { for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done; }
# shellcheck source=tests/kafka_common.sh
. "$ROOT/tests/kafka_common.sh"
# shellcheck source=tests/kafka_kill_rounds.sh
. "$ROOT/tests/kafka_kill_rounds.sh"

persons=20000
if [ -n "${REGSTREAM_SANITIZED:-}" ]; then persons=5000; fi
"$BUILD/bench/regstream-gen" --profile random --seed 23 --persons $persons --months 24 \
  --repeat-rate 0.02 --correction-rate 0.03 --late-rate 0.02 --invalid-rate 0.01 --files 2 \
  --out "$TMP/in.avro" >"$TMP/gen.log" 2>&1 || { bad "regstream-gen failed"; finish; }
IN=("$TMP/in.000.avro" "$TMP/in.001.avro")
"$RS" run --input "${IN[@]}" --csv "$TMP/file.csv" --dead-letter "$TMP/file.jsonl" --quiet ||
  { bad "file mode failed"; finish; }
"$RS" run --input "${IN[0]}" --csv "$TMP/half.csv" --dead-letter "$TMP/half.jsonl" --quiet ||
  { bad "file mode (first half) failed"; finish; }
records=$(sed -n 's/^regstream-gen: \([0-9]*\) records (.*/\1/p' "$TMP/gen.log")
ok "file mode: $(($(wc -l <"$TMP/file.csv") - 1)) rows from $records records"

# The command line: a folder or a topic, not both; no topic in file mode.
out=$("$RS" run --brokers "$B" --topic pm --group g --output-topic o --dead-letter-topic d \
  --snapshot-dir "$TMP/nowhere" --snapshot-topic s 2>&1)
rc=$?
[ $rc = 2 ] && echo "$out" | grep -q 'either --snapshot-dir DIR or --snapshot-topic T' &&
  ok "--snapshot-dir with --snapshot-topic: a usage error: $out" || bad "both stores: exit $rc: $out"
out=$("$RS" run --input "${IN[0]}" --csv "$TMP/x.csv" --dead-letter "$TMP/x.jsonl" --snapshot-topic s 2>&1)
rc=$?
[ $rc = 2 ] && echo "$out" | grep -q 'snapshot-topic goes with --brokers' && [ ! -e "$TMP/x.csv" ] &&
  ok "file mode refuses --snapshot-topic: $out" || bad "file mode with --snapshot-topic: exit $rc: $out"

timeout 120 "$RS" produce --brokers "$B" --topic pm --input "${IN[@]}" --partitions 4 --quiet \
  -X linger.ms=5 -X batch.num.messages=100 || { bad "produce failed"; finish; }

FAST=(-X group.instance.id=kill-test -X session.timeout.ms=6000 -X heartbeat.interval.ms=1000)
# Small fetches (and so snapshot chunks under 1000 bytes: many chunks each).
THROTTLE=(-X message.max.bytes=1000 -X fetch.max.bytes=2048 -X max.partition.fetch.bytes=2048)
WORK=$TMP/work
mkdir -p "$WORK"

# snap_sum TOPIC: the sum over partitions of their newest snapshot's position.
snap_sum() {
  "$TOOL" list "$B" "$1" 2>/dev/null | awk '$1 == "snapshot" {last[$2] = $4}
    END {s = 0; for (p in last) s += last[p]; print s}'
}
# run_in DIR ARGS... &: regstream run in a working directory of its own (the
# background subshell becomes the program: $! is its pid).
run_in() {
  mkdir -p "$1"
  cd "$1" && shift && exec "$RS" run "$@"
}

# ---- 1. kill -9 at random moments, restart, finish ----
interval=$((records / 40 > 1000 ? records / 40 : 1000))
RANDOM=4343
round_store() {
  store=snap_kill$1
  store_args=(--snapshot-topic "$store")
}
launch() {
  local log=$1
  shift
  run_in "$WORK/kill$runs" "$@" >"$log" 2>&1
}
kill_rounds "$records"
ST=$store
resumed=$(cat "$TMP"/kill*.log | grep -c 'resumes at offset')
[ $mid -ge "$TRIALS" ] &&
  ok "kill -9: $killed runs killed at random moments, $mid of them mid-processing (snapshots in the topic past the previous run's, short of the end); $resumed shard resumptions from the topic" ||
  bad "kill -9: only $mid of $TRIALS kills landed mid-processing ($killed kills in $runs runs)"
[ "$resumed" -gt 0 ] && ok "restarts resumed from snapshots in the topic" || bad "no restart resumed from a snapshot"
[ $rounds_exact = $round ] &&
  ok "all $round rounds: after the kills and restarts the exported CSV equals the file-mode CSV" ||
  bad "only $rounds_exact of $round rounds ended exact"
left=$(find "$WORK" -type f | wc -l)
[ "$left" = 0 ] && ok "no run wrote a file of its own (no snapshot folder)" ||
  bad "the runs left $left files: $(find "$WORK" -type f | head -3 | tr '\n' ' ')"
desc=$(timeout 60 "$ROOT/deploy/kafka-tool.sh" topics --bootstrap-server "$B" --describe \
  --topic snap_kill1 2>/dev/null | head -1)
echo "$desc" | grep -q 'PartitionCount: 4' && echo "$desc" | grep -q 'cleanup.policy=compact' &&
  ok "the snapshot topic was made compacted with the input's 4 partitions" ||
  bad "the snapshot topic is not compacted with 4 partitions: $desc"
"$TOOL" list "$B" "snap_kill$round" >"$TMP/list.txt" 2>&1
most=$(awk '$1 == "snapshot" {n[$2]++} END {m = 0; for (p in n) if (n[p] > m) m = n[p]; print m}' "$TMP/list.txt")
[ "$most" -ge 2 ] && [ "$most" -le 3 ] &&
  ok "pruned: at most $most snapshots per partition are live in the topic" ||
  bad "live snapshots per partition: $most (want 2 or 3): $(tr '\n' ' ' <"$TMP/list.txt")"

# ---- 2. a damaged newest snapshot ----
# In two partitions that hold two snapshots or more (most do).
ST=snap_kill$round
out_kill=out_kill$round
read -r pc pm < <(awk '$1 == "snapshot" {n[$2]++} END {for (p in n) if (n[p] >= 2) print p}' \
  "$TMP/list.txt" | sort -n | head -2 | tr '\n' ' ')
corrupt=$("$TOOL" damage "$B" "$ST" "${pc:-1}" corrupt 2>"$TMP/damage1.log")
missing=$("$TOOL" damage "$B" "$ST" "${pm:-2}" missing 2>"$TMP/damage2.log")
if [ -n "$corrupt" ] && [ -n "$missing" ]; then
  read -r gen1 prev1 <<<"$corrupt"
  read -r gen2 prev2 <<<"$missing"
  if timeout 300 "$RS" run "${run_args[@]}" >"$TMP/corrupt.log" 2>&1 &&
    grep -q "warning: snapshot $pc/$gen1 in topic $ST is unusable (chunk 0 of [0-9]*: checksum mismatch)" "$TMP/corrupt.log" &&
    grep -q "warning: snapshot $pm/$gen2 in topic $ST is unusable (chunk [0-9]* of [0-9]* is missing)" "$TMP/corrupt.log" &&
    grep -q "partition $pc resumes at offset $prev1 " "$TMP/corrupt.log" &&
    grep -q "partition $pm resumes at offset $prev2 " "$TMP/corrupt.log" &&
    export_equals corrupt "$out_kill" "$TMP/file.csv"; then
    ok "a corrupt and a missing chunk: warned ($(grep -m1 'unusable' "$TMP/corrupt.log" | cut -c1-110)), partitions $pc and $pm resumed from the previous snapshots at $prev1 and $prev2, CSV still equal"
  else
    bad "damaged newest snapshots: $(grep -E 'unusable|resumes' "$TMP/corrupt.log" | tr '\n' ' ') $(tail -2 "$TMP/corrupt.log" | tr '\n' ' ')"
  fi
else
  bad "cannot damage the newest snapshots of two partitions: $(cat "$TMP/list.txt" "$TMP/damage1.log" "$TMP/damage2.log" | tr '\n' ' ')"
fi

# ---- 2b. generations that killed runs' tombstones never reached ----
# More copies of one partition's newest snapshot, as runs killed between a
# save and its pruning's delivery leave them: a run that resumes and has
# nothing new to save still prunes back to 3. At least two copies, and
# enough that the partition holds more than 3 (a slow run, under the
# sanitizers, may have left it only one or two generations).
pl=$(for p in 0 1 2 3; do [ "$p" != "${pc:-1}" ] && [ "$p" != "${pm:-2}" ] && echo $p; done | head -1)
# held LIST: how many snapshots of partition pl the tool's LIST shows
held() { awk -v p="$pl" '$1 == "snapshot" && $2 == p' "$1" | wc -l; }
"$TOOL" list "$B" "$ST" >"$TMP/list_before_leftover.txt" 2>&1
had=$(held "$TMP/list_before_leftover.txt")
copies=$((had < 2 ? 4 - had : 2))
left_over=$("$TOOL" leftover "$B" "$ST" "$pl" "$copies" 2>"$TMP/leftover.log")
read -r lgen lpos <<<"$left_over"
"$TOOL" list "$B" "$ST" >"$TMP/list_leftover.txt" 2>&1
before=$(held "$TMP/list_leftover.txt")
if [ -n "$left_over" ] && timeout 300 "$RS" run "${run_args[@]}" >"$TMP/leftover_run.log" 2>&1; then
  "$TOOL" list "$B" "$ST" >"$TMP/list_after.txt" 2>&1
  after=$(held "$TMP/list_after.txt")
  newest=$(awk -v p="$pl" '$1 == "snapshot" && $2 == p {g = $3} END {print g}' "$TMP/list_after.txt")
  [ "$before" -gt 3 ] && [ "$after" -le 3 ] && [ "$newest" = "$lgen" ] &&
    grep -q "partition $pl resumes at offset $lpos " "$TMP/leftover_run.log" &&
    ok "leftover generations: partition $pl held $before snapshots ($copies of them copies), a resumed run loaded the newest ($lgen, offset $lpos) and pruned back to $after" ||
    bad "leftover generations of partition $pl: $before before, $after after (newest $newest, want $lgen): $(grep -E "partition $pl " "$TMP/leftover_run.log" | tr '\n' ' ')"
  export_equals leftover "$out_kill" "$TMP/file.csv" &&
    ok "after the leftover generations the CSV still equals the file-mode CSV" ||
    bad "after the leftover generations the CSV differs: $(diff "$TMP/file.csv" "$TMP/leftover.csv" | head -3 | tr '\n' ' ')"
else
  bad "leftover generations: $(cat "$TMP/leftover.log") $(tail -2 "$TMP/leftover_run.log" 2>/dev/null | tr '\n' ' ')"
fi

# ---- 3. an incompatible configuration ----
ends() {
  timeout 60 "$ROOT/deploy/kafka-tool.sh" get-offsets --bootstrap-server "$B" --topic "$1" \
    2>/dev/null | awk -F: '{s += $NF} END {print s + 0}'
}
snaps_before=$(ends "$ST")
partials_before=$(ends "$out_kill.partials")
out=$(cd "$WORK" && timeout 120 "$RS" run "${run_args[@]}" --full-time-weekly-hours 20 --quiet 2>&1)
rc=$?
snaps_after=$(ends "$ST")
partials_after=$(ends "$out_kill.partials")
[ $rc = 1 ] && echo "$out" | grep -q 'snapshot .* in topic' && echo "$out" | grep -qi 'another configuration' &&
  [ "$(echo "$out" | wc -l)" = 1 ] &&
  ok "another configuration over the same snapshot topic is refused: $out" ||
  bad "another configuration: exit $rc: $out"
[ "$snaps_before" = "$snaps_after" ] && [ "$partials_before" = "$partials_after" ] &&
  ok "the refused run wrote nothing to the snapshot topic ($snaps_after records) and published no partial row" ||
  bad "the refused run changed the snapshot topic or published partials (snapshots $snaps_before -> $snaps_after, partials $partials_before -> $partials_after)"

# ---- 4. 1 -> 2 -> 1 instances mid-stream, no shared folder ----
timeout 60 "$RS" produce --brokers "$B" --topic pm2 --input "${IN[0]}" --partitions 4 --quiet ||
  bad "produce (first half) failed"
scale_args=(--brokers "$B" --topic pm2 --group g_scale --output-topic out_scale --dead-letter-topic dlq_scale
  --flush-ms 200 --threads 2 --snapshot-topic snap_scale --snapshot-interval 2s
  -X session.timeout.ms=6000 -X heartbeat.interval.ms=1000)
run_in "$TMP/instance_a" "${scale_args[@]}" >"$TMP/scale_a.log" 2>&1 &
a=$!
pids+=("$a")
converges 60 scale_half out_scale "$TMP/half.csv" && ok "one instance: the first half converges" || bad "one instance: the first half did not converge"
run_in "$TMP/instance_b" "${scale_args[@]}" >"$TMP/scale_b.log" 2>&1 &
b=$!
pids+=("$b")
sleep 4
timeout 60 "$RS" produce --brokers "$B" --topic pm2 --input "${IN[1]}" --quiet || bad "produce (second half) failed"
sleep 3
b_before=$(grep -c 'resumes at offset' "$TMP/scale_b.log")
kill -TERM "$a"
wait "$a"
rc=$?
[ $rc = 0 ] && ok "instance A stopped cleanly while B runs" || bad "instance A exited $rc: $(tail -3 "$TMP/scale_a.log" | tr "\n" " ")"
converged=0
converges 90 scale out_scale "$TMP/file.csv" && converged=1
took_over=$(($(grep -c 'resumes at offset' "$TMP/scale_b.log") - b_before))
[ $converged = 1 ] && ok "1 -> 2 -> 1 instances: converges to the file-mode CSV" ||
  bad "1 -> 2 -> 1 instances did not converge: $(diff "$TMP/file.csv" "$TMP/scale.csv" | head -3 | tr '\n' ' ')"
[ "$took_over" -gt 0 ] && ok "when A stopped, B took $took_over partition(s) over from A's snapshots in the topic ($b_before at the 1 -> 2 step)" ||
  bad "B loaded no snapshot of A's partitions when A stopped"
kill -TERM "$b"
wait "$b"
[ $? = 0 ] && ok "instance B stopped cleanly" || bad "instance B did not stop cleanly"
pids=()
left=$(find "$TMP/instance_a" "$TMP/instance_b" -type f | wc -l)
[ "$left" = 0 ] && ok "neither instance wrote a file (the topic is the only state store)" ||
  bad "the instances left $left files"

finish
