#!/usr/bin/env bash
# tests/deploy/compose.sh — validates deploy/compose.yaml with no Docker engine.
# tests/deploy/compose_load.py loads the file as `docker compose config` would:
# interpolation of ${VAR}, ${VAR:-default}, ${VAR:?error} from the
# environment, the Compose Specification JSON schema (vendored in the pinned
# check-jsonschema wheel from PyPI, checked by its sha256; unknown keys are
# errors), normalization and the consistency checks (depends_on names a
# service, volumes/networks/secrets are declared, no depends_on cycle, the
# build context and Dockerfile exist). It must fail without POSTGRES_PASSWORD
# (the file demands it), on a misspelt key and on broken copies of the file;
# then tests/deploy/compose_check.py checks the loaded project.
# Python: $COMPOSE_PYTHON when set (tests/deploy/run.sh passes its venv's,
# with pyyaml and jsonschema), else a fresh venv here with the pinned versions.
# Usage: tests/deploy/compose.sh   (prints "compose: N passed, M failed")
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
file=$repo/deploy/compose.yaml
work=$(mktemp -d "${TMPDIR:-/tmp}/deploy_compose.XXXXXX")
trap 'rm -rf "$work"' EXIT
TEST_NAME=compose
# shellcheck source=tests/check.sh
. "$repo/tests/check.sh"
py=${COMPOSE_PYTHON:-}
if [ -z "$py" ]; then
  if python3 -m venv "$work/venv" >"$work/pip.log" 2>&1 &&
    "$work/venv/bin/pip" install --quiet --disable-pip-version-check pyyaml==6.0.3 jsonschema==4.26.0 >>"$work/pip.log" 2>&1; then
    py=$work/venv/bin/python
  else
    bad "venv with pyyaml and jsonschema: $(tail -3 "$work/pip.log")"
    finish
  fi
fi
# The schema's wheel: pinned version; compose_load.py checks its sha256.
t0=$(date +%s)
if "$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  -d "$work/wheel" check-jsonschema==0.39.0 >"$work/dl.log" 2>&1; then
  wheel=$(ls "$work"/wheel/check_jsonschema-0.39.0-*.whl)
  ok "schema wheel $(basename "$wheel") downloaded in $(($(date +%s) - t0)) s (jsonschema $("$py" -c 'import importlib.metadata as m; print(m.version("jsonschema"))'))"
else
  bad "pip download check-jsonschema==0.39.0: $(tail -3 "$work/dl.log")"
  finish
fi
load() { "$py" "$here/compose_load.py" --schema-wheel "$wheel" -f "$@"; }

env -u POSTGRES_PASSWORD "$py" "$here/compose_load.py" --schema-wheel "$wheel" -f "$file" >/dev/null 2>"$work/nopw.err" &&
  bad "the file loads without POSTGRES_PASSWORD" ||
  { grep -q 'required variable POSTGRES_PASSWORD is missing' "$work/nopw.err" && ok "without POSTGRES_PASSWORD the load fails, naming it" ||
    bad "the load failed for another reason: $(cat "$work/nopw.err")"; }
POSTGRES_PASSWORD= load "$file" >/dev/null 2>"$work/emptypw.err" &&
  bad "the file loads with an empty POSTGRES_PASSWORD (:? must refuse it)" ||
  { grep -q 'POSTGRES_PASSWORD' "$work/emptypw.err" && ok "an empty POSTGRES_PASSWORD fails too" ||
    bad "the empty-password load failed for another reason: $(cat "$work/emptypw.err")"; }

# broken NAME 'SED SCRIPT' 'EXPECTED MESSAGE' WHAT: a copy of the file (in a
# deploy/ folder beside the repository's paths, so build paths still resolve)
# edited by SED must fail to load with EXPECTED in the error.
mkdir -p "$work/copy/deploy"
ln -s "$repo/deploy/Dockerfile" "$work/copy/deploy/Dockerfile"
broken() {
  local name=$1 script=$2 want=$3 what=$4 f=$work/copy/deploy/$1.yaml
  cp "$file" "$f"
  sed -i "$script" "$f"
  if cmp -s "$file" "$f"; then
    bad "$what: the edit '$script' changed nothing"
  elif POSTGRES_PASSWORD=x load "$f" >/dev/null 2>"$work/$name.err"; then
    bad "$what: the broken copy loads"
  elif grep -qF -- "$want" "$work/$name.err"; then
    ok "$what: $(grep -F -- "$want" "$work/$name.err" | head -1)"
  else
    bad "$what: failed for another reason: $(cat "$work/$name.err")"
  fi
}
broken typo 's/^    stop_grace_period:/    stop_grace_periode:/' "'stop_grace_periode' was unexpected" "a misspelt service key fails the schema"
broken toptypo 's/^volumes:/volumez:/' "'volumez' does not match" "a misspelt top-level key fails the schema"
broken type 's/^    read_only: true/    read_only: [yes]/' "services.regstream.read_only" "a value of the wrong type fails the schema"
broken dep 's/^      kafka:$/      kafak:/' "depends on undefined service 'kafak'" "depends_on naming no service fails"
broken ctx 's/^      context: \.\.$/      context: ..\/nowhere/' "is not a directory" "a build context that does not exist fails"
broken dockerfile 's/^      dockerfile: deploy\/Dockerfile$/      dockerfile: deploy\/Dockerfile.missing/' "Dockerfile.missing does not exist" "a Dockerfile that does not exist fails"
broken vol 's/^      - postgres-data:/      - postgres-date:/' "undefined volume 'postgres-date'" "a named volume not declared fails"
broken dup 's/^    image: postgres:15$/    image: postgres:15\n    image: postgres:16/' "mapping key 'image' already defined" "a duplicate key fails"
broken interp 's/^    image: postgres:15$/    image: postgres:${PG_VERSION:-15/' "invalid interpolation format" "an unclosed \${ fails"
broken dur 's/^    stop_grace_period: 90s$/    stop_grace_period: 90 seconds/' "invalid duration" "a duration that is not one fails"

# Interpolation forms the file does not use (yet), checked on the function.
if "$py" - "$here" >"$work/interp.out" 2>&1 <<'PY'; then
import sys
sys.path.insert(0, sys.argv[1])
from compose_load import interpolate, LoadError
env = {"A": "a", "E": ""}
cases = [("${A}", "a"), ("$A-x", "a-x"), ("${U}", ""), ("${U:-d}", "d"), ("${E:-d}", "d"), ("${E-d}", ""),
         ("${U-${A}}", "a"), ("${U:-${U2:-deep}}", "deep"), ("$${A}", "${A}"), ("${A:+set}", "set"),
         ("${E:+set}", ""), ("${E+set}", "set"), ("${A:?no}", "a"), ("x${A}y$A", "xaya")]
bad = [(s, got) for s, want in cases if (got := interpolate(s, env)) != want]
for s in ("${U:?need U}", "${U?need U}", "${E:?need E}", "${A", "${1}", "$ x"):
    try:
        interpolate(s, env)
        bad.append((s, "no error"))
    except LoadError:
        pass
print(f"{len(cases) + 6} cases" if not bad else f"wrong: {bad}")
sys.exit(1 if bad else 0)
PY
  ok "interpolation: $(cat "$work/interp.out") of \$VAR, \${VAR}, :- - :? ? :+ + and \$\$"
else
  bad "interpolation: $(cat "$work/interp.out")"
fi

if POSTGRES_PASSWORD=compose-check-$$ load "$file" >"$work/project.json" 2>"$work/load.err"; then
  ok "deploy/compose.yaml loads (interpolation, compose-spec schema, consistency)"
  POSTGRES_PASSWORD=compose-check-$$ "$py" "$here/compose_check.py" "$work/project.json" "$repo" | tee "$work/check.out"
  p=$(sed -n 's/^compose_check: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$work/check.out")
  f=$(sed -n 's/^compose_check: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$work/check.out")
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-1}))
else
  bad "deploy/compose.yaml does not load: $(cat "$work/load.err")"
fi
finish
