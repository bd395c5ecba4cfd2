#!/usr/bin/env bash
# tests/deploy/dockerfile.sh — builds deploy/Dockerfile with no Docker engine
# and checks the image it makes:
#
#   1. debian:bookworm-slim is stood in for by `debootstrap --variant=minbase
#      bookworm` from Debian's mirror, given the image's apt sources (bookworm,
#      -updates, -security) and its dpkg excludes (no docs, man pages, locales);
#   2. tests/deploy/dockerfile_run.py reads the real deploy/Dockerfile and runs
#      its stages: COPY from this work tree (with its .dockerignore), every RUN
#      in a chroot of the stage's root (install-deps.sh, the Release build, the
#      unit tests, apt-get of the runtime packages, the user);
#   3. in the runtime root: the binary's libraries all resolve (ldd), no
#      compiler and no -dev package is there, the user is not root, port 9464
#      is exposed, ENTRYPOINT is regstream, `regstream help` (the CMD) exits 0,
#      and `regstream demo` (produce, Kafka-mode run, export on the embedded
#      mock cluster) runs as that user, its CSV equals file mode's on the same
#      input, and file mode's dead letters are that user's, 0600.
#
# Downloads every package anew (about 200 MB; nothing is cached between runs).
# Needs root, debootstrap, unshare (util-linux) and Debian's mirror.
# Usage: tests/deploy/dockerfile.sh   (prints "dockerfile: N passed, M failed")
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
mirror=${REGSTREAM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
TEST_NAME=dockerfile
# shellcheck source=tests/check.sh
. "$repo/tests/check.sh"

[ "$(id -u)" = 0 ] || {
  bad "needs root (debootstrap, chroot, mount)"
  finish
}
for tool in debootstrap unshare chroot; do
  command -v "$tool" >/dev/null || {
    bad "$tool is missing (deploy/install-deps.sh --test installs debootstrap)"
    finish
  }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/deploy_dockerfile.XXXXXX")
# --one-file-system: never follow into a mount, should one have outlived the
# namespace (it cannot: every mount lives in unshare's namespace).
trap 'rm -rf --one-file-system "$work"' EXIT
t_start=$(date +%s)

# 1. the stand-in for debian:bookworm-slim
base=$work/base
if ! debootstrap --variant=minbase bookworm "$base" "$mirror" >"$work/debootstrap.log" 2>&1; then
  bad "debootstrap bookworm failed: $(tail -3 "$work/debootstrap.log" | tr '\n' ' ')"
  finish
fi
rm -f "$base/etc/apt/sources.list"
cat >"$base/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
cat >"$base/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
rm -rf "$base/var/cache/apt/archives/"*.deb "$base/var/lib/apt/lists/"*
t_base=$(date +%s)
echo "dockerfile: base root in $((t_base - t_start)) s"

# 2. the Dockerfile's stages
summary=$work/summary.json
if unshare --mount --propagation private python3 "$here/dockerfile_run.py" \
  "$repo/deploy/Dockerfile" "$repo" "$base" "$work" "$summary" >"$work/build.log" 2>&1; then
  ok "deploy/Dockerfile's stages ran ($(grep -c '^dockerfile_run: \[' "$work/build.log") instructions)"
else
  tail -40 "$work/build.log"
  bad "deploy/Dockerfile's stages failed"
  finish
fi
t_build=$(date +%s)
grep 'dockerfile_run: \[\|done in' "$work/build.log"
grep -q '100% tests passed' "$work/build.log" && ok "the unit tests passed in the build stage" ||
  bad "the build stage's log has no '100% tests passed'"

field() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(json.dumps(v) if not isinstance(v, str) else v)' "$summary" "$1"; }
final=$(field final)
rt=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["stages"][s["final"]])' "$summary")
bt=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["stages"]["build"])' "$summary")
user=$(field user)
echo "dockerfile: final stage '$final' (root $rt), USER '$user'"

# 3. the runtime image
bin=/usr/local/bin/regstream
[ "$(field entrypoint)" = '["regstream"]' ] && [ -x "$rt$bin" ] &&
  ok "ENTRYPOINT [\"regstream\"] is $bin" || bad "ENTRYPOINT is $(field entrypoint), $bin executable: $([ -x "$rt$bin" ] && echo yes || echo no)"
cmp -s "$rt$bin" "$bt/src/build/regstream" && ok "the runtime binary is the build stage's" ||
  bad "the runtime binary differs from the build stage's"
python3 -c 'import json,sys; sys.exit(0 if "9464" in json.load(open(sys.argv[1]))["expose"] else 1)' "$summary" &&
  ok "EXPOSE 9464" || bad "9464 is not exposed: $(field expose)"

uid=${user%%:*}
if [ -n "$uid" ] && [ "$uid" != 0 ] && [ "$uid" != root ] &&
  name=$(awk -F: -v u="$uid" '$3 == u || $1 == u {print $1}' "$rt/etc/passwd") && [ -n "$name" ]; then
  ok "USER $user is $name in the image, not root"
else
  bad "USER '$user' is root, empty or not in the image's /etc/passwd"
fi

in_rt() { unshare --mount --propagation private bash -c '
  rt=$1; shift
  mount -t proc proc "$rt/proc" && mount --bind /dev "$rt/dev" && exec chroot "$@"' _ "$rt" "$@"; }

ldd_out=$(in_rt "$rt" ldd "$bin" 2>&1)
if [ $? = 0 ] && ! grep -q 'not found' <<<"$ldd_out" && [ "$(grep -c '=>' <<<"$ldd_out")" -ge 10 ]; then
  ok "ldd resolves all $(grep -c '=>' <<<"$ldd_out") libraries of the binary in the runtime root"
else
  bad "ldd in the runtime root: $(grep 'not found' <<<"$ldd_out" | tr '\n' ' ')"
fi
dev=$(chroot "$rt" dpkg-query -W -f '${Package}\n' | grep -E -- '-dev$' | tr '\n' ' ')
compilers=$(for c in gcc cc cmake ninja; do [ -e "$rt/usr/bin/$c" ] && echo "$c"; done | tr '\n' ' ')
[ -z "$dev$compilers" ] && ok "the runtime root has no -dev package and no compiler" ||
  bad "the runtime root has build packages: $dev$compilers"
grep -q '^ca-certificates$' <(chroot "$rt" dpkg-query -W -f '${Package}\n') &&
  [ -s "$rt/etc/ssl/certs/ca-certificates.crt" ] && ok "ca-certificates is installed (TLS to brokers)" ||
  bad "ca-certificates or its bundle is missing"

readarray -t cmd_args < <(python3 -c 'import json,sys; [print(a) for a in json.load(open(sys.argv[1]))["cmd"] or []]' "$summary")
if in_rt --userspec="$user" "$rt" "$bin" "${cmd_args[@]}" >"$work/cmd.out" 2>&1; then
  ok "the image's default command (regstream ${cmd_args[*]}) exits 0 as $user"
else
  bad "regstream ${cmd_args[*]} failed: $(head -3 "$work/cmd.out")"
fi

# The input is made by the build stage's generator, as a user would bring it.
mkdir -p "$rt/tmp/demo"
chroot "$bt" /src/build/bench/regstream-gen --profile random --seed 7 --persons 600 --months 15 \
  --repeat-rate 0.02 --correction-rate 0.03 --late-rate 0.02 --invalid-rate 0.01 \
  --out /tmp/in.avro 2>/dev/null && cp "$bt/tmp/in.avro" "$rt/tmp/demo/in.avro" ||
  bad "regstream-gen in the build root failed"
chown -R "$user" "$rt/tmp/demo"
t_demo0=$(date +%s.%N)
if in_rt --userspec="$user" "$rt" timeout 120 "$bin" demo --input /tmp/demo/in.avro \
  --csv /tmp/demo/demo.csv --threads 2 >"$work/demo.log" 2>&1; then
  t_demo1=$(date +%s.%N)
  ok "regstream demo ran as $user in the runtime root and exited 0 ($(awk -v a="$t_demo0" -v b="$t_demo1" 'BEGIN {printf "%.1f", b - a}') s)"
else
  bad "regstream demo failed in the runtime root: $(tail -3 "$work/demo.log" | tr '\n' ' ')"
fi
in_rt --userspec="$user" "$rt" "$bin" run --input /tmp/demo/in.avro --csv /tmp/demo/file.csv \
  --dead-letter /tmp/demo/dlq.jsonl --quiet >"$work/file.log" 2>&1 || bad "file mode failed: $(tail -2 "$work/file.log")"
owner=$(stat -c '%u' "$rt/tmp/demo/demo.csv" 2>/dev/null)
dlq=$(stat -c '%u %a' "$rt/tmp/demo/dlq.jsonl" 2>/dev/null)
[ "$owner" = "$uid" ] && [ "$dlq" = "$uid 600" ] &&
  ok "the outputs belong to uid $uid, the dead letters (records) mode 0600" ||
  bad "owners/modes: demo CSV uid '$owner', dead letters '$dlq' (wanted $uid and '$uid 600')"
if [ -s "$rt/tmp/demo/file.csv" ] && cmp -s "$rt/tmp/demo/file.csv" "$rt/tmp/demo/demo.csv"; then
  ok "the demo's CSV equals file mode's ($(wc -l <"$rt/tmp/demo/file.csv") lines)"
else
  bad "the demo's CSV differs from file mode's"
fi
t_end=$(date +%s)
echo "dockerfile: took $((t_end - t_start)) s (base root $((t_base - t_start)) s, stages $((t_build - t_base)) s, checks $((t_end - t_build)) s)"
finish
