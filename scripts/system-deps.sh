#!/usr/bin/env bash
# Installs the Debian packages bambu-edge needs for a given purpose, only those missing.
#   scripts/system-deps.sh run    -> what `make run` (demo mode) needs
#   scripts/system-deps.sh test   -> what `make test` needs (real peers for the integration tests)
#   scripts/system-deps.sh deb    -> what `make deb` / `make deb-test` need (build tools, debootstrap, qemu)
set -euo pipefail
purpose=${1:-run}
pkgs=(mosquitto libsystemd-dev pkg-config gcc python3-dev ffmpeg)
# The fan-out endpoint's mosquitto plugin is built from bambu_edge/fanout/auth_plugin.c against these.
pkgs+=(mosquitto-dev libmosquitto-dev)
if [ "$purpose" = test ]; then
  # systemd: systemd-analyze, -sysusers, -tmpfiles check the service files (tests/integration/test_systemd_unit.py)
  # iproute2: network namespaces (mDNS tests)
  pkgs+=(vsftpd openssl chromium fonts-dejavu-core systemd iproute2)
  # The camera tests' RTSPS peer: GStreamer's RTSP server, run by Debian's python3 (python3-gi).
  pkgs+=(gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp python3-gi gstreamer1.0-plugins-base
    gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad gstreamer1.0-tools)
fi
if [ "$purpose" = deb ]; then
  # Building the package (arm64 too: the fan-out plugin is compiled and the wheels stripped for it) and lintian.
  pkgs+=(debhelper dh-python python3-pip lintian binutils-aarch64-linux-gnu fakeroot)
  # The fan-out's mosquitto plugin, compiled for arm64 too (its headers are mosquitto-dev's, above).
  pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
  # The install test: fresh Debian 12 roots, amd64 and (under qemu-user-static) arm64.
  pkgs+=(debootstrap qemu-user-static binfmt-support)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "Installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  echo "Installing Debian packages: ${missing[*]}"
  sudo apt-get update -qq
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "bambu-edge needs these Debian packages: ${missing[*]}" >&2
  echo "Run:  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
