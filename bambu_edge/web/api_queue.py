"""The print queue API (PLAN.md "Queue"; docs/api.md): files, jobs, order, pause, beds, print now.

Uploads are streamed to a temp file inside data_dir (never held in memory), hashed on the way,
capped in size, and then read with the same safe readers as everything else (``read_3mf``,
``read_gcode_header``). A hostile or broken archive gets a 4xx with a plain message and nothing of
it is kept; a file is only ever stored under its SHA-256 in data_dir/queue/files/.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from bambu_edge.files.safezip import MAX_ARCHIVE_BYTES, ArchiveError
from bambu_edge.jobs.dispatcher import Dispatcher, QueueError
from bambu_edge.printers.bambu import commands
from bambu_edge.web.api_auth import json_response, service
from bambu_edge.web.errors import ApiError, bad
from bambu_edge.web.openapi import documented
from bambu_edge.web.params import body_id, body_int, path_id, query_int, read_json
from bambu_edge.web.uploads import file_body

MAX_UPLOAD_BYTES = MAX_ARCHIVE_BYTES  # what read_3mf would accept anyway
GCODE_MAX_UPLOAD_BYTES = MAX_ARCHIVE_BYTES
MIN_FREE_BYTES = 64 * 1024 * 1024  # left on the SD card after an upload (database, logs)
MAX_COPIES = 1000
MAX_PRIORITY = 100
MAX_PLATE = 1000
EXTENSIONS = {".3mf": "3mf", ".gcode": "gcode"}
# ArchiveError code -> HTTP status; everything else is a 400.
ARCHIVE_STATUS = {"too_large": 413}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "kind": {"type": "string", "enum": ["3mf", "gcode"]},
        "size": {"type": "integer"},
        "sha256": {"type": "string"},
        "meta": {"type": "object", "description": "PrintFileMeta.to_json(): plates, filaments, model, ..."},
        "created_at": {"type": "number"},
    },
}
OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {k: {"type": "boolean", "default": v} for k, v in commands.PRINT_OPTIONS.items()},
    "additionalProperties": False,
}
JOB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "file": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}},
        "plate": {"type": "integer"},
        "copies": {"type": "integer"},
        "copies_done": {"type": "integer"},
        "priority": {"type": "integer"},
        "target": {"type": "string", "description": '"any" or a printer id'},
        "state": {
            "type": "string",
            "enum": ["waiting", "dispatching", "printing", "done", "failed", "cancelled"],
        },
        "reasons": {"type": "array", "items": {"type": "string"}, "description": "why it is not running yet"},
        "runs": {"type": "array", "items": {"type": "object"}},
        "options": OPTIONS_SCHEMA,
        "attempts": {"type": "integer"},
        "last_error": {"type": ["string", "null"]},
        "next_attempt_at": {"type": ["number", "null"]},
        "position": {"type": "integer"},
        "created_at": {"type": "number"},
        "updated_at": {"type": "number"},
        "ended_at": {"type": ["number", "null"]},
    },
}
JOB_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "file_id": {"type": "integer"},
        "plate": {"type": "integer", "minimum": 1, "default": 1},
        "copies": {"type": "integer", "minimum": 1, "maximum": MAX_COPIES, "default": 1},
        "priority": {"type": "integer", "minimum": -MAX_PRIORITY, "maximum": MAX_PRIORITY, "default": 0},
        "target": {"type": "string", "default": "any"},
        "options": OPTIONS_SCHEMA,
    },
}
READINESS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "bed_clear": {"type": "boolean"},
        "ready": {"type": "boolean"},
        "reason": {"type": ["string", "null"]},
    },
}


def _queue(request: web.Request) -> Dispatcher:
    q = service(request).queue
    if q is None:
        raise ApiError(503, "unavailable", "The print queue is not running.")
    return q


def _queue_errors(handler: Handler) -> Handler:
    """The handler's QueueError (the service's plain refusal) answered as the API error it names."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except QueueError as e:
            raise ApiError(e.status, e.code, e.message) from None

    return answer


# --- body validation ---------------------------------------------------------------------------------


def _target(body: dict[str, Any]) -> str | None:
    v = body.get("target", "any")
    if v is None or v == "any":
        return None
    if not isinstance(v, str) or not v or len(v) > 63:
        raise bad("'target' must be \"any\" or a printer id")
    return v


def _options(body: dict[str, Any]) -> dict[str, bool]:
    v = body.get("options", {})
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise bad("'options' must be an object")
    for key, value in v.items():
        if key not in commands.PRINT_OPTIONS:
            raise bad(f"unknown option {key!r}; use {', '.join(commands.PRINT_OPTIONS)}")
        if not isinstance(value, bool):
            raise bad(f"option {key!r} must be true or false")
    return dict(v)


def file_name(raw: Any) -> tuple[str, str]:
    """(name, kind) of an upload; the name is only metadata (files are stored by their hash)."""
    if not isinstance(raw, str) or not raw.strip():
        raise bad("name the file: ?name=cube.gcode.3mf (or send it as multipart field 'file')")
    name = raw.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name or len(name) > 255 or not name.isprintable() or name.startswith("."):
        raise bad("the file name must be printable, at most 255 characters, and not start with '.'")
    lower = name.lower()
    for ext, kind in EXTENSIONS.items():
        if lower.endswith(ext):
            return name, kind
    raise bad("only sliced .3mf files (.gcode.3mf) and .gcode files can be queued")


# --- upload ------------------------------------------------------------------------------------------


def _write(f: IO[bytes], chunk: bytes, sha: Any, md5: Any) -> None:
    f.write(chunk)
    sha.update(chunk)
    md5.update(chunk)


def _read_meta(path: Path, kind: str) -> Any:
    # Imported on first use (in the worker thread): the readers cost RSS a unit may never need.
    if kind == "3mf":
        from bambu_edge.files.threemf import read_3mf

        return read_3mf(path)
    from bambu_edge.files.gcode import read_gcode_header

    return read_gcode_header(path)


@documented(
    query=[{"name": "name", "schema": {"type": "string"}, "description": "the file's name, for a raw body"}],
    response=FILE_SCHEMA,
)
async def upload_file(request: web.Request) -> web.Response:
    """Upload a print file to the queue (raw body with ?name=, or multipart field 'file').

    The file is read safely before it is kept: a zip bomb, unsafe names, XML entities, a truncated or
    broken archive get a 4xx with a plain message and nothing is kept. 201 with the file, or 200 with
    the file uploaded before when the same bytes come again (kept once, by SHA-256)."""
    q = _queue(request)
    form_name, chunks = await file_body(request)
    name, kind = file_name(request.query.get("name") or form_name)
    cap = MAX_UPLOAD_BYTES if kind == "3mf" else GCODE_MAX_UPLOAD_BYTES
    if request.content_length is not None and request.content_length > cap + (64 * 1024 if form_name else 0):
        raise ApiError(413, "too_large", f"The file is larger than {cap // (1024 * 1024)} MB.")
    expected = request.content_length or 0
    free = (await asyncio.to_thread(shutil.disk_usage, q.tmp_dir)).free
    if free - expected < MIN_FREE_BYTES:
        raise ApiError(
            507, "no_space", "There is not enough free space on bambu-edge's storage for this file."
        )
    temp = q.temp_path()
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    size = 0
    try:
        f = await asyncio.to_thread(open, temp, "xb")
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > cap:
                    raise ApiError(413, "too_large", f"The file is larger than {cap // (1024 * 1024)} MB.")
                await asyncio.to_thread(_write, f, chunk, sha, md5)
        finally:
            await asyncio.to_thread(f.close)
        if size == 0:
            raise bad("the file is empty")
        try:
            meta = await asyncio.to_thread(_read_meta, temp, kind)
        except ArchiveError as e:
            raise ApiError(ARCHIVE_STATUS.get(e.code, 400), e.code, str(e)) from None
        except (OSError, UnicodeError, ValueError) as e:
            raise bad(f"the file cannot be read: {e}") from None
        if kind == "3mf" and not meta.sliced:
            raise ApiError(
                422,
                "not_sliced",
                "This 3MF has no G-code, so no printer can print it: slice it and export the plate "
                "as a sliced file (.gcode.3mf).",
            )
        qf, created = await q.register_file(
            temp, name=name, kind=kind, size=size, sha256=sha.hexdigest(), md5=md5.hexdigest(), meta=meta
        )
    except OSError as e:
        raise ApiError(507, "no_space", f"The file could not be stored: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(temp.unlink)
    return json_response(qf.to_json(), 201 if created else 200)


async def list_files(request: web.Request) -> web.Response:
    """The files uploaded to the queue, newest first."""
    return json_response({"files": [f.to_json() for f in await _queue(request).list_files()]})


@documented(response=FILE_SCHEMA)
@_queue_errors
async def get_file(request: web.Request) -> web.Response:
    """One queue file with its metadata."""
    qf = await _queue(request).get_file(path_id(request))
    return json_response(qf.to_json())


@_queue_errors
async def delete_file(request: web.Request) -> web.Response:
    """Delete a queue file (and its finished jobs). 409 while a job in the queue needs it."""
    await _queue(request).delete_file(path_id(request))
    return web.Response(status=204)


@documented(
    query=[
        {"name": "plate", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PLATE, "default": 1}}
    ],
    response={"type": "string", "format": "binary"},
    media_type="image/png",
)
@_queue_errors
async def file_thumbnail(request: web.Request) -> web.StreamResponse:
    """A plate's picture (image/png; ?plate=N, default 1); 404 if the file has none."""
    q = _queue(request)
    qf = await q.get_file(path_id(request))
    plate = query_int(request.query, "plate", 1, 1, MAX_PLATE)
    if qf.kind != "3mf":
        raise ApiError(404, "not_found", "G-code files carry no plate picture.")
    png = await q.thumbnail(qf, plate)
    if png is None:
        raise ApiError(404, "not_found", f"Plate {plate} of this file has no picture.")
    # Stored by content hash: the picture of a file id never changes.
    return web.Response(
        body=png, content_type="image/png", headers={"Cache-Control": "private, max-age=86400"}
    )


# --- jobs ----------------------------------------------------------------------------------------------


@documented(
    response={
        "type": "object",
        "properties": {
            "paused": {"type": "boolean"},
            "jobs": {"type": "array", "items": JOB_SCHEMA},
            "printers": {"type": "array", "items": READINESS_SCHEMA},
        },
    }
)
async def get_queue(request: web.Request) -> web.Response:
    """The queue: unfinished jobs in order (then the latest finished), each saying why it waits;
    and every printer's readiness."""
    return json_response(await _queue(request).queue_view())


@documented(
    response={
        "type": "object",
        "properties": {
            "paused": {"type": "boolean"},
            "printers": {"type": "array", "items": READINESS_SCHEMA},
        },
    }
)
async def get_readiness(request: web.Request) -> web.Response:
    """Only the printers' readiness (bed clear, ready, why not) and whether the queue is paused:
    what a printer card shows, without every job of the queue."""
    q = _queue(request)
    return json_response({"paused": q.paused, "printers": q.readiness()})


@documented(body={**JOB_BODY, "required": ["file_id"]}, response=JOB_SCHEMA)
@_queue_errors
async def create_job(request: web.Request) -> web.Response:
    """Queue a plate of an uploaded file (201 with the job)."""
    body = await read_json(request)
    job = await _queue(request).create_job(
        file_id=body_id(body, "file_id", "the id of an uploaded file (POST /api/queue/files)"),
        plate=body_int(body, "plate", 1, 1, MAX_PLATE),
        copies=body_int(body, "copies", 1, 1, MAX_COPIES),
        priority=body_int(body, "priority", 0, -MAX_PRIORITY, MAX_PRIORITY),
        target=_target(body),
        options=_options(body),
    )
    return json_response(job, 201)


@documented(response=JOB_SCHEMA)
@_queue_errors
async def get_job(request: web.Request) -> web.Response:
    """One job."""
    return json_response(await _queue(request).job_view(path_id(request)))


@documented(body=JOB_BODY, response=JOB_SCHEMA)
@_queue_errors
async def update_job(request: web.Request) -> web.Response:
    """Change a job's plate, copies, priority, target or options (only the fields given)."""
    body = await read_json(request)
    unknown = set(body) - {"plate", "copies", "priority", "target", "options"}
    if unknown:
        raise bad(f"cannot change {sorted(unknown)[0]!r}")
    changes: dict[str, Any] = {}
    if "plate" in body:
        changes["plate"] = body_int(body, "plate", 1, 1, MAX_PLATE)
    if "copies" in body:
        changes["copies"] = body_int(body, "copies", 1, 1, MAX_COPIES)
    if "priority" in body:
        changes["priority"] = body_int(body, "priority", 0, -MAX_PRIORITY, MAX_PRIORITY)
    if "target" in body:
        changes["target"] = _target(body)
    if "options" in body:
        changes["options"] = _options(body)
    return json_response(await _queue(request).update_job(path_id(request), changes))


@_queue_errors
async def delete_job(request: web.Request) -> web.Response:
    """Remove a job (204). One with a copy on a printer is cancelled instead (200 with the job):
    that copy goes on printing; stop it on the printer if it must not."""
    job = await _queue(request).remove_job(path_id(request))
    return web.Response(status=204) if job is None else json_response(job)


@documented(
    body={"type": "object", "properties": {"before": {"type": ["integer", "null"]}}}, response=JOB_SCHEMA
)
@_queue_errors
async def move_job(request: web.Request) -> web.Response:
    """Reorder: put the job just before another one (``before``: job id), or last (null)."""
    body = await read_json(request)
    before = body_id(body, "before", "a job id", nullable=True)
    return json_response(await _queue(request).move_job(path_id(request), before))


@documented(response=JOB_SCHEMA)
@_queue_errors
async def retry_job(request: web.Request) -> web.Response:
    """A failed or cancelled job waits again (with fresh attempts)."""
    return json_response(await _queue(request).retry_job(path_id(request)))


@documented(response={"type": "object", "properties": {"paused": {"type": "boolean"}}})
async def pause(request: web.Request) -> web.Response:
    """Pause the queue: nothing new starts (prints already running go on)."""
    await _queue(request).set_paused(True)
    return json_response({"paused": True})


@documented(response={"type": "object", "properties": {"paused": {"type": "boolean"}}})
async def resume(request: web.Request) -> web.Response:
    """Resume the queue."""
    await _queue(request).set_paused(False)
    return json_response({"paused": False})


# --- printers --------------------------------------------------------------------------------------------


@documented(
    body={"type": "object", "required": ["clear"], "properties": {"clear": {"type": "boolean"}}},
    response=READINESS_SCHEMA,
)
@_queue_errors
async def set_bed(request: web.Request) -> web.Response:
    """Mark a printer's bed clear (it may take the next queued job) or not clear."""
    body = await read_json(request)
    clear = body.get("clear")
    if not isinstance(clear, bool):
        raise bad("'clear' must be true or false")
    return json_response(await _queue(request).set_bed(request.match_info["id"], clear))


@documented(
    body={
        "type": "object",
        "required": ["path"],
        "properties": {
            "path": {"type": "string", "description": "on the printer's storage, e.g. /cache/cube.gcode.3mf"},
            "plate": {"type": "integer", "minimum": 1, "default": 1},
            "options": OPTIONS_SCHEMA,
            "ams_mapping": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "tray per filament; default: matched to what the printer has loaded",
            },
        },
    },
    response={
        "type": "object",
        "properties": {"sequence_id": {"type": "string"}, "ams_mapping": {"type": "array"}},
    },
)
@_queue_errors
async def print_file(request: web.Request) -> web.Response:
    """Start a print of a file already on the printer (.3mf via project_file, .gcode via gcode_file).

    202 with the sequence_id; the printer's answer arrives as a `command` WebSocket frame (a refusal
    says that the printer needs Developer Mode). 409 if the printer is offline or lacks the filament."""
    body = await read_json(request)
    path = body.get("path")
    if not isinstance(path, str) or not path:
        raise bad("'path' must be a file on the printer, e.g. /cache/cube.gcode.3mf")
    plate = body_int(body, "plate", 1, 1, MAX_PLATE)
    options = _options(body)
    mapping = body.get("ams_mapping")
    if mapping is not None and not isinstance(mapping, list):
        raise bad("'ams_mapping' must be a list of tray numbers")
    result = await _queue(request).print_now(
        request.match_info["id"], path, plate=plate, options=options, ams_mapping=mapping
    )
    return json_response(result, 202)


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/queue/files", upload_file),
        web.get("/api/queue/files", list_files),
        web.get(r"/api/queue/files/{id:\d+}", get_file),
        web.delete(r"/api/queue/files/{id:\d+}", delete_file),
        web.get(r"/api/queue/files/{id:\d+}/thumbnail", file_thumbnail),
        web.post("/api/queue/pause", pause),
        web.post("/api/queue/resume", resume),
        web.get("/api/queue", get_queue),
        web.get("/api/queue/printers", get_readiness),
        web.post("/api/queue", create_job),
        web.get(r"/api/queue/{id:\d+}", get_job),
        web.put(r"/api/queue/{id:\d+}", update_job),
        web.delete(r"/api/queue/{id:\d+}", delete_job),
        web.post(r"/api/queue/{id:\d+}/move", move_job),
        web.post(r"/api/queue/{id:\d+}/retry", retry_job),
        web.post("/api/printers/{id}/bed", set_bed),
        web.post("/api/printers/{id}/print", print_file),
    ]
