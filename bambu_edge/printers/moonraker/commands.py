"""The actions of ``POST /api/printers/{id}/commands`` as Moonraker JSON-RPC calls. Pure.

pause/resume/stop are ``printer.print.pause``/``resume``/``cancel``; speed is ``M220 S<percent>``
with Bambu's four levels (silent 50 %, standard 100 %, sport 124 %, ludicrous 166 %); light is a
G-code macro or a Moonraker power device, as configured; gcode is one line for
``printer.gcode.script``; print starts a file from the gcodes root (``printer.print.start``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bambu_edge.printers.base import CommandError
from bambu_edge.printers.moonraker.settings import MoonrakerSettings
from bambu_edge.printers.moonraker.status import SPEED_PERCENT

MAX_GCODE = 16_000
PRINT_ACTION = "print"


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    params: dict[str, Any] | None = None


def _gcode_line(params: Mapping[str, Any]) -> str:
    """G-code text as Klipper's ``gcode/script`` takes it: one or more lines, newline-separated."""
    line = params.get("line")
    if not isinstance(line, str):
        raise CommandError("bad_request", "'line' must be G-code text, e.g. M104 S200")
    script = line.replace("\r\n", "\n").strip("\n")
    if not script.strip():
        raise CommandError("bad_request", "the G-code is empty")
    if len(script) > MAX_GCODE:
        raise CommandError("bad_request", f"the G-code is longer than {MAX_GCODE} characters")
    if "\0" in script or "\r" in script:
        raise CommandError("bad_request", "the G-code contains control characters")
    return script


def _on(params: Mapping[str, Any]) -> bool:
    on = params.get("on")
    if type(on) is not bool:
        raise CommandError("bad_request", "'on' must be true or false")
    return on


def build(action: str, params: Mapping[str, Any], settings: MoonrakerSettings) -> Call:
    """The call for ``action``; CommandError('bad_request') with plain words otherwise."""
    if not isinstance(params, Mapping):
        raise CommandError("bad_request", "the command's parameters must be an object")
    if action == "pause":
        return Call("printer.print.pause")
    if action == "resume":
        return Call("printer.print.resume")
    if action == "stop":
        return Call("printer.print.cancel")
    if action == "speed":
        level = params.get("level")
        if type(level) is not int or level not in SPEED_PERCENT:
            raise CommandError(
                "bad_request", "'level' must be 1 (silent), 2 (standard), 3 (sport) or 4 (ludicrous)"
            )
        return Call("printer.gcode.script", {"script": f"M220 S{SPEED_PERCENT[level]}"})
    if action == "light":
        on = _on(params)
        if settings.light_power_device:
            return Call(
                "machine.device_power.post",
                {"device": settings.light_power_device, "action": "on" if on else "off"},
            )
        macro = settings.light_macro_on if on else settings.light_macro_off
        if macro:
            return Call("printer.gcode.script", {"script": macro})
        raise CommandError(
            "bad_request",
            "this Klipper printer has no light configured (light: {on: MACRO, off: MACRO} or "
            "{power_device: NAME} in its config)",
        )
    if action == "gcode":
        return Call("printer.gcode.script", {"script": _gcode_line(params)})
    if action == PRINT_ACTION:
        path = params.get("path")
        if not isinstance(path, str) or not path.strip("/"):
            raise CommandError("bad_request", "print needs the file's 'path'")
        return Call("printer.print.start", {"filename": path.lstrip("/")})
    raise CommandError("bad_request", f"unknown action {action!r} for a Klipper printer")
