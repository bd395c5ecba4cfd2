#!/usr/bin/env bash
# replay.sh — the file-replay benchmark of SPEC §7 / issues 2 and 13: the
# `national` profile (default 6 M persons x 12 months = 72 M records) replayed
# from Avro container files with 1 and 2 worker threads, and again with a CPU
# hog running beside regstream; records/s, ns/record, peak RSS and bytes of
# state per person. In the same run: the floor of issue 13 (bench-floor on
# the same input: the decoder alone, and state updates over the same persons
# in input order with prefetch, one thread each), a peer (Avro C's own
# generic reader decoding the same kind of records: bench-decode), and a
# summary of issue 13's ratios next to their targets. One entry is appended
# to bench/results/replay.md when everything has run (nothing on a failure).
#
#   bench/replay.sh [--persons N] [--months N] [--order month|person]
#                   [--codec null|deflate|...] [--runs K] [--build DIR]
#                   [--baseline BIN] [--history] [--history-months N]
#
# --persons N, --months N, --order, --codec: the input regstream-gen writes
#   (in bench/data/, kept for later runs); defaults 6000000, 12, month, null.
# --runs K: runs per row (best of K; default 3), CPU hog rows included.
# --build DIR: the build to measure (default build/, built when regstream,
#   regstream-gen or bench-floor is missing).
# --baseline BIN: also runs another regstream binary (e.g. one built from an
#   earlier commit) on the same input, taking turns with the measured one
#   run by run, and fails unless its CSV and dead-letter file are
#   byte-identical to the measured one's (same thread count). The CPU hog
#   rows, the floor and the history run the measured build only.
# --history: also the long history of issue 13: N persons x 240 months of
#   the same profile (about 31 GB at 6 M persons), generated into bench/data/
#   when missing (refused when the file system has too little space free),
#   replayed once with 2 threads; its rate and peak RSS against the 2-thread
#   row of the national year in the same entry.
# --history-months N: the history's months (default 240; implies --history).
#
# The CPU hog is one unpinned busy loop, `bash -c 'while :; do :; done'`,
# started before each of the hog rows' runs and killed after it.
set -euo pipefail
cd "$(dirname "$0")/.."

persons=6000000 months=12 codec=null runs=3 order=month build=build baseline=""
history=0 history_months=240
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    --persons) persons=$2; shift 2 ;;
    --months) months=$2; shift 2 ;;
    --codec) codec=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --order) order=$2; shift 2 ;;
    --history) history=1; shift ;;
    --history-months) history=1 history_months=$2; shift 2 ;;
    *) echo "replay.sh: unknown option $1 (see the comment at the top)" >&2; exit 2 ;;
  esac
done

die() {
  echo "replay.sh: $*" >&2
  exit 1
}
gib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 2^30 }'; }
if [ -n "$baseline" ] && [ ! -x "$baseline" ]; then
  echo "replay.sh: --baseline $baseline is not an executable file" >&2
  exit 2
fi
if [ ! -x $build/regstream ] || [ ! -x $build/bench/regstream-gen ] ||
  [ ! -x $build/bench/bench-floor ]; then
  echo "replay.sh: building $build/ (Release)" >&2
  cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build $build >/dev/null
fi

data=bench/data
mkdir -p "$data"
# generate FILE MONTHS: the national profile's records into FILE (through a
# .partial file, so an interrupted generation is never taken for an input).
generate() {
  rm -f "$1.partial"
  $build/bench/regstream-gen --profile national --seed 1 --persons "$persons" --months "$2" \
    --order "$order" --codec "$codec" --out "$1.partial"
  mv "$1.partial" "$1"
}
input="$data/national-${persons}x${months}-${order}-${codec}.avro"
if [ ! -s "$input" ]; then
  echo "replay.sh: generating $input" >&2
  generate "$input" "$months"
fi
records=$((persons * months))

if [ "$history" = 1 ]; then
  hinput="$data/national-${persons}x${history_months}-${order}-${codec}.avro"
  if [ ! -s "$hinput" ]; then
    rm -f "$hinput.partial"
    # its size, estimated from the year's file, with 5 % and 1 GiB to spare
    need=$(($(stat -c %s "$input") / months * history_months))
    want=$((need + need / 20 + (1 << 30)))
    avail=$(df -P -B1 "$data" | awk 'NR == 2 { print $4 }')
    if [ "$avail" -lt "$want" ]; then
      die "--history: $hinput would take about $(gib "$need") GiB and $data/ has $(gib "$avail") GiB free (wanted $(gib "$want") GiB, with room to spare); free some space, or lower --history-months or --persons"
    fi
    echo "replay.sh: generating $hinput (about $(gib "$need") GiB, $((persons * history_months)) records; $(gib "$avail") GiB free)" >&2
    generate "$hinput" "$history_months"
  fi
fi

out=$(mktemp -d)
hog=""
trap '[ -z "$hog" ] || kill "$hog" 2>/dev/null; rm -rf "$out"' EXIT
trap 'exit 130' INT # the EXIT trap also on a signal: the hog does not outlive the bench
trap 'exit 143' TERM
entry=$out/entry.md

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
  echo "ns/record of a regstream row: the seconds on its summary line ÷ its records (best run), so"
  echo "startup (opening the input, threads) and writing the CSV are in it. CPU hog: one unpinned"
  echo "\`bash -c 'while :; do :; done'\` started before each run of a hog row and killed after it."
  echo "Floor: \`bench-floor\` on the same input, one thread, best of 3 passes each: the decoder"
  echo "alone (the OCF reader and pm_decode), and state updates of the same records' persons in"
  echo "input order in the person map's own tables (16-byte slots for ids of 32 bits, 20-byte"
  echo "for wider ones), sized like regstream's, prefetching as far ahead as regstream does."
  echo
  echo "| run | threads | records/s (best of $runs) | ns/record | peak RSS MiB | state bytes/person |"
  echo "|---|---|---|---|---|---|"
} >"$entry"

# one_run BIN THREADS TAG [INPUT]: a replay into $out/TAG.*; sets rate (M
# records/s), ns (per record), rss, bpp. With REPLAY_SHOW_LOG=1 its log is
# shown on stderr as it goes.
one_run() {
  local log=$out/$3.log in=${4:-$input}
  local cmd=("$1" run --input "$in" --csv "$out/$3.csv" --dead-letter "$out/$3.jsonl" --threads "$2")
  if [ "${REPLAY_SHOW_LOG:-0}" = 1 ]; then
    "${cmd[@]}" 2>&1 | tee "$log" >&2 || die "$1 run --input $in --threads $2 failed (its log: above)"
  elif ! "${cmd[@]}" 2>"$log"; then
    tail -n 15 "$log" | sed 's/^/    /' >&2
    die "$1 run --input $in --threads $2 failed (the end of its log: above)"
  fi
  rate=$(sed -n 's/.*(\([0-9.]*\) M records\/s).*/\1/p' "$log" | tail -1)
  ns=$(sed -n 's/.* \([0-9]*\) records from [0-9]* file(s) in \([0-9.]*\) s .*/\1 \2/p' "$log" |
    awk '{ printf "%.1f", $2 * 1e9 / $1 }')
  rss=$(sed -n 's/.*peak RSS \([0-9]*\) MiB.*/\1/p' "$log")
  bpp=$(sed -n 's/.*, \([0-9.]*\) bytes of state per person.*/\1/p' "$log")
  [ -n "$rate" ] && [ -n "$ns" ] && [ -n "$rss" ] && [ -n "$bpp" ] ||
    die "no summary line in the log of $1 run --threads $2 ($log)"
}
# better NEW BEST: true when NEW > BEST.
better() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
ratio() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { printf f, a / b }'; }
hog_start() {
  bash -c 'while :; do :; done' &
  hog=$!
}
hog_stop() {
  kill "$hog"
  wait "$hog" 2>/dev/null || true
  hog=""
}

declare -A best_rate best_ns best_rss best_bpp
# measure THREADS [hog]: the rows of regstream (and the baseline) with THREADS.
measure() {
  local threads=$1 with=${2:-} key=$1${2:+-hog} best=0 base_best=0 b_ns b_rss b_bpp
  local base_ns base_rss base_bpp
  for _ in $(seq "$runs"); do
    [ -z "$with" ] || hog_start
    one_run "$build/regstream" "$threads" new
    [ -z "$with" ] || hog_stop
    if better "$rate" "$best"; then best=$rate b_ns=$ns b_rss=$rss b_bpp=$bpp; fi
    if [ -n "$baseline" ] && [ -z "$with" ]; then
      one_run "$baseline" "$threads" base
      if better "$rate" "$base_best"; then base_best=$rate base_ns=$ns base_rss=$rss base_bpp=$bpp; fi
      if ! cmp -s "$out/new.csv" "$out/base.csv" || ! cmp -s "$out/new.jsonl" "$out/base.jsonl"; then
        die "the baseline's CSV or dead letters differ from the measured build's ($threads threads)"
      fi
    fi
  done
  best_rate[$key]=$best best_ns[$key]=$b_ns best_rss[$key]=$b_rss best_bpp[$key]=$b_bpp
  local label="regstream run${with:+, CPU hog beside}"
  echo "$label, $threads thread(s): ${best} M records/s, ${b_ns} ns/record, peak RSS ${b_rss} MiB, ${b_bpp} B/person" >&2
  echo "| $label | $threads | ${best} M | $b_ns | $b_rss | $b_bpp |" >>"$entry"
  if [ -n "$baseline" ] && [ -z "$with" ]; then
    echo "baseline $threads thread(s): ${base_best} M records/s, peak RSS ${base_rss} MiB (outputs identical)" >&2
    echo "| baseline run (CSV and dead letters identical) | $threads | ${base_best} M | $base_ns | $base_rss | $base_bpp |" >>"$entry"
    echo "| measured / baseline | $threads | $(ratio "$best" "$base_best" %.3f) | | | |" >>"$entry"
  fi
}

cat "$input" >/dev/null # in the page cache before the first run
for threads in 1 2; do measure "$threads"; done
for threads in 1 2; do measure "$threads" hog; done

# The floor: bench-floor on the same input.
$build/bench/bench-floor "$input" >"$out/floor.txt" 2>"$out/floor.log" ||
  { cat "$out/floor.log" >&2; die "bench-floor failed"; }
floor_value() { awk -v k="$1" '$1 == k { print $2 }' "$out/floor.txt"; }
decode_ns=$(floor_value decode_ns_per_record) state_ns=$(floor_value state_ns_per_record)
floor_ns=$(floor_value floor_ns_per_record)
echo "floor: decode ${decode_ns} + state ${state_ns} = ${floor_ns} ns/record ($(floor_value persons) persons, $(floor_value records) records)" >&2
{
  echo "| floor: decoder alone (bench-floor) | 1 | $(ratio 1000 "$decode_ns" %.1f) M | $decode_ns | | |"
  echo "| floor: state updates, input order, prefetch $(floor_value prefetch_ahead) ahead (bench-floor) | 1 | $(ratio 1000 "$state_ns" %.1f) M | $state_ns | | $(floor_value table_bytes_per_person) |"
  echo "| floor: decode + state | 1 | $(ratio 1000 "$floor_ns" %.1f) M | $floor_ns | | |"
} >>"$entry"

# Same run, same machine: Avro C's generic reader decoding the same kind of
# records is the floor a plain Avro C consumer would have (decode only).
peer="" peer_ns=""
if [ -x $build/bench/bench-decode ]; then
  $build/bench/bench-decode >"$out/decode.txt" 2>/dev/null || die "bench-decode failed"
  peer=$(awk '/^Avro C/ { print $(NF-1) }' "$out/decode.txt" | head -1)
  peer_ns=$(awk '/^Avro C/ { print $(NF-2) }' "$out/decode.txt" | head -1)
  ours=$(awk '/fast path/ { print $(NF-1) }' "$out/decode.txt" | head -1)
  ours_ns=$(awk '/fast path/ { print $(NF-2) }' "$out/decode.txt" | head -1)
  if [ -n "$peer" ]; then
    echo "peer: Avro C generic reader ${peer} M records/s decode only, 1 thread (our decoder alone: ${ours} M)" >&2
    echo "| peer: Avro C generic decode only (bench-decode, in memory) | 1 | ${peer} M | $peer_ns | | |" >>"$entry"
    echo "| (our decoder alone, fast path, in memory) | 1 | ${ours} M | $ours_ns | | |" >>"$entry"
  fi
fi

# The long history: once, 2 threads, against the year's 2-thread row.
if [ "$history" = 1 ]; then
  echo "replay.sh: replaying $hinput once, 2 threads" >&2
  REPLAY_SHOW_LOG=1 one_run "$build/regstream" 2 history "$hinput"
  h_rate=$rate h_rss=$rss
  echo "| history: ${persons} x ${history_months}, $((persons * history_months)) records, once | 2 | ${rate} M | $ns | $rss | $bpp |" >>"$entry"
fi

# goal LABEL MEASURED OP TARGET: a row of the summary (OP is >= or <=).
goal() {
  local met sign=≤
  [ "$3" = "<=" ] || sign=≥
  met=$(awk -v m="$2" -v t="$4" -v op="$3" 'BEGIN { print ((op == ">=" ? m >= t : m <= t) ? "yes" : "no") }')
  echo "| $1 | $2 | $sign $4 | $met |" >>"$entry"
}
bpp=$(awk -v a="${best_bpp[1]}" -v b="${best_bpp[2]}" 'BEGIN { print (b > a) ? b : a }')
{
  echo
  echo "Issue 13's goals, ratios within this entry:"
  echo
  echo "| goal | measured | target | met |"
  echo "|---|---|---|---|"
} >>"$entry"
goal "1 thread ns/record ÷ floor (decode + state)" "$(ratio "${best_ns[1]}" "$floor_ns")" "<=" 2.5
goal "2 threads ÷ 1 thread" "$(ratio "${best_rate[2]}" "${best_rate[1]}")" ">=" 1.85
goal "2 threads ÷ 1 thread, CPU hog beside" "$(ratio "${best_rate[2-hog]}" "${best_rate[1-hog]}")" ">=" 1.0
if [ -n "$peer" ]; then
  goal "2 threads ÷ Avro C generic" "$(ratio "${best_rate[2]}" "$peer" %.1f)" ">=" 12
fi
goal "state bytes per person (the larger of 1 and 2 threads)" "$bpp" "<=" 24
if [ "$history" = 1 ]; then
  goal "history ÷ national year, records/s (2 threads)" "$(ratio "$h_rate" "${best_rate[2]}")" ">=" 0.9
  goal "history ÷ national year, peak RSS (2 threads)" "$(ratio "$h_rss" "${best_rss[2]}")" "<=" 1.1
fi

if [ "$history" = 1 ]; then
  h_gib=$(gib "$(stat -c %s "$hinput")")
  ram_gib=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 2^20 }' /proc/meminfo)
  {
    echo
    echo "History: \`$hinput\`"
    echo "($h_gib GiB; this machine's RAM $ram_gib GiB: an input larger than the page cache can hold"
    echo "is read from disk), replayed once with 2 threads; compared with the national year's"
    echo "2-thread row (best of $runs)."
  } >>"$entry"
fi

results=bench/results/replay.md
cat "$entry" >>"$results"
echo "replay.sh: results appended to $results ($records records per run)" >&2
