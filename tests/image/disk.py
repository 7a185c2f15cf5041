"""Reading a built SD-card image without a Pi: its partition table, its FAT boot partition (mtools,
no mount) and its ext4 root (a read-only loop mount at the partition's offset, with a writable
overlay for what the tests run in it). These machines attach loop devices at an offset but make no
partition nodes (TESTBED 6)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

SECTOR = 512


@dataclass(frozen=True)
class Partition:
    number: int
    start: int  # sectors
    size: int  # sectors
    type: str  # MBR type, hex without 0x

    @property
    def offset(self) -> int:
        return self.start * SECTOR

    @property
    def bytes(self) -> int:
        return self.size * SECTOR


def partition_table(image: Path) -> tuple[str, list[Partition]]:
    """The label type ("dos", "gpt") and the partitions, as sfdisk reads them."""
    doc = json.loads(run(["sfdisk", "--json", str(image)]))["partitiontable"]
    parts = [
        Partition(i + 1, int(p["start"]), int(p["size"]), p["type"].lower())
        for i, p in enumerate(doc.get("partitions", []))
    ]
    return doc["label"], parts


def probe(image: Path, part: Partition) -> dict[str, str]:
    """blkid's view of the file system in a partition: TYPE, LABEL, ..."""
    out = run(["blkid", "--probe", "--output", "export", "--offset", str(part.offset), str(image)])
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def copy_fat(image: Path, part: Partition, dest: Path) -> Path:
    """Every file of a FAT partition, copied out with mtools (image@@offset, no loop device)."""
    dest.mkdir(parents=True, exist_ok=True)
    run(["mcopy", "-s", "-n", "-i", f"{image}@@{part.offset}", "::/", str(dest)])
    return dest


@contextmanager
def mounted_root(image: Path, part: Partition, where: Path) -> Iterator[Path]:
    """The ext4 root read-only at ``where/lower`` (noload: not even its journal is replayed, the
    image file stays as built) under a tmpfs-backed overlay at ``where/root`` that tests may write
    to; plus /proc, /dev and a tmpfs /tmp inside it for chroot. All unmounted on exit."""
    lower, upper, root = where / "lower", where / "rw", where / "root"
    for d in (lower, upper, root):
        d.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        mount(stack, lower, "-o", f"ro,noload,loop,offset={part.offset},sizelimit={part.bytes}", str(image))
        mount(stack, upper, "-t", "tmpfs", "-o", "size=512m,mode=0755", "tmpfs")
        (upper / "up").mkdir()
        (upper / "work").mkdir()
        opts = f"lowerdir={lower},upperdir={upper / 'up'},workdir={upper / 'work'}"
        mount(stack, root, "-t", "overlay", "-o", opts, "overlay")
        mount(stack, root / "proc", "-t", "proc", "proc")
        mount(stack, root / "dev", "--bind", "/dev")
        mount(stack, root / "tmp", "-t", "tmpfs", "-o", "size=256m,mode=1777", "tmpfs")
        yield root


def mount(stack: ExitStack, target: Path, *args: str) -> None:
    run(["mount", *args, str(target)])
    stack.callback(unmount, target)


def unmount(target: Path, timeout: float = 20.0) -> None:
    """umount, again while it is busy: a process started in the chroot may still be exiting (the
    daemon's children die with it, a moment after)."""
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run(["umount", str(target)], capture_output=True, text=True)
        if done.returncode == 0:
            return
        if "busy" not in done.stderr or time.monotonic() > deadline:
            raise AssertionError(f"umount {target} failed ({done.returncode}): {done.stderr}")
        time.sleep(0.1)


def run(cmd: list[str], timeout: float = 120) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def chroot(
    root: Path, *cmd: str, user: str | None = None, timeout: float = 180
) -> subprocess.CompletedProcess:
    """A command in the image's root, arm64 under qemu-user-static (binfmt_misc)."""
    spec = ["--userspec", f"{user}:{user}"] if user else []
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/root"}
    return subprocess.run(
        ["chroot", *spec, str(root), *cmd], capture_output=True, text=True, timeout=timeout, env=env
    )
