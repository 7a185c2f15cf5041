"""Printers (list, add, edit, remove, connection test), commands, certificate acceptance,
temperature history."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bambu_edge.config import (
    PrinterConfig,
    check_access_code,
    check_api_key,
    check_host,
    check_model,
    check_name,
    check_serial,
)
from bambu_edge.printers.bambu.probe import probe_printer
from bambu_edge.printers.base import CommandError, PrinterLink
from bambu_edge.printers.manager import HostInUseError, ReadOnlyPrinterError, SerialInUseError
from bambu_edge.printers.temps import FIELDS
from bambu_edge.web.api_auth import caller, json_response, require_admin, service
from bambu_edge.web.errors import ApiError, bad
from bambu_edge.web.openapi import documented
from bambu_edge.web.params import body_int, json_int, read_json
from bambu_edge.web.security import client_key

ACTIONS = ("pause", "resume", "stop", "speed", "light", "gcode")
MAX_GCODE = 256


def _link(request: web.Request) -> PrinterLink:
    link = service(request).manager.get(request.match_info["id"])
    if link is None:
        raise ApiError(404, "not_found", "No such printer.")
    return link


def _view(request: web.Request, printer_id: str) -> dict[str, Any]:
    view = service(request).manager.farm_view(printer_id)
    if view is None:
        raise ApiError(404, "not_found", "No such printer.")
    return view


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
        try:
            level = body_int(body, "level", None, 1, 4)
        except ApiError:
            raise bad("speed needs 'level': 1 (silent), 2 (standard), 3 (sport) or 4 (ludicrous)") from None
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


async def list_printers(request: web.Request) -> web.Response:
    """Every printer's view (with `read_only`: declared in the config file), the other units'
    printers of a farm too (each carries its unit's id, `node`)."""
    return json_response(service(request).manager.farm_views())


async def get_printer(request: web.Request) -> web.Response:
    """One printer's view."""
    return json_response(_view(request, request.match_info["id"]))


# --- adding, editing, removing printers (admin) ---------------------------------------------------

PRINTER_FIELDS = ("name", "host", "serial", "access_code", "model", "mqtt_port", "ftps_port")
MOONRAKER_FIELDS = ("name", "host", "port", "api_key")  # type: moonraker (a Klipper printer)
TEST_FIELDS = ("host", "serial", "access_code", "mqtt_port")
PRINTER_BODY = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 100},
        "host": {"type": "string", "description": "IP address or host name"},
        "serial": {"type": "string", "pattern": "^[0-9A-Za-z]{6,32}$"},
        "access_code": {"type": "string", "description": "never returned"},
        "model": {"type": ["string", "null"], "description": "one of the Bambu models; null: detect"},
        "mqtt_port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 8883},
        "ftps_port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 990},
        "type": {
            "type": "string",
            "enum": ["bambu", "moonraker"],
            "default": "bambu",
            "description": "moonraker: a Klipper printer; it takes name, host, port and api_key only",
        },
        "port": {
            "type": "integer",
            "minimum": 1,
            "maximum": 65535,
            "default": 7125,
            "description": "Moonraker's",
        },
        "api_key": {
            "type": ["string", "null"],
            "description": "Moonraker's API key, where this unit is not a trusted client; never returned",
        },
    },
}


def _blank_is_none(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None or (isinstance(v, str) and not v.strip()) else check(v)


CHECKS: dict[str, Callable[[Any], Any]] = {
    "name": check_name,
    "host": lambda v: check_host(v.strip() if isinstance(v, str) else v),
    "serial": lambda v: check_serial(v.strip() if isinstance(v, str) else v),
    "access_code": check_access_code,  # as typed: spaces are refused, never trimmed into another code
    "model": _blank_is_none(check_model),
    "mqtt_port": lambda v: json_int(v, "mqtt_port", 1, 65535),
    "ftps_port": lambda v: json_int(v, "ftps_port", 1, 65535),
    "port": lambda v: json_int(v, "port", 1, 65535),
    "api_key": _blank_is_none(check_api_key),
}


def printer_type(body: dict[str, Any], default: str = "bambu") -> str:
    """The body's ``type`` (taken out of it), ``default`` when it names none."""
    ptype = body.pop("type", default)
    if ptype not in ("bambu", "moonraker"):
        raise bad("'type' must be bambu or moonraker (a Klipper printer)")
    return ptype


def printer_fields(
    body: dict[str, Any], allowed: tuple[str, ...], required: tuple[str, ...]
) -> dict[str, Any]:
    """Validate a printer body with the YAML config's rules; {field: value} or ApiError 400."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise bad(f"unknown field '{unknown[0]}' (allowed: {', '.join(allowed)})")
    out: dict[str, Any] = {}
    for key in allowed:
        if key not in body:
            if key in required:
                raise bad(f"'{key}' is required")
            continue
        try:
            out[key] = CHECKS[key](body[key])
        except ValueError as e:
            raise bad(f"'{key}' {e}") from None
    return out


def _editable(request: web.Request) -> PrinterConfig:
    """The config of the dashboard printer the URL names; 404, or 403 for one from the config file."""
    svc = service(request)
    cfg = svc.manager.config_of(request.match_info["id"])
    if cfg is None:
        raise ApiError(404, "not_found", "No such printer.")
    if cfg.read_only:
        where = svc.config.source or "the config file"
        raise ApiError(
            403, "read_only", f"{cfg.name} is declared in {where}; change or remove it there, then restart."
        )
    return cfg


@documented(body={**PRINTER_BODY, "required": ["name", "host"]})
async def add_printer(request: web.Request) -> web.Response:
    """Add a Bambu printer, or with `type: moonraker` a Klipper printer (admin).

    It is kept in the database and connected at once; its id is made from the name. 201 with its
    view. A Bambu printer needs serial and access_code; a Klipper printer takes host, port (7125)
    and api_key (where Moonraker asks for one). 400 with a plain message for a bad field, 409 if
    the serial (or that Moonraker) is added already."""
    require_admin(request)
    body = await read_json(request)
    if printer_type(body) == "moonraker":
        fields = printer_fields(body, MOONRAKER_FIELDS, ("name", "host"))
        try:
            view = await service(request).manager.create_moonraker(**fields)
        except HostInUseError as e:
            raise ApiError(409, "conflict", f"This Moonraker is added already, as {e.name}.") from None
        return json_response(view, 201)
    fields = printer_fields(body, PRINTER_FIELDS, ("name", "host", "serial", "access_code"))
    try:
        view = await service(request).manager.create(**fields)
    except SerialInUseError as e:
        raise ApiError(
            409, "conflict", f"This printer is added already, as {e.name}: a printer takes one connection."
        ) from None
    return json_response(view, 201)


@documented(body=PRINTER_BODY)
async def update_printer(request: web.Request) -> web.Response:
    """Change a printer added in the dashboard (admin): name, host, access code, model, ports; for
    a Klipper printer name, host, port and api_key (null or "" removes the key).

    Its link restarts. 403 for a printer declared in the config file. The serial and the type
    cannot change."""
    require_admin(request)
    current = _editable(request)
    printer_id = current.id
    body = await read_json(request)
    if printer_type(body, current.type) != current.type:
        raise bad("the type cannot be changed; remove the printer and add it again")
    if current.type == "moonraker":
        fields = printer_fields(body, MOONRAKER_FIELDS, ())
        if not fields:
            raise bad("nothing to change: send name, host, port or api_key")
        return json_response(await _update(request, printer_id, fields))
    if "serial" in body and body["serial"] != current.serial:
        raise bad("the serial number cannot be changed; remove the printer and add the other one")
    body.pop("serial", None)
    fields = printer_fields(body, tuple(k for k in PRINTER_FIELDS if k != "serial"), ())
    if not fields:
        raise bad("nothing to change: send name, host, access_code, model, mqtt_port or ftps_port")
    return json_response(await _update(request, printer_id, fields))


async def _update(request: web.Request, printer_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    try:
        return await service(request).manager.update(printer_id, **fields)
    except LookupError:
        raise ApiError(404, "not_found", "No such printer.") from None
    except ReadOnlyPrinterError:
        raise ApiError(403, "read_only", "This printer is declared in the config file.") from None


async def delete_printer(request: web.Request) -> web.Response:
    """Remove a printer added in the dashboard (admin).

    Its link stops and its pinned certificate is forgotten; its print history is kept. 403 for a
    printer declared in the config file."""
    require_admin(request)
    printer_id = _editable(request).id
    svc = service(request)
    try:
        await svc.manager.delete(printer_id)
    except LookupError:
        raise ApiError(404, "not_found", "No such printer.") from None
    except ReadOnlyPrinterError:
        raise ApiError(403, "read_only", "This printer is declared in the config file.") from None
    svc.temps.forget(printer_id)
    return web.Response(status=204)


@documented(
    body={
        "type": "object",
        "required": ["host", "serial", "access_code"],
        "properties": {k: PRINTER_BODY["properties"][k] for k in TEST_FIELDS},
    },
    response={
        "type": "object",
        "properties": {
            "state": {"type": "string", "enum": ["connected", "auth_failed", "tls_mismatch", "unreachable"]},
            "message": {"type": "string"},
            "fingerprint": {"type": ["string", "null"]},
        },
    },
)
async def try_connection(request: web.Request) -> web.Response:
    """Try to connect to a printer before adding it (admin).

    A real attempt: TLS to its MQTT port, the certificate must be issued to the serial, then an MQTT
    login with the access code. The answer says how it went in plain words. Rate-limited (429)."""
    require_admin(request)
    fields = printer_fields(await read_json(request), TEST_FIELDS, ("host", "serial", "access_code"))
    svc = service(request)
    wait = svc.probe_limiter.check(client_key(request), time.monotonic())
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            "Too many connection tests; wait a moment and try again.",
            {"Retry-After": str(max(1, math.ceil(wait)))},
        )
    async with svc.probe_slots:
        result = await probe_printer(
            fields["host"],
            fields["serial"],
            fields["access_code"],
            mqtt_port=fields.get("mqtt_port", 8883),
            timeout=svc.probe_timeout,
        )
    return json_response(result.to_json())


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

    202 with the sequence_id; the outcome arrives as a `command` WebSocket frame. 409 if offline.
    A printer of another unit in the farm: its unit checks the caller's rights and carries it out;
    its answer arrives the same way."""
    manager = service(request).manager
    printer_id = request.match_info["id"]
    remote = manager.remote
    if manager.get(printer_id) is None and remote is not None and remote.view(printer_id) is not None:
        action, params = command_params(await read_json(request))
        try:
            seq = await remote.send_command(printer_id, action, params, caller(request).user)
        except CommandError as e:
            raise _command_error(e) from None
        return json_response({"sequence_id": seq}, 202)
    link = _link(request)
    action, params = command_params(await read_json(request))
    try:
        seq = await link.send_command(action, params)
    except CommandError as e:
        raise _command_error(e) from None
    return json_response({"sequence_id": seq}, 202)


async def accept_certificate(request: web.Request) -> web.Response:
    """Trust the certificate the printer now offers (after tls_mismatch; admin).

    A trust decision: the access code goes to whoever presents that certificate."""
    require_admin(request)
    link = _link(request)
    try:
        await link.accept_certificate()
    except CommandError as e:
        raise _command_error(e) from None
    return json_response(_view(request, link.printer_id))


async def temps(request: web.Request) -> web.Response:
    """The last hour of temperatures, one point per 10 s."""
    link = _link(request)
    points = service(request).temps.points(link.printer_id)
    return json_response({"fields": list(FIELDS), "points": [list(p) for p in points]})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/printers", list_printers),
        web.post("/api/printers", add_printer),
        web.post("/api/printers/test", try_connection),
        web.get("/api/printers/{id}", get_printer),
        web.put("/api/printers/{id}", update_printer),
        web.delete("/api/printers/{id}", delete_printer),
        web.post("/api/printers/{id}/commands", send_command),
        web.post("/api/printers/{id}/certificate/accept", accept_certificate),
        web.get("/api/printers/{id}/temps", temps),
    ]
