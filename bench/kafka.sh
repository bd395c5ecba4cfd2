#!/usr/bin/env bash
# kafka.sh — end-to-end benchmark of regstream's Kafka mode through a real
# local Kafka 4.3.1 broker on this machine (SPEC §7). It starts its own broker
# (deploy/kafka-local.sh, data in a temporary dir), generates the `national`
# profile (bench/regstream-gen, persons x months records), loads it with
# `regstream produce` into a 6-partition topic `pm`, then measures:
#
# Consume-only, from the pre-filled topic, every row --runs times (a fresh
# consumer group each time; the rows take turns, round after round), reported
# as median and best:
#   - bare librdkafka: bench-bare-consume (regstream's consumer settings, does
#     nothing with the messages), one thread on the consumer queue: with
#     rd_kafka_consumer_poll, with rd_kafka_consume_batch_queue, and the latter
#     linked with jemalloc (as regstream is; only when
#     bench-bare-consume-jemalloc was built); and with 2 threads read as
#     regstream run --threads 2 reads (--batch --threads 2: each partition's
#     queue forwarded to one of 2 queues, each drained in batches by a thread
#     of its own; jemalloc when built). The fastest bare row (median, from the
#     first message), of 1 or 2 threads, is the ceiling every row's share is
#     taken of;
#   - the Java consumer: Kafka 4.3.1's ConsumerPerformance (deploy/kafka-tool.sh
#     consumer-perf), nMsg.sec as "from start" (JVM start-up excluded),
#     fetch.nMsg.sec (rebalance excluded) as "from the first message": SPEC's
#     stretch goal is to beat it;
#   - regstream run --exit-at-eof with 1 and 2 worker threads: "from start"
#     is from process start, "from the first message" until the totals are
#     published and acknowledged, "all input applied" until the last message
#     was applied (no publishing tail);
#   - the same with --baseline BIN, when given;
#   - with --metrics: the regstream rows again with --metrics-listen on a
#     free loopback port, /metrics scraped every second while they run (the
#     overhead of metrics: same run, with and without).
# Below the table: regstream's best row as a multiple of the Java consumer and
# of the Kafka Streams figures SPEC §7 quotes (quoted, not measured here).
#
# Produce-while-consume, --runs times too (about 20 s each for 12 M records):
# `regstream run --threads 2 --progress-ms 50` reads a fresh 6-partition topic
# (live-r1, live-r2, ...), its stderr timestamped line by line
# ($EPOCHREALTIME); once its group holds the 6 partitions, `regstream produce`
# loads the same file into that topic. Reported (median, best): the
# producer's rate (records / its time) and the end-to-end rate (records /
# from the producer's start until the first progress line that counts all
# records applied, to within ~0.1 s), and how long after the producer
# finished the last record was applied.
#
# The section (with a "how to read this" note) is appended to
# bench/results/kafka.md (or --results FILE) only when the whole run worked.
#
#   bench/kafka.sh [--persons N] [--months N] [--runs N] [--port P]
#                  [--build DIR] [--baseline BIN] [--metrics] [--results FILE]
#
# --persons N: default 1000000 (x 12 months = 12 M records, so that the group
#   join and the final publish are amortised); --months N: default 12.
# --runs N: how often each consume-only row and the produce-while-consume
#   measurement run (default 3).
# --port P: the broker's port (and P+1 for its controller; default 19692);
#   refused when a broker of deploy/kafka-local.sh already runs there.
# --build DIR: the build to measure (default build/, configured and built
#   with CMake when its binaries are missing).
# --baseline BIN: also runs the regstream rows with another regstream binary
#   (e.g. one built from an earlier commit) in the same run, against the same
#   topic and ceiling, so that two versions compare on one noisy machine.
# Relative paths are taken from the directory the script is started in.
# Needs: bash >= 5 ($EPOCHREALTIME), awk, CMake + Ninja when building, Java
# and the Kafka jars (deploy/kafka-local.sh installs and fetches them).
set -euo pipefail

BENCH_NAME=kafka.sh
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

persons=1000000 months=12 runs=3 port=19692 baseline="" build=$root/build metrics=0
results=$root/bench/results/kafka.md
while [ $# -gt 0 ]; do
  case $1 in
  -h | --help) usage ;;
  --metrics)
    metrics=1
    shift
    continue
    ;;
  --persons | --months | --runs | --port | --build | --baseline | --results)
    [ $# -ge 2 ] || die "$1 needs a value (see bench/kafka.sh --help)"
    case $1 in
    --persons) persons=$2 ;;
    --months) months=$2 ;;
    --runs) runs=$2 ;;
    --port) port=$2 ;;
    --build) build=$(abspath "$2") ;;
    --baseline) baseline=$(abspath "$2") ;;
    --results) results=$(abspath "$2") ;;
    esac
    shift 2
    ;;
  *) die "unknown option $1 (see bench/kafka.sh --help)" ;;
  esac
done
for v in persons months runs port; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--$v needs a positive whole number, got '${!v}'"
done
[ -n "${EPOCHREALTIME:-}" ] || die "needs bash >= 5 (\$EPOCHREALTIME)"
if [ -n "$baseline" ] && [ ! -x "$baseline" ]; then
  die "--baseline $baseline is not an executable file"
fi
cd "$root"

if [ ! -x "$build/regstream" ] || [ ! -x "$build/bench/bench-bare-consume" ] ||
  [ ! -x "$build/bench/regstream-gen" ]; then
  note "building $build (Release)"
  { cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null &&
    cmake --build "$build" >/dev/null; } ||
    die "building $build failed: run cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build $build to see why"
fi
# What is measured, taken now (others may commit meanwhile): the commit the
# work tree is at, tracked sources with uncommitted changes older than the
# binary (maybe built in) and sources changed after it (not built in).
rev=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
provenance="built $(date -u -r "$build/regstream" +%Y-%m-%dT%H:%MZ); the work tree was at commit $rev"
in_build="" after_build=""
declare -A uncommitted=()
while IFS= read -r f; do uncommitted[$f]=1; done < <(git diff --name-only HEAD 2>/dev/null || true)
while IFS= read -r f; do
  case $f in bench/*) continue ;; *.c | *.h | *CMakeLists.txt | *.cmake) ;; *) continue ;; esac
  if [ "$f" -nt "$build/regstream" ]; then
    after_build+="${after_build:+, }$f"
  elif [ -n "${uncommitted[$f]:-}" ]; then
    in_build+="${in_build:+, }$f"
  fi
done < <(git ls-files 2>/dev/null || true)
[ -z "$in_build" ] || provenance+=", with uncommitted changes to $in_build"
[ -z "$after_build" ] || provenance+="; changed after the build (so not in it): $after_build"
jemalloc_bare=$build/bench/bench-bare-consume-jemalloc
[ -x "$jemalloc_bare" ] || jemalloc_bare=""
# the 2-thread bare row: with jemalloc when built, else without
bare2=${jemalloc_bare:-$build/bench/bench-bare-consume}
bare_usage=$("$bare2" 2>&1 || true)
[[ $bare_usage == *--threads* ]] ||
  die "$bare2 has no --threads (built before it was added): rebuild with cmake --build $build"

if deploy/kafka-local.sh status --port "$port" >/dev/null 2>&1; then
  die "a broker of deploy/kafka-local.sh already runs on port $port (someone else's?): choose another --port"
fi

tmp="" broker_up=0 live_pid="" reader_pid=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$live_pid" ]; then
    kill -TERM "$live_pid" 2>/dev/null || true
    wait "$live_pid" 2>/dev/null || true
  fi
  if [ -n "$reader_pid" ]; then
    kill -TERM "$reader_pid" 2>/dev/null || true
    wait "$reader_pid" 2>/dev/null || true
  fi
  if [ "$broker_up" = 1 ] && ! deploy/kafka-local.sh stop --port "$port" >/dev/null 2>&1; then
    note "could not stop the broker: run deploy/kafka-local.sh stop --port $port"
  fi
  if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
tmp=$(mktemp -d "${TMPDIR:-/tmp}/regstream-kafka-bench.XXXXXX")


broker_up=1 # from here on the trap stops whatever started on the port
B=$(deploy/kafka-local.sh start --port "$port" --dir "$tmp/kafka" 2>"$tmp/broker-start.log") ||
  fail_with "$tmp/broker-start.log" "the broker did not start on port $port (is the port, or $((port + 1)), taken? deploy/kafka-local.sh status --port $port)"
note "broker $B; generating national $persons x $months"
"$build/bench/regstream-gen" --profile national --seed 1 --persons "$persons" --months "$months" \
  --out "$tmp/in.avro" 2>"$tmp/gen.log" || fail_with "$tmp/gen.log" "regstream-gen failed"
"$build/regstream" produce --brokers "$B" --topic pm --input "$tmp/in.avro" --partitions 6 \
  2>"$tmp/produce.log" || fail_with "$tmp/produce.log" "loading the topic pm failed"
load=$(grep '^regstream produce:' "$tmp/produce.log" | tail -n 1)
records=$(sed -n 's/^regstream produce: \([0-9]*\) records.*/\1/p' <<<"$load")
[[ $records =~ ^[1-9][0-9]*$ ]] || fail_with "$tmp/produce.log" "cannot read the record count from regstream produce's summary"
note "$load"
if [ "$records" != $((persons * months)) ]; then
  note "warning: $records records loaded, not $persons x $months"
fi

# ---- consume-only rows

rows=(bare-poll bare-batch)
[ -n "$jemalloc_bare" ] && rows+=(bare-jemalloc)
rows+=(bare-2threads java rs1 rs2)
[ -n "$baseline" ] && rows+=(base1 base2)
[ "$metrics" = 0 ] || rows+=(rsm1 rsm2)
declare -A label=(
  [bare-poll]="bare librdkafka, rd_kafka_consumer_poll"
  [bare-batch]="bare librdkafka, rd_kafka_consume_batch_queue"
  [bare-jemalloc]="bare librdkafka, rd_kafka_consume_batch_queue, jemalloc"
  [bare-2threads]="bare librdkafka, rd_kafka_consume_batch_queue${jemalloc_bare:+, jemalloc}, 2 threads (per-partition queues forwarded, as regstream)"
  [java]="Java consumer (Kafka 4.3.1 ConsumerPerformance)"
  [rs1]="regstream run, 1 thread, consume-only"
  [rs2]="regstream run, 2 threads, consume-only"
  [base1]="baseline run, 1 thread, consume-only"
  [base2]="baseline run, 2 threads, consume-only"
  [rsm1]="regstream run, 1 thread, consume-only, --metrics-listen scraped every 1 s"
  [rsm2]="regstream run, 2 threads, consume-only, --metrics-listen scraped every 1 s"
)
declare -A from_start=() first=() applied=()
short_reads=()

# measure ROW RUN: one run of ROW; sets result to "from_start first applied
# count" (M records/s; "-" for a figure the row does not have). Not called in
# a subshell, so that a failure stops the script (and the trap cleans up).
measure() {
  local row=$1 run=$2 group="$1-r$2" log="$tmp/$1-r$2.log" bin="" line
  case $row in
  bare-*)
    local -a cmd=("$build/bench/bench-bare-consume")
    case $row in
    bare-jemalloc) cmd=("$jemalloc_bare") ;;
    bare-2threads) cmd=("$bare2") ;;
    esac
    [ "$row" = bare-poll ] || cmd+=(--batch)
    [ "$row" != bare-2threads ] || cmd+=(--threads 2)
    "${cmd[@]}" "$B" pm "$group" >"$log" 2>&1 ||
      fail_with "$log" "${cmd[*]} $B pm $group failed"
    line=$(sed -n 's/^bare: \([0-9]*\) messages in .*, \([0-9.]*\) M\/s (\([0-9.]*\) M\/s from the first message).*/\2 \3 - \1/p' "$log")
    ;;
  java)
    deploy/kafka-tool.sh consumer-perf --bootstrap-server "$B" --topic pm --num-records "$records" \
      --group "$group" --timeout 60000 >"$log" 2>&1 ||
      fail_with "$log" "deploy/kafka-tool.sh consumer-perf failed"
    # the CSV header names the columns: nMsg.sec, fetch.nMsg.sec, data.consumed.in.nMsg
    line=$(awk -F', *' '
      $1 == "start.time" { for (i = 1; i <= NF; i++) col[$i] = i; header = 1; next }
      header && NF > 5 { printf "%.2f %.2f - %d\n", $col["nMsg.sec"] / 1e6,
                         $col["fetch.nMsg.sec"] / 1e6, $col["data.consumed.in.nMsg"]; exit }' "$log")
    ;;
  rs* | base*)
    bin=$build/regstream
    case $row in base*) bin=$baseline ;; esac
    local -a extra=()
    local mport="" scraper=""
    if [[ $row == rsm* ]]; then
      mport=$(free_port)
      extra=(--metrics-listen "$mport")
      # scrape every second while the run lasts, as Prometheus would
      (while sleep 1; do curl -s -o /dev/null "http://127.0.0.1:$mport/metrics" || true; done) &
      scraper=$!
    fi
    local rc=0
    "$bin" run --brokers "$B" --topic pm --group "$group" --output-topic "out-$group" \
      --dead-letter-topic dlq --threads "${row: -1}" --exit-at-eof "${extra[@]}" >"$log" 2>&1 || rc=$?
    if [ -n "$scraper" ]; then
      kill "$scraper" 2>/dev/null || true
      wait "$scraper" 2>/dev/null || true
    fi
    [ "$rc" = 0 ] || fail_with "$log" "$bin run ($row, run $run) failed"
    line=$(awk '
      /^regstream: [0-9]+ messages from pm in / {
        n = $2; s = $0; sub(/.*s \(/, "", s); sub(/ M\/s\).*/, "", s)
        f = $0; sub(/ M\/s from the first message.*/, "", f); sub(/.*, /, "", f) }
      /^regstream: all input applied / { a = $0; sub(/.*message \(/, "", a); sub(/ M\/s\).*/, "", a) }
      END { if (n != "") printf "%s %s %s %s\n", s, f, (a == "" ? "-" : a), n }' "$log")
    ;;
  esac
  [ -n "$line" ] || fail_with "$log" "cannot read the rates of $row (run $run) from its output"
  result=$line
}

for ((run = 1; run <= runs; run++)); do
  for row in "${rows[@]}"; do
    measure "$row" "$run"
    read -r s f a n <<<"$result"
    note "run $run/$runs, $row: $s M/s from start, $f from the first message, $a all input applied ($n messages)"
    [ "$n" = "$records" ] || short_reads+=("${label[$row]}, run $run: read $n of $records messages")
    from_start[$row]+=" $s" first[$row]+=" $f" applied[$row]+=" $a"
  done
done

# med_best VALUES: "median best" of the numbers among VALUES ("- -" if none).
med_best() {
  tr ' ' '\n' <<<"$1" | awk '/^-?[0-9.]+$/' | sort -g | awk '
    { v[++n] = $1 }
    END { if (!n) { print "- -"; exit }
          m = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
          printf "%.2f %.2f\n", m, v[n] }'
}
cell() { if [ "$1" = - ]; then printf ''; else printf '%s (%s)' "$1" "$2"; fi; }

ceiling=0 ceiling_row=""
for row in "${rows[@]}"; do
  [[ $row == bare-* ]] || continue
  read -r m _ <<<"$(med_best "${first[$row]}")"
  if awk -v a="$m" -v b="$ceiling" 'BEGIN { exit !(a > b) }'; then ceiling=$m ceiling_row=$row; fi
done
awk -v c="$ceiling" 'BEGIN { exit !(c > 0) }' || die "no bare consumer row measured a rate: no ceiling"

section=$tmp/section.md
{
  echo
  echo "## $(date -u +%Y-%m-%dT%H:%MZ) — national ${persons} x ${months} = $records records, 6 partitions, broker on the same $(nproc) cores, $runs runs per row"
  echo
  echo "How to read this (bench/kafka.sh): every consume-only row reads the whole pre-filled topic with a"
  echo "fresh consumer group, $runs times (the rows take turns, round after round); a cell is the median"
  echo "and, in brackets, the best run, in M records/s. \"From start\" counts from the process's start, group"
  echo "join included (the Java consumer: from the consumer's start, JVM start-up excluded: its nMsg.sec);"
  echo "\"from the first message\" until the end (regstream: until its totals are published and"
  echo "acknowledged by the broker; the Java consumer: fetch.nMsg.sec, which leaves out the rebalance);"
  echo "\"all input applied\" is regstream's processing rate without that publishing tail. The bare rows"
  echo "are librdkafka with regstream's consumer settings doing nothing with the messages: with one"
  echo "thread on the consumer queue, and with 2 threads reading as regstream run --threads 2 does (each"
  echo "partition's queue forwarded to the queue of thread partition % 2, drained in batches of 4096),"
  echo "so that the 2-thread regstream row has a like-for-like transport ceiling too. The fastest bare"
  echo "row's median from the first message, of 1 or 2 threads, is the ceiling every share is taken of"
  echo "(here: ${label[$ceiling_row]}, $ceiling M/s); the jemalloc rows are like for like, as regstream"
  echo "is linked with jemalloc. The Java consumer is Kafka's own, with its default settings."
  echo "regstream: $build/regstream, $provenance."
  [ -z "$baseline" ] || echo "baseline: $baseline, built $(date -u -r "$baseline" +%Y-%m-%dT%H:%MZ)."
  echo
  echo "load (producer alone): $load"
  echo
  echo "| run | M records/s from start (median) | from the first message, median (best) | all input applied, median (best) | share of the ceiling (median, from the first message) |"
  echo "|---|---|---|---|---|"
  for row in "${rows[@]}"; do
    read -r sm _ <<<"$(med_best "${from_start[$row]}")"
    read -r fm fb <<<"$(med_best "${first[$row]}")"
    read -r am ab <<<"$(med_best "${applied[$row]}")"
    share=$(awk -v a="$fm" -v c="$ceiling" 'BEGIN { printf "%.0f %%", 100 * a / c }')
    echo "| ${label[$row]} | $sm | $(cell "$fm" "$fb") | $(cell "$am" "$ab") | $share |"
  done
  echo
  best_row=rs1
  read -r best _ <<<"$(med_best "${first[rs1]}")"
  read -r m _ <<<"$(med_best "${first[rs2]}")"
  if awk -v a="$m" -v b="$best" 'BEGIN { exit !(a > b) }'; then best_row=rs2 best=$m; fi
  read -r java_first _ <<<"$(med_best "${first[java]}")"
  read -r java_start _ <<<"$(med_best "${from_start[java]}")"
  read -r best_start _ <<<"$(med_best "${from_start[$best_row]}")"
  awk -v b="$best" -v bs="$best_start" -v j="$java_first" -v js="$java_start" -v r="${label[$best_row]}" 'BEGIN {
    printf "regstream'\''s best row (%s, %.2f M/s from the first message, median) is %.2f x the Java\n", r, b, b / j
    printf "consumer'\''s rate (%.2f M/s, median fetch.nMsg.sec; from start: %.2f x, %.2f against %.2f M/s),\n", j, bs / js, bs, js
    printf "%.1f x Kafka Streams 4.3.1 with one stream thread (about 0.22 M/s) and %.1f-%.1f x with two (about\n", b / 0.22, b / 0.31, b / 0.28
    printf "0.28-0.31 M/s): the Kafka Streams figures are the ones SPEC §7 quotes, not measured in this run.\n" }'
  if [ "$metrics" = 1 ]; then
    for t in 1 2; do
      read -r with _ <<<"$(med_best "${first[rsm$t]}")"
      read -r without _ <<<"$(med_best "${first[rs$t]}")"
      awk -v w="$with" -v wo="$without" -v t="$t" 'BEGIN {
        printf "Metrics, %d thread(s): %.2f M/s with --metrics-listen scraped every second, %.2f without (ratio %.3f, medians from the first message).\n", t, w, wo, w / wo }'
    done
  fi
  if [ ${#short_reads[@]} -gt 0 ]; then
    echo
    echo "Runs that did not read every message (their rates count what they read):"
    printf -- '- %s\n' "${short_reads[@]}"
  fi
} >"$section"

# ---- produce while consume, --runs times (about 20 s each)

# live_run RUN: a fresh topic live-rRUN read by regstream run (2 threads,
# stderr timestamped line by line) while regstream produce loads it; sets
# t_start, t_produced and t_end ("" when not every record was applied).
live_run() {
  local run=$1 topic="live-r$1" log="$tmp/live-r$1.log" fifo="$tmp/live-r$1.fifo" joined=0 i rc=0
  deploy/kafka-tool.sh topics --bootstrap-server "$B" --create --topic "$topic" --partitions 6 \
    --replication-factor 1 >"$tmp/$topic-create.log" 2>&1 ||
    fail_with "$tmp/$topic-create.log" "creating the topic $topic failed"
  mkfifo "$fifo"
  (
    trap - EXIT INT TERM
    while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done <"$fifo" >"$log"
  ) &
  reader_pid=$!
  "$build/regstream" run --brokers "$B" --topic "$topic" --group "$topic" --output-topic "out$topic" \
    --dead-letter-topic dlq --threads 2 --progress-ms 50 >/dev/null 2>"$fifo" &
  live_pid=$!
  # joined: the group's member holds all 6 partitions (checked for up to 30 s)
  sleep 2
  for ((i = 0; i < 15; i++)); do
    kill -0 "$live_pid" 2>/dev/null || fail_with "$log" "regstream run on $topic stopped before the producer started"
    if deploy/kafka-tool.sh consumer-groups --bootstrap-server "$B" --describe --group "$topic" --members \
      2>/dev/null | awk '$NF ~ /^[0-9]+$/ { p += $NF } END { exit !(p == 6) }'; then
      joined=1
      break
    fi
    sleep 1
  done
  [ "$joined" = 1 ] || note "warning: could not see the group $topic holding all 6 partitions; measuring anyway"
  t_start=$EPOCHREALTIME
  "$build/regstream" produce --brokers "$B" --topic "$topic" --input "$tmp/in.avro" --partitions 6 --quiet \
    2>"$tmp/$topic-produce.log" || fail_with "$tmp/$topic-produce.log" "regstream produce into $topic failed"
  t_produced=$EPOCHREALTIME
  # the end: the first "<time> regstream: N messages applied, R M/s" with N >= records
  t_end=""
  for ((i = 0; i < live_wait * 5; i++)); do
    t_end=$(awk -v n="$records" '$2 == "regstream:" && $4 == "messages" && $5 == "applied," && $3 + 0 >= n { print $1; exit }' "$log")
    [ -n "$t_end" ] && break
    kill -0 "$live_pid" 2>/dev/null || fail_with "$log" "regstream run on $topic stopped before applying every record"
    sleep 0.2
  done
  kill -TERM "$live_pid" 2>/dev/null || true
  wait "$live_pid" || rc=$?
  live_pid=""
  wait "$reader_pid" || true
  reader_pid=""
  if [ "$rc" != 0 ]; then
    note "warning: regstream run on $topic exited with $rc after SIGTERM; the end of its output:"
    tail -n 5 "$log" | sed 's/^/    /' >&2
  fi
  if [ -z "$t_end" ]; then
    local last
    last=$(awk '$4 == "messages" && $5 == "applied," { n = $3 } END { print n + 0 }' "$log")
    note "warning: regstream run applied $last of $records records of $topic in ${live_wait} s after the producer finished"
    live_missed+=("run $run: $last of $records records applied ${live_wait} s after the producer finished")
  fi
}

live_wait=$((records / 50000 + 120)) live_missed=()
declare -A live=([ps]="" [pr]="" [es]="" [er]="" [lag]="")
for ((run = 1; run <= runs; run++)); do
  live_run "$run"
  read -r ps pr <<<"$(awk -v n="$records" -v s="$t_start" -v p="$t_produced" 'BEGIN { printf "%.2f %.2f\n", p - s, n / (p - s) / 1e6 }')"
  live[ps]+=" $ps" live[pr]+=" $pr"
  if [ -n "$t_end" ]; then
    read -r es er lag <<<"$(awk -v n="$records" -v s="$t_start" -v p="$t_produced" -v e="$t_end" \
      'BEGIN { printf "%.2f %.2f %.2f\n", e - s, n / (e - s) / 1e6, e - p }')"
    live[es]+=" $es" live[er]+=" $er" live[lag]+=" $lag"
  else
    es=- er=- lag=-
  fi
  note "produce while consume, run $run/$runs: producer $ps s ($pr M/s), end to end $es s ($er M/s), the last record applied $lag s after the producer finished"
done
{
  echo
  echo "Produce while consume, $runs runs (a fresh topic each): regstream run --threads 2 --progress-ms 50"
  echo "reads a 6-partition topic while regstream produce loads the same $records records into it (the"
  echo "producer, regstream and the broker on the same cores). The end is the first progress line"
  echo "(every 50-100 ms) that counts every record applied; medians (best)."
  echo
  echo "| produce while consume | seconds (median) | M records/s, median (best) |"
  echo "|---|---|---|"
  read -r m _ <<<"$(med_best "${live[ps]}")"
  read -r rm rb <<<"$(med_best "${live[pr]}")"
  echo "| producer, from its start until it finished | $m | $(cell "$rm" "$rb") |"
  read -r m _ <<<"$(med_best "${live[es]}")"
  read -r rm rb <<<"$(med_best "${live[er]}")"
  echo "| end to end, from the producer's start until the last record was applied | $m | $(cell "$rm" "$rb") |"
  read -r m b <<<"$(med_best "${live[lag]}")"
  echo
  echo "The last record was applied $m s (median; at most $b s) after the producer had finished."
  if [ ${#live_missed[@]} -gt 0 ]; then
    echo "Runs in which not every record was applied (left out above):"
    printf -- '- %s\n' "${live_missed[@]}"
  fi
} >>"$section"

cat "$section" >>"$results"
cat "$section"
note "results appended to $results"
