#!/usr/bin/env bash
# tests/file_signals.sh — file mode on SIGTERM and SIGINT: it finishes the
# block in hand, takes a snapshot cut when --snapshot-dir is given, writes no
# CSV, says how to go on in one line and exits 128 + the signal's number; the
# same command then resumes and ends with the CSV and dead letters of an
# uninterrupted run. Without --snapshot-dir it stops the same way (nothing to
# resume from). A second signal ends the process at once.
# Usage: tests/file_signals.sh BUILD_DIR
set -uo pipefail
BUILD=$(cd "${1:?usage: file_signals.sh BUILD_DIR}" && pwd)
RS=$BUILD/regstream
TMP=$(mktemp -d /tmp/file_signals.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
TEST_NAME=file_signals
# shellcheck source=tests/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/check.sh"

persons=400000
[ "${REGSTREAM_SANITIZED:-0}" = 1 ] && persons=60000
"$BUILD/bench/regstream-gen" --profile random --seed 5 --persons "$persons" --months 12 \
  --repeat-rate 0.01 --correction-rate 0.02 --late-rate 0.01 --invalid-rate 0.01 \
  --out "$TMP/in.avro" >/dev/null 2>&1 || { bad "regstream-gen failed"; exit 1; }
"$RS" run --input "$TMP/in.avro" --csv "$TMP/full.csv" --dead-letter "$TMP/full.jsonl" --threads 2 \
  --quiet || { bad "uninterrupted run failed"; exit 1; }

# start NAME ARGS...: run in the background with fast progress lines; waits
# for the first one (the run is under way) and sets pid.
start() {
  local name=$1
  shift
  "$RS" run --input "$TMP/in.avro" --csv "$TMP/$name.csv" --dead-letter "$TMP/$name.jsonl" \
    --threads 2 --progress-ms 20 "$@" 2>"$TMP/$name.log" &
  pid=$!
  for _ in $(seq 500); do
    grep -q "M records read" "$TMP/$name.log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.01
  done
}
# last_line NAME: its stderr without the progress lines.
said() { grep -v "M records read" "$TMP/$1.log"; }

# 1. SIGTERM with snapshots: exit 143, one line, no CSV, a cut to resume from.
start term --snapshot-dir "$TMP/snaps"
kill -TERM "$pid"
wait "$pid"
rc=$?
msg=$(said term)
if [ "$rc" = 143 ] && [ ! -e "$TMP/term.csv" ] && [ "$(printf '%s\n' "$msg" | grep -c .)" = 1 ] &&
  [[ "$msg" == "regstream run: stopped by SIGTERM after "*" records; their snapshot is in $TMP/snaps: run the same command again to resume there" ]]; then
  ok "SIGTERM: exit 143, no CSV, $msg"
else
  bad "SIGTERM: exit $rc, CSV $([ -e "$TMP/term.csv" ] && echo written || echo absent): $msg"
fi
snaps=$(ls "$TMP/snaps"/*.snap 2>/dev/null | wc -l)
valid=0
for f in "$TMP/snaps"/*.snap; do "$RS" snapshot inspect "$f" >/dev/null 2>&1 && valid=$((valid + 1)); done
if [ "$snaps" = 2 ] && [ "$valid" = 2 ]; then ok "a complete cut of 2 shards is left, both valid"; else
  bad "$snaps snapshot files, $valid valid"; fi
"$RS" run --input "$TMP/in.avro" --csv "$TMP/term.csv" --dead-letter "$TMP/term.jsonl" --threads 2 \
  --snapshot-dir "$TMP/snaps" 2>"$TMP/resume.log"
rc=$?
if [ "$rc" = 0 ] && grep -q "resuming from the snapshot" "$TMP/resume.log" &&
  cmp -s "$TMP/full.csv" "$TMP/term.csv" &&
  cmp -s <(sort "$TMP/full.jsonl") <(sort "$TMP/term.jsonl"); then
  ok "the same command resumed and equals the uninterrupted run"
else
  bad "resume after SIGTERM: exit $rc: $(tail -2 "$TMP/resume.log" | tr '\n' ' ')"
fi

# 2. SIGINT without snapshots: exit 130, no CSV, says a rerun starts over.
start int
kill -INT "$pid"
wait "$pid"
rc=$?
msg=$(said int)
if [ "$rc" = 130 ] && [ ! -e "$TMP/int.csv" ] && [[ "$msg" == *"stopped by SIGINT after"*"(no --snapshot-dir)"* ]]; then
  ok "SIGINT without --snapshot-dir: exit 130, no CSV"
else
  bad "SIGINT: exit $rc: $msg"
fi

# 3. A second signal ends it at once: no clean-stop line, gone within 2 s.
start twice --snapshot-dir "$TMP/snaps2"
kill -TERM "$pid"
# Two signals sent back to back may be pending together and count as one:
# wait until the first was handled (the handler resets itself, so SIGTERM,
# bit 15, leaves the caught set in /proc/PID/status), then send the second.
for _ in $(seq 2000); do
  caught=$(awk '/^SigCgt:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || break
  [ -n "$caught" ] && (((0x$caught >> 14) & 1)) || break
done
kill -TERM "$pid"
t0=$(date +%s%N)
wait "$pid"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
if [ "$rc" = 143 ] && [ "$ms" -lt 2000 ] && ! grep -q "stopped by" "$TMP/twice.log"; then
  ok "a second SIGTERM ended the process at once (${ms} ms, no clean-stop line)"
else
  bad "second SIGTERM: exit $rc after ${ms} ms: $(said twice)"
fi
finish
