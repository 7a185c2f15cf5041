"""Commands to a Bambu printer (BAMBU.md section 6): pure builders, validation and reply matching.

A request is ``{"<type>": {"sequence_id": "<string>", "command": "<cmd>", ...params}}``; the printer
answers on the report topic with the same type, command and sequence_id plus ``result`` and maybe
``reason`` (section 3), so replies are matched on (type, command, sequence_id).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bambu_edge.printers.base import CommandError

ACTIONS = ("pause", "resume", "stop", "speed", "light", "gcode")
MAX_GCODE_BYTES = 4096  # of the whole param, trailing newline included
LIGHT_NODE = "chamber_light"
SPEED_LEVELS = {1: "silent", 2: "standard", 3: "sport", 4: "ludicrous"}
STATUS_COMMANDS = frozenset({"push_status", "push_info"})  # printer pushes, never replies

ReplyKey = tuple[str, str, str]


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
    def key(self) -> ReplyKey:
        """What the printer's reply will carry: (type, command, sequence_id)."""
        return (self.kind, self.command, self.sequence_id)


class SequenceIds:
    """Unique, increasing string ids for one link. A random start keeps ids from colliding with a
    previous run of the daemon whose replies may still be in flight."""

    def __init__(self, start: int | None = None):
        self._it = itertools.count(start if start is not None else random.randint(10_000, 900_000))

    def next(self) -> str:
        return str(next(self._it))


def _msg(kind: str, command: str, seq: str, qos: int = 0, **params: Any) -> Command:
    return Command(kind, command, {kind: {"sequence_id": seq, "command": command, **params}}, qos)


# --- internal requests (the link sends these itself) ----------------------------------------------


def pushall(seq: str) -> Command:
    """Ask for a full report (BAMBU.md section 4); its answer is a push_status with msg 0."""
    return _msg("pushing", "pushall", seq, version=1, push_target=1)


def push_start(seq: str) -> Command:
    # Old firmware that silently stopped pushing resumes on this (BAMBU.md section 2).
    return _msg("pushing", "start", seq)


def get_version(seq: str) -> Command:
    return _msg("info", "get_version", seq)


# --- user actions -----------------------------------------------------------------------------------


def build(action: str, params: Mapping[str, Any], seq: str) -> Command:
    """A user action from the API -> the exact message the printer expects.
    CommandError('bad_request') in plain words when the action or its parameters are wrong."""
    if action in ("pause", "resume", "stop"):
        # The slicer sends these with QoS 1, and OBA documents "param": "".
        return _msg("print", action, seq, qos=1, param="")
    if action == "speed":
        level = params.get("level")
        if isinstance(level, bool) or not isinstance(level, int) or level not in SPEED_LEVELS:
            raise CommandError(
                "bad_request", "'level' must be 1 (silent), 2 (standard), 3 (sport) or 4 (ludicrous)"
            )
        return _msg("print", "print_speed", seq, param=str(level))
    if action == "light":
        on = params.get("on")
        if not isinstance(on, bool):
            raise CommandError("bad_request", "'on' must be true or false")
        return _msg(
            "system",
            "ledctrl",
            seq,
            led_node=LIGHT_NODE,
            led_mode="on" if on else "off",
            # The printer ignores ledctrl without the timing fields, even for plain on/off.
            led_on_time=500,
            led_off_time=500,
            loop_times=0,
            interval_time=0,
        )
    if action == "gcode":
        return _msg("print", "gcode_line", seq, param=gcode_param(params.get("line")))
    raise CommandError("bad_request", f"unknown action {action!r}; use {', '.join(ACTIONS)}")


def gcode_param(line: Any) -> str:
    """G-code lines as the printer wants them: joined by newlines, ending in one."""
    if not isinstance(line, str):
        raise CommandError("bad_request", "'line' must be G-code text, e.g. M104 S200")
    text = line.replace("\r\n", "\n").strip("\n")  # a pasted Windows text file is fine
    if not text.strip():
        raise CommandError("bad_request", "the G-code is empty")
    for part in text.split("\n"):
        # Tabs, NUL, escape sequences, lone CRs or invisible Unicode would reach the firmware's
        # parser as-is; nothing a person types into a G-code box needs them.
        if not part.isprintable():
            raise CommandError(
                "bad_request", "the G-code may contain only printable characters and line breaks"
            )
    param = text + "\n"
    if len(param.encode()) > MAX_GCODE_BYTES:
        raise CommandError("bad_request", f"the G-code is longer than {MAX_GCODE_BYTES} bytes")
    return param


# --- replies ----------------------------------------------------------------------------------------


def reply_key(message: Any) -> ReplyKey | None:
    """(type, command, sequence_id) of a command reply; None for status pushes and junk."""
    if not isinstance(message, dict) or len(message) != 1:
        return None
    ((kind, body),) = message.items()
    if not isinstance(body, dict):
        return None
    command = body.get("command")
    if not isinstance(command, str) or command in STATUS_COMMANDS:
        return None
    # ams_get_rfid is documented with "sequenceId" (BAMBU.md section 3).
    seq = body.get("sequence_id", body.get("sequenceId"))
    if isinstance(seq, bool) or not isinstance(seq, str | int):
        return None
    return (kind, command, str(seq))


@dataclass(frozen=True)
class Reply:
    accepted: bool
    reason: str | None  # the printer's own words when it refused, if any


def reply_result(message: Mapping[str, Any]) -> Reply:
    """The outcome of a matched reply. ``result`` is compared case-insensitively ("success",
    "SUCCESS"); a reply without one is an acknowledgement: refusals always say "failed"."""
    body = next(iter(message.values()))
    result = body.get("result")
    accepted = result is None or (isinstance(result, str) and result.strip().lower() == "success")
    reason = body.get("reason")
    if accepted or reason is None or isinstance(reason, dict | list):
        return Reply(accepted, None)
    text = str(reason).strip()[:200]
    return Reply(accepted, text if text and text.lower() != "success" else None)
