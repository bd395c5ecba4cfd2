#!/usr/bin/env bash
# kstreams.sh — regstream's Kafka mode against the streaming peer of SPEC §7,
# Kafka Streams 4.3.1 computing the same rollups (bench/peers/kstreams: a
# per-person RocksDB store, groupBy row + aggregate into a KTable,
# at-least-once), both reading the same pre-filled topic of a real local
# broker on this machine.
#
# It starts its own broker (deploy/kafka-local.sh, data in a temporary dir,
# stopped on exit), generates the `national` profile (bench/regstream-gen,
# clean input), loads it with `regstream produce` into the 6-partition topic
# `pm`, writes regstream's file-mode CSV of the same file, then runs, --runs
# times and taking turns, each consume-only from the start of `pm` to its end:
#   - the Kafka Streams peer with 1 and with 2 stream threads (a fresh
#     application.id each run, so a fresh group and fresh internal topics),
#     its CSV (read from its KTable once everything is aggregated) compared
#     byte for byte with regstream's file-mode CSV;
#   - regstream run --exit-at-eof with --threads 1 and 2 (a fresh group each
#     run), its output topic exported with `regstream export` and compared with
#     the same CSV.
# A row whose CSV differs fails the run. Each row reports records/s "from
# start" (regstream: from process start; the peer: from main() entry, JVM
# start-up of about 0.3 s excluded) and "from the first record" (until the
# last contribution is aggregated / the totals are published), and peak RSS
# (/usr/bin/time -f %M; for the peer the whole JVM: heap, RocksDB, threads).
# The section (table, regstream's rates as multiples of the peer's, the
# machine's load average before and after) is appended to
# bench/results/kstreams.md (or --results FILE) only when the whole run worked.
#
#   bench/kstreams.sh [--persons N] [--months N] [--runs N] [--port P]
#                     [--build DIR] [--results FILE]
#
# --persons N: default 1000000 (x --months 12 = 12 M records; at ~0.2 M/s the
#   peer takes about a minute per row). --runs N: default 1 (median and best
#   when more). --port P: the broker's port (P+1 its controller; default
#   19940); refused when a broker of deploy/kafka-local.sh already runs there.
# --build DIR: regstream's build (default build/, configured and built with
#   CMake when its binaries are missing). The peer's jar is built with Maven
#   (bench/peers/kstreams/target/kstreams-rollup.jar) when missing or older
#   than its sources. KSTREAMS_JAVA_OPTS: extra JVM options for the peer
#   (default none: the JVM's default heap).
# Relative paths are taken from the directory the script is started in.
# Needs: bash >= 5, awk, /usr/bin/time, CMake + Ninja when building, Java 17
# and Maven (deploy/kafka-local.sh installs them for the broker).
set -euo pipefail

BENCH_NAME=kstreams.sh
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

persons=1000000 months=12 runs=1 port=19940 build=$root/build
results=$root/bench/results/kstreams.md
while [ $# -gt 0 ]; do
  case $1 in
  -h | --help) usage ;;
  --persons | --months | --runs | --port | --build | --results)
    [ $# -ge 2 ] || die "$1 needs a value (see bench/kstreams.sh --help)"
    case $1 in
    --persons) persons=$2 ;;
    --months) months=$2 ;;
    --runs) runs=$2 ;;
    --port) port=$2 ;;
    --build) build=$(abspath "$2") ;;
    --results) results=$(abspath "$2") ;;
    esac
    shift 2
    ;;
  *) die "unknown option $1 (see bench/kstreams.sh --help)" ;;
  esac
done
for v in persons months runs port; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--$v needs a positive whole number, got '${!v}'"
done
[ -x /usr/bin/time ] || die "needs /usr/bin/time (apt-get install time)"
command -v java >/dev/null || die "needs Java 17 (deploy/install-deps.sh --kafka installs it)"
cd "$root"

if [ ! -x "$build/regstream" ] || [ ! -x "$build/bench/regstream-gen" ]; then
  note "building $build (Release)"
  { cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null &&
    cmake --build "$build" >/dev/null; } ||
    die "building $build failed: run cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build $build to see why"
fi
peer=bench/peers/kstreams
jar=$peer/target/kstreams-rollup.jar
if [ ! -s "$jar" ] || [ -n "$(find "$peer/pom.xml" "$peer/src" -newer "$jar" -type f | head -n 1)" ]; then
  command -v mvn >/dev/null || die "needs Maven to build $jar (deploy/install-deps.sh --kafka installs it)"
  note "building $jar (Maven)"
  (cd "$peer" && mvn -q -B package >/dev/null) ||
    die "building the peer failed: run (cd $peer && mvn -B package) to see why"
fi
rev=$(git rev-parse --short HEAD 2>/dev/null || echo "?")

if deploy/kafka-local.sh status --port "$port" >/dev/null 2>&1; then
  die "a broker of deploy/kafka-local.sh already runs on port $port (someone else's?): choose another --port"
fi

tmp="" broker_up=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$broker_up" = 1 ] && ! deploy/kafka-local.sh stop --port "$port" >/dev/null 2>&1; then
    note "could not stop the broker: run deploy/kafka-local.sh stop --port $port"
  fi
  if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
tmp=$(mktemp -d "${TMPDIR:-/tmp}/regstream-kstreams-bench.XXXXXX")


load_before=$(cut -d' ' -f1-3 /proc/loadavg)
broker_up=1 # from here on the trap stops whatever started on the port
B=$(deploy/kafka-local.sh start --port "$port" --dir "$tmp/kafka" 2>"$tmp/broker-start.log") ||
  fail_with "$tmp/broker-start.log" "the broker did not start on port $port (is the port, or $((port + 1)), taken? deploy/kafka-local.sh status --port $port)"
note "broker $B; generating national $persons x $months"
"$build/bench/regstream-gen" --profile national --seed 1 --persons "$persons" --months "$months" \
  --out "$tmp/in.avro" 2>"$tmp/gen.log" || fail_with "$tmp/gen.log" "regstream-gen failed"
"$build/regstream" run --input "$tmp/in.avro" --csv "$tmp/file.csv" --dead-letter "$tmp/file-dl.jsonl" \
  2>"$tmp/file.log" || fail_with "$tmp/file.log" "regstream's file-mode run failed"
"$build/regstream" produce --brokers "$B" --topic pm --input "$tmp/in.avro" --partitions 6 \
  2>"$tmp/produce.log" || fail_with "$tmp/produce.log" "loading the topic pm failed"
rm -f "$tmp/in.avro"
load=$(grep '^regstream produce:' "$tmp/produce.log" | tail -n 1)
records=$(sed -n 's/^regstream produce: \([0-9]*\) records.*/\1/p' <<<"$load")
[[ $records =~ ^[1-9][0-9]*$ ]] || fail_with "$tmp/produce.log" "cannot read the record count from regstream produce's summary"
note "$load"
csv_rows=$(($(wc -l <"$tmp/file.csv") - 1))

rows=(ks1 ks2 rs1 rs2)
declare -A label=(
  [ks1]="Kafka Streams 4.3.1, 1 stream thread"
  [ks2]="Kafka Streams 4.3.1, 2 stream threads"
  [rs1]="regstream run, 1 thread"
  [rs2]="regstream run, 2 threads"
)
declare -A from_start=() first=() rss=()

# measure ROW RUN: sets result="FROM_START FROM_FIRST RECORDS PEAK_RSS_KB"
measure() {
  local row=$1 run=$2 log="$tmp/$1-$2.log" csv="$tmp/$1-$2.csv" line peak
  local id="ks-$$-$run-$row" threads=${row: -1}
  case $row in
  ks*)
    # shellcheck disable=SC2086 # KSTREAMS_JAVA_OPTS is a list of options
    /usr/bin/time -f '%M' -o "$tmp/$row-$run.rss" java ${KSTREAMS_JAVA_OPTS:-} -jar "$jar" \
      --bootstrap "$B" --topic pm --threads "$threads" --application-id "$id" \
      --output-topic "out-$id" --state-dir "$tmp/state-$id" --csv "$csv" \
      --schema schemas/person_month.avsc >"$log" 2>&1 ||
      fail_with "$log" "the Kafka Streams peer ($row, run $run) failed (its options: the top comment of $peer/src/main/java/regstream/peer/KStreamsRollup.java)"
    line=$(awk '
      /^kstreams: [0-9]+ records from pm in / {
        s = $0; sub(/.*s \(/, "", s); sub(/ M\/s\).*/, "", s)
        f = $0; sub(/ M\/s from the first record.*/, "", f); sub(/.*, /, "", f)
        printf "%s %s %s\n", s, f, $2 }' "$log")
    ;;
  rs*)
    /usr/bin/time -f '%M' -o "$tmp/$row-$run.rss" "$build/regstream" run --brokers "$B" \
      --topic pm --group "$id" --output-topic "out-$id" --dead-letter-topic dlq \
      --threads "$threads" --exit-at-eof >"$log" 2>&1 ||
      fail_with "$log" "regstream run ($row, run $run) failed"
    line=$(awk '
      /^regstream: [0-9]+ messages from pm in / {
        s = $0; sub(/.*s \(/, "", s); sub(/ M\/s\).*/, "", s)
        f = $0; sub(/ M\/s from the first message.*/, "", f); sub(/.*, /, "", f)
        printf "%s %s %s\n", s, f, $2 }' "$log")
    "$build/regstream" export --brokers "$B" --topic "out-$id" --csv "$csv" >"$log.export" 2>&1 ||
      fail_with "$log.export" "regstream export of out-$id ($row, run $run) failed"
    ;;
  esac
  [ -n "$line" ] || fail_with "$log" "cannot read the rates of $row (run $run) from its output"
  if ! cmp -s "$csv" "$tmp/file.csv"; then
    cp "$csv" "${TMPDIR:-/tmp}/kstreams-$row-$run.csv"
    cp "$tmp/file.csv" "${TMPDIR:-/tmp}/kstreams-file-mode.csv"
    die "${label[$row]} (run $run): its CSV differs from regstream's file-mode CSV; both kept: diff ${TMPDIR:-/tmp}/kstreams-file-mode.csv ${TMPDIR:-/tmp}/kstreams-$row-$run.csv"
  fi
  peak=$(tail -n 1 "$tmp/$row-$run.rss")
  [[ $peak =~ ^[0-9]+$ ]] || fail_with "$tmp/$row-$run.rss" "cannot read the peak RSS of $row (run $run)"
  result="$line $peak"
}

for ((run = 1; run <= runs; run++)); do
  for row in "${rows[@]}"; do
    measure "$row" "$run"
    read -r s f n kb <<<"$result"
    [ "$n" = "$records" ] || die "${label[$row]}, run $run: read $n of $records records"
    note "run $run/$runs, $row: $s M/s from start, $f from the first record, peak RSS $((kb / 1024)) MiB, CSV equal"
    from_start[$row]+=" $s" first[$row]+=" $f" rss[$row]+=" $kb"
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# med_best VALUES: "median best" of the numbers among VALUES (best = largest).
med_best() {
  tr ' ' '\n' <<<"$1" | awk '/^[0-9.]+$/' | sort -g | awk '
    { v[++n] = $1 }
    END { m = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
          printf "%.6f %.6f\n", m, v[n] }'
}

java_v=$(java -version 2>&1 | head -n 1)
{
  echo
  echo "## $(date -u +%Y-%m-%dT%H:%MZ): national $persons x $months = $records records, 6 partitions, $runs run(s)"
  echo
  echo "bench/kstreams.sh --persons $persons --months $months --runs $runs (work tree at $rev; regstream"
  echo "from $build, built $(date -u -r "$build/regstream" +%Y-%m-%dT%H:%MZ); the peer bench/peers/kstreams"
  echo "on $java_v, JVM options '${KSTREAMS_JAVA_OPTS:-}', its defaults: persons store uncached, 10 MB record"
  echo "cache for the KTable, commit.interval.ms 30000). Broker and both processors on the same"
  echo "$(nproc) cores; load average $load_before before, $load_after after. Every row's CSV (the peer's"
  echo "KTable; regstream's output topic, exported) equals regstream's file-mode CSV byte for byte ($csv_rows rows)."
  echo
  if [ "$runs" -gt 1 ]; then
    echo "| row | M records/s from start (median, best) | from the first record (median, best) | peak RSS MiB (median, max) |"
    echo "|---|---|---|---|"
  else
    echo "| row | M records/s from start | from the first record | peak RSS MiB |"
    echo "|---|---|---|---|"
  fi
  for row in "${rows[@]}"; do
    read -r sm sb <<<"$(med_best "${from_start[$row]}")"
    read -r fm fb <<<"$(med_best "${first[$row]}")"
    read -r rm rb <<<"$(med_best "${rss[$row]}")"
    if [ "$runs" -gt 1 ]; then
      printf '| %s | %.3f, %.3f | %.3f, %.3f | %d, %d |\n' "${label[$row]}" "$sm" "$sb" "$fm" "$fb" \
        $((${rm%.*} / 1024)) $((${rb%.*} / 1024))
    else
      printf '| %s | %.3f | %.3f | %d |\n' "${label[$row]}" "$sm" "$fm" $((${rm%.*} / 1024))
    fi
  done
  echo
  # multiples of the medians: regstream's faster row over each peer row
  read -r ks1s _ <<<"$(med_best "${from_start[ks1]}")"
  read -r ks2s _ <<<"$(med_best "${from_start[ks2]}")"
  read -r ks1f _ <<<"$(med_best "${first[ks1]}")"
  read -r ks2f _ <<<"$(med_best "${first[ks2]}")"
  read -r rs1s _ <<<"$(med_best "${from_start[rs1]}")"
  read -r rs2s _ <<<"$(med_best "${from_start[rs2]}")"
  read -r rs1f _ <<<"$(med_best "${first[rs1]}")"
  read -r rs2f _ <<<"$(med_best "${first[rs2]}")"
  awk -v a="$ks1s" -v b="$ks2s" -v c="$ks1f" -v d="$ks2f" \
    -v r1s="$rs1s" -v r2s="$rs2s" -v r1f="$rs1f" -v r2f="$rs2f" 'BEGIN {
    printf "regstream as a multiple of Kafka Streams (SPEC §7 goal: >= 4x), medians:\n"
    printf "from start: 1 thread vs 1 stream thread %.1fx, 2 threads vs 2 stream threads %.1fx, ", r1s / a, r2s / b
    bs = (r1s > r2s ? r1s : r2s); bp = (a > b ? a : b)
    printf "best regstream row vs best peer row %.1fx;\n", bs / bp
    printf "from the first record: 1 vs 1 %.1fx, 2 vs 2 %.1fx, ", r1f / c, r2f / d
    bf = (r1f > r2f ? r1f : r2f); bq = (c > d ? c : d)
    printf "best vs best %.1fx.\n", bf / bq }'
  echo
  echo "How to read this: \"from start\" is from process start for regstream and from main() entry"
  echo "for the peer (JVM start-up excluded); both include joining the group and, for the peer,"
  echo "creating its repartition and changelog topics. \"From the first record\" ends, for regstream,"
  echo "when the totals are published and acknowledged, for the peer when the last contribution is"
  echo "aggregated into its KTable (its output topic may still be catching up from the record cache),"
  echo "which favours the peer slightly. Peak RSS is /usr/bin/time's maximum resident set of the"
  echo "whole process (for the peer: the JVM with its default heap sizing, RocksDB and buffers). With"
  echo "2 cores shared by the broker, the processor and anything else running, single runs are"
  echo "noisy: compare the load averages above, and prefer --runs 3."
} >>"$results"
note "appended the results to $results"
