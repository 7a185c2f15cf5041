"""Our own timelapse: when to take a frame (pure), and the spool the frames wait in until the print
ends. The spool is one directory per print with a byte cap: over it, every other frame goes and
from then on only every other capture is kept, so a long print still covers start to end without
the SD card (or RAM, for a tmpfs spool) paying for it.

    cameras: {timelapse: {enabled: false, every_layer: true, interval_s: 30, fps: 25,
                          max_spool_mb: 64, spool_dir: null}}

``spool_dir: null`` spools in RAM (/dev/shm, a tmpfs on every Linux) where the daemon may write
there, so the SD card gets only the finished MP4 (bench/timelapse_writes.py measures it); else in
``<data_dir>/timelapse-spool``. A RAM spool outlives a daemon restart, not a reboot.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from bambu_edge.config import ConfigNode


@dataclass(frozen=True)
class TimelapseConfig:
    enabled: bool = False
    every_layer: bool = True  # a frame per layer change; else one every interval_s
    interval_s: int = 30
    fps: int = 25  # of the encoded video
    max_spool_mb: int = 64  # RAM, by default: about 400 frames of 720p before it thins them
    spool_dir: str | None = None  # default: default_spool_dir()


def parse_timelapse(node: ConfigNode) -> TimelapseConfig:
    s = node.mapping({"enabled", "every_layer", "interval_s", "fps", "max_spool_mb", "spool_dir"})
    return TimelapseConfig(
        enabled=bool(s.bool("enabled", False)),
        every_layer=bool(s.bool("every_layer", True)),
        interval_s=s.int("interval_s", 30, lo=2, hi=3600) or 30,
        fps=s.int("fps", 25, lo=1, hi=60) or 25,
        max_spool_mb=s.int("max_spool_mb", 64, lo=1, hi=100_000) or 64,
        spool_dir=s.str("spool_dir"),
    )


RAM_DIR = Path("/dev/shm")


def default_spool_dir(data_dir: Path, ram: Path = RAM_DIR) -> Path:
    """Where the frames wait when ``spool_dir`` is not set: in RAM where the daemon may write, one
    directory per data dir (two daemons on one machine do not share it), else in the data dir."""
    if ram.is_dir() and os.access(ram, os.W_OK | os.X_OK):
        tag = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
        return ram / f"bambu-edge-timelapse-{tag}"
    return data_dir / "timelapse-spool"


@dataclass(slots=True)
class FrameRule:
    """Whether a frame is due: on a new layer (every_layer), else every ``interval_s``."""

    every_layer: bool
    interval_s: float
    last_layer: int | None = None
    last_at: float | None = None

    def due(self, layer: int | None, now: float) -> bool:
        if self.every_layer:
            if layer is None or layer <= 0 or layer == self.last_layer:
                return False
        elif self.last_at is not None and now - self.last_at < self.interval_s:
            return False
        self.last_layer, self.last_at = layer, now
        return True


class Spool:
    """The frames of one print, as numbered JPEG files, within ``max_bytes``."""

    def __init__(self, directory: Path, max_bytes: int):
        self.dir = directory
        self.max_bytes = max_bytes
        self.count = 0  # captures offered
        self.stride = 1  # keep every stride-th capture
        self.bytes = 0  # held now
        self.written = 0  # bytes written over its life (the SD card's share)
        self.last: bytes | None = None  # the newest frame, kept or not

    def open(self) -> None:
        self.dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # in RAM: others keep out
        self.dir.mkdir(exist_ok=True)
        for old in self.dir.glob("*.jpg"):  # left by a daemon that stopped mid-print
            self.bytes += old.stat().st_size

    def frames(self) -> list[Path]:
        return sorted(self.dir.glob("*.jpg"))

    def add(self, jpeg: bytes) -> bool:
        """Keep a capture (if its turn); False when it was skipped."""
        self.last = jpeg
        n, self.count = self.count, self.count + 1
        if n % self.stride:
            return False
        path = self.dir / f"{n:08d}.jpg"
        tmp = path.with_suffix(".part")
        tmp.write_bytes(jpeg)
        os.replace(tmp, path)
        self.bytes += len(jpeg)
        self.written += len(jpeg)
        while self.bytes > self.max_bytes and self._thin():
            pass
        return True

    def _thin(self) -> bool:
        """Drop every other frame kept; keep only every other capture from now on."""
        frames = self.frames()
        if len(frames) < 2:
            return False
        for path in frames[1::2]:
            self.bytes -= path.stat().st_size
            path.unlink()
        self.stride *= 2
        return True

    def remove(self) -> None:
        for path in self.dir.glob("*"):
            path.unlink(missing_ok=True)
        self.dir.rmdir()
        self.bytes = 0
