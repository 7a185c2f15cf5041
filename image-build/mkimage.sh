#!/bin/bash
# Assemble an SD-card image from a root folder without loop devices or partition nodes (these
# build machines have none): the boot partition as a FAT32 file (mkfs.vfat + mtools), the root as
# an ext4 file (mkfs.ext4 -d), an MBR partition table (sfdisk), each placed with dd.
#   image-build/mkimage.sh ROOT_DIR OUT.img
# Layout (as Debian's Raspberry Pi images): MBR; 1 FAT32 "RASPIFIRM" from 4 MiB (the Pi's
# firmware reads it; mounted at /boot/firmware), 2 ext4 "RASPIROOT", grown to the card on first boot.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=${1:?usage: mkimage.sh ROOT_DIR OUT.img}
out=${2:?usage: mkimage.sh ROOT_DIR OUT.img}
BOOT_START_MIB=4
BOOT_MIB=${BOOT_MIB:-256}

[ -f "$root/boot/firmware/config.txt" ] || die "$root/boot/firmware has no config.txt"
tmp=$(mktemp -d "$(dirname "$out")/.mkimage.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Boot partition: what raspi-firmware put in /boot/firmware; then emptied in the root, where it is
# only the mount point.
mkfs.vfat -F 32 -n RASPIFIRM -C "$tmp/boot.img" $((BOOT_MIB * 1024)) >/dev/null
mcopy -i "$tmp/boot.img" -s -p -m "$root"/boot/firmware/* ::/
find "$root/boot/firmware" -mindepth 1 -delete

# Root partition: the files' size and a margin for the first boot (the card's real size comes
# with the resize); one inode per 8 KiB, the root holds many small files.
used_mib=$(du -sx --block-size=1M "$root" | cut -f1)
root_mib=$(((used_mib * 115 / 100) + 256))
mkfs.ext4 -q -F -L RASPIROOT -i 8192 -d "$root" "$tmp/root.img" "${root_mib}M" >/dev/null

boot_start=$((BOOT_START_MIB * 2048))
boot_sectors=$((BOOT_MIB * 2048))
root_start=$((boot_start + boot_sectors))
root_sectors=$((root_mib * 2048))
total_mib=$((BOOT_START_MIB + BOOT_MIB + root_mib))
rm -f "$out"
truncate -s "${total_mib}M" "$out"
sfdisk --quiet "$out" <<TABLE
label: dos
unit: sectors

start=$boot_start, size=$boot_sectors, type=c
start=$root_start, size=$root_sectors, type=83
TABLE
dd if="$tmp/boot.img" of="$out" bs=1M seek=$BOOT_START_MIB conv=notrunc,sparse status=none
dd if="$tmp/root.img" of="$out" bs=1M seek=$((BOOT_START_MIB + BOOT_MIB)) conv=notrunc,sparse status=none
log "image: $out, ${total_mib} MiB (boot ${BOOT_MIB} MiB, root ${root_mib} MiB, ${used_mib} MiB of files)"
