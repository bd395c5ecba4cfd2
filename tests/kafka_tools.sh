#!/usr/bin/env bash
# tests/kafka_tools.sh — `regstream produce` and `regstream export` against a
# real local Kafka 4.3.1 broker (deploy/kafka-local.sh on a free port, its own
# data dir, stopped on exit). Registered by tests/kafka.cmake as the ctest
# kafka_tools (label kafka, RUN_SERIAL).
#   1. produce a generated file (500 persons x 12 months) plain into a new
#      6-partition topic, and Confluent-framed (schema id 7) into another;
#   2. Kafka's own GetOffsetShell counts exactly the file's records in each;
#   3. kafka_topic_check: every message keyed by its person_id, each person in
#      one partition, in period order, values decode (Confluent through an
#      <id>.avsc schema directory);
#   4. the rollup CSV of `regstream run` over the file is produced as upserts
#      (older then newer value per key, a tombstoned key, a members = 0 row)
#      and `regstream export` reproduces the CSV byte for byte;
#   5. clean errors: unreachable broker (within ~10 s), missing file, bad option,
#      a topic that does not hold rollup rows.
# Needs Java >= 17 and Maven (deploy/install-deps.sh --kafka): without them
# the test FAILS, it never skips.
# Usage: tests/kafka_tools.sh BUILD_DIR
set -uo pipefail

BUILD=$(cd "${1:?usage: kafka_tools.sh BUILD_DIR}" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEST_NAME=kafka_tools
NEEDED=("$BUILD/bench/regstream-gen" "$BUILD/tests/kafka_rows_producer" "$BUILD/tests/kafka_topic_check")
# shellcheck source=tests/kafka_common.sh
. "$ROOT/tests/kafka_common.sh"

"$BUILD/bench/regstream-gen" --profile random --seed 3 --persons 500 --months 12 \
  --out "$TMP/in.avro" >"$TMP/gen.log" 2>&1 || { bad "regstream-gen failed"; finish; }
N=$(sed -n 's/.*wrote .* (\([0-9]*\) records).*/\1/p' "$TMP/gen.log" | head -1)
[ -n "$N" ] && [ "$N" -gt 0 ] || { bad "cannot tell the record count: $(cat "$TMP/gen.log")"; finish; }
ok "generated $N records"

# --- 1-3: produce plain and Confluent, count, check keys/partitions/order
offsets_sum() { # topic -> "partitions total"
  timeout 120 "$ROOT/deploy/kafka-tool.sh" get-offsets --bootstrap-server "$B" --topic "$1" 2>/dev/null |
    awk -F: '{n++; s += $NF} END {print n+0, s+0}'
}

if timeout 60 "$RS" produce --brokers "$B" --topic pm_plain --input "$TMP/in.avro" --partitions 6 \
  >"$TMP/produce_plain.log" 2>&1; then
  ok "produce plain: $(tail -1 "$TMP/produce_plain.log")"
else
  bad "produce plain failed: $(tail -2 "$TMP/produce_plain.log")"
fi
mkdir -p "$TMP/schemas"
cp "$ROOT/schemas/person_month.avsc" "$TMP/schemas/7.avsc"
if timeout 60 "$RS" produce --brokers "$B" --topic pm_confluent --input "$TMP/in.avro" \
  --framing confluent --schema-id 7 -X linger.ms=5 >"$TMP/produce_conf.log" 2>&1; then
  ok "produce confluent: $(tail -1 "$TMP/produce_conf.log")"
else
  bad "produce confluent failed: $(tail -2 "$TMP/produce_conf.log")"
fi

for t in pm_plain pm_confluent; do
  read -r parts total <<<"$(offsets_sum $t)"
  if [ "$parts" = 6 ] && [ "$total" = "$N" ]; then
    ok "$t: GetOffsetShell counts $total messages in $parts partitions"
  else
    bad "$t: GetOffsetShell counts $total messages in $parts partitions, want $N in 6"
  fi
done

if out=$(timeout 60 "$BUILD/tests/kafka_topic_check" "$B" pm_plain "$TMP/in.avro" plain 2>&1); then
  ok "$out"
else
  bad "pm_plain check: $out"
fi
if out=$(timeout 60 "$BUILD/tests/kafka_topic_check" "$B" pm_confluent "$TMP/in.avro" "$TMP/schemas" 2>&1); then
  ok "$out"
else
  bad "pm_confluent check: $out"
fi
# negative control: the plain topic read as Confluent frames must not pass
if timeout 60 "$BUILD/tests/kafka_topic_check" "$B" pm_plain "$TMP/in.avro" "$TMP/schemas" >/dev/null 2>&1; then
  bad "kafka_topic_check accepted plain values as Confluent frames"
else
  ok "kafka_topic_check rejects plain values read as Confluent frames"
fi

# producing the same file again appends (a loader, not a sync): counts double
if timeout 60 "$RS" produce --brokers "$B" --topic pm_plain --input "$TMP/in.avro" --quiet >/dev/null 2>&1 &&
  [ "$(offsets_sum pm_plain)" = "6 $((2 * N))" ]; then
  ok "second produce into the existing topic appends $N more"
else
  bad "second produce into the existing topic"
fi

# --- 4: rollup rows -> export reproduces the CSV
if "$RS" run --input "$TMP/in.avro" --csv "$TMP/run.csv" --dead-letter "$TMP/dlq.jsonl" --quiet; then
  ok "regstream run wrote $(($(wc -l <"$TMP/run.csv") - 1)) rollup rows"
else
  bad "regstream run failed"
fi
timeout 120 "$ROOT/deploy/kafka-tool.sh" topics --bootstrap-server "$B" --create --topic rollup_out \
  --partitions 3 --replication-factor 1 --config cleanup.policy=compact >"$TMP/topic.log" 2>&1 ||
  bad "cannot create rollup_out: $(tail -1 "$TMP/topic.log")"
if out=$(timeout 60 "$BUILD/tests/kafka_rows_producer" "$B" rollup_out "$TMP/run.csv" 2>&1); then
  ok "$out"
else
  bad "kafka_rows_producer: $out"
fi
if timeout 60 "$RS" export --brokers "$B" --topic rollup_out --csv "$TMP/export.csv" >"$TMP/export.log" 2>&1 &&
  cmp -s "$TMP/run.csv" "$TMP/export.csv"; then
  ok "export reproduces the CSV exactly: $(tail -1 "$TMP/export.log")"
else
  bad "export differs from the run's CSV: $(tail -1 "$TMP/export.log"); $(diff "$TMP/run.csv" "$TMP/export.csv" 2>&1 | head -3 | tr '\n' ' ')"
fi
timeout 120 "$ROOT/deploy/kafka-tool.sh" topics --bootstrap-server "$B" --create --topic empty_out \
  --partitions 2 --replication-factor 1 >/dev/null 2>&1
if timeout 60 "$RS" export --brokers "$B" --topic empty_out --csv "$TMP/empty.csv" --quiet &&
  [ "$(wc -l <"$TMP/empty.csv")" = 1 ] && [ "$(head -1 "$TMP/empty.csv")" = "$(head -1 "$TMP/run.csv")" ]; then
  ok "export of an empty topic writes the header only"
else
  bad "export of an empty topic"
fi

# --- 5: clean errors
expect_error() { # want_rc max_seconds description -- command...
  local want=$1 max=$2 what=$3
  shift 4
  local start end rc lines
  start=$(date +%s)
  "$@" >"$TMP/err.out" 2>"$TMP/err.log"
  rc=$?
  end=$(date +%s)
  lines=$(wc -l <"$TMP/err.log")
  if [ "$rc" = "$want" ] && [ "$lines" = 1 ] && [ $((end - start)) -le "$max" ]; then
    ok "$what: exit $rc in $((end - start)) s: $(cat "$TMP/err.log")"
  else
    bad "$what: exit $rc (want $want), $lines stderr line(s), $((end - start)) s: $(head -3 "$TMP/err.log" | tr '\n' ' ')"
  fi
}
expect_error 1 15 "produce to an unreachable broker" -- \
  "$RS" produce --brokers 127.0.0.1:$((PORT + 2)) --topic x --input "$TMP/in.avro"
expect_error 1 15 "export from an unreachable broker" -- \
  "$RS" export --brokers 127.0.0.1:$((PORT + 2)) --topic x --csv "$TMP/x.csv"
expect_error 1 5 "produce a missing file" -- \
  "$RS" produce --brokers "$B" --topic x --input "$TMP/missing.avro"
expect_error 2 5 "produce with a bad option" -- "$RS" produce --brokers "$B" --topic x --input "$TMP/in.avro" --bogus
expect_error 2 5 "produce with a bad -X" -- "$RS" produce --brokers "$B" --topic x --input "$TMP/in.avro" -X no.such.property=1
expect_error 2 5 "confluent framing without a schema id" -- "$RS" produce --brokers "$B" --topic x --input "$TMP/in.avro" --framing confluent
expect_error 1 30 "export of a topic that holds PersonMonth records" -- \
  "$RS" export --brokers "$B" --topic pm_plain --csv "$TMP/x.csv"
expect_error 1 30 "export of a topic that does not exist" -- \
  "$RS" export --brokers "$B" --topic no_such_topic --csv "$TMP/x.csv"
[ ! -e "$TMP/x.csv" ] && ok "failed exports leave no CSV behind" || bad "a failed export wrote $TMP/x.csv"

finish
