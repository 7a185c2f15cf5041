#!/bin/sh
# The Debian image's own settings, run INSIDE its root (chroot) after install-bambu-edge.sh and after
# build.sh copied rootfs/ in. Not for the pi-gen stage: Raspberry Pi OS has its own boot files,
# first-boot resize, SSH switch and user setup.
set -eu
export DEBIAN_FRONTEND=noninteractive

# Boot files. raspi-firmware's kernel hook writes config.txt and cmdline.txt from this file, at
# every kernel or firmware upgrade on the Pi too. Root by label (the image's partitions);
# no cma= (Debian's 64M default stops a Pi 4 booting when the board cannot be told apart at build
# time, and a headless appliance needs no more than the kernel's default); the consoles fixed
# (HDMI, then the UART of the Pi 3/4 family) instead of probed from the build machine's /dev.
f=/etc/default/raspi-firmware
sed -i -e 's|^#\{0,1\}ROOTPART=.*|ROOTPART=LABEL=RASPIROOT|' \
  -e 's|^#\{0,1\}CMA=.*|CMA=0|' \
  -e 's|^#\{0,1\}CONSOLES=.*|CONSOLES="tty0 ttyS1,115200"|' "$f"
DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware

# First-boot units (rootfs/etc/systemd/system): settings from the boot partition, and the root
# partition grown to the card.
systemctl enable bambu-edge-boot-config.service bambu-edge-grow-rootfs.service

# SSH installed but off; each card makes its own host keys when SSH is turned on.
systemctl disable ssh.service
rm -f /etc/ssh/ssh_host_*

# No password login for anyone: root is locked (SSH takes keys only), no other account exists.
usermod --lock root

# A fresh identity per card: systemd writes a machine id on first boot (and applies presets:
# rootfs/etc/systemd/system-preset keeps SSH off then).
echo uninitialized >/etc/machine-id
rm -f /var/lib/dbus/machine-id

# Package lists are stale by the time the card boots: `apt update` fetches them.
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/lib/dpkg/*-old
rm -f /var/log/*.log /var/log/apt/* 2>/dev/null || true
