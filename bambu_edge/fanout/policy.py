"""What a fan-out client may ask of a printer: pure decisions, no I/O.

A request on ``device/{serial}/request`` is one JSON object whose top-level keys are message types
(``print``, ``pushing``, ``info``, ...), each ``{"command", "sequence_id", ...}`` (BAMBU.md section 3);
a client may put several in one message (bambulabs_api sends pushall, get_version and get_history
together). Each part is judged on its own:

- ``pushall`` / ``start`` (``pushing``) are answered from the merged state, never forwarded: P1/A1
  printers are slow to answer them, and one upstream session serves every client;
- ``get_version`` is answered from the printer's last reply when there is one;
- the read-only queries below are forwarded to every client;
- a control command is forwarded only if the printer's grants name its group (``GRANTS``; none by
  default: clients are read-only until an admin allows more in the dashboard);
- anything else is refused, with a reply on the report topic in the printer's own words
  (``result: failed``), so the client learns it at once instead of timing out.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# Groups of commands an admin may allow, named like the dashboard's actions where there is one.
GRANTS: dict[str, frozenset[tuple[str, str]]] = {
    "pause": frozenset({("print", "pause")}),
    "resume": frozenset({("print", "resume")}),
    "stop": frozenset({("print", "stop")}),
    "speed": frozenset({("print", "print_speed")}),
    "light": frozenset({("system", "ledctrl")}),
    "gcode": frozenset({("print", "gcode_line")}),
    "print": frozenset({("print", "project_file"), ("print", "gcode_file"), ("print", "skip_objects")}),
    "ams": frozenset(
        ("print", c)
        for c in (
            "ams_change_filament",
            "unload_filament",
            "ams_filament_setting",
            "ams_control",
            "ams_get_rfid",
            "ams_user_setting",
            "extrusion_cali_sel",
            "extrusion_cali_set",
        )
    ),
    "settings": frozenset(
        {
            ("print", "print_option"),
            ("print", "calibration"),
            ("xcam", "xcam_control_set"),
            ("camera", "ipcam_timelapse"),
            ("camera", "ipcam_record_set"),
        }
    ),
}
GRANT_NAMES = tuple(GRANTS)
# Queries that change nothing on the printer: every client may send them.
READ_ONLY = frozenset({("info", "get_version"), ("upgrade", "get_history"), ("print", "get_accessories")})
# Answered here from the merged state.
LOCAL = frozenset({("pushing", "pushall"), ("pushing", "start")})
# Pause, resume and stop go to the printer at QoS 1, as the slicer sends them (BAMBU.md section 2).
QOS1 = frozenset({("print", "pause"), ("print", "resume"), ("print", "stop")})
MAX_PARTS = 8

Kind = Literal["pushall", "version", "forward", "refuse"]


@dataclass(frozen=True, slots=True)
class Part:
    """One message type of a request and what to do with it."""

    kind: Kind
    section: str
    command: str
    sequence_id: str | None
    body: Mapping[str, Any]
    reason: str | None = None


def check_grants(names: Iterable[Any]) -> tuple[str, ...]:
    """Grant names in GRANTS order; ValueError naming an unknown one."""
    wanted = set()
    for name in names:
        if not isinstance(name, str) or name not in GRANTS:
            raise ValueError(f"unknown command group {name!r} (known: {', '.join(GRANT_NAMES)})")
        wanted.add(name)
    return tuple(n for n in GRANT_NAMES if n in wanted)


def allowed_commands(grants: Iterable[str]) -> frozenset[tuple[str, str]]:
    out: set[tuple[str, str]] = set(READ_ONLY)
    for g in grants:
        out |= GRANTS.get(g, frozenset())
    return frozenset(out)


def sequence_id_of(body: Mapping[str, Any]) -> str | None:
    seq = body.get("sequence_id", body.get("sequenceId"))
    if isinstance(seq, bool) or not isinstance(seq, str | int):
        return None
    return str(seq)[:32]


def judge(msg: Any, allowed: frozenset[tuple[str, str]]) -> list[Part]:
    """The parts of a decoded request and their verdicts; [] for something that is no request."""
    if not isinstance(msg, dict):
        return []
    parts = []
    for section, body in list(msg.items())[:MAX_PARTS]:
        if not isinstance(body, dict):
            continue
        command = body.get("command")
        if not isinstance(command, str) or not command or len(command) > 64:
            continue
        key = (section, command)
        seq = sequence_id_of(body)
        if key in LOCAL:
            kind: Kind = "pushall"
        elif key == ("info", "get_version"):
            kind = "version"
        elif key in allowed:
            kind = "forward"
        else:
            reason = "not allowed for clients of bambu-edge's endpoint (ask its admin)"
            if section == "system" and command == "get_access_code":
                reason = "bambu-edge never hands out the printer's access code"
            parts.append(Part("refuse", section, command, seq, body, reason))
            continue
        parts.append(Part(kind, section, command, seq, body))
    return parts


def refusal(part: Part) -> dict[str, Any]:
    """The reply a printer would send to a command it refuses."""
    reply: dict[str, Any] = {"command": part.command, "result": "failed", "reason": part.reason}
    if part.sequence_id is not None:
        reply["sequence_id"] = part.sequence_id
    return {part.section: reply}


def full_report(raw: Mapping[str, Any], sequence_id: str | None) -> dict[str, Any]:
    """A full status report (``msg: 0``) from the merged ``print`` object."""
    return {"print": {**raw, "command": "push_status", "msg": 0, "sequence_id": sequence_id or "0"}}


def version_reply(last: Mapping[str, Any], sequence_id: str | None) -> dict[str, Any]:
    """The printer's last ``get_version`` reply, with the asking client's sequence_id."""
    info = dict(last)
    if sequence_id is not None:
        info["sequence_id"] = sequence_id
    return {"info": info}


@dataclass
class TokenBucket:
    """``rate`` requests a second with bursts of ``burst``; per printer, over all its clients (a
    printer is slow, whoever asks)."""

    rate: float
    burst: int
    tokens: float = field(init=False)
    stamp: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)
        self.stamp = time.monotonic()

    def take(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
