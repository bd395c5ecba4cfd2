#!/usr/bin/env bash
# deploy/runtime-packages.sh — prints, one a line, the Debian packages that
# hold the shared libraries a built binary links directly (its ELF NEEDED
# entries, resolved with ldd, owners found with dpkg -S). Their own
# dependencies come along when apt installs them.
#
#   deploy/runtime-packages.sh build/regstream
#
# deploy/Dockerfile's build stage runs it so that the runtime stage installs
# exactly what the binary needs: the build packages stay listed once, in
# deploy/install-deps.sh, and the runtime list follows them (libmicrohttpd-dev
# there brings libmicrohttpd12 here). Exits 1 when a library does not resolve
# or no package owns it. Needs ldd, readelf (binutils) and dpkg: Debian only.
set -euo pipefail

bin=${1:?usage: runtime-packages.sh BINARY}
[ -x "$bin" ] || {
  echo "runtime-packages: $bin is not an executable" >&2
  exit 1
}

# Merged /usr: dpkg knows a file under the path its package ships it at,
# /lib/... or /usr/lib/..., while ldd may print the other one.
owner() {
  local p alt
  for p in "$1" "$(readlink -f "$1")"; do
    case "$p" in
      /usr/*) alt=${p#/usr} ;;
      *) alt=/usr$p ;;
    esac
    for q in "$p" "$alt"; do
      if out=$(dpkg -S "$q" 2>/dev/null); then
        printf '%s\n' "${out%%:*}" | sed 's/:.*//'
        return 0
      fi
    done
  done
  return 1
}

ldd_out=$(ldd "$bin")
status=0
pkgs=()
while read -r soname; do
  path=$(printf '%s\n' "$ldd_out" | awk -v s="$soname" '$1 == s && $2 == "=>" {print $3}')
  if [ -z "$path" ] || [ "$path" = "not" ]; then
    echo "runtime-packages: $soname does not resolve (ldd $bin)" >&2
    status=1
    continue
  fi
  if pkg=$(owner "$path"); then
    pkgs+=("$pkg")
  else
    echo "runtime-packages: no package owns $path ($soname)" >&2
    status=1
  fi
done < <(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')

[ "$status" = 0 ] || exit 1
printf '%s\n' "${pkgs[@]}" | sort -u
