#!/usr/bin/env bash
# snapshot.sh — the snapshot benchmark of issue 4 / SPEC §6: shards of 1, 3 and
# 6 million persons built from the `national` generator's records (12 months
# through the rules, in process: bench/bench_snapshot.c), then per size the
# snapshot's bytes per person, the capture (the pause of the shard's owner),
# the write (sort, encode, zstd, write, fsync, rename, directory fsync,
# prune) and the load into a fresh shard, checked equal to the original.
# With --variants also the layout and zstd-level measurements behind the
# format's choices. One entry (machine, load average, command, tables) is
# appended to bench/results/snapshot.md.
#
#   bench/snapshot.sh [--persons 1000000,3000000,6000000] [--runs K] [--variants]
#                     [--dir DIR]
#
# Environment: BUILD_DIR (build), built (Release) when bench-snapshot is missing.
# The snapshots go to DIR (bench/data/snapshot), on the file system being
# measured; the bench removes its own files afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

persons=1000000,3000000,6000000 runs=3 variants=() dir=bench/data/snapshot
while [ $# -gt 0 ]; do
  case "$1" in
    --persons) persons=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --variants) variants=(--variants); shift ;;
    --dir) dir=$2; shift 2 ;;
    *) echo "snapshot.sh: unknown option $1 (see the comment at the top)" >&2; exit 2 ;;
  esac
done

build=${BUILD_DIR:-build}
if [ ! -x "$build/bench/bench-snapshot" ]; then
  echo "snapshot.sh: building $build/ (Release)" >&2
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" --target bench-snapshot >/dev/null
fi

mkdir -p "$dir"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cmd="BUILD_DIR=$build bench/snapshot.sh --persons $persons --runs $runs ${variants[*]} --dir $dir"
fs=$(df -T "$dir" | awk 'NR == 2 { print $2 }')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
"$build/bench/bench-snapshot" --persons "$persons" --runs "$runs" "${variants[@]}" --dir "$dir" >"$out"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

results=bench/results/snapshot.md
if [ ! -s "$results" ]; then
  cat >"$results" <<'EOF'
# Snapshot benchmark (bench/snapshot.sh)

Shards built from the `national` generator's records (seed 1, 12 months from 202301, the
rules' defaults), one state shard per size; each entry is one run of the script. Goals (issue 4):
at most 8 bytes per person, at most 1 s to write or to load 6 million persons. "Capture" is the
pause of the shard's owner (snapshot_capture); "write" is everything after it
(snapshot_image_write: sort, encode, zstd, write, fsync, rename, directory fsync, prune), run on
another thread in the program; "load" is snapshot_load_latest into a fresh shard (read, CRC,
zstd, decode, checks, map inserts). The machine is shared with other sessions: the load
average is printed with each entry, and CPU time next to wall time.
EOF
fi
{
  echo
  echo "## $(date -u +%Y-%m-%dT%H:%MZ) — $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), zstd $(pkg-config --modversion libzstd 2>/dev/null || echo '?')"
  echo
  echo "Command: \`$cmd\`; snapshot directory on $fs. Load average (1/5/15 min) before: $load_before; after: $load_after."
  echo
  cat "$out"
} >>"$results"
cat "$out"
echo "snapshot.sh: results appended to $results" >&2
