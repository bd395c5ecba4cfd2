#!/usr/bin/env bash
# replay.sh — the file-replay benchmark of SPEC §7 / issue 2: the `national`
# profile (default 6 M persons x 12 months = 72 M records) replayed from Avro
# container files with 1 and 2 worker threads; records/s, peak RSS and bytes
# of state per person, next to a peer measured in the same run (Avro C's own
# generic reader decoding the same records: bench-decode). Results are
# appended to bench/results/replay.md.
#
#   bench/replay.sh [--persons N] [--months N] [--codec null|deflate|...] [--runs K]
set -euo pipefail
cd "$(dirname "$0")/.."

persons=6000000 months=12 codec=null runs=3 order=month
while [ $# -gt 0 ]; do
  case "$1" in
    --persons) persons=$2; shift 2 ;;
    --months) months=$2; shift 2 ;;
    --codec) codec=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --order) order=$2; shift 2 ;;
    *) echo "replay.sh: unknown option $1 (see the comment at the top)" >&2; exit 2 ;;
  esac
done

build=build
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
  echo "| run | threads | records/s (best of $runs) | peak RSS MiB | state bytes/person |"
  echo "|---|---|---|---|---|"
} >>"$results"

for threads in 1 2; do
  best=0 rss=0 bpp=0
  for _ in $(seq "$runs"); do
    $build/regstream run --input "$input" --csv "$out/out.csv" --dead-letter "$out/dlq.jsonl" \
      --threads "$threads" 2>"$out/log"
    rate=$(sed -n 's/.*(\([0-9.]*\) M records\/s).*/\1/p' "$out/log" | tail -1)
    rss=$(sed -n 's/.*peak RSS \([0-9]*\) MiB.*/\1/p' "$out/log")
    bpp=$(sed -n 's/.*, \([0-9.]*\) bytes of state per person.*/\1/p' "$out/log")
    best=$(awk -v a="$best" -v b="$rate" 'BEGIN { print (b > a) ? b : a }')
  done
  echo "regstream $threads thread(s): ${best} M records/s, peak RSS ${rss} MiB, ${bpp} B/person" >&2
  echo "| regstream run | $threads | ${best} M | $rss | $bpp |" >>"$results"
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
