#!/usr/bin/env bash
# kafka.sh — end-to-end benchmark of the Kafka mode through a real local
# Kafka 4.3.1 broker on this machine (SPEC §7, issue 3): the `national`
# profile produced into a 6-partition topic, then, consume-only from the
# pre-filled topic:
#   - bare: librdkafka reading the topic with nothing else (bench-bare-consume,
#     same consumer settings): the transport ceiling, measured in this run;
#   - regstream run --exit-at-eof with 1 and 2 worker threads (decode,
#     validate, rules, partial rows, merge, totals published and acknowledged);
# and produce-while-consume: regstream consuming while `regstream produce`
# loads the topic. Rates count from process start (group join included), for
# regstream and bare alike. Results are appended to bench/results/kafka.md.
#
#   bench/kafka.sh [--persons N] [--months N] [--port P] [--build DIR] [--baseline BIN]
#
# --build DIR: the build to measure (default build/, built when missing).
#
# --baseline BIN also runs the consume-only rows with another regstream
# binary (e.g. one built from an earlier commit) in the same run, against
# the same topic and bare rate, so that two versions compare on one noisy
# machine.
set -euo pipefail
cd "$(dirname "$0")/.."

persons=500000 months=12 port=19692 baseline="" build=build
while [ $# -gt 0 ]; do
  case "$1" in
    --persons) persons=$2; shift 2 ;;
    --months) months=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "kafka.sh: unknown option $1 (see the comment at the top)" >&2; exit 2 ;;
  esac
done

if [ ! -x $build/regstream ] || [ ! -x $build/bench/bench-bare-consume ]; then
  cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build $build >/dev/null
fi
tmp=$(mktemp -d)
cleanup() { deploy/kafka-local.sh stop --port "$port" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
B=$(deploy/kafka-local.sh start --port "$port" --dir "$tmp/kafka")
records=$((persons * months))
echo "kafka.sh: broker $B; generating national $persons x $months" >&2
$build/bench/regstream-gen --profile national --seed 1 --persons "$persons" --months "$months" \
  --out "$tmp/in.avro" 2>/dev/null
produce_log=$($build/regstream produce --brokers "$B" --topic pm --input "$tmp/in.avro" --partitions 6 2>&1 | tail -1)
echo "kafka.sh: $produce_log" >&2

rate_of() { # log -> "M/s from start" "M/s from the first message", from regstream's summary
  sed -n 's/.*in [0-9.]* s (\([0-9.]*\) M\/s), \([0-9.]*\) M\/s from the first.*/\1 \2/p' "$1" | head -1
}
results=bench/results/kafka.md
{
  echo
  echo "## $(date -u +%Y-%m-%dT%H:%MZ) — national ${persons} x ${months} = $records records, 6 partitions, broker on the same $(nproc) cores"
  echo
  echo "load: $produce_log"
  echo
  echo "| run | M records/s from start | from the first message | share of bare (first message) |"
  echo "|---|---|---|---|"
} >>"$results"

# Two bare consumers (same settings as regstream's): rd_kafka_consumer_poll
# per message, and batches of 4096 from the consumer queue; the faster one
# is the ceiling the shares are taken of.
bare_rate=0
bare_rows=()
for mode in poll batch; do
  flag=""
  [ $mode = batch ] && flag=--batch
  bare=$($build/bench/bench-bare-consume $flag "$B" pm "bare$mode")
  echo "kafka.sh: bare ($mode): $bare" >&2
  start_rate=$(echo "$bare" | sed -n 's/.*, \([0-9.]*\) M\/s (.*/\1/p')
  rate=$(echo "$bare" | sed -n 's/.*(\([0-9.]*\) M\/s from the first message).*/\1/p')
  bare_rows+=("$mode|$start_rate|$rate")
  bare_rate=$(awk -v a="$rate" -v b="$bare_rate" 'BEGIN { print (a > b ? a : b) }')
done
for row in "${bare_rows[@]}"; do
  IFS='|' read -r mode start_rate rate <<<"$row"
  share=$(awk -v a="$rate" -v b="$bare_rate" 'BEGIN { printf "%.0f %%", 100 * a / b }')
  api="rd_kafka_consumer_poll"
  [ "$mode" = batch ] && api="rd_kafka_consume_batch_queue"
  echo "| bare librdkafka consume ($api) | $start_rate | $rate | $share |" >>"$results"
done

# consume_only BIN LABEL: consume-only rows with 1 and 2 worker threads.
consume_only() {
  local bin=$1 label=$2 threads from_start rate share
  for threads in 1 2; do
    "$bin" run --brokers "$B" --topic pm --group "$label$threads" --output-topic "out$label$threads" \
      --dead-letter-topic dlq --threads "$threads" --exit-at-eof 2>"$tmp/run$label$threads.log"
    read -r from_start rate <<<"$(rate_of "$tmp/run$label$threads.log")"
    share=$(awk -v a="$rate" -v b="$bare_rate" 'BEGIN { printf "%.0f %%", 100 * a / b }')
    echo "kafka.sh: $label $threads thread(s): $from_start M/s from start, $rate M/s from the first message ($share of bare)" >&2
    echo "| $label run, $threads thread(s), consume-only | $from_start | $rate | $share |" >>"$results"
  done
}
consume_only "$build/regstream" regstream
if [ -n "$baseline" ]; then consume_only "$baseline" baseline; fi

# Produce while consuming: a fresh topic loaded while regstream reads it.
deploy/kafka-tool.sh topics --bootstrap-server "$B" --create --topic live --partitions 6 \
  --replication-factor 1 >/dev/null 2>&1
$build/regstream run --brokers "$B" --topic live --group live --output-topic outlive \
  --dead-letter-topic dlq --threads 2 --flush-ms 1000 2>"$tmp/live.log" &
live=$!
sleep 1
start=$(date +%s.%N)
$build/regstream produce --brokers "$B" --topic live --input "$tmp/in.avro" --partitions 6 --quiet
for _ in $(seq 600); do
  done_n=$(sed -n 's/.*regstream: \([0-9.]*\) M messages.*/\1/p' "$tmp/live.log" | tail -1)
  sleep 0.2
  [ -n "$done_n" ] && awk -v d="$done_n" -v r="$records" 'BEGIN { exit !(d * 1e6 >= r) }' && break
done
kill -TERM $live 2>/dev/null; wait $live || true
end=$(date +%s.%N)
consumed=$(sed -n 's/^regstream: \([0-9]*\) messages from.*/\1/p' "$tmp/live.log")
live_rate=$(awk -v n="$consumed" -v s="$start" -v e="$end" 'BEGIN { printf "%.2f", n / (e - s) / 1e6 }')
echo "kafka.sh: produce-while-consume: $consumed messages, $live_rate M/s end to end" >&2
echo "| produce while consume (regstream produce + run, 2 threads), end to end | $live_rate | | |" >>"$results"
echo "kafka.sh: results appended to $results" >&2
