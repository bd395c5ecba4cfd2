#!/bin/bash
# disk_faults.sh — disk faults in file mode (issue 10, item 7): ENOSPC, EIO and
# EACCES on the snapshot folder, the dead-letter file and the CSV, injected in
# the file-system layer (REGSTREAM_FAULT, util/fs.h) as SQLite's test VFS does:
# the Nth open, write, fsync, rename or mkdir fails (a failed write lands half
# its bytes first). For every fault, early, mid-run, during a snapshot, on the
# dead-letter file and during the CSV:
#   - exit status 1, and stderr is exactly one line "regstream run: ..." naming
#     the errno text, the file or folder hit, and "rerun the same command";
#   - no OUT.csv unless it is complete (equal to an uninterrupted run's), no
#     OUT.csv.tmp left; every *.snap left is valid (snapshot inspect), 0600;
#   - the same command without the fault exits 0 with a CSV and a dead-letter
#     file byte-identical to an uninterrupted run's, and leaves no snapshot.
# Also faults while resuming (reopening and cutting back the dead-letter file),
# and once for real: a small tmpfs that fills up (in a mount namespace of its
# own with unshare -m, else a plain mount as root; skipped with a message when
# neither is allowed).
#
# usage: disk_faults.sh REGSTREAM-GEN REGSTREAM WORKDIR
set -u
gen=$(realpath "$1")
regstream=$(realpath "$2")
dir=$3
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir" || exit 1

fail() {
  echo "disk_faults: FAIL: $*" >&2
  exit 1
}
note() { echo "disk_faults: $*"; }

"$gen" --profile kib --seed 3 --invalid-rate 0.01 --out X.avro 2>gen.log ||
  fail "regstream-gen failed: $(cat gen.log)"
records=$(sed -n 's/.*: \([0-9]*\) records (.*/\1/p' gen.log)
[ -n "$records" ] || fail "cannot read the record count from gen.log: $(cat gen.log)"
interval=$((records / 10))

# Reference: one uninterrupted run without snapshots.
"$regstream" run --input X.avro --csv ref.csv --dead-letter ref.dlq 2>ref.log ||
  fail "reference run failed: $(cat ref.log)"
[ -s ref.dlq ] || fail "the input gave no dead letters"

# run: the command under test, stderr into run.err. The CSV is in a folder of
# its own so that a fault can aim at the fsync of that folder.
mkdir CSVDIR
run() {
  "$regstream" run --input X.avro --csv CSVDIR/OUT.csv --dead-letter DLQ.jsonl \
    --snapshot-dir SNAP --snapshot-interval "$interval" 2>run.err
}

# The calls of one clean run, to see that each kind happens where the cases
# below expect it.
rm -rf SNAP DLQ.jsonl
REGSTREAM_FAULT_TRACE=$PWD/trace run || fail "traced run failed: $(cat run.err)"
for want in "open .*DLQ.jsonl" "write .*DLQ.jsonl" "fsync .*DLQ.jsonl" "open SNAP/\..*\.snap\.tmp" \
  "write .*SNAP/\..*\.snap\.tmp" "fsync .*SNAP/\..*\.snap\.tmp" "rename SNAP/file\..*\.snap" \
  "fsync SNAP$" "mkdir SNAP" "open CSVDIR/OUT.csv.tmp" "write .*CSVDIR/OUT.csv.tmp" \
  "fsync .*CSVDIR/OUT.csv.tmp" "rename CSVDIR/OUT.csv" "fsync CSVDIR$"; do
  grep -q "^${want%% *} [0-9]* ${want#* }" trace || fail "the traced run made no call '$want': $(cat trace)"
done
counts=
for k in open write fsync rename mkdir; do
  counts="$counts $k $(grep -c "^$k " trace)"
done
note "$records records, snapshot every $interval; calls in a clean run:$counts"
[ "$(grep -c '^write .*/CSVDIR/OUT.csv.tmp' trace)" -ge 3 ] || fail "the CSV takes fewer than 3 writes"

# check SPEC ERRNO-TEXT NAME: one faulted run and its resume.
cases=0
check() {
  local spec=$1 text=$2 name=$3 status=0 snap
  rm -rf SNAP CSVDIR/* DLQ.jsonl
  REGSTREAM_FAULT=$spec run || status=$?
  [ "$status" -eq 1 ] || fail "$spec: exit $status, not 1: $(cat run.err)"
  [ "$(wc -l <run.err)" -eq 1 ] || fail "$spec: stderr is not one line: $(cat run.err)"
  grep -q "^regstream run: .*$text" run.err || fail "$spec: no '$text' in: $(cat run.err)"
  grep -q -- "$name" run.err || fail "$spec: the message does not name $name: $(cat run.err)"
  grep -q "rerun the same command" run.err || fail "$spec: says not what to do: $(cat run.err)"
  [ ! -e CSVDIR/OUT.csv.tmp ] || fail "$spec: OUT.csv.tmp left behind"
  if [ -e CSVDIR/OUT.csv ]; then
    cmp -s CSVDIR/OUT.csv ref.csv || fail "$spec: a partial OUT.csv is there"
  fi
  for snap in SNAP/*.snap; do
    [ -e "$snap" ] || continue
    "$regstream" snapshot inspect "$snap" >inspect.out 2>&1 ||
      fail "$spec: $snap left is not valid: $(tail -2 inspect.out)"
    grep -q '^valid *yes' inspect.out || fail "$spec: $snap: $(tail -1 inspect.out)"
    [ "$(stat -c %a "$snap")" = 600 ] || fail "$spec: $snap is $(stat -c %a "$snap")"
  done
  resume "$spec"
  cases=$((cases + 1))
}

# resume WHAT: the same command without a fault gives the uninterrupted run's files.
resume() {
  run || fail "$1: the run after it failed: $(cat run.err)"
  cmp -s CSVDIR/OUT.csv ref.csv || fail "$1: the CSV after resuming differs from an uninterrupted run's"
  cmp -s DLQ.jsonl ref.dlq || fail "$1: the dead letters after resuming differ"
  [ -z "$(ls SNAP)" ] || fail "$1: snapshots left after a completed run: $(ls SNAP)"
  grep -q '^regstream: resuming from' run.err && resumed=$((resumed + 1))
}

resumed=0
for errno in ENOSPC EIO EACCES; do
  case $errno in
  ENOSPC) text="No space left on device" ;;
  EIO) text="Input/output error" ;;
  EACCES) text="Permission denied" ;;
  esac
  # writes: the first of the run, mid-run, a snapshot's header / payload /
  # trailer / header rewrite, the dead-letter file, the CSV's first and third.
  check "write:1:$errno" "$text" "regstream run"
  check "write:7:$errno" "$text" "regstream run"
  check "write:1:$errno:SNAP/." "$text" SNAP
  check "write:2:$errno:SNAP/." "$text" SNAP
  check "write:4:$errno:SNAP/." "$text" SNAP
  check "write:1:$errno:DLQ" "$text" DLQ.jsonl
  check "write:2:$errno:DLQ" "$text" DLQ.jsonl
  check "write:1:$errno:OUT.csv" "$text" OUT.csv
  check "write:3:$errno:OUT.csv" "$text" OUT.csv
  # fsyncs: a snapshot's file, its folder (after the rename), the dead-letter
  # file (before a cut names its length), the CSV and its folder.
  check "fsync:1:$errno:SNAP/." "$text" SNAP
  check "fsync:1:$errno:SNAP" "$text" SNAP
  check "fsync:2:$errno:SNAP" "$text" SNAP
  check "fsync:1:$errno:DLQ" "$text" DLQ.jsonl
  check "fsync:1:$errno:CSVDIR" "$text" OUT.csv
  check "fsync:2:$errno:CSVDIR" "$text" OUT.csv
  check "fsync:3:$errno" "$text" "regstream run"
  # renames: a snapshot into place (the first, a later one), the CSV.
  check "rename:1:$errno:SNAP" "$text" SNAP
  check "rename:2:$errno" "$text" "regstream run"
  check "rename:1:$errno:OUT.csv" "$text" OUT.csv
  # opens: the dead-letter file (at the start), a snapshot's temporary file
  # (the first: how many cuts a run takes depends on how fast the writer is,
  # since none starts while the last one is being written), the CSV's; and
  # the snapshot folder made.
  check "open:1:$errno:DLQ" "$text" DLQ.jsonl
  check "open:1:$errno:SNAP" "$text" SNAP
  check "open:1:$errno:OUT.csv" "$text" OUT.csv
  check "mkdir:1:$errno" "$text" SNAP
done
note "$cases injected faults: exit 1 and one line each; $resumed of the reruns resumed from a snapshot"
[ "$resumed" -ge 20 ] || fail "only $resumed reruns resumed from a snapshot"

# Reading the input past the page cache (REGSTREAM_CACHE_ROOM=0 makes this
# small input take the path of inputs larger than the memory: O_DIRECT, 1 MiB
# a read): a read that fails stops the run, naming the input and the offset;
# not one record of it is taken for bad data (every dead letter of the failed
# run is one of the uninterrupted run's); the rerun resumes exact.
export REGSTREAM_CACHE_ROOM=0
REGSTREAM_FAULT_TRACE=$PWD/read-trace run || fail "a clean run read past the page cache failed: $(cat run.err)"
reads=$(grep -c '^read .*X\.avro$' read-trace || true)
[ "$reads" -ge 3 ] || fail "the input was read in $reads reads past the page cache, not 3 or more"
rm -rf SNAP CSVDIR/* DLQ.jsonl
run || fail "a clean run read past the page cache failed: $(cat run.err)"
cmp -s CSVDIR/OUT.csv ref.csv && cmp -s DLQ.jsonl ref.dlq || fail "read past the page cache, the outputs differ"
for spec in read:1:EIO read:2:EIO read:3:EACCES; do
  text="Input/output error"
  [ "${spec##*:}" = EACCES ] && text="Permission denied"
  rm -rf SNAP CSVDIR/* DLQ.jsonl
  status=0
  REGSTREAM_FAULT=$spec run || status=$?
  [ "$status" -eq 1 ] || fail "$spec: exit $status, not 1: $(cat run.err)"
  grep -q "^regstream: the input is larger than .* read past the page cache" run.err ||
    fail "$spec: the run does not say it reads past the page cache: $(cat run.err)"
  sed -i '/^regstream: the input is larger than/d' run.err
  [ "$(wc -l <run.err)" -eq 1 ] || fail "$spec: stderr is not one line besides that: $(cat run.err)"
  grep -q "^regstream run: .*X\.avro: reading at offset [0-9]*: $text.*rerun the same command" run.err ||
    fail "$spec: $(cat run.err)"
  [ ! -e CSVDIR/OUT.csv ] || fail "$spec: an OUT.csv after a failed read"
  if [ -s DLQ.jsonl ]; then
    extra=$(sort DLQ.jsonl | comm -23 - <(sort ref.dlq) | wc -l)
    [ "$extra" -eq 0 ] || fail "$spec: $extra dead letters the input does not have (a failed read taken for bad data)"
  fi
  resume "$spec"
  cases=$((cases + 1))
done
unset REGSTREAM_CACHE_ROOM
note "reading past the page cache in $reads reads: equal outputs; 3 failed reads stopped the run naming the input and resumed exact"

# Faults while resuming: a run that failed at the CSV left cuts; reopening the
# dead-letter file fails, then cutting it back; then the same command resumes.
rm -rf SNAP CSVDIR/* DLQ.jsonl
REGSTREAM_FAULT=rename:1:EIO:OUT.csv run
[ -n "$(ls SNAP)" ] || fail "a run that failed at its CSV left no snapshot"
for spec in open:1:EACCES:DLQ write:1:ENOSPC:DLQ fsync:1:EIO:DLQ; do
  status=0
  REGSTREAM_FAULT=$spec run || status=$?
  [ "$status" -eq 1 ] || fail "resuming with $spec: exit $status: $(cat run.err)"
  grep -q '^regstream run: .*DLQ.jsonl.*rerun the same command' run.err ||
    fail "resuming with $spec: $(cat run.err)"
  grep -q 'start over' run.err && fail "resuming with $spec: a disk fault taken for another file: $(cat run.err)"
done
resume "faults while resuming"
note "faults while resuming: refused with the file named, then resumed exact"

# For real: a tmpfs too small for the outputs (the dead-letter file fills it,
# then the CSV), grown, and the same command resumes.
cat >tmpfs.sh <<'EOS'
set -u
regstream=$1 interval=$2 mnt=$PWD/small
mkdir -p "$mnt"
for size in 96k 320k; do
  mount -t tmpfs -o size=$size,mode=0700 regstream-test "$mnt" || exit 3
  status=0
  "$regstream" run --input X.avro --csv "$mnt/OUT.csv" --dead-letter "$mnt/DLQ.jsonl" \
    --snapshot-dir "$mnt/SNAP" --snapshot-interval "$interval" 2>run.err || status=$?
  echo "size $size: exit $status: $(cat run.err)"
  [ "$status" -eq 1 ] || exit 1
  [ "$(wc -l <run.err)" -eq 1 ] && grep -q '^regstream run: .*No space left on device.*rerun the same command' run.err || exit 1
  [ ! -e "$mnt/OUT.csv" ] || exit 1
  for snap in "$mnt"/SNAP/*.snap; do
    [ -e "$snap" ] || continue
    "$regstream" snapshot inspect "$snap" 2>&1 | grep -q '^valid *yes' || { echo "$snap not valid"; exit 1; }
  done
  mount -o remount,size=8m "$mnt" || exit 1
  "$regstream" run --input X.avro --csv "$mnt/OUT.csv" --dead-letter "$mnt/DLQ.jsonl" \
    --snapshot-dir "$mnt/SNAP" --snapshot-interval "$interval" 2>run.err || { cat run.err; exit 1; }
  cmp -s "$mnt/OUT.csv" ref.csv && cmp -s "$mnt/DLQ.jsonl" ref.dlq || { echo "size $size: resumed outputs differ"; exit 1; }
  umount "$mnt" || exit 1
done
EOS
status=0
if unshare -m --propagation private true 2>/dev/null; then
  unshare -m --propagation private bash tmpfs.sh "$regstream" "$interval" >tmpfs.log 2>&1 || status=$?
  how="in a mount namespace of its own"
elif [ "$(id -u)" -eq 0 ]; then
  bash tmpfs.sh "$regstream" "$interval" >tmpfs.log 2>&1 || status=$?
  umount "$PWD/small" 2>/dev/null
  how="as root"
else
  status=3
fi
case $status in
0) note "a full tmpfs ($how): $(grep -c 'exit 1' tmpfs.log) runs failed with ENOSPC in one line, resumed exact" ;;
3) note "SKIPPED the full tmpfs case: mounting a tmpfs is not allowed here (neither unshare -m nor root): $(head -3 tmpfs.log 2>/dev/null)" ;;
*) fail "a full tmpfs: $(cat tmpfs.log)" ;;
esac
note OK
