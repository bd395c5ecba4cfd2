#!/bin/bash
# private_files.sh — files that hold personal data are private to their owner
# whatever the umask (SPEC §6, issue 10 item 6): under umask 022 and 000 a
# file-mode run with --snapshot-dir makes the dead-letter file and every
# snapshot 0600 and the snapshot folders it creates 0700; a folder that exists
# stays as it is; a dead-letter file that was readable by others is replaced
# by a new private one (whoever holds the old one open reads nothing new), and a resumed one is made 0600 again. The CSV (counts, no
# records) keeps the usual mode, 0666 less the umask. Snapshots are kept for
# the check by failing the run at its CSV (REGSTREAM_FAULT, util/fs.h).
#
# usage: private_files.sh REGSTREAM-GEN REGSTREAM WORKDIR
set -u
gen=$(realpath "$1")
regstream=$(realpath "$2")
dir=$3
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir" || exit 1

fail() {
  echo "private_files: FAIL: $*" >&2
  exit 1
}
mode() { stat -c %a "$1"; }

"$gen" --profile kib --seed 3 --invalid-rate 0.01 --out X.avro 2>gen.log ||
  fail "regstream-gen failed: $(cat gen.log)"
records=$(sed -n 's/.*: \([0-9]*\) records (.*/\1/p' gen.log)
interval=$((records / 10))

for mask in 022 000; do
  rm -rf "u$mask"
  mkdir -m 0755 "u$mask"
  cd "u$mask" || exit 1
  umask "$mask"
  # what an older version, or someone else, left: a dead-letter file others can read
  echo '{"old":1}' >DLQ.jsonl
  chmod 0644 DLQ.jsonl
  exec 3<DLQ.jsonl # a reader that opened it while it was readable
  run() {
    "$regstream" run --input ../X.avro --csv OUT.csv --dead-letter DLQ.jsonl \
      --snapshot-dir base/a/b --snapshot-interval "$interval" 2>run.err
  }
  mkdir -m 0755 base
  status=0
  REGSTREAM_FAULT=rename:1:EIO:OUT.csv run || status=$?
  [ "$status" -eq 1 ] || fail "umask $mask: the run failed at its CSV with exit $status: $(cat run.err)"
  [ "$(mode DLQ.jsonl)" = 600 ] || fail "umask $mask: dead-letter file is $(mode DLQ.jsonl)"
  ! grep -q '"reason"' <&3 || fail "umask $mask: a reader of the old dead-letter file reads the new dead letters"
  exec 3<&-
  [ "$(mode base)" = 755 ] || fail "umask $mask: an existing folder was changed to $(mode base)"
  for d in base/a base/a/b; do
    [ "$(mode $d)" = 700 ] || fail "umask $mask: $d was made $(mode $d)"
  done
  snaps=0
  for s in base/a/b/*.snap; do
    [ -e "$s" ] || continue
    [ "$(mode "$s")" = 600 ] || fail "umask $mask: $s is $(mode "$s")"
    snaps=$((snaps + 1))
  done
  [ "$snaps" -ge 1 ] || fail "umask $mask: no snapshot was left to check"
  # resumed: the dead-letter file (widened meanwhile) is made private again
  chmod 0644 DLQ.jsonl
  run || fail "umask $mask: the resumed run failed: $(cat run.err)"
  grep -q '^regstream: resuming from' run.err || fail "umask $mask: did not resume: $(cat run.err)"
  [ "$(mode DLQ.jsonl)" = 600 ] || fail "umask $mask: the resumed dead-letter file is $(mode DLQ.jsonl)"
  want=$(printf '%o' $((0666 & ~0$mask)))
  [ "$(mode OUT.csv)" = "$want" ] || fail "umask $mask: the CSV is $(mode OUT.csv), not $want"
  # without snapshots too
  rm -f DLQ.jsonl
  "$regstream" run --input ../X.avro --csv OUT.csv --dead-letter DLQ.jsonl 2>run.err ||
    fail "umask $mask: a run without snapshots failed: $(cat run.err)"
  [ "$(mode DLQ.jsonl)" = 600 ] || fail "umask $mask: a new dead-letter file is $(mode DLQ.jsonl)"
  echo "private_files: umask $mask: dead letters 600 (replaced, resumed, new), $snaps snapshot(s) 600, folders made 700, existing 755 kept, CSV $want"
  cd .. || exit 1
done
echo "private_files: OK"
