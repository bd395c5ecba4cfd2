#!/usr/bin/env bash
# tests/deploy/options.sh — every --option that deploy/kubernetes/statefulset.yaml
# (the container's args) and deploy/compose.yaml (regstream's command) pass
# to `regstream run` is one that `regstream help` of BUILD_DIR lists, so a
# renamed or misspelt option fails here, not on a cluster. Usage: tests/deploy/options.sh BUILD_DIR
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: options.sh BUILD_DIR}" && pwd)
passed=0 failed=0
help=$("$build/regstream" help 2>&1)
for f in deploy/kubernetes/statefulset.yaml deploy/compose.yaml; do
  # The list items that are options: "- --name" lines of the file.
  opts=$(sed -n 's/^ *- \(--[a-z][a-z-]*\)$/\1/p' "$repo/$f" | sort -u)
  [ -n "$opts" ] || {
    failed=$((failed + 1))
    echo "FAIL: $f: no options found"
  }
  for opt in $opts; do
    if grep -q -- "$opt\b" <<<"$help"; then
      passed=$((passed + 1))
      echo "ok: $f: $opt is in \`regstream help\`"
    else
      failed=$((failed + 1))
      echo "FAIL: $f: $opt is unknown to \`regstream help\`"
    fi
  done
done
echo "options: $passed passed, $failed failed"
[ "$failed" = 0 ]
