"""USB device classification from udev properties (as pyudev's ``Device.properties`` gives them
after udev's rules ran: the sets below are ``udevadm info`` of real devices on a Raspberry Pi OS
bookworm Pi 4), and finding a stick's mount point in mountinfo."""

from __future__ import annotations

from pathlib import Path

from bambu_edge.usb.devices import UsbDevice, classify
from bambu_edge.usb.mounts import mount_points
from bambu_edge.usb.stick import list_print_files

# Logitech C270 (uvcvideo): the capture node.
C270_CAPTURE = {
    "DEVPATH": "/devices/platform/scb/fd500000.pcie/pci0000:00/0000:00:00.0/0000:01:00.0/usb1/1-1/1-1.3/1-1.3:1.0/video4linux/video0",
    "DEVNAME": "/dev/video0",
    "SUBSYSTEM": "video4linux",
    "MAJOR": "81",
    "MINOR": "0",
    "USEC_INITIALIZED": "7041863",
    "ID_V4L_VERSION": "2",
    "ID_V4L_PRODUCT": "C270 HD WEBCAM",
    "ID_V4L_CAPABILITIES": ":capture:",
    "ID_VENDOR": "046d",
    "ID_VENDOR_ENC": "046d",
    "ID_VENDOR_ID": "046d",
    "ID_MODEL": "0825",
    "ID_MODEL_ENC": "0825",
    "ID_MODEL_ID": "0825",
    "ID_REVISION": "0012",
    "ID_SERIAL": "046d_0825_200901010001",
    "ID_SERIAL_SHORT": "200901010001",
    "ID_TYPE": "video",
    "ID_BUS": "usb",
    "ID_USB_INTERFACES": ":0e0100:0e0200:010100:010200:",
    "ID_USB_INTERFACE_NUM": "00",
    "ID_USB_DRIVER": "uvcvideo",
    "ID_VENDOR_FROM_DATABASE": "Logitech, Inc.",
    "ID_MODEL_FROM_DATABASE": "Webcam C270",
    "ID_PATH": "platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.3:1.0",
    "ID_PATH_TAG": "platform-fd500000_pcie-pci-0000_01_00_0-usb-0_1_3_1_0",
    "ID_FOR_SEAT": "video4linux-platform-fd500000_pcie-pci-0000_01_00_0-usb-0_1_3_1_0",
    "COLORD_DEVICE": "1",
    "COLORD_KIND": "camera",
    "DEVLINKS": "/dev/v4l/by-id/usb-046d_0825_200901010001-video-index0 /dev/v4l/by-path/platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.3:1.0-video-index0",
    "TAGS": ":seat:uaccess:",
    "CURRENT_TAGS": ":seat:uaccess:",
}
# The same camera's metadata node: not a picture source.
C270_META = {
    **C270_CAPTURE,
    "DEVNAME": "/dev/video1",
    "MINOR": "1",
    "ID_V4L_CAPABILITIES": ":",
}
# The Pi's own codec (bcm2835-codec): a platform device, not plugged in.
PI_CODEC = {
    "DEVPATH": "/devices/platform/soc/fe00b840.mailbox/bcm2835-codec/video4linux/video10",
    "DEVNAME": "/dev/video10",
    "SUBSYSTEM": "video4linux",
    "MAJOR": "81",
    "MINOR": "5",
    "ID_V4L_VERSION": "2",
    "ID_V4L_PRODUCT": "bcm2835-codec-decode",
    "ID_V4L_CAPABILITIES": ":capture:video_m2m:",
    "ID_PATH": "platform-bcm2835-codec",
    "ID_PATH_TAG": "platform-bcm2835-codec",
}
# SanDisk Cruzer Blade, FAT32, label "PRINTS 1" (usb-storage).
CRUZER_PART = {
    "DEVPATH": "/devices/platform/scb/fd500000.pcie/pci0000:00/0000:00:00.0/0000:01:00.0/usb1/1-1/1-1.4/1-1.4:1.0/host0/target0:0:0/0:0:0:0/block/sda/sda1",
    "DEVNAME": "/dev/sda1",
    "DEVTYPE": "partition",
    "DISKSEQ": "9",
    "PARTN": "1",
    "SUBSYSTEM": "block",
    "MAJOR": "8",
    "MINOR": "1",
    "ID_VENDOR": "SanDisk",
    "ID_VENDOR_ENC": "SanDisk\\x20",
    "ID_VENDOR_ID": "0781",
    "ID_MODEL": "Cruzer_Blade",
    "ID_MODEL_ENC": "Cruzer\\x20Blade\\x20\\x20\\x20\\x20",
    "ID_MODEL_ID": "5567",
    "ID_REVISION": "1.00",
    "ID_SERIAL": "SanDisk_Cruzer_Blade_4C530001230101117094-0:0",
    "ID_SERIAL_SHORT": "4C530001230101117094",
    "ID_TYPE": "disk",
    "ID_INSTANCE": "0:0",
    "ID_BUS": "usb",
    "ID_USB_INTERFACES": ":080650:",
    "ID_USB_INTERFACE_NUM": "00",
    "ID_USB_DRIVER": "usb-storage",
    "ID_PATH": "platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.4:1.0-scsi-0:0:0:0",
    "ID_PART_TABLE_TYPE": "dos",
    "ID_PART_TABLE_UUID": "0a1b2c3d",
    "ID_FS_LABEL": "PRINTS_1",
    "ID_FS_LABEL_ENC": "PRINTS\\x201",
    "ID_FS_UUID": "6A4E-1F2B",
    "ID_FS_UUID_ENC": "6A4E-1F2B",
    "ID_FS_VERSION": "FAT32",
    "ID_FS_TYPE": "vfat",
    "ID_FS_USAGE": "filesystem",
    "ID_PART_ENTRY_SCHEME": "dos",
    "ID_PART_ENTRY_TYPE": "0xc",
    "ID_PART_ENTRY_NUMBER": "1",
    "ID_PART_ENTRY_DISK": "8:0",
    "DEVLINKS": "/dev/disk/by-uuid/6A4E-1F2B /dev/disk/by-label/PRINTS\\x201 /dev/disk/by-id/usb-SanDisk_Cruzer_Blade_4C530001230101117094-0:0-part1",
    "TAGS": ":systemd:",
}
# Its whole disk: a partition table, no filesystem.
CRUZER_DISK = {
    key: value
    for key, value in CRUZER_PART.items()
    if not key.startswith(("ID_FS_", "ID_PART_ENTRY_")) and key != "PARTN"
} | {"DEVNAME": "/dev/sda", "DEVTYPE": "disk", "MINOR": "0"}
# The SD card the Pi boots from.
SD_ROOT = {
    "DEVPATH": "/devices/platform/emmc2bus/fe340000.mmc/mmc_host/mmc0/mmc0:aaaa/block/mmcblk0/mmcblk0p2",
    "DEVNAME": "/dev/mmcblk0p2",
    "DEVTYPE": "partition",
    "SUBSYSTEM": "block",
    "MAJOR": "179",
    "MINOR": "2",
    "ID_NAME": "SC32G",
    "ID_SERIAL": "0x8f1d2a47",
    "ID_PATH": "platform-fe340000.mmc",
    "ID_FS_LABEL": "rootfs",
    "ID_FS_TYPE": "ext4",
    "ID_FS_USAGE": "filesystem",
}


def test_a_usb_camera_is_offered_by_its_capture_node() -> None:
    assert classify(C270_CAPTURE) == UsbDevice(
        id="video0",
        kind="camera",
        devnode="/dev/video0",
        name="C270 HD WEBCAM",
        vendor="Logitech, Inc.",
        model="Webcam C270",
        serial="200901010001",
    )
    assert classify(C270_META) is None
    assert classify(PI_CODEC) is None


def test_a_usb_stick_is_offered_by_its_filesystem_with_its_label() -> None:
    stick = classify(CRUZER_PART)
    assert stick is not None
    assert (stick.id, stick.kind, stick.devnode, stick.name, stick.label) == (
        "sda1",
        "stick",
        "/dev/sda1",
        "PRINTS 1",
        "PRINTS 1",
    )
    assert (stick.vendor, stick.model, stick.fs_type, stick.major, stick.minor) == (
        "SanDisk",
        "Cruzer Blade",
        "vfat",
        8,
        1,
    )
    assert stick.to_json()["devnode"] == "/dev/sda1"
    assert classify(CRUZER_DISK) is None  # the partition table: nothing to read
    assert classify(SD_ROOT) is None  # the SD card is not a stick
    # An unlabelled stick is named after the device.
    unlabelled = {k: v for k, v in CRUZER_PART.items() if not k.startswith("ID_FS_LABEL")}
    assert classify(unlabelled).name == "Cruzer Blade"


def test_hostile_labels_and_odd_values_are_tamed() -> None:
    evil = CRUZER_PART | {"ID_FS_LABEL_ENC": "\\x1b[31mRED\\x0a" + "A" * 500, "MAJOR": "x"}
    stick = classify(evil)
    assert stick is not None and stick.label == "[31mRED" + "A" * 57 and stick.major is None
    assert classify(CRUZER_PART | {"DEVNAME": "sda1"}) is None
    assert classify({}) is None


MOUNTINFO = r"""22 1 179:2 / / rw,noatime shared:1 - ext4 /dev/root rw
25 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
180 22 8:1 / /media/bambu-edge/sda1 rw,nosuid,nodev,noexec,relatime shared:95 - vfat /dev/sda1 rw,fmask=0022
181 22 8:1 /bambu-edge /srv/bind rw,relatime shared:95 - vfat /dev/sda1 rw
190 22 8:17 / /media/pi/PRINTS\0401 rw,nosuid,nodev,relatime shared:99 - vfat /dev/sdb1 rw
"""


def test_mount_points_by_device_number() -> None:
    assert mount_points(MOUNTINFO, 8, 1) == ["/media/bambu-edge/sda1"]  # not the bind mount of a folder
    assert mount_points(MOUNTINFO, 8, 17) == ["/media/pi/PRINTS 1"]
    assert mount_points(MOUNTINFO, 8, 33) == []
    assert mount_points("garbage\n\n1 2 3", 8, 1) == []


def test_print_files_are_listed_from_the_bambu_edge_folder_only(tmp_path: Path) -> None:
    folder = tmp_path / "Bambu-Edge"
    folder.mkdir()
    (folder / "cube.gcode.3mf").write_bytes(b"x" * 10)
    (folder / "Vase.3MF").write_bytes(b"y" * 20)
    (folder / "notes.txt").write_text("no")
    (folder / ".hidden.3mf").write_bytes(b"z")
    (folder / "empty.3mf").write_bytes(b"")
    (folder / "dir.3mf").mkdir()
    (folder / "link.3mf").symlink_to("/etc/passwd")
    (tmp_path / "elsewhere.3mf").write_bytes(b"w")
    assert [(f.name, f.size) for f in list_print_files(str(tmp_path))] == [
        ("cube.gcode.3mf", 10),
        ("Vase.3MF", 20),
    ]
    assert list_print_files(str(tmp_path / "missing")) == []
