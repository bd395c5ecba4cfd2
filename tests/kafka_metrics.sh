#!/usr/bin/env bash
# tests/kafka_metrics.sh — --metrics-listen against a real local Kafka 4.3.1
# broker (deploy/kafka-local.sh on a free port, its own data dir, stopped on
# exit). Registered by tests/kafka.cmake as the ctest kafka_metrics (label
# kafka, RUN_SERIAL). On one generated stream with late and invalid records,
# file mode being the oracle, and /metrics read with the real Prometheus
# parser (tests/metrics_scrape.py, prometheus_client):
#   1. a port already in use: exit 1 at once, one line naming the address;
#   2. a Kafka-mode run scraped while it works: records read reach the input,
#      applied = the file mode's records less its rejects, rejects per reason
#      equal the file-mode dead letters and the dead-letter topic's reason
#      headers, consumer lag reaches 0 on every partition, build_info, rows,
#      rebalances, assigned partitions and snapshot figures present;
#   3. a bare port binds 127.0.0.1 only (ss; and no answer on another
#      address of the machine when it has one);
#   4. /healthz 200, /readyz 200 while assigned, 404 elsewhere; the broker
#      stopped: /readyz 503 with a reason within 30 s; started again: 200
#      within 90 s; SIGTERM: a clean exit 0;
#   5. file mode with --metrics-linger: the final figures (rejects per
#      reason against the dead-letter file, applied + rejected = read).
# Smaller input under sanitizers (REGSTREAM_SANITIZED=1).
# Needs Java >= 17 and Maven (deploy/install-deps.sh --kafka) and the
# Prometheus parser (python3-prometheus-client: deploy/install-deps.sh
# --test): without them the test FAILS, it never skips.
# Usage: tests/kafka_metrics.sh BUILD_DIR
set -uo pipefail

BUILD=$(cd "${1:?usage: kafka_metrics.sh BUILD_DIR}" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEST_NAME=kafka_metrics
NEEDED=("$BUILD/bench/regstream-gen")
pids=()
extra_cleanup() { for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done; }
# shellcheck source=tests/kafka_common.sh
. "$ROOT/tests/kafka_common.sh"

# A Python with the Prometheus parser: python3 on PATH, else Debian's own.
PY=
for candidate in python3 /usr/bin/python3; do
  if "$candidate" -c 'import prometheus_client.parser' 2>/dev/null; then
    PY=$candidate
    break
  fi
done
[ -n "$PY" ] || {
  bad "no python3 with prometheus_client: run deploy/install-deps.sh --test (python3-prometheus-client)"
  finish
}
SCRAPE=("$PY" "$ROOT/tests/metrics_scrape.py")

# free_port: a TCP port nothing listens on at 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# value FILE NAME [LABELS]: a sample's value in a dump ('' when absent).
value() { awk -v n="$2" -v l="${3:--}" '$1 == n && $2 == l {print $3}' "$1"; }
# status URL: "CODE first-line-of-body".
status() { "${SCRAPE[@]}" status "$1"; }

persons=20000
if [ -n "${REGSTREAM_SANITIZED:-}" ]; then persons=3000; fi
"$BUILD/bench/regstream-gen" --profile random --seed 31 --persons $persons --months 24 \
  --repeat-rate 0.02 --correction-rate 0.03 --late-rate 0.02 --invalid-rate 0.01 \
  --out "$TMP/in.avro" >"$TMP/gen.log" 2>&1 || { bad "regstream-gen failed"; finish; }
"$RS" run --input "$TMP/in.avro" --csv "$TMP/file.csv" --dead-letter "$TMP/file.jsonl" --quiet ||
  { bad "file mode failed"; finish; }
total=$(sed -n 's/^regstream-gen: \([0-9]*\) records (.*/\1/p' "$TMP/gen.log")
file_rejects=$(wc -l <"$TMP/file.jsonl")
sed -n 's/.*"reason":"\([a-z_]*\)".*/\1/p' "$TMP/file.jsonl" | sort | uniq -c |
  awk '{print $2, $1}' >"$TMP/file_reasons"
ok "file mode: $total records, $file_rejects rejects ($(tr '\n' ' ' <"$TMP/file_reasons"))"

# ---- 1. a port in use ----
busy=$(free_port)
"$PY" -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(60)' "$busy" &
holder=$!
pids+=("$holder")
sleep 0.5
out=$(timeout 30 "$RS" run --brokers "$B" --topic pm --group g_busy --output-topic out_busy \
  --dead-letter-topic dlq_busy --metrics-listen "$busy" 2>&1)
rc=$?
[ $rc = 1 ] && echo "$out" | grep -q "cannot listen on 127.0.0.1:$busy (--metrics-listen)" &&
  echo "$out" | grep -q 'already in use' && [ "$(echo "$out" | wc -l)" = 1 ] &&
  ok "a port in use: exit 1, one line: $out" || bad "a port in use: exit $rc: $out"
out=$(timeout 30 "$RS" run --input "$TMP/in.avro" --csv "$TMP/busy.csv" --dead-letter "$TMP/busy.jsonl" \
  --metrics-listen "127.0.0.1:$busy" 2>&1)
rc=$?
[ $rc = 1 ] && echo "$out" | grep -q 'already in use' && [ ! -e "$TMP/busy.csv" ] &&
  ok "file mode too: exit 1 before reading anything" || bad "file mode, a port in use: exit $rc: $out"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null

# ---- 2. a Kafka-mode run, scraped ----
timeout 60 "$RS" produce --brokers "$B" --topic pm --input "$TMP/in.avro" --partitions 4 --quiet ||
  { bad "produce failed"; finish; }
MP=$(free_port)
URL=http://127.0.0.1:$MP
"$RS" run --brokers "$B" --topic pm --group g_metrics --output-topic out_metrics \
  --dead-letter-topic dlq_metrics --threads 2 --flush-ms 200 --snapshot-dir "$TMP/snap" \
  --snapshot-interval 1s --metrics-listen "$MP" -X session.timeout.ms=6000 \
  -X heartbeat.interval.ms=1000 >"$TMP/run.log" 2>&1 &
run=$!
pids+=("$run")
# Until every record was taken and the lag of all 4 partitions is 0
# (librdkafka's consumer_lag: from the committed offsets, auto-committed
# every 5 s; statistics every second).
settled=0
parsed=0
for _ in $(seq 180); do
  sleep 1
  kill -0 "$run" 2>/dev/null || break
  "${SCRAPE[@]}" dump "$URL/metrics" >"$TMP/kafka.prom" 2>"$TMP/scrape.err" || continue
  parsed=$((parsed + 1))
  read_n=$(value "$TMP/kafka.prom" regstream_records_read_total)
  lags=$(awk '$1 == "regstream_consumer_lag"' "$TMP/kafka.prom")
  if [ "$read_n" = "$total" ] && [ "$(echo "$lags" | grep -c .)" = 4 ] &&
    [ "$(echo "$lags" | awk '$3 != 0' | grep -c .)" = 0 ]; then
    settled=1
    break
  fi
done
[ $parsed -gt 0 ] && ok "/metrics parsed by prometheus_client ($parsed scrapes)" ||
  bad "/metrics never parsed: $(cat "$TMP/scrape.err") $(tail -2 "$TMP/run.log" | tr '\n' ' ')"
[ $settled = 1 ] && ok "records read reached the input's $total and consumer lag is 0 on all 4 partitions: $(echo "$lags" | awk '{print $2 "=" $3}' | tr '\n' ' ')" ||
  bad "not settled: read ${read_n:-?} of $total, lag [$(echo "$lags" | awk '{print $2 "=" $3}' | tr '\n' ' ')]"
applied=$(value "$TMP/kafka.prom" regstream_records_applied_total)
[ "$applied" = $((total - file_rejects)) ] &&
  ok "records applied: $applied = $total records less the file mode's $file_rejects rejects" ||
  bad "records applied ${applied:-?}, expected $((total - file_rejects))"
awk '$1 == "regstream_records_rejected_total" && $3 != 0 {sub("reason=", "", $2); print $2, $3}' \
  "$TMP/kafka.prom" | sort >"$TMP/metric_reasons"
timeout 60 "$ROOT/deploy/kafka-tool.sh" console-consumer --bootstrap-server "$B" --topic dlq_metrics \
  --from-beginning --max-messages "$file_rejects" --timeout-ms 20000 --formatter-property print.headers=true \
  --formatter-property print.value=false 2>/dev/null |
  sed -n 's/.*reason:\([a-z_]*\).*/\1/p' | sort | uniq -c | awk '{print $2, $1}' >"$TMP/topic_reasons"
[ -s "$TMP/file_reasons" ] && cmp -s "$TMP/metric_reasons" "$TMP/file_reasons" &&
  cmp -s "$TMP/metric_reasons" "$TMP/topic_reasons" &&
  ok "rejects per reason equal the file-mode dead letters and the dead-letter topic: $(tr '\n' ' ' <"$TMP/metric_reasons")" ||
  bad "rejects per reason: metrics [$(tr '\n' ' ' <"$TMP/metric_reasons")] file [$(tr '\n' ' ' <"$TMP/file_reasons")] topic [$(tr '\n' ' ' <"$TMP/topic_reasons")]"
zeros=$(awk '$1 == "regstream_records_rejected_total" && $3 == 0' "$TMP/kafka.prom" | wc -l)
reasons=$(awk '$1 == "regstream_records_rejected_total"' "$TMP/kafka.prom" | wc -l)
[ "$reasons" = 7 ] && ok "every reason code is a series ($zeros of them 0)" ||
  bad "$reasons reason series, expected 7"
version=$(awk '$1 == "regstream_build_info" && $3 == 1 {print $2}' "$TMP/kafka.prom")
case "$version" in
  version=[0-9]*.[0-9]*) ok "build_info: $version" ;;
  *) bad "no regstream_build_info{version} 1: '$version'" ;;
esac
partials=$(value "$TMP/kafka.prom" regstream_rows_published_total kind=partial)
totals=$(value "$TMP/kafka.prom" regstream_rows_published_total kind=total)
rebalances=$(value "$TMP/kafka.prom" regstream_rebalances_total)
assigned=$(value "$TMP/kafka.prom" regstream_assigned_partitions)
[ "${partials:-0}" -gt 0 ] && [ "${totals:-0}" -gt 0 ] && [ "${rebalances:-0}" -ge 1 ] &&
  [ "$assigned" = 4 ] && [ "$(value "$TMP/kafka.prom" regstream_registry_failures_total)" = 0 ] &&
  [ "$(value "$TMP/kafka.prom" regstream_held_partitions)" = 0 ] &&
  ok "rows published: $partials partial, $totals total; $rebalances rebalance(s), $assigned partitions assigned, no registry failure" ||
  bad "rows $partials/$totals, rebalances $rebalances, assigned $assigned"
workers=$(awk '$1 == "regstream_worker_messages_total" {s += $3; n++} END {print n, s}' "$TMP/kafka.prom")
[ "$workers" = "2 $total" ] && ok "per worker: 2 series summing to $total" || bad "per worker: $workers"
snap_n=$(awk '$1 == "regstream_snapshot_age_seconds"' "$TMP/kafka.prom" | wc -l)
bytes_ok=$(awk '$1 == "regstream_snapshot_bytes" && $3 > 0' "$TMP/kafka.prom" | wc -l)
dur_n=$(awk '$1 == "regstream_snapshot_duration_seconds"' "$TMP/kafka.prom" | wc -l)
written=$(value "$TMP/kafka.prom" regstream_snapshots_written_total)
[ "$snap_n" = 4 ] && [ "$bytes_ok" = 4 ] && [ "$dur_n" = 4 ] && [ "${written:-0}" -ge 4 ] &&
  ok "snapshot age, bytes and duration for all 4 partitions ($written snapshots written)" ||
  bad "snapshot figures: age $snap_n, bytes $bytes_ok, duration $dur_n, written $written"
for family in records_read records_applied records_rejected rebalances rows_published \
  registry_failures snapshots_written; do
  grep -qx "TYPE regstream_$family counter" "$TMP/kafka.prom" || bad "regstream_${family}_total is not a counter"
done
for family in consumer_lag snapshot_age_seconds snapshot_bytes snapshot_duration_seconds \
  assigned_partitions; do
  grep -qx "TYPE regstream_$family gauge" "$TMP/kafka.prom" || bad "regstream_$family is not a gauge"
done

# ---- 3. a bare port binds 127.0.0.1 only ----
listening=$(ss -Hltn "sport = :$MP" | awk '{print $4}')
[ "$listening" = "127.0.0.1:$MP" ] && ok "a bare port listens on 127.0.0.1:$MP only" ||
  bad "a bare port listens on: $listening"
other=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9.]+$' | grep -v '^127\.' | head -1)
if [ -n "$other" ]; then
  got=$(status "http://$other:$MP/healthz")
  [ "${got%% *}" = 0 ] && ok "no answer on $other:$MP" || bad "answers on $other:$MP: $got"
else
  echo "info: no non-loopback IPv4 address here to try"
fi

# ---- 4. probes, a broker outage, SIGTERM ----
got=$(status "$URL/healthz")
[ "$got" = "200 ok" ] && ok "/healthz: $got" || bad "/healthz: $got"
got=$(status "$URL/readyz")
[ "$got" = "200 ok" ] && ok "/readyz while assigned: $got" || bad "/readyz while assigned: $got"
got=$(status "$URL/nothing")
[ "${got%% *}" = 404 ] && ok "/nothing: 404" || bad "/nothing: $got"
"$ROOT/deploy/kafka-local.sh" stop --port "$PORT" --keep >"$TMP/broker-stop.log" 2>&1
down=
for i in $(seq 60); do
  sleep 0.5
  got=$(status "$URL/readyz")
  [ "${got%% *}" = 503 ] && { down=$got; break; }
done
[ -n "$down" ] && ok "broker stopped: /readyz $down (after $((i / 2)) s)" ||
  bad "broker stopped: /readyz still $got after 30 s"
got=$(status "$URL/healthz")
[ "$got" = "200 ok" ] && ok "/healthz stays 200 during the outage (the loops are alive)" ||
  bad "/healthz during the outage: $got"
B2=$(timeout 120 "$ROOT/deploy/kafka-local.sh" start --port "$PORT" --dir "$TMP/kafka" 2>"$TMP/broker-restart.log")
[ "$B2" = "$B" ] || bad "broker restart failed: $(tail -2 "$TMP/broker-restart.log" | tr '\n' ' ')"
up=
for i in $(seq 90); do
  sleep 1
  got=$(status "$URL/readyz")
  [ "$got" = "200 ok" ] && { up=1; break; }
done
[ -n "$up" ] && ok "broker started again: /readyz 200 after $i s" ||
  bad "broker started again: /readyz still $got after 90 s"
kill -TERM "$run"
rc=
for _ in $(seq 90); do
  kill -0 "$run" 2>/dev/null || break
  sleep 1
done
wait "$run"
rc=$?
[ "$rc" = 0 ] && ok "SIGTERM: exit 0" || bad "SIGTERM: exit $rc: $(tail -3 "$TMP/run.log" | tr '\n' ' ')"
pids=()
consumed=$(sed -n 's/^regstream: \([0-9]*\) messages from.*/\1/p' "$TMP/run.log")
[ "$consumed" = "$total" ] && ok "the run's summary says $total messages, as /metrics did" ||
  bad "the run's summary says ${consumed:-?} messages, the input has $total"

# ---- 5. file mode: the final figures ----
FP=$(free_port)
"$RS" run --input "$TMP/in.avro" --csv "$TMP/linger.csv" --dead-letter "$TMP/linger.jsonl" \
  --threads 2 --snapshot-dir "$TMP/fsnap" --snapshot-interval 20000 --metrics-listen "$FP" \
  --metrics-linger 30 --quiet >"$TMP/linger.log" 2>&1 &
frun=$!
pids+=("$frun")
finished=
for _ in $(seq 300); do
  sleep 0.2
  got=$(status "http://127.0.0.1:$FP/readyz")
  case "$got" in "503 finished"*) finished=1 && break ;; esac
done
[ -n "$finished" ] && ok "file mode: /readyz says $got once the input is done" || bad "file mode: /readyz $got"
"${SCRAPE[@]}" dump "http://127.0.0.1:$FP/metrics" >"$TMP/file.prom" 2>"$TMP/scrape.err" ||
  bad "file mode: /metrics does not parse: $(cat "$TMP/scrape.err")"
kill -TERM "$frun" # ends the lingering
wait "$frun"
rc=$?
pids=()
[ $rc = 0 ] && cmp -s "$TMP/linger.csv" "$TMP/file.csv" && ok "file mode: SIGTERM ends the lingering, exit 0, the same CSV" ||
  bad "file mode with metrics: exit $rc: $(tail -2 "$TMP/linger.log" | tr '\n' ' ')"
sed -n 's/.*"reason":"\([a-z_]*\)".*/\1/p' "$TMP/linger.jsonl" | sort | uniq -c |
  awk '{print $2, $1}' >"$TMP/linger_reasons"
awk '$1 == "regstream_records_rejected_total" && $3 != 0 {sub("reason=", "", $2); print $2, $3}' \
  "$TMP/file.prom" | sort >"$TMP/file_metric_reasons"
[ -s "$TMP/linger_reasons" ] && cmp -s "$TMP/file_metric_reasons" "$TMP/linger_reasons" &&
  ok "file mode: rejects per reason equal its dead-letter file: $(tr '\n' ' ' <"$TMP/file_metric_reasons")" ||
  bad "file mode: rejects per reason [$(tr '\n' ' ' <"$TMP/file_metric_reasons")], dead-letter file [$(tr '\n' ' ' <"$TMP/linger_reasons")]"
f_read=$(value "$TMP/file.prom" regstream_records_read_total)
f_applied=$(value "$TMP/file.prom" regstream_records_applied_total)
[ "$f_read" = "$total" ] && [ "$f_applied" = $((total - file_rejects)) ] &&
  [ "$(value "$TMP/file.prom" regstream_input_files_done)" = 1 ] &&
  ok "file mode: $f_read read, $f_applied applied, 1 of $(value "$TMP/file.prom" regstream_input_files) file done" ||
  bad "file mode: read $f_read, applied $f_applied (expected $total, $((total - file_rejects)))"
cuts=$(value "$TMP/file.prom" regstream_snapshots_written_total)
[ "${cuts:-0}" -ge 1 ] && [ "$(value "$TMP/file.prom" regstream_snapshot_bytes)" -gt 0 ] &&
  [ -n "$(value "$TMP/file.prom" regstream_snapshot_age_seconds)" ] &&
  ok "file mode: $cuts snapshot cut(s), the last of $(value "$TMP/file.prom" regstream_snapshot_bytes) bytes" ||
  bad "file mode: snapshot figures missing (cuts ${cuts:-?})"

finish
