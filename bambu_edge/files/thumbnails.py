"""A disk cache of plate thumbnails (PNG) under ``data_dir/thumbnails/``, kind to an SD card.

- Keys are chosen by us, never by a file or a browser: ``key_for(sha256_of_file, plate)`` gives
  ``<64 hex>-p<plate>``; anything else is refused (no path can be smuggled in).
- Write once: ``put`` of a key that exists writes nothing; ``get`` only reads (no access-time
  bookkeeping, no per-request writes). Pruning is therefore oldest-written first.
- Atomic: written to a temp file in the same folder, fsynced, then renamed; a crash leaves either
  the old state or the whole new file (temp leftovers are removed on start).
- Only PNGs (signature and IHDR checked) up to ``max_image_bytes`` are stored, and the whole cache
  is held under ``max_bytes`` by deleting the oldest files.

Synchronous and small; from the event loop, call it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

from bambu_edge.files.png import png_size

log = logging.getLogger(__name__)

DIRNAME = "thumbnails"
MAX_CACHE_BYTES = 64 * 1024 * 1024
MAX_IMAGE_BYTES = 4 * 1024 * 1024
SUFFIX = ".png"
TEMP_PREFIX = ".tmp-"

_KEY = re.compile(r"^[0-9a-f]{64}-p\d{1,4}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ThumbnailError(ValueError):
    """Refused: a bad key, or data that is not an acceptable PNG."""


def key_for(file_sha256: str, plate: int) -> str:
    """The cache key of a plate's thumbnail, from the print file's SHA-256 (hex) and the plate."""
    digest = file_sha256.lower() if isinstance(file_sha256, str) else ""
    if not _SHA256.match(digest):
        raise ThumbnailError("thumbnail key needs the file's SHA-256 as 64 hex digits")
    if isinstance(plate, bool) or not isinstance(plate, int) or not 1 <= plate <= 9999:
        raise ThumbnailError("thumbnail key needs a plate number from 1 to 9999")
    return f"{digest}-p{plate}"


class ThumbnailCache:
    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        max_bytes: int = MAX_CACHE_BYTES,
        max_image_bytes: int = MAX_IMAGE_BYTES,
    ):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.max_image_bytes = max_image_bytes
        self._lock = threading.Lock()
        self._sizes: dict[str, tuple[int, int]] = {}  # key -> (write order: mtime ns, size)
        self._last_order = 0
        self.root.mkdir(parents=True, exist_ok=True)
        self._scan()

    @classmethod
    def in_data_dir(cls, data_dir: str | os.PathLike[str], **kw: int) -> ThumbnailCache:
        return cls(Path(data_dir) / DIRNAME, **kw)

    # -- public -----------------------------------------------------------------------------------

    def path(self, key: str) -> Path | None:
        """Where the thumbnail for ``key`` is, if cached."""
        self._check_key(key)
        with self._lock:
            return self.root / f"{key}{SUFFIX}" if key in self._sizes else None

    def get(self, key: str) -> bytes | None:
        path = self.path(key)
        if path is None:
            return None
        try:
            return path.read_bytes()
        except FileNotFoundError:  # removed behind our back
            with self._lock:
                self._forget(key)
            return None

    def has(self, key: str) -> bool:
        return self.path(key) is not None

    def put(self, key: str, data: bytes) -> Path:
        """Store ``data`` under ``key`` unless it is there already (then nothing is written)."""
        self._check_key(key)
        self._check_png(data)
        target = self.root / f"{key}{SUFFIX}"
        with self._lock:
            if key in self._sizes and target.exists():
                return target
            temp = self.root / f"{TEMP_PREFIX}{secrets.token_hex(6)}"
            try:
                with open(temp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(temp, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()
            _fsync_dir(self.root)
            st = target.stat()
            # Strictly increasing, so files written within one clock tick still prune in order.
            self._last_order = max(st.st_mtime_ns, self._last_order + 1)
            self._sizes[key] = (self._last_order, st.st_size)
            self._prune_locked(keep=key)
        return target

    def ensure(self, key: str, produce: Callable[[], bytes | None]) -> Path | None:
        """The cached thumbnail for ``key``; on a miss ``produce()`` is called once and its PNG
        stored. None if it produced nothing or not a PNG (nothing is stored then)."""
        path = self.path(key)
        if path is not None:
            return path
        data = produce()
        if data is None:
            return None
        try:
            return self.put(key, data)
        except ThumbnailError as exc:
            log.info("thumbnail %s not cached: %s", key[:12], exc)
            return None

    def remove(self, key: str) -> bool:
        self._check_key(key)
        with self._lock:
            existed = key in self._sizes
            with contextlib.suppress(FileNotFoundError):
                (self.root / f"{key}{SUFFIX}").unlink()
            self._forget(key)
            return existed

    def remove_file(self, file_sha256: str) -> int:
        """Remove every plate's thumbnail of one print file; returns how many."""
        prefix = key_for(file_sha256, 1)[:-2]
        with self._lock:
            keys = [k for k in self._sizes if k.startswith(prefix)]
        return sum(self.remove(k) for k in keys)

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return sum(size for _, size in self._sizes.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._sizes)

    # -- internals --------------------------------------------------------------------------------

    def _check_key(self, key: str) -> None:
        if not isinstance(key, str) or not _KEY.match(key):
            raise ThumbnailError("not a thumbnail cache key")

    def _check_png(self, data: bytes) -> None:
        if not isinstance(data, bytes | bytearray):
            raise ThumbnailError("a thumbnail must be bytes")
        if len(data) > self.max_image_bytes:
            raise ThumbnailError(f"thumbnail is larger than {self.max_image_bytes} bytes")
        if png_size(bytes(data[:64])) is None:
            raise ThumbnailError("thumbnail is not a PNG image")

    def _forget(self, key: str) -> None:
        self._sizes.pop(key, None)

    def _scan(self) -> None:
        for entry in os.scandir(self.root):
            name = entry.name
            if name.startswith(TEMP_PREFIX):  # an interrupted write
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                continue
            key = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else ""
            if not entry.is_file(follow_symlinks=False) or not _KEY.match(key):
                continue  # not ours: left alone
            st = entry.stat(follow_symlinks=False)
            self._sizes[key] = (st.st_mtime_ns, st.st_size)
            self._last_order = max(self._last_order, st.st_mtime_ns)
        with self._lock:
            self._prune_locked()

    def _prune_locked(self, keep: str | None = None) -> None:
        total = sum(size for _, size in self._sizes.values())
        if total <= self.max_bytes:
            return
        for key, (_, size) in sorted(self._sizes.items(), key=lambda item: item[1][0]):
            if total <= self.max_bytes:
                break
            if key == keep:
                continue
            with contextlib.suppress(FileNotFoundError):
                (self.root / f"{key}{SUFFIX}").unlink()
            self._forget(key)
            total -= size
        log.debug("thumbnail cache pruned to %d bytes", total)


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (the directory entry), where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
