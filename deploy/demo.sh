#!/usr/bin/env bash
# deploy/demo.sh — THE main-job command (README): installs what is missing,
# builds build/ (Release) and runs regstream's main job on an embedded default,
# no broker needed:
#
#   1. bench/regstream-gen --profile kib --seed 1   the synthetic stand-in for
#      the evaluation report's cohort (SPEC §8: 1,664 participants in 15
#      municipalities, 2019-2022) as an Avro container file
#   2. regstream demo       the whole Kafka path on librdkafka's in-process
#                           mock cluster: produce the file to a topic, run
#                           the Kafka mode to its end, export the upsert
#                           topic of rollups to a CSV
#                           and write the report's figures as a page
#                           beside it (rollup.html, as report --html)
#   3. regstream report     the report's headline measures at 2023-02 next to
#                           the rollup's
#
# The files stay in a fresh directory under ${TMPDIR:-/tmp}, printed at the end
# (or in DIR with --out DIR). For a real broker: deploy/kafka-local.sh and
# regstream produce / run --brokers / export (README).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out)
      [ $# -ge 2 ] || { echo "demo: --out needs a directory" >&2; exit 2; }
      out=$2
      shift 2
      ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "demo: unknown option '$1' (use --out DIR, --help)" >&2
      exit 2
      ;;
  esac
done

say() { printf 'demo: %s\n' "$*"; }

say "installing missing build dependencies"
bash deploy/install-deps.sh

say "building build/ (Release)"
if [ -f build/CMakeCache.txt ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
else
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build build

if [ -n "$out" ]; then
  mkdir -p "$out"
  dir=$(cd "$out" && pwd)
else
  dir=$(mktemp -d "${TMPDIR:-/tmp}/regstream-demo.XXXXXX")
fi

say "generating the kib profile (seed 1) into $dir/kib.avro"
build/bench/regstream-gen --profile kib --seed 1 --out "$dir/kib.avro"

say "running the main job on the Kafka path: produce, process, export (in-process mock cluster)"
build/regstream demo --input "$dir/kib.avro" --csv "$dir/rollup.csv" \
  --project-start 201901 --project-end 202212

say "headline report at 2023-02"
build/regstream report --csv "$dir/rollup.csv" --at 202302

say "files: $dir/kib.avro (input), $dir/rollup.csv (rollups exported from the output topic)"
say "page:  $dir/rollup.html (the report's figures 1-5 and 7-10 and the monthly series; open it in a browser)"
