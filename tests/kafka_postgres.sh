#!/usr/bin/env bash
# tests/kafka_postgres.sh — `regstream export --postgres [--follow]` against a
# real local Kafka 4.3.1 broker (tests/kafka_common.sh) and a real PostgreSQL
# 15 server (tests/postgres_common.sh), both private, both stopped on exit.
# Registered by tests/postgres.cmake (labels postgres and kafka, RUN_SERIAL).
#   1. rollup rows with upserts, a tombstone and a members = 0 row
#      (kafka_rows_producer): export --postgres leaves the table equal to
#      export --csv's CSV byte for byte, and its offsets row per partition
#      equals the topic's end; with --min-cell 5 the table equals export
#      --csv --min-cell 5, which equals file mode's --min-cell 5 CSV;
#   2. kill -9 rounds of `export --follow` at random moments while a live
#      Kafka-mode run publishes (its input produced in 4 parts meanwhile) and
#      after: once the run is done and a last --follow has
#      caught up, the table equals the file-mode CSV byte for byte and the
#      offsets table equals the output topic's end offsets; SIGTERM ends the
#      follower cleanly (exit 0);
#   3. the database down at start (the follower waits, says so every 10 s,
#      catches up after pg_ctl start), stopped (fast) and crashed (kill -9 of
#      the postmaster) while following with new rows arriving: caught up
#      exactly each time after pg_ctl start.
# Usage: tests/kafka_postgres.sh BUILD_DIR
set -uo pipefail

BUILD=$(cd "${1:?usage: kafka_postgres.sh BUILD_DIR}" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEST_NAME=kafka_postgres
NEEDED=("$BUILD/bench/regstream-gen" "$BUILD/tests/kafka_rows_producer")
pids=()
extra_cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
  pg_cleanup
}
# shellcheck source=tests/kafka_common.sh
. "$ROOT/tests/kafka_common.sh"
# shellcheck source=tests/postgres_common.sh
. "$ROOT/tests/postgres_common.sh"
ok "PostgreSQL up on port $PG_PORT"

persons=6000 months=36
if [ "${REGSTREAM_SANITIZED:-0}" = 1 ]; then persons=1500 months=24; fi

# end_offsets TOPIC: "partition:offset" lines of the topic's end, sorted.
end_offsets() {
  timeout 60 "$ROOT/deploy/kafka-tool.sh" get-offsets --bootstrap-server "$B" --topic "$1" 2>/dev/null |
    awk -F: '{print $2 ":" $3}' | sort -n
}
# stored_offsets TABLE TOPIC: the same from the offsets table.
stored_offsets() {
  pg_sql -c "SELECT \"partition\" || ':' || next_offset FROM regstream_offsets WHERE tbl = '$1' AND topic = '$2' ORDER BY 1" |
    sort -n
}
# caught_up SECONDS TABLE TOPIC ENDS: 0 once the stored offsets equal ENDS.
caught_up() {
  local i
  for ((i = 0; i < $1 * 5; i++)); do
    [ "$(stored_offsets "$2" "$3")" = "$4" ] && return 0
    sleep 0.2
  done
  return 1
}

"$BUILD/bench/regstream-gen" --profile random --seed 31 --persons "$persons" --months "$months" \
  --correction-rate 0.03 --late-rate 0.01 --invalid-rate 0.01 --files 4 --out "$TMP/in.avro" >/dev/null 2>&1 ||
  { bad "regstream-gen failed"; finish; }
"$RS" run --input "$TMP"/in.00?.avro --csv "$TMP/file.csv" --dead-letter "$TMP/file.jsonl" --quiet &&
  "$RS" run --input "$TMP"/in.00?.avro --csv "$TMP/file5.csv" --dead-letter "$TMP/file5.jsonl" --min-cell 5 --quiet ||
  { bad "file mode failed"; finish; }
ok "file mode: $(($(wc -l <"$TMP/file.csv") - 1)) rows ($(($(wc -l <"$TMP/file5.csv") - 1)) under --min-cell 5)"

# --- 1: export --postgres of produced rollup rows
timeout 120 "$ROOT/deploy/kafka-tool.sh" topics --bootstrap-server "$B" --create --topic rows \
  --partitions 3 --replication-factor 1 --config cleanup.policy=compact >/dev/null 2>&1
timeout 60 "$BUILD/tests/kafka_rows_producer" "$B" rows "$TMP/file.csv" >/dev/null 2>&1 ||
  bad "kafka_rows_producer failed"
rows_end=$(end_offsets rows)
if timeout 60 "$RS" export --brokers "$B" --topic rows --csv "$TMP/rows.csv" --quiet &&
  timeout 60 "$RS" export --brokers "$B" --topic rows --postgres "$PG_CONN" --table t_rows \
    >"$TMP/rows_pg.log" 2>&1 && pg_table_csv t_rows >"$TMP/rows_table.csv" &&
  cmp -s "$TMP/rows.csv" "$TMP/rows_table.csv" && cmp -s "$TMP/file.csv" "$TMP/rows.csv"; then
  ok "export --postgres: the table equals export --csv's CSV (and file mode): $(tail -1 "$TMP/rows_pg.log")"
else
  bad "export --postgres: $(tail -1 "$TMP/rows_pg.log") $(diff "$TMP/rows.csv" "$TMP/rows_table.csv" 2>&1 | head -3 | tr '\n' ' ')"
fi
[ -n "$rows_end" ] && [ "$(stored_offsets t_rows rows)" = "$rows_end" ] &&
  ok "export --postgres stored the topic's end offsets ($(echo $rows_end))" ||
  bad "offsets after export: [$(stored_offsets t_rows rows | tr '\n' ' ')] want [$(echo $rows_end)]"
if timeout 60 "$RS" export --brokers "$B" --topic rows --csv "$TMP/rows5.csv" --min-cell 5 --quiet &&
  timeout 60 "$RS" export --brokers "$B" --topic rows --postgres "$PG_CONN" --table t_rows5 --min-cell 5 --quiet &&
  pg_table_csv t_rows5 | cmp -s "$TMP/rows5.csv" - && cmp -s "$TMP/file5.csv" "$TMP/rows5.csv"; then
  ok "export --min-cell 5: the table equals export --csv --min-cell 5, which equals file mode's"
else
  bad "export --min-cell 5: table, export CSV and file mode differ"
fi

# --- 2: kill -9 rounds of export --follow while a Kafka-mode run publishes:
# the run is live (no --exit-at-eof) and the input arrives in 4 parts.
# follow_round: one export --follow, killed with -9 after a random 0.3-1.8 s.
follow_round() {
  "$RS" export --brokers "$B" --topic out --postgres "$PG_CONN" --table t_follow --follow \
    >>"$TMP/follow.log" 2>&1 &
  local fpid=$!
  pids+=("$fpid")
  sleep "$(python3 -c "import random; print(round(random.uniform(0.3, 1.8), 2))")"
  if kill -0 "$fpid" 2>/dev/null; then
    kill -9 "$fpid"
    kills=$((kills + 1))
  fi
  wait "$fpid" 2>/dev/null
}
timeout 120 "$ROOT/deploy/kafka-tool.sh" topics --bootstrap-server "$B" --create --topic pm \
  --partitions 6 --replication-factor 1 >/dev/null 2>&1
"$RS" run --brokers "$B" --topic pm --group g_follow --output-topic out \
  --dead-letter-topic dlq --flush-ms 100 --threads 2 >"$TMP/run.log" 2>&1 &
run_pid=$!
pids+=("$run_pid")
kills=0
for part in "$TMP"/in.00?.avro; do
  timeout 60 "$RS" produce --brokers "$B" --topic pm --input "$part" --quiet &
  ppid=$!
  follow_round
  follow_round
  wait "$ppid" || bad "produce $part failed"
done
kills_live=$kills
if converges 120 run_out out "$TMP/file.csv"; then
  ok "the live Kafka-mode run published the file-mode rows; $kills_live kill -9 of export --follow meanwhile"
else
  bad "the Kafka-mode run did not converge to file mode: $(tail -2 "$TMP/run.log" | tr '\n' ' ')"
fi
follow_round
follow_round
kill -TERM "$run_pid"
wait "$run_pid" || bad "the Kafka-mode run did not stop cleanly on SIGTERM: $(tail -2 "$TMP/run.log" | tr '\n' ' ')"
[ "$kills" -ge 6 ] && ok "$kills kill -9 of export --follow in all" || bad "only $kills kill -9 landed"
out_end=$(end_offsets out)
"$RS" export --brokers "$B" --topic out --postgres "$PG_CONN" --table t_follow --follow \
  >"$TMP/follow_last.log" 2>&1 &
fpid=$!
pids+=("$fpid")
if caught_up 120 t_follow out "$out_end"; then
  ok "the last export --follow caught up: offsets table equals the end offsets of out ($(echo $out_end))"
else
  bad "export --follow did not catch up: [$(stored_offsets t_follow out | tr '\n' ' ')] want [$(echo $out_end)]: $(tail -2 "$TMP/follow_last.log")"
fi
# SIGTERM once it is following (before its handler is set a signal kills any program).
for ((i = 0; i < 150; i++)); do grep -q 'following out' "$TMP/follow_last.log" && break; sleep 0.2; done
kill -TERM "$fpid"
wait "$fpid"
frc=$?
if [ "$frc" = 0 ] && tail -1 "$TMP/follow_last.log" | grep -q 'stopped by SIGTERM'; then
  ok "SIGTERM ends export --follow cleanly: $(tail -1 "$TMP/follow_last.log")"
else
  bad "export --follow on SIGTERM: exit $frc: $(tail -2 "$TMP/follow_last.log" | tr '\n' ' ')"
fi
pg_table_csv t_follow >"$TMP/follow.csv"
if cmp -s "$TMP/file.csv" "$TMP/follow.csv"; then
  ok "after $kills kill -9 the followed table equals the file-mode CSV ($(($(wc -l <"$TMP/follow.csv") - 1)) rows)"
else
  bad "followed table differs from file mode: $(diff "$TMP/file.csv" "$TMP/follow.csv" | head -4 | tr '\n' ' ')"
fi
if grep -q 'from the offsets stored with it' "$TMP/follow.log"; then
  ok "restarted followers resumed from the stored offsets"
else
  bad "no follower resumed from stored offsets: $(head -3 "$TMP/follow.log" | tr '\n' ' ')"
fi

# --- 3: the database down at start, stopped and crashed while following
"$BUILD/bench/regstream-gen" --profile random --seed 32 --persons 300 --months 12 \
  --start-period 202201 --out "$TMP/c.avro" >/dev/null 2>&1
"$BUILD/bench/regstream-gen" --profile random --seed 33 --persons 200 --months 6 \
  --start-period 202301 --out "$TMP/c2.avro" >/dev/null 2>&1
"$RS" run --input "$TMP/c.avro" --csv "$TMP/c.csv" --dead-letter "$TMP/c.jsonl" --quiet
"$RS" run --input "$TMP/c2.avro" --csv "$TMP/c2.csv" --dead-letter "$TMP/c2.jsonl" --quiet
pg_stop || bad "pg_ctl stop failed"
"$RS" export --brokers "$B" --topic rows --postgres "$PG_CONN" --table t_down --follow \
  >"$TMP/down.log" 2>&1 &
fpid=$!
pids+=("$fpid")
sleep 13
waits=$(grep -c 'warning: PostgreSQL unavailable: .*; trying again (waiting [0-9]* s so far)$' "$TMP/down.log")
if kill -0 "$fpid" 2>/dev/null && [ "$waits" -ge 2 ] && [ "$waits" -le 3 ]; then
  ok "database down at start: export --follow waits and says so every 10 s ($waits lines in 13 s)"
else
  bad "database down at start: alive $(kill -0 "$fpid" 2>/dev/null && echo yes || echo no), $waits lines: $(tail -2 "$TMP/down.log" | tr '\n' ' ')"
fi
pg_start || bad "pg_ctl start failed"
if caught_up 60 t_down rows "$rows_end" && pg_table_csv t_down | cmp -s "$TMP/rows.csv" -; then
  ok "after pg_ctl start it caught up exactly: $(grep 'is back' "$TMP/down.log" | tail -1)"
else
  bad "after pg_ctl start: not caught up: $(tail -2 "$TMP/down.log" | tr '\n' ' ')"
fi
# Stopped (fast), then crashed, each time with new rows arriving meanwhile.
step=0
for how in stop crash; do
  step=$((step + 1))
  if [ $how = stop ]; then pg_stop; else pg_kill; fi
  timeout 60 "$BUILD/tests/kafka_rows_producer" "$B" rows "$([ $step = 1 ] && echo "$TMP/c.csv" || echo "$TMP/c2.csv")" \
    >/dev/null 2>&1 || true
  sleep 2
  kill -0 "$fpid" 2>/dev/null && ok "database $how: export --follow is still running (waiting)" ||
    bad "database $how: export --follow exited: $(tail -2 "$TMP/down.log" | tr '\n' ' ')"
  pg_start || bad "pg_ctl start failed after $how"
  ends=$(end_offsets rows)
  timeout 60 "$RS" export --brokers "$B" --topic rows --csv "$TMP/rows_now.csv" --quiet 2>/dev/null
  if caught_up 60 t_down rows "$ends" && pg_table_csv t_down | cmp -s "$TMP/rows_now.csv" -; then
    ok "database $how mid-follow: caught up exactly after pg_ctl start (table equals export --csv, $(($(wc -l <"$TMP/rows_now.csv") - 1)) rows)"
  else
    bad "database $how mid-follow: [$(stored_offsets t_down rows | tr '\n' ' ')] want [$(echo $ends)]; $(pg_table_csv t_down | diff "$TMP/rows_now.csv" - | head -3 | tr '\n' ' ')"
  fi
done
kill -TERM "$fpid"
wait "$fpid" && ok "export --follow stopped by SIGTERM: exit 0" || bad "export --follow after SIGTERM: exit $?"
if grep -q 'S3cret\|password=' "$TMP"/*.log; then bad "a log holds a password"; fi
finish
