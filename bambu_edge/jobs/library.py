"""The queue's file library: print files uploaded to bambu-edge, kept under their SHA-256 in
``data_dir/queue/files/`` (the same bytes are kept once), with their plate pictures in the shared
thumbnail cache. Registering, listing, reading, forgetting; which jobs use a file is the
dispatcher's business.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from bambu_edge.bus import Event, EventBus
from bambu_edge.files.meta import PrintFileMeta
from bambu_edge.files.safezip import ArchiveError
from bambu_edge.files.thumbnails import ThumbnailCache, ThumbnailError, key_for
from bambu_edge.jobs.errors import QueueError
from bambu_edge.jobs.queue import QueueFile, QueueStore

log = logging.getLogger(__name__)

QUEUE_EVENT = "queue"


def threemf() -> Any:
    # Imported on first use: the 3MF reader costs ~2.5 MB of RSS, and many units never queue a file.
    from bambu_edge.files import threemf

    return threemf


class FileLibrary:
    def __init__(
        self, store: QueueStore, bus: EventBus, data_dir: Path, thumbnails: ThumbnailCache | None = None
    ):
        self.store = store
        self.bus = bus
        self.thumbnails = thumbnails  # shared with the history service: records show the plate
        self.files_dir = data_dir / "queue" / "files"
        self.tmp_dir = data_dir / "queue" / "tmp"
        self.known: dict[int, QueueFile] = {}  # every file, by id (the dispatcher decides from it)

    async def start(self) -> None:
        await asyncio.to_thread(self._prepare_dirs)
        for f in await self.store.list_files():
            self.known[f.id] = f

    def _prepare_dirs(self) -> None:
        self.files_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Uploads that a previous process did not finish: nothing refers to them.
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def file_path(self, qf: QueueFile) -> Path:
        return self.files_dir / f"{qf.sha256}.{qf.kind}"

    def temp_path(self) -> Path:
        return self.tmp_dir / f"upload-{os.urandom(8).hex()}.part"

    async def register(
        self, temp: Path, *, name: str, kind: str, size: int, sha256: str, md5: str, meta: PrintFileMeta
    ) -> tuple[QueueFile, bool]:
        """Keep an uploaded file that was read and checked: moved into place, then recorded (the
        same bytes uploaded before give the file kept then). The temp file is gone afterwards."""
        try:
            existing = await self.store.file_by_sha(sha256)
            if existing is not None:
                return existing, False
            target = self.files_dir / f"{sha256}.{kind}"
            await asyncio.to_thread(os.replace, temp, target)
            qf, created = await self.store.add_file(
                name=name, kind=kind, size=size, sha256=sha256, md5=md5, meta=meta
            )
            self.known[qf.id] = qf
            if created:
                self.bus.publish(Event(QUEUE_EVENT, None, {"file": qf.to_json()}))
            return qf, created
        finally:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(temp.unlink)

    async def list(self) -> list[QueueFile]:
        return await self.store.list_files()

    async def get(self, file_id: int) -> QueueFile:
        qf = await self.store.get_file(file_id)
        if qf is None:
            raise QueueError(404, "not_found", "No such queue file.")
        return qf

    async def forget(self, qf: QueueFile) -> None:
        """The file's bytes and pictures, once its row is deleted."""
        self.known.pop(qf.id, None)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.file_path(qf).unlink)
        if self.thumbnails is not None:
            await asyncio.to_thread(self.thumbnails.remove_file, qf.sha256)

    # --- plate pictures ------------------------------------------------------------------------------

    async def thumbnail_key(self, qf: QueueFile, plate: int) -> str | None:
        """The plate's picture in the shared cache (put there now if needed), by its key."""
        if self.thumbnails is None or qf.kind != "3mf":
            return None
        key = key_for(qf.sha256, plate)
        cached = await self._cached_thumbnail(qf, plate, key)
        return key if cached else None

    async def _cached_thumbnail(self, qf: QueueFile, plate: int, key: str) -> Path | None:
        path = self.file_path(qf)
        assert self.thumbnails is not None
        try:
            return await asyncio.to_thread(
                self.thumbnails.ensure, key, lambda: threemf().read_thumbnail(path, plate)
            )
        except (ArchiveError, OSError, ThumbnailError) as e:
            log.info("queue: no thumbnail for %s plate %d: %s", qf.name, plate, e)
            return None

    async def thumbnail(self, qf: QueueFile, plate: int) -> bytes | None:
        """A plate's PNG: from the shared cache (filled on the first request), else from the file."""
        if qf.kind != "3mf" or qf.meta.plate(plate) is None:
            return None
        if self.thumbnails is None:
            try:
                return await asyncio.to_thread(threemf().read_thumbnail, self.file_path(qf), plate)
            except (ArchiveError, OSError):
                return None
        cached = await self._cached_thumbnail(qf, plate, key_for(qf.sha256, plate))
        if cached is None:
            return None
        try:
            return await asyncio.to_thread(cached.read_bytes)
        except OSError:
            return None
