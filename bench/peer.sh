#!/usr/bin/env bash
# peer.sh — the DuckDB peer benchmark of SPEC §7 ("≥ 10× faster than DuckDB
# computing the same rollups from the same data, in a twentieth of its
# memory"). Owns bench/peer.sh, bench/peers/* and bench/results/peer.md.
#
# On the `national` profile (default 2,000,000 persons x 12 months = 24 M clean
# records, like the SPEC's figure) it runs, one after the other, never at once:
#   - regstream run --threads T over the Avro file (its own timer: open, decode,
#     rules, CSV; records/s and peak RSS parsed from its stderr summary; CPU
#     seconds from /usr/bin/time);
#   - the DuckDB peer (bench/peers/duckdb_rollup.py, SET threads=T,
#     memory_limit 16GB) over the same data, already loaded into an in-memory
#     table (the load is timed apart and is not the peer's time), with both
#     query plans (grid: the SPEC read literally; members: tuned), or one;
# asserts that every CSV is byte-identical to regstream's, and appends a
# results table to bench/results/peer.md (records/s, seconds, peak memory,
# ratios, machine). Exit 1 on a mismatch.
#
#   bench/peer.sh [--persons N] [--months M] [--runs K] [--threads T]
#                 [--plans grid,members] [--build-dir DIR]
#
# Data (generated once, git-ignored): bench/data/national-NxM-month-null.avro
# and its Parquet cache .parquet beside it. Python packages: a venv in
# bench/.venv made on first use from bench/peers/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

persons=2000000 months=12 runs=3 threads=2 plans=grid,members build=build
while [ $# -gt 0 ]; do
  case "$1" in
    --persons) persons=$2; shift 2 ;;
    --months) months=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --plans) plans=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    *) echo "peer.sh: unknown option $1 (see the comment at the top)" >&2; exit 2 ;;
  esac
done

if [ ! -x "$build/regstream" ] || [ ! -x "$build/bench/regstream-gen" ]; then
  echo "peer.sh: building $build/ (Release)" >&2
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" >/dev/null
fi

venv=bench/.venv
if ! "$venv/bin/python" -c 'import duckdb, fastavro, pyarrow' 2>/dev/null; then
  echo "peer.sh: making $venv (bench/peers/requirements.txt)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r bench/peers/requirements.txt
fi
py=$venv/bin/python

data=bench/data
mkdir -p "$data" bench/results
input="$data/national-${persons}x${months}-month-null.avro"
if [ ! -s "$input" ]; then
  echo "peer.sh: generating $input" >&2
  "$build/bench/regstream-gen" --profile national --seed 1 --persons "$persons" \
    --months "$months" --out "$input"
fi
records=$((persons * months))
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- regstream: best of K runs (seconds), highest peak RSS over them
rs_best="" rs_cpu="" rs_rss=0
for run in $(seq "$runs"); do
  /usr/bin/time -f '%U %S' -o "$out/regstream.time" "$build/regstream" run --input "$input" --csv "$out/regstream.csv" \
    --dead-letter "$out/dlq.jsonl" --threads "$threads" 2>"$out/regstream.log"
  secs=$(sed -n 's/.* records from .* in \([0-9.]*\) s (.*/\1/p' "$out/regstream.log")
  rss=$(sed -n 's/.*peak RSS \([0-9]*\) MiB.*/\1/p' "$out/regstream.log")
  seen=$(sed -n 's/^regstream: \([0-9]*\) records from.*/\1/p' "$out/regstream.log")
  grep -q 'regstream: 0 rejected' "$out/regstream.log" || {
    echo "peer.sh: regstream rejected records of clean input:" >&2
    cat "$out/regstream.log" >&2
    exit 1
  }
  [ "$seen" = "$records" ] || { echo "peer.sh: regstream saw $seen records, expected $records" >&2; exit 1; }
  cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$out/regstream.time")
  rs_cpu=$(awk -v a="$rs_cpu" -v b="$cpu" 'BEGIN { print (a == "" || b < a) ? b : a }')
  echo "peer.sh: regstream run $run: $secs s, $cpu s CPU, peak RSS $rss MiB (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  rs_best=$(awk -v a="$rs_best" -v b="$secs" 'BEGIN { print (a == "" || b < a) ? b : a }')
  rs_rss=$(( rss > rs_rss ? rss : rs_rss ))
done

# ---- DuckDB, per plan: best of K runs (query seconds), highest peaks over them
field() { "$py" -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print("" if v is None else v)' "$1" "$2"; }
mismatch=0
declare -A dd_secs dd_cpu dd_rss dd_rss_all dd_acct dd_table dd_load dd_equal
IFS=, read -r -a plan_list <<<"$plans"
for plan in "${plan_list[@]}"; do
  best="" cpu="" rss=0 rss_all=0 acct=0
  for run in $(seq "$runs"); do
    "$py" bench/peers/duckdb_rollup.py --input "$input" --csv "$out/duckdb-$plan.csv" \
      --plan "$plan" --threads "$threads" --memory-limit 16GB --json "$out/duckdb.json"
    q=$(field "$out/duckdb.json" query_seconds)
    c=$(field "$out/duckdb.json" query_cpu_seconds)
    cpu=$(awk -v a="$cpu" -v b="$c" 'BEGIN { print (a == "" || b < a) ? b : a }')
    echo "peer.sh: DuckDB $plan run $run: $q s, $c s CPU (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    best=$(awk -v a="$best" -v b="$q" 'BEGIN { print (a == "" || b < a) ? b : a }')
    r=$(field "$out/duckdb.json" rss_peak_query_mib)
    [ -n "$r" ] || r=$(field "$out/duckdb.json" rss_peak_mib)
    rss=$(awk -v a="$rss" -v b="$r" 'BEGIN { print (b > a) ? b : a }')
    rss_all=$(awk -v a="$rss_all" -v b="$(field "$out/duckdb.json" rss_peak_mib)" 'BEGIN { print (b > a) ? b : a }')
    acct=$(awk -v a="$acct" -v b="$(field "$out/duckdb.json" duckdb_peak_mib)" 'BEGIN { print (b > a) ? b : a }')
    [ "$(field "$out/duckdb.json" records)" = "$records" ] || { echo "peer.sh: DuckDB loaded a different record count" >&2; exit 1; }
  done
  dd_secs[$plan]=$best dd_cpu[$plan]=$cpu dd_rss[$plan]=$rss dd_rss_all[$plan]=$rss_all dd_acct[$plan]=$acct
  dd_table[$plan]=$(field "$out/duckdb.json" duckdb_table_mib)
  dd_load[$plan]=$(field "$out/duckdb.json" load_seconds)
  if cmp -s "$out/regstream.csv" "$out/duckdb-$plan.csv"; then
    dd_equal[$plan]=yes
  else
    dd_equal[$plan]=NO
    mismatch=1
    keep=bench/results/peer-mismatch-$plan
    mkdir -p "$keep"
    cp "$out/regstream.csv" "$out/duckdb-$plan.csv" "$keep/"
    echo "peer.sh: MISMATCH between regstream and DuckDB ($plan); both CSVs kept in $keep/:" >&2
    diff "$out/regstream.csv" "$out/duckdb-$plan.csv" | head -20 >&2 || true
  fi
done
duckdb_version=$(field "$out/duckdb.json" duckdb_version)

# ---- results
rate() { awk -v n="$records" -v s="$1" 'BEGIN { printf "%.2f M", n / s / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f×", a / b }'; }
results=bench/results/peer.md
[ -s "$results" ] || printf '# DuckDB peer benchmark (bench/peer.sh)\n\nSPEC §7: regstream ≥ 10× faster than DuckDB computing the same rollups from the same data, in a twentieth of its memory. Each section below is one run of bench/peer.sh; see the comment at its top for what is measured.\n' >"$results"
{
  echo
  echo "## $(date -u +%Y-%m-%dT%H:%MZ) — national ${persons} x ${months} = ${records} records, ${threads} threads"
  echo
  echo "Machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(free -g | awk '/^Mem:/ { print $2 }') GiB;" \
    "regstream binary $build/regstream of $(date -u -r "$build/regstream" +%Y-%m-%dT%H:%MZ) (repo HEAD $(git rev-parse --short HEAD));" \
    "DuckDB $duckdb_version (Python), memory_limit 16GB. Best of $runs runs (wall seconds, and CPU seconds = user + system, each its own best), highest peak memory over them."
  echo "Load average (1/5/15 min) before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine: other work may have run at the same time)."
  echo
  echo "| program | seconds | records/s | CPU seconds | peak RSS MiB | regstream faster by (wall) | (CPU) | regstream smaller by | CSV equal |"
  echo "|---|---|---|---|---|---|---|---|---|"
  echo "| regstream run (Avro file → CSV, all included) | $rs_best | $(rate "$rs_best") | $rs_cpu | $rs_rss | | | | |"
  for plan in "${plan_list[@]}"; do
    echo "| DuckDB, plan $plan (query on loaded table → CSV) | ${dd_secs[$plan]} | $(rate "${dd_secs[$plan]}") | ${dd_cpu[$plan]} | ${dd_rss[$plan]} | $(ratio "${dd_secs[$plan]}" "$rs_best") | $(ratio "${dd_cpu[$plan]}" "$rs_cpu") | $(ratio "${dd_rss[$plan]}" "$rs_rss") | ${dd_equal[$plan]} |"
  done
  echo
  for plan in "${plan_list[@]}"; do
    echo "- DuckDB plan $plan: DuckDB's own accounting (duckdb_memory()) peaks at ${dd_acct[$plan]} MiB, of which the loaded table ${dd_table[$plan]} MiB;" \
      "process peak RSS over the query ${dd_rss[$plan]} MiB (the column above), over load and query ${dd_rss_all[$plan]} MiB; load from the Parquet cache ${dd_load[$plan]} s (not counted)."
  done
} >>"$results"
echo "peer.sh: results appended to $results" >&2
tail -n $(( 9 + 2 * ${#plan_list[@]} )) "$results" >&2
exit "$mismatch"
