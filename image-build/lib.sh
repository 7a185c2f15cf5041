# Shared by the image-build scripts (sourced).
# Debian's tools want Debian's own python3 and tools first on PATH (TESTBED G1).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C.UTF-8
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}

log() { echo "image-build: $*" >&2; }
die() { echo "image-build: error: $*" >&2; exit 1; }

# arm64 maintainer scripts run under qemu-user-static through binfmt_misc.
need_arm64_emulation() {
  [ "$(id -u)" -eq 0 ] || die "run as root (chroot, device nodes and file ownership in the image)"
  if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc"
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    if command -v update-binfmts >/dev/null; then update-binfmts --enable qemu-aarch64 || true; fi
  fi
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] ||
    die "no qemu-aarch64 binfmt handler: apt-get install qemu-user-static binfmt-support"
}

# Mounts for running maintainer scripts in ROOT with chroot: /proc, /sys, /dev and /dev/pts, and
# the build machine's resolv.conf (apt fetches from the mirror). Undone by root_unmount, which the
# callers trap on EXIT, so a failed build leaves nothing mounted under var/.
root_mount() {
  local root=$1
  mount -t proc proc "$root/proc"
  mount -t sysfs sysfs "$root/sys"
  mount --bind /dev "$root/dev"
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts"
  if [ -e "$root/etc/resolv.conf" ] || [ -L "$root/etc/resolv.conf" ]; then
    mv "$root/etc/resolv.conf" "$root/etc/resolv.conf.image-build"
  fi
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  # No service starts in the build's chroot.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
}

# Mount points at or under DIR, deepest first.
mounts_under() {
  awk -v r="$(realpath "$1")" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r
}

unmount_under() {
  local m
  [ -d "$1" ] || return 0
  for m in $(mounts_under "$1"); do
    umount "$m" || umount -l "$m"
  done
}

root_unmount() {
  local root=$1
  [ -d "$root" ] || return 0
  unmount_under "$root"
  rm -f "$root/usr/sbin/policy-rc.d" "$root/etc/resolv.conf"
  if [ -e "$root/etc/resolv.conf.image-build" ] || [ -L "$root/etc/resolv.conf.image-build" ]; then
    mv "$root/etc/resolv.conf.image-build" "$root/etc/resolv.conf"
  fi
}

# Remove a work folder, refusing while anything is still mounted under it (rm -rf would follow
# into a bound /dev).
remove_tree() {
  local dir=$1
  [ -e "$dir" ] || return 0
  unmount_under "$dir"
  if [ -n "$(mounts_under "$dir")" ]; then
    die "still mounted under $dir, not removing it"
  fi
  rm -rf --one-file-system "$dir"
}
