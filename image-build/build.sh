#!/bin/bash
# `make image`: the bambu-edge Raspberry Pi image (Pi 3/4, Zero 2 W; arm64) from Debian 12's own
# packages and the bambu-edge .deb. Run as root on Debian 12 (amd64 or arm64).
#   DEB=dist/bambu-edge_VERSION_arm64.deb image-build/build.sh
# Environment: DEB (required), OUT (default dist), VAR (work and cache folder, default var/image),
# XZ=0 to skip the compressed copy, MIRROR / SECURITY_MIRROR (Debian mirrors).
# Leaves OUT/bambu-edge_VERSION_arm64.img, .img.xz and .img.xz.sha256.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
deb=${DEB:-}
out=${OUT:-dist}
var=${VAR:-var/image}
[ -n "$deb" ] || die "DEB=path/to/bambu-edge_VERSION_arm64.deb is required (make deb builds it)"
[ -f "$deb" ] || die "no such package: $deb"
[ "$(dpkg-deb -f "$deb" Package)" = bambu-edge ] || die "$deb is not the bambu-edge package"
[ "$(dpkg-deb -f "$deb" Architecture)" = arm64 ] ||
  die "$deb is for $(dpkg-deb -f "$deb" Architecture); the Pi image needs the arm64 package"
for tool in mmdebstrap mkfs.ext4 mkfs.vfat mcopy sfdisk xz; do
  command -v "$tool" >/dev/null || die "$tool is missing: image-build/deps.sh installs the build tools"
done
need_arm64_emulation
version=$(dpkg-deb -f "$deb" Version)
img="$out/bambu-edge_${version}_arm64.img"
mkdir -p "$out" "$var"
rm -f "$img" "$img.xz" "$img.xz.sha256"
t0=$SECONDS

base=$("$here/base.sh" "$var")
t_base=$((SECONDS - t0))

work="$var/work"
root="$work/root"
trap 'root_unmount "$root"' EXIT
remove_tree "$work"
mkdir -p "$root"
tar --extract --file "$base" --directory "$root" --preserve-permissions --numeric-owner \
  --xattrs --xattrs-include='*'
cp -a "$here/rootfs/." "$root/"
chown -R root:root "$root/etc/fstab" "$root/etc/network" "$root/etc/systemd/system" \
  "$root/etc/systemd/system-preset" "$root/usr/local/sbin"
stage="$root/tmp/bambu-edge-image"
mkdir -p "$stage"
cp "$deb" "$here/install-bambu-edge.sh" "$here/configure-debian-image.sh" "$stage/"

t1=$SECONDS
root_mount "$root"
chroot "$root" /bin/sh /tmp/bambu-edge-image/install-bambu-edge.sh "/tmp/bambu-edge-image/$(basename "$deb")"
chroot "$root" /bin/sh /tmp/bambu-edge-image/configure-debian-image.sh
root_unmount "$root"
rm -rf "$stage"
t_install=$((SECONDS - t1))

t2=$SECONDS
"$here/mkimage.sh" "$root" "$img"
remove_tree "$work"
t_assemble=$((SECONDS - t2))

t3=$SECONDS
if [ "${XZ:-1}" != 0 ]; then
  xz --threads=0 -6 --keep --force "$img"
  (cd "$out" && sha256sum "$(basename "$img").xz" >"$(basename "$img").xz.sha256")
fi
t_xz=$((SECONDS - t3))

raw_mib=$(($(stat -c %s "$img") / 1048576))
log "done in $((SECONDS - t0)) s (base $t_base s, install $t_install s, assemble $t_assemble s, xz $t_xz s)"
log "  $img: $raw_mib MiB raw"
if [ -f "$img.xz" ]; then
  log "  $img.xz: $(($(stat -c %s "$img.xz") / 1048576)) MiB"
fi
