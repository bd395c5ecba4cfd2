#!/usr/bin/env bash
# tests/deploy/run.sh — every check of the deployment files in deploy/, the
# "deploy" stage of tests/run-all.sh (once per run: it builds an image root,
# it does not depend on the build type):
#
#   systemd.sh BUILD     systemd-analyze verify/security of deploy/systemd/regstream.service
#   k8s_check.py         deploy/kubernetes/*.yaml against the Kubernetes client's models
#   compose.sh           deploy/compose.yaml: interpolation, the compose-spec schema, consistency
#   options.sh BUILD     the options the StatefulSet and compose pass are in `regstream help`
#   grafana_check.py     deploy/grafana/regstream-dashboard.json's panels and PromQL
#   dockerfile.sh        deploy/Dockerfile's stages in debootstrap roots, then the image
#
# The Python packages of k8s_check.py and compose.sh (kubernetes, pyyaml,
# jsonschema; pinned) go into a fresh virtual environment under the run's
# temporary folder. Nothing is kept
# between runs. Prints each part's checks and time, and last
# "deploy: N passed, M failed" (the checks of all parts).
# Usage: tests/deploy/run.sh BUILD_DIR   (BUILD_DIR has the Release regstream)
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/deploy_run.XXXXXX")
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
t_all=$(date +%s)

# part NAME COMMAND...: runs one part, adds up its "X: N passed, M failed".
part() {
  local name=$1 t0 rc=0 line p f
  shift
  echo "deploy: ---- $name"
  t0=$(date +%s)
  "$@" 2>&1 | tee "$work/$name.out" || rc=$?
  line=$(grep -E '^[a-z0-9_]+: [0-9]+ passed, [0-9]+ failed$' "$work/$name.out" | tail -n 1)
  p=$(sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' <<<"$line")
  f=$(sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' <<<"$line")
  if [ -z "$line" ]; then
    p=0 f=1
    echo "FAIL: $name printed no summary line"
  elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then
    f=1
    echo "FAIL: $name exited $rc"
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  echo "deploy: $name: $p passed, $f failed in $(($(date +%s) - t0)) s"
}

venv_setup() {
  python3 -m venv "$work/venv" &&
    "$work/venv/bin/pip" install --quiet --disable-pip-version-check \
      kubernetes==37.0.2 pyyaml==6.0.3 jsonschema==4.26.0
}
t0=$(date +%s)
if venv_setup >"$work/pip.log" 2>&1; then
  export COMPOSE_PYTHON=$work/venv/bin/python
  echo "deploy: kubernetes, pyyaml and jsonschema installed in a venv in $(($(date +%s) - t0)) s"
  part k8s "$work/venv/bin/python" "$here/k8s_check.py" "$repo/deploy/kubernetes"
else
  tail -5 "$work/pip.log"
  echo "FAIL: pip install kubernetes pyyaml jsonschema failed"
  failed=$((failed + 1))
fi
part systemd bash "$here/systemd.sh" "$build"
part compose bash "$here/compose.sh"
part options bash "$here/options.sh" "$build"
part grafana python3 "$here/grafana_check.py" "$repo/deploy/grafana/regstream-dashboard.json"
part dockerfile bash "$here/dockerfile.sh"

echo "deploy: took $(($(date +%s) - t_all)) s"
echo "deploy: $passed passed, $failed failed"
[ "$failed" = 0 ]
