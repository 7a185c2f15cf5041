"""``GET /api/usb/devices``, ``POST /api/usb/devices/{id}/import`` and ``.../backup``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from bambu_edge.web.api_auth import json_response, require_admin
from bambu_edge.web.errors import ApiError, bad
from bambu_edge.web.openapi import documented
from bambu_edge.web.params import read_json

DEVICE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "the kernel's name, e.g. video0, sda1"},
        "kind": {"type": "string", "enum": ["camera", "stick"]},
        "devnode": {"type": "string", "description": "e.g. /dev/video0 (a camera source)"},
        "name": {"type": "string"},
        "vendor": {"type": ["string", "null"]},
        "model": {"type": ["string", "null"]},
        "fs_type": {"type": ["string", "null"]},
        "label": {"type": ["string", "null"]},
        "mounted": {"type": "boolean", "description": "sticks"},
        "folder": {
            "type": "boolean",
            "description": "sticks: it has a bambu-edge/ folder (a backup may go there)",
        },
        "files": {
            "type": "array",
            "description": "sticks: the .3mf files in its bambu-edge/ folder",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "size": {"type": "integer"}},
            },
        },
    },
}
IMPORT_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {"files": {"type": "array", "items": {"type": "string"}, "description": "default: all"}},
}
IMPORT_RESPONSE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "imported": {
            "type": "array",
            "items": {"type": "object", "description": "queue files, with created"},
        },
        "errors": {"type": "array", "items": {"type": "object", "properties": {"name": {}, "error": {}}}},
    },
}
MAX_NAMES = 200


def routes(usb: Callable[[], Any]) -> list[web.RouteDef]:
    """``usb()`` is the running UsbComponent, or None (then 503)."""

    def _usb() -> Any:
        current = usb()
        if current is None:
            raise ApiError(503, "unavailable", "USB devices are not watched; see GET /api/health.")
        return current

    @documented(
        response={"type": "object", "properties": {"devices": {"type": "array", "items": DEVICE_SCHEMA}}}
    )
    async def list_devices(request: web.Request) -> web.Response:
        """USB cameras (selectable camera sources) and sticks (with the print files they offer)."""
        return json_response({"devices": _usb().devices()})

    @documented(body=IMPORT_BODY, response=IMPORT_RESPONSE)
    async def import_files(request: web.Request) -> web.Response:
        """Import the print files of a stick's bambu-edge/ folder into the queue (`{}`: all of them).
        Each file is checked as an upload is; one refused file does not stop the others."""
        comp = _usb()
        names = (await read_json(request)).get("files")
        if names is not None and (
            not isinstance(names, list)
            or len(names) > MAX_NAMES
            or not all(isinstance(n, str) for n in names)
        ):
            raise bad("files must be a list of file names on the stick")
        return json_response(await comp.import_files(request.match_info["id"], names))

    @documented(
        response={
            "type": "object",
            "properties": {
                "file": {
                    "type": "string",
                    "description": "e.g. bambu-edge/backup-garage-20250101T120000Z.tar.gz",
                },
                "size": {"type": "integer"},
                "backup": {"type": "object"},
            },
        }
    )
    async def write_backup(request: web.Request) -> web.Response:
        """Write a backup to a stick's bambu-edge/ folder (admin).

        Written to a temp file, flushed to the stick and renamed: the file is whole or absent.
        409 when the stick is read-only or has no bambu-edge folder, 507 when it is full."""
        require_admin(request)
        return json_response(await _usb().write_backup(request.match_info["id"]))

    return [
        web.get("/api/usb/devices", list_devices),
        web.post("/api/usb/devices/{id}/import", import_files),
        web.post("/api/usb/devices/{id}/backup", write_backup),
    ]
