#!/bin/bash
# The image's base root file system: Debian 12 arm64 from Debian's mirror (mmdebstrap, run by real
# root, maintainer scripts under qemu-user-static), kept as a tarball under var/image/ and reused
# while packages.txt and this script stay the same. Prints the tarball's path.
#   image-build/base.sh OUTDIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
outdir=${1:?usage: base.sh OUTDIR}
mkdir -p "$outdir"

packages=$(sed -e 's/#.*//' "$here/packages.txt" | tr -s ' \n' ',' | sed -e 's/^,//' -e 's/,$//')
key=$(cat "$here/packages.txt" "$here/base.sh" | sha256sum | cut -c1-12)
tarball="$outdir/base-$SUITE-arm64-$key.tar"
if [ -s "$tarball" ]; then
  log "base root: cached $(basename "$tarball")"
  echo "$tarball"
  exit 0
fi
need_arm64_emulation
log "base root: mmdebstrap $SUITE arm64 (first build, or packages.txt changed)"
start=$SECONDS
# mmdebstrap picks its output format from the name: it must end in .tar.
partial=${tarball%.tar}.partial.tar
rm -f "$partial"
# --dpkgopt: no manual pages, translations or documentation on the card (licences stay).
# The sources are the image's own /etc/apt/sources.list: `apt upgrade` on the Pi uses them.
mmdebstrap --quiet --mode=root --variant=minbase --arch=arm64 \
  --include="$packages" \
  --aptopt='Acquire::Languages "none"' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-include=/usr/share/doc/bambu-edge/*' \
  --customize-hook='chroot "$1" apt-get clean' \
  "$SUITE" "$partial" \
  "deb $MIRROR $SUITE main non-free-firmware" \
  "deb $MIRROR $SUITE-updates main non-free-firmware" \
  "deb $SECURITY_MIRROR $SUITE-security main non-free-firmware" >&2
mv "$partial" "$tarball"
# Older bases (another package list) are of no further use.
find "$outdir" -maxdepth 1 -name "base-*.tar" ! -name "$(basename "$tarball")" -delete
log "base root: built in $((SECONDS - start)) s, $(du -h "$tarball" | cut -f1)"
echo "$tarball"
