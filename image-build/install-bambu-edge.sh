#!/bin/sh
# The one install step of bambu-edge into an OS image, run INSIDE the target root file system (a
# chroot) as root. Both builders call it: image-build/build.sh (the Debian 12 image) and the pi-gen
# stage in image-build/pi-gen/ (Raspberry Pi OS). What is only for the Debian image (fstab, network,
# first-boot units, SSH off) is in configure-debian-image.sh.
#   install-bambu-edge.sh /path/inside/root/bambu-edge_VERSION_arm64.deb
set -eu
deb=${1:?usage: install-bambu-edge.sh PATH/TO/bambu-edge_VERSION_arm64.deb}
[ -f "$deb" ] || { echo "install-bambu-edge: no such package: $deb" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive

# The package and its dependencies from the image's own apt sources. Of its Recommends, the two that
# serve on a Pi: ffmpeg (cameras, timelapses) and avahi-daemon (https://bambu-edge.local:3443).
# mosquitto is left out: printers run their own broker, it only serves `bambu-edge demo`.
apt-get update -qq
case "$deb" in /*) ;; *) deb=./$deb ;; esac
apt-get install -y -qq --no-install-recommends "$deb" ffmpeg avahi-daemon

# Found on the LAN as bambu-edge.local (avahi publishes the host name).
echo bambu-edge >/etc/hostname
if grep -q '^127\.0\.1\.1' /etc/hosts; then
  sed -i 's/^127\.0\.1\.1.*/127.0.1.1\tbambu-edge/' /etc/hosts
else
  printf '127.0.1.1\tbambu-edge\n' >>/etc/hosts
fi

# The journal in RAM with a cap, to spare the SD card: a Pi Zero 2 W's /run is about 45 MB.
mkdir -p /etc/systemd/journald.conf.d
cat >/etc/systemd/journald.conf.d/60-bambu-edge-volatile.conf <<'CONF'
# bambu-edge image: the journal lives in RAM (/run/log/journal) and is lost on reboot; this spares
# the SD card. Remove this file for a persistent journal in /var/log/journal.
[Journal]
Storage=volatile
RuntimeMaxUse=16M
RuntimeMaxFileSize=4M
CONF
rm -rf /var/log/journal
# A syslog daemon would write every line to the card all the same.
if [ -e /lib/systemd/system/rsyslog.service ]; then
  systemctl disable rsyslog.service
fi

# On at boot. The daemon starts with no user: the dashboard opens the setup wizard (create the first
# admin), so no account or password is baked into the image.
systemctl enable bambu-edge.service avahi-daemon.service
echo "install-bambu-edge: $(dpkg-query -W -f='${Package} ${Version}' bambu-edge) installed, enabled"
