"""Commands to a Bambu printer (BAMBU.md section 6): pure builders, validation and reply matching."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bambu_edge.printers.base import CommandError

MAX_GCODE_BYTES = 4096
LIGHT_NODE = "chamber_light"


@dataclass(frozen=True)
class Command:
    kind: str  # top-level type: print, system, pushing, info
    command: str
    payload: dict[str, Any]
    qos: int = 0

    @property
    def sequence_id(self) -> str:
        return self.payload[self.kind]["sequence_id"]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.command, self.sequence_id)


class SequenceIds:
    """Unique, increasing string ids per link; a random start keeps ids from colliding with a
    previous run whose replies may still be in flight."""

    def __init__(self, start: int | None = None):
        self._it = itertools.count(start if start is not None else random.randint(10_000, 900_000))

    def next(self) -> str:
        return str(next(self._it))


def _msg(kind: str, command: str, seq: str, qos: int = 0, **params: Any) -> Command:
    return Command(kind, command, {kind: {"sequence_id": seq, "command": command, **params}}, qos)


def pushall(seq: str) -> Command:
    return _msg("pushing", "pushall", seq, version=1, push_target=1)


def push_start(seq: str) -> Command:
    # Old firmware that silently stopped pushing resumes on this (BAMBU.md section 2).
    return _msg("pushing", "start", seq)


def get_version(seq: str) -> Command:
    return _msg("info", "get_version", seq)


def _bool(params: Mapping[str, Any], key: str) -> bool:
    v = params.get(key)
    if not isinstance(v, bool):
        raise CommandError("bad_request", f"'{key}' must be true or false")
    return v


def build(action: str, params: Mapping[str, Any], seq: str) -> Command:
    """A user action from the API -> the exact message the printer expects."""
    if action in ("pause", "resume", "stop"):
        # The slicer sends these with QoS 1 (OBA); "param": "" as OBA documents.
        return _msg("print", action, seq, qos=1, param="")
    if action == "speed":
        level = params.get("level")
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 4:
            raise CommandError(
                "bad_request", "'level' must be 1 (silent), 2 (standard), 3 (sport) or 4 (ludicrous)"
            )
        return _msg("print", "print_speed", seq, param=str(level))
    if action == "light":
        on = _bool(params, "on")
        return _msg(
            "system",
            "ledctrl",
            seq,
            led_node=LIGHT_NODE,
            led_mode="on" if on else "off",
            # The printer ignores ledctrl without the timing fields.
            led_on_time=500,
            led_off_time=500,
            loop_times=0,
            interval_time=0,
        )
    if action == "gcode":
        line = params.get("line")
        if not isinstance(line, str) or not line.strip():
            raise CommandError("bad_request", "'line' must be a G-code line, e.g. M104 S200")
        line = line.replace("\r\n", "\n").rstrip("\n")
        if len(line.encode()) > MAX_GCODE_BYTES:
            raise CommandError("bad_request", f"G-code is limited to {MAX_GCODE_BYTES} bytes")
        if any((ord(c) < 32 and c not in "\n\t") or ord(c) == 127 for c in line):
            raise CommandError("bad_request", "G-code may not contain control characters")
        return _msg("print", "gcode_line", seq, param=line + "\n")
    raise CommandError(
        "bad_request", f"unknown action {action!r}; use pause, resume, stop, speed, light or gcode"
    )


def reply_key(message: Any) -> tuple[str, str, str] | None:
    """(type, command, sequence_id) of a command reply, None for status pushes and junk."""
    if not isinstance(message, dict) or len(message) != 1:
        return None
    ((kind, body),) = message.items()
    if not isinstance(body, dict):
        return None
    command = body.get("command")
    if not isinstance(command, str) or command in ("push_status", "push_info"):
        return None
    seq = body.get("sequence_id", body.get("sequenceId"))
    if seq is None:
        return None
    return (kind, command, str(seq))


def reply_result(message: dict[str, Any]) -> tuple[bool, str | None]:
    """(accepted, the printer's reason) for a matched reply."""
    body = next(iter(message.values()))
    result = str(body.get("result", "")).lower()
    reason = body.get("reason")
    return result == "success", (str(reason)[:200] if reason else None)
