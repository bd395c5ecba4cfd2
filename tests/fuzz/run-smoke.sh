#!/usr/bin/env bash
# tests/fuzz/run-smoke.sh — owned by the fuzzing work: the fuzz-smoke stage of
# tests/run-all.sh (which runs it from the repository root, no arguments).
# Configures and builds build-fuzz/ with clang (-DREGSTREAM_FUZZ=ON: libFuzzer,
# ASan, UBSan), then runs every harness for a bounded time over its corpus
# tests/fuzz/corpus/<name>/ (read only: new inputs go to
# build-fuzz/fuzz-smoke/corpus/<name>/), two at a time on machines with two
# or more cores. A crash, leak, sanitizer report, timeout or broken invariant
# fails the harness; its input is saved and its path printed.
#
# Environment: FUZZ_SECONDS per harness (20), FUZZ_PARALLEL harnesses at once
# (2, or 1 on one core), FUZZ_HARNESSES to run a subset ("decode ocf"),
# FUZZ_BUILD_DIR (build-fuzz). Last line: "fuzz-smoke: N passed, M failed".
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
root=$(pwd)

seconds=${FUZZ_SECONDS:-20}
read -r -a harnesses <<<"${FUZZ_HARNESSES:-decode schema ocf replay config report snapshot properties}"
bdir=${FUZZ_BUILD_DIR:-build-fuzz}
cores=$(nproc 2>/dev/null || echo 1)
parallel=${FUZZ_PARALLEL:-$((cores >= 2 ? 2 : 1))}
work=$bdir/fuzz-smoke

say() { printf 'fuzz-smoke: %s\n' "$*"; }

max_len() {
  case $1 in
  decode) echo 256 ;;
  config | properties) echo 1024 ;;
  snapshot) echo 8192 ;; # a few persons and a month or two
  schema) echo 8192 ;;
  *) echo 16384 ;; # container files and CSVs: the seeds are a few KB
  esac
}

finish() {
  say "$1 passed, $2 failed"
  [ "$2" -eq 0 ]
  exit
}

if ! command -v clang >/dev/null 2>&1; then
  say "clang not found (deploy/install-deps.sh --test installs it)"
  finish 0 "${#harnesses[@]}"
fi

# Configure: a new dir gets Ninja; an existing one keeps its generator.
cfg_args=(-DREGSTREAM_FUZZ=ON -DCMAKE_BUILD_TYPE=Release)
if [ -f "$bdir/CMakeCache.txt" ]; then
  home=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$bdir/CMakeCache.txt")
  if [ -n "$home" ] && [ "$home" != "$root" ]; then
    say "$bdir/ was configured for $home; starting it afresh"
    rm -rf "${bdir:?}/CMakeCache.txt" "${bdir:?}/CMakeFiles"
  fi
fi
gen=()
[ -f "$bdir/CMakeCache.txt" ] || gen=(-G Ninja)
mkdir -p "$work"
say "building $bdir/ with clang"
if ! CC=clang cmake -S . -B "$bdir" "${gen[@]}" "${cfg_args[@]}" >"$work/configure.log" 2>&1; then
  tail -n 30 "$work/configure.log"
  say "configure failed (log: $work/configure.log)"
  finish 0 "${#harnesses[@]}"
fi
targets=()
for h in "${harnesses[@]}"; do targets+=(--target "fuzz_$h"); done
if ! cmake --build "$bdir" "${targets[@]}" >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log"
  say "build failed (log: $work/build.log)"
  finish 0 "${#harnesses[@]}"
fi

# Known leaks of Avro C itself (see the file); keep any caller's options.
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$root/tests/fuzz/lsan.supp:print_suppressions=0"

# Dictionaries: schema JSON tokens for the harnesses whose inputs hold it.
dict() {
  case $1 in
  schema | ocf | replay) echo "-dict=tests/fuzz/schema.dict" ;;
  config | report) echo "-dict=tests/fuzz/$1.dict" ;;
  esac
}

# Per-harness options: snapshot seeds are 300-600 bytes, and libFuzzer's slowly
# growing length limit (len_control) cuts their mutants shorter than that for
# minutes, so they never reach the section decoders.
extra() {
  case $1 in
  snapshot) echo "-len_control=0" ;;
  esac
}

# run_one NAME — runs a harness; exit status 0 when clean.
run_one() {
  local h=$1 bin=$bdir/tests/fuzz_$1 log=$work/$1.log
  mkdir -p "$work/corpus/$h" "$work/artifacts"
  # shellcheck disable=SC2046 # dict, extra: zero or one word
  "$bin" -max_total_time="$seconds" -max_len="$(max_len "$h")" -timeout=20 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/$h-" $(dict "$h") $(extra "$h") \
    "$work/corpus/$h" "tests/fuzz/corpus/$h" >"$log" 2>&1
}

# report NAME RC — one line per harness; the input and the trace on failure.
report() {
  local h=$1 rc=$2 log=$work/$1.log
  local stats runs cov eps
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
  stats="${runs:-?} runs, ${eps:-?} exec/s, ${cov:-cov ?}"
  if [ "$rc" -eq 0 ]; then
    say "$h passed ($seconds s: $stats)"
    return 0
  fi
  local input
  input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
  grep -E 'ERROR: |runtime error|fuzz invariant broken|SUMMARY' "$log" | head -n 5 | sed 's/^/  /'
  grep -E '^ +#[0-9]+ ' "$log" | head -n 12 | sed 's/^/  /'
  say "$h FAILED (exit $rc; $stats); crashing input: ${input:-none saved}; log: $log"
  [ -n "$input" ] && say "reproduce: $bdir/tests/fuzz_$h $input"
  return 1
}

passed=0
failed=0
pids=()
names=()
collect() {
  local i=$1 rc=0
  wait "${pids[$i]}" || rc=$?
  if report "${names[$i]}" "$rc"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
}

say "${#harnesses[@]} harnesses, $seconds s each, $parallel at a time"
next=0
for h in "${harnesses[@]}"; do
  run_one "$h" &
  pids+=($!)
  names+=("$h")
  if [ $((${#pids[@]} - next)) -ge "$parallel" ]; then
    collect "$next"
    next=$((next + 1))
  fi
done
while [ "$next" -lt "${#pids[@]}" ]; do
  collect "$next"
  next=$((next + 1))
done
finish "$passed" "$failed"
