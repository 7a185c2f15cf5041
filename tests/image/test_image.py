"""The Raspberry Pi image (`make image`), checked here without a Pi: its partitions, the boot files
the Pi's firmware reads, the root file system (package, enabled units, host name, journal in RAM,
SSH off, no password), and under qemu-user-static the image's own arm64 bambu-edge: check-config,
and a first start that opens the setup wizard. Booting on a Pi is not tested (docs/image.md).

Slow (an image takes minutes to build), so only when BAMBU_EDGE_IMAGE names one: `make image-test`
builds it and runs this module. As root (loop mount, chroot)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.image import disk
from tests.integration.daemon_proc import DASHBOARD_LINE, NotifySocket, end_process
from tests.integration.waiting import dashboard_tls

IMAGE = os.environ.get("BAMBU_EDGE_IMAGE", "")
pytestmark = [
    pytest.mark.image,
    pytest.mark.skipif(not IMAGE, reason="no image to check: `make image-test` builds one and runs this"),
]
MIB = 1024 * 1024
# The boards the image is for, by the device trees their firmware looks for (upstream kernel).
BOARD_DTBS = {
    "Pi 3 B": "bcm2837-rpi-3-b.dtb",
    "Pi 3 B+": "bcm2837-rpi-3-b-plus.dtb",
    "Pi 3 A+": "bcm2837-rpi-3-a-plus.dtb",
    "Pi 4 B": "bcm2711-rpi-4-b.dtb",
    "Pi 400": "bcm2711-rpi-400.dtb",
    "Zero 2 W": "bcm2837-rpi-zero-2-w.dtb",
}


@pytest.fixture(scope="module")
def image() -> Path:
    path = Path(IMAGE)
    assert path.is_file(), f"BAMBU_EDGE_IMAGE={IMAGE}: no such image"
    return path


@pytest.fixture(scope="module")
def parts(image: Path) -> list[disk.Partition]:
    label, parts = disk.partition_table(image)
    assert label == "dos", "the Pi 3 and Zero 2 W firmware boots from an MBR partition table only"
    return parts


@pytest.fixture(scope="module")
def boot(image: Path, parts: list[disk.Partition], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return disk.copy_fat(image, parts[0], tmp_path_factory.mktemp("boot"))


@pytest.fixture(scope="module")
def root(
    image: Path, parts: list[disk.Partition], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("the image's root is loop-mounted and entered with chroot: run as root")
    with disk.mounted_root(image, parts[1], tmp_path_factory.mktemp("root")) as r:
        yield r


def unit_enabled(root: Path, unit: str) -> list[Path]:
    """The symlinks that enable ``unit`` (in any *.wants / *.requires of /etc/systemd/system). Their
    targets are absolute paths in the image, not on this machine: nothing here follows them."""
    system = root / "etc/systemd/system"
    return [
        d / unit
        for d in sorted(system.iterdir())
        if d.name.endswith((".wants", ".requires")) and (d / unit).is_symlink()
    ]


# --- the disk ------------------------------------------------------------------------------------


def test_partition_table_has_boot_then_root_filling_the_image(image: Path, parts: list[disk.Partition]):
    assert len(parts) == 2
    fat, ext4 = parts
    assert fat.type == "c", "partition 1 is FAT32 (LBA), the one the Pi's firmware reads"
    assert fat.offset == 4 * MIB and fat.bytes >= 256 * MIB
    assert ext4.type == "83"
    assert ext4.start == fat.start + fat.size
    assert ext4.offset + ext4.bytes == image.stat().st_size, (
        "the root is last: grown to the card on first boot"
    )


def test_file_systems_carry_the_labels_fstab_and_cmdline_name(image: Path, parts: list[disk.Partition]):
    fat, ext4 = (disk.probe(image, p) for p in parts)
    assert (fat["TYPE"], fat["LABEL"]) == ("vfat", "RASPIFIRM")
    assert (ext4["TYPE"], ext4["LABEL"]) == ("ext4", "RASPIROOT")


# --- the boot partition --------------------------------------------------------------------------


def test_config_txt_starts_the_64_bit_kernel_with_its_initrd(boot: Path, root: Path):
    config = (boot / "config.txt").read_text()
    assert re.search(r"^arm_64bit=1$", config, re.M)
    kernel = re.search(r"^kernel=(\S+)$", config, re.M)
    initrd = re.search(r"^initramfs (\S+)", config, re.M)
    assert kernel and initrd, config
    # The same kernel and initrd as the root's /boot, which the kernel's modules belong to.
    version = kernel.group(1).removeprefix("vmlinuz-")
    assert initrd.group(1) == f"initrd.img-{version}"
    assert (boot / kernel.group(1)).read_bytes() == (root / "boot" / kernel.group(1)).read_bytes()
    assert (boot / initrd.group(1)).stat().st_size > MIB
    assert (root / "lib/modules" / version).is_dir()


def test_cmdline_txt_mounts_the_root_partition_by_label(boot: Path):
    args = (boot / "cmdline.txt").read_text().split()
    assert "root=LABEL=RASPIROOT" in args
    assert "rootwait" in args and "rw" in args
    # cma=64M (Debian's default when the board is not known) keeps a Pi 4 from booting.
    assert not [a for a in args if a.startswith("cma=")]
    assert "net.ifnames=0" in args, "the network settings name eth0 and wlan0"


def test_firmware_and_device_trees_for_each_board(boot: Path):
    # bootcode.bin: Pi 3 family; start/fixup: Pi 3 family and Zero 2 W; start4/fixup4: Pi 4.
    for name in ("bootcode.bin", "start.elf", "fixup.dat", "start4.elf", "fixup4.dat"):
        assert (boot / name).stat().st_size > 0, name
    missing = {board: dtb for board, dtb in BOARD_DTBS.items() if not (boot / dtb).is_file()}
    assert not missing


# --- the root file system ------------------------------------------------------------------------


def test_bambu_edge_package_is_installed_and_enabled(image: Path, root: Path):
    status = (root / "var/lib/dpkg/status").read_text().split("\n\n")
    entry = next(s for s in status if s.startswith("Package: bambu-edge\n"))
    assert "Status: install ok installed" in entry
    assert "Architecture: arm64" in entry
    version = re.search(r"^Version: (\S+)$", entry, re.M).group(1)
    assert image.name == f"bambu-edge_{version}_arm64.img"
    links = unit_enabled(root, "bambu-edge.service")
    assert [p.parent.name for p in links] == ["multi-user.target.wants"]
    target = os.readlink(links[0])
    assert (root / target.lstrip("/")).is_file(), f"the enabled unit points at {target}, not in the image"
    assert (root / "etc/bambu-edge/config.yaml").is_file()


def test_found_on_the_lan_as_bambu_edge_local(root: Path):
    assert (root / "etc/hostname").read_text() == "bambu-edge\n"
    assert re.search(r"^127\.0\.1\.1\s+bambu-edge$", (root / "etc/hosts").read_text(), re.M)
    assert unit_enabled(root, "avahi-daemon.service")


def test_journal_is_kept_in_ram_with_a_cap(root: Path):
    settings: dict[str, str] = {}
    for conf in sorted((root / "etc/systemd/journald.conf.d").glob("*.conf")):
        for line in conf.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                settings[key.strip()] = value.strip()
    assert settings.get("Storage") == "volatile"
    cap = re.fullmatch(r"(\d+)([KMG])", settings.get("RuntimeMaxUse", ""))
    assert cap and int(cap.group(1)) * {"K": 1, "M": 1024, "G": 1024 * 1024}[cap.group(2)] <= 64 * 1024
    assert not (root / "var/log/journal").exists()


def test_ssh_is_installed_but_off_and_stays_off_on_first_boot(root: Path):
    assert (root / "usr/sbin/sshd").is_file()
    assert not unit_enabled(root, "ssh.service") and not unit_enabled(root, "ssh.socket")
    assert not (root / "etc/systemd/system/sshd.service").exists()
    assert not list((root / "etc/ssh").glob("ssh_host_*")), "every card makes its own host keys"
    # First boot (machine id "uninitialized") applies presets in enable-only mode: this would turn
    # on every unit no preset names, SSH included, but for the image's preset.
    assert (root / "etc/machine-id").read_text() == "uninitialized\n"
    done = disk.chroot(root, "systemctl", "preset-all", "--preset-mode=enable-only")
    assert done.returncode == 0, done.stderr
    assert not unit_enabled(root, "ssh.service")
    assert unit_enabled(root, "bambu-edge.service")


def test_no_account_has_a_password(root: Path):
    for line in (root / "etc/shadow").read_text().splitlines():
        name, pw = line.split(":")[:2]
        assert pw.startswith(("!", "*")), f"{name} can log in with a password"
    assert not (root / "root/.ssh/authorized_keys").exists()


def test_first_boot_units_are_enabled(root: Path):
    for unit in ("bambu-edge-boot-config.service", "bambu-edge-grow-rootfs.service"):
        assert unit_enabled(root, unit), unit
    fstab = (root / "etc/fstab").read_text()
    assert re.search(r"^LABEL=RASPIROOT\s+/\s+ext4\s", fstab, re.M)
    assert re.search(r"^LABEL=RASPIFIRM\s+/boot/firmware\s+vfat\s", fstab, re.M)
    assert not list((root / "boot/firmware").iterdir()), "the boot files live on partition 1 only"


# --- the image's own programs, under qemu --------------------------------------------------------


def test_boot_partition_files_turn_on_ssh_keys_and_wifi(root: Path):
    # What a user drops on the FAT partition before the first boot; the unit's script run as on boot.
    drop = root / "tmp/boot-drop"
    drop.mkdir()
    (drop / "ssh").write_text("")
    (drop / "authorized_keys").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOn7m1 user@laptop\n")
    (drop / "wpa_supplicant.conf").write_text('country=DE\nnetwork={\n ssid="shop"\n psk="secret pass"\n}\n')
    done = disk.chroot(root, "/usr/local/sbin/bambu-edge-boot-config", "/tmp/boot-drop")
    assert done.returncode == 0, done.stdout + done.stderr
    assert unit_enabled(root, "ssh.service")
    assert (root / "etc/ssh/ssh_host_ed25519_key").is_file()
    keys = root / "root/.ssh/authorized_keys"
    assert keys.read_text().endswith("user@laptop\n") and keys.stat().st_mode & 0o777 == 0o600
    wifi = root / "etc/wpa_supplicant/wpa_supplicant.conf"
    assert 'ssid="shop"' in wifi.read_text() and wifi.stat().st_mode & 0o777 == 0o600
    assert (
        "wpa-conf /etc/wpa_supplicant/wpa_supplicant.conf"
        in (root / "etc/network/interfaces.d/wlan0").read_text()
    )
    assert not list(drop.iterdir()), "the files are used once and removed (the Wi-Fi password too)"


def test_check_config_passes_in_the_image(root: Path):
    done = disk.chroot(root, "/usr/bin/bambu-edge", "--config", "/etc/bambu-edge/config.yaml", "check-config")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok (0 printers)" in done.stdout


def test_first_start_opens_the_setup_wizard(root: Path):
    """The daemon as the service starts it on a fresh card: its user, the image's data directory
    (made by tmpfiles at boot), no users yet -> the dashboard asks for the first admin."""
    done = disk.chroot(root, "systemd-tmpfiles", "--create", "/usr/lib/tmpfiles.d/bambu-edge.conf")
    assert done.returncode == 0, done.stderr
    # The image's config, but on loopback, a free port and no discovery (nothing sent to the LAN).
    cfg = yaml.safe_load((root / "etc/bambu-edge/config.yaml").read_text())
    cfg["web"].update(bind="127.0.0.1", https_port=0, http_port=None)
    cfg["discovery"] = {"ssdp": False, "mdns": False}
    (root / "tmp/config.yaml").write_text(yaml.safe_dump(cfg))
    (root / "tmp/config.yaml").chmod(0o644)
    notify = NotifySocket(root / "tmp/notify.sock").follow()
    (root / "tmp/notify.sock").chmod(0o777)
    log = (root / "tmp/daemon.log").open("wb")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "NOTIFY_SOCKET": "/tmp/notify.sock"}
    cmd = ["/usr/bin/bambu-edge", "--config", "/tmp/config.yaml", "run"]
    proc = subprocess.Popen(
        ["chroot", "--userspec=bambu-edge:bambu-edge", str(root), *cmd],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    try:
        # arm64 Python under qemu: start-up takes tens of seconds here, not the Pi's few.
        notify.wait_for("READY=1", timeout=240)
        output = (root / "tmp/daemon.log").read_text(errors="replace")
        port = int(DASHBOARD_LINE.findall(output)[-1])
        setup = get_json(port, "/api/setup")
        assert setup == {"needs_admin": True}
        health = get_json(port, "/api/health")
        assert health["status"] == "ok"
        assert health["components"]["store"]["state"] == "running", health["components"]
    finally:
        end_process(proc, 20)
        log.close()
        notify.close()
    assert (root / "var/lib/bambu-edge/bambu-edge.db").is_file(), "the service user writes its data directory"


def get_json(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", context=dashboard_tls(), timeout=30) as r:
        return json.loads(r.read())
