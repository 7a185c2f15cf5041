#!/bin/bash -e
# pi-gen sub-stage: bambu-edge into Raspberry Pi OS by the same install step as the Debian image
# (image-build/install-bambu-edge.sh; files/install-bambu-edge.sh links to it: copy this stage with
# `cp -rL` so the copy holds the script itself). Put exactly one bambu-edge_VERSION_arm64.deb in
# files/ before the build.
shopt -s nullglob
debs=(files/bambu-edge_*_arm64.deb)
if [ ${#debs[@]} -ne 1 ]; then
	echo "stage-bambu-edge: put exactly one bambu-edge_VERSION_arm64.deb in $(pwd)/files (found ${#debs[@]})" >&2
	exit 1
fi
deb=$(basename "${debs[0]}")
install -d "${ROOTFS_DIR}/tmp/bambu-edge-image"
install -m 644 "${debs[0]}" "${ROOTFS_DIR}/tmp/bambu-edge-image/${deb}"
install -m 755 files/install-bambu-edge.sh "${ROOTFS_DIR}/tmp/bambu-edge-image/install-bambu-edge.sh"
on_chroot <<EOF2
/bin/sh /tmp/bambu-edge-image/install-bambu-edge.sh /tmp/bambu-edge-image/${deb}
EOF2
rm -rf "${ROOTFS_DIR}/tmp/bambu-edge-image"
