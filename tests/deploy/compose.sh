#!/usr/bin/env bash
# tests/deploy/compose.sh — validates deploy/compose.yaml with no Docker engine.
# tests/deploy/composecheck (a few lines of Go over compose-go v2, the library
# `docker compose config` loads files with; pinned in its go.mod/go.sum and
# fetched through the Go module proxy) loads the file: the compose-spec JSON
# schema, interpolation, normalization and the consistency checks. It must
# fail without POSTGRES_PASSWORD (the file demands it) and on a misspelt key;
# then tests/deploy/compose_check.py checks the loaded project.
# Needs Go >= 1.24. Usage: tests/deploy/compose.sh   (prints "compose: N passed, M failed")
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
file=$repo/deploy/compose.yaml
work=$(mktemp -d "${TMPDIR:-/tmp}/deploy_compose.XXXXXX")
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() {
  passed=$((passed + 1))
  echo "ok: $*"
}
bad() {
  failed=$((failed + 1))
  echo "FAIL: $*"
}
command -v go >/dev/null || {
  echo "FAIL: go is missing (the compose check builds compose-go)"
  echo "compose: 0 passed, 1 failed"
  exit 1
}
t0=$(date +%s)
if (cd "$here/composecheck" && GOFLAGS=-mod=readonly go build -o "$work/composecheck" .) >"$work/go.log" 2>&1; then
  ok "composecheck built with compose-go $(sed -n 's/^require github.com\/compose-spec\/compose-go\/v2 //p' "$here/composecheck/go.mod") in $(($(date +%s) - t0)) s"
else
  bad "composecheck did not build: $(tail -5 "$work/go.log")"
  echo "compose: $passed passed, $failed failed"
  exit 1
fi
cc=$work/composecheck

env -u POSTGRES_PASSWORD "$cc" -f "$file" >/dev/null 2>"$work/nopw.err" &&
  bad "the file loads without POSTGRES_PASSWORD" ||
  { grep -q 'POSTGRES_PASSWORD' "$work/nopw.err" && ok "without POSTGRES_PASSWORD the load fails, naming it" ||
    bad "the load failed for another reason: $(cat "$work/nopw.err")"; }
cp "$file" "$work/typo.yaml"
sed -i 's/^    stop_grace_period:/    stop_grace_periode:/' "$work/typo.yaml"
POSTGRES_PASSWORD=x "$cc" -f "$work/typo.yaml" >/dev/null 2>"$work/typo.err" &&
  bad "a misspelt key (stop_grace_periode) loads" ||
  { grep -q 'stop_grace_periode' "$work/typo.err" && ok "a misspelt key fails the schema: $(head -1 "$work/typo.err")" ||
    bad "the misspelt copy failed for another reason: $(cat "$work/typo.err")"; }

if POSTGRES_PASSWORD=compose-check-$$ "$cc" -f "$file" >"$work/project.json" 2>"$work/load.err"; then
  ok "deploy/compose.yaml loads (schema, interpolation, consistency)"
  POSTGRES_PASSWORD=compose-check-$$ python3 "$here/compose_check.py" "$work/project.json" "$repo" | tee "$work/check.out"
  p=$(sed -n 's/^compose_check: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$work/check.out")
  f=$(sed -n 's/^compose_check: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$work/check.out")
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-1}))
else
  bad "deploy/compose.yaml does not load: $(cat "$work/load.err")"
fi
echo "compose: $passed passed, $failed failed"
[ "$failed" = 0 ]
