#!/usr/bin/env bash
# tests/deploy/systemd.sh — checks deploy/systemd/regstream.service.
#
# `systemd-analyze verify` needs the unit's ExecStart binary to exist. It runs
# with --root=R, where R holds the unit file unchanged at
# /etc/systemd/system/regstream.service, the built binary at the path ExecStart
# names (/usr/local/bin/regstream) and a copy of this machine's
# /usr/lib/systemd/system (the targets the unit orders itself after); verify
# looks the binary up inside R. Any line it prints (an unknown key, a bad
# value, a missing binary) fails the check. The same verify is run on a copy
# with a misspelt key and without the binary, which must both be caught (the
# check is not vacuous). Then `systemd-analyze security --offline` must rate
# the unit's exposure at 2.0 or below, and the unit must say what README and
# issue 11 promise (UMask=0077, LoadCredential= of the config read from
# ${CREDENTIALS_DIRECTORY}, ProtectSystem=strict, StateDirectory= for
# --snapshot-dir, DynamicUser, NoNewPrivileges, PrivateTmp, Restart=on-failure,
# TimeoutStopSec=90 over the measured 81 s worst clean stop, SIGTERM,
# --metrics-listen 127.0.0.1:9464, --log-format json), and every option of its
# ExecStart must be one `regstream help` lists.
# Usage: tests/deploy/systemd.sh BUILD_DIR   (prints "systemd: N passed, M failed")
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: systemd.sh BUILD_DIR}" && pwd)
unit=$repo/deploy/systemd/regstream.service
TEST_NAME=systemd
# shellcheck source=tests/check.sh
. "$repo/tests/check.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/deploy_systemd.XXXXXX")
trap 'rm -rf "$work"' EXIT

command -v systemd-analyze >/dev/null || {
  bad "systemd-analyze is missing (deploy/install-deps.sh --test installs systemd)"
  finish
}
echo "systemd: $(systemd-analyze --version | head -1)"

exec_path=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
# make_root DIR: the unit unchanged, the binary where ExecStart looks for it.
make_root() {
  mkdir -p "$1/etc/systemd/system" "$1/usr/lib/systemd" "$1$(dirname "$exec_path")"
  cp -a /usr/lib/systemd/system "$1/usr/lib/systemd/"
  cp "$unit" "$1/etc/systemd/system/regstream.service"
  cp "$build/regstream" "$1$exec_path"
}
verify() { systemd-analyze verify --root="$1" regstream.service 2>&1; }

r=$work/root
make_root "$r"
cmp -s "$unit" "$r/etc/systemd/system/regstream.service" || bad "the unit in the root is not the file"
out=$(verify "$r")
rc=$?
[ "$rc" = 0 ] && [ -z "$out" ] && ok "systemd-analyze verify --root: clean (ExecStart $exec_path exists in the root)" ||
  bad "systemd-analyze verify (exit $rc): $out"

r2=$work/broken
make_root "$r2"
sed -i 's/^UMask=/UMsk=/' "$r2/etc/systemd/system/regstream.service"
rm -f "$r2$exec_path"
out2=$(verify "$r2")
grep -q "Unknown key 'UMsk'" <<<"$out2" && grep -q 'is not executable' <<<"$out2" &&
  ok "the same verify catches a misspelt key and a missing binary" ||
  bad "verify missed the broken copy: $out2"

sec=$(systemd-analyze security --offline=yes --root="$r" regstream.service 2>&1)
level=$(sed -n 's/.*Overall exposure level for regstream.service: \([0-9.]*\).*/\1/p' <<<"$sec")
[ -n "$level" ] && awk -v l="$level" 'BEGIN {exit !(l <= 2.0)}' &&
  ok "systemd-analyze security --offline: exposure $level (<= 2.0)" ||
  bad "exposure level '${level:-?}' above 2.0: $(tail -3 <<<"$sec")"

# What the unit must say. key VALUE: the [Service] line must be exactly it.
has() {
  grep -qx -- "$1" "$unit" && ok "$1" || bad "the unit lacks the line '$1'"
}
has 'UMask=0077'
has 'LoadCredential=config:/etc/regstream/regstream.properties'
has 'ProtectSystem=strict'
has 'StateDirectory=regstream'
has 'DynamicUser=yes'
has 'NoNewPrivileges=yes'
has 'PrivateTmp=yes'
has 'Restart=on-failure'
has 'KillSignal=SIGTERM'
has 'TimeoutStopSec=90'
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$unit")
[ -n "$stop" ] && [ "$stop" -gt 81 ] && ok "TimeoutStopSec $stop s is above the measured 81 s worst clean stop" ||
  bad "TimeoutStopSec '$stop' is not above 81 s"

# ExecStart joined across its continuation lines.
cmdline=$(sed -n '/^ExecStart=/,/[^\\]$/p' "$unit" | sed 's/\\$//' | tr -s ' \n' ' ')
for want in '--config ${CREDENTIALS_DIRECTORY}/config' '--snapshot-dir ${STATE_DIRECTORY}' \
  '--metrics-listen 127.0.0.1:9464' '--log-format json' "$exec_path run --config"; do
  grep -qF -- "$want" <<<"$cmdline" && ok "ExecStart has '$want'" || bad "ExecStart lacks '$want': $cmdline"
done
# Every --option of ExecStart must be one the binary knows.
help=$("$build/regstream" help 2>&1)
for opt in $(grep -o -- ' --[a-z-]*' <<<"$cmdline" | sort -u); do
  if grep -q -- "$opt\b" <<<"$help"; then
    ok "ExecStart option $opt is in \`regstream help\`"
  else
    bad "ExecStart option $opt is unknown to \`regstream help\`"
  fi
done
finish
