#!/usr/bin/env bash
# replay.sh — the file-replay benchmark of SPEC §7 / issue 2: the `national`
# profile (default 6 M persons x 12 months = 72 M records) replayed from Avro
# container files with 1 and 2 worker threads; records/s, peak RSS and bytes
# of state per person, next to a peer measured in the same run (Avro C's own
# generic reader decoding the same records: bench-decode). Results are
# appended to bench/results/replay.md.
#
#   bench/replay.sh [--persons N] [--months N] [--codec null|deflate|...] [--runs K]
#                   [--build DIR] [--baseline BIN]
#
# --build DIR: the build to measure (default build/, built when missing).
# --baseline BIN: also runs another regstream binary (e.g. one built from an
#   earlier commit) on the same input, taking turns with the measured one
#   run by run, and fails unless its CSV and dead-letter file are
#   byte-identical to the measured one's (same thread count).
set -euo pipefail
cd "$(dirname "$0")/.."

persons=6000000 months=12 codec=null runs=3 order=month build=build baseline=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    --persons) persons=$2; shift 2 ;;
    --months) months=$2; shift 2 ;;
    --codec) codec=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --order) order=$2; shift 2 ;;
    *) echo "replay.sh: unknown option $1 (see the comment at the top)" >&2; exit 2 ;;
  esac
done

if [ -n "$baseline" ] && [ ! -x "$baseline" ]; then
  echo "replay.sh: --baseline $baseline is not an executable file" >&2
  exit 2
fi
if [ ! -x $build/regstream ] || [ ! -x $build/bench/regstream-gen ]; then
  echo "replay.sh: building $build/ (Release)" >&2
  cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build $build >/dev/null
fi

data=bench/data
mkdir -p "$data"
input="$data/national-${persons}x${months}-${order}-${codec}.avro"
if [ ! -s "$input" ]; then
  echo "replay.sh: generating $input" >&2
  $build/bench/regstream-gen --profile national --seed 1 --persons "$persons" --months "$months" \
    --order "$order" --codec "$codec" --out "$input"
fi
records=$((persons * months))
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

results=bench/results/replay.md
{
  echo
  echo "## $(date -u +%Y-%m-%dT%H:%MZ) — national ${persons} x ${months} (${order}-major, codec ${codec}), $(nproc) cores"
  echo
  echo "load average before (1/5/15 min): $(cut -d' ' -f1-3 /proc/loadavg) — a shared machine: compare ratios within one entry"
  echo
  if [ -n "$baseline" ]; then
    echo "baseline: \`$baseline\`, taking turns with the measured build run by run"
    echo
  fi
  echo "| run | threads | records/s (best of $runs) | peak RSS MiB | state bytes/person |"
  echo "|---|---|---|---|---|"
} >>"$results"

# one_run BIN THREADS TAG: a replay into $out/TAG.*; sets rate, rss, bpp.
one_run() {
  "$1" run --input "$input" --csv "$out/$3.csv" --dead-letter "$out/$3.jsonl" \
    --threads "$2" 2>"$out/$3.log"
  rate=$(sed -n 's/.*(\([0-9.]*\) M records\/s).*/\1/p' "$out/$3.log" | tail -1)
  rss=$(sed -n 's/.*peak RSS \([0-9]*\) MiB.*/\1/p' "$out/$3.log")
  bpp=$(sed -n 's/.*, \([0-9.]*\) bytes of state per person.*/\1/p' "$out/$3.log")
}
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (b > a) ? b : a }'; }

for threads in 1 2; do
  best=0 base_best=0
  for _ in $(seq "$runs"); do
    one_run "$build/regstream" "$threads" new
    best=$(max "$best" "$rate") new_rss=$rss new_bpp=$bpp
    if [ -n "$baseline" ]; then
      one_run "$baseline" "$threads" base
      base_best=$(max "$base_best" "$rate") base_rss=$rss base_bpp=$bpp
      if ! cmp -s "$out/new.csv" "$out/base.csv" || ! cmp -s "$out/new.jsonl" "$out/base.jsonl"; then
        echo "replay.sh: the baseline's CSV or dead letters differ from the measured build's ($threads threads)" >&2
        exit 1
      fi
    fi
  done
  echo "regstream $threads thread(s): ${best} M records/s, peak RSS ${new_rss} MiB, ${new_bpp} B/person" >&2
  echo "| regstream run | $threads | ${best} M | $new_rss | $new_bpp |" >>"$results"
  if [ -n "$baseline" ]; then
    echo "baseline $threads thread(s): ${base_best} M records/s, peak RSS ${base_rss} MiB (outputs identical)" >&2
    echo "| baseline run (CSV and dead letters identical) | $threads | ${base_best} M | $base_rss | $base_bpp |" >>"$results"
    echo "| measured / baseline | $threads | $(awk -v a="$best" -v b="$base_best" 'BEGIN { printf "%.3f", a / b }') | | |" >>"$results"
  fi
done

if [ -x $build/bench/bench-decode ]; then
  # Same run, same machine: Avro C's generic reader decoding the same kind of
  # records is the floor a plain Avro C consumer would have (decode only).
  peer=$($build/bench/bench-decode 2>/dev/null | awk '/^Avro C/ { print $(NF-1) }' | head -1)
  ours=$($build/bench/bench-decode 2>/dev/null | awk '/fast path/ { print $(NF-1) }' | head -1)
  if [ -n "$peer" ]; then
    echo "peer: Avro C generic reader ${peer} M records/s decode only, 1 thread (our decoder alone: ${ours} M)" >&2
    echo "| peer: Avro C generic decode only | 1 | ${peer} M | | |" >>"$results"
    echo "| (our decoder alone, fast path) | 1 | ${ours} M | | |" >>"$results"
  fi
fi
echo "replay.sh: results appended to $results ($records records per run)" >&2
