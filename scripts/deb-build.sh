#!/usr/bin/env bash
# Builds the Debian packages into dist/:  scripts/deb-build.sh [--src DIR] [--version V] ARCH...
#   --src DIR     the source tree to package (default: this checkout, with uncommitted changes)
#   --version V   a version for this build only (a changelog entry in the build copy), e.g. for the
#                 install test's upgrade
#   --out DIR     where the packages go (default: dist/)
# Each ARCH (amd64, arm64) is built on this machine with dpkg-buildpackage -us -uc -b (arm64 with
# -a arm64: the aarch64 wheels come from PyPI, the fan-out plugin is built by aarch64-linux-gnu-gcc).
# The wheels are fetched first into var/wheels/ARCH (the only step that needs the network); the
# build runs in var/deb/ with a clean environment (TESTBED G1: Debian's build tools need
# /usr/bin/python3 first on PATH).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=$root version= out=$root/dist
while [ $# -gt 0 ]; do
  case $1 in
    --src) src=$(cd "$2" && pwd); shift 2 ;;
    --version) version=$2; shift 2 ;;
    --out) mkdir -p "$2"; out=$(cd "$2" && pwd); shift 2 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || set -- amd64 arm64
py=$root/.venv/bin/python
[ -x "$py" ] || py=python3
clean_env=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 SOURCE_DATE_EPOCH="$(date +%s)")
mkdir -p "$out"
for arch in "$@"; do
  t0=$(date +%s%N)
  "$py" "$src/scripts/deb-wheels.py" "$arch" "$root/var/wheels/$arch"
  work=$root/var/deb/$arch
  rm -rf "$work"
  mkdir -p "$work/bambu-edge"
  if [ "$(git -C "$src" rev-parse --show-toplevel 2>/dev/null)" = "$src" ]; then
    # A checkout: tracked and untracked-but-not-ignored files, what a commit of it would hold.
    (cd "$src" && git ls-files -z -co --exclude-standard | xargs -0 tar -cf - --no-recursion) | tar -xf - -C "$work/bambu-edge"
  else
    tar -C "$src" -cf - . | tar -xf - -C "$work/bambu-edge"
  fi
  if [ -n "$version" ]; then
    {
      printf 'bambu-edge (%s) bookworm; urgency=medium\n\n  * Local build %s.\n\n' "$version" "$version"
      printf ' -- bambu-edge maintainers <maintainers@bambu-edge.org>  %s\n\n' "$(date -R)"
      cat "$work/bambu-edge/debian/changelog"
    } > "$work/changelog" && mv "$work/changelog" "$work/bambu-edge/debian/changelog"
  fi
  cross=()
  [ "$arch" = "$(dpkg --print-architecture)" ] || cross=(-a "$arch")
  (cd "$work/bambu-edge" && "${clean_env[@]}" WHEELS="$root/var/wheels/$arch" \
    dpkg-buildpackage -us -uc -b "${cross[@]}" >"$work/build.log" 2>&1) || {
    tail -40 "$work/build.log" >&2; echo "dpkg-buildpackage failed for $arch: $work/build.log" >&2; exit 1; }
  for f in "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes; do mv "$f" "$out/"; done
  deb=$(cd "$out" && ls -t bambu-edge_*_"$arch".deb | head -1)
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  printf '%s: %s, %s KB, built in %d.%d s\n' "$arch" "$out/$deb" \
    "$(( $(stat -c %s "$out/$deb") / 1024 ))" $((ms / 1000)) $((ms % 1000 / 100))
done
