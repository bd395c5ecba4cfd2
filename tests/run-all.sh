#!/usr/bin/env bash
# tests/run-all.sh — THE test command (README, .ci/run): installs what is
# missing, builds and runs every test, in stages:
#
#   deps          deploy/install-deps.sh --test --kafka (Java + Maven: the
#                 kafka-labelled tests run a real local broker)
#   build         build/       Release, Ninja
#   test          ctest on build/
#   asan-build    build-asan/  Debug, -DREGSTREAM_SANITIZE=address,undefined
#   asan-test     ctest on build-asan/ with REGSTREAM_SANITIZED=1 exported
#                 (tests read it to shrink their sizes under the sanitizers)
#   tsan-build    build-tsan/  Debug, clang, -DREGSTREAM_SANITIZE=thread
#   tsan-test     the multithreaded file-mode tests under ThreadSanitizer
#                 (test_app_replay, differential over 1-4 threads, edge_cases,
#                 kib_calibration, file_resume with its snapshot threads,
#                 test_app_snapshot, test_app_snapshotter), and the broker-free
#                 Kafka-mode units test_app_kafka_{wire,merge,settle,gap}. The other
#                 Kafka-mode tests are not in it: TSan
#                 crashes in its own allocator on threads of the uninstrumented
#                 librdkafka; they run under ASan/UBSan instead.
#   fuzz-smoke    tests/fuzz/run-smoke.sh, when that script exists
#   deploy        tests/deploy/run.sh build: the files in deploy/ checked
#                 offline (systemd-analyze, the Kubernetes client's models,
#                 the compose-spec schema, the dashboard's PromQL) and deploy/Dockerfile's
#                 stages run in debootstrap roots; once per run, after build
#
# A failed stage does not stop the others (a test stage whose build failed is
# counted as failed, not run). Exit status 0 only when every stage passed; the
# last line is always "run-all: N passed, M failed", counting stages. A failed
# stage's lines that say what failed (FAIL, ERROR, error:, ...) are repeated
# after the summary, so that the end of a long log (all a CI page may keep)
# still says which test failed and how.
#
# Environment: REGSTREAM_TEST_TIMEOUT, the default per-test ctest timeout in
# seconds (1200; a test's own TIMEOUT property wins).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

timeout_s=${REGSTREAM_TEST_TIMEOUT:-1200}
total_stages=8
if [ -f tests/fuzz/run-smoke.sh ]; then
  total_stages=9
fi

stage_names=()
stage_results=()
stage_seconds=()
stage_notes=()
stage_failures=() # per failed stage: its last lines saying what failed
stage_logs=$(mktemp -d)
trap 'rm -rf "$stage_logs"' EXIT
passed=0
failed=0
stage_no=0
run_start=$(date +%s)

say() { printf 'run-all: %s\n' "$*"; }

fmt_seconds() {
  local s=$1
  if [ "$s" -ge 60 ]; then
    printf '%dm%02ds' $((s / 60)) $((s % 60))
  else
    printf '%ds' "$s"
  fi
}

# record NAME RESULT SECONDS NOTE
record() {
  stage_names+=("$1")
  stage_results+=("$2")
  stage_seconds+=("$3")
  stage_notes+=("$4")
  if [ "$2" = passed ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
}

# stage NAME COMMAND... — runs one stage with a header, its timing and result.
# Sets last_ok=1/0. A ctest stage's note comes from ctest_note (set by run_ctest).
last_ok=0
ctest_note=""
stage() {
  local name=$1
  shift
  stage_no=$((stage_no + 1))
  ctest_note=""
  say "[$stage_no/$total_stages] $name: $*"
  local t0 t1 rc=0 log=$stage_logs/$stage_no.log
  t0=$(date +%s)
  # Through tee in a process substitution: the command stays in this shell
  # (a stage's functions set ctest_note). The braces make this shell, not
  # the command's child, open it, so that $! is tee.
  { "$@"; } > >(tee "$log") 2>&1 || rc=$?
  local tee_pid=${!:-} i # until tee has written all, but no longer than 5 s (a
  for ((i = 0; i < 50; i++)); do # server left running may hold the pipe)
    kill -0 "$tee_pid" 2>/dev/null || break
    sleep 0.1
  done
  t1=$(date +%s)
  local took=$((t1 - t0))
  if [ "$rc" -eq 0 ]; then
    last_ok=1
    say "[$stage_no/$total_stages] $name: passed in $(fmt_seconds "$took")${ctest_note:+ $ctest_note}"
    record "$name" passed "$took" "$ctest_note"
  else
    last_ok=0
    say "[$stage_no/$total_stages] $name: FAILED (exit $rc) after $(fmt_seconds "$took")${ctest_note:+ $ctest_note}"
    record "$name" FAILED "$took" "$ctest_note"
    stage_failures+=("$name: $(grep -E 'FAIL|ERROR|[Ee]rror:|runtime error|SUMMARY|invariant|reproduce|\*\*\*' "$log" |
      tail -n 20 | sed 's/^/  /')")
  fi
}

# A stage that cannot run because the one it needs failed.
not_run() {
  stage_no=$((stage_no + 1))
  say "[$stage_no/$total_stages] $1: FAILED, not run: $2"
  record "$1" FAILED 0 "(not run: $2)"
}

# configure DIR CMAKE-ARGS... — Ninja for a new build dir; an existing one keeps
# its generator (CMake refuses to switch) and gets the given settings.
configure() {
  local dir=$1
  shift
  local cache=$dir/CMakeCache.txt
  if [ -f "$cache" ]; then
    local home
    home=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$cache")
    if [ -n "$home" ] && [ "$home" != "$root" ]; then
      say "$dir/ was configured for $home; starting it afresh"
      rm -rf "${dir:?}/CMakeCache.txt" "${dir:?}/CMakeFiles"
    fi
  fi
  if [ -f "$cache" ]; then
    cmake -S . -B "$dir" "$@"
  else
    cmake -S . -B "$dir" -G Ninja "$@"
  fi
}

build_dir() {
  local dir=$1
  shift
  configure "$dir" "$@" && cmake --build "$dir"
}

# run_ctest DIR [CTEST-ARGS...] — ctest (-j2 unless other arguments are given)
# with its output also kept in DIR/run-all-ctest.log; the count of tests and
# the names of failed and skipped ones go into ctest_note.
run_ctest() {
  local dir=$1 log=$1/run-all-ctest.log rc=0
  shift
  [ $# -gt 0 ] || set -- -j2
  ctest --test-dir "$dir" --output-on-failure --timeout "$timeout_s" "$@" 2>&1 | tee "$log" || rc=$?
  local line failed_names skipped_names
  line=$(grep -E '^[0-9]+% tests passed' "$log" | tail -n 1 || true)
  failed_names=$(sed -n '/The following tests FAILED:/,$p' "$log" |
    sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\).*/\1/p' | tr '\n' ' ' | sed 's/ $//' || true)
  # Tests that exit 77 (SKIP_RETURN_CODE) count as passed for ctest: name them.
  skipped_names=$(sed -n '/The following tests did not run:/,/^$/p' "$log" |
    sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\).*/\1/p' | tr '\n' ' ' | sed 's/ $//' || true)
  if [ -n "$line" ]; then
    ctest_note="($line${failed_names:+: $failed_names}${skipped_names:+; skipped: $skipped_names})"
  elif grep -q 'No tests were found' "$log"; then
    ctest_note="(no tests found)"
    rc=1
  fi
  return "$rc"
}

run_asan_ctest() {
  REGSTREAM_SANITIZED=1 \
    ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    run_ctest build-asan
}

say "regstream tests in $root ($(nproc 2>/dev/null || echo '?') cores)"

stage deps bash deploy/install-deps.sh --test --kafka

stage build build_dir build -DCMAKE_BUILD_TYPE=Release
if [ "$last_ok" = 1 ]; then
  stage test run_ctest build
else
  not_run test "build failed"
fi

stage asan-build build_dir build-asan -DCMAKE_BUILD_TYPE=Debug -DREGSTREAM_SANITIZE=address,undefined
if [ "$last_ok" = 1 ]; then
  stage asan-test run_asan_ctest
else
  not_run asan-test "asan-build failed"
fi

run_tsan_ctest() {
  REGSTREAM_SANITIZED=1 TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1} \
    run_ctest build-tsan -j1 -R '^(test_app_replay|test_app_snapshot|test_app_snapshotter|test_app_kafka_wire|test_app_kafka_merge|test_app_kafka_settle|test_app_kafka_gap|differential|edge_cases|kib_calibration|file_resume)$'
}

stage tsan-build build_dir build-tsan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
  -DREGSTREAM_SANITIZE=thread
if [ "$last_ok" = 1 ]; then
  stage tsan-test run_tsan_ctest
else
  not_run tsan-test "tsan-build failed"
fi

# ---- fuzz smoke hook -------------------------------------------------------
# tests/fuzz/run-smoke.sh (owned by the fuzzing work) is a stage of its own as
# soon as it exists: a short libFuzzer/corpus run, exit 0 when clean.
if [ -f tests/fuzz/run-smoke.sh ]; then
  stage fuzz-smoke bash tests/fuzz/run-smoke.sh
else
  say "fuzz-smoke: no tests/fuzz/run-smoke.sh yet, stage not counted"
fi
# ---------------------------------------------------------------------------

# The deployment files: once per run (not in the ctest lists that run twice).
build_ok=0
for i in "${!stage_names[@]}"; do
  [ "${stage_names[$i]}" = build ] && [ "${stage_results[$i]}" = passed ] && build_ok=1
done
if [ "$build_ok" = 1 ]; then
  stage deploy bash tests/deploy/run.sh build
else
  not_run deploy "build failed"
fi

run_end=$(date +%s)
say "---- summary ($(fmt_seconds $((run_end - run_start))) in all) ----"
for i in "${!stage_names[@]}"; do
  printf 'run-all:   %-7s %-11s %7s %s\n' "${stage_results[$i]}" "${stage_names[$i]}" \
    "$(fmt_seconds "${stage_seconds[$i]}")" "${stage_notes[$i]}"
done
for f in "${stage_failures[@]}"; do
  say "---- what failed in ${f%%:*} (its last lines that say so) ----"
  printf '%s\n' "${f#*: }"
done
say "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
