"""Health, printers, commands, certificate acceptance, temperature history, the OpenAPI document."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bambu_edge import __version__
from bambu_edge.printers.base import CommandError, PrinterLink
from bambu_edge.printers.temps import FIELDS
from bambu_edge.web.api_auth import ApiError, bad, json_response, read_json, service
from bambu_edge.web.openapi import build_spec, documented

ACTIONS = ("pause", "resume", "stop", "speed", "light", "gcode")
MAX_GCODE = 256


def _link(request: web.Request) -> PrinterLink:
    link = service(request).manager.get(request.match_info["id"])
    if link is None:
        raise ApiError(404, "not_found", "No such printer.")
    return link


def _command_error(e: CommandError) -> ApiError:
    if e.code == "offline":
        return ApiError(409, "offline", e.message)
    return ApiError(400, "bad_request", e.message)


def command_params(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Validate a command body; (action, params) or ApiError 400."""
    action = body.get("action")
    if not isinstance(action, str) or action not in ACTIONS:
        raise bad(f"'action' must be one of {', '.join(ACTIONS)}")
    if action == "speed":
        level = body.get("level")
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 4:
            raise bad("speed needs 'level': 1 (silent), 2 (standard), 3 (sport) or 4 (ludicrous)")
        return action, {"level": level}
    if action == "light":
        on = body.get("on")
        if not isinstance(on, bool):
            raise bad("light needs 'on': true or false")
        return action, {"on": on}
    if action == "gcode":
        line = body.get("line")
        if not isinstance(line, str) or not line.strip():
            raise bad("gcode needs 'line': a G-code line")
        if len(line) > MAX_GCODE or not line.isprintable():
            raise bad(f"'line' must be one printable line of at most {MAX_GCODE} characters")
        return action, {"line": line}
    return action, {}


@documented(
    response={"type": "object", "properties": {"status": {"type": "string"}, "version": {"type": "string"}}},
    public=True,
)
async def health(request: web.Request) -> web.Response:
    """Liveness: the daemon answers."""
    return json_response({"status": "ok", "version": __version__})


async def list_printers(request: web.Request) -> web.Response:
    """Every printer's view."""
    return json_response(service(request).manager.views())


async def get_printer(request: web.Request) -> web.Response:
    """One printer's view."""
    return json_response(_link(request).state.view())


@documented(
    body={
        "type": "object",
        "required": ["action"],
        "properties": {
            "action": {"type": "string", "enum": list(ACTIONS)},
            "level": {"type": "integer", "minimum": 1, "maximum": 4},
            "on": {"type": "boolean"},
            "line": {"type": "string"},
        },
    },
    response={"type": "object", "properties": {"sequence_id": {"type": "string"}}},
)
async def send_command(request: web.Request) -> web.Response:
    """Send a command to a printer.

    202 with the sequence_id; the outcome arrives as a `command` WebSocket frame. 409 if offline."""
    link = _link(request)
    action, params = command_params(await read_json(request))
    try:
        seq = await link.send_command(action, params)
    except CommandError as e:
        raise _command_error(e) from None
    return json_response({"sequence_id": seq}, 202)


async def accept_certificate(request: web.Request) -> web.Response:
    """Trust the certificate the printer now offers (after tls_mismatch)."""
    link = _link(request)
    try:
        await link.accept_certificate()
    except CommandError as e:
        raise _command_error(e) from None
    return json_response(link.state.view())


async def temps(request: web.Request) -> web.Response:
    """The last hour of temperatures, one point per 10 s."""
    link = _link(request)
    points = service(request).temps.points(link.printer_id)
    return json_response({"fields": list(FIELDS), "points": [list(p) for p in points]})


async def openapi(request: web.Request) -> web.Response:
    """This document."""
    return json_response(build_spec(request.app))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/health", health)
    r.add_get("/api/openapi.json", openapi)
    r.add_get("/api/printers", list_printers)
    r.add_get("/api/printers/{id}", get_printer)
    r.add_post("/api/printers/{id}/commands", send_command)
    r.add_post("/api/printers/{id}/certificate/accept", accept_certificate)
    r.add_get("/api/printers/{id}/temps", temps)
