#!/bin/bash
# file_resume.sh — file mode resumes a replay from snapshots (SPEC §6, issue 4):
# kill -9 at random moments, restart (sometimes with another --threads) until the
# run completes, and the results equal an uninterrupted run's: the CSV byte for
# byte, the dead letters as a multiset of lines (their order across threads is
# not defined), the exit summary's counts. Also: a corrupted newest snapshot
# (fallback to an older cut, with a warning, same result), a changed rule option
# and a changed input list (both refused: exit 1 and a message), another or
# a missing dead-letter file (refused), and an uninterrupted run with
# --snapshot-dir (same result, no snapshots left behind). Every second trial
# reads its inputs past the page cache (O_DIRECT, as inputs larger than the
# memory are read).
#
# Input: regstream-gen's random profile with repeats, corrections, late and
# invalid records over three files, the middle one with a damaged stretch
# (undecodable dead letters). Smaller when REGSTREAM_SANITIZED=1. Month
# blocks move between workers often (REGSTREAM_RETIRE_RECORDS, below).
#
# usage: file_resume.sh REGSTREAM-GEN REGSTREAM WORKDIR [SEED]
#   FILE_RESUME_TRIALS=N overrides the number of kill -9 trials (default 12).
set -u
gen=$(realpath "$1")
regstream=$(realpath "$2")
dir=$3
seed=${4:-${FILE_RESUME_SEED:-$(($(date +%s) % 100000))}}
trials=${FILE_RESUME_TRIALS:-12}
RANDOM=$seed
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir" || exit 1

fail() {
  echo "file_resume: FAIL (seed $seed): $*" >&2
  exit 1
}
note() { echo "file_resume: $*"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

if [ "${REGSTREAM_SANITIZED:-0}" = 1 ]; then
  persons=4000 months=20
else
  persons=30000 months=30
fi
"$gen" --profile random --seed "$seed" --persons "$persons" --months "$months" --files 3 \
  --repeat-rate 0.03 --correction-rate 0.03 --late-rate 0.03 --invalid-rate 0.01 \
  --out in.avro 2>gen.log || fail "regstream-gen failed: $(cat gen.log)"
# A damaged stretch in the middle of the second file: garbage over a few
# hundred bytes (a block or two become an undecodable region).
size=$(stat -c %s in.001.avro)
head -c 300 /dev/urandom | dd of=in.001.avro bs=1 seek=$((size / 2)) conv=notrunc status=none
inputs=(in.000.avro in.001.avro in.002.avro)
records=$(sed -n 's/.*: \([0-9]*\) records (.*/\1/p' gen.log)
[ -n "$records" ] || fail "cannot read the record count from gen.log: $(cat gen.log)"
interval=$((records / 25))
# Workers other than the first hand the month blocks they no longer touch
# on to the first every REGSTREAM_RETIRE_RECORDS of their records (1 Mi in
# a real run): low here, so that months move between workers all through
# these runs, across cuts, kills and resumes, and the results must hold.
export REGSTREAM_RETIRE_RECORDS=$((2000 + RANDOM % 20000))

# The counts of an exit summary, without times, rates and memory.
summary() {
  sed -n -e 's/^regstream: \([0-9]* records from [0-9]* file(s)\) in .*/\1/p' \
    -e 's/^regstream: \([0-9]* persons\),.*; \([0-9]* corrections\)$/\1, \2/p' \
    -e 's/^regstream: \([0-9]* rejected.*\); wrote [^ ]* \(([0-9]* rows)\).*/\1 \2/p' "$1"
}

# Reference: one uninterrupted run, no snapshots.
t0=$(now_ms)
"$regstream" run --input "${inputs[@]}" --csv ref.csv --dead-letter ref.dlq --threads 2 \
  2>ref.log || fail "reference run failed: $(cat ref.log)"
ref_ms=$(($(now_ms) - t0))
sort ref.dlq >ref.dlq.sorted
# With one thread the dead letters come in a defined order (input order, a
# block's late records after its invalid ones): a resumed one-thread run must
# write the very same bytes.
"$regstream" run --input "${inputs[@]}" --csv ref1.csv --dead-letter ref1.dlq --threads 1 \
  --quiet 2>ref1.log || fail "one-thread reference run failed: $(cat ref1.log)"
cmp -s ref.csv ref1.csv || fail "one and two threads give different CSVs"
sort ref1.dlq | cmp -s ref.dlq.sorted - || fail "one and two threads give different dead letters"
summary ref.log >ref.summary
[ "$(wc -l <ref.summary)" -eq 3 ] || fail "cannot read the reference summary: $(cat ref.log)"
grep -q '"reason":"undecodable"' ref.dlq || fail "the damaged file gave no undecodable dead letter"
grep -q '"reason":"late"' ref.dlq || fail "no late dead letters in the input"
note "seed $seed: $records records, reference run ${ref_ms} ms; $(sed -n 3p ref.summary); months move between workers every $REGSTREAM_RETIRE_RECORDS records"

# same RUN-LOG CSV DLQ: the outputs and the summary equal the reference's.
same() {
  cmp -s ref.csv "$2" || fail "$4: CSV differs from the uninterrupted run's ($2)"
  sort "$3" | cmp -s ref.dlq.sorted - || fail "$4: dead letters differ from the uninterrupted run's ($3)"
  summary "$1" | cmp -s ref.summary - ||
    fail "$4: summary differs: $(summary "$1" | tr '\n' ' ') vs $(tr '\n' ' ' <ref.summary)"
}

# run THREADS SNAPDIR CSV DLQ LOG [extra options]: one run in the background; $! is its PID.
start() {
  local threads=$1 snaps=$2 csv=$3 dlq=$4 log=$5
  shift 5
  "$regstream" run --input "${inputs[@]}" --csv "$csv" --dead-letter "$dlq" --threads "$threads" \
    --snapshot-dir "$snaps" --snapshot-interval "$interval" --quiet "$@" 2>>"$log" &
}

# Complete cuts in SNAPDIR written by THREADS threads (shard THREADS-1 is written last).
cuts() { find "$1" -maxdepth 1 -name "file.$(($2 - 1))of$2.*.snap" 2>/dev/null | wc -l; }

# kill_after_cuts PID SNAPDIR THREADS N: kill -9 PID once N cuts are complete,
# unless it ends first; status gets its exit status (137: killed).
kill_after_cuts() {
  local pid=$1 snaps=$2 threads=$3 n=$4
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$(cuts "$snaps" "$threads")" -ge "$n" ]; then
      kill -9 "$pid" 2>/dev/null
      break
    fi
    sleep 0.002
  done
  wait "$pid" 2>/dev/null
  status=$?
}

# Trials 1 and 2 run one thread throughout (dead letters compared byte for
# byte); trial 3 kills after snapshot cuts and changes the thread count at
# every restart (2, 3, 1, ...); the others pick 1-3 threads, again at a
# restart half of the time.
threads_choice=(1 2 2 3)
pick_threads() {
  if [ "$trial" -le 2 ]; then
    threads=1
  elif [ "$trial" -eq 3 ]; then
    threads=$((${threads:-1} % 3 + 1))
  else
    threads=${threads_choice[RANDOM % 4]}
  fi
}
kills=0 early=0 midway=0 resumes=0 resharded=0 direct=0
for ((trial = 1; trial <= trials; trial++)); do
  snaps=t$trial.snaps csv=t$trial.csv dlq=t$trial.dlq log=t$trial.log
  : >"$log"
  # Even trials read the inputs past the page cache (REGSTREAM_CACHE_ROOM=0:
  # the path of inputs larger than the memory, O_DIRECT into a ring), their
  # resumes restarting the ring's reading at the cut.
  if [ $((trial % 2)) -eq 0 ]; then
    export REGSTREAM_CACHE_ROOM=0
  else
    unset REGSTREAM_CACHE_ROOM
  fi
  # 1-3 kills; a run that completes before its kill moment does not count
  # (the next one starts afresh, its snapshots deleted)
  restarts=$((1 + RANDOM % 3))
  threads=1
  pick_threads
  for ((r = 0, attempt = 0; r < restarts; attempt++)); do
    [ "$attempt" -lt $((4 * restarts + 4)) ] || fail "trial $trial: runs keep completing before the kill"
    { [ "$trial" -eq 3 ] && [ "$r" -gt 0 ]; } || [ $((RANDOM % 2)) -eq 0 ] && pick_threads
    echo "== threads $threads" >>"$log"
    had=$(find "$snaps" -maxdepth 1 -name 'file.*.snap' 2>/dev/null | wc -l)
    start "$threads" "$snaps" "$csv" "$dlq" "$log"
    pid=$!
    mode=$(((trial + r) % 3))
    [ "$trial" -eq 3 ] && mode=1
    # after two runs that completed first (short runs under a sanitizer), kill early
    [ $((attempt - r)) -ge 2 ] && mode=0
    case $mode in
    0) # early: most likely before the first snapshot of this run
      sleep "0.00$((RANDOM % 10))"
      kill -9 "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
      status=$?
      ;;
    1) # after 1..3 complete cuts of this run
      kill_after_cuts "$pid" "$snaps" "$threads" $((1 + RANDOM % 3))
      ;;
    *) # anywhere in the run's expected time
      sleep "$(awk -v ms=$((RANDOM % (ref_ms * 3 / 2 + 10))) 'BEGIN { printf "%.3f", ms / 1000 }')"
      kill -9 "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
      status=$?
      ;;
    esac
    if [ "$status" -eq 137 ]; then
      r=$((r + 1))
      kills=$((kills + 1))
      if [ "$had" -eq 0 ] && [ "$(find "$snaps" -maxdepth 1 -name 'file.*.snap' 2>/dev/null | wc -l)" -eq 0 ]; then
        early=$((early + 1))
      else
        midway=$((midway + 1))
      fi
    elif [ "$status" -ne 0 ]; then
      fail "trial $trial: run exited $status: $(tail -3 "$log")"
    fi
  done
  # Restart until it completes (without kills now).
  pick_threads
  echo "== threads $threads" >>"$log"
  "$regstream" run --input "${inputs[@]}" --csv "$csv" --dead-letter "$dlq" --threads "$threads" \
    --snapshot-dir "$snaps" --snapshot-interval "$interval" 2>>"$log" ||
    fail "trial $trial: the final run failed: $(tail -3 "$log")"
  same "$log" "$csv" "$dlq" "trial $trial"
  if [ "$trial" -le 2 ]; then
    cmp -s ref1.dlq "$dlq" || fail "trial $trial: one-thread dead letters differ from ref1.dlq"
  fi
  if [ $((trial % 2)) -eq 0 ]; then
    grep -q 'read past the page cache (O_DIRECT)' "$log" || fail "trial $trial: not read past the page cache: $(tail -3 "$log")"
    direct=$((direct + $(grep -c '^regstream: resuming from' "$log")))
  fi
  resumes=$((resumes + $(grep -c '^regstream: resuming from' "$log")))
  # runs that resumed a cut written by another thread count
  resharded=$((resharded + $(awk '/^== threads/ { t = $3 }
    /^regstream: resuming from/ && match($0, /by [0-9]+ thread/) {
      if (substr($0, RSTART + 3, RLENGTH - 10) != t) n++ }
    END { print n + 0 }' "$log")))
  [ -z "$(find "$snaps" -maxdepth 1 -name 'file.*' 2>/dev/null)" ] ||
    fail "trial $trial: snapshots left after a completed run: $(ls "$snaps")"
done
unset REGSTREAM_CACHE_ROOM
note "$trials trials: $kills kill -9 ($early before any snapshot, $midway with snapshots), $resumes resumes ($resharded of a cut by another thread count, $direct read past the page cache)"
[ "$kills" -ge "$trials" ] || fail "only $kills kills in $trials trials"
[ "$resumes" -ge 3 ] || fail "only $resumes runs resumed from a snapshot"
[ "$resharded" -ge 1 ] || fail "no run resumed a cut of another thread count"
[ "$direct" -ge 1 ] || fail "no run read past the page cache resumed from a snapshot"

# Leave a snapshot directory with at least N complete cuts of THREADS threads
# (kill -9 of a run): interrupted SNAPDIR CSV DLQ THREADS N.
interrupted() {
  local snaps=$1 csv=$2 dlq=$3 threads=$4 n=$5 try
  for try in 1 2 3 4 5; do
    rm -rf "$snaps"
    start "$threads" "$snaps" "$csv" "$dlq" "$snaps.log"
    kill_after_cuts $! "$snaps" "$threads" "$n"
    [ "$status" -eq 137 ] && return 0
    [ "$status" -eq 0 ] || fail "run into $snaps exited $status: $(tail -3 "$snaps.log")"
  done
  fail "no run was still going after $n snapshot cuts (5 tries)"
}

# An uninterrupted run with snapshots: same results, nothing left behind.
"$regstream" run --input "${inputs[@]}" --csv u.csv --dead-letter u.dlq --threads 3 \
  --snapshot-dir u.snaps --snapshot-interval "$interval" 2>u.log || fail "uninterrupted run failed"
same u.log u.csv u.dlq "uninterrupted with snapshots"
grep -q 'snapshot cut(s)' u.log || fail "the uninterrupted run took no snapshot: $(cat u.log)"
[ -z "$(ls u.snaps)" ] || fail "snapshots left after a completed run: $(ls u.snaps)"

# A corrupted newest snapshot: the older cut is used, with a warning.
interrupted c.snaps c.csv c.dlq 2 2
# the newest complete cut (shard 1 is written last; a newer shard 0 may be there alone)
newest=$(find c.snaps -maxdepth 1 -name 'file.1of2.*.snap' | sort | tail -1)
newest=${newest/file.1of2./file.0of2.}
bytes=$(stat -c %s "$newest")
printf '\377\377\377\377\377\377\377\377' | dd of="$newest" bs=1 seek=$((bytes / 2)) conv=notrunc status=none
"$regstream" run --input "${inputs[@]}" --csv c.csv --dead-letter c.dlq --threads 2 \
  --snapshot-dir c.snaps --snapshot-interval "$interval" 2>c.log || fail "resume past a corrupt snapshot failed: $(cat c.log)"
grep -q "warning: snapshot .*$(basename "$newest") is unusable" c.log ||
  fail "no warning naming the corrupt snapshot: $(cat c.log)"
grep -q '^regstream: resuming from' c.log || fail "did not resume from the older cut: $(cat c.log)"
same c.log c.csv c.dlq "corrupt newest snapshot"

# Refusals: another rule option, another input list, another or a missing
# dead-letter file.
interrupted x.snaps x.csv x.dlq 2 1
status=0
"$regstream" run --input "${inputs[@]}" --csv x.csv --dead-letter x.dlq --threads 2 \
  --snapshot-dir x.snaps --durable-run-months 4 2>x.log || status=$?
[ "$status" -eq 1 ] || fail "another rule option: exit $status, not 1: $(cat x.log)"
grep -q 'other rule options.*start over' x.log || fail "another rule option: message: $(cat x.log)"
status=0
"$regstream" run --input in.000.avro in.002.avro --csv x.csv --dead-letter x.dlq --threads 2 \
  --snapshot-dir x.snaps 2>x.log || status=$?
[ "$status" -eq 1 ] || fail "another input list: exit $status, not 1: $(cat x.log)"
grep -q 'other input files.*same --input list' x.log || fail "another input list: message: $(cat x.log)"
cp ref.dlq other.dlq
status=0
"$regstream" run --input "${inputs[@]}" --csv x.csv --dead-letter other.dlq --threads 2 \
  --snapshot-dir x.snaps 2>x.log || status=$?
[ "$status" -eq 1 ] || fail "another dead-letter file: exit $status, not 1: $(cat x.log)"
grep -q 'another --dead-letter file' x.log || fail "another dead-letter file: message: $(cat x.log)"
cmp -s ref.dlq other.dlq || fail "another dead-letter file was changed by a refused run"
mv x.dlq x.dlq.kept
status=0
"$regstream" run --input "${inputs[@]}" --csv x.csv --dead-letter x.dlq --threads 2 \
  --snapshot-dir x.snaps 2>x.log || status=$?
[ "$status" -eq 1 ] || fail "a missing dead-letter file: exit $status, not 1: $(cat x.log)"
grep -q 'dead-letter file.*start over' x.log || fail "a missing dead-letter file: message: $(cat x.log)"
# ... and with everything as it was, the refused directory still resumes.
mv x.dlq.kept x.dlq
"$regstream" run --input "${inputs[@]}" --csv x.csv --dead-letter x.dlq --threads 1 \
  --snapshot-dir x.snaps 2>x.log || fail "resume after the refusals failed: $(cat x.log)"
grep -q '^regstream: resuming from' x.log || fail "did not resume after the refusals: $(cat x.log)"
same x.log x.csv x.dlq "resume after refusals"

note "OK"
