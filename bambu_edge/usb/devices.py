"""What a udev device is to bambu-edge, from its properties alone (pure).

udev's own rules fill the ``ID_*`` properties: ``ID_BUS`` from the usb_id builtin, ``ID_FS_*``
from blkid, ``ID_V4L_CAPABILITIES`` from v4l_id. Only USB devices are offered: the SD card, the
Pi's own camera pipeline nodes and its codec nodes are not something the user plugged in. Every
value is untrusted (a stick's label is chosen by whoever formatted it): cut to length, printable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["camera", "stick"]
MAX_TEXT = 64


@dataclass(frozen=True)
class UsbDevice:
    id: str  # the kernel's name: video0, sda1
    kind: Kind
    devnode: str  # /dev/video0, /dev/sda1
    name: str  # what the user reads: the camera's product, the stick's label
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    fs_type: str | None = None  # sticks
    label: str | None = None  # sticks: the filesystem's label
    major: int | None = None
    minor: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "devnode": self.devnode,
            "name": self.name,
            "vendor": self.vendor,
            "model": self.model,
            "fs_type": self.fs_type,
            "label": self.label,
        }


_HEX = re.compile(r"\\x([0-9a-fA-F]{2})")


def _text(value: Any, *, encoded: bool = False) -> str | None:
    """Plain text for a udev value: ``*_ENC`` values have their ``\\xNN`` escapes decoded; the
    others had spaces replaced with '_' by udev, given back here."""
    if not isinstance(value, str):
        return None
    text = _HEX.sub(lambda m: chr(int(m.group(1), 16)), value) if encoded else value.replace("_", " ")
    clean = "".join(c for c in text if c.isprintable()).strip()
    return clean[:MAX_TEXT] or None


def _enc(props: Mapping[str, str], key: str) -> str | None:
    return _text(props.get(key + "_ENC"), encoded=True) or _text(props.get(key))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def classify(props: Mapping[str, str]) -> UsbDevice | None:
    """A USB camera (a V4L2 capture node) or a USB stick's filesystem; None for anything else."""
    if props.get("ID_BUS") != "usb":
        return None
    devnode = props.get("DEVNAME") or ""
    if not devnode.startswith("/dev/") or len(devnode) > 255:
        return None
    kernel_name = devnode.rsplit("/", 1)[-1]
    vendor = _text(props.get("ID_VENDOR_FROM_DATABASE"), encoded=True) or _enc(props, "ID_VENDOR")
    model = _text(props.get("ID_MODEL_FROM_DATABASE"), encoded=True) or _enc(props, "ID_MODEL")
    serial = _text(props.get("ID_SERIAL_SHORT"))
    subsystem = props.get("SUBSYSTEM")
    if subsystem == "video4linux":
        # A UVC camera has a capture node and a metadata node (capabilities ":"): offer the first.
        if ":capture:" not in props.get("ID_V4L_CAPABILITIES", ""):
            return None
        name = _text(props.get("ID_V4L_PRODUCT"), encoded=True) or model or kernel_name
        return UsbDevice(kernel_name, "camera", devnode, name, vendor, model, serial)
    if subsystem == "block":
        if props.get("ID_FS_USAGE") != "filesystem" or props.get("DEVTYPE") not in ("partition", "disk"):
            return None
        label = _enc(props, "ID_FS_LABEL")
        return UsbDevice(
            kernel_name,
            "stick",
            devnode,
            label or model or kernel_name,
            vendor,
            model,
            serial,
            fs_type=_text(props.get("ID_FS_TYPE")),
            label=label,
            major=_int(props.get("MAJOR")),
            minor=_int(props.get("MINOR")),
        )
    return None
