"""Where a block device is mounted, from ``/proc/self/mountinfo`` (pure parser + one read).

The daemon runs unprivileged and does not mount anything itself: the stick is mounted by the
system (the image's udev rule running ``systemd-mount``, or udisks2's automount on a desktop),
and found here by its device number, whatever the mount point is called. mountinfo is read in our
own mount namespace, so a mount the service cannot see is not offered.
"""

from __future__ import annotations

import re

_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \040 \011 \012 \134.
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def mount_points(mountinfo: str, major: int, minor: int) -> list[str]:
    """Mount points of device ``major:minor`` whose root is the filesystem's own root (not a
    bind mount of a folder inside it), in mount order."""
    want = f"{major}:{minor}"
    out: list[str] = []
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if len(fields) < 10 or fields[2] != want or fields[3] != "/":
            continue
        out.append(_unescape(fields[4]))
    return out


def find_mount(major: int, minor: int, path: str = "/proc/self/mountinfo") -> str | None:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            points = mount_points(f.read(), major, minor)
    except OSError:
        return None
    return points[0] if points else None
