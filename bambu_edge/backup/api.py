"""``GET /api/backup`` (download a backup) and ``POST /api/restore`` (upload one), both admin only.

The download is made while the daemon runs and writes (the database by SQLite's online backup)
and streamed as it is compressed: nothing but the database copy touches the disk. The upload is
streamed to a file in data_dir (capped in size, free space checked), read and verified into a
staging folder; only a good backup is answered 202, and then the daemon restarts in its own
process and swaps it in at start. Any bad archive is a 4xx with a plain message, and the current
data stays as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from bambu_edge.backup.manifest import BackupError
from bambu_edge.backup.restore import stage
from bambu_edge.backup.writer import backup_name, prepare, write_archive
from bambu_edge.web.api_auth import json_response, require_admin
from bambu_edge.web.errors import ApiError, bad
from bambu_edge.web.openapi import documented
from bambu_edge.web.uploads import MAX_FORM_FIELD, file_body

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 2 * 1024**3
MIN_FREE_BYTES = 64 * 1024 * 1024  # left on the SD card besides the upload and its unpacked copy
WRITE_TIMEOUT_S = 60.0  # a client that stops reading the download
# BackupError code -> HTTP status (anything else: 400).
STATUS = {
    "newer_schema": 409,
    "newer_format": 409,
    "busy": 409,
    "too_large": 413,
    "no_space": 507,
    "read_only": 409,
    "not_writable": 409,
    "write_failed": 507,
    "changed": 503,
    "missing_file": 409,
    "no_database": 503,
}

SUMMARY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "node": {"type": "string"},
        "created_at": {"type": "number"},
        "app_version": {"type": "string"},
        "schema_version": {"type": "integer"},
        "files": {"type": "integer"},
        "bytes": {"type": "integer", "description": "unpacked"},
    },
}


def api_error(e: BackupError) -> ApiError:
    return ApiError(STATUS.get(e.code, 400), e.code, e.message[:1].upper() + e.message[1:] + ".")


class _LoopWriter:
    """A file for the archive writer (in a worker thread) that writes to the HTTP response."""

    def __init__(self, resp: web.StreamResponse, loop: asyncio.AbstractEventLoop):
        self.resp, self.loop = resp, loop

    def write(self, data: bytes) -> int:
        fut = asyncio.run_coroutine_threadsafe(self.resp.write(bytes(data)), self.loop)
        fut.result(WRITE_TIMEOUT_S)
        return len(data)

    def flush(self) -> None:
        pass


def routes(backup: Callable[[], Any]) -> list[web.RouteDef]:
    """``backup()`` is the running BackupComponent, or None (then 503)."""

    def _comp() -> Any:
        comp = backup()
        if comp is None or comp.restarting:
            raise ApiError(503, "unavailable", "Backup and restore are not available now; try again shortly.")
        return comp

    @documented(response={"type": "string", "format": "binary"}, media_type="application/gzip")
    async def download(request: web.Request) -> web.StreamResponse:
        """Download a backup (admin): config, database, certificates and pins, queue files.

        A gzip tar with manifest.json first; made while bambu-edge runs (the database by SQLite's
        online backup). It holds password hashes, access codes and the dashboard's TLS key: keep it safe."""
        require_admin(request)
        comp = _comp()
        async with comp.busy:
            try:
                prepared = await asyncio.to_thread(prepare, comp.ctx.config, comp.node)
            except BackupError as e:
                raise api_error(e) from None
            try:
                m = prepared.manifest
                resp = web.StreamResponse(
                    headers={
                        "Content-Type": "application/gzip",
                        "Content-Disposition": f'attachment; filename="{backup_name(m.node, m.created_at)}"',
                        "Cache-Control": "no-store",
                    }
                )
                await resp.prepare(request)
                writer = _LoopWriter(resp, asyncio.get_running_loop())
                try:
                    await asyncio.to_thread(write_archive, prepared, writer)  # type: ignore[arg-type]
                except BackupError as e:  # the answer has begun: cut it short (the archive is unusable)
                    log.warning("backup download failed: %s", e.message)
                    if request.transport is not None:
                        request.transport.close()
                    return resp
                await resp.write_eof()
                log.info("backup downloaded (%d files, schema %d)", len(m.files), m.schema_version)
                return resp
            finally:
                await asyncio.to_thread(prepared.close)

    @documented(
        response={
            "type": "object",
            "properties": {
                "restarting": {"type": "boolean"},
                "restore_id": {
                    "type": "string",
                    "description": "shown under components.backup.restored in /api/health once applied",
                },
                "backup": SUMMARY,
            },
        }
    )
    async def restore(request: web.Request) -> web.StreamResponse:
        """Restore a backup (admin; multipart field 'file', or the raw archive).

        The archive is checked (manifest, checksums, schema version, the database's integrity)
        before anything changes: a bad, damaged or newer backup is refused with a plain message and
        the current data stays. A good one is answered 202; then bambu-edge restarts (its pages
        reconnect within seconds), swaps the backup in, and keeps the previous data in
        data_dir/pre-restore. Sessions are those of the backup: log in again."""
        require_admin(request)
        comp = _comp()
        if request.content_length is not None and request.content_length > MAX_UPLOAD_BYTES + MAX_FORM_FIELD:
            raise ApiError(413, "too_large", f"The backup is larger than {MAX_UPLOAD_BYTES >> 30} GB.")
        if comp.busy.locked():
            raise ApiError(409, "busy", "A backup or restore is under way; try again when it is done.")
        async with comp.busy:
            data_dir: Path = comp.ctx.data_dir
            expected = request.content_length or 0
            free = (await asyncio.to_thread(shutil.disk_usage, data_dir)).free
            if free - 2 * expected < MIN_FREE_BYTES:
                raise ApiError(
                    507, "no_space", "There is not enough free space on bambu-edge's storage for this backup."
                )
            name, chunks = await file_body(request, "backup")
            if name:
                log.info("restore upload: %s", name[:200])
            temp = data_dir / f"restore-upload-{os.urandom(8).hex()}.part"
            try:
                size = await _receive(chunks, temp)
                if size == 0:
                    raise bad("the file is empty")
                staged = await asyncio.to_thread(_stage_file, temp, data_dir, comp.known_schema)
            except BackupError as e:
                raise api_error(e) from None
            except OSError as e:
                raise ApiError(
                    507, "no_space", f"The backup could not be stored: {e.strerror or e}"
                ) from None
            finally:
                with contextlib.suppress(FileNotFoundError):
                    await asyncio.to_thread(temp.unlink)
        m = staged.manifest
        log.info("restore of the backup of %s (schema %d) staged: restarting", m.node, m.schema_version)
        resp = json_response(
            {"restarting": True, "restore_id": staged.restore_id, "backup": m.summary()}, 202
        )
        await resp.prepare(request)
        await resp.write_eof()  # the answer is out before the server stops
        comp.request_restart()
        return resp

    return [web.get("/api/backup", download), web.post("/api/restore", restore)]


def _stage_file(temp: Path, data_dir: Path, known: int) -> Any:
    with open(temp, "rb") as f:
        return stage(f, data_dir, known)


async def _receive(chunks: AsyncIterator[bytes], temp: Path) -> int:
    size = 0
    f: IO[bytes] = await asyncio.to_thread(open, temp, "xb")
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                raise ApiError(413, "too_large", f"The backup is larger than {MAX_UPLOAD_BYTES >> 30} GB.")
            await asyncio.to_thread(f.write, chunk)
    finally:
        await asyncio.to_thread(f.close)
    return size
