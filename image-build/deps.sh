#!/bin/bash
# The Debian packages `make image` and `make image-test` need on the build machine, only those
# missing (as root, or with sudo).
set -euo pipefail
pkgs=(mmdebstrap qemu-user-static binfmt-support arch-test mtools dosfstools fdisk e2fsprogs xz-utils)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "Installing Debian packages: ${missing[*]}"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
