"""A mounted stick's ``bambu-edge/`` folder: the print files on it, and importing them into the
queue through the queue's public API (``temp_path()`` and ``register_file()``), with the same
checks as an upload: size cap, the safe 3MF reader, sliced or refused. Runs blocking file I/O in
worker threads; a stick pulled out mid-copy is an error for that file, nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bambu_edge.files.safezip import MAX_ARCHIVE_BYTES, ArchiveError

FOLDER = "bambu-edge"
MAX_FILES = 200  # listed per stick; a folder of thousands is not a print queue
CHUNK = 256 * 1024


@dataclass(frozen=True)
class StickFile:
    name: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size}


def find_folder(mount: str) -> Path | None:
    """``<mount>/bambu-edge/`` (any case of the name; a real folder, not a link), if there is one."""
    try:
        with os.scandir(mount) as it:
            for e in it:
                if e.name.lower() == FOLDER and e.is_dir(follow_symlinks=False):
                    return Path(e.path)
    except OSError:
        return None
    return None


def list_print_files(mount: str) -> list[StickFile]:
    """The .3mf files directly in ``<mount>/bambu-edge/`` (any case of the folder name), sorted by
    name; links and folders are skipped: a stick is untrusted."""
    try:
        folder = find_folder(mount)
        if folder is None:
            return []
        found: list[StickFile] = []
        with os.scandir(folder) as it:
            for e in it:
                if not e.name.lower().endswith(".3mf") or e.name.startswith("."):
                    continue
                st = e.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) and 0 < st.st_size <= MAX_ARCHIVE_BYTES and e.name.isprintable():
                    found.append(StickFile(e.name, st.st_size))
    except OSError:
        return []
    return sorted(found, key=lambda f: f.name.lower())[:MAX_FILES]


def _copy(src: Path, dst: Path) -> tuple[int, str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    size = 0
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        while chunk := fin.read(CHUNK):
            size += len(chunk)
            if size > MAX_ARCHIVE_BYTES:
                raise ValueError(f"larger than {MAX_ARCHIVE_BYTES >> 20} MB")
            sha.update(chunk)
            md5.update(chunk)
            fout.write(chunk)
    return size, sha.hexdigest(), md5.hexdigest()


def _read_meta(path: Path) -> Any:
    from bambu_edge.files.threemf import read_3mf  # on first use: the reader costs RSS

    return read_3mf(path)


async def import_file(queue: Any, mount: str, name: str) -> dict[str, Any]:
    """Copy one file from the stick into the queue; the queue file's JSON (with ``created``:
    False when the same bytes were in the queue already). Raises ValueError in plain words."""
    src = Path(mount) / FOLDER / name
    if "/" in name or name.startswith(".") or not name.lower().endswith(".3mf"):
        raise ValueError("not a print file on the stick")
    temp: Path = queue.temp_path()
    try:
        try:
            size, sha, md5 = await asyncio.to_thread(_copy, src, temp)
        except OSError as e:
            raise ValueError(f"cannot be read from the stick: {e.strerror or e}") from None
        try:
            meta = await asyncio.to_thread(_read_meta, temp)
        except ArchiveError as e:
            raise ValueError(str(e)) from None
        except (OSError, UnicodeError) as e:
            raise ValueError(f"cannot be read: {e}") from None
        if not meta.sliced:
            raise ValueError("has no G-code: slice it and export the plate as a .gcode.3mf")
        qf, created = await queue.register_file(
            temp, name=name, kind="3mf", size=size, sha256=sha, md5=md5, meta=meta
        )
    finally:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(temp.unlink)
    return {**qf.to_json(), "created": created}
