"""The printer's storage as print commands name it: the url/param forms of BAMBU.md sections 6 and
13.4, a path kept inside the storage folder, and the timing a named file's metadata predicts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bambu_edge.files.gcode import read_gcode_header
from bambu_edge.files.meta import PrintFileMeta
from bambu_edge.files.threemf import read_3mf

# Where project_file's url and gcode_file's param point on the printer's storage (BAMBU.md sections
# 6 and 13.4: file:///sdcard/... on legacy models, ftp:///... on newer ones; OBA also shows
# file:///mnt/sdcard and ftp:///name).
STORAGE_URL_PREFIXES = ("file:///sdcard/", "file:///mnt/sdcard/", "ftp:///", "ftp://")
STORAGE_PATH_PREFIXES = ("/sdcard/", "/mnt/sdcard/")
_PLATE_PARAM = re.compile(r"^Metadata/plate_(\d{1,4})\.gcode$")


def storage_path_from_url(url: Any) -> str | None:
    """The storage-relative path a project_file url names ("cache/x.3mf"); None if not understood."""
    if not isinstance(url, str):
        return None
    for prefix in STORAGE_URL_PREFIXES:
        if url.startswith(prefix):
            return url[len(prefix) :].lstrip("/") or None
    return None


def storage_path_from_gcode_param(param: Any) -> str | None:
    if not isinstance(param, str):
        return None
    for prefix in STORAGE_PATH_PREFIXES:
        if param.startswith(prefix):
            return param[len(prefix) :].lstrip("/") or None
    return param.lstrip("/") or None


def plate_from_param(param: Any) -> int | None:
    m = _PLATE_PARAM.match(param) if isinstance(param, str) else None
    return int(m.group(1)) if m else None


def resolve_storage_file(root: Path, rel: str) -> Path | None:
    """``rel`` inside ``root``, or None if it would leave it (``..``, absolute, NUL)."""
    if "\0" in rel or any(part == ".." for part in rel.split("/")):
        return None
    base = root.resolve()
    target = (base / rel).resolve()
    return target if target.is_relative_to(base) and target != base else None


def _read_print_file(path: Path, command: str) -> PrintFileMeta:
    # The file readers of the daemon itself: a virtual printer reads a 3MF as safely as we do.
    if command == "project_file":
        return read_3mf(path, geometry=False)
    return read_gcode_header(path)


async def plan_from_storage(
    root: Path, command: str, body: Mapping[str, Any]
) -> tuple[float | None, int | None] | str:
    """(predicted seconds, layers) of the file a print command names in ``root`` (either None when
    its metadata does not say), or why the printer refuses it. The refusal texts are our choice: no
    capture of a real one exists."""
    if command == "project_file":
        rel = storage_path_from_url(body.get("url"))
        plate = plate_from_param(body.get("param"))
        if plate is None:
            return f"invalid param {str(body.get('param'))[:80]!r}; expected Metadata/plate_<n>.gcode"
    else:
        rel = storage_path_from_gcode_param(body.get("param"))
        plate = None
    if rel is None:
        return "file url not understood"
    local = resolve_storage_file(root, rel)
    if local is None or not await asyncio.to_thread(local.is_file):
        return f"file not found on the printer's storage: /{rel}"
    try:
        meta = await asyncio.to_thread(_read_print_file, local, command)
    except Exception as e:  # a file the firmware cannot read: it refuses, it does not crash
        return f"cannot read /{rel}: {str(e)[:120]}"
    if plate is not None:
        found = meta.plate(plate)
        if found is None or not found.gcode_path:
            return f"/{rel} has no sliced plate {plate}"
        return found.prediction_s, found.layers
    first = meta.plates[0] if meta.plates else None
    return (first.prediction_s, first.layers) if first else (None, None)
