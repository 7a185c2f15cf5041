"""The file behind a print started elsewhere (the slicer, the printer's screen, MakerWorld), read from
the printer's own storage: grams and metres per filament, layers, the plate picture.

Where it is (ha-bambulab looks in ``/cache/`` then ``/``, BAMBU.md section 7): the slicer uploads
``<subtask_name>.3mf`` to ``/cache/``; on P1/A1 ``gcode_file`` names the 3MF itself; X1-style
``/data/Metadata/plate_N.gcode`` is a RAM disk that FTPS cannot reach. Best effort: anything that
goes wrong (no such file, printer busy, a hostile or broken archive) means no extra metadata, logged
once, never an error for the print.

The file is held in memory only (a memfd: no copy on the SD card) and only up to ``max_bytes``; it
is read by ``files.threemf`` with every safety limit, off the event loop. The thumbnail goes into
the shared thumbnail cache under ``key_for(sha256 of the file, plate)``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import posixpath
from typing import Any

from bambu_edge.files.safezip import ArchiveError
from bambu_edge.files.threemf import read_3mf, read_thumbnail
from bambu_edge.files.thumbnails import ThumbnailCache, ThumbnailError, key_for
from bambu_edge.jobs.records import MAX_SLOTS, FilamentSlot, PrintFileInfo, plate_of
from bambu_edge.printers.bambu.ftps import PrinterFilesError

log = logging.getLogger(__name__)

SEARCH_DIRS = ("/cache", "/")
MAX_FETCH_BYTES = 32 * 1024 * 1024  # in RAM, one at a time: a Pi Zero 2 W has 512 MB
SUFFIXES = (".3mf", ".gcode.3mf")
MAX_NAME = 255


def candidates(job: str | None, gcode_file: str | None) -> list[str]:
    """File names the print's 3MF may have, most likely first."""
    names: list[str] = []
    base = posixpath.basename(gcode_file or "")
    if base.lower().endswith(".3mf") and "metadata" not in (gcode_file or "").lower():
        names.append(base)  # P1/A1: gcode_file is the 3MF
    if job:
        names += [job] if job.lower().endswith(".3mf") else [job + s for s in SUFFIXES]
    return [n for n in dict.fromkeys(names) if 0 < len(n.encode()) <= MAX_NAME and "/" not in n]


async def find(files: Any, names: list[str]) -> tuple[str, int | None] | None:
    """(remote path, size) of the first candidate present in SEARCH_DIRS."""
    if not names:
        return None
    for folder in SEARCH_DIRS:
        try:
            entries = await files.list(folder)
        except PrinterFilesError as exc:
            if exc.kind == "not_found":
                continue
            raise
        present = {e.name: e for e in entries if not e.is_dir}
        for name in names:
            entry = present.get(name)
            if entry is not None:
                return entry.path, entry.size
    return None


async def fetch(files: Any, path: str, max_bytes: int) -> bytes | None:
    """The file's bytes, or None if it is larger than ``max_bytes`` (the download is abandoned)."""
    download = await files.open_download(path)
    try:
        if download.size is not None and download.size > max_bytes:
            return None
        buf = bytearray()
        async for chunk in download:
            buf += chunk
            if len(buf) > max_bytes:
                return None
        return bytes(buf)
    finally:
        await download.aclose()


def read_info(
    data: bytes, remote_path: str, plate: int | None, thumbnails: ThumbnailCache | None
) -> PrintFileInfo | None:
    """Read a fetched 3MF held in memory (runs in a worker thread)."""
    if not hasattr(os, "memfd_create"):
        return None
    fd = os.memfd_create("bambu-edge-print", os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        path = f"/proc/self/fd/{fd}"
        meta = read_3mf(path, geometry=False)
        chosen = meta.plate(plate) if plate is not None else None
        if chosen is None and len(meta.plates) == 1:
            chosen = meta.plates[0]
        if chosen is None:
            return PrintFileInfo(file=remote_path)
        thumb_key = None
        if thumbnails is not None:
            key = key_for(hashlib.sha256(data).hexdigest(), chosen.index)
            if thumbnails.ensure(key, lambda: read_thumbnail(path, chosen.index)) is not None:
                thumb_key = key
        filament = tuple(
            FilamentSlot(slot=None, type=f.type, color=f.color, grams=f.used_g, meters=f.used_m)
            for f in chosen.filaments[:MAX_SLOTS]
        )
        return PrintFileInfo(
            file=remote_path,
            plate=chosen.index,
            filament=filament,
            thumbnail=thumb_key,
            total_layers=chosen.layers,
        )
    finally:
        os.close(fd)


async def print_file_info(
    files: Any,
    job: str | None,
    gcode_file: str | None,
    thumbnails: ThumbnailCache | None,
    max_bytes: int = MAX_FETCH_BYTES,
) -> PrintFileInfo | None:
    """Find, fetch and read the print's 3MF on the printer; None if that is not possible."""
    names = candidates(job, gcode_file)
    found = await find(files, names)
    if found is None:
        log.info("no 3MF for %r on the printer (looked for %s in %s)", job, names[:3], ", ".join(SEARCH_DIRS))
        return None
    path, size = found
    if size is not None and size > max_bytes:
        log.info("%s is %d MB; only files up to %d MB are read", path, size >> 20, max_bytes >> 20)
        return None
    data = await fetch(files, path, max_bytes)
    if data is None:
        log.info("%s is larger than %d MB; not read", path, max_bytes >> 20)
        return None
    try:
        return await asyncio.to_thread(read_info, data, path, plate_of(gcode_file), thumbnails)
    except (ArchiveError, ThumbnailError) as exc:
        log.info("%s cannot be read: %s", path, exc)
        return None
