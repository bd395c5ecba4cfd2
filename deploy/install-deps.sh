#!/usr/bin/env bash
# deploy/install-deps.sh — installs the Debian 12 (bookworm) packages regstream
# needs, and only those that are missing. Safe to run again and again: when
# everything is there it says so and touches nothing (no apt-get update).
#
#   deploy/install-deps.sh            build deps: C toolchain, CMake, Ninja,
#                                     pkg-config and the libraries (Avro C,
#                                     librdkafka, zstd, zlib, lzma, snappy,
#                                     jansson, curl, libmicrohttpd, libpq,
#                                     cmocka)
#   deploy/install-deps.sh --test     + test deps: python3 and its Prometheus
#                                     parser (python3-prometheus-client), clang
#                                     and its sanitizer/libFuzzer runtimes,
#                                     llvm (llvm-symbolizer for their reports),
#                                     debootstrap and systemd (tests/deploy:
#                                     the Dockerfile's stages in a bookworm
#                                     root, systemd-analyze verify of the unit),
#                                     python3-venv (its pinned PyPI packages),
#                                     chromium (tests/report_html.sh: the
#                                     figures page in a headless browser),
#                                     postgresql-15 (tests/postgres_*.sh start
#                                     a private server with its initdb/pg_ctl)
#   deploy/install-deps.sh --kafka    + Java 17 and Maven for the local Kafka
#                                     broker (deploy/kafka-local.sh)
#
# Flags add up (--test --kafka). Runs apt-get as root; otherwise through sudo
# when sudo exists; otherwise stops with the list of packages to install.
# What is missing is found with dpkg-query; only then does it run apt-get
# update and apt-get install -y --no-install-recommends, noninteractively.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

want_test=0
want_kafka=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    --kafka) want_kafka=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "install-deps: unknown option '$arg' (use --test, --kafka, --help)" >&2
      exit 2
      ;;
  esac
done

# gcc's sanitizer runtimes (libasan8, libubsan1, libtsan2) come with gcc in
# build-essential; clang needs libclang-rt-14-dev for ASan/UBSan/TSan/libFuzzer.
packages=(build-essential cmake ninja-build pkg-config
  librdkafka-dev libavro-dev libzstd-dev zlib1g-dev liblzma-dev libsnappy-dev
  libjansson-dev libcurl4-openssl-dev libmicrohttpd-dev libpq-dev libcmocka-dev libjemalloc-dev ca-certificates)
if [ "$want_test" = 1 ]; then
  # llvm: llvm-symbolizer, so clang's sanitizers (tsan, fuzz) print file:line.
  # python3-prometheus-client: the real Prometheus text parser that
  # tests/kafka_metrics.sh reads /metrics with (for /usr/bin/python3).
  # debootstrap, systemd: tests/deploy (dockerfile.sh, systemd.sh); its Python
  # packages (pinned) come from PyPI into a venv of the test's own, so
  # python3-venv (venv with pip; Debian's python3 has no ensurepip without it).
  # chromium: tests/report_html.sh loads the report's page headless.
  # postgresql-15: tests/postgres_*.sh run its initdb and pg_ctl on a private
  # data dir and socket folder (the package's own cluster is not used).
  packages+=(python3 python3-prometheus-client python3-venv clang libclang-rt-14-dev llvm debootstrap systemd
    chromium postgresql-15)
fi

# Java: an already working Java >= 17 plus mvn (however installed) is enough.
java_major() {
  command -v java >/dev/null 2>&1 || return 1
  java -version 2>&1 | sed -n 's/.*version "\([0-9]*\)[."].*/\1/p' | head -n 1
}
if [ "$want_kafka" = 1 ]; then
  major=$(java_major || true)
  if [ -n "$major" ] && [ "$major" -ge 17 ] && command -v mvn >/dev/null 2>&1; then
    echo "install-deps: Java $major and Maven already on PATH"
  else
    packages+=(openjdk-17-jre-headless maven)
  fi
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: error: no dpkg-query/apt-get here; this script knows Debian 12." >&2
  echo "install-deps: install the equivalents of: ${packages[*]}" >&2
  exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
  case "$status" in
    ii*) ;;
    *) missing+=("$pkg") ;;
  esac
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present, nothing to install"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-deps: error: missing packages and not root, and there is no sudo." >&2
  echo "install-deps: as root run: apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${#missing[@]} package(s): ${missing[*]}"
# Wait for another apt/dpkg (e.g. unattended-upgrades) instead of failing.
apt_opts=(-q -o DPkg::Lock::Timeout=600)
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}"

# Check that apt really delivered every package.
still=()
for pkg in "${missing[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
  case "$status" in
    ii*) ;;
    *) still+=("$pkg") ;;
  esac
done
if [ "${#still[@]}" -ne 0 ]; then
  echo "install-deps: error: still missing after apt-get install: ${still[*]}" >&2
  exit 1
fi
echo "install-deps: installed ${missing[*]}"
