#!/usr/bin/env bash
# The Debian package's install test (make deb-test):  scripts/deb-test.sh [ARCH...]
#
# For each ARCH (default: amd64 arm64), in a fresh Debian 12 root made by debootstrap (the base
# root is cached as a tarball in $DEB_TEST_CACHE; arm64 runs under qemu-user-static):
#   install dist/bambu-edge_*_ARCH.deb with apt; the unit is enabled; user, group and modes are
#   there; `bambu-edge check-config` passes; the daemon, started as the unit starts it (PID 1 is
#   not systemd here: its ExecStartPre/ExecStart, User, groups, UMask, working directory), answers
#   /api/health and a login; with mosquitto added, its fan-out endpoint runs on the packaged plugin.
# On the machine's own architecture, also:
#   upgrade to a newer build (a version bump with one more database migration): config, data and
#   users kept, a backup taken (when the CLI has `backup`), the migration applied;
#   `apt purge` removes config and data.
# Every step is timed. Needs root (chroot, mounts, a network namespace for the daemon's ports).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${DEB_TEST_CACHE:-/var/cache/bambu-edge/deb-test}
mirror=${DEB_TEST_MIRROR:-http://deb.debian.org/debian}
work=$root/var/deb-test
native=$(dpkg --print-architecture)
[ $# -gt 0 ] || set -- amd64 arm64
[ "$(id -u)" -eq 0 ] || { echo "deb-test needs root (chroot, mounts)" >&2; exit 1; }

export LC_ALL=C.UTF-8
clean_path=/usr/sbin:/usr/bin:/sbin:/bin
step_t0=0
step() { step_t0=$(date +%s%N); printf '== %s\n' "$*"; }
done_step() {
  local ms=$(( ($(date +%s%N) - step_t0) / 1000000 ))
  printf '   ok (%d.%d s)\n' $((ms / 1000)) $((ms % 1000 / 100))
}
fail() { echo "FAIL: $*" >&2; exit 1; }

mounted=()
cleanup() {
  local m
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
  mounted=()
}
trap cleanup EXIT

# in ROOT CMD...: run a command in the root with a clean environment.
in_root() {
  local r=$1; shift
  env -i PATH=$clean_path HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive chroot "$r" "$@"
}

base_root() {  # a cached tarball of a minimal Debian 12 root for ARCH
  local arch=$1 tarball=$cache/bookworm-$1.tar.gz
  if [ ! -s "$tarball" ]; then
    step "debootstrap bookworm $arch (cached afterwards in $tarball)"
    mkdir -p "$cache"
    local tmp
    tmp=$(mktemp -d "$cache/build-$arch.XXXXXX")
    chmod 0755 "$tmp"  # it becomes the root's /, which every user must be able to enter
    env -i PATH=$clean_path debootstrap --arch="$arch" --variant=minbase bookworm "$tmp" "$mirror" \
      >"$cache/debootstrap-$arch.log" 2>&1 || { tail -20 "$cache/debootstrap-$arch.log" >&2; fail "debootstrap $arch"; }
    rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*_Packages
    tar -C "$tmp" -czf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$tmp"
    done_step
  fi
  echo "$tarball"
}

fresh_root() {  # fresh_root ARCH DIR: unpack the base root, mount what apt and python need
  local arch=$1 r=$2 tarball
  tarball=$(base_root "$arch" | tail -1)
  cleanup
  safe_rm "$r" && mkdir -p "$r"
  tar -C "$r" -xzf "$tarball"
  chmod 0755 "$r"
  cp /etc/resolv.conf "$r/etc/resolv.conf"
  mount -t proc proc "$r/proc" && mounted+=("$r/proc")
  mount --rbind /dev "$r/dev" && mount --make-rslave "$r/dev" && mounted+=("$r/dev")
  mount -t tmpfs tmpfs "$r/run" && mounted+=("$r/run")
  mount -t tmpfs tmpfs "$r/tmp" && mounted+=("$r/tmp")
}

safe_rm() {  # never into a mount that is still there (the root's /dev is the machine's)
  ! grep -q " $1/" /proc/mounts || fail "still mounted under $1"
  rm -rf --one-file-system "$1"
}

apt_install() {  # apt_install ROOT DEB: install a package file with apt (dependencies from the mirror)
  local r=$1 deb=$2
  cp "$deb" "$r/tmp/"
  in_root "$r" apt-get update -qq
  in_root "$r" apt-get install -y -q --no-install-recommends "/tmp/$(basename "$deb")" >"$r.apt.log" 2>&1 ||
    { tail -30 "$r.apt.log" >&2; fail "apt install $(basename "$deb")"; }
}

# The daemon as the unit starts it, in its own network namespace (ports 3000/3443 from the default
# config, nothing of this machine's in the way); waits for /api/health (and, if named, until that
# component has started or failed: they start one after another, slowly under qemu), logs in as
# admin, stops it. Prints the health answer.
serve_and_probe() {
  local r=$1 component=${2:-} unit=$r/lib/systemd/system/bambu-edge.service
  local pre start user groups umask workdir
  pre=$(sed -n 's/^ExecStartPre=//p' "$unit")
  start=$(sed -n 's/^ExecStart=//p' "$unit")
  user=$(sed -n 's/^User=//p' "$unit")
  groups=$(sed -n 's/^SupplementaryGroups=//p' "$unit" | tr ' ' ',')
  umask=$(sed -n 's/^UMask=//p' "$unit")
  workdir=$(sed -n 's/^WorkingDirectory=//p' "$unit" | sed 's#%S#/var/lib#')
  [ -n "$start" ] && [ -n "$user" ] || fail "unit without ExecStart= or User="
  local as_unit="setpriv --reuid=$user --regid=$user --groups=$user,$groups --inh-caps=-all --no-new-privs"
  local state=/var/lib/bambu-edge conf=/etc/bambu-edge
  cat >"$r/tmp/serve.sh" <<EOF
set -eu
cd ${workdir:-/}
umask $umask
export STATE_DIRECTORY=$state CONFIGURATION_DIRECTORY=$conf INVOCATION_ID=deb-test
$as_unit $pre
$as_unit $start >/tmp/daemon.log 2>&1 &
pid=\$!
python3 /tmp/probe.py 300 $component; rc=\$?
kill -TERM \$pid; wait \$pid || true
exit \$rc
EOF
  cat >"$r/tmp/probe.py" <<'EOF'
# Waits for the daemon's health answer (a deadline, no fixed sleeps) and, if named, for a component
# to have started or failed; then logs in as admin.
import json, ssl, sys, time, urllib.request

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE  # the daemon's self-signed certificate
base = "https://127.0.0.1:3443"
deadline = time.monotonic() + float(sys.argv[1] if len(sys.argv) > 1 else 300)
component = sys.argv[2] if len(sys.argv) > 2 else None
while True:
    try:
        with urllib.request.urlopen(base + "/api/health", context=ctx, timeout=5) as r:
            health = json.load(r)
        if component is None or health["components"].get(component, {}).get("state") != "stopped":
            break
        why = f"{component} has not started"
    except OSError as e:
        why = f"no health answer: {e}"
    if time.monotonic() > deadline:
        print(why, file=sys.stderr)
        print(open("/tmp/daemon.log").read(), file=sys.stderr)
        sys.exit(1)
    time.sleep(0.2)  # polling interval while the daemon starts
print(json.dumps(health))
req = urllib.request.Request(base + "/api/auth/login", method="POST", data=json.dumps(
    {"username": "admin", "password": "install-test-password"}).encode(), headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
    assert r.status == 200 and json.load(r)["token"], "login failed"
print("login ok")
EOF
  # unshare: a private network namespace (its loopback brought up by ip, or by the kernel's
  # default where iproute2 is not in the root).
  env -i PATH=$clean_path LANG=C.UTF-8 unshare --net sh -c "ip link set lo up && chroot '$r' sh /tmp/serve.sh"
}

db_version() {  # the database's schema version, read as the service user
  in_root "$1" setpriv --reuid=bambu-edge --regid=bambu-edge --init-groups python3 -c \
    'import sqlite3; print(sqlite3.connect("file:/var/lib/bambu-edge/bambu-edge.db?mode=ro", uri=True).execute("select max(version) from schema_version").fetchone()[0])'
}

qemu_ready() {  # TESTBED §6: binfmt_misc is not mounted at boot here
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  [ -e "/proc/sys/fs/binfmt_misc/qemu-$1" ] || update-binfmts --enable "qemu-$1"
  [ -e "/proc/sys/fs/binfmt_misc/qemu-$1" ] || fail "qemu-$1 is not registered (apt-get install qemu-user-static binfmt-support)"
}

version=$(cd "$root" && dpkg-parsechangelog -S Version)
summary=()
for arch in "$@"; do
  deb=$root/dist/bambu-edge_${version}_$arch.deb
  [ -f "$deb" ] || fail "$deb missing: run make deb"
  r=$work/$arch
  t_arch=$(date +%s)
  case $arch in amd64) ;; arm64) [ "$native" = arm64 ] || qemu_ready aarch64 ;; *) fail "no test for $arch" ;; esac
  mkdir -p "$work"

  step "$arch: fresh Debian 12 root"
  fresh_root "$arch" "$r"
  [ "$(in_root "$r" dpkg --print-architecture)" = "$arch" ] || fail "root is not $arch"
  done_step

  step "$arch: apt install $(basename "$deb") (with its dependencies, without Recommends)"
  apt_install "$r" "$deb"
  done_step

  step "$arch: unit enabled, user, group, modes"
  [ -L "$r/etc/systemd/system/multi-user.target.wants/bambu-edge.service" ] || fail "unit not enabled"
  in_root "$r" getent passwd bambu-edge >/dev/null || fail "no user bambu-edge"
  in_root "$r" getent group gpio >/dev/null || fail "no group gpio"
  [ "$(in_root "$r" stat -c '%a %U %G' /etc/bambu-edge/config.yaml)" = "640 root bambu-edge" ] || fail "config mode: $(in_root "$r" stat -c '%a %U %G' /etc/bambu-edge/config.yaml)"
  [ "$(in_root "$r" stat -c '%a %U %G' /var/lib/bambu-edge)" = "750 bambu-edge bambu-edge" ] || fail "data dir mode"
  [ -f "$r/usr/share/bambu-edge/web/index.html" ] || fail "no dashboard files"
  [ -f "$r/lib/udev/rules.d/99-bambu-edge-gpio.rules" ] || fail "no udev rule"
  done_step

  step "$arch: check-config, user add (as the service user)"
  in_root "$r" runuser -u bambu-edge -- bambu-edge check-config
  echo install-test-password | in_root "$r" runuser -u bambu-edge -- bambu-edge user add admin
  done_step

  step "$arch: the daemon as the unit starts it answers /api/health and a login"
  health=$(serve_and_probe "$r")
  echo "$health"
  echo "$health" | grep -q '"status": "ok"' || fail "health: $health"
  echo "$health" | grep -q "login ok" || fail "login"
  done_step

  step "$arch: with mosquitto (recommended), the fan-out endpoint runs on the packaged plugin"
  # The root has no compiler: the endpoint comes up only on /usr/lib/bambu-edge/fanout_auth.so,
  # loaded by this architecture's mosquitto, which admits bambu-edge's own client through it.
  # policy-rc.d: mosquitto's postinst must not start a broker of its own from the root.
  printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d" && chmod 0755 "$r/usr/sbin/policy-rc.d"
  in_root "$r" apt-get install -y -q --no-install-recommends mosquitto >"$r.apt.log" 2>&1 ||
    { tail -30 "$r.apt.log" >&2; fail "apt install mosquitto"; }
  rm "$r/usr/sbin/policy-rc.d"
  conf=$r/etc/bambu-edge/config.yaml
  cp -p "$conf" "$r.config.yaml"
  grep -q '^fanout: null$' "$conf" || fail "the default config has no 'fanout: null' line"
  sed -i 's/^fanout: null$/fanout: {port: 8883, bind: 127.0.0.1}/' "$conf"
  health=$(serve_and_probe "$r" fanout)
  cp -p "$r.config.yaml" "$conf"
  echo "$health" | grep "^{" | python3 -c 'import json, sys
fanout = json.load(sys.stdin)["components"]["fanout"]
up = fanout["state"] == "running" and fanout.get("enabled") and fanout.get("broker") and fanout.get("port") == 8883
sys.exit(0 if up else "fan-out: %s" % fanout)' || fail "fan-out endpoint"
  echo "   fan-out running: $(file -b "$r/usr/lib/bambu-edge/fanout_auth.so" | cut -d, -f1-2)"
  done_step

  if [ "$arch" = "$native" ]; then
    step "$arch: build the next version (one more database migration)"
    next=$work/next-src
    rm -rf "$next" && mkdir -p "$next"
    (cd "$root" && git ls-files -z -co --exclude-standard | xargs -0 tar -cf - --no-recursion) | tar -xf - -C "$next"
    last=$(ls "$next/bambu_edge/store/migrations" | sort | tail -1 | cut -c1-4)
    new=$(printf '%04d' $((10#$last + 1)))
    printf 'CREATE TABLE install_test (id INTEGER PRIMARY KEY);\n' >"$next/bambu_edge/store/migrations/${new}_install_test.sql"
    "$root/scripts/deb-build.sh" --src "$next" --version "$version+installtest1" --out "$work/dist" "$arch"
    done_step

    step "$arch: upgrade with apt keeps config, data, users; backup, then migration $new"
    echo "# changed by the install test" >>"$r/etc/bambu-edge/config.yaml"
    before=$(db_version "$r")
    apt_install "$r" "$work/dist/bambu-edge_$version+installtest1_$arch.deb"
    cat "$r.apt.log" | grep "bambu-edge:" || true
    grep -q "changed by the install test" "$r/etc/bambu-edge/config.yaml" || fail "config not kept"
    after=$(db_version "$r")
    [ "$after" = "$((10#$new))" ] || fail "schema version $before -> $after, expected $((10#$new))"
    if in_root "$r" runuser -u bambu-edge -- bambu-edge backup --help >/dev/null 2>&1; then
      ls "$r"/var/lib/bambu-edge/pre-upgrade-"$version"-*.tar.gz >/dev/null || fail "no pre-upgrade backup"
      echo "   backup: $(cd "$r/var/lib/bambu-edge" && ls pre-upgrade-*)"
    else
      grep -q "no 'bambu-edge backup'" "$r.apt.log" || fail "no backup and no word about it"
      echo "   (this bambu-edge has no 'backup' command yet: upgraded without a backup, as postinst said)"
    fi
    health=$(serve_and_probe "$r")
    echo "$health" | grep -q "login ok" || fail "login after upgrade"
    echo "   schema $before -> $after; $(echo "$health" | head -1)"
    done_step

    step "$arch: apt purge removes config and data"
    in_root "$r" apt-get purge -y -q bambu-edge >"$r.apt.log" 2>&1 || { tail -20 "$r.apt.log" >&2; fail "purge"; }
    [ ! -e "$r/etc/bambu-edge" ] || fail "/etc/bambu-edge left: $(ls -A "$r/etc/bambu-edge")"
    [ ! -e "$r/var/lib/bambu-edge" ] || fail "/var/lib/bambu-edge left"
    [ ! -e "$r/etc/systemd/system/multi-user.target.wants/bambu-edge.service" ] || fail "enablement left"
    [ ! -e "$r/usr/lib/bambu-edge" ] || fail "/usr/lib/bambu-edge left: $(find "$r/usr/lib/bambu-edge" | head)"
    done_step
  fi
  cleanup
  summary+=("$arch: $(( $(date +%s) - t_arch )) s")
done
for a in "$@"; do safe_rm "$work/$a"; done
echo "deb-test passed: ${summary[*]}"
