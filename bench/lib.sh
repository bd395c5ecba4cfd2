#!/usr/bin/env bash
# bench/lib.sh — helpers the benchmark scripts share (sourced, not run):
# messages, usage from the calling script's top comment, paths relative to
# where it was started, failing with the end of a tool's output.
# The caller sets BENCH_NAME (its name in messages) before sourcing.

note() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "$BENCH_NAME" "$*" >&2
  exit 1
}
# The calling script's top comment, from its second line to `set -euo`.
usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
  exit 2
}
bench_started_in=$PWD
abspath() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$bench_started_in/$1" ;; esac }
# fail_with LOG WHAT: the end of LOG, then WHAT as the error.
fail_with() {
  if [ -s "$1" ]; then
    note "the end of its output:"
    tail -n 15 "$1" | sed 's/^/    /' >&2
  fi
  die "$2"
}
# free_port: a TCP port free on 127.0.0.1 now (the kernel's pick).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
