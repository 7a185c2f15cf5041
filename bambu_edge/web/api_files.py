"""The printer file browser: list, upload, download, delete files on a printer's storage, and its
timelapse videos. Everything goes over the printer's FTPS (``link.files``, trusted like the MQTT
link) and is streamed both ways: an upload goes to the printer as the browser sends it, a download
to the browser as the printer sends it; nothing is spooled on the unit's SD card.

Progress is published as ``transfer`` bus events (``printers/transfers.py``).

Errors: 400 bad path; 404 no such printer or file; 409 printer offline or without storage; 413 an
upload over MAX_UPLOAD_BYTES; 502 the printer's storage failed (``kind`` says how, ``message`` in
plain words).
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from bambu_edge.printers.bambu.ftps import (
    PrinterFiles,
    PrinterFilesError,
    RemoteFile,
    RemotePathError,
    UploadSourceError,
)
from bambu_edge.printers.bambu.storage import normalize_remote_path
from bambu_edge.printers.moonraker.files import MoonrakerFiles
from bambu_edge.printers.transfers import TransferReporter
from bambu_edge.web.api_auth import ApiError, json_response, service
from bambu_edge.web.openapi import documented
from bambu_edge.web.security import HEADERS

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 8 * 1024**3  # larger than any print file; the printer's storage is the real limit
UPLOAD_CHUNK = 64 * 1024
CONTENT_TYPES = {".mp4": "video/mp4", ".avi": "video/x-msvideo", ".png": "image/png", ".jpg": "image/jpeg"}

ENTRY = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "path": {"type": "string"},
        "is_dir": {"type": "boolean"},
        "size": {"type": ["integer", "null"]},
        "modified": {"type": ["number", "null"]},
    },
}

FILE_PATH = {
    "name": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "the file on the printer's storage, e.g. /cache/cube.gcode.3mf",
}
FOLDER_PATH = {"name": "path", "schema": {"type": "string", "default": "/"}, "description": "a folder"}


# --- helpers -------------------------------------------------------------------------------------------


def _printer_files(request: web.Request) -> tuple[str, PrinterFiles | MoonrakerFiles]:
    link = service(request).manager.get(request.match_info["id"])
    if link is None:
        raise ApiError(404, "not_found", "No such printer.")
    files = getattr(link, "files", None)
    # Bambu printers' FTPS storage, or a Klipper printer's files through Moonraker (same interface)
    if not isinstance(files, PrinterFiles | MoonrakerFiles):
        raise ApiError(409, "no_storage", "This printer has no storage that bambu-edge can reach.")
    state = getattr(link, "link_state", None)
    if state != "connected":
        raise ApiError(
            409,
            "offline",
            f"The printer is not connected ({state or 'unknown'}); its storage cannot be reached.",
        )
    return link.printer_id, files


def _path(request: web.Request, *, file: bool, default: str | None = None) -> str:
    raw = request.query.get("path") or default
    if not raw:
        raise ApiError(400, "bad_path", "Give the file's path on the printer as ?path=/folder/name.")
    try:
        return normalize_remote_path(raw, file=file)
    except RemotePathError as exc:
        raise ApiError(400, "bad_path", f"That path is refused: {exc}.") from None


def storage_error(exc: PrinterFilesError) -> web.Response:
    """A printer storage failure as the API answers it."""
    message = str(exc)
    message = message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
    if exc.kind == "bad_path":
        return json_response({"error": "bad_path", "kind": exc.kind, "message": message}, 400)
    if exc.kind == "not_found":
        return json_response({"error": "not_found", "kind": exc.kind, "message": message}, 404)
    return json_response({"error": "storage_error", "kind": exc.kind, "message": message}, 502)


def entry_json(f: RemoteFile) -> dict[str, Any]:
    return {"name": f.name, "path": f.path, "is_dir": f.is_dir, "size": f.size, "modified": f.modified}


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact UTF-8 one (RFC 6266 / 5987)."""
    fallback = (
        "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in name).strip()
        or "download"
    )
    exact = urllib.parse.quote(name, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}"


def content_type(name: str) -> str:
    ext = posixpath.splitext(name)[1].lower()
    return CONTENT_TYPES.get(ext) or "application/octet-stream"


# --- handlers --------------------------------------------------------------------------------------------


@documented(
    query=[FOLDER_PATH],
    response={
        "type": "object",
        "properties": {"path": {"type": "string"}, "entries": {"type": "array", "items": ENTRY}},
    },
)
async def list_files(request: web.Request) -> web.StreamResponse:
    """List a folder on the printer's storage (?path=/cache; default the root).

    Folders first, then files, by name."""
    _, files = _printer_files(request)
    folder = _path(request, file=False, default="/")
    try:
        entries = await files.list(folder)
    except PrinterFilesError as exc:
        return storage_error(exc)
    entries.sort(key=lambda f: (not f.is_dir, f.name.casefold(), f.name))
    return json_response({"path": folder, "entries": [entry_json(f) for f in entries]})


@documented(
    query=[FILE_PATH],
    response={"type": "object", "properties": {"path": {"type": "string"}, "size": {"type": "integer"}}},
)
async def upload_file(request: web.Request) -> web.StreamResponse:
    """Upload the raw request body to ?path=/cache/name.3mf on the printer.

    Streamed to the printer as it arrives (not stored on the unit); progress as `transfer`
    WebSocket frames. 201 with the stored path and size. An existing file is replaced."""
    printer_id, files = _printer_files(request)
    path = _path(request, file=True)
    length = request.content_length
    if length is not None and length > MAX_UPLOAD_BYTES:
        raise ApiError(413, "too_large", f"The file is larger than {MAX_UPLOAD_BYTES // 1024**3} GB.")
    reporter = TransferReporter(service(request).bus, printer_id, path, "upload", length)
    over_limit = False

    async def body() -> AsyncIterator[bytes]:
        nonlocal over_limit
        received = 0
        async for chunk in request.content.iter_chunked(UPLOAD_CHUNK):
            received += len(chunk)
            if received > MAX_UPLOAD_BYTES:
                over_limit = True
                raise UploadSourceError(f"the file is larger than {MAX_UPLOAD_BYTES // 1024**3} GB")
            yield chunk

    try:
        stored, size = await files.upload_stream(path, body(), reporter.progress, size=length)
    except PrinterFilesError as exc:
        reporter.failed(str(exc))
        if over_limit:
            raise ApiError(
                413, "too_large", f"The file is larger than {MAX_UPLOAD_BYTES // 1024**3} GB."
            ) from None
        if exc.kind == "source":
            raise ApiError(
                400, "upload_incomplete", "The upload did not arrive completely; nothing was stored."
            ) from None
        return storage_error(exc)
    except asyncio.CancelledError:
        reporter.failed("the upload was cancelled")
        raise
    reporter.succeeded(size)
    return json_response({"path": stored, "size": size}, 201)


@documented(query=[FILE_PATH])
async def delete_file(request: web.Request) -> web.StreamResponse:
    """Delete ?path= on the printer's storage. 204; 404 if there is no such file."""
    _, files = _printer_files(request)
    path = _path(request, file=True)
    try:
        await files.delete(path)
    except PrinterFilesError as exc:
        return storage_error(exc)
    return web.Response(status=204)


@documented(query=[FILE_PATH])
async def download_file(request: web.Request) -> web.StreamResponse:
    """Download ?path= from the printer's storage (timelapses too), streamed as it arrives.

    Sent as an attachment with its size when the printer gives it; progress as `transfer` frames."""
    printer_id, files = _printer_files(request)
    path = _path(request, file=True)
    reporter = TransferReporter(service(request).bus, printer_id, path, "download", None)
    try:
        download = await files.open_download(path, reporter.progress)
    except PrinterFilesError as exc:
        reporter.failed(str(exc))
        return storage_error(exc)
    name = posixpath.basename(path)
    resp = web.StreamResponse(
        headers={
            "Content-Type": content_type(name),
            "Content-Disposition": content_disposition(name),
            "Cache-Control": "no-store",
        }
    )
    for key, value in HEADERS.items():  # the security middleware cannot add them once streaming
        resp.headers.setdefault(key, value)
    if download.size is not None:
        resp.content_length = download.size
        reporter.total = download.size
    sent = 0
    try:
        await resp.prepare(request)
        async for chunk in download:
            await resp.write(chunk)
            sent += len(chunk)
        await resp.write_eof()
    except PrinterFilesError as exc:
        # Headers are out: the browser learns of it from the cut connection (size mismatch).
        reporter.failed(str(exc))
        log.warning("printer %s: download %s failed after %d bytes: %s", printer_id, path, sent, exc)
        if request.transport is not None:
            request.transport.close()
        return resp
    except (ConnectionError, asyncio.CancelledError):
        reporter.failed("the browser closed the connection")
        raise
    finally:
        await download.aclose()
    reporter.succeeded(sent)
    return resp


@documented(response={"type": "object", "properties": {"entries": {"type": "array", "items": ENTRY}}})
async def list_timelapses(request: web.Request) -> web.StreamResponse:
    """The printer's timelapse videos, newest first; download one through files/content."""
    _, files = _printer_files(request)
    try:
        videos = await files.timelapses()
    except PrinterFilesError as exc:
        return storage_error(exc)
    return json_response({"entries": [entry_json(f) for f in videos]})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/printers/{id}/files", list_files),
        web.put("/api/printers/{id}/files", upload_file),
        web.delete("/api/printers/{id}/files", delete_file),
        # No automatic HEAD: it would start a whole download from the printer.
        web.get("/api/printers/{id}/files/content", download_file, allow_head=False),
        web.get("/api/printers/{id}/timelapses", list_timelapses),
    ]
