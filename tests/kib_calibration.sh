#!/bin/sh
# kib_calibration.sh — end-to-end calibration test of the kib profile (SPEC §8):
# regstream-gen --profile kib -> regstream run (project 2019-01..2022-12) ->
# regstream report --check at 2023-02 must put every headline share within 2
# percentage points of the evaluation report. Also checks that the rollup does
# not depend on record order or file split, that the clean profile produces no
# dead letters, and (negative control) that the check really fails on a
# rollup whose goal-1 counts were halved.
#
# usage: kib_calibration.sh REGSTREAM-GEN REGSTREAM WORKDIR
set -eu
gen=$1
regstream=$2
dir=$3
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"

fail() {
  echo "kib_calibration: FAIL: $*" >&2
  exit 1
}

run() { # run INPUT... -> rollup in $out
  "$regstream" run --input "$@" --csv "$out" --dead-letter "$out.dlq.jsonl" \
    --project-start 201901 --project-end 202212 --quiet ||
    fail "regstream run failed on $*"
  [ ! -s "$out.dlq.jsonl" ] || fail "clean kib input produced dead letters ($out.dlq.jsonl)"
}

"$gen" --profile kib --seed 20230228 --out kib.avro 2>gen.log || fail "regstream-gen failed"
out=rollup.csv run kib.avro

status=0
"$regstream" report --csv rollup.csv --at 202302 --check --tolerance 2 >report.txt 2>&1 ||
  status=$?
cat report.txt
[ "$status" -eq 0 ] || fail "headline shares off by more than 2 points (exit $status)"

# Same cohort, person-major, split over three files: the same rollup.
"$gen" --profile kib --seed 20230228 --order person --files 3 --out split.avro 2>>gen.log ||
  fail "regstream-gen (person-major, 3 files) failed"
out=split.csv run split.000.avro split.001.avro split.002.avro
cmp -s rollup.csv split.csv || fail "rollup differs between month-major and person-major/3 files"

# Negative control: move half of every row's acc_goal1 to acc_none (columns
# 9 and 12); goal 1 drops to about 19 % and the check must exit 1.
awk -F, 'BEGIN { OFS = "," } NR == 1 { print; next } { h = int($9 / 2); $12 += $9 - h; $9 = h; print }' \
  rollup.csv >tampered.csv
status=0
"$regstream" report --csv tampered.csv --at 202302 --check --tolerance 2 >tampered.txt 2>&1 ||
  status=$?
[ "$status" -eq 1 ] || { cat tampered.txt; fail "check did not fail on a tampered rollup (exit $status)"; }
# ... and failed as a check (table printed, measures named), not as a read error.
grep -q "goal 1 reached" tampered.txt && grep -q "measure(s)" tampered.txt ||
  { cat tampered.txt; fail "tampered rollup was not read and checked"; }

echo "kib_calibration: OK"
